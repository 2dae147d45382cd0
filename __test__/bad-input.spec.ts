/**
 * A node under attack over real sockets. Every attack runs against a default node, so through
 * an established Noise session where the attack is past the handshake (the raw client of
 * ./raw.ts speaks Noise with the independent implementation in ./noise.ts); a few wire tests
 * use an explicitly Plaintext node.
 */
import test from 'ava'
import { ChordSocket, ChordnetError, generateKeyPair, HandshakeError, MeshSocket, nodeIdOf, Protocol } from '../index'
import { limits } from '../lib/native'
import { FAKE_ID, frame, hello, RawPeer } from './raw'
import { prefixed } from './noise'
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
  // Before the handshake, as a plaintext frame: the handshake reader decodes it and refuses.
  const early = await RawPeer.open(port)
  early.write(framed(randomBytes(64, 7)))
  await expectClosedWithReason(t, early, errors, /closed connection from .*malformed frame/)
  // Before the handshake, as a Noise message: it does not authenticate.
  const noisy = await RawPeer.open(port)
  noisy.write(prefixed(randomBytes(48, 9)))
  await expectClosedWithReason(t, noisy, errors, /closed connection from .*did not authenticate/)
  // After the handshake, sealed in a record: the connection's reader decrypts it, decodes it and refuses.
  const late = await RawPeer.handshaken(port)
  late.write(framed(randomBytes(200, 11)))
  await expectClosedWithReason(t, late, errors, /closed connection to .*(malformed frame|unknown message type)/)
  // After the handshake, as a raw record: it does not authenticate.
  const forged = await RawPeer.handshaken(port)
  forged.writeRaw(prefixed(randomBytes(200, 13)))
  await expectClosedWithReason(t, forged, errors, /closed connection to .*failed authentication/)
  await stillServing()
})

test('tampered ciphertext closes only that connection', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.handshaken(port)
  const record = peer.session!.seal(frame({ Request: { id: 1, body: 'Ping' } }))
  record[record.length - 20] ^= 0x01 // one bit of the ciphertext, not of the length
  peer.writeRaw(record)
  await expectClosedWithReason(t, peer, errors, /closed connection to .*Noise record failed authentication/)
  await stillServing()
})

test('a plaintext Hello is refused by a default node and never welcomed', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.open(port)
  peer.write(frame(hello(new Protocol('', 'Plaintext'))))
  const answer = await peer.next()
  t.falsy(answer.Welcome)
  t.is(answer.Reject.code, 'encryption-mismatch')
  t.is(answer.Reject.subnet, '', 'nothing about the network is revealed')
  await expectClosedWithReason(t, peer, errors, /refused a plaintext Hello/)
  await stillServing()
})

test('a peer whose claimed id is not the id of its key is refused', async (t) => {
  const { node, port, errors, stillServing } = await target(t)
  const keyPair = generateKeyPair()
  // A made-up id, or the id of someone else's key: both refused.
  for (const claimId of [FAKE_ID, nodeIdOf(generateKeyPair().publicKey)]) {
    const error = await RawPeer.handshaken(port, new Protocol(''), { keyPair, claimId }).then(() => undefined, (e: Error) => e)
    t.regex(error!.message, /"code":"id-mismatch"/)
  }
  await until(() => errors.some((e) => /is not the id of the key proved in the handshake/.test(e.message)), 3000, 'the refusal to be reported')
  // The same key with its own id is welcome.
  const honest = await RawPeer.handshaken(port, new Protocol(''), { keyPair })
  t.is(honest.id, nodeIdOf(keyPair.publicKey))
  await until(() => node.peers.some((p) => p.id === honest.id), 3000, 'the honest peer to be listed')
  honest.socket.destroy()
  await until(() => node.peers.length === 1, 3000, 'only the friend to remain')
  await stillServing()
})

test('a wrong network key is refused with HandshakeError and nothing else is learned', async (t) => {
  const members = new Protocol('keyed', { networkKey: 'the members passphrase' })
  const outsiders = new Protocol('keyed', { networkKey: 'a guess' })
  t.is(members.id, outsiders.id, 'the protocol id does not depend on the key')
  const member = new MeshSocket('127.0.0.1', 0, { protocol: members })
  const outsider = new MeshSocket('127.0.0.1', 0, { protocol: outsiders })
  const open = new MeshSocket('127.0.0.1', 0, { protocol: new Protocol('keyed') })
  await Promise.all([member.ready, outsider.ready, open.ready])
  t.teardown(() => closeAll([member, outsider, open]))
  const errors: ChordnetError[] = []
  member.on('error', (e) => errors.push(e))
  let connected = 0
  member.on('connect', () => connected++)
  for (const stranger of [outsider, open]) {
    const error = await t.throwsAsync(stranger.connect(...member.addr), { instanceOf: HandshakeError })
    t.is(error!.code, 'ERR_HANDSHAKE')
    t.regex(error!.message, /network key does not match/)
  }
  await until(() => errors.filter((e) => /did not authenticate \(its network key differs/.test(e.message)).length === 2, 3000, 'both attempts reported')
  t.is(connected, 0)
  t.deepEqual(member.peers, [])
  // A raw client without the key gets only bytes it cannot authenticate.
  const raw = await RawPeer.open(member.addr[1])
  await t.throwsAsync(raw.noise(new Protocol('keyed')), { message: /unable to authenticate|Unsupported state/ })
  raw.socket.destroy()
  // With the key, the same node is welcome.
  const friend = new MeshSocket('127.0.0.1', 0, { protocol: new Protocol('keyed', { networkKey: 'the members passphrase' }) })
  await friend.ready
  t.teardown(() => friend.close())
  t.is((await friend.connect(...member.addr)).id, member.id)
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
  // A handshake message announcing 65,535 bytes: far more than any handshake message.
  const peer = await RawPeer.open(port)
  peer.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))
  await expectClosedWithReason(t, peer, errors, /Noise handshake message of 65535 bytes exceeds the limit/)
  // A frame announcing 4 GiB inside an authentic record.
  const late = await RawPeer.handshaken(port)
  late.write(Buffer.from([0xff, 0xff, 0xff, 0xf0, 1, 2, 3]))
  await expectClosedWithReason(t, late, errors, /closed connection to .*frame of 4294967280 bytes exceeds the limit/)
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
  await peer.noise(new Protocol('intruders'))
  peer.write(frame(hello(new Protocol('intruders'), 1, peer.id)))
  const answer = await peer.next()
  t.is(answer.Reject.code, 'protocol-mismatch')
  t.regex(answer.Reject.reason, /intruders/)
  await expectClosedWithReason(t, peer, errors, /protocol mismatch/)
  await stillServing()
})

test('a repeated Hello after the handshake is a protocol error', async (t) => {
  const { port, errors, stillServing } = await target(t)
  const peer = await RawPeer.handshaken(port)
  peer.write(frame(hello(new Protocol(''), 1, peer.id)))
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
  const { maxKeyBytes, maxValueBytes } = limits
  await t.throwsAsync(node.set('big', Buffer.alloc(maxValueBytes + 1)), { instanceOf: RangeError, message: new RegExp(`value is ${maxValueBytes + 1} bytes; the limit is ${maxValueBytes}`) })
  await t.throwsAsync(node.set(Buffer.alloc(maxKeyBytes + 1), 'v'), { instanceOf: RangeError, message: new RegExp(`key is ${maxKeyBytes + 1} bytes`) })
  t.false(await node.has('big'))
  await node.set('max', Buffer.alloc(maxValueBytes, 7))
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

test('chord: a far-future version is refused, never observed, and the key stays writable', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  const errors: ChordnetError[] = []
  node.on('error', (e) => errors.push(e))
  await node.set('victim', 'before')
  const peer = await RawPeer.handshaken(node.addr[1], node.protocol, { member: true })
  const writer = Buffer.from(peer.id, 'hex')
  const forever = { millis: 2n ** 64n - 1n, counter: 2 ** 32 - 1, writer }
  const soon = { millis: BigInt(Date.now() + 10 * 60_000), counter: 0, writer }
  let id = 1
  for (const version of [forever, soon]) {
    for (const kind of ['Replicate', 'Handoff']) {
      peer.write(frame({ Request: { id, body: { [kind]: { items: [{ key: Buffer.from('victim'), value: Buffer.from('evil'), version }] } } } }))
      const answer = await peer.response(id++)
      t.is(answer.Error?.code, 'clock-drift', JSON.stringify(answer))
    }
  }
  await until(() => errors.filter((e) => e.code === 'ERR_BAD_PEER' && /ms ahead of our clock/.test(e.message)).length === 4, 3000, 'each refusal reported')
  // The connection stays open (a skewed clock is a misconfiguration, not an attack).
  peer.write(frame({ Request: { id: 99, body: 'Ping' } }))
  t.is(await peer.response(99), 'Pong')
  t.is((await node.get('victim'))?.toString(), 'before')
  await node.set('victim', 'legit-after')
  t.is((await node.get('victim'))?.toString(), 'legit-after', 'an acknowledged write is not lost')
  t.is(node.localGet('victim')?.toString(), 'legit-after')
  peer.socket.destroy()
})

test('chord: Notify naming another node is refused', async (t) => {
  const node = new ChordSocket('127.0.0.1', 0, chordOptions())
  await node.ready
  t.teardown(() => node.close())
  node.on('error', () => {})
  const peer = await RawPeer.handshaken(node.addr[1], node.protocol, { member: true })
  const other = { id: Buffer.from(nodeIdOf(generateKeyPair().publicKey), 'hex'), host: '127.0.0.1', port: 9 }
  peer.write(frame({ Request: { id: 1, body: { Notify: other } } }))
  t.is((await peer.response(1)).Error?.code, 'bad-request')
  t.is(node.stats().predecessor, undefined)
  peer.socket.destroy()
})

test('plaintext wire: an explicitly Plaintext node speaks the protocol in clear (for debugging)', async (t) => {
  const protocol = new Protocol(fileSubnet(), 'Plaintext')
  const node = new ChordSocket('127.0.0.1', 0, chordOptions({ protocol }))
  await node.ready
  t.teardown(() => node.close())
  const errors: ChordnetError[] = []
  node.on('error', (e) => errors.push(e))
  const peer = await RawPeer.handshaken(node.addr[1], protocol)
  t.is(peer.session, undefined)
  peer.write(frame({ Request: { id: 7, body: 'Ping' } }))
  t.is(await peer.response(7), 'Pong')
  peer.write(framed(randomBytes(100, 5)))
  await expectClosedWithReason(t, peer, errors, /closed connection to .*(malformed frame|unknown message type)/)
  // A Noise client is told the node uses Plaintext.
  const noisy = await RawPeer.open(node.addr[1])
  await t.throwsAsync(noisy.noise(new Protocol(fileSubnet())))
  await expectClosedWithReason(t, noisy, errors, /refused a Noise handshake: this node uses Plaintext/)
})

function fileSubnet(): string {
  return chordOptions().protocol.subnet
}
