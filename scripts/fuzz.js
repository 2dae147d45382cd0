#!/usr/bin/env node
'use strict'
/**
 * Fuzz the frame decoder, the Noise handshake and record layer, and request handling with
 * cargo-fuzz (libFuzzer; needs nightly Rust, which the project's machines have):
 *
 *   node scripts/fuzz.js [--seconds 20] [--sanitizer address|none]
 *                        [--targets frame_decode,noise_handshake,serve_request]
 *
 * `npm test` runs it for 20 s per target without a sanitizer (a quicker build, twice the
 * executions: the code under test is safe Rust); `npm run fuzz` for 300 s each under
 * AddressSanitizer (the default), which also watches the unsafe code of the dependencies. Installs cargo-fuzz
 * (`cargo install cargo-fuzz --locked`) when it is missing. Each target starts from the small
 * seed corpus in fuzz/seeds/<target>/ plus what earlier runs found (fuzz/corpus/<target>/,
 * not committed). Prints the executions of each target; exits non-zero on a crash, whose
 * input libFuzzer keeps in fuzz/artifacts/<target>/ (replay: cargo +nightly fuzz run
 * <target> <file>). Targets run one after another: one heavy job at a time.
 */
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.resolve(__dirname, '..')
const fuzzDir = path.join(root, 'fuzz')
const TARGETS = ['frame_decode', 'noise_handshake', 'serve_request']

function parseArgs(argv) {
  const args = { seconds: 20, targets: TARGETS, sanitizer: 'address' }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') args.seconds = Number(argv[++i])
    else if (argv[i] === '--sanitizer') args.sanitizer = argv[++i]
    else if (argv[i] === '--targets') args.targets = argv[++i].split(',')
    else throw new Error(`unknown argument ${argv[i]} (see the top of scripts/fuzz.js)`)
  }
  if (!Number.isInteger(args.seconds) || args.seconds < 1) throw new Error('--seconds takes a positive integer')
  for (const t of args.targets) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t}; known: ${TARGETS.join(', ')}`)
  return args
}

function run(command, args, options = {}) {
  return spawnSync(command, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20, ...options })
}

function ensureTools() {
  const toolchains = run('rustup', ['toolchain', 'list'])
  if (toolchains.status !== 0 || !/^nightly/m.test(toolchains.stdout)) {
    throw new Error('fuzzing needs nightly Rust: rustup toolchain install nightly')
  }
  if (run('cargo', ['+nightly', 'fuzz', '--version']).status !== 0) {
    process.stdout.write('installing cargo-fuzz (cargo install cargo-fuzz --locked) ...\n')
    const install = run('cargo', ['install', 'cargo-fuzz', '--locked'], { stdio: 'inherit' })
    if (install.status !== 0) throw new Error('cargo install cargo-fuzz failed')
  }
}

function main() {
  const args = parseArgs(process.argv.slice(2))
  ensureTools()
  let started = Date.now()
  const sanitizer = ['--sanitizer', args.sanitizer]
  const build = run('cargo', ['+nightly', 'fuzz', 'build', ...sanitizer, '--fuzz-dir', fuzzDir], { stdio: 'inherit' })
  if (build.status !== 0) throw new Error('cargo fuzz build failed')
  process.stdout.write(`fuzz targets built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  const results = []
  for (const target of args.targets) {
    const corpus = path.join(fuzzDir, 'corpus', target)
    fs.mkdirSync(corpus, { recursive: true })
    started = Date.now()
    const fuzz = run('cargo', [
      '+nightly', 'fuzz', 'run', ...sanitizer, '--fuzz-dir', fuzzDir, target, corpus, path.join(fuzzDir, 'seeds', target), '--',
      `-max_total_time=${args.seconds}`, '-timeout=10', '-print_final_stats=1',
    ])
    const output = `${fuzz.stdout}\n${fuzz.stderr}`
    const runs = /stat::number_of_executed_units:\s*(\d+)/.exec(output)?.[1] ?? /Done (\d+) runs/.exec(output)?.[1] ?? '?'
    const seconds = ((Date.now() - started) / 1000).toFixed(1)
    const ok = fuzz.status === 0
    results.push({ target, runs, seconds, ok })
    process.stdout.write(`${target}: ${ok ? 'no crash' : 'CRASH'}, ${runs} executions in ${seconds} s, corpus ${fs.readdirSync(corpus).length} inputs\n`)
    if (!ok) process.stdout.write(output.split('\n').slice(-60).join('\n') + '\n')
  }
  const crashed = results.filter((r) => !r.ok)
  if (crashed.length > 0) {
    process.stdout.write(`crashes in ${crashed.map((r) => r.target).join(', ')}: inputs kept in fuzz/artifacts/\n`)
    process.exit(1)
  }
}

try {
  main()
} catch (error) {
  process.stderr.write(`scripts/fuzz.js: ${error.message}\n`)
  process.exit(1)
}
