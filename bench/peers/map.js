'use strict'
/**
 * The floor of the read-heavy workload: a JavaScript Map in this process behind async functions
 * (`await map.get(key)`), one "node" whatever N the harness asks for. What is left of a get is
 * the harness itself (key draw, timing, checks) and one turn of the microtask queue: no copy, no
 * network, no thread hop. run.js runs it for the read-heavy workload only.
 */

function createAdapter() {
  const map = new Map()
  return {
    async start() {
      return { nodes: 1 }
    },
    set: async (i, key, value) => {
      map.set(key, value)
    },
    get: async (i, key) => map.get(key),
    async stop() {
      map.clear()
    },
  }
}

module.exports = createAdapter
if (require.main === module) require('../harness').main(createAdapter)
