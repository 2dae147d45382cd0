//! The connections this node keeps, and the policy that chooses them: which peer to let in
//! when every slot is taken, which connection to close when it no longer serves. An engine
//! decision (as actions and answers, with the time passed in), so the simulator runs the same
//! policy the node does.
//!
//! A ring member keeps connections to its routing set — predecessor, successor list, distinct
//! fingers — and to whatever it is waiting on; everything else is a cache: a connection to a
//! member outside the routing set closes once idle for [`IDLE_CLOSE_MS`], and when all
//! `maxPeers` slots are taken a newcomer (a joiner finding its place, a client, an owner we
//! must reach) takes the slot of the least recently used connection that routing does not
//! need. Only a node whose every connection serves routing or a request in flight refuses
//! (`busy`) — with about log2 N + r routing peers per member, far fewer than `maxPeers`, a
//! ring grows past any one node's table. Clients connected to us (`join: false`) are not
//! closed for idleness (they may be listening for events), only displaced by LRU at the
//! limit. A plain MeshSocket keeps the mesh's own rule: full means full.

use super::time::Millis;
use crate::id::Id;
use std::collections::HashMap;

/// A connection to a ring member outside our routing set closes after this long unused. Long
/// enough that a burst of operations to one owner keeps its connection; short enough that an
/// idle node's table shrinks to its routing set within a minute.
pub const IDLE_CLOSE_MS: Millis = 30_000;

/// What to do with a peer knocking while every slot is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Close the connection to this peer (the least recently used one routing does not need),
    /// then take the newcomer.
    Evict(Id),
    /// Say no, with the reason.
    Refuse(String),
}

/// Members a busy node names for a refused newcomer to try instead.
pub const ELSEWHERE: usize = 4;

#[derive(Clone, Debug)]
struct Link {
    /// A ring member (as its handshake said), not a client or a plain mesh node.
    member: bool,
    last_used: Millis,
}

/// The open connections, one entry per peer, as the driver reports them.
#[derive(Debug)]
pub struct Links {
    limit: usize,
    open: HashMap<Id, Link>,
}

impl Links {
    pub fn new(limit: usize) -> Links {
        Links { limit, open: HashMap::new() }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn is_open(&self, peer: Id) -> bool {
        self.open.contains_key(&peer)
    }

    /// A slot is free for a new connection of ours without displacing anyone, with a quarter
    /// of the table kept free for newcomers (joiners, clients, dials under way).
    pub fn has_room(&self) -> bool {
        self.open.len() + self.limit / 4 < self.limit
    }

    /// Did `peer`'s handshake claim ring membership? (A claim, to be checked before acting.)
    pub fn claims_member(&self, peer: Id) -> bool {
        self.open.get(&peer).is_some_and(|link| link.member)
    }

    pub fn opened(&mut self, peer: Id, member: bool, now: Millis) {
        let link = self.open.entry(peer).or_insert(Link { member, last_used: now });
        link.member = member;
        link.last_used = link.last_used.max(now);
    }

    pub fn closed(&mut self, peer: Id) {
        self.open.remove(&peer);
    }

    /// Traffic with `peer` (a request or an answer, either way).
    pub fn used(&mut self, peer: Id, now: Millis) {
        if let Some(link) = self.open.get_mut(&peer) {
            link.last_used = link.last_used.max(now);
        }
    }

    /// Every slot is taken and `newcomer` knocks: the least recently used connection that
    /// `needed` does not protect gives way, or none can. `mesh_only`: a plain mesh node, whose
    /// table is simply full.
    pub fn admit(&self, newcomer: Id, needed: impl Fn(Id) -> bool, mesh_only: bool) -> Admission {
        if mesh_only {
            return Admission::Refuse(format!("peer limit of {} reached", self.limit));
        }
        self.open
            .iter()
            .filter(|(id, _)| **id != newcomer && !needed(**id))
            .min_by_key(|(id, link)| (link.last_used, **id))
            .map(|(id, _)| Admission::Evict(*id))
            .unwrap_or_else(|| Admission::Refuse(format!("peer limit of {} reached and every connection serves routing or a request in flight", self.limit)))
    }

    /// Connections to members that `needed` does not protect and that have been idle for
    /// [`IDLE_CLOSE_MS`]: to close.
    pub fn idle(&self, now: Millis, needed: impl Fn(Id) -> bool) -> Vec<Id> {
        let mut idle: Vec<Id> =
            self.open.iter().filter(|(id, link)| link.member && now.saturating_sub(link.last_used) >= IDLE_CLOSE_MS && !needed(**id)).map(|(id, _)| *id).collect();
        idle.sort_unstable();
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_least_recently_used_connection_routing_does_not_need_gives_way() {
        let mut links = Links::new(3);
        links.opened(Id(1), true, 0);
        links.opened(Id(2), true, 10);
        links.opened(Id(3), false, 20);
        assert!(!links.has_room());
        // 1 is the oldest, but routing needs it: 2 goes.
        assert_eq!(links.admit(Id(9), |id| id == Id(1), false), Admission::Evict(Id(2)));
        links.used(Id(2), 30);
        assert_eq!(links.admit(Id(9), |id| id == Id(1), false), Admission::Evict(Id(3)));
        // Everything needed: refuse, saying why.
        assert!(matches!(links.admit(Id(9), |_| true, false), Admission::Refuse(reason) if reason.contains("serves routing")));
        assert!(matches!(links.admit(Id(9), |_| false, true), Admission::Refuse(reason) if reason == "peer limit of 3 reached"), "a mesh node's table is just full");
    }

    #[test]
    fn idle_member_connections_outside_routing_close_and_clients_stay() {
        let mut links = Links::new(8);
        links.opened(Id(1), true, 0);
        links.opened(Id(2), true, 0);
        links.opened(Id(3), false, 0);
        links.used(Id(2), 5_000);
        assert!(links.idle(IDLE_CLOSE_MS - 1, |_| false).is_empty());
        assert_eq!(links.idle(IDLE_CLOSE_MS, |_| false), vec![Id(1)]);
        assert_eq!(links.idle(IDLE_CLOSE_MS + 5_000, |_| false), vec![Id(1), Id(2)]);
        assert_eq!(links.idle(IDLE_CLOSE_MS + 5_000, |id| id == Id(1)), vec![Id(2)], "routing keeps its own");
        links.closed(Id(1));
        assert!(!links.is_open(Id(1)) && links.is_open(Id(2)));
    }
}
