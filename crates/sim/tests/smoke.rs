//! Smoke test of the simulator on a 500-node ring: lookups take about ½·log2 N hops
//! (Stoica et al. 2001, Theorem 2) and the ring invariants of Zave 2017 hold again after a
//! quarter of the nodes fail and stabilization runs. Also checks that runs are reproducible.

use chord_sim::lookup::Policy;
use chord_sim::maintenance;
use chord_sim::ring::{self, Snapshot};
use chord_sim::studies::{measure_lookups, Params};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The smoke-test ring size.
const NODES: usize = 500;
/// Stabilization rounds allowed after the failure; convergence takes a handful.
const MAX_ROUNDS: usize = 50;

#[test]
fn five_hundred_nodes_route_in_half_log_n_hops_and_survive_a_quarter_failing() {
    let mut rng = StdRng::seed_from_u64(42);
    let ids = ring::random_ids(&mut rng, NODES);
    let mut net = ring::build_ideal(&ids, 4);
    let tally = measure_lookups(&mut net, &mut rng, 2_000, Policy::FirstTry);
    assert_eq!(tally.failed(), 0);
    let mean = tally.hops.iter().sum::<u32>() as f64 / tally.hops.len() as f64;
    assert!(mean <= 0.5 * (NODES as f64).log2() + 1.0, "mean hops {mean}");

    let snapshot = Snapshot::of(&net);
    for id in snapshot.ids.iter().step_by(4) {
        net.kill(*id);
    }
    assert_eq!(net.live_count(), NODES - NODES / 4);
    let rounds = (1..=MAX_ROUNDS).find(|_| {
        maintenance::round(&mut net, &mut rng);
        ring::health(&net).correct()
    });
    let health = ring::health(&net);
    assert!(rounds.is_some() && health.invariant_holds(), "{health:?}");
    assert_eq!((health.cycles, health.off_cycle, health.unordered_cycles), (1, 0, 0));
    // Lookups fail only through fingers or successor-list entries still naming dead nodes;
    // once fix-fingers and stabilize have replaced them all, every lookup reaches the true
    // owner at the first try.
    let clean = (0..MAX_ROUNDS).find(|_| {
        maintenance::round(&mut net, &mut rng);
        ring::stale_finger_nodes(&net) == 0 && ring::stale_successor_nodes(&net) == 0
    });
    assert!(clean.is_some(), "fingers or successor lists still name dead nodes");
    let after = measure_lookups(&mut net, &mut rng, 2_000, Policy::FirstTry);
    assert_eq!(after.failed(), 0, "lookups after stabilization: dead hop {}, dead owner {}, wrong owner {}", after.dead_hop, after.dead_owner, after.wrong_owner);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let params = Params { nodes: Some(vec![200]), lookups: 400, keys: 1_000, periods: 5, max_rounds: 30, ..Params::default() };
    for study in ["failures", "churn"] {
        let a = chord_sim::studies::run(study, &params).unwrap();
        let b = chord_sim::studies::run(study, &params).unwrap();
        assert_eq!(a.markdown, b.markdown);
        assert_eq!(a.svg, b.svg);
    }
}

