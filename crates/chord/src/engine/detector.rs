//! Failure detection in seconds. A connection whose peer went silent (a cut link, a frozen
//! host: no FIN, no RST) would otherwise hold every request for the full request timeout and
//! every operation for its whole deadline.
//!
//! The rule is a deadline detector with a direct probe (the direct half of SWIM's, Das et al.
//! 2002): when a request has waited half the failure timeout and its peer has said nothing at
//! all since it was sent, the peer is pinged with the other half as timeout. A `Ping` is
//! answered by the peer's connection reader at once, even while it is busy, so a loaded but
//! live peer answers in time; any frame from it counts as life. A peer that misses the probe is
//! suspected: its requests fail at once (their operations retry elsewhere), it leaves the
//! routing tables and becomes a contact to probe later, its connections are closed, and for a
//! quarantine it is not re-learned from others' tables — unless it speaks first.

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::time::Millis;
use crate::error::Error;
use crate::protocol::Request;
use crate::routing::NodeRef;

/// A suspect stays out of our tables this long unless it speaks to us first.
pub const QUARANTINE_MS: Millis = 10_000;

/// Ping a peer that is overdue; suspect it if it stays silent.
pub struct Probe {
    peer: NodeRef,
    asked: Option<ReqId>,
}

impl Probe {
    pub fn new(peer: NodeRef) -> Probe {
        Probe { peer, asked: None }
    }
}

impl Machine for Probe {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let timeout = cx.core.failure_timeout / 2;
                self.asked = Some(cx.request_within(&self.peer, Request::Ping, timeout));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => {
                // An answer already marked the peer as heard; only silence is news.
                if matches!(&reply, Err(error) if error.is_unreachable()) {
                    suspect(cx, &self.peer);
                }
                Step::Done(Outcome::Unit(Ok(())))
            }
            _ => Step::Pending,
        }
    }
}

/// Treat `peer` as failed: fail what waits on it, drop it from routing (it becomes a
/// contact), close its connections, keep it out of our tables for the quarantine.
pub fn suspect(cx: &mut Cx<'_>, peer: &NodeRef) {
    let now = cx.now.mono;
    cx.core.counters.figures.suspicions += 1;
    let silent = now.saturating_sub(cx.core.last_heard.get(&peer.id).copied().unwrap_or(0));
    let error = Error::Timeout(format!("{}:{} has been silent for {silent} ms: suspected of having failed", peer.host, peer.port));
    cx.fail_requests_to(peer.id, &error);
    cx.core.contacts.add_former(peer, now);
    cx.core.forget(peer.id);
    cx.core.suspects.insert(peer.id, now + QUARANTINE_MS);
    cx.disconnect(peer.id, "suspected of having failed (silent past the failure timeout)".into());
}
