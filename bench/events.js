#!/usr/bin/env node
'use strict'
/**
 * `npm run bench:events`: what ring events cost writes. 16 nodes in one process (Noise,
 * in memory, 127.0.0.1), sets at 256 in flight, in three settings run alternately in the same
 * process so they share the machine's mood:
 *
 *   events: false         no node can listen (the floor)
 *   default, no listener  events on, nobody listening: subscriptions mean no event traffic
 *   default, 1 listener   one node (not the writer) listens for every key
 *
 *   node bench/events.js [--nodes 16] [--ops 20000] [--rounds 3] [--build DIR]
 *
 * Prints sets/s per setting (median of the rounds, with min–max) and the event messages sent.
 */
const path = require('node:path')

function arg(name, fallback) {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? process.argv[at + 1] : fallback
}

const NODES = Number(arg('nodes', 16))
const OPS = Number(arg('ops', 20000))
const ROUNDS = Number(arg('rounds', 3))
const BUILD = path.resolve(arg('build', path.join(__dirname, '..')))
const IN_FLIGHT = 256
const { ChordSocket, Protocol } = require(BUILD)
const { waitForRing } = require(path.join(BUILD, 'lib', 'testnet'))

async function ring(options) {
  const protocol = new Protocol(`bench-events-${process.pid}-${Math.random().toString(36).slice(2)}`)
  const nodes = []
  for (let i = 0; i < NODES; i++) {
    const node = new ChordSocket('127.0.0.1', 0, { protocol, ...options })
    node.on('error', () => {})
    await node.ready
    if (i > 0) await node.connect(...nodes[0].addr)
    nodes.push(node)
  }
  await waitForRing(nodes, 60_000)
  return nodes
}

async function setsPerSecond(nodes, round) {
  let next = 0
  const started = process.hrtime.bigint()
  const worker = async () => {
    while (next < OPS) {
      const i = next++
      await nodes[i % nodes.length].set(`r${round}-k${i}`, 'v')
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  return OPS / seconds
}

const SETTINGS = [
  { name: 'events: false', options: { events: false }, listeners: 0 },
  { name: 'default, no listener', options: {}, listeners: 0 },
  { name: 'default, 1 listener', options: {}, listeners: 1 },
]

async function measure(setting, round) {
  const nodes = await ring(setting.options)
  let heard = 0
  if (setting.listeners > 0) {
    nodes[NODES - 1].on('add', () => heard++)
    const others = nodes.slice(0, NODES - 1)
    const deadline = Date.now() + 10_000
    // (A build from before subscriptions has no `subscribers`: its events flood anyway.)
    while (!others.every((n) => n.stats().subscribers === undefined || n.stats().subscribers >= 1)) {
      if (Date.now() > deadline) throw new Error('the subscription did not reach every member')
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const rate = await setsPerSecond(nodes, round)
  const eventsSent = nodes.reduce((sum, n) => sum + n.stats().eventsForwarded, 0)
  await Promise.all(nodes.map((n) => n.close()))
  return { rate, eventsSent, heard }
}

;(async () => {
  const results = new Map(SETTINGS.map((s) => [s.name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (const setting of SETTINGS) {
      const result = await measure(setting, round)
      results.get(setting.name).push(result)
      console.error(`round ${round + 1}: ${setting.name}: ${Math.round(result.rate)} sets/s, ${result.eventsSent} events sent, ${result.heard} heard`)
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const floor = median(results.get('events: false').map((r) => r.rate))
  console.log(`\n${NODES} nodes, ${OPS} sets per round at ${IN_FLIGHT} in flight, ${ROUNDS} rounds alternating (${BUILD})\n`)
  console.log('| setting | sets/s (median) | min–max | vs events: false | event messages per set |')
  console.log('|---|---:|---:|---:|---:|')
  for (const [name, runs] of results) {
    const rates = runs.map((r) => r.rate)
    const m = median(rates)
    const perSet = runs.reduce((sum, r) => sum + r.eventsSent, 0) / (runs.length * OPS)
    console.log(`| ${name} | ${Math.round(m)} | ${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))} | ${((m / floor - 1) * 100).toFixed(1)} % | ${perSet.toFixed(2)} |`)
  }
})().catch((error) => {
  console.error(error)
  process.exit(1)
})
