#!/usr/bin/env node
'use strict'
/**
 * `npm run artifacts`: the release artifacts of one or more targets of package.json
 * "napi.targets", built on this machine. For each target it writes:
 *
 *   dist/build/<suffix>/chordnet.<suffix>.node                   the binary, as napi build made it
 *   npm/<suffix>/chordnet.<suffix>.node                          the platform package, filled
 *   dist/npm/chordnet-<suffix>-<version>.tgz                     its `npm pack` tarball
 *   dist/prebuilds/chordnet-v<version>-napi-v8-<platform><libc>-<arch>.tar.gz
 *                                                                the prebuild-install tarball
 *   dist/SHA256SUMS                                              checksums of the tarballs
 *
 *   npm run artifacts                          this machine's own target
 *   npm run artifacts -- --target <triple>     one target (repeatable)
 *   npm run artifacts -- --all                 every declared target this machine can build
 *   --skip-build                               reuse dist/build/<suffix>/ from an earlier run
 *
 * How a target is built (scripts/cross-tools.js decides, and installs what is missing): Linux
 * targets through cargo-zigbuild (`napi build --cross-compile`), gnu ones against glibc 2.17 so
 * one binary serves old and new distributions, musl ones dynamically linked (napi adds
 * `-C target-feature=-crt-static`) so a musl Node can load them; macOS targets through
 * cargo-zigbuild from Linux, or natively on a Mac; Windows MSVC natively on Windows only.
 *
 * Every binary is checked before it is packed: its format, CPU, C library and glibc floor and
 * the N-API registration export are read from its bytes (scripts/binary-check.js); the one for
 * this machine is also loaded. The prebuild tarball holds `chordnet.<suffix>.node` at its top
 * level: prebuild-install extracts into the package root, where the loader and install.js look.
 *
 * dist/ and npm/*\/*.node are gitignored. Every file is written under a temporary name and
 * renamed into place. scripts/test-package.js reuses writePrebuildTarball and tarEntries.
 */
const { spawnSync } = require('node:child_process')
const crypto = require('node:crypto')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const zlib = require('node:zlib')
const platforms = require('./platforms.js')
const { checkBinary, summary } = require('./binary-check.js')

const root = path.resolve(__dirname, '..')
const pkg = require(path.join(root, 'package.json'))
const npmCli = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const napiCli = path.join(root, 'node_modules', '@napi-rs', 'cli', 'dist', 'cli.js')

function log(message) {
  process.stdout.write(`artifacts: ${message}\n`)
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

/** Parses argv into the list of targets to build and the options. */
function parseArgs(argv) {
  const options = { skipBuild: argv.includes('--skip-build'), all: argv.includes('--all'), triples: [] }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--target') {
      if (!argv[i + 1]) throw new Error('--target needs a triple')
      options.triples.push(argv[++i])
    } else if (argv[i].startsWith('--target=')) options.triples.push(argv[i].slice('--target='.length))
  }
  return options
}

function selectTargets(options) {
  const declared = platforms.declaredTargets()
  if (options.all) return declared
  if (options.triples.length === 0) {
    const own = platforms.targetForSuffix(platforms.currentSuffix())
    if (!own) throw new Error(`this machine (${platforms.currentSuffix()}) is not one of package.json napi.targets; pass --target`)
    return [own]
  }
  return options.triples.map((triple) => {
    const target = platforms.targetForTriple(triple)
    if (!target) throw new Error(`${triple} is not in package.json napi.targets (${declared.map((t) => t.triple).join(', ')})`)
    return target
  })
}

/** Builds `target` into dist/build/<suffix>/ and returns the binary's path. */
function build(target) {
  const crossTools = require('./cross-tools.js')
  crossTools.ensureBuildTools(target)
  const outDir = path.join(root, 'dist', 'build', target.suffix)
  fs.rmSync(outDir, { recursive: true, force: true })
  fs.mkdirSync(outDir, { recursive: true })
  const mode = crossTools.buildMode(target)
  const args = [napiCli, 'build', '--platform', '--release', '--target', crossTools.buildTriple(target), '--no-js', '--output-dir', outDir]
  if (mode === 'zig') args.push('--cross-compile')
  log(`building ${target.triple} (${mode === 'zig' ? `cargo-zigbuild, --target ${crossTools.buildTriple(target)}` : 'cargo'})`)
  // No shell: process.execPath may hold spaces (C:\Program Files\nodejs\node.exe).
  run(process.execPath, args, { env: crossTools.buildEnv(), shell: false })
  return path.join(outDir, target.binaryFile)
}

/** Problems of a built binary for `target`; the host's own binary must also load. */
function verify(file, target, hostSuffix) {
  if (target.platform === 'win32') {
    // Windows binaries are built on Windows only, where they are loaded (below).
    if (target.suffix !== hostSuffix) return [`${target.suffix} binaries are checked by loading them on Windows`]
  } else {
    const { problems, info } = checkBinary(file, target)
    if (info) log(`  ${path.relative(root, file)}: ${summary(info)}`)
    if (problems.length) return problems
  }
  if (target.suffix === hostSuffix) {
    const loadError = loads(file)
    if (loadError) return [`does not load here: ${loadError}`]
  }
  return []
}

async function artifactsFor(target, options, hostSuffix) {
  const platformDir = path.join(root, target.npmDir)
  const platformPkgFile = path.join(platformDir, 'package.json')
  if (!fs.existsSync(platformPkgFile)) throw new Error(`no platform package ${target.npmDir}/`)
  const platformPkg = JSON.parse(fs.readFileSync(platformPkgFile, 'utf8'))
  if (platformPkg.name !== target.packageName) throw new Error(`${target.npmDir}/package.json is named ${platformPkg.name}, expected ${target.packageName}`)
  if (platformPkg.version !== pkg.version) throw new Error(`${target.npmDir} is at ${platformPkg.version}, root at ${pkg.version}: run \`npm run version:sync\` first`)
  if (platformPkg.main !== target.binaryFile) throw new Error(`${target.npmDir}/package.json main is ${platformPkg.main}, expected ${target.binaryFile}`)

  // 1. The binary, checked.
  const built = options.skipBuild ? path.join(root, 'dist', 'build', target.suffix, target.binaryFile) : build(target)
  if (!fs.existsSync(built)) throw new Error(`${path.relative(root, built)} not found (drop --skip-build to build it)`)
  const problems = verify(built, target, hostSuffix)
  if (problems.length) throw new Error(`${path.relative(root, built)} ${problems.join('; ')}`)

  // 2. The platform package, filled, and its npm tarball.
  const filled = path.join(platformDir, target.binaryFile)
  copyAtomic(built, filled)
  log(`filled ${target.npmDir}/${target.binaryFile}`)
  const npmOut = path.join(root, 'dist', 'npm')
  fs.mkdirSync(npmOut, { recursive: true })
  const packed = spawnSync(npmCli, ['pack', '--json', '--pack-destination', npmOut], {
    cwd: platformDir,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: process.platform === 'win32',
  })
  if (packed.status !== 0) throw new Error(`npm pack in ${target.npmDir} failed`)
  const packInfo = JSON.parse(packed.stdout)[0]
  const packedFiles = packInfo.files.map((file) => file.path).sort()
  const expectedFiles = [target.binaryFile, 'README.md', 'package.json'].sort()
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
    const tarball = path.join(prebuildOut, platforms.prebuildName(target, napiVersion))
    await writePrebuildTarball(built, tarball)
    const { names, scratch } = await tarEntries(tarball)
    try {
      if (names.length !== 1 || names[0] !== target.binaryFile) throw new Error(`${tarball} holds ${names.join(', ')}; expected ${target.binaryFile}`)
      const extracted = path.join(scratch, target.binaryFile)
      if (!fs.readFileSync(extracted).equals(fs.readFileSync(built))) throw new Error(`the binary extracted from ${tarball} differs from the built one`)
      if (target.suffix === hostSuffix) {
        const extractError = loads(extracted)
        if (extractError) throw new Error(`the binary extracted from ${tarball} does not load: ${extractError}`)
      }
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true })
    }
    tarballs.push(tarball)
    log(`wrote dist/prebuilds/${path.basename(tarball)} (${target.binaryFile} at the top level)`)
  }
  return tarballs
}

/** Merges the tarballs' checksums into dist/SHA256SUMS (one line per file name, newest wins). */
function writeSums(tarballs) {
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
}

async function main() {
  const options = parseArgs(process.argv.slice(2))
  const hostSuffix = platforms.currentSuffix()
  const crossTools = require('./cross-tools.js')
  const failures = []
  const notBuilt = []
  for (const target of selectTargets(options)) {
    const reason = crossTools.unsupportedReason(target)
    if (reason && options.all) {
      notBuilt.push(`${target.suffix}: ${reason}`)
      log(`${target.suffix}: not built here: ${reason}`)
      continue
    }
    try {
      const tarballs = await artifactsFor(target, options, hostSuffix)
      writeSums(tarballs)
      log(`${target.suffix} done: ${tarballs.map((file) => path.relative(root, file)).join(', ')}`)
    } catch (error) {
      failures.push(target.suffix)
      process.stderr.write(`artifacts: ${target.suffix}: ${error.message}\n`)
    }
  }
  for (const line of notBuilt) log(`not built here: ${line}`)
  if (failures.length) throw new Error(`failed for ${failures.join(', ')}`)
}

module.exports = { writePrebuildTarball, tarEntries }

if (require.main === module) {
  main().catch((error) => {
    process.stderr.write(`artifacts: ${error.message}\n`)
    process.exit(1)
  })
}
