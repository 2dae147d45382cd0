/**
 * chordnet: a replicated Chord DHT for Node.js with a Rust core.
 *
 * - `MeshSocket`: a node of a peer-to-peer mesh (broadcast and whisper messages).
 * - `ChordSocket`: a MeshSocket whose ring shares one dict (`get`, `set`, `delete`, ...).
 * - `createTestnet(n)`: a local ring for tests.
 * - `Protocol`, `generateKeyPair()`: Noise encryption, network keys and node identities.
 */
export { Protocol, Encryption, ProtocolOptions } from './protocol'
export { KeyPair, generateKeyPair, nodeIdOf, serializeKeyPair, parseKeyPair } from './keys'
export { MeshSocket, MeshOptions, MeshSocketEvents, Message, PeerInfo, SendOptions, Handler, MAX_QUEUED_MESSAGES } from './mesh'
export { ChordSocket, ChordOptions, ChordSocketEvents, ChordStats, LookupResult, NodeAddress, Mapping, MAX_KEY_BYTES, MAX_VALUE_BYTES, ChordChange, MAX_WATCHED_PREFIXES, MAX_WATCH_PREFIX_BYTES } from './chord'
export { ChordnetError, ChordnetRangeError, HandshakeError, KeyError, ProtocolMismatchError, StorageError } from './errors'
export { BytesLike } from './coerce'
export { limits, Limits } from './native'
export { createTestnet, waitForRing, isOneRing, RingLinks, Testnet } from './testnet'
export type { ViewOptions, ViewServer } from './view/server'
export type { RingView, MemberView, Activity, ViewEvent } from './view/collector'
