'use strict'
/**
 * hyperdht: a local testnet of N DHT nodes (hyperdht/testnet) on 127.0.0.1 in this process.
 * variant 'mutable' (default): set = mutablePut under a key pair derived from the key (seed =
 * BLAKE2b(key)), get = mutableGet(publicKey) — a key -> value dict like chordnet's.
 * variant 'immutable': set = immutablePut(value), get = immutableGet(hash) (content-addressed;
 * the hash of each value is remembered by the benchmark). Default query options (get waits for
 * the query to finish, `latest: true`).
 * A key written again (the read-heavy workload) is put with the next seq: under the seq it
 * already holds, a node refuses another value (SEQ_REUSED) yet mutablePut still resolves, so
 * every later get would read the first value.
 */
const DHT = require('hyperdht')
const createTestnet = require('hyperdht/testnet')
const sodium = require('sodium-universal')
const b4a = require('b4a')

function createAdapter(options) {
  const variant = options.variant || 'mutable'
  let testnet
  let nodes
  const keyPairs = new Map()
  const hashes = new Map()
  const seqs = new Map() // key -> the seq of its last mutablePut (0 for the first, as before)

  function keyPairFor(key) {
    let kp = keyPairs.get(key)
    if (!kp) {
      const seed = b4a.allocUnsafe(32)
      sodium.crypto_generichash(seed, b4a.from(key))
      kp = DHT.keyPair(seed)
      keyPairs.set(key, kp)
    }
    return kp
  }

  return {
    async start(n) {
      testnet = await createTestnet(n, { host: '127.0.0.1' })
      nodes = testnet.nodes
      return { variant }
    },
    async set(i, key, value) {
      if (variant === 'immutable') {
        const { hash } = await nodes[i].immutablePut(b4a.from(value))
        hashes.set(key, hash)
      } else {
        const seq = seqs.has(key) ? seqs.get(key) + 1 : 0
        seqs.set(key, seq)
        await nodes[i].mutablePut(keyPairFor(key), b4a.from(value), { seq })
      }
    },
    async get(i, key) {
      if (variant === 'immutable') {
        const hash = hashes.get(key)
        if (!hash) return undefined
        const r = await nodes[i].immutableGet(hash)
        return r ? b4a.toString(r.value) : undefined
      }
      const r = await nodes[i].mutableGet(keyPairFor(key).publicKey)
      return r ? b4a.toString(r.value) : undefined
    },
    stop: () => testnet.destroy(),
  }
}

module.exports = createAdapter
if (require.main === module) require('../harness').main(createAdapter)
