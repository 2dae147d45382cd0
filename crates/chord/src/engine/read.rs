//! Reads while the ring settles. After a partition heals, the rings zip together over a few
//! seconds, and during that time two nodes may both take themselves for a key's owner: a write
//! acknowledged by one is not yet on the other. After a crash, the owner that took over the
//! dead node's arc may not hold every key of it yet (a write made while tables were still
//! forming went to stand-in replicas). So for a while after a node hears of a merge
//! (`Candidates`) or its arc grows, an owner that finds no entry for a key asks its successors
//! — where the other owner's copies sit — and answers with the newest entry any of them holds
//! (a tombstone included), instead of "absent". Anti-entropy moves the entry for good; this
//! only keeps reads from missing it meanwhile.

use super::core::{not_member, not_stored, rejoining, syncing, Core};
use super::cx::{Cx, Input, Machine, Outcome, ReqId, Step};
use crate::error::Error;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::Hop;
use crate::store::Store;
use crate::store::Item;
use serde_bytes::ByteBuf;

/// A get served here: answered at once, or after asking around.
pub enum LocalGet {
    Now(Response),
    Around(ReadAround),
}

/// Serve a get as the key's owner (or redirect), asking the successors on a miss while the
/// ring settles.
pub fn get_here(core: &Core, key: Vec<u8>) -> LocalGet {
    let answer = owner_get(core, key.clone());
    match answer {
        Response::Value { item: None, arc } if core.unsettled() => LocalGet::Around(ReadAround { key, arc, asked: Vec::new(), newest: None }),
        answer => LocalGet::Now(answer),
    }
}

/// Ask every successor for its entry of one key; answer with the newest one found.
pub struct ReadAround {
    key: Vec<u8>,
    arc: (Id, Id),
    asked: Vec<ReqId>,
    newest: Option<Item>,
}

impl ReadAround {
    fn consider(&mut self, item: Item) {
        if item.key == self.key && self.newest.as_ref().is_none_or(|newest| item.version > newest.version) {
            self.newest = Some(item);
        }
    }

    fn answer(&mut self) -> Step {
        let item = self.newest.take().filter(|item| item.value.is_some());
        Step::Done(Outcome::Response(Response::Value { item, arc: self.arc }))
    }
}

impl Machine for ReadAround {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                // Our own entry may be a tombstone, which must beat older live copies elsewhere;
                // one we cannot read is an error, never taken for absent.
                match entry(&cx.core.store, &self.key) {
                    Ok(Some(local)) => self.consider(local),
                    Ok(None) => {}
                    Err(error) => return Step::Done(Outcome::Response(not_stored(&error))),
                }
                let Some(ring) = &cx.core.ring else { return self.answer() };
                let me = cx.core.me.id;
                let targets: Vec<_> = ring.successors().iter().filter(|n| n.id != me && !cx.core.is_suspect(n.id)).cloned().collect();
                for node in targets {
                    let id = cx.request(&node, Request::Fetch { keys: vec![ByteBuf::from(self.key.clone())] });
                    self.asked.push(id);
                }
            }
            Input::Reply(id, reply) if self.asked.contains(&id) => {
                self.asked.retain(|asked| *asked != id);
                if let Ok(Response::Items { items, .. }) = reply {
                    items.into_iter().filter(|item| super::guard::storable(cx, item)).for_each(|item| self.consider(item));
                }
            }
            _ => {}
        }
        if self.asked.is_empty() {
            self.answer()
        } else {
            Step::Pending
        }
    }
}

/// A `Get` at the node we think owns the key: the value and our arc, or a redirect.
pub fn owner_get(core: &Core, key: Vec<u8>) -> Response {
    let Some(ring) = &core.ring else { return not_member() };
    if core.rejoining() {
        return rejoining();
    }
    let position = Id::of_key(&key);
    match ring.next_hop(position) {
        Hop::Local if core.unsynced(position) => syncing(),
        Hop::Local => {
            let arc = ring.primary_arc().unwrap_or((core.me.id, core.me.id));
            match core.store.read(&key) {
                Ok(found) => {
                    let item = found.map(|(value, version)| Item { key, value: Some(ByteBuf::from(value.to_vec())), version });
                    Response::Value { item, arc }
                }
                Err(error) => not_stored(&error),
            }
        }
        Hop::Owner(next) | Hop::Closer(next) => Response::Redirect(next),
    }
}

/// Our entry of a key, tombstone included; `Err` when its value cannot be read (a damaged
/// file, a store closing). Never a tombstone in its place: that would carry the live entry's
/// version, so it would win against every good copy and anti-entropy would never repair it.
pub fn entry(store: &Store, key: &[u8]) -> Result<Option<Item>, Error> {
    let Some(version) = store.version_of(key) else { return Ok(None) };
    let value = store.read(key)?.map(|(v, _)| ByteBuf::from(v.to_vec()));
    Ok(Some(Item { key: key.to_vec(), value, version }))
}
