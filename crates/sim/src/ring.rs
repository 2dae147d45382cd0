//! The oracle's view of the ring: who owns what, the ideal routing state (Stoica et al. 2001:
//! finger `i` of `n` is the owner of `n + 2^i`; successor list = the next `r` nodes), ways to
//! build a ring, and the invariants checked after every round.
//!
//! Invariants (Zave 2017 calls the strict one `OneOrderedRing` with no appendages): every live
//! member's successor list holds a live node, and following first live successors from any
//! live member visits all live members in id order as one cycle. "Correct" additionally asks
//! every live member's successor and predecessor to be its live neighbours by id — which is
//! also what makes every position of the ring owned by exactly one live member (a member owns
//! `(predecessor, itself]`).

use crate::net::{NetConfig, Sim};
use chord::engine::{OpId, UserOp};
use chord::id::ID_BITS;
use chord::routing::Routing;
use chord::Id;
use rand::Rng;
use std::collections::BTreeSet;

/// Live members at one moment, sorted: answers ownership questions by binary search.
pub struct Snapshot {
    pub ids: Vec<Id>,
}

impl Snapshot {
    pub fn of(sim: &Sim) -> Snapshot {
        Snapshot { ids: sim.live_ids().into_iter().filter(|&id| sim.routing(id).is_some()).collect() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Index of the owner of `position`: first id at or after it, wrapping.
    pub fn owner_index(&self, position: Id) -> usize {
        let index = self.ids.partition_point(|&id| id < position);
        if index == self.ids.len() {
            0
        } else {
            index
        }
    }

    pub fn index_of(&self, id: Id) -> Option<usize> {
        self.ids.binary_search(&id).ok()
    }

    pub fn next(&self, index: usize) -> usize {
        (index + 1) % self.ids.len()
    }

    pub fn prev(&self, index: usize) -> usize {
        (index + self.ids.len() - 1) % self.ids.len()
    }

    /// The owner and its next `r − 1` members: where a key at `position` should live.
    pub fn replica_set(&self, position: Id, r: usize) -> Vec<Id> {
        let owner = self.owner_index(position);
        (0..r.min(self.len())).map(|k| self.ids[(owner + k) % self.len()]).collect()
    }

    /// The distinct owners of `me`'s finger starts (excluding `me`): the ideal finger set.
    pub fn ideal_fingers(&self, me: Id) -> BTreeSet<Id> {
        (0..ID_BITS).map(|i| self.ids[self.owner_index(me.finger_start(i))]).filter(|&o| o != me).collect()
    }
}

/// Random distinct node ids (uniform, as BLAKE3 of a public key is).
pub fn random_ids(rng: &mut impl Rng, count: usize) -> Vec<Id> {
    let mut ids = BTreeSet::new();
    while ids.len() < count {
        ids.insert(Id(rng.gen()));
    }
    ids.into_iter().collect()
}

/// A network whose members already hold the ideal routing state, written through `Routing`'s
/// own entry points (`join`, `on_notify`, `set_finger`).
pub fn build_ideal(ids: &[Id], config: NetConfig) -> Sim {
    let mut sim = Sim::new(config);
    for &id in ids {
        sim.spawn(id);
    }
    let snapshot = Snapshot::of(&sim);
    for (index, &id) in snapshot.ids.iter().enumerate() {
        let list_len = sim.config.chord.successor_list_len();
        let mut routing = Routing::new(Sim::node_ref(id), list_len);
        install_ideal(&mut routing, &snapshot, index, list_len);
        let core = sim.engine_mut(id).expect("spawned").core_mut();
        // The ideal state is a settled ring: each member holds all of its arc.
        core.synced_from = routing.predecessor().map(|p| p.id);
        core.ring = Some(routing);
    }
    sim
}

fn install_ideal(routing: &mut Routing, snapshot: &Snapshot, index: usize, list_len: usize) {
    let n = snapshot.len();
    if n < 2 {
        return;
    }
    let me = snapshot.ids[index];
    let successors = (1..=list_len.min(n - 1)).map(|k| Sim::node_ref(snapshot.ids[(index + k) % n])).collect();
    routing.join(successors);
    routing.on_notify(&Sim::node_ref(snapshot.ids[snapshot.prev(index)]));
    let mut i = 0;
    while i < ID_BITS {
        let owner = snapshot.ids[snapshot.owner_index(me.finger_start(i))];
        routing.set_finger(i, Sim::node_ref(owner));
        i += 1;
        // set_finger filled every later finger whose start is in (me, owner] too.
        while owner != me && i < ID_BITS && me.finger_start(i).in_half_open(me, owner) {
            i += 1;
        }
    }
}

/// Live members whose distinct fingers differ from the ideal set.
pub fn finger_mismatches(sim: &Sim) -> usize {
    let snapshot = Snapshot::of(sim);
    let wrong = |&id: &Id| {
        let have: BTreeSet<Id> = sim.routing(id).expect("member").distinct_fingers().iter().map(|n| n.id).collect();
        have != snapshot.ideal_fingers(id)
    };
    snapshot.ids.iter().filter(|id| wrong(id)).count()
}

/// Live members with a finger that points at a dead node (fix-fingers has not replaced it yet).
pub fn stale_finger_nodes(sim: &Sim) -> usize {
    let stale = |id: &Id| sim.routing(*id).expect("member").distinct_fingers().iter().any(|f| !sim.is_alive(f.id));
    Snapshot::of(sim).ids.iter().filter(|id| stale(id)).count()
}

/// Live members whose successor list still names a dead node.
pub fn stale_successor_nodes(sim: &Sim) -> usize {
    let stale = |id: &Id| sim.routing(*id).expect("member").successors().iter().any(|s| !sim.is_alive(s.id));
    Snapshot::of(sim).ids.iter().filter(|id| stale(id)).count()
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

/// Invariant and correctness counts over the live members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub live: usize,
    /// Successor list holds no live node.
    pub no_live_successor: usize,
    /// First live successor is not the next live member by id.
    pub misordered: usize,
    /// Cycles of the first-live-successor graph (1 on a healthy ring).
    pub cycles: usize,
    /// Some cycle does not go round the ring exactly once in id order.
    pub unordered_cycles: usize,
    /// Live members on no cycle (Zave's appendages: e.g. joiners not yet linked in).
    pub off_cycle: usize,
    /// `successor()` is not the next live member.
    pub wrong_successor: usize,
    /// Predecessor is not the previous live member: the ring has a position owned by no live
    /// member or by two (a member owns `(predecessor, itself]`).
    pub wrong_predecessor: usize,
}

impl Health {
    /// The strict invariant: one ordered cycle through every live member.
    pub fn invariant_holds(&self) -> bool {
        self.no_live_successor == 0 && self.misordered == 0
    }

    /// Members that break the strict invariant.
    pub fn violations(&self) -> usize {
        self.no_live_successor + self.misordered
    }

    /// One ordered cycle, no appendages, and every position owned by exactly one live member.
    pub fn correct(&self) -> bool {
        self.invariant_holds() && self.wrong_successor == 0 && self.wrong_predecessor == 0
    }
}

/// Check every live member.
pub fn health(sim: &Sim) -> Health {
    let snapshot = Snapshot::of(sim);
    let n = snapshot.len();
    let mut health = Health { live: n, ..Health::default() };
    if n < 2 {
        health.cycles = n;
        return health;
    }
    let mut first_live = vec![None; n];
    for (index, &id) in snapshot.ids.iter().enumerate() {
        let routing = sim.routing(id).expect("member");
        let next = snapshot.ids[snapshot.next(index)];
        let prev = snapshot.ids[snapshot.prev(index)];
        first_live[index] = routing.successors().iter().find_map(|s| snapshot.index_of(s.id));
        match first_live[index] {
            None => health.no_live_successor += 1,
            Some(f) if f != snapshot.next(index) => health.misordered += 1,
            Some(_) => {}
        }
        health.wrong_successor += usize::from(routing.successor().id != next);
        health.wrong_predecessor += usize::from(routing.predecessor().map(|p| p.id) != Some(prev));
    }
    count_cycles(&first_live, &mut health);
    health
}

/// Cycles of the functional graph `index → first_live[index]`, by the classic three-colour walk.
fn count_cycles(first_live: &[Option<usize>], health: &mut Health) {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut colour = vec![UNSEEN; first_live.len()];
    let mut on_cycle = 0;
    for start in 0..first_live.len() {
        let mut path = Vec::new();
        let mut at = Some(start);
        while let Some(node) = at.filter(|&v| colour[v] == UNSEEN) {
            colour[node] = ON_PATH;
            path.push(node);
            at = first_live[node];
        }
        if let Some(node) = at.filter(|&v| colour[v] == ON_PATH) {
            let cycle = &path[path.iter().position(|&v| v == node).expect("on path")..];
            health.cycles += 1;
            on_cycle += cycle.len();
            let wraps = cycle.iter().enumerate().filter(|&(k, &v)| cycle[(k + 1) % cycle.len()] <= v).count();
            health.unordered_cycles += usize::from(wraps != 1);
        }
        for node in path {
            colour[node] = DONE;
        }
    }
    health.off_cycle = first_live.len() - on_cycle;
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

    #[test]
    fn cycles_are_counted_and_appendages_found() {
        // 0→1→0 is a cycle that wraps once in 2 nodes; 2→0 hangs off it; 3 has no successor.
        let mut h = Health::default();
        count_cycles(&[Some(1), Some(0), Some(0), None], &mut h);
        assert_eq!((h.cycles, h.unordered_cycles, h.off_cycle), (1, 0, 2));
        let mut h = Health::default();
        count_cycles(&[Some(1), Some(0), Some(3), Some(2)], &mut h);
        assert_eq!((h.cycles, h.unordered_cycles), (2, 0));
    }
}
