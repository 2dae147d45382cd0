/** Ring members in child processes (fixtures/ring-node.js), driven over JSON lines on stdin/stdout. */
import { ChildProcess, spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { isOneRing as linksFormOneRing } from '../lib/testnet'
// Not from ./helpers: that module loads ava, and scripts/chaos.js drives members outside ava.
import { setTimeout as sleep } from 'node:timers/promises'

export interface MemberStats {
  id: string
  successors: string[]
  predecessor?: string
  keys: number
  suspicions: number
  merges: number
  oversizedFrames: number
}

export interface MemberSettings {
  subnet: string
  host?: string
  /** Listen on this port (default 0: any free port), e.g. to restart on the same one. */
  port?: number
  bootstrap?: [string, number]
  options?: Record<string, unknown>
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string
  /** Report routing changes and 'error' events as `'trace'` events (see fixtures/ring-node.js). */
  trace?: boolean
}

/** What a traced member reports as it happens (`member.on('trace', ...)`). */
export type TraceEvent =
  | { at: number; kind: 'routing'; member: boolean; predecessor: string | null; successors: string[]; keys: number }
  | { at: number; kind: 'error'; code: string; message: string; droppedBefore: number }

export interface LookupAnswer {
  owner: string
  port: number
  hops: number
}

export class Member extends EventEmitter<{ trace: [TraceEvent] }> {
  readonly child: ChildProcess
  readonly host: string
  readonly exited: Promise<number | null>
  id = ''
  port = 0
  /** The member's own process id (the child's, or inside `ip netns exec` the node's). */
  pid = 0
  #next = 0
  #pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>()
  #ready: Promise<void>
  #exit?: number | null

  constructor(settings: MemberSettings) {
    super()
    this.host = settings.host ?? '127.0.0.1'
    const fixture = join(__dirname, 'fixtures', 'ring-node.js')
    const args = [fixture, JSON.stringify({ ...settings, host: this.host })]
    this.child = settings.netns
      ? spawn('ip', ['netns', 'exec', settings.netns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'inherit'] })
      : spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
    this.#ready = new Promise((resolve, reject) => {
      this.exited.then((code) => reject(new Error(`member exited (code ${code}) before it was ready`)))
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line)
        if (message.trace) {
          this.emit('trace', message.trace)
          return
        }
        if (message.failed) {
          reject(Object.assign(new Error(message.failed.message), { code: message.failed.code }))
          return
        }
        if (message.ready) {
          this.id = message.ready.id
          this.port = message.ready.port
          this.pid = message.ready.pid
          resolve()
          return
        }
        const waiter = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        if (message.ok) waiter?.resolve(message.result)
        else waiter?.reject(new Error(message.error))
      })
    })
    // A killed member's stdin breaks; its callers hear of it through `call`.
    this.child.stdin!.on('error', () => {})
    // A member that dies fails whatever still waits on it.
    this.exited.then((code) => {
      this.#exit = code
      for (const waiter of this.#pending.values()) waiter.reject(new Error(`member exited (code ${code})`))
      this.#pending.clear()
    })
  }

  async started(): Promise<this> {
    await this.#ready
    return this
  }

  get address(): [string, number] {
    return [this.host, this.port]
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++
    if (this.#exit !== undefined) return Promise.reject(new Error(`member ${this.host}:${this.port} has exited (code ${this.#exit})`))
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`member ${this.host}:${this.port} did not answer ${cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      const settle =
        <A>(f: (a: A) => void) =>
        (a: A) => {
          clearTimeout(timer)
          f(a)
        }
      this.#pending.set(id, { resolve: settle(resolve), reject: settle(reject) })
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n')
    })
  }

  set(key: string, value: string): Promise<null> {
    return this.call('set', { key, value })
  }

  get(key: string): Promise<string | null> {
    return this.call('get', { key })
  }

  delete(key: string): Promise<null> {
    return this.call('delete', { key })
  }

  getMany(keys: string[], timeoutMs = 60_000): Promise<(string | null)[]> {
    return this.call('getMany', { keys }, timeoutMs)
  }

  /** The copies this member itself holds (null when none), without asking the ring. */
  localGetMany(keys: string[]): Promise<(string | null)[]> {
    return this.call('localGetMany', { keys })
  }

  /** The owner of `key` as this member's lookup finds it. */
  lookup(key: string, timeoutMs = 30_000): Promise<LookupAnswer> {
    return this.call('lookup', { key }, timeoutMs)
  }

  /** Read every key of `file` (JSON { key: value }) through this member; the keys not read back right. */
  verify(file: string, timeoutMs = 60_000): Promise<string[]> {
    return this.call('verify', { file }, timeoutMs)
  }

  stats(): Promise<MemberStats> {
    return this.call('stats')
  }
}

/** Start `n` members, each joining through a random earlier one. */
export async function startRing(n: number, settings: (i: number) => MemberSettings): Promise<Member[]> {
  const members: Member[] = [await new Member(settings(0)).started()]
  for (let i = 1; i < n; i++) {
    const via = members[Math.floor(Math.random() * members.length)]
    members.push(await new Member({ ...settings(i), bootstrap: via.address }).started())
  }
  return members
}

/** Whether `members` form one correct ring (the library's own check, `isOneRing`). */
export async function isOneRing(members: Member[]): Promise<boolean> {
  const all = await Promise.all(members.map((m) => m.stats()))
  return linksFormOneRing(all.map((s) => ({ id: s.id, successor: s.successors[0], predecessor: s.predecessor })))
}

/** Wait until `members` form one ring; returns the ms it took. */
export async function settled(members: Member[], timeoutMs = 20_000): Promise<number> {
  const started = Date.now()
  while (!(await isOneRing(members))) {
    if (Date.now() - started > timeoutMs) {
      // Say what each member thinks, ids shortened, in ring order: the failure explains itself.
      const all = await Promise.all(members.map((m) => m.stats()))
      const short = (id?: string) => (id ? id.slice(0, 6) : '-')
      const links = all
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map((s) => `${short(s.id)}: successors ${s.successors.map(short).join(',') || '-'}, predecessor ${short(s.predecessor)}`)
      throw new Error(`${members.length} members did not form one ring within ${timeoutMs} ms; ${links.join('; ')}`)
    }
    await sleep(50)
  }
  return Date.now() - started
}
