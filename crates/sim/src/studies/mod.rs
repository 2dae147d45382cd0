//! The studies, each run on the engine's own machines over the simulated network: lookup path
//! lengths ([`hops`], cf. Stoica et al. 2001 §6.2), massive simultaneous failures
//! ([`failures`], §6.4), continuous churn ([`churn`], §6.5, with Zave's 2017 invariants checked
//! every period) and network faults with a replicated workload ([`faults`]: partitions, loss,
//! crashes with restarts, clock skew). Each returns a Markdown table and an SVG chart.

pub mod churn;
pub mod detector;
pub mod events;
pub mod failures;
pub mod faults;
pub mod hops;
pub mod load;
pub mod onehop;
pub mod restarts;
pub mod scale;

use crate::net::{NetConfig, Sim};
use crate::report::Output;
use crate::stats::{Outcome, Tally};
use chord::engine::{OpId, OpOutput, UserOp};
use chord::error::Error;
use chord::Id;
use rand::Rng;

/// Successor-list length of the real node with its default 3 replicas:
/// `ChordConfig::successor_list_len` = max(replicas + 1, 4).
pub const NODE_SUCCESSOR_LIST_LEN: usize = 4;

/// Settings shared by the studies (see the CLI's `--help`).
#[derive(Debug, Clone)]
pub struct Params {
    pub seed: u64,
    /// `--nodes`: ring sizes for `hops`; the first one is the ring size of the other studies.
    pub nodes: Option<Vec<usize>>,
    pub lookups: usize,
    pub keys: usize,
    pub periods: usize,
    /// Share of the nodes that join or fail per stabilization period, when fixed by `--rate`.
    pub rate: Option<f64>,
    pub successor_list_len: usize,
    pub max_rounds: usize,
    pub quick: bool,
    /// `faults`: seeds run per scenario, from `seed` up.
    pub seeds: usize,
    /// `faults`: run only this scenario.
    pub scenario: Option<String>,
    /// `scale`: the connection limits to run (default 64 and 16).
    pub max_peers: Option<Vec<usize>>,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            seed: 1,
            nodes: None,
            lookups: 20_000,
            keys: 100_000,
            periods: 200,
            rate: None,
            successor_list_len: NODE_SUCCESSOR_LIST_LEN,
            max_rounds: 100,
            quick: false,
            seeds: 3,
            scenario: None,
            max_peers: None,
        }
    }
}

impl Params {
    /// The node's network settings with this study's seed and successor-list length.
    pub fn net_config(&self, seed: u64, successor_list_len: usize) -> NetConfig {
        let mut config = NetConfig::new(seed);
        config.chord.successor_list = Some(successor_list_len);
        config
    }

    /// The ring sizes of a study that runs several: `--nodes`, else the study's defaults.
    pub fn sizes_or(&self, default: &[usize], quick: &[usize]) -> Vec<usize> {
        match &self.nodes {
            Some(sizes) => sizes.clone(),
            None if self.quick => quick.to_vec(),
            None => default.to_vec(),
        }
    }

    /// The ring size of a one-size study: `--nodes`' first value, else the study's default.
    pub fn size_or(&self, default: usize, quick: usize) -> usize {
        match &self.nodes {
            Some(sizes) if !sizes.is_empty() => sizes[0],
            _ if self.quick => quick,
            _ => default,
        }
    }
}

pub const STUDIES: [&str; 9] = ["hops", "failures", "churn", "faults", "restarts", "scale", "onehop", "events", "load"];

/// Run one study by name.
pub fn run(study: &str, params: &Params) -> Option<Output> {
    match study {
        "hops" => Some(hops::run(params)),
        "failures" => Some(failures::run(params)),
        "churn" => Some(churn::run(params)),
        "faults" => Some(faults::run(params)),
        "restarts" => Some(restarts::run(params)),
        "scale" => Some(scale::run(params)),
        "events" => Some(events::run(params)),
        "onehop" => Some(onehop::run(params)),
        "load" => Some(load::run(params)),
        _ => None,
    }
}

/// Lookups kept in flight at once while measuring.
const LOOKUP_WAVE: usize = 256;
/// Simulated time between checks for finished lookups.
const LOOKUP_STEP_MS: u64 = 5;

/// `count` lookups of random keys from random live members, through their engines
/// (`lookup()`), judged against the oracle as each finishes. Simulated time passes meanwhile,
/// so maintenance runs as it would.
/// `values` without repeats, in the order they first appear (a chart's series).
pub fn distinct(values: impl IntoIterator<Item = usize>) -> Vec<usize> {
    values.into_iter().fold(Vec::new(), |mut seen, value| {
        if !seen.contains(&value) {
            seen.push(value);
        }
        seen
    })
}

pub fn measure_lookups(sim: &mut Sim, count: usize) -> Tally {
    let mut tally = Tally::default();
    let mut pending: Vec<(OpId, Id)> = Vec::new();
    let mut issued = 0;
    while issued < count || !pending.is_empty() {
        while issued < count && pending.len() < LOOKUP_WAVE {
            issued += 1;
            let Some(origin) = sim.random_live() else { break };
            let key: [u8; 16] = sim.rng().gen();
            if let Some(op) = sim.start_op(origin, UserOp::Lookup(key.to_vec())) {
                pending.push((op, Id::of_key(&key)));
            }
        }
        sim.run_for(LOOKUP_STEP_MS);
        pending.retain(|&(op, position)| match sim.take_result(op) {
            Some(result) => {
                tally.add(judge(sim, result, position));
                false
            }
            None => true,
        });
    }
    tally
}

fn judge(sim: &Sim, result: Result<OpOutput, Error>, position: Id) -> Outcome {
    match result {
        Ok(OpOutput::Lookup(info)) if !sim.is_alive(info.owner.id) => Outcome::DeadOwner,
        Ok(OpOutput::Lookup(info)) if Some(info.owner.id) != sim.owner_of(position) => Outcome::WrongOwner,
        Ok(OpOutput::Lookup(info)) => Outcome::Correct { hops: info.hops },
        _ => Outcome::Failed,
    }
}
