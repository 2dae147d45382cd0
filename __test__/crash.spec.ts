import test from 'ava'
import { ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ChordSocket, Protocol } from '../index'
import { sleep, until } from './helpers'

/** A ring member running in a child process. */
class Member {
  readonly child: ChildProcess
  id = ''
  port = 0
  #lines: string[] = []
  #waiters: ((line: string) => void)[] = []
  readonly exited: Promise<number | null>

  constructor(subnet: string, bootstrap?: number) {
    const args = [join(__dirname, 'fixtures', 'ring-node.js'), subnet]
    if (bootstrap) args.push(`127.0.0.1:${bootstrap}`)
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
    this.id = info.id
    this.port = info.port
    return this
  }

  async stats(): Promise<{ id: string; successor?: string; predecessor?: string; keys: number }> {
    this.child.stdin!.write('stats\n')
    return JSON.parse(await this.line()).stats
  }
}

async function startRing(n: number, subnet: string): Promise<Member[]> {
  const members: Member[] = [await new Member(subnet).started()]
  for (let i = 1; i < n; i++) {
    const via = members[Math.floor(Math.random() * members.length)].port
    members.push(await new Member(subnet, via).started())
  }
  return members
}

async function settled(members: Member[], timeoutMs = 20_000): Promise<void> {
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

async function readAll(client: ChordSocket, keys: string[]): Promise<string[]> {
  const values = await Promise.all(keys.map((k) => client.get(k)))
  return keys.filter((k, i) => values[i]?.toString() !== `v-${k}`)
}

test('9 nodes in separate processes: SIGKILL 2 at once, then half leave gracefully; nothing acknowledged is lost', async (t) => {
  const subnet = `crash-${process.pid}-${Date.now()}`
  const members = await startRing(9, subnet)
  t.teardown(() => members.forEach((m) => m.child.kill('SIGKILL')))
  await settled(members)
  const client = new ChordSocket('127.0.0.1', 0, { protocol: new Protocol(subnet), join: false, stabilizeMs: 50 })
  await client.ready
  t.teardown(() => client.close())
  for (const m of members) await client.connect('127.0.0.1', m.port)
  const keys = Array.from({ length: 500 }, (_, i) => `key-${i}`)
  await Promise.all(keys.map((k) => client.set(k, `v-${k}`)))

  // Two ring neighbours crash at once (the hardest pair for r = 3): no hand-off, no goodbye.
  const byId = [...members].sort((a, b) => a.id.localeCompare(b.id))
  const [dead1, dead2] = [byId[4], byId[5]]
  dead1.child.kill('SIGKILL')
  dead2.child.kill('SIGKILL')
  await Promise.all([dead1.exited, dead2.exited])
  let alive = members.filter((m) => m !== dead1 && m !== dead2)
  await settled(alive)
  t.deepEqual(await readAll(client, keys), [], 'every key readable after two crashes')

  // Wait for re-replication (r copies of every key again), then half of the rest leave one by one.
  const copies = async () => (await Promise.all(alive.map((m) => m.stats()))).reduce((sum, s) => sum + s.keys, 0)
  await until(async () => (await copies()) >= 3 * keys.length, 15_000, 'three copies of every key after the crashes')
  for (const leaving of alive.slice(0, 3)) {
    leaving.child.kill('SIGTERM')
    t.is(await leaving.exited, 0)
    alive = alive.filter((m) => m !== leaving)
    await settled(alive)
  }
  t.deepEqual(await readAll(client, keys), [], 'every key readable after graceful departures')
  // Anti-entropy restores r = 3 copies of every key on the survivors.
  await until(async () => (await copies()) >= 3 * keys.length, 15_000, `three copies of every key on ${alive.length} nodes`)
  t.true((await copies()) >= 3 * keys.length)
})
