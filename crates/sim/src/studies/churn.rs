//! Study `churn`: nodes join and fail as a Poisson process (Stoica et al. 2001 §6.5; Zave 2017
//! for the invariants) while every node runs its engine's maintenance and lookups arrive at
//! random times. Reported per period: failed lookups (the engine's, which route around dead
//! hops and retry until their deadline), wrong owners, joins that did not complete, and the
//! ring invariants after the period.

use super::Params;
use crate::net::Sim;
use crate::report::{fixed, pct, thousands, Output, Table};
use crate::ring::{self, Health};
use crate::stats::{exponential, Outcome, Tally};
use crate::svg::{self, Chart, Kind};
use chord::engine::{OpId, OpOutput, UserOp};
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
    lookups: Tally,
    health: Health,
}

enum Change {
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

/// Operations started in one period and not yet finished.
#[derive(Default)]
struct InFlight {
    joins: Vec<(Id, OpId, usize)>,
    lookups: Vec<(OpId, Id, usize)>,
}

fn simulate(n: usize, rate: f64, periods: usize, params: &Params) -> Vec<Period> {
    let seed = params.seed ^ rate.to_bits();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sim = ring::build_ideal(&ring::random_ids(&mut rng, n), params.net_config(seed, params.successor_list_len));
    let round = sim.config.round_ms();
    sim.run_for(2 * round);
    let start = sim.now;
    let events_per_period = rate * n as f64;
    let mut next_event = exponential(&mut rng, events_per_period);
    let mut out = vec![Period::default(); periods];
    let mut in_flight = InFlight::default();
    for p in 0..periods {
        let mut agenda: Vec<(f64, Change)> = Vec::new();
        while next_event < (p + 1) as f64 {
            agenda.push((next_event, if rng.gen_bool(0.5) { Change::Join } else { Change::Fail }));
            next_event += exponential(&mut rng, events_per_period);
        }
        for _ in 0..params.lookups / LOOKUP_DIVISOR {
            agenda.push((p as f64 + rng.gen::<f64>(), Change::Lookup));
        }
        agenda.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (at, change) in agenda {
            sim.run_until(start + (at * round as f64) as u64);
            settle(&mut sim, &mut in_flight, &mut out);
            apply(&mut sim, &mut rng, change, p, &mut in_flight, &mut out[p]);
        }
        sim.run_until(start + (p as u64 + 1) * round);
        settle(&mut sim, &mut in_flight, &mut out);
        out[p].health = ring::health(&sim);
    }
    out
}

fn apply(sim: &mut Sim, rng: &mut StdRng, change: Change, p: usize, in_flight: &mut InFlight, period: &mut Period) {
    match change {
        Change::Join => {
            period.joins += 1;
            match ring::start_join(sim) {
                Some((id, op)) => in_flight.joins.push((id, op, p)),
                None => period.aborted += 1,
            }
        }
        Change::Fail => {
            if sim.live_count() > 1 {
                let victim = sim.random_live().expect("live");
                sim.crash(victim);
                period.failures += 1;
            }
        }
        Change::Lookup => {
            let origin = sim.random_live().expect("live");
            let key: [u8; 16] = rng.gen();
            if let Some(op) = sim.start_op(origin, UserOp::Lookup(key.to_vec())) {
                in_flight.lookups.push((op, Id::of_key(&key), p));
            }
        }
    }
}

/// Judge the operations that finished, each in the period it started in.
fn settle(sim: &mut Sim, in_flight: &mut InFlight, out: &mut [Period]) {
    in_flight.joins.retain(|&(id, op, p)| match sim.take_result(op) {
        Some(result) => {
            if result.is_err() || sim.routing(id).is_none_or(|r| r.is_alone()) {
                sim.crash(id);
                out[p].aborted += 1;
            }
            false
        }
        None => true,
    });
    in_flight.lookups.retain(|&(op, position, p)| match sim.take_result(op) {
        Some(result) => {
            let outcome = match result {
                Ok(OpOutput::Lookup(info)) if !sim.is_alive(info.owner.id) => Outcome::DeadOwner,
                Ok(OpOutput::Lookup(info)) if Some(info.owner.id) != sim.owner_of(position) => Outcome::WrongOwner,
                Ok(OpOutput::Lookup(info)) => Outcome::Correct { hops: info.hops },
                _ => Outcome::Failed,
            };
            out[p].lookups.add(outcome);
            false
        }
        None => true,
    });
}

/// Sum of a run of periods, with invariant statistics.
struct Block {
    joins: usize,
    failures: usize,
    aborted: usize,
    lookups: Tally,
    violated: usize,
    worst: usize,
    max_cycles: usize,
    max_off_cycle: usize,
    correct: usize,
    live: usize,
}

fn block(periods: &[Period]) -> Block {
    let mut b = Block { joins: 0, failures: 0, aborted: 0, lookups: Tally::default(), violated: 0, worst: 0, max_cycles: 0, max_off_cycle: 0, correct: 0, live: 0 };
    for p in periods {
        b.joins += p.joins;
        b.failures += p.failures;
        b.aborted += p.aborted;
        b.lookups.merge(&p.lookups);
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
        pct(b.lookups.failed_pct()),
        pct(b.lookups.wrong_pct()),
        fixed(mean_hops(&b.lookups), 2),
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

const BLOCK_HEADERS: [&str; 12] = [
    "joins", "failures", "joins not done", "live at end", "lookups failed", "wrong owner", "mean hops", "periods with invariant violated", "worst violations", "max cycles", "max nodes off the cycle", "periods ending correct",
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
        "## Study `churn`: Poisson joins and failures on {} nodes (seed {}, successor lists of {})\n\nEach node runs its engine's maintenance once per stabilization period (250 ms, with the engine's jitter); joins and failures (half each) arrive as a Poisson process; {} lookups per period at random times, each judged when it finishes (failed = gave up, reached a dead owner or a wrong one). Invariant = every live node has a live successor and first live successors form one ordered cycle through all live nodes (a joiner not yet linked in counts as a violation and as a node off the cycle).\n\n### Over time at {:.1}% of the nodes changing per period\n\n{}\n### By churn rate ({} periods each)\n\n{}",
        thousands(n), params.seed, params.successor_list_len, thousands(params.lookups / LOOKUP_DIVISOR), rate * 100.0, time.to_markdown(), main.len(), sweep.to_markdown()
    );
    Output { study: "churn", markdown, svg: chart(rate, main, runs), failed: Vec::new() }
}

fn chart(rate: f64, main: &[Period], runs: &[(f64, Vec<Period>)]) -> String {
    let over_time = |f: &dyn Fn(&Period) -> f64| main.iter().enumerate().map(|(i, p)| ((i + 1) as f64, f(p))).collect::<Vec<_>>();
    let lookups = Chart::new(&format!("Failed lookups, {:.1}% churn per period", rate * 100.0), "stabilization period", "% of lookups", Kind::Lines)
        .series("failed", over_time(&|p| p.lookups.failed_pct()))
        .series("wrong owner", over_time(&|p| p.lookups.wrong_pct()));
    let invariants = Chart::new("Ring invariant after each period", "stabilization period", "live nodes", Kind::Lines)
        .series("violating nodes", over_time(&|p| p.health.violations() as f64))
        .series("off the cycle", over_time(&|p| p.health.off_cycle as f64));
    let mut by_rate = Chart::new("Failed lookups by churn rate", "nodes changing per period", "% of lookups", Kind::Bars);
    by_rate.x_categories = runs.iter().map(|(r, _)| format!("{:.1}%", r * 100.0)).collect();
    let totals: Vec<Block> = runs.iter().map(|(_, p)| block(p)).collect();
    by_rate = by_rate
        .series("failed", totals.iter().enumerate().map(|(i, b)| (i as f64, b.lookups.failed_pct())).collect())
        .series("wrong owner", totals.iter().enumerate().map(|(i, b)| (i as f64, b.lookups.wrong_pct())).collect());
    svg::render(&[lookups, invariants, by_rate])
}
