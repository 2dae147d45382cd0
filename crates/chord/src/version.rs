//! Versions of stored values: a hybrid logical clock (Kulkarni et al., 2014) with the writer's
//! node id as the final tiebreak, so any two writes are totally ordered the same way on every
//! replica and concurrent writes converge (last writer wins by version, not by arrival).
//!
//! The clock is pure: wall time is passed in by the caller. It never wraps: when the logical
//! counter is spent within one millisecond, the physical part moves on. Versions from peers are
//! observed only within a bounded drift of the receiver's wall clock (see [`within_drift`]; the
//! engine's guard refuses the rest), so one peer cannot drag every clock to the end of time.

use crate::id::Id;
use serde::{Deserialize, Serialize};

/// A write's version. Ordered by `(millis, counter, writer)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Version {
    /// Physical part: milliseconds since the Unix epoch, never behind any version seen.
    pub millis: u64,
    /// Logical part: breaks ties inside one millisecond.
    pub counter: u32,
    /// The writer, so versions from two nodes never compare equal.
    pub writer: Id,
}

/// A hybrid logical clock owned by one node.
#[derive(Debug, Clone)]
pub struct Clock {
    node: Id,
    last_millis: u64,
    counter: u32,
}

impl Clock {
    pub fn new(node: Id) -> Clock {
        Clock { node, last_millis: 0, counter: 0 }
    }

    /// A fresh version strictly greater than every version this clock issued or observed.
    pub fn tick(&mut self, wall_millis: u64) -> Version {
        if wall_millis > self.last_millis {
            self.last_millis = wall_millis;
            self.counter = 0;
        } else if self.counter == u32::MAX {
            // The counter is spent: borrow the next millisecond instead of wrapping to a lower
            // version (which would make this write lose to older ones).
            self.last_millis = self.last_millis.saturating_add(1);
            self.counter = 0;
        } else {
            self.counter += 1;
        }
        Version { millis: self.last_millis, counter: self.counter, writer: self.node }
    }

    /// The physical part of the newest version issued or observed (what tests check was not
    /// dragged ahead).
    pub fn high_water_millis(&self) -> u64 {
        self.last_millis
    }

    /// The newest version issued or observed: a clock resumed past it never goes back.
    pub fn high_water(&self) -> Version {
        Version { millis: self.last_millis, counter: self.counter, writer: self.node }
    }

    /// Merge a version seen from another node so that later ticks order after it.
    pub fn observe(&mut self, seen: &Version) {
        if seen.millis > self.last_millis {
            self.last_millis = seen.millis;
            self.counter = seen.counter;
        } else if seen.millis == self.last_millis && seen.counter > self.counter {
            self.counter = seen.counter;
        }
    }
}

/// Is `version` at most `max_drift_ms` ahead of `wall_millis` (the receiver's wall clock)?
/// Versions further ahead are refused, never observed.
pub fn within_drift(version: &Version, wall_millis: u64, max_drift_ms: u64) -> bool {
    version.millis <= wall_millis.saturating_add(max_drift_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_increase_even_when_the_wall_clock_stalls_or_goes_back() {
        let mut clock = Clock::new(Id(1));
        let a = clock.tick(100);
        let b = clock.tick(100);
        let c = clock.tick(50);
        assert!(a < b && b < c);
    }

    #[test]
    fn observing_a_future_version_orders_later_ticks_after_it() {
        let mut clock = Clock::new(Id(1));
        let remote = Version { millis: 10_000, counter: 7, writer: Id(2) };
        clock.observe(&remote);
        assert!(clock.tick(5) > remote);
    }

    #[test]
    fn a_spent_counter_advances_the_physical_part_instead_of_wrapping() {
        let mut clock = Clock::new(Id(1));
        let remote = Version { millis: 1_000, counter: u32::MAX, writer: Id(2) };
        clock.observe(&remote);
        let next = clock.tick(1_000);
        assert!(next > remote, "{next:?}");
        assert_eq!((next.millis, next.counter), (1_001, 0));
        assert!(clock.tick(1_000) > next);
    }

    #[test]
    fn drift_is_bounded_by_the_receivers_wall_clock() {
        let at = |millis| Version { millis, counter: u32::MAX, writer: Id(2) };
        assert!(within_drift(&at(1_060_000), 1_000_000, 60_000));
        assert!(!within_drift(&at(1_060_001), 1_000_000, 60_000));
        assert!(!within_drift(&at(u64::MAX), 1_000_000, 60_000));
        assert!(within_drift(&at(u64::MAX), u64::MAX - 5, 60_000));
    }

    #[test]
    fn writer_breaks_ties() {
        let a = Version { millis: 1, counter: 0, writer: Id(1) };
        let b = Version { millis: 1, counter: 0, writer: Id(2) };
        assert!(a < b);
    }
}
