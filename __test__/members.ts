/** Ring members in child processes (fixtures/ring-node.js), for crash and restart tests. */
import { ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { sleep } from './helpers'

export interface MemberOptions {
  /** A member to join through (its port on 127.0.0.1). */
  bootstrap?: number
  /** Listen on this port (default 0: any free port). */
  port?: number
  dataDir?: string
}

/** A ring member running in a child process. */
export class Member {
  readonly child: ChildProcess
  id = ''
  port = 0
  #lines: string[] = []
  #waiters: ((line: string) => void)[] = []
  readonly exited: Promise<number | null>

  constructor(subnet: string, options: MemberOptions = {}) {
    const args = [join(__dirname, 'fixtures', 'ring-node.js'), subnet]
    if (options.bootstrap) args.push(`127.0.0.1:${options.bootstrap}`)
    if (options.port) args.push('--port', String(options.port))
    if (options.dataDir) args.push('--data-dir', options.dataDir)
    this.child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] })
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)))
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const waiter = this.#waiters.shift()
      if (waiter) waiter(line)
      else this.#lines.push(line)
    })
  }

  line(timeoutMs = 10_000): Promise<string> {
    const queued = this.#lines.shift()
    if (queued !== undefined) return Promise.resolve(queued)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('member did not answer')), timeoutMs)
      this.#waiters.push((l) => {
        clearTimeout(timer)
        resolve(l)
      })
    })
  }

  async started(): Promise<this> {
    const info = JSON.parse(await this.line())
    if (info.error) throw Object.assign(new Error(info.error), { code: info.code })
    this.id = info.id
    this.port = info.port
    return this
  }

  async stats(): Promise<{ id: string; successor?: string; predecessor?: string; keys: number }> {
    this.child.stdin!.write('stats\n')
    return JSON.parse(await this.line()).stats
  }

  /** Read every key of `file` (JSON { key: value }) through this member; the keys not read back right. */
  async verify(file: string, timeoutMs = 60_000): Promise<string[]> {
    this.child.stdin!.write(`verify ${file}\n`)
    return JSON.parse(await this.line(timeoutMs)).wrong
  }
}

export async function startRing(n: number, subnet: string, options: (i: number) => MemberOptions = () => ({})): Promise<Member[]> {
  const members: Member[] = [await new Member(subnet, options(0)).started()]
  for (let i = 1; i < n; i++) {
    const via = members[Math.floor(Math.random() * members.length)].port
    members.push(await new Member(subnet, { bootstrap: via, ...options(i) }).started())
  }
  return members
}

/** Every member's successor and predecessor are its neighbours by id. */
export async function settled(members: Member[], timeoutMs = 20_000): Promise<void> {
  const ids = members.map((m) => m.id).sort()
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const all = await Promise.all(members.map((m) => m.stats()))
    const ok = all.every((s) => {
      const at = ids.indexOf(s.id)
      return s.successor === ids[(at + 1) % ids.length] && s.predecessor === ids[(at + ids.length - 1) % ids.length]
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error('ring did not settle')
    await sleep(50)
  }
}
