//! Read leases: a node may answer a repeated get from memory, and never with a value older than
//! a write that resolved before the get started (AFS callbacks, Chubby leases).
//!
//! - **Holder** ([`ReadCache`]). A get that misses asks the owner for the value with a lease
//!   (`GetLeased`). The answer may be kept until `sent + LEASE_MS`, timed from when the request
//!   left, by our own monotonic clock: the owner's lease started later, so ours ends first.
//!   An `Invalidate` from an owner drops the keys at once and is remembered for `LEASE_MS`, so
//!   an answer that crossed it on the way (sent before, arriving after) is not kept.
//! - **Owner** ([`Leases`]). A lease is granted only by the owner of the key, with its arc
//!   synced and settled; each grant is recorded. A write is acknowledged only once every
//!   holder of a live lease on the key confirmed the invalidation or that lease ran out — so a
//!   silent holder delays a write by at most `LEASE_MS`.
//! - **New owners.** A node that takes over part of an arc (a join, a predecessor's failure,
//!   rings merging) does not know the leases its previous owner granted; it takes no write
//!   for that arc until `LEASE_MS` after its sync of the arc ended (see `ArcState`), by which
//!   time every such lease ran out. The previous owner stopped granting before that sync could
//!   end: it hands the arc over (Notify) before the new owner's first sync.

use super::time::Millis;
use crate::routing::NodeRef;
use std::collections::{BTreeMap, HashMap};

/// How long a lease lasts (`config::READ_LEASE`). Bounds how long a silent holder (crashed,
/// partitioned) delays a write to a key it cached, and how long a node that took over an arc
/// waits before writes.
pub const LEASE_MS: Millis = crate::config::READ_LEASE.as_millis() as Millis;

/// Keys with live leases an owner records at most; past it, gets are answered without one.
pub const MAX_LEASED_KEYS: usize = 100_000;

/// Holders recorded per key at most; past it, that key is answered without a lease.
pub const MAX_HOLDERS_PER_KEY: usize = 256;

/// Bytes a cache entry costs beyond its key and value (map nodes, LRU index, bookkeeping).
const ENTRY_OVERHEAD: usize = 96;

/// Invalidations a holder remembers key by key; past it (a flood of `Invalidate`), it
/// remembers only the time of the latest and keeps no answer to a get sent before then.
const MAX_REMEMBERED_INVALIDATIONS: usize = 65_536;
/// Slots of the doorkeeper (`ReadCache::wants_lease`): the keys read once lately, one per slot
/// (128 KiB).
const DOORKEEPER_SLOTS: usize = 16_384;

/// The owner's record of the leases it granted: key → holders with the time each lease ends.
#[derive(Debug, Default)]
pub struct Leases {
    by_key: HashMap<Vec<u8>, Vec<(NodeRef, Millis)>>,
}

impl Leases {
    /// Record a lease on `key` for `holder` until `now + LEASE_MS`; `false` when the table is
    /// full (the get is then answered without a lease).
    pub fn grant(&mut self, key: &[u8], holder: &NodeRef, now: Millis) -> bool {
        let until = now + LEASE_MS;
        if let Some(holders) = self.by_key.get_mut(key) {
            holders.retain(|(_, end)| *end > now);
            if let Some(entry) = holders.iter_mut().find(|(node, _)| node.id == holder.id) {
                entry.1 = until;
                return true;
            }
            if holders.len() >= MAX_HOLDERS_PER_KEY {
                return false;
            }
            holders.push((holder.clone(), until));
            return true;
        }
        if self.by_key.len() >= MAX_LEASED_KEYS {
            self.expire(now);
            if self.by_key.len() >= MAX_LEASED_KEYS {
                return false;
            }
        }
        self.by_key.insert(key.to_vec(), vec![(holder.clone(), until)]);
        true
    }

    /// A write to `key`: the holders of live leases on it (with when each ends), to invalidate
    /// before the write is acknowledged. Their leases end here.
    pub fn revoke(&mut self, key: &[u8], now: Millis) -> Vec<(NodeRef, Millis)> {
        let mut holders = self.by_key.remove(key).unwrap_or_default();
        holders.retain(|(_, end)| *end > now);
        holders
    }

    /// Forget leases that ran out.
    pub fn expire(&mut self, now: Millis) {
        self.by_key.retain(|_, holders| {
            holders.retain(|(_, end)| *end > now);
            !holders.is_empty()
        });
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

#[derive(Debug)]
struct Cached {
    /// `None`: the key was absent (absence is cached too).
    value: Option<Vec<u8>>,
    until: Millis,
    /// Position in the LRU order.
    used: u64,
}

/// What a holder keeps: values read with a lease, bounded in bytes, least recently used first
/// out, each until its lease ends.
#[derive(Debug)]
pub struct ReadCache {
    capacity: usize,
    bytes: usize,
    entries: HashMap<Vec<u8>, Cached>,
    lru: BTreeMap<u64, Vec<u8>>,
    tick: u64,
    /// Keys invalidated lately, with when: an answer to a get sent before that is not kept.
    invalidated: HashMap<Vec<u8>, Millis>,
    /// When the map above overflowed last: no answer to a get sent before then is kept.
    invalidated_all_at: Option<Millis>,
    /// Hashes of keys read once lately, direct-mapped (a newer key takes the slot).
    doorkeeper: Vec<u64>,
    pub hits: u64,
    pub misses: u64,
}

impl ReadCache {
    /// A cache of at most `capacity` bytes (keys, values and per-entry overhead); 0 disables.
    pub fn new(capacity: usize) -> ReadCache {
        ReadCache {
            capacity,
            bytes: 0,
            entries: HashMap::new(),
            lru: BTreeMap::new(),
            tick: 0,
            invalidated: HashMap::new(),
            invalidated_all_at: None,
            doorkeeper: if capacity > 0 { vec![0; DOORKEEPER_SLOTS] } else { Vec::new() },
            hits: 0,
            misses: 0,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The cached entry of `key` if its lease still holds: `Some(None)` for a cached absence.
    pub fn get(&mut self, key: &[u8], now: Millis) -> Option<Option<Vec<u8>>> {
        let found = self.peek(key, now);
        if found.is_none() && self.enabled() {
            self.misses += 1;
        }
        found
    }

    /// Is a get of `key` (a miss) worth a lease? Only for a key read lately already: a key read
    /// once (uniform reads over many keys) would cost the owner a lease record and this node
    /// an entry, for nothing. The doorkeeper of TinyLFU (Einziger et al. 2017), direct-mapped.
    pub fn wants_lease(&mut self, key: &[u8]) -> bool {
        if !self.enabled() {
            return false;
        }
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        std::hash::Hasher::write(&mut hasher, key);
        let hash = std::hash::Hasher::finish(&hasher) | 1;
        let slot = &mut self.doorkeeper[(hash as usize) % DOORKEEPER_SLOTS];
        let seen = *slot == hash;
        *slot = hash;
        seen
    }

    /// As `get`, but a miss is not counted (the caller goes on to a `get` that counts it).
    pub fn peek(&mut self, key: &[u8], now: Millis) -> Option<Option<Vec<u8>>> {
        if !self.enabled() {
            return None;
        }
        let live = self.entries.get(key).map(|entry| entry.until > now);
        match live {
            Some(true) => {
                self.tick += 1;
                let entry = self.entries.get_mut(key).expect("present");
                self.lru.remove(&entry.used);
                entry.used = self.tick;
                self.lru.insert(self.tick, key.to_vec());
                self.hits += 1;
                Some(entry.value.clone())
            }
            Some(false) => {
                self.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keep the answer to a get with a lease sent at `sent`, unless the lease ran out already,
    /// an invalidation of the key arrived since `sent`, or it does not fit.
    pub fn insert(&mut self, key: Vec<u8>, value: Option<Vec<u8>>, sent: Millis, now: Millis) {
        let until = sent + LEASE_MS;
        let crossed = self.invalidated.get(&key).is_some_and(|at| *at >= sent) || self.invalidated_all_at.is_some_and(|at| at >= sent);
        if !self.enabled() || until <= now || crossed {
            return;
        }
        let size = cost(&key, value.as_deref());
        if size > self.capacity {
            return;
        }
        self.remove(&key);
        while self.bytes + size > self.capacity {
            let Some((_, oldest)) = self.lru.pop_first() else { break };
            if let Some(entry) = self.entries.remove(&oldest) {
                self.bytes -= cost(&oldest, entry.value.as_deref());
            }
        }
        self.tick += 1;
        self.lru.insert(self.tick, key.clone());
        self.bytes += size;
        self.entries.insert(key, Cached { value, until, used: self.tick });
    }

    /// An owner's `Invalidate` (or our own write): drop the keys, and remember when.
    pub fn invalidate(&mut self, key: &[u8], now: Millis) {
        self.remove(key);
        if !self.enabled() {
            return;
        }
        if self.invalidated.len() >= MAX_REMEMBERED_INVALIDATIONS && !self.invalidated.contains_key(key) {
            self.invalidated.clear();
            self.invalidated_all_at = Some(now);
            return;
        }
        self.invalidated.insert(key.to_vec(), now);
    }

    /// Drop everything (rings merging around us: versions we never saw may win now).
    pub fn clear(&mut self, now: Millis) {
        let keys: Vec<Vec<u8>> = self.entries.keys().cloned().collect();
        for key in keys {
            self.invalidate(&key, now);
        }
    }

    /// Forget invalidations older than a lease and entries whose lease ended.
    pub fn expire(&mut self, now: Millis) {
        self.invalidated.retain(|_, at| now < *at + LEASE_MS);
        self.invalidated_all_at = self.invalidated_all_at.filter(|at| now < *at + LEASE_MS);
        let ended: Vec<Vec<u8>> = self.entries.iter().filter(|(_, e)| e.until <= now).map(|(k, _)| k.clone()).collect();
        for key in ended {
            self.remove(&key);
        }
    }

    fn remove(&mut self, key: &[u8]) {
        if let Some(entry) = self.entries.remove(key) {
            self.lru.remove(&entry.used);
            self.bytes -= cost(key, entry.value.as_deref());
        }
    }
}

fn cost(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_leased_from_its_second_read_on() {
        let mut cache = ReadCache::new(1 << 20);
        assert!(!cache.wants_lease(b"once"), "a first read asks for no lease");
        assert!(cache.wants_lease(b"once"), "a second one does");
        assert!(cache.wants_lease(b"once"));
        assert!(!ReadCache::new(0).wants_lease(b"once"), "no cache, no lease");
    }

    #[test]
    fn a_cached_value_lives_until_its_lease_ends_timed_from_the_request() {
        let mut cache = ReadCache::new(1 << 20);
        cache.insert(b"k".to_vec(), Some(b"v".to_vec()), 100, 150);
        assert_eq!(cache.get(b"k", 150), Some(Some(b"v".to_vec())));
        assert_eq!(cache.get(b"k", 100 + LEASE_MS - 1), Some(Some(b"v".to_vec())));
        assert_eq!(cache.get(b"k", 100 + LEASE_MS), None, "ended with the lease, not later");
        cache.insert(b"gone".to_vec(), None, 200, 210);
        assert_eq!(cache.get(b"gone", 220), Some(None), "absence is cached too");
        assert_eq!((cache.hits, cache.misses), (3, 1));
    }

    #[test]
    fn an_answer_that_crossed_an_invalidation_is_not_kept() {
        let mut cache = ReadCache::new(1 << 20);
        cache.invalidate(b"k", 120);
        cache.insert(b"k".to_vec(), Some(b"old".to_vec()), 100, 130);
        assert_eq!(cache.get(b"k", 131), None, "sent before the invalidation arrived");
        cache.insert(b"k".to_vec(), Some(b"new".to_vec()), 125, 140);
        assert_eq!(cache.get(b"k", 141), Some(Some(b"new".to_vec())), "sent after it");
        cache.invalidate(b"k", 150);
        assert_eq!(cache.get(b"k", 151), None);
        // An answer arriving after its lease would have ended is not kept either.
        cache.insert(b"late".to_vec(), Some(b"v".to_vec()), 0, LEASE_MS);
        assert_eq!(cache.get(b"late", LEASE_MS), None);
    }

    #[test]
    fn a_flood_of_invalidations_is_remembered_in_bounded_memory_and_still_keeps_nothing_crossed() {
        let mut cache = ReadCache::new(1 << 20);
        for i in 0..MAX_REMEMBERED_INVALIDATIONS + 10 {
            cache.invalidate(format!("k{i}").as_bytes(), 100);
        }
        assert!(cache.invalidated.len() <= MAX_REMEMBERED_INVALIDATIONS);
        cache.insert(b"any".to_vec(), Some(b"v".to_vec()), 90, 110);
        assert_eq!(cache.get(b"any", 111), None, "sent before the overflow: not kept");
        cache.insert(b"any".to_vec(), Some(b"v".to_vec()), 101, 111);
        assert_eq!(cache.get(b"any", 112), Some(Some(b"v".to_vec())));
        cache.expire(100 + LEASE_MS);
        assert!(cache.invalidated_all_at.is_none());
    }

    #[test]
    fn the_cache_stays_within_its_bytes_dropping_the_least_recently_used() {
        let entry = cost(b"k00", Some(&[0u8; 100]));
        let mut cache = ReadCache::new(entry * 3);
        for i in 0..3 {
            cache.insert(format!("k{i:02}").into_bytes(), Some(vec![0; 100]), 0, 0);
        }
        assert!(cache.get(b"k00", 1).is_some(), "k00 is now the most recent");
        cache.insert(b"k03".to_vec(), Some(vec![0; 100]), 0, 0);
        assert!(cache.bytes() <= entry * 3);
        assert!(cache.get(b"k01", 1).is_none(), "the least recently used went");
        assert!(cache.get(b"k00", 1).is_some() && cache.get(b"k03", 1).is_some());
        cache.insert(b"huge".to_vec(), Some(vec![0; entry * 4]), 0, 0);
        assert!(cache.get(b"huge", 1).is_none(), "larger than the whole cache: not kept");
        let mut off = ReadCache::new(0);
        off.insert(b"k".to_vec(), Some(b"v".to_vec()), 0, 0);
        assert!(off.get(b"k", 1).is_none() && !off.enabled());
    }

    fn node(id: u128) -> NodeRef {
        NodeRef { id: crate::id::Id(id), host: "127.0.0.1".into(), port: id as u16 }
    }

    #[test]
    fn an_owner_revokes_only_live_leases_and_renews_a_holders_lease() {
        let mut leases = Leases::default();
        assert!(leases.grant(b"k", &node(1), 0));
        assert!(leases.grant(b"k", &node(2), 500));
        assert!(leases.grant(b"k", &node(1), 600), "renewed, not doubled");
        let mut revoked = leases.revoke(b"k", LEASE_MS + 100);
        revoked.sort_by_key(|(n, _)| n.id);
        assert_eq!(revoked, vec![(node(1), 600 + LEASE_MS), (node(2), 500 + LEASE_MS)]);
        assert!(leases.revoke(b"k", 0).is_empty(), "revoked leases end");
        leases.grant(b"old", &node(3), 0);
        assert!(leases.revoke(b"old", LEASE_MS).is_empty(), "a lease that ran out needs no invalidation");
        leases.grant(b"x", &node(3), 0);
        leases.expire(LEASE_MS);
        assert!(leases.is_empty());
    }
}
