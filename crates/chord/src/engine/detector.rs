//! Failure detection in seconds. A connection whose peer went silent (a cut link, a frozen
//! host: no FIN, no RST) would otherwise hold every request for the full request timeout and
//! every operation for its whole deadline.
//!
//! The rule is a deadline detector with a direct probe (the direct half of SWIM's, Das et al.
//! 2002): when a request has waited half the failure timeout and its peer has said nothing at
//! all since it was sent, the peer is probed within the other half: pinged, and pinged again if
//! the first ping goes unanswered for a quarter of the timeout. A `Ping` is answered by the
//! peer's connection reader at once, even while it is busy, so a loaded but live peer answers
//! in time; any frame from it counts as life. Two pings rather than one make a false suspicion
//! need three losses in a row instead of two (under 1% message loss in the simulator: from 24
//! to under 1 per node and hour), at no cost in detection time. A peer that misses the probe is
//! suspected: its requests fail at once (their operations retry elsewhere), it leaves the
//! routing tables and becomes a contact to probe later, its connections are closed, and for a
//! quarantine it is not re-learned from others' tables — unless it speaks first.
//!
//! A silent failure rarely comes alone: a partition cuts off many peers at once. So when the
//! first ping of such a probe goes unanswered too, a sweep starts: every routing peer and the members that follow the silent one (those an
//! operation or a write's replication tries next) that we have not heard from lately are
//! probed alongside, rather than each costing an operation a whole failure timeout in turn
//! (on six hosts split 2|2|2 this took the longest stall of a writer from over 5 s to about
//! 2 s). Sweeps are at most one per half failure timeout and probe at most `SWEEP_MAX` peers;
//! a node whose lookup asks us to route around one of our peers gets that peer probed too
//! (`probe_if_quiet`).

use super::core::Core;
use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::time::Millis;
use crate::error::Error;
use crate::id::Id;
use crate::protocol::Request;
use crate::routing::NodeRef;
use std::collections::HashSet;

/// A suspect stays out of our tables this long unless it speaks to us first.
pub const QUARANTINE_MS: Millis = 10_000;

/// Pings in one probe.
const PINGS: u32 = 2;
/// Most peers one sweep probes, and how many members following a suspect it includes.
const SWEEP_MAX: usize = 32;
const SWEEP_FOLLOWERS: usize = 8;

/// Ping a peer that is overdue; suspect it if it stays silent through every ping.
pub struct Probe {
    peer: NodeRef,
    /// Whether to sweep the peers likely cut off with it if the first ping goes unanswered
    /// (a probe of an overdue request).
    sweep: bool,
    asked: Option<ReqId>,
    pings: u32,
    started: Millis,
}

impl Probe {
    /// A probe of `peer`, which kept a request of ours waiting in silence, with a sweep;
    /// whoever starts it has put `peer` in `core.probing`.
    pub fn overdue(peer: NodeRef) -> Probe {
        Probe { peer, sweep: true, asked: None, pings: 0, started: 0 }
    }

    fn single(peer: NodeRef) -> Probe {
        Probe { sweep: false, ..Probe::overdue(peer) }
    }

    fn finish(&self, cx: &mut Cx<'_>) -> Step {
        cx.core.probing.remove(&self.peer.id);
        Step::Done(Outcome::Unit(Ok(())))
    }

    fn ping(&mut self, cx: &mut Cx<'_>) -> Step {
        // The probe's share of the failure timeout (half of it), split between the pings.
        let timeout = cx.core.failure_timeout / 2 / Millis::from(PINGS);
        self.pings += 1;
        self.asked = Some(cx.request_within(&self.peer, Request::Ping, timeout));
        Step::Pending
    }

    fn heard_since_start(&self, cx: &Cx<'_>) -> bool {
        cx.core.last_heard.get(&self.peer.id).is_some_and(|heard| *heard >= self.started)
    }
}

impl Machine for Probe {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                self.started = cx.now.mono;
                self.ping(cx)
            }
            Input::Reply(id, reply) if self.asked == Some(id) => {
                // Any frame from the peer (a late answer to the first ping too) is life; only
                // silence through every ping is news.
                let silent = matches!(&reply, Err(error) if error.is_unreachable()) && !self.heard_since_start(cx);
                if !silent {
                    return self.finish(cx);
                }
                if self.pings < PINGS {
                    if self.sweep {
                        sweep(cx, self.peer.id);
                    }
                    return self.ping(cx);
                }
                suspect(cx, &self.peer);
                self.finish(cx)
            }
            _ => Step::Pending,
        }
    }
}

/// Treat `peer` as failed: fail what waits on it, drop it from routing (it becomes a
/// contact), close its connections, keep it out of our tables for the quarantine. Whether it
/// is news: a suspect still silent (a merge probe of a former member) is not counted again.
pub fn suspect(cx: &mut Cx<'_>, peer: &NodeRef) -> bool {
    let now = cx.now.mono;
    let news = !cx.core.is_suspect(peer.id);
    if news {
        cx.core.counters.figures.suspicions += 1;
    }
    let silent = now.saturating_sub(cx.core.last_heard.get(&peer.id).copied().unwrap_or(0));
    let error = Error::Timeout(format!("{}:{} has been silent for {silent} ms: suspected of having failed", peer.host, peer.port));
    cx.fail_requests_to(peer.id, &error);
    cx.core.contacts.add_former(peer, now);
    cx.core.forget(peer.id);
    cx.core.suspect_until(peer.id, now + QUARANTINE_MS);
    cx.disconnect(peer.id, "suspected of having failed (silent past the failure timeout)".into());
    news
}

/// `silent` kept a request waiting: probe the peers likely cut off with it too (see the
/// module docs). The probes run on their own; nobody waits for them.
fn sweep(cx: &mut Cx<'_>, silent: Id) {
    let now = cx.now.mono;
    let half = cx.core.failure_timeout / 2;
    if cx.core.last_sweep.is_some_and(|at| now < at + half) {
        return;
    }
    cx.core.last_sweep = Some(now);
    for peer in sweep_candidates(cx.core, silent, now.saturating_sub(half)) {
        probe_if_quiet(cx, &peer);
    }
}

/// Probe `peer` unless it spoke within half the failure timeout, is suspected already or is
/// being probed. Also how a node checks a hint: a lookup that asks us to route around one of
/// our routing peers (`FindSuccessor { avoid }`) found it silent; we verify before we act.
pub fn probe_if_quiet(cx: &mut Cx<'_>, peer: &NodeRef) {
    let quiet_since = cx.now.mono.saturating_sub(cx.core.failure_timeout / 2);
    let core = &mut *cx.core;
    if peer.id == core.me.id || core.is_suspect(peer.id) || core.last_heard.get(&peer.id).is_some_and(|heard| *heard >= quiet_since) {
        return;
    }
    if core.probing.insert(peer.id) {
        cx.spawn(Probe::single(peer.clone()));
    }
}

/// Routing peers and the members following `silent` that `probe_if_quiet` would probe; at
/// most `SWEEP_MAX`.
fn sweep_candidates(core: &Core, silent: Id, quiet_since: Millis) -> Vec<NodeRef> {
    let followers = core.view.range(silent..).chain(core.view.range(..silent)).map(|(_, n)| n.clone()).take(SWEEP_FOLLOWERS);
    let routing = core.ring.as_ref().map(|ring| ring.known_nodes()).unwrap_or_default();
    let mut seen = HashSet::new();
    followers
        .chain(routing)
        .filter(|n| n.id != core.me.id && n.id != silent && seen.insert(n.id))
        .filter(|n| !core.is_suspect(n.id) && !core.probing.contains(&n.id))
        .filter(|n| core.last_heard.get(&n.id).is_none_or(|heard| *heard < quiet_since))
        .take(SWEEP_MAX)
        .collect()
}

/// Nodes probed at most per avoid list (a lookup's silent nodes; see `check_avoided`).
const AVOIDED_CHECKED: usize = 8;

/// A lookup asks us to route around nodes it found silent: any of them still in our routing
/// table is probed (unless we heard from it lately), so we stop pointing others at it within
/// half a failure timeout rather than whenever we next talk to it ourselves.
pub(super) fn check_avoided(cx: &mut Cx<'_>, avoid: &[Id]) {
    let Some(ring) = cx.core.ring.as_ref() else { return };
    let known = ring.known_nodes();
    for id in avoid.iter().take(AVOIDED_CHECKED) {
        if let Some(node) = known.iter().find(|n| n.id == *id) {
            probe_if_quiet(cx, node);
        }
    }
}
