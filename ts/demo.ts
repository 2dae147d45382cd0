/**
 * The demo behind `npm start`: an in-memory ring of 8 nodes on 127.0.0.1 writes 1,000 keys
 * from random nodes, reads them from every node, crashes one node without hand-off, shows that
 * nothing was lost, and prints a ring table with timings.
 */
import { ChordSocket } from './chord'
import { createTestnet, waitForRing } from './testnet'

export interface DemoOptions {
  nodes: number
  keys: number
  log: (line: string) => void
}

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6
const rate = (count: number, millis: number) => Math.round((count / millis) * 1000).toLocaleString('en-US')

export async function runDemo({ nodes: size, keys: count, log }: DemoOptions): Promise<void> {
  log(`chordnet demo: ${size} nodes on 127.0.0.1, in memory, ${count.toLocaleString('en-US')} keys, 3 replicas\n`)
  let started = process.hrtime.bigint()
  const net = await createTestnet(size, { events: false })
  const nodes = net.nodes
  log(`  ring of ${size} formed and settled in ${ms(started).toFixed(0)} ms`)
  try {
    const keys = Array.from({ length: count }, (_, i) => `key-${i}`)
    const pick = () => nodes[Math.floor(Math.random() * nodes.length)]
    started = process.hrtime.bigint()
    await Promise.all(keys.map((k) => pick().set(k, `value of ${k}`)))
    let took = ms(started)
    log(`  set ${count} keys from random nodes: ${took.toFixed(0)} ms (${rate(count, took)} sets/s, each on 3 replicas)`)

    started = process.hrtime.bigint()
    const wrong = await readEverywhere(nodes, keys)
    took = ms(started)
    log(`  read all ${count} keys from each node: ${(count * size).toLocaleString('en-US')} gets in ${took.toFixed(0)} ms (${rate(count * size, took)} gets/s), ${wrong === 0 ? 'all correct' : `${wrong} WRONG`}`)

    const hops = await measureHops(nodes, 50)
    printTable(nodes, hops, log)

    const victim = nodes[Math.floor(size / 2)]
    log(`\n  crashing node ${victim.id.slice(0, 8)} (no hand-off, no goodbye) ...`)
    started = process.hrtime.bigint()
    await victim.destroy()
    const survivors = nodes.filter((n) => n !== victim)
    await waitForRing(survivors)
    log(`  ring repaired in ${ms(started).toFixed(0)} ms`)
    const lost = await readEverywhere(survivors, keys)
    log(`  every survivor reads all ${count} keys: ${lost === 0 ? 'nothing lost' : `${lost} reads WRONG`}`)
    printTable(survivors, await measureHops(survivors, 50), log)
  } finally {
    await net.destroy()
  }
}

async function readEverywhere(nodes: ChordSocket[], keys: string[]): Promise<number> {
  let wrong = 0
  for (const node of nodes) {
    const values = await Promise.all(keys.map((k) => node.get(k)))
    wrong += values.filter((v, i) => v?.toString() !== `value of ${keys[i]}`).length
  }
  return wrong
}

async function measureHops(nodes: ChordSocket[], lookupsPerNode: number): Promise<Map<ChordSocket, number>> {
  const hops = new Map<ChordSocket, number>()
  for (const node of nodes) {
    let total = 0
    for (let i = 0; i < lookupsPerNode; i++) total += (await node.lookup(`probe-${i}-${Math.random()}`)).hops
    hops.set(node, total / lookupsPerNode)
  }
  return hops
}

function printTable(nodes: ChordSocket[], hops: Map<ChordSocket, number>, log: (line: string) => void): void {
  const sorted = [...nodes].sort((a, b) => a.id.localeCompare(b.id))
  log('\n  node      port   owns  holds  fingers  mean hops')
  for (const node of sorted) {
    const s = node.stats()
    const cells = [
      node.id.slice(0, 8),
      String(node.addr[1]).padStart(6),
      String(s.primaryKeys).padStart(5),
      String(s.keys).padStart(6),
      String(s.fingers).padStart(8),
      (hops.get(node) ?? 0).toFixed(2).padStart(10),
    ]
    log(`  ${cells.join(' ')}`)
  }
  const owned = sorted.reduce((sum, n) => sum + n.stats().primaryKeys, 0)
  const mean = [...hops.values()].reduce((a, b) => a + b, 0) / Math.max(1, hops.size)
  log(`  total owned: ${owned}; mean lookup hops ${mean.toFixed(2)} (½·log2 ${nodes.length} = ${(0.5 * Math.log2(nodes.length)).toFixed(2)})`)
}
