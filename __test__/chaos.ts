/**
 * A chaos run over member processes with data folders (fixtures/ring-node.js driven through
 * `member.ts`), shared by `npm run chaos` (scripts/chaos.js) and `chaos.spec.ts`.
 *
 * Writers each own their keys (`w3-k17`), so the last acknowledged value of a key is the one a
 * read must return; values carry a per-key sequence number. A set goes through a random live
 * member; after each acknowledged set, a get of the key from another random live member is
 * classified: ok, stale (an older sequence than the last acknowledged one, or absent after an
 * ack), or failed (the member asked died under it, or anything else). A set that failed may
 * or may not have been stored: its sequence is accepted too, until a later set is acknowledged.
 *
 * Every 15–25 s one or two members are SIGKILLed (one at random, two adjacent by id, two at
 * random, or a neighbour of a member that has just restarted and is catching up by
 * anti-entropy) and restarted 5 s later on the same port and folder, with no bootstrap: they
 * rejoin through the members they remember. At the end the writers stop, the ring settles and
 * every key is read from every member: a key whose last acknowledged value is not returned is
 * lost. Each stale read is logged with what is needed to explain it: the key's owner, who
 * holds which sequence, the kills and restarts before it, and the routing changes and errors
 * the members traced (fixtures/ring-node.js `trace`).
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
// Not from ./helpers: that module loads ava, and scripts/chaos.js runs this outside ava.
import { setTimeout as sleep } from 'node:timers/promises'
import { Member, MemberStats, TraceEvent, isOneRing } from './member'

export type KillKind = 'one' | 'adjacent' | 'two' | 'after-restart'
export const KILL_KINDS: KillKind[] = ['one', 'adjacent', 'two', 'after-restart']

export interface ChaosOptions {
  members: number
  writers: number
  /** Keys each writer owns. */
  keysPerWriter: number
  /** Sets (each followed by its get) each writer keeps in flight, on distinct keys. */
  lanes: number
  /** How long the writers and the kills run. */
  durationMs: number
  seed: number
  /** Pause between kill events, drawn in [min, max]. */
  killEveryMs: [number, number]
  /** A killed member is restarted this long after its kill, drawn in [min, max]. */
  downMs: [number, number]
  /** The kinds of kill events in order (repeated); absent: drawn at random. */
  plan?: KillKind[]
  /** Members' `stabilizeMs` (the library's default when absent). */
  stabilizeMs?: number
  /** Bytes of padding in each value. */
  valueBytes: number
  /** A progress line this often. */
  reportEveryMs: number
  /** How long the ring may take to settle at the end (a loaded machine is slow; the checks are not timed). */
  settleTimeoutMs: number
  log: (line: string) => void
}

export const DEFAULT_OPTIONS: Omit<ChaosOptions, 'log'> = {
  members: 6,
  writers: 8,
  keysPerWriter: 32,
  lanes: 1,
  durationMs: 8 * 60_000,
  seed: 1,
  // The issue's schedule: a kill event every 15–25 s, restarts 5 s later.
  killEveryMs: [15_000, 25_000],
  downMs: [5_000, 5_000],
  valueBytes: 64,
  reportEveryMs: 10_000,
  settleTimeoutMs: 120_000,
}

/** One thing the harness did to the ring, with its time since the start. */
export interface RingEvent {
  at: number
  kind: 'kill' | 'restart' | 'restart-failed'
  slot: number
  why?: string
}

export interface StaleRead {
  key: string
  /** Last acknowledged sequence, and what the read returned (null: absent). */
  expected: number
  got: number | null
  /** `got` is a sequence whose set failed (it may have been stored late). */
  gotFailedWrite: boolean
  /** Ms since the start of the run, and since the set was acknowledged. */
  at: number
  msSinceAck: number
  setVia: string
  readVia: string
  /** The harness's kills and restarts in the 30 s before the read, in ms before it. */
  recentEvents: string[]
  /** The owner as the reading member's lookup found it right after, and as the writing member's did. */
  ownerByReader?: string
  ownerByWriter?: string
  /** Per live member, the sequence it holds itself (localGet) right after the read. */
  holders: Record<string, number | null | string>
  /** Per live member: predecessor and successors right after the read. */
  routing: Record<string, string>
  /** The reading member again, a second later. */
  rereadAfter1s?: number | null | string
  /** Members' traced routing changes and errors from 15 s before the read to 1 s after. */
  traces: string[]
}

export interface LostKey {
  key: string
  expected: number
  /** What each member returned instead. */
  got: Record<string, number | null | string>
}

export interface ProcessFigures {
  slot: string
  maxRssMiB: number
  maxFds: number
}

export interface ChaosSummary {
  options: Omit<ChaosOptions, 'log'>
  ranMs: number
  /** Acknowledged sets, and sets that failed (the member asked died / anything else). */
  writes: number
  setsFailed: { memberDied: number; other: number }
  reads: { ok: number; stale: number; failedMemberDied: number; failedOther: number }
  /** Reads that returned a sequence never written: a harness or data bug. */
  impossibleReads: number
  kills: number
  killEvents: { at: number; kind: KillKind; slots: number[] }[]
  adjacentPairs: number
  events: RingEvent[]
  stale: StaleRead[]
  lost: LostKey[]
  /** Keys still wrong on a second full read 15 s later (only when some were lost). */
  lostAfterRetry?: number
  finalReadFailures: string[]
  settleMs: number
  failureMessages: Record<string, number>
  errorEvents: Record<string, number>
  /** The first members' 'error' events, with when (s into the run) and who. */
  errorSamples: string[]
  processes: ProcessFigures[]
}

/** mulberry32: a small seeded generator, so a run's kill schedule replays from its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Slot {
  index: number
  port: number
  dataDir: string
  id: string
  member?: Member
  up: boolean
  /** Every process this slot ran, for the figures at the end. */
  maxRss: number
  maxFds: number
  lastRss: number
  lastFds: number
}

interface KeyState {
  next: number
  acked: number
  ackedAt: number
  /** Sequences whose set failed after the last ack: they may have been stored. */
  maybe: Set<number>
  /** Every sequence whose set failed (a late one read back is flagged, not excused). */
  failed: Set<number>
}

const MEMBER_DIED = /member .*exited|has exited/
/** Members' 'error' events kept word for word in the summary (the rest are counted). */
const ERROR_SAMPLES = 40

export class ChaosRun {
  readonly o: ChaosOptions
  readonly root: string
  readonly subnet: string
  readonly slots: Slot[] = []
  readonly keys = new Map<string, KeyState>()
  readonly events: RingEvent[] = []
  readonly traces: { at: number; slot: number; event: TraceEvent }[] = []
  readonly stale: StaleRead[] = []
  readonly killEvents: ChaosSummary['killEvents'] = []
  readonly failureMessages: Record<string, number> = {}
  readonly errorEvents: Record<string, number> = {}
  readonly diagnoses: Promise<void>[] = []
  counts = { writes: 0, setDied: 0, setOther: 0, ok: 0, staleReads: 0, readDied: 0, readOther: 0, impossible: 0, kills: 0 }
  started = Date.now()
  #random: () => number
  #writing = false
  #restarts = new Set<Promise<void>>()
  #cleaned = false

  constructor(options: Partial<ChaosOptions> & { log: ChaosOptions['log'] }) {
    this.o = { ...DEFAULT_OPTIONS, ...options }
    this.#random = seededRandom(this.o.seed)
    this.root = mkdtempSync(join(tmpdir(), 'chordnet-chaos-'))
    this.subnet = `chaos-${process.pid}-${Date.now()}`
  }

  /** Run the whole thing; the members and the folder are removed at the end, also on failure. */
  async run(): Promise<ChaosSummary> {
    try {
      await this.startRing()
      return await this.chaos()
    } finally {
      await this.cleanup()
    }
  }

  /** Kill every member and remove the folder; safe to call twice and from an exit handler. */
  async cleanup(): Promise<void> {
    if (this.#cleaned) return
    this.#cleaned = true
    const members = this.slots.map((s) => s.member).filter((m): m is Member => m !== undefined)
    for (const m of members) m.child.kill('SIGKILL')
    await Promise.all(members.map((m) => m.exited))
    rmSync(this.root, { recursive: true, force: true })
  }

  /** Synchronous last resort for `process.on('exit')`. */
  cleanupNow(): void {
    if (this.#cleaned) return
    this.#cleaned = true
    for (const s of this.slots) s.member?.child.kill('SIGKILL')
    rmSync(this.root, { recursive: true, force: true })
  }

  elapsed(): number {
    return Date.now() - this.started
  }

  name(slot: number): string {
    const s = this.slots[slot]
    return `m${slot}(${s.id.slice(0, 8)})`
  }

  /** `m3(1a2b3c4d)` for a node id, or the short id of a node that is not ours. */
  nameOfId(id: string | null | undefined): string {
    if (!id) return '-'
    const slot = this.slots.find((s) => s.id === id)
    return slot ? this.name(slot.index) : id.slice(0, 8)
  }

  #settings(slot: Slot, port: number) {
    const options: Record<string, unknown> = { dataDir: slot.dataDir }
    if (this.o.stabilizeMs !== undefined) options.stabilizeMs = this.o.stabilizeMs
    return { subnet: this.subnet, port, options, trace: true }
  }

  #attach(slot: Slot, member: Member): void {
    slot.member = member
    member.on('trace', (event) => {
      this.traces.push({ at: event.at - this.started, slot: slot.index, event })
      if (event.kind === 'error') this.errorEvents[event.code] = (this.errorEvents[event.code] ?? 0) + 1 + event.droppedBefore
    })
  }

  async startRing(): Promise<void> {
    for (let i = 0; i < this.o.members; i++) {
      const slot: Slot = { index: i, port: 0, dataDir: join(this.root, `member-${i}`), id: '', up: false, maxRss: 0, maxFds: 0, lastRss: 0, lastFds: 0 }
      this.slots.push(slot)
      const via = this.slots[Math.floor(this.#random() * i)]
      const member = new Member({ ...this.#settings(slot, 0), bootstrap: i === 0 ? undefined : via.member!.address })
      this.#attach(slot, member)
      await member.started()
      Object.assign(slot, { port: member.port, id: member.id, up: true })
    }
    const settleMs = await this.settle()
    this.o.log(`${this.o.members} members started and settled in ${settleMs} ms: ${this.byId().map((s) => this.name(s.index)).join(' → ')}`)
    this.started = Date.now()
  }

  /** Slots in ring order (by id). */
  byId(): Slot[] {
    return [...this.slots].sort((a, b) => a.id.localeCompare(b.id))
  }

  live(): Slot[] {
    return this.slots.filter((s) => s.up)
  }

  /** Wait until the live members form one ring; returns the ms it took. */
  async settle(): Promise<number> {
    const began = Date.now()
    for (;;) {
      const live = this.live().map((s) => s.member!)
      const ok = await isOneRing(live).catch(() => false)
      if (ok) return Date.now() - began
      if (Date.now() - began > this.o.settleTimeoutMs) throw new Error(`the ${live.length} live members did not form one ring within ${this.o.settleTimeoutMs} ms`)
      await sleep(100)
    }
  }

  async chaos(): Promise<ChaosSummary> {
    for (let w = 0; w < this.o.writers; w++) {
      for (let k = 0; k < this.o.keysPerWriter; k++) this.keys.set(`w${w}-k${k}`, { next: 0, acked: 0, ackedAt: 0, maybe: new Set(), failed: new Set() })
    }
    this.#writing = true
    const writers: Promise<void>[] = []
    for (let w = 0; w < this.o.writers; w++) {
      for (let lane = 0; lane < this.o.lanes; lane++) {
        const mine = [...this.keys.keys()].filter((key, i) => key.startsWith(`w${w}-`) && i % this.o.lanes === lane)
        writers.push(this.#writer(mine))
      }
    }
    const reporter = setInterval(() => this.o.log(this.progressLine()), this.o.reportEveryMs)
    try {
      await this.#kills()
      this.#writing = false
      await Promise.all(writers)
      await Promise.all([...this.#restarts])
      await Promise.all(this.diagnoses)
    } finally {
      clearInterval(reporter)
      this.#writing = false
    }
    const ranMs = this.elapsed()
    this.o.log(this.progressLine())
    this.o.log(`writers stopped after ${(ranMs / 1000).toFixed(0)} s; waiting for the ring to settle`)
    const settleMs = await this.settle()
    // Three anti-entropy periods (every 4 stabilize rounds) once the ring's links are right.
    await sleep(3 * 4 * (this.o.stabilizeMs ?? 250))
    const { lost, failures } = await this.finalRead()
    let lostAfterRetry: number | undefined
    if (lost.length > 0) {
      this.o.log(`${lost.length} keys wrong on the final read; reading again in 15 s`)
      await sleep(15_000)
      lostAfterRetry = (await this.finalRead()).lost.length
    }
    const { log: _log, ...options } = this.o
    return {
      options,
      ranMs,
      writes: this.counts.writes,
      setsFailed: { memberDied: this.counts.setDied, other: this.counts.setOther },
      reads: { ok: this.counts.ok, stale: this.counts.staleReads, failedMemberDied: this.counts.readDied, failedOther: this.counts.readOther },
      impossibleReads: this.counts.impossible,
      kills: this.counts.kills,
      killEvents: this.killEvents,
      adjacentPairs: this.killEvents.filter((e) => e.kind === 'adjacent').length,
      events: this.events,
      stale: this.stale,
      lost,
      lostAfterRetry,
      finalReadFailures: failures,
      settleMs,
      failureMessages: this.failureMessages,
      errorEvents: this.errorEvents,
      errorSamples: this.traces
        .filter((t) => t.event.kind === 'error')
        .slice(0, ERROR_SAMPLES)
        .map((t) => `${(t.at / 1000).toFixed(1)} s ${this.name(t.slot)} ${describeTrace(t.event, (id) => this.nameOfId(id))}`),
      processes: this.slots.map((s) => ({ slot: this.name(s.index), maxRssMiB: Math.round(s.maxRss / 1024), maxFds: s.maxFds })),
    }
  }

  // ---- writers

  #pick(except?: Member): Member | undefined {
    const live = this.live().filter((s) => s.member !== except && s.member!.pid !== 0)
    if (live.length === 0) return undefined
    return live[Math.floor(Math.random() * live.length)].member
  }

  #slotOf(member: Member): number {
    return this.slots.findIndex((s) => s.member === member)
  }

  #failure(kind: 'set' | 'get', error: unknown, member: Member): 'died' | 'other' {
    const message = error instanceof Error ? error.message : String(error)
    const died = MEMBER_DIED.test(message) || member.child.exitCode !== null || member.child.signalCode !== null
    if (!died) {
      const short = `${kind}: ${message.replace(/\d+(\.\d+)?/g, 'N').slice(0, 120)}`
      this.failureMessages[short] = (this.failureMessages[short] ?? 0) + 1
    }
    return died ? 'died' : 'other'
  }

  async #writer(keys: string[]): Promise<void> {
    while (this.#writing) {
      const key = keys[Math.floor(Math.random() * keys.length)]
      const state = this.keys.get(key)!
      const via = this.#pick()
      if (!via) {
        await sleep(50)
        continue
      }
      const seq = ++state.next
      try {
        await via.call('set', { key, value: `${key}#${seq}#`.padEnd(this.o.valueBytes, 'x') }, 40_000)
      } catch (error) {
        state.maybe.add(seq)
        state.failed.add(seq)
        if (this.#failure('set', error, via) === 'died') this.counts.setDied++
        else this.counts.setOther++
        continue
      }
      state.acked = seq
      state.ackedAt = Date.now()
      for (const s of state.maybe) if (s < seq) state.maybe.delete(s)
      this.counts.writes++
      const reader = this.#pick(via)
      if (!reader) continue
      let value: string | null
      try {
        value = await reader.get(key)
      } catch (error) {
        if (this.#failure('get', error, reader) === 'died') this.counts.readDied++
        else this.counts.readOther++
        continue
      }
      this.#check(key, state, value, via, reader)
    }
  }

  #check(key: string, state: KeyState, value: string | null, via: Member, reader: Member): void {
    let got: number | null
    try {
      got = sequenceOf(key, value)
    } catch (error) {
      this.counts.impossible++
      this.o.log(`IMPOSSIBLE read of ${key}: ${(error as Error).message}`)
      return
    }
    if (got === state.acked || (got !== null && state.maybe.has(got))) {
      this.counts.ok++
      return
    }
    if (got !== null && got > state.acked) {
      this.counts.impossible++
      this.o.log(`IMPOSSIBLE read of ${key}: got ${got}, last acknowledged ${state.acked}, never failed`)
      return
    }
    this.counts.staleReads++
    const at = this.elapsed()
    const record: StaleRead = {
      key,
      expected: state.acked,
      got,
      gotFailedWrite: got !== null && state.failed.has(got),
      at,
      msSinceAck: Date.now() - state.ackedAt,
      setVia: this.name(this.#slotOf(via)),
      readVia: this.name(this.#slotOf(reader)),
      recentEvents: this.events.filter((e) => e.at > at - 30_000).map((e) => `${e.kind} ${this.name(e.slot)} ${at - e.at} ms before${e.why ? ` (${e.why})` : ''}`),
      holders: {},
      routing: {},
      traces: [],
    }
    this.stale.push(record)
    this.o.log(`STALE read of ${key} at ${(at / 1000).toFixed(1)} s: expected #${record.expected}, got ${got === null ? 'absent' : `#${got}`}${record.gotFailedWrite ? ' (a failed set)' : ''}, ${record.msSinceAck} ms after the ack; set via ${record.setVia}, read via ${record.readVia}`)
    this.diagnoses.push(this.#diagnose(record, via, reader))
  }

  /** Ask the members, right away, who owns the key and who holds what; then collect traces. */
  async #diagnose(record: StaleRead, via: Member, reader: Member): Promise<void> {
    const live = this.live()
    const quietly = <T>(p: Promise<T>) => p.catch((error: Error) => `error: ${error.message.slice(0, 80)}`)
    const [ownerByReader, ownerByWriter, held, stats] = await Promise.all([
      quietly(reader.lookup(record.key, 10_000)),
      quietly(via.lookup(record.key, 10_000)),
      Promise.all(live.map((s) => quietly(s.member!.localGetMany([record.key])))),
      Promise.all(live.map((s) => quietly(s.member!.stats()))),
    ])
    const owner = (answer: unknown) => (typeof answer === 'string' ? answer : this.nameOfId((answer as { owner: string }).owner))
    record.ownerByReader = owner(ownerByReader)
    record.ownerByWriter = owner(ownerByWriter)
    live.forEach((s, i) => {
      const value = held[i]
      record.holders[this.name(s.index)] = typeof value === 'string' ? value : sequenceOf(record.key, value[0])
      const st = stats[i]
      record.routing[this.name(s.index)] =
        typeof st === 'string' ? st : `pred ${this.nameOfId((st as MemberStats).predecessor)}, succ ${(st as MemberStats).successors.map((id) => this.nameOfId(id)).join(' ')}`
    })
    await sleep(1000)
    const again = await quietly(reader.get(record.key))
    record.rereadAfter1s = again === null || !again.startsWith('error') ? sequenceOf(record.key, again) : again
    record.traces = this.traces
      .filter((t) => t.at > record.at - 15_000 && t.at < record.at + 1_000)
      .map((t) => `${t.at <= record.at ? `${record.at - t.at} ms before` : `${t.at - record.at} ms after`}: ${this.name(t.slot)} ${describeTrace(t.event, (id) => this.nameOfId(id))}`)
    this.o.log(`  owner by reader ${record.ownerByReader}, by writer ${record.ownerByWriter}; holders ${JSON.stringify(record.holders)}; reread 1 s later: ${record.rereadAfter1s}`)
  }

  // ---- kills and restarts

  async #kills(): Promise<void> {
    const [min, max] = this.o.killEveryMs
    let nextAt = min + this.#random() * (max - min)
    let number = 0
    while (this.elapsed() < this.o.durationMs) {
      const wait = Math.min(nextAt, this.o.durationMs) - this.elapsed()
      if (wait > 0) {
        await sleep(Math.min(wait, 250))
        continue
      }
      const kind = this.o.plan ? this.o.plan[number % this.o.plan.length] : KILL_KINDS[Math.floor(this.#random() * KILL_KINDS.length)]
      number++
      const at = this.elapsed()
      await this.#killEvent(kind)
      nextAt = at + min + this.#random() * (max - min)
    }
  }

  async #killEvent(kind: KillKind): Promise<void> {
    // Never more than two members down at once: r = 3 promises to survive two crashes.
    const down = this.slots.filter((s) => !s.up).length
    const ring = this.byId().filter((s) => s.up)
    const pickOne = () => ring[Math.floor(this.#random() * ring.length)]
    let victims: Slot[]
    if (kind === 'one' || kind === 'after-restart') victims = [pickOne()]
    else if (kind === 'adjacent') {
      // Neighbours in the ring of all members (both up): the hardest pair for r = 3.
      const all = this.byId()
      const candidates = all.filter((s, i) => s.up && all[(i + 1) % all.length].up)
      const first = candidates[Math.floor(this.#random() * candidates.length)]
      victims = first ? [first, all[(all.indexOf(first) + 1) % all.length]] : [pickOne()]
    } else {
      const first = pickOne()
      const rest = ring.filter((s) => s !== first)
      victims = [first, rest[Math.floor(this.#random() * rest.length)]]
    }
    victims = victims.slice(0, Math.max(0, 2 - down))
    if (victims.length === 0) return
    this.killEvents.push({ at: this.elapsed(), kind, slots: victims.map((v) => v.index) })
    for (const victim of victims) this.#kill(victim, kind)
    const restarts = victims.map((victim) => this.#restartLater(victim))
    if (kind !== 'after-restart') return
    // The member that just came back is catching up by anti-entropy: now kill a neighbour of
    // it, so that it becomes the owner of (or replica for) an arc whose writes it missed.
    const [restarted] = victims
    await restarts[0]
    if (!restarted.up) return
    await sleep(200 + this.#random() * 1300)
    const all = this.byId()
    const at = all.indexOf(restarted)
    const neighbour = this.#random() < 0.5 ? all[(at + all.length - 1) % all.length] : all[(at + 1) % all.length]
    if (!neighbour.up || this.slots.filter((s) => !s.up).length >= 2) return
    this.killEvents.push({ at: this.elapsed(), kind, slots: [neighbour.index] })
    this.#kill(neighbour, `neighbour of ${this.name(restarted.index)}, restarted ${this.elapsed() - this.#lastEvent(restarted.index, 'restart')} ms before`)
    this.#restartLater(neighbour)
  }

  #lastEvent(slot: number, kind: RingEvent['kind']): number {
    return [...this.events].reverse().find((e) => e.slot === slot && e.kind === kind)?.at ?? 0
  }

  #kill(slot: Slot, why: string): void {
    this.#sample(slot)
    slot.up = false
    slot.member!.child.kill('SIGKILL')
    this.counts.kills++
    this.events.push({ at: this.elapsed(), kind: 'kill', slot: slot.index, why })
    this.o.log(`kill ${this.name(slot.index)} (${why}) at ${(this.elapsed() / 1000).toFixed(1)} s`)
  }

  /** Restart `slot` `downMs` after its kill on its port and folder, retrying while the port or folder is still held. */
  #restartLater(slot: Slot): Promise<void> {
    const restart = (async () => {
      const old = slot.member!
      await old.exited
      const [min, max] = this.o.downMs
      await sleep(min + this.#random() * (max - min))
      for (let attempt = 1; ; attempt++) {
        const member = new Member(this.#settings(slot, slot.port))
        this.#attach(slot, member)
        try {
          await member.started()
          if (member.id !== slot.id) throw new Error(`restarted with id ${member.id}, not ${slot.id}`)
          slot.up = true
          this.events.push({ at: this.elapsed(), kind: 'restart', slot: slot.index })
          return
        } catch (error) {
          member.child.kill('SIGKILL')
          this.events.push({ at: this.elapsed(), kind: 'restart-failed', slot: slot.index, why: (error as Error).message })
          if (attempt >= 20) throw error
          await sleep(500)
        }
      }
    })()
    this.#restarts.add(restart)
    // Awaited at the end of the run (a restart that keeps failing fails the run there).
    restart.catch(() => {}).finally(() => this.#restarts.delete(restart))
    return restart
  }

  // ---- figures and the final check

  #sample(slot: Slot): void {
    const pid = slot.member?.pid
    if (!pid || !slot.up) return
    try {
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0)
      const fds = readdirSync(`/proc/${pid}/fd`).length
      slot.maxRss = Math.max(slot.maxRss, rss)
      slot.maxFds = Math.max(slot.maxFds, fds)
      slot.lastRss = rss
      slot.lastFds = fds
    } catch {
      // The process is gone between the check and the read.
    }
  }

  progressLine(): string {
    const c = this.counts
    const processes = this.slots
      .map((s) => {
        this.#sample(s)
        return s.up ? `${this.name(s.index)} ${Math.round(s.lastRss / 1024)}MiB ${s.lastFds}fd` : `${this.name(s.index)} down`
      })
      .join(' | ')
    return (
      `${(this.elapsed() / 1000).toFixed(0).padStart(4)} s  writes ${c.writes}  reads ok ${c.ok}  stale ${c.staleReads}  ` +
      `failed sets ${c.setDied}+${c.setOther} reads ${c.readDied}+${c.readOther} (member died+other)  kills ${c.kills}  ${processes}`
    )
  }

  /** Read every key through every member: the keys whose last acknowledged value some member does not return. */
  async finalRead(): Promise<{ lost: LostKey[]; failures: string[] }> {
    const keys = [...this.keys.keys()].filter((k) => this.keys.get(k)!.acked > 0)
    const lost = new Map<string, LostKey>()
    const failures: string[] = []
    for (const slot of this.live()) {
      let values: (string | null)[]
      try {
        values = await slot.member!.getMany(keys, 120_000)
      } catch (error) {
        failures.push(`${this.name(slot.index)}: ${(error as Error).message}`)
        continue
      }
      keys.forEach((key, i) => {
        const state = this.keys.get(key)!
        let got: number | null | string
        try {
          got = sequenceOf(key, values[i])
        } catch (error) {
          got = (error as Error).message
        }
        if (got === state.acked || (typeof got === 'number' && state.maybe.has(got))) return
        const entry = lost.get(key) ?? { key, expected: state.acked, got: {} }
        entry.got[this.name(slot.index)] = got
        lost.set(key, entry)
      })
    }
    return { lost: [...lost.values()], failures }
  }
}

/** The sequence number a value of `key` carries (`w3-k17#42#xxx`), null when absent. */
export function sequenceOf(key: string, value: string | null | undefined): number | null {
  if (value === null || value === undefined) return null
  const [owner, seq] = value.split('#')
  if (owner !== key) throw new Error(`value of ${key} names ${owner}: ${value.slice(0, 40)}`)
  return Number(seq)
}

function describeTrace(event: TraceEvent, name: (id: string | null) => string): string {
  if (event.kind === 'error') return `error ${event.code}: ${event.message.slice(0, 300)}`
  return `${event.member ? '' : 'NOT A MEMBER '}pred ${name(event.predecessor)}, succ ${event.successors.map(name).join(' ') || '(alone)'}, ${event.keys} keys`
}

/** `15–25` (seconds) for [15000, 25000] ms, `5` for [5000, 5000]. */
function range([min, max]: [number, number]): string {
  return min === max ? `${min / 1000}` : `${min / 1000}–${max / 1000}`
}

/** A readable report of a run (markdown). */
export function markdownReport(summary: ChaosSummary, staleShown = Infinity): string {
  const lines: string[] = []
  const o = summary.options
  lines.push(`# Chaos run, seed ${o.seed}`, '')
  lines.push(`${o.members} members, ${o.writers} writers × ${o.keysPerWriter} keys (${o.lanes} in flight each), ${(summary.ranMs / 1000).toFixed(0)} s, kills every ${range(o.killEveryMs)} s, restarts ${range(o.downMs)} s later`, '')
  lines.push('| | |', '|---|---:|')
  lines.push(`| acknowledged writes | ${summary.writes} |`)
  lines.push(`| failed sets (member died / other) | ${summary.setsFailed.memberDied} / ${summary.setsFailed.other} |`)
  lines.push(`| reads ok | ${summary.reads.ok} |`)
  lines.push(`| **stale reads** | **${summary.reads.stale}** |`)
  lines.push(`| failed reads (member died / other) | ${summary.reads.failedMemberDied} / ${summary.reads.failedOther} |`)
  lines.push(`| impossible reads | ${summary.impossibleReads} |`)
  lines.push(`| kills (events; adjacent pairs) | ${summary.kills} (${summary.killEvents.length}; ${summary.adjacentPairs}) |`)
  lines.push(`| **lost keys** at the end | **${summary.lost.length}**${summary.lostAfterRetry !== undefined ? ` (${summary.lostAfterRetry} still 15 s later)` : ''} |`)
  lines.push(`| ring settled after the writers stopped | ${summary.settleMs} ms |`, '')
  lines.push('Per process (max over the run): ' + summary.processes.map((p) => `${p.slot} ${p.maxRssMiB} MiB ${p.maxFds} fds`).join(', '), '')
  if (Object.keys(summary.failureMessages).length) lines.push('Failures: ' + JSON.stringify(summary.failureMessages), '')
  if (Object.keys(summary.errorEvents).length) {
    lines.push("Members' 'error' events: " + JSON.stringify(summary.errorEvents), '', ...summary.errorSamples.map((e) => `- ${e}`), '')
  }
  lines.push('## Ring events', '', summary.events.map((e) => `- ${(e.at / 1000).toFixed(1)} s ${e.kind} m${e.slot}${e.why ? ` (${e.why})` : ''}`).join('\n'), '')
  if (summary.stale.length) {
    lines.push('## Stale reads', '')
    for (const s of summary.stale.slice(0, staleShown)) lines.push('```json', JSON.stringify(s, null, 2), '```', '')
    if (summary.stale.length > staleShown) lines.push(`(${summary.stale.length - staleShown} more)`, '')
  }
  if (summary.lost.length) lines.push('## Lost keys', '', '```json', JSON.stringify(summary.lost, null, 2), '```', '')
  return lines.join('\n')
}
