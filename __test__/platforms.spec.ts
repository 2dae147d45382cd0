import test from 'ava'
import { readdirSync, readFileSync, existsSync } from 'node:fs'
import { join } from 'node:path'
import { platformSuffix, libcFrom, declaredTargets, targetForSuffix, missingBinaryAdvice } from '../ts/platform'

// The platform decision table (scripts/platforms.js, typed by ts/platform.ts) and everything
// that must agree with it: the npm/ platform packages, prebuild-install names, the release
// matrix and workflow, and the binary reader. Pure and fast; the builds and runs of the other
// targets are `npm run test:platforms`.

const root = join(__dirname, '..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
// eslint-disable-next-line @typescript-eslint/no-require-imports
const platforms = require('../scripts/platforms.js')
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { checkBinary, inspect } = require('../scripts/binary-check.js')
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { matrices, RUNNERS } = require('../scripts/release-matrix.js')

test('platforms: (platform, arch, libc) -> suffix decision table', (t) => {
  const table: [string, string, 'glibc' | 'musl' | null, string][] = [
    ['linux', 'x64', 'glibc', 'linux-x64-gnu'],
    ['linux', 'x64', 'musl', 'linux-x64-musl'],
    ['linux', 'arm64', 'glibc', 'linux-arm64-gnu'],
    ['linux', 'arm64', 'musl', 'linux-arm64-musl'],
    ['darwin', 'x64', null, 'darwin-x64'],
    ['darwin', 'arm64', null, 'darwin-arm64'],
    ['win32', 'x64', null, 'win32-x64-msvc'],
    // Platforms with no prebuilt binary still get a suffix (the loader's local-build name).
    ['win32', 'arm64', null, 'win32-arm64-msvc'],
    ['linux', 'riscv64', 'glibc', 'linux-riscv64-gnu'],
    ['freebsd', 'x64', null, 'freebsd-x64'],
  ]
  for (const [platform, arch, libc, suffix] of table) {
    t.is(platformSuffix({ platform, arch, libc }), suffix, `${platform} ${arch} ${libc}`)
  }
  t.is(targetForSuffix('linux-riscv64-gnu'), null)
  t.is(targetForSuffix('freebsd-x64'), null)
})

test('platforms: libc comes from the diagnostic report, else from /usr/bin/ldd', (t) => {
  t.is(libcFrom({ glibcVersionRuntime: '2.36' }), 'glibc')
  t.is(libcFrom({ glibcVersionRuntime: undefined }), 'musl')
  t.is(libcFrom({}), 'musl')
  // The report wins over the file (a musl Node on a glibc machine is musl).
  t.is(libcFrom({}, 'GNU C Library (Debian GLIBC 2.36) ldd'), 'musl')
  t.is(libcFrom(null, '#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n'), 'musl')
  t.is(libcFrom(null, 'ldd (Debian GLIBC 2.36-9) 2.36'), 'glibc')
  t.is(libcFrom(null, undefined), 'glibc')
})

test('platforms: this process resolves to the suffix of the binary the loader loaded', async (t) => {
  await import('../ts/index')
  const loaded = Object.keys(require.cache).find((file) => file.endsWith('.node'))
  t.truthy(loaded)
  t.true(loaded!.endsWith(`.${platformSuffix()}.node`), `${loaded} vs ${platformSuffix()}`)
})

test('platforms: every napi target parses to the suffix napi-rs gives it', (t) => {
  const expected: Record<string, string> = {
    'x86_64-unknown-linux-gnu': 'linux-x64-gnu',
    'aarch64-unknown-linux-gnu': 'linux-arm64-gnu',
    'x86_64-unknown-linux-musl': 'linux-x64-musl',
    'aarch64-unknown-linux-musl': 'linux-arm64-musl',
    'x86_64-apple-darwin': 'darwin-x64',
    'aarch64-apple-darwin': 'darwin-arm64',
    'x86_64-pc-windows-msvc': 'win32-x64-msvc',
  }
  const targets = declaredTargets()
  t.deepEqual(targets.map((target) => target.triple), pkg.napi.targets)
  for (const target of targets) {
    t.is(target.suffix, expected[target.triple], target.triple)
    t.is(platformSuffix(target), target.suffix, `decision table round trip for ${target.triple}`)
  }
  // A glibc floor written the cargo-zigbuild way names the same target.
  t.is(platforms.parseTriple('aarch64-unknown-linux-gnu.2.17').suffix, 'linux-arm64-gnu')
  t.throws(() => platforms.parseTriple('mips-unknown-linux-gnu'))
})

test('platforms: npm/ holds exactly one package per target, with matching os/cpu/libc/main', (t) => {
  const targets = declaredTargets()
  const dirs = readdirSync(join(root, 'npm')).filter((name) => existsSync(join(root, 'npm', name, 'package.json'))).sort()
  t.deepEqual(dirs, targets.map((target) => target.suffix).sort())
  for (const target of targets) {
    const platformPkg = JSON.parse(readFileSync(join(root, target.npmDir, 'package.json'), 'utf8'))
    t.is(platformPkg.name, target.packageName)
    t.is(platformPkg.version, pkg.version)
    t.is(platformPkg.main, target.binaryFile)
    t.deepEqual(platformPkg.files, [target.binaryFile])
    t.deepEqual(platformPkg.os, [target.platform])
    t.deepEqual(platformPkg.cpu, [target.arch])
    if (target.platform === 'linux') t.deepEqual(platformPkg.libc, [target.libc], target.suffix)
    else t.is(platformPkg.libc, undefined, target.suffix)
  }
})

test('platforms: prebuild-install tarball names', (t) => {
  const name = (suffix: string) => platforms.prebuildName(targetForSuffix(suffix), 8)
  const prefix = `chordnet-v${pkg.version}-napi-v8-`
  t.is(name('linux-x64-gnu'), `${prefix}linux-x64.tar.gz`)
  t.is(name('linux-arm64-musl'), `${prefix}linuxmusl-arm64.tar.gz`)
  t.is(name('darwin-arm64'), `${prefix}darwin-arm64.tar.gz`)
  t.is(name('win32-x64-msvc'), `${prefix}win32-x64.tar.gz`)
})

test('platforms: the missing-binary advice names the platform and what to do', (t) => {
  const declared = missingBinaryAdvice('linux-arm64-musl')
  t.regex(declared, /linux-arm64-musl/)
  t.regex(declared, new RegExp(`npm install chordnet-linux-arm64-musl@${pkg.version.replace(/\./g, '\\.')}`))
  t.regex(declared, /--omit=optional/)
  const undeclared = missingBinaryAdvice('linux-riscv64-gnu')
  t.regex(undeclared, /No prebuilt binary is published for linux-riscv64-gnu/)
  t.regex(undeclared, /rustup\.rs/)
  for (const target of declaredTargets()) t.true(undeclared.includes(target.suffix), target.suffix)
})

test('platforms: the release matrix covers every target once, from package.json alone', (t) => {
  const { build, test: tests } = matrices()
  t.deepEqual(build.include.map((row: { target: string }) => row.target), pkg.napi.targets)
  t.deepEqual(tests.include.map((row: { target: string }) => row.target), pkg.napi.targets)
  t.deepEqual(Object.keys(RUNNERS).sort(), [...pkg.napi.targets].sort())
  // A target without a runner is an error, not a silently smaller matrix.
  t.throws(() => matrices([...declaredTargets(), platforms.parseTriple('riscv64gc-unknown-linux-gnu')]), { message: /no runner for riscv64gc/ })
  // The workflow takes its matrices from the script and names no target itself.
  const workflow = readFileSync(join(root, '.github', 'workflows', 'release.yml'), 'utf8')
  t.regex(workflow, /node scripts\/release-matrix\.js/)
  t.regex(workflow, /fromJSON\(needs\.plan\.outputs\.build\)/)
  t.regex(workflow, /fromJSON\(needs\.plan\.outputs\.test\)/)
  for (const triple of pkg.napi.targets) t.false(workflow.includes(triple), `release.yml hardcodes ${triple}`)
})

test('binary-check: reads the host binary and rejects a mismatched target or a non-binary', (t) => {
  const target = targetForSuffix(platformSuffix())!
  const file = join(root, target.binaryFile)
  if (target.platform === 'win32') {
    // binary-check reads ELF and Mach-O only; a Windows binary is checked by loading it.
    t.throws(() => inspect(file), { message: /PE \(Windows\)/ })
    return
  }
  const info = inspect(file)
  t.is(info.format, target.platform === 'darwin' ? 'macho' : 'elf')
  t.is(info.arch, target.arch)
  t.true(info.exports.includes('napi_register_module_v1'))
  const other = declaredTargets().find((candidate) => candidate.platform === target.platform && candidate.arch !== target.arch)!
  const wrongArch = checkBinary(file, other)
  t.true(wrongArch.problems.some((problem: string) => /expected (x64|arm64)/.test(problem)), wrongArch.problems.join('; '))
  if (target.platform === 'linux') {
    const otherLibc = declaredTargets().find((candidate) => candidate.arch === target.arch && candidate.platform === 'linux' && candidate.libc !== target.libc)!
    t.true(checkBinary(file, otherLibc).problems.some((problem: string) => /musl|glibc/.test(problem)))
  }
  t.deepEqual(checkBinary(join(root, 'package.json'), target).problems, ['neither an ELF nor a 64-bit Mach-O file'])
})
