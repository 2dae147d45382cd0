/**
 * Replica reads over real sockets: a key's in-sync replicas answer gets for its owner under a
 * read delegation, so a hot key's reads spread over its copies — and never return a value older
 * than a write that resolved before the get started, also when a replica is cut off.
 */
import test from 'ava'
import { ChordSocket, limits } from '../index'
import { closeAll, joinedRing, sleep, until } from './helpers'

/**
 * A settled ring with the read cache off, so every get reaches a copy of its key. An owner
 * delegates reads only once its arc settled: 15 s after the arc last grew (joins included).
 */
async function ring(n: number): Promise<ChordSocket[]> {
  const nodes = await joinedRing(n, { cacheBytes: 0 }, 15_000)
  await sleep(limits.readLeaseMs + 200)
  return nodes
}

const replicaReads = (node: ChordSocket) => node.stats().replicaReads

test('the reads of a hot key are answered by its replicas too, each value the latest', async (t) => {
  const nodes = await ring(8)
  t.teardown(() => closeAll(nodes))
  await nodes[0].set('hot', 'v0')
  const owner = (await nodes[0].lookup('hot')).owner.id
  const readers = nodes.filter((n) => n.id !== owner)
  const before = nodes.map(replicaReads)
  // Replicas ask for a delegation once readers come; keep reading until they answer.
  let version = 0
  await until(
    async () => {
      for (let i = 0; i < 200; i++) {
        if (i % 50 === 0) await nodes[i % nodes.length].set('hot', `v${++version}`)
        const got = (await readers[i % readers.length].get('hot'))?.toString()
        if (got !== `v${version}`) throw new Error(`read ${got} after v${version} resolved`)
      }
      const answered = nodes.filter((n, i) => replicaReads(n) > before[i])
      return answered.length >= 2
    },
    30_000,
    'two replicas answering reads of the hot key',
  )
  const granted = nodes.reduce((sum, n) => sum + n.stats().delegationsGranted, 0)
  t.true(granted > 0, 'the owner granted delegations')
  t.false(nodes.find((n) => n.id === owner)!.stats().replicaReads > before[nodes.findIndex((n) => n.id === owner)], 'the owner reads as the owner')
})

test('set-then-get pairs across random nodes are never stale while replicas answer reads', async (t) => {
  const nodes = await ring(6)
  t.teardown(() => closeAll(nodes))
  const keys = Array.from({ length: 12 }, (_, i) => `pair-${i}`)
  for (const key of keys) await nodes[0].set(key, '0')
  // Read until replicas answer for their owners, then pair writes with reads.
  const total = () => nodes.reduce((sum, n) => sum + replicaReads(n), 0)
  await until(
    async () => {
      for (const node of nodes) for (const key of keys) t.is((await node.get(key))?.toString(), '0')
      return total() > 0
    },
    30_000,
    'replicas answering reads',
  )
  const before = total()
  let seed = 7
  const random = (n: number) => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return seed % n
  }
  for (let i = 1; i <= 600; i++) {
    const key = keys[i % keys.length]
    await nodes[random(nodes.length)].set(key, String(i))
    // Several reads from other nodes, each of which must see the write.
    for (let r = 0; r < 3; r++) {
      const got = (await nodes[random(nodes.length)].get(key))?.toString()
      t.is(got, String(i), `${key}: read ${got} after ${i} resolved`)
      if (got !== String(i)) return
    }
  }
  t.true(total() > before, 'replicas answered some of the reads')
})

test('a cut-off replica stops answering before a write it missed resolves', async (t) => {
  const nodes = await ring(5)
  t.teardown(() => closeAll(nodes.filter((n) => !n.closed)))
  await nodes[0].set('cut', 'old')
  const owner = (await nodes[0].lookup('cut')).owner.id
  // Read from every node until a replica answers for the owner.
  let replica: ChordSocket | undefined
  await until(
    async () => {
      const before = nodes.map(replicaReads)
      for (const node of nodes) t.is((await node.get('cut'))?.toString(), 'old')
      replica = nodes.find((n, i) => n.id !== owner && replicaReads(n) > before[i])
      return replica !== undefined
    },
    30_000,
    'a replica answering reads of the key',
  )
  if (!replica) return
  // The replica crashes (its delegation still running at the owner): the next write must
  // not resolve while any copy that missed it may still answer; reads after it see it.
  await replica.destroy()
  const writer = nodes.find((n) => n !== replica && n.id !== owner)!
  await writer.set('cut', 'new')
  for (const node of nodes.filter((n) => n !== replica)) t.is((await node.get('cut'))?.toString(), 'new')
})
