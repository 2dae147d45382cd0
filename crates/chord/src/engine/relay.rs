//! Relaying: recursive routing over the connections a node keeps anyway, with iterative
//! routing as the fallback. A lookup or a dict operation sent as `Relay` is carried hop by hop
//! towards the owner of its position, each node forwarding it to its own next hop (a finger or
//! successor, which it holds a connection to) and passing the answer back, so nobody dials the
//! nodes in between: in a ring larger than a connection table, iterative routing would make
//! the asker connect to every hop (a handshake each, and tables churning), where relaying
//! keeps every node within its routing set (see `links`).
//!
//! A node that cannot forward — the next hop is not connected, it is suspected, or the
//! request's `ttl` is spent — answers as it would the request alone (`Redirect` or
//! `Next(Closer)`), and the asker continues from there iteratively, as before relaying. The
//! answer says how many relays it took (`Relayed { hops }`), so hop counts stay measurable.
//! Each relay is a request of its own, with its deadline and the failure detector behind it;
//! a relay whose next hop fails answers with that fallback rather than an error.

use super::cx::{Cx, Input, Machine, Outcome, ReqId, Served, Step};
use super::read::{get_here, LocalGet};
use super::detector::check_avoided;
use super::write::owner_write;
use crate::id::Id;
use crate::protocol::{RelayAnswer, Request, Response, Routed};
use crate::routing::{Hop, NodeRef};

/// Relays one request may take: far above a correct ring's greedy path (½·log2 N, 10 at a
/// million nodes), it only bounds a loop while routing tables disagree.
pub const RELAY_TTL: u8 = 16;

/// Answer `Relay { ttl, body }` (a ring member; `serve` checked).
pub fn serve(cx: &mut Cx<'_>, ttl: u8, body: Routed) -> Served {
    let me = cx.core.me.clone();
    let hop = |cx: &Cx<'_>, position: Id, avoid: &[Id]| cx.core.ring.as_ref().expect("member").next_hop_avoiding(position, avoid);
    match body {
        Routed::FindSuccessor { position, avoid } => {
            check_avoided(cx, &avoid);
            match hop(cx, position, &avoid) {
                // The owner named explicitly: the asker may not know who answered.
                Hop::Local => answered(RelayAnswer::Next(Hop::Owner(me))),
                Hop::Owner(owner) => answered(RelayAnswer::Next(Hop::Owner(owner))),
                Hop::Closer(next) => {
                    let fallback = RelayAnswer::Next(Hop::Closer(next.clone()));
                    forward_or(cx, ttl, next, Routed::FindSuccessor { position, avoid }, fallback)
                }
            }
        }
        Routed::Get { key } => match hop(cx, Id::of_key(&key), &[]) {
            Hop::Local => match get_here(cx.core, key.into_vec()) {
                LocalGet::Now(answer) => answered(answer.into()),
                LocalGet::Around(read) => Served::Later(Box::new(Answering(Box::new(read)))),
            },
            Hop::Owner(next) | Hop::Closer(next) => forward_or(cx, ttl, next.clone(), Routed::Get { key }, RelayAnswer::Redirect(next)),
        },
        Routed::Write { key, value, mode, nonce } => match hop(cx, Id::of_key(&key), &[]) {
            Hop::Local => match owner_write(cx, key.into_vec(), value, mode, nonce) {
                Ok(write) => Served::Later(Box::new(Answering(Box::new(write)))),
                Err(answer) => answered(answer.into()),
            },
            Hop::Owner(next) | Hop::Closer(next) => forward_or(cx, ttl, next.clone(), Routed::Write { key, value, mode, nonce }, RelayAnswer::Redirect(next)),
        },
    }
}

fn answered(answer: RelayAnswer) -> Served {
    Served::Now(Response::Relayed { hops: 0, answer })
}

/// Forward to `next` if we may (a connection to it, not suspected, `ttl` left) — or, when we
/// hold no connection to it, to the connected node closest before the position, which still
/// makes progress — else answer `fallback` for the asker to continue from.
fn forward_or(cx: &mut Cx<'_>, ttl: u8, next: NodeRef, body: Routed, fallback: RelayAnswer) -> Served {
    let usable = |cx: &Cx<'_>, node: &NodeRef| node.id != cx.core.me.id && cx.core.links.is_open(node.id) && !cx.core.is_suspect(node.id);
    let to = if usable(cx, &next) {
        Some(next)
    } else {
        let (position, avoid) = match &body {
            Routed::FindSuccessor { position, avoid } => (*position, avoid.clone()),
            Routed::Get { key } | Routed::Write { key, .. } => (Id::of_key(key), Vec::new()),
        };
        cx.core.open_hop_towards(position, &avoid)
    };
    match to.filter(|_| ttl > 0) {
        Some(to) => Served::Later(Box::new(Forward { to, request: Some(Request::Relay { ttl: ttl - 1, body }), fallback: Some(fallback), asked: None })),
        None => answered(fallback),
    }
}

/// One relay: ask the next hop, pass its answer back one hop further from the node that gave
/// it; if the next hop fails, answer the fallback (the asker routes around it).
struct Forward {
    to: NodeRef,
    request: Option<Request>,
    fallback: Option<RelayAnswer>,
    asked: Option<ReqId>,
}

impl Machine for Forward {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let request = self.request.take().expect("started once");
                self.asked = Some(cx.request(&self.to, request));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => {
                let relayed = match reply {
                    Ok(Response::Relayed { hops, answer }) => Response::Relayed { hops: hops.saturating_add(1), answer },
                    Ok(other) => Response::Relayed { hops: 1, answer: other.into() },
                    Err(_) => Response::Relayed { hops: 0, answer: self.fallback.take().expect("answered once") },
                };
                Step::Done(Outcome::Response(relayed))
            }
            _ => Step::Pending,
        }
    }
}

/// A request relayed to us that we answer with a machine of our own (a write at its owner, a
/// read checked around): its answer goes back as a relayed one.
struct Answering(Box<dyn Machine>);

impl Machine for Answering {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match self.0.step(cx, input) {
            Step::Done(Outcome::Response(response)) => Step::Done(Outcome::Response(Response::Relayed { hops: 0, answer: response.into() })),
            other => other,
        }
    }
}
