import { checkString, describe, toBytes } from './coerce'
import { fromNative } from './errors'
import { native } from './native'

/**
 * How connections are protected. `'Noise'` (the default): every connection runs a Noise
 * handshake (`Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s`), frames are encrypted and authenticated,
 * and a node's id is bound to its key. `'Plaintext'` offers **no protection** — anyone on the
 * path reads and forges traffic and ids are only claimed — and exists for debugging and wire
 * tests only.
 */
export type Encryption = 'Noise' | 'Plaintext'

export interface ProtocolOptions {
  /** `'Noise'` (default) or `'Plaintext'` (no protection: debugging and wire tests only). */
  encryption?: Encryption
  /**
   * A pre-shared key that admits a node to the network: nodes without the same key cannot
   * complete a handshake (their `connect()` rejects with `HandshakeError`, `ERR_HANDSHAKE`).
   * A string is a passphrase, stretched with Argon2id; bytes (at least 16, e.g. 32 random
   * bytes) are used through BLAKE3. Either way the subnet is mixed in, so the same key on two
   * subnets makes two unrelated network keys (and a dictionary of passphrases precomputed for
   * one subnet is of no use against another). Noise only. Never sent, and not part of `id`.
   */
  networkKey?: string | Buffer | Uint8Array
}

/** Derived network keys, kept off the object so they never show up in logs or JSON. */
const NETWORK_KEYS = new WeakMap<Protocol, Buffer>()

/**
 * A network's protocol: nodes only talk to nodes with the same subnet, encryption and protocol
 * version, and (with a `networkKey`) only to nodes holding the same key.
 *
 * ```ts
 * new Protocol('my-app')                                  // Noise, open network
 * new Protocol('my-app', { networkKey: 'a long passphrase' })  // Noise, members only
 * new Protocol('my-app', 'Plaintext')                     // no protection: debugging only
 * ```
 *
 * `id` (32 hex digits) is a hash of the protocol version, subnet and encryption: it differs
 * between Noise and Plaintext, and does not depend on the network key (nodes of one subnet with
 * different keys share an id, yet cannot connect).
 */
export class Protocol {
  readonly subnet: string
  readonly encryption: Encryption
  readonly id: string
  /** Whether a network key was given (the key itself is never exposed). */
  readonly hasNetworkKey: boolean
  constructor(subnet: string, options: Encryption | ProtocolOptions = {}) {
    checkString(subnet, 'subnet')
    const settings: ProtocolOptions = typeof options === 'string' ? { encryption: options } : options
    if (settings === null || typeof settings !== 'object') throw new TypeError(`options must be 'Noise', 'Plaintext' or an object (got ${describe(options)})`)
    const encryption = settings.encryption ?? 'Noise'
    if (encryption !== 'Noise' && encryption !== 'Plaintext') throw new TypeError(`encryption must be 'Noise' or 'Plaintext' (got ${describe(encryption)})`)
    this.subnet = subnet
    this.encryption = encryption
    this.id = native.protocolId(subnet, encryption)
    this.hasNetworkKey = settings.networkKey !== undefined
    if (settings.networkKey !== undefined) {
      // A string stays a string (a passphrase, stretched by the engine); bytes are bytes.
      const key = typeof settings.networkKey === 'string' ? settings.networkKey : toBytes(settings.networkKey, 'options.networkKey')
      try {
        NETWORK_KEYS.set(this, native.deriveNetworkKey(key, subnet))
      } catch (error) {
        throw fromNative(error)
      }
    }
  }
}

/** The derived network key of a protocol, for the native start options. @internal */
export function networkKeyOf(protocol: Protocol): Buffer | undefined {
  return NETWORK_KEYS.get(protocol)
}
