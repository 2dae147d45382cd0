//! Who listens for which changes: events by subscription instead of a flood.
//!
//! A node that listens (its user has `add`/`delete` listeners, or a `watch(prefix)`) announces
//! a subscription — itself and the key prefixes it wants, with a lease — to every member, over
//! the same finger-table broadcast the events used to take (El-Ansary et al., IPTPS 2003): N − 1
//! messages per announcement, renewed every [`RENEW_MS`], instead of N − 1 per write. Every
//! member keeps the table; the owner of a changed key sends the event straight to the
//! subscribers whose prefixes match (so a write costs its replicas plus its subscribers), in
//! write order over one connection, and the subscriber delivers it once.
//!
//! The table survives ring changes because every member holds all of it: a crashed owner's
//! successor already knows the subscribers, and a joiner copies its successor's table as soon
//! as it is in the ring (`PullSubscriptions`). A subscription not renewed within [`LEASE_MS`]
//! (its node died or was cut off) lapses. A client (`join: false`) subscribes through the
//! members it is connected to: each adds the client's prefixes to its own subscription and
//! passes matching events on.

use super::core::Core;
use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use super::subscribers::{prefixes_from_wire, LEASE_MS};
use crate::config::MAX_SUBSCRIBERS;
use crate::id::Id;
use crate::protocol::{Message, Request, Response, Subscription};
use crate::routing::NodeRef;
use serde_bytes::ByteBuf;

/// Announce our subscription if it is due: ring-wide when we are a member, to the members we
/// are connected to when we are a client.
pub fn announce_if_due(cx: &mut Cx<'_>) {
    if !cx.core.chord.as_ref().is_some_and(|c| c.events) {
        return;
    }
    let Some(prefixes) = cx.core.watch.due(cx.now.mono) else { return };
    let me = cx.core.me.clone();
    let prefixes: Vec<ByteBuf> = prefixes.into_iter().map(ByteBuf::from).collect();
    if cx.core.is_member() {
        let id = Id(rand::Rng::gen(&mut cx.core.rng));
        cx.core.seen.first_time(id);
        let limit = me.id;
        broadcast(cx, Message::Subscribe { id, node: me, prefixes, lease_ms: LEASE_MS, limit });
    } else {
        for member in attached_members(cx.core) {
            cx.send(member, Message::Subscribe { id: Id(0), node: me.clone(), prefixes: prefixes.clone(), lease_ms: LEASE_MS, limit: me.id });
        }
    }
}

/// The members a client is connected to (it hears events through them).
fn attached_members(core: &Core) -> Vec<NodeRef> {
    core.view.values().filter(|n| core.links.is_open(n.id)).cloned().collect()
}

/// Send a ring-wide message to our fingers and successors in `(me, limit)`, each covering the
/// stretch up to the next one: every member receives it once.
pub fn broadcast(cx: &mut Cx<'_>, message: Message) {
    let me = cx.core.me.id;
    let Some(ring) = &cx.core.ring else { return };
    let limit = match &message {
        Message::Subscribe { limit, .. } => *limit,
        _ => return,
    };
    let mut members = ring.distinct_fingers();
    for successor in ring.successors() {
        if !members.iter().any(|m| m.id == successor.id) {
            members.push(successor.clone());
        }
    }
    members.retain(|n| n.id != me && (limit == me || n.id.in_open(me, limit)));
    members.sort_by_key(|n| me.distance_to(n.id));
    for (i, member) in members.iter().enumerate() {
        let next_limit = members.get(i + 1).map_or(limit, |n| n.id);
        let mut copy = message.clone();
        if let Message::Subscribe { limit, .. } = &mut copy {
            *limit = next_limit;
        }
        cx.send(member.clone(), copy);
    }
}

/// A `Subscribe` arrived from `from`, which the caller checked: a member we know (its
/// broadcast, passed on), or a client for itself.
pub fn on_subscribe(cx: &mut Cx<'_>, from: &NodeRef, from_member: bool, message: Message) {
    let Message::Subscribe { id, node, prefixes, lease_ms, limit } = message else { return };
    let Some(wanted) = prefixes_from_wire(prefixes.clone()) else {
        cx.core.counters.events_refused += 1;
        return;
    };
    if !from_member {
        // A client speaks for itself only, and only to the members it is attached to.
        if node.id == from.id && cx.core.is_member() {
            cx.core.watch.set_client(node, wanted);
            announce_if_due(cx);
        }
        return;
    }
    if !cx.core.seen.first_time(id) {
        return;
    }
    if node.id != cx.core.me.id {
        cx.core.watch.record(node.clone(), wanted, lease_ms, cx.now.mono);
    }
    broadcast(cx, Message::Subscribe { id, node, prefixes, lease_ms, limit });
}

/// A joiner copies its successor's table, so writes it now owns reach the subscribers at
/// once rather than at their next renewal.
#[derive(Default)]
pub struct PullSubscriptions {
    asked: Option<ReqId>,
}

impl Machine for PullSubscriptions {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let Some(successor) = cx.core.ring.as_ref().filter(|r| !r.is_alone()).map(|r| r.successor().clone()) else {
                    return Step::Done(Outcome::Unit(Ok(())));
                };
                self.asked = Some(cx.request(&successor, Request::Subscriptions));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => {
                if let Ok(Response::Subscriptions(list)) = reply {
                    let now = cx.now.mono;
                    let me = cx.core.me.id;
                    for Subscription { node, prefixes, lease_ms } in list.into_iter().take(MAX_SUBSCRIBERS) {
                        if let Some(prefixes) = prefixes_from_wire(prefixes).filter(|_| node.id != me) {
                            cx.core.watch.record(node, prefixes, lease_ms, now);
                        }
                    }
                    cx.core.watch.pulled(true);
                }
                Step::Done(Outcome::Unit(Ok(())))
            }
            _ => Step::Pending,
        }
    }
}
