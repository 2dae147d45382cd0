import test from 'ava'
import { ChordSocket, ChordnetError, MeshSocket, Protocol } from '../index'
import { limits } from '../lib/native'
import { frame, hello, RawPeer } from './raw'
import { chordOptions, closeAll, meshNodes, nextMessage, until } from './helpers'

/** A node under attack plus a well-behaved peer; after each attack the two must still talk. */
async function target(t: any) {
  const [node, friend] = await meshNodes(2)
  t.teardown(() => closeAll([node, friend]))
  await friend.connect(...node.addr)
  const errors: ChordnetError[] = []
  node.on('error', (e) => errors.push(e))
  const stillServing = async () => {
    const got = nextMessage(node)
    await friend.send(['still there?'], { to: node.id })
    t.deepEqual((await got).packets, [Buffer.from('still there?')])
    t.is(node.peers.length, 1)
  }
  return { node, port: node.addr[1], errors, stillServing }
}

async function expectClosedWithReason(t: any, peer: RawPeer, errors: ChordnetError[], reason: RegExp) {
  t.true(await peer.closedWithin(6000), 'the node closes the connection')
  await until(() => errors.some((e) => reason.test(e.message)), 3000, `an error matching ${reason}`)
}

/** Bytes from a seeded generator (xorshift), so a failure replays. */
function randomBytes(length: number, seed: number): Buffer {
  let x = seed >>> 0 || 1
  return Buffer.from(Array.from({ length }, () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) & 0xff
  }))
}

/** A frame with a well-formed length prefix around `body`: it passes the size check. */
function framed(body: Buffer): Buffer {
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length)
  return Buffer.concat([prefix, body])
}

test('random bytes in a well-framed body reach the decoder and close only that connection', async (t) => {
  const { port, errors, stillServing } = await target(t)
  // Before the handshake: the handshake reader decodes it and refuses.
  const early = await RawPeer.open(port)
  early.write(framed(randomBytes(64, 7)))
  await expectClosedWithReason(t, early, errors, /closed connection from .*malformed frame/)
  // After the handshake: the connection's reader decodes it and refuses.
  const late = await RawPeer.handshaken(port)
  late.write(framed(randomBytes(200, 11)))
  await expectClosedWithReason(t, late, errors, /closed connection to .*(malformed frame|unknown message type)/)
  await stillServing()
})

test('a truncated frame closes that connection when the peer stops', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.open(port)
  const full = frame(hello())
  peer.write(full.subarray(0, full.length - 5))
  peer.socket.end()
  await expectClosedWithReason(t, peer, errors, /closed during the handshake/)
  await stillServing()
})

test('an oversized length prefix is refused before any body is buffered', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.open(port)
  peer.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))
  await expectClosedWithReason(t, peer, errors, /exceeds the limit/)
  await stillServing()
})

test('an HTTP request on the port is named as such', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.open(port)
  peer.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n')
  await expectClosedWithReason(t, peer, errors, /not HTTP/)
  await stillServing()
})

test('an unknown message type after the handshake closes that connection', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.handshaken(port)
  peer.write(frame({ Teleport: { to: 'mars' } }))
  await expectClosedWithReason(t, peer, errors, /unknown message type/)
  await stillServing()
})

test('a wrong protocol is rejected with a reason in the Reject frame', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.open(port)
  peer.write(frame(hello(new Protocol('intruders'))))
  const answer = await peer.next()
  t.is(answer.Reject.code, 'protocol-mismatch')
  t.regex(answer.Reject.reason, /intruders/)
  await expectClosedWithReason(t, peer, errors, /protocol mismatch/)
  await stillServing()
})

test('a repeated Hello after the handshake is a protocol error', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.handshaken(port)
  peer.write(frame(hello()))
  await expectClosedWithReason(t, peer, errors, /unexpected Hello/)
  await stillServing()
})

test('hundreds of hostile connections do not grow memory without bound', async (t) => {
  const { port, stillServing } = await target(t)
  const before = process.memoryUsage().rss
  for (let round = 0; round < 10; round++) {
    const peers = await Promise.all(Array.from({ length: 30 }, () => RawPeer.open(port)))
    peers.forEach((p, i) => p.write(i % 2 ? Buffer.from([0x7f, 0xff, 0xff, 0xff]) : Buffer.alloc(64, 0xc1)))
    await Promise.all(peers.map((p) => p.closedWithin(6000)))
  }
  const grown = (process.memoryUsage().rss - before) / 2 ** 20
  t.true(grown < 64, `RSS grew ${grown.toFixed(1)} MiB`)
  await stillServing()
})

test('chord: a response with an unknown request id is ignored, the connection keeps working', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  await node.set('safe', 'value')
  const peer = await RawPeer.handshaken(node.addr[1], node.protocol)
  peer.write(frame({ Response: { id: 987654, body: 'Pong' } }))
  peer.write(frame({ Request: { id: 7, body: 'Ping' } }))
  const answer = await peer.nextNonPeers()
  t.deepEqual(answer, { Response: { id: 7, body: 'Pong' } })
  t.false(await peer.closedWithin(200))
  t.is((await node.get('safe'))?.toString(), 'value')
  peer.socket.destroy()
})

test('chord: a malformed store request closes that connection and loses nothing', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  const errors: ChordnetError[] = []
  node.on('error', (e) => errors.push(e))
  await node.set('kept', 'yes')
  const peer = await RawPeer.handshaken(node.addr[1], node.protocol)
  peer.write(frame({ Request: { id: 1, body: { Replicate: { items: 'not a list' } } } }))
  await expectClosedWithReason(t, peer, errors, /malformed frame/)
  const second = await RawPeer.handshaken(node.addr[1], node.protocol)
  second.write(frame({ Request: { id: 2, body: { Write: { key: Buffer.from('kept'), value: 12, mode: 'Set' } } } }))
  t.true(await second.closedWithin(3000))
  t.is((await node.get('kept'))?.toString(), 'yes')
})

test('chord: oversized keys and values are refused with a clear error and nothing is stored', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  await t.throwsAsync(node.set('big', Buffer.alloc(1024 * 1024 + 1)), { instanceOf: RangeError, message: /value is 1048577 bytes; the limit is 1048576/ })
  await t.throwsAsync(node.set(Buffer.alloc(64 * 1024 + 1), 'v'), { instanceOf: RangeError, message: /key is 65537 bytes/ })
  t.false(await node.has('big'))
  await node.set('max', Buffer.alloc(1024 * 1024, 7))
  t.is((await node.get('max'))?.length, 1024 * 1024)
})

test('chord: an oversized raw frame from a peer is refused without storing anything', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions({ maxFrameBytes: limits.minChordFrameBytes }))
  await node.ready
  t.teardown(() => node.close())
  const peer = await RawPeer.handshaken(node.addr[1], node.protocol)
  peer.write(frame({ Request: { id: 3, body: { Write: { key: Buffer.from('huge'), value: Buffer.alloc(limits.minChordFrameBytes), mode: 'Set' } } } }))
  t.true(await peer.closedWithin(3000))
  t.false(await node.has('huge'))
})

test('chord: a frame limit too small for the largest value is refused at start, naming the floor', (t) => {
  const error = t.throws(() => new ChordSocket('127.0.0.1', 0, { maxFrameBytes: 64 * 1024 }), { instanceOf: RangeError })
  t.is((error as any).code, 'ERR_INVALID_ARGUMENT')
  t.regex(error!.message, new RegExp(`maxFrameBytes must be at least ${limits.minChordFrameBytes} for a ChordSocket`))
  t.notThrows(() => new MeshSocket('127.0.0.1', 0, { maxFrameBytes: 64 * 1024 }).close())
})
