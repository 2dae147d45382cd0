//! Study `scale`: rings far larger than a connection table. Every node holds at most
//! `maxPeers` connections (64, the default, and 16), a dial costs a round trip, and the
//! engines choose their connections themselves (`engine/links.rs`): which newcomer to admit at
//! the limit, which idle connection to close. On settled rings of 10,000 and 100,000 nodes
//! (`--quick`: 1,000 and 10,000) it measures:
//!
//! - **joins through one node**: newcomers all join through the same member, several at a
//!   time, as users growing a network would; every join must succeed (none refused `busy`);
//! - **lookups**: mean hops from random members (relayed along open connections), failures;
//! - **connections** per node (mean / max) once busy and once idle, dials and refusals;
//! - **idle cost**: requests per node per second on the calm ring (maintenance slowed down),
//!   by kind.

use super::{measure_lookups, Params};
use crate::net::{Counters, NetConfig, Sim};
use crate::report::{fixed, thousands, Output, Table};
use crate::ring;
use crate::svg::{render, Chart, Kind};
use chord::engine::UserOp;
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Ring sizes and connection limits of the issue.
const SIZES: [usize; 2] = [10_000, 100_000];
const QUICK_SIZES: [usize; 2] = [1_000, 10_000];
const LIMITS: [usize; 2] = [64, 16];
/// Newcomers joining through one member, and how many at once.
const JOINS: usize = 200;
const JOINS_AT_ONCE: usize = 10;
/// Lookups measured on each ring.
const LOOKUPS: usize = 2_000;
/// Simulated time before the idle window: long enough for maintenance to reach its calm pace
/// and idle connections to close.
const CALM_DOWN_MS: u64 = 45_000;
/// The idle window.
const IDLE_MS: u64 = 30_000;

struct Row {
    n: usize,
    limit: usize,
    joined: usize,
    refused: usize,
    join_ms_p50: u64,
    mean_hops: f64,
    failed_lookups: usize,
    busy_connections: (f64, usize),
    idle_connections: (f64, usize),
    dials_per_lookup: f64,
    idle: Counters,
    idle_seconds: f64,
}

pub fn run(params: &Params) -> Output {
    let sizes = params.sizes_or(&SIZES, &QUICK_SIZES);
    let limits = params.max_peers.clone().unwrap_or(LIMITS.to_vec());
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &n in &sizes {
        for &limit in &limits {
            let row = run_one(n, limit, params.seed);
            if row.refused > 0 || row.failed_lookups > 0 {
                failed.push(format!("{n} nodes, maxPeers {limit}: {} joins refused, {} lookups failed; replay: npm run sim -- scale --nodes {n} --seed {}", row.refused, row.failed_lookups, params.seed));
            }
            rows.push(row);
        }
    }
    output(&rows, failed, params)
}

fn spread(values: &[usize]) -> (f64, usize) {
    (values.iter().sum::<usize>() as f64 / values.len().max(1) as f64, values.iter().copied().max().unwrap_or(0))
}

fn connections(sim: &Sim) -> (f64, usize) {
    let counts: Vec<usize> = sim.live_ids().into_iter().map(|id| sim.connections(id)).collect();
    spread(&counts)
}

fn run_one(n: usize, limit: usize, seed: u64) -> Row {
    let mut config = NetConfig::new(seed);
    config.max_peers = limit;
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(seed), n);
    let mut sim = ring::build_ideal(&ids, config);
    let round = sim.config.round_ms();
    sim.run_for(8 * round);
    // Joins through one member, JOINS_AT_ONCE at a time.
    let bootstrap = ids[0];
    let (mut joined, mut refused, mut times) = (0, 0, Vec::new());
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5ca1e);
    for _ in 0..JOINS / JOINS_AT_ONCE {
        let mut wave = Vec::new();
        for _ in 0..JOINS_AT_ONCE {
            let id = Id(rng.gen());
            if sim.spawn(id) {
                if let Some(op) = sim.start_op(id, UserOp::JoinThrough(Sim::node_ref(bootstrap))) {
                    wave.push((id, op, sim.now));
                }
            }
        }
        for (id, op, started) in wave {
            let result = sim.run_op(op, 30_000);
            let in_ring = sim.routing(id).is_some_and(|r| !r.is_alone());
            if matches!(result, Some(Ok(_))) && in_ring {
                joined += 1;
                times.push(sim.now - started);
            } else {
                refused += 1;
            }
        }
    }
    times.sort_unstable();
    sim.run_for(20 * round);
    let dials_before = sim.counters.dials;
    let tally = measure_lookups(&mut sim, LOOKUPS);
    let dials_per_lookup = (sim.counters.dials - dials_before) as f64 / LOOKUPS as f64;
    let busy_connections = connections(&sim);
    sim.run_for(CALM_DOWN_MS);
    let before = sim.counters;
    sim.run_for(IDLE_MS);
    Row {
        n,
        limit,
        joined,
        refused,
        join_ms_p50: times.get(times.len() / 2).copied().unwrap_or(0),
        mean_hops: tally.hops.iter().sum::<u32>() as f64 / tally.hops.len().max(1) as f64,
        failed_lookups: tally.failed(),
        busy_connections,
        idle_connections: connections(&sim),
        dials_per_lookup,
        idle: sim.counters.since(&before),
        idle_seconds: IDLE_MS as f64 / 1000.0 * sim.live_count() as f64,
    }
}

fn output(rows: &[Row], failed: Vec<String>, params: &Params) -> Output {
    let mut table = Table::new(&[
        "N",
        "maxPeers",
        "joins through one node: done / refused",
        "join p50 ms",
        "mean lookup hops",
        "lookups failed",
        "dials per lookup",
        "connections after load: mean / max",
        "connections idle: mean / max",
        "idle requests / node / s",
        "of which State / Notify / Ping / FindSuccessor",
        "idle dials / node / min",
    ]);
    for row in rows {
        let per_s = |count: u64| count as f64 / row.idle_seconds;
        table.row(vec![
            thousands(row.n),
            row.limit.to_string(),
            format!("{} / {}", row.joined, row.refused),
            row.join_ms_p50.to_string(),
            fixed(row.mean_hops, 2),
            row.failed_lookups.to_string(),
            fixed(row.dials_per_lookup, 2),
            format!("{} / {}", fixed(row.busy_connections.0, 1), row.busy_connections.1),
            format!("{} / {}", fixed(row.idle_connections.0, 1), row.idle_connections.1),
            fixed(per_s(row.idle.maintenance() + row.idle.data), 2),
            format!("{} / {} / {} / {}", fixed(per_s(row.idle.state), 2), fixed(per_s(row.idle.notify), 2), fixed(per_s(row.idle.ping), 2), fixed(per_s(row.idle.find_successor), 2)),
            fixed(per_s(row.idle.dials) * 60.0, 2),
        ]);
    }
    let markdown = format!(
        "## Study `scale`: rings larger than a connection table (seed {})\n\nEvery node holds at most `maxPeers` connections and chooses them itself (the engine's policy: routing set kept, others closed after 30 s idle, the least recently used one gives way to a newcomer at the limit); a dial costs a round trip. On a settled ideal ring, {JOINS} newcomers join through one and the same member, {JOINS_AT_ONCE} at a time; then {LOOKUPS} lookups from random members (relayed along open connections); then, after {} s of quiet, the idle cost over {} s (requests per node per second: maintenance slowed to its calm pace).\n\n{}",
        params.seed,
        CALM_DOWN_MS / 1000,
        IDLE_MS / 1000,
        table.to_markdown()
    );
    let points = |limit: usize| rows.iter().filter(|r| r.limit == limit).map(|r| ((r.n as f64).log10(), r.mean_hops)).collect::<Vec<_>>();
    let limits = super::distinct(rows.iter().map(|r| r.limit));
    let chart = limits.iter().fold(Chart::new("Mean lookup hops by ring size", "log10 N", "hops", Kind::Lines), |chart, &limit| chart.series(&format!("maxPeers {limit}"), points(limit)));
    Output { study: "scale", markdown, svg: render(&[chart]), failed }
}
