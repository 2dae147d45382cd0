/**
 * The read cache (`cacheBytes`) over real sockets: repeated gets answered from memory, never a
 * value older than a write that resolved before the get started — across nodes, through joins,
 * leaves and an owner's crash, and with a lease holder frozen (SIGSTOP) — and bounded in bytes.
 */
import test from 'ava'
import { ChordSocket, Protocol, limits } from '../index'
import { chordNode, chordOptions, closeAll, joinedRing, sleep, until } from './helpers'
import { Member, settled, startRing } from './member'

/** A settled in-process ring of `n` members, each joined through the first. */
async function ring(n: number, extra = {}): Promise<ChordSocket[]> {
  const nodes = await joinedRing(n, extra, 15_000)
  // Owners take writes to an arc they took over only once a lease's time has passed.
  await sleep(limits.readLeaseMs + 200)
  return nodes
}

/** A node that neither owns `key` nor is the given `other`, so its gets cross the network. */
async function readerFor(nodes: ChordSocket[], key: string, ...not: ChordSocket[]): Promise<ChordSocket> {
  const owner = (await nodes[0].lookup(key)).owner.id
  const reader = nodes.find((n) => n.id !== owner && !not.includes(n))
  if (!reader) throw new Error('no reader found')
  return reader
}

test('a repeated get of an unchanged key is answered from memory, and a write elsewhere is seen at once', async (t) => {
  const nodes = await ring(5)
  t.teardown(() => closeAll(nodes))
  const writer = nodes[1]
  await writer.set('hot', 'v1')
  const reader = await readerFor(nodes, 'hot', writer)
  t.is((await reader.get('hot'))?.toString(), 'v1')
  const before = reader.stats()
  const granted = () => nodes.reduce((sum, n) => sum + n.stats().leasesGranted, 0)
  const grantedBefore = granted()
  for (let i = 0; i < 1000; i++) t.is((await reader.get('hot'))?.toString(), 'v1')
  const after = reader.stats()
  t.true(after.cacheHits - before.cacheHits >= 990, `hits ${after.cacheHits - before.cacheHits}`)
  t.true(granted() - grantedBefore <= 3, 'the gets did not reach the owner (a lease renewal at most)')
  t.is(after.cacheEntries, 1)
  // A write from another node resolves only once the reader dropped its copy.
  await writer.set('hot', 'v2')
  t.is((await reader.get('hot'))?.toString(), 'v2')
  await writer.delete('hot')
  t.is(await reader.get('hot'), undefined)
  t.true(nodes.reduce((sum, n) => sum + n.stats().invalidationsSent, 0) >= 1)
})

test('set-then-get pairs across random nodes are never stale while every node caches', async (t) => {
  const nodes = await ring(6)
  t.teardown(() => closeAll(nodes))
  const keys = Array.from({ length: 8 }, (_, i) => `pair-${i}`)
  let stale = 0
  for (let i = 0; i < 400; i++) {
    const key = keys[i % keys.length]
    // Warm every cache with the current value first (the second round reads from it), so a
    // stale copy would be there to serve.
    await Promise.all(nodes.map((n) => n.get(key)))
    await Promise.all(nodes.map((n) => n.get(key)))
    const writer = nodes[(i * 5 + 1) % nodes.length]
    const reader = nodes[(i * 7 + 2) % nodes.length]
    await writer.set(key, `value-${i}`)
    if ((await reader.get(key))?.toString() !== `value-${i}`) stale++
  }
  t.is(stale, 0)
  t.true(nodes.reduce((sum, n) => sum + n.stats().cacheHits, 0) > 400, 'the caches were in use')
})

test('no stale read from a cache through a join, a graceful leave and the crash of the key owner', async (t) => {
  const nodes = await ring(6)
  const extra: ChordSocket[] = []
  let joiner: ChordSocket | undefined
  t.teardown(() => closeAll([...nodes, ...extra, ...(joiner ? [joiner] : [])].filter((n) => !n.closed)))
  const key = 'through-churn'
  let version = 0
  let stale = 0
  let failed = 0
  let running = true
  let firstStale: string | undefined
  let phase = 'settled'
  // One writer at a time (so the last resolved value is the one to read), readers everywhere.
  const loop = (async () => {
    while (running) {
      const live = [...nodes, ...extra].filter((n) => !n.closed)
      const writer = live[version % live.length]
      const next = version + 1
      try {
        await writer.set(key, `v${next}`)
        version = next
      } catch {
        failed++
        continue
      }
      await Promise.all(
        live.map(async (reader) => {
          if (reader.closed) return
          try {
            const expected = version
            // Twice: the second get is answered from the cache the first one filled.
            for (let read = 0; read < 2; read++) {
              const got = (await reader.get(key))?.toString()
              if (got !== `v${expected}` && !reader.closed) {
                stale++
                firstStale ??= `${reader.id.slice(0, 8)} read ${got} after v${expected} resolved (${phase}, read ${read + 1})`
              }
            }
          } catch {
            failed++
          }
        }),
      )
    }
  })()
  await sleep(1500)
  phase = 'join'
  joiner = await chordNode()
  // Before its connect() resolves it is a ring of its own: read and written only once joined.
  await joiner.connect(...nodes[0].addr)
  extra.push(joiner)
  await sleep(1500)
  const leaver = nodes.find((n) => n !== nodes[0])!
  phase = 'leave'
  await leaver.close()
  await sleep(1500)
  const owner = (await nodes[0].lookup(key)).owner.id
  const victim = [...nodes, ...extra].find((n) => n.id === owner && !n.closed && n !== nodes[0])
  phase = `crash of the owner ${victim?.id.slice(0, 8)}`
  if (victim) await victim.destroy()
  await sleep(4000)
  running = false
  await loop
  t.is(stale, 0, `stale reads (failed operations: ${failed}); first: ${firstStale}`)
  t.true(version > 20, `writes went on: ${version}`)
  t.true([...nodes, ...extra].reduce((sum, n) => sum + (n.closed ? 0 : n.stats().cacheHits), 0) > 100, 'cached reads were checked')
})

test('a lease holder frozen by SIGSTOP delays a write by at most the lease, and reads the write once it runs again', async (t) => {
  const subnet = `cache-${process.pid}-${Date.now()}`
  const members = await startRing(5, () => ({ subnet, options: { stabilizeMs: 50 } }))
  t.teardown(() => members.forEach((m) => m.child.kill('SIGKILL')))
  await settled(members)
  await sleep(limits.readLeaseMs + 200)
  // A key whose owner and replicas are three members, read by a fourth: freezing the reader
  // holds no copy of the write back, only its lease.
  const byId = new Map(members.map((m) => [m.id, m]))
  let chosen: { key: string; reader: Member; writer: Member } | undefined
  for (let i = 0; !chosen && i < 100; i++) {
    const key = `frozen-${i}`
    const owner = byId.get((await members[0].lookup(key)).owner)!
    const replicas = [owner.id, ...(await owner.stats()).successors.slice(0, 2)]
    const others = members.filter((m) => !replicas.includes(m.id))
    if (others.length >= 2) chosen = { key, reader: others[0], writer: others[1] }
  }
  if (!chosen) return t.fail('no key with two members outside its replicas')
  const { key, reader, writer } = chosen
  await writer.set(key, 'before')
  // A key is leased from its second read on (the first only marks it as read): the third
  // get comes from the cache.
  for (let i = 0; i < 3; i++) t.is(await reader.get(key), 'before')
  const hits = ((await reader.stats()) as unknown as { cacheHits: number }).cacheHits
  t.true(hits >= 1, 'the third get came from the cache')
  reader.child.kill('SIGSTOP')
  try {
    const started = Date.now()
    await writer.set(key, 'after')
    const took = Date.now() - started
    t.true(took < limits.readLeaseMs + 1500, `the write waited ${took} ms for the frozen holder`)
  } finally {
    reader.child.kill('SIGCONT')
  }
  t.is(await reader.get(key), 'after', 'its lease had run out: the frozen node reads the write')
})

test('the cache stays within cacheBytes, and cacheBytes 0 turns it off', async (t) => {
  const nodes = await ring(4)
  const small = await chordNode({ cacheBytes: 20_000 })
  const off = await chordNode({ cacheBytes: 0 })
  t.teardown(() => closeAll([...nodes, small, off]))
  await small.connect(...nodes[0].addr)
  await off.connect(...nodes[0].addr)
  await until(() => [small, off].every((n) => n.stats().predecessor !== undefined), 15_000, 'the two joined')
  await sleep(limits.readLeaseMs + 200)
  const keys = Array.from({ length: 200 }, (_, i) => `sized-${i}`)
  const value = 'x'.repeat(1000)
  await Promise.all(keys.map((k) => nodes[0].set(k, value)))
  // Each key read twice: the second read asks for a lease (a key read once is not cached).
  for (const k of keys) t.is((await small.get(k))?.length, 1000)
  for (const k of keys) t.is((await small.get(k))?.length, 1000)
  const s = small.stats()
  t.true(s.cacheBytes <= 20_000, `${s.cacheBytes} bytes cached`)
  t.true(s.cacheEntries > 5 && s.cacheEntries < 20, `${s.cacheEntries} entries`)
  for (const k of keys.slice(0, 20)) await off.get(k)
  for (const k of keys.slice(0, 20)) await off.get(k)
  t.is(off.stats().cacheHits, 0)
  t.is(off.stats().cacheEntries, 0)
})

test('cacheBytes must be a non-negative integer within the limit', async (t) => {
  const protocol = new Protocol(`cache-options-${process.pid}`)
  t.throws(() => new ChordSocket('127.0.0.1', 0, { protocol, cacheBytes: -1 }), { instanceOf: TypeError, message: /cacheBytes/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { protocol, cacheBytes: '1mb' as unknown as number }), { instanceOf: TypeError, message: /cacheBytes/ })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { protocol, cacheBytes: limits.maxCacheBytes + 1 }), { message: /cacheBytes/ })
  const node = new ChordSocket('127.0.0.1', 0, { ...chordOptions(), cacheBytes: limits.maxCacheBytes })
  await node.ready
  t.is(typeof node.stats().cacheBytes, 'number')
  await node.close()
})
