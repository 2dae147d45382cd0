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

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;

/// What to do once the node answered as a member (it is learned in any case).
pub type Then = Box<dyn FnOnce(&mut Cx<'_>, &NodeRef) + Send>;

/// Ask `node` whether it is a ring member, then learn it and run `then`. Returns false when
/// the bounds left no room for the check (nothing happens then).
pub fn verify(cx: &mut Cx<'_>, node: &NodeRef, then: Then) -> bool {
    if node.id == cx.core.me.id || cx.core.is_suspect(node.id) || !cx.core.verifier.begin(node.id, cx.now.mono) {
        return false;
    }
    cx.spawn(Verify { node: node.clone(), then: Some(then), asked: None });
    true
}

struct Verify {
    node: NodeRef,
    then: Option<Then>,
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
                if let Ok(Response::State { .. }) = reply {
                    cx.core.learn(&self.node);
                    if let Some(then) = self.then.take() {
                        then(cx, &self.node);
                    }
                }
                Step::Done(Outcome::Unit(Ok(())))
            }
            _ => Step::Pending,
        }
    }
}
