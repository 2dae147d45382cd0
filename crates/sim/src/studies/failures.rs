//! Study `failures`: a share x of the nodes fails at once (Stoica et al. 2001 §6.4) on rings
//! whose successor lists hold r nodes. Measured: failed lookups right after the failure (the
//! engine's lookups, which route around dead hops and retry until their deadline), keys lost
//! (all r replicas — owner and r−1 successors at the time of failure — died; expected share
//! x^r), stabilization rounds until the ring is correct again (Zave 2017: every live node's
//! successor and predecessor are its live neighbours), invariant violations on the way, and
//! failed lookups after that.

use super::{measure_lookups, Params};
use crate::net::Sim;
use crate::report::{pct, thousands, Output, Table};
use crate::ring::{self, Health, Snapshot};
use crate::stats::{percent, Tally};
use crate::svg::{self, Chart, Kind};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Ring size: 5,000 nodes (quick: 1,000). Every node runs the engine's real maintenance each
/// round, so 9 cases × up to 100 rounds at 10,000 nodes would take most of an hour.
pub const DEFAULT_SIZE: usize = 5_000;
const QUICK_SIZE: usize = 1_000;
/// Shares of nodes failing at once, from the issue.
pub const FRACTIONS: [f64; 3] = [0.10, 0.25, 0.50];
/// Successor-list lengths from the issue: 3, 8 and log2 N (added per ring size).
const FIXED_LIST_LENGTHS: [usize; 2] = [3, 8];

struct Row {
    r: usize,
    x: f64,
    killed: usize,
    at_failure: Health,
    before: Tally,
    keys_lost: usize,
    keys: usize,
    rounds: Option<usize>,
    clean_rounds: Option<usize>,
    worst_violations: usize,
    violating_rounds: usize,
    after: Tally,
}

pub fn list_lengths(n: usize) -> Vec<usize> {
    let mut lengths = FIXED_LIST_LENGTHS.to_vec();
    lengths.push((n as f64).log2().round() as usize);
    lengths.sort_unstable();
    lengths.dedup();
    lengths
}

pub fn run(params: &Params) -> Output {
    let n = params.size_or(DEFAULT_SIZE, QUICK_SIZE);
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(params.seed), n);
    let mut rows = Vec::new();
    for (i, r) in list_lengths(n).into_iter().enumerate() {
        for (j, &x) in FRACTIONS.iter().enumerate() {
            let mut rng = StdRng::seed_from_u64(params.seed.wrapping_add(1 + (i * FRACTIONS.len() + j) as u64));
            rows.push(run_case(&ids, r, x, params, &mut rng));
        }
    }
    output(n, &rows, params)
}

fn run_case(ids: &[Id], r: usize, x: f64, params: &Params, rng: &mut StdRng) -> Row {
    let mut sim = ring::build_ideal(ids, params.net_config(rng.gen(), r));
    sim.run_for(2 * sim.config.round_ms()); // every node past its first, jittered, round
    let snapshot = ring::snapshot(&sim);
    let dead = choose_victims(rng, snapshot.len(), x);
    let keys_lost = count_lost_keys(&snapshot, &dead, r, params.keys, rng);
    let victims: Vec<Id> = dead.iter().enumerate().filter(|(_, &d)| d).map(|(index, _)| snapshot.ids()[index]).collect();
    sim.crash_many(&victims);
    let at_failure = ring::health(&sim);
    let before = measure_lookups(&mut sim, params.lookups);
    let recovery = run_until_recovered(&mut sim, params);
    Row {
        r,
        x,
        killed: dead.iter().filter(|&&d| d).count(),
        at_failure,
        before,
        keys_lost,
        keys: params.keys,
        rounds: recovery.correct_at,
        clean_rounds: recovery.clean_at,
        worst_violations: recovery.worst,
        violating_rounds: recovery.violating,
        after: recovery.after,
    }
}

/// Exactly ⌊x·n⌋ distinct victims, as a dead flag per ring index.
fn choose_victims(rng: &mut impl Rng, n: usize, x: f64) -> Vec<bool> {
    let mut dead = vec![false; n];
    for index in rand::seq::index::sample(rng, n, (x * n as f64) as usize) {
        dead[index] = true;
    }
    dead
}

/// Random keys whose owner and its r − 1 successors all died.
fn count_lost_keys(snapshot: &Snapshot, dead: &[bool], r: usize, keys: usize, rng: &mut impl Rng) -> usize {
    let n = snapshot.len();
    (0..keys)
        .filter(|_| {
            let owner = snapshot.owner_index(Id(rng.gen()));
            (0..r.min(n)).all(|k| dead[(owner + k) % n])
        })
        .count()
}

/// What happened while stabilizing after the failure.
struct Recovery {
    correct_at: Option<usize>,
    clean_at: Option<usize>,
    worst: usize,
    violating: usize,
    after: Tally,
}

/// Run the engines' own maintenance, round by round, until the ring is correct (lookups are measured then) and until no
/// finger points at a dead node, at most `max_rounds`; tracks invariant violations.
fn run_until_recovered(sim: &mut Sim, params: &Params) -> Recovery {
    let mut recovery = Recovery { correct_at: None, clean_at: None, worst: 0, violating: 0, after: Default::default() };
    let round_ms = sim.config.round_ms();
    for round in 1..=params.max_rounds {
        sim.run_for(round_ms);
        let health = ring::health(sim);
        recovery.worst = recovery.worst.max(health.violations());
        recovery.violating += usize::from(!health.invariant_holds());
        if recovery.correct_at.is_none() && health.correct() {
            recovery.correct_at = Some(round);
            recovery.after = measure_lookups(sim, params.lookups);
        }
        if recovery.correct_at.is_some() && ring::stale_finger_nodes(sim) == 0 {
            recovery.clean_at = Some(round);
            break;
        }
    }
    recovery
}

fn rounds(value: Option<usize>, max_rounds: usize) -> String {
    value.map_or(format!("> {max_rounds}"), |r| r.to_string())
}

fn output(n: usize, rows: &[Row], params: &Params) -> Output {
    let mut table = Table::new(&[
        "r", "failed", "nodes w/o live successor", "lookups failed right after", "wrong owner", "keys lost", "expected x^r", "rounds to correct ring", "worst violations (rounds)", "lookups failed then", "rounds until no dead fingers",
    ]);
    for row in rows {
        table.row(vec![
            row.r.to_string(),
            format!("{:.0}% ({})", row.x * 100.0, thousands(row.killed)),
            thousands(row.at_failure.no_live_successor),
            pct(row.before.failed_pct()),
            pct(row.before.wrong_pct()),
            format!("{} ({})", pct(percent(row.keys_lost, row.keys)), row.keys_lost),
            pct(100.0 * row.x.powi(row.r as i32)),
            rounds(row.rounds, params.max_rounds),
            format!("{} ({})", thousands(row.worst_violations), row.violating_rounds),
            pct(row.after.failed_pct()),
            rounds(row.clean_rounds, params.max_rounds),
        ]);
    }
    let markdown = format!(
        "## Study `failures`: simultaneous failures on {} nodes (seed {})\n\n{} lookups (the engine's, which forget a dead hop, ask the node that pointed at it again with the dead ones excluded, and retry until their 15 s deadline) right after the failure and once the ring is correct again, while maintenance runs; {} random keys, each replicated on its owner and r−1 successors. \"Worst violations\": most live nodes breaking the ring invariant after a round (rounds with any violation in brackets). Wrong-owner and dead-owner answers count as failed. A round is one stabilize period (250 ms).\n\n{}",
        thousands(n), params.seed, thousands(params.lookups), thousands(params.keys), table.to_markdown()
    );
    Output { study: "failures", markdown, svg: chart(rows, params.max_rounds), failed: Vec::new() }
}

fn chart(rows: &[Row], max_rounds: usize) -> String {
    let categories: Vec<String> = FRACTIONS.iter().map(|x| format!("{:.0}% fail", x * 100.0)).collect();
    let panel = |title: &str, y: &str, value: &dyn Fn(&Row) -> f64| {
        let mut chart = Chart::new(title, "nodes failed at once", y, Kind::Bars);
        chart.x_categories = categories.clone();
        let mut lengths: Vec<usize> = rows.iter().map(|r| r.r).collect();
        lengths.dedup();
        for r in lengths {
            let points = rows.iter().filter(|row| row.r == r).enumerate().map(|(i, row)| (i as f64, value(row))).collect();
            chart = chart.series(&format!("r = {r}"), points);
        }
        chart
    };
    svg::render(&[
        panel("Failed lookups right after the failure", "% failed", &|r| r.before.failed_pct()),
        panel("Keys lost", "% of keys", &|r| percent(r.keys_lost, r.keys)),
        panel("Rounds until the ring is correct", "rounds (capped)", &|r| r.rounds.unwrap_or(max_rounds) as f64),
    ])
}
