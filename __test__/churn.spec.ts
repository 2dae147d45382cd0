import test from 'ava'
import { ChordSocket, createTestnet, waitForRing } from '../index'
import { chordOptions, until } from './helpers'

test('writes under churn: every acknowledged write survives two simultaneous crashes and joins happening meanwhile', async (t) => {
  const net = await createTestnet(8)
  const protocol = net.nodes[0].protocol
  const joined: ChordSocket[] = []
  t.teardown(async () => {
    await Promise.all(joined.map((n) => n.close()))
    await net.destroy()
  })
  const client = new ChordSocket('127.0.0.1', 0, { ...chordOptions({ join: false }), protocol })
  await client.ready
  t.teardown(() => client.close())
  for (const n of net.nodes) await client.connect(...n.addr)

  const acked = new Map<string, string>()
  let writes = 0
  let writing = true
  const writer = (async () => {
    for (let i = 0; writing; i++) {
      const key = `churn-${i % 300}`
      const value = `v${i}`
      await client.set(key, value)
      acked.set(key, value)
      writes++
    }
  })()
  /** Let `count` more writes be acknowledged: pacing by progress, not by time. */
  const progress = (count: number) => {
    const target = writes + count
    return until(() => writes >= target, 30_000, `${count} more acknowledged writes`)
  }
  // Twice, two ring neighbours crash at once (r − 1 = 2 simultaneous crashes) while writes
  // go on, and a new node joins after each crash.
  const byId = [...net.nodes].sort((a, b) => a.id.localeCompare(b.id))
  for (const pair of [[byId[1], byId[2]], [byId[5], byId[6]]]) {
    await progress(150)
    await Promise.all(pair.map((victim) => victim.destroy()))
    const fresh = new ChordSocket('127.0.0.1', 0, { ...chordOptions(), protocol })
    await fresh.ready
    joined.push(fresh)
    const alive = net.nodes.filter((n) => !n.closed)
    await fresh.connect(...alive[0].addr)
    await client.connect(...fresh.addr)
  }
  await progress(300)
  writing = false
  await writer
  const members = [...net.nodes.filter((n) => !n.closed), ...joined]
  await waitForRing(members)
  const wrong: string[] = []
  for (const [key, value] of acked) {
    const got = (await client.get(key))?.toString()
    if (got !== value) wrong.push(`${key}: ${got} != ${value}`)
  }
  t.deepEqual(wrong, [], `${acked.size} keys written`)
  t.true(acked.size === 300)
})
