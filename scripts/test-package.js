#!/usr/bin/env node
'use strict'
/**
 * `npm run test:package`: the user's install path, end to end, with NO Rust toolchain on PATH.
 *
 *  1. `npm pack` the root package and this machine's platform package, and check both tarballs
 *     hold exactly what users need. The root is packed from a temp copy of the checkout without
 *     lib/, target/ or binaries (node_modules symlinked), so its prepack must build lib/ itself
 *     and the working tree is never touched; npm/<suffix>/ is staged likewise with the
 *     already-built ./chordnet.<suffix>.node.
 *  2. Install both tarballs into an empty temp project with `npm install --offline` and a PATH
 *     without cargo/rustup, then run two ChordSockets on 127.0.0.1 (set on one, get on the other)
 *     through the installed copy: the binary must come from the platform package.
 *  3. Install the root tarball alone, with the prebuild-install tarball in a local prebuilds dir
 *     (npm_config_chordnet_local_prebuilds): scripts/install.js must fetch it through
 *     prebuild-install, and the loader must find it in the package root.
 *  4. Install the root tarball alone with no binary anywhere and no cargo: the install must fail
 *     with the message telling the user to install Rust.
 *
 * `--offline`: the tarballs are local files; the one registry dependency, prebuild-install (and
 * its dependencies), must come from the npm cache, which `npm ci` of this repository filled. If
 * the cache lacks them (a fresh cache), the install is retried with `--prefer-offline`, which
 * fetches only what is missing, and the run says so. The prebuild download host is pinned to a
 * closed loopback port, so nothing is ever downloaded from a release host.
 *
 * Needs ./chordnet.<suffix>.node (built by `npm ci` / `npm run build`). Prints
 * `N passed, M failed` and exits non-zero on any failure. Temp files live under os.tmpdir().
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { platformSuffix, prebuildName, writePrebuildTarball } = require('./artifacts.js')

const root = path.resolve(__dirname, '..')
const pkg = require(path.join(root, 'package.json'))
const suffix = platformSuffix()
const binaryName = `${pkg.napi?.binaryName || pkg.name}.${suffix}.node`
const STEP_TIMEOUT_MS = 180_000
const keep = process.argv.includes('--keep')

const results = []
let scratch

function log(message) {
  process.stdout.write(`test-package: ${message}\n`)
}

/** Record one check's outcome; `true` when it passed. */
function record(name, started, error, detail) {
  results.push({ name, ok: !error })
  if (error) log(`FAIL ${name}: ${error.message}`)
  else log(`ok   ${name}${detail ? ` (${detail})` : ''} [${((Date.now() - started) / 1000).toFixed(1)} s]`)
  return !error
}

function check(name, fn) {
  const started = Date.now()
  try {
    return record(name, started, null, fn())
  } catch (error) {
    return record(name, started, error)
  }
}

async function checkAsync(name, fn) {
  const started = Date.now()
  try {
    return record(name, started, null, await fn())
  } catch (error) {
    return record(name, started, error)
  }
}

/** PATH without any directory that holds cargo or rustup (and with this node first). */
function pathWithoutCargo() {
  const exe = process.platform === 'win32' ? ['cargo.exe', 'rustup.exe'] : ['cargo', 'rustup']
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((dir) => {
    if (!dir || /[\\/]\.cargo[\\/]|[\\/]\.rustup[\\/]/.test(`${dir}/`)) return false
    return !exe.some((name) => fs.existsSync(path.join(dir, name)))
  })
  return [path.dirname(process.execPath), ...dirs.filter((dir) => dir !== path.dirname(process.execPath))].join(path.delimiter)
}

/** The environment of a user's shell: no npm_* variables of the outer `npm run`, no cargo. */
function userEnv(extra = {}) {
  const env = {}
  const keepNpm = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_proxy', 'npm_config_https_proxy'])
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !keepNpm.has(key.toLowerCase())) continue
    if (key === 'INIT_CWD' || key === 'CARGO_TARGET_DIR' || key === 'CHORDNET_BUILD_FROM_SOURCE') continue
    env[key] = value
  }
  env.PATH = pathWithoutCargo()
  // prebuild-install's download host, pinned to a closed loopback port: never a real download.
  env.npm_config_chordnet_binary_host = 'http://127.0.0.1:9'
  return { ...env, ...extra }
}

function npm(args, options = {}) {
  const execpath = process.env.npm_execpath
  const viaNode = execpath && /npm-cli\.c?js$/.test(execpath)
  const command = viaNode ? process.execPath : process.platform === 'win32' ? 'npm.cmd' : 'npm'
  const result = spawnSync(command, viaNode ? [execpath, ...args] : args, {
    encoding: 'utf8',
    timeout: STEP_TIMEOUT_MS,
    shell: !viaNode && process.platform === 'win32',
    ...options,
  })
  const output = `${result.stdout || ''}${result.stderr || ''}`
  return { status: result.error ? -1 : result.status, output, error: result.error }
}

function lastLines(text, n = 15) {
  return text.trim().split('\n').slice(-n).join('\n    ')
}

/** `npm pack --json` of `dir` into `destination`; returns { file, files }. */
function pack(dir, destination) {
  const result = npm(['pack', '--json', '--pack-destination', destination], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  if (result.status !== 0) throw new Error(`npm pack in ${dir} failed:\n    ${lastLines(result.output)}`)
  const json = result.output.slice(result.output.indexOf('['), result.output.lastIndexOf(']') + 1)
  const info = JSON.parse(json)[0]
  return { file: path.join(destination, info.filename), files: info.files.map((file) => file.path) }
}

/** A copy of the checkout as a clean clone has it before install: no lib/, target/, binaries. */
function stageCheckout() {
  const staged = path.join(scratch, 'checkout')
  const skipTop = new Set(['.git', 'node_modules', 'target', 'dist', 'lib', '.tmp'])
  fs.cpSync(root, staged, {
    recursive: true,
    filter: (source) => {
      const relative = path.relative(root, source)
      if (!relative) return true
      if (skipTop.has(relative.split(path.sep)[0])) return false
      return !/\.(node|tgz)$/.test(source) && !relative.startsWith(path.join('bench', 'scratch'))
    },
  })
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(staged, 'node_modules'), process.platform === 'win32' ? 'junction' : 'dir')
  return staged
}

function emptyProject(name) {
  const dir = path.join(scratch, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `chordnet-${name}`, version: '1.0.0', private: true }, null, 2))
  fs.writeFileSync(path.join(dir, 'smoke.js'), SMOKE)
  return dir
}

/** npm install of local tarballs, offline; retried with --prefer-offline on a cache miss. */
function install(project, tarballs, env) {
  const base = ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...tarballs]
  let result = npm([...base, '--offline'], { cwd: project, env })
  let mode = 'offline'
  if (result.status !== 0 && /ENOTCACHED/.test(result.output)) {
    log('  the npm cache lacks a dependency (ENOTCACHED); retrying with --prefer-offline')
    result = npm([...base, '--prefer-offline'], { cwd: project, env })
    mode = 'prefer-offline'
  }
  return { ...result, mode }
}

/** The user's program: two ChordSockets on loopback, set on one, get on the other. */
const SMOKE = `'use strict'
const { ChordSocket, Protocol, waitForRing } = require('chordnet')
async function main() {
  const protocol = new Protocol('test-package-' + process.pid)
  const a = new ChordSocket('127.0.0.1', 0, { protocol, stabilizeMs: 50 })
  const b = new ChordSocket('127.0.0.1', 0, { protocol, stabilizeMs: 50 })
  await Promise.all([a.ready, b.ready])
  await b.connect(...a.addr)
  await waitForRing([a, b])
  await a.set('package-test', 'it works')
  const value = await b.get('package-test')
  // The web view ships in the package: its page and prom-client's /metrics answer.
  const view = await a.serveView()
  const page = await fetch(view.url)
  const metrics = await (await fetch(view.url + 'metrics')).text()
  await Promise.all([b.close(), a.close()])
  if (!value || value.toString() !== 'it works') throw new Error('get returned ' + value)
  if (page.status !== 200 || !(await page.text()).includes('view.js')) throw new Error('the web view page did not load: ' + page.status)
  if (!/^chordnet_operations_total\\{op="set"\\} 1$/m.test(metrics)) throw new Error('unexpected /metrics: ' + metrics.slice(0, 500))
  const binary = Object.keys(require.cache).find((file) => file.endsWith('.node'))
  console.log('binary ' + binary)
  console.log('ok')
}
main().catch((error) => { console.error(error); process.exit(1) })
`

function runSmoke(project, env) {
  const result = spawnSync(process.execPath, ['smoke.js'], { cwd: project, env, encoding: 'utf8', timeout: 60_000 })
  const output = `${result.stdout || ''}${result.stderr || ''}`
  if (result.error) throw new Error(`smoke.js: ${result.error.message}`)
  if (result.status !== 0 || !/^ok$/m.test(result.stdout)) throw new Error(`smoke.js exited ${result.status}:\n    ${lastLines(output)}`)
  return (/^binary (.*)$/m.exec(result.stdout) || [])[1] || ''
}

/** Checks a tarball listing: every `required` entry present, nothing matching `forbidden`. */
function assertListing(files, required, forbidden) {
  const missing = required.filter((file) => !files.includes(file))
  const extra = files.filter((file) => forbidden.some((pattern) => pattern.test(file)))
  const problems = []
  if (missing.length) problems.push(`missing ${missing.join(', ')}`)
  if (extra.length) problems.push(`should not hold ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ', ...' : ''}`)
  if (problems.length) throw new Error(problems.join('; '))
}

async function main() {
  const started = Date.now()
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-test-package-'))
  const env = userEnv()
  log(`platform ${suffix}; scratch ${scratch}`)

  const cargoProbe = spawnSync('cargo', ['--version'], { env, stdio: 'ignore' })
  check('cargo is absent from the test PATH', () => {
    if (!cargoProbe.error) throw new Error('cargo still runs with the filtered PATH')
  })

  const built = path.join(root, binaryName)
  if (!fs.existsSync(built)) throw new Error(`${binaryName} is not built; run \`npm run build\` (or \`npm ci\`) first`)

  // 1. Tarballs.
  const tarballs = path.join(scratch, 'tarballs')
  fs.mkdirSync(tarballs)
  let rootPack
  check('npm pack of the root package', () => {
    rootPack = pack(stageCheckout(), tarballs)
    return `${path.basename(rootPack.file)}, ${rootPack.files.length} files`
  })
  if (rootPack) {
    check('root tarball holds what users need and nothing else', () => {
      const required = ['package.json', 'index.js', 'index.d.ts', 'lib/index.js', 'lib/index.d.ts', 'lib/native.js', 'scripts/install.js',
        'Cargo.toml', 'Cargo.lock', 'build.rs', 'src/lib.rs', 'crates/chord/Cargo.toml', 'crates/chord/src/lib.rs',
        'web/index.html', 'web/view.js', 'web/view.css', 'lib/view/server.js']
      // Cargo needs every workspace member's manifest to build from source.
      const members = /members\s*=\s*\[([^\]]*)\]/.exec(fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8'))
      for (const member of members ? members[1].match(/"[^"]+"/g) || [] : []) {
        const dir = member.slice(1, -1)
        if (dir !== '.' && !dir.includes('*')) required.push(`${dir}/Cargo.toml`)
      }
      for (const target of Object.values(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : pkg.bin || {})) {
        required.push(path.posix.normalize(target))
      }
      const forbidden = [/^target\//, /^__test__\//, /^bench\//, /(^|\/)node_modules\//, /^ts\//, /^npm\//, /^dist\//, /^\.ci\//,
        /^scripts\/(?!install\.js$)/, /^crates\/[^/]+\/(tests|benches)\//, /\.node$/, /\.tgz$/, /\.tar\.gz$/, /^\.git/]
      assertListing(rootPack.files, required, forbidden)
      return `${rootPack.files.length} files`
    })
  }

  let platformPack
  check(`npm pack of the platform package chordnet-${suffix}`, () => {
    const staged = path.join(scratch, `npm-${suffix}`)
    fs.mkdirSync(staged)
    for (const file of fs.readdirSync(path.join(root, 'npm', suffix))) {
      if (!file.endsWith('.node')) fs.copyFileSync(path.join(root, 'npm', suffix, file), path.join(staged, file))
    }
    fs.copyFileSync(built, path.join(staged, binaryName))
    platformPack = pack(staged, tarballs)
    return path.basename(platformPack.file)
  })
  if (platformPack) {
    check('platform tarball holds only its binary, package.json and README.md', () => {
      const expected = ['README.md', binaryName, 'package.json'].sort()
      const files = [...platformPack.files].sort()
      if (JSON.stringify(files) !== JSON.stringify(expected)) throw new Error(`holds ${files.join(', ')}`)
    })
  }

  // 2. Root + platform package: the optionalDependency path.
  if (rootPack && platformPack) {
    const project = emptyProject('with-platform-package')
    let installed = false
    check('npm install --offline of both tarballs (no cargo)', () => {
      const result = install(project, [rootPack.file, platformPack.file], env)
      if (result.status !== 0) throw new Error(`exit ${result.status}:\n    ${lastLines(result.output)}`)
      installed = true
      return result.mode
    })
    if (installed) {
      check('nothing was built or downloaded into the installed chordnet', () => {
        const dir = path.join(project, 'node_modules', 'chordnet')
        const leftovers = ['target', binaryName].filter((name) => fs.existsSync(path.join(dir, name)))
        if (leftovers.length) throw new Error(`found ${leftovers.join(', ')}`)
      })
      check('two ChordSockets set/get through the installed copy (platform package binary)', () => {
        const binary = runSmoke(project, env)
        const expected = path.join('node_modules', `chordnet-${suffix}`, binaryName)
        if (!binary.endsWith(expected)) throw new Error(`loaded ${binary}, expected …/${expected}`)
        return path.relative(project, binary)
      })
    }
  }

  // 3. Root alone + a local prebuild tarball: the prebuild-install path.
  if (rootPack) {
    const prebuilds = path.join(scratch, 'prebuilds')
    fs.mkdirSync(prebuilds)
    const project = emptyProject('with-prebuild')
    let installed = false
    await checkAsync('npm install --offline of the root tarball with a local prebuild (no cargo)', async () => {
      const napiVersion = (pkg.binary?.napi_versions || [8])[0]
      await writePrebuildTarball(built, path.join(prebuilds, prebuildName(napiVersion)))
      const result = install(project, [rootPack.file], userEnv({ npm_config_chordnet_local_prebuilds: prebuilds }))
      if (result.status !== 0) throw new Error(`exit ${result.status}:\n    ${lastLines(result.output)}`)
      if (/building the native addon with cargo/.test(result.output)) throw new Error('install.js built from source')
      installed = true
      return result.mode
    })
    if (installed) {
      check('two ChordSockets set/get through the installed copy (prebuilt binary in the package root)', () => {
        const binary = runSmoke(project, env)
        const expected = path.join('node_modules', 'chordnet', binaryName)
        if (!binary.endsWith(expected)) throw new Error(`loaded ${binary}, expected …/${expected}`)
        return path.relative(project, binary)
      })
    }
  }

  // 4. Root alone, no binary anywhere, no cargo: a clear failure.
  if (rootPack) {
    const project = emptyProject('without-binary')
    const empty = path.join(scratch, 'no-prebuilds')
    fs.mkdirSync(empty)
    check('without any binary and without cargo, the install fails saying to install Rust', () => {
      const result = install(project, [rootPack.file], userEnv({ npm_config_chordnet_local_prebuilds: empty }))
      if (result.status === 0) throw new Error('npm install succeeded')
      if (!/cargo is not on PATH/.test(result.output) || !/rustup\.rs/.test(result.output)) {
        throw new Error(`no clear message:\n    ${lastLines(result.output)}`)
      }
      const leftover = path.join(project, 'node_modules', 'chordnet', binaryName)
      if (fs.existsSync(leftover)) throw new Error(`a partial ${binaryName} was left behind`)
    })
  }

  const failed = results.filter((result) => !result.ok).length
  log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`)
  return failed
}

main()
  .catch((error) => {
    results.push({ name: 'setup', ok: false })
    log(`FAIL ${error.message}`)
    return 1
  })
  .then(() => {
    if (scratch && !keep) fs.rmSync(scratch, { recursive: true, force: true })
    else if (scratch) log(`kept ${scratch}`)
    const failed = results.filter((result) => !result.ok).length
    process.stdout.write(`\n${results.length - failed} passed, ${failed} failed\n`)
    process.exit(failed === 0 ? 0 : 1)
  })
