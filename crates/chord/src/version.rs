//! Versions of stored values: a hybrid logical clock (Kulkarni et al., 2014) with the writer's
//! node id as the final tiebreak, so any two writes are totally ordered the same way on every
//! replica and concurrent writes converge (last writer wins by version, not by arrival).
//!
//! The clock is pure: wall time is passed in by the caller.

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
        } else {
            self.counter += 1;
        }
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
    fn writer_breaks_ties() {
        let a = Version { millis: 1, counter: 0, writer: Id(1) };
        let b = Version { millis: 1, counter: 0, writer: Id(2) };
        assert!(a < b);
    }
}
