/**
 * A ring bigger than a node's peer limit: 150 real nodes over Noise on 127.0.0.1 with the
 * library's default options (maxPeers 64 among them), spread over 3 child processes
 * (bench/fleet), joining one by one through the same first node. None may be refused; they
 * must form one correct ring, as each process sees it (`stats()`) and as every member answers
 * over the wire (`memberInfo`); and every process must read back every key right.
 * `npm run scale` runs the same at 1,000 nodes and measures it.
 */
import test from 'ava'
import { crossCheck, joinOneByOne, readKeys, startFleet, stopFleet, waitForOneRing, writeKeys } from '../bench/fleet'

/** More than twice the default maxPeers (64), so a ring must grow past every node's connection limit. */
const NODES = 150
const PROCESSES = 3
/** Keys written once (spread over the processes), then read back by every process. */
const KEYS = 300
/** A correct ring is expected within a few stabilize rounds of the last join; this is generous. */
const SETTLE_MS = 60_000

test(`${NODES} nodes joining one by one through one node: none refused, one correct ring, every read right`, async (t) => {
  t.timeout(175_000)
  const started = Date.now()
  const hosts = await startFleet({ processes: PROCESSES })
  try {
    const plan = Array.from({ length: NODES }, (_, slot) => slot % PROCESSES)
    const joined = await joinOneByOne(hosts, plan, { via: 'first' })
    const first = joined.refused[0]
    t.is(joined.refused.length, 0, first && `${joined.refused.length} of ${NODES} joins refused, the first at node ${first.slot + 1}: ${first.code}: ${first.message}`)
    t.is(joined.members.length, NODES)

    const ring = await waitForOneRing(hosts, SETTLE_MS)
    t.true(ring.settled, `${ring.links.length} members not one correct ring after ${SETTLE_MS} ms (${ring.wrong} with a wrong successor or predecessor)`)
    t.is(ring.links.length, NODES)

    const check = await crossCheck(hosts, ring.links)
    t.is(check.asked, ring.links.length)
    t.is(check.agree, check.asked, `memberInfo: ${check.disagree.length} disagree, unreachable ${JSON.stringify(check.unreachable)} ${check.firstUnreachable ?? ''}`)

    const written = await writeKeys(hosts, KEYS)
    t.is(written.failed, 0, written.firstError)
    const read = await readKeys(hosts, KEYS)
    t.is(read.ops, KEYS * PROCESSES)
    t.is(read.failedReads, 0, read.firstError)
    t.is(read.missing, 0, `missing: ${read.missingKeys.slice(0, 10).map((i) => `key-${i}`).join(', ')}`)
    t.is(read.wrong, 0, read.firstWrong)
    t.log(`${joined.members.length} members joined in ${joined.elapsedMs} ms, one ring ${ring.ms} ms later; ${read.ops} reads; ${Date.now() - started} ms in all`)
  } finally {
    await stopFleet(hosts)
  }
})
