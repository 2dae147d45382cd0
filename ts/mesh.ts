/**
 * MeshSocket: a node of a peer-to-peer mesh. Coerces arguments, wraps the native node's
 * promises and turns its event batches into EventEmitter events; all networking is in Rust.
 */
import { EventEmitter } from 'node:events'
import { BytesLike, checkBoolean, checkCount, checkPort, checkString, describe, toBytes } from './coerce'
import { call, ChordnetError, fromNative } from './errors'
import { checkKeyPair, KeyPair } from './keys'
import { limits, native, NativeEvent, NativeNode, NativeStartOptions } from './native'
import { networkKeyOf, Protocol } from './protocol'

/** A connected peer. */
export interface PeerInfo {
  /** The peer's node id (32 hex digits). */
  id: string
  /** Where the peer listens. */
  addr: [string, number]
  /** True when we dialed it, false when it dialed us. */
  outbound: boolean
  /** True when it is a member of a Chord ring. */
  member: boolean
}

export interface MeshOptions {
  /** The network's protocol (subnet, encryption, network key); default `new Protocol('')`: Noise, open network. */
  protocol?: Protocol
  /** This node's static key pair (`generateKeyPair()`); its id derives from the public key. Default: a fresh one, so a fresh id. */
  keyPair?: KeyPair
  /** Address advertised to peers when it differs from the bound one (e.g. behind NAT); required when bound to `0.0.0.0` or `::`, which peers refuse as an address. Port 0: the bound port. */
  outAddr?: [string, number]
  /** Most open peer connections, inbound and outbound together (default `limits.defaultMaxPeers`, at most `limits.maxPeers`). Inbound connections beyond it are refused. */
  maxPeers?: number
  /** Largest frame accepted from a peer, in bytes (default `limits.defaultMaxFrameBytes`, from `limits.minFrameBytes` — `limits.minChordFrameBytes` for a ChordSocket — to `limits.maxFrameBytes`); bigger frames close that connection. */
  maxFrameBytes?: number
  /** How long to wait for any single answer from a peer, in ms (default `limits.defaultRequestTimeoutMs`, at most `limits.maxRequestTimeoutMs`). */
  requestTimeoutMs?: number
  /**
   * A peer silent this long while we wait on it is suspected of having failed, in ms (default
   * `limits.defaultFailureTimeoutMs`, from `limits.minFailureTimeoutMs` to `requestTimeoutMs`):
   * probed at half of it, routed around at all of it.
   */
  failureTimeoutMs?: number
  /** Connect to peers learned from peers, up to `maxPeers` (default true). */
  peerExchange?: boolean
}

/** Messages kept for `recv()` before the oldest are dropped (`limits.maxQueuedMessages`). */
export const MAX_QUEUED_MESSAGES: number = limits.maxQueuedMessages

/**
 * A message received from the mesh.
 *
 * What is proven: `sender`, the peer the message arrived from (with Noise it proved its id in
 * the handshake). A whisper comes straight from its author, so its sender is its author (a
 * whisper naming another origin is dropped and reported). A broadcast is flooded from node to
 * node: its `sender` is the neighbour that forwarded it, and its `origin` is whatever the
 * broadcast claims — any node it passed through could have made it up.
 */
export class Message {
  /** The payload: the packets as sent, as Buffers. */
  readonly packets: Buffer[]
  /** The id of the peer this message arrived from, proven by its key (with Noise): a whisper's author, a broadcast's forwarder. */
  readonly sender: string
  /** Where the sender listens (as its handshake said). */
  readonly senderAddr: [string, number]
  /** The id of the node the message says wrote it: for a whisper, `sender`; for a broadcast, claimed and not checked. */
  readonly origin: string
  /** Where the origin says it listens (claimed, like `origin`). */
  readonly originAddr: [string, number]
  /** When it was sent, in seconds since the epoch (sender's clock). */
  readonly time: number
  /** True for a broadcast, false for a whisper. */
  readonly broadcast: boolean
  readonly #socket: MeshSocket

  /** @internal */
  constructor(socket: MeshSocket, event: NativeEvent) {
    this.#socket = socket
    this.packets = event.packets ?? []
    this.sender = event.sender!.id
    this.senderAddr = [event.sender!.host, event.sender!.port]
    this.origin = event.origin?.id ?? this.sender
    this.originAddr = event.origin ? [event.origin.host, event.origin.port] : this.senderAddr
    this.time = (event.timeMs ?? 0) / 1000
    this.broadcast = event.broadcast ?? false
  }

  /** Whisper back to the sender (over the connection it came by; for a broadcast, the neighbour that forwarded it). */
  reply(...packets: BytesLike[]): Promise<void> {
    return this.#socket.send(packets, { flag: 'whisper', to: this.sender, addr: this.senderAddr })
  }
}

export interface SendOptions {
  /** `'broadcast'` (default without `to`) reaches every node once; `'whisper'` reaches only `to`. */
  flag?: 'broadcast' | 'whisper'
  /** Target node id of a whisper. */
  to?: string
  /** Where the target listens, to connect first if not connected. */
  addr?: [string, number]
}

/** A handler gets each message before the queue and the `'message'` event; returning true consumes it. */
export type Handler = (message: Message, socket: MeshSocket) => boolean | void | Promise<boolean | void>

export interface MeshSocketEvents {
  connect: [peer: PeerInfo]
  disconnect: [peer: PeerInfo, reason: string]
  message: [message: Message]
  error: [error: ChordnetError]
}

/**
 * A node of the mesh network.
 *
 * ```ts
 * const a = new MeshSocket('127.0.0.1', 0)
 * const b = new MeshSocket('127.0.0.1', 0)
 * await Promise.all([a.ready, b.ready])
 * b.on('message', (m) => m.reply('pong'))
 * await a.connect(...b.addr)
 * await a.send(['ping'], { flag: 'whisper', to: b.id })
 * ```
 */
export class MeshSocket extends EventEmitter {
  /** Resolves once the socket listens; rejects with the OS error (e.g. `code: 'EADDRINUSE'`). */
  readonly ready: Promise<void>
  readonly protocol: Protocol
  protected node?: NativeNode
  #closed = false
  #closing?: Promise<void>
  #queue: Message[] = []
  #handlers: Handler[] = []
  #pump?: Promise<void>
  readonly #taps = new Set<(event: NativeEvent) => void>()

  constructor(addr: string, port: number, options: MeshOptions = {}) {
    super()
    checkString(addr, 'addr')
    checkPort(port, 'port')
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object (got ${describe(options)})`)
    this.protocol = options.protocol ?? new Protocol('')
    if (!(this.protocol instanceof Protocol)) throw new TypeError(`options.protocol must be a Protocol (got ${describe(options.protocol)})`)
    const start: NativeStartOptions = { host: addr, port, subnet: this.protocol.subnet, encryption: this.protocol.encryption, networkKey: networkKeyOf(this.protocol) }
    if (options.keyPair !== undefined) {
      const { publicKey, secretKey } = checkKeyPair(options.keyPair, 'options.keyPair')
      start.publicKey = publicKey
      start.secretKey = secretKey
    }
    if (options.outAddr !== undefined) {
      if (!Array.isArray(options.outAddr) || options.outAddr.length !== 2) throw new TypeError(`options.outAddr must be [host, port] (got ${describe(options.outAddr)})`)
      start.outHost = checkString(options.outAddr[0], 'options.outAddr[0]')
      start.outPort = checkPort(options.outAddr[1], 'options.outAddr[1]')
    }
    if (options.maxPeers !== undefined) start.maxPeers = checkCount(options.maxPeers, 'options.maxPeers')
    if (options.maxFrameBytes !== undefined) start.maxFrameBytes = checkCount(options.maxFrameBytes, 'options.maxFrameBytes')
    if (options.requestTimeoutMs !== undefined) start.requestTimeoutMs = checkCount(options.requestTimeoutMs, 'options.requestTimeoutMs')
    if (options.failureTimeoutMs !== undefined) start.failureTimeoutMs = checkCount(options.failureTimeoutMs, 'options.failureTimeoutMs')
    if (options.peerExchange !== undefined) start.peerExchange = checkBoolean(options.peerExchange, 'options.peerExchange')
    this.configure(start, options)
    // Ranges are the engine's to check: an option beyond its limit throws here, at once.
    try {
      native.validateOptions(start)
    } catch (error) {
      throw fromNative(error)
    }
    this.ready = call(native.startNode(start)).then((node) => {
      this.node = node
      this.#pump = this.#pumpEvents(node)
    })
    // A failed start is reported through `ready`; never as an unhandled rejection.
    this.ready.catch(() => {})
  }

  /** Subclasses add their options to the native start options. @internal */
  protected configure(_start: NativeStartOptions, _options: MeshOptions): void {}

  /** This node's id (32 hex digits). Available once `ready` resolved. */
  get id(): string {
    return this.#native().id
  }

  /** The address peers reach this node at. Available once `ready` resolved. */
  get addr(): [string, number] {
    const node = this.#native()
    return [node.host, node.port]
  }

  /** The routing table: peers currently connected. */
  get peers(): PeerInfo[] {
    if (!this.node || this.#closed) return []
    return this.node.peers().map(toPeerInfo)
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Connect to a node and complete the handshake. Rejects with `ProtocolMismatchError` when its
   * subnet, encryption or version differs, and with `HandshakeError` (`ERR_HANDSHAKE`) when its
   * network key differs.
   */
  async connect(host: string, port: number): Promise<PeerInfo> {
    checkString(host, 'host')
    checkPort(port, 'port')
    const node = await this.opened()
    return toPeerInfo(await call(node.connect(host, port)))
  }

  /** Send packets to every node (broadcast) or to one node (`{ flag: 'whisper', to: id }`). */
  async send(packets: BytesLike[], options: SendOptions = {}): Promise<void> {
    if (!Array.isArray(packets)) throw new TypeError(`packets must be an array of strings, Buffers or Uint8Arrays (got ${describe(packets)})`)
    const buffers = packets.map((p, i) => toBytes(p, `packets[${i}]`))
    const flag = options.flag ?? (options.to === undefined ? 'broadcast' : 'whisper')
    if (flag !== 'broadcast' && flag !== 'whisper') throw new TypeError(`options.flag must be 'broadcast' or 'whisper' (got ${describe(flag)})`)
    const node = await this.opened()
    if (flag === 'broadcast') return call(node.send(buffers, null, null, null))
    const to = checkString(options.to, 'options.to (the target id of a whisper)')
    const addr = options.addr
    return call(node.send(buffers, to, addr?.[0] ?? null, addr?.[1] ?? null))
  }

  /** Take up to `n` queued messages (all of them by default), oldest first. */
  recv(n?: number): Message[] {
    if (n !== undefined) checkCount(n, 'n')
    return this.#queue.splice(0, n ?? this.#queue.length)
  }

  /** Add a handler; handlers run in order until one returns true (that message is then not queued nor emitted). */
  registerHandler(handler: Handler): void {
    if (typeof handler !== 'function') throw new TypeError(`handler must be a function (got ${describe(handler)})`)
    this.#handlers.push(handler)
  }

  /**
   * Close every connection and release the port; a ChordSocket first leaves the ring and hands
   * its keys over. Further calls reject with `ERR_SOCKET_CLOSED`.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  /**
   * Close at once: drop every connection and the port without saying goodbye or handing data
   * over — to peers it looks like a crash. Use `close()` for a graceful exit.
   */
  destroy(): Promise<void> {
    this.#closing ??= this.#close(true)
    return this.#closing
  }

  async #close(abrupt = false): Promise<void> {
    try {
      await this.ready
    } catch {
      this.#closed = true
      return // never started: nothing to release
    }
    this.#closed = true
    await call(abrupt ? this.node!.destroy() : this.node!.close())
    await this.#pump
  }

  /** The native node once ready and not closed. @internal */
  protected async opened(): Promise<NativeNode> {
    if (this.#closed) throw new ChordnetError('ERR_SOCKET_CLOSED', 'the socket is closed')
    await this.ready
    if (this.#closed) throw new ChordnetError('ERR_SOCKET_CLOSED', 'the socket is closed')
    return this.node!
  }

  #native(): NativeNode {
    if (!this.node) throw new ChordnetError('ERR_NOT_READY', 'the socket is not ready yet: await socket.ready first')
    return this.node
  }

  async #pumpEvents(node: NativeNode): Promise<void> {
    for (;;) {
      let batch: NativeEvent[] | null
      try {
        batch = await node.nextEvents(512)
      } catch {
        return
      }
      if (batch === null) return
      for (const event of batch) {
        if (this.#taps.size > 0) for (const tap of this.#taps) tap(event)
        try {
          await this.dispatch(event)
        } catch (error) {
          // A throwing user listener must not stop event delivery.
          process.nextTick(() => {
            throw error
          })
        }
      }
    }
  }

  /**
   * Observe every native event as it arrives, whatever its kind (the web view's event log).
   * Returns the function that stops it. @internal
   */
  tapEvents(tap: (event: NativeEvent) => void): () => void {
    this.#taps.add(tap)
    return () => this.#taps.delete(tap)
  }

  /** Route one native event to listeners. @internal */
  protected async dispatch(event: NativeEvent): Promise<void> {
    switch (event.kind) {
      case 'connect':
        this.emit('connect', toPeerInfo(event.peer!))
        break
      case 'disconnect':
        this.emit('disconnect', toPeerInfo(event.peer!), event.reason ?? '')
        break
      case 'message':
        await this.#deliver(new Message(this, event))
        break
      case 'error':
        // Background errors (a peer sent garbage, ...) are informational: the node keeps
        // serving, so they are only emitted to those who listen for them.
        if (this.listenerCount('error') > 0) this.emit('error', new ChordnetError(event.code ?? 'ERR_INTERNAL', event.reason ?? ''))
        break
    }
  }

  async #deliver(message: Message): Promise<void> {
    for (const handler of this.#handlers) {
      if ((await handler(message, this)) === true) return
    }
    this.#queue.push(message)
    if (this.#queue.length > MAX_QUEUED_MESSAGES) this.#queue.shift()
    this.emit('message', message)
  }
}

export interface MeshSocket {
  on<E extends keyof MeshSocketEvents>(event: E, listener: (...args: MeshSocketEvents[E]) => void): this
  once<E extends keyof MeshSocketEvents>(event: E, listener: (...args: MeshSocketEvents[E]) => void): this
  off<E extends keyof MeshSocketEvents>(event: E, listener: (...args: MeshSocketEvents[E]) => void): this
  emit<E extends keyof MeshSocketEvents>(event: E, ...args: MeshSocketEvents[E]): boolean
}

export function toPeerInfo(peer: { id: string; host: string; port: number; outbound: boolean; member: boolean }): PeerInfo {
  return { id: peer.id, addr: [peer.host, peer.port], outbound: peer.outbound, member: peer.member }
}
