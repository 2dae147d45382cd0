/**
 * What the web view shows, gathered from the node: a once-a-second sample of this node's own
 * counters (always, while the view is open: one cheap native call), a crawl of the ring's
 * members over the wire (`Info` requests, only while a page watches or `/api/ring` is asked),
 * the last minute of both as per-second rates and latency percentiles, and the node's events.
 *
 * It holds a picture for display, never ring state that anything routes by.
 */
import { EventEmitter } from 'node:events'
import { NativeEvent, NativeMemberInfo, NativeMetrics, NativeNode, NativeNodeRef } from '../native'
import { accumulate, Buckets, denseLatency, Percentiles, percentiles, subtract, toBuckets } from './histogram'

/**
 * What the view needs of the socket it shows (a ChordSocket): its native events, whether it
 * closed, and its keys on request. Named here so the view does not import the socket's module,
 * which imports the view.
 */
export interface ViewedSocket {
  readonly closed: boolean
  tapEvents(tap: (event: NativeEvent) => void): () => void
  keys(): AsyncIterable<Buffer>
}

/** Seconds of history behind rates and percentiles. */
export const WINDOW_SECONDS = 60
/** Period of samples and, while watched, of crawls. */
export const SAMPLE_MS = 1000
/** Members asked per crawl at most: a page of thousands of dots tells nothing more. */
export const MAX_CRAWL_MEMBERS = 256
/** `Info` requests in flight at once during a crawl. */
const CRAWL_CONCURRENCY = 16
/** Events kept for the page. */
export const MAX_EVENTS = 200
/** A crawl older than this is refreshed before `/api/ring` answers. */
const CRAWL_FRESH_MS = 2000
/** A gap between samples longer than this starts a new baseline instead of one long interval. */
const MAX_SAMPLE_GAP_MS = 5000

export const OPS = ['get', 'set', 'delete'] as const
export type OpName = (typeof OPS)[number]
export type Counts = Record<OpName | 'errors', number>

/** One member as the page draws it. */
export interface MemberView {
  id: string
  addr: [string, number]
  /** The node serving this view. */
  self: boolean
  /** Answered this view's last `Info` request. */
  reachable: boolean
  /** Where it sits: id / 2^128, from 0 (top of the ring) clockwise to 1. */
  position: number
  /** Fraction of the ring it owns, (predecessor, id]; null while its predecessor is unknown. */
  arc: number | null
  predecessor: string | null
  successors: string[]
  fingers: string[]
  keysOwned: number
  keysHeld: number
  bytesHeld: number
  connections: number
  ringSizeEstimate: number
  /** Mean hops of its greedy finger-table lookups; null before any. */
  lookupHops: number | null
  lookups: number
  /** Operations it started, cumulative. */
  operations: Record<OpName, number>
  errors: number
  /** Operations per second it started, over the last crawl interval; null on first sight. */
  opsPerSecond: number | null
  /** Round trip of the `Info` request from the serving node, in ms. */
  rttMs: number | null
}

/** Operations of this node (`local`) or of every member reached (`network`). */
export interface Activity {
  /** Cumulative counts. */
  totals: Counts
  /** Mean per second over the window. */
  perSecond: Counts
  /** Latency percentiles over the window, in ms. */
  latencyMs: Record<OpName, Percentiles>
  /** Per-second rates, oldest first. */
  series: ({ t: number } & Counts)[]
  /** Seconds the window covers so far (up to `windowSeconds`). */
  coveredSeconds: number
}

/** A node event (connect, disconnect, error, and whatever kinds the engine adds) or a change of membership seen here (join, leave). */
export interface ViewEvent {
  time: number
  kind: string
  [field: string]: unknown
}

/** The JSON of `/api/ring` and of each server-sent `ring` event. */
export interface RingView {
  version: 1
  time: number
  self: string
  windowSeconds: number
  node: {
    id: string
    addr: [string, number]
    member: boolean
    predecessor: string | null
    successors: string[]
    fingers: string[]
    known: number
    ringSizeEstimate: number
    connections: number
    keysHeld: number
    keysOwned: number
    bytesHeld: number
    antiEntropy: { syncs: number; repairedPushed: number; repairedFetched: number }
    suspicions: number
  }
  members: MemberView[]
  local: Activity
  network: Activity | null
  crawl: { at: number; ms: number; reached: number; unreachable: number; truncated: boolean } | null
  events: ViewEvent[]
  /** Whether `/api/keys` answers (the `showKeys` option). */
  keysEnabled: boolean
}

interface Interval {
  t: number
  seconds: number
  counts: Counts
  latency: Record<OpName, Buckets>
}

/** Per-second intervals of the last minute, and what they add up to. */
class ActivityWindow {
  #intervals: Interval[] = []

  push(interval: Interval): void {
    this.#intervals.push(interval)
    const oldest = interval.t - WINDOW_SECONDS * 1000
    while (this.#intervals.length > 0 && this.#intervals[0].t <= oldest) this.#intervals.shift()
  }

  summary(totals: Counts): Activity {
    const seconds = this.#intervals.reduce((sum, i) => sum + i.seconds, 0)
    const sum = zeroCounts()
    const dense = { get: denseLatency(), set: denseLatency(), delete: denseLatency() }
    for (const interval of this.#intervals) {
      for (const key of Object.keys(sum) as (keyof Counts)[]) sum[key] += interval.counts[key]
      for (const op of OPS) accumulate(dense[op], interval.latency[op])
    }
    const perSecond = zeroCounts()
    for (const key of Object.keys(sum) as (keyof Counts)[]) perSecond[key] = seconds > 0 ? round(sum[key] / seconds) : 0
    return {
      totals,
      perSecond,
      latencyMs: { get: percentiles(dense.get), set: percentiles(dense.set), delete: percentiles(dense.delete) },
      series: this.#intervals.map((i) => ({
        t: i.t,
        get: round(i.counts.get / i.seconds),
        set: round(i.counts.set / i.seconds),
        delete: round(i.counts.delete / i.seconds),
        errors: round(i.counts.errors / i.seconds),
      })),
      coveredSeconds: round(seconds),
    }
  }
}

interface Crawled {
  ref: NativeNodeRef
  info?: NativeMemberInfo
  rttMs: number | null
  opsPerSecond: number | null
}

/**
 * Gathers the view of one ChordSocket. Emits `'view'` (a RingView) after each sample while
 * watched, and `'event'` (a ViewEvent) as events happen.
 */
export class Collector extends EventEmitter {
  readonly #socket: ViewedSocket
  readonly #node: NativeNode
  readonly #keysEnabled: boolean
  readonly #local = new ActivityWindow()
  readonly #network = new ActivityWindow()
  readonly #events: ViewEvent[] = []
  #lastLocal?: { t: number; metrics: NativeMetrics }
  #lastInfo?: NativeMemberInfo
  #membership?: Map<string, NativeNodeRef>
  #members = new Map<string, Crawled>()
  #crawl: RingView['crawl'] = null
  #lastCrawlAt = 0
  #crawling?: Promise<void>
  #watchers = 0
  #timer?: NodeJS.Timeout
  #untap?: () => void
  #closed = false

  constructor(socket: ViewedSocket, node: NativeNode, options: { showKeys: boolean }) {
    super()
    this.#socket = socket
    this.#node = node
    this.#keysEnabled = options.showKeys
    this.#untap = socket.tapEvents((event) => this.#onNative(event))
    this.#sample()
    this.#timer = setInterval(() => this.#tick(), SAMPLE_MS)
    this.#timer.unref()
  }

  get keysEnabled(): boolean {
    return this.#keysEnabled
  }

  /** A page started watching: crawl every second from now on. */
  watch(): () => void {
    this.#watchers++
    let stopped = false
    return () => {
      if (!stopped) this.#watchers--
      stopped = true
    }
  }

  /** The current view, crawling first when the last crawl is stale. */
  async view(): Promise<RingView> {
    if (Date.now() - this.#lastCrawlAt > CRAWL_FRESH_MS) await this.crawl()
    return this.snapshot()
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#timer)
    this.#untap?.()
    this.removeAllListeners()
  }

  #tick(): void {
    if (this.#closed || this.#socket.closed) return
    this.#sample()
    if (this.#watchers > 0) {
      void this.crawl().then(() => {
        if (!this.#closed && this.#watchers > 0) this.emit('view', this.snapshot())
      })
    }
  }

  /** Sample this node's own counters and membership. */
  #sample(): void {
    let info: NativeMemberInfo
    try {
      info = this.#node.info()
    } catch {
      return // closed meanwhile
    }
    const now = Date.now()
    const last = this.#lastLocal
    if (last && now - last.t <= MAX_SAMPLE_GAP_MS) this.#local.push(interval(now, (now - last.t) / 1000, [[info.metrics, last.metrics]]))
    this.#lastLocal = { t: now, metrics: info.metrics }
    this.#lastInfo = info
    this.#trackMembership(info)
  }

  /** Joins and leaves as this node sees them: ids entering or leaving its routing state and view. */
  #trackMembership(info: NativeMemberInfo): void {
    const current = new Map<string, NativeNodeRef>()
    for (const node of [...info.known, ...info.successors, ...info.fingers, ...(info.predecessor ? [info.predecessor] : [])]) {
      if (node.id !== info.node.id) current.set(node.id, node)
    }
    const previous = this.#membership
    this.#membership = current
    if (!previous) return
    for (const [id, node] of current) if (!previous.has(id)) this.#push({ time: Date.now(), kind: 'join', node: ref(node) })
    for (const [id, node] of previous) if (!current.has(id)) this.#push({ time: Date.now(), kind: 'leave', node: ref(node) })
  }

  #onNative(event: NativeEvent): void {
    // Dict changes and mesh messages are data, not membership: counted, never listed.
    if (event.kind === 'message' || event.kind === 'add' || event.kind === 'delete') return
    const out: ViewEvent = { time: Date.now(), kind: event.kind }
    for (const [name, value] of Object.entries(event)) {
      if (name === 'kind' || name === 'key' || name === 'packets' || value === null || value === undefined) continue
      if (typeof value === 'object' && typeof (value as NativeNodeRef).id === 'string') out[name] = ref(value as NativeNodeRef)
      else if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') out[name] = value
    }
    this.#push(out)
  }

  #push(event: ViewEvent): void {
    this.#events.push(event)
    if (this.#events.length > MAX_EVENTS) this.#events.shift()
    if (!this.#closed) this.emit('event', event)
  }

  /** Ask every member reachable through successor lists and fingers for its `Info`. */
  crawl(): Promise<void> {
    this.#crawling ??= this.#crawlOnce().finally(() => {
      this.#crawling = undefined
    })
    return this.#crawling
  }

  async #crawlOnce(): Promise<void> {
    const started = Date.now()
    const t0 = performance.now()
    let local: NativeMemberInfo
    try {
      local = this.#node.info()
    } catch {
      return
    }
    const found = new Map<string, Crawled>()
    const queue: NativeNodeRef[] = []
    let truncated = false
    const discover = (info: NativeMemberInfo) => {
      for (const node of [...info.successors, ...(info.predecessor ? [info.predecessor] : []), ...info.fingers, ...info.known]) {
        if (found.has(node.id)) continue
        if (found.size >= MAX_CRAWL_MEMBERS) {
          truncated = true
          return
        }
        found.set(node.id, { ref: node, rttMs: null, opsPerSecond: null })
        queue.push(node)
      }
    }
    found.set(local.node.id, { ref: local.node, info: local, rttMs: null, opsPerSecond: null })
    discover(local)
    const worker = async () => {
      for (let node = queue.shift(); node; node = queue.shift()) {
        const asked = performance.now()
        try {
          const info = await this.#node.memberInfo(node.id, node.host, node.port)
          const entry = found.get(node.id)!
          entry.info = info
          entry.rttMs = round(performance.now() - asked)
          if (info.member) discover(info)
        } catch {
          // Unreachable (or gone): drawn as such until no one lists it any more.
        }
      }
    }
    // Workers stop when the queue is momentarily empty; rounds continue while discoveries remain.
    while (queue.length > 0) await Promise.all(Array.from({ length: Math.min(CRAWL_CONCURRENCY, queue.length) }, worker))

    // Network activity: each member's counters since the previous crawl.
    const seconds = (started - this.#lastCrawlAt) / 1000
    const continuous = this.#lastCrawlAt > 0 && started - this.#lastCrawlAt <= MAX_SAMPLE_GAP_MS
    const pairs: [NativeMetrics, NativeMetrics][] = []
    for (const [id, entry] of found) {
      const before = this.#members.get(id)?.info
      if (!entry.info || !before || !continuous) continue
      pairs.push([entry.info.metrics, before.metrics])
      entry.opsPerSecond = round(OPS.reduce((sum, op) => sum + entry.info!.metrics[op].latency.count - before.metrics[op].latency.count, 0) / seconds)
    }
    if (continuous) this.#network.push(interval(started, seconds, pairs))
    this.#members = found
    this.#lastCrawlAt = started
    const unreachable = [...found.values()].filter((m) => !m.info).length
    this.#crawl = { at: started, ms: round(performance.now() - t0), reached: found.size - unreachable, unreachable, truncated }
  }

  /** The view from what was gathered so far (no I/O). */
  snapshot(): RingView {
    let info: NativeMemberInfo
    try {
      info = this.#node.info()
    } catch (error) {
      if (!this.#lastInfo) throw error
      info = this.#lastInfo // closed meanwhile: the last picture
    }
    const m = info.metrics
    const members: MemberView[] = []
    for (const entry of this.#members.values()) {
      const i = entry.ref.id === info.node.id ? info : entry.info
      if (i && !i.member) continue // a client: not on the ring
      members.push(memberView(entry, i, info.node.id))
    }
    if (members.length === 0 || !members.some((x) => x.self)) members.push(memberView({ ref: info.node, rttMs: null, opsPerSecond: null }, info, info.node.id))
    members.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    const networkTotals = zeroCounts()
    for (const member of members) {
      for (const op of OPS) networkTotals[op] += member.operations[op]
      networkTotals.errors += member.errors
    }
    return {
      version: 1,
      time: Date.now(),
      self: info.node.id,
      windowSeconds: WINDOW_SECONDS,
      node: {
        id: info.node.id,
        addr: [info.node.host, info.node.port],
        member: info.member,
        predecessor: info.predecessor?.id ?? null,
        successors: info.successors.map((n) => n.id),
        fingers: info.fingers.map((n) => n.id),
        known: info.known.length,
        ringSizeEstimate: round(info.ringSizeEstimate),
        connections: info.connections,
        keysHeld: info.keys,
        keysOwned: info.primaryKeys,
        bytesHeld: info.bytes,
        antiEntropy: { syncs: m.antiEntropySyncs, repairedPushed: m.repairedPushed, repairedFetched: m.repairedFetched },
        suspicions: m.suspicions,
      },
      members,
      local: this.#local.summary(totals(m)),
      network: this.#crawl ? this.#network.summary(networkTotals) : null,
      crawl: this.#crawl,
      events: this.#events.slice(-100),
      keysEnabled: this.#keysEnabled,
    }
  }
}

function memberView(entry: Crawled, info: NativeMemberInfo | undefined, self: string): MemberView {
  const id = entry.ref.id
  const hops = info?.metrics.lookupHops
  return {
    id,
    addr: [entry.ref.host, entry.ref.port],
    self: id === self,
    reachable: info !== undefined,
    position: position(id),
    arc: info ? arcFraction(info.predecessor?.id, id, info.successors.length === 0) : null,
    predecessor: info?.predecessor?.id ?? null,
    successors: info?.successors.map((n) => n.id) ?? [],
    fingers: info?.fingers.map((n) => n.id) ?? [],
    keysOwned: info?.primaryKeys ?? 0,
    keysHeld: info?.keys ?? 0,
    bytesHeld: info?.bytes ?? 0,
    connections: info?.connections ?? 0,
    ringSizeEstimate: round(info?.ringSizeEstimate ?? 0),
    lookupHops: hops && hops.count > 0 ? round(hops.sum / hops.count) : null,
    lookups: hops?.count ?? 0,
    operations: { get: info?.metrics.get.latency.count ?? 0, set: info?.metrics.set.latency.count ?? 0, delete: info?.metrics.delete.latency.count ?? 0 },
    errors: info ? errorCount(info.metrics) : 0,
    opsPerSecond: entry.opsPerSecond,
    rttMs: id === self ? null : entry.rttMs,
  }
}

/** The change of every counter between pairs of (later, earlier) snapshots, summed. */
function interval(t: number, seconds: number, pairs: [NativeMetrics, NativeMetrics][]): Interval {
  const counts = zeroCounts()
  const latency: Record<OpName, Buckets> = { get: [], set: [], delete: [] }
  for (const [later, earlier] of pairs) {
    for (const op of OPS) {
      counts[op] += Math.max(0, later[op].latency.count - earlier[op].latency.count)
      latency[op] = latency[op].concat(subtract(toBuckets(later[op].latency), toBuckets(earlier[op].latency)))
    }
    counts.errors += Math.max(0, errorCount(later) - errorCount(earlier))
  }
  return { t, seconds: Math.max(seconds, 0.001), counts, latency }
}

function totals(m: NativeMetrics): Counts {
  return { get: m.get.latency.count, set: m.set.latency.count, delete: m.delete.latency.count, errors: errorCount(m) }
}

function errorCount(m: NativeMetrics): number {
  return OPS.reduce((sum, op) => sum + m[op].errorCounts.reduce((a, b) => a + b, 0), 0)
}

function zeroCounts(): Counts {
  return { get: 0, set: 0, delete: 0, errors: 0 }
}

function ref(node: NativeNodeRef): { id: string; addr: [string, number] } {
  return { id: node.id, addr: [node.host, node.port] }
}

const RING = 2n ** 128n

/** id / 2^128 as a number in [0, 1). */
export function position(id: string): number {
  return Number(BigInt(`0x${id}`)) / 2 ** 128
}

/** The share of the ring in (predecessor, id]; the whole ring for a node alone. */
export function arcFraction(predecessor: string | undefined, id: string, alone: boolean): number | null {
  if (predecessor === undefined) return alone ? 1 : null
  const span = (BigInt(`0x${id}`) - BigInt(`0x${predecessor}`) + RING) % RING
  return span === 0n ? 1 : Number(span) / 2 ** 128
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000
}
