/**
 * Loads the native addon: the platform package (`chordnet-<suffix>`), else a local build in
 * the package folder, else fails with an error naming the platform it looked for and what to
 * do. Which suffix fits this process is decided in one place, ts/platform.ts.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import type { ChordStats } from './chord'
import { currentPlatform, describePlatform, missingBinaryAdvice, platformSuffix } from './platform'

export interface NativePeer { id: string; host: string; port: number; outbound: boolean; member: boolean }
export interface NativeNodeRef { id: string; host: string; port: number }
export interface NativeEvent {
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
}
export interface NativeBinding {
  startNode(options: NativeStartOptions): Promise<NativeNode>
  protocolId(subnet: string, encryption: string): string
}

function load(): NativeBinding {
  const info = currentPlatform()
  const suffix = platformSuffix(info)
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
    `chordnet: no native binary for ${suffix} (${describePlatform(info)}, Node ${process.versions.node}, ABI ${process.versions.modules}).\n` +
      `Tried:\n  ${failures.join('\n  ')}\n` +
      `${missingBinaryAdvice(suffix)}\n` +
      'In a checkout of the chordnet repository, `npm run build` builds it.',
  )
}

export const native: NativeBinding = load()
