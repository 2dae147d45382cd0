//! Answering peers' requests. Most are answered from local state at once ([`Served::Now`]);
//! a write at its owner and a hand-off must wait on other nodes, so they become machines
//! ([`Served::Later`]) whose outcome is the answer.

use super::core::{not_member, Core};
use super::cx::{Cx, Machine};
use super::sync::{apply_items, TakeOver, SYNC_VERSIONS_LIMIT};
use super::write::OwnerWrite;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::{Hop, NodeRef};
use crate::store::{Item, Store};
use serde_bytes::ByteBuf;

/// Largest page of a ring walk a node serves.
pub const MAX_PAGE_ITEMS: u32 = 4096;

pub enum Served {
    Now(Response),
    Later(Box<dyn Machine>),
}

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
    Served::Now(match body {
        Request::Ping => Response::Pong,
        Request::Write { key, value, mode } => return Served::Later(Box::new(OwnerWrite::new(key.into_vec(), value, mode))),
        Request::Handoff { items } => return Served::Later(Box::new(TakeOver::new(items))),
        Request::Replicate { items } => {
            apply_items(cx, &items);
            Response::Ok
        }
        Request::Fetch { keys } => Response::Items(keys.iter().filter_map(|key| entry(&cx.core.store, key)).collect()),
        Request::SyncArc { from, to, digest } => {
            // Owners sync their own arc (it ends at their id): that grants us a replica lease.
            // Bucket-sized pieces of it (which end elsewhere) grant nothing new.
            if sender.is_some_and(|s| s.id == to) {
                cx.core.leases.insert(to, (from, cx.now.mono));
            }
            compare_arc(&cx.core.store, from, to, &digest)
        }
        Request::State => {
            let ring = cx.core.ring.as_ref().expect("member");
            Response::State { predecessor: ring.predecessor().cloned(), successors: ring.successors().to_vec() }
        }
        Request::Notify(candidate) => {
            let ring = cx.core.ring.as_mut().expect("member");
            if ring.on_notify(&candidate) {
                cx.core.sync_wanted = true;
            }
            cx.core.learn(&candidate);
            Response::Ok
        }
        Request::FindSuccessor { position, avoid } => Response::Next(cx.core.ring.as_ref().expect("member").next_hop_avoiding(position, &avoid)),
        Request::Get { key } => owner_get(cx.core, key.into_vec()),
        Request::Page { after, limit, with_values } => page(cx.core, after, limit, with_values),
        Request::Leaving { predecessor, successors: _ } => {
            // A neighbour is leaving: drop it; if it was our predecessor, its own predecessor
            // is ours now. Stabilize confirms the rest.
            if let Some(leaver) = sender {
                cx.core.forget(leaver.id);
                if let Some(pred) = predecessor.filter(|p| p.id != cx.core.me.id) {
                    let ring = cx.core.ring.as_mut().expect("member");
                    if ring.predecessor().is_none() {
                        ring.on_notify(&pred);
                    }
                    cx.core.learn(&pred);
                }
                cx.core.sync_wanted = true;
                cx.core.maintenance_due = true;
            }
            Response::Ok
        }
    })
}

/// A `Get` at the node we think owns the key: the value and our arc, or a redirect.
pub fn owner_get(core: &Core, key: Vec<u8>) -> Response {
    let Some(ring) = &core.ring else { return not_member() };
    match ring.next_hop(Id::of_key(&key)) {
        Hop::Local => {
            let arc = ring.primary_arc().unwrap_or((core.me.id, core.me.id));
            let item = core.store.get(&key).map(|(value, version)| Item { key, value: Some(ByteBuf::from(value.to_vec())), version });
            Response::Value { item, arc }
        }
        Hop::Owner(next) | Hop::Closer(next) => Response::Redirect(next),
    }
}

/// A page of the live keys we are primary for, after the cursor.
pub fn page(core: &Core, after: Option<(Id, ByteBuf)>, limit: u32, with_values: bool) -> Response {
    let Some(ring) = &core.ring else { return not_member() };
    let Some((from, to)) = ring.primary_arc() else {
        return Response::Error { code: "unavailable".into(), message: "predecessor unknown; the ring is stabilizing".into() };
    };
    let after = after.map(|(p, k)| (p, k.into_vec()));
    let (mut items, more) = core.store.live_page(from, to, after.as_ref(), limit.clamp(1, MAX_PAGE_ITEMS) as usize);
    if !with_values {
        for item in items.iter_mut() {
            item.value = None;
        }
    }
    Response::Page { items, more, successor: ring.successor().clone() }
}

fn entry(store: &Store, key: &[u8]) -> Option<Item> {
    let version = store.version_of(key)?;
    let value = store.get(key).map(|(v, _)| ByteBuf::from(v.to_vec()));
    Some(Item { key: key.to_vec(), value, version })
}

/// Anti-entropy answer: in sync, the digests of the arc's pieces, or (for one piece) our
/// version list.
fn compare_arc(store: &Store, from: Id, to: Id, digest: &[u8]) -> Response {
    if store.digest(from, to)[..] == digest[..] {
        Response::InSync
    } else if Store::split_arc(from, to).len() > 1 {
        Response::SubDigests(store.sub_digests(from, to).iter().map(|d| ByteBuf::from(d.to_vec())).collect())
    } else {
        let mut versions = store.versions_in(from, to);
        versions.truncate(SYNC_VERSIONS_LIMIT);
        Response::Versions(versions.into_iter().map(|(k, v)| (ByteBuf::from(k), v)).collect())
    }
}
