#!/usr/bin/env node
'use strict'
/**
 * `npm run bench:cache`: what the read cache (`cacheBytes`) buys and costs, on a 16-node ring in
 * this process with default options, beside the same ring with `cacheBytes: 0`, alternating.
 *
 * - Hot key, one at a time: one key read over and over from a node that does not own it, each
 *   get awaited before the next (a JavaScript `Map` behind an async function is the floor).
 * - Sets with 256 in flight on fresh keys nobody reads: the cost of leases to writers that do
 *   not need them (an owner checks its lease table on every write).
 * - Gets with 256 in flight over keys read once each (every get a miss): the cost of asking for
 *   a lease with every get.
 *
 *   node bench/cache.js [--runs 3] [--seconds 3] [--out bench/results/cache.md]
 */
const path = require('node:path')
const fs = require('node:fs')
const { createTestnet, Protocol } = require(path.resolve(__dirname, '..'))
const { median } = require('./stats')

function args() {
  const a = { runs: 3, seconds: 3, out: null }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    const value = () => argv[++i]
    if (argv[i] === '--runs') a.runs = Number(value())
    else if (argv[i] === '--seconds') a.seconds = Number(value())
    else if (argv[i] === '--out') a.out = value()
    else throw new Error(`unknown option ${argv[i]}`)
  }
  return a
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Operations per second of `op()` awaited one after another for `ms`. */
async function oneAtATime(op, ms) {
  const end = performance.now() + ms
  let n = 0
  while ((n & 255) !== 0 || performance.now() < end) {
    await op()
    n++
  }
  return n / (ms / 1000)
}

/** Operations per second of `op(i)` with `depth` in flight, `count` in all or until `ms` ran out. */
async function inFlight(op, depth, count, ms) {
  const start = performance.now()
  const end = start + ms
  let next = 0
  let done = 0
  const worker = async () => {
    while (next < count && performance.now() < end) {
      await op(next++)
      done++
    }
  }
  await Promise.all(Array.from({ length: depth }, worker))
  return done / ((performance.now() - start) / 1000)
}

async function measure(cacheBytes, seconds, round) {
  const protocol = new Protocol(`bench-cache-${process.pid}-${round}-${cacheBytes}`)
  const testnet = await createTestnet(16, { protocol, events: false, ...(cacheBytes === undefined ? {} : { cacheBytes }) })
  const nodes = testnet.nodes
  try {
    await testnet.settled()
    await sleep(2500) // fingers fixed, arcs synced, the owners' lease wait over
    const key = `hot-${round}`
    await nodes[0].set(key, 'x'.repeat(100))
    const owner = (await nodes[0].lookup(key)).owner.id
    const reader = nodes.find((n) => n.id !== owner)
    await reader.get(key)
    const hot = await oneAtATime(() => reader.get(key), seconds * 1000)
    const hits = reader.stats().cacheHits
    const value = 'v'.repeat(100)
    let written = 0
    const sets = await inFlight((i) => nodes[i % 16].set(`fresh-${round}-${i}`, value).then(() => written++), 256, 1e9, seconds * 1000)
    const keys = Array.from({ length: written }, (_, i) => `fresh-${round}-${i}`)
    const gets = await inFlight((i) => nodes[(i * 7 + 3) % 16].get(keys[i % keys.length]), 256, keys.length, seconds * 1000)
    return { hot, hits, sets, gets }
  } finally {
    // Dropped at once (no hand-off): nothing of this ring is read again.
    await Promise.all(nodes.map((n) => n.destroy()))
  }
}

async function mapFloor(seconds) {
  const map = new Map([['hot', Buffer.from('x'.repeat(100))]])
  const get = async (k) => map.get(k)
  return oneAtATime(() => get('hot'), seconds * 1000)
}

const fmt = (x) => Math.round(x).toLocaleString('en-US')

async function main() {
  const a = args()
  const on = []
  const off = []
  const floor = []
  for (let round = 0; round < a.runs; round++) {
    // Alternate the order so neither setting always runs on a warmer machine.
    for (const cache of round % 2 ? ['off', 'on'] : ['on', 'off']) {
      const r = await measure(cache === 'on' ? undefined : 0, a.seconds, round)
      ;(cache === 'on' ? on : off).push(r)
      console.log(`run ${round + 1} cache ${cache}: hot ${fmt(r.hot)}/s (${fmt(r.hits)} hits), sets@256 ${fmt(r.sets)}/s, gets@256 ${fmt(r.gets)}/s`)
    }
    floor.push(await mapFloor(a.seconds))
    console.log(`run ${round + 1} Map: ${fmt(floor[floor.length - 1])}/s`)
  }
  const m = (rs, f) => median(rs.map(f))
  const range = (rs, f) => `${fmt(Math.min(...rs.map(f)))}–${fmt(Math.max(...rs.map(f)))}`
  const row = (label, f) => `| ${label} | ${fmt(m(on, f))} (${range(on, f)}) | ${fmt(m(off, f))} (${range(off, f)}) | ${(m(on, f) / m(off, f)).toFixed(2)}× |`
  const lines = [
    `## Read cache: 16 nodes in one process, default options, cache on (32 MiB) vs \`cacheBytes: 0\``,
    '',
    `${new Date().toISOString().slice(0, 10)}, ${require('node:os').cpus()[0].model}, ${require('node:os').cpus().length} cores, Node ${process.version}; ${a.runs} runs of each, alternating, ${a.seconds} s per figure; medians (range).`,
    '',
    '| | cache on | cache off | on ÷ off |',
    '|---|---:|---:|---:|',
    row('hot key, gets/s one at a time (from a node that does not own it)', (r) => r.hot),
    row('sets/s, 256 in flight, fresh keys nobody reads', (r) => r.sets),
    row('gets/s, 256 in flight, each key read once (all misses)', (r) => r.gets),
    '',
    `Floor: a JavaScript \`Map\` behind an async function, awaited one at a time: ${fmt(median(floor))} gets/s (${fmt(Math.min(...floor))}–${fmt(Math.max(...floor))}); the cached hot key is ${(median(floor) / m(on, (r) => r.hot)).toFixed(1)}× slower than it.`,
    '',
  ]
  const text = lines.join('\n')
  console.log(`\n${text}`)
  if (a.out) fs.writeFileSync(a.out, text)
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
