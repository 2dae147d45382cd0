/**
 * An attacker's tools, over real sockets on 127.0.0.1, for attack.spec.ts and
 * bench/attack.js: a listener of our own that counts the connections a node is made to open
 * (the "third party" of an amplification), floods of idle sockets and of junk handshakes, a
 * reader that never reads, and a ring in a child process (fixtures/ring-host.js) whose memory
 * and CPU are read from /proc. Wire frames go through ./raw.ts.
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, Server, Socket, connect } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { prefixed } from './noise'

/** A TCP listener on 127.0.0.1, port 0, that counts (and closes) every connection it accepts. */
export class DialCounter {
  count = 0
  readonly #server: Server

  private constructor(server: Server) {
    this.#server = server
    server.on('connection', (socket) => {
      this.count++
      socket.on('error', () => {})
      socket.destroy()
    })
  }

  static async open(): Promise<DialCounter> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new DialCounter(server)
  }

  get port(): number {
    return (this.#server.address() as { port: number }).port
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.#server.close(resolve))
  }
}

/** A made-up node at `port` on 127.0.0.1 (a NodeRef on the wire): its id belongs to nobody. */
export function madeUpNode(port: number, host = '127.0.0.1') {
  return { id: randomBytes(16), host, port }
}

/** The soft and hard limits on open files of this process (/proc/self/limits). */
export function fileLimits(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))!
  const [soft, hard] = line.replace('Max open files', '').trim().split(/\s+/).map((v) => (v === 'unlimited' ? Infinity : Number(v)))
  return { soft, hard }
}

/**
 * Make sure this process may open `needed` files: raise the soft limit (up to the hard one) with
 * util-linux `prlimit` when it is lower. Throws, saying what to do, when it cannot.
 */
export function ensureFileLimit(needed: number): number {
  let { soft, hard } = fileLimits()
  if (soft >= needed) return soft
  if (hard >= needed) {
    try {
      execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${needed}:${hard === Infinity ? 'unlimited' : hard}`])
    } catch {
      // reported below
    }
    soft = fileLimits().soft
  }
  if (soft < needed) throw new Error(`this attack needs ${needed} open files; the limit is ${soft} (hard ${hard}): run with \`ulimit -n ${needed}\``)
  return soft
}

/** Resident memory of a process, in MiB (/proc/<pid>/status VmRSS). */
export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!
  return Number(line.split(/\s+/)[1]) / 1024
}

/** CPU time a process has used (user + system), in ms (/proc/<pid>/stat, clock ticks of 10 ms). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the command name.
  return (Number(fields[11]) + Number(fields[12])) * 10
}

/**
 * An outsider holding `count` idle TCP connections to `port` (no byte sent): every one the node
 * closes is opened again after `reopenMs`, so the node's pool of half-open connections stays
 * as full as it lets it be.
 */
export class IdleFlood {
  opened = 0
  readonly #sockets = new Set<Socket>()
  #stopped = false

  constructor(
    readonly port: number,
    readonly count: number,
    readonly reopenMs = 250,
  ) {
    for (let i = 0; i < count; i++) this.#open()
  }

  #open(): void {
    if (this.#stopped) return
    const socket = connect(this.port, '127.0.0.1')
    this.opened++
    this.#sockets.add(socket)
    socket.on('error', () => {})
    socket.on('close', () => {
      this.#sockets.delete(socket)
      setTimeout(() => this.#open(), this.reopenMs).unref()
    })
  }

  /** Connections open right now. */
  get open(): number {
    return [...this.#sockets].filter((s) => !s.connecting && !s.destroyed).length
  }

  stop(): void {
    this.#stopped = true
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
  }
}

/**
 * An outsider without the network key completing handshakes as fast as it can: `lanes`
 * connections at a time, each sending a junk Noise first message (48 random bytes, the shape
 * of a real one) and opening the next one as soon as the node answers or closes.
 */
export class JunkHandshakes {
  completed = 0
  #stopped = false
  readonly #sockets = new Set<Socket>()

  constructor(
    readonly port: number,
    readonly lanes = 32,
  ) {
    for (let i = 0; i < lanes; i++) this.#lane()
  }

  #lane(): void {
    if (this.#stopped) return
    const socket = connect(this.port, '127.0.0.1', () => socket.write(prefixed(randomBytes(48))))
    this.#sockets.add(socket)
    socket.on('error', () => {})
    socket.on('data', () => socket.destroy())
    socket.on('close', () => {
      this.#sockets.delete(socket)
      this.completed++
      setImmediate(() => this.#lane())
    })
  }

  stop(): void {
    this.#stopped = true
    for (const socket of this.#sockets) socket.destroy()
  }
}

export interface HostSettings {
  subnet: string
  networkKey?: string
  nodes: number
  options?: Record<string, unknown>
}

export interface HostedNode {
  id: string
  port: number
}

/** A ring in a child process (fixtures/ring-host.js), driven over JSON lines. */
export class RingHost {
  readonly child: ChildProcess
  pid = 0
  nodes: HostedNode[] = []
  readonly #ready: Promise<void>
  readonly #pending = new Map<number, { resolve: (value: any) => void; reject: (error: Error) => void }>()
  #next = 0

  constructor(settings: HostSettings) {
    this.child = spawn(process.execPath, [join(__dirname, 'fixtures', 'ring-host.js'), JSON.stringify(settings)], { stdio: ['pipe', 'pipe', 'inherit'] })
    this.child.stdin!.on('error', () => {})
    const exited = new Promise<number | null>((resolve) => this.child.on('exit', resolve))
    this.#ready = new Promise((resolve, reject) => {
      exited.then((code) => {
        reject(new Error(`ring host exited (code ${code})`))
        for (const waiter of this.#pending.values()) waiter.reject(new Error(`ring host exited (code ${code})`))
      })
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        const message = JSON.parse(line)
        if (message.failed) return reject(new Error(message.failed.message))
        if (message.ready) {
          this.pid = message.ready.pid
          this.nodes = message.ready.nodes
          return resolve()
        }
        const waiter = this.#pending.get(message.id)
        this.#pending.delete(message.id)
        if (message.ok) waiter?.resolve(message.result)
        else waiter?.reject(new Error(message.error))
      })
    })
  }

  static async start(settings: HostSettings): Promise<RingHost> {
    const host = new RingHost(settings)
    await host.#ready
    return host
  }

  call<T = unknown>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 30_000): Promise<T> {
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new Error(`ring host did not answer ${cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      })
      this.child.stdin!.write(JSON.stringify({ id, cmd, ...args }) + '\n')
    })
  }

  rssMiB(): number {
    return rssMiB(this.pid)
  }

  cpuMs(): number {
    return cpuMs(this.pid)
  }

  /** Destroy the ring and wait for the process to end (killed if it lingers). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return
    const gone = new Promise((resolve) => this.child.once('exit', resolve))
    this.child.stdin!.end()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 6000)
    await gone
    clearTimeout(timer)
  }
}
