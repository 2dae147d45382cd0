//! Ring-wide `add` / `delete` events: El-Ansary et al.'s broadcast over the finger table
//! ("Efficient broadcast in structured P2P networks", IPTPS 2003). The owner of a changed key
//! sends the event to each of its fingers with a limit — the next finger's id — and each
//! receiver covers `(itself, limit)` the same way, so every member hears it once (N − 1
//! messages, O(log N) depth). Connected clients hear it from the member they are attached to.

use super::core::Event;
use super::cx::{Cx, Notice};
use super::verify;
use crate::routing::NodeRef;
use crate::id::Id;
use crate::protocol::Message;
use serde_bytes::ByteBuf;

/// The owner announces a change of `key` it just stored.
pub fn announce(cx: &mut Cx<'_>, key: Vec<u8>, added: bool) {
    let id = Id(rand::Rng::gen(&mut cx.core.rng));
    cx.core.seen.first_time(id);
    deliver(cx, &key, added);
    let limit = cx.core.me.id;
    forward(cx, id, key, added, limit);
}

/// Events held while their sender proves it is a member: a burst from a new member waits for
/// one check, and a flood from an impostor costs at most this many.
const MAX_UNPROVEN_EVENTS: usize = 256;

/// An event arrived from `from`. Only members relay events (an anonymous client must not
/// make every node announce a write that never happened): from a member we know it is
/// delivered at once, from a peer that claims to be one it waits until the peer answers as a
/// member, from anyone else it is dropped.
pub fn on_event(cx: &mut Cx<'_>, from: &NodeRef, event: Event) {
    if cx.core.knows_member(from.id) {
        return relay(cx, event);
    }
    if !cx.core.links.claims_member(from.id) {
        cx.core.counters.events_refused += 1;
        return;
    }
    if cx.core.unproven_events.len() >= MAX_UNPROVEN_EVENTS {
        cx.core.unproven_events.pop_front();
        cx.core.counters.events_refused += 1;
    }
    cx.core.unproven_events.push_back((from.id, event));
    // A check may be under way already: the one its handshake's claim started releases
    // these too (`Engine::connected`).
    verify::verify(cx, from, Box::new(proven));
}

/// `member` answered as a ring member: the events it sent meanwhile go on.
pub fn proven(cx: &mut Cx<'_>, member: &NodeRef) {
    if cx.core.unproven_events.iter().all(|(sender, _)| *sender != member.id) {
        return;
    }
    let (proven, waiting) = std::mem::take(&mut cx.core.unproven_events).into_iter().partition(|(sender, _)| *sender == member.id);
    cx.core.unproven_events = waiting;
    for (_, event) in proven {
        relay(cx, event);
    }
}

/// Deliver an event from a member once and cover our part of its arc.
fn relay(cx: &mut Cx<'_>, Event { id, key, added, limit }: Event) {
    if !cx.core.seen.first_time(id) {
        return;
    }
    deliver(cx, &key, added);
    forward(cx, id, key, added, limit);
}

fn deliver(cx: &mut Cx<'_>, key: &[u8], added: bool) {
    if cx.core.chord.as_ref().is_some_and(|c| c.events) {
        let key = key.to_vec();
        cx.notice(if added { Notice::Added(key) } else { Notice::Deleted(key) });
    }
}

fn forward(cx: &mut Cx<'_>, id: Id, key: Vec<u8>, added: bool, limit: Id) {
    let me = cx.core.me.id;
    let Some(ring) = &cx.core.ring else { return };
    let mut members = ring.distinct_fingers();
    for successor in ring.successors() {
        if !members.iter().any(|m| m.id == successor.id) {
            members.push(successor.clone());
        }
    }
    members.retain(|n| n.id.in_open(me, limit));
    members.sort_by_key(|n| me.distance_to(n.id));
    let key = ByteBuf::from(key);
    cx.core.counters.events_forwarded += members.len() as u64;
    for (i, member) in members.iter().enumerate() {
        let next_limit = members.get(i + 1).map_or(limit, |n| n.id);
        cx.send(member.clone(), Message::Event { id, key: key.clone(), added, limit: next_limit });
    }
    cx.to_clients(Message::Event { id, key, added, limit: me });
}
