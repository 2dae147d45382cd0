/**
 * The public face of issue #10: Noise by default, the Protocol forms, key pairs and ids, the
 * clock-drift option. Attacks over raw sockets are in bad-input.spec.ts.
 */
import test from 'ava'
import { ChordSocket, generateKeyPair, MeshSocket, nodeIdOf, parseKeyPair, Protocol, serializeKeyPair } from '../index'
import { limits } from '../lib/native'
import { networkKeyOf } from '../lib/protocol'
import { closeAll, fileProtocol } from './helpers'

test('Protocol is Noise by default; Plaintext only when asked for; ids differ between them', (t) => {
  t.is(new Protocol('app').encryption, 'Noise')
  t.is(new Protocol('app', 'Plaintext').encryption, 'Plaintext')
  t.is(new Protocol('app', { encryption: 'Plaintext' }).encryption, 'Plaintext')
  t.is(new Protocol('app', {}).encryption, 'Noise')
  t.not(new Protocol('app').id, new Protocol('app', 'Plaintext').id)
  t.is(new Protocol('app').id, new Protocol('app', 'Noise').id)
  t.is(new Protocol('app', { networkKey: 'k1-passphrase' }).id, new Protocol('app', { networkKey: Buffer.alloc(32, 7) }).id, 'the key is not part of the id')
  t.true(new Protocol('app', { networkKey: 'k' }).hasNetworkKey)
  t.false(new Protocol('app').hasNetworkKey)
  t.false(JSON.stringify(new Protocol('app', { networkKey: 'secret-passphrase' })).includes('secret'), 'the key never shows')
})

test('a network key is derived from the key and the subnet, as docs/PROTOCOL.md §3.3 says', (t) => {
  const key = (subnet: string, networkKey: string | Buffer) => networkKeyOf(new Protocol(subnet, { networkKey }))!.toString('hex')
  t.is(key('my-app', 'correct horse battery staple'), '7b8bad80f8b19712e2367c66b4b99511bba80959c219f0137d2a59dd65768e93')
  t.is(key('', 'correct horse battery staple'), '1d0f7ae66edad5a0243b27c75774e4c8ff5598406c556752a74238be36867397')
  t.is(key('my-app', Buffer.alloc(32)), '8da2b50df38ec8c37fdfc28db738880523888c0484cafbcb7b58c32c727da0a1')
  t.not(key('my-app', Buffer.alloc(32, 1)), key('my-other-app', Buffer.alloc(32, 1)))
})

test('Protocol checks types with TypeError and the key with the engine', (t) => {
  t.throws(() => new Protocol('app', 'TLS' as any), { instanceOf: TypeError, message: /'Noise' or 'Plaintext'/ })
  t.throws(() => new Protocol('app', 7 as any), { instanceOf: TypeError })
  t.throws(() => new Protocol('app', { networkKey: 42 as any }), { instanceOf: TypeError, message: /networkKey must be a string, Buffer or Uint8Array/ })
  const short = t.throws(() => new Protocol('app', { networkKey: Buffer.alloc(limits.minNetworkKeyBytes - 1) }), { instanceOf: RangeError })
  t.is((short as any).code, 'ERR_INVALID_ARGUMENT')
  t.throws(() => new Protocol('app', { networkKey: '' }), { instanceOf: RangeError, message: /must not be empty/ })
  // A network key needs Noise: Plaintext could keep nobody out.
  const plain = new Protocol('app', { encryption: 'Plaintext', networkKey: 'k-passphrase' })
  t.throws(() => new MeshSocket('127.0.0.1', 0, { protocol: plain }), { instanceOf: RangeError, message: /needs Noise/ })
})

test('a node keeps the id of the key pair it is given; ids derive from public keys', async (t) => {
  const keyPair = generateKeyPair()
  t.is(keyPair.publicKey.length, 32)
  t.is(keyPair.secretKey.length, 32)
  const a = new MeshSocket('127.0.0.1', 0, { keyPair, protocol: fileProtocol })
  await a.ready
  t.is(a.id, nodeIdOf(keyPair.publicKey))
  await a.close()
  const again = new MeshSocket('127.0.0.1', 0, { keyPair: parseKeyPair(serializeKeyPair(keyPair)), protocol: fileProtocol })
  const other = new MeshSocket('127.0.0.1', 0, { protocol: fileProtocol })
  await Promise.all([again.ready, other.ready])
  t.teardown(() => closeAll([again, other]))
  t.is(again.id, a.id, 'the same key pair, the same id')
  t.not(other.id, a.id)
  t.is((await other.connect(...again.addr)).id, a.id, 'and peers see that id, proved')
})

test('key pairs are checked: type, length, and that the halves belong together', (t) => {
  const pair = generateKeyPair()
  t.throws(() => new MeshSocket('127.0.0.1', 0, { keyPair: { publicKey: 'x', secretKey: pair.secretKey } as any }), { instanceOf: TypeError })
  t.throws(() => new MeshSocket('127.0.0.1', 0, { keyPair: { publicKey: pair.publicKey.subarray(1), secretKey: pair.secretKey } }), { instanceOf: RangeError, message: /32 bytes/ })
  const stranger = generateKeyPair()
  t.throws(() => new MeshSocket('127.0.0.1', 0, { keyPair: { publicKey: stranger.publicKey, secretKey: pair.secretKey } }), { instanceOf: RangeError, message: /is not the public key of/ })
  t.throws(() => parseKeyPair('{"publicKey":"00","secretKey":"11"}'), { instanceOf: TypeError, message: /64 hex digits/ })
  const swapped = JSON.stringify({ publicKey: stranger.publicKey.toString('hex'), secretKey: pair.secretKey.toString('hex') })
  t.throws(() => parseKeyPair(swapped), { instanceOf: RangeError })
  t.throws(() => nodeIdOf(Buffer.alloc(31)), { instanceOf: RangeError, message: /32 bytes/ })
})

test('maxClockDriftMs is an option with engine-checked limits', (t) => {
  const { minClockDriftMs, maxClockDriftMs } = limits
  t.true(minClockDriftMs <= limits.defaultMaxClockDriftMs && limits.defaultMaxClockDriftMs <= maxClockDriftMs)
  t.throws(() => new ChordSocket('127.0.0.1', 0, { maxClockDriftMs: minClockDriftMs - 1 }), { instanceOf: RangeError, message: new RegExp(`maxClockDriftMs must be from ${minClockDriftMs} to ${maxClockDriftMs}`) })
  t.throws(() => new ChordSocket('127.0.0.1', 0, { maxClockDriftMs: '5' as any }), { instanceOf: TypeError })
})
