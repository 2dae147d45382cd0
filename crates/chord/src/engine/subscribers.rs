//! The subscription table (see `watch`): who in the ring listens for which keys, until when,
//! and what this node and its clients watch. Pure data, no I/O.

use super::time::Millis;
use crate::config::{MAX_SUBSCRIBERS, MAX_WATCHED_PREFIXES, MAX_WATCH_PREFIX_BYTES};
use crate::id::Id;
use crate::protocol::Subscription;
use crate::routing::NodeRef;
use serde_bytes::ByteBuf;
use std::collections::HashMap;

/// A listening node announces its subscription again this often.
pub const RENEW_MS: Millis = 10_000;
/// A subscription lapses when not renewed for this long (three renewals missed).
pub const LEASE_MS: Millis = 3 * RENEW_MS;

/// One subscriber's entry in the ring-wide table.
#[derive(Debug, Clone)]
struct Entry {
    node: NodeRef,
    prefixes: Vec<Vec<u8>>,
    until: Millis,
}

/// The subscription table and this node's own interest.
#[derive(Debug, Default)]
pub struct Watch {
    /// Every subscriber in the ring that told us (not ourselves).
    table: HashMap<Id, Entry>,
    /// Prefixes our own user watches (`b""`: every key).
    own: Vec<Vec<u8>>,
    /// Clients attached to us and what they watch.
    clients: HashMap<Id, (NodeRef, Vec<Vec<u8>>)>,
    /// What we last announced, and when the next renewal is due.
    announced: Vec<Vec<u8>>,
    next_renewal: Millis,
    /// We copied the table from our successor since we last joined a ring.
    pulled: bool,
}

fn matches(prefixes: &[Vec<u8>], key: &[u8]) -> bool {
    prefixes.iter().any(|p| key.starts_with(p))
}

/// Sorted, deduplicated, and just `[b""]` when one of them is every key.
fn normalized(mut prefixes: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    if prefixes.iter().any(|p| p.is_empty()) {
        return vec![Vec::new()];
    }
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

impl Watch {
    /// What this node subscribes for: its user's prefixes and its clients' — every key when
    /// they are more than a subscription may name (events are filtered here anyway).
    pub fn wanted(&self) -> Vec<Vec<u8>> {
        let wanted = normalized(self.own.iter().chain(self.clients.values().flat_map(|(_, p)| p)).cloned().collect());
        if wanted.len() > MAX_WATCHED_PREFIXES {
            return vec![Vec::new()];
        }
        wanted
    }

    /// Our user watches `prefixes` now (empty: nothing).
    pub fn set_own(&mut self, prefixes: Vec<Vec<u8>>) {
        self.own = normalized(prefixes);
    }

    pub fn own_matches(&self, key: &[u8]) -> bool {
        matches(&self.own, key)
    }

    /// Clients attached to us whose prefixes match `key`.
    pub fn clients_for(&self, key: &[u8]) -> Vec<NodeRef> {
        self.clients.values().filter(|(_, p)| matches(p, key)).map(|(n, _)| n.clone()).collect()
    }

    /// Subscribers elsewhere whose prefixes match `key`.
    pub fn subscribers_for(&self, key: &[u8], now: Millis) -> Vec<NodeRef> {
        self.table.values().filter(|e| e.until > now && matches(&e.prefixes, key)).map(|e| e.node.clone()).collect()
    }

    pub fn subscribers(&self) -> usize {
        self.table.len()
    }

    /// Record `node`'s subscription (empty prefixes: it stopped listening). Whether it was
    /// taken: a full table takes renewals only.
    pub fn record(&mut self, node: NodeRef, prefixes: Vec<Vec<u8>>, lease: Millis, now: Millis) -> bool {
        if prefixes.is_empty() {
            self.table.remove(&node.id);
            return true;
        }
        self.table.retain(|_, e| e.until > now);
        if self.table.len() >= MAX_SUBSCRIBERS && !self.table.contains_key(&node.id) {
            return false;
        }
        let until = now + lease.min(LEASE_MS);
        self.table.insert(node.id, Entry { node, prefixes: normalized(prefixes), until });
        true
    }

    /// A client attached to us watches `prefixes` (empty: nothing).
    pub fn set_client(&mut self, client: NodeRef, prefixes: Vec<Vec<u8>>) {
        if prefixes.is_empty() {
            self.clients.remove(&client.id);
        } else {
            self.clients.insert(client.id, (client, normalized(prefixes)));
        }
    }

    pub fn client_gone(&mut self, client: Id) {
        self.clients.remove(&client);
    }

    /// The table as a joiner copies it, with what is left of each lease, within `budget`
    /// bytes of prefixes and addresses (renewals bring whatever did not fit).
    /// Our own subscription (as `me`) comes first.
    pub fn export(&self, me: &NodeRef, now: Millis, budget: usize) -> Vec<Subscription> {
        let mut spent = 0;
        let own = Entry { node: me.clone(), prefixes: self.announced.clone(), until: now + LEASE_MS };
        let own = (!own.prefixes.is_empty()).then_some(own);
        own.iter()
            .chain(self.table.values())
            .filter(|e| e.until > now)
            .take_while(|e| {
                spent += 64 + e.node.host.len() + e.prefixes.iter().map(|p| p.len() + 8).sum::<usize>();
                spent <= budget
            })
            .map(|e| Subscription { node: e.node.clone(), prefixes: e.prefixes.iter().cloned().map(ByteBuf::from).collect(), lease_ms: e.until - now })
            .collect()
    }

    /// Our subscription is due: it changed, or its renewal time came. Returns what to announce.
    pub fn due(&mut self, now: Millis) -> Option<Vec<Vec<u8>>> {
        let wanted = self.wanted();
        if wanted == self.announced && (wanted.is_empty() || now < self.next_renewal) {
            return None;
        }
        self.announced = wanted.clone();
        self.next_renewal = now + RENEW_MS;
        Some(wanted)
    }

    /// Announce again at the next chance (we joined a ring, or reached new members).
    pub fn renew_soon(&mut self) {
        self.next_renewal = 0;
    }

    pub fn needs_pull(&self) -> bool {
        !self.pulled
    }

    pub fn pulled(&mut self, done: bool) {
        self.pulled = done;
    }
}

/// Check prefixes from the wire: at most [`MAX_WATCHED_PREFIXES`] of at most
/// [`MAX_WATCH_PREFIX_BYTES`] each.
pub fn prefixes_from_wire(prefixes: Vec<ByteBuf>) -> Option<Vec<Vec<u8>>> {
    if prefixes.len() > MAX_WATCHED_PREFIXES || prefixes.iter().any(|p| p.len() > MAX_WATCH_PREFIX_BYTES) {
        return None;
    }
    Some(prefixes.into_iter().map(ByteBuf::into_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128) -> NodeRef {
        NodeRef { id: Id(id), host: "127.0.0.1".into(), port: 1 }
    }

    #[test]
    fn an_owner_finds_the_subscribers_a_key_matches_and_leases_lapse() {
        let mut watch = Watch::default();
        assert!(watch.record(node(1), vec![Vec::new()], LEASE_MS, 0));
        assert!(watch.record(node(2), vec![b"user/".to_vec()], 1_000, 0));
        let ids = |nodes: Vec<NodeRef>| {
            let mut ids: Vec<u128> = nodes.iter().map(|n| n.id.0).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(watch.subscribers_for(b"user/7", 10)), vec![1, 2]);
        assert_eq!(ids(watch.subscribers_for(b"other", 10)), vec![1]);
        assert_eq!(ids(watch.subscribers_for(b"user/7", 1_000)), vec![1], "node 2's lease lapsed");
        assert!(watch.record(node(1), Vec::new(), LEASE_MS, 20));
        assert!(watch.subscribers_for(b"other", 20).is_empty(), "an empty subscription is a goodbye");
    }

    #[test]
    fn a_subscription_is_announced_when_it_changes_and_renewed_on_time() {
        let mut watch = Watch::default();
        assert_eq!(watch.due(0), None, "nothing watched, nothing to say");
        watch.set_own(vec![b"a".to_vec(), b"a".to_vec()]);
        assert_eq!(watch.due(0), Some(vec![b"a".to_vec()]));
        assert_eq!(watch.due(RENEW_MS - 1), None);
        assert_eq!(watch.due(RENEW_MS), Some(vec![b"a".to_vec()]));
        watch.set_client(node(9), vec![Vec::new()]);
        assert_eq!(watch.due(RENEW_MS + 1), Some(vec![Vec::new()]), "a client watching every key widens ours");
        watch.client_gone(Id(9));
        watch.set_own(Vec::new());
        assert_eq!(watch.due(RENEW_MS + 2), Some(Vec::new()), "stopping is announced once");
        assert_eq!(watch.due(10 * RENEW_MS), None);
    }

    #[test]
    fn a_full_table_takes_renewals_only() {
        let mut watch = Watch::default();
        for i in 0..MAX_SUBSCRIBERS as u128 {
            assert!(watch.record(node(i + 1), vec![Vec::new()], LEASE_MS, 0));
        }
        assert!(!watch.record(node(u128::MAX), vec![Vec::new()], LEASE_MS, 0));
        assert!(watch.record(node(1), vec![b"x".to_vec()], LEASE_MS, 0));
        assert_eq!(watch.subscribers(), MAX_SUBSCRIBERS);
    }
}
