//! Members are taken at their word only once they answered as one. A handshake proves a
//! peer's id (its key), not that it is a ring member: the `member` flag of its Hello is a
//! claim any client can make, and a node named in a message (a merge candidate) may not exist
//! at all. Acting on such a word — learning a node as a member (which makes a lone node think
//! it lost its ring), adopting it as successor, dialling it again and again — is what an
//! attacker wants; so before we act we ask the node for its `State`, and act only on an answer
//! a member gives (a `State`: not `not-member`, an error or silence).
//!
//! Bounded (`core::Verifier`): one check per node at a time, 16 at once, 16 started a second;
//! a check that finds no room is not made (the contact probes and stabilize come back to what
//! matters). Each costs one `State` request: over the connection the node came on, or, for a
//! merge candidate, a dial to its address.

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step, Then};
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;

/// Continuations waiting on one check at most: a node that keeps sending hints while we ask
/// it costs no more.
const MAX_WAITING_PER_NODE: usize = 16;

/// Ask `node` whether it is a ring member, then learn it and run `then`. A check of the same
/// node under way already runs `then` too when it ends. Returns false when the bounds left no
/// room for the check (nothing happens then).
pub fn verify(cx: &mut Cx<'_>, node: &NodeRef, then: Then) -> bool {
    if node.id == cx.core.me.id || cx.core.is_suspect(node.id) {
        return false;
    }
    if let Some(waiting) = cx.verified_then().get_mut(&node.id) {
        if waiting.len() >= MAX_WAITING_PER_NODE {
            return false;
        }
        waiting.push(then);
        return true;
    }
    if !cx.core.verifier.begin(node.id, cx.now.mono) {
        return false;
    }
    cx.verified_then().insert(node.id, vec![then]);
    cx.spawn(Verify { node: node.clone(), asked: None });
    true
}

struct Verify {
    node: NodeRef,
    asked: Option<ReqId>,
}

impl Machine for Verify {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let timeout = cx.core.failure_timeout;
                self.asked = Some(cx.request_within(&self.node, Request::State, timeout));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => {
                cx.core.verifier.end(self.node.id);
                let waiting = cx.verified_then().remove(&self.node.id).unwrap_or_default();
                if let Ok(Response::State { .. }) = reply {
                    cx.core.learn(&self.node);
                    for then in waiting {
                        then(cx, &self.node);
                    }
                }
                Step::Done(Outcome::Unit(Ok(())))
            }
            _ => Step::Pending,
        }
    }
}
