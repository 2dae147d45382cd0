import test from 'ava'
import { ChordSocket, KeyError, createTestnet, generateKeyPair, nodeIdOf, waitForRing } from '../index'
import { frame, RawPeer } from './raw'
import { chordNode, chordOptions, closeAll, until } from './helpers'

async function pair(t: any, options = {}) {
  const a = await chordNode(options)
  const b = await chordNode(options)
  t.teardown(() => closeAll([b, a]))
  await b.connect(...a.addr)
  await waitForRing([a, b])
  return [a, b]
}

test('two nodes: set on one, get on both; unicode keys; absent keys', async (t) => {
  const [a, b] = await pair(t)
  await a.set('hello', 'world')
  t.is((await a.get('hello'))?.toString(), 'world')
  t.is((await b.get('hello'))?.toString(), 'world')
  t.true(Buffer.isBuffer(await b.get('hello')))
  await b.update({ 测试: '成功' })
  t.is((await a.get('测试'))?.toString(), '成功')
  t.is((await a.get(Buffer.from('测试')))?.toString(), '成功', 'a string and its UTF-8 bytes are one key')
  t.is((await a.get(new Uint8Array(Buffer.from('测试'))))?.toString(), '成功')
  t.is(await a.get('absent'), undefined)
  t.is(await a.get('absent', 'fallback'), 'fallback')
  t.is(await a.get('absent', null), null)
  t.true(await a.has('hello'))
  t.false(await a.has('absent'))
})

test('two nodes: update takes Maps, pair iterables and objects', async (t) => {
  const [a, b] = await pair(t)
  await a.update(new Map([['m1', 'v1']]))
  await a.update([['p1', Buffer.from([1, 2, 3])]])
  await a.update({ o1: new Uint8Array([9]) })
  t.is((await b.get('m1'))?.toString(), 'v1')
  t.deepEqual(await b.get('p1'), Buffer.from([1, 2, 3]))
  t.deepEqual(await b.get('o1'), Buffer.from([9]))
  await t.throwsAsync(a.update(42 as any), { instanceOf: TypeError, message: /Map, an iterable/ })
  await t.throwsAsync(a.update([['only-key']] as any), { instanceOf: TypeError, message: /\[key, value\]/ })
})

test('two nodes: delete, pop and popitem follow dict semantics', async (t) => {
  const [a, b] = await pair(t)
  await a.set('gone', '1')
  await b.delete('gone')
  t.is(await a.get('gone'), undefined)
  const error = await t.throwsAsync(a.delete('gone'), { instanceOf: KeyError })
  t.is(error!.code, 'ERR_KEY_NOT_FOUND')
  await a.set('p', 'popped')
  t.is((await b.pop('p')).toString(), 'popped')
  t.is(await b.pop('p', 'dflt'), 'dflt')
  await t.throwsAsync(b.pop('p'), { instanceOf: KeyError })
  await a.update({ x: '1', y: '2' })
  const seen = new Set<string>()
  for (let i = 0; i < 2; i++) {
    const [key, value] = await b.popitem()
    seen.add(`${key}=${value}`)
  }
  t.deepEqual([...seen].sort(), ['x=1', 'y=2'])
  await t.throwsAsync(b.popitem(), { instanceOf: KeyError, message: /empty/ })
})

test('two nodes: add and delete events reach the other node', async (t) => {
  const [a, b] = await pair(t)
  const added: string[] = []
  const deleted: string[] = []
  b.on('add', (key) => added.push(key.toString()))
  b.on('delete', (key) => deleted.push(key.toString()))
  // Events go by subscription: a hears of b's listener within milliseconds.
  await until(() => a.stats().subscribers === 1, 5000, "b's subscription to reach a")
  await a.set('evt', 'v')
  await a.delete('evt')
  await until(() => added.length === 1 && deleted.length === 1, 5000, 'events')
  t.deepEqual(added, ['evt'])
  t.deepEqual(deleted, ['evt'])
})

test('events can be turned off: no event traffic at all', async (t) => {
  const [a, b] = await pair(t, { events: false })
  let events = 0
  b.on('add', () => events++)
  a.on('add', () => events++)
  await Promise.all([a.set('quiet', 'v'), b.set('quiet-too', 'v')])
  // An owner sends a change's events before it answers the write, so once both writes
  // resolved any event traffic would already be counted.
  t.deepEqual([a.stats().eventsForwarded, b.stats().eventsForwarded], [0, 0])
  t.deepEqual([a.stats().subscribers, b.stats().subscribers], [0, 0], 'listeners subscribe nowhere with events off')
  // And with events on, the same writes do send events (the counter is not stuck at 0).
  const [c, d] = await pair(t)
  c.on('add', () => {})
  d.on('add', () => {})
  await until(() => c.stats().subscribers === 1 && d.stats().subscribers === 1, 5000, 'subscriptions')
  await Promise.all([c.set('loud', 'v'), d.set('loud-too', 'v')])
  t.true(c.stats().eventsForwarded + d.stats().eventsForwarded > 0)
  t.is(events, 0)
})

test('wrong key and value types raise TypeError', async (t) => {
  const [a] = await pair(t)
  await t.throwsAsync(a.get(42 as any), { instanceOf: TypeError, message: /key must be a string, Buffer or Uint8Array \(got number 42\)/ })
  await t.throwsAsync(a.set('k', { v: 1 } as any), { instanceOf: TypeError, message: /value must be/ })
  await t.throwsAsync(a.set(null as any, 'v'), { instanceOf: TypeError, message: /got null/ })
  await t.throwsAsync(a.delete([1] as any), { instanceOf: TypeError, message: /got an array/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { replicas: 0 }), { instanceOf: RangeError, message: /replicas must be from 1 to 64 \(got 0\)/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { replicas: 1.5 }), { instanceOf: TypeError, message: /replicas must be a non-negative integer/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { replicas: 3, maxPeers: 2 }), { instanceOf: RangeError, message: /maxPeers must be at least replicas \(3\) for a ring member/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { join: 'yes' as any }), { instanceOf: TypeError, message: /join must be a boolean/ })
})

test('16 nodes joined through random bootstraps: 1,000 keys from random nodes, read back everywhere', async (t) => {
  const net = await createTestnet(16)
  t.teardown(() => net.destroy())
  const { nodes } = net
  const pick = () => nodes[Math.floor(Math.random() * nodes.length)]
  const keys = Array.from({ length: 1000 }, (_, i) => `key-${i}`)
  await Promise.all(keys.map((k) => pick().set(k, `value-${k}`)))
  for (const node of nodes) {
    const values = await Promise.all(keys.map((k) => node.get(k)))
    t.true(values.every((v, i) => v?.toString() === `value-${keys[i]}`), `every key from ${node.id}`)
  }
  let hops = 0
  for (let i = 0; i < 200; i++) hops += (await pick().lookup(`probe-${i}`)).hops
  const meanHops = hops / 200
  t.true(meanHops <= 0.5 * Math.log2(16) + 1, `mean hops ${meanHops}`)
  t.log(`mean lookup hops on 16 nodes: ${meanHops.toFixed(2)}`)
  const walked: string[] = []
  for await (const key of nodes[3].keys()) walked.push(key.toString())
  t.is(walked.length, 1000)
  t.deepEqual(walked.sort(), [...keys].sort())
  const primary = nodes.reduce((sum, n) => sum + n.stats().primaryKeys, 0)
  t.is(primary, 1000, 'every key has exactly one owner')
  const held = nodes.reduce((sum, n) => sum + n.stats().keys, 0)
  t.true(held >= 3000, `${held} copies for 1000 keys`)
})

test('16 nodes all listening: one set raises add on every node exactly once', async (t) => {
  const net = await createTestnet(16)
  t.teardown(() => net.destroy())
  const counts = new Map<string, number>()
  for (const node of net.nodes) node.on('add', () => counts.set(node.id, (counts.get(node.id) ?? 0) + 1))
  await until(() => net.nodes.every((n) => n.stats().subscribers === 15), 5000, 'every subscription to reach every member')
  await net.nodes[5].set('broadcast-me', 'v')
  await until(() => counts.size === 16, 5000, 'add on all 16 nodes')
  // The owner sends the event to each of the 15 other subscribers, once.
  t.is(net.nodes.reduce((sum, n) => sum + n.stats().eventsForwarded, 0), 15)
  t.deepEqual([...counts.values()], Array(16).fill(1))
})

test('items, values and the async iterator walk the whole ring', async (t) => {
  const net = await createTestnet(5)
  t.teardown(() => net.destroy())
  const pairs = Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`k${i}`, `v${i}`]))
  await net.nodes[0].update(pairs)
  const items: Record<string, string> = {}
  for await (const [k, v] of net.nodes[2]) items[k.toString()] = v.toString()
  t.deepEqual(items, pairs)
  const values: string[] = []
  for await (const v of net.nodes[4].values()) values.push(v.toString())
  t.deepEqual(values.sort(), Object.values(pairs).sort())
  const entries: string[] = []
  for await (const [k] of net.nodes[1].entries()) entries.push(k.toString())
  t.is(entries.length, 600)
})

test('a late joiner takes over the keys it now owns', async (t) => {
  const net = await createTestnet(4)
  t.teardown(() => net.destroy())
  const keys = Array.from({ length: 1000 }, (_, i) => `late-${i}`)
  await Promise.all(keys.map((k) => net.nodes[0].set(k, k)))
  const late = await chordNode({ protocol: net.nodes[0].protocol })
  t.teardown(() => late.close())
  await late.connect(...net.nodes[2].addr)
  await waitForRing([...net.nodes, late])
  // Which keys the joiner owns now (its arc may be small: it can even be none of them).
  const owners = await Promise.all(keys.map((k) => late.lookup(k)))
  const owned = keys.filter((_, i) => owners[i].owner.id === late.id)
  await until(() => owned.every((k) => late.localGet(k)?.toString() === k), 5000, 'the joiner to hold every key it owns')
  t.is(late.stats().primaryKeys, owned.length)
  t.true(late.stats().keys >= owned.length && late.stats().keys > 0, 'it also holds replicas of its predecessors')
  const values = await Promise.all(keys.map((k) => late.get(k)))
  t.true(values.every((v, i) => v?.toString() === keys[i]))
  const total = [...net.nodes, late].reduce((sum, n) => sum + n.stats().primaryKeys, 0)
  t.is(total, 1000)
})

test('a join:false client stores nothing yet reads and writes', async (t) => {
  const net = await createTestnet(3)
  t.teardown(() => net.destroy())
  const client = new ChordSocket('127.0.0.1', 0, { ...chordOptions({ join: false }), protocol: net.nodes[0].protocol })
  await client.ready
  t.teardown(() => client.close())
  await client.connect(...net.nodes[1].addr)
  await client.update(Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`c${i}`, `${i}`])))
  t.is((await client.get('c42'))?.toString(), '42')
  t.is((await net.nodes[0].get('c7'))?.toString(), '7')
  await client.delete('c1')
  t.is(await net.nodes[2].get('c1'), undefined)
  const stats = client.stats()
  t.false(stats.member)
  t.is(stats.keys, 0)
  const walked: Buffer[] = []
  for await (const key of client.keys()) walked.push(key)
  t.is(walked.length, 99)
  t.is(net.nodes.reduce((sum, n) => sum + n.stats().primaryKeys, 0), 99)
})

test('a value written concurrently converges to the same value on every replica', async (t) => {
  const net = await createTestnet(4)
  t.teardown(() => net.destroy())
  const [a, b, c, d] = net.nodes
  for (let round = 0; round < 20; round++) {
    await Promise.all([a.set('contended', `a${round}`), b.set('contended', `b${round}`), c.set('contended', `c${round}`), d.set('contended', `d${round}`)])
  }
  const winner = (await a.get('contended'))!.toString()
  for (const node of net.nodes) t.is((await node.get('contended'))?.toString(), winner)
  // Every copy converges: replicas by anti-entropy, and a copy left on a stand-in is handed to
  // the owner and dropped once no replica lease covers it.
  const copies = () => net.nodes.map((n) => n.localGet('contended')?.toString()).filter((v) => v !== undefined)
  await until(() => copies().length === 3 && copies().every((v) => v === winner), 10_000, 'exactly three agreeing copies')
  t.deepEqual(copies(), [winner, winner, winner])
})

test('a deleted key is not resurrected by a stale replica', async (t) => {
  const net = await createTestnet(5)
  t.teardown(() => net.destroy())
  const { nodes } = net
  await nodes[0].set('zombie', 'alive')
  // Keep the live copy as a replica holds it (key, value, version), read over the wire.
  const owner = nodes.find((n) => n.localGet('zombie') !== undefined)!
  const peer = await RawPeer.handshaken(owner.addr[1], owner.protocol)
  t.teardown(() => peer.socket.destroy())
  peer.write(frame({ Request: { id: 1, body: { Fetch: { keys: [Buffer.from('zombie')] } } } }))
  const stale = (await peer.response(1)).Items.items[0]
  t.is(Buffer.from(stale.value).toString(), 'alive')
  await nodes[1].delete('zombie')
  // The stale copy comes back: pushed to every node as a replica would push it. Nodes that
  // hold the tombstone refuse it at once; a node outside the replica set takes it as a stray.
  // The pusher's id sits just after the key's owner, where a node that held the key as a
  // replica would sit, so every node finds the push plausible (engine/guard.rs).
  const ownerOfKey = BigInt(`0x${(await nodes[0].lookup('zombie')).owner.id}`)
  const ring = nodes.map((n) => BigInt(`0x${n.id}`)).sort((a, b) => (a < b ? -1 : 1))
  const next = ring.find((id) => id > ownerOfKey) ?? ring[0]
  const justAfterOwner = (id: bigint) => (next > ownerOfKey ? id > ownerOfKey && id < next : id > ownerOfKey || id < next)
  let keyPair = generateKeyPair()
  while (!justAfterOwner(BigInt(`0x${nodeIdOf(keyPair.publicKey)}`))) keyPair = generateKeyPair()
  let strays = 0
  for (const node of nodes) {
    const pusher = await RawPeer.handshaken(node.addr[1], node.protocol, { keyPair })
    pusher.write(frame({ Request: { id: 2, body: { Replicate: { items: [stale] } } } }))
    t.is(await pusher.response(2), 'Ok')
    strays += node.localGet('zombie') === undefined ? 0 : 1
    pusher.socket.destroy()
  }
  t.true(strays >= 1, 'a stale copy was taken somewhere')
  const holders = () => nodes.filter((n) => n.localGet('zombie') !== undefined).length
  for (const node of nodes) t.is(await node.get('zombie'), undefined, 'reads go to the owner, whose tombstone is newer')
  // The stray is handed to the owner, which keeps its tombstone, and is dropped.
  await until(() => holders() === 0, 15_000, 'the stale stray to be handed off and dropped')
  // The owner leaves: a replica takes over, and its tombstone still wins.
  const ownerId = (await nodes[0].lookup('zombie')).owner.id
  await nodes.find((n) => n.id === ownerId)!.close()
  const rest = nodes.filter((n) => !n.closed)
  await waitForRing(rest)
  for (const node of rest) t.is(await node.get('zombie'), undefined)
})

test('unjoin hands data over; join brings the node back', async (t) => {
  const net = await createTestnet(5)
  t.teardown(() => net.destroy())
  const keys = Array.from({ length: 300 }, (_, i) => `u${i}`)
  await Promise.all(keys.map((k) => net.nodes[0].set(k, k)))
  const leaver = net.nodes[2]
  await leaver.unjoin()
  t.false(leaver.stats().member)
  t.is(leaver.stats().keys, 0)
  const rest = net.nodes.filter((n) => n !== leaver)
  await waitForRing(rest)
  const values = await Promise.all(keys.map((k) => leaver.get(k)))
  t.true(values.every((v, i) => v?.toString() === keys[i]), 'still readable, now as a client')
  t.is(rest.reduce((sum, n) => sum + n.stats().primaryKeys, 0), 300)
  await leaver.join()
  await waitForRing(net.nodes)
  await until(() => net.nodes.reduce((sum, n) => sum + n.stats().primaryKeys, 0) === 300, 5000, 'keys rebalanced')
  t.true(leaver.stats().member)
  // The returning member holds every key it owns again.
  const owners = await Promise.all(keys.map((k) => leaver.lookup(k)))
  const owned = keys.filter((_, i) => owners[i].owner.id === leaver.id)
  await until(() => owned.every((k) => leaver.localGet(k)?.toString() === k), 5000, 'the rejoined node to hold its keys')
  t.is(leaver.stats().primaryKeys, owned.length)
})

test('graceful close of half the nodes one by one loses nothing', async (t) => {
  const net = await createTestnet(8)
  t.teardown(() => net.destroy())
  const keys = Array.from({ length: 400 }, (_, i) => `g${i}`)
  await Promise.all(keys.map((k, i) => net.nodes[i % 8].set(k, k)))
  for (const node of net.nodes.slice(0, 4)) {
    await node.close()
    await waitForRing(net.nodes.filter((n) => !n.closed))
  }
  const alive = net.nodes.filter((n) => !n.closed)
  const values = await Promise.all(keys.map((k, i) => alive[i % 4].get(k)))
  t.deepEqual(values.map((v) => v?.toString()), keys)
})

/** Whether ring position `x` lies strictly between `from` and `to`, going clockwise. */
function between(x: string, from: string, to: string): boolean {
  const [p, f, e] = [x, from, to].map((id) => BigInt(`0x${id}`))
  return f < e ? f < p && p < e : p > f || p < e
}

/** A node whose id lies strictly between `from` and `to`. */
async function nodeBetween(from: string, to: string, options = {}): Promise<ChordSocket> {
  let keyPair = generateKeyPair()
  while (!between(nodeIdOf(keyPair.publicKey), from, to)) keyPair = generateKeyPair()
  return chordNode({ ...options, keyPair })
}

/**
 * a, limited to two connections (its successor and predecessor), in a ring with b and c. Two
 * replicas: a member syncs its arc with each replica, so it needs `replicas` connections
 * (its predecessor and `replicas − 1` successors) to serve its arc.
 */
const SMALL = { replicas: 2 }
async function fullMember(t: any) {
  const a = await chordNode({ ...SMALL, maxPeers: 2 })
  const [b, c] = await Promise.all([chordNode(SMALL), chordNode(SMALL)])
  t.teardown(() => closeAll([a, b, c]))
  await b.connect(...a.addr)
  await c.connect(...a.addr)
  await waitForRing([a, b, c])
  const successor = a.stats().successors[0].id
  const predecessor = a.stats().predecessor!.id
  return { a, b, c, successor, predecessor }
}

test('a member whose every connection serves routing refuses a newcomer as busy, naming members to try: the newcomer joins through one', async (t) => {
  const { a, b, c, successor, predecessor } = await fullMember(t)
  // d lands between a's successor and predecessor: a's neighbours stay, so a has no room.
  const d = await nodeBetween(successor, predecessor, SMALL)
  t.teardown(() => d.close())
  const info = await d.connect(...a.addr)
  t.not(info.id, a.id, 'connected to a member a named, not to a')
  t.true([b.id, c.id].includes(info.id))
  await waitForRing([a, b, c, d])
  t.true(a.stats().connections <= 2, 'maxPeers stays a hard bound')
  await d.set('joined-elsewhere', 'yes')
  t.is((await a.get('joined-elsewhere'))?.toString(), 'yes')
})

test('a member whose table is full of its neighbours takes a newcomer that becomes its neighbour, dropping the one it displaces', async (t) => {
  const { a, b, c, successor } = await fullMember(t)
  // d lands between a and its successor: it becomes a's successor.
  const d = await nodeBetween(a.id, successor, SMALL)
  t.teardown(() => d.close())
  const info = await d.connect(...a.addr)
  t.is(info.id, a.id, 'a took the newcomer itself')
  await waitForRing([a, b, c, d])
  t.is(a.stats().successors[0].id, d.id)
  t.true(a.stats().connections <= 2, 'maxPeers stays a hard bound')
  await d.set('next-door', 'yes')
  t.is((await a.get('next-door'))?.toString(), 'yes')
  t.is((await c.get('next-door'))?.toString(), 'yes')
})
