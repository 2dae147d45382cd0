/**
 * createTestnet(n): a ring of n ChordSockets on 127.0.0.1 with free ports, for your own tests.
 * Node 0 boots first, the rest join through it; `destroy()` closes them in reverse order.
 * With `dataDir`, node i keeps its data in `<dataDir>/node-<i>`.
 */
import { join } from 'node:path'
import { ChordOptions, ChordSocket } from './chord'
import { Protocol } from './protocol'

export interface Testnet {
  nodes: ChordSocket[]
  /** Resolves when every node's successor and predecessor are its neighbours by id (the ring is settled). */
  settled(timeoutMs?: number): Promise<void>
  destroy(): Promise<void>
}

export async function createTestnet(size: number, options: ChordOptions = {}): Promise<Testnet> {
  if (!Number.isInteger(size) || size < 1) throw new TypeError(`size must be a positive integer (got ${String(size)})`)
  const nodes: ChordSocket[] = []
  // A subnet of its own, so testnets in one process never mix even when ports are reused.
  options = { stabilizeMs: 50, protocol: new Protocol(`testnet-${process.pid}-${Math.random().toString(36).slice(2)}`), ...options }
  const base = options.dataDir
  const optionsOf = (i: number): ChordOptions => (base === undefined ? options : { ...options, dataDir: join(base, `node-${i}`) })
  const boot = new ChordSocket('127.0.0.1', 0, optionsOf(0))
  await boot.ready
  nodes.push(boot)
  for (let i = 1; i < size; i++) {
    const node = new ChordSocket('127.0.0.1', 0, optionsOf(i))
    await node.ready
    await node.connect(...nodes[Math.floor(Math.random() * nodes.length)].addr)
    nodes.push(node)
  }
  const testnet: Testnet = {
    nodes,
    settled: (timeoutMs = 20_000) => waitForRing(nodes.filter((n) => !n.closed), timeoutMs),
    destroy: async () => {
      for (const node of [...nodes].reverse()) await node.close()
    },
  }
  await testnet.settled()
  return testnet
}

/** What one member says of its neighbours (from its `stats()`, or another process's). */
export interface RingLinks {
  id: string
  successor?: string
  predecessor?: string
}

/**
 * Whether `members` form one correct ring: each one's successor and predecessor are its
 * neighbours by id (a single member is a ring of one). Following successors then visits every
 * member once, and every position of the ring has exactly one owner.
 */
export function isOneRing(members: RingLinks[]): boolean {
  const ids = members.map((m) => m.id).sort()
  if (ids.length === 1) return true
  return members.every((m) => {
    const at = ids.indexOf(m.id)
    return m.successor === ids[(at + 1) % ids.length] && m.predecessor === ids[(at + ids.length - 1) % ids.length]
  })
}

/** Wait until the members among `nodes` form one correct ring (`isOneRing`). */
export async function waitForRing(nodes: ChordSocket[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const members = nodes.map((n) => ({ id: n.id, stats: n.stats() })).filter((m) => m.stats.member)
    if (isOneRing(members.map(({ id, stats }) => ({ id, successor: stats.successors[0]?.id, predecessor: stats.predecessor?.id })))) return
    if (Date.now() > deadline) {
      // What each member thinks, in id order, ids shortened: the failure explains itself.
      const short = (id?: string) => (id ? id.slice(0, 6) : '-')
      const links = members
        .sort((a, b) => (a.id < b.id ? -1 : 1))
        .map(({ id, stats }) => `${short(id)}: successors ${stats.successors.map((s) => short(s.id)).join(',') || '-'}, predecessor ${short(stats.predecessor?.id)}`)
      throw new Error(`ring of ${members.length} did not settle within ${timeoutMs} ms; ${links.join('; ')}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}
