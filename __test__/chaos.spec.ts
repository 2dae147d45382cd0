/**
 * The short form of `npm run chaos` (the harness is `chaos.ts`): 6 member processes with data
 * folders, 8 writers each checking every acknowledged set with a read from another member,
 * 75 s of SIGKILLs and restarts on the same folders — an adjacent pair, single members, and a
 * neighbour of a member that has just come back — then every key read from every member.
 */
import test from 'ava'
import { ChaosRun, markdownReport } from './chaos'

// 75 s of chaos with a kill event every 12–16 s: five events. The kinds are fixed so that every
// run has an adjacent pair and a kill during a restarted member's catch-up.
const CHAOS_MS = 75_000

test('chaos: members SIGKILLed and restarted on their folders under writes; no read is stale, no acknowledged write is lost', async (t) => {
  t.timeout(170_000)
  const log: string[] = []
  const run = new ChaosRun({
    durationMs: CHAOS_MS,
    seed: Math.floor(Math.random() * 1_000_000),
    killEveryMs: [12_000, 16_000],
    // Restarts 5–6 s after the kill: the moment a member comes back, against its neighbours'
    // probes of it, decides what happens while it is catching up; a range sweeps it.
    downMs: [5_000, 6_000],
    plan: ['adjacent', 'one', 'after-restart', 'two', 'one'],
    // The checks are exact; only waiting on a loaded machine gets room.
    settleTimeoutMs: 60_000,
    log: (line) => log.push(line),
  })
  t.teardown(() => run.cleanup())
  const summary = await run.run()
  const report = markdownReport(summary, 3)
  if (summary.reads.stale > 0 || summary.lost.length > 0) t.log(report)
  else t.log(log.filter((line) => /^(kill|STALE)/.test(line)).join('\n'))
  t.log(`seed ${summary.options.seed}: ${summary.writes} acknowledged writes, ${summary.reads.ok} reads ok, ${summary.kills} kills`)

  // The run did what it says: writes went on, members died, an adjacent pair among them.
  t.true(summary.writes >= 1000, `${summary.writes} acknowledged writes`)
  t.true(summary.kills >= 4, `${summary.kills} kills`)
  t.true(summary.adjacentPairs >= 1, 'an adjacent pair was killed')
  t.deepEqual(summary.finalReadFailures, [], 'every member answered the final read')
  t.is(summary.impossibleReads, 0, 'no read returned a value never written')
  t.is(summary.reads.stale, 0, 'no read right after an acknowledged set returned an older value')
  t.deepEqual(summary.lost, [], 'every acknowledged write is read back from every member at the end')
})
