#!/usr/bin/env node
'use strict'
/**
 * `npm test`: every check, in order — the structural rules (the engine crate has no I/O
 * dependency, no import cycle in crates/ or ts/), Rust unit/integration tests of every crate, the
 * TypeScript build, a Chromium for the web view's browser test (Debian's package, installed
 * when missing and possible), the ava suite over real sockets and in that browser, a type
 * check of a typed usage file, and a short fuzz pass (20 s per target, nightly Rust; `npm run
 * fuzz` runs longer).
 */
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
require('./ensure-installed').ensureInstalled()
const bin = (...parts) => path.join(root, 'node_modules', ...parts)
const steps = [
  ['structure (engine crate pure, no import cycle; scripts/check-structure.js)', process.execPath, [path.join(root, 'scripts', 'check-structure.js')]],
  ['cargo test (engine, Noise, node and simulator crates)', 'cargo', ['test', '--release', '-p', 'chord', '-p', 'chord-noise', '-p', 'chord-node', '-p', 'chord-sim']],
  ['tsc (build lib/)', process.execPath, [path.join(root, 'scripts', 'build-ts.js')]],
  ['chromium for the browser test (scripts/ensure-chromium.js)', process.execPath, [path.join(root, 'scripts', 'ensure-chromium.js')]],
  ['ava (over real sockets)', process.execPath, [bin('ava', 'entrypoints', 'cli.mjs')]],
  ['tsc --noEmit (typed usage file)', process.execPath, [bin('typescript', 'bin', 'tsc'), '--noEmit', '-p', '__test__/tsconfig.json']],
  ['cargo fuzz (decoder, Noise handshake, request handling; 20 s each)', process.execPath, [path.join(root, 'scripts', 'fuzz.js'), '--seconds', '20', '--sanitizer', 'none']],
]

const failed = []
const began = Date.now()
for (const [name, command, args] of steps) {
  process.stdout.write(`\n=== ${name}\n`)
  const started = Date.now()
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' })
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  if (result.status !== 0) failed.push(name)
  process.stdout.write(`=== ${name}: ${result.status === 0 ? 'ok' : 'FAILED'} (${seconds} s)\n`)
}
process.stdout.write(`\nnpm test took ${((Date.now() - began) / 1000).toFixed(0)} s\n`)
process.stdout.write(`\n${steps.length - failed.length} passed, ${failed.length} failed\n`)
process.exit(failed.length === 0 ? 0 : 1)
