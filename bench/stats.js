'use strict'
/** Small statistics and formatting helpers shared by the benchmark's parent and children. */

/** Nearest-rank percentile of an ascending-sorted array (p in 0..100). */
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]
}

/** Summary of latencies in microseconds: count, p50, p99, mean, max. */
function summarize(samplesUs) {
  const sorted = Float64Array.from(samplesUs).sort()
  if (sorted.length === 0) return { n: 0, p50: null, p99: null, mean: null, max: null }
  let sum = 0
  for (const x of sorted) sum += x
  return {
    n: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    mean: sum / sorted.length,
    max: sorted[sorted.length - 1],
  }
}

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = Math.floor(v.length / 2)
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2
}

/** Microseconds since an arbitrary origin (monotonic). */
function nowUs() {
  return Number(process.hrtime.bigint()) / 1000
}

/** "12.3 µs", "4.56 ms", "1.2 s" from microseconds. */
function fmtUs(us) {
  if (us === null || us === undefined || !Number.isFinite(us)) return '—'
  if (us < 1000) return `${us < 10 ? us.toFixed(1) : Math.round(us)} µs`
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`
  return `${(us / 1e6).toFixed(2)} s`
}

/** Operations per second with thousands separators ("52,340/s", "3.2/s"). */
function fmtRate(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—'
  if (r < 10) return `${r.toFixed(2)}/s`
  if (r < 100) return `${r.toFixed(1)}/s`
  return `${Math.round(r).toLocaleString('en-US')}/s`
}

function fmtBytes(b) {
  if (b === null || b === undefined || !Number.isFinite(b)) return '—'
  const neg = b < 0
  const a = Math.abs(b)
  const s = a < 1024 ? `${Math.round(a)} B` : a < 1048576 ? `${(a / 1024).toFixed(0)} KiB` : `${(a / 1048576).toFixed(1)} MiB`
  return neg ? `−${s}` : s
}

/** A ratio as "12.3×" (or "—"). */
function fmtRatio(r) {
  if (r === null || r === undefined || !Number.isFinite(r)) return '—'
  if (r >= 100) return `${Math.round(r).toLocaleString('en-US')}×`
  if (r >= 10) return `${r.toFixed(1)}×`
  return `${r.toFixed(2)}×`
}

/** A numeric command-line option of a bench script (`--name N`), or `fallback`. */
function numberOption(name, fallback, argv = process.argv.slice(2)) {
  const at = argv.indexOf(name)
  return at >= 0 ? Number(argv[at + 1]) : fallback
}

module.exports = { numberOption, percentile, summarize, median, nowUs, fmtUs, fmtRate, fmtBytes, fmtRatio }
