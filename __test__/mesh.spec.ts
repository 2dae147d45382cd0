import test from 'ava'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ChordnetError, MeshSocket, Message, Protocol, ProtocolMismatchError } from '../index'
import { closeAll, meshNodes, nextMessage, until } from './helpers'

test('two nodes whisper and reply', async (t) => {
  const [a, b] = await meshNodes(2)
  b.on('message', (message) => void message.reply('pong', Buffer.from([1, 2])))
  const reply = nextMessage(a)
  const peer = await a.connect(...b.addr)
  t.is(peer.id, b.id)
  t.deepEqual(peer.addr, b.addr)
  await a.send(['ping'], { flag: 'whisper', to: b.id })
  const message = await reply
  t.deepEqual(message.packets, [Buffer.from('pong'), Buffer.from([1, 2])])
  t.is(message.sender, b.id)
  t.is(message.origin, b.id, 'a whisper comes straight from its author')
  t.false(message.broadcast)
  t.true(Math.abs(message.time - Date.now() / 1000) < 60)
  await closeAll([a, b])
})

test('a broadcast over a 10-node chain reaches each other node exactly once', async (t) => {
  const nodes = await meshNodes(10, { peerExchange: false })
  for (let i = 1; i < nodes.length; i++) await nodes[i].connect(...nodes[i - 1].addr)
  const counts = new Map<string, number>()
  const markers = new Set<string>()
  for (const node of nodes) {
    node.on('message', (m) => {
      if (m.packets[0].toString() === 'marker') markers.add(node.id)
      else counts.set(node.id, (counts.get(node.id) ?? 0) + 1)
    })
  }
  await nodes[4].send(['hello', 'mesh'])
  // A chain has one path to each node and every link is FIFO: once a second broadcast has
  // reached every node, any duplicate of the first would have arrived before it.
  await nodes[4].send(['marker'])
  await until(() => markers.size === 9, 5000, 'the marker at all nine')
  t.is(counts.get(nodes[4].id), undefined)
  t.deepEqual([...counts.values()], Array(9).fill(1))
  await closeAll(nodes)
})

test('a broadcast names its claimed origin beside the proven neighbour it came from', async (t) => {
  const nodes = await meshNodes(3, { peerExchange: false })
  t.teardown(() => closeAll(nodes))
  const [a, b, c] = nodes
  await b.connect(...a.addr)
  await c.connect(...b.addr)
  const atC = nextMessage(c)
  await a.send(['to all'])
  const message = await atC
  t.true(message.broadcast)
  t.is(message.origin, a.id, 'the author it claims')
  t.deepEqual(message.originAddr, a.addr)
  t.is(message.sender, b.id, 'the neighbour it arrived from')
  t.deepEqual(message.senderAddr, b.addr)
})

test('peer exchange turns a chain into a full mesh', async (t) => {
  const nodes = await meshNodes(5)
  t.teardown(() => closeAll(nodes))
  for (let i = 1; i < nodes.length; i++) await nodes[i].connect(...nodes[i - 1].addr)
  const others = (node: MeshSocket) => nodes.filter((n) => n !== node).map((n) => n.id).sort()
  const peersOf = (node: MeshSocket) => node.peers.map((p) => p.id).sort()
  await until(() => nodes.every((n) => n.peers.length === 4), 5000, 'four peers each')
  for (const node of nodes) t.deepEqual(peersOf(node), others(node), `${node.id.slice(0, 8)} is connected to each of the other four, once`)
})

test('maxPeers bounds connections: a full node refuses more with a reason', async (t) => {
  const [hub, ...others] = await meshNodes(6, { peerExchange: false })
  t.teardown(() => closeAll([hub, ...others]))
  const limited = new MeshSocket('127.0.0.1', 0, { maxPeers: 3 })
  await limited.ready
  t.teardown(() => limited.close())
  const results = []
  for (const node of others) results.push(await node.connect(...limited.addr).then(() => 'ok', (e) => e.code))
  t.deepEqual(results, ['ok', 'ok', 'ok', 'ERR_PEER_REJECTED', 'ERR_PEER_REJECTED'])
  t.is(limited.peers.length, 3)
})

test('a whisper reaches only its target', async (t) => {
  const [a, b, c] = await meshNodes(3)
  await b.connect(...a.addr)
  await c.connect(...a.addr)
  await until(() => c.peers.length === 2, 5000, 'full mesh')
  const gotB: Message[] = []
  b.on('message', (m) => gotB.push(m))
  const toC = nextMessage(c)
  await a.send(['secret'], { to: c.id })
  t.deepEqual((await toC).packets, [Buffer.from('secret')])
  // A whisper to b after the secret travels the same a→b connection (FIFO): had the secret
  // gone to b, it would arrive first.
  await a.send(['marker'], { to: b.id })
  await until(() => gotB.length > 0, 5000, 'the marker at b')
  t.deepEqual(gotB.map((m) => m.packets[0].toString()), ['marker'])
  await closeAll([a, b, c])
})

test('protocol mismatch rejects with both subnets and neither side keeps the connection', async (t) => {
  const a = new MeshSocket('127.0.0.1', 0, { protocol: new Protocol('alpha') })
  const b = new MeshSocket('127.0.0.1', 0, { protocol: new Protocol('beta') })
  await Promise.all([a.ready, b.ready])
  const errors: Error[] = []
  b.on('error', (e) => errors.push(e))
  const error = await t.throwsAsync(a.connect(...b.addr), { instanceOf: ProtocolMismatchError })
  t.is(error!.code, 'ERR_PROTOCOL_MISMATCH')
  t.is((error as ProtocolMismatchError).ours, 'alpha')
  t.is((error as ProtocolMismatchError).theirs, 'beta')
  t.regex(error!.message, /alpha/)
  t.regex(error!.message, /beta/)
  await until(() => errors.length > 0, 3000, 'the error on the other side')
  t.regex(errors[0].message, /protocol mismatch/)
  t.deepEqual(a.peers, [])
  t.deepEqual(b.peers, [])
  await closeAll([a, b])
})

test('Protocol ids are stable and depend on the subnet and encryption', (t) => {
  t.is(new Protocol('x').id, new Protocol('x', 'Noise').id)
  t.not(new Protocol('x').id, new Protocol('x', 'Plaintext').id)
  t.not(new Protocol('x').id, new Protocol('y').id)
  t.regex(new Protocol('x').id, /^[0-9a-f]{32}$/)
})

test('recv drains queued messages and handlers run in order until one returns true', async (t) => {
  const [a, b] = await meshNodes(2)
  const seen: string[] = []
  b.registerHandler((m) => {
    seen.push(`first:${m.packets[0]}`)
    return m.packets[0].toString() === 'eat'
  })
  b.registerHandler((m) => {
    seen.push(`second:${m.packets[0]}`)
  })
  await a.connect(...b.addr)
  for (const word of ['eat', 'keep1', 'keep2']) await a.send([word], { to: b.id })
  await until(() => seen.length === 5, 5000, 'handlers')
  t.deepEqual(seen, ['first:eat', 'first:keep1', 'second:keep1', 'first:keep2', 'second:keep2'])
  t.deepEqual(b.recv(1).map((m) => m.packets[0].toString()), ['keep1'])
  t.deepEqual(b.recv().map((m) => m.packets[0].toString()), ['keep2'])
  t.deepEqual(b.recv(), [])
  await closeAll([a, b])
})

test('wrong argument types raise TypeError saying what was expected', async (t) => {
  t.throws(() => new MeshSocket(42 as any, 0), { instanceOf: TypeError, message: /addr must be a string/ })
  t.throws(() => new MeshSocket('127.0.0.1', 70000), { instanceOf: TypeError, message: /port/ })
  t.throws(() => new MeshSocket('127.0.0.1', 0, { maxPeers: -1 }), { instanceOf: TypeError, message: /maxPeers/ })
  t.throws(() => new Protocol(5 as any), { instanceOf: TypeError })
  const [a] = await meshNodes(1)
  await t.throwsAsync(a.send([{} as any]), { instanceOf: TypeError, message: /packets\[0\] must be a string, Buffer or Uint8Array/ })
  await t.throwsAsync(a.send('x' as any), { instanceOf: TypeError, message: /array/ })
  await t.throwsAsync(a.connect('127.0.0.1', 'x' as any), { instanceOf: TypeError })
  t.throws(() => a.registerHandler(3 as any), { instanceOf: TypeError })
  await a.close()
})

test('an oversized message is refused before it is sent', async (t) => {
  const [a, b] = await meshNodes(2, { maxFrameBytes: 64 * 1024 })
  await a.connect(...b.addr)
  await t.throwsAsync(a.send([Buffer.alloc(100 * 1024)]), { message: /frame limit/ })
  await closeAll([a, b])
})

test('calls after close reject clearly and the port is released', async (t) => {
  const [a] = await meshNodes(1)
  const [host, port] = a.addr
  await a.close()
  t.true(a.closed)
  const error = await t.throwsAsync(a.send(['x']), { instanceOf: ChordnetError })
  t.is(error!.code, 'ERR_SOCKET_CLOSED')
  await t.throwsAsync(a.connect('127.0.0.1', 1), { message: /closed/ })
  await a.close() // idempotent
  const again = new MeshSocket(host, port)
  await t.notThrowsAsync(again.ready)
  await again.close()
})

test('ready rejects with the OS error when the port is taken', async (t) => {
  const [a] = await meshNodes(1)
  const taken = new MeshSocket('127.0.0.1', a.addr[1])
  const error = await t.throwsAsync(taken.ready)
  t.is((error as ChordnetError).code, 'EADDRINUSE')
  t.regex(error!.message, /EADDRINUSE|in use/)
  await taken.close()
  await a.close()
})

test('connect to a closed port rejects with ECONNREFUSED', async (t) => {
  const [a, b] = await meshNodes(2)
  const port = b.addr[1]
  await b.close()
  const error = await t.throwsAsync(a.connect('127.0.0.1', port))
  t.is((error as ChordnetError).code, 'ECONNREFUSED')
  await a.close()
})

test('a process whose sockets are all closed exits by itself', (t) => {
  const script = join(__dirname, 'fixtures', 'exit-after-close.js')
  const started = Date.now()
  const result = spawnSync(process.execPath, [script], { timeout: 20_000, encoding: 'utf8' })
  t.is(result.status, 0, result.stderr)
  t.regex(result.stdout, /closed/)
  t.true(Date.now() - started < 15_000)
})

test('disconnect is reported when a peer closes', async (t) => {
  const [a, b] = await meshNodes(2)
  await a.connect(...b.addr)
  const gone = new Promise<string>((resolve) => a.on('disconnect', (peer) => resolve(peer.id)))
  const bId = b.id
  await b.close()
  t.is(await gone, bId)
  await a.close()
})
