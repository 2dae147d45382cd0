//! Replica reads, the state: an owner lets the replicas of its arc that are in sync answer
//! gets of it, so reads of a key spread over its `replicas` copies instead of loading one node.
//! The machines and handlers that act on it are in `replica_read`.
//!
//! The promise is the owner's own: a get that starts after a write resolved — on any node —
//! returns that write or a newer one, whichever copy answers it.
//!
//! - **Replica** ([`Held`]). A node whose owner syncs its arc with it may ask that owner for a
//!   *read delegation* (`Delegate { from, to }`). Granted (`Ok`), it answers gets of keys in
//!   `(from, to]` from its own store until `sent + LEASE_MS`, timed from when its request left,
//!   by its own monotonic clock: the owner's grant started later, so ours ends first (as read
//!   leases). It asks only while readers come to it (`KeepDelegations`), renewing every
//!   quarter of a lease.
//! - **Owner** ([`Delegates`]). It grants a delegation only for its current arc, synced and
//!   settled, to one of the first `replicas − 1` replica candidates (the nodes its writes ask
//!   first) whose copy of the arc matched its own in an anti-entropy comparison (`InSync`) and
//!   which acknowledged every write the owner resolved since that comparison began. A write
//!   resolves only once every live delegate of its key acknowledged its copy — or that
//!   delegation ran out: a delegate that missed a write (unreachable, replaced by a stand-in)
//!   delays it by at most `LEASE_MS`, and is not granted again until anti-entropy finds it in
//!   sync.
//! - **New owners.** A node that takes over part of an arc waits `LEASE_MS` before taking
//!   writes to it (`ArcState::inherits_leases`, as for read leases), by which time every
//!   delegation the previous owner granted ran out.

use super::lease::LEASE_MS;
use super::time::Millis;
use crate::id::Id;
use crate::routing::NodeRef;
use std::collections::{HashMap, HashSet};

/// The id of the request that began an anti-entropy comparison (`cx::ReqId`).
type Token = u64;

/// How long after an owner last synced its arc with us we still ask it for delegations.
const OWNER_FRESH_MS: Millis = 60_000;
/// How long a reader's visit keeps us renewing our delegations.
const DEMAND_MS: Millis = 5_000;
/// Owners we track at most (a replica serves `replicas − 1` of them; the rest are strays).
const MAX_OWNERS: usize = 64;

/// An owner's side: which replicas are in sync, and the delegations it granted.
#[derive(Debug, Default)]
pub struct Delegates {
    /// The arc the in-sync set refers to.
    arc: Option<(Id, Id)>,
    /// Replicas whose copy of `arc` matched ours, and which acknowledged every write we
    /// resolved since that comparison began.
    in_sync: HashSet<Id>,
    /// Comparisons under way, by replica: the one started last (its request id), and whether
    /// every write resolved since it began was acknowledged by that replica.
    comparing: HashMap<Id, (Token, bool)>,
    granted: Vec<Grant>,
    /// When a refused replica last made us compare the arc sooner.
    sync_asked_at: Option<Millis>,
}

#[derive(Debug, Clone)]
struct Grant {
    holder: Id,
    arc: (Id, Id),
    until: Millis,
}

impl Delegates {
    /// An anti-entropy comparison of `arc` with `replica` starts (request `token`): our digest
    /// is taken now.
    pub fn comparison_started(&mut self, replica: Id, arc: (Id, Id), token: Token) {
        if self.arc != Some(arc) {
            self.arc = Some(arc);
            self.in_sync.clear();
            self.comparing.clear();
        }
        self.comparing.insert(replica, (token, true));
    }

    /// The comparison `token` with `replica` ended: `matched` when its digest equalled ours.
    pub fn comparison_ended(&mut self, replica: Id, arc: (Id, Id), token: Token, matched: bool) {
        let clean = match self.comparing.get(&replica) {
            Some((started, clean)) if *started == token => *clean,
            _ => return,
        };
        self.comparing.remove(&replica);
        if matched && clean && self.arc == Some(arc) {
            self.in_sync.insert(replica);
        }
    }

    /// A replica readers come to is not in sync: compare the arc now, unless we did within
    /// the last second.
    pub fn sync_due(&mut self, now: Millis) -> bool {
        let due = self.sync_asked_at.is_none_or(|at| now.saturating_sub(at) >= 1_000);
        if due {
            self.sync_asked_at = Some(now);
        }
        due
    }

    /// May `holder` answer gets of `arc` for us?
    pub fn may_grant(&self, holder: Id, arc: (Id, Id)) -> bool {
        self.arc == Some(arc) && self.in_sync.contains(&holder)
    }

    /// Grant `holder` a delegation of `arc` until `now + LEASE_MS`.
    pub fn grant(&mut self, holder: Id, arc: (Id, Id), now: Millis) {
        self.granted.retain(|g| g.until > now && !(g.holder == holder && g.arc == arc));
        self.granted.push(Grant { holder, arc, until: now + LEASE_MS });
    }

    /// A write to `position` is about to resolve, its copies acknowledged by `acked`: when
    /// the last delegation it must wait out ends (held by nodes that did not acknowledge it,
    /// over an arc holding the position), `None` if none. Those delegations end here, and the
    /// nodes that did not acknowledge it are in sync no more.
    pub fn write_resolved(&mut self, position: Id, acked: &[Id], now: Millis) -> Option<Millis> {
        self.in_sync.retain(|node| acked.contains(node));
        for (node, (_, clean)) in self.comparing.iter_mut() {
            *clean &= acked.contains(node);
        }
        let mut wait: Option<Millis> = None;
        self.granted.retain(|g| {
            if g.until <= now {
                return false;
            }
            if position.in_half_open(g.arc.0, g.arc.1) && !acked.contains(&g.holder) {
                wait = Some(wait.map_or(g.until, |w| w.max(g.until)));
                return false;
            }
            true
        });
        wait
    }

    #[cfg(test)]
    pub fn live(&self, now: Millis) -> usize {
        self.granted.iter().filter(|g| g.until > now).count()
    }
}

/// A replica's side: the owners that sync their arcs with us, and the delegations we hold.
#[derive(Debug, Default)]
pub struct Held {
    /// Owner id -> (owner, its arc, when it last synced it with us).
    owners: HashMap<Id, (NodeRef, (Id, Id), Millis)>,
    /// Owner id -> (arc, until): gets of keys in the arc may be answered here until then.
    grants: HashMap<Id, ((Id, Id), Millis)>,
    /// Owner id -> until when readers of its arc came lately: its delegation is kept renewed
    /// until then (only the arcs read, not every arc we replicate).
    demand: HashMap<Id, Millis>,
    /// `KeepDelegations` is running.
    pub(super) keeping: bool,
}

impl Held {
    /// `owner` compared its arc with ours.
    pub fn owner_synced(&mut self, owner: &NodeRef, arc: (Id, Id), now: Millis) {
        if self.owners.len() >= MAX_OWNERS && !self.owners.contains_key(&owner.id) {
            self.owners.retain(|_, (_, _, at)| now.saturating_sub(*at) < OWNER_FRESH_MS);
            if self.owners.len() >= MAX_OWNERS {
                return;
            }
        }
        self.owners.insert(owner.id, (owner.clone(), arc, now));
    }

    /// The delegated arc holding `position`, if a delegation holds it now.
    pub fn covering(&self, position: Id, now: Millis) -> Option<(Id, Id)> {
        self.grants.values().find(|(arc, until)| *until > now && position.in_half_open(arc.0, arc.1)).map(|(arc, _)| *arc)
    }

    /// A reader came for a key at `position`: keep (or start) the delegations of the owners we
    /// replicate for whose arc holds it. `true` when there is one and nothing keeps our
    /// delegations renewed yet (the caller starts `KeepDelegations`).
    pub fn demanded(&mut self, position: Id, now: Millis) -> bool {
        // Every get of a key we do not own comes here: no allocation.
        let mut any = false;
        for (owner, arc, at) in self.owners.values() {
            if now.saturating_sub(*at) < OWNER_FRESH_MS && position.in_half_open(arc.0, arc.1) {
                self.demand.insert(owner.id, now + DEMAND_MS);
                any = true;
            }
        }
        any && !self.keeping
    }

    pub(super) fn wanted(&mut self, now: Millis) -> bool {
        self.demand.retain(|_, until| *until > now);
        !self.demand.is_empty()
    }

    /// Readers came lately and nothing keeps our delegations renewed: start `KeepDelegations`.
    pub fn demanded_lately(&mut self, now: Millis) -> bool {
        !self.keeping && self.wanted(now)
    }

    /// The owners to ask now: synced with us lately, their arc read lately, their delegation
    /// missing or ending within half a lease.
    pub(super) fn due(&self, now: Millis) -> Vec<(NodeRef, (Id, Id))> {
        self.owners
            .values()
            .filter(|(_, _, at)| now.saturating_sub(*at) < OWNER_FRESH_MS)
            .filter(|(owner, _, _)| self.demand.get(&owner.id).is_some_and(|until| *until > now))
            .filter(|(owner, arc, _)| self.grants.get(&owner.id).is_none_or(|(held, until)| held != arc || *until < now + LEASE_MS / 2))
            .map(|(owner, arc, _)| (owner.clone(), *arc))
            .collect()
    }

    pub(super) fn granted(&mut self, owner: Id, arc: (Id, Id), sent: Millis) {
        self.grants.insert(owner, (arc, sent + LEASE_MS));
    }

    pub(super) fn refused(&mut self, owner: Id) {
        self.grants.remove(&owner);
    }

    /// `owner` no longer owns the arc it synced with us (or we are no replica of it that its
    /// writes ask first): ask it no more until it syncs with us again.
    pub(super) fn not_owner(&mut self, owner: Id) {
        self.grants.remove(&owner);
        self.owners.remove(&owner);
    }
}

/// Owners whose delegates a reader remembers at most (past it, it forgets them all).
const MAX_READ_OWNERS: usize = 4096;
/// How long a replica that answered a get for an owner is taken to answer for it still.
const DELEGATE_KNOWN_MS: Millis = 2_000;
/// How often a reader tries a replica not known to answer for its owner (one get a second,
/// whichever owner it is for: most often one whose keys are read most). A replica with no
/// delegation sends the get on to the owner, a leg more: tried for every owner, that was
/// about one get in two on a 64-node ring.
const PROBE_EVERY_MS: Millis = 1_000;

/// A reader's side: the replicas that answered our gets for each owner lately (they hold its
/// delegation), and when we last tried one not known to.
#[derive(Debug, Default)]
pub struct ReadCopies {
    delegates: HashMap<Id, Vec<(Id, Millis)>>,
    probed_at: Option<Millis>,
}

impl ReadCopies {
    /// Where a plain get goes whose owner is `copies[0]`, its replicas the rest (those we hold
    /// connections to): the owner or a replica known to answer for it, at random — and once a
    /// second (for whichever owner) a replica not known to, so that replicas learn readers
    /// come (they ask for a delegation then) and we learn which answer. `None`: the owner.
    pub fn pick(&mut self, copies: &[NodeRef], now: Millis, rng: &mut impl rand::Rng) -> Option<NodeRef> {
        let (owner, replicas) = copies.split_first()?;
        let live = self.delegates.get(&owner.id).map(|known| known.iter().filter(|(_, until)| *until > now).map(|(id, _)| *id).collect::<Vec<Id>>()).unwrap_or_default();
        let (known, unknown): (Vec<&NodeRef>, Vec<&NodeRef>) = replicas.iter().partition(|r| live.contains(&r.id));
        if !unknown.is_empty() && self.probed_at.is_none_or(|at| now.saturating_sub(at) >= PROBE_EVERY_MS) {
            self.probed_at = Some(now);
            return Some(unknown[rng.gen_range(0..unknown.len())].clone());
        }
        match rng.gen_range(0..=known.len()) {
            0 => None,
            i => Some(known[i - 1].clone()),
        }
    }

    /// `delegate` answered a get for `owner`.
    pub fn answered(&mut self, owner: Id, delegate: Id, now: Millis) {
        if self.delegates.len() >= MAX_READ_OWNERS && !self.delegates.contains_key(&owner) {
            self.delegates.clear();
        }
        let known = self.delegates.entry(owner).or_default();
        known.retain(|(id, until)| *id != delegate && *until > now);
        known.push((delegate, now + DELEGATE_KNOWN_MS));
    }

    /// `replica` sent a get for `owner` back to it: it holds no delegation.
    pub fn redirected(&mut self, owner: Id, replica: Id) {
        if let Some(known) = self.delegates.get_mut(&owner) {
            known.retain(|(id, _)| *id != replica);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARC: (Id, Id) = (Id(100), Id(200));

    #[test]
    fn a_replica_is_in_sync_only_after_a_matching_comparison_with_no_write_missed_meanwhile() {
        let mut owner = Delegates::default();
        assert!(!owner.may_grant(Id(7), ARC));
        owner.comparison_started(Id(7), ARC, 1);
        // A write it did not acknowledge resolves while the comparison runs: the match proves
        // nothing about that write.
        assert_eq!(owner.write_resolved(Id(150), &[Id(8)], 0), None);
        owner.comparison_ended(Id(7), ARC, 1, true);
        assert!(!owner.may_grant(Id(7), ARC));
        owner.comparison_started(Id(7), ARC, 2);
        assert_eq!(owner.write_resolved(Id(150), &[Id(7)], 0), None);
        owner.comparison_ended(Id(7), ARC, 2, true);
        assert!(owner.may_grant(Id(7), ARC));
        // Another arc (ours changed): nothing carries over.
        assert!(!owner.may_grant(Id(7), (Id(50), Id(200))));
    }

    #[test]
    fn only_the_comparison_started_last_counts() {
        let mut owner = Delegates::default();
        owner.comparison_started(Id(7), ARC, 1);
        owner.write_resolved(Id(150), &[], 0);
        owner.comparison_started(Id(7), ARC, 2);
        // The first comparison's digest predates the missed write.
        owner.comparison_ended(Id(7), ARC, 1, true);
        assert!(!owner.may_grant(Id(7), ARC));
        owner.comparison_ended(Id(7), ARC, 2, false);
        assert!(!owner.may_grant(Id(7), ARC));
    }

    #[test]
    fn a_write_a_delegate_did_not_acknowledge_waits_its_delegation_out_and_ends_it() {
        let mut owner = Delegates::default();
        owner.comparison_started(Id(7), ARC, 1);
        owner.comparison_ended(Id(7), ARC, 1, true);
        owner.grant(Id(7), ARC, 1_000);
        // Acknowledged, or outside the delegated arc: no wait.
        assert_eq!(owner.write_resolved(Id(150), &[Id(7)], 1_100), None);
        assert_eq!(owner.write_resolved(Id(250), &[], 1_200), None);
        assert_eq!(owner.live(1_200), 1);
        // The arc-250 write was missed: no longer in sync, though the delegation stands.
        assert!(!owner.may_grant(Id(7), ARC));
        assert_eq!(owner.write_resolved(Id(150), &[], 1_300), Some(1_000 + LEASE_MS));
        assert_eq!(owner.live(1_300), 0);
    }

    #[test]
    fn a_holder_answers_within_its_own_clock_only_and_asks_when_due() {
        let mut held = Held::default();
        let owner = NodeRef { id: Id(200), host: "127.0.0.1".into(), port: 1 };
        held.owner_synced(&owner, ARC, 0);
        assert!(held.due(10).is_empty(), "no reader came");
        assert!(!held.demanded(Id(250), 10), "not a key of an arc we replicate");
        assert!(held.demanded(Id(150), 10));
        assert_eq!(held.due(10).len(), 1);
        held.granted(owner.id, ARC, 10);
        assert_eq!(held.covering(Id(150), 10 + LEASE_MS - 1), Some(ARC));
        assert_eq!(held.covering(Id(150), 10 + LEASE_MS), None);
        assert!(held.due(20).is_empty(), "renewed only within half a lease of its end");
        assert_eq!(held.due(10 + LEASE_MS / 2 + 1).len(), 1);
        held.refused(owner.id);
        assert_eq!(held.covering(Id(150), 20), None);
        assert!(held.demanded(Id(150), 20) && held.wanted(20 + DEMAND_MS - 1) && !held.wanted(20 + DEMAND_MS));
    }
}
