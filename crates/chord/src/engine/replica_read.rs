//! Replica reads, the actions: answering a get as a delegate, granting delegations as an
//! owner, and keeping ours renewed while readers come. The rules and the state they keep are
//! in `delegate`.

use super::cx::{Cx, Input, Machine, Millis, Outcome, ReqId, Step};
use super::lease::LEASE_MS;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::{Hop, NodeRef};
use crate::store::Item;
use serde_bytes::ByteBuf;
use std::collections::HashMap;

/// Answer a get as a delegate of the key's owner, if we hold a delegation covering it (and
/// are not its owner: then the owner's path answers).
pub fn delegated_get(cx: &mut Cx<'_>, key: &[u8]) -> Option<Response> {
    let ring = cx.core.ring.as_ref()?;
    if cx.core.rejoining() {
        return None;
    }
    let position = Id::of_key(key);
    if matches!(ring.next_hop(position), Hop::Local) {
        return None;
    }
    let now = cx.now.mono;
    let demanded = cx.core.held.demanded(position, now);
    let Some(arc) = cx.core.held.covering(position, now) else {
        if demanded {
            cx.core.maintenance_due = true;
        }
        return None;
    };
    let found = cx.core.store.read(key).ok()?;
    cx.core.counters.replica_reads += 1;
    let item = found.map(|(value, version)| Item { key: key.to_vec(), value: Some(ByteBuf::from(value.to_vec())), version });
    Some(Response::Value { item, arc })
}

/// Serving `Delegate { from, to }` from `holder` as the arc's owner.
pub fn serve(cx: &mut Cx<'_>, holder: Option<&NodeRef>, asked: (Id, Id)) -> Response {
    // "not-owner": ask us no more (we are not that arc's owner, or the sender not one of its
    // first replicas); "not-delegated": not now, ask again later.
    let refuse = |code: &str, why: &str| Response::Error { code: code.into(), message: why.into() };
    let Some(holder) = holder else { return refuse("not-owner", "only a ring member can answer for us") };
    let Some(arc) = cx.core.ring.as_ref().and_then(|r| r.primary_arc()) else { return refuse("not-owner", "no arc here") };
    if arc != asked {
        return refuse("not-owner", "that is not our arc");
    }
    let now = cx.now.mono;
    if cx.core.rejoining() || cx.core.unsettled() || cx.core.unsynced(Id(arc.0 .0.wrapping_add(1))) || cx.core.arc.inherits_leases(now) {
        return refuse("not-delegated", "our arc is not settled");
    }
    let replicas = cx.core.chord.as_ref().map_or(1, |c| c.replicas);
    let asked_first = cx.core.replica_candidates().iter().take(replicas.saturating_sub(1)).any(|n| n.id == holder.id);
    if !asked_first {
        return refuse("not-owner", "not a replica our writes ask first");
    }
    if !cx.core.delegates.may_grant(holder.id, arc) {
        // Readers wait on it: compare the arc with our replicas soon (once a second at most).
        if cx.core.delegates.sync_due(now) {
            cx.core.arc.want_sync();
            cx.core.maintenance_due = true;
        }
        return refuse("not-delegated", "not an in-sync replica of our arc");
    }
    cx.core.delegates.grant(holder.id, arc, now);
    cx.core.counters.delegations_granted += 1;
    Response::Ok
}

/// Keeps our delegations renewed while readers come: asks each owner that syncs with us every
/// quarter of a lease for the ones missing or ending within half a lease; ends when no reader
/// came for `DEMAND_MS`.
#[derive(Default)]
pub struct KeepDelegations {
    asked: HashMap<ReqId, (Id, (Id, Id), Millis)>,
}

impl Machine for KeepDelegations {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        let now = cx.now.mono;
        match input {
            Input::Start | Input::Timer => {
                cx.core.held.keeping = true;
                if !cx.core.held.wanted(now) || !cx.core.is_member() {
                    cx.core.held.keeping = false;
                    return Step::Done(Outcome::Unit(Ok(())));
                }
                for (owner, arc) in cx.core.held.due(now) {
                    if self.asked.values().any(|(asked, _, _)| *asked == owner.id) {
                        continue;
                    }
                    let id = cx.request(&owner, Request::Delegate { from: arc.0, to: arc.1 });
                    self.asked.insert(id, (owner.id, arc, now));
                }
                cx.wake_at(now + LEASE_MS / 4);
            }
            Input::Reply(id, reply) => {
                if let Some((owner, arc, sent)) = self.asked.remove(&id) {
                    match reply {
                        Ok(Response::Ok) => cx.core.held.granted(owner, arc, sent),
                        Ok(Response::Error { code, .. }) if code == "not-owner" => cx.core.held.not_owner(owner),
                        _ => cx.core.held.refused(owner),
                    }
                }
            }
            _ => {}
        }
        Step::Pending
    }
}
