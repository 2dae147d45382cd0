//! The failure detector's two figures, measured on the engine's own machines (part of study
//! `faults`):
//!
//! - **false suspicions**: on a healthy ring carrying the write workload, every suspicion is
//!   false (no node failed). Counted per node and hour of simulated time under 0, 1, 5 and 10%
//!   message loss — the price of detecting in seconds.
//! - **detection delay**: nodes cut off silently (every message to or from them dropped: no
//!   refusal, no reset, as when a cable is pulled) versus crashed (their port refuses
//!   connections). Measured per victim from the fault to the moment no live member has it as
//!   its immediate successor any more, i.e. the ring routes around it.

use super::Params;
use crate::net::{NetConfig, Sim};
use crate::report::{fixed, thousands, Table};
use crate::ring;
use crate::stats::Summary;
use crate::svg::{Chart, Kind};
use crate::workload::Workload;
use chord::Id;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::collections::HashSet;

/// Ring size (quick: 300).
const SIZE: usize = 1_000;
const QUICK_SIZE: usize = 300;
/// Message loss rates of the false-suspicion table.
const LOSS_RATES: [f64; 4] = [0.0, 0.01, 0.05, 0.10];
/// Failure timeouts compared (ms); the node's default is 2,000.
const FAILURE_TIMEOUTS: [u64; 3] = [1_000, 2_000, 4_000];
/// Rounds (250 ms) of settling before measuring, and of measuring (30 s).
const SETTLE_ROUNDS: usize = 8;
const MEASURE_ROUNDS: usize = 120;
/// Writes started per round, over this many keys (as in the fault scenarios).
const WRITES_PER_ROUND: usize = 20;
const KEYS: usize = 1_000;
/// Victims per detection run, and how long we wait for the ring to route around them.
const VICTIMS: usize = 10;
const DETECTION_LIMIT_MS: u64 = 30_000;
/// Granularity of the detection clock.
const STEP_MS: u64 = 10;

pub struct DetectorFigures {
    pub markdown: String,
    pub chart: Chart,
}

/// One failure timeout's figures.
struct Tradeoff {
    failure_timeout: u64,
    /// Per loss rate: false suspicions in the measured 30 s, and per node and hour.
    false_suspicions: Vec<(f64, u64, f64)>,
    /// Per way of disappearing: delays until routed around (ms) and victims never routed around.
    detection: Vec<(Disappearance, Vec<u32>, usize)>,
}

/// How a node disappears.
#[derive(Clone, Copy, PartialEq)]
enum Disappearance {
    /// Every message to or from it is dropped (it stays up, on its own side of a cut).
    SilentCut,
    /// It crashes: its port refuses connections.
    Crash,
}

impl Disappearance {
    fn label(self) -> &'static str {
        match self {
            Disappearance::SilentCut => "silently cut off",
            Disappearance::Crash => "crashed (refuses connections)",
        }
    }
}

pub fn run(params: &Params) -> DetectorFigures {
    let n = params.size_or(SIZE, QUICK_SIZE);
    let tradeoffs: Vec<Tradeoff> = FAILURE_TIMEOUTS.iter().map(|&timeout| measure_tradeoff(n, params, timeout)).collect();
    DetectorFigures { markdown: markdown(n, params, &tradeoffs), chart: chart(&tradeoffs) }
}

fn measure_tradeoff(n: usize, params: &Params, failure_timeout: u64) -> Tradeoff {
    let config = |seed| NetConfig { failure_timeout, ..NetConfig::new(seed) };
    let false_suspicions = LOSS_RATES
        .iter()
        .map(|&loss| {
            let suspicions = measure_false_suspicions(n, config(params.seed), loss);
            let hours = MEASURE_ROUNDS as f64 * config(params.seed).round_ms() as f64 / 3_600_000.0;
            (loss, suspicions, suspicions as f64 / n as f64 / hours)
        })
        .collect();
    let mut detection = Vec::new();
    for how in [Disappearance::SilentCut, Disappearance::Crash] {
        let mut samples = Vec::new();
        let mut undetected = 0;
        for k in 0..params.seeds.max(1) as u64 {
            let (found, missed) = measure_detection(n, config(params.seed + k), how);
            samples.extend(found);
            undetected += missed;
        }
        detection.push((how, samples, undetected));
    }
    Tradeoff { failure_timeout, false_suspicions, detection }
}

/// A ring of `n` random members, settled for a few rounds under the write workload.
fn settled_ring(n: usize, config: NetConfig) -> (Sim, Workload, Vec<Id>) {
    let round = config.round_ms();
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(config.seed), n);
    let mut sim = ring::build_ideal(&ids, config);
    let mut workload = Workload::new(KEYS);
    for _ in 0..SETTLE_ROUNDS {
        workload.issue(&mut sim, WRITES_PER_ROUND);
        sim.run_for(round);
        workload.collect(&mut sim);
    }
    (sim, workload, ids)
}

/// A healthy ring under the write workload and `loss`: every suspicion is a false one.
fn measure_false_suspicions(n: usize, config: NetConfig, loss: f64) -> u64 {
    let round = config.round_ms();
    let (mut sim, mut workload, _) = settled_ring(n, config);
    let before = total_suspicions(&sim);
    sim.loss = loss;
    for _ in 0..MEASURE_ROUNDS {
        workload.issue(&mut sim, WRITES_PER_ROUND);
        sim.run_for(round);
        workload.collect(&mut sim);
    }
    total_suspicions(&sim) - before
}

fn total_suspicions(sim: &Sim) -> u64 {
    sim.live_ids().iter().filter_map(|&id| sim.engine(id)).map(|engine| engine.stats().suspicions).sum()
}

/// Make `VICTIMS` random members disappear at once; per victim, ms until no live member has
/// it as immediate successor. Returns the delays found and the count never routed around.
fn measure_detection(n: usize, config: NetConfig, how: Disappearance) -> (Vec<u32>, usize) {
    let round = config.round_ms();
    let (mut sim, mut workload, ids) = settled_ring(n, config);
    let victims: Vec<Id> = (0..VICTIMS).filter_map(|_| sim.random_live()).collect::<HashSet<_>>().into_iter().collect();
    for &victim in &victims {
        match how {
            // Its own group: it keeps running but hears nobody and nobody hears it.
            Disappearance::SilentCut => sim.set_group(victim, 1),
            Disappearance::Crash => sim.crash(victim),
        }
    }
    let others: Vec<Id> = ids.iter().copied().filter(|id| !victims.contains(id)).collect();
    let start = sim.now;
    let mut pending: HashSet<Id> = victims.iter().copied().collect();
    let mut delays = Vec::new();
    let mut since_issue = 0;
    while !pending.is_empty() && sim.now - start < DETECTION_LIMIT_MS {
        sim.run_for(STEP_MS);
        since_issue += STEP_MS;
        if since_issue >= round {
            since_issue = 0;
            workload.collect(&mut sim);
            workload.issue(&mut sim, WRITES_PER_ROUND);
        }
        let still_successor: HashSet<Id> = others.iter().filter_map(|&id| sim.routing(id)).map(|r| r.successor().id).filter(|s| pending.contains(s)).collect();
        pending.retain(|victim| {
            let routed_around = !still_successor.contains(victim);
            if routed_around {
                delays.push((sim.now - start) as u32);
            }
            !routed_around
        });
    }
    (delays, pending.len())
}

fn markdown(n: usize, params: &Params, tradeoffs: &[Tradeoff]) -> String {
    let mut headers = vec!["failure timeout".to_string()];
    headers.extend(tradeoffs[0].detection.iter().map(|(how, _, _)| format!("{}: routed around p50 / max ms", how.label())));
    headers.extend(LOSS_RATES.iter().map(|loss| format!("false suspicions / node / hour at {}% loss", fixed(loss * 100.0, 0))));
    let mut table = Table::new(&headers.iter().map(String::as_str).collect::<Vec<_>>());
    for tradeoff in tradeoffs {
        let mut row = vec![format!("{} ms", thousands(tradeoff.failure_timeout as usize))];
        for (_, samples, undetected) in &tradeoff.detection {
            let summary = Summary::of(samples);
            let missed = if *undetected > 0 { format!(" ({undetected} never)") } else { String::new() };
            row.push(format!("{} / {}{missed}", thousands(summary.p50 as usize), thousands(summary.max as usize)));
        }
        for &(_, count, per_node_hour) in &tradeoff.false_suspicions {
            row.push(format!("{} ({})", fixed(per_node_hour, 2), thousands(count as usize)));
        }
        table.row(row);
    }
    format!(
        "\n### Failure detector: detection delay versus false suspicions\n\nDetection: {VICTIMS} random members of a {}-member ring disappear at once, under the write workload ({WRITES_PER_ROUND} writes per round); the delay is until no live member has the victim as its immediate successor ({} seeds from {}). False suspicions: the same ring, healthy, for {MEASURE_ROUNDS} rounds (30 s) with a share of all messages lost for good (harsher than TCP, which retransmits); nobody fails, so every suspicion is false (in brackets: the count in 30 s). A false suspicion costs one peer's connections and a detour until it next speaks. The node's default failure timeout is 2,000 ms.\n\n{}",
        thousands(n),
        params.seeds.max(1),
        params.seed,
        table.to_markdown()
    )
}

fn chart(tradeoffs: &[Tradeoff]) -> Chart {
    let mut chart = Chart::new("False suspicions per node and hour on a healthy ring", "message loss (%)", "suspicions / node / hour", Kind::Lines);
    for tradeoff in tradeoffs {
        let points = tradeoff.false_suspicions.iter().map(|&(loss, _, per_hour)| (loss * 100.0, per_hour)).collect();
        chart = chart.series(&format!("failure timeout {} ms", thousands(tradeoff.failure_timeout as usize)), points);
    }
    chart
}
