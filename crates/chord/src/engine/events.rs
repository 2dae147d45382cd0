//! `add` / `delete` events, by subscription (see `watch`): the owner of a changed key sends
//! the event to the subscribers whose prefixes match, and delivers it itself if its own user
//! listens; a member passes events on to its clients that watch the key. Nobody listening,
//! nothing sent. Events travel only from members: one from a peer that has not shown it is a
//! member is held until it has, or dropped.

use super::cx::{Cx, Notice};
use super::verify;
use super::watch;
use crate::id::Id;
use crate::protocol::Message;
use crate::routing::NodeRef;
use serde_bytes::ByteBuf;

/// The owner announces a change of `key` it just stored.
pub fn announce(cx: &mut Cx<'_>, key: Vec<u8>, added: bool) {
    let id = Id(rand::Rng::gen(&mut cx.core.rng));
    cx.core.seen.first_time(id);
    let subscribers = cx.core.watch.subscribers_for(&key, cx.now.mono);
    cx.core.counters.events_forwarded += subscribers.len() as u64;
    for subscriber in subscribers {
        let limit = subscriber.id;
        cx.send(subscriber, Message::Event { id, key: ByteBuf::from(key.clone()), added, limit });
    }
    deliver(cx, id, key, added);
}

/// Messages held while their sender proves it is a member: a burst from a new member waits
/// for one check, and a flood from an impostor costs at most this many.
const MAX_UNPROVEN: usize = 256;

/// An `Event` or a `Subscribe` arrived from `from`. Only members send events and pass
/// subscriptions on (an anonymous client must not make every node announce a write that
/// never happened): from a member we know it is taken at once, from a peer that claims to be
/// one it waits until the peer answers as a member, and from a client only its own
/// subscription counts.
pub fn on_message(cx: &mut Cx<'_>, from: &NodeRef, message: Message) {
    // Known, or a connected peer that claims membership and our member table (gossip among
    // members) lists alive: a member, without another check.
    let listed = cx.core.links.claims_member(from.id) && cx.core.members.contains(from.id);
    if cx.core.knows_member(from.id) || listed {
        return from_member(cx, from, message);
    }
    if !cx.core.links.claims_member(from.id) {
        match message {
            subscribe @ Message::Subscribe { .. } => watch::on_subscribe(cx, from, false, subscribe),
            _ => cx.core.counters.events_refused += 1,
        }
        return;
    }
    if cx.core.unproven.len() >= MAX_UNPROVEN {
        cx.core.unproven.pop_front();
        cx.core.counters.events_refused += 1;
    }
    cx.core.unproven.push_back((from.clone(), message));
    // A check may be under way already: the one its handshake's claim started releases
    // these too (`Engine::connected`). One the budget does not allow now is retried each
    // maintenance round (`check_unproven`).
    verify::verify(cx, from, Box::new(proven));
}

/// Start the checks of senders whose messages are held and that no check is under way for:
/// the verifier's budget (16 a second) refused them when their messages came — a listener
/// hearing from many owners at once — and their events would wait for nothing.
pub fn check_unproven(cx: &mut Cx<'_>) {
    let mut senders: Vec<NodeRef> = Vec::new();
    for (sender, _) in &cx.core.unproven {
        if !senders.iter().any(|s| s.id == sender.id) {
            senders.push(sender.clone());
        }
    }
    for sender in senders {
        if !cx.verified_then().contains_key(&sender.id) && !verify::verify(cx, &sender, Box::new(proven)) {
            break; // the budget is spent for now
        }
    }
}

/// `member` answered as a ring member: what it sent meanwhile is taken now.
pub fn proven(cx: &mut Cx<'_>, member: &NodeRef) {
    if cx.core.unproven.iter().all(|(sender, _)| sender.id != member.id) {
        return;
    }
    let (proven, waiting) = std::mem::take(&mut cx.core.unproven).into_iter().partition(|(sender, _)| sender.id == member.id);
    cx.core.unproven = waiting;
    for (_, message) in proven {
        from_member(cx, member, message);
    }
}

fn from_member(cx: &mut Cx<'_>, from: &NodeRef, message: Message) {
    match message {
        // Delivered once (an owner that retried may send one twice).
        Message::Event { id, key, added, .. } => {
            if cx.core.seen.first_time(id) {
                deliver(cx, id, key.into_vec(), added);
            }
        }
        subscribe @ Message::Subscribe { .. } => watch::on_subscribe(cx, from, true, subscribe),
        _ => {}
    }
}

/// To our user if it watches `key`, and on to our clients that do.
fn deliver(cx: &mut Cx<'_>, id: Id, key: Vec<u8>, added: bool) {
    if !cx.core.chord.as_ref().is_some_and(|c| c.events) {
        return;
    }
    for client in cx.core.watch.clients_for(&key) {
        if cx.core.links.is_open(client.id) {
            let limit = client.id;
            cx.send(client, Message::Event { id, key: ByteBuf::from(key.clone()), added, limit });
        }
    }
    if cx.core.watch.own_matches(&key) {
        cx.notice(if added { Notice::Added(key) } else { Notice::Deleted(key) });
    }
}
