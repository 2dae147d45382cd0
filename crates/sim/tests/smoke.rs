//! Smoke tests of the simulator, every node a real engine: on a 500-node ring lookups take
//! about ½·log2 N hops (Stoica et al. 2001, Theorem 2) and the ring invariants of Zave 2017
//! hold again after a quarter of the nodes fail and the engines' maintenance runs; the faults
//! study's data invariant holds under message loss; runs are reproducible by seed.

use chord_sim::net::NetConfig;
use chord_sim::ring;
use chord_sim::studies::faults::{run_scenario, Fault, Scenario};
use chord_sim::studies::{measure_lookups, Params};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The smoke-test ring size.
const NODES: usize = 500;
/// Stabilization rounds allowed after the failure; convergence takes a handful.
const MAX_ROUNDS: usize = 50;

#[test]
fn five_hundred_nodes_route_in_half_log_n_hops_and_survive_a_quarter_failing() {
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(42), NODES);
    let mut sim = ring::build_ideal(&ids, NetConfig::new(42));
    let tally = measure_lookups(&mut sim, 2_000);
    assert_eq!(tally.failed(), 0);
    let mean = tally.hops.iter().sum::<u32>() as f64 / tally.hops.len() as f64;
    assert!(mean <= 0.5 * (NODES as f64).log2() + 1.0, "mean hops {mean}");

    let snapshot = ring::snapshot(&sim);
    let victims: Vec<_> = snapshot.ids().iter().step_by(4).copied().collect();
    sim.crash_many(&victims);
    assert_eq!(sim.live_count(), NODES - NODES / 4);
    let round = sim.config.round_ms();
    let rounds = (1..=MAX_ROUNDS).find(|_| {
        sim.run_for(round);
        ring::health(&sim).correct()
    });
    let health = ring::health(&sim);
    assert!(rounds.is_some() && health.invariant_holds(), "{health:?}");
    assert_eq!((health.cycles, health.off_cycle, health.unordered_cycles), (1, 0, 0));
    let clean = (0..MAX_ROUNDS).find(|_| {
        sim.run_for(round);
        ring::stale_finger_nodes(&sim) == 0 && ring::stale_successor_nodes(&sim) == 0
    });
    assert!(clean.is_some(), "fingers or successor lists still name dead nodes");
    let after = measure_lookups(&mut sim, 2_000);
    assert_eq!(after.failed(), 0, "lookups after stabilization: gave up {}, dead owner {}, wrong owner {}", after.gave_up, after.dead_owner, after.wrong_owner);
}

#[test]
fn acknowledged_writes_keep_their_copies_through_message_loss() {
    let run = run_scenario(Scenario { name: "loss-5pct", fault: Fault::Loss(0.05), rounds: 30 }, 120, 7);
    assert!(run.workload.acked > 100, "{:?}", run.workload);
    assert!(run.passed(), "ring {:?}, data {:?}; replay: {}", run.end, run.data, run.replay());
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let params = Params { nodes: Some(vec![150]), lookups: 400, keys: 1_000, periods: 5, max_rounds: 30, ..Params::default() };
    for study in ["failures", "churn"] {
        let a = chord_sim::studies::run(study, &params).unwrap();
        let b = chord_sim::studies::run(study, &params).unwrap();
        assert_eq!(a.markdown, b.markdown, "{study}");
        assert_eq!(a.svg, b.svg, "{study}");
    }
    let crashes = Scenario { name: "crash-20pct", fault: Fault::Crashes(0.2), rounds: 30 };
    let a = run_scenario(crashes, 80, 3);
    let b = run_scenario(crashes, 80, 3);
    assert_eq!((a.health, a.under_replicated, a.workload), (b.health, b.under_replicated, b.workload));
}
