#!/usr/bin/env node
'use strict'
/**
 * Install step. Makes sure the package has (1) its compiled TypeScript layer and (2) a native
 * binary, trying in order: the platform package (optionalDependencies), a binary already in
 * the package folder, a prebuilt release tarball (prebuild-install), and finally a build from
 * source with cargo. Each binary is written to a temporary name and renamed into place, so a
 * failed step never leaves a half-written file; if every way fails, the install fails with a
 * message saying what to do.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const platforms = require('./platforms.js')

const root = path.resolve(__dirname, '..')
/** How long a prebuilt download may take before we build from source instead. */
const DOWNLOAD_TIMEOUT_MS = 30_000

function log(message) {
  process.stderr.write(`chordnet: ${message}\n`)
}

/** Which binary fits this process: the one decision table, shared with the loader. */
function platformSuffix() {
  return platforms.currentSuffix()
}

function buildTypeScript() {
  if (fs.existsSync(path.join(root, 'lib', 'index.js'))) return
  const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  if (!fs.existsSync(path.join(root, 'ts')) || !fs.existsSync(tsc)) {
    throw new Error('lib/ is missing and TypeScript is not installed to build it; install the published package or run `npm install` in a full checkout')
  }
  log('compiling the TypeScript layer (ts/ -> lib/)')
  if (!require('./build-ts').buildTs()) throw new Error('tsc failed')
}

function binaryUsable(file) {
  if (!fs.existsSync(file)) return false
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)})`], { stdio: 'ignore' })
  return probe.status === 0
}

/** The platform package (an optionalDependency) is installed and its binary loads here. */
function platformPackagePresent(suffix) {
  let file
  try {
    file = require.resolve(`chordnet-${suffix}`, { paths: [root] })
  } catch {
    return false
  }
  if (binaryUsable(file)) return true
  log(`chordnet-${suffix} is installed but its binary does not load; trying the other ways`)
  return false
}

function tryPrebuild(target) {
  const bin = (() => {
    try {
      return require.resolve('prebuild-install/bin.js', { paths: [root] })
    } catch {
      return null
    }
  })()
  if (!bin || process.env.CHORDNET_BUILD_FROM_SOURCE) return false
  log('no platform package; trying a prebuilt release tarball (prebuild-install)')
  const result = spawnSync(process.execPath, [bin, '--runtime', 'napi', '--target', '8', '--verbose'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'pipe'],
    timeout: DOWNLOAD_TIMEOUT_MS,
  })
  if (result.status === 0 && binaryUsable(target)) return true
  // A failed or interrupted extraction may leave a partial file; never leave one behind.
  if (fs.existsSync(target) && !binaryUsable(target)) fs.rmSync(target, { force: true })
  const why = result.error ? result.error.message : (result.stderr || '').toString().trim().split('\n').pop()
  log(`no prebuilt binary (${why || 'download failed'}); building from source`)
  return false
}

function libraryName() {
  if (process.platform === 'win32') return 'chordnet_node.dll'
  if (process.platform === 'darwin') return 'libchordnet_node.dylib'
  return 'libchordnet_node.so'
}

function buildFromSource(target) {
  const cargo = spawnSync('cargo', ['--version'], { stdio: 'ignore' })
  if (cargo.error || cargo.status !== 0) {
    const suffix = platformSuffix()
    throw new Error(
      `no prebuilt binary fits ${suffix} (${platforms.describePlatform(platforms.currentPlatform())}, Node ${process.versions.node}) ` +
        `and cargo is not on PATH to build one.\n${platforms.missingBinaryAdvice(suffix)}`,
    )
  }
  if (!fs.existsSync(path.join(root, 'Cargo.toml'))) throw new Error('the Rust sources are not in this package; cannot build from source')
  log('building the native addon with cargo (release); this takes a minute or two')
  const result = spawnSync('cargo', ['build', '--release', '--lib', '-p', 'chordnet-node'], { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) throw new Error('cargo build failed (see the output above)')
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target')
  const built = path.join(targetDir, 'release', libraryName())
  const temporary = `${target}.${process.pid}.tmp`
  fs.copyFileSync(built, temporary)
  fs.renameSync(temporary, target)
  // In an installed copy (under node_modules), cargo's ~200 MB target/ is of no further use;
  // a checkout keeps it as its build cache, and a CARGO_TARGET_DIR is the user's to manage.
  if (!process.env.CARGO_TARGET_DIR && root.split(path.sep).includes('node_modules')) {
    fs.rmSync(targetDir, { recursive: true, force: true })
  }
}

function main() {
  buildTypeScript()
  const suffix = platformSuffix()
  if (platformPackagePresent(suffix)) return
  const target = path.join(root, `chordnet.${suffix}.node`)
  if (binaryUsable(target) && !process.env.CHORDNET_BUILD_FROM_SOURCE) return
  if (tryPrebuild(target)) return
  buildFromSource(target)
  if (!binaryUsable(target)) throw new Error(`the built binary ${target} does not load`)
}

try {
  main()
} catch (error) {
  log(`install failed: ${error.message}`)
  process.exit(1)
}
