//! Study `churn`: nodes join and fail as a Poisson process (Stoica et al. 2001 §6.5; Zave 2017
//! for the invariants) while every node runs its maintenance once per stabilization period at
//! its own phase and lookups arrive at random times. Reported per period: failed lookups
//! (first try and with the node's retry policy), wrong owners, joins that did not happen, and
//! the ring invariants after the period.

use super::Params;
use crate::lookup::{lookup, Policy};
use crate::maintenance;
use crate::network::Network;
use crate::report::{fixed, pct, thousands, Output, Table};
use crate::ring::{self, Health};
use crate::stats::{exponential, Tally};
use crate::svg::{self, Chart, Kind};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Ring size of the churn study.
pub const DEFAULT_SIZE: usize = 1_000;
const QUICK_SIZE: usize = 500;
/// Default churn: ~1% of the nodes change per stabilization period (the issue), split evenly
/// between joins and failures so the ring keeps its size.
pub const DEFAULT_RATE: f64 = 0.01;
/// Rates compared when `--rate` is not given.
const SWEEP_RATES: [f64; 4] = [0.005, 0.01, 0.02, 0.05];
/// Lookups per period = `--lookups` / 20 (1,000 by default).
const LOOKUP_DIVISOR: usize = 20;
/// Rows of the time table.
const TIME_ROWS: usize = 10;
/// `--quick` shortens the run to 50 periods.
const QUICK_PERIODS: usize = 50;

#[derive(Default, Clone)]
struct Period {
    joins: usize,
    failures: usize,
    aborted: usize,
    first: Tally,
    retry: Tally,
    health: Health,
}

enum Action {
    Maintain(Id),
    Join,
    Fail,
    Lookup,
}

pub fn run(params: &Params) -> Output {
    let n = params.size_or(DEFAULT_SIZE, QUICK_SIZE);
    let periods = if params.quick { params.periods.min(QUICK_PERIODS) } else { params.periods };
    let rates: Vec<f64> = match params.rate {
        Some(rate) => vec![rate],
        None => SWEEP_RATES.to_vec(),
    };
    let main_rate = params.rate.unwrap_or(DEFAULT_RATE);
    let runs: Vec<(f64, Vec<Period>)> = rates.iter().map(|&rate| (rate, simulate(n, rate, periods, params))).collect();
    let main = &runs.iter().find(|(rate, _)| *rate == main_rate).expect("main rate is run").1;
    output(n, main_rate, main, &runs, params)
}

/// Phase of a node's maintenance within each period, from low id bits (independent of the
/// node's ring position, which the high bits decide).
fn phase(id: Id) -> f64 {
    (id.0 as u64) as f64 / 2f64.powi(64)
}

fn simulate(n: usize, rate: f64, periods: usize, params: &Params) -> Vec<Period> {
    let mut rng = StdRng::seed_from_u64(params.seed ^ rate.to_bits());
    let mut net = ring::build_ideal(&ring::random_ids(&mut rng, n), params.successor_list_len);
    let events_per_period = rate * n as f64;
    let mut next_event = exponential(&mut rng, events_per_period);
    let mut out = Vec::with_capacity(periods);
    for p in 0..periods {
        let mut agenda: Vec<(f64, Action)> = net.live_ids().into_iter().map(|id| (phase(id), Action::Maintain(id))).collect();
        while next_event < (p + 1) as f64 {
            let action = if rng.gen_bool(0.5) { Action::Join } else { Action::Fail };
            agenda.push((next_event - p as f64, action));
            next_event += exponential(&mut rng, events_per_period);
        }
        for _ in 0..params.lookups / LOOKUP_DIVISOR {
            agenda.push((rng.gen(), Action::Lookup));
        }
        agenda.sort_by(|a, b| a.0.total_cmp(&b.0));
        out.push(run_period(&mut net, &mut rng, agenda));
    }
    out
}

fn run_period(net: &mut Network, rng: &mut StdRng, agenda: Vec<(f64, Action)>) -> Period {
    let mut period = Period::default();
    for (_, action) in agenda {
        match action {
            Action::Maintain(id) if net.is_alive(id) => maintenance::maintain(net, id),
            Action::Maintain(_) => {}
            Action::Join => {
                period.joins += 1;
                period.aborted += usize::from(!ring::join_random(net, rng));
            }
            Action::Fail => {
                if net.live_count() > 1 {
                    let victim = net.random_live(rng).expect("live");
                    net.kill(victim);
                    period.failures += 1;
                }
            }
            Action::Lookup => {
                let origin = net.random_live(rng).expect("live");
                let position = Id(rng.gen());
                period.first.add(lookup(net, origin, position, Policy::FirstTry));
                period.retry.add(lookup(net, origin, position, Policy::Retry));
            }
        }
    }
    period.health = ring::health(net);
    period
}

/// Sum of a run of periods, with invariant statistics.
struct Block {
    joins: usize,
    failures: usize,
    aborted: usize,
    first: Tally,
    retry: Tally,
    violated: usize,
    worst: usize,
    max_cycles: usize,
    max_off_cycle: usize,
    correct: usize,
    live: usize,
}

fn block(periods: &[Period]) -> Block {
    let mut b = Block { joins: 0, failures: 0, aborted: 0, first: Tally::default(), retry: Tally::default(), violated: 0, worst: 0, max_cycles: 0, max_off_cycle: 0, correct: 0, live: 0 };
    for p in periods {
        b.joins += p.joins;
        b.failures += p.failures;
        b.aborted += p.aborted;
        b.first.merge(&p.first);
        b.retry.merge(&p.retry);
        b.violated += usize::from(!p.health.invariant_holds());
        b.worst = b.worst.max(p.health.violations());
        b.max_cycles = b.max_cycles.max(p.health.cycles);
        b.max_off_cycle = b.max_off_cycle.max(p.health.off_cycle);
        b.correct += usize::from(p.health.correct());
        b.live = p.health.live;
    }
    b
}

fn block_cells(b: &Block, periods: usize) -> Vec<String> {
    vec![
        thousands(b.joins),
        thousands(b.failures),
        thousands(b.aborted),
        thousands(b.live),
        pct(b.first.failed_pct()),
        pct(b.retry.failed_pct()),
        pct(b.retry.wrong_pct()),
        fixed(mean_hops(&b.retry), 2),
        format!("{} / {}", b.violated, periods),
        thousands(b.worst),
        b.max_cycles.to_string(),
        b.max_off_cycle.to_string(),
        format!("{} / {}", b.correct, periods),
    ]
}

fn mean_hops(t: &Tally) -> f64 {
    t.hops.iter().map(|&h| h as f64).sum::<f64>() / t.hops.len().max(1) as f64
}

const BLOCK_HEADERS: [&str; 13] = [
    "joins", "failures", "joins not done", "live at end", "lookups failed, first try", "after retry", "wrong owner", "mean hops", "periods with invariant violated", "worst violations", "max cycles", "max nodes off the cycle", "periods ending correct",
];

fn output(n: usize, rate: f64, main: &[Period], runs: &[(f64, Vec<Period>)], params: &Params) -> Output {
    let mut headers = vec!["periods"];
    headers.extend(BLOCK_HEADERS);
    let mut time = Table::new(&headers);
    let size = main.len().div_ceil(TIME_ROWS).max(1);
    for (k, chunk) in main.chunks(size).enumerate() {
        let mut cells = vec![format!("{}–{}", k * size + 1, k * size + chunk.len())];
        cells.extend(block_cells(&block(chunk), chunk.len()));
        time.row(cells);
    }
    let mut headers = vec!["changes per period"];
    headers.extend(BLOCK_HEADERS);
    let mut sweep = Table::new(&headers);
    for (r, periods) in runs {
        let mut cells = vec![format!("{:.1}% ({:.0} nodes)", r * 100.0, r * n as f64)];
        cells.extend(block_cells(&block(periods), periods.len()));
        sweep.row(cells);
    }
    let markdown = format!(
        "## Study `churn`: Poisson joins and failures on {} nodes (seed {}, successor lists of {})\n\nEach node runs its maintenance once per stabilization period at its own phase; joins and failures (half each) arrive as a Poisson process; {} lookups per period at random times. Invariant = every live node has a live successor and first live successors form one ordered cycle through all live nodes (a joiner not yet linked in counts as a violation and as a node off the cycle).\n\n### Over time at {:.1}% of the nodes changing per period\n\n{}\n### By churn rate ({} periods each)\n\n{}",
        thousands(n), params.seed, params.successor_list_len, thousands(params.lookups / LOOKUP_DIVISOR), rate * 100.0, time.to_markdown(), main.len(), sweep.to_markdown()
    );
    Output { study: "churn", markdown, svg: chart(rate, main, runs) }
}

fn chart(rate: f64, main: &[Period], runs: &[(f64, Vec<Period>)]) -> String {
    let over_time = |f: &dyn Fn(&Period) -> f64| main.iter().enumerate().map(|(i, p)| ((i + 1) as f64, f(p))).collect::<Vec<_>>();
    let lookups = Chart::new(&format!("Failed lookups, {:.1}% churn per period", rate * 100.0), "stabilization period", "% of lookups", Kind::Lines)
        .series("first try", over_time(&|p| p.first.failed_pct()))
        .series("after retry", over_time(&|p| p.retry.failed_pct()));
    let invariants = Chart::new("Ring invariant after each period", "stabilization period", "live nodes", Kind::Lines)
        .series("violating nodes", over_time(&|p| p.health.violations() as f64))
        .series("off the cycle", over_time(&|p| p.health.off_cycle as f64));
    let mut by_rate = Chart::new("Failed lookups by churn rate", "nodes changing per period", "% of lookups", Kind::Bars);
    by_rate.x_categories = runs.iter().map(|(r, _)| format!("{:.1}%", r * 100.0)).collect();
    let totals: Vec<Block> = runs.iter().map(|(_, p)| block(p)).collect();
    by_rate = by_rate
        .series("first try", totals.iter().enumerate().map(|(i, b)| (i as f64, b.first.failed_pct())).collect())
        .series("after retry", totals.iter().enumerate().map(|(i, b)| (i as f64, b.retry.failed_pct())).collect());
    svg::render(&[lookups, invariants, by_rate])
}
