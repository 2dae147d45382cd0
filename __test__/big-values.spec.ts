import test from 'ava'
import { randomBytes } from 'node:crypto'
import { ChordSocket, createTestnet } from '../index'
import { until } from './helpers'

// Values at the 1 MiB limit move like small ones: walked, copied to joiners, handed off on a
// graceful leave and re-replicated after a crash, with no frame ever over the limit and no
// connection dropped for one.
const MIB = 1 << 20
const KEYS = 40

test('1 MiB values: walk, join, graceful leave and crash move them all, no frame over the limit', async (t) => {
  const net = await createTestnet(3)
  const joined: ChordSocket[] = []
  t.teardown(async () => {
    await Promise.all(joined.map((n) => n.close()))
    await net.destroy()
  })
  const nodes = () => [...net.nodes, ...joined].filter((n) => !gone.has(n))
  const gone = new Set<ChordSocket>()
  const refusals: string[] = []
  const watch = (node: ChordSocket) => {
    node.on('error', (error) => refusals.push(error.message))
    node.on('disconnect', (_peer, reason) => /exceeds|too (big|large)|limit/i.test(reason) && refusals.push(reason))
  }
  net.nodes.forEach(watch)

  const values = new Map<string, Buffer>()
  for (let i = 0; i < KEYS; i++) {
    const value = randomBytes(MIB)
    values.set(`big-${i}`, value)
    await net.nodes[i % 3].set(`big-${i}`, value)
  }
  const everyValueFrom = async (node: ChordSocket, what: string) => {
    for (const [key, value] of values) {
      const got = await node.get(key)
      t.true(got !== undefined && value.equals(got), `${key} read back whole from ${node.id.slice(0, 8)} ${what}`)
    }
  }
  // Copies of every key across the live members: r = 3 of each once data has settled.
  const copies = () => nodes().reduce((sum, n) => sum + n.stats().keys, 0)

  // The whole dict walked: values(), keys() and items() page through 40 MiB by bytes.
  const collect = async <T>(walk: AsyncIterable<T>) => {
    const all: T[] = []
    for await (const each of walk) all.push(each)
    return all
  }
  const walked = await collect(net.nodes[1].values())
  t.is(walked.length, KEYS)
  const digest = (all: Iterable<Buffer>) => [...all].map((v) => v.toString('hex', 0, 16) + v.length).sort()
  t.deepEqual(digest(walked), digest(values.values()), 'values() gives every value whole')
  t.deepEqual((await collect(net.nodes[2].keys())).map(String).sort(), [...values.keys()].sort())
  const items = await collect(net.nodes[0].items())
  t.true(items.every(([key, value]) => values.get(key.toString())!.equals(value)), 'items() pairs each key with its value')

  // Two joiners take over arcs: their share of the keys is copied to them.
  for (let i = 0; i < 2; i++) {
    const node = new ChordSocket('127.0.0.1', 0, { stabilizeMs: 50, protocol: net.nodes[0].protocol })
    await node.ready
    watch(node)
    joined.push(node)
    await node.connect(...net.nodes[0].addr)
  }
  await until(() => joined.every((n) => n.stats().keys > 0) && copies() === 3 * KEYS, 30_000, 'joiners hold their share, 3 copies each')
  await everyValueFrom(joined[1], 'after two joins')

  // A graceful leave hands its keys over; a crash is repaired by anti-entropy.
  const oversized = (node: ChordSocket) => t.is(node.stats().oversizedFrames, 0, `${node.id.slice(0, 8)} never built a frame over the limit`)
  const leaving = net.nodes[1]
  oversized(leaving)
  await leaving.close()
  gone.add(leaving)
  await everyValueFrom(joined[0], 'after a graceful leave')
  const crashed = joined[1]
  oversized(crashed)
  await crashed.destroy()
  gone.add(crashed)
  await until(() => copies() >= 3 * KEYS, 30_000, 'three copies of every key again after the crash')
  await everyValueFrom(net.nodes[2], 'after a crash')

  nodes().forEach(oversized)
  t.deepEqual(refusals, [], 'no connection was dropped for a frame over the limit')
})
