//! Operational metrics of a node: counters and latency histograms that the hot path updates with
//! relaxed atomics (no lock, no allocation, no clock read here: callers pass durations), the
//! ring's own figures the engine keeps ([`RingFigures`]: plain counters under its lock), and the
//! plain snapshot structs that the binding, the web view and the `Info` wire answer carry.
//! Pure: no I/O. Entry points: [`Metrics`] (owned by the node's driver: operation latencies,
//! connections), [`RingFigures`] (owned by the engine), [`MemberInfo`] (what a member reports
//! about itself).
//!
//! Latency histograms are log-linear, HdrHistogram's layout in miniature: integer microseconds,
//! exact below 8 µs, then 8 buckets per power of two (each at most 12.5 % wide) up to
//! 15 · 2^24 µs (about 4 minutes, far past the 15 s operation deadline), where the last, open
//! bucket starts.
//! Every power of two is a bucket edge, so a coarser export (Prometheus `le` buckets at powers
//! of two) sums whole buckets exactly.

use crate::routing::NodeRef;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// log2 of the buckets per power of two: 8 buckets, so a bucket is at most 1/8 of its start wide.
pub const SUB_BUCKET_BITS: u32 = 3;
const SUB_BUCKETS: u64 = 1 << SUB_BUCKET_BITS;
/// Buckets stop at 2^28 µs (~268 s): the last one, from 15 · 2^24 µs, is open-ended.
pub const MAX_LATENCY_EXPONENT: u32 = 28;
/// Buckets of a latency histogram: 8 exact ones below 8 µs, then 8 per power of two.
pub const LATENCY_BUCKETS: usize = (SUB_BUCKETS + SUB_BUCKETS * (MAX_LATENCY_EXPONENT - SUB_BUCKET_BITS) as u64) as usize;
/// Lookup hop counts kept one by one; longer lookups (the node gives up at 128) share the last.
pub const HOP_BUCKETS: usize = 33;
/// Most members listed in [`MemberInfo::known`], so an answer stays small on a large ring.
pub const MAX_KNOWN_IN_INFO: usize = 256;

/// The error codes counted one by one (the stable codes of `NodeError`); any other code is
/// counted as `"other"`.
pub const ERROR_CODES: [&str; 9] = [
    "ERR_TIMEOUT",
    "ERR_UNAVAILABLE",
    "ERR_PEER_GONE",
    "ERR_SOCKET_CLOSED",
    "ERR_KEY_TOO_LARGE",
    "ERR_VALUE_TOO_LARGE",
    "ERR_PROTOCOL",
    "ERR_INVALID_ARGUMENT",
    "other",
];

/// The dict operations that are timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimedOp {
    Get = 0,
    Set = 1,
    Delete = 2,
}

/// The bucket of a latency of `micros` microseconds.
pub fn bucket_index(micros: u64) -> usize {
    if micros < SUB_BUCKETS {
        return micros as usize;
    }
    let exponent = 63 - micros.leading_zeros(); // at least SUB_BUCKET_BITS here
    if exponent >= MAX_LATENCY_EXPONENT {
        return LATENCY_BUCKETS - 1;
    }
    let mantissa = (micros >> (exponent - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
    (SUB_BUCKETS + (exponent - SUB_BUCKET_BITS) as u64 * SUB_BUCKETS + mantissa) as usize
}

/// Exclusive upper bound of bucket `index`, in microseconds; `u64::MAX` for the last bucket,
/// which also holds everything longer.
pub fn bucket_upper_bound(index: usize) -> u64 {
    let index = index as u64;
    if index + 1 >= LATENCY_BUCKETS as u64 {
        return u64::MAX;
    }
    if index < SUB_BUCKETS {
        return index + 1;
    }
    let exponent = (index - SUB_BUCKETS) / SUB_BUCKETS + SUB_BUCKET_BITS as u64;
    let mantissa = (index - SUB_BUCKETS) % SUB_BUCKETS;
    (SUB_BUCKETS + mantissa + 1) << (exponent - SUB_BUCKET_BITS as u64)
}

/// Inclusive lower bound of bucket `index`, in microseconds.
pub fn bucket_lower_bound(index: usize) -> u64 {
    if index == 0 {
        0
    } else {
        bucket_upper_bound(index - 1)
    }
}

/// A histogram of counts over fixed buckets, updated lock-free.
pub struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    sum: AtomicU64,
}

impl<const N: usize> Default for Histogram<N> {
    fn default() -> Self {
        Histogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum: AtomicU64::new(0) }
    }
}

impl<const N: usize> Histogram<N> {
    /// Count one observation of `value` in `bucket` (clamped to the last bucket).
    pub fn record_in(&self, bucket: usize, value: u64) {
        self.buckets[bucket.min(N - 1)].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// The non-empty buckets, their total and the sum of values. Buckets are read one by one, so
    /// a snapshot taken during updates may be off by the few observations in flight.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets = Vec::new();
        let mut count = 0;
        for (index, bucket) in self.buckets.iter().enumerate() {
            let n = bucket.load(Relaxed);
            if n > 0 {
                buckets.push((index as u16, n));
                count += n;
            }
        }
        HistogramSnapshot { count, sum: self.sum.load(Relaxed), buckets }
    }
}

/// Latencies in microseconds, log-linear buckets (see the module docs).
pub type LatencyHistogram = Histogram<LATENCY_BUCKETS>;

impl LatencyHistogram {
    pub fn record(&self, micros: u64) {
        self.record_in(bucket_index(micros), micros);
    }
}

/// A histogram at one moment: `(bucket index, count)` of its non-empty buckets, ascending.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct HistogramSnapshot {
    pub count: u64,
    /// Sum of the observed values (microseconds for latencies, hops for lookups).
    pub sum: u64,
    pub buckets: Vec<(u16, u64)>,
}

impl HistogramSnapshot {
    /// The latency below which a fraction `q` of observations fall, in microseconds,
    /// interpolated linearly inside its bucket; `None` when empty.
    pub fn latency_quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * self.count as f64).max(1.0);
        let mut seen = 0u64;
        for &(index, n) in &self.buckets {
            if (seen + n) as f64 >= rank {
                let lower = bucket_lower_bound(index as usize) as f64;
                let upper = match bucket_upper_bound(index as usize) {
                    u64::MAX => lower, // the open last bucket: report its start
                    upper => upper as f64,
                };
                return Some(lower + (upper - lower) * (rank - seen as f64) / n as f64);
            }
            seen += n;
        }
        self.buckets.last().map(|&(index, _)| bucket_lower_bound(index as usize) as f64)
    }
}

/// What the engine counts about the ring's work, under its own lock (plain integers).
#[derive(Clone, Debug, PartialEq)]
pub struct RingFigures {
    /// Bucket `i` counts greedy lookups of `i` hops (the last: that many or more).
    pub lookup_hops: [u64; HOP_BUCKETS],
    pub lookup_hop_sum: u64,
    /// Anti-entropy exchanges of an arc with a replica.
    pub anti_entropy_syncs: u64,
    /// Entries anti-entropy sent to a replica, and took from it.
    pub repaired_pushed: u64,
    pub repaired_fetched: u64,
    /// Peers suspected of having failed (silent past the failure timeout).
    pub suspicions: u64,
}

impl Default for RingFigures {
    fn default() -> Self {
        RingFigures { lookup_hops: [0; HOP_BUCKETS], lookup_hop_sum: 0, anti_entropy_syncs: 0, repaired_pushed: 0, repaired_fetched: 0, suspicions: 0 }
    }
}

impl RingFigures {
    /// A greedy lookup over finger tables finished after asking `hops` remote nodes.
    pub fn record_lookup(&mut self, hops: u32) {
        self.lookup_hops[(hops as usize).min(HOP_BUCKETS - 1)] += 1;
        self.lookup_hop_sum += hops as u64;
    }

    fn lookup_snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(u16, u64)> = self.lookup_hops.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (i as u16, *n)).collect();
        HistogramSnapshot { count: buckets.iter().map(|(_, n)| n).sum(), sum: self.lookup_hop_sum, buckets }
    }
}

/// What a message on the wire is for, as its bytes are counted (sent and received).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Traffic {
    /// Stabilize, notify, pings and their answers: keeping the ring a ring.
    Maintenance,
    /// Lookups (`FindSuccessor`, relayed or not) and their answers.
    Lookup,
    /// Dict operations at their owner (`Get`, `Write`, relayed or not) and their answers.
    Data,
    /// Copies to replicas and hand-offs.
    Replication,
    /// Anti-entropy: digests, version lists, fetches.
    AntiEntropy,
    /// Pages of ring walks (`keys()`, `values()`, ...).
    Walk,
    /// Joins, leaves, ring merging, and subscriptions (who listens for events).
    Membership,
    /// Ring-wide add/delete events.
    Events,
    /// Mesh messages: broadcasts, whispers, peer exchange.
    Mesh,
    /// The handshake, goodbyes, `Info` and everything else.
    Other,
}

impl Traffic {
    pub const ALL: [Traffic; 10] = [
        Traffic::Maintenance,
        Traffic::Lookup,
        Traffic::Data,
        Traffic::Replication,
        Traffic::AntiEntropy,
        Traffic::Walk,
        Traffic::Membership,
        Traffic::Events,
        Traffic::Mesh,
        Traffic::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Traffic::Maintenance => "maintenance",
            Traffic::Lookup => "lookup",
            Traffic::Data => "data",
            Traffic::Replication => "replication",
            Traffic::AntiEntropy => "anti_entropy",
            Traffic::Walk => "walk",
            Traffic::Membership => "membership",
            Traffic::Events => "events",
            Traffic::Mesh => "mesh",
            Traffic::Other => "other",
        }
    }
}

/// Messages and bytes of one kind of traffic, sent and received, since the node started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrafficSnapshot {
    pub kind: String,
    pub sent_messages: u64,
    pub sent_bytes: u64,
    pub received_messages: u64,
    pub received_bytes: u64,
}

/// The figures the driver measures: operation latencies and outcomes, connections, traffic by
/// kind. Cheap to update from any task.
pub struct Metrics {
    ops: [LatencyHistogram; 3],
    errors: [[AtomicU64; ERROR_CODES.len()]; 3],
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    oversized_frames: AtomicU64,
    /// Per traffic kind: messages sent, bytes sent, messages received, bytes received.
    traffic: [[AtomicU64; 4]; Traffic::ALL.len()],
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            ops: Default::default(),
            errors: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            connections_opened: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            oversized_frames: AtomicU64::new(0),
            traffic: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
        }
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// A dict operation finished after `micros`; `error` is its error code if it failed.
    pub fn record_op(&self, op: TimedOp, micros: u64, error: Option<&str>) {
        self.ops[op as usize].record(micros);
        if let Some(code) = error {
            let index = ERROR_CODES.iter().position(|c| *c == code).unwrap_or(ERROR_CODES.len() - 1);
            self.errors[op as usize][index].fetch_add(1, Relaxed);
        }
    }

    pub fn record_connection_opened(&self) {
        self.connections_opened.fetch_add(1, Relaxed);
    }

    pub fn record_connection_closed(&self) {
        self.connections_closed.fetch_add(1, Relaxed);
    }

    /// A frame was about to exceed the frame limit and was not sent (a bug if it ever counts).
    pub fn record_oversized_frame(&self) {
        self.oversized_frames.fetch_add(1, Relaxed);
    }

    pub fn oversized_frames(&self) -> u64 {
        self.oversized_frames.load(Relaxed)
    }

    /// A frame of `bytes` (length prefix included, before encryption) was queued to a peer.
    pub fn record_sent(&self, kind: Traffic, bytes: usize) {
        let counters = &self.traffic[kind as usize];
        counters[0].fetch_add(1, Relaxed);
        counters[1].fetch_add(bytes as u64, Relaxed);
    }

    /// A frame of `bytes` arrived from a peer.
    pub fn record_received(&self, kind: Traffic, bytes: usize) {
        let counters = &self.traffic[kind as usize];
        counters[2].fetch_add(1, Relaxed);
        counters[3].fetch_add(bytes as u64, Relaxed);
    }

    /// Everything, with the engine's figures alongside.
    pub fn snapshot(&self, ring: &RingFigures) -> MetricsSnapshot {
        let op = |i: usize| OpSnapshot {
            latency: self.ops[i].snapshot(),
            errors: ERROR_CODES
                .iter()
                .zip(&self.errors[i])
                .filter_map(|(code, n)| {
                    let n = n.load(Relaxed);
                    (n > 0).then(|| (code.to_string(), n))
                })
                .collect(),
        };
        MetricsSnapshot {
            get: op(TimedOp::Get as usize),
            set: op(TimedOp::Set as usize),
            delete: op(TimedOp::Delete as usize),
            lookup_hops: ring.lookup_snapshot(),
            anti_entropy_syncs: ring.anti_entropy_syncs,
            repaired_pushed: ring.repaired_pushed,
            repaired_fetched: ring.repaired_fetched,
            suspicions: ring.suspicions,
            connections_opened: self.connections_opened.load(Relaxed),
            connections_closed: self.connections_closed.load(Relaxed),
            oversized_frames: self.oversized_frames.load(Relaxed),
            traffic: Traffic::ALL
                .iter()
                .map(|kind| {
                    let counters = &self.traffic[*kind as usize];
                    TrafficSnapshot {
                        kind: kind.name().into(),
                        sent_messages: counters[0].load(Relaxed),
                        sent_bytes: counters[1].load(Relaxed),
                        received_messages: counters[2].load(Relaxed),
                        received_bytes: counters[3].load(Relaxed),
                    }
                })
                .collect(),
        }
    }
}

/// One operation kind: latencies of every attempt (failed ones included) and failures by code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpSnapshot {
    pub latency: HistogramSnapshot,
    /// `(error code, count)`, non-zero ones only.
    pub errors: Vec<(String, u64)>,
}

/// Every counter of [`Metrics`], cumulative since the node started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    pub get: OpSnapshot,
    pub set: OpSnapshot,
    pub delete: OpSnapshot,
    /// Hops of greedy finger-table lookups (`lookup()` and the node's own finger fixing);
    /// bucket `i` counts lookups of `i` hops.
    pub lookup_hops: HistogramSnapshot,
    pub anti_entropy_syncs: u64,
    pub repaired_pushed: u64,
    pub repaired_fetched: u64,
    pub suspicions: u64,
    pub connections_opened: u64,
    pub connections_closed: u64,
    /// Frames refused before sending because they exceeded the frame limit (always 0 unless a
    /// bulk message escaped its byte budget).
    #[serde(default)]
    pub oversized_frames: u64,
    /// Messages and bytes by what they are for (`Traffic`), sent and received.
    #[serde(default)]
    pub traffic: Vec<TrafficSnapshot>,
}

/// What a node reports about itself: its routing state, what it holds and its counters. The
/// answer to the wire request `Info`, and the local snapshot behind the web view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MemberInfo {
    pub node: NodeRef,
    /// A ring member (stores and routes), as opposed to a client.
    pub member: bool,
    pub predecessor: Option<NodeRef>,
    pub successors: Vec<NodeRef>,
    /// Distinct finger-table entries, nearest first.
    pub fingers: Vec<NodeRef>,
    /// Other members this node knows of, at most [`MAX_KNOWN_IN_INFO`].
    pub known: Vec<NodeRef>,
    /// Live keys held, as owner or replica.
    pub keys: u64,
    /// Live keys of its own arc.
    pub primary_keys: u64,
    /// Bytes of keys and values held (tombstones' keys included).
    pub bytes: u64,
    pub connections: u32,
    pub ring_size_estimate: f64,
    pub metrics: MetricsSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_exact_below_eight_microseconds_and_contiguous_above() {
        for micros in 0..8 {
            assert_eq!(bucket_index(micros), micros as usize);
        }
        // Every value lands in the bucket whose bounds contain it; bounds tile the line.
        let mut previous_upper = 0;
        for index in 0..LATENCY_BUCKETS - 1 {
            assert_eq!(bucket_lower_bound(index), previous_upper);
            let upper = bucket_upper_bound(index);
            assert!(upper > bucket_lower_bound(index));
            assert_eq!(bucket_index(bucket_lower_bound(index)), index);
            assert_eq!(bucket_index(upper - 1), index);
            previous_upper = upper;
        }
        // The last bucket starts where the finite ones end and is open: [15 · 2^24 µs, ∞).
        assert_eq!(previous_upper, bucket_lower_bound(LATENCY_BUCKETS - 1));
        assert_eq!(previous_upper, 15 << (MAX_LATENCY_EXPONENT - 4));
        assert_eq!(bucket_index(1 << MAX_LATENCY_EXPONENT), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_index(u64::MAX), LATENCY_BUCKETS - 1);
        assert_eq!(bucket_upper_bound(LATENCY_BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn buckets_are_at_most_an_eighth_wide_and_powers_of_two_are_edges() {
        for index in 8..LATENCY_BUCKETS - 1 {
            let (lower, upper) = (bucket_lower_bound(index), bucket_upper_bound(index));
            assert!((upper - lower) * 8 <= lower, "bucket {index}: [{lower}, {upper})");
        }
        for exponent in 3..MAX_LATENCY_EXPONENT {
            let edge = 1u64 << exponent;
            assert_eq!(bucket_upper_bound(bucket_index(edge) - 1), edge);
        }
    }

    #[test]
    fn quantiles_interpolate_within_a_bucket() {
        let histogram = LatencyHistogram::default();
        for micros in 1..=1000 {
            histogram.record(micros);
        }
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 1000);
        assert_eq!(snapshot.sum, 500_500);
        for (q, exact) in [(0.5, 500.0), (0.9, 900.0), (0.99, 990.0)] {
            let estimate = snapshot.latency_quantile(q).unwrap();
            assert!((estimate - exact).abs() / exact < 0.07, "q{q}: {estimate} vs {exact}");
        }
        assert_eq!(HistogramSnapshot::default().latency_quantile(0.5), None);
    }

    #[test]
    fn metrics_count_ops_errors_and_repairs() {
        let metrics = Metrics::new();
        metrics.record_op(TimedOp::Get, 70, None);
        metrics.record_op(TimedOp::Get, 90, Some("ERR_TIMEOUT"));
        metrics.record_op(TimedOp::Set, 120, Some("ERR_SOMETHING_NEW"));
        let mut ring = RingFigures::default();
        ring.record_lookup(2);
        ring.record_lookup(500);
        ring.anti_entropy_syncs += 1;
        ring.repaired_pushed += 3;
        ring.repaired_fetched += 4;
        ring.suspicions += 1;
        metrics.record_connection_opened();
        let s = metrics.snapshot(&ring);
        assert_eq!(s.get.latency.count, 2);
        assert_eq!(s.get.errors, vec![("ERR_TIMEOUT".to_string(), 1)]);
        assert_eq!(s.set.errors, vec![("other".to_string(), 1)]);
        assert_eq!(s.delete, OpSnapshot::default());
        assert_eq!(s.lookup_hops.buckets, vec![(2, 1), ((HOP_BUCKETS - 1) as u16, 1)]);
        assert_eq!((s.anti_entropy_syncs, s.repaired_pushed, s.repaired_fetched, s.suspicions), (1, 3, 4, 1));
        assert_eq!((s.connections_opened, s.connections_closed), (1, 0));
    }

    #[test]
    fn member_info_survives_the_wire_encoding() {
        let node = NodeRef { id: crate::Id(7), host: "127.0.0.1".into(), port: 4000 };
        let metrics = Metrics::new();
        metrics.record_op(TimedOp::Set, 42, None);
        let info = MemberInfo {
            node: node.clone(),
            member: true,
            predecessor: Some(node.clone()),
            successors: vec![node.clone()],
            fingers: vec![],
            known: vec![node],
            keys: 3,
            primary_keys: 1,
            bytes: 99,
            connections: 2,
            ring_size_estimate: 4.0,
            metrics: metrics.snapshot(&RingFigures::default()),
        };
        let bytes = rmp_serde::to_vec_named(&info).unwrap();
        assert_eq!(rmp_serde::from_slice::<MemberInfo>(&bytes).unwrap(), info);
    }

    #[test]
    fn updates_from_many_threads_are_all_counted() {
        let metrics = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let metrics = metrics.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        metrics.record_op(TimedOp::Get, i % 1000 + t, None);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(metrics.snapshot(&RingFigures::default()).get.latency.count, 40_000);
    }
}
