//! Reads through restarts: members with data folders are killed and restarted on them while
//! writers write and read back, and every read after an acknowledged write must return that
//! write or a newer one. The simulated counterpart of the chaos test over real processes
//! (`npm run chaos`), with the advantage that a run is a pure function of its seed: a stale
//! read found here replays exactly.
//!
//! The workload: each writer owns a few keys and loops: set one of them (through a random live
//! member) to the next value of its sequence; once acknowledged, get it through another random
//! live member. One writer per key, so the last acknowledged value is the expected one: a read
//! returning an older sequence (or nothing) is **stale**. A set that failed leaves the value
//! ambiguous (it may have been stored): reads may return it, never anything older than the
//! last acknowledged value. The faults: every 15–25 s one or two members (half the time two
//! neighbours by id) crash, each keeping its store, clock and members (`Sim::crash_keeping`),
//! and restart on them 5 s later (`Sim::restart_from_disk`). At the end, once the ring has
//! settled, every key is read through every member: a key whose last acknowledged value does
//! not come back is **lost**.

use crate::net::{NetConfig, Sim};
use crate::report::{thousands, Output, Table};
use crate::svg::{render, Chart, Kind};
use chord::engine::{Millis, OpId, OpOutput, UserOp};
use chord::Id;
use rand::Rng;
use std::collections::HashMap;

use super::Params;

/// Simulated time between checks for finished operations.
const STEP_MS: Millis = 5;
/// How long a crashed member stays down before restarting on its folder.
const DOWN_MS: Millis = 5_000;
/// Pause between kills: uniform in this range.
const KILL_EVERY_MS: (Millis, Millis) = (15_000, 25_000);
/// Share of kills that take two members at once, neighbours by id.
const PAIR_SHARE: f64 = 0.5;
/// Settling time after the writers stop, before the final reads.
const SETTLE_MS: Millis = 30_000;

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub nodes: usize,
    pub writers: usize,
    pub keys_per_writer: usize,
    pub duration_ms: Millis,
}

impl Default for Scenario {
    fn default() -> Scenario {
        Scenario { nodes: 6, writers: 8, keys_per_writer: 4, duration_ms: 480_000 }
    }
}

/// One stale read, with what it takes to understand it.
#[derive(Clone, Debug)]
pub struct StaleRead {
    pub at: Millis,
    pub key: String,
    pub position: Id,
    pub expected: u64,
    pub got: Option<u64>,
    pub read_through: Id,
    pub acked_at: Millis,
    /// Members that crashed or restarted within the 30 s before the read, with when.
    pub recent_faults: Vec<(Millis, &'static str, Id)>,
    /// Every live member when the read came back: its id, predecessor, successor, and the
    /// sequence it holds for the key.
    pub members: Vec<(Id, Option<Id>, Option<Id>, Option<u64>)>,
}

/// What a run found.
#[derive(Clone, Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub kills: usize,
    pub acked_writes: u64,
    pub failed_writes: u64,
    pub reads: u64,
    pub failed_reads: u64,
    pub stale: Vec<StaleRead>,
    pub lost: Vec<String>,
}

enum Step {
    Idle,
    Writing { op: OpId, key: usize, seq: u64 },
    Reading { op: OpId, key: usize, through: Id },
}

struct Writer {
    step: Step,
    /// Per key: the last acknowledged sequence and when it was acknowledged, and the highest
    /// sequence issued (a failed set may still have been stored).
    acked: Vec<(u64, Millis)>,
    issued: Vec<u64>,
}

fn key_name(writer: usize, key: usize) -> String {
    format!("w{writer}-k{key}")
}

fn sequence_of(value: &[u8]) -> Option<u64> {
    std::str::from_utf8(value).ok()?.rsplit(':').next()?.parse().ok()
}

/// Run one seed of `scenario`.
pub fn run_seed(scenario: &Scenario, seed: u64) -> Report {
    let mut config = NetConfig::new(seed);
    config.chord.events = false;
    let ids = crate::ring::random_ids(&mut <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed), scenario.nodes);
    let mut sim = crate::ring::build_ideal(&ids, config);
    let mut report = Report { seed, ..Report::default() };
    let mut writers: Vec<Writer> = (0..scenario.writers)
        .map(|_| Writer { step: Step::Idle, acked: vec![(0, 0); scenario.keys_per_writer], issued: vec![0; scenario.keys_per_writer] })
        .collect();
    let mut faults: Vec<(Millis, &'static str, Id)> = Vec::new();
    let mut restarts: Vec<(Millis, Id)> = Vec::new();
    let mut next_kill = sim.now + sim.rng().gen_range(KILL_EVERY_MS.0..=KILL_EVERY_MS.1);
    let end = sim.now + scenario.duration_ms;
    while sim.now < end {
        if sim.now >= next_kill {
            let victims = choose_victims(&mut sim);
            sim.crash_keeping(&victims);
            for id in victims {
                faults.push((sim.now, "crashed", id));
                restarts.push((sim.now + DOWN_MS, id));
            }
            report.kills += 1;
            next_kill = sim.now + sim.rng().gen_range(KILL_EVERY_MS.0..=KILL_EVERY_MS.1);
        }
        let now = sim.now;
        let due: Vec<Id> = restarts.iter().filter(|(at, _)| *at <= now).map(|(_, id)| *id).collect();
        restarts.retain(|(at, _)| *at > now);
        for id in due {
            sim.restart_from_disk(id);
            faults.push((now, "restarted", id));
        }
        for (index, writer) in writers.iter_mut().enumerate() {
            advance(&mut sim, index, writer, &mut report, &faults);
        }
        sim.run_for(STEP_MS);
    }
    for (_, id) in restarts.drain(..) {
        sim.restart_from_disk(id);
    }
    // Let the writers' last operations finish (not counted beyond their outcome), then settle.
    sim.run_for(SETTLE_MS);
    for (index, writer) in writers.iter_mut().enumerate() {
        finish(&mut sim, index, writer, &mut report, &faults);
    }
    report.lost = final_check(&mut sim, &writers);
    report
}

fn choose_victims(sim: &mut Sim) -> Vec<Id> {
    let live = sim.live_ids();
    if live.len() < 4 {
        return Vec::new();
    }
    let first = sim.rng().gen_range(0..live.len());
    if sim.rng().gen_bool(PAIR_SHARE) {
        vec![live[first], live[(first + 1) % live.len()]]
    } else {
        vec![live[first]]
    }
}

fn random_live_except(sim: &mut Sim, except: Option<Id>) -> Option<Id> {
    for _ in 0..16 {
        let id = sim.random_live()?;
        if Some(id) != except {
            return Some(id);
        }
    }
    sim.random_live()
}

fn advance(sim: &mut Sim, index: usize, writer: &mut Writer, report: &mut Report, faults: &[(Millis, &'static str, Id)]) {
    match std::mem::replace(&mut writer.step, Step::Idle) {
        Step::Idle => {
            let key = sim.rng().gen_range(0..writer.acked.len());
            let seq = writer.issued[key] + 1;
            let Some(through) = sim.random_live() else { return };
            let value = format!("{}:{seq}", key_name(index, key)).into_bytes();
            if let Some(op) = sim.start_op(through, UserOp::Set(key_name(index, key).into_bytes(), value)) {
                writer.issued[key] = seq;
                writer.step = Step::Writing { op, key, seq };
            }
        }
        Step::Writing { op, key, seq } => match sim.take_result(op) {
            None => writer.step = Step::Writing { op, key, seq },
            Some(Ok(_)) => {
                report.acked_writes += 1;
                writer.acked[key] = (seq, sim.now);
                let Some(through) = random_live_except(sim, None) else { return };
                if let Some(op) = sim.start_op(through, UserOp::Get(key_name(index, key).into_bytes())) {
                    writer.step = Step::Reading { op, key, through };
                }
            }
            Some(Err(_)) => report.failed_writes += 1,
        },
        Step::Reading { op, key, through } => match sim.take_result(op) {
            None => writer.step = Step::Reading { op, key, through },
            Some(result) => judge_read(sim, index, key, through, writer, result, report, faults),
        },
    }
}

#[allow(clippy::too_many_arguments)]
fn judge_read(
    sim: &Sim,
    index: usize,
    key: usize,
    through: Id,
    writer: &Writer,
    result: Result<OpOutput, chord::error::Error>,
    report: &mut Report,
    faults: &[(Millis, &'static str, Id)],
) {
    report.reads += 1;
    let got = match result {
        Ok(OpOutput::Value(value)) => value.as_deref().and_then(sequence_of),
        _ => {
            report.failed_reads += 1;
            return;
        }
    };
    let (expected, acked_at) = writer.acked[key];
    if got.unwrap_or(0) < expected {
        let name = key_name(index, key);
        report.stale.push(StaleRead {
            at: sim.now,
            position: Id::of_key(name.as_bytes()),
            key: name,
            expected,
            got,
            read_through: through,
            acked_at,
            recent_faults: faults.iter().filter(|(at, _, _)| *at + 30_000 >= sim.now).cloned().collect(),
            members: sim
                .live_ids()
                .into_iter()
                .map(|id| {
                    let engine = sim.engine(id).expect("live");
                    let ring = engine.ring();
                    let held = engine.local_get(key_name(index, key).as_bytes()).as_deref().and_then(sequence_of);
                    (id, ring.and_then(|r| r.predecessor()).map(|p| p.id), ring.map(|r| r.successor().id), held)
                })
                .collect(),
        });
    }
}

/// Wait for a writer's operation in flight and judge it, as during the run.
fn finish(sim: &mut Sim, index: usize, writer: &mut Writer, report: &mut Report, faults: &[(Millis, &'static str, Id)]) {
    for _ in 0..(SETTLE_MS / STEP_MS) {
        if matches!(writer.step, Step::Idle) {
            return;
        }
        advance(sim, index, writer, report, faults);
        sim.run_for(STEP_MS);
    }
}

/// Read every key through every live member; the keys whose last acknowledged value (or a
/// newer one) does not come back.
fn final_check(sim: &mut Sim, writers: &[Writer]) -> Vec<String> {
    let mut pending: HashMap<OpId, (String, u64)> = HashMap::new();
    for member in sim.live_ids() {
        for (index, writer) in writers.iter().enumerate() {
            for (key, (expected, _)) in writer.acked.iter().enumerate() {
                let name = key_name(index, key);
                if let Some(op) = sim.start_op(member, UserOp::Get(name.clone().into_bytes())) {
                    pending.insert(op, (format!("{name} through {}", member.to_hex()), *expected));
                }
            }
        }
    }
    let mut lost = Vec::new();
    for _ in 0..(SETTLE_MS / STEP_MS) {
        sim.run_for(STEP_MS);
        let done: Vec<OpId> = pending.keys().copied().filter(|op| sim.is_done(*op)).collect();
        for op in done {
            let (what, expected) = pending.remove(&op).expect("listed");
            match sim.take_result(op) {
                Some(Ok(OpOutput::Value(value))) if value.as_deref().and_then(sequence_of).unwrap_or(0) >= expected => {}
                other => lost.push(format!("{what}: expected {expected}, got {other:?}")),
            }
        }
        if pending.is_empty() {
            break;
        }
    }
    lost.extend(pending.into_values().map(|(what, _)| format!("{what}: no answer")));
    lost
}

/// The study: every seed from `params.seed` up (`--seeds`), the ring size from `--nodes`.
pub fn run(params: &Params) -> Output {
    let scenario = Scenario { nodes: params.size_or(6, 6), duration_ms: if params.quick { 120_000 } else { 480_000 }, ..Scenario::default() };
    let mut table = Table::new(&["seed", "kills", "acked writes", "failed writes", "reads", "failed reads", "stale reads", "lost keys"]);
    let mut failed = Vec::new();
    let mut points = Vec::new();
    for seed in params.seed..params.seed + params.seeds as u64 {
        let report = run_seed(&scenario, seed);
        table.row(vec![
            seed.to_string(),
            report.kills.to_string(),
            thousands(report.acked_writes as usize),
            thousands(report.failed_writes as usize),
            thousands(report.reads as usize),
            thousands(report.failed_reads as usize),
            report.stale.len().to_string(),
            report.lost.len().to_string(),
        ]);
        points.push((seed as f64, report.stale.len() as f64));
        if !report.stale.is_empty() || !report.lost.is_empty() {
            let first = report.stale.first().map(|s| format!("{s:?}")).or_else(|| report.lost.first().cloned()).unwrap_or_default();
            failed.push(format!("seed {seed}: {} stale reads, {} keys lost; first: {first}; replay: npm run sim -- restarts --seed {seed} --seeds 1", report.stale.len(), report.lost.len()));
        }
    }
    let markdown = format!(
        "## Study `restarts`: reads through restarts on {} members with data folders\n\n{} writers of {} keys each, {} s per seed; every 15–25 s one or two members (half the time neighbours by id) crash keeping their data and restart on it 5 s later. A read after an acknowledged write must return that write or a newer one (stale otherwise); at the end every key is read through every member (lost when the last acknowledged value does not come back).\n\n{}",
        scenario.nodes,
        scenario.writers,
        scenario.keys_per_writer,
        scenario.duration_ms / 1000,
        table.to_markdown()
    );
    let chart = Chart::new("Stale reads per seed", "seed", "stale reads", Kind::Lines).series("stale reads", points);
    Output { study: "restarts", markdown, svg: render(&[chart]), failed }
}
