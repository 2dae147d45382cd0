//! What a ring should look like, for simulators and tests: the ideal routing state of a set of
//! members (Stoica et al. 2001: finger `i` of `n` is the owner of `n + 2^i`, the successor
//! list is the next members by id), and the check that members form one correct ring. The
//! simulator, the engine's tests, the node's tests and the fuzz targets all build and check
//! rings with these; no running node uses them.
//!
//! "Correct" is Zave's `OneOrderedRing` (2017) with no appendages, plus every member's
//! successor and predecessor being its neighbours by id — which is also what makes every
//! position of the ring owned by exactly one member (a member owns `(predecessor, itself]`).

use crate::id::{Id, ID_BITS};
use crate::routing::{NodeRef, Routing};
use std::collections::BTreeSet;

/// A set of members, sorted by id: answers ownership questions by binary search and gives each
/// member the routing state it has in a settled ring.
#[derive(Clone, Debug, Default)]
pub struct IdealRing {
    ids: Vec<Id>,
}

impl IdealRing {
    pub fn new(ids: impl IntoIterator<Item = Id>) -> IdealRing {
        let mut ids: Vec<Id> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        IdealRing { ids }
    }

    /// The members in id order.
    pub fn ids(&self) -> &[Id] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Index of the owner of `position`: the first member at or after it, wrapping.
    pub fn owner_index(&self, position: Id) -> usize {
        let index = self.ids.partition_point(|&id| id < position);
        if index == self.ids.len() {
            0
        } else {
            index
        }
    }

    pub fn owner(&self, position: Id) -> Id {
        self.ids[self.owner_index(position)]
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
        (0..ID_BITS).map(|i| self.owner(me.finger_start(i))).filter(|&o| o != me).collect()
    }

    /// Member `me`'s routing state in this ring once settled: its next `list_len` members as
    /// successors, the previous one as predecessor, ideal fingers; `node` gives each member's
    /// address. Written through `Routing`'s own entry points (`join`, `on_notify`,
    /// `set_finger`), so it is a state the protocol can reach.
    pub fn routing_of(&self, me: Id, list_len: usize, node: impl Fn(Id) -> NodeRef) -> Routing {
        let mut routing = Routing::new(node(me), list_len);
        let n = self.len();
        let Some(index) = self.index_of(me).filter(|_| n >= 2) else { return routing };
        routing.join((1..=list_len.min(n - 1)).map(|k| node(self.ids[(index + k) % n])).collect());
        routing.on_notify(&node(self.ids[self.prev(index)]));
        let mut i = 0;
        while i < ID_BITS {
            let owner = self.owner(me.finger_start(i));
            routing.set_finger(i, node(owner));
            i += 1;
            // set_finger filled every later finger whose start is in (me, owner] too.
            while owner != me && i < ID_BITS && me.finger_start(i).in_half_open(me, owner) {
                i += 1;
            }
        }
        routing
    }
}

/// What one member says of its neighbours (from its `Routing`, its stats, its `Info`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Links {
    pub id: Id,
    /// Its successor list, nearest first.
    pub successors: Vec<Id>,
    pub predecessor: Option<Id>,
}

impl Links {
    pub fn of(routing: &Routing) -> Links {
        Links {
            id: routing.me().id,
            successors: routing.successors().iter().map(|n| n.id).collect(),
            predecessor: routing.predecessor().map(|p| p.id),
        }
    }
}

/// Invariant and correctness counts over a set of live members.
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
    /// The successor is not the next live member.
    pub wrong_successor: usize,
    /// The predecessor is not the previous live member: the ring has a position owned by no
    /// live member or by two.
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

/// Check what the live `members` say of each other (entries naming nodes outside `members`
/// count as dead). A single member is a correct ring of one.
pub fn health(members: &[Links]) -> Health {
    let ring = IdealRing::new(members.iter().map(|m| m.id));
    let n = ring.len();
    let mut health = Health { live: n, ..Health::default() };
    if n < 2 {
        health.cycles = n;
        return health;
    }
    let mut first_live = vec![None; n];
    for links in members {
        let index = ring.index_of(links.id).expect("listed");
        let (next, prev) = (ring.ids[ring.next(index)], ring.ids[ring.prev(index)]);
        first_live[index] = links.successors.iter().find_map(|s| ring.index_of(*s));
        match first_live[index] {
            None => health.no_live_successor += 1,
            Some(f) if f != ring.next(index) => health.misordered += 1,
            Some(_) => {}
        }
        health.wrong_successor += usize::from(links.successors.first() != Some(&next));
        health.wrong_predecessor += usize::from(links.predecessor != Some(prev));
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

    fn node(id: Id) -> NodeRef {
        NodeRef { id, host: "h".into(), port: 1 }
    }

    #[test]
    fn an_ideal_ring_is_correct_with_ideal_fingers() {
        let ring = IdealRing::new((1..=40u128).map(|i| Id(i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))));
        let members: Vec<Links> = ring.ids().iter().map(|&id| Links::of(&ring.routing_of(id, 4, node))).collect();
        let health = health(&members);
        assert!(health.correct(), "{health:?}");
        assert_eq!((health.cycles, health.off_cycle, health.unordered_cycles), (1, 0, 0));
        for &id in ring.ids() {
            let have: BTreeSet<Id> = ring.routing_of(id, 4, node).distinct_fingers().iter().map(|n| n.id).collect();
            assert_eq!(have, ring.ideal_fingers(id));
        }
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

    #[test]
    fn a_wrong_predecessor_makes_a_ring_incorrect_but_keeps_the_invariant() {
        let links = |id: u128, succ: u128, pred: u128| Links { id: Id(id), successors: vec![Id(succ)], predecessor: Some(Id(pred)) };
        let good = [links(1, 2, 3), links(2, 3, 1), links(3, 1, 2)];
        assert!(health(&good).correct());
        let bad = [links(1, 2, 2), links(2, 3, 1), links(3, 1, 2)];
        let h = health(&bad);
        assert!(h.invariant_holds() && !h.correct());
        assert!(health(&[links(1, 1, 1)]).correct(), "a ring of one");
    }
}
