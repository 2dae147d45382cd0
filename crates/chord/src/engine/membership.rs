//! Joining and leaving the ring, with the data that moves along.
//!
//! Join (Zave 2017): find our successor through a member, pull the arc we are about to own
//! from it before anyone routes to us, adopt its successor list and notify it; entries we held
//! as a ring of our own go to their owners in the joined ring. Leave: tell the neighbours, push
//! everything to the successor (which replicates before answering), then become a client; if
//! the successor fails, the next one in the list is the heir.

use super::core::unexpected;
use super::cx::{Cx, Input, Machine, Millis, OpOutput, Outcome, ReqId, Step};
use super::lookup::Lookup;
use super::sync::{batches, SyncArc};
use crate::error::Error;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::{NodeRef, Routing};
use crate::store::Item;
use std::collections::VecDeque;

/// Lookups of our successor through the bootstrap before a join gives up.
const SUCCESSOR_ATTEMPTS: u32 = 5;
/// Steps a join may walk back from the successor its lookup found, through predecessors, to
/// the true one: a lookup through stale fingers (a ring still growing) can answer a node past
/// our real successor, and only a predecessor between us and it can tell.
const SUCCESSOR_CHECKS: u32 = 64;

enum JoinState {
    Finding { attempt: u32, last_error: Option<Error> },
    Pausing { attempt: u32, last_error: Option<Error>, until: Millis },
    Stating { asked: ReqId, checks: u32 },
    Pulling,
    Notifying(ReqId),
    Handing(Option<ReqId>),
}

/// Join the ring that `bootstrap` belongs to.
pub struct Join {
    bootstrap: NodeRef,
    /// Hand entries outside our new arc to their owners. Not when rejoining our own ring (a
    /// restart, a node cut off): those are replicas of it, which anti-entropy and stray
    /// collection look after, and reading them all from disk would only slow the return.
    hand_foreign: bool,
    state: JoinState,
    successor: Option<NodeRef>,
    list: Vec<NodeRef>,
    from: Id,
    foreign: VecDeque<Item>,
    current: Option<Item>,
}

impl Join {
    pub fn new(bootstrap: NodeRef) -> Join {
        Join {
            bootstrap,
            hand_foreign: true,
            state: JoinState::Finding { attempt: 1, last_error: None },
            successor: None,
            list: Vec::new(),
            from: Id(0),
            foreign: VecDeque::new(),
            current: None,
        }
    }

    fn done(result: Result<(), Error>) -> Step {
        Step::Done(Outcome::Unit(result))
    }

    /// A lookup that falls back on our own tables (a ring of one: "we own everything") did not
    /// find our successor, so it is retried through the bootstrap rather than mistaken for a
    /// completed join.
    fn on_successor(&mut self, cx: &mut Cx<'_>, result: Result<(NodeRef, u32), Error>) -> Step {
        let JoinState::Finding { attempt, last_error } = std::mem::replace(&mut self.state, JoinState::Pulling) else { return Step::Pending };
        match result {
            Ok((successor, _)) if successor.id != cx.core.me.id => {
                self.state = JoinState::Stating { asked: cx.request(&successor, Request::State), checks: 1 };
                self.successor = Some(successor);
                Step::Pending
            }
            other => {
                let last_error = other.err().or(last_error);
                if attempt >= SUCCESSOR_ATTEMPTS {
                    let fallback = Error::Unavailable(format!("no successor found through {}:{}", self.bootstrap.host, self.bootstrap.port));
                    return Join::done(Err(last_error.unwrap_or(fallback)));
                }
                let until = cx.now.mono + 50 * attempt as u64;
                cx.wake_at(until);
                self.state = JoinState::Pausing { attempt, last_error, until };
                Step::Pending
            }
        }
    }

    fn on_state(&mut self, cx: &mut Cx<'_>, reply: Result<Response, Error>, checks: u32) -> Step {
        let (predecessor, successors) = match reply {
            Ok(Response::State { predecessor, successors }) => (predecessor, successors),
            Ok(other) => return Join::done(Err(unexpected(other))),
            Err(error) => return Join::done(Err(error)),
        };
        let successor = self.successor.clone().expect("found");
        let me = cx.core.me.id;
        if let Some(closer) = predecessor.as_ref().filter(|p| p.id != me && p.id.in_open(me, successor.id) && checks < SUCCESSOR_CHECKS) {
            // Its predecessor lies between us and it: that one is nearer our true successor.
            self.state = JoinState::Stating { asked: cx.request(closer, Request::State), checks: checks + 1 };
            self.successor = Some(closer.clone());
            return Step::Pending;
        }
        // Pull the arc we are about to own, (its predecessor, us], before anyone routes to us.
        self.from = predecessor.as_ref().map_or(successor.id, |p| p.id);
        let mine = (self.from, cx.core.me.id);
        if self.hand_foreign && !cx.core.restored {
            self.foreign = cx.core.store.all_items().into_iter().filter(|i| !Id::of_key(&i.key).in_half_open(mine.0, mine.1)).collect();
        }
        self.list = std::iter::once(successor.clone()).chain(successors).collect();
        cx.spawn(SyncArc::new(successor, mine));
        self.state = JoinState::Pulling;
        Step::Pending
    }

    /// The pull ended (a failed pull only leaves more to the first sync): join the ring.
    fn on_pulled(&mut self, cx: &mut Cx<'_>) -> Step {
        // What we pulled moved most of the arc while our successor still owned it; it counts
        // as held only after a sync once we own the arc (see `ArcState::joined`).
        cx.core.arc.joined();
        let Some(ring) = cx.core.ring.as_mut() else { return Join::done(Err(Error::Closed)) };
        ring.join(std::mem::take(&mut self.list));
        for node in ring.known_nodes() {
            cx.core.learn(&node);
        }
        let successor = self.successor.clone().expect("found");
        let me = cx.core.me.clone();
        self.state = JoinState::Notifying(cx.request(&successor, Request::Notify(me)));
        Step::Pending
    }

    /// A node that was a ring of its own hands what it held to the owners in the joined ring.
    fn hand_next(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.foreign.pop_front() {
            Some(item) => {
                cx.spawn(Lookup::new(Id::of_key(&item.key)));
                self.current = Some(item);
                self.state = JoinState::Handing(None);
                Step::Pending
            }
            None => {
                cx.core.arc.want_sync();
                cx.core.maintenance_due = true;
                Join::done(Ok(()))
            }
        }
    }
}

impl Machine for Join {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match (&self.state, input) {
            (JoinState::Finding { .. }, Input::Start) => {
                cx.spawn(Lookup::through(cx.core.me.id, self.bootstrap.clone()));
                Step::Pending
            }
            (JoinState::Finding { .. }, Input::Child(_, Outcome::Owner(result))) => self.on_successor(cx, result),
            (JoinState::Pausing { until, .. }, Input::Timer) if cx.now.mono >= *until => {
                let JoinState::Pausing { attempt, last_error, .. } = std::mem::replace(&mut self.state, JoinState::Pulling) else { unreachable!() };
                self.state = JoinState::Finding { attempt: attempt + 1, last_error };
                cx.spawn(Lookup::through(cx.core.me.id, self.bootstrap.clone()));
                Step::Pending
            }
            (JoinState::Stating { asked, checks }, Input::Reply(id, reply)) if *asked == id => {
                let checks = *checks;
                self.on_state(cx, reply, checks)
            }
            (JoinState::Pulling, Input::Child(_, Outcome::Unit(_))) => self.on_pulled(cx),
            (JoinState::Notifying(asked), Input::Reply(id, _)) if *asked == id => self.hand_next(cx),
            (JoinState::Handing(None), Input::Child(_, Outcome::Owner(Ok((owner, _))))) if owner.id != cx.core.me.id => {
                let item = self.current.take().expect("handing one");
                self.state = JoinState::Handing(Some(cx.request(&owner, Request::Handoff { items: vec![item] })));
                Step::Pending
            }
            (JoinState::Handing(None), Input::Child(..)) => self.hand_next(cx),
            (JoinState::Handing(Some(asked)), Input::Reply(id, _)) if *asked == id => self.hand_next(cx),
            _ => Step::Pending,
        }
    }
}

/// `join()`: become a ring member, through a known member if there is one.
pub struct BecomeMember;

impl Machine for BecomeMember {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let list_len = match cx.core.chord() {
                    Ok(config) => config.successor_list_len(),
                    Err(error) => return Step::Done(Outcome::Op(Err(error))),
                };
                let me = cx.core.me.clone();
                let ring = cx.core.ring.get_or_insert_with(|| Routing::new(me, list_len));
                if !ring.is_alone() {
                    return Step::Done(Outcome::Op(Ok(OpOutput::Unit)));
                }
                match cx.core.view.values().next().cloned() {
                    Some(bootstrap) => {
                        cx.spawn(Join::new(bootstrap));
                        Step::Pending
                    }
                    None => Step::Done(Outcome::Op(Ok(OpOutput::Unit))),
                }
            }
            Input::Child(_, Outcome::Unit(result)) => Step::Done(Outcome::Op(result.map(|_| OpOutput::Unit))),
            _ => Step::Pending,
        }
    }
}

enum LeaveState {
    TellingPredecessor(ReqId),
    TellingHeir(ReqId, NodeRef),
    HandingTo(ReqId, NodeRef),
}

/// Redirects a leaving node follows from heirs that are not the owner of its arc (a node
/// joined between them that it has not heard of yet).
const LEAVE_REDIRECTS: u32 = 4;

/// Leave the ring gracefully and stay as a client. Our own arc goes to the heir — our
/// successor, which becomes its owner and replicates it before answering; a successor that
/// fails passes the turn to the next one, and one that says another node owns the arc now
/// (`Redirect`: it had a newer predecessor than we knew) to that node. The copies we keep as
/// a replica of other arcs are not handed on: each such arc's owner sees us go (its successor
/// list changes) and syncs with its new replica set at once, so the copies stay where they
/// should and nobody is handed entries it neither owns nor replicates.
#[derive(Default)]
pub struct Leave {
    notice: Option<Request>,
    heirs: VecDeque<NodeRef>,
    items: Vec<Item>,
    batches: VecDeque<Vec<Item>>,
    state: Option<LeaveState>,
    redirects: u32,
}

impl Leave {
    fn next_heir(&mut self, cx: &mut Cx<'_>) -> Step {
        match self.heirs.pop_front() {
            Some(heir) => {
                let notice = self.notice.clone().expect("leaving");
                self.state = Some(LeaveState::TellingHeir(cx.request(&heir, notice), heir));
                Step::Pending
            }
            None => self.finish(cx),
        }
    }

    fn next_batch(&mut self, cx: &mut Cx<'_>, heir: NodeRef) -> Step {
        match self.batches.pop_front() {
            Some(batch) => {
                self.state = Some(LeaveState::HandingTo(cx.request(&heir, Request::Handoff { items: batch }), heir));
                Step::Pending
            }
            None => self.finish(cx),
        }
    }

    fn finish(&mut self, cx: &mut Cx<'_>) -> Step {
        cx.core.store.clear();
        cx.core.arcs.clear();
        Step::Done(Outcome::Op(Ok(OpOutput::Unit)))
    }
}

impl Machine for Leave {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match (self.state.take(), input) {
            (None, Input::Start) => {
                let Some(ring) = cx.core.ring.take() else { return Step::Done(Outcome::Op(Ok(OpOutput::Unit))) };
                self.items = match ring.primary_arc() {
                    Some((from, to)) => cx.core.store.items_in(from, to),
                    // Not knowing where our arc starts, we cannot tell our entries apart.
                    None => cx.core.store.all_items(),
                };
                self.heirs = ring.successors().iter().cloned().collect();
                if self.heirs.is_empty() {
                    return self.finish(cx); // the last node: nobody to hand anything to
                }
                let notice = Request::Leaving { predecessor: ring.predecessor().cloned(), successors: ring.successors().to_vec() };
                self.notice = Some(notice.clone());
                match ring.predecessor() {
                    Some(pred) => {
                        self.state = Some(LeaveState::TellingPredecessor(cx.request(pred, notice)));
                        Step::Pending
                    }
                    None => self.next_heir(cx),
                }
            }
            (Some(LeaveState::TellingPredecessor(asked)), Input::Reply(id, _)) if asked == id => self.next_heir(cx),
            (Some(LeaveState::TellingHeir(asked, heir)), Input::Reply(id, reply)) if asked == id => match reply {
                Ok(_) => {
                    self.batches = batches(&self.items).into();
                    self.next_batch(cx, heir)
                }
                Err(_) => self.next_heir(cx),
            },
            (Some(LeaveState::HandingTo(asked, heir)), Input::Reply(id, reply)) if asked == id => match reply {
                Ok(Response::Ok) => self.next_batch(cx, heir),
                Ok(Response::Redirect(owner)) if self.redirects < LEAVE_REDIRECTS && owner.id != cx.core.me.id => {
                    self.redirects += 1;
                    self.heirs.push_front(owner);
                    self.next_heir(cx)
                }
                _ => self.next_heir(cx),
            },
            (state, _) => {
                self.state = state;
                Step::Pending
            }
        }
    }
}

/// A member that is alone (no successor, no predecessor) while it knows other members was cut
/// off, restarted, or its join failed: it joins them again rather than stay a ring of one.
///
/// It does not join through just any member it knows: a restarted node's view is mostly its
/// former neighbours, and two neighbours restarted together would join each other and form a
/// ring apart from their live one (which then takes writes the live ring never sees). So it
/// first asks a few of them for their `State`: a node rejoining too refuses (see
/// `Core::refuses_joins`), a node in a ring answers, and it joins through one in a ring (or
/// else through a lone node that is not rejoining). When every member that answered is
/// rejoining too, the whole ring is restarting: the one with the smallest id becomes the
/// seed, which takes joins, and the others join through it next round. One that does not
/// answer at all is forgotten, so later rounds pick others.
pub struct Rejoin {
    /// A live member it was told of: join through it directly.
    via: Option<NodeRef>,
    candidates: Vec<NodeRef>,
    asked: Vec<(ReqId, NodeRef)>,
    in_ring: Option<NodeRef>,
    lone: Option<NodeRef>,
    restarting: Vec<Id>,
    joining: Option<NodeRef>,
}

impl Rejoin {
    pub fn through(bootstrap: NodeRef) -> Rejoin {
        Rejoin { via: Some(bootstrap), ..Rejoin::probing(Vec::new()) }
    }

    pub fn probing(candidates: Vec<NodeRef>) -> Rejoin {
        Rejoin { via: None, candidates, asked: Vec::new(), in_ring: None, lone: None, restarting: Vec::new(), joining: None }
    }

    fn join(&mut self, cx: &mut Cx<'_>, bootstrap: NodeRef) -> Step {
        cx.spawn(Join { hand_foreign: false, ..Join::new(bootstrap.clone()) });
        self.joining = Some(bootstrap);
        Step::Pending
    }

    /// Every probe answered: join through the best node found, or seed a restarting ring.
    fn decide(&mut self, cx: &mut Cx<'_>) -> Step {
        if let Some(node) = self.in_ring.take().or_else(|| self.lone.take()) {
            return self.join(cx, node);
        }
        let me = cx.core.me.id;
        if !self.restarting.is_empty() && self.restarting.iter().all(|id| me < *id) {
            cx.core.seeding = true;
        }
        Step::Done(Outcome::Unit(Ok(())))
    }
}

impl Machine for Rejoin {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                if let Some(via) = self.via.take() {
                    return self.join(cx, via);
                }
                let timeout = cx.core.failure_timeout;
                for node in std::mem::take(&mut self.candidates) {
                    let id = cx.request_within(&node, Request::State, timeout);
                    self.asked.push((id, node));
                }
                if self.asked.is_empty() {
                    return Step::Done(Outcome::Unit(Ok(())));
                }
                Step::Pending
            }
            Input::Reply(id, reply) => {
                let Some(at) = self.asked.iter().position(|(asked, _)| *asked == id) else { return Step::Pending };
                let (_, node) = self.asked.swap_remove(at);
                match reply {
                    Ok(Response::State { successors, .. }) if !successors.is_empty() => self.in_ring = self.in_ring.take().or(Some(node)),
                    Ok(Response::State { .. }) => self.lone = self.lone.take().or(Some(node)),
                    Ok(Response::Error { code, .. }) if code == "rejoining" => self.restarting.push(node.id),
                    Err(error) if error.is_unreachable() => cx.core.forget(node.id),
                    _ => {}
                }
                if self.asked.is_empty() {
                    self.decide(cx)
                } else {
                    Step::Pending
                }
            }
            // A failed join is not the bootstrap's fault as such (the successor it found may
            // have died meanwhile): it stays in the view, and the next round tries again. A dead
            // bootstrap is found out by the failure detector like any other peer.
            Input::Child(_, Outcome::Unit(result)) => Step::Done(Outcome::Unit(result)),
            _ => Step::Pending,
        }
    }
}

/// After `connect()` to a member: a lone member joins the ring through it. A failure is
/// reported as a notice; the connection itself stands.
pub struct JoinThrough {
    peer: NodeRef,
}

impl JoinThrough {
    pub fn new(peer: NodeRef) -> JoinThrough {
        JoinThrough { peer }
    }
}

impl Machine for JoinThrough {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                cx.core.learn(&self.peer);
                let alone = cx.core.ring.as_ref().is_some_and(|r| r.is_alone() && r.predecessor().is_none());
                if !alone {
                    return Step::Done(Outcome::Op(Ok(OpOutput::Unit)));
                }
                cx.spawn(Join::new(self.peer.clone()));
                cx.core.joining = true;
                Step::Pending
            }
            Input::Child(_, Outcome::Unit(result)) => {
                cx.core.joining = false;
                if let Err(error) = result {
                    // Keep trying through it (the rejoin duty), serving nothing meanwhile.
                    cx.core.rejoin_via = Some(self.peer.clone());
                    // And once that fails too, through the other members it knows.
                    cx.core.join_failed = true;
                    cx.notice(super::cx::Notice::Error {
                        code: error.code().into(),
                        message: format!("joining the ring through {}:{} failed: {error}", self.peer.host, self.peer.port),
                    });
                }
                Step::Done(Outcome::Op(Ok(OpOutput::Unit)))
            }
            _ => Step::Pending,
        }
    }
}
