'use strict'
/**
 * js2p 0.7.870: N ChordSockets (Plaintext protocol 'chord') in this process on fixed loopback
 * ports picked free just before. Every node join()s, then connects to every other (full mesh).
 * js2p's set() is fire-and-forget (it returns before any node stored the value), so its "set"
 * figures time only the local send plus one turn of the event loop; afterSets() then waits for the writes to land. Its get()
 * asks five hash-replicas and polls them every 100 ms until three agree (timeout 3 s here).
 */
const net = require('node:net')
const { sleep } = require('../harness')

// js2p logs a warning on load about snappy / protocol lengths; keep stdout for our protocol.
const log = console.log
const warn = console.warn
console.log = () => {}
console.warn = () => {}
const { ChordSocket } = require('js2p/js_src/chord.js')
const base = require('js2p/js_src/base.js')
console.log = log
console.warn = warn

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

function createAdapter(options) {
  const getTimeoutS = options.js2pGetTimeoutS || 3
  const nodes = []
  return {
    async start(n) {
      const protocol = new base.Protocol('chord', 'Plaintext')
      for (let i = 0; i < n; i++) {
        const port = await freePort()
        nodes.push(new ChordSocket('127.0.0.1', port, protocol))
      }
      // join() first (so handshakes announce storing members), then connect every pair directly:
      // a full mesh is js2p's most favourable case (each lookup goes straight to the owner).
      for (const node of nodes) node.join()
      await sleep(100)
      for (let i = 1; i < n; i++) {
        for (let j = 0; j < i; j++) nodes[i].connect('127.0.0.1', nodes[j].addr[1])
        await sleep(20)
      }
      // Wait until every node's routing table holds the other N-1 (or 15 s).
      const deadline = Date.now() + 15000
      while (Date.now() < deadline && !nodes.every((node) => node.routing_table.size >= n - 1)) await sleep(100)
      await sleep(500)
      return { routingTableSizes: nodes.map((node) => node.routing_table.size) }
    },
    async set(i, key, value) {
      nodes[i].set(key, value)
      // set() is synchronous; without a turn of the event loop, a tight loop of sets starves
      // js2p's own I/O (its sends pile up and each set gets slower until the phase hangs).
      await new Promise((resolve) => setImmediate(resolve))
    },
    async afterSets() {
      await sleep(1000)
    },
    async get(i, key) {
      const v = await nodes[i].get(key, undefined, getTimeoutS)
      return v === undefined || v === null ? v : Buffer.isBuffer(v) ? v.toString() : String(v)
    },
    async stop() {
      for (const node of nodes) {
        try {
          for (const handler of node.awaiting_ids) handler.close()
          node.close()
        } catch {}
      }
    },
  }
}

module.exports = createAdapter
if (require.main === module) require('../harness').main(createAdapter)
