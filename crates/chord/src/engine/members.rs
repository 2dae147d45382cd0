//! The membership table: every ring member this node knows of, so that a get or a set can go
//! straight to its key's owner in one hop (as one-hop DHTs do: Gupta, Liskov & Rodrigues,
//! NSDI 2004; D1HT) instead of walking the fingers.
//!
//! Kept complete by anti-entropy rather than flooding: every maintenance round a member
//! compares an 8-byte digest of its table with one of its routing neighbours (picked at
//! random), and only when they differ do they swap the entries of the buckets of the id space
//! whose digests differ. A calm ring pays one small exchange per node per round; a join or a
//! departure spreads epidemically, in O(log N) rounds.
//!
//! Departures are entries too, so that anti-entropy does not bring a dead node back: each entry
//! carries an *incarnation* (the wall-clock millisecond the node started, or later if it had to
//! refute a rumour of its death) and whether it is alive. A death recorded at incarnation `i`
//! beats life at `i` or older; a node that hears of its own death takes a newer incarnation, so
//! a false suspicion heals itself (as in SWIM, Das et al. 2002). Deaths are forgotten after
//! [`DEATH_TTL_MS`]; a restarted node comes back with a newer incarnation anyway.
//!
//! The table is only worth its upkeep while one hop is possible: an operation goes straight to
//! its owner only while the ring fits a mesh in the connection table (`Core::mesh_fits`, three
//! quarters of `maxPeers`). So it holds at most twice `maxPeers` entries ([`Members::bound`]);
//! a table that reaches it is *saturated* — the ring is too large for one hop — and stops
//! gossiping and guiding operations (they relay along the fingers, `Core::relay_via`) until
//! deaths expire and bring it under. A node never pays O(N) state or bandwidth for a ring it
//! could not reach in one hop anyway. The exchange itself is `gossip`'s.

use super::time::Millis;
use crate::id::Id;
use crate::protocol::MemberEntry;
use crate::routing::NodeRef;
use std::collections::BTreeMap;

/// Entries a table holds at most (alive and recently dead), whatever `maxPeers`: at ~130 bytes
/// an entry, about a megabyte.
pub const MAX_MEMBERS: usize = 8192;
/// Entries a table holds at least, for small `maxPeers`.
const MIN_BOUND: usize = 32;
/// A recorded death is kept this long, enough for it to reach every member; then forgotten.
pub const DEATH_TTL_MS: Millis = 600_000;
/// The id space is cut into this many buckets for anti-entropy (top bits of the id).
pub const MEMBER_BUCKETS: usize = 64;
const BUCKET_SHIFT: u32 = 128 - MEMBER_BUCKETS.trailing_zeros();

/// Does `a` say something newer than `b` about the same node? A death at an incarnation
/// beats life at it; a newer incarnation beats both.
fn supersedes(a: &MemberEntry, b: &MemberEntry) -> bool {
    (a.incarnation, !a.alive) > (b.incarnation, !b.alive)
}

fn entry_hash(entry: &MemberEntry) -> u64 {
    let mut hasher = blake3::Hasher::new();
    hasher.update(&entry.node.id.to_bytes());
    hasher.update(entry.node.host.as_bytes());
    hasher.update(&entry.node.port.to_be_bytes());
    hasher.update(&entry.incarnation.to_be_bytes());
    hasher.update(&[entry.alive as u8]);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hasher.finalize().as_bytes()[..8]);
    u64::from_be_bytes(first)
}

#[derive(Clone, Debug)]
struct Member {
    entry: MemberEntry,
    /// When this node recorded the entry (for forgetting deaths).
    since: Millis,
    /// `entry_hash(entry)`, kept so that digests cost no hashing.
    hash: u64,
}

/// The members this node knows of, alive and recently dead, with the digest of each bucket
/// kept up to date as entries come and go (a round's comparison costs no scan).
#[derive(Clone, Debug)]
pub struct Members {
    entries: BTreeMap<Id, Member>,
    alive: usize,
    buckets: Vec<u64>,
    bound: usize,
}

impl Default for Members {
    fn default() -> Members {
        Members::new(MAX_MEMBERS)
    }
}

pub fn bucket_of(id: Id) -> usize {
    (id.0 >> BUCKET_SHIFT) as usize
}

impl Members {
    /// A table for a node of `max_peers` connections: it holds twice that many entries, within
    /// [`MIN_BOUND`]..=[`MAX_MEMBERS`].
    pub fn for_max_peers(max_peers: usize) -> Members {
        Members::new((2 * max_peers).clamp(MIN_BOUND, MAX_MEMBERS))
    }

    fn new(bound: usize) -> Members {
        Members { entries: BTreeMap::new(), alive: 0, buckets: vec![0; MEMBER_BUCKETS], bound }
    }

    /// The table is full: the ring is (or lately was) larger than one hop can serve. It then
    /// neither gossips nor names owners.
    pub fn saturated(&self) -> bool {
        self.entries.len() >= self.bound
    }

    /// Live members.
    pub fn len(&self) -> usize {
        self.alive
    }

    pub fn get(&self, id: Id) -> Option<&NodeRef> {
        self.entries.get(&id).filter(|m| m.entry.alive).map(|m| &m.entry.node)
    }

    pub fn contains(&self, id: Id) -> bool {
        self.get(id).is_some()
    }

    /// The first live member at or after `position`, wrapping: its owner, if the table is
    /// complete.
    pub fn following(&self, position: Id) -> Option<&NodeRef> {
        self.entries.range(position..).chain(self.entries.iter()).find(|(_, m)| m.entry.alive).map(|(_, m)| &m.entry.node)
    }

    /// The first `n` live members at or after `position`, clockwise (the key's owner and the
    /// successors holding its replicas), fewer when the table holds fewer.
    pub fn following_n(&self, position: Id, n: usize) -> Vec<&NodeRef> {
        let live = self.entries.range(position..).chain(self.entries.range(..position)).filter(|(_, m)| m.entry.alive);
        live.take(n).map(|(_, m)| &m.entry.node).collect()
    }

    /// We met `node` (a handshake, an answer): alive. An entry we hold with a known
    /// incarnation stays as it is (its address follows the node's), unless it records a
    /// death, which meeting the node refutes only through the node's own newer incarnation
    /// (gossip), not by hearsay.
    pub fn saw(&mut self, node: &NodeRef, now: Millis) {
        match self.entries.get(&node.id) {
            Some(member) if member.entry.alive && member.entry.node != *node => {
                let entry = MemberEntry { node: node.clone(), ..member.entry.clone() };
                self.insert(entry, now);
            }
            Some(_) => {}
            None => self.insert(MemberEntry { node: node.clone(), incarnation: 0, alive: true }, now),
        }
    }

    /// `id` is dead (it left, or we suspect it): recorded at the incarnation we know, so its
    /// next incarnation brings it back.
    pub fn died(&mut self, id: Id, now: Millis) {
        match self.entries.get(&id) {
            Some(member) if member.entry.alive => {
                let entry = MemberEntry { alive: false, ..member.entry.clone() };
                self.insert(entry, now);
            }
            _ => {}
        }
    }

    /// Merge an entry heard from a peer; returns whether it changed our table.
    pub fn merge(&mut self, entry: MemberEntry, now: Millis) -> bool {
        match self.entries.get(&entry.node.id) {
            Some(ours) if !supersedes(&entry, &ours.entry) => false,
            _ => {
                self.insert(entry, now);
                true
            }
        }
    }

    fn insert(&mut self, entry: MemberEntry, now: Millis) {
        let id = entry.node.id;
        self.take(id);
        let hash = entry_hash(&entry);
        self.alive += entry.alive as usize;
        self.buckets[bucket_of(id)] ^= hash;
        self.entries.insert(id, Member { entry, since: now, hash });
        self.bound();
    }

    fn take(&mut self, id: Id) -> Option<Member> {
        let member = self.entries.remove(&id)?;
        self.alive -= member.entry.alive as usize;
        self.buckets[bucket_of(id)] ^= member.hash;
        Some(member)
    }

    /// Over the bound: deaths go first (oldest first), then live members at random positions
    /// (the highest ids: the table stays a fair sample of the ring).
    fn bound(&mut self) {
        while self.entries.len() > self.bound {
            let victim = self.entries.iter().filter(|(_, m)| !m.entry.alive).min_by_key(|(_, m)| m.since).map(|(id, _)| *id).or_else(|| self.entries.keys().next_back().copied());
            match victim {
                Some(id) => {
                    self.take(id);
                }
                None => break,
            }
        }
    }

    /// Forget deaths older than [`DEATH_TTL_MS`].
    pub fn expire(&mut self, now: Millis) {
        let old: Vec<Id> = self.entries.iter().filter(|(_, m)| !m.entry.alive && now.saturating_sub(m.since) >= DEATH_TTL_MS).map(|(id, _)| *id).collect();
        for id in old {
            self.take(id);
        }
    }

    /// Our own entry says `me` at `incarnation`; a rumour of our death at it or later is
    /// refuted by a newer incarnation. Returns the incarnation to go on with.
    pub fn refute(&self, me: Id, incarnation: u64) -> u64 {
        match self.entries.get(&me) {
            Some(member) if !member.entry.alive && member.entry.incarnation >= incarnation => member.entry.incarnation + 1,
            _ => incarnation,
        }
    }

    /// Digests of every bucket (anti-entropy compares them).
    pub fn digests(&self) -> Vec<u64> {
        self.buckets.clone()
    }

    /// The whole table in one digest.
    pub fn digest(&self) -> u64 {
        self.buckets.iter().fold(0, |digest, bucket| digest ^ bucket)
    }

    /// Our entries in the given buckets, at most `limit`.
    pub fn entries_in(&self, buckets: &[u16], limit: usize) -> Vec<MemberEntry> {
        self.entries.values().filter(|m| buckets.contains(&(bucket_of(m.entry.node.id) as u16))).take(limit).map(|m| m.entry.clone()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u128) -> NodeRef {
        NodeRef { id: Id(id), host: "h".into(), port: 1 }
    }

    fn entry(id: u128, incarnation: u64, alive: bool) -> MemberEntry {
        MemberEntry { node: node(id), incarnation, alive }
    }

    #[test]
    fn a_death_beats_life_at_its_incarnation_and_a_newer_life_beats_the_death() {
        let mut members = Members::default();
        assert!(members.merge(entry(1, 10, true), 0));
        assert!(members.merge(entry(1, 10, false), 0), "death at the same incarnation wins");
        assert!(!members.contains(Id(1)));
        assert!(!members.merge(entry(1, 10, true), 0), "hearsay of life at that incarnation does not bring it back");
        members.saw(&node(1), 0);
        assert!(!members.contains(Id(1)), "nor does meeting it: only its newer incarnation does");
        assert!(members.merge(entry(1, 11, true), 0));
        assert!(members.contains(Id(1)) && members.len() == 1);
        // A node told of its own death refutes it.
        assert_eq!(members.refute(Id(2), 5), 5);
        members.merge(entry(2, 7, false), 0);
        assert_eq!(members.refute(Id(2), 5), 8);
    }

    #[test]
    fn tables_that_differ_show_it_in_their_digests_and_agree_after_swapping_the_differing_buckets() {
        let (mut a, mut b) = (Members::default(), Members::default());
        for id in 0..200u128 {
            let id = id.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
            a.merge(MemberEntry { node: node(id), incarnation: 1, alive: true }, 0);
            b.merge(MemberEntry { node: node(id), incarnation: 1, alive: true }, 0);
        }
        assert_eq!(a.digest(), b.digest());
        let joiner = u128::MAX / 3;
        a.merge(entry(joiner, 5, true), 0);
        let dead = 7u128.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835);
        b.merge(entry(dead, 1, false), 0);
        assert_ne!(a.digest(), b.digest());
        let differing: Vec<u16> = a.digests().iter().zip(b.digests()).enumerate().filter(|(_, (x, y))| *x != y).map(|(i, _)| i as u16).collect();
        assert!(differing.len() <= 2, "only the buckets that changed: {differing:?}");
        for entry in a.entries_in(&differing, usize::MAX) {
            b.merge(entry, 0);
        }
        for entry in b.entries_in(&differing, usize::MAX) {
            a.merge(entry, 0);
        }
        assert_eq!(a.digest(), b.digest());
        assert!(a.contains(Id(joiner)) && b.contains(Id(joiner)));
        assert!(!a.contains(Id(dead)) && !b.contains(Id(dead)), "the death spread, not the life");
    }

    #[test]
    fn bucket_digests_kept_as_entries_change_equal_digests_computed_afresh() {
        let mut members = Members::default();
        for id in 0..300u128 {
            members.saw(&node(id.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)), 0);
        }
        for id in (0..300u128).step_by(7) {
            members.died(Id(id.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)), 5);
        }
        members.saw(&NodeRef { id: Id(0), host: "moved".into(), port: 2 }, 6);
        members.expire(5 + DEATH_TTL_MS);
        let mut afresh = vec![0u64; MEMBER_BUCKETS];
        for (id, member) in &members.entries {
            afresh[bucket_of(*id)] ^= entry_hash(&member.entry);
        }
        assert_eq!(members.digests(), afresh);
        assert_eq!(members.len(), members.entries.values().filter(|m| m.entry.alive).count());
    }

    #[test]
    fn owners_are_found_by_position_and_the_table_is_bounded() {
        let mut members = Members::default();
        for id in [10u128, 20, 30] {
            members.saw(&node(id), 0);
        }
        assert_eq!(members.following(Id(15)).map(|n| n.id), Some(Id(20)));
        assert_eq!(members.following(Id(31)).map(|n| n.id), Some(Id(10)), "wrapping");
        members.died(Id(20), 0);
        assert_eq!(members.following(Id(15)).map(|n| n.id), Some(Id(30)), "the dead are skipped");
        members.expire(DEATH_TTL_MS);
        assert_eq!(members.entries.len(), 2, "old deaths forgotten");
        assert!(!members.saturated());
        for id in 0..(MAX_MEMBERS as u128 + 10) {
            members.saw(&node(1000 + id), 1);
        }
        assert!(members.entries.len() <= MAX_MEMBERS && members.saturated());
        let mut small = Members::for_max_peers(64);
        for id in 0..200 {
            small.saw(&node(id), 1);
        }
        assert_eq!(small.entries.len(), 128, "twice maxPeers");
        assert!(small.saturated());
    }
}
