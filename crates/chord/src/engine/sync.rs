//! Replication repair: anti-entropy between an owner and its replicas, taking over handed-off
//! entries, and handing stray copies to their owners.
//!
//! Anti-entropy ([`SyncArc`]) makes a peer's copy of an arc `(from, to]` and ours agree, each
//! side getting the newer version of every entry: equal digests end it at once; otherwise only
//! the bucket-sized pieces whose digests differ exchange version lists (`Store::split_arc`), so
//! a repair costs what differs, not the arc's size. Versions are compared first and values are
//! copied only for the entries the other side lacks.

use super::core::{not_member, unexpected};
use super::cx::{Cx, Input, Machine, Millis, Outcome, ReqId, Step, TaskId};
use super::lookup::Lookup;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;
use crate::store::{Item, Store};
use crate::version::Version;
use serde_bytes::ByteBuf;
use std::collections::{HashMap, VecDeque};

/// Most `(key, version)` pairs a replica lists in one anti-entropy answer.
pub const SYNC_VERSIONS_LIMIT: usize = 4096;
/// Keys fetched per request while repairing, and strays handed off per round.
pub const FETCH_BATCH: usize = 256;
/// Bytes of values per replication or hand-off frame (well under the default frame limit).
pub const ITEM_BATCH_BYTES: usize = 1 << 20;
/// Times a truncated version list of one piece is asked for again in one sync.
const PIECE_RETRIES: u32 = 16;

/// Cut items into frames of at most [`ITEM_BATCH_BYTES`] of keys and values.
pub fn batches(items: &[Item]) -> Vec<Vec<Item>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for item in items {
        let size = item.key.len() + item.value.as_ref().map_or(0, |v| v.len()) + 64;
        if bytes + size > ITEM_BATCH_BYTES && !out.last().expect("non-empty").is_empty() {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().expect("non-empty").push(item.clone());
    }
    out.retain(|b| !b.is_empty());
    out
}

/// Store items from a peer, newest version wins; our clock moves past what it saw.
pub fn apply_items(cx: &mut Cx<'_>, items: &[Item]) {
    for item in items {
        if !super::guard::observable(cx, &item.version) {
            continue;
        }
        cx.core.clock.observe(&item.version);
        cx.core.store.apply(item);
    }
}

enum SyncStep {
    /// Compare the whole arc's digest.
    Whole,
    /// Compare one piece's digest, listing its versions if they differ.
    Piece { arc: (Id, Id), tries: u32 },
    Push(Vec<Item>),
    Fetch(Vec<ByteBuf>),
}

/// Anti-entropy of one arc with one peer.
pub struct SyncArc {
    peer: NodeRef,
    arc: (Id, Id),
    steps: VecDeque<SyncStep>,
    waiting: Option<(ReqId, SyncStep)>,
}

impl SyncArc {
    pub fn new(peer: NodeRef, arc: (Id, Id)) -> SyncArc {
        SyncArc { peer, arc, steps: VecDeque::from([SyncStep::Whole]), waiting: None }
    }

    fn next(&mut self, cx: &mut Cx<'_>) -> Step {
        let Some(step) = self.steps.pop_front() else { return Step::Done(Outcome::Unit(Ok(()))) };
        let body = match &step {
            SyncStep::Whole => sync_request(cx, self.arc),
            SyncStep::Piece { arc, .. } => sync_request(cx, *arc),
            SyncStep::Push(items) => Request::Replicate { items: items.clone() },
            SyncStep::Fetch(keys) => Request::Fetch { keys: keys.clone() },
        };
        let id = cx.request(&self.peer, body);
        self.waiting = Some((id, step));
        Step::Pending
    }

    fn on_answer(&mut self, cx: &mut Cx<'_>, step: SyncStep, response: Response) -> Step {
        match (step, response) {
            (SyncStep::Whole | SyncStep::Piece { .. }, Response::InSync) => {}
            (SyncStep::Whole, Response::Versions(theirs)) => self.plan_repair(cx, self.arc, theirs),
            (SyncStep::Whole, Response::SubDigests(theirs)) => {
                let pieces = Store::split_arc(self.arc.0, self.arc.1);
                if theirs.len() != pieces.len() {
                    return Step::Done(Outcome::Unit(Err(crate::error::Error::Protocol(format!("{} sub-digests for {} pieces", theirs.len(), pieces.len())))));
                }
                let ours = cx.core.store.sub_digests(self.arc.0, self.arc.1);
                for (index, piece) in pieces.into_iter().enumerate() {
                    if theirs[index][..] != ours[index][..] {
                        self.steps.push_back(SyncStep::Piece { arc: piece, tries: 0 });
                    }
                }
            }
            (SyncStep::Piece { arc, tries }, Response::Versions(theirs)) => {
                let truncated = theirs.len() >= SYNC_VERSIONS_LIMIT;
                if truncated && tries + 1 < PIECE_RETRIES {
                    self.steps.push_front(SyncStep::Piece { arc, tries: tries + 1 });
                }
                self.plan_repair(cx, arc, theirs);
            }
            (SyncStep::Push(_), _) => {}
            (SyncStep::Fetch(_), Response::Items(items)) => apply_items(cx, &items),
            (SyncStep::Fetch(_), _) => {}
            (_, other) => return Step::Done(Outcome::Unit(Err(unexpected(other)))),
        }
        self.next(cx)
    }

    /// Given the peer's versions of `(from, to]`, queue pushes of what it lacks and fetches of
    /// what we lack, ahead of the remaining steps.
    fn plan_repair(&mut self, cx: &mut Cx<'_>, (from, to): (Id, Id), theirs: Vec<(ByteBuf, Version)>) {
        let theirs: HashMap<Vec<u8>, Version> = theirs.into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
        let store = &cx.core.store;
        let to_fetch: Vec<ByteBuf> =
            theirs.iter().filter(|(key, version)| store.version_of(key).is_none_or(|mine| mine < **version)).map(|(key, _)| ByteBuf::from(key.clone())).collect();
        let to_push: Vec<Item> = store
            .versions_in(from, to)
            .into_iter()
            .filter(|(key, version)| theirs.get(key).is_none_or(|v| v < version))
            .map(|(key, version)| {
                let value = store.get(&key).map(|(v, _)| ByteBuf::from(v.to_vec()));
                Item { key, value, version }
            })
            .collect();
        let mut planned: Vec<SyncStep> = batches(&to_push).into_iter().map(SyncStep::Push).collect();
        planned.extend(to_fetch.chunks(FETCH_BATCH).map(|keys| SyncStep::Fetch(keys.to_vec())));
        for step in planned.into_iter().rev() {
            self.steps.push_front(step);
        }
    }
}

fn sync_request(cx: &Cx<'_>, (from, to): (Id, Id)) -> Request {
    let digest = cx.core.store.digest(from, to);
    Request::SyncArc { from, to, digest: ByteBuf::from(digest.to_vec()) }
}

impl Machine for SyncArc {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => self.next(cx),
            Input::Reply(id, reply) if self.waiting.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, step) = self.waiting.take().expect("checked");
                match reply {
                    Ok(response) => self.on_answer(cx, step, response),
                    Err(error) => Step::Done(Outcome::Unit(Err(error))),
                }
            }
            _ => Step::Pending,
        }
    }
}

/// Anti-entropy of our primary arc with each of our replicas, in parallel.
#[derive(Default)]
pub struct SyncReplicas {
    children: HashMap<TaskId, NodeRef>,
}

impl Machine for SyncReplicas {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let replicas = cx.core.chord.as_ref().map_or(1, |c| c.replicas);
                let Some(ring) = &cx.core.ring else { return Step::Done(Outcome::Unit(Ok(()))) };
                let Some(arc) = ring.primary_arc() else { return Step::Done(Outcome::Unit(Ok(()))) };
                for replica in ring.replica_targets(replicas) {
                    let child = cx.spawn(SyncArc::new(replica.clone(), arc));
                    self.children.insert(child, replica);
                }
            }
            Input::Child(child, outcome) => {
                if let Some(replica) = self.children.remove(&child) {
                    if matches!(&outcome, Outcome::Unit(Err(error)) if error.is_unreachable()) {
                        cx.core.forget(replica.id);
                    }
                }
            }
            _ => {}
        }
        if self.children.is_empty() {
            Step::Done(Outcome::Unit(Ok(())))
        } else {
            Step::Pending
        }
    }
}

/// Serving a `Handoff`: take the entries over as their new primary and replicate them before
/// answering, so the sender may drop its copies once we said `Ok`.
pub struct TakeOver {
    items: Vec<Item>,
}

impl TakeOver {
    pub fn new(items: Vec<Item>) -> TakeOver {
        TakeOver { items }
    }
}

impl Machine for TakeOver {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                if !cx.core.is_member() {
                    return Step::Done(Outcome::Response(not_member()));
                }
                let items = std::mem::take(&mut self.items);
                apply_items(cx, &items);
                cx.spawn(SyncReplicas::default());
                Step::Pending
            }
            Input::Child(..) => Step::Done(Outcome::Response(Response::Ok)),
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
}

impl HandOffStrays {
    pub fn new(lease_ttl: Millis) -> HandOffStrays {
        HandOffStrays { lease_ttl, strays: VecDeque::new(), current: None, waiting: None }
    }

    fn next(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.strays.pop_front() {
            Some(item) => {
                cx.spawn(Lookup::new(Id::of_key(&item.key)));
                self.current = Some(item);
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
                let item = self.current.take().expect("handing one off");
                if matches!(reply, Ok(Response::Ok)) && cx.core.store.version_of(&item.key) == Some(item.version) {
                    cx.core.store.remove(&item.key);
                }
                self.next(cx)
            }
            _ => Step::Pending,
        }
    }
}
