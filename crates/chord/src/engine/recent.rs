//! A map from keys (peer ids, pairs of them) to a time, bounded in size: what a node remembers
//! per peer — when it last heard from it, until when it suspects it, when it last told it of
//! a merge. Peers come and go by the thousand (every handshake brings a new id), so each such
//! map has a cap: when an insert finds it full, the entries whose time is older than the
//! caller's horizon go first, and if that leaves it over half full, the oldest go until half
//! remain. The clearing runs only at the cap and leaves at most half, so an insert costs
//! O(1) amortised however the times fall (a `retain` at every insert past the cap would cost
//! the whole map each time when nothing is old enough to go).

use super::time::Millis;
use std::collections::HashMap;
use std::hash::Hash;

#[derive(Debug)]
pub struct RecentMap<K> {
    entries: HashMap<K, Millis>,
    cap: usize,
}

impl<K: Copy + Eq + Hash + Ord> RecentMap<K> {
    pub fn new(cap: usize) -> RecentMap<K> {
        RecentMap { entries: HashMap::new(), cap: cap.max(2) }
    }

    pub fn get(&self, key: &K) -> Option<&Millis> {
        self.entries.get(key)
    }

    pub fn remove(&mut self, key: &K) {
        self.entries.remove(key);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Set `key`'s time to `at`. A full map first drops the entries whose time is before
    /// `stale_before`, then, if more than half remain, the oldest (see the module docs).
    pub fn insert(&mut self, key: K, at: Millis, stale_before: Millis) {
        if self.entries.len() >= self.cap && !self.entries.contains_key(&key) {
            self.entries.retain(|_, time| *time >= stale_before);
            let keep = self.cap / 2;
            if self.entries.len() > keep {
                // The newest `keep`, ties broken by key so that a replay drops the same ones.
                let mut times: Vec<(Millis, K)> = self.entries.iter().map(|(k, t)| (*t, *k)).collect();
                let cut = times.len() - keep;
                times.select_nth_unstable(cut);
                for (_, old) in &times[..cut] {
                    self.entries.remove(old);
                }
            }
        }
        self.entries.insert(key, at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_drops_stale_entries_first_then_the_oldest_half() {
        let mut map = RecentMap::new(8);
        for key in 0..8u32 {
            map.insert(key, 100 + key as Millis, 0);
        }
        assert_eq!(map.len(), 8);
        // Entries before 105 are stale: 0..5 go, 5, 6, 7 stay with the new one.
        map.insert(8, 200, 105);
        assert_eq!(map.len(), 4);
        assert!(map.get(&4).is_none() && map.get(&5).is_some() && map.get(&8).is_some());
        // Nothing stale: the oldest go until half the cap remains, then the new one comes in.
        for key in 9..12u32 {
            map.insert(key, 300, 0);
        }
        assert_eq!(map.len(), 7);
        map.insert(12, 400, 0);
        map.insert(13, 400, 0);
        assert_eq!(map.len(), 5, "cleared to 4 at the cap, then one more");
        assert!(map.get(&5).is_none() && map.get(&12).is_some());
    }

    #[test]
    fn updating_a_key_never_clears() {
        let mut map = RecentMap::new(4);
        for key in 0..4u32 {
            map.insert(key, 1, 0);
        }
        map.insert(2, 50, 1_000);
        assert_eq!(map.len(), 4);
        assert_eq!(map.get(&2), Some(&50));
    }

    #[test]
    fn a_flood_of_fresh_keys_stays_within_the_cap() {
        let mut map = RecentMap::new(1024);
        for key in 0..1_000_000u64 {
            map.insert(key, 5, 0);
            assert!(map.len() <= 1024);
        }
    }
}
