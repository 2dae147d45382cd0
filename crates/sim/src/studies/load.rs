//! Study `load`: how evenly keys spread over physical nodes that each hold `v` ring positions
//! (virtual nodes), the Chord paper's figure (Stoica et al. 2001, §6.1: with one position per
//! node the 99th percentile holds 4.6× the mean at 10⁴ nodes) redone with this ring's ids.
//!
//! Ring math only — no messages: the engine does not hold several positions per node yet, so
//! this measures the candidate scheme before it is built. Each physical node has a random
//! 32-byte public key; position 0 is its id today (`Id::of_public_key`), position `i ≥ 1` is
//! the first 16 bytes of BLAKE3("chordnet-vnode\0" ‖ public key ‖ i as u32 BE) — bound to the
//! key pair as ids are. A node's load is the share of the id space its positions own (the sum
//! of their arcs), as a multiple of the mean 1/N: the share of keys it owns, without the noise
//! of sampling keys. One more node joining takes its share of the keys: with `v` positions
//! about 1/N, spread over the nodes it lands beside.

use super::Params;
use crate::report::{fixed, thousands, Output, Table};
use crate::svg::{render, Chart, Kind};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SIZES: [usize; 4] = [16, 64, 1_000, 10_000];
const QUICK_SIZES: [usize; 3] = [16, 64, 1_000];
const POSITIONS: [u32; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];
/// Rings drawn per (N, v); figures are means over them (the max over them in brackets).
const SEEDS: u64 = 5;

/// Position `i` of the node with `public_key`.
fn position(public_key: &[u8; 32], i: u32) -> Id {
    if i == 0 {
        return Id::of_public_key(public_key);
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"chordnet-vnode\0");
    hasher.update(public_key);
    hasher.update(&i.to_be_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Id(u128::from_be_bytes(first))
}

/// Every position of `nodes` physical nodes, sorted, with the node holding it.
fn ring(keys: &[[u8; 32]], v: u32) -> Vec<(Id, usize)> {
    let mut ring: Vec<(Id, usize)> = keys.iter().enumerate().flat_map(|(node, key)| (0..v).map(move |i| (position(key, i), node))).collect();
    ring.sort_unstable();
    ring
}

/// Each node's share of the id space.
fn shares(ring: &[(Id, usize)], nodes: usize) -> Vec<f64> {
    let mut shares = vec![0f64; nodes];
    for (i, (id, node)) in ring.iter().enumerate() {
        let previous = ring[(i + ring.len() - 1) % ring.len()].0;
        let arc = id.0.wrapping_sub(previous.0);
        shares[*node] += arc as f64 / 2f64.powi(128);
    }
    shares
}

struct Row {
    n: usize,
    v: u32,
    /// Share of the id space (the expected share of keys), max / mean, 99th and 1st
    /// percentile / mean (means over seeds), and the worst ring's max / mean.
    max: f64,
    p99: f64,
    p1: f64,
    worst: f64,
    /// Share of the id space one joining node takes, × (N + 1): 1.0 is the fair 1/(N+1).
    join_moves: f64,
    join_worst: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// (max / mean, 99th percentile / mean, 1st percentile / mean, a joiner's share × (N + 1)).
fn run_one(n: usize, v: u32, seed: u64) -> (f64, f64, f64, f64) {
    let mut rng = StdRng::seed_from_u64(seed ^ ((n as u64) << 16) ^ v as u64);
    let keys: Vec<[u8; 32]> = (0..=n).map(|_| rng.gen()).collect();
    let mut loads: Vec<f64> = shares(&ring(&keys[..n], v), n).into_iter().map(|share| share * n as f64).collect();
    loads.sort_by(f64::total_cmp);
    let joined = shares(&ring(&keys, v), n + 1)[n] * (n + 1) as f64;
    (loads[loads.len() - 1], percentile(&loads, 0.99), percentile(&loads, 0.01), joined)
}

pub fn run(params: &Params) -> Output {
    let sizes = params.sizes_or(&SIZES, &QUICK_SIZES);
    let mut rows = Vec::new();
    for &n in &sizes {
        for &v in &POSITIONS {
            let runs: Vec<(f64, f64, f64, f64)> = (0..SEEDS).map(|k| run_one(n, v, params.seed + k)).collect();
            let mean = |f: fn(&(f64, f64, f64, f64)) -> f64| runs.iter().map(f).sum::<f64>() / runs.len() as f64;
            let worst = |f: fn(&(f64, f64, f64, f64)) -> f64| runs.iter().map(f).fold(0f64, f64::max);
            rows.push(Row { n, v, max: mean(|r| r.0), p99: mean(|r| r.1), p1: mean(|r| r.2), worst: worst(|r| r.0), join_moves: mean(|r| r.3), join_worst: worst(|r| r.3) });
        }
    }
    output(&rows, params)
}

fn output(rows: &[Row], params: &Params) -> Output {
    let mut table = Table::new(&["N", "positions per node", "owned share: max / mean", "worst of the rings", "99th percentile / mean", "1st percentile / mean", "a join takes × 1/(N+1)", "worst join"]);
    for row in rows {
        table.row(vec![
            thousands(row.n),
            row.v.to_string(),
            fixed(row.max, 2),
            fixed(row.worst, 2),
            fixed(row.p99, 2),
            fixed(row.p1, 2),
            fixed(row.join_moves, 2),
            fixed(row.join_worst, 2),
        ]);
    }
    let markdown = format!(
        "## Study `load`: the share each physical node owns, by ring positions per node (seed {})\n\nRing math with this ring's ids, no messages (virtual nodes are not built yet: this is the measurement that picks their number). Each of N nodes holds `v` positions derived from its public key; a node's load is the share of the id space it owns over the mean 1/N (the expected share of keys: sampled keys add their own noise on top); figures are means over {SEEDS} random rings (the worst ring's max/mean beside). The Chord paper's figure (§6.1): with 1 position per node at 10⁴ nodes the 99th percentile holds 4.6× the mean, with 20 about 1.6×. A join's column is the share of the id space one more node takes, as a multiple of the fair 1/(N+1): the keys a join moves.\n\n{}",
        params.seed,
        table.to_markdown()
    );
    let sizes = super::distinct(rows.iter().map(|r| r.n));
    let chart = sizes.iter().fold(Chart::new("Owned keys, max / mean, by positions per node", "log2 positions", "max / mean", Kind::Lines), |chart, &n| {
        chart.series(&format!("N {}", thousands(n)), rows.iter().filter(|r| r.n == n).map(|r| ((r.v as f64).log2(), r.max)).collect())
    });
    Output { study: "load", markdown, svg: render(&[chart]), failed: Vec::new() }
}
