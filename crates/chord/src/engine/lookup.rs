//! Iterative greedy lookup: Chord's `find_successor` (Stoica et al. 2001, Fig. 5) run by the
//! originator one hop at a time. `Hop::Closer(n)` → ask `n` (`FindSuccessor`); `Hop::Owner(n)`
//! → `n` is the answer; `Hop::Local` (or `n` answering `Next(Local)`) → the node asked is.
//!
//! Each node asked is asked to relay (`relay`): it forwards the lookup along its own open
//! connections and answers with the owner, so the asker usually contacts only its first hop;
//! a hop that cannot forward answers `Next(Closer)` and the lookup goes on from there, one hop
//! at a time. The hops counted are every node the lookup passed through.
//!
//! A hop that does not answer is forgotten and routed around: the node that pointed at it is
//! asked again with the dead nodes excluded (`FindSuccessor { avoid }`), because a dead
//! successor's keys belong to the next live one. A hop to a node we suspect is routed around
//! the same way without asking it. After a few such detours the lookup pauses between
//! attempts, and gives up at the operation deadline.

use super::core::{backoff, unexpected};
use super::cx::{Cx, Input, Machine, Millis, Outcome, ReqId, Step};
use crate::config::{MAX_AVOIDED_IDS, OPERATION_DEADLINE};
use crate::error::{Error, Result};
use crate::id::Id;
use super::relay::RELAY_TTL;
use crate::protocol::{RelayAnswer, Request, Response, Routed};
use crate::routing::{Hop, NodeRef};

/// Hop budget of one lookup: far above the O(log n) a correct ring needs.
pub const MAX_HOPS: u32 = 128;
/// Dead hops routed around at once before the lookup starts pausing between attempts.
const FREE_DETOURS: u32 = 3;

pub struct Lookup {
    position: Id,
    /// The next hop; `None` until started from our own tables.
    hop: Option<Hop>,
    hops: u32,
    detours: u32,
    /// Nodes found dead during this lookup.
    avoid: Vec<Id>,
    /// The last node that answered: a dead hop is routed around by asking it again.
    last_answer: Option<NodeRef>,
    deadline: Millis,
    asking: Option<(ReqId, NodeRef)>,
    paused_until: Option<Millis>,
}

impl Lookup {
    /// Find the owner of `position`, starting from this node's own tables.
    pub fn new(position: Id) -> Lookup {
        Lookup { position, hop: None, hops: 0, detours: 0, avoid: Vec::new(), last_answer: None, deadline: 0, asking: None, paused_until: None }
    }

    /// Find the owner of `position` from our own tables, routing around `avoid` (nodes found
    /// silent) from the start.
    pub fn avoiding(position: Id, avoid: Vec<Id>) -> Lookup {
        Lookup { avoid, ..Lookup::new(position) }
    }

    /// Find the owner of `position`, asking `first` first (a joiner's bootstrap node).
    pub fn through(position: Id, first: NodeRef) -> Lookup {
        Lookup { hop: Some(Hop::Closer(first)), ..Lookup::new(position) }
    }

    fn done(&self, cx: &mut Cx<'_>, result: Result<NodeRef>) -> Step {
        if result.is_ok() {
            cx.core.counters.figures.record_lookup(self.hops);
        }
        Step::Done(Outcome::Owner(result.map(|owner| (owner, self.hops))))
    }

    /// Follow hops until one needs a remote answer.
    fn advance(&mut self, cx: &mut Cx<'_>) -> Step {
        loop {
            let hop = match self.hop.take() {
                Some(hop) => hop,
                None => match cx.core.local_hop(self.position, &self.avoid) {
                    Ok(hop) => hop,
                    Err(error) => return self.done(cx, Err(error)),
                },
            };
            let node = match hop {
                Hop::Local => return self.done(cx, Ok(cx.core.me.clone())),
                // Pointed back at ourselves: continue from our own tables.
                Hop::Closer(node) if node.id == cx.core.me.id => continue,
                // Pointed at a node we suspect (the answerer has not noticed yet): route around
                // it at once, as if it had not answered.
                Hop::Owner(node) | Hop::Closer(node) if cx.core.is_suspect(node.id) => return self.route_around(cx, node),
                Hop::Owner(node) => return self.done(cx, Ok(node)),
                Hop::Closer(node) => node,
            };
            self.hops += 1;
            if self.hops > MAX_HOPS {
                return self.done(cx, Err(Error::Unavailable(format!("lookup did not converge in {MAX_HOPS} hops"))));
            }
            let body = Routed::FindSuccessor { position: self.position, avoid: self.avoid.clone() };
            let id = cx.request(&node, Request::Relay { ttl: RELAY_TTL, body });
            self.asking = Some((id, node));
            return Step::Pending;
        }
    }

    /// Wait a little, then go on from our own tables (or give up at the deadline).
    fn pause(&mut self, cx: &mut Cx<'_>) -> Step {
        self.detours += 1;
        match backoff(cx.now.mono, self.deadline, self.detours) {
            Ok(at) => {
                self.paused_until = Some(at);
                cx.wake_at(at);
                Step::Pending
            }
            Err(error) => self.done(cx, Err(error)),
        }
    }

    /// `dead` did not answer: forget it and continue through the node that pointed at it, or
    /// from our own tables if there is none (or it is the dead one).
    fn route_around(&mut self, cx: &mut Cx<'_>, dead: NodeRef) -> Step {
        cx.core.forget(dead.id);
        // The latest ones: peers refuse longer lists (`MAX_AVOIDED_IDS`, guard).
        if self.avoid.len() == MAX_AVOIDED_IDS {
            self.avoid.remove(0);
        }
        self.avoid.push(dead.id);
        self.detours += 1;
        self.hop = self.last_answer.take().filter(|previous| previous.id != dead.id).map(Hop::Closer);
        if self.detours <= FREE_DETOURS {
            return self.advance(cx);
        }
        self.detours -= 1;
        self.pause(cx)
    }
}

impl Machine for Lookup {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                self.deadline = cx.now.mono + OPERATION_DEADLINE.as_millis() as u64;
                if self.hop.is_none() {
                    match cx.core.start_hop(self.position) {
                        Ok(hop) => self.hop = Some(hop),
                        Err(error) => return self.done(cx, Err(error)),
                    }
                }
                self.advance(cx)
            }
            Input::Reply(id, reply) if self.asking.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, node) = self.asking.take().expect("checked");
                match reply {
                    Ok(Response::Relayed { hops, answer }) => {
                        self.hops += u32::from(hops);
                        match answer {
                            RelayAnswer::Next(Hop::Local) => self.done(cx, Ok(node)),
                            RelayAnswer::Next(next) => {
                                self.last_answer = Some(node);
                                self.hop = Some(next);
                                self.advance(cx)
                            }
                            // Refused further along (a node rejoining, say): not the first
                            // hop's fault; pause and try again from our own tables.
                            _ => self.pause(cx),
                        }
                    }
                    Ok(Response::Next(Hop::Local)) => self.done(cx, Ok(node)),
                    Ok(Response::Next(next)) => {
                        self.last_answer = Some(node);
                        self.hop = Some(next);
                        self.advance(cx)
                    }
                    Ok(Response::Error { .. }) => self.route_around(cx, node),
                    Ok(other) => self.done(cx, Err(unexpected(other))),
                    Err(error) if error.is_unreachable() => self.route_around(cx, node),
                    // Alive but its table (or ours) is full of connections it needs: wait a
                    // little and go again from our own tables, which prefer connected hops.
                    Err(Error::Rejected { code, .. }) if code == "busy" => self.pause(cx),
                    Err(error) => self.done(cx, Err(error)),
                }
            }
            Input::Timer if self.paused_until.is_some_and(|at| cx.now.mono >= at) => {
                self.paused_until = None;
                self.advance(cx)
            }
            _ => Step::Pending,
        }
    }
}
