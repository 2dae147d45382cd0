//! The oracle's view of the ring: who owns what, the ideal routing state (Stoica et al. 2001:
//! finger `i` of `n` is the owner of `n + 2^i`; successor list = the next `r` nodes), ways to
//! build a ring, and the invariants checked after every round.
//!
//! Invariants (Zave 2017 calls the strict one `OneOrderedRing` with no appendages): every live
//! node's successor list holds a live node, and following first live successors from any live
//! node visits all live nodes in id order as one cycle. "Correct" additionally asks every live
//! node's successor and predecessor to be its live neighbours by id.

use crate::maintenance;
use crate::network::Network;
use chord::id::ID_BITS;
use chord::Id;
use rand::Rng;
use std::collections::BTreeSet;

/// Live ids at one moment, sorted: answers ownership questions by binary search.
pub struct Snapshot {
    pub ids: Vec<Id>,
}

impl Snapshot {
    pub fn of(net: &Network) -> Snapshot {
        Snapshot { ids: net.live_ids() }
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

    /// The distinct owners of `me`'s finger starts (excluding `me`): the ideal finger set.
    pub fn ideal_fingers(&self, me: Id) -> BTreeSet<Id> {
        (0..ID_BITS).map(|i| self.ids[self.owner_index(me.finger_start(i))]).filter(|&o| o != me).collect()
    }
}

/// Random distinct node ids (uniform, as BLAKE3 of address and salt is).
pub fn random_ids(rng: &mut impl Rng, count: usize) -> Vec<Id> {
    let mut ids = BTreeSet::new();
    while ids.len() < count {
        ids.insert(Id(rng.gen()));
    }
    ids.into_iter().collect()
}

/// A network whose nodes already hold the ideal routing state, written through `Routing`'s own
/// entry points (`join`, `on_notify`, `set_finger`).
pub fn build_ideal(ids: &[Id], successor_list_len: usize) -> Network {
    let mut net = Network::new(successor_list_len);
    for &id in ids {
        net.spawn(id);
    }
    let snapshot = Snapshot::of(&net);
    for (index, &id) in snapshot.ids.iter().enumerate() {
        install_ideal(&mut net, &snapshot, index, id);
    }
    net
}

fn install_ideal(net: &mut Network, snapshot: &Snapshot, index: usize, me: Id) {
    let n = snapshot.len();
    if n < 2 {
        return;
    }
    let list_len = net.successor_list_len().min(n - 1);
    let successors = (1..=list_len).map(|k| Network::node_ref(snapshot.ids[(index + k) % n])).collect();
    let predecessor = Network::node_ref(snapshot.ids[snapshot.prev(index)]);
    let routing = net.routing_mut(me).expect("spawned");
    routing.join(successors);
    routing.on_notify(&predecessor);
    let mut i = 0;
    while i < ID_BITS {
        let owner = snapshot.ids[snapshot.owner_index(me.finger_start(i))];
        routing.set_finger(i, Network::node_ref(owner));
        i += 1;
        // set_finger filled every later finger whose start is in (me, owner] too.
        while owner != me && i < ID_BITS && me.finger_start(i).in_half_open(me, owner) {
            i += 1;
        }
    }
}

/// Live nodes whose distinct fingers differ from the ideal set.
pub fn finger_mismatches(net: &Network) -> usize {
    let snapshot = Snapshot::of(net);
    let wrong = |&id: &Id| {
        let routing = net.routing(id).expect("live");
        let have: BTreeSet<Id> = routing.distinct_fingers().iter().map(|n| n.id).collect();
        have != snapshot.ideal_fingers(id)
    };
    snapshot.ids.iter().filter(|id| wrong(id)).count()
}

/// Live nodes with a finger that points at a dead node (fix-fingers has not replaced it yet).
pub fn stale_finger_nodes(net: &Network) -> usize {
    let stale = |id: &Id| net.routing(*id).expect("live").distinct_fingers().iter().any(|f| !net.is_alive(f.id));
    net.live_ids().iter().filter(|id| stale(id)).count()
}

/// Live nodes whose successor list still names a dead node (beyond the first, which
/// stabilization already fixed); such entries are purged as lists propagate backwards.
pub fn stale_successor_nodes(net: &Network) -> usize {
    let stale = |id: &Id| net.routing(*id).expect("live").successors().iter().any(|s| !net.is_alive(s.id));
    net.live_ids().iter().filter(|id| stale(id)).count()
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
pub fn build_by_joins(rng: &mut impl Rng, target: usize, successor_list_len: usize, max_settle: usize) -> (Network, JoinBuild) {
    let mut net = Network::new(successor_list_len);
    let mut build = JoinBuild::default();
    net.spawn(Id(rng.gen()));
    while net.live_count() < target {
        let batch = ((net.live_count() as f64 * JOIN_GROWTH_PER_ROUND).ceil() as usize).min(target - net.live_count());
        for _ in 0..batch {
            build.aborted_joins += usize::from(!join_random(&mut net, rng));
        }
        maintenance::round(&mut net, rng);
        build.growth_rounds += 1;
    }
    while build.settle_rounds < max_settle && !(health(&net).correct() && finger_mismatches(&net) == 0) {
        maintenance::round(&mut net, rng);
        build.settle_rounds += 1;
    }
    build.converged = health(&net).correct() && finger_mismatches(&net) == 0;
    (net, build)
}

/// A new node with a random id joins through a random live node. A join that does not happen
/// (see `maintenance::join`) leaves the node out of the ring: it is removed again.
pub fn join_random(net: &mut Network, rng: &mut impl Rng) -> bool {
    let Some(bootstrap) = net.random_live(rng) else { return false };
    let id = Id(rng.gen());
    if !net.spawn(id) {
        return false;
    }
    let joined = maintenance::join(net, id, bootstrap);
    if !joined {
        net.kill(id);
    }
    joined
}

/// Invariant and correctness counts over the live nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Health {
    pub live: usize,
    /// Successor list holds no live node.
    pub no_live_successor: usize,
    /// First live successor is not the next live node by id.
    pub misordered: usize,
    /// Cycles of the first-live-successor graph (1 on a healthy ring).
    pub cycles: usize,
    /// Some cycle does not go round the ring exactly once in id order.
    pub unordered_cycles: usize,
    /// Live nodes on no cycle (Zave's appendages: e.g. joiners not yet linked in).
    pub off_cycle: usize,
    /// `successor()` is not the next live node.
    pub wrong_successor: usize,
    /// Predecessor is not the previous live node.
    pub wrong_predecessor: usize,
}

impl Health {
    /// The strict invariant of the brief: one ordered cycle through every live node.
    pub fn invariant_holds(&self) -> bool {
        self.no_live_successor == 0 && self.misordered == 0
    }

    /// Nodes that break the strict invariant.
    pub fn violations(&self) -> usize {
        self.no_live_successor + self.misordered
    }

    pub fn correct(&self) -> bool {
        self.invariant_holds() && self.wrong_successor == 0 && self.wrong_predecessor == 0
    }
}

/// Check every live node.
pub fn health(net: &Network) -> Health {
    let snapshot = Snapshot::of(net);
    let n = snapshot.len();
    let mut health = Health { live: n, ..Health::default() };
    if n < 2 {
        health.cycles = n;
        return health;
    }
    let mut first_live = vec![None; n];
    for (index, &id) in snapshot.ids.iter().enumerate() {
        let routing = net.routing(id).expect("live");
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
        let net = build_ideal(&random_ids(&mut rng, 200), 4);
        let h = health(&net);
        assert!(h.correct(), "{h:?}");
        assert_eq!((h.cycles, h.off_cycle, h.unordered_cycles), (1, 0, 0));
        assert_eq!(finger_mismatches(&net), 0);
    }

    #[test]
    fn a_ring_built_by_joins_converges_to_the_ideal_state() {
        let mut rng = StdRng::seed_from_u64(4);
        let (net, build) = build_by_joins(&mut rng, 150, 4, 200);
        assert!(build.converged, "{build:?} {:?}", health(&net));
        assert_eq!(net.live_count() + build.aborted_joins, 150 + build.aborted_joins);
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
