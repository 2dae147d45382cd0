/**
 * A second, independent implementation of chordnet's secure channel, written from
 * docs/PROTOCOL.md §3 on node:crypto alone: the initiator side of
 * `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s` and the record layer. The bad-input tests use it to
 * attack nodes through an established Noise session (and it shows the document is enough to
 * interoperate).
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, KeyObject } from 'node:crypto'

const PROTOCOL_NAME = 'Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s'
/** Prologue: "chordnet\0" and the protocol version this implements, 6 (u16 BE). */
export const PROLOGUE = Buffer.concat([Buffer.from('chordnet\0'), Buffer.from([0, 6])])
/** The network key of an open network (docs/PROTOCOL.md test vector). */
export const OPEN_NETWORK_KEY = Buffer.from('b0d5c1bbe6fe567d9878226b6621ff1172d3b6d63857e9222f16a3c2078cf89a', 'hex')
const TAG = 16
const MAX_RECORD_PAYLOAD = 65535 - TAG

const hash = (...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHash('blake2s256')).digest()
const hmac = (key: Buffer, ...parts: Buffer[]) => parts.reduce((h, p) => h.update(p), createHmac('blake2s256', key)).digest()

function hkdf(ck: Buffer, ikm: Buffer, outputs: 2 | 3): Buffer[] {
  const temp = hmac(ck, ikm)
  const first = hmac(temp, Buffer.from([1]))
  const second = hmac(temp, first, Buffer.from([2]))
  return outputs === 2 ? [first, second] : [first, second, hmac(temp, second, Buffer.from([3]))]
}

function nonce(n: bigint): Buffer {
  const out = Buffer.alloc(12)
  out.writeBigUInt64LE(n, 4)
  return out
}

export function encrypt(key: Buffer, n: bigint, ad: Buffer, plaintext: Buffer): Buffer {
  const cipher = createCipheriv('chacha20-poly1305', key, nonce(n), { authTagLength: TAG })
  cipher.setAAD(ad, { plaintextLength: plaintext.length })
  return Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
}

export function decrypt(key: Buffer, n: bigint, ad: Buffer, ciphertext: Buffer): Buffer {
  const decipher = createDecipheriv('chacha20-poly1305', key, nonce(n), { authTagLength: TAG })
  decipher.setAAD(ad, { plaintextLength: ciphertext.length - TAG })
  decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG))
  return Buffer.concat([decipher.update(ciphertext.subarray(0, ciphertext.length - TAG)), decipher.final()])
}

const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex')
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex')
const privateKey = (secret: Buffer) => createPrivateKey({ key: Buffer.concat([X25519_PKCS8, secret]), format: 'der', type: 'pkcs8' })
const publicKey = (raw: Buffer) => createPublicKey({ key: Buffer.concat([X25519_SPKI, raw]), format: 'der', type: 'spki' })
const dh = (ours: KeyObject, theirs: Buffer) => diffieHellman({ privateKey: ours, publicKey: publicKey(theirs) })

/** Noise's SymmetricState. */
class Symmetric {
  ck: Buffer
  h: Buffer
  k: Buffer | null = null
  n = 0n
  constructor() {
    this.h = hash(Buffer.from(PROTOCOL_NAME)) // the name is longer than 32 bytes
    this.ck = this.h
  }
  mixHash(data: Buffer) {
    this.h = hash(this.h, data)
  }
  mixKey(ikm: Buffer) {
    ;[this.ck, this.k] = hkdf(this.ck, ikm, 2)
    this.n = 0n
  }
  mixKeyAndHash(ikm: Buffer) {
    const [ck, temp, k] = hkdf(this.ck, ikm, 3)
    this.ck = ck
    this.mixHash(temp)
    this.k = k
    this.n = 0n
  }
  encryptAndHash(plaintext: Buffer): Buffer {
    const out = this.k ? encrypt(this.k, this.n++, this.h, plaintext) : plaintext
    this.mixHash(out)
    return out
  }
  decryptAndHash(ciphertext: Buffer): Buffer {
    const out = this.k ? decrypt(this.k, this.n++, this.h, ciphertext) : ciphertext
    this.mixHash(ciphertext)
    return out
  }
}

/** An established session: records out with `seal`, in with `open`. */
export class Session {
  #sendKey: Buffer
  #receiveKey: Buffer
  #sent = 0n
  #received = 0n
  readonly remoteStatic: Buffer
  constructor(sendKey: Buffer, receiveKey: Buffer, remoteStatic: Buffer) {
    this.#sendKey = sendKey
    this.#receiveKey = receiveKey
    this.remoteStatic = remoteStatic
  }
  /** Plaintext as records (2-byte length, ciphertext), cut at 65,519 bytes. */
  seal(plaintext: Buffer): Buffer {
    const records: Buffer[] = []
    for (let at = 0; at < plaintext.length || at === 0; at += MAX_RECORD_PAYLOAD) {
      const ciphertext = encrypt(this.#sendKey, this.#sent++, Buffer.alloc(0), plaintext.subarray(at, at + MAX_RECORD_PAYLOAD))
      records.push(prefixed(ciphertext))
      if (plaintext.length === 0) break
    }
    return Buffer.concat(records)
  }
  /** One record's ciphertext (prefix removed) to plaintext; throws if it does not authenticate. */
  open(ciphertext: Buffer): Buffer {
    return decrypt(this.#receiveKey, this.#received++, Buffer.alloc(0), ciphertext)
  }
}

export function prefixed(message: Buffer): Buffer {
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(message.length)
  return Buffer.concat([prefix, message])
}

/**
 * The initiator's handshake. `send` writes bytes; `receive` resolves with the responder's next
 * Noise message (prefix removed). Returns the session; throws when message 2 does not
 * authenticate (a different network key).
 */
export async function initiate(secretKey: Buffer, publicKeyRaw: Buffer, networkKey: Buffer, send: (bytes: Buffer) => void, receive: () => Promise<Buffer>): Promise<{ session: Session; third: Buffer }> {
  const state = new Symmetric()
  state.mixHash(PROLOGUE)
  // -> psk, e
  state.mixKeyAndHash(networkKey)
  const ephemeral = generateKeyPairSync('x25519')
  const e = ephemeral.publicKey.export({ format: 'der', type: 'spki' }).subarray(X25519_SPKI.length)
  state.mixHash(e)
  state.mixKey(e)
  send(prefixed(Buffer.concat([e, state.encryptAndHash(Buffer.alloc(0))])))
  // <- e, ee, s, es
  const second = await receive()
  const re = second.subarray(0, 32)
  state.mixHash(re)
  state.mixKey(re)
  state.mixKey(dh(ephemeral.privateKey, re))
  const rs = state.decryptAndHash(second.subarray(32, 80))
  state.mixKey(dh(ephemeral.privateKey, rs))
  state.decryptAndHash(second.subarray(80))
  // -> s, se
  const s = state.encryptAndHash(publicKeyRaw)
  state.mixKey(dh(privateKey(secretKey), re))
  const third = prefixed(Buffer.concat([s, state.encryptAndHash(Buffer.alloc(0))]))
  const [initiatorKey, responderKey] = hkdf(state.ck, Buffer.alloc(0), 2)
  return { session: new Session(initiatorKey, responderKey, rs), third }
}
