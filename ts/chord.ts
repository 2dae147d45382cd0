/**
 * ChordSocket: the dict shared by every node of a Chord ring. Keys and values are bytes
 * (strings become UTF-8); results are Buffers. Routing, replication and hand-off are in Rust.
 */
import type { EventEmitter } from 'node:events'
import { BytesLike, checkBoolean, checkCount, checkPort, checkSafeCount, checkString, describe, toBytes } from './coerce'
import { Batcher, OpKind } from './batch'
import { call, errorFor, KeyError } from './errors'
import { MeshOptions, MeshSocket, MeshSocketEvents } from './mesh'
import { limits, NativeEvent, NativeStartOptions } from './native'
import type { ViewOptions, ViewServer } from './view/server'

/** Largest key, in bytes: the engine's limit (`limits.maxKeyBytes`). */
export const MAX_KEY_BYTES: number = limits.maxKeyBytes
/** Largest value, in bytes: the engine's limit (`limits.maxValueBytes`). */
export const MAX_VALUE_BYTES: number = limits.maxValueBytes
/** Writes in flight at once for `update()`. */
const UPDATE_CONCURRENCY = 256
/** Keys per page when walking the ring. */
const PAGE_SIZE = 256

export interface ChordOptions extends MeshOptions {
  /** Copies of each key, the owner included (default `limits.defaultReplicas`, at most `limits.maxReplicas`). A resolved `set` survives `replicas - 1` simultaneous crashes. */
  replicas?: number
  /** Take part in the ring, storing and routing (default true). `false` makes a client that stores nothing yet reads and writes. */
  join?: boolean
  /**
   * Let this node hear about changes anywhere in the ring (default true): `'add'` / `'delete'`
   * listeners and `watch()`. Events go by subscription: a node subscribes while it has a
   * listener or a watch, and a write is sent only to the nodes that watch its key, so a ring
   * where nobody listens carries no event traffic. Give every node of a network the same
   * setting: a node with events off neither reports nor originates them.
   */
  events?: boolean
  /** Period of ring maintenance (stabilize, fix fingers, anti-entropy), in ms (default `limits.defaultStabilizeMs`, from `limits.minStabilizeMs` to `limits.maxStabilizeMs`). */
  stabilizeMs?: number
  /**
   * How far ahead of this node's wall clock a peer's version may be, in ms (default
   * `limits.defaultMaxClockDriftMs`, from `limits.minClockDriftMs` to `limits.maxClockDriftMs`).
   * Writes carrying later versions are refused (and reported as an
   * `'error'` event, `ERR_BAD_PEER`), so one peer cannot push a key, or every clock, into the
   * far future. Keep clocks synchronised (NTP) well within it.
   */
  maxClockDriftMs?: number
  /**
   * Keep this node's entries, identity (its key pair, so its id), clock and known members in this folder, in
   * an embedded crash-safe store: restarted on the same folder it comes back with its id and
   * data and rejoins its ring by itself. Absent (the default): everything stays in memory.
   * One running node per folder (a second one is refused with `ERR_STORAGE_LOCKED`).
   */
  dataDir?: string
  /**
   * When a write counts as stored on a node with `dataDir` (see README, "Durability"):
   * `'sync'` (default) once flushed to the disk — survives a process kill, an OS crash and a
   * power loss; `'os'` once handed to the operating system (flushed to the disk every second) —
   * survives a process kill, may lose the last second on an OS crash or power loss.
   */
  durability?: 'sync' | 'os'
  /** With `dataDir`: keep the identity, drop the local entries (a damaged store) and refill them from the ring (default false). */
  resync?: boolean
  /**
   * Bytes of values this node read from other members kept in memory, so that a repeated
   * `get` of an unchanged key answers without crossing the network (default
   * `limits.defaultCacheBytes`, at most `limits.maxCacheBytes`; `0` turns the cache off).
   * Never stale: each value is held under a read lease from the key's owner
   * (`limits.readLeaseMs`), and a write anywhere resolves only once every node holding the
   * key dropped it or its lease ran out — so a `get` that starts after a `set`/`delete`
   * resolved, on any node, returns that write or a newer one. See README, "Read cache".
   */
  cacheBytes?: number
}

export interface NodeAddress {
  id: string
  addr: [string, number]
}

export interface LookupResult {
  /** The node that owns the key. */
  owner: NodeAddress
  /** Remote nodes asked by a greedy finger-table lookup (about ½·log2 n). */
  hops: number
}

export interface ChordStats {
  /** Whether this node is a ring member (stores and routes). */
  member: boolean
  predecessor?: NodeAddress
  successors: NodeAddress[]
  /** Distinct nodes in the finger table. */
  fingers: number
  /** Ring size estimated from the successor list's spacing. */
  ringSizeEstimate: number
  /** Live keys held here, as owner or replica. */
  keys: number
  /** Live keys this node owns. */
  primaryKeys: number
  connections: number
  /** Dict operations started here (gets answered from the read cache included). */
  operations: number
  /** Mean redirects per operation (0 when the owner was guessed right). */
  meanRedirects: number
  /**
   * Mean network legs per operation started here: 0 answered here or from the read cache, 1
   * straight to the owner over an open connection; relays, redirects and a handshake first
   * each add one.
   */
  meanHops: number
  /**
   * Live ring members this node's member table lists, itself included (0 for a client): spread
   * by gossip with its neighbours, it names each key's owner so operations go there in one hop.
   */
  members: number
  lookups: number
  meanLookupHops: number
  /** Ring events (add/delete) this node sent on to other nodes. */
  eventsForwarded: number
  /** Ring events dropped because their sender is not (or did not prove to be) a ring member. */
  eventsRefused: number
  /** Listening nodes (`add`/`delete` listeners, `watch()`) this member knows of, ring-wide. */
  subscribers: number
  /** Peers suspected of having failed (silent past `failureTimeoutMs`) since start. */
  suspicions: number
  /** Gaps closed by adopting a node of another ring (rings merging after a partition). */
  merges: number
  /** Former neighbours and sampled members remembered, probed to find other rings. */
  contacts: number
  /** Frames this node refused to send for exceeding the frame limit: 0 unless there is a bug. */
  oversizedFrames: number
  /** Gets answered from the read cache (`cacheBytes`), and gets that looked there first and missed. */
  cacheHits: number
  cacheMisses: number
  /** Entries and bytes in the read cache now (keys, values and ~100 bytes of bookkeeping each; at most `cacheBytes`). */
  cacheEntries: number
  cacheBytes: number
  /** As a key's owner: read leases granted to other nodes. */
  leasesGranted: number
  /** As a key's owner: invalidations sent to lease holders for writes. */
  invalidationsSent: number
  /** Lease holders a write waited out (they did not confirm the invalidation: silent or cut off). */
  leaseTimeouts: number
  /** As a key's owner: read delegations granted to its in-sync replicas (each lets one replica answer gets of the arc for a lease's time). */
  delegationsGranted: number
  /** As a replica: gets answered here for the key's owner, under its delegation. */
  replicaReads: number
}

export interface ChordSocketEvents extends MeshSocketEvents {
  add: [key: Buffer]
  delete: [key: Buffer]
}

/** A change `watch()` yields: a key set (`'add'`) or deleted, anywhere in the ring. */
export interface ChordChange {
  kind: 'add' | 'delete'
  key: Buffer
}

/** Distinct prefixes one node may watch at once (`limits.maxWatchedPrefixes`). */
export const MAX_WATCHED_PREFIXES: number = limits.maxWatchedPrefixes
/** Longest prefix `watch()` accepts, in bytes (`limits.maxWatchPrefixBytes`). */
export const MAX_WATCH_PREFIX_BYTES: number = limits.maxWatchPrefixBytes

/** One `watch()` iterator: its prefix, the changes not taken yet, the `next()` waiting. */
class Watcher {
  readonly queue: ChordChange[] = []
  waiting?: (result: IteratorResult<ChordChange>) => void
  done = false

  constructor(readonly prefix: Buffer) {}

  push(change: ChordChange): void {
    if (this.done || !change.key.subarray(0, this.prefix.length).equals(this.prefix)) return
    const waiting = this.waiting
    this.waiting = undefined
    if (waiting) waiting({ value: change, done: false })
    else this.queue.push(change)
  }

  end(): void {
    this.done = true
    this.queue.length = 0
    this.waiting?.({ value: undefined, done: true })
    this.waiting = undefined
  }
}

/** Anything `update()` accepts. */
export type Mapping = Map<BytesLike, BytesLike> | Iterable<readonly [BytesLike, BytesLike]> | Record<string, BytesLike>

/**
 * A node of a Chord ring sharing one dict.
 *
 * ```ts
 * const a = new ChordSocket('127.0.0.1', 0)
 * const b = new ChordSocket('127.0.0.1', 0)
 * await Promise.all([a.ready, b.ready])
 * await b.connect(...a.addr)
 * await a.set('测试', '成功')
 * (await b.get('测试'))?.toString() // '成功'
 * ```
 */
export class ChordSocket extends MeshSocket {
  #batcher?: Batcher
  readonly #views = new Set<ViewServer>()
  readonly #watchers = new Set<Watcher>()
  /** The prefixes last handed to the node (JSON of the sorted hex), to skip repeats. */
  #subscribed = '[]'

  constructor(addr: string, port: number, options: ChordOptions = {}) {
    super(addr, port, options)
    // The ring sends this node events only while it listens: a listener added or removed
    // changes its subscription. ('newListener' comes before the listener is added.)
    const emitter = this as EventEmitter
    emitter.on('newListener', (event: string | symbol) => {
      if (event === 'add' || event === 'delete') queueMicrotask(() => this.#subscribe())
    })
    emitter.on('removeListener', (event: string | symbol) => {
      if (event === 'add' || event === 'delete') this.#subscribe()
    })
  }

  /** Tell the node what it listens for now: every key while an `'add'`/`'delete'` listener exists, else the watched prefixes. */
  #subscribe(): void {
    const prefixes: Buffer[] = []
    if (this.listenerCount('add') + this.listenerCount('delete') > 0) prefixes.push(Buffer.alloc(0))
    for (const watcher of this.#watchers) prefixes.push(watcher.prefix)
    const subscribed = JSON.stringify([...new Set(prefixes.map((p) => p.toString('hex')))].sort())
    if (subscribed === this.#subscribed) return
    this.#subscribed = subscribed
    this.opened().then(
      (node) => {
        if (!this.closed) node.watch(prefixes)
      },
      () => {},
    )
  }

  /**
   * The changes to keys starting with `prefix` (every key when absent) made anywhere in the
   * ring from now on, in order for each key. The ring sends this node only the changes it
   * watches; `return()` (or `break` in `for await`) ends the watch. Changes wait in memory
   * until taken.
   *
   * ```ts
   * for await (const { kind, key } of node.watch('user/')) console.log(kind, key.toString())
   * ```
   */
  watch(prefix: BytesLike = Buffer.alloc(0)): AsyncIterableIterator<ChordChange> {
    const bytes = toBytes(prefix, 'prefix')
    if (bytes.length > MAX_WATCH_PREFIX_BYTES) throw new RangeError(`prefix is ${bytes.length} bytes; the limit is ${MAX_WATCH_PREFIX_BYTES}`)
    const distinct = new Set([...this.#watchers].map((w) => w.prefix.toString('hex')))
    if (!distinct.has(bytes.toString('hex')) && distinct.size >= MAX_WATCHED_PREFIXES) {
      throw new RangeError(`this node already watches ${MAX_WATCHED_PREFIXES} distinct prefixes (the limit)`)
    }
    const watcher = new Watcher(bytes)
    this.#watchers.add(watcher)
    this.#subscribe()
    const stop = (): IteratorResult<ChordChange> => {
      if (this.#watchers.delete(watcher)) this.#subscribe()
      watcher.end()
      return { value: undefined, done: true }
    }
    const iterator: AsyncIterableIterator<ChordChange> = {
      next: () => {
        const change = watcher.queue.shift()
        if (change) return Promise.resolve({ value: change, done: false })
        if (watcher.done) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => (watcher.waiting = resolve))
      },
      return: () => Promise.resolve(stop()),
      [Symbol.asyncIterator]: () => iterator,
    }
    return iterator
  }

  /** Run a dict operation through the batching layer. */
  async #op(kind: OpKind, key: Buffer, value?: Buffer): Promise<Buffer | null> {
    const node = await this.opened()
    this.#batcher ??= new Batcher(node)
    return this.#batcher.run(kind, key, value)
  }

  protected override configure(start: NativeStartOptions, options: ChordOptions): void {
    // Absent options take the engine's defaults.
    start.chord = {
      replicas: options.replicas === undefined ? undefined : checkCount(options.replicas, 'options.replicas'),
      join: options.join === undefined ? undefined : checkBoolean(options.join, 'options.join'),
      events: options.events === undefined ? undefined : checkBoolean(options.events, 'options.events'),
      stabilizeMs: options.stabilizeMs === undefined ? undefined : checkCount(options.stabilizeMs, 'options.stabilizeMs'),
      maxClockDriftMs: options.maxClockDriftMs === undefined ? undefined : checkCount(options.maxClockDriftMs, 'options.maxClockDriftMs'),
      dataDir: options.dataDir === undefined ? undefined : checkString(options.dataDir, 'options.dataDir'),
      durability: options.durability === undefined ? undefined : checkString(options.durability, "options.durability ('sync' or 'os')"),
      resync: options.resync === undefined ? undefined : checkBoolean(options.resync, 'options.resync'),
      cacheBytes: options.cacheBytes === undefined ? undefined : checkSafeCount(options.cacheBytes, 'options.cacheBytes'),
    }
  }

  /** The value of `key`, or `fallback` (default `undefined`) when absent. */
  async get(key: BytesLike): Promise<Buffer | undefined>
  async get<T>(key: BytesLike, fallback: T): Promise<Buffer | T>
  async get(key: BytesLike, ...rest: unknown[]): Promise<unknown> {
    const k = toKey(key)
    // Fast path: a key under a read lease, or one this node owns, answers without a round
    // trip through the batcher (same guarantee; `undefined` means it must go the long way).
    if (this.node !== undefined && !this.closed) {
      const now = this.node.getNow(k)
      if (now !== undefined) return now ?? rest[0]
    }
    const value = await this.#op(OpKind.Get, k)
    return value ?? rest[0]
  }

  /** Store `value` under `key`; resolves once every replica holds it. */
  async set(key: BytesLike, value: BytesLike): Promise<void> {
    const k = toKey(key)
    const v = toValue(value)
    await this.#op(OpKind.Set, k, v)
  }

  /** Delete `key`; rejects with `KeyError` when it is absent. */
  async delete(key: BytesLike): Promise<void> {
    const k = toKey(key)
    const previous = await this.#op(OpKind.Delete, k)
    if (previous === null) throw new KeyError(`key not found: ${printable(k)}`, k)
  }

  /** Whether `key` is present. */
  async has(key: BytesLike): Promise<boolean> {
    return (await this.get(key)) !== undefined
  }

  /** Set every pair of a Map, an iterable of `[key, value]` pairs, or a plain object. */
  async update(mapping: Mapping): Promise<void> {
    const pairs = toPairs(mapping)
    let next = 0
    const worker = async () => {
      while (next < pairs.length) {
        const [k, v] = pairs[next++]
        await this.#op(OpKind.Set, k, v)
      }
    }
    await Promise.all(Array.from({ length: Math.min(UPDATE_CONCURRENCY, pairs.length) }, worker))
  }

  /** Remove `key` and return its value; `fallback` when absent, else `KeyError`. */
  async pop(key: BytesLike): Promise<Buffer>
  async pop<T>(key: BytesLike, fallback: T): Promise<Buffer | T>
  async pop(key: BytesLike, ...rest: unknown[]): Promise<unknown> {
    const k = toKey(key)
    const previous = await this.#op(OpKind.Delete, k)
    if (previous !== null) return previous
    if (rest.length > 0) return rest[0]
    throw new KeyError(`key not found: ${printable(k)}`, k)
  }

  /** Remove and return some `[key, value]` pair; `KeyError` when the dict is empty. */
  async popitem(): Promise<[Buffer, Buffer]> {
    for await (const key of this.keys()) {
      const value = await this.#op(OpKind.Delete, key)
      if (value !== null) return [key, value]
    }
    throw new KeyError('popitem(): the dictionary is empty')
  }

  /** Every key of the whole ring, walked node by node (complete once the ring is quiet). */
  async *keys(): AsyncGenerator<Buffer> {
    for await (const [key] of this.#walk(false)) yield key
  }

  /** Every value of the whole ring; keys deleted during the walk are skipped. */
  async *values(): AsyncGenerator<Buffer> {
    for await (const [, value] of this.#walk(true)) yield value!
  }

  /** Every `[key, value]` pair of the whole ring. */
  async *items(): AsyncGenerator<[Buffer, Buffer]> {
    for await (const [key, value] of this.#walk(true)) yield [key, value!]
  }

  /** Same as `items()`. */
  entries(): AsyncGenerator<[Buffer, Buffer]> {
    return this.items()
  }

  [Symbol.asyncIterator](): AsyncGenerator<[Buffer, Buffer]> {
    return this.items()
  }

  /** Join the ring (through a connected member, if any). Sockets join by default; this undoes `unjoin()`. */
  async join(): Promise<void> {
    const node = await this.opened()
    await call(node.join())
  }

  /** Leave the ring, handing this node's keys to the rest, and stay connected as a client. */
  async unjoin(): Promise<void> {
    const node = await this.opened()
    await call(node.unjoin())
  }

  /** Which node owns `key`, found by a greedy finger-table lookup, and in how many hops. */
  async lookup(key: BytesLike): Promise<LookupResult> {
    const k = toKey(key)
    const node = await this.opened()
    const result = await call(node.lookup(k))
    return { owner: toAddress(result.owner), hops: result.hops }
  }

  /** The value this node itself holds for `key`, as owner or replica, without asking the ring (diagnostics). */
  localGet(key: BytesLike): Buffer | undefined {
    const k = toKey(key)
    if (!this.node) throw new TypeError('localGet() needs a ready socket: await socket.ready first')
    return this.node.localGet(k) ?? undefined
  }

  /** A snapshot of this node's routing state and counters. */
  stats(): ChordStats {
    if (!this.node) throw new TypeError('stats() needs a ready socket: await socket.ready first')
    const s = this.node.stats()
    return { ...s, predecessor: s.predecessor ? toAddress(s.predecessor) : undefined, successors: s.successors.map(toAddress) }
  }

  /**
   * Serve the read-only web view of this node over HTTP: a live page of the ring (`/`), the
   * same data as JSON (`/api/ring`) and Prometheus metrics (`/metrics`); see docs/VIEW.md.
   * Binds 127.0.0.1 on any free port unless told otherwise; closes with the socket.
   *
   * ```ts
   * const view = await socket.serveView({ port: 8080 })
   * console.log(`open ${view.url}`)
   * ```
   */
  async serveView(options: ViewOptions = {}): Promise<ViewServer> {
    if (options === null || typeof options !== 'object') throw new TypeError(`options must be an object (got ${describe(options)})`)
    if (options.host !== undefined) checkString(options.host, 'options.host')
    if (options.port !== undefined) checkPort(options.port, 'options.port')
    if (options.showKeys !== undefined) checkBoolean(options.showKeys, 'options.showKeys')
    const node = await this.opened()
    const { startView } = await import('./view/server')
    const view = await startView(this, node, options)
    this.#views.add(view)
    const close = view.close.bind(view)
    return Object.assign(view, {
      close: () => {
        this.#views.delete(view)
        return close()
      },
    })
  }

  override close(): Promise<void> {
    return this.#closeViews().then(() => super.close())
  }

  override destroy(): Promise<void> {
    return this.#closeViews().then(() => super.destroy())
  }

  async #closeViews(): Promise<void> {
    for (const watcher of this.#watchers) watcher.end()
    this.#watchers.clear()
    const views = [...this.#views]
    this.#views.clear()
    await Promise.all(views.map((view) => view.close()))
  }

  async *#walk(withValues: boolean): AsyncGenerator<[Buffer, Buffer | undefined]> {
    const node = await this.opened()
    let cursor: Buffer | null = null
    do {
      const page: { keys: Buffer[]; values?: Buffer[]; cursor?: Buffer } = await call(node.scan(cursor, withValues, PAGE_SIZE))
      for (let i = 0; i < page.keys.length; i++) yield [page.keys[i], page.values?.[i]]
      cursor = page.cursor ?? null
    } while (cursor !== null)
  }

  protected override async dispatch(event: NativeEvent): Promise<void> {
    if (event.kind === 'add' || event.kind === 'delete') {
      for (const watcher of this.#watchers) watcher.push({ kind: event.kind, key: event.key! })
      this.emit(event.kind, event.key!)
      return
    }
    return super.dispatch(event)
  }
}

export interface ChordSocket {
  on<E extends keyof ChordSocketEvents>(event: E, listener: (...args: ChordSocketEvents[E]) => void): this
  once<E extends keyof ChordSocketEvents>(event: E, listener: (...args: ChordSocketEvents[E]) => void): this
  off<E extends keyof ChordSocketEvents>(event: E, listener: (...args: ChordSocketEvents[E]) => void): this
  emit<E extends keyof ChordSocketEvents>(event: E, ...args: ChordSocketEvents[E]): boolean
}

// Sizes are checked here too, with the engine's limits and its error, so that `update()` refuses
// an oversized pair before writing any.
function toKey(key: unknown): Buffer {
  const bytes = toBytes(key, 'key')
  if (bytes.length > MAX_KEY_BYTES) throw errorFor('ERR_KEY_TOO_LARGE', `key is ${bytes.length} bytes; the limit is ${MAX_KEY_BYTES}`)
  return bytes
}

function toValue(value: unknown): Buffer {
  const bytes = toBytes(value, 'value')
  if (bytes.length > MAX_VALUE_BYTES) throw errorFor('ERR_VALUE_TOO_LARGE', `value is ${bytes.length} bytes; the limit is ${MAX_VALUE_BYTES}`)
  return bytes
}

function toPairs(mapping: unknown): [Buffer, Buffer][] {
  if (mapping === null || typeof mapping !== 'object') {
    throw new TypeError(`update() takes a Map, an iterable of [key, value] pairs or a plain object (got ${describe(mapping)})`)
  }
  const entries: Iterable<unknown> =
    Symbol.iterator in mapping ? (mapping as Iterable<unknown>) : Object.entries(mapping as Record<string, unknown>)
  const pairs: [Buffer, Buffer][] = []
  for (const entry of entries) {
    if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError(`update() pairs must be [key, value] (got ${describe(entry)})`)
    pairs.push([toKey(entry[0]), toValue(entry[1])])
  }
  return pairs
}

function toAddress(node: { id: string; host: string; port: number }): NodeAddress {
  return { id: node.id, addr: [node.host, node.port] }
}

function printable(key: Buffer): string {
  const text = key.toString('utf8')
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text)
}
