/**
 * Loads the native addon: the platform package (`chordnet-<platform>`), else a local build in
 * the package folder, else fails with an error naming the platform and how to build it.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ChordStats } from './chord'

export interface NativePeer { id: string; host: string; port: number; outbound: boolean; member: boolean }
export interface NativeNodeRef { id: string; host: string; port: number }
export interface NativeEvent {
  /** Today's kinds; the engine may add more (the web view shows any kind it gets). */
  kind: 'connect' | 'disconnect' | 'message' | 'error' | 'add' | 'delete'
  peer?: NativePeer
  reason?: string
  sender?: NativeNodeRef
  timeMs?: number
  packets?: Buffer[]
  broadcast?: boolean
  code?: string
  key?: Buffer
}
/** `ChordStats` as the addon returns it: nodes as flat `{ id, host, port }`. */
export type NativeStats = Omit<ChordStats, 'predecessor' | 'successors'> & { predecessor?: NativeNodeRef; successors: NativeNodeRef[] }
/** A histogram's non-empty buckets as parallel arrays (see `histogramLayout()` for the bounds). */
export interface NativeHistogram { count: number; sum: number; indexes: number[]; counts: number[] }
export interface NativeOpMetrics { latency: NativeHistogram; errorCodes: string[]; errorCounts: number[] }
/** Cumulative counters of a node since it started. */
export interface NativeMetrics {
  get: NativeOpMetrics
  set: NativeOpMetrics
  delete: NativeOpMetrics
  lookupHops: NativeHistogram
  antiEntropySyncs: number
  repairedPushed: number
  repairedFetched: number
  suspicions: number
  connectionsOpened: number
  connectionsClosed: number
}
/** What a node reports about itself (`info()`, or another node's through `memberInfo()`). */
export interface NativeMemberInfo {
  node: NativeNodeRef
  member: boolean
  predecessor?: NativeNodeRef
  successors: NativeNodeRef[]
  fingers: NativeNodeRef[]
  known: NativeNodeRef[]
  keys: number
  primaryKeys: number
  bytes: number
  connections: number
  ringSizeEstimate: number
  metrics: NativeMetrics
}
export interface NativeHistogramLayout { latencyUpperBoundsMicros: number[]; hopBuckets: number }
export interface NativeStartOptions {
  host: string
  port: number
  subnet: string
  encryption: string
  outHost?: string
  outPort?: number
  maxPeers?: number
  maxFrameBytes?: number
  requestTimeoutMs?: number
  peerExchange?: boolean
  chord?: { replicas: number; join: boolean; events: boolean; stabilizeMs: number }
}
export interface NativeNode {
  readonly id: string
  readonly host: string
  readonly port: number
  connect(host: string, port: number): Promise<NativePeer>
  peers(): NativePeer[]
  send(packets: Buffer[], to?: string | null, toHost?: string | null, toPort?: number | null): Promise<void>
  nextEvents(max: number): Promise<NativeEvent[] | null>
  close(): Promise<void>
  destroy(): Promise<void>
  submit(ops: { id: number; kind: number; key: Buffer; value?: Buffer }[]): void
  nextCompletions(): Promise<{ id: number; value?: Buffer | null; error?: string | null }[]>
  get(key: Buffer): Promise<Buffer | null>
  set(key: Buffer, value: Buffer): Promise<void>
  delete(key: Buffer): Promise<Buffer | null>
  lookup(key: Buffer): Promise<{ owner: NativeNodeRef; hops: number }>
  localGet(key: Buffer): Buffer | null
  stats(): NativeStats
  scan(cursor: Buffer | null, withValues: boolean, limit: number): Promise<{ keys: Buffer[]; values?: Buffer[]; cursor?: Buffer }>
  join(): Promise<void>
  unjoin(): Promise<void>
  metrics(): NativeMetrics
  info(): NativeMemberInfo
  memberInfo(id: string, host: string, port: number): Promise<NativeMemberInfo>
}
export interface NativeBinding {
  startNode(options: NativeStartOptions): Promise<NativeNode>
  protocolId(subnet: string, encryption: string): string
  histogramLayout(): NativeHistogramLayout
}

/** The napi-rs platform suffix of this process, e.g. `linux-x64-gnu`. */
export function platformSuffix(): string {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function isMusl(): boolean {
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    if (report?.header) return !report.header.glibcVersionRuntime
  } catch {
    // fall through to the file check
  }
  try {
    return readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
  } catch {
    return false
  }
}

function load(): NativeBinding {
  const suffix = platformSuffix()
  const failures: string[] = []
  try {
    return require(`chordnet-${suffix}`) as NativeBinding
  } catch (error) {
    failures.push(`chordnet-${suffix}: ${(error as Error).message.split('\n')[0]}`)
  }
  const local = join(__dirname, '..', `chordnet.${suffix}.node`)
  if (existsSync(local)) {
    try {
      return require(local) as NativeBinding
    } catch (error) {
      failures.push(`${local}: ${(error as Error).message.split('\n')[0]}`)
    }
  } else {
    failures.push(`${local}: not built`)
  }
  throw new Error(
    `chordnet: no native binary for ${suffix} (Node ${process.versions.node}, ABI ${process.versions.modules}).\n` +
      `Tried:\n  ${failures.join('\n  ')}\n` +
      'Build it from source with a Rust toolchain (https://rustup.rs): run `npm run build` in the chordnet package folder, ' +
      'or reinstall with cargo on PATH.',
  )
}

export const native: NativeBinding = load()
