//! A bounded memory of recently seen message ids, so each broadcast (mesh messages and ring
//! events alike) is delivered and forwarded once however the links are arranged.

use crate::id::Id;
use std::collections::{HashSet, VecDeque};

/// Broadcast ids remembered for de-duplication.
pub const SEEN_BROADCASTS: usize = 65_536;

#[derive(Debug, Default)]
pub struct SeenSet {
    ids: HashSet<Id>,
    order: VecDeque<Id>,
}

impl SeenSet {
    pub fn new() -> SeenSet {
        SeenSet::default()
    }

    /// True the first time an id is offered.
    pub fn first_time(&mut self, id: Id) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_BROADCASTS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_id_is_seen_once_within_the_window() {
        let mut seen = SeenSet::new();
        assert!(seen.first_time(Id(1)));
        assert!(!seen.first_time(Id(1)));
        for i in 2..(SEEN_BROADCASTS as u128 + 2) {
            assert!(seen.first_time(Id(i)));
        }
        // The window is bounded: the oldest id was forgotten, the newest are remembered.
        assert_eq!(seen.ids.len(), SEEN_BROADCASTS);
        assert!(seen.first_time(Id(1)));
        assert!(!seen.first_time(Id(SEEN_BROADCASTS as u128)));
    }
}
