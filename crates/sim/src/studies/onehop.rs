//! Study `onehop`: operations sent straight to their owner from each member's table of every
//! member (`engine/members.rs`), spread by anti-entropy with routing neighbours.
//!
//! On an ideal ring whose members start knowing only their routing neighbours, it measures how
//! many seconds gossip takes to complete every table, the membership bytes per node per second
//! while it spreads and once calm, and the mean network legs of gets (a handshake before a
//! request counts one) — with a connection limit that holds a mesh (one hop) and with the
//! default limit, past which a ring is too large for a mesh and operations relay along the
//! routing set. Then 1 % of the members crash: how long until every table has dropped them,
//! and the hops meanwhile.

use super::Params;
use crate::net::{NetConfig, Sim};
use crate::report::{fixed, thousands, Output, Table};
use crate::ring;
use crate::svg::{render, Chart, Kind};
use chord::engine::{OpId, UserOp};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// 1,000 members (the size); larger rings with `--nodes` (a mesh of 10,000 is no
/// deployment anyone runs, and each origin would need ~50,000 gets to meet its owners).
const SIZES: [usize; 1] = [1_000];
const QUICK_SIZES: [usize; 1] = [300];
/// Members that issue the gets: each must meet most owners once (a handshake each) before
/// its connections are warm, so a few busy members rather than every member now and then.
const ORIGINS: usize = 8;
/// Gets per origin that warm its connections (about N·ln N / 2 would meet most owners of
/// 1,000 members), then gets per origin measured.
const WARM_GETS: usize = 4_000;
const GETS: usize = 1_000;
/// Gets in flight at once.
const WAVE: usize = 200;
/// Simulated time allowed for the tables to complete.
const CONVERGE_LIMIT_MS: u64 = 120_000;
/// How often completeness is sampled.
const SAMPLE_MS: u64 = 1_000;
/// The calm window over which membership bandwidth is measured.
const CALM_MS: u64 = 30_000;

struct Row {
    n: usize,
    limit: usize,
    complete_after_s: Option<f64>,
    converging_bytes: f64,
    calm_bytes: f64,
    calm_requests: f64,
    first_hops: f64,
    hops: f64,
    failed: usize,
    crashed: usize,
    dropped_after_s: Option<f64>,
    hops_after_crash: f64,
    failed_after_crash: usize,
}

pub fn run(params: &Params) -> Output {
    let sizes = params.sizes_or(&SIZES, &QUICK_SIZES);
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &n in &sizes {
        // A limit that holds a mesh (a quarter of it stays free for newcomers), then the default.
        let limits = params.max_peers.clone().unwrap_or(vec![n * 2, chord::config::DEFAULT_MAX_PEERS]);
        for &limit in &limits {
            let row = run_one(n, limit, params.seed);
            let replay = format!("replay: npm run sim -- onehop --nodes {n} --max-peers {limit} --seed {}", params.seed);
            if row.failed + row.failed_after_crash > 0 {
                failed.push(format!("{n} nodes, maxPeers {limit}: {} gets failed; {replay}", row.failed + row.failed_after_crash));
            }
            // One hop is promised while a mesh fits (three quarters of maxPeers); beyond it the
            // tables saturate at 2 × maxPeers by design and operations relay.
            if limit * 3 / 4 > n && (row.complete_after_s.is_none() || row.hops > 1.1 || row.dropped_after_s.is_none()) {
                failed.push(format!("{n} nodes, maxPeers {limit} (a mesh fits): tables complete after {:?} s, mean hops {:.3}, crashed dropped after {:?} s; {replay}", row.complete_after_s, row.hops, row.dropped_after_s));
            }
            rows.push(row);
        }
    }
    output(&rows, failed, params)
}

/// Live members listed, summed over every live node's table, over the most there could be.
fn completeness(sim: &Sim) -> f64 {
    let live = sim.live_ids();
    let listed: usize = live.iter().filter_map(|id| sim.engine(*id)).map(|e| e.stats().members).sum();
    listed as f64 / (live.len() * live.len()).max(1) as f64
}

/// Does any live node still list a member that is not alive?
fn lists_dead(sim: &Sim) -> bool {
    let live = sim.live_count();
    sim.live_ids().iter().filter_map(|id| sim.engine(*id)).any(|e| e.stats().members > live)
}

/// Operations and network legs summed over every live node.
fn legs(sim: &Sim) -> (f64, f64) {
    sim.live_ids().iter().filter_map(|id| sim.engine(*id)).map(|e| e.stats()).fold((0.0, 0.0), |(ops, legs), s| (ops + s.operations as f64, legs + s.mean_hops * s.operations as f64))
}

/// `count` gets from each of `origins` for random keys, `WAVE` at a time: (mean legs, failed).
fn gets(sim: &mut Sim, origins: &[Id], count: usize, rng: &mut StdRng) -> (f64, usize) {
    let count = count * origins.len();
    let (ops_before, legs_before) = legs(sim);
    let (mut issued, mut failed) = (0, 0);
    let mut pending: Vec<OpId> = Vec::new();
    while issued < count || !pending.is_empty() {
        while issued < count && pending.len() < WAVE {
            issued += 1;
            let origin = origins[issued % origins.len()];
            let key: [u8; 16] = rng.gen();
            if let Some(op) = sim.start_op(origin, UserOp::Get(key.to_vec())) {
                pending.push(op);
            }
        }
        sim.run_for(20);
        pending.retain(|&op| match sim.take_result(op) {
            Some(Ok(_)) => false,
            Some(Err(_)) => {
                failed += 1;
                false
            }
            None => true,
        });
    }
    let (ops, total) = legs(sim);
    ((total - legs_before) / (ops - ops_before).max(1.0), failed)
}

fn run_one(n: usize, limit: usize, seed: u64) -> Row {
    let mut config = NetConfig::new(seed);
    config.max_peers = limit;
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(seed), n);
    let mut sim = ring::build_ideal(&ids, config);
    let mut rng = StdRng::seed_from_u64(seed ^ 0x0e_4012);
    // Gossip from tables that know only routing neighbours, until every table lists everyone.
    let start = sim.now;
    let before = sim.counters;
    let mut complete_after_s = None;
    while sim.now - start < CONVERGE_LIMIT_MS {
        sim.run_for(SAMPLE_MS);
        if completeness(&sim) >= 1.0 {
            complete_after_s = Some((sim.now - start) as f64 / 1000.0);
            break;
        }
    }
    let spent = sim.counters.since(&before);
    let converging_bytes = spent.member_bytes as f64 / n as f64 / ((sim.now - start) as f64 / 1000.0);
    // Gets: a first pass opens connections (each handshake a leg), a second is the steady state.
    let origins: Vec<Id> = (0..ORIGINS).filter_map(|_| sim.random_live()).collect();
    let (first_hops, first_failed) = gets(&mut sim, &origins, WARM_GETS, &mut rng);
    let (hops, failed) = gets(&mut sim, &origins, GETS, &mut rng);
    // Membership traffic on the calm ring.
    let before = sim.counters;
    sim.run_for(CALM_MS);
    let calm = sim.counters.since(&before);
    let seconds = CALM_MS as f64 / 1000.0 * n as f64;
    // 1 % of the members crash: the tables drop them as they are found dead.
    let crashed: Vec<Id> = (0..(n / 100).max(1)).filter_map(|_| sim.random_live()).filter(|id| !origins.contains(id)).collect();
    sim.crash_many(&crashed);
    let crash_at = sim.now;
    let (hops_after_crash, failed_after_crash) = gets(&mut sim, &origins, GETS, &mut rng);
    let mut dropped_after_s = None;
    while sim.now - crash_at < CONVERGE_LIMIT_MS {
        if !lists_dead(&sim) {
            dropped_after_s = Some((sim.now - crash_at) as f64 / 1000.0);
            break;
        }
        sim.run_for(SAMPLE_MS);
    }
    Row {
        n,
        limit,
        complete_after_s,
        converging_bytes,
        calm_bytes: calm.member_bytes as f64 / seconds,
        calm_requests: calm.members as f64 / seconds,
        first_hops,
        hops,
        failed: failed + first_failed,
        crashed: crashed.len(),
        dropped_after_s,
        hops_after_crash,
        failed_after_crash,
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| format!("> {}", CONVERGE_LIMIT_MS / 1000), |s| fixed(s, 0))
}

/// Completeness, or why there is none: a table of a ring larger than one hop serves saturates.
fn complete(row: &Row) -> String {
    if row.limit * 3 / 4 <= row.n && row.complete_after_s.is_none() {
        return format!("— (saturated at {} entries)", 2 * row.limit);
    }
    seconds(row.complete_after_s)
}

fn output(rows: &[Row], failed: Vec<String>, params: &Params) -> Output {
    let mut table = Table::new(&[
        "N",
        "maxPeers",
        "every table complete after (s)",
        "membership bytes / node / s while spreading",
        "calm: bytes / node / s",
        "calm: gossip requests / node / s",
        "get hops, first pass (connections opening)",
        "get hops, steady",
        "gets failed",
        "crashed",
        "crashed dropped from every table after (s)",
        "get hops right after the crashes",
        "gets failed after the crashes",
    ]);
    for row in rows {
        table.row(vec![
            thousands(row.n),
            thousands(row.limit),
            complete(row),
            fixed(row.converging_bytes, 0),
            fixed(row.calm_bytes, 1),
            fixed(row.calm_requests, 2),
            fixed(row.first_hops, 3),
            fixed(row.hops, 3),
            row.failed.to_string(),
            row.crashed.to_string(),
            if row.limit * 3 / 4 <= row.n { "—".to_string() } else { seconds(row.dropped_after_s) },
            fixed(row.hops_after_crash, 3),
            row.failed_after_crash.to_string(),
        ]);
    }
    let markdown = format!(
        "## Study `onehop`: gets straight to their owner (seed {})\n\nAn ideal ring whose members start knowing only their routing neighbours; each maintenance round a member compares an 8-byte digest of its member table with a random routing neighbour, and only when they differ the 64 bucket digests, then swaps the entries of the buckets that differ (`engine/members.rs`). Bytes are frames as sent, before encryption (Noise adds 16 per frame and the length prefix 4). Gets: {ORIGINS} members each issue {WARM_GETS} gets for random keys (a first pass that opens their connections to the owners), then {GETS} more each (the steady state), {WAVE} in flight; hops = network legs per get, a handshake before a request counting one. With maxPeers = 2N a mesh fits in every table (one hop); with the default {} a ring of more than {} members relays along the routing set, and its member tables stop at 2 × maxPeers entries (saturated: no gossip, no owner guesses). Then 1 % of the members crash.\n\n{}",
        params.seed,
        chord::config::DEFAULT_MAX_PEERS,
        chord::config::DEFAULT_MAX_PEERS * 3 / 4,
        table.to_markdown()
    );
    let chart = rows.iter().fold(Chart::new("Mean get hops", "row", "hops", Kind::Bars), |chart, r| chart.series(&format!("N {} maxPeers {}", r.n, r.limit), vec![(0.0, r.hops)]));
    Output { study: "onehop", markdown, svg: render(&[chart]), failed }
}
