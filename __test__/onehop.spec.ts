/**
 * One-hop routing over real sockets: a ring that fits a mesh in its members' connection
 * tables (up to three quarters of `maxPeers`: 96 members by default) sends every get and set
 * straight to the key's owner, and a larger one relays along the routing set — slower, never
 * wrong. `stats().meanHops` counts network legs per operation (a handshake first counts one).
 */
import test from 'ava'
import { ChordSocket } from '../index'
import { closeAll, joinedRing, sleep } from './helpers'

/** Legs and operations added up over `nodes` since `before` (a snapshot of their stats). */
function hopsSince(nodes: ChordSocket[], before: { operations: number; meanHops: number }[]): { ops: number; mean: number } {
  let ops = 0
  let legs = 0
  nodes.forEach((node, i) => {
    const now = node.stats()
    ops += now.operations - before[i].operations
    legs += now.meanHops * now.operations - before[i].meanHops * before[i].operations
  })
  return { ops, mean: legs / Math.max(ops, 1) }
}

/** Every node reads `perNode` of the keys (from the `offset`-th on), checking every value. */
async function readAll(nodes: ChordSocket[], keys: number, perNode: number, offset = 0): Promise<{ wrong: string[] }> {
  const wrong: string[] = []
  await Promise.all(
    nodes.map(async (node, j) => {
      for (let i = 0; i < perNode; i++) {
        const k = (offset + j * perNode + i) % keys
        const value = (await node.get(`key-${k}`))?.toString()
        if (value !== `value-${k}`) wrong.push(`key-${k} at node ${j}: ${value}`)
      }
    }),
  )
  return { wrong }
}

test('64 members: gets and sets go straight to their owners (mean hops ≤ 1.1), and on after a member leaves', async (t) => {
  t.timeout(120_000)
  // No read cache: every get must cross the network to be counted.
  const nodes = await joinedRing(64, { cacheBytes: 0 })
  t.teardown(() => closeAll(nodes))
  const KEYS = 640
  // The writes open the connections: each node's first operation towards an owner waits for
  // a handshake (counted as a leg), so they are logged, not bounded.
  const beforeWrites = nodes.map((n) => n.stats())
  for (let k = 0; k < KEYS; k++) await nodes[k % nodes.length].set(`key-${k}`, `value-${k}`)
  const writes = hopsSince(nodes, beforeWrites)
  t.is(writes.ops, KEYS)

  // A first pass over every key opens each node's connections to the owners it has not met
  // yet (a handshake counts as a leg); a second pass, over other keys, is the steady state.
  const beforeFirst = nodes.map((n) => n.stats())
  const first = await readAll(nodes, KEYS, KEYS / 4)
  const opening = hopsSince(nodes, beforeFirst)
  t.deepEqual(first.wrong, [])
  const beforeReads = nodes.map((n) => n.stats())
  const read = await readAll(nodes, KEYS, 40, 7)
  const reads = hopsSince(nodes, beforeReads)
  t.deepEqual(read.wrong, [])
  t.is(reads.ops, 64 * 40)
  t.true(reads.mean <= 1.1, `gets: mean hops ${reads.mean.toFixed(3)} over ${reads.ops}`)
  t.log(`64 members: sets ${writes.mean.toFixed(3)} hops and first gets ${opening.mean.toFixed(3)} (connections opening), then gets ${reads.mean.toFixed(3)} hops (${reads.ops} gets)`)

  // A member leaves: the others' tables name it until they hear; operations still reach the
  // new owners of its keys, and the extra legs are few.
  const leaver = nodes.splice(17, 1)[0]
  await leaver.close()
  await sleep(500)
  const beforeAfter = nodes.map((n) => n.stats())
  const again = await readAll(nodes, KEYS, 40, 3)
  const after = hopsSince(nodes, beforeAfter)
  t.deepEqual(again.wrong, [])
  t.true(after.mean <= 1.2, `gets after a leave: mean hops ${after.mean.toFixed(3)}`)
})

test('a ring larger than a mesh the tables can hold relays along the routing set: more hops, every value right', async (t) => {
  t.timeout(60_000)
  // maxPeers 16: a mesh fits 12 members; 24 must relay.
  const nodes = await joinedRing(24, { cacheBytes: 0, maxPeers: 16 })
  t.teardown(() => closeAll(nodes))
  const KEYS = 240
  for (let k = 0; k < KEYS; k++) await nodes[k % nodes.length].set(`key-${k}`, `value-${k}`)
  const before = nodes.map((n) => n.stats())
  const read = await readAll(nodes, KEYS, 20)
  const reads = hopsSince(nodes, before)
  t.deepEqual(read.wrong, [])
  t.true(reads.mean > 1.1, `relayed gets take more than one leg (mean ${reads.mean.toFixed(3)})`)
  t.true(nodes.every((n) => n.stats().connections <= 16), 'maxPeers holds')
  t.log(`24 members, maxPeers 16: gets ${reads.mean.toFixed(3)} hops`)
})
