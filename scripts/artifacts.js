#!/usr/bin/env node
'use strict'
/**
 * `npm run artifacts`: the release artifacts of THIS machine's platform (run it once per entry of
 * the CI build matrix). Writes:
 *
 *   npm/<suffix>/chordnet.<suffix>.node                         the platform package, filled
 *   dist/npm/chordnet-<suffix>-<version>.tgz                     its `npm pack` tarball
 *   dist/prebuilds/chordnet-v<version>-napi-v8-<platform><libc>-<arch>.tar.gz
 *                                                                the prebuild-install tarball
 *   dist/SHA256SUMS                                              checksums of the two tarballs
 *
 * The prebuild tarball holds `chordnet.<suffix>.node` at its top level: prebuild-install extracts
 * into the package root, which is exactly where the loader (lib/native.js) and
 * scripts/install.js look for a local binary.
 *
 * scripts/test-package.js reuses platformSuffix, prebuildName and writePrebuildTarball.
 *
 * Options: --skip-build  use the existing ./chordnet.<suffix>.node instead of running
 *                        `npm run build:native` (a release build; incremental when up to date).
 * dist/ and npm/*\/*.node are gitignored. Every file is written under a temporary name and
 * renamed into place.
 */
const { spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')

const root = path.resolve(__dirname, '..')
const pkg = require(path.join(root, 'package.json'))
const skipBuild = process.argv.includes('--skip-build')
const npmCli = process.platform === 'win32' ? 'npm.cmd' : 'npm'

function log(message) {
  process.stdout.write(`artifacts: ${message}\n`)
}

function isMusl() {
  try {
    return !process.report.getReport().header.glibcVersionRuntime
  } catch {
    return false
  }
}

/** napi-rs suffix (same rule as scripts/install.js and ts/native.ts). */
function platformSuffix() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** File name prebuild-install asks for: {name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}.tar.gz */
function prebuildName(napiVersion) {
  const libc = process.platform === 'linux' && isMusl() ? 'musl' : ''
  return `${pkg.name}-v${pkg.version}-napi-v${napiVersion}-${process.platform}${libc}-${process.arch}.tar.gz`
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32', ...options })
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.error ? result.error.message : `exit ${result.status}`})`)
  return result
}

function copyAtomic(from, to) {
  const temporary = `${to}.${process.pid}.tmp`
  fs.copyFileSync(from, temporary)
  fs.chmodSync(temporary, 0o755)
  fs.renameSync(temporary, to)
}

function loads(file) {
  const probe = spawnSync(process.execPath, ['-e', `const b = require(${JSON.stringify(file)}); if (typeof b.startNode !== 'function') process.exit(2)`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  return probe.status === 0 ? null : (probe.stderr || '').toString().trim().split('\n')[0] || `exit ${probe.status}`
}

/** gzip'd tar holding `file` at the top level, written with tar-fs (prebuild-install's own extractor). */
async function writePrebuildTarball(file, destination) {
  const prebuildDir = path.dirname(require.resolve('prebuild-install/package.json', { paths: [root] }))
  const tar = require(require.resolve('tar-fs', { paths: [prebuildDir] }))
  const { pipeline } = require('node:stream/promises')
  const temporary = `${destination}.${process.pid}.tmp`
  await pipeline(
    tar.pack(path.dirname(file), { entries: [path.basename(file)], map: (header) => ({ ...header, uid: 0, gid: 0, uname: '', gname: '', mode: 0o755 }) }),
    zlib.createGzip({ level: 9 }),
    fs.createWriteStream(temporary),
  )
  fs.renameSync(temporary, destination)
}

/** Lists a tarball's entries with tar-fs, to check the layout we just wrote. */
async function tarEntries(tarball) {
  const prebuildDir = path.dirname(require.resolve('prebuild-install/package.json', { paths: [root] }))
  const tar = require(require.resolve('tar-fs', { paths: [prebuildDir] }))
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'chordnet-artifacts-'))
  const names = []
  try {
    const { pipeline } = require('node:stream/promises')
    await pipeline(fs.createReadStream(tarball), zlib.createGunzip(), tar.extract(scratch).on('entry', (header) => names.push(header.name)))
    return { names, scratch }
  } catch (error) {
    fs.rmSync(scratch, { recursive: true, force: true })
    throw error
  }
}

function sha256(file) {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex')
}

async function main() {
  const suffix = platformSuffix()
  const binaryName = `${pkg.binary?.module_name || pkg.napi?.binaryName || pkg.name}.${suffix}.node`
  const platformDir = path.join(root, 'npm', suffix)
  const platformPkgFile = path.join(platformDir, 'package.json')
  if (!fs.existsSync(platformPkgFile)) throw new Error(`no platform package npm/${suffix}/ for this machine`)
  const platformPkg = JSON.parse(fs.readFileSync(platformPkgFile, 'utf8'))
  if (platformPkg.version !== pkg.version) throw new Error(`npm/${suffix} is at ${platformPkg.version}, root at ${pkg.version}: run \`npm run version:sync\` first`)
  if (platformPkg.main !== binaryName) throw new Error(`npm/${suffix}/package.json main is ${platformPkg.main}, expected ${binaryName}`)

  // 1. The binary.
  const built = path.join(root, binaryName)
  if (!skipBuild) {
    log('building the native addon (npm run build:native)')
    run(npmCli, ['run', 'build:native'])
  }
  if (!fs.existsSync(built)) throw new Error(`${binaryName} not found (run \`npm run build:native\`, or drop --skip-build)`)
  const loadError = loads(built)
  if (loadError) throw new Error(`${binaryName} does not load: ${loadError}`)

  // 2. The platform package, filled, and its npm tarball.
  const filled = path.join(platformDir, binaryName)
  copyAtomic(built, filled)
  log(`filled npm/${suffix}/${binaryName}`)
  const npmOut = path.join(root, 'dist', 'npm')
  fs.mkdirSync(npmOut, { recursive: true })
  const packed = spawnSync(npmCli, ['pack', '--json', '--pack-destination', npmOut], {
    cwd: platformDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  })
  if (packed.status !== 0) throw new Error(`npm pack in npm/${suffix} failed`)
  const packInfo = JSON.parse(packed.stdout)[0]
  const packedFiles = packInfo.files.map((file) => file.path).sort()
  const expectedFiles = [binaryName, 'README.md', 'package.json'].sort()
  if (JSON.stringify(packedFiles) !== JSON.stringify(expectedFiles)) {
    throw new Error(`platform tarball holds ${packedFiles.join(', ')}; expected ${expectedFiles.join(', ')}`)
  }
  const platformTarball = path.join(npmOut, packInfo.filename)
  log(`packed dist/npm/${packInfo.filename} (${packedFiles.join(', ')})`)

  // 3. The prebuild-install tarball, one per N-API version the package declares.
  const prebuildOut = path.join(root, 'dist', 'prebuilds')
  fs.mkdirSync(prebuildOut, { recursive: true })
  const tarballs = [platformTarball]
  for (const napiVersion of pkg.binary?.napi_versions || [8]) {
    const tarball = path.join(prebuildOut, prebuildName(napiVersion))
    await writePrebuildTarball(built, tarball)
    const { names, scratch } = await tarEntries(tarball)
    try {
      if (names.length !== 1 || names[0] !== binaryName) throw new Error(`${tarball} holds ${names.join(', ')}; expected ${binaryName}`)
      const extractError = loads(path.join(scratch, binaryName))
      if (extractError) throw new Error(`the binary extracted from ${tarball} does not load: ${extractError}`)
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true })
    }
    tarballs.push(tarball)
    log(`wrote dist/prebuilds/${path.basename(tarball)} (${binaryName} at the top level)`)
  }

  // 4. Checksums (appended per platform; one line per file name, newest wins).
  const sumsFile = path.join(root, 'dist', 'SHA256SUMS')
  const sums = new Map()
  if (fs.existsSync(sumsFile)) {
    for (const line of fs.readFileSync(sumsFile, 'utf8').split('\n')) {
      const match = /^([0-9a-f]{64}) {2}(.+)$/.exec(line)
      if (match) sums.set(match[2], match[1])
    }
  }
  for (const tarball of tarballs) sums.set(path.relative(path.join(root, 'dist'), tarball).split(path.sep).join('/'), sha256(tarball))
  const sumsText = [...sums].sort(([a], [b]) => a.localeCompare(b)).map(([file, hash]) => `${hash}  ${file}\n`).join('')
  fs.writeFileSync(`${sumsFile}.${process.pid}.tmp`, sumsText)
  fs.renameSync(`${sumsFile}.${process.pid}.tmp`, sumsFile)
  log(`done: ${tarballs.map((file) => path.relative(root, file)).join(', ')}`)
}

module.exports = { platformSuffix, prebuildName, writePrebuildTarball, tarEntries }

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`artifacts: ${error.message}\n`)
    process.exit(1)
  })
}
