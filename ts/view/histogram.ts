/**
 * Histogram arithmetic for the web view: differences of cumulative snapshots, sums over a time
 * window, and interpolated percentiles. The bucket layout comes from the engine
 * (`histogramLayout()`); nothing here restates it.
 */
import { native, NativeHistogram } from '../native'

/** Sparse bucket counts: `[bucket index, count]`, ascending by index. */
export type Buckets = [number, number][]

/** The engine's latency bucket bounds: `UPPER_MICROS[i]` is bucket i's exclusive upper bound. */
export const LAYOUT = native.histogramLayout()
const UPPER_MICROS = LAYOUT.latencyUpperBoundsMicros

export function toBuckets(histogram: NativeHistogram): Buckets {
  return histogram.indexes.map((index, i) => [index, histogram.counts[i]])
}

/** `later − earlier`, bucket by bucket; negative differences (a restarted node) count as zero. */
export function subtract(later: Buckets, earlier: Buckets | undefined): Buckets {
  if (!earlier || earlier.length === 0) return later
  const before = new Map(earlier)
  const out: Buckets = []
  for (const [index, count] of later) {
    const delta = count - (before.get(index) ?? 0)
    if (delta > 0) out.push([index, delta])
  }
  return out
}

/** Add `buckets` into the dense accumulator `into`. */
export function accumulate(into: Float64Array, buckets: Buckets): void {
  for (const [index, count] of buckets) into[index] += count
}

export function denseLatency(): Float64Array {
  return new Float64Array(UPPER_MICROS.length)
}

export interface Percentiles {
  /** Operations in the window. */
  count: number
  /** Milliseconds; null when the window holds no operation. */
  p50: number | null
  p90: number | null
  p99: number | null
  /** Upper bound of the slowest non-empty bucket. */
  max: number | null
}

/** Percentiles (in ms) of dense latency counts, interpolated linearly inside a bucket. */
export function percentiles(dense: Float64Array): Percentiles {
  let count = 0
  for (const n of dense) count += n
  if (count === 0) return { count: 0, p50: null, p90: null, p99: null, max: null }
  const at = (q: number): number => {
    const rank = Math.max(1, q * count)
    let seen = 0
    for (let i = 0; i < dense.length; i++) {
      const n = dense[i]
      if (n === 0) continue
      if (seen + n >= rank) {
        const lower = i === 0 ? 0 : UPPER_MICROS[i - 1]
        const upper = Number.isFinite(UPPER_MICROS[i]) ? UPPER_MICROS[i] : lower
        return (lower + ((upper - lower) * (rank - seen)) / n) / 1000
      }
      seen += n
    }
    return 0
  }
  let last = dense.length - 1
  while (last > 0 && dense[last] === 0) last--
  const top = Number.isFinite(UPPER_MICROS[last]) ? UPPER_MICROS[last] : UPPER_MICROS[last - 1]
  return { count, p50: round(at(0.5)), p90: round(at(0.9)), p99: round(at(0.99)), max: round(top / 1000) }
}

/** Cumulative counts at Prometheus-style `le` bounds (in µs) from sparse latency buckets. */
export function cumulativeAt(buckets: Buckets, boundsMicros: number[]): number[] {
  const out = new Array<number>(boundsMicros.length).fill(0)
  for (const [index, count] of buckets) {
    const upper = UPPER_MICROS[index]
    for (let b = 0; b < boundsMicros.length; b++) if (upper <= boundsMicros[b]) out[b] += count
  }
  return out
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000
}
