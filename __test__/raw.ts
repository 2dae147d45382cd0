/** A raw TCP client that speaks (or deliberately breaks) the wire protocol, for bad-input tests. */
import { Packr, Unpackr } from 'msgpackr'
import { connect, Socket } from 'node:net'
import { Protocol } from '../index'
import { native } from '../lib/native'

const packr = new Packr({ useRecords: false, variableMapSize: true })
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true })

/** One length-prefixed MessagePack frame. */
export function frame(message: unknown): Buffer {
  const body = packr.pack(message)
  const prefix = Buffer.alloc(4)
  prefix.writeUInt32BE(body.length)
  return Buffer.concat([prefix, body])
}

export function hello(protocol = new Protocol(''), port = 1): unknown {
  return {
    Hello: {
      version: native.protocolVersion(),
      protocol_id: Buffer.from(protocol.id, 'hex'),
      subnet: protocol.subnet,
      encryption: protocol.encryption,
      node: { id: Buffer.from('0123456789abcdef0123456789abcdef', 'hex'), host: '127.0.0.1', port },
      member: false,
    },
  }
}

export class RawPeer {
  readonly socket: Socket
  readonly closed: Promise<void>
  #buffer = Buffer.alloc(0)
  #waiters: ((frame: any) => void)[] = []
  #frames: any[] = []

  private constructor(socket: Socket) {
    this.socket = socket
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()))
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk])
      while (this.#buffer.length >= 4) {
        const size = this.#buffer.readUInt32BE(0)
        if (this.#buffer.length < 4 + size) break
        const decoded = unpackr.unpack(this.#buffer.subarray(4, 4 + size))
        this.#buffer = this.#buffer.subarray(4 + size)
        const waiter = this.#waiters.shift()
        if (waiter) waiter(decoded)
        else this.#frames.push(decoded)
      }
    })
  }

  static open(port: number): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => resolve(new RawPeer(socket)))
      socket.once('error', reject)
    })
  }

  /** Open and complete a valid handshake. */
  static async handshaken(port: number, protocol = new Protocol('')): Promise<RawPeer> {
    const peer = await RawPeer.open(port)
    peer.write(frame(hello(protocol)))
    const answer = await peer.next()
    if (!answer.Welcome) throw new Error(`handshake refused: ${JSON.stringify(answer)}`)
    return peer
  }

  write(bytes: Buffer | string): void {
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
