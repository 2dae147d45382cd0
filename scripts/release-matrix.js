#!/usr/bin/env node
'use strict'
/**
 * The release workflow's build and test matrices (.github/workflows/release.yml), derived from
 * package.json "napi.targets" through scripts/platforms.js, so the workflow never lists targets
 * itself. The only thing this file adds is where each target is built and where it runs: a
 * hosted runner per target, natively (an Alpine container on the Linux runner of the same CPU
 * for musl).
 *
 *   node scripts/release-matrix.js                  prints build=<json> and test=<json>
 *                                                   (append to $GITHUB_OUTPUT)
 *   node scripts/release-matrix.js --pretty         the same, readable
 *
 * Every declared target must have a row here; a missing one is an error (checked by the ava
 * suite too), so adding a target to package.json without saying where it is built fails early.
 */
const platforms = require('./platforms.js')

/** Node line the test jobs run on (any of package.json engines works; the current LTS). */
const TEST_NODE = '24'

/**
 * Runner labels of GitHub's hosted runners. Linux targets are built on x64 Ubuntu with zig (as
 * on the project's own machine: `npm run artifacts -- --target` needs no root there); macOS
 * both on an arm64 Mac (x64 is a native cross target of Apple's toolchain); Windows on Windows.
 * Tests run where the binary is native (`macos-15-intel` is GitHub's Intel Mac label). The
 * labels could not be tried from the project's machine; check them against the CI's list.
 */
const RUNNERS = {
  'x86_64-unknown-linux-gnu': { build: 'ubuntu-24.04', test: 'ubuntu-24.04' },
  'aarch64-unknown-linux-gnu': { build: 'ubuntu-24.04', test: 'ubuntu-24.04-arm' },
  'x86_64-unknown-linux-musl': { build: 'ubuntu-24.04', test: 'ubuntu-24.04', container: `node:${TEST_NODE}-alpine` },
  'aarch64-unknown-linux-musl': { build: 'ubuntu-24.04', test: 'ubuntu-24.04-arm', container: `node:${TEST_NODE}-alpine` },
  'x86_64-apple-darwin': { build: 'macos-15', test: 'macos-15-intel' },
  'aarch64-apple-darwin': { build: 'macos-15', test: 'macos-15' },
  'x86_64-pc-windows-msvc': { build: 'windows-2022', test: 'windows-2022' },
}

function matrices(targets = platforms.declaredTargets()) {
  const missing = targets.filter((target) => !RUNNERS[target.triple]).map((target) => target.triple)
  if (missing.length) throw new Error(`scripts/release-matrix.js has no runner for ${missing.join(', ')}`)
  const build = targets.map((target) => ({
    target: target.triple,
    suffix: target.suffix,
    runner: RUNNERS[target.triple].build,
    zig: target.platform === 'linux',
  }))
  const test = targets.map((target) => ({
    target: target.triple,
    suffix: target.suffix,
    runner: RUNNERS[target.triple].test,
    container: RUNNERS[target.triple].container || '',
    node: TEST_NODE,
  }))
  return { build: { include: build }, test: { include: test } }
}

module.exports = { matrices, RUNNERS }

if (require.main === module) {
  const pretty = process.argv.includes('--pretty')
  const { build, test } = matrices()
  const show = (value) => JSON.stringify(value, null, pretty ? 2 : 0)
  process.stdout.write(`build=${show(build)}\ntest=${show(test)}\n`)
}
