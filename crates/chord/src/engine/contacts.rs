//! Members a node remembers beyond its routing state, to find its way back after a partition:
//! the passive list of Ring Unification (Shafaat, Ghodsi and Haridi, "Dealing with network
//! partitions in structured overlay networks", 2009) — former neighbours that stopped
//! answering — plus a small sample of other members seen. The probe duty pings a few due
//! contacts each round; a contact that answers but is not part of our ring means two rings
//! can merge.
//!
//! Bounded: at most [`MAX_CONTACTS`] entries, [`MAX_SAMPLES`] of them samples. A contact that
//! keeps failing is probed less and less often (doubling up to a few seconds while it is
//! recent, then every half minute) and forgotten after an hour.

use super::time::Millis;
use crate::id::Id;
use crate::routing::NodeRef;
use std::collections::HashMap;

/// Contacts remembered in all.
pub const MAX_CONTACTS: usize = 48;
/// Of which samples of live members (the rest are former neighbours): each probe of one costs
/// a connection and a lookup, and former neighbours find most splits (nearly every node of a
/// split has one across it), so a few.
pub const MAX_SAMPLES: usize = 4;
/// Longest pause between probes of a contact that keeps failing, while it failed recently: a
/// partition heals within seconds of being noticed.
const RECENT_CAP_MS: Millis = 4_000;
/// Longest pause once it has failed for ten minutes.
const OLD_CAP_MS: Millis = 30_000;
const OLD_AFTER_MS: Millis = 600_000;
/// A contact failing for an hour is dropped.
const FORGET_AFTER_MS: Millis = 3_600_000;
/// A contact found in our own ring is probed again this much later (rings can split again,
/// and a node found in the ring may drop out of it alone). Former neighbours that stop
/// answering are probed within seconds (`RECENT_CAP_MS`); this only paces the samples of
/// live members, whose probe costs a lookup each.
const SAME_RING_PAUSE_MS: Millis = 120_000;

#[derive(Clone, Debug)]
struct Contact {
    node: NodeRef,
    /// A former neighbour (true) or a sample of the members seen (false).
    passive: bool,
    fails: u32,
    /// When it last answered, or when it was added.
    since: Millis,
    next_probe: Millis,
}

#[derive(Default, Debug)]
pub struct Contacts {
    entries: HashMap<Id, Contact>,
}

impl Contacts {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, id: Id) -> bool {
        self.entries.contains_key(&id)
    }

    /// A neighbour stopped answering: remember it, to probe it from the next round on — also
    /// when it was a contact already, paused after it answered from our own ring (a second
    /// partition right after the first heal: without this the sides would not look for each
    /// other for `SAME_RING_PAUSE_MS`).
    pub fn add_former(&mut self, node: &NodeRef, now: Millis) {
        let entry = self.entries.entry(node.id).or_insert_with(|| Contact { node: node.clone(), passive: true, fails: 0, since: now, next_probe: now });
        entry.passive = true;
        entry.node = node.clone();
        entry.fails = 0;
        entry.since = now;
        entry.next_probe = entry.next_probe.min(now);
        self.evict();
    }

    /// A member we saw: keep it as a sample while there is room for samples.
    pub fn add_sample(&mut self, node: &NodeRef, now: Millis) {
        if self.entries.contains_key(&node.id) || self.entries.values().filter(|c| !c.passive).count() >= MAX_SAMPLES {
            return;
        }
        self.entries.insert(node.id, Contact { node: node.clone(), passive: false, fails: 0, since: now, next_probe: now + SAME_RING_PAUSE_MS });
        self.evict();
    }

    /// Up to `max` contacts due for a probe; each is not due again until its outcome is told.
    pub fn due(&mut self, now: Millis, max: usize) -> Vec<NodeRef> {
        let mut due: Vec<&mut Contact> = self.entries.values_mut().filter(|c| c.next_probe <= now).collect();
        due.sort_by_key(|c| (c.next_probe, c.node.id));
        due.into_iter()
            .take(max)
            .map(|c| {
                c.next_probe = now + RECENT_CAP_MS; // until the outcome reschedules it
                c.node.clone()
            })
            .collect()
    }

    /// It answered; `same_ring` when a lookup of it in our ring found it.
    pub fn answered(&mut self, id: Id, now: Millis, same_ring: bool) {
        if let Some(contact) = self.entries.get_mut(&id) {
            contact.fails = 0;
            contact.since = now;
            contact.next_probe = if same_ring { now + SAME_RING_PAUSE_MS } else { now };
            if same_ring {
                contact.passive = false;
            }
        }
        self.evict();
    }

    /// It did not answer: probe it later, then later still; forget it after an hour.
    pub fn failed(&mut self, id: Id, now: Millis) {
        let Some(contact) = self.entries.get_mut(&id) else { return };
        if now.saturating_sub(contact.since) >= FORGET_AFTER_MS {
            self.entries.remove(&id);
            return;
        }
        contact.fails = contact.fails.saturating_add(1);
        let cap = if now.saturating_sub(contact.since) >= OLD_AFTER_MS { OLD_CAP_MS } else { RECENT_CAP_MS };
        let pause = (1_000u64 << contact.fails.min(16)).min(cap);
        contact.next_probe = now + pause;
    }

    /// Over the bound: drop samples first, then the contacts failing longest.
    fn evict(&mut self) {
        while self.entries.len() > MAX_CONTACTS {
            let victim = self.entries.values().min_by_key(|c| (c.passive, std::cmp::Reverse(c.fails), c.since, c.node.id)).map(|c| c.node.id).expect("non-empty");
            self.entries.remove(&victim);
        }
    }

    #[cfg(test)]
    pub fn ids(&self) -> impl Iterator<Item = Id> + '_ {
        self.entries.keys().copied()
    }

    /// The contact that answered most recently, for a lone node to rejoin through.
    pub fn freshest(&self) -> Option<NodeRef> {
        self.entries.values().min_by_key(|c| (c.fails, std::cmp::Reverse(c.since), c.node.id)).map(|c| c.node.clone())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_contact_lost_again_after_answering_from_our_ring_is_probed_at_once() {
        let mut contacts = Contacts::default();
        let node = NodeRef { id: Id(7), host: "10.0.0.7".into(), port: 1 };
        contacts.add_former(&node, 0);
        assert_eq!(contacts.due(0, 2).len(), 1);
        contacts.answered(node.id, 1_000, true);
        assert!(contacts.due(2_000, 2).is_empty(), "paused: it is in our ring");
        contacts.add_former(&node, 3_000);
        assert_eq!(contacts.due(3_000, 2), vec![node], "cut off again: due at once");
    }
    use super::*;

    fn node(id: u128) -> NodeRef {
        NodeRef { id: Id(id), host: "h".into(), port: 1 }
    }

    #[test]
    fn former_neighbours_are_probed_at_once_then_with_growing_pauses() {
        let mut contacts = Contacts::default();
        contacts.add_former(&node(1), 0);
        assert_eq!(contacts.due(0, 4), vec![node(1)]);
        assert!(contacts.due(100, 4).is_empty(), "not twice before its outcome");
        contacts.failed(Id(1), 100);
        assert!(contacts.due(1_000, 4).is_empty());
        assert_eq!(contacts.due(2_100, 4), vec![node(1)]);
        for _ in 0..10 {
            contacts.failed(Id(1), 3_000);
        }
        assert!(contacts.due(3_000 + RECENT_CAP_MS - 1, 4).is_empty());
        assert_eq!(contacts.due(3_000 + RECENT_CAP_MS, 4).len(), 1, "pauses stay short while the failure is recent");
        contacts.failed(Id(1), FORGET_AFTER_MS);
        assert!(contacts.is_empty(), "forgotten after an hour of failures");
    }

    #[test]
    fn the_list_is_bounded_and_keeps_former_neighbours_over_samples() {
        let mut contacts = Contacts::default();
        for i in 0..100 {
            contacts.add_sample(&node(1000 + i), 0);
        }
        assert_eq!(contacts.len(), MAX_SAMPLES);
        for i in 0..100 {
            contacts.add_former(&node(i), i as Millis);
        }
        assert_eq!(contacts.len(), MAX_CONTACTS);
        assert!(contacts.ids().all(|id| id.0 < 1000), "samples go first");
    }

    #[test]
    fn a_contact_in_our_own_ring_rests() {
        let mut contacts = Contacts::default();
        contacts.add_former(&node(7), 0);
        contacts.due(0, 1);
        contacts.answered(Id(7), 10, true);
        assert!(contacts.due(10 + SAME_RING_PAUSE_MS - 1, 1).is_empty());
        assert_eq!(contacts.due(10 + SAME_RING_PAUSE_MS, 1).len(), 1);
    }
}
