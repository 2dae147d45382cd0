/**
 * Events by subscription, over real sockets: a node hears the changes it listens for (an
 * 'add'/'delete' listener, or watch(prefix)), through crashes and joins; a node that does not
 * listen is sent no event at all; a client can watch; a listener gone is a subscription gone.
 */
import test from 'ava'
import { ChordChange, ChordSocket, waitForRing } from '../index'
import { chordNode, closeAll, sleep, until } from './helpers'

async function ring(t: any, size: number, options = {}): Promise<ChordSocket[]> {
  const nodes = [await chordNode(options)]
  t.teardown(() => closeAll(nodes.filter((n) => !n.closed)))
  for (let i = 1; i < size; i++) {
    const node = await chordNode(options)
    nodes.push(node)
    await node.connect(...nodes[0].addr)
  }
  await waitForRing(nodes)
  return nodes
}

/** Messages and bytes of event traffic `node` received, from its own metrics. */
async function eventsReceived(node: ChordSocket): Promise<number> {
  const native = await (node as any).opened()
  const events = native.metrics().traffic.find((kind: any) => kind.kind === 'events')
  return events?.receivedMessages ?? 0
}

/** Every live member other than `subscriber` knows `count` subscribers. */
const subscribed = (nodes: ChordSocket[], count: number) => () => nodes.filter((n) => !n.closed).every((n) => n.stats().subscribers >= count)

test('a listener hears every change made elsewhere; nodes that do not listen are sent no event', async (t) => {
  const nodes = await ring(t, 5)
  const listener = nodes[2]
  const heard: string[] = []
  listener.on('add', (key) => heard.push(`add ${key}`))
  listener.on('delete', (key) => heard.push(`delete ${key}`))
  await until(subscribed(nodes.filter((n) => n !== listener), 1), 5000, 'the subscription to reach every member')
  const expected: string[] = []
  for (let i = 0; i < 60; i++) {
    await nodes[i % nodes.length].set(`key-${i}`, 'v')
    expected.push(`add key-${i}`)
  }
  for (let i = 0; i < 60; i += 3) {
    await nodes[(i + 1) % nodes.length].delete(`key-${i}`)
    expected.push(`delete key-${i}`)
  }
  await until(() => heard.length >= expected.length, 5000, 'every event')
  t.deepEqual([...heard].sort(), [...expected].sort())
  const others = nodes.filter((n) => n !== listener)
  const received = await Promise.all(others.map(eventsReceived))
  t.deepEqual(received, [0, 0, 0, 0], 'no event reaches a node that does not listen')
  // Each write sent at most one event: to the listener, unless the listener owns the key.
  const sent = nodes.reduce((sum, n) => sum + n.stats().eventsForwarded, 0)
  t.true(sent <= expected.length, `${sent} events sent for ${expected.length} changes`)
})

test('a listener hears the changes made through an owner crash and a join, each once', async (t) => {
  const nodes = await ring(t, 6)
  const listener = nodes[0]
  const heard = new Map<string, number>()
  listener.on('add', (key) => heard.set(key.toString(), (heard.get(key.toString()) ?? 0) + 1))
  await until(subscribed(nodes.slice(1), 1), 5000, 'the subscription to reach every member')
  const written: string[] = []
  const writeSome = async (from: ChordSocket[], round: string) => {
    for (let i = 0; i < 40; i++) {
      const key = `${round}-${i}`
      await from[i % from.length].set(key, 'v')
      written.push(key)
    }
  }
  await writeSome(nodes, 'before')
  // Crash the owner of a key (no goodbye, no hand-off): its successor takes the arc over.
  const owner = (await listener.lookup('after-crash-0')).owner
  const victim = nodes.find((n) => n.id === owner.id && n !== listener) ?? nodes[3]
  await victim.destroy()
  const live = nodes.filter((n) => !n.closed)
  await waitForRing(live)
  await writeSome(live, 'after-crash')
  // A newcomer copies the subscribers from its successor as soon as it is in the ring.
  const joiner = await chordNode()
  t.teardown(() => joiner.close())
  await joiner.connect(...live[1].addr)
  await waitForRing([...live, joiner])
  await until(() => joiner.stats().subscribers >= 1, 5000, 'the joiner to know the listener')
  await writeSome([joiner, ...live], 'after-join')
  await until(() => written.every((key) => heard.has(key)), 8000, 'every write heard')
  const twice = [...heard].filter(([, n]) => n > 1).map(([key]) => key)
  t.deepEqual(twice, [], 'no change heard twice')
  t.is(heard.size, written.length)
})

test('watch(prefix) yields only the changes under it, in order per key; return() ends the subscription', async (t) => {
  const nodes = await ring(t, 4)
  const watcher = nodes[1]
  const watch = watcher.watch('user/')
  await until(subscribed([nodes[0], nodes[2], nodes[3]], 1), 5000, 'the watch to reach every member')
  for (let round = 0; round < 3; round++) {
    for (const key of ['user/ada', 'user/bob', 'other/carl']) await nodes[round].set(key, `v${round}`)
  }
  await nodes[3].delete('user/bob')
  const changes: ChordChange[] = []
  for await (const change of watch) {
    changes.push(change)
    if (changes.length === 7) break
  }
  const seen = changes.map((c) => `${c.kind} ${c.key}`)
  t.deepEqual(seen.filter((s) => s.includes('ada')), ['add user/ada', 'add user/ada', 'add user/ada'])
  t.deepEqual(seen.filter((s) => s.includes('bob')), ['add user/bob', 'add user/bob', 'add user/bob', 'delete user/bob'])
  t.false(seen.some((s) => s.includes('other/')))
  // `break` called return(): the subscription is withdrawn ring-wide.
  await until(() => nodes.every((n) => n.stats().subscribers === 0), 5000, 'the subscription to be withdrawn')
  t.throws(() => watcher.watch(Buffer.alloc(2000)), { instanceOf: RangeError, message: /prefix is 2000 bytes; the limit is 1024/ })
  t.throws(() => watcher.watch(42 as any), { instanceOf: TypeError, message: /prefix must be/ })
})

test('a client watches through the member it is attached to, and hears no change it did not ask for', async (t) => {
  const nodes = await ring(t, 3)
  const client = await chordNode({ join: false })
  t.teardown(() => client.close())
  await client.connect(...nodes[0].addr)
  const watch = client.watch('app/')
  await until(subscribed(nodes.slice(1), 1), 5000, "the client's member to subscribe ring-wide")
  for (let i = 0; i < 10; i++) await nodes[i % 3].set(`app/${i}`, 'v')
  await nodes[1].set('elsewhere', 'v')
  const keys: string[] = []
  for await (const change of watch) {
    keys.push(change.key.toString())
    if (keys.length === 10) break
  }
  t.deepEqual(keys.sort(), Array.from({ length: 10 }, (_, i) => `app/${i}`).sort())
  await sleep(200)
  t.is(await eventsReceived(client), 10, 'the client was sent exactly the changes it watches')
})

test('a listener removed is a subscription withdrawn; events off means no subscription', async (t) => {
  const nodes = await ring(t, 3)
  const onAdd = () => {}
  nodes[0].on('add', onAdd)
  await until(subscribed(nodes.slice(1), 1), 5000, 'the subscription')
  nodes[0].off('add', onAdd)
  await until(() => nodes.every((n) => n.stats().subscribers === 0), 5000, 'the subscription to be withdrawn')
  await nodes[1].set('unheard', 'v')
  t.is(nodes.reduce((sum, n) => sum + n.stats().eventsForwarded, 0), 0)
})
