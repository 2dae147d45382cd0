//! The door: which half-open connections may wait for their handshake. An outsider without
//! the network key cannot finish a handshake, but each socket it opens would otherwise hold a
//! handshake slot until the deadline, and enough of them (a few dozen idle sockets, renewed)
//! would keep a node closed to everyone. So waiting sockets are shared out fairly and the
//! newest wins: a source holds at most [`MAX_PENDING_HANDSHAKES_PER_SOURCE`] slots, the node
//! at most `MAX_PENDING_HANDSHAKES`, and a newcomer that finds them full takes the slot of the
//! oldest waiting socket — of its own source when that source is at its share, else of the
//! source holding the most. A real handshake takes a few round trips, so it completes long
//! before the attacker's renewed sockets age past it; idle sockets are the ones that go.
//! A socket whose first Noise message authenticated holds the network key (`psk0`): it is
//! `proven`, leaves the shares and cannot be pushed out — on a keyed network outsiders'
//! sockets, idle or junk, never displace a key holder's handshake, even from its own address
//! (a NAT, loopback). Proven handshakes are bounded by the handshake deadline.

use crate::config::{MAX_PENDING_HANDSHAKES, MAX_PENDING_HANDSHAKES_PER_SOURCE};
use std::collections::HashMap;
use std::net::IpAddr;
use tokio::task::AbortHandle;

struct Waiting {
    source: IpAddr,
    /// Admission order: smaller is older.
    order: u64,
    abort: Option<AbortHandle>,
}

#[derive(Default)]
pub(crate) struct Gate {
    waiting: HashMap<u64, Waiting>,
    /// Tickets whose peer proved the network key (see `proven`).
    proven: std::collections::HashSet<u64>,
    next: u64,
}

impl Gate {
    /// A socket from `source` knocks: its ticket, and the waiting sockets to close (aborted
    /// here) to make room for it.
    pub fn admit(&mut self, source: IpAddr) -> u64 {
        let from_source = self.waiting.values().filter(|w| w.source == source).count();
        if from_source >= MAX_PENDING_HANDSHAKES_PER_SOURCE {
            self.evict_oldest(Some(source));
        } else if self.waiting.len() >= MAX_PENDING_HANDSHAKES {
            let busiest = self.busiest_source();
            self.evict_oldest(busiest);
        }
        self.next += 1;
        self.waiting.insert(self.next, Waiting { source, order: self.next, abort: None });
        self.next
    }

    /// The handshake task of `ticket` started: it can be aborted from now on.
    pub fn started(&mut self, ticket: u64, abort: AbortHandle) {
        match self.waiting.get_mut(&ticket) {
            Some(waiting) => waiting.abort = Some(abort),
            // Already proven (the task ran ahead of us) or done: nothing to do.
            None if self.proven.contains(&ticket) => {}
            // Evicted before it started: it never runs. (A task that ended before this call
            // is aborted harmlessly.)
            None => abort.abort(),
        }
    }

    /// The handshake of `ticket` ended (done, failed or timed out).
    pub fn left(&mut self, ticket: u64) {
        self.waiting.remove(&ticket);
        self.proven.remove(&ticket);
    }

    /// The peer of `ticket` proved it holds the network key: out of the shares, never evicted.
    pub fn proven(&mut self, ticket: u64) {
        if self.waiting.remove(&ticket).is_some() {
            self.proven.insert(ticket);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.waiting.len()
    }

    fn busiest_source(&self) -> Option<IpAddr> {
        let mut counts: HashMap<IpAddr, usize> = HashMap::new();
        for waiting in self.waiting.values() {
            *counts.entry(waiting.source).or_default() += 1;
        }
        counts.into_iter().max_by_key(|(source, n)| (*n, *source)).map(|(source, _)| source)
    }

    fn evict_oldest(&mut self, source: Option<IpAddr>) {
        let oldest = self.waiting.iter().filter(|(_, w)| source.is_none_or(|s| w.source == s)).min_by_key(|(_, w)| w.order).map(|(ticket, _)| *ticket);
        if let Some(waiting) = oldest.and_then(|ticket| self.waiting.remove(&ticket)) {
            if let Some(abort) = waiting.abort {
                abort.abort();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_source_holds_at_most_its_share_and_its_newest_socket_wins() {
        let mut gate = Gate::default();
        let first = gate.admit(ip(1));
        for _ in 1..MAX_PENDING_HANDSHAKES_PER_SOURCE {
            gate.admit(ip(1));
        }
        assert_eq!(gate.len(), MAX_PENDING_HANDSHAKES_PER_SOURCE);
        let newest = gate.admit(ip(1));
        assert_eq!(gate.len(), MAX_PENDING_HANDSHAKES_PER_SOURCE, "the oldest of that source gave way");
        assert!(!gate.waiting.contains_key(&first) && gate.waiting.contains_key(&newest));
    }

    #[test]
    fn a_proven_handshake_is_never_pushed_out() {
        let mut gate = Gate::default();
        let key_holder = gate.admit(ip(1));
        gate.proven(key_holder);
        for _ in 0..10 * MAX_PENDING_HANDSHAKES {
            gate.admit(ip(1));
        }
        assert!(gate.proven.contains(&key_holder));
        assert_eq!(gate.len(), MAX_PENDING_HANDSHAKES_PER_SOURCE, "outsiders still share one source's slots");
        gate.left(key_holder);
        assert!(gate.proven.is_empty());
    }

    #[test]
    fn when_full_the_busiest_source_gives_way_not_a_newcomer() {
        let mut gate = Gate::default();
        // Many sources at their share fill the door.
        let mut source = 0u8;
        while gate.len() < MAX_PENDING_HANDSHAKES {
            source += 1;
            for _ in 0..MAX_PENDING_HANDSHAKES_PER_SOURCE.min(MAX_PENDING_HANDSHAKES - gate.len()) {
                gate.admit(ip(source));
            }
        }
        let newcomer = gate.admit(ip(250));
        assert!(gate.waiting.contains_key(&newcomer));
        assert_eq!(gate.len(), MAX_PENDING_HANDSHAKES);
        gate.left(newcomer);
        assert_eq!(gate.len(), MAX_PENDING_HANDSHAKES - 1);
    }
}
