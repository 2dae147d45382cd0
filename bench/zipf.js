'use strict'
/**
 * A seeded Zipf sampler for the benchmark's read-heavy workload: rank r (0-based) of n is drawn
 * with probability (r + 1)^-s / H(n, s). The CDF is computed once (a Float64Array of n entries)
 * and each draw is one uniform number and a binary search in it, so a draw costs O(log n) and
 * the same seed always gives the same sequence.
 *
 *   node bench/zipf.js [--keys 10000] [--exponent 0.99] [--samples 200000]
 *
 * runs selfCheck() and prints what it found (exit status 1 if a check failed).
 */

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The CDF of Zipf(n, s) over ranks 0..n-1: cdf[r] = P(rank <= r); cdf[n - 1] is exactly 1. */
function zipfCdf(n, s) {
  if (!(Number.isInteger(n) && n > 0)) throw new Error(`zipf: n must be a positive integer (got ${n})`)
  if (!(Number.isFinite(s) && s >= 0)) throw new Error(`zipf: the exponent must be a finite number >= 0 (got ${s})`)
  const cdf = new Float64Array(n)
  let sum = 0
  for (let r = 0; r < n; r++) cdf[r] = sum += (r + 1) ** -s
  for (let r = 0; r < n; r++) cdf[r] /= sum
  cdf[n - 1] = 1
  return cdf
}

/** The smallest rank whose CDF exceeds u (u in [0, 1)). */
function search(cdf, u) {
  let lo = 0
  let hi = cdf.length - 1
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (cdf[mid] > u) hi = mid
    else lo = mid + 1
  }
  return lo
}

/**
 * A sampler of Zipf(n, s) ranks, deterministic from `seed`: `next()` returns a rank in 0..n-1,
 * rank 0 being the most frequent. `p(r)` is the exact probability of rank r.
 */
function zipfSampler(n, s, seed = 1) {
  const cdf = zipfCdf(n, s)
  const random = rng(seed)
  return {
    n,
    exponent: s,
    cdf,
    p: (r) => (r === 0 ? cdf[0] : cdf[r] - cdf[r - 1]),
    next: () => search(cdf, random()),
  }
}

/**
 * Checks the sampler: the CDF rises to exactly 1; one seed always gives the same draws and
 * another seed other draws; every draw is a rank in range; and over `samples` draws the share of
 * the 10 most frequent ranks, of ranks from n/10 on, and the ratio of rank 0 to rank 1, are
 * where Zipf(n, s) puts them (within 5 standard deviations). Returns { ok, problems, ... }.
 */
function selfCheck({ n = 10000, s = 0.99, samples = 200000, seed = 42 } = {}) {
  const t0 = process.hrtime.bigint()
  const problems = []
  const a = zipfSampler(n, s, seed)
  for (let r = 1; r < n; r++) {
    if (!(a.cdf[r] >= a.cdf[r - 1])) {
      problems.push(`the CDF falls at rank ${r}`)
      break
    }
  }
  if (a.cdf[n - 1] !== 1) problems.push(`the CDF ends at ${a.cdf[n - 1]}, not 1`)
  const b = zipfSampler(n, s, seed)
  const again = zipfSampler(n, s, seed)
  const other = zipfSampler(n, s, seed + 1)
  let same = true
  let differs = false
  for (let i = 0; i < 1000; i++) {
    const x = b.next()
    if (x !== again.next()) same = false
    if (x !== other.next()) differs = true
  }
  if (!same) problems.push('the same seed gave different draws')
  if (n > 1 && s < 20 && !differs) problems.push('two seeds gave the same 1,000 draws')

  const counts = new Float64Array(n)
  let outOfRange = 0
  for (let i = 0; i < samples; i++) {
    const r = a.next()
    if (!(Number.isInteger(r) && r >= 0 && r < n)) outOfRange++
    else counts[r]++
  }
  if (outOfRange) problems.push(`${outOfRange} draws out of 0..${n - 1}`)
  const within = (name, observed, p) => {
    const expected = p * samples
    const sd = Math.sqrt(samples * p * (1 - p)) || 1
    const z = (observed - expected) / sd
    if (Math.abs(z) > 5) problems.push(`${name}: ${observed} draws, expected ${expected.toFixed(0)} (z = ${z.toFixed(1)})`)
    return { observed, expected: Math.round(expected), z: Number(z.toFixed(2)) }
  }
  const top = Math.min(10, n)
  const tailFrom = Math.floor(n / 10)
  let topCount = 0
  for (let r = 0; r < top; r++) topCount += counts[r]
  let tailCount = 0
  for (let r = tailFrom; r < n; r++) tailCount += counts[r]
  const checks = {
    rank0: within('rank 0', counts[0], a.p(0)),
    top10: within(`ranks 0..${top - 1}`, topCount, a.cdf[top - 1]),
    tail: within(`ranks ${tailFrom}..${n - 1}`, tailCount, tailFrom === 0 ? 1 : 1 - a.cdf[tailFrom - 1]),
  }
  // P(rank 0) / P(rank 1) = 2^s.
  const ratio = n > 1 && counts[1] > 0 ? counts[0] / counts[1] : null
  if (n > 1 && s > 0 && samples >= 10000 && ratio !== null && Math.abs(Math.log2(ratio) - s) > 0.15) problems.push(`rank 0 / rank 1 drawn ${ratio.toFixed(3)}×, expected 2^${s} = ${(2 ** s).toFixed(3)}×`)
  return {
    ok: problems.length === 0,
    problems,
    n,
    exponent: s,
    samples,
    pRank0: a.p(0),
    pTop10: a.cdf[top - 1],
    ratio01: ratio,
    checks,
    ms: Number(process.hrtime.bigint() - t0) / 1e6,
  }
}

module.exports = { rng, zipfCdf, zipfSampler, selfCheck }

if (require.main === module) {
  const { numberOption } = require('./stats')
  const r = selfCheck({ n: numberOption('--keys', 10000), s: numberOption('--exponent', 0.99), samples: numberOption('--samples', 200000) })
  process.stdout.write(
    `Zipf(${r.n}, ${r.exponent}): P(rank 0) = ${(r.pRank0 * 100).toFixed(2)} %, P(top 10) = ${(r.pTop10 * 100).toFixed(1)} %; ` +
      `${r.samples.toLocaleString('en-US')} draws in ${r.ms.toFixed(0)} ms: rank 0 ${r.checks.rank0.observed} (expected ${r.checks.rank0.expected}), ` +
      `top 10 ${r.checks.top10.observed} (expected ${r.checks.top10.expected}), tail ${r.checks.tail.observed} (expected ${r.checks.tail.expected}), ` +
      `rank 0 / rank 1 ${r.ratio01?.toFixed(3)}× (expected ${(2 ** r.exponent).toFixed(3)}×)\n` +
      (r.ok ? 'ok\n' : `FAILED: ${r.problems.join('; ')}\n`),
  )
  process.exitCode = r.ok ? 0 : 1
}
