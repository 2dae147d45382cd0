'use strict'
/**
 * chordnet: a ring of N ChordSockets in this process (createTestnet), replicas 3, stabilizeMs 250
 * (the library default), add/delete events off: none of the peers has ring-wide change events,
 * and with events on every set also notifies all N nodes (the README gives that figure too).
 * Noise encryption (the default) unless `options.encryption` is 'Plaintext'.
 */
const path = require('node:path')
const { createTestnet, Protocol } = require(path.resolve(__dirname, '..', '..'))
const { sleep } = require('../harness')

function createAdapter(options) {
  let testnet
  let nodes
  return {
    async start(n) {
      const protocol = new Protocol(`bench-${process.pid}`, options.encryption || 'Noise')
      testnet = await createTestnet(n, { stabilizeMs: options.stabilizeMs || 250, events: false, protocol })
      nodes = testnet.nodes
      // Let fix-fingers run a few rounds after the ring settled.
      let last = -1
      for (let i = 0; i < 20; i++) {
        const fingers = nodes.reduce((sum, node) => sum + node.stats().fingers, 0)
        if (fingers === last) break
        last = fingers
        await sleep(300)
      }
      return { connections: nodes.map((node) => node.stats().connections) }
    },
    set: (i, key, value) => nodes[i].set(key, value),
    async get(i, key) {
      const v = await nodes[i].get(key)
      return v === undefined ? undefined : v.toString()
    },
    async info() {
      // Hops of a greedy finger-table lookup, from every node to sample keys.
      let hops = 0
      const samples = Math.min(400, nodes.length * 50)
      for (let j = 0; j < samples; j++) hops += (await nodes[j % nodes.length].lookup(`key-${j}`)).hops
      const stats = nodes.map((node) => node.stats())
      const mean = (f) => stats.reduce((s, x) => s + f(x), 0) / stats.length
      return {
        meanLookupHops: hops / samples,
        lookupSamples: samples,
        meanRedirects: mean((s) => s.meanRedirects),
        meanConnections: mean((s) => s.connections),
        meanFingers: mean((s) => s.fingers),
        keysPerNode: mean((s) => s.keys),
      }
    },
    stop: () => testnet.destroy(),
  }
}

module.exports = createAdapter
if (require.main === module) require('../harness').main(createAdapter)
