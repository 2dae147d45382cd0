/**
 * Static key pairs. A node's id is derived from its public key (the first 16 bytes of
 * BLAKE3("chordnet-node-id-v2\0" ‖ public key)), and with Noise a peer proves it holds the key,
 * so a node cannot pick its place on the ring. Give a node the same `keyPair` to keep its id
 * across restarts; keep the secret key secret.
 */
import { checkBytes, checkString, describe } from './coerce'
import { fromNative } from './errors'
import { native } from './native'

/** An X25519 key pair: 32 bytes each. */
export interface KeyPair {
  publicKey: Buffer
  secretKey: Buffer
}

/** A fresh key pair from the operating system's random source. */
export function generateKeyPair(): KeyPair {
  return native.generateKeyPair()
}

/** The node id (32 hex digits) that a public key gives its node. */
export function nodeIdOf(publicKey: Buffer | Uint8Array): string {
  return wrap(() => native.nodeIdOf(checkBytes(publicKey, 'publicKey')))
}

/** A key pair as text (JSON with hex fields), to keep in a file only its owner can read. */
export function serializeKeyPair(pair: KeyPair): string {
  const { publicKey, secretKey } = checkKeyPair(pair, 'pair')
  return JSON.stringify({ publicKey: publicKey.toString('hex'), secretKey: secretKey.toString('hex') })
}

/** The key pair `serializeKeyPair` wrote; throws if it is malformed or the keys do not belong together. */
export function parseKeyPair(text: string): KeyPair {
  checkString(text, 'text')
  let fields: { publicKey?: unknown; secretKey?: unknown }
  try {
    fields = JSON.parse(text)
  } catch {
    throw new TypeError('a serialized key pair must be JSON: {"publicKey": hex, "secretKey": hex}')
  }
  const hex = (value: unknown, what: string) => {
    if (typeof value !== 'string' || !/^[0-9a-f]{64}$/i.test(value)) throw new TypeError(`${what} must be 64 hex digits`)
    return Buffer.from(value, 'hex')
  }
  const secretKey = hex(fields?.secretKey, 'secretKey')
  const publicKey = hex(fields?.publicKey, 'publicKey')
  const derived = wrap(() => native.keyPairFromSecret(secretKey))
  if (!derived.publicKey.equals(publicKey)) throw new RangeError('publicKey is not the public key of secretKey')
  return derived
}

/** A key pair's type check (the engine checks that the keys belong together). @internal */
export function checkKeyPair(pair: unknown, what: string): KeyPair {
  if (pair === null || typeof pair !== 'object') throw new TypeError(`${what} must be { publicKey, secretKey } (got ${describe(pair)})`)
  const { publicKey, secretKey } = pair as Record<string, unknown>
  return { publicKey: checkBytes(publicKey, `${what}.publicKey`), secretKey: checkBytes(secretKey, `${what}.secretKey`) }
}

function wrap<T>(call: () => T): T {
  try {
    return call()
  } catch (error) {
    throw fromNative(error)
  }
}
