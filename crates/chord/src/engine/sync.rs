//! Replication repair: anti-entropy between an owner and its replicas, taking over handed-off
//! entries, and handing stray copies to their owners.
//!
//! Anti-entropy ([`SyncArc`]) makes a peer's copy of an arc `(from, to]` and ours agree, each
//! side getting the newer version of every entry: equal digests end it at once; otherwise only
//! the bucket-sized pieces whose digests differ exchange version lists (`Store::split_arc`), so
//! a repair costs what differs, not the arc's size. Versions are compared first and values are
//! copied only for the entries the other side lacks.

use super::core::{not_member, not_stored, unexpected};
use super::cx::{Cx, Input, Machine, Millis, Notice, Outcome, ReqId, Step, TaskId, Ticket};
use super::lookup::Lookup;
use crate::config::DATA_BUDGET_BYTES;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;
use crate::store::{Item, Store};
use crate::version::Version;
use serde_bytes::ByteBuf;
use std::collections::{HashMap, VecDeque};

/// Most `(key, version)` pairs a replica lists in one anti-entropy answer (fewer when their
/// keys pass the byte budget).
pub const SYNC_VERSIONS_LIMIT: usize = 4096;
/// Keys fetched per request while repairing, and strays handed off per round.
pub const FETCH_BATCH: usize = 256;
/// Pages of one piece's version list read in one sync, a bound against a peer that never
/// says it is done.
const MAX_PAGES: u32 = 10_000;

/// Cut items into frames that stop taking items once past [`DATA_BUDGET_BYTES`]: one item
/// of the maximum size always goes, and no frame outgrows `MIN_CHORD_FRAME_BYTES`.
pub fn batches(items: &[Item]) -> Vec<Vec<Item>> {
    let mut out: Vec<Vec<Item>> = Vec::new();
    let mut bytes = 0;
    for item in items {
        match out.last_mut() {
            Some(batch) if bytes < DATA_BUDGET_BYTES => batch.push(item.clone()),
            _ => {
                out.push(vec![item.clone()]);
                bytes = 0;
            }
        }
        bytes += item.wire_bytes();
    }
    out
}

/// Store items from a peer, newest version wins; our clock moves past what it saw. Items over
/// the size limits or too far ahead of our clock are dropped (`guard::storable`). Returns how
/// many were newer and stored; none while the store refuses writes (a full disk).
pub fn apply_items(cx: &mut Cx<'_>, items: &[Item]) -> usize {
    if cx.core.store.writable().is_err() {
        return 0;
    }
    let mut stored = 0;
    for item in items {
        if !super::guard::storable(cx, item) {
            continue;
        }
        cx.core.clock.observe(&item.version);
        stored += matches!(cx.core.store.apply(item), crate::store::Applied::Stored { .. }) as usize;
    }
    stored
}

/// Serving `Replicate` on a node whose store is on disk: store the items, answer `Ok` once they
/// are durable (a write's owner counts this copy only then).
pub struct Replica {
    items: Vec<Item>,
    persisting: Option<Ticket>,
}

impl Replica {
    pub fn new(items: Vec<Item>) -> Replica {
        Replica { items, persisting: None }
    }
}

impl Machine for Replica {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                if let Err(error) = cx.core.store.writable() {
                    return Step::Done(Outcome::Response(not_stored(&error)));
                }
                let items = std::mem::take(&mut self.items);
                if apply_items(cx, &items) > 0 {
                    self.persisting = cx.persist();
                }
                match self.persisting {
                    Some(_) => Step::Pending,
                    None => Step::Done(Outcome::Response(Response::Ok)),
                }
            }
            Input::Persisted(ticket, result) if self.persisting == Some(ticket) => Step::Done(Outcome::Response(match result {
                Ok(()) => Response::Ok,
                Err(error) => not_stored(&error),
            })),
            _ => Step::Pending,
        }
    }
}

type Cursor = (Id, Vec<u8>);

enum SyncStep {
    /// Compare the whole arc's digest.
    Whole,
    /// Compare one piece's digest, listing its versions after the cursor if they differ.
    Piece { arc: (Id, Id), after: Option<Cursor>, pages: u32 },
    Push(Vec<Item>),
    Fetch(Vec<ByteBuf>),
}

/// Anti-entropy of one arc with one peer.
pub struct SyncArc {
    peer: NodeRef,
    arc: (Id, Id),
    steps: VecDeque<SyncStep>,
    waiting: Option<(ReqId, SyncStep)>,
    /// Entries fetched and stored; with a `dataDir` they are made durable before the sync
    /// counts as done (a joiner owns what it pulled only once it is on disk).
    fetched: usize,
    persisting: Option<Ticket>,
}

impl SyncArc {
    pub fn new(peer: NodeRef, arc: (Id, Id)) -> SyncArc {
        SyncArc { peer, arc, steps: VecDeque::from([SyncStep::Whole]), waiting: None, fetched: 0, persisting: None }
    }

    fn next(&mut self, cx: &mut Cx<'_>) -> Step {
        let Some(step) = self.steps.pop_front() else {
            if std::mem::take(&mut self.fetched) > 0 {
                self.persisting = cx.persist();
                if self.persisting.is_some() {
                    return Step::Pending;
                }
            }
            return Step::Done(Outcome::Unit(Ok(())));
        };
        let body = match &step {
            SyncStep::Whole => sync_request(cx, self.arc, None),
            SyncStep::Piece { arc, after, .. } => sync_request(cx, *arc, after.clone()),
            SyncStep::Push(items) => Request::Replicate { items: items.clone() },
            SyncStep::Fetch(keys) => Request::Fetch { keys: keys.clone() },
        };
        let id = cx.request(&self.peer, body);
        // Our own arc compared whole: a match makes the peer a replica that may answer reads
        // for us (`delegate`), if it misses no write meanwhile.
        if matches!(step, SyncStep::Whole) && cx.core.ring.as_ref().and_then(|r| r.primary_arc()) == Some(self.arc) {
            cx.core.delegates.comparison_started(self.peer.id, self.arc, id);
        }
        self.waiting = Some((id, step));
        Step::Pending
    }

    fn on_answer(&mut self, cx: &mut Cx<'_>, step: SyncStep, response: Response) -> Step {
        match (step, response) {
            (SyncStep::Whole | SyncStep::Piece { .. }, Response::InSync) => {}
            (SyncStep::Whole, Response::Versions { versions, more }) => self.on_versions(cx, self.arc, None, 0, versions, more),
            (SyncStep::Whole, Response::SubDigests(theirs)) => {
                let pieces = Store::split_arc(self.arc.0, self.arc.1);
                if theirs.len() != pieces.len() {
                    return Step::Done(Outcome::Unit(Err(crate::error::Error::Protocol(format!("{} sub-digests for {} pieces", theirs.len(), pieces.len())))));
                }
                let ours = cx.core.store.sub_digests(self.arc.0, self.arc.1);
                for (index, piece) in pieces.into_iter().enumerate() {
                    if theirs[index][..] != ours[index][..] {
                        self.steps.push_back(SyncStep::Piece { arc: piece, after: None, pages: 0 });
                    }
                }
            }
            (SyncStep::Piece { arc, after, pages }, Response::Versions { versions, more }) => self.on_versions(cx, arc, after, pages, versions, more),
            (SyncStep::Push(items), _) => cx.core.counters.figures.repaired_pushed += items.len() as u64,
            (SyncStep::Fetch(keys), Response::Items { items, served }) => {
                cx.core.counters.figures.repaired_fetched += items.len() as u64;
                self.fetched += apply_items(cx, &items);
                // Cut by bytes: ask for the keys not served yet (at least one is served each time).
                let served = (served as usize).clamp(1, keys.len());
                if served < keys.len() {
                    self.steps.push_front(SyncStep::Fetch(keys[served..].to_vec()));
                }
            }
            // The peer cannot read the first key's value (a damaged file): skip that key, fetch
            // the rest. Nothing is stored for it: its copy elsewhere stays the one to repair from.
            (SyncStep::Fetch(keys), Response::Error { code, .. }) if code.starts_with("storage") && keys.len() > 1 => {
                self.steps.push_front(SyncStep::Fetch(keys[1..].to_vec()));
            }
            (SyncStep::Fetch(_), _) => {}
            (_, other) => return Step::Done(Outcome::Unit(Err(unexpected(other)))),
        }
        self.next(cx)
    }

    /// One page of the peer's versions of a piece, listed after `after`: repair that stretch,
    /// then read the next page if it said there is more.
    fn on_versions(&mut self, cx: &mut Cx<'_>, arc: (Id, Id), after: Option<Cursor>, pages: u32, versions: Vec<(ByteBuf, Version)>, more: bool) {
        let last: Option<Cursor> = versions.last().map(|(key, _)| (Id::of_key(key), key.to_vec()));
        let until = if more { last.clone() } else { None };
        if more && pages + 1 < MAX_PAGES {
            self.steps.push_front(SyncStep::Piece { arc, after: last, pages: pages + 1 });
        }
        self.plan_repair(cx, arc, after.as_ref(), until.as_ref(), versions);
    }

    /// Given the peer's versions of the stretch of `(from, to]` after `after` up to `until`,
    /// queue pushes of what it lacks and fetches of what we lack, ahead of the other steps.
    fn plan_repair(&mut self, cx: &mut Cx<'_>, (from, to): (Id, Id), after: Option<&Cursor>, until: Option<&Cursor>, theirs: Vec<(ByteBuf, Version)>) {
        let theirs: HashMap<Vec<u8>, Version> = theirs.into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
        let store = &cx.core.store;
        let to_fetch: Vec<ByteBuf> =
            theirs.iter().filter(|(key, version)| store.version_of(key).is_none_or(|mine| mine < **version)).map(|(key, _)| ByteBuf::from(key.clone())).collect();
        let mut to_push: Vec<Item> = Vec::new();
        let mut unreadable = 0;
        for (key, version) in store.versions_between(from, to, after, until) {
            if theirs.get(&key).is_some_and(|v| *v >= version) {
                continue;
            }
            // A value we cannot read is not pushed at all: as a tombstone it would win.
            match store.read(&key) {
                Ok(value) => to_push.push(Item { key, value: value.map(|(v, _)| ByteBuf::from(v.to_vec())), version }),
                Err(_) => unreadable += 1,
            }
        }
        if unreadable > 0 {
            let message = format!("anti-entropy with {}:{} left out {unreadable} entries whose values could not be read from the store", self.peer.host, self.peer.port);
            cx.notice(Notice::Error { code: "ERR_STORAGE_CORRUPT".into(), message });
        }
        let mut planned: Vec<SyncStep> = batches(&to_push).into_iter().map(SyncStep::Push).collect();
        planned.extend(to_fetch.chunks(FETCH_BATCH).map(|keys| SyncStep::Fetch(keys.to_vec())));
        for step in planned.into_iter().rev() {
            self.steps.push_front(step);
        }
    }
}

fn sync_request(cx: &Cx<'_>, (from, to): (Id, Id), after: Option<Cursor>) -> Request {
    let digest = cx.core.store.digest(from, to);
    Request::SyncArc { from, to, digest: ByteBuf::from(digest.to_vec()), after: after.map(|(p, k)| (p, ByteBuf::from(k))) }
}

impl Machine for SyncArc {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                cx.core.counters.figures.anti_entropy_syncs += 1;
                self.next(cx)
            }
            Input::Reply(id, reply) if self.waiting.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, step) = self.waiting.take().expect("checked");
                if matches!(step, SyncStep::Whole) {
                    let matched = matches!(reply, Ok(Response::InSync));
                    cx.core.delegates.comparison_ended(self.peer.id, self.arc, id, matched);
                }
                match reply {
                    Ok(response) => self.on_answer(cx, step, response),
                    Err(error) => Step::Done(Outcome::Unit(Err(error))),
                }
            }
            Input::Persisted(ticket, result) if self.persisting == Some(ticket) => Step::Done(Outcome::Unit(result)),
            _ => Step::Pending,
        }
    }
}

/// Anti-entropy of our primary arc with each of our replicas, in parallel. When every one of
/// them that is alive synced (at least one; or there are none), we hold all of the arc
/// (`ArcState::synced`). One that answered with an error (still rejoining, a broken store)
/// leaves the arc to the next round: the write we lack may be on it alone.
///
/// Busy refusals are the exception, up to `replicas − 1` of them: a member whose every
/// connection slot serves its own routing (a small `maxPeers`) refuses us for as long as its
/// neighbours stay, so waiting for it would leave the arc unwritable for good. A resolved
/// write has `replicas` copies on distinct nodes within the successors we sync with, so with
/// fewer than `replicas` of them refusing, at least one copy holder answered.
#[derive(Default)]
pub struct SyncReplicas {
    children: HashMap<TaskId, NodeRef>,
    arc: Option<(Id, Id)>,
    synced: bool,
    incomplete: bool,
    busy: usize,
    replicas: usize,
}

impl Machine for SyncReplicas {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let replicas = cx.core.chord.as_ref().map_or(1, |c| c.replicas);
                self.replicas = replicas;
                let Some(ring) = &cx.core.ring else { return Step::Done(Outcome::Unit(Ok(()))) };
                let Some(arc) = ring.primary_arc() else { return Step::Done(Outcome::Unit(Ok(()))) };
                self.arc = Some(arc);
                // An arc not synced yet (grown when a predecessor went, or rings merging): copies
                // of it may sit on stand-ins beyond our replicas, so this first sync covers every
                // successor we know; later ones only our replicas.
                let wide = cx.core.unsynced(Id(arc.0 .0.wrapping_add(1)));
                let targets = if wide { ring.successors().iter().filter(|n| n.id != cx.core.me.id).cloned().collect() } else { ring.replica_targets(replicas) };
                self.synced = targets.is_empty();
                for replica in targets {
                    let child = cx.spawn(SyncArc::new(replica.clone(), arc));
                    self.children.insert(child, replica);
                }
            }
            Input::Child(child, outcome) => {
                if let Some(replica) = self.children.remove(&child) {
                    match &outcome {
                        Outcome::Unit(Ok(())) => self.synced = true,
                        Outcome::Unit(Err(error)) if error.is_unreachable() => cx.core.forget(replica.id),
                        Outcome::Unit(Err(error)) if error.is_busy() => self.busy += 1,
                        _ => self.incomplete = true,
                    }
                }
            }
            _ => {}
        }
        if self.children.is_empty() {
            // Only if the arc is still the one synced: a predecessor that moved meanwhile
            // leaves the difference to the next round.
            let current = cx.core.ring.as_ref().and_then(|r| r.primary_arc());
            let complete = self.synced && !self.incomplete && self.busy < self.replicas.max(1);
            if let (true, Some(arc)) = (complete, self.arc.filter(|arc| Some(*arc) == current)) {
                cx.core.arc.synced(arc.0, cx.now.mono);
            }
            Step::Done(Outcome::Unit(Ok(())))
        } else {
            Step::Pending
        }
    }
}

/// Serving a `Handoff`: take the entries over as their new primary and replicate them before
/// answering, so the sender may drop its copies once we said `Ok`. Entries outside our arc
/// are not ours to take: the sender's routing is stale (a node joined just before us and it
/// has not heard yet), so we answer `Redirect` to our predecessor — the owner, or nearer it —
/// and take nothing. That is routine during joins, not a peer misbehaving.
pub struct TakeOver {
    items: Vec<Item>,
    /// Our own copies' durability barrier (with a `dataDir`), while not reported.
    persisting: Option<Ticket>,
    syncing: bool,
}

impl TakeOver {
    pub fn new(items: Vec<Item>) -> TakeOver {
        TakeOver { items, persisting: None, syncing: false }
    }

    fn finish_if_done(&self) -> Step {
        if self.persisting.is_some() || self.syncing {
            return Step::Pending;
        }
        Step::Done(Outcome::Response(Response::Ok))
    }
}

impl Machine for TakeOver {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                if !cx.core.is_member() {
                    return Step::Done(Outcome::Response(not_member()));
                }
                if let Err(error) = cx.core.store.writable() {
                    return Step::Done(Outcome::Response(not_stored(&error)));
                }
                let ring = cx.core.ring.as_ref().expect("member");
                if let Some(predecessor) = ring.predecessor().filter(|_| self.items.iter().any(|item| !ring.owns(Id::of_key(&item.key)))) {
                    return Step::Done(Outcome::Response(Response::Redirect(predecessor.clone())));
                }
                let items = std::mem::take(&mut self.items);
                if apply_items(cx, &items) > 0 {
                    self.persisting = cx.persist();
                }
                cx.spawn(SyncReplicas::default());
                self.syncing = true;
                Step::Pending
            }
            Input::Child(..) => {
                self.syncing = false;
                self.finish_if_done()
            }
            Input::Persisted(ticket, result) if self.persisting == Some(ticket) => {
                self.persisting = None;
                match result {
                    Ok(()) => self.finish_if_done(),
                    Err(error) => Step::Done(Outcome::Response(not_stored(&error))),
                }
            }
            _ => Step::Pending,
        }
    }
}

/// Entries we are neither owner nor a leased replica of go to their owner, then are dropped,
/// so copies left on stand-ins cannot resurface after the tombstone horizon.
pub struct HandOffStrays {
    lease_ttl: Millis,
    strays: VecDeque<Item>,
    current: Option<Item>,
    waiting: Option<ReqId>,
    /// The current item was redirected once already (the next redirect waits for a round).
    redirected: bool,
}

impl HandOffStrays {
    pub fn new(lease_ttl: Millis) -> HandOffStrays {
        HandOffStrays { lease_ttl, strays: VecDeque::new(), current: None, waiting: None, redirected: false }
    }

    fn next(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.strays.pop_front() {
            Some(item) => {
                cx.spawn(Lookup::new(Id::of_key(&item.key)));
                self.current = Some(item);
                self.redirected = false;
                Step::Pending
            }
            None => Step::Done(Outcome::Unit(Ok(()))),
        }
    }
}

impl Machine for HandOffStrays {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let now = cx.now.mono;
                let ttl = self.lease_ttl;
                let core = &mut *cx.core;
                let Some((from, to)) = core.ring.as_ref().and_then(|r| r.primary_arc()) else { return Step::Done(Outcome::Unit(Ok(()))) };
                core.leases.retain(|_, (_, seen)| now.saturating_sub(*seen) < ttl);
                let mut covered: Vec<(Id, Id)> = core.leases.iter().map(|(owner, (start, _))| (*start, *owner)).collect();
                covered.push((from, to));
                self.strays = core.store.items_outside(&covered, FETCH_BATCH).into();
                self.next(cx)
            }
            Input::Child(_, Outcome::Owner(Ok((owner, _)))) if owner.id != cx.core.me.id => {
                let item = self.current.clone().expect("looking one up");
                self.waiting = Some(cx.request(&owner, Request::Handoff { items: vec![item] }));
                Step::Pending
            }
            Input::Child(_, Outcome::Owner(Ok(_))) => self.next(cx),
            Input::Child(_, _) => Step::Done(Outcome::Unit(Ok(()))), // lookups fail: try next round
            Input::Reply(id, reply) if self.waiting == Some(id) => {
                self.waiting = None;
                match reply {
                    // Our lookup ended a node past the owner (it joined just now): once.
                    Ok(Response::Redirect(owner)) if !self.redirected && owner.id != cx.core.me.id => {
                        self.redirected = true;
                        let item = self.current.clone().expect("handing one off");
                        self.waiting = Some(cx.request(&owner, Request::Handoff { items: vec![item] }));
                        return Step::Pending;
                    }
                    Ok(Response::Ok) => {
                        let item = self.current.take().expect("handing one off");
                        if cx.core.store.version_of(&item.key) == Some(item.version) {
                            cx.core.store.remove(&item.key);
                        }
                    }
                    _ => {}
                }
                self.current = None;
                self.next(cx)
            }
            _ => Step::Pending,
        }
    }
}
