/**
 * The demo behind `npm start`: an in-memory ring of 8 nodes on 127.0.0.1 writes 1,000 keys
 * from random nodes, reads them from every node, crashes one node without hand-off, shows that
 * nothing was lost, and prints a ring table with timings. Node 0 serves the web view while it
 * runs; `keepOpen` keeps the ring and the view up afterwards, with light traffic, until Ctrl-C.
 */
import { ChordSocket } from './chord'
import { createTestnet, waitForRing } from './testnet'

export interface DemoOptions {
  nodes: number
  keys: number
  log: (line: string) => void
  /** Where node 0's web view listens (default 127.0.0.1, any free port). */
  view?: { host?: string; port?: number }
  /** Keep the ring and its view running after the demo until SIGINT/SIGTERM. */
  keepOpen?: boolean
}

/** Operations per second of the light traffic that keeps a kept-open view moving. */
const KEEP_OPEN_OPS_PER_SECOND = 40

const ms = (start: bigint) => Number(process.hrtime.bigint() - start) / 1e6
const rate = (count: number, millis: number) => Math.round((count / millis) * 1000).toLocaleString('en-US')

export async function runDemo({ nodes: size, keys: count, log, view: viewAt = {}, keepOpen = false }: DemoOptions): Promise<void> {
  log(`chordnet demo: ${size} nodes on 127.0.0.1, in memory, ${count.toLocaleString('en-US')} keys, 3 replicas\n`)
  let started = process.hrtime.bigint()
  const net = await createTestnet(size, { events: false })
  const nodes = net.nodes
  log(`  ring of ${size} formed and settled in ${ms(started).toFixed(0)} ms`)
  try {
    const view = await nodes[0].serveView(viewAt)
    log(`  web view of the ring: ${view.url}${keepOpen ? '' : ' (served while the demo runs; --keep-open keeps it up)'}`)
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
    if (keepOpen) await keepRunning(survivors, keys, view.url, log)
  } finally {
    await net.destroy()
  }
}

/** Light traffic on the surviving ring until SIGINT/SIGTERM, so the open page keeps moving. */
async function keepRunning(nodes: ChordSocket[], keys: string[], url: string, log: (line: string) => void): Promise<void> {
  log(`\n  keeping the ring and its web view open at ${url} with ~${KEEP_OPEN_OPS_PER_SECOND} operations/s; Ctrl-C to stop`)
  let round = 0
  const timer = setInterval(() => {
    const node = nodes[round % nodes.length]
    const key = keys[Math.floor(Math.random() * keys.length)]
    const work = round++ % 4 === 0 ? node.set(key, `value of ${key}`) : node.get(key)
    work.catch(() => {})
  }, 1000 / KEEP_OPEN_OPS_PER_SECOND)
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve())
    process.once('SIGTERM', () => resolve())
  })
  clearInterval(timer)
  log('  stopping')
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
