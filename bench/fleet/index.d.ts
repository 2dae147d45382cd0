/** Types of bench/fleet/index.js, for the TypeScript tests that drive a fleet. */

export interface Host {
  readonly index: number
  readonly pid: number
  readonly alive: boolean
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>
  kill(): Promise<number | string | null>
  stop(): Promise<void>
}

export interface FleetSettings {
  processes: number
  /** Package folder whose API the processes load (default: this checkout). */
  build?: string
  /** ChordSocket options of every node (default: none, the library's defaults). */
  options?: Record<string, unknown>
  subnet?: string
}

export interface Member {
  slot: number
  host: number
  id: string
  port: number
  joinMs: number
}

export interface Refusal {
  slot: number
  host: number
  joinMs: number
  code: string
  message: string
}

export interface Link {
  id: string
  port: number
  host: number
  member: boolean
  successor?: string
  predecessor?: string
  fingers: number
  connections: number
  peers: number
  /** Peers this node suspected of having failed since it started. */
  suspicions: number
}

export interface LatencySummary {
  n: number
  p50: number | null
  p99: number | null
  mean: number | null
  max: number | null
}

export interface OpsResult {
  ops: number
  failed: number
  errors: Record<string, number>
  firstError?: string
  elapsedMs: number
  rate: number
  latency: LatencySummary
}

export interface WriteResult extends OpsResult {
  /** Keys whose set rejected (not acknowledged). */
  failedKeys: number[]
}

export interface ReadResult extends OpsResult {
  readers: number
  /** Reads that found a key absent whose set had rejected (not counted in `missing`). */
  unacknowledgedMissing: number
  wrong: number
  missing: number
  failedReads: number
  wrongKeys: number[]
  missingKeys: number[]
  failedKeys: number[]
  firstWrong?: string
}

export const ROOT: string
export function startFleet(settings: FleetSettings): Promise<Host[]>
export function stopFleet(hosts: Host[]): Promise<void>
export function joinOneByOne(
  hosts: Host[],
  plan: number[],
  options?: { via?: 'first' | 'random'; onJoin?: (progress: { slot: number; members: number; refused: number }) => void },
): Promise<{ members: Member[]; refused: Refusal[]; elapsedMs: number }>
export function ringLinks(hosts: Host[]): Promise<Link[]>
export function isOneRing(links: Link[]): boolean
export function waitForOneRing(hosts: Host[], timeoutMs: number, pollMs?: number): Promise<{ settled: boolean; ms: number; links: Link[]; wrong?: number }>
export function waitForFingers(hosts: Host[], options?: { quietMs?: number; timeoutMs?: number }): Promise<{ quiet: boolean; ms: number }>
export function crossCheck(
  hosts: Host[],
  links: Link[],
): Promise<{ asked: number; agree: number; disagree: string[]; unreachable: Record<string, number>; firstUnreachable?: string }>
export function writeKeys(hosts: Host[], total: number, depth?: number): Promise<WriteResult>
export function readKeys(hosts: Host[], total: number, depth?: number, unacknowledged?: number[]): Promise<ReadResult>
export function lookupKeys(hosts: Host[], keys: number[]): Promise<{ samples: number; failed: number; meanHops: number; maxHops: number; owners: Map<number, string> }>
export function holdersOf(hosts: Host[], keys: number[]): Promise<string[][]>
export function procSample(pid: number): { cpuMs: number; rss: number }
export function measureIdle(hosts: Host[], seconds: number, nodesOf: (host: Host) => number): Promise<Record<string, unknown>>
export function describeBuild(dir: string): string
export function sleep(ms: number): Promise<void>
