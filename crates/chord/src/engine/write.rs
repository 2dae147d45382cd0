//! A write at its owner: version it with the owner's hybrid logical clock, store it, and answer
//! only once the first `replicas − 1` successors hold it. A successor that fails is forgotten
//! and the next one down the successor list stands in, so a resolved write has `replicas`
//! copies even while a neighbour is dead (the design's durability promise). With a `dataDir`
//! each copy counts once it is durable: the owner's own once its store reports the write
//! committed (`Action::Persist`), a replica's once it answered `Ok` (it persists first too).
//!
//! A key some nodes hold read leases on (`lease`) is acknowledged only once each of them
//! dropped its copy (`Invalidate` answered) or its lease ran out.

use super::core::{not_member, not_stored, rejoining, syncing};
use super::cx::{Cx, Input, Machine, Millis, Notice, Outcome, ReqId, Step, Ticket};
use super::dedupe::Seen;
use super::events;
use crate::id::Id;
use crate::protocol::{Request, Response, WriteMode};
use crate::routing::{Hop, NodeRef};
use crate::store::{Applied, Item};
use crate::version::Version;
use serde_bytes::ByteBuf;
use std::collections::VecDeque;

pub struct OwnerWrite {
    key: Vec<u8>,
    value: Option<ByteBuf>,
    mode: WriteMode,
    item: Option<Item>,
    previous: Option<ByteBuf>,
    arc: (Id, Id),
    changed: bool,
    /// Successors not asked yet, nearest first: stand-ins for replicas that fail.
    candidates: VecDeque<NodeRef>,
    asked: Vec<(ReqId, NodeRef)>,
    acked: usize,
    /// The replicas that acknowledged their copy.
    acked_by: Vec<Id>,
    /// The delegations of the key's reads (`delegate`) were checked against `acked_by`.
    delegations_checked: bool,
    wanted: usize,
    /// Our own copy's durability barrier, while it is not reported.
    persisting: Option<Ticket>,
    /// Invalidations sent to lease holders and not answered, with when each lease ends.
    invalidating: Vec<(ReqId, Millis)>,
    /// The user write's nonce (`dedupe`; 0: none).
    nonce: u64,
}

/// A write to run here as its key's owner — unless the same user write (its nonce) ran here
/// already, when its first answer is the answer, or is running still, when the sender is told
/// to come back later (`dedupe`).
pub fn owner_write(cx: &mut Cx<'_>, key: Vec<u8>, value: Option<ByteBuf>, mode: WriteMode, nonce: u64) -> Result<OwnerWrite, Response> {
    match cx.core.recent_writes.begin(nonce, &key, cx.now.mono) {
        Seen::New => Ok(OwnerWrite { nonce, ..OwnerWrite::new(key, value, mode) }),
        Seen::Running => Err(Response::Error { code: "unavailable".into(), message: "the same write is still running at its owner".into() }),
        Seen::Done(answer) => Err(answer),
    }
}

impl OwnerWrite {
    pub fn new(key: Vec<u8>, value: Option<ByteBuf>, mode: WriteMode) -> OwnerWrite {
        OwnerWrite {
            key,
            value,
            mode,
            item: None,
            previous: None,
            arc: (Id(0), Id(0)),
            changed: false,
            candidates: VecDeque::new(),
            asked: Vec::new(),
            acked: 0,
            acked_by: Vec::new(),
            delegations_checked: false,
            wanted: 0,
            persisting: None,
            invalidating: Vec::new(),
            nonce: 0,
        }
    }

    fn start(&mut self, cx: &mut Cx<'_>) -> Step {
        let position = Id::of_key(&self.key);
        let replicas = cx.core.chord.as_ref().map_or(1, |c| c.replicas);
        if cx.core.rejoining() {
            return Step::Done(Outcome::Response(rejoining()));
        }
        let Some(ring) = cx.core.ring.as_ref() else { return Step::Done(Outcome::Response(not_member())) };
        match ring.next_hop(position) {
            // A write to a part of our arc we have not synced yet waits: a delete must see the
            // current value, and a set's version must order after every version the arc's
            // previous owner gave (our clock observes them as the sync brings them).
            Hop::Local if cx.core.unsynced(position) => return Step::Done(Outcome::Response(syncing())),
            // Part of the arc came from another owner lately: its read leases may still run.
            Hop::Local if cx.core.arc.inherits_leases(cx.now.mono) => return Step::Done(Outcome::Response(syncing())),
            Hop::Local => {}
            Hop::Owner(next) | Hop::Closer(next) => return Step::Done(Outcome::Response(Response::Redirect(next))),
        }
        self.arc = ring.primary_arc().unwrap_or((cx.core.me.id, cx.core.me.id));
        let successors = cx.core.replica_candidates();
        // Only a delete reports what it replaced (pop() needs it); a set does not copy it.
        // A value we cannot read is an error, not an absent key.
        if self.mode == WriteMode::Delete {
            match cx.core.store.read(&self.key) {
                Ok(previous) => self.previous = previous.map(|(v, _)| ByteBuf::from(v.to_vec())),
                Err(error) => return Step::Done(Outcome::Response(not_stored(&error))),
            }
        }
        if self.mode == WriteMode::Delete && self.previous.is_none() {
            return Step::Done(Outcome::Response(Response::Written { previous: None, version: Version::default(), arc: self.arc }));
        }
        if let Err(error) = cx.core.store.writable() {
            return Step::Done(Outcome::Response(not_stored(&error)));
        }
        let version = cx.core.clock.tick(cx.now.wall);
        let item = Item { key: std::mem::take(&mut self.key), value: self.value.take(), version };
        self.changed = matches!(cx.core.store.apply(&item), Applied::Stored { .. });
        if self.changed {
            self.persisting = cx.persist();
        }
        self.invalidate(cx, &item.key);
        self.item = Some(item);
        self.wanted = replicas.saturating_sub(1).min(successors.len());
        self.candidates = successors.into();
        for _ in 0..self.wanted {
            self.ask_next(cx);
        }
        self.finish_if_answered(cx)
    }

    /// Tell every holder of a live read lease on `key` to drop its copy (the write is stored
    /// already: a get after this reads it), and wait for each until its lease ends.
    fn invalidate(&mut self, cx: &mut Cx<'_>, key: &[u8]) {
        let now = cx.now.mono;
        for (holder, until) in cx.core.read_leases.revoke(key, now) {
            if holder.id == cx.core.me.id {
                continue;
            }
            let id = cx.request(&holder, Request::Invalidate { keys: vec![ByteBuf::from(key.to_vec())] });
            cx.core.counters.invalidations_sent += 1;
            self.invalidating.push((id, until));
        }
        if let Some(last) = self.invalidating.iter().map(|(_, until)| *until).max() {
            cx.wake_at(last);
        }
    }

    /// Ask the nearest candidate not suspected meanwhile (a suspect would keep the write
    /// waiting until the detector noticed it again).
    fn ask_next(&mut self, cx: &mut Cx<'_>) {
        while self.candidates.front().is_some_and(|n| cx.core.is_suspect(n.id)) {
            self.candidates.pop_front();
        }
        let (Some(node), Some(item)) = (self.candidates.pop_front(), &self.item) else { return };
        let id = cx.request(&node, Request::Replicate { items: vec![item.clone()] });
        self.asked.push((id, node));
    }

    fn finish_if_answered(&mut self, cx: &mut Cx<'_>) -> Step {
        let now = cx.now.mono;
        let before = self.invalidating.len();
        self.invalidating.retain(|(_, until)| now < *until);
        cx.core.counters.lease_timeouts += (before - self.invalidating.len()) as u64;
        if !self.asked.is_empty() || self.persisting.is_some() || !self.invalidating.is_empty() {
            return Step::Pending;
        }
        // A replica answering reads for us that holds no copy of this write: wait until it may
        // answer no more (`delegate`).
        if !std::mem::replace(&mut self.delegations_checked, true) {
            let position = Id::of_key(&self.item.as_ref().expect("started").key);
            if let Some(until) = cx.core.delegates.write_resolved(position, &self.acked_by, now) {
                self.invalidating.push((ReqId::MAX, until));
                cx.wake_at(until);
                return Step::Pending;
            }
        }
        if self.acked < self.wanted {
            cx.notice(Notice::Error {
                code: "ERR_UNDER_REPLICATED".into(),
                message: format!("write stored on {} of {} replicas; anti-entropy will retry", self.acked + 1, self.wanted + 1),
            });
        }
        let item = self.item.take().expect("started");
        // A ring with events off (the option is meant to be the same on every node) carries no
        // event traffic at all: the owner announces only when it reports events itself.
        if self.changed && cx.core.chord.as_ref().is_some_and(|c| c.events) {
            events::announce(cx, item.key.clone(), item.value.is_some());
        }
        Step::Done(Outcome::Response(Response::Written { previous: self.previous.take(), version: item.version, arc: self.arc }))
    }
}

impl Machine for OwnerWrite {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        let step = self.advance(cx, input);
        // Remembered by its nonce: a stored write's answer is the answer to its retries; one
        // that stored nothing (a redirect, "syncing", a refusal) runs again when retried.
        if let Step::Done(Outcome::Response(answer)) = &step {
            let stored = matches!(answer, Response::Written { .. }).then(|| answer.clone());
            cx.core.recent_writes.finish(self.nonce, stored);
        }
        step
    }
}

impl OwnerWrite {
    fn advance(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => self.start(cx),
            Input::Reply(id, reply) if self.invalidating.iter().any(|(asked, _)| *asked == id) => {
                let at = self.invalidating.iter().position(|(asked, _)| *asked == id).expect("checked");
                match reply {
                    // Dropped: this holder reads the write from now on.
                    Ok(Response::Ok) => {
                        self.invalidating.swap_remove(at);
                    }
                    // Unreachable or refusing: it may still answer its users from its copy,
                    // until its lease runs out (the timer ends the wait then).
                    _ => self.invalidating[at].0 = ReqId::MAX,
                }
                self.finish_if_answered(cx)
            }
            Input::Timer if !self.invalidating.is_empty() => self.finish_if_answered(cx),
            Input::Reply(id, reply) => {
                let Some(at) = self.asked.iter().position(|(asked, _)| *asked == id) else { return Step::Pending };
                let (_, node) = self.asked.swap_remove(at);
                match reply {
                    Ok(Response::Ok) => {
                        self.acked += 1;
                        self.acked_by.push(node.id);
                    }
                    // Alive but unable to store it (its disk is full): a stand-in takes the copy.
                    Ok(Response::Error { code, .. }) if code.starts_with("storage") => self.ask_next(cx),
                    _ => {
                        cx.core.forget(node.id);
                        self.ask_next(cx);
                    }
                }
                self.finish_if_answered(cx)
            }
            Input::Persisted(ticket, result) if self.persisting == Some(ticket) => {
                self.persisting = None;
                match result {
                    Ok(()) => self.finish_if_answered(cx),
                    // Not acknowledged: the caller hears why (the copies sent may still stay).
                    Err(error) => Step::Done(Outcome::Response(not_stored(&error))),
                }
            }
            _ => Step::Pending,
        }
    }
}

