//! The studies of issue "simulate the ring at internet scale": lookup path lengths
//! ([`hops`], cf. Stoica et al. 2001 §6.2), massive simultaneous failures ([`failures`], §6.4)
//! and continuous churn ([`churn`], §6.5, with Zave's 2017 invariants checked every period).
//! Each returns a Markdown table and an SVG chart.

pub mod churn;
pub mod failures;
pub mod hops;

use crate::lookup::{lookup, Policy};
use crate::network::Network;
use crate::report::Output;
use crate::stats::Tally;
use chord::Id;
use rand::Rng;

/// Successor-list length of the real node with its default 3 replicas:
/// `ChordConfig::successor_list_len` = max(replicas + 1, 4) (node/chord.rs).
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
        }
    }
}

impl Params {
    /// The ring size of a one-size study: `--nodes`' first value, else the study's default.
    pub fn size_or(&self, default: usize, quick: usize) -> usize {
        match &self.nodes {
            Some(sizes) if !sizes.is_empty() => sizes[0],
            _ if self.quick => quick,
            _ => default,
        }
    }
}

pub const STUDIES: [&str; 3] = ["hops", "failures", "churn"];

/// Run one study by name.
pub fn run(study: &str, params: &Params) -> Option<Output> {
    match study {
        "hops" => Some(hops::run(params)),
        "failures" => Some(failures::run(params)),
        "churn" => Some(churn::run(params)),
        _ => None,
    }
}

/// `count` lookups of random positions from random live nodes.
pub fn measure_lookups(net: &mut Network, rng: &mut impl Rng, count: usize, policy: Policy) -> Tally {
    let mut tally = Tally::default();
    for _ in 0..count {
        let Some(origin) = net.random_live(rng) else { break };
        tally.add(lookup(net, origin, Id(rng.gen()), policy));
    }
    tally
}

/// The same lookups twice: first try (read-only), then with the node's retry policy.
pub fn measure_both(net: &mut Network, rng: &mut impl Rng, count: usize) -> (Tally, Tally) {
    let (mut first, mut retry) = (Tally::default(), Tally::default());
    for _ in 0..count {
        let Some(origin) = net.random_live(rng) else { break };
        let position = Id(rng.gen());
        first.add(lookup(net, origin, position, Policy::FirstTry));
        retry.add(lookup(net, origin, position, Policy::Retry));
    }
    (first, retry)
}
