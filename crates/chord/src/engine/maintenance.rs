//! Periodic Chord maintenance, one machine per duty, with the corrected rules of Zave
//! ("Reasoning about identifier spaces: how to make Chord correct", 2017): stabilize asks the
//! successor for its predecessor and successor list, adopts a closer successor, refreshes the
//! list and notifies; check-predecessor forgets a predecessor that does not answer; fix-fingers
//! refreshes a few fingers by lookups. Every decision is `Routing`'s; these machines only carry
//! its questions and answers.

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::lookup::Lookup;
use crate::error::Error;
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;

/// Fingers refreshed per maintenance round (those needing a lookup).
pub const FINGERS_PER_ROUND: usize = 8;

fn finished() -> Step {
    Step::Done(Outcome::Unit(Ok(())))
}

/// Steps one stabilize may walk back through successors' predecessors before it settles for
/// this round. Chord's stabilize takes one step a round, so a node whose successor is far off
/// (a joiner whose lookup met stale fingers, a node that lost its whole successor list) would
/// need a round per node in between; walking on within the round fixes it in milliseconds.
pub const STABILIZE_STEPS: u32 = 16;

/// Stabilize: ask the successor for `State` and adopt what it says; while it names a closer
/// successor, ask that one too (up to [`STABILIZE_STEPS`]); then notify the successor.
#[derive(Default)]
pub struct Stabilize {
    asked: Option<(ReqId, NodeRef)>,
    notified: Option<(ReqId, NodeRef)>,
    steps: u32,
}

impl Stabilize {
    fn ask(&mut self, cx: &mut Cx<'_>, successor: NodeRef) -> Step {
        self.steps += 1;
        self.asked = Some((cx.request(&successor, Request::State), successor));
        Step::Pending
    }

    fn notify(&mut self, cx: &mut Cx<'_>, target: NodeRef) -> Step {
        let me = cx.core.me.clone();
        self.notified = Some((cx.request(&target, Request::Notify(me)), target));
        Step::Pending
    }
}

impl Machine for Stabilize {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => match &cx.core.ring {
                Some(ring) if !ring.is_alone() => {
                    let successor = ring.successor().clone();
                    self.ask(cx, successor)
                }
                _ => finished(),
            },
            Input::Reply(id, reply) if self.asked.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, successor) = self.asked.take().expect("checked");
                match reply {
                    Ok(Response::State { predecessor, mut successors }) => {
                        // Suspects stay out of our tables through their quarantine.
                        successors.retain(|n| !cx.core.is_suspect(n.id));
                        let predecessor = predecessor.filter(|p| !cx.core.is_suspect(p.id));
                        for node in successors.iter().chain(predecessor.iter()) {
                            cx.core.learn(node);
                        }
                        let Some(ring) = cx.core.ring.as_mut() else { return finished() };
                        let before: Vec<_> = ring.successors().iter().map(|n| n.id).collect();
                        let its_predecessor = predecessor.as_ref().map(|p| p.id);
                        let adopted = ring.on_successor_state(&successor, predecessor, successors);
                        if ring.successors().iter().map(|n| n.id).ne(before) {
                            cx.core.arc.want_sync();
                            cx.core.stir();
                        }
                        match adopted {
                            Some(closer) if self.steps < STABILIZE_STEPS => self.ask(cx, closer),
                            Some(closer) => self.notify(cx, closer),
                            // It already has us as its predecessor: nothing to rectify.
                            None if its_predecessor == Some(cx.core.me.id) => finished(),
                            None => self.notify(cx, successor),
                        }
                    }
                    Ok(Response::Error { .. }) => {
                        cx.core.forget(successor.id);
                        finished()
                    }
                    Err(error) if error.is_unreachable() => {
                        cx.core.forget(successor.id);
                        finished()
                    }
                    // Alive, its table full of its neighbours — one of them a newcomer between
                    // us that displaced us there. The members it names to try instead include
                    // its predecessor: a closer successor of ours, asked next.
                    Err(Error::Rejected { code, elsewhere, .. }) if code == "busy" => {
                        let me = cx.core.me.id;
                        let closer = elsewhere.into_iter().filter(|n| n.id.in_open(me, successor.id) && !cx.core.is_suspect(n.id)).min_by_key(|n| me.distance_to(n.id));
                        match closer {
                            Some(closer) if self.steps < STABILIZE_STEPS => {
                                cx.core.learn(&closer);
                                if cx.core.ring.as_mut().is_some_and(|ring| ring.consider_successor(&closer)) {
                                    cx.core.arc.want_sync();
                                    cx.core.stir();
                                }
                                self.ask(cx, closer)
                            }
                            _ => finished(),
                        }
                    }
                    _ => finished(),
                }
            }
            Input::Reply(id, reply) if self.notified.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, target) = self.notified.take().expect("checked");
                if matches!(&reply, Err(error) if error.is_unreachable()) {
                    cx.core.forget(target.id);
                }
                finished()
            }
            _ => Step::Pending,
        }
    }
}

/// Ping the predecessor; forget it if it does not answer.
#[derive(Default)]
pub struct CheckPredecessor {
    asked: Option<(ReqId, NodeRef)>,
}

impl Machine for CheckPredecessor {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let Some(pred) = cx.core.ring.as_ref().and_then(|r| r.predecessor().cloned()) else { return finished() };
                // It asks us for our state every round of its own: a word from it within the
                // last quarter failure timeout is as good as a pong.
                let quiet_since = cx.now.mono.saturating_sub(cx.core.failure_timeout / 4);
                if cx.core.last_heard.get(&pred.id).is_some_and(|heard| *heard >= quiet_since) {
                    return finished();
                }
                self.asked = Some((cx.request(&pred, Request::Ping), pred));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked.as_ref().is_some_and(|(asked, _)| *asked == id) => {
                let (_, pred) = self.asked.take().expect("checked");
                if matches!(&reply, Err(error) if error.is_unreachable()) {
                    cx.core.forget(pred.id);
                }
                finished()
            }
            _ => Step::Pending,
        }
    }
}

/// Refresh up to [`FINGERS_PER_ROUND`] fingers, one lookup at a time — one per round once the
/// routing state is calm (fingers rarely change then; a changed one stirs it again).
#[derive(Default)]
pub struct FixFingers {
    fixed: usize,
    index: u32,
}

impl FixFingers {
    fn next(&mut self, cx: &mut Cx<'_>) -> Step {
        let quota = if cx.core.calm() { 1 } else { FINGERS_PER_ROUND };
        if self.fixed >= quota {
            return finished();
        }
        let Some((index, start)) = cx.core.ring.as_mut().and_then(|r| r.next_finger_to_fix()) else { return finished() };
        self.index = index;
        cx.spawn(Lookup::new(start));
        Step::Pending
    }
}

impl Machine for FixFingers {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => self.next(cx),
            Input::Child(_, Outcome::Owner(Ok((owner, _)))) => {
                cx.core.learn(&owner);
                let Some(ring) = cx.core.ring.as_mut() else { return finished() };
                if ring.set_finger(self.index, owner) {
                    cx.core.stir();
                }
                self.fixed += 1;
                self.next(cx)
            }
            Input::Child(..) => finished(),
            _ => Step::Pending,
        }
    }
}
