#!/usr/bin/env node
'use strict'
/**
 * `npm run test:package`: the user's install path, end to end, with NO Rust toolchain on PATH.
 *
 *  1. `npm pack` the root package and a platform package, and check both tarballs hold exactly
 *     what users need. The root is packed from a temp copy of the checkout without lib/,
 *     target/ or binaries (node_modules symlinked), so its prepack must build lib/ itself and
 *     the working tree is never touched.
 *  2. Install both tarballs into an empty temp project with `npm install --offline` and a PATH
 *     without cargo/rustup, then run two ChordSockets on 127.0.0.1 (set on one, get on the other)
 *     through the installed copy: the binary must come from the platform package.
 *  3. Install the root tarball alone, with the prebuild-install tarball in a local prebuilds dir
 *     (npm_config_chordnet_local_prebuilds): scripts/install.js must fetch it through
 *     prebuild-install, and the loader must find it in the package root.
 *  4. Install the root tarball alone with no binary anywhere and no cargo: the install must fail
 *     with a message naming the platform it looked for and what to do.
 *
 * Two ways to run it:
 *   node scripts/test-package.js            this machine's platform, with the binary `npm ci` /
 *                                           `npm run build` left in ./chordnet.<suffix>.node
 *                                           (part of `npm test`, about 10 s)
 *   node scripts/test-package.js --dist --target <triple>
 *                                           the tarballs `npm run artifacts -- --target <triple>`
 *                                           wrote to dist/, installed and run by a Node of that
 *                                           target (scripts/cross-tools.js: natively, with musl's
 *                                           loader, or under qemu-aarch64). test:platforms uses
 *                                           runPackageTests() the same way.
 *
 * With another target's runtime, npm itself runs on that Node too, so npm's os/cpu/libc checks,
 * the install script's platform decision and prebuild-install's tarball name are the target's.
 *
 * `--offline`: the tarballs are local files; the one registry dependency, prebuild-install (and
 * its dependencies), must come from the npm cache, which `npm ci` of this repository filled. If
 * the cache lacks them (a fresh cache), the install is retried with `--prefer-offline`, which
 * fetches only what is missing, and the run says so. The prebuild download host is pinned to a
 * closed loopback port, so nothing is ever downloaded from a release host.
 *
 * Prints `N passed, M failed` and exits non-zero on any failure. Temp files live under
 * os.tmpdir() and are removed at the end (unless --keep).
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const platforms = require('./platforms.js')
const { writePrebuildTarball } = require('./artifacts.js')

const root = path.resolve(__dirname, '..')
const pkg = require(path.join(root, 'package.json'))
const NAPI_VERSION = (pkg.binary?.napi_versions || [8])[0]
/** One npm install or smoke run, natively; an emulated target gets EMULATED_SLOWDOWN times more. */
const STEP_TIMEOUT_MS = 180_000
const EMULATED_SLOWDOWN = 4

/** A test run's record of checks; `prefix` names the target in each line. */
function createRecorder(prefix = '') {
  const results = []
  const log = (message) => process.stdout.write(`test-package: ${prefix}${message}\n`)
  const record = (name, started, error, detail) => {
    results.push({ name: `${prefix}${name}`, ok: !error })
    if (error) log(`FAIL ${name}: ${error.message}`)
    else log(`ok   ${name}${detail ? ` (${detail})` : ''} [${((Date.now() - started) / 1000).toFixed(1)} s]`)
    return !error
  }
  const check = (name, fn) => {
    const started = Date.now()
    try {
      return record(name, started, null, fn())
    } catch (error) {
      return record(name, started, error)
    }
  }
  const checkAsync = async (name, fn) => {
    const started = Date.now()
    try {
      return record(name, started, null, await fn())
    } catch (error) {
      return record(name, started, error)
    }
  }
  return { results, log, check, checkAsync }
}

/** PATH without any directory that holds cargo or rustup, with `first` (a dir holding node) first. */
function pathWithoutCargo(first) {
  const exe = process.platform === 'win32' ? ['cargo.exe', 'rustup.exe'] : ['cargo', 'rustup']
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((dir) => {
    if (!dir || dir === first || /[\\/]\.cargo[\\/]|[\\/]\.rustup[\\/]/.test(`${dir}/`)) return false
    return !exe.some((name) => fs.existsSync(path.join(dir, name)))
  })
  return [first, ...dirs].join(path.delimiter)
}

/** The environment of a user's shell: no npm_* variables of the outer `npm run`, no cargo. */
function userEnv(runtime, extra = {}) {
  const env = {}
  const keepNpm = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig', 'npm_config_proxy', 'npm_config_https_proxy'])
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) && !keepNpm.has(key.toLowerCase())) continue
    if (['INIT_CWD', 'CARGO_TARGET_DIR', 'CHORDNET_BUILD_FROM_SOURCE', 'QEMU_LD_PREFIX'].includes(key)) continue
    env[key] = value
  }
  if (runtime.binDir) env.PATH = pathWithoutCargo(runtime.binDir)
  // prebuild-install's download host, pinned to a closed loopback port: never a real download.
  env.npm_config_chordnet_binary_host = 'http://127.0.0.1:9'
  return { ...env, ...runtime.env, ...extra }
}

/** The host's own Node and npm, as a runtime. */
function hostRuntime() {
  return { node: process.execPath, npmCli: null, env: {}, emulated: false, description: `this machine's Node ${process.version}` }
}

/**
 * Gives `runtime` a bin directory whose `node` is the runtime's, for npm's install scripts. A
 * runtime with its own root (scripts/cross-tools.js, musl) brings its PATH and gets `scratch`
 * mounted inside.
 */
function withBinDir(runtime, scratch, suffix) {
  if (runtime.wrap) return { ...runtime, binDir: null, binds: [scratch] }
  if (runtime.node === process.execPath) return { ...runtime, binDir: path.dirname(process.execPath) }
  const binDir = path.join(scratch, `bin-${suffix}`)
  fs.mkdirSync(binDir, { recursive: true })
  fs.symlinkSync(runtime.node, path.join(binDir, 'node'))
  return { ...runtime, binDir }
}

function npm(runtime, args, options = {}) {
  const timeout = STEP_TIMEOUT_MS * (runtime.emulated ? EMULATED_SLOWDOWN : 1)
  let command
  let commandArgs
  if (runtime.npmCli) {
    command = runtime.node
    commandArgs = [runtime.npmCli, ...args]
  } else {
    const execpath = process.env.npm_execpath
    const viaNode = execpath && /npm-cli\.c?js$/.test(execpath)
    command = viaNode ? process.execPath : process.platform === 'win32' ? 'npm.cmd' : 'npm'
    commandArgs = viaNode ? [execpath, ...args] : args
  }
  const result = spawnIn(runtime, command, commandArgs, {
    encoding: 'utf8',
    timeout,
    shell: !runtime.npmCli && command.endsWith('.cmd'),
    ...options,
  })
  const output = `${result.stdout || ''}${result.stderr || ''}`
  return { status: result.error ? -1 : result.status, output, error: result.error }
}

/** spawnSync, inside the runtime's own root when it has one (with its scratch mounted). */
function spawnIn(runtime, command, args, options) {
  if (!runtime.wrap) return spawnSync(command, args, options)
  const wrapped = runtime.wrap(command, args, { cwd: options.cwd, binds: runtime.binds })
  return spawnSync(wrapped.command, wrapped.args, options)
}

function lastLines(text, n = 15) {
  return text.trim().split('\n').slice(-n).join('\n    ')
}

/** `npm pack --json` of `dir` into `destination` with the host's npm; returns { file, files }. */
function pack(dir, destination) {
  const result = npm(hostRuntime(), ['pack', '--json', '--pack-destination', destination], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
  if (result.status !== 0) throw new Error(`npm pack in ${dir} failed:\n    ${lastLines(result.output)}`)
  const json = result.output.slice(result.output.indexOf('['), result.output.lastIndexOf(']') + 1)
  const info = JSON.parse(json)[0]
  return { file: path.join(destination, info.filename), files: info.files.map((file) => file.path) }
}

/** A copy of the checkout as a clean clone has it before install: no lib/, target/, binaries. */
function stageCheckout(scratch) {
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

/** Checks a tarball listing: every `required` entry present, nothing matching `forbidden`. */
function assertListing(files, required, forbidden) {
  const missing = required.filter((file) => !files.includes(file))
  const extra = files.filter((file) => forbidden.some((pattern) => pattern.test(file)))
  const problems = []
  if (missing.length) problems.push(`missing ${missing.join(', ')}`)
  if (extra.length) problems.push(`should not hold ${extra.slice(0, 10).join(', ')}${extra.length > 10 ? ', ...' : ''}`)
  if (problems.length) throw new Error(problems.join('; '))
}

/** Packs the root package from a staged checkout and checks its listing; returns its path or null. */
function packRoot(scratch, tarballs, { check }) {
  let rootPack = null
  check('npm pack of the root package', () => {
    rootPack = pack(stageCheckout(scratch), tarballs)
    return `${path.basename(rootPack.file)}, ${rootPack.files.length} files`
  })
  if (!rootPack) return null
  const ok = check('root tarball holds what users need and nothing else', () => {
    const required = ['package.json', 'index.js', 'index.d.ts', 'lib/index.js', 'lib/index.d.ts', 'lib/native.js', 'lib/platform.js', 'lib/binding.d.ts', 'scripts/build-ts.js',
      'scripts/install.js', 'scripts/platforms.js', 'Cargo.toml', 'Cargo.lock', 'build.rs', 'src/lib.rs', 'crates/chord/Cargo.toml',
      'crates/chord/src/lib.rs', 'crates/node/src/lib.rs', 'crates/noise/src/lib.rs', 'web/index.html', 'web/view.js', 'web/view.css', 'lib/view/server.js']
    // Cargo needs every workspace member's manifest to build from source.
    const members = /members\s*=\s*\[([^\]]*)\]/.exec(fs.readFileSync(path.join(root, 'Cargo.toml'), 'utf8'))
    for (const member of members ? members[1].match(/"[^"]+"/g) || [] : []) {
      const dir = member.slice(1, -1)
      if (dir !== '.' && !dir.includes('*')) required.push(`${dir}/Cargo.toml`)
    }
    for (const target of Object.values(typeof pkg.bin === 'string' ? { [pkg.name]: pkg.bin } : pkg.bin || {})) {
      required.push(path.posix.normalize(target))
    }
    const forbidden = [/^target\//, /^__test__\//, /^bench\//, /(^|\/)node_modules\//, /^ts\//, /^npm\//, /^dist\//, /^\.ci\//, /^\.github\//,
      /^scripts\/(?!(install|platforms|build-ts)\.js$)/, /^crates\/[^/]+\/(tests|benches)\//, /\.node$/, /\.tgz$/, /\.tar\.gz$/, /^\.git/]
    assertListing(rootPack.files, required, forbidden)
    return `${rootPack.files.length} files`
  })
  return ok ? rootPack.file : null
}

function emptyProject(scratch, name) {
  const dir = path.join(scratch, name)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: `chordnet-${name}`, version: '1.0.0', private: true }, null, 2))
  fs.writeFileSync(path.join(dir, 'smoke.js'), SMOKE)
  return dir
}

/** npm install of local tarballs, offline; retried with --prefer-offline on a cache miss. */
function install(runtime, project, tarballs, env, log) {
  const base = ['install', '--no-audit', '--no-fund', '--foreground-scripts', ...tarballs]
  let result = npm(runtime, [...base, '--offline'], { cwd: project, env })
  let mode = 'offline'
  if (result.status !== 0 && /ENOTCACHED/.test(result.output)) {
    log('  the npm cache lacks a dependency (ENOTCACHED); retrying with --prefer-offline')
    result = npm(runtime, [...base, '--prefer-offline'], { cwd: project, env })
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
  console.log('runtime ' + process.platform + ' ' + process.arch + ' ' + (process.report.getReport().header.glibcVersionRuntime ? 'glibc' : 'no-glibc') + ' ' + process.version)
  console.log('ok')
}
main().catch((error) => { console.error(error); process.exit(1) })
`

function runSmoke(runtime, project, env) {
  const result = spawnIn(runtime, runtime.node, ['smoke.js'], {
    cwd: project,
    env,
    encoding: 'utf8',
    timeout: 60_000 * (runtime.emulated ? EMULATED_SLOWDOWN : 1),
  })
  const output = `${result.stdout || ''}${result.stderr || ''}`
  if (result.error) throw new Error(`smoke.js: ${result.error.message}`)
  if (result.status !== 0 || !/^ok$/m.test(result.stdout)) throw new Error(`smoke.js exited ${result.status}:\n    ${lastLines(output)}`)
  return { binary: (/^binary (.*)$/m.exec(result.stdout) || [])[1] || '', seen: (/^runtime (.*)$/m.exec(result.stdout) || [])[1] || '' }
}

/**
 * Steps 2-4 for one target: installs `rootTarball` with `platformTarball`, then with only the
 * prebuild tarball, then with nothing, each by `runtime` (a scripts/cross-tools.js runtime or
 * the host's) into an empty project, and runs the set/get through the installed copy.
 */
async function runPackageTests({ target, runtime: baseRuntime, rootTarball: rootIn, platformTarball: platformIn, prebuildTarball, scratch, recorder }) {
  const { check, checkAsync, log } = recorder
  const runtime = withBinDir(baseRuntime, scratch, target.suffix)
  const env = userEnv(runtime)
  // Everything the installs read lives in `scratch`, the one directory a rooted runtime sees.
  const inputs = path.join(scratch, 'inputs')
  fs.mkdirSync(inputs, { recursive: true })
  const rootTarball = path.join(inputs, path.basename(rootIn))
  const platformTarball = path.join(inputs, path.basename(platformIn))
  fs.copyFileSync(rootIn, rootTarball)
  fs.copyFileSync(platformIn, platformTarball)
  const libcWord = target.platform === 'linux' ? (target.libc === 'glibc' ? 'glibc' : 'no-glibc') : null
  const expectRuntime = (seen) => {
    const [platform, arch, libc] = seen.split(' ')
    if (platform !== target.platform || arch !== target.arch || (libcWord && libc !== libcWord)) {
      throw new Error(`ran on "${seen}", not on ${target.suffix}`)
    }
  }

  check('cargo is absent from the test PATH', () => {
    const probe = spawnIn(runtime, 'cargo', ['--version'], { env, stdio: 'ignore', cwd: scratch })
    if (!probe.error && probe.status === 0) throw new Error('cargo still runs with the test PATH')
  })

  // 2. Root + platform package: the optionalDependency path.
  {
    const project = emptyProject(scratch, `${target.suffix}-with-platform-package`)
    let installed = false
    check(`npm install --offline of the root and ${path.basename(platformTarball)} (no cargo)`, () => {
      const result = install(runtime, project, [rootTarball, platformTarball], env, log)
      if (result.status !== 0) throw new Error(`exit ${result.status}:\n    ${lastLines(result.output)}`)
      installed = true
      return result.mode
    })
    if (installed) {
      check('nothing was built or downloaded into the installed chordnet', () => {
        const dir = path.join(project, 'node_modules', 'chordnet')
        const leftovers = ['target', target.binaryFile].filter((name) => fs.existsSync(path.join(dir, name)))
        if (leftovers.length) throw new Error(`found ${leftovers.join(', ')}`)
      })
      check('two ChordSockets set/get through the installed copy (platform package binary)', () => {
        const { binary, seen } = runSmoke(runtime, project, env)
        expectRuntime(seen)
        const expected = path.join('node_modules', target.packageName, target.binaryFile)
        if (!binary.endsWith(expected)) throw new Error(`loaded ${binary}, expected …/${expected}`)
        return `${path.relative(project, binary)} on ${seen}`
      })
    }
  }

  // 3. Root alone + a local prebuild tarball: the prebuild-install path.
  {
    const prebuilds = path.join(scratch, `${target.suffix}-prebuilds`)
    fs.mkdirSync(prebuilds, { recursive: true })
    const project = emptyProject(scratch, `${target.suffix}-with-prebuild`)
    let installed = false
    await checkAsync(`npm install --offline of the root with a local ${path.basename(prebuildTarball)} (no cargo)`, async () => {
      fs.copyFileSync(prebuildTarball, path.join(prebuilds, path.basename(prebuildTarball)))
      const result = install(runtime, project, [rootTarball], userEnv(runtime, { npm_config_chordnet_local_prebuilds: prebuilds }), log)
      if (result.status !== 0) throw new Error(`exit ${result.status}:\n    ${lastLines(result.output)}`)
      if (/building the native addon with cargo/.test(result.output)) throw new Error('install.js built from source')
      installed = true
      return result.mode
    })
    if (installed) {
      check('two ChordSockets set/get through the installed copy (prebuilt binary in the package root)', () => {
        const { binary, seen } = runSmoke(runtime, project, env)
        expectRuntime(seen)
        const expected = path.join('node_modules', 'chordnet', target.binaryFile)
        if (!binary.endsWith(expected)) throw new Error(`loaded ${binary}, expected …/${expected}`)
        return path.relative(project, binary)
      })
    }
  }

  // 4. Root alone, no binary anywhere, no cargo: a clear failure.
  {
    const project = emptyProject(scratch, `${target.suffix}-without-binary`)
    const empty = path.join(scratch, `${target.suffix}-no-prebuilds`)
    fs.mkdirSync(empty, { recursive: true })
    check('without any binary and without cargo, the install fails naming the platform and what to do', () => {
      const result = install(runtime, project, [rootTarball], userEnv(runtime, { npm_config_chordnet_local_prebuilds: empty }), log)
      if (result.status === 0) throw new Error('npm install succeeded')
      const wanted = [`no prebuilt binary fits ${target.suffix}`, 'cargo is not on PATH', target.packageName, 'rustup.rs']
      const missing = wanted.filter((text) => !result.output.includes(text))
      if (missing.length) throw new Error(`the message lacks ${missing.join(', ')}:\n    ${lastLines(result.output)}`)
      const leftover = path.join(project, 'node_modules', 'chordnet', target.binaryFile)
      if (fs.existsSync(leftover)) throw new Error(`a partial ${target.binaryFile} was left behind`)
    })
  }
}

/** `node scripts/test-package.js`: this machine's target, from ./chordnet.<suffix>.node. */
async function hostMain(scratch, recorder) {
  const { check } = recorder
  const target = platforms.targetForSuffix(platforms.currentSuffix())
  if (!target) throw new Error(`this machine (${platforms.currentSuffix()}) is not one of package.json napi.targets`)
  const built = path.join(root, target.binaryFile)
  if (!fs.existsSync(built)) throw new Error(`${target.binaryFile} is not built; run \`npm run build\` (or \`npm ci\`) first`)
  recorder.log(`platform ${target.suffix}; scratch ${scratch}`)

  const tarballs = path.join(scratch, 'tarballs')
  fs.mkdirSync(tarballs)
  const rootTarball = packRoot(scratch, tarballs, recorder)

  let platformPack
  check(`npm pack of the platform package ${target.packageName}`, () => {
    const staged = path.join(scratch, `npm-${target.suffix}`)
    fs.mkdirSync(staged)
    for (const file of fs.readdirSync(path.join(root, target.npmDir))) {
      if (!file.endsWith('.node')) fs.copyFileSync(path.join(root, target.npmDir, file), path.join(staged, file))
    }
    fs.copyFileSync(built, path.join(staged, target.binaryFile))
    platformPack = pack(staged, tarballs)
    return path.basename(platformPack.file)
  })
  if (platformPack) {
    check('platform tarball holds only its binary, package.json and README.md', () => {
      const expected = ['README.md', target.binaryFile, 'package.json'].sort()
      const files = [...platformPack.files].sort()
      if (JSON.stringify(files) !== JSON.stringify(expected)) throw new Error(`holds ${files.join(', ')}`)
    })
  }
  const prebuildTarball = path.join(tarballs, platforms.prebuildName(target, NAPI_VERSION))
  await writePrebuildTarball(built, prebuildTarball)
  if (rootTarball && platformPack) {
    await runPackageTests({ target, runtime: hostRuntime(), rootTarball, platformTarball: platformPack.file, prebuildTarball, scratch, recorder })
  }
}

/** `--dist --target <triple>`: the artifacts in dist/, run by that target's runtime. */
async function distMain(scratch, recorder, triple) {
  const target = platforms.targetForTriple(triple)
  if (!target) throw new Error(`${triple} is not in package.json napi.targets`)
  const { platformTarball, prebuildTarball } = distTarballs(target)
  const runtime = require('./cross-tools.js').ensureRuntime(target)
  recorder.log(`platform ${target.suffix}, run by ${runtime.description}; scratch ${scratch}`)
  const tarballs = path.join(scratch, 'tarballs')
  fs.mkdirSync(tarballs)
  const rootTarball = packRoot(scratch, tarballs, recorder)
  if (rootTarball) await runPackageTests({ target, runtime, rootTarball, platformTarball, prebuildTarball, scratch, recorder })
}

/** The tarballs `npm run artifacts -- --target` wrote for `target`. */
function distTarballs(target) {
  const platformTarball = path.join(root, 'dist', 'npm', `${target.packageName}-${pkg.version}.tgz`)
  const prebuildTarball = path.join(root, 'dist', 'prebuilds', platforms.prebuildName(target, NAPI_VERSION))
  for (const file of [platformTarball, prebuildTarball]) {
    if (!fs.existsSync(file)) throw new Error(`${path.relative(root, file)} is missing: run \`npm run artifacts -- --target ${target.triple}\` first`)
  }
  return { platformTarball, prebuildTarball }
}

module.exports = { runPackageTests, packRoot, createRecorder, distTarballs }

if (require.main === module) {
  const args = process.argv.slice(2)
  const keep = args.includes('--keep')
  const tripleIndex = args.indexOf('--target')
  const recorder = createRecorder()
  const started = Date.now()
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-test-package-'))
  const work = args.includes('--dist') ? distMain(scratch, recorder, args[tripleIndex + 1] || '') : hostMain(scratch, recorder)
  work
    .catch((error) => {
      recorder.results.push({ name: 'setup', ok: false })
      recorder.log(`FAIL ${error.message}`)
    })
    .then(() => {
      recorder.log(`took ${((Date.now() - started) / 1000).toFixed(1)} s`)
      if (!keep) fs.rmSync(scratch, { recursive: true, force: true })
      else recorder.log(`kept ${scratch}`)
      const failed = recorder.results.filter((result) => !result.ok).length
      process.stdout.write(`\n${recorder.results.length - failed} passed, ${failed} failed\n`)
      process.exit(failed === 0 ? 0 : 1)
    })
}
