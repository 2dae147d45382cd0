#!/usr/bin/env node
'use strict'
/**
 * `npm run chaos -- --minutes N [--members 6] [--writers 8] [--seed S] [--out FILE]`: member
 * processes with data folders are SIGKILLed and restarted on their folders while writers check
 * every acknowledged set with a read from another member (see __test__/chaos.ts, which this
 * runs, and which the ava suite shares). Prints a progress line every 10 s and a summary; with
 * --out writes it as JSON, or as markdown when FILE ends in .md. Exits 1 if any read was stale
 * or any acknowledged write was lost.
 *
 * Other options: --keys (per writer, 32), --lanes (sets in flight per writer, 1), --kill-every
 * MIN,MAX (seconds, 15,25), --down MIN,MAX or SECONDS (before a restart, 5), --plan one,adjacent,two,
 * after-restart (the kinds of kill events in order; default: at random), --stabilize-ms (the
 * library's default when absent).
 */
const { writeFileSync } = require('node:fs')
const path = require('node:path')

require('./ensure-installed').ensureInstalled()
// The harness is TypeScript shared with the ava suite; tsx (a dev dependency) loads it.
require('tsx/cjs/api').register()
const { ChaosRun, KILL_KINDS, markdownReport } = require(path.join(__dirname, '..', '__test__', 'chaos.ts'))

function option(name, fallback, parse = Number) {
  const at = process.argv.indexOf(name)
  if (at < 0) return fallback
  const value = process.argv[at + 1]
  if (value === undefined) throw new TypeError(`${name} needs a value`)
  return parse(value)
}

function positive(name, value) {
  if (!Number.isFinite(value) || value <= 0) throw new TypeError(`${name} must be a positive number (got ${value})`)
  return value
}

async function main() {
  // MIN,MAX or one value, in seconds -> [min, max] in ms.
  const seconds = (name) => (text) => {
    const [min, max = min] = text.split(',').map((v) => positive(name, Number(v)) * 1000)
    if (min > max) throw new TypeError(`${name} takes MIN,MAX in seconds (got ${text})`)
    return [min, max]
  }
  const plan = option('--plan', undefined, (text) => text.split(','))
  if (plan && plan.some((kind) => !KILL_KINDS.includes(kind))) throw new TypeError(`--plan takes ${KILL_KINDS.join(', ')} (got ${plan})`)
  const out = option('--out', undefined, String)
  const run = new ChaosRun({
    durationMs: positive('--minutes', option('--minutes', 8)) * 60_000,
    members: positive('--members', option('--members', 6)),
    writers: positive('--writers', option('--writers', 8)),
    keysPerWriter: positive('--keys', option('--keys', 32)),
    lanes: positive('--lanes', option('--lanes', 1)),
    seed: option('--seed', Date.now() % 1_000_000),
    killEveryMs: option('--kill-every', [15_000, 25_000], seconds('--kill-every')),
    downMs: option('--down', [5_000, 5_000], seconds('--down')),
    plan,
    stabilizeMs: option('--stabilize-ms', undefined),
    log: (line) => console.log(line),
  })
  if (run.o.members < 4) throw new TypeError('--members must be at least 4: two are killed at once and r = 3')
  console.log(`chaos: seed ${run.o.seed}, folders in ${run.root}`)
  // Ctrl-C reaches the members too (one process group): report what was seen, then clean up.
  process.on('SIGINT', () => {
    console.log(`SIGINT: stopped. ${run.progressLine()}`)
    run.cleanupNow()
    process.exit(130)
  })
  process.on('exit', () => run.cleanupNow())
  const summary = await run.run()
  const report = markdownReport(summary)
  console.log('\n' + report)
  if (out) {
    writeFileSync(out, out.endsWith('.md') ? report : JSON.stringify(summary, null, 2) + '\n')
    console.log(`summary written to ${out}`)
  }
  const failed = summary.reads.stale > 0 || summary.lost.length > 0 || summary.impossibleReads > 0
  console.log(failed ? 'FAILED: stale reads or lost writes' : 'passed: no stale read, nothing lost')
  process.exit(failed ? 1 : 0)
}

main().catch((error) => {
  console.error(error)
  process.exit(2)
})
