//! Study `hops`: lookup path length on stable rings of 1,000 to 100,000 nodes, beside the
//! ½·log2 N of Stoica et al. 2001 (Theorem 2 and §6.2), with finger-table and successor-list
//! sizes and the requests one maintenance round costs per node (stabilize `State` + `Notify`,
//! check-predecessor `Ping`, fix-fingers `FindSuccessor` hops).
//!
//! Rings hold the ideal state written through `Routing` and verified (ring correct, every
//! finger the owner of its start); the smallest size is also built by real joins plus
//! stabilization, which must reach the same state. Lookups are the engine's `lookup()` on a
//! quiet ring (maintenance paused); the maintenance cost is measured on a second copy of the
//! ring running the engine's maintenance rounds, up to 10,000 nodes.

use super::{measure_lookups, Params};
use crate::net::{Counters, NetConfig, Sim};
use crate::report::{fixed, thousands, Output, Table};
use crate::ring::{self, Health};
use crate::stats::{histogram, Summary};
use crate::svg::{self, Chart, Kind};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Ring sizes of the issue: 10^3 to 10^5 nodes.
pub const DEFAULT_SIZES: [usize; 3] = [1_000, 10_000, 100_000];
/// `--quick` drops the 100,000-node ring.
const QUICK_SIZES: [usize; 2] = [1_000, 10_000];
/// Maintenance rounds averaged for the message count: fix-fingers walks the table 8 fingers
/// per round, so one round alone would be noisy.
const MESSAGE_ROUNDS: usize = 4;
/// Largest ring whose maintenance traffic is simulated (100,000 nodes would take minutes).
const MAX_MESSAGE_SIZE: usize = 10_000;
/// Largest ring also built by joins (one join-built ring per run keeps `all` short).
const MAX_JOINED_SIZE: usize = 1_000;
/// Rounds a join-built ring may take to settle after its last join.
const SETTLE_ROUNDS: usize = 300;

struct Row {
    label: String,
    n: usize,
    hops: Summary,
    histogram: Vec<f64>,
    failed: usize,
    fingers: (f64, usize, usize),
    successors: (f64, usize, usize),
    messages: Option<[f64; 5]>,
    after: Health,
    finger_mismatches: usize,
}

pub fn run(params: &Params) -> Output {
    let sizes = params.sizes_or(&DEFAULT_SIZES, &QUICK_SIZES);
    let mut rows = Vec::new();
    for (i, &n) in sizes.iter().enumerate() {
        let seed = params.seed.wrapping_add(i as u64);
        let ids = ring::random_ids(&mut StdRng::seed_from_u64(seed), n);
        let mut sim = ring::build_ideal(&ids, quiet(params.net_config(seed, params.successor_list_len)));
        assert_eq!(ring::finger_mismatches(&sim), 0, "ideal fingers");
        let mut row = measure(&mut sim, params, thousands(n));
        if n <= MAX_MESSAGE_SIZE {
            let mut busy = ring::build_ideal(&ids, params.net_config(seed, params.successor_list_len));
            row.messages = Some(maintenance_cost(&mut busy));
            row.after = ring::health(&busy);
            row.finger_mismatches = ring::finger_mismatches(&busy);
        }
        rows.push(row);
    }
    let mut notes = Vec::new();
    if let Some(&smallest) = sizes.iter().min().filter(|&&n| n <= MAX_JOINED_SIZE) {
        let config = params.net_config(params.seed.wrapping_add(1000), params.successor_list_len);
        let (mut sim, build) = ring::build_by_joins(config, smallest, SETTLE_ROUNDS);
        notes.push(format!(
            "The {}-node ring built by joins (10% more nodes per round, each joining through a random member; {} joins did not happen and were redrawn) took {} growth rounds, then {} rounds until ring and every finger were ideal (converged: {}).",
            thousands(smallest), build.aborted_joins, build.growth_rounds, build.settle_rounds, build.converged
        ));
        let label = format!("{} (joins)", thousands(sim.live_count()));
        let mut row = measure(&mut sim, params, label);
        row.messages = Some(maintenance_cost(&mut sim));
        row.after = ring::health(&sim);
        row.finger_mismatches = ring::finger_mismatches(&sim);
        rows.push(row);
    }
    output(&rows, &notes, params)
}

/// Maintenance paused (the longest stabilize period): lookups on a ring that stays put.
fn quiet(mut config: NetConfig) -> NetConfig {
    config.chord.stabilize_interval = chord::config::MAX_STABILIZE_INTERVAL;
    config
}

fn measure(sim: &mut Sim, params: &Params, label: String) -> Row {
    let tally = measure_lookups(sim, params.lookups);
    let ids = sim.live_ids();
    let fingers: Vec<usize> = ids.iter().map(|&id| sim.routing(id).expect("live").distinct_fingers().len()).collect();
    let successors: Vec<usize> = ids.iter().map(|&id| sim.routing(id).expect("live").successors().len()).collect();
    Row {
        label,
        n: ids.len(),
        hops: Summary::of(&tally.hops),
        histogram: histogram(&tally.hops),
        failed: tally.failed(),
        fingers: spread(&fingers),
        successors: spread(&successors),
        messages: None,
        after: ring::health(sim),
        finger_mismatches: ring::finger_mismatches(sim),
    }
}

/// Requests per node per round while the engines run their maintenance on a settled ring.
fn maintenance_cost(sim: &mut Sim) -> [f64; 5] {
    let round = sim.config.round_ms();
    sim.run_for(2 * round); // past the first, jittered, tick of every node
    let before = sim.counters;
    sim.run_for(MESSAGE_ROUNDS as u64 * round);
    per_node_round(&sim.counters.since(&before), sim.live_count())
}

fn spread(values: &[usize]) -> (f64, usize, usize) {
    let mean = values.iter().sum::<usize>() as f64 / values.len().max(1) as f64;
    (mean, values.iter().copied().min().unwrap_or(0), values.iter().copied().max().unwrap_or(0))
}

fn per_node_round(sent: &Counters, n: usize) -> [f64; 5] {
    let per = |count: u64| count as f64 / (n * MESSAGE_ROUNDS) as f64;
    [per(sent.state), per(sent.notify), per(sent.ping), per(sent.find_successor), per(sent.maintenance() + sent.data)]
}

fn half_log2(n: usize) -> f64 {
    0.5 * (n as f64).log2()
}

fn output(rows: &[Row], notes: &[String], params: &Params) -> Output {
    let mut lookups = Table::new(&["N", "lookups", "mean hops", "p50", "p99", "max", "½·log2 N", "failed", "distinct fingers mean (min–max)", "log2 N", "successor list mean (min–max)"]);
    for r in rows {
        lookups.row(vec![
            r.label.clone(),
            thousands(r.hops.count + r.failed),
            fixed(r.hops.mean, 2),
            r.hops.p50.to_string(),
            r.hops.p99.to_string(),
            r.hops.max.to_string(),
            fixed(half_log2(r.n), 2),
            r.failed.to_string(),
            format!("{} ({}–{})", fixed(r.fingers.0, 1), r.fingers.1, r.fingers.2),
            fixed((r.n as f64).log2(), 1),
            format!("{} ({}–{})", fixed(r.successors.0, 1), r.successors.1, r.successors.2),
        ]);
    }
    let mut maintenance = Table::new(&["N", "State", "Notify", "Ping", "FindSuccessor (fix-fingers hops)", "all requests (with anti-entropy)", "ring correct after", "invariant violations", "nodes with non-ideal fingers"]);
    for r in rows {
        let Some(m) = r.messages else { continue };
        maintenance.row(vec![
            r.label.clone(),
            fixed(m[0], 2),
            fixed(m[1], 2),
            fixed(m[2], 2),
            fixed(m[3], 2),
            fixed(m[4], 2),
            r.after.correct().to_string(),
            r.after.violations().to_string(),
            r.finger_mismatches.to_string(),
        ]);
    }
    let markdown = format!(
        "## Study `hops`: lookup path length (seed {}, successor lists of {})\n\nHops = remote nodes asked by the engine's iterative lookup (`lookup()`) from a random live node to a random key; the owner it returns is checked against the oracle. The maintenance table runs the engines' own maintenance rounds on rings of up to 10,000 nodes.\n\n{}\n### Requests per node per stabilization round (mean of {} rounds; {} finger lookups per round)\n\n{}\n{}\n",
        params.seed,
        params.successor_list_len,
        lookups.to_markdown(),
        MESSAGE_ROUNDS,
        chord::engine::FINGERS_PER_ROUND,
        maintenance.to_markdown(),
        notes.iter().map(|n| format!("{n}\n")).collect::<String>()
    );
    Output { study: "hops", markdown, svg: chart(rows), failed: Vec::new() }
}

fn chart(rows: &[Row]) -> String {
    let mut chart = Chart::new("Lookup hops on a stable ring", "remote hops", "share of lookups", Kind::Bars);
    for (i, r) in rows.iter().enumerate() {
        let points = r.histogram.iter().enumerate().map(|(h, &share)| (h as f64, share)).collect();
        chart = chart.series(&format!("N = {}", r.label), points);
        chart.marks.push((half_log2(r.n), format!("½log2 {}", r.label), i));
    }
    svg::render(&[chart])
}
