//! Answering peers' requests. Most are answered from local state at once ([`Served::Now`]);
//! a write at its owner and a hand-off must wait on other nodes, so they become machines
//! ([`Served::Later`]) whose outcome is the answer.

use super::core::{not_member, not_stored, syncing, Core};
use super::cx::{Cx, Served};
use super::read::{entry, get_here, LocalGet};
use super::sync::{apply_items, Replica, TakeOver, SYNC_VERSIONS_LIMIT};
use super::write::owner_write;
use crate::config::DATA_BUDGET_BYTES;
use crate::id::Id;
use crate::protocol::{Request, Response, Routed};
use crate::routing::NodeRef;
use crate::store::Store;
use serde_bytes::ByteBuf;

/// Bytes of subscriber table one `Subscriptions` answer carries at most.
const SUBSCRIPTIONS_BUDGET_BYTES: usize = 1 << 20;

/// Largest page of a ring walk a node serves.
pub const MAX_PAGE_ITEMS: u32 = 4096;

/// Answer `body` from `sender` (`None` when we serve ourselves).
pub fn serve(cx: &mut Cx<'_>, sender: Option<&NodeRef>, body: Request) -> Served {
    if cx.core.chord.is_none() {
        return Served::Now(match body {
            Request::Ping => Response::Pong,
            _ => Response::Error { code: "not-chord".into(), message: "this node is a plain MeshSocket".into() },
        });
    }
    if !cx.core.is_member() && !matches!(body, Request::Ping) {
        // A client (or a node that left) stores nothing: whoever asks must pick a member.
        return Served::Now(not_member());
    }
    if let Some(refusal) = super::guard::check(cx, sender, &body) {
        return Served::Now(refusal);
    }
    if matches!(body, Request::State | Request::Notify(_) | Request::FindSuccessor { .. } | Request::Relay { body: Routed::FindSuccessor { .. }, .. }) && cx.core.refuses_joins() {
        // A node rejoining its ring (or joining one) is no place to join (or rejoin) through:
        // two restarted neighbours joining each other would form a ring apart from their live
        // one. Nor is it a successor to adopt: a member that took a restarted node back as its
        // successor and notified it made it a ring of two with that member, whose
        // predecessors it then walked back around the whole ring (simulator crash-20pct).
        return Served::Now(super::core::rejoining());
    }
    Served::Now(match body {
        Request::Relay { ttl, body } => return super::relay::serve(cx, ttl, body),
        Request::Ping => Response::Pong,
        Request::Write { key, value, mode, nonce } => match owner_write(cx, key.into_vec(), value, mode, nonce) {
            Ok(write) => return Served::Later(Box::new(write)),
            Err(answer) => answer,
        },
        Request::Handoff { items } => return Served::Later(Box::new(TakeOver::new(items))),
        // With a `dataDir`, a copy counts once it is durable: answered when committed.
        Request::Replicate { items } if cx.core.store.is_durable() => return Served::Later(Box::new(Replica::new(items))),
        Request::Replicate { items } => {
            apply_items(cx, &items);
            Response::Ok
        }
        Request::Fetch { keys } => fetch(&cx.core.store, &keys),
        Request::SyncArc { from, to, digest, after } => {
            // Owners sync their own arc (it ends at their id): that grants us a replica lease.
            // Bucket-sized pieces of it (which end elsewhere) grant nothing new.
            if let Some(owner) = sender.filter(|s| s.id == to) {
                cx.core.leases.insert(to, (from, cx.now.mono));
                cx.core.held.owner_synced(owner, (from, to), cx.now.mono);
            }
            compare_arc(&cx.core.store, from, to, &digest, after.map(|(p, k)| (p, k.into_vec())))
        }
        Request::State => {
            let ring = cx.core.ring.as_ref().expect("member");
            Response::State { predecessor: ring.predecessor().cloned(), successors: ring.successors().to_vec() }
        }
        Request::Notify(candidate) => {
            let me = cx.core.me.id;
            let holds_everything = cx.core.holds_everything();
            let ring = cx.core.ring.as_mut().expect("member");
            if ring.on_notify(&candidate) && cx.core.arc.predecessor_changed(candidate.id, me, holds_everything, cx.now.mono) {
                // Part of our arc waits for a sync: run it soon, not at the next round.
                cx.core.maintenance_due = true;
            }
            cx.core.learn(&candidate);
            Response::Ok
        }
        Request::FindSuccessor { position, avoid } => {
            super::detector::check_avoided(cx, &avoid);
            Response::Next(cx.core.ring.as_ref().expect("member").next_hop_avoiding(position, &avoid))
        }
        Request::Get { key } => match super::replica_read::delegated_get(cx, &key) {
            Some(answer) => answer,
            None => match get_here(cx.core, key.into_vec()) {
                LocalGet::Now(answer) => answer,
                LocalGet::Around(read) => return Served::Later(Box::new(read)),
            },
        },
        Request::Delegate { from, to } => super::replica_read::serve(cx, sender, (from, to)),
        Request::GetLeased { key } => {
            let key = key.into_vec();
            match get_here(cx.core, key.clone()) {
                LocalGet::Now(Response::Value { item, arc }) => match sender {
                    Some(holder) if cx.core.read_leases.grant(&key, holder, cx.now.mono) => {
                        cx.core.counters.leases_granted += 1;
                        Response::Leased { item, arc }
                    }
                    _ => Response::Value { item, arc },
                },
                LocalGet::Now(answer) => answer,
                // Settling (a miss checked with the successors): answered without a lease.
                LocalGet::Around(read) => return Served::Later(Box::new(read)),
            }
        }
        Request::Invalidate { keys } => {
            let now = cx.now.mono;
            for key in &keys {
                cx.core.cache.invalidate(key, now);
            }
            Response::Ok
        }
        Request::Page { after, limit, with_values } => page(cx.core, after, limit, with_values),
        // Diagnostics hold the driver's measurements too: the node's driver answers `Info`
        // itself; an engine without one (the simulator) has nothing to report.
        Request::Subscriptions => {
            let me = cx.core.me.clone();
            Response::Subscriptions(cx.core.watch.export(&me, cx.now.mono, SUBSCRIPTIONS_BUDGET_BYTES))
        }
        Request::Members { digest } => super::gossip::serve_digest(cx.core, sender, digest),
        Request::MemberEntries { buckets, entries } => super::gossip::serve_entries(cx, sender, buckets, entries),
        Request::Info => Response::Error { code: "not-served".into(), message: "Info is answered by the node's driver".into() },
        Request::Candidates(candidates) => {
            if let Some(sender) = sender {
                super::merge::on_candidates(cx, sender, candidates);
            }
            Response::Ok
        }
        Request::Leaving { predecessor, successors: _ } => {
            // The sender leaves: it goes from our tables (it speaks for itself only). If it was
            // our predecessor, its own predecessor is ours now — if we know that node already
            // and it lies before the leaver. One we never heard of is neither adopted nor
            // dialled: its Notify (the leaver told it too) or stabilize brings the real one. A
            // node outside our routing state leaving changes nothing else: an honest one
            // reaches an heir whose predecessor moved meanwhile, anyone else is ignored.
            if let Some(leaver) = sender {
                let ring = cx.core.ring.as_ref().expect("member");
                let neighbour = ring.knows(leaver.id);
                let was_predecessor = ring.predecessor().is_some_and(|p| p.id == leaver.id);
                cx.core.drop_node(leaver.id);
                if let Some(heir_of) = predecessor.filter(|_| was_predecessor).and_then(|p| cx.core.inherited_predecessor(&p, leaver.id)) {
                    let (me, holds_everything) = (cx.core.me.id, cx.core.holds_everything());
                    let ring = cx.core.ring.as_mut().expect("member");
                    // Our arc grows by the leaver's, as after a Notify: synced before it is
                    // read, and written only once read leases the leaver granted ran out.
                    if ring.predecessor().is_none() && ring.on_notify(&heir_of) && cx.core.arc.predecessor_changed(heir_of.id, me, holds_everything, cx.now.mono) {
                        cx.core.maintenance_due = true;
                    }
                }
                if neighbour {
                    cx.core.arc.want_sync();
                    cx.core.maintenance_due = true;
                }
            }
            Response::Ok
        }
    })
}


/// A page of the live keys we are primary for, after the cursor.
pub fn page(core: &Core, after: Option<(Id, ByteBuf)>, limit: u32, with_values: bool) -> Response {
    let Some(ring) = &core.ring else { return not_member() };
    let Some((from, to)) = ring.primary_arc() else {
        return Response::Error { code: "unavailable".into(), message: "predecessor unknown; the ring is stabilizing".into() };
    };
    // A page of an arc we took over and have not synced yet would skip keys we do not hold
    // yet: the walk waits (it asks again shortly) instead.
    if core.unsynced(Id(from.0.wrapping_add(1))) {
        return syncing();
    }
    let after = after.map(|(p, k)| (p, k.into_vec()));
    let limit = limit.clamp(1, MAX_PAGE_ITEMS) as usize;
    let (items, more) = core.store.live_page(from, to, after.as_ref(), limit, DATA_BUDGET_BYTES, with_values);
    Response::Page { items, more, successor: ring.successor().clone() }
}


/// The entries of the keys asked for, in order, until past the byte budget (at least one key
/// is served, so a value of the maximum size always moves). A value we cannot read ends the
/// answer before its key, so the asker asks again from it; asked first, it is answered with
/// the error (`"storage-corrupt"`), never as a tombstone (see `read::entry`).
fn fetch(store: &Store, keys: &[ByteBuf]) -> Response {
    let mut items = Vec::new();
    let (mut bytes, mut served) = (0, 0);
    for key in keys {
        if served > 0 && bytes >= DATA_BUDGET_BYTES {
            break;
        }
        match entry(store, key) {
            Ok(found) => {
                if let Some(item) = found {
                    bytes += item.wire_bytes();
                    items.push(item);
                }
                served += 1;
            }
            Err(error) if served == 0 => return not_stored(&error),
            Err(_) => break,
        }
    }
    Response::Items { items, served: served as u32 }
}

/// Anti-entropy answer: in sync, the digests of the arc's pieces, or (for one piece, or a
/// listing continued after a cursor) a page of our version list.
fn compare_arc(store: &Store, from: Id, to: Id, digest: &[u8], after: Option<(Id, Vec<u8>)>) -> Response {
    if store.digest(from, to)[..] == digest[..] {
        Response::InSync
    } else if after.is_none() && Store::split_arc(from, to).len() > 1 {
        Response::SubDigests(store.sub_digests(from, to).iter().map(|d| ByteBuf::from(d.to_vec())).collect())
    } else {
        let (versions, more) = store.versions_page(from, to, after.as_ref(), SYNC_VERSIONS_LIMIT, DATA_BUDGET_BYTES);
        Response::Versions { versions: versions.into_iter().map(|(k, v)| (ByteBuf::from(k), v)).collect(), more }
    }
}
