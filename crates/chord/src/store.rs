//! Local versioned storage: the replica a node holds, ordered by ring position so that a node
//! can hand over or digest exactly the arc `(a, b]` it is asked about.
//!
//! [`Store`] is the index the engine works on: per entry its version, its digest share, whether
//! it is live and its value's length, so digests, counts, version lists and pages of keys need
//! no value. The values themselves live in the index (a node in memory, the default) or behind
//! [`Values`] (a node with a `dataDir`: the embedded on-disk store of `crate::node::disk`). A
//! write to a `Values` store is staged there at once, in memory; it becomes durable when the
//! driver commits what was staged (the engine asks with `Action::Persist`), so nothing here
//! waits on a disk. Reading a value may read the disk synchronously (a point read from the
//! store's cache), as libp2p's record store is read.
//!
//! Writes are last-writer-wins by [`Version`]; a delete stores a tombstone with its version so a
//! stale replica cannot resurrect the key. Tombstones older than a horizon are collected by
//! [`Store::collect_tombstones`]; the horizon must exceed the time a replica can stay out of
//! sync (see `TOMBSTONE_HORIZON_MS` in the node).

use crate::error::Error;
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

impl Item {
    /// Bytes it takes on the wire, within a few: key, value and a bound for version and encoding.
    pub fn wire_bytes(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, |v| v.len()) + 64
    }
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
    /// The value, when values live in the index (no [`Values`]); always `None` otherwise.
    value: Option<Bytes>,
    version: Version,
    /// This entry's share of arc digests (see [`entry_hash`]).
    hash: u128,
    /// A value (true) or a tombstone.
    live: bool,
    /// The value's length in bytes (0 for a tombstone).
    len: u32,
}

/// Where the values of a [`Store`] live when not in its index: an embedded on-disk store. Every
/// call is synchronous and cheap: writes are only staged (in memory) and become durable when
/// the node's driver commits them; a read finds a staged value or reads the store's cache or
/// disk.
pub trait Values: Send {
    /// Stage an entry: its version and its value (`None` = a tombstone).
    fn put(&mut self, position: Id, key: &[u8], version: &Version, value: Option<&[u8]>);
    /// Stage the removal of an entry (value and version).
    fn remove(&mut self, position: Id, key: &[u8]);
    /// The value of a live entry.
    fn get(&self, position: Id, key: &[u8]) -> Result<Bytes, Error>;
    /// `Err` while writes are refused (a full disk), with the error to answer them with.
    fn writable(&self) -> Result<(), Error>;
}

/// An entry as the on-disk store keeps its index, for loading it without reading values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub key: Vec<u8>,
    pub version: Version,
    pub live: bool,
    pub len: u32,
}

/// The ring is cut into 2^12 equal buckets that keep running aggregates (XOR of entry hashes,
/// live count), so an arc's digest or count costs O(buckets in the arc + entries of its two
/// end buckets) instead of a walk over every entry under the node's lock.
const BUCKET_BITS: u32 = 12;
const BUCKETS: usize = 1 << BUCKET_BITS;
const BUCKET_SHIFT: u32 = 128 - BUCKET_BITS;

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    digest: u128,
    entries: u32,
    live: u32,
}

/// Entries keyed by `(ring position, key)`: positions collide only for equal hashes, and the key
/// keeps such entries apart.
#[derive(Default)]
pub struct Store {
    entries: BTreeMap<(Id, Vec<u8>), Entry>,
    /// Empty until the first entry arrives: a node that stores nothing (a client, or one of
    /// the simulator's 100,000 routing-only nodes) does not pay for 2^12 buckets.
    buckets: Vec<Bucket>,
    live: usize,
    /// Bytes of keys and values of every entry (tombstones count their key).
    bytes: usize,
    /// Where values live when not in `entries` (a node with a `dataDir`).
    values: Option<Box<dyn Values>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("entries", &self.entries.len()).field("live", &self.live).field("on_disk", &self.values.is_some()).finish()
    }
}

/// An entry's contribution to arc digests: the first 16 bytes of BLAKE3 over
/// `key length (u32 BE) ‖ key ‖ millis (u64 BE) ‖ counter (u32 BE) ‖ writer (16 bytes)`.
/// Digests XOR these, so they are independent of order and updated in O(1) per write.
pub fn entry_hash(key: &[u8], version: &Version) -> u128 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&(key.len() as u32).to_be_bytes());
    hasher.update(key);
    hasher.update(&version.millis.to_be_bytes());
    hasher.update(&version.counter.to_be_bytes());
    hasher.update(&version.writer.to_bytes());
    let mut first = [0u8; 16];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    u128::from_be_bytes(first)
}

fn bucket_of(position: Id) -> usize {
    (position.0 >> BUCKET_SHIFT) as usize
}

fn bucket_start(bucket: usize) -> Id {
    Id((bucket as u128) << BUCKET_SHIFT)
}

fn bucket_end(bucket: usize) -> Id {
    Id(bucket_start(bucket).0 | ((1u128 << BUCKET_SHIFT) - 1))
}

impl Store {
    /// A store whose values live in its index (in memory).
    pub fn new() -> Store {
        Store::default()
    }

    /// A store whose values live in `values`, with the index of what it already holds (loaded
    /// from disk without reading a value).
    pub fn with_values(values: Box<dyn Values>, index: impl IntoIterator<Item = IndexEntry>) -> Store {
        let mut store = Store { values: Some(values), ..Store::default() };
        for IndexEntry { key, version, live, len } in index {
            let position = Id::of_key(&key);
            let entry = Entry { value: None, hash: entry_hash(&key, &version), version, live, len };
            store.insert_entry(position, key, entry);
        }
        store
    }

    /// Whether a write must be committed (`Action::Persist`) before it counts as held.
    pub fn is_durable(&self) -> bool {
        self.values.is_some()
    }

    /// `Err` while writes are refused (the disk is full): the error to answer them with.
    pub fn writable(&self) -> Result<(), Error> {
        self.values.as_ref().map_or(Ok(()), |values| values.writable())
    }

    /// Put an entry in the index, replacing what was there, keeping the aggregates; returns
    /// the entry replaced.
    fn insert_entry(&mut self, position: Id, key: Vec<u8>, entry: Entry) -> Option<Entry> {
        let key_len = key.len();
        self.live += entry.live as usize;
        self.bytes += key_len + entry.len as usize;
        self.account(position, &entry, 1);
        let old = self.entries.insert((position, key), entry)?;
        self.live -= old.live as usize;
        self.bytes -= key_len + old.len as usize;
        self.account(position, &old, -1);
        Some(old)
    }

    /// The value of a live entry: from the index, or read from where values live.
    fn value_of(&self, slot: &(Id, Vec<u8>), entry: &Entry) -> Result<Option<Bytes>, Error> {
        if !entry.live {
            return Ok(None);
        }
        match (&entry.value, &self.values) {
            (Some(value), _) => Ok(Some(value.clone())),
            (None, Some(values)) => values.get(slot.0, &slot.1).map(Some),
            (None, None) => Ok(Some(Bytes::new())),
        }
    }

    fn account(&mut self, position: Id, entry: &Entry, sign: i32) {
        if self.buckets.is_empty() {
            self.buckets = vec![Bucket::default(); BUCKETS];
        }
        let bucket = &mut self.buckets[bucket_of(position)];
        bucket.digest ^= entry.hash;
        if sign > 0 {
            bucket.entries += 1;
            bucket.live += entry.live as u32;
        } else {
            bucket.entries -= 1;
            bucket.live -= entry.live as u32;
        }
    }

    /// Number of live (non-tombstone) keys.
    pub fn live_len(&self) -> usize {
        self.live
    }

    /// Bytes of keys and values held, tombstones' keys included (not the index overhead).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Number of entries including tombstones.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The live value of `key` and its version. A value that cannot be read (a damaged file)
    /// counts as absent here; [`Store::read`] tells why.
    pub fn get(&self, key: &[u8]) -> Option<(Bytes, Version)> {
        self.read(key).ok().flatten()
    }

    /// The live value of `key` and its version, or why it cannot be read.
    pub fn read(&self, key: &[u8]) -> Result<Option<(Bytes, Version)>, Error> {
        let slot = (Id::of_key(key), key.to_vec());
        let Some(entry) = self.entries.get(&slot) else { return Ok(None) };
        Ok(self.value_of(&slot, entry)?.map(|value| (value, entry.version)))
    }

    /// The version stored for `key`, tombstone or not.
    pub fn version_of(&self, key: &[u8]) -> Option<Version> {
        self.entries.get(&(Id::of_key(key), key.to_vec())).map(|entry| entry.version)
    }

    /// Keep `item` if it is newer than what is stored (staging it where values live).
    pub fn apply(&mut self, item: &Item) -> Applied {
        let position = Id::of_key(&item.key);
        let slot = (position, item.key.clone());
        let was_live = match self.entries.get(&slot) {
            Some(entry) if entry.version >= item.version => return Applied::Stale,
            Some(entry) => entry.live,
            None => false,
        };
        let live = item.value.is_some();
        let len = item.value.as_ref().map_or(0, |v| v.len()) as u32;
        let value = match &mut self.values {
            Some(values) => {
                values.put(position, &item.key, &item.version, item.value.as_deref().map(|v| &v[..]));
                None
            }
            None => item.value.as_ref().map(|v| Bytes::copy_from_slice(v)),
        };
        let entry = Entry { hash: entry_hash(&item.key, &item.version), value, version: item.version, live, len };
        self.insert_entry(position, slot.1, entry);
        Applied::Stored { was_live }
    }

    /// Forget `key` entirely (its value or tombstone), when another node is responsible for it.
    pub fn remove(&mut self, key: &[u8]) {
        let position = Id::of_key(key);
        if let Some(entry) = self.entries.remove(&(position, key.to_vec())) {
            self.live -= entry.live as usize;
            self.bytes -= key.len() + entry.len as usize;
            self.account(position, &entry, -1);
            if let Some(values) = &mut self.values {
                values.remove(position, key);
            }
        }
    }

    /// Forget every entry (a node that handed everything over when leaving); values on disk
    /// are removed too.
    pub fn clear(&mut self) {
        if let Some(values) = &mut self.values {
            for (position, key) in self.entries.keys() {
                values.remove(*position, key);
            }
        }
        let values = self.values.take();
        *self = Store { values, ..Store::default() };
    }

    /// Every entry (tombstones included) whose position lies in `(from, to]`, clockwise.
    pub fn items_in(&self, from: Id, to: Id) -> Vec<Item> {
        self.range_iter(from, to).filter_map(|(slot, entry)| self.to_item(slot, entry)).collect()
    }

    /// Live entries in `(from, to]` after the cursor `(position, key)`, in ring order starting at
    /// `from`: at most `limit` of them, and no more once their keys (and values, if
    /// `with_values`) pass `budget` bytes — but at least one. The second value tells whether
    /// more remain.
    pub fn live_page(&self, from: Id, to: Id, after: Option<&(Id, Vec<u8>)>, limit: usize, budget: usize, with_values: bool) -> (Vec<Item>, bool) {
        let mut page = Vec::new();
        let mut bytes = 0;
        for (slot, entry) in self.range_after(from, to, after) {
            if !entry.live {
                continue;
            }
            if page.len() == limit || (!page.is_empty() && bytes >= budget) {
                return (page, true);
            }
            let item = if with_values {
                match self.to_item(slot, entry) {
                    Some(item) => item,
                    None => continue, // unreadable (reported by the store)
                }
            } else {
                Item { key: slot.1.clone(), value: None, version: entry.version }
            };
            bytes += item.wire_bytes();
            page.push(item);
        }
        (page, false)
    }

    /// `(key, version)` of the entries of `(from, to]` after the cursor, tombstones included, at
    /// most `limit` and no more once past `budget` bytes (at least one); the second value tells
    /// whether more remain.
    pub fn versions_page(&self, from: Id, to: Id, after: Option<&(Id, Vec<u8>)>, limit: usize, budget: usize) -> (Vec<(Vec<u8>, Version)>, bool) {
        let mut page = Vec::new();
        let mut bytes = 0;
        for ((_, key), entry) in self.range_after(from, to, after) {
            if page.len() == limit || (!page.is_empty() && bytes >= budget) {
                return (page, true);
            }
            bytes += key.len() + 48;
            page.push((key.clone(), entry.version));
        }
        (page, false)
    }

    /// Entries of `(from, to]` in ring order from `from`, after the cursor `(position, key)`.
    fn range_after<'a>(&'a self, from: Id, to: Id, after: Option<&'a (Id, Vec<u8>)>) -> impl Iterator<Item = (&'a (Id, Vec<u8>), &'a Entry)> {
        // Resume just before the cursor's position, then skip what the cursor already covered.
        let start = after.map_or(from, |(position, _)| Id(position.0.wrapping_sub(1)));
        self.range_iter(start, to).filter(move |(slot, _)| !after.is_some_and(|(position, key)| slot.0 == *position && slot.1 <= *key))
    }

    /// A digest of `(key, version)` over `(from, to]`: equal digests mean two replicas agree
    /// on that arc (with overwhelming probability), so anti-entropy can skip it.
    pub fn digest(&self, from: Id, to: Id) -> [u8; 16] {
        self.fold_arc(from, to).0.to_be_bytes()
    }

    /// Live entries in `(from, to]`.
    pub fn count_live_in(&self, from: Id, to: Id) -> usize {
        self.fold_arc(from, to).1
    }

    /// (XOR of entry hashes, live count) over `(from, to]`: whole buckets from their running
    /// aggregates, the two end buckets entry by entry.
    fn fold_arc(&self, from: Id, to: Id) -> (u128, usize) {
        if self.buckets.is_empty() {
            return (0, 0);
        }
        // Partial ranges only: here `a == b` means an empty range, not the whole ring.
        let exact = |a: Id, b: Id| {
            if a == b {
                return (0u128, 0usize);
            }
            self.range_iter(a, b).fold((0u128, 0usize), |(d, n), (_, e)| (d ^ e.hash, n + e.live as usize))
        };
        if from == to {
            return self.buckets.iter().fold((0, 0), |(d, n), b| (d ^ b.digest, n + b.live as usize));
        }
        let (first, last) = (bucket_of(from), bucket_of(to));
        let steps = match (first == last, from < to) {
            (true, true) => return exact(from, to),
            (true, false) => BUCKETS,
            (false, _) => (last + BUCKETS - first) % BUCKETS,
        };
        let (mut digest, mut live) = exact(from, bucket_end(first));
        for step in 1..steps {
            let bucket = &self.buckets[(first + step) % BUCKETS];
            digest ^= bucket.digest;
            live += bucket.live as usize;
        }
        let (tail_digest, tail_live) = exact(Id(bucket_start(last).0.wrapping_sub(1)), to);
        (digest ^ tail_digest, live + tail_live)
    }

    /// `(from, to]` cut at bucket boundaries, in ring order: both replicas cut an arc the same
    /// way, so anti-entropy can compare sub-arc digests and list versions only where they differ.
    pub fn split_arc(from: Id, to: Id) -> Vec<(Id, Id)> {
        let (first, last) = (bucket_of(from), bucket_of(to));
        let steps = match (from == to, first == last, from < to) {
            (true, _, _) | (false, true, false) => BUCKETS,
            (false, true, true) => 0,
            (false, false, _) => (last + BUCKETS - first) % BUCKETS,
        };
        let mut arcs = Vec::with_capacity(steps + 1);
        let mut start = from;
        for step in 0..steps {
            let end = bucket_end((first + step) % BUCKETS);
            if end != start {
                arcs.push((start, end));
            }
            start = end;
        }
        if start != to || arcs.is_empty() {
            arcs.push((start, to));
        }
        arcs
    }

    /// The digest of each piece of [`Store::split_arc`]`(from, to)`; whole buckets come from
    /// their running aggregate.
    pub fn sub_digests(&self, from: Id, to: Id) -> Vec<[u8; 16]> {
        if self.buckets.is_empty() {
            return vec![[0; 16]; Store::split_arc(from, to).len()];
        }
        Store::split_arc(from, to)
            .into_iter()
            .map(|(a, b)| {
                let whole = a == bucket_end(bucket_of(a)) && b == bucket_end(bucket_of(b)) && bucket_of(b) == (bucket_of(a) + 1) % BUCKETS;
                if whole {
                    self.buckets[bucket_of(b)].digest.to_be_bytes()
                } else {
                    self.digest(a, b)
                }
            })
            .collect()
    }

    /// Entries that no arc in `covered` contains, at most `limit` of them, visiting only
    /// buckets that hold entries and are not wholly covered.
    pub fn items_outside(&self, covered: &[(Id, Id)], limit: usize) -> Vec<Item> {
        let inside = |p: Id| covered.iter().any(|(a, b)| p.in_half_open(*a, *b));
        let wholly_inside = |bucket: usize| {
            let (start, end) = (bucket_start(bucket), bucket_end(bucket));
            covered.iter().any(|(a, b)| start.in_half_open(*a, *b) && end.in_half_open(*a, *b) && a.distance_to(start) <= a.distance_to(end))
        };
        let mut out = Vec::new();
        for bucket in 0..self.buckets.len() {
            if self.buckets[bucket].entries == 0 || wholly_inside(bucket) {
                continue;
            }
            let upper = match bucket + 1 {
                BUCKETS => Bound::Unbounded,
                next => Bound::Excluded((bucket_start(next), Vec::new())),
            };
            for (slot, entry) in self.entries.range((Bound::Included((bucket_start(bucket), Vec::new())), upper)) {
                if !inside(slot.0) {
                    out.extend(self.to_item(slot, entry));
                    if out.len() == limit {
                        return out;
                    }
                }
            }
        }
        out
    }

    /// `(key, version)` of every entry in `(from, to]` after the cursor `after` up to and
    /// including `until` (to the end when `None`), in ring order: our side of one page of a
    /// replica's version list.
    pub fn versions_between(&self, from: Id, to: Id, after: Option<&(Id, Vec<u8>)>, until: Option<&(Id, Vec<u8>)>) -> Vec<(Vec<u8>, Version)> {
        let mut out = Vec::new();
        for (slot, entry) in self.range_after(from, to, after) {
            out.push((slot.1.clone(), entry.version));
            if until.is_some_and(|u| u.0 == slot.0 && u.1 == slot.1) {
                break;
            }
        }
        out
    }

    /// Drop every entry outside `(from, to]`; returns how many were dropped.
    pub fn retain_arc(&mut self, from: Id, to: Id) -> usize {
        self.remove_where(|position, _| !position.in_half_open(from, to))
    }

    /// Remove tombstones whose version is older than `horizon_millis`.
    pub fn collect_tombstones(&mut self, horizon_millis: u64) -> usize {
        if self.entries.len() == self.live {
            return 0; // no tombstones: skip the walk
        }
        self.remove_where(|_, entry| !entry.live && entry.version.millis < horizon_millis)
    }

    fn remove_where(&mut self, doomed: impl Fn(Id, &Entry) -> bool) -> usize {
        let keys: Vec<Vec<u8>> = self.entries.iter().filter(|((p, _), e)| doomed(*p, e)).map(|((_, k), _)| k.clone()).collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len()
    }

    /// Every entry, for a node that hands its whole store over when leaving.
    pub fn all_items(&self) -> Vec<Item> {
        self.entries.iter().filter_map(|(slot, entry)| self.to_item(slot, entry)).collect()
    }

    /// The entry as an item (its value read from where values live); `None` if the value cannot
    /// be read (a damaged file, reported by the on-disk store).
    fn to_item(&self, slot: &(Id, Vec<u8>), entry: &Entry) -> Option<Item> {
        let value = self.value_of(slot, entry).ok()?;
        Some(Item { key: slot.1.clone(), value: value.map(|v| serde_bytes::ByteBuf::from(v.to_vec())), version: entry.version })
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
    fn bytes_follow_writes_tombstones_and_removals() {
        let mut store = Store::new();
        store.apply(&item("key", Some("value"), 1));
        assert_eq!(store.bytes(), 8);
        store.apply(&item("key", Some("v"), 2));
        assert_eq!(store.bytes(), 4);
        store.apply(&item("key", None, 3));
        assert_eq!(store.bytes(), 3, "a tombstone keeps its key");
        store.apply(&item("other", Some("12"), 1));
        store.remove(b"key");
        assert_eq!(store.bytes(), 7);
        store.collect_tombstones(10);
        store.retain_arc(Id(0), Id(0));
        assert_eq!(store.bytes(), 7);
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
            let (page, more) = store.live_page(from, to, cursor.as_ref(), 7, usize::MAX, true);
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
    fn version_lists_are_paged_by_bytes_and_cover_everything_once() {
        let mut store = Store::new();
        for i in 0..3000u32 {
            let mut key = vec![b'x'; 1024];
            key[..4].copy_from_slice(&i.to_be_bytes());
            store.apply(&Item { key, value: None, version: version(i as u64) });
        }
        let (from, to) = (Id(u128::MAX / 3), Id(u128::MAX / 3));
        let mut seen = Vec::new();
        let mut cursor: Option<(Id, Vec<u8>)> = None;
        let mut pages = 0;
        loop {
            let (page, more) = store.versions_page(from, to, cursor.as_ref(), 4096, 256 << 10);
            assert!(page.len() <= 256 + 1, "cut by bytes: {} entries", page.len());
            let last = page.last().map(|(k, _)| (Id::of_key(k), k.clone()));
            assert_eq!(store.versions_between(from, to, cursor.as_ref(), if more { last.as_ref() } else { None }), page, "our side of the same stretch");
            seen.extend(page.into_iter().map(|(k, _)| k));
            pages += 1;
            if !more {
                break;
            }
            cursor = last;
        }
        assert!(pages >= 12);
        assert_eq!(seen.len(), 3000);
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 3000);
    }

    #[test]
    fn bucketed_digests_and_counts_match_a_full_walk() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut store = Store::new();
        for i in 0..3000 {
            let value = if i % 7 == 0 { None } else { Some("v") };
            store.apply(&item(&format!("key{i}"), value, i as u64));
        }
        for i in (0..3000).step_by(11) {
            store.apply(&item(&format!("key{i}"), Some("newer"), 10_000 + i as u64));
        }
        store.remove(b"key5");
        let walk = |from: Id, to: Id| {
            store.range_iter(from, to).fold((0u128, 0usize), |(d, n), ((_, k), e)| (d ^ entry_hash(k, &e.version), n + e.live as usize))
        };
        let edges = [Id(0), Id(u128::MAX), bucket_start(5), bucket_end(5), bucket_start(BUCKETS - 1)];
        for _ in 0..300 {
            let pick = |rng: &mut rand::rngs::StdRng| if rng.gen_bool(0.2) { edges[rng.gen_range(0..edges.len())] } else { Id(rng.gen()) };
            let (from, to) = (pick(&mut rng), pick(&mut rng));
            let (digest, live) = walk(from, to);
            assert_eq!(store.digest(from, to), digest.to_be_bytes(), "digest of ({from:?}, {to:?}]");
            assert_eq!(store.count_live_in(from, to), live, "count of ({from:?}, {to:?}]");
        }
    }

    #[test]
    fn split_arcs_tile_the_arc_and_their_digests_combine() {
        let mut store = Store::new();
        for i in 0..2000 {
            store.apply(&item(&format!("key{i}"), Some("v"), i as u64));
        }
        let cases = [
            (Id(0), Id(0)),
            (Id(u128::MAX / 3), Id(u128::MAX / 3 * 2)),
            (Id(u128::MAX / 3 * 2), Id(u128::MAX / 3)),
            (bucket_end(7), bucket_end(9)),
            (Id(5), Id(9)),
            (Id(9), Id(5)),
        ];
        for (from, to) in cases {
            let pieces = Store::split_arc(from, to);
            assert_eq!(pieces.first().unwrap().0, from);
            assert_eq!(pieces.last().unwrap().1, to);
            assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0), "contiguous");
            let combined = store.sub_digests(from, to).iter().fold(0u128, |acc, d| acc ^ u128::from_be_bytes(*d));
            assert_eq!(combined.to_be_bytes(), store.digest(from, to), "({from:?}, {to:?}]");
            let counted: usize = pieces.iter().map(|(a, b)| store.count_live_in(*a, *b)).sum();
            assert_eq!(counted, store.count_live_in(from, to));
        }
    }

    #[test]
    fn items_outside_finds_exactly_the_uncovered_entries() {
        let mut store = Store::new();
        for i in 0..500 {
            store.apply(&item(&format!("key{i}"), Some("v"), 1));
        }
        let covered = [(Id(u128::MAX / 4), Id(u128::MAX / 2)), (Id(u128::MAX - 1000), Id(u128::MAX / 8))];
        let outside = store.items_outside(&covered, usize::MAX);
        let expected = store.all_items().into_iter().filter(|i| !covered.iter().any(|(a, b)| Id::of_key(&i.key).in_half_open(*a, *b))).count();
        assert_eq!(outside.len(), expected);
        assert!(expected > 0);
        assert!(store.items_outside(&[(Id(7), Id(7))], usize::MAX).is_empty());
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

/// The engine tests' stand-in for the on-disk store: writes are staged, and become durable only
/// when the test commits them; a full disk refuses writes.
#[cfg(test)]
pub(crate) mod fake {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Entries = BTreeMap<(Id, Vec<u8>), Option<(Version, Option<Vec<u8>>)>>;

    #[derive(Default)]
    pub struct State {
        pub staged: Entries,
        pub durable: BTreeMap<(Id, Vec<u8>), (Version, Option<Vec<u8>>)>,
        pub full: bool,
        /// Keys whose values fail to read back (a damaged file).
        pub damaged: std::collections::HashSet<Vec<u8>>,
    }

    #[derive(Clone, Default)]
    pub struct FakeDisk(pub Arc<Mutex<State>>);

    impl FakeDisk {
        /// Make everything staged durable.
        pub fn commit(&self) {
            let mut state = self.0.lock().unwrap();
            for (slot, entry) in std::mem::take(&mut state.staged) {
                match entry {
                    Some(entry) => state.durable.insert(slot, entry),
                    None => state.durable.remove(&slot),
                };
            }
        }

        /// The index a restarted node would load.
        pub fn index(&self) -> Vec<IndexEntry> {
            let state = self.0.lock().unwrap();
            state.durable.iter().map(|((_, key), (version, value))| IndexEntry { key: key.clone(), version: *version, live: value.is_some(), len: value.as_ref().map_or(0, |v| v.len()) as u32 }).collect()
        }
    }

    impl Values for FakeDisk {
        fn put(&mut self, position: Id, key: &[u8], version: &Version, value: Option<&[u8]>) {
            self.0.lock().unwrap().staged.insert((position, key.to_vec()), Some((*version, value.map(|v| v.to_vec()))));
        }

        fn remove(&mut self, position: Id, key: &[u8]) {
            self.0.lock().unwrap().staged.insert((position, key.to_vec()), None);
        }

        fn get(&self, position: Id, key: &[u8]) -> Result<Bytes, Error> {
            let state = self.0.lock().unwrap();
            if state.damaged.contains(key) {
                return Err(Error::StorageCorrupt(format!("the value of {key:?} fails its checksum")));
            }
            let slot = (position, key.to_vec());
            let value = match state.staged.get(&slot) {
                Some(entry) => entry.as_ref().and_then(|(_, v)| v.clone()),
                None => state.durable.get(&slot).and_then(|(_, v)| v.clone()),
            };
            value.map(Bytes::from).ok_or_else(|| Error::Internal("no value".into()))
        }

        fn writable(&self) -> Result<(), Error> {
            if self.0.lock().unwrap().full {
                return Err(Error::StorageFull("the disk is full".into()));
            }
            Ok(())
        }
    }
}
