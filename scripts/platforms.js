'use strict'
/**
 * The platform table: which prebuilt binary fits which (platform, arch, libc), and the one place
 * that knows it. The list of targets is package.json "napi.targets" (Rust triples); everything
 * else here is derived from it:
 *
 *   triple                       suffix             npm package                 prebuild-install name
 *   x86_64-unknown-linux-gnu  -> linux-x64-gnu   -> chordnet-linux-x64-gnu   -> ...-napi-v8-linux-x64.tar.gz
 *   aarch64-unknown-linux-musl-> linux-arm64-musl-> chordnet-linux-arm64-musl-> ...-napi-v8-linuxmusl-arm64.tar.gz
 *   x86_64-apple-darwin       -> darwin-x64      -> chordnet-darwin-x64      -> ...-napi-v8-darwin-x64.tar.gz
 *   x86_64-pc-windows-msvc    -> win32-x64-msvc  -> chordnet-win32-x64-msvc  -> ...-napi-v8-win32-x64.tar.gz
 *
 * The suffix rule is napi-rs's (`napi build --platform` names files `<binaryName>.<suffix>.node`).
 * Used by the TypeScript loader (ts/platform.ts), scripts/install.js, scripts/artifacts.js,
 * scripts/test-package.js, scripts/test-platforms.js and scripts/release-matrix.js. Plain
 * CommonJS with no dependencies, because it runs at install time before anything is built; it
 * is in package.json "files" so the published package has it.
 */
const fs = require('node:fs')
const path = require('node:path')

const pkg = require('../package.json')

/** Node's `process.arch` for each Rust architecture this package can be built for. */
const RUST_ARCH_TO_NODE = {
  x86_64: 'x64',
  aarch64: 'arm64',
  i686: 'ia32',
  armv7: 'arm',
  riscv64gc: 'riscv64',
  powerpc64le: 'ppc64',
  s390x: 's390x',
}

/** Node's `process.platform` for each Rust OS part of a triple. */
const RUST_OS_TO_NODE = { linux: 'linux', darwin: 'darwin', windows: 'win32', freebsd: 'freebsd' }

/**
 * Splits a Rust triple into what Node reports. A glibc version floor written the cargo-zigbuild
 * way (`aarch64-unknown-linux-gnu.2.17`) is accepted and dropped.
 */
function parseTriple(triple) {
  const bare = triple.replace(/\.\d+(\.\d+)*$/, '')
  const parts = bare.split('-')
  const arch = RUST_ARCH_TO_NODE[parts[0]]
  const osPart = parts.find((part) => RUST_OS_TO_NODE[part])
  if (!arch || !osPart) throw new Error(`unsupported target triple ${triple}`)
  const platform = RUST_OS_TO_NODE[osPart]
  const abi = platform === 'linux' ? (parts[parts.length - 1].startsWith('musl') ? 'musl' : 'gnu') : platform === 'win32' ? parts[parts.length - 1] : null
  const libc = platform === 'linux' ? (abi === 'musl' ? 'musl' : 'glibc') : null
  return { triple: bare, platform, arch, abi, libc, suffix: suffixFor({ platform, arch, libc }) }
}

/**
 * THE decision: the suffix of the binary that fits a process. `libc` matters on Linux only
 * ('musl' or 'glibc'); Windows binaries are the MSVC ones; other systems are `<platform>-<arch>`.
 */
function suffixFor({ platform, arch, libc }) {
  if (platform === 'linux') return `linux-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/**
 * The C library of a Linux process. Node's diagnostic report carries `glibcVersionRuntime` only
 * when Node runs on glibc (the same test npm uses for the `libc` field); without a report, the
 * text of /usr/bin/ldd says "musl" on musl systems. Pure: both inputs are passed in.
 */
function libcFrom(reportHeader, lddText) {
  if (reportHeader && typeof reportHeader === 'object') return reportHeader.glibcVersionRuntime ? 'glibc' : 'musl'
  if (typeof lddText === 'string') return lddText.includes('musl') ? 'musl' : 'glibc'
  return 'glibc'
}

/** The C library of this process (null off Linux). */
function currentLibc() {
  if (process.platform !== 'linux') return null
  let header = null
  try {
    header = process.report && process.report.getReport().header
  } catch {
    header = null
  }
  let ldd
  if (!header) {
    try {
      ldd = fs.readFileSync('/usr/bin/ldd', 'utf8')
    } catch {
      ldd = undefined
    }
  }
  return libcFrom(header, ldd)
}

/** What this process is: { platform, arch, libc }. */
function currentPlatform() {
  return { platform: process.platform, arch: process.arch, libc: currentLibc() }
}

/** Every declared target, in package.json order, with its derived names. */
function declaredTargets(packageJson = pkg) {
  const triples = (packageJson.napi && packageJson.napi.targets) || []
  return triples.map((triple) => describe(parseTriple(triple), packageJson))
}

function binaryNameOf(packageJson) {
  return (packageJson.napi && packageJson.napi.binaryName) || packageJson.name
}

function describe(target, packageJson = pkg) {
  const binaryName = binaryNameOf(packageJson)
  return {
    ...target,
    packageName: `${packageJson.name}-${target.suffix}`,
    binaryFile: `${binaryName}.${target.suffix}.node`,
    npmDir: path.posix.join('npm', target.suffix),
  }
}

/** The declared target with this suffix, or null when none is published for it. */
function targetForSuffix(suffix, packageJson = pkg) {
  return declaredTargets(packageJson).find((target) => target.suffix === suffix) || null
}

/** The declared target for a triple (with or without a glibc floor), or null. */
function targetForTriple(triple, packageJson = pkg) {
  const bare = triple.replace(/\.\d+(\.\d+)*$/, '')
  return declaredTargets(packageJson).find((target) => target.triple === bare) || null
}

/**
 * File name prebuild-install asks for:
 * {name}-v{version}-{runtime}-v{abi}-{platform}{libc}-{arch}.tar.gz, where {libc} is "musl" on
 * musl Linux and empty everywhere else (prebuild-install's own rule).
 */
function prebuildName({ platform, arch, libc }, napiVersion, packageJson = pkg) {
  const libcPart = platform === 'linux' && libc === 'musl' ? 'musl' : ''
  return `${packageJson.name}-v${packageJson.version}-napi-v${napiVersion}-${platform}${libcPart}-${arch}.tar.gz`
}

function describePlatform({ platform, arch, libc }) {
  return `${platform} ${arch}${platform === 'linux' ? ` (${libc === 'musl' ? 'musl' : 'glibc'})` : ''}`
}

/**
 * What to tell a user who has no binary for `suffix`: whether a prebuilt one exists for this
 * platform (then the platform package is missing from the install) or not (then build from
 * source, with the list of platforms that do have one).
 */
function missingBinaryAdvice(suffix, packageJson = pkg) {
  const target = targetForSuffix(suffix, packageJson)
  if (target) {
    return (
      `A prebuilt binary for ${suffix} is published as the npm package ${target.packageName}, an optional dependency of ` +
      `${packageJson.name}; it was not installed. Reinstall without --omit=optional / --no-optional (and let npm see the ` +
      `real platform: no --force, --os, --cpu or --libc), or add it yourself: npm install ${target.packageName}@${packageJson.version}. ` +
      'Or install Rust (https://rustup.rs) and reinstall to build from source.'
    )
  }
  const known = declaredTargets(packageJson).map((t) => t.suffix).join(', ')
  return (
    `No prebuilt binary is published for ${suffix} (there are prebuilt binaries for ${known}). ` +
    'Install Rust (https://rustup.rs) and reinstall: the package then builds the addon from source.'
  )
}

module.exports = {
  parseTriple,
  suffixFor,
  libcFrom,
  currentLibc,
  currentPlatform,
  declaredTargets,
  targetForSuffix,
  targetForTriple,
  prebuildName,
  describePlatform,
  missingBinaryAdvice,
  currentSuffix: () => suffixFor(currentPlatform()),
}
