/**
 * A raw TCP client that speaks (or deliberately breaks) the wire protocol, for bad-input tests.
 * With a Noise protocol (the default) it first completes the Noise handshake with the
 * independent client in ./noise.ts, then every frame it writes travels in an encrypted record;
 * `writeRaw` bypasses the session to send bytes as they are.
 */
import { Packr, Unpackr } from 'msgpackr'
import { connect, Socket } from 'node:net'
import { generateKeyPair, KeyPair, nodeIdOf, Protocol } from '../index'
import { native } from '../lib/native'
import { networkKeyOf } from '../lib/protocol'
import { initiate, OPEN_NETWORK_KEY, Session } from './noise'

const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** One length-prefixed MessagePack frame. */
export function frame(message: unknown): Buffer {
  const body = packr.pack(message)
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length)
  return Buffer.concat([prefix, body])
}

export const FAKE_ID = '0123456789abcdef0123456789abcdef'

export function hello(protocol = new Protocol(''), port = 1, id = FAKE_ID, member = false): unknown {
  return {
    Hello: {
      version: native.protocolVersion(),
      protocol_id: Buffer.from(protocol.id, 'hex'),
      subnet: protocol.subnet,
      encryption: protocol.encryption,
      node: { id: Buffer.from(id, 'hex'), host: '127.0.0.1', port },
      member,
    },
  }
}

export interface HandshakeOptions {
  /** Our static key pair (default: a fresh one). */
  keyPair?: KeyPair
  /** The node id to claim in the Hello (default: the id of our key, or FAKE_ID in Plaintext). */
  claimId?: string
  /** Claim to be a ring member. */
  member?: boolean
}

export class RawPeer {
  readonly socket: Socket
  readonly closed: Promise<void>
  /** The Noise session once the handshake is done. */
  session?: Session
  /** The id this peer claimed in its Hello. */
  id = FAKE_ID
  #raw = Buffer.alloc(0)
  #plain = Buffer.alloc(0)
  #noiseWaiter?: (message: Buffer) => void
  #waiters: ((frame: any) => void)[] = []
  #frames: any[] = []

  private constructor(socket: Socket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      this.#raw = Buffer.concat([this.#raw, chunk])
      this.#drain()
    })
  }

  #drain() {
    if (this.#noiseWaiter) {
      if (this.#raw.length < 2) return
      const size = this.#raw.readUInt16BE(0)
      if (this.#raw.length < 2 + size) return
      const message = this.#raw.subarray(2, 2 + size)
      this.#raw = this.#raw.subarray(2 + size)
      const waiter = this.#noiseWaiter
      this.#noiseWaiter = undefined
      waiter(message)
      return
    }
    if (this.session) {
      while (this.#raw.length >= 2 && this.#raw.length >= 2 + this.#raw.readUInt16BE(0)) {
        const size = this.#raw.readUInt16BE(0)
        this.#plain = Buffer.concat([this.#plain, this.session.open(this.#raw.subarray(2, 2 + size))])
        this.#raw = this.#raw.subarray(2 + size)
      }
    } else {
      this.#plain = Buffer.concat([this.#plain, this.#raw])
      this.#raw = Buffer.alloc(0)
    }
    while (this.#plain.length >= 4) {
      const size = this.#plain.readUInt32BE(0)
      if (this.#plain.length < 4 + size) break
      const decoded = unpackr.unpack(this.#plain.subarray(4, 4 + size))
      this.#plain = this.#plain.subarray(4 + size)
      const waiter = this.#waiters.shift()
      if (waiter) waiter(decoded)
      else this.#frames.push(decoded)
    }
  }

  static open(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawPeer(socket)))
      socket.once('error', reject)
    })
  }

  /** Open, run the Noise handshake (unless the protocol is Plaintext) and send a Hello; resolves once welcomed. */
  static async handshaken(port: number, protocol = new Protocol(''), options: HandshakeOptions = {}): Promise<RawPeer> {
    const peer = await RawPeer.open(port)
    await peer.noise(protocol, options)
    peer.write(frame(hello(protocol, 1, peer.id, options.member ?? false)))
    const answer = await peer.next()
    if (!answer.Welcome) throw new Error(`handshake refused: ${JSON.stringify(answer)}`)
    return peer
  }

  /** The Noise handshake alone (nothing for a Plaintext protocol); rejects if it fails. */
  async noise(protocol: Protocol, options: HandshakeOptions = {}): Promise<void> {
    if (protocol.encryption !== 'Noise') return
    const keys = options.keyPair ?? generateKeyPair()
    const networkKey = networkKeyOf(protocol) ?? OPEN_NETWORK_KEY
    const receive = () =>
      new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no handshake message in time')), 5000)
        this.#noiseWaiter = (message) => {
          clearTimeout(timer)
          resolve(message)
        }
        this.#drain()
      })
    const { session, third } = await initiate(keys.secretKey, keys.publicKey, networkKey, (bytes) => this.socket.write(bytes), receive)
    this.socket.write(third)
    this.session = session
    this.id = options.claimId ?? nodeIdOf(keys.publicKey)
    this.#drain()
  }

  /** Write bytes: sealed in a record once a Noise session is up, as they are before. */
  write(bytes: Buffer | string): void {
    const data = typeof bytes === 'string' ? Buffer.from(bytes) : bytes
    this.socket.write(this.session ? this.session.seal(data) : data)
  }

  /** Write bytes as they are, whatever the session. */
  writeRaw(bytes: Buffer | string): void {
    this.socket.write(bytes)
  }

  next(timeoutMs = 5000): Promise<any> {
    const queued = this.#frames.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no frame in time')), timeoutMs)
      this.#waiters.push((f) => {
        clearTimeout(timer)
        resolve(f)
      })
    })
  }

  /** The next frame that is not peer exchange. */
  async nextNonPeers(timeoutMs = 5000): Promise<any> {
    for (;;) {
      const f = await this.next(timeoutMs)
      if (!('Peers' in f)) return f
    }
  }

  /** The response to request `id`, skipping anything else the node sends meanwhile (peer lists, ring events). */
  async response(id: number, timeoutMs = 5000): Promise<any> {
    for (;;) {
      const f = await this.next(timeoutMs)
      if (f.Response?.id === id) return f.Response.body
    }
  }

  /** Resolves true if the node closes the connection within the time. */
  async closedWithin(ms: number): Promise<boolean> {
    return Promise.race([this.closed.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))])
  }
}
