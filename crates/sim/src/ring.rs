//! The oracle's view of the ring: who owns what, ways to build a ring, and the invariants
//! checked after every round. The ideal routing state and the invariants themselves are the
//! engine's (`chord::testing`: Stoica et al. 2001's ideal fingers and successor lists; Zave
//! 2017's `OneOrderedRing` with no appendages, plus correct predecessors), shared with the
//! engine's and the node's tests; this module applies them to a simulated network.

use crate::net::{NetConfig, Sim};
use chord::engine::{OpId, UserOp};
use chord::testing::{IdealRing, Links};
use chord::Id;
use rand::Rng;
use std::collections::BTreeSet;

pub use chord::testing::Health;

/// Live members at one moment, sorted (`chord::testing::IdealRing`): who owns what.
pub type Snapshot = IdealRing;

/// The live ring members of `sim`.
pub fn snapshot(sim: &Sim) -> Snapshot {
    IdealRing::new(sim.live_ids().into_iter().filter(|&id| sim.routing(id).is_some()))
}

/// Random distinct node ids (uniform, as BLAKE3 of a public key is).
pub fn random_ids(rng: &mut impl Rng, count: usize) -> Vec<Id> {
    let mut ids = BTreeSet::new();
    while ids.len() < count {
        ids.insert(Id(rng.gen()));
    }
    ids.into_iter().collect()
}

/// A network whose members already hold the ideal routing state of a settled ring
/// (`IdealRing::routing_of`, installed with `Engine::settle`).
pub fn build_ideal(ids: &[Id], config: NetConfig) -> Sim {
    let mut sim = Sim::new(config);
    for &id in ids {
        sim.spawn(id);
    }
    let ring = snapshot(&sim);
    let list_len = sim.config.chord.successor_list_len();
    for &id in ring.ids() {
        let routing = ring.routing_of(id, list_len, Sim::node_ref);
        sim.engine_mut(id).expect("spawned").settle(routing);
    }
    sim
}

/// Live members whose distinct fingers differ from the ideal set.
pub fn finger_mismatches(sim: &Sim) -> usize {
    let snapshot = snapshot(sim);
    let wrong = |&id: &Id| {
        let have: BTreeSet<Id> = sim.routing(id).expect("member").distinct_fingers().iter().map(|n| n.id).collect();
        have != snapshot.ideal_fingers(id)
    };
    snapshot.ids().iter().filter(|id| wrong(id)).count()
}

/// Live members with a finger that points at a dead node (fix-fingers has not replaced it yet).
pub fn stale_finger_nodes(sim: &Sim) -> usize {
    let stale = |id: &Id| sim.routing(*id).expect("member").distinct_fingers().iter().any(|f| !sim.is_alive(f.id));
    snapshot(sim).ids().iter().filter(|id| stale(id)).count()
}

/// Live members whose successor list still names a dead node.
pub fn stale_successor_nodes(sim: &Sim) -> usize {
    let stale = |id: &Id| sim.routing(*id).expect("member").successors().iter().any(|s| !sim.is_alive(s.id));
    snapshot(sim).ids().iter().filter(|id| stale(id)).count()
}

/// Growth per round when building a ring by joins: 10% of the current size joins each round,
/// an assumption (fast enough to reach 1,000 nodes in ~70 rounds, slow enough to stay sane).
pub const JOIN_GROWTH_PER_ROUND: f64 = 0.10;

/// What it took to build a ring by joins.
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinBuild {
    pub growth_rounds: usize,
    pub settle_rounds: usize,
    pub aborted_joins: usize,
    pub converged: bool,
}

/// Build a ring of `target` nodes from one node by real joins and maintenance rounds, then
/// run rounds until the ring is correct and every finger ideal (at most `max_settle` rounds).
pub fn build_by_joins(config: NetConfig, target: usize, max_settle: usize) -> (Sim, JoinBuild) {
    let mut sim = Sim::new(config);
    let round = sim.config.round_ms();
    let mut build = JoinBuild::default();
    let first = Id(sim.rng().gen());
    sim.spawn(first);
    while sim.live_count() < target {
        let batch = ((sim.live_count() as f64 * JOIN_GROWTH_PER_ROUND).ceil() as usize).min(target - sim.live_count());
        let joins: Vec<(Id, OpId)> = (0..batch).filter_map(|_| start_join(&mut sim)).collect();
        sim.run_for(round);
        for (id, op) in joins {
            if !matches!(sim.take_result(op), Some(Ok(_))) || sim.routing(id).is_none_or(|r| r.is_alone()) {
                // The join did not happen: the node leaves again and another is drawn.
                sim.crash(id);
                build.aborted_joins += 1;
            }
        }
        build.growth_rounds += 1;
    }
    while build.settle_rounds < max_settle && !(health(&sim).correct() && finger_mismatches(&sim) == 0) {
        sim.run_for(round);
        build.settle_rounds += 1;
    }
    build.converged = health(&sim).correct() && finger_mismatches(&sim) == 0;
    (sim, build)
}

/// A new node with a random id joins through a random live member; returns it and its op.
pub fn start_join(sim: &mut Sim) -> Option<(Id, OpId)> {
    let bootstrap = sim.random_live()?;
    let id = Id(sim.rng().gen());
    if !sim.spawn(id) {
        return None;
    }
    let op = sim.start_op(id, UserOp::JoinThrough(Sim::node_ref(bootstrap)))?;
    Some((id, op))
}

/// Check every live member (`chord::testing::health`).
pub fn health(sim: &Sim) -> Health {
    let members: Vec<Links> = snapshot(sim).ids().iter().map(|&id| Links::of(sim.routing(id).expect("member"))).collect();
    chord::testing::health(&members)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn ideal_ring_is_correct_and_has_ideal_fingers() {
        let mut rng = StdRng::seed_from_u64(3);
        let sim = build_ideal(&random_ids(&mut rng, 200), NetConfig::new(3));
        let h = health(&sim);
        assert!(h.correct(), "{h:?}");
        assert_eq!((h.cycles, h.off_cycle, h.unordered_cycles), (1, 0, 0));
        assert_eq!(finger_mismatches(&sim), 0);
    }

    #[test]
    fn a_ring_built_by_joins_converges_to_the_ideal_state() {
        let (sim, build) = build_by_joins(NetConfig::new(4), 150, 200);
        assert!(build.converged, "{build:?} {:?}", health(&sim));
        assert_eq!(sim.live_count(), 150);
    }
}
