/**
 * `/metrics`: this node's figures in Prometheus' text format, written by prom-client from a
 * snapshot taken at each scrape (nothing is kept between scrapes). Counters and latency
 * histograms are cumulative in the engine, so they are handed to prom-client as totals; the
 * engine's fine latency buckets are summed into power-of-two `le` buckets, which are exact
 * bucket edges there.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import type { Metric, MetricObjectWithValues, MetricValueWithName } from 'prom-client'
import { NativeHistogram, NativeMemberInfo, NativeNode } from '../native'
import { cumulativeAt, LAYOUT, toBuckets } from './histogram'
import { OPS } from './collector'

/** `le` bounds of `chordnet_operation_duration_seconds`: 16 µs to ~16.8 s, doubling. */
const LATENCY_LE_MICROS = Array.from({ length: 21 }, (_, i) => 2 ** (i + 4))
/** `le` bounds of `chordnet_lookup_hops`. */
const HOP_LE = [0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 24, 32]

/** A histogram whose buckets are computed elsewhere; prom-client still writes the text. */
class SnapshotHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly values: () => { labels: Record<string, string>; le: (number | '+Inf')[]; cumulative: number[]; sum: number; count: number }[],
  ) {}

  get(): MetricObjectWithValues<MetricValueWithName<string>> {
    const out: MetricValueWithName<string>[] = []
    for (const series of this.values()) {
      series.le.forEach((le, i) => out.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le }, value: series.cumulative[i] }))
      out.push({ metricName: `${this.name}_bucket`, labels: { ...series.labels, le: '+Inf' }, value: series.count })
      out.push({ metricName: `${this.name}_sum`, labels: series.labels, value: series.sum })
      out.push({ metricName: `${this.name}_count`, labels: series.labels, value: series.count })
    }
    return { name: this.name, help: this.help, type: this.type as never, aggregator: this.aggregator, values: out, collect: () => {} }
  }
}

export interface Exporter {
  readonly contentType: string
  /** One scrape: a fresh `info()` of the node, written by prom-client. */
  scrape(): Promise<string>
}

/** The metrics of `node`, every one read from the same `info()` snapshot per scrape. */
export function createExporter(node: NativeNode): Exporter {
  const registry = new Registry()
  let current: NativeMemberInfo | undefined
  const info = () => current!
  const registers = [registry]

  new Gauge({
    name: 'chordnet_node_info',
    help: 'Always 1; labels identify the node (id, address) and whether it is a ring member.',
    labelNames: ['id', 'address', 'member'] as const,
    registers,
    collect() {
      this.reset()
      const i = info()
      this.set({ id: i.node.id, address: `${i.node.host}:${i.node.port}`, member: String(i.member) }, 1)
    },
  })
  const counter = (name: string, help: string, labelNames: string[], read: () => [Record<string, string>, number][]) =>
    new Counter({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset()
        for (const [labels, value] of read()) this.inc(labels, value)
      },
    })
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read())
      },
    })

  counter('chordnet_operations_total', 'Dict operations started at this node, by kind (failed ones included).', ['op'], () =>
    OPS.map((op) => [{ op }, info().metrics[op].latency.count]),
  )
  counter('chordnet_operation_errors_total', 'Dict operations started at this node that failed, by kind and error code.', ['op', 'code'], () =>
    OPS.flatMap((op) => info().metrics[op].errorCodes.map((code, i): [Record<string, string>, number] => [{ op, code }, info().metrics[op].errorCounts[i]])),
  )
  registry.registerMetric(
    new SnapshotHistogram('chordnet_operation_duration_seconds', 'Latency of dict operations started at this node, from call to answer, by kind.', () =>
      OPS.map((op) => latencySeries({ op }, info().metrics[op].latency)),
    ) as unknown as Metric,
  )
  registry.registerMetric(
    new SnapshotHistogram('chordnet_lookup_hops', 'Remote nodes asked by greedy finger-table lookups (lookup() and finger fixing).', () => {
      const h = info().metrics.lookupHops
      const cumulative = HOP_LE.map((le) => h.indexes.reduce((sum, index, i) => (index <= le && index < LAYOUT.hopBuckets - 1 ? sum + h.counts[i] : sum), 0))
      return [{ labels: {}, le: HOP_LE, cumulative, sum: h.sum, count: h.count }]
    }) as unknown as Metric,
  )
  gauge('chordnet_keys_held', 'Live keys held here, as owner or replica.', () => info().keys)
  gauge('chordnet_keys_owned', 'Live keys of this node\'s own arc.', () => info().primaryKeys)
  gauge('chordnet_bytes_held', 'Bytes of keys and values held here (tombstones count their key).', () => info().bytes)
  gauge('chordnet_connections', 'Open peer connections.', () => info().connections)
  counter('chordnet_connections_opened_total', 'Peer connections established (both directions).', [], () => [[{}, info().metrics.connectionsOpened]])
  counter('chordnet_connections_closed_total', 'Peer connections closed, for any reason.', [], () => [[{}, info().metrics.connectionsClosed]])
  gauge('chordnet_ring_size_estimate', 'Ring size estimated from the spacing of the successor list.', () => info().ringSizeEstimate)
  gauge('chordnet_known_members', 'Other ring members this node knows of.', () => info().known.length)
  gauge('chordnet_fingers', 'Distinct nodes in the finger table.', () => info().fingers.length)
  gauge('chordnet_successors', 'Length of the successor list.', () => info().successors.length)
  counter('chordnet_anti_entropy_syncs_total', 'Anti-entropy exchanges of an arc with a replica.', [], () => [[{}, info().metrics.antiEntropySyncs]])
  counter('chordnet_anti_entropy_repairs_total', 'Entries repaired by anti-entropy: pushed to a replica or fetched from it.', ['direction'], () => [
    [{ direction: 'pushed' }, info().metrics.repairedPushed],
    [{ direction: 'fetched' }, info().metrics.repairedFetched],
  ])
  counter('chordnet_traffic_bytes_total', 'Bytes of frames sent to and received from peers (before encryption), by what they are for.', ['kind', 'direction'], () =>
    info().metrics.traffic.flatMap((t): [Record<string, string>, number][] => [
      [{ kind: t.kind, direction: 'sent' }, t.sentBytes],
      [{ kind: t.kind, direction: 'received' }, t.receivedBytes],
    ]),
  )
  counter('chordnet_traffic_messages_total', 'Frames sent to and received from peers, by what they are for.', ['kind', 'direction'], () =>
    info().metrics.traffic.flatMap((t): [Record<string, string>, number][] => [
      [{ kind: t.kind, direction: 'sent' }, t.sentMessages],
      [{ kind: t.kind, direction: 'received' }, t.receivedMessages],
    ]),
  )
  counter('chordnet_suspicions_total', 'Peers dropped from the routing tables because they did not answer (or refused).', [], () => [[{}, info().metrics.suspicions]])
  return {
    contentType: registry.contentType,
    async scrape() {
      current = node.info()
      return registry.metrics()
    },
  }
}

function latencySeries(labels: Record<string, string>, histogram: NativeHistogram) {
  return {
    labels,
    le: LATENCY_LE_MICROS.map((micros) => micros / 1e6),
    cumulative: cumulativeAt(toBuckets(histogram), LATENCY_LE_MICROS),
    sum: histogram.sum / 1e6,
    count: histogram.count,
  }
}
