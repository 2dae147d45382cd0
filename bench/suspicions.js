#!/usr/bin/env node
// False suspicions under load: a healthy ring (no node fails) kept busy with 256 gets and sets
// in flight for a while; every suspicion counted is a false one. Prints them per node-hour
// with the operations/s the ring sustained meanwhile.
// Usage: node bench/suspicions.js [--nodes 16] [--seconds 90] [--inflight 256]
const { createTestnet } = require('..')

const { numberOption: option } = require('./stats')
const NODES = option('--nodes', 16)
const SECONDS = option('--seconds', 90)
const INFLIGHT = option('--inflight', 256)

async function main() {
  const net = await createTestnet(NODES, { stabilizeMs: 250, events: false })
  try {
    const { nodes } = net
    const value = Buffer.alloc(100, 1)
    const started = Date.now()
    const until = started + SECONDS * 1000
    let ops = 0
    await Promise.all(
      Array.from({ length: INFLIGHT }, async (_, lane) => {
        for (let i = 0; Date.now() < until; i++) {
          const node = nodes[(lane + i) % nodes.length]
          const key = `load-${lane}-${i % 500}`
          if (i % 2 === 0) await node.set(key, value)
          else await node.get(key)
          ops++
        }
      }),
    )
    const seconds = (Date.now() - started) / 1000
    const suspicions = nodes.reduce((sum, n) => sum + n.stats().suspicions, 0)
    const nodeHours = (NODES * seconds) / 3600
    console.log(`${NODES} nodes, ${INFLIGHT} in flight (half gets, half sets), ${seconds.toFixed(0)} s: ${Math.round(ops / seconds).toLocaleString('en-US')} operations/s`)
    console.log(`false suspicions: ${suspicions} in ${(nodeHours * 60).toFixed(1)} node-minutes = ${(suspicions / nodeHours).toFixed(2)} per node-hour (failureTimeoutMs 2,000)`)
  } finally {
    await net.destroy()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
