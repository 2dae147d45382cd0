//! Local versioned storage: the replica a node holds, ordered by ring position so that a node
//! can hand over or digest exactly the arc `(a, b]` it is asked about.
//!
//! Writes are last-writer-wins by [`Version`]; a delete stores a tombstone with its version so a
//! stale replica cannot resurrect the key. Tombstones older than a horizon are collected by
//! [`Store::collect_tombstones`]; the horizon must exceed the time a replica can stay out of
//! sync (see `TOMBSTONE_HORIZON_MS` in the node).

use crate::id::Id;
use crate::version::Version;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Bound;

/// One replicated write: the key, its value (`None` = tombstone) and its version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    #[serde(with = "serde_bytes")]
    pub key: Vec<u8>,
    pub value: Option<serde_bytes::ByteBuf>,
    pub version: Version,
}

/// What [`Store::apply`] did with a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The write was newer and is now stored. `was_live` tells whether a live value preceded it.
    Stored { was_live: bool },
    /// An equal or newer version was already there; nothing changed.
    Stale,
}

#[derive(Clone, Debug)]
struct Entry {
    value: Option<Bytes>,
    version: Version,
}

/// Entries keyed by `(ring position, key)`: positions collide only for equal hashes, and the key
/// keeps such entries apart.
#[derive(Default, Debug)]
pub struct Store {
    entries: BTreeMap<(Id, Vec<u8>), Entry>,
    live: usize,
}

impl Store {
    pub fn new() -> Store {
        Store::default()
    }

    /// Number of live (non-tombstone) keys.
    pub fn live_len(&self) -> usize {
        self.live
    }

    /// Number of entries including tombstones.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The live value of `key` and its version.
    pub fn get(&self, key: &[u8]) -> Option<(Bytes, Version)> {
        let entry = self.entries.get(&(Id::of_key(key), key.to_vec()))?;
        entry.value.clone().map(|value| (value, entry.version))
    }

    /// The version stored for `key`, tombstone or not.
    pub fn version_of(&self, key: &[u8]) -> Option<Version> {
        self.entries.get(&(Id::of_key(key), key.to_vec())).map(|entry| entry.version)
    }

    /// Keep `item` if it is newer than what is stored.
    pub fn apply(&mut self, item: &Item) -> Applied {
        let slot = (Id::of_key(&item.key), item.key.clone());
        let value = item.value.as_ref().map(|v| Bytes::copy_from_slice(v));
        match self.entries.get_mut(&slot) {
            Some(entry) if entry.version >= item.version => Applied::Stale,
            Some(entry) => {
                let was_live = entry.value.is_some();
                self.live = self.live - was_live as usize + value.is_some() as usize;
                *entry = Entry { value, version: item.version };
                Applied::Stored { was_live }
            }
            None => {
                self.live += value.is_some() as usize;
                self.entries.insert(slot, Entry { value, version: item.version });
                Applied::Stored { was_live: false }
            }
        }
    }

    /// Forget `key` entirely (its value or tombstone), when another node is responsible for it.
    pub fn remove(&mut self, key: &[u8]) {
        if let Some(entry) = self.entries.remove(&(Id::of_key(key), key.to_vec())) {
            self.live -= entry.value.is_some() as usize;
        }
    }

    /// Every entry (tombstones included) whose position lies in `(from, to]`, clockwise.
    pub fn items_in(&self, from: Id, to: Id) -> Vec<Item> {
        self.range_iter(from, to).map(|(slot, entry)| to_item(slot, entry)).collect()
    }

    /// Live entries in `(from, to]` after the cursor `(position, key)`, in ring order starting at
    /// `from`, at most `limit` of them; the second value tells whether more remain.
    pub fn live_page(&self, from: Id, to: Id, after: Option<&(Id, Vec<u8>)>, limit: usize) -> (Vec<Item>, bool) {
        // Resume just before the cursor's position, then skip what the cursor already covered.
        let start = after.map_or(from, |(position, _)| Id(position.0.wrapping_sub(1)));
        let mut page = Vec::new();
        for (slot, entry) in self.range_iter(start, to) {
            let covered = after.is_some_and(|(position, key)| slot.0 == *position && slot.1 <= *key);
            if covered || entry.value.is_none() {
                continue;
            }
            if page.len() == limit {
                return (page, true);
            }
            page.push(to_item(slot, entry));
        }
        (page, false)
    }

    /// An order-sensitive digest of `(key, version)` over `(from, to]`: equal digests mean two
    /// replicas agree on that arc, so anti-entropy can skip it.
    pub fn digest(&self, from: Id, to: Id) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        for ((_, key), entry) in self.range_iter(from, to) {
            hasher.update(&(key.len() as u32).to_be_bytes());
            hasher.update(key);
            hasher.update(&entry.version.millis.to_be_bytes());
            hasher.update(&entry.version.counter.to_be_bytes());
            hasher.update(&entry.version.writer.to_bytes());
        }
        *hasher.finalize().as_bytes()
    }

    /// `(key, version)` of every entry in `(from, to]`, for comparing replicas.
    pub fn versions_in(&self, from: Id, to: Id) -> Vec<(Vec<u8>, Version)> {
        self.range_iter(from, to).map(|((_, key), entry)| (key.clone(), entry.version)).collect()
    }

    /// Drop every entry outside `(from, to]`; returns how many were dropped.
    pub fn retain_arc(&mut self, from: Id, to: Id) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(position, _), _| position.in_half_open(from, to));
        self.live = self.entries.values().filter(|e| e.value.is_some()).count();
        before - self.entries.len()
    }

    /// Remove tombstones whose version is older than `horizon_millis`.
    pub fn collect_tombstones(&mut self, horizon_millis: u64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| entry.value.is_some() || entry.version.millis >= horizon_millis);
        before - self.entries.len()
    }

    /// Live entries in `(from, to]`.
    pub fn count_live_in(&self, from: Id, to: Id) -> usize {
        self.range_iter(from, to).filter(|(_, entry)| entry.value.is_some()).count()
    }

    /// Up to `limit` entries whose position satisfies `select`, without copying the others.
    pub fn items_where(&self, select: impl Fn(Id) -> bool, limit: usize) -> Vec<Item> {
        self.entries.iter().filter(|((position, _), _)| select(*position)).take(limit).map(|(slot, entry)| to_item(slot, entry)).collect()
    }

    /// Every entry, for a node that hands its whole store over when leaving.
    pub fn all_items(&self) -> Vec<Item> {
        self.entries.iter().map(|(slot, entry)| to_item(slot, entry)).collect()
    }

    fn range_iter(&self, from: Id, to: Id) -> impl Iterator<Item = (&(Id, Vec<u8>), &Entry)> {
        // (from, to] is split at zero when it wraps; `from == to` means the whole ring.
        let wraps = from >= to;
        let first = self
            .entries
            .range((Bound::Excluded((from, Vec::new())), Bound::Unbounded))
            .filter(move |((p, _), _)| *p != from)
            .take_while(move |((p, _), _)| wraps || *p <= to);
        let second = self.entries.range(..).take_while(move |((p, _), _)| wraps && *p <= to);
        first.chain(second)
    }
}

fn to_item(slot: &(Id, Vec<u8>), entry: &Entry) -> Item {
    Item {
        key: slot.1.clone(),
        value: entry.value.as_ref().map(|v| serde_bytes::ByteBuf::from(v.to_vec())),
        version: entry.version,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(millis: u64) -> Version {
        Version { millis, counter: 0, writer: Id(1) }
    }

    fn item(key: &str, value: Option<&str>, millis: u64) -> Item {
        Item {
            key: key.as_bytes().to_vec(),
            value: value.map(|v| serde_bytes::ByteBuf::from(v.as_bytes().to_vec())),
            version: version(millis),
        }
    }

    #[test]
    fn newer_write_wins_and_older_is_ignored() {
        let mut store = Store::new();
        assert_eq!(store.apply(&item("k", Some("a"), 2)), Applied::Stored { was_live: false });
        assert_eq!(store.apply(&item("k", Some("old"), 1)), Applied::Stale);
        assert_eq!(store.get(b"k").unwrap().0, Bytes::from("a"));
        assert_eq!(store.apply(&item("k", Some("b"), 3)), Applied::Stored { was_live: true });
        assert_eq!(store.get(b"k").unwrap().0, Bytes::from("b"));
    }

    #[test]
    fn remove_forgets_values_and_tombstones() {
        let mut store = Store::new();
        store.apply(&item("a", Some("1"), 1));
        store.apply(&item("b", None, 1));
        store.remove(b"a");
        store.remove(b"b");
        store.remove(b"never");
        assert!(store.is_empty());
        assert_eq!(store.live_len(), 0);
    }

    #[test]
    fn tombstone_blocks_stale_resurrection() {
        let mut store = Store::new();
        store.apply(&item("k", Some("a"), 1));
        store.apply(&item("k", None, 5));
        assert_eq!(store.apply(&item("k", Some("a"), 1)), Applied::Stale);
        assert!(store.get(b"k").is_none());
        assert_eq!(store.live_len(), 0);
        assert_eq!(store.collect_tombstones(10), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn arcs_partition_the_ring() {
        let mut store = Store::new();
        for i in 0..200 {
            store.apply(&item(&format!("key{i}"), Some("v"), 1));
        }
        let cuts = [Id(u128::MAX / 3), Id(u128::MAX / 3 * 2), Id(7)];
        let total: usize = (0..3).map(|i| store.items_in(cuts[i], cuts[(i + 1) % 3]).len()).sum();
        assert_eq!(total, 200);
        assert_eq!(store.items_in(Id(9), Id(9)).len(), 200);
    }

    #[test]
    fn pages_walk_an_arc_without_gaps_or_repeats() {
        let mut store = Store::new();
        for i in 0..50 {
            store.apply(&item(&format!("key{i}"), Some("v"), 1));
        }
        store.apply(&item("key3", None, 2));
        let (from, to) = (Id(u128::MAX / 2), Id(u128::MAX / 2));
        let mut seen = Vec::new();
        let mut cursor: Option<(Id, Vec<u8>)> = None;
        loop {
            let (page, more) = store.live_page(from, to, cursor.as_ref(), 7);
            for it in &page {
                seen.push(it.key.clone());
            }
            cursor = page.last().map(|it| (Id::of_key(&it.key), it.key.clone()));
            if !more {
                break;
            }
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 49);
    }

    #[test]
    fn digests_agree_only_when_contents_agree() {
        let mut a = Store::new();
        let mut b = Store::new();
        a.apply(&item("x", Some("1"), 1));
        b.apply(&item("x", Some("1"), 1));
        assert_eq!(a.digest(Id(0), Id(0)), b.digest(Id(0), Id(0)));
        b.apply(&item("x", Some("2"), 2));
        assert_ne!(a.digest(Id(0), Id(0)), b.digest(Id(0), Id(0)));
    }
}
