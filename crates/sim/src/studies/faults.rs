//! Study `faults`: the engine's machines under network faults, deterministic by seed. Each
//! scenario runs a ring of real engines with a write workload through three phases — warm-up,
//! the fault, then recovery with the network whole again — and checks after every round:
//!
//! - the ring invariants of Zave 2017: one ordered cycle through every live member, no
//!   appendages, every position owned by exactly one live member (`ring::Health::correct`);
//! - the data invariant: every acknowledged write of the workload has `r` live copies on the
//!   members that should hold it (`workload::DataCheck`), which must hold once repair has run.
//!
//! A scenario passes when both hold at the end of recovery. A failure names its scenario and
//! seed, and `npm run sim -- faults --scenario NAME --seed N --seeds 1` replays it exactly.
//! Where the behaviour needed does not exist yet (rings merging after a partition heals), the
//! scenario fails: the invariants are not weakened to make it pass.

use super::Params;
use crate::net::{NetConfig, Sim};
use crate::report::{thousands, Output, Table};
use crate::ring::{self, Health};
use crate::svg::{self, Chart, Kind};
use crate::workload::{DataCheck, Workload, WorkloadCounts};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::VecDeque;

/// Ring size (quick: 300).
pub const DEFAULT_SIZE: usize = 1_000;
const QUICK_SIZE: usize = 300;
/// Rounds (stabilize periods of 250 ms) of warm-up and of recovery; each scenario sets the
/// length of its fault.
const WARMUP_ROUNDS: usize = 8;
const RECOVERY_ROUNDS: usize = 60;
/// The workload keeps writing this many rounds into recovery, then stops so repair can finish.
const WRITES_INTO_RECOVERY: usize = 20;
/// Writes started per round, and the key space they draw from.
const WRITES_PER_ROUND: usize = 20;
const KEYS: usize = 1_000;
/// A crashed node comes back (empty, knowing one live member) after this many rounds.
const RESTART_AFTER: usize = 10;

/// A fault and its strength.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Fault {
    /// Nodes split at random into `groups` groups that cannot reach each other, healed when
    /// the fault phase ends.
    Partition { groups: u32 },
    /// This share of all messages is lost.
    Loss(f64),
    /// This share of the nodes crashes, spread over the fault phase, each restarting later.
    Crashes(f64),
    /// Every node's wall clock is off by up to ± this many ms, for the whole run.
    Skew(i64),
}

/// A named fault and how many rounds it lasts.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub fault: Fault,
    pub rounds: usize,
}

/// The scenarios: a 50/50 partition healed after 30 rounds (7.5 s) and one healed after 120
/// rounds (30 s, as long as the six-host test's cut: long enough for each side to time out
/// every link across and settle into a ring of its own), 5% message loss, 20% crashes with
/// restarts, ±2 s clock skew.
pub const SCENARIOS: [Scenario; 5] = [
    Scenario { name: "partition-2", fault: Fault::Partition { groups: 2 }, rounds: 30 },
    Scenario { name: "partition-2-long", fault: Fault::Partition { groups: 2 }, rounds: 120 },
    Scenario { name: "loss-5pct", fault: Fault::Loss(0.05), rounds: 30 },
    Scenario { name: "crash-20pct", fault: Fault::Crashes(0.20), rounds: 30 },
    Scenario { name: "skew-2s", fault: Fault::Skew(2_000), rounds: 30 },
];

/// What one scenario run showed.
pub struct Run {
    pub scenario: &'static str,
    /// Rounds the fault lasted.
    pub fault_rounds: usize,
    pub seed: u64,
    pub nodes: usize,
    /// Health after every round.
    pub health: Vec<Health>,
    /// Under-replicated keys after every round.
    pub under_replicated: Vec<usize>,
    pub workload: WorkloadCounts,
    pub data: DataCheck,
    pub end: Health,
}

impl Run {
    pub fn passed(&self) -> bool {
        self.end.correct() && self.data.holds()
    }

    /// Rounds of recovery until the ring was correct and stayed so to the end (0: it never
    /// broke); `None` when it is not correct at the end.
    pub fn rounds_to_correct(&self) -> Option<usize> {
        self.settled_after(self.health.iter().map(|h| h.correct()))
    }

    /// Rounds of recovery until every acknowledged key had its r copies and kept them
    /// (writes stop 20 rounds into recovery); `None` when not at the end.
    pub fn rounds_to_data(&self) -> Option<usize> {
        self.settled_after(self.under_replicated.iter().map(|u| *u == 0))
    }

    fn settled_after(&self, good: impl DoubleEndedIterator<Item = bool> + ExactSizeIterator) -> Option<usize> {
        let fault_end = WARMUP_ROUNDS + self.fault_rounds;
        let rounds = good.len();
        match good.rev().position(|ok| !ok).map(|from_end| rounds - 1 - from_end) {
            None => Some(0),
            Some(last_bad) if last_bad + 1 >= rounds => None,
            Some(last_bad) => Some((last_bad + 1).saturating_sub(fault_end)),
        }
    }

    fn worst_during_fault(&self) -> usize {
        self.health[WARMUP_ROUNDS..WARMUP_ROUNDS + self.fault_rounds].iter().map(|h| h.violations()).max().unwrap_or(0)
    }

    /// The command that replays this run.
    pub fn replay(&self) -> String {
        format!("npm run sim -- faults --scenario {} --seed {} --seeds 1 --nodes {}", self.scenario, self.seed, self.nodes)
    }

    fn scenario_named(name: &str) -> Option<Scenario> {
        SCENARIOS.iter().chain(MERGE_SCENARIOS.iter()).copied().find(|s| s.name == name)
    }
}

pub fn run(params: &Params) -> Output {
    let n = params.size_or(DEFAULT_SIZE, QUICK_SIZE);
    let scenarios: Vec<Scenario> = match params.scenario.as_deref() {
        Some(name) => Run::scenario_named(name).into_iter().collect(),
        None => SCENARIOS.to_vec(),
    };
    let mut runs = Vec::new();
    for scenario in scenarios {
        for k in 0..params.seeds as u64 {
            runs.push(run_scenario(scenario, n, params.seed + k));
        }
    }
    let mut out = output(n, &runs);
    if params.scenario.is_none() {
        // The merge and detector tables (the partition-healing issue's figures).
        let merges = merge_runs(params);
        let detection = super::detector::run(params);
        out.markdown += &merge_table(&merges);
        out.markdown += &detection.markdown;
        out.failed.extend(merges.iter().filter(|r| !r.passed()).map(|r| format!("faults: {} ({} nodes) seed {} failed; replay: {}", r.scenario, r.nodes, r.seed, r.replay())));
        out.svg = svg::render(&[charts(&runs).0, charts(&runs).1, merge_chart(&merges), detection.chart]);
    }
    out
}

/// Ring sizes of the merge table (quick: 300 only).
const MERGE_SIZES: [usize; 2] = [1_000, 10_000];
/// A partition of the merge table lasts 40 rounds (10 s: each side detects its losses in
/// about 2 s and settles into a ring of its own well before the heal).
const MERGE_FAULT_ROUNDS: usize = 40;

/// 2, 3 and 4 rings at each size: how long until one ring, and until every acknowledged write
/// is back on its r copies.
fn merge_runs(params: &Params) -> Vec<Run> {
    let sizes: Vec<usize> = if params.quick { vec![QUICK_SIZE] } else { MERGE_SIZES.to_vec() };
    let mut runs = Vec::new();
    for &n in &sizes {
        for (groups, name) in [(2, "merge-2"), (3, "merge-3"), (4, "merge-4")] {
            let scenario = Scenario { name, fault: Fault::Partition { groups }, rounds: MERGE_FAULT_ROUNDS };
            runs.push(run_scenario(scenario, n, params.seed));
        }
    }
    runs
}

fn merge_table(runs: &[Run]) -> String {
    let mut table = Table::new(&["nodes", "rings", "rounds to one correct ring after the heal", "rounds to every acknowledged write on r copies", "writes acked / issued (failed)", "ring members out of order at worst"]);
    for run in runs {
        let rings = match SCENARIOS.iter().chain(MERGE_SCENARIOS.iter()).find(|s| s.name == run.scenario).map(|s| s.fault) {
            Some(Fault::Partition { groups }) => groups,
            _ => 0,
        };
        table.row(vec![
            thousands(run.nodes),
            rings.to_string(),
            run.rounds_to_correct().map_or(format!("never (> {RECOVERY_ROUNDS})"), |r| r.to_string()),
            run.rounds_to_data().map_or(format!("never (> {RECOVERY_ROUNDS})"), |r| r.to_string()),
            format!("{} / {} ({})", thousands(run.workload.acked), thousands(run.workload.issued), thousands(run.workload.failed)),
            thousands(run.health.iter().map(|h| h.violations()).max().unwrap_or(0)),
        ]);
    }
    format!(
        "\n### Merging 2, 3 and 4 rings (seed {})\n\nNodes split at random into 2, 3 or 4 groups for {MERGE_FAULT_ROUNDS} rounds (10 s), the write workload running on every side, then the network heals. A round is 250 ms.\n\n{}",
        runs.first().map_or(0, |r| r.seed),
        table.to_markdown()
    )
}

/// The merge scenarios, for looking up their fault by name.
const MERGE_SCENARIOS: [Scenario; 3] = [
    Scenario { name: "merge-2", fault: Fault::Partition { groups: 2 }, rounds: MERGE_FAULT_ROUNDS },
    Scenario { name: "merge-3", fault: Fault::Partition { groups: 3 }, rounds: MERGE_FAULT_ROUNDS },
    Scenario { name: "merge-4", fault: Fault::Partition { groups: 4 }, rounds: MERGE_FAULT_ROUNDS },
];

fn merge_chart(runs: &[Run]) -> Chart {
    let mut chart = Chart::new("Members out of order while 2-4 rings split and merge", "round", "live members", Kind::Lines);
    for run in runs {
        let points = run.health.iter().enumerate().map(|(i, h)| ((i + 1) as f64, h.violations() as f64)).collect();
        chart = chart.series(&format!("{} rings, {} nodes", run.scenario.trim_start_matches("merge-"), thousands(run.nodes)), points);
    }
    chart
}

/// One scenario, one seed.
pub fn run_scenario(scenario: Scenario, n: usize, seed: u64) -> Run {
    let Scenario { name, fault, rounds: fault_rounds } = scenario;
    let config = NetConfig::new(seed);
    let replicas = config.chord.replicas;
    let round = config.round_ms();
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(seed), n);
    let mut sim = ring::build_ideal(&ids, config);
    if let Fault::Skew(max) = fault {
        for &id in &ids {
            let skew = sim.rng().gen_range(-max..=max);
            sim.set_skew(id, skew);
        }
    }
    let mut workload = Workload::new(KEYS);
    let mut run = Run { scenario: name, fault_rounds, seed, nodes: n, health: Vec::new(), under_replicated: Vec::new(), workload: WorkloadCounts::default(), data: DataCheck::default(), end: Health::default() };
    let mut restarts: VecDeque<(usize, Id)> = VecDeque::new();
    let fault_end = WARMUP_ROUNDS + fault_rounds;
    for r in 0..fault_end + RECOVERY_ROUNDS {
        if r == WARMUP_ROUNDS {
            start_fault(&mut sim, fault);
        }
        if r == fault_end {
            end_fault(&mut sim, fault);
        }
        if let (true, Fault::Crashes(share)) = ((WARMUP_ROUNDS..fault_end).contains(&r), fault) {
            crash_some(&mut sim, share / fault_rounds as f64, n, r, &mut restarts);
        }
        while restarts.front().is_some_and(|(at, _)| *at <= r) {
            let (_, id) = restarts.pop_front().expect("checked");
            if let Some(contact) = sim.random_live() {
                sim.restart(id, contact);
            }
        }
        if r < fault_end + WRITES_INTO_RECOVERY {
            workload.issue(&mut sim, WRITES_PER_ROUND);
        }
        sim.run_for(round);
        workload.collect(&mut sim);
        run.health.push(ring::health(&sim));
        run.under_replicated.push(workload.check(&sim, replicas).under_replicated);
    }
    run.workload = workload.counts;
    run.data = workload.check(&sim, replicas);
    run.end = ring::health(&sim);
    // SIM_DEBUG=1: the network's counters, and each member whose successor is not the next
    // live member, with what its true successor thinks (to start a diagnosis from).
    if std::env::var_os("SIM_DEBUG").is_some() {
        eprintln!("counters: {:?}", sim.counters);
        let mut ids: Vec<Id> = sim.live_ids().into_iter().filter(|&id| sim.routing(id).is_some()).collect();
        ids.sort();
        let short = |id: Id| format!("{:08x}", (id.0 >> 96) as u32);
        for (i, &id) in ids.iter().enumerate() {
            let next = ids[(i + 1) % ids.len()];
            let r = sim.routing(id).unwrap();
            if r.successor().id != next {
                let nr = sim.routing(next).unwrap();
                eprintln!(
                    "{} succ {} (true {}: alone {}, its pred {:?}, conns {}); my conns {}, my pred {:?}",
                    short(id), short(r.successor().id), short(next), nr.is_alone(), nr.predecessor().map(|p| short(p.id)), sim.connections(next), sim.connections(id), r.predecessor().map(|p| short(p.id))
                );
                let list = |r: &chord::routing::Routing| r.successors().iter().take(4).map(|n| short(n.id)).collect::<Vec<_>>().join(",");
                let their_pred = sim.routing(r.successor().id).and_then(|s| s.predecessor()).map(|p| short(p.id));
                eprintln!("  my succs [{}]; true's succs [{}]; my succ's pred {:?}; true member {:?}", list(r), list(nr), their_pred, sim.engine(next).map(|e| e.is_member()));

            }
        }
    }
    run
}

fn start_fault(sim: &mut Sim, fault: Fault) {
    match fault {
        Fault::Partition { groups } => {
            for id in sim.all_ids() {
                let group = sim.rng().gen_range(0..groups);
                sim.set_group(id, group);
            }
        }
        Fault::Loss(share) => sim.loss = share,
        Fault::Crashes(_) | Fault::Skew(_) => {}
    }
}

fn end_fault(sim: &mut Sim, fault: Fault) {
    match fault {
        Fault::Partition { .. } => sim.heal(),
        Fault::Loss(_) => sim.loss = 0.0,
        Fault::Crashes(_) | Fault::Skew(_) => {}
    }
}

/// Crash this round's share of the nodes; each restarts `RESTART_AFTER` rounds later.
fn crash_some(sim: &mut Sim, share: f64, n: usize, round: usize, restarts: &mut VecDeque<(usize, Id)>) {
    let per_round = share * n as f64;
    let count = per_round.floor() as usize + usize::from(sim.rng().gen_bool(per_round.fract()));
    for _ in 0..count {
        if let Some(victim) = sim.random_live() {
            sim.crash(victim);
            restarts.push_back((round + RESTART_AFTER, victim));
        }
    }
}

fn output(n: usize, runs: &[Run]) -> Output {
    let mut table = Table::new(&[
        "scenario", "seed", "verdict", "one correct ring at end", "rounds to a correct ring after the fault", "rounds to every write on r copies", "worst violations during the fault", "writes acked / issued (failed)", "keys checked", "under-replicated", "lost", "diverged",
    ]);
    for run in runs {
        table.row(vec![
            run.scenario.to_string(),
            run.seed.to_string(),
            if run.passed() { "pass".into() } else { "**FAIL**".into() },
            format!("{} ({} cycles, {} misordered)", run.end.correct(), run.end.cycles, run.end.misordered),
            run.rounds_to_correct().map_or(format!("never (> {RECOVERY_ROUNDS})"), |r| r.to_string()),
            run.rounds_to_data().map_or(format!("never (> {RECOVERY_ROUNDS})"), |r| r.to_string()),
            thousands(run.worst_during_fault()),
            format!("{} / {} ({})", thousands(run.workload.acked), thousands(run.workload.issued), thousands(run.workload.failed)),
            thousands(run.data.keys),
            thousands(run.data.under_replicated),
            thousands(run.data.lost),
            thousands(run.data.diverged),
        ]);
    }
    let failures: Vec<String> = runs.iter().filter(|r| !r.passed()).map(|r| format!("- `{}` seed {}: replay with `{}`", r.scenario, r.seed, r.replay())).collect();
    let markdown = format!(
        "## Study `faults`: {} engines under network faults\n\nEach run: {} rounds of warm-up, the fault, {} rounds of recovery (a round is one 250 ms stabilize period); {} writes per round (80% sets, 20% deletes over {} keys) from random live members until {} rounds into recovery. Scenarios: `partition-2` and `partition-2-long` (nodes split at random into two groups that cannot reach each other for 30 / 120 rounds, then healed), `loss-5pct` (5% of all messages lost for 30 rounds), `crash-20pct` (20% of the nodes crash over 30 rounds, each restarting empty {} rounds later and rejoining through one member it knows), `skew-2s` (every wall clock off by up to ±2 s for the whole run). After every round: Zave's ring invariants and the data invariant (every acknowledged write on its owner and r − 1 successors). Pass = both hold at the end.\n\n{}\n{}",
        thousands(n),
        WARMUP_ROUNDS,
        RECOVERY_ROUNDS,
        WRITES_PER_ROUND,
        thousands(KEYS),
        WRITES_INTO_RECOVERY,
        RESTART_AFTER,
        table.to_markdown(),
        if failures.is_empty() { "Every run passed.\n".to_string() } else { format!("Failed runs:\n\n{}\n", failures.join("\n")) }
    );
    let failed = runs.iter().filter(|r| !r.passed()).map(|r| format!("faults: {} seed {} failed; replay: {}", r.scenario, r.seed, r.replay())).collect();
    let (violations, data) = charts(runs);
    Output { study: "faults", markdown, svg: svg::render(&[violations, data]), failed }
}

fn charts(runs: &[Run]) -> (Chart, Chart) {
    let mut violations = Chart::new("Members breaking the ring invariant (first seed)", "round", "live members", Kind::Lines);
    let mut data = Chart::new("Acknowledged keys with fewer than r copies (first seed)", "round", "keys", Kind::Lines);
    let mut seen = Vec::new();
    for run in runs {
        if seen.contains(&run.scenario) {
            continue;
        }
        seen.push(run.scenario);
        violations = violations.series(run.scenario, run.health.iter().enumerate().map(|(i, h)| ((i + 1) as f64, h.violations() as f64)).collect());
        data = data.series(run.scenario, run.under_replicated.iter().enumerate().map(|(i, &u)| ((i + 1) as f64, u as f64)).collect());
    }
    (violations, data)
}
