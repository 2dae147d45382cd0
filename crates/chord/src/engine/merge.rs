//! Rings that meet again become one. After a partition each side repairs into a ring of its
//! own, and stabilize alone never joins two correct rings (each is a valid Chord ring). This is
//! Ring Unification (Shafaat, Ghodsi and Haridi 2009) fitted to Zave's successor lists:
//!
//! - **Detect.** The probe duty asks a few due contacts (former neighbours, sampled members)
//!   for their `State` each round. One that answers and lies between us and our successor is
//!   adopted as successor at once. Otherwise we look its id up in our own ring: if the lookup
//!   ends at another node, it is not in our ring — we tell it about the node that owns its
//!   position here, and that node about it (`Candidates`).
//! - **Zip.** A node given candidates adopts any that lies between it and its successor, and
//!   hands its previous successors on to the one adopted, which does the same: the two rings
//!   zip together gap by gap, forward. A candidate that lies between its predecessor and it is
//!   told about the node, so the zip also runs backward. Stabilize's walk back through
//!   predecessors settles each spliced gap.
//!
//! Every adoption moves a successor strictly closer, so the zipping ends; many zippers start
//! at once because nearly every node of a split has a former neighbour across it, and nothing
//! here pairs rings up, so three or more rings merge the same way as two.
//!
//! **Hints from strangers.** `Candidates` names nodes to link to, so it is what an attacker
//! would send to splice made-up nodes into a ring or make a node dial thousands of addresses.
//! A node acts on it only when its sender is a member it knows (routing, view, contacts) or
//! one that proved it is a member by answering `State` (see `verify`); it considers at most
//! `MAX_CANDIDATES_PER_MESSAGE` candidates of one message, and a candidate it does not know
//! is asked for its `State` before it is adopted or told anything (checks are bounded in
//! number and rate). The arc waits for a sync (`ArcState::merging`) only on a member's hint.

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::lookup::Lookup;
use super::time::Millis;
use super::verify::verify;
use crate::config::MAX_CANDIDATES_PER_MESSAGE;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;

/// Contacts probed per maintenance round.
pub const PROBES_PER_ROUND: usize = 2;
/// Candidates are not sent to the same node again within this time.
const TELL_AGAIN_AFTER_MS: Millis = 1_000;
/// Merge hints remembered (by receiver and first candidate) to hold back repeats: a merge
/// sends a few per gap, so 4,096 covers rings of thousands; past it the oldest go (`RecentMap`).
pub const TOLD_ENTRIES: usize = 4096;

/// Probe the contacts that are due, in parallel.
#[derive(Default)]
pub struct ProbeContacts {
    running: usize,
}

impl Machine for ProbeContacts {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let now = cx.now.mono;
                for contact in cx.core.contacts.due(now, PROBES_PER_ROUND) {
                    cx.spawn(ContactProbe::new(contact));
                    self.running += 1;
                }
            }
            Input::Child(..) => self.running -= 1,
            _ => {}
        }
        if self.running == 0 {
            Step::Done(Outcome::Unit(Ok(())))
        } else {
            Step::Pending
        }
    }
}

/// Is this contact alive, and is it in our ring?
pub struct ContactProbe {
    contact: NodeRef,
    asked: Option<ReqId>,
}

impl ContactProbe {
    fn new(contact: NodeRef) -> ContactProbe {
        ContactProbe { contact, asked: None }
    }

    fn done() -> Step {
        Step::Done(Outcome::Unit(Ok(())))
    }
}

impl Machine for ContactProbe {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let timeout = cx.core.failure_timeout;
                self.asked = Some(cx.request_within(&self.contact, Request::State, timeout));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => match reply {
                Ok(Response::State { predecessor, successors }) => {
                    let now = cx.now.mono;
                    if !cx.core.is_member() {
                        // A client finding its ring again: the member answered, use it.
                        cx.core.contacts.answered(self.contact.id, now, false);
                        cx.core.learn(&self.contact);
                        return ContactProbe::done();
                    }
                    cx.core.learn(&self.contact);
                    if adopt(cx, &self.contact) {
                        cx.core.contacts.answered(self.contact.id, now, false);
                        return ContactProbe::done();
                    }
                    // Its own neighbours may be closer to us than anything we know.
                    let near: Vec<NodeRef> = predecessor.into_iter().chain(successors).collect();
                    let contact = self.contact.clone();
                    consider(cx, near, Some(&contact));
                    cx.spawn(Lookup::new(self.contact.id));
                    Step::Pending
                }
                _ => {
                    cx.core.contacts.failed(self.contact.id, cx.now.mono);
                    ContactProbe::done()
                }
            },
            Input::Child(_, Outcome::Owner(Ok((owner, _)))) => {
                let now = cx.now.mono;
                if owner.id == self.contact.id {
                    cx.core.contacts.answered(self.contact.id, now, true);
                } else {
                    // Its position belongs to `owner` in our ring: it is in another ring. Tell
                    // each about the other; the zip runs from there.
                    cx.core.contacts.answered(self.contact.id, now, false);
                    tell(cx, &self.contact, vec![owner.clone()]);
                    tell(cx, &owner, vec![self.contact.clone()]);
                }
                ContactProbe::done()
            }
            Input::Child(..) => ContactProbe::done(),
            _ => Step::Pending,
        }
    }
}

/// Adopt `candidate` as successor if it lies between us and our successor; the previous
/// successors go on to it. Returns whether it was adopted.
fn adopt(cx: &mut Cx<'_>, candidate: &NodeRef) -> bool {
    if cx.core.is_suspect(candidate.id) {
        return false;
    }
    let Some(ring) = cx.core.ring.as_mut() else { return false };
    if ring.is_alone() {
        // A lone node does not splice a random member in as its successor (from there it
        // would walk back round the whole ring): it joins through it, by a lookup of its id.
        cx.core.rejoin_via = Some(candidate.clone());
        cx.core.maintenance_due = true;
        return true;
    }
    let previous: Vec<NodeRef> = ring.successors().to_vec();
    if !ring.consider_successor(candidate) {
        return false;
    }
    cx.core.counters.merges += 1;
    cx.core.maintenance_due = true;
    cx.core.arc.want_sync();
    if !previous.is_empty() {
        tell(cx, candidate, previous);
    }
    true
}

/// A `Candidates` request from `sender`: considered (at most `MAX_CANDIDATES_PER_MESSAGE` of
/// them) only if the sender is a member we know, or once it proved it is one; an anonymous
/// client's hints change nothing.
pub fn on_candidates(cx: &mut Cx<'_>, sender: &NodeRef, mut candidates: Vec<NodeRef>) {
    candidates.truncate(MAX_CANDIDATES_PER_MESSAGE);
    if cx.core.knows_member(sender.id) {
        from_member(cx, sender, candidates);
    } else {
        verify(cx, sender, Box::new(move |cx, sender| from_member(cx, sender, candidates)));
    }
}

/// A member's merge hint: rings are merging around us, and a node of the other ring may
/// become our predecessor, so our arc waits for a sync (see `arc`).
fn from_member(cx: &mut Cx<'_>, sender: &NodeRef, candidates: Vec<NodeRef>) {
    cx.core.arc.merging(cx.now.mono);
    // Versions written in the other ring may win now: what we read under leases goes.
    cx.core.cache.clear(cx.now.mono);
    consider(cx, candidates, Some(sender));
}

/// Live nodes `from` passed on (or a contact's `State` named): adopt one that is a closer
/// successor, and tell those that should have us as their successor about us. Only the first
/// `MAX_CANDIDATES_PER_MESSAGE`, only those that could matter to us, and a node we do not
/// know only once it answered as a member.
pub fn consider(cx: &mut Cx<'_>, candidates: Vec<NodeRef>, from: Option<&NodeRef>) {
    let from = from.map(|f| f.id);
    for candidate in candidates.into_iter().take(MAX_CANDIDATES_PER_MESSAGE) {
        if candidate.id == cx.core.me.id || cx.core.is_suspect(candidate.id) || !could_matter(cx, &candidate) {
            continue;
        }
        if cx.core.knows_member(candidate.id) {
            act_on(cx, &candidate, from);
        } else if from.is_none_or(|teller| cx.core.verifier.may_dial_for(teller, cx.now.mono)) {
            // Checking a stranger means dialling it: the peer that named it pays from its budget.
            verify(cx, &candidate, Box::new(move |cx, candidate| act_on(cx, candidate, from)));
        }
    }
}

/// Would `candidate` become our successor (it lies between us and ours, or we are alone), or
/// should it hear of us (it lies between our predecessor and us)?
fn could_matter(cx: &Cx<'_>, candidate: &NodeRef) -> bool {
    let Some(ring) = cx.core.ring.as_ref() else { return false };
    let me = cx.core.me.id;
    ring.is_alone() || candidate.id.in_open(me, ring.successor().id) || is_behind(cx, candidate)
}

fn is_behind(cx: &Cx<'_>, candidate: &NodeRef) -> bool {
    let me = cx.core.me.id;
    cx.core.ring.as_ref().is_some_and(|ring| ring.predecessor().is_none_or(|pred| candidate.id.in_open(pred.id, me)))
}

/// A candidate we know is a member: adopt it as successor, or tell it about us if it lies
/// behind us (unless it is the one that told us).
fn act_on(cx: &mut Cx<'_>, candidate: &NodeRef, from: Option<Id>) {
    if adopt(cx, candidate) {
        return;
    }
    if is_behind(cx, candidate) && from != Some(candidate.id) {
        let me = cx.core.me.clone();
        tell(cx, candidate, vec![me]);
    }
}

/// Send `candidates` to `node` (fire and forget); the same news is not repeated to the same
/// node within a second.
fn tell(cx: &mut Cx<'_>, node: &NodeRef, candidates: Vec<NodeRef>) {
    let now = cx.now.mono;
    let Some(first) = candidates.first().map(|c| c.id) else { return };
    let key = (node.id, first);
    if node.id == cx.core.me.id || cx.core.told.get(&key).is_some_and(|at| now < at + TELL_AGAIN_AFTER_MS) {
        return;
    }
    cx.core.told.insert(key, now, now.saturating_sub(TELL_AGAIN_AFTER_MS));
    cx.request(node, Request::Candidates(candidates));
}
