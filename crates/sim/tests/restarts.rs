//! Members that crash and restart on their data folders: no read goes back in time, nothing
//! acknowledged is lost, and a whole ring restarted at once is one ring again.

use chord::engine::{OpOutput, UserOp};
use chord_sim::net::NetConfig;
use chord_sim::ring;
use chord_sim::studies::restarts::{run_seed, Scenario};
use rand::rngs::StdRng;
use rand::SeedableRng;

#[test]
fn reads_after_acknowledged_writes_never_go_back_in_time_through_restarts() {
    // Two minutes each: 5-6 kills, half of them two neighbours at once.
    let scenario = Scenario { duration_ms: 120_000, ..Scenario::default() };
    for seed in [1, 2, 3, 4] {
        let report = run_seed(&scenario, seed);
        assert!(report.kills >= 4 && report.acked_writes > 10_000, "seed {seed}: {} kills, {} writes", report.kills, report.acked_writes);
        assert!(report.stale.is_empty(), "seed {seed}: {} stale reads, first {:?}", report.stale.len(), report.stale.first());
        assert!(report.lost.is_empty(), "seed {seed}: lost {:?}", report.lost);
    }
}

#[test]
fn a_whole_ring_restarted_on_its_data_is_one_ring_again_with_every_write() {
    let ids = ring::random_ids(&mut StdRng::seed_from_u64(9), 6);
    let mut sim = ring::build_ideal(&ids, NetConfig::new(9));
    let keys: Vec<Vec<u8>> = (0..60).map(|i| format!("key-{i}").into_bytes()).collect();
    for (i, key) in keys.iter().enumerate() {
        let op = sim.start_op(ids[i % ids.len()], UserOp::Set(key.clone(), key.clone())).unwrap();
        assert!(matches!(sim.run_op(op, 20_000), Some(Ok(_))), "write {i}");
    }
    sim.crash_keeping(&ids);
    assert_eq!(sim.live_count(), 0);
    sim.run_for(3_000);
    for &id in &ids {
        assert!(sim.restart_from_disk(id));
    }
    let round = sim.config.round_ms();
    let rounds = (1..=200).find(|_| {
        sim.run_for(round);
        ring::health(&sim).correct()
    });
    assert!(rounds.is_some(), "not one ring after 200 rounds: {:?}", ring::health(&sim));
    for (i, key) in keys.iter().enumerate() {
        let op = sim.start_op(ids[(i + 1) % ids.len()], UserOp::Get(key.clone())).unwrap();
        assert_eq!(sim.run_op(op, 20_000), Some(Ok(OpOutput::Value(Some(key.clone())))), "read {i}");
    }
}

/// Joins, graceful leaves and crashes of a healthy ring under writes: no node ever reports an
/// error (a refused hand-off, a write stored on too few replicas), and every acknowledged write
/// stays readable.
#[test]
fn joins_leaves_and_crashes_of_a_healthy_ring_raise_no_error() {
    use chord_sim::net::Sim;
    use rand::Rng;
    for seed in 1..=24u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let ids = ring::random_ids(&mut rng, 4);
        let mut sim = ring::build_ideal(&ids, NetConfig::new(seed));
        let mut members = ids.clone();
        let mut written: Vec<Vec<u8>> = Vec::new();
        for step in 0..12 {
            // A few writes from random members between membership changes.
            for _ in 0..10 {
                let key = format!("key-{}", written.len()).into_bytes();
                let via = members[rng.gen_range(0..members.len())];
                let op = sim.start_op(via, UserOp::Set(key.clone(), key.clone())).unwrap();
                assert!(matches!(sim.run_op(op, 20_000), Some(Ok(_))), "seed {seed}: write");
                written.push(key);
            }
            match rng.gen_range(0..4) {
                // A newcomer joins through a random member.
                0 | 1 if step < 9 => {
                    let id = chord::Id(rng.gen());
                    sim.spawn(id);
                    let via = members[rng.gen_range(0..members.len())];
                    let op = sim.start_op(id, UserOp::JoinThrough(Sim::node_ref(via))).unwrap();
                    assert!(matches!(sim.run_op(op, 20_000), Some(Ok(_))), "seed {seed}: join");
                    members.push(id);
                }
                // Two members leave gracefully, one right after the other.
                2 if members.len() > 5 => {
                    for _ in 0..2 {
                        let leaver = members.remove(rng.gen_range(0..members.len()));
                        let op = sim.start_op(leaver, UserOp::Leave).unwrap();
                        assert!(matches!(sim.run_op(op, 20_000), Some(Ok(_))), "seed {seed}: leave");
                        sim.crash(leaver);
                    }
                }
                // One member crashes.
                3 if members.len() > 4 => {
                    let victim = members.remove(rng.gen_range(0..members.len()));
                    sim.crash(victim);
                }
                _ => {}
            }
            sim.run_for(2_000);
        }
        assert_eq!(sim.errors, vec![], "seed {seed}: error notices");
        for key in &written {
            let op = sim.start_op(members[0], UserOp::Get(key.clone())).unwrap();
            assert_eq!(sim.run_op(op, 20_000), Some(Ok(OpOutput::Value(Some(key.clone())))), "seed {seed}");
        }
    }
}
