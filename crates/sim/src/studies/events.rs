//! Study `events`: what a write costs in messages when ring events go by subscription
//! (docs/PROTOCOL.md §6.3), with 0, 1 and 100 nodes listening for every key. On a settled ring
//! with events on (default 1,000 and 10,000 nodes; `--quick`: 1,000), the listeners subscribe,
//! their subscriptions spread over the finger tables, then writes are made one at a time from
//! random members. Per write it counts every message (requests, answers and one-way messages:
//! routing, replication, events), the events alone, and the changes the listeners heard within
//! 50 ms and 20 s later (each must hear every write once). The subscriptions' own cost is reported apart: `N − 1`
//! messages per listener per 10 s renewal.

use super::Params;
use crate::net::{Counters, NetConfig};
use crate::report::{fixed, thousands, Output, Table};
use crate::ring;
use crate::svg::{render, Chart, Kind};
use chord::engine::UserOp;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

const SIZES: [usize; 2] = [1_000, 10_000];
const QUICK_SIZES: [usize; 1] = [1_000];
const LISTENERS: [usize; 3] = [0, 1, 100];
/// Writes measured per ring and listener count.
const WRITES: usize = 200;

struct Row {
    n: usize,
    listeners: usize,
    writes: usize,
    failed: usize,
    counted: Counters,
    /// Changes heard by the end of a 20 s quiet after the last write (events held while their
    /// owner's membership is checked arrive late, never lost).
    heard_later: u64,
    subscription_messages: u64,
}

/// Quiet after the last write before the late count: a listener checks at most 16 unknown
/// owners a second (`verify`), and 200 writes come from up to 200 owners.
const LATE_MS: u64 = 20_000;

impl Row {
    /// Requests other than maintenance in the window: the writes' own (routing hops, the
    /// write, its replication) and background anti-entropy; events not included.
    fn write_requests(&self) -> u64 {
        self.counted.data
    }
}

pub fn run(params: &Params) -> Output {
    let sizes = params.sizes_or(&SIZES, &QUICK_SIZES);
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for &n in &sizes {
        for &listeners in &LISTENERS {
            let row = run_one(n, listeners, params.seed);
            let expected = (row.writes - row.failed) as u64 * listeners as u64;
            // Every change heard in the end (a listener that crashed or a held event over the
            // 256 bound aside: at most a few in a thousand).
            if row.failed > 0 || (row.heard_later as f64) < 0.99 * expected as f64 {
                failed.push(format!(
                    "{n} nodes, {listeners} listeners: {} writes failed, {} changes heard of {expected} ({} within 50 ms); replay: npm run sim -- events --nodes {n} --seed {}",
                    row.failed, row.heard_later, row.counted.heard, params.seed
                ));
            }
            rows.push(row);
        }
    }
    output(&rows, failed, params)
}

fn run_one(n: usize, listeners: usize, seed: u64) -> Row {
    let mut config = NetConfig::new(seed);
    config.chord.events = true;
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(seed), n);
    let mut sim = ring::build_ideal(&ids, config);
    let round = sim.config.round_ms();
    sim.run_for(8 * round);
    let mut rng = StdRng::seed_from_u64(seed ^ 0xe7e7);
    let before_subscribing = sim.counters;
    for &id in ids.choose_multiple(&mut rng, listeners) {
        sim.watch(id, vec![Vec::new()]);
    }
    // Long enough for every subscription to reach every member (one broadcast), shorter than
    // a renewal (10 s), so the write window below carries none.
    sim.run_for(2_000);
    let subscription_messages = sim.counters.since(&before_subscribing).subscribes;
    let before = sim.counters;
    let mut failed = 0;
    for i in 0..WRITES {
        let writer = *ids.choose(&mut rng).expect("a ring");
        let op = sim.start_op(writer, UserOp::Set(format!("event-{i}").into_bytes(), b"v".to_vec()));
        let done = op.and_then(|op| sim.run_op(op, 15_000));
        if !matches!(done, Some(Ok(_))) {
            failed += 1;
        }
    }
    // Events leave before the write is answered; let the last ones arrive.
    sim.run_for(50);
    let counted = sim.counters.since(&before);
    sim.run_for(LATE_MS);
    let heard_later = sim.counters.since(&before).heard;
    Row { n, listeners, writes: WRITES, failed, counted, heard_later, subscription_messages }
}

fn output(rows: &[Row], failed: Vec<String>, params: &Params) -> Output {
    let mut table = Table::new(&[
        "N",
        "listeners (every key)",
        "writes",
        "other requests per write (routing, write, replication, background anti-entropy)",
        "events per write",
        "changes heard per write within 50 ms",
        "changes heard per write in the end (20 s)",
        "subscribing: messages per listener",
    ]);
    for row in rows {
        let per_write = |count: u64| count as f64 / row.writes as f64;
        table.row(vec![
            thousands(row.n),
            row.listeners.to_string(),
            format!("{} ({} failed)", row.writes, row.failed),
            fixed(per_write(row.write_requests()), 2),
            fixed(per_write(row.counted.events), 2),
            fixed(per_write(row.counted.heard), 2),
            fixed(per_write(row.heard_later), 2),
            if row.listeners == 0 { "—".into() } else { fixed(row.subscription_messages as f64 / row.listeners as f64, 0) },
        ]);
    }
    let markdown = format!(
        "## Study `events`: messages per write with ring events by subscription (seed {})\n\nA settled ideal ring with events on; 0, 1 or 100 random members listen for every key (as `on('add')` does), their subscriptions spread for 2 s, then {WRITES} sets one at a time from random members. Per write: the requests other than maintenance in the window (the sets' relayed routing hops, the write at its owner, its replication to `r − 1` successors — and the anti-entropy every node runs meanwhile, which this simulator does not tell apart; stabilize, notify, pings and lookups are left out), and the events the owners sent (one per listener expected). Every listener should hear every write once: within 50 ms of the last write when it knows the owner as a member, else once it has checked that the owner is one (at most 16 checks a second, so a listener hearing from up to 200 owners it never met catches up within seconds): the count 20 s later. A subscription costs one broadcast over the finger tables (about `N − 1` messages) when made and at each 10 s renewal, reported apart. Before subscriptions, every write went to all `N − 1` members.\n\n{}",
        params.seed,
        table.to_markdown()
    );
    let sizes = super::distinct(rows.iter().map(|r| r.n));
    let chart = sizes.iter().fold(Chart::new("Requests and events per write by listeners", "listeners", "messages per write", Kind::Lines), |chart, &n| {
        let points = rows.iter().filter(|r| r.n == n).map(|r| (r.listeners as f64, (r.write_requests() + r.counted.events) as f64 / r.writes as f64)).collect();
        chart.series(&format!("N = {}", thousands(n)), points)
    });
    Output { study: "events", markdown, svg: render(&[chart]), failed }
}
