//! Chord maintenance as the real node runs it each stabilization period
//! (`maintenance_loop` in crates/chord/src/node/chord.rs): stabilize (ask the successor for
//! its `State`, adopt a closer successor and its list, `Notify`), check-predecessor (`Ping`)
//! and fix-fingers (a few finger lookups), plus join. Rules: Stoica et al. 2001 §4.4 with the
//! corrections of Zave 2017 (the joiner adopts its successor's list; dead successors are
//! dropped and the next one in the list is used).
//!
//! Every decision is taken by `chord::routing::Routing`; this module only carries messages.

use crate::lookup::{self, find_owner_from, forget, Policy};
use crate::network::Network;
use chord::protocol::{Request, Response};
use chord::routing::Hop;
use chord::Id;
use rand::seq::SliceRandom;
use rand::Rng;

/// Finger lookups per maintenance round: the real node's `FINGERS_PER_ROUND` (node/chord.rs).
pub const FINGERS_PER_ROUND: usize = 8;

/// One maintenance period of node `me`.
pub fn maintain(net: &mut Network, me: Id) {
    stabilize(net, me);
    check_predecessor(net, me);
    fix_fingers(net, me);
}

/// One stabilization round: every live node runs [`maintain`] once, in a random order.
pub fn round(net: &mut Network, rng: &mut impl Rng) {
    let mut order = net.live_ids();
    order.shuffle(rng);
    for id in order {
        maintain(net, id);
    }
}

/// Stabilize. When the successor is dead the real node forgets it and its maintenance loop is
/// woken at once (`maintenance_wake`); here that immediate retry happens in the same call, at
/// most once per successor-list entry.
pub fn stabilize(net: &mut Network, me: Id) {
    for _ in 0..=net.successor_list_len() {
        let Some(routing) = net.routing(me) else { return };
        if routing.is_alone() {
            return;
        }
        let successor = routing.successor().clone();
        match net.request(successor.id, Request::State) {
            Ok(Response::State { predecessor, successors }) => {
                let Some(routing) = net.routing_mut(me) else { return };
                let adopted = routing.on_successor_state(&successor, predecessor, successors);
                let target = adopted.unwrap_or(successor);
                if net.request(target.id, Request::Notify(Network::node_ref(me))).is_err() {
                    forget(net, me, target.id);
                }
                return;
            }
            _ => forget(net, me, successor.id),
        }
    }
}

/// Ping the predecessor; forget it if it does not answer.
pub fn check_predecessor(net: &mut Network, me: Id) {
    let Some(predecessor) = net.routing(me).and_then(|r| r.predecessor()).map(|p| p.id) else { return };
    if net.request(predecessor, Request::Ping).is_err() {
        forget(net, me, predecessor);
    }
}

/// Refresh up to [`FINGERS_PER_ROUND`] fingers by lookups through the network.
pub fn fix_fingers(net: &mut Network, me: Id) {
    for _ in 0..FINGERS_PER_ROUND {
        let Some((index, start)) = net.routing_mut(me).and_then(|r| r.next_finger_to_fix()) else { return };
        let trial = lookup::find_owner(net, me, start, Policy::Retry);
        let Some(owner) = trial.owner else { return };
        if let Some(routing) = net.routing_mut(me) {
            routing.set_finger(index, Network::node_ref(owner));
        }
    }
}

/// Zave's join, as `join_via` does it: find our successor through `bootstrap`, adopt its
/// successor list, notify it. Returns false when the join did not happen; like the real node,
/// a lookup that ends at ourselves (after a dead hop emptied our way forward) joins nothing.
pub fn join(net: &mut Network, me: Id, bootstrap: Id) -> bool {
    let start = Hop::Closer(Network::node_ref(bootstrap));
    let trial = find_owner_from(net, me, me, start, Policy::Retry);
    let Some(successor) = trial.owner.filter(|&s| s != me) else { return false };
    let Ok(Response::State { successors, .. }) = net.request(successor, Request::State) else { return false };
    let mut list = vec![Network::node_ref(successor)];
    list.extend(successors);
    let Some(routing) = net.routing_mut(me) else { return false };
    routing.join(list);
    let _ = net.request(successor, Request::Notify(Network::node_ref(me)));
    true
}
