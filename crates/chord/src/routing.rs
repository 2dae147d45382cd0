//! Chord routing state of one node: predecessor, successor list and finger table, with the
//! decisions the maintenance protocol takes on them. Pure data: no I/O, no clocks; the node
//! (and the simulator) feed it what peers answered.
//!
//! Maintenance follows the corrected Chord rules of Zave ("Reasoning about identifier spaces:
//! how to make Chord correct", 2017): a joiner adopts the successor list of the node it reaches;
//! stabilize asks the successor for its predecessor and list, adopts a closer successor and
//! refreshes the list; notify/rectify adopts a closer predecessor or replaces a dead one; dead
//! successors are dropped. Lookups are greedy over the finger table (Stoica et al., 2001).

use crate::id::{Id, ID_BITS};
use serde::{Deserialize, Serialize};

/// A node as others reach it: its ring id and the address it listens on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NodeRef {
    pub id: Id,
    pub host: String,
    pub port: u16,
}

/// Where a request for a ring position should go next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hop {
    /// This node owns the position.
    Local,
    /// The given node owns it (it is our successor and the position is in `(us, it]`).
    Owner(NodeRef),
    /// The given node is closer; ask it.
    Closer(NodeRef),
}

#[derive(Clone, Debug)]
pub struct Routing {
    me: NodeRef,
    predecessor: Option<NodeRef>,
    /// Nearest successors first; never contains `me`. Empty means we are alone.
    successors: Vec<NodeRef>,
    fingers: Vec<Option<NodeRef>>,
    successor_list_len: usize,
    next_finger: u32,
}

impl Routing {
    /// A ring of one: `me` is its own successor and predecessor.
    pub fn new(me: NodeRef, successor_list_len: usize) -> Routing {
        Routing {
            me,
            predecessor: None,
            successors: Vec::new(),
            fingers: vec![None; ID_BITS as usize],
            successor_list_len: successor_list_len.max(2),
            next_finger: 0,
        }
    }

    pub fn me(&self) -> &NodeRef {
        &self.me
    }

    pub fn predecessor(&self) -> Option<&NodeRef> {
        self.predecessor.as_ref()
    }

    pub fn successors(&self) -> &[NodeRef] {
        &self.successors
    }

    pub fn is_alone(&self) -> bool {
        self.successors.is_empty()
    }

    /// Our successor, or ourselves on a ring of one.
    pub fn successor(&self) -> &NodeRef {
        self.successors.first().unwrap_or(&self.me)
    }

    /// Does this node own `position`, i.e. is it in `(predecessor, me]`? Without a known
    /// predecessor only a lone node claims ownership (of everything).
    pub fn owns(&self, position: Id) -> bool {
        match &self.predecessor {
            Some(pred) => position.in_half_open(pred.id, self.me.id),
            None => self.is_alone(),
        }
    }

    /// The arc `(predecessor, me]` this node is primary for, if it knows its predecessor.
    pub fn primary_arc(&self) -> Option<(Id, Id)> {
        if self.is_alone() {
            return Some((self.me.id, self.me.id));
        }
        self.predecessor.as_ref().map(|pred| (pred.id, self.me.id))
    }

    /// The next step of a greedy lookup of `position` from this node.
    pub fn next_hop(&self, position: Id) -> Hop {
        self.next_hop_avoiding(position, &[])
    }

    /// The next step of a lookup that already found the nodes in `avoid` dead: they are
    /// skipped, so a lookup can route around a failure through the node that pointed at it
    /// instead of starting over (a dead successor's keys belong to the next live one).
    pub fn next_hop_avoiding(&self, position: Id, avoid: &[Id]) -> Hop {
        if self.owns(position) {
            return Hop::Local;
        }
        let Some(successor) = self.successors.iter().find(|s| !avoid.contains(&s.id)) else {
            return Hop::Local;
        };
        if position.in_half_open(self.me.id, successor.id) {
            return Hop::Owner(successor.clone());
        }
        match self.closest_preceding_avoiding(position, avoid) {
            Some(node) => Hop::Closer(node.clone()),
            None => Hop::Owner(successor.clone()),
        }
    }

    fn closest_preceding_avoiding(&self, position: Id, avoid: &[Id]) -> Option<&NodeRef> {
        self.fingers
            .iter()
            .flatten()
            .chain(self.successors.iter())
            .filter(|node| node.id.in_open(self.me.id, position) && !avoid.contains(&node.id))
            .max_by_key(|node| self.me.id.distance_to(node.id))
    }

    /// Join through a node that told us our successor list.
    pub fn join(&mut self, successors: Vec<NodeRef>) {
        self.predecessor = None;
        self.successors.clear();
        self.adopt_successor_list(successors);
    }

    /// Stabilize step: the successor reported its predecessor and successor list. Returns the
    /// new successor when a closer one was adopted (the caller then notifies it).
    pub fn on_successor_state(&mut self, successor: &NodeRef, its_predecessor: Option<NodeRef>, its_successors: Vec<NodeRef>) -> Option<NodeRef> {
        if let Some(candidate) = its_predecessor.filter(|p| p.id != self.me.id && p.id.in_open(self.me.id, successor.id)) {
            let mut list = vec![candidate.clone(), successor.clone()];
            list.extend(its_successors);
            self.successors.clear();
            self.adopt_successor_list(list);
            return Some(candidate);
        }
        let mut list = vec![successor.clone()];
        list.extend(its_successors);
        self.successors.clear();
        self.adopt_successor_list(list);
        None
    }

    /// A live node we learned of outside stabilize (a node of another ring after a partition
    /// healed, a former neighbour that came back): adopt it as our successor if it lies
    /// between us and our current one. Stabilize then refreshes the list from it. Returns
    /// whether it was adopted.
    pub fn consider_successor(&mut self, candidate: &NodeRef) -> bool {
        if candidate.id == self.me.id || self.successors.first().is_some_and(|s| s.id == candidate.id) {
            return false;
        }
        let closer = self.successors.first().is_none_or(|s| candidate.id.in_open(self.me.id, s.id));
        if closer {
            self.successors.retain(|s| s.id != candidate.id);
            self.successors.insert(0, candidate.clone());
            self.successors.truncate(self.successor_list_len);
        }
        closer
    }

    /// Notify/rectify: `candidate` thinks it is our predecessor. Returns whether we adopted it.
    pub fn on_notify(&mut self, candidate: &NodeRef) -> bool {
        if candidate.id == self.me.id {
            return false;
        }
        let closer = match &self.predecessor {
            None => true,
            Some(pred) => candidate.id.in_open(pred.id, self.me.id),
        };
        if self.is_alone() {
            // The second node of a ring: it is both our successor and our predecessor.
            self.successors.push(candidate.clone());
        }
        if closer {
            self.predecessor = Some(candidate.clone());
        }
        closer
    }

    /// A node was found dead: forget it everywhere. Returns whether anything changed.
    pub fn remove(&mut self, id: Id) -> bool {
        let mut changed = false;
        if self.predecessor.as_ref().is_some_and(|p| p.id == id) {
            self.predecessor = None;
            changed = true;
        }
        let before = self.successors.len();
        self.successors.retain(|s| s.id != id);
        changed |= before != self.successors.len();
        for finger in self.fingers.iter_mut() {
            if finger.as_ref().is_some_and(|f| f.id == id) {
                *finger = None;
                changed = true;
            }
        }
        if self.successors.is_empty() {
            // Lost every successor: fall back on the nearest node we still know of.
            let fallback = self
                .fingers
                .iter()
                .flatten()
                .chain(self.predecessor.iter())
                .min_by_key(|n| self.me.id.distance_to(n.id))
                .cloned();
            self.successors.extend(fallback);
        }
        changed
    }

    /// Is `id` our predecessor, one of our successors or one of our fingers?
    pub fn knows(&self, id: Id) -> bool {
        self.predecessor.as_ref().is_some_and(|p| p.id == id) || self.successors.iter().any(|s| s.id == id) || self.fingers.iter().flatten().any(|f| f.id == id)
    }

    /// Next finger that needs a lookup, advancing round-robin. Fingers whose start lies in
    /// `(me, successor]` are set to the successor directly, without a lookup.
    pub fn next_finger_to_fix(&mut self) -> Option<(u32, Id)> {
        for _ in 0..ID_BITS {
            let index = self.next_finger;
            self.next_finger = (self.next_finger + 1) % ID_BITS;
            let start = self.me.id.finger_start(index);
            let successor = self.successor().clone();
            if successor.id == self.me.id {
                self.fingers[index as usize] = None;
                continue;
            }
            if start.in_half_open(self.me.id, successor.id) {
                self.fingers[index as usize] = Some(successor);
                continue;
            }
            return Some((index, start));
        }
        None
    }

    /// Record the owner of finger `index`'s start; later fingers whose start also falls in
    /// `(me, owner]` share it, so they are filled at once.
    /// Set finger `index` (and every later one whose start is in `(me, owner]`); returns
    /// whether finger `index` changed.
    pub fn set_finger(&mut self, index: u32, owner: NodeRef) -> bool {
        let before = self.fingers[index as usize].as_ref().map(|n| n.id);
        if owner.id == self.me.id {
            self.fingers[index as usize] = None;
            return before.is_some();
        }
        let mut i = index;
        while i < ID_BITS && self.me.id.finger_start(i).in_half_open(self.me.id, owner.id) {
            self.fingers[i as usize] = Some(owner.clone());
            i += 1;
        }
        if i > index + 1 {
            self.next_finger = i % ID_BITS;
        }
        before != Some(owner.id)
    }

    /// The distinct nodes of the finger table, nearest first.
    pub fn distinct_fingers(&self) -> Vec<NodeRef> {
        let mut nodes: Vec<NodeRef> = Vec::new();
        for finger in self.fingers.iter().flatten() {
            if !nodes.iter().any(|n| n.id == finger.id) {
                nodes.push(finger.clone());
            }
        }
        nodes.sort_by_key(|n| self.me.id.distance_to(n.id));
        nodes
    }

    /// Where a write's copies go, in order: our successors, then the fingers beyond the last of
    /// them, clockwise. A successor list is short for a while after joins and failures (it
    /// grows back through stabilize); the nodes after it stand in meanwhile, so a write still
    /// reaches `replicas` nodes whenever this node knows that many.
    pub fn replica_candidates(&self) -> Vec<NodeRef> {
        let mut candidates = self.successors.clone();
        let reach = self.successors.last().map_or(0, |last| self.me.id.distance_to(last.id));
        for finger in self.distinct_fingers() {
            if self.me.id.distance_to(finger.id) > reach && !candidates.iter().any(|c| c.id == finger.id) {
                candidates.push(finger);
            }
        }
        candidates
    }

    /// The nodes that hold replicas of our primary arc: our first `replicas - 1` successors.
    pub fn replica_targets(&self, replicas: usize) -> Vec<NodeRef> {
        self.successors.iter().take(replicas.saturating_sub(1)).cloned().collect()
    }

    /// Ring size estimated from the spacing of our successor list.
    pub fn estimated_ring_size(&self) -> f64 {
        let Some(last) = self.successors.last() else { return 1.0 };
        let span = self.me.id.distance_to(last.id) as f64;
        if span == 0.0 {
            return 1.0;
        }
        let estimate = self.successors.len() as f64 * 2f64.powi(ID_BITS as i32) / span;
        // On a complete small ring the list wraps to us; never report fewer than what we see.
        estimate.max(self.successors.len() as f64 + 1.0)
    }

    /// Every node this routing state mentions.
    pub fn known_nodes(&self) -> Vec<NodeRef> {
        let mut nodes = self.distinct_fingers();
        for node in self.successors.iter().chain(self.predecessor.iter()) {
            if !nodes.iter().any(|n| n.id == node.id) {
                nodes.push(node.clone());
            }
        }
        nodes
    }

    /// Append `list` to the successor list, keeping it in clockwise order from us: an entry
    /// not farther than the one before it means the list went round the ring past us (a stale
    /// list, from a node that does not know us yet), so it stops there.
    fn adopt_successor_list(&mut self, list: Vec<NodeRef>) {
        for node in list {
            if node.id == self.me.id {
                break; // the list wrapped around the ring back to us
            }
            if self.successors.iter().any(|s| s.id == node.id) {
                continue;
            }
            if self.successors.last().is_some_and(|last| self.me.id.distance_to(node.id) < self.me.id.distance_to(last.id)) {
                break;
            }
            self.successors.push(node);
            if self.successors.len() == self.successor_list_len {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128) -> NodeRef {
        NodeRef { id: Id(id), host: "127.0.0.1".into(), port: id as u16 }
    }

    /// Build the ideal routing state of every node of a ring of the given ids.
    fn ring(ids: &[u128], list_len: usize) -> Vec<Routing> {
        let mut sorted = ids.to_vec();
        sorted.sort();
        let owner_of = |p: Id| -> NodeRef {
            node(*sorted.iter().find(|&&x| x >= p.0).unwrap_or(&sorted[0]))
        };
        sorted
            .iter()
            .enumerate()
            .map(|(i, &id)| {
                let mut r = Routing::new(node(id), list_len);
                let n = sorted.len();
                if n > 1 {
                    let succs = (1..n).map(|k| node(sorted[(i + k) % n])).collect();
                    r.join(succs);
                    r.on_notify(&node(sorted[(i + n - 1) % n]));
                    for index in 0..ID_BITS {
                        let start = r.me.id.finger_start(index);
                        r.set_finger(index, owner_of(start));
                    }
                }
                r
            })
            .collect()
    }

    /// Follow next_hop from `start` until an owner answers; returns (owner, remote hops).
    fn route(nodes: &[Routing], start: usize, position: Id) -> (Id, usize) {
        let mut at = start;
        let mut hops = 0;
        loop {
            match nodes[at].next_hop(position) {
                Hop::Local => return (nodes[at].me.id, hops),
                Hop::Owner(n) => return (n.id, hops),
                Hop::Closer(n) => {
                    hops += 1;
                    at = nodes.iter().position(|r| r.me.id == n.id).unwrap();
                    assert!(hops < 200, "routing loop");
                }
            }
        }
    }

    #[test]
    fn ring_of_one_owns_everything() {
        let r = Routing::new(node(5), 3);
        assert!(r.owns(Id(0)) && r.owns(Id(5)) && r.owns(Id(u128::MAX)));
        assert_eq!(r.next_hop(Id(77)), Hop::Local);
        assert_eq!(r.successor().id, Id(5));
    }

    #[test]
    fn ring_of_two_forms_by_notify_and_splits_the_ring() {
        let mut a = Routing::new(node(10), 3);
        let mut b = Routing::new(node(20), 3);
        b.join(vec![node(10)]);
        assert!(a.on_notify(&node(20)));
        assert_eq!(a.successor().id, Id(20));
        assert_eq!(b.on_successor_state(&node(10), Some(node(20)), vec![node(20)]), None);
        assert!(b.on_notify(&node(10)));
        assert!(a.owns(Id(5)) && a.owns(Id(10)) && a.owns(Id(25)) && !a.owns(Id(15)));
        assert!(b.owns(Id(15)) && b.owns(Id(20)) && !b.owns(Id(21)));
        assert_eq!(a.next_hop(Id(15)), Hop::Owner(node(20)));
    }

    #[test]
    fn ring_of_three_routes_across_wraparound() {
        let nodes = ring(&[10, 100, u128::MAX - 10], 3);
        for start in 0..3 {
            assert_eq!(route(&nodes, start, Id(u128::MAX - 5)).0, Id(10));
            assert_eq!(route(&nodes, start, Id(0)).0, Id(10));
            assert_eq!(route(&nodes, start, Id(11)).0, Id(100));
            assert_eq!(route(&nodes, start, Id(u128::MAX - 10)).0, Id(u128::MAX - 10));
        }
    }

    #[test]
    fn avoiding_dead_nodes_routes_to_the_next_live_one() {
        let nodes = ring(&[10, 20, 30, 40, 50, 60, 70, 80], 4);
        let at10 = &nodes[0];
        // 40's keys: normally via a finger to 40's predecessor region; with 30 dead, still progress.
        assert_eq!(at10.next_hop(Id(35)), Hop::Closer(node(30)));
        assert_eq!(at10.next_hop_avoiding(Id(35), &[Id(30)]), Hop::Closer(node(20)));
        // A dead successor's keys belong to the next live successor.
        assert_eq!(at10.next_hop_avoiding(Id(15), &[Id(20)]), Hop::Owner(node(30)));
        // Everything avoided: nothing better than ourselves.
        let all: Vec<Id> = [20, 30, 40, 50, 60, 70, 80].iter().map(|&i| Id(i)).collect();
        assert_eq!(at10.next_hop_avoiding(Id(55), &all), Hop::Local);
    }

    #[test]
    fn stabilize_adopts_a_closer_successor() {
        let mut a = Routing::new(node(10), 3);
        a.join(vec![node(30), node(50)]);
        let new = a.on_successor_state(&node(30), Some(node(20)), vec![node(50)]);
        assert_eq!(new, Some(node(20)));
        assert_eq!(a.successors().iter().map(|n| n.id.0).collect::<Vec<_>>(), vec![20, 30, 50]);
    }

    #[test]
    fn a_list_that_wraps_past_us_is_cut_where_it_does() {
        let mut a = Routing::new(node(100), 4);
        // 500's list does not know 100: it goes round the ring and on past it to 300.
        a.join(vec![node(500), node(50), node(300)]);
        assert_eq!(a.successors().iter().map(|n| n.id.0).collect::<Vec<_>>(), vec![500, 50]);
        let mut b = Routing::new(node(100), 4);
        b.join(vec![node(500), node(300)]);
        assert_eq!(b.successors().iter().map(|n| n.id.0).collect::<Vec<_>>(), vec![500]);
    }

    #[test]
    fn a_closer_live_node_becomes_the_successor() {
        let mut a = Routing::new(node(100), 3);
        a.join(vec![node(500), node(600), node(700)]);
        assert!(!a.consider_successor(&node(800)));
        assert!(a.consider_successor(&node(300)));
        assert_eq!(a.successors().iter().map(|n| n.id.0).collect::<Vec<_>>(), vec![300, 500, 600]);
        assert!(!a.consider_successor(&node(300)));
        let mut alone = Routing::new(node(100), 3);
        assert!(alone.consider_successor(&node(50)));
        assert_eq!(alone.successor().id, Id(50));
    }

    #[test]
    fn fingers_beyond_a_short_successor_list_stand_in_for_replicas() {
        let nodes = ring(&[10, 20, 30, 40, 50, 60], 4);
        let mut a = nodes[0].clone();
        a.join(vec![node(20)]);
        assert_eq!(a.replica_candidates().iter().map(|n| n.id.0).collect::<Vec<_>>()[..2], [20, 30]);
        assert_eq!(nodes[0].replica_candidates().iter().map(|n| n.id.0).take(4).collect::<Vec<_>>(), vec![20, 30, 40, 50]);
    }

    #[test]
    fn notify_only_accepts_a_closer_predecessor() {
        let mut a = Routing::new(node(100), 3);
        a.join(vec![node(200)]);
        assert!(a.on_notify(&node(50)));
        assert!(a.on_notify(&node(60)));
        assert!(!a.on_notify(&node(40)));
        assert_eq!(a.predecessor().unwrap().id, Id(60));
    }

    #[test]
    fn removing_dead_successors_keeps_the_next_one() {
        let mut a = Routing::new(node(10), 3);
        a.join(vec![node(20), node(30), node(40)]);
        a.remove(Id(20));
        a.remove(Id(30));
        assert_eq!(a.successor().id, Id(40));
        a.remove(Id(40));
        assert!(a.is_alone());
    }

    #[test]
    fn successor_list_is_bounded_and_stops_at_self() {
        let mut a = Routing::new(node(10), 3);
        a.join(vec![node(20), node(30), node(10), node(40)]);
        assert_eq!(a.successors().len(), 2);
        let mut b = Routing::new(node(10), 2);
        b.join(vec![node(20), node(30), node(40)]);
        assert_eq!(b.successors().len(), 2);
    }

    #[test]
    fn greedy_lookups_take_about_half_log2_n_hops() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let ids: Vec<u128> = (0..256).map(|_| rng.gen()).collect();
        let nodes = ring(&ids, 4);
        let mut sorted = ids.clone();
        sorted.sort();
        let mut total = 0;
        let lookups = 2000;
        for _ in 0..lookups {
            let position = Id(rng.gen());
            let start = rng.gen_range(0..nodes.len());
            let (owner, hops) = route(&nodes, start, position);
            let expected = *sorted.iter().find(|&&x| x >= position.0).unwrap_or(&sorted[0]);
            assert_eq!(owner, Id(expected));
            total += hops;
        }
        let mean = total as f64 / lookups as f64;
        assert!(mean <= 0.5 * 8.0 + 1.0, "mean hops {mean}");
    }

    #[test]
    fn ring_size_estimate_is_in_the_right_range() {
        let ids: Vec<u128> = (0..64u128).map(|i| i * (u128::MAX / 64)).collect();
        let nodes = ring(&ids, 8);
        let estimate = nodes[3].estimated_ring_size();
        assert!((32.0..128.0).contains(&estimate), "{estimate}");
    }
}
