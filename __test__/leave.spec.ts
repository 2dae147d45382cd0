/**
 * A healthy ring through joins, graceful leaves (`close()`) and crashes (`destroy()`): no node
 * ever emits an 'error' event — a refused hand-off, a write under-replicated, a peer called bad
 * are all reported that way — and every value is read back whole from every survivor, with
 * `replicas` copies of each again once anti-entropy has run.
 */
import test, { ExecutionContext } from 'ava'
import { createHash, randomBytes } from 'node:crypto'
import { ChordSocket, Protocol } from '../index'
import { until } from './helpers'

const MIB = 1 << 20

/** A ring of in-process nodes whose every 'error' event is recorded from the moment each starts. */
class Ring {
  readonly protocol = new Protocol(`leave-${process.pid}-${Math.random().toString(36).slice(2)}`)
  readonly nodes: ChordSocket[] = []
  readonly gone = new Set<ChordSocket>()
  readonly errors: string[] = []
  readonly values = new Map<string, Buffer>()

  constructor(readonly t: ExecutionContext, readonly replicas: number) {
    t.teardown(() => Promise.all(this.live().map((n) => n.destroy())))
  }

  live(): ChordSocket[] {
    return this.nodes.filter((n) => !this.gone.has(n))
  }

  name(node: ChordSocket): string {
    return `node ${this.nodes.indexOf(node)} (${node.id.slice(0, 8)})`
  }

  /** Start a node and join it through a random live one (the first starts the ring). */
  async add(): Promise<ChordSocket> {
    const node = new ChordSocket('127.0.0.1', 0, { stabilizeMs: 50, protocol: this.protocol, replicas: this.replicas })
    node.on('error', (error) => this.errors.push(`${this.name(node)}: ${error.code} ${error.message} [${this.routing(node)}; ring ${this.order()}]`))
    await node.ready
    const via = this.live()
    this.nodes.push(node)
    if (via.length > 0) await node.connect(...via[Math.floor(Math.random() * via.length)].addr)
    return node
  }

  /** What `node` takes for its neighbours, when an error is reported (diagnostics). */
  routing(node: ChordSocket): string {
    const s = node.stats()
    return `its predecessor ${s.predecessor?.id.slice(0, 8) ?? '-'}, successors ${s.successors.map((n) => n.id.slice(0, 8)).join(' ')}`
  }

  /** The live nodes in ring order, short ids (diagnostics). */
  order(): string {
    return this.byId()
      .map((n) => n.id.slice(0, 8))
      .join(' → ')
  }

  /** Live nodes in ring order (by id). */
  byId(): ChordSocket[] {
    return this.live().sort((a, b) => a.id.localeCompare(b.id))
  }

  /** The live node after `node` in ring order (`step` −1: before it). */
  neighbour(node: ChordSocket, step = 1): ChordSocket {
    const ring = this.byId()
    return ring[(ring.indexOf(node) + step + ring.length) % ring.length]
  }

  async write(count: number, bytes: number): Promise<void> {
    const live = this.live()
    for (let i = 0; i < count; i++) {
      const key = `key-${this.values.size}`
      const value = randomBytes(bytes)
      this.values.set(key, value)
      await live[i % live.length].set(key, value)
    }
  }

  async leave(node: ChordSocket): Promise<void> {
    await node.close()
    this.gone.add(node)
  }

  async crash(node: ChordSocket): Promise<void> {
    await node.destroy()
    this.gone.add(node)
  }

  /** Copies of every key across the live nodes (each holds its arcs' keys as owner or replica). */
  copies(): number {
    return this.live().reduce((sum, n) => sum + n.stats().keys, 0)
  }

  /** Keys that `node` does not read back whole (reads go through the ring). */
  async unreadable(node: ChordSocket): Promise<string[]> {
    const wrong: string[] = []
    const keys = [...this.values.keys()]
    for (let i = 0; i < keys.length; i += 64) {
      const chunk = keys.slice(i, i + 64)
      const got = await Promise.all(chunk.map((k) => node.get(k)))
      chunk.forEach((k, j) => got[j]?.equals(this.values.get(k)!) || wrong.push(`${k} (${got[j] === undefined ? 'absent' : digest(got[j]!)})`))
    }
    return wrong
  }

  /** Nothing lost: every survivor reads every value back whole; `replicas` copies of each again; no 'error' event anywhere. */
  async check(what: string): Promise<void> {
    for (const node of this.live()) this.t.deepEqual(await this.unreadable(node), [], `${what}: every value read back whole through ${this.name(node)}`)
    const wanted = Math.min(this.replicas, this.live().length) * this.values.size
    await until(() => this.copies() >= wanted, 60_000, `${what}: ${wanted} copies (${this.copies()} now)`)
    this.t.deepEqual(this.errors, [], `${what}: no node emitted an 'error' event`)
  }
}

function digest(value: Buffer): string {
  return createHash('sha256').update(value).digest('hex').slice(0, 12)
}

test.serial("the issue's case: 3 nodes, 40 × 1 MiB, a 4th joins, then its predecessor and successor close one after the other", async (t) => {
  const ring = new Ring(t, 3)
  const first = [await ring.add(), await ring.add(), await ring.add()]
  await ring.write(40, MIB)
  const joiner = await ring.add()
  // The first three each held every key (r = 3 of 3); the joiner took an arc from its
  // successor. Its two neighbours leave at once after its join, each handing everything it
  // held (its own arc and its replicas of others) to its heir.
  const before = ring.neighbour(joiner, -1)
  const after = ring.neighbour(joiner, 1)
  t.true(first.includes(before) && first.includes(after))
  await ring.leave(before)
  await ring.leave(after)
  await ring.check('after the joiner and one of the first three remain')
})

test.serial('3 nodes, 40 × 1 MiB, a 4th joins and takes its share, then two of the first three close one after the other', async (t) => {
  const ring = new Ring(t, 3)
  const first = [await ring.add(), await ring.add(), await ring.add()]
  await ring.write(40, MIB)
  const joiner = await ring.add()
  await until(() => joiner.stats().keys > 0 && ring.copies() === 3 * 40, 60_000, 'the joiner holds its share, 3 copies of each key')
  for (const leaving of first.slice(0, 2)) await ring.leave(leaving)
  await ring.check('after two leaves')
})

test.serial('replicas 2: 2 nodes, 200 × 16 KiB, a third joins, then its predecessor closes at once', async (t) => {
  // Two nodes with r = 2 each hold every key, as the first three do with r = 3.
  const ring = new Ring(t, 2)
  for (let i = 0; i < 2; i++) await ring.add()
  await ring.write(200, 16 * 1024)
  const joiner = await ring.add()
  await ring.leave(ring.neighbour(joiner, -1))
  await ring.check('after the join and the leave')
})

test.serial('replicas 2: 5 nodes, 300 × 4 KiB, two adjacent nodes close one after the other, a node joins, another crashes', async (t) => {
  const ring = new Ring(t, 2)
  for (let i = 0; i < 5; i++) await ring.add()
  await ring.write(300, 4096)
  const leaving = ring.byId()[1]
  const next = ring.neighbour(leaving)
  await ring.leave(leaving)
  await ring.leave(next)
  await ring.check('after two adjacent leaves')
  await ring.add()
  await ring.check('after a join')
  await ring.crash(ring.byId()[0])
  await ring.check('after a crash')
})

test.serial('replicas 3: 6 nodes, 1000 small values, a node joins, its successor leaves right away, then two adjacent nodes leave at once', async (t) => {
  const ring = new Ring(t, 3)
  for (let i = 0; i < 6; i++) await ring.add()
  await ring.write(1000, 100)
  const joiner = await ring.add()
  await ring.leave(ring.neighbour(joiner))
  await ring.check('after a join and its successor leaving')
  const [a, b] = ring.byId().slice(2, 4)
  await Promise.all([ring.leave(a), ring.leave(b)])
  await ring.check('after two adjacent nodes left together')
})

test.serial('replicas 3: 5 nodes, 64 × 256 KiB, a crash and at once a graceful leave of its predecessor, then a join', async (t) => {
  const ring = new Ring(t, 3)
  for (let i = 0; i < 5; i++) await ring.add()
  await ring.write(64, 256 * 1024)
  const crashed = ring.byId()[3]
  const predecessor = ring.neighbour(crashed, -1)
  await ring.crash(crashed)
  // Its heir is the node that just crashed: the hand-off goes to the next one in its list.
  await ring.leave(predecessor)
  await ring.check('after a crash and a leave')
  await ring.add()
  await ring.check('after a join')
})
