'use strict'
/**
 * Ring arithmetic for the harnesses, computed independently of the nodes: a key's position
 * (the first 16 bytes of BLAKE3 of its bytes, as crates/chord/src/id.rs and docs/PROTOCOL.md
 * define it), its owner and replicas among a set of member ids (owner = the first member at or
 * after the position, clockwise; replicas = the owner and its next r − 1 successors), and how
 * many keys a crash of k of n members should take with it.
 */
const { blake3 } = require('@noble/hashes/blake3.js')

/** 32 lowercase hex digits, like node ids: ids and positions compare as strings. */
function keyPosition(key) {
  return Buffer.from(blake3(Buffer.from(key, 'utf8'))).subarray(0, 16).toString('hex')
}

/** Index in `sortedIds` of the owner of `position`: the first id ≥ position, wrapping to 0. */
function ownerIndex(sortedIds, position) {
  let lo = 0
  let hi = sortedIds.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sortedIds[mid] < position) lo = mid + 1
    else hi = mid
  }
  return lo === sortedIds.length ? 0 : lo
}

/** The ids holding `key` in a correct ring of `sortedIds` with `replicas` copies. */
function replicaSet(sortedIds, key, replicas) {
  const at = ownerIndex(sortedIds, keyPosition(key))
  const copies = Math.min(replicas, sortedIds.length)
  return Array.from({ length: copies }, (_, j) => sortedIds[(at + j) % sortedIds.length])
}

/** C(k, r) / C(n, r), computed as a product without overflow: Π (k − j) / (n − j), j < r. */
function allAmong(k, n, r) {
  if (r > n) return 0
  let p = 1
  for (let j = 0; j < r; j++) p *= Math.max(0, k - j) / (n - j)
  return p
}

/**
 * What crashing k of n members at random should cost, with r copies on consecutive members.
 * A key is lost when all r members of its replica set crash: for one fixed set of r distinct
 * members and a uniformly random k-subset that is hypergeometric, C(k, r) / C(n, r) (≈ (k/n)^r).
 * By linearity the expected number of lost keys is keys × that, but losses come in whole arcs:
 * a run of r consecutive crashed members loses the arc owned by the run's first member (≈ keys/n
 * keys), and the n windows of r consecutive members give n × C(k, r) / C(n, r) such runs on
 * average — so the count is usually 0 or a multiple of ~keys/n, rarely its mean.
 */
function lossExpectation({ keys, n, k, r }) {
  const perKey = allAmong(k, n, r)
  const windows = n * perKey
  // P(no window of r consecutive members all crashed) ≈ exp(−expected windows) when they are rare (Poisson).
  return { perKey, keys: keys * perKey, windows, atLeastOneKey: 1 - Math.exp(-windows), approxPerKey: (k / n) ** r }
}

/** The runs of the realised ring: windows of r consecutive members (by id) that all crashed. */
function deadWindows(sortedIds, crashed, r) {
  const n = sortedIds.length
  let windows = 0
  for (let i = 0; i < n && n >= r; i++) {
    let all = true
    for (let j = 0; j < r && all; j++) all = crashed.has(sortedIds[(i + j) % n])
    if (all) windows++
  }
  return windows
}

module.exports = { keyPosition, ownerIndex, replicaSet, lossExpectation, deadWindows }
