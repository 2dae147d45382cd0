//! The user's dict operations as machines at the node where they start.
//!
//! Routing: an operation goes to its best first guess ([`Core::first_destination`]: a cached owner
//! arc, else the member whose id follows the key's position in our view, else our finger
//! table); a node that is not the owner answers `Redirect` with its own next hop (greedy Chord
//! routing), so operations converge in O(log n) redirects even with an empty cache. A target
//! that does not answer is forgotten and the operation retries, pausing, until its deadline.
//!
//! [`Core::first_destination`]: super::core::Core::first_destination

use super::core::{backoff, unexpected, Destination};
use super::cx::{Cx, Input, LookupInfo, Machine, Millis, OpOutput, Outcome, ReqId, ScanPage, Step, TaskId};
use super::lookup::Lookup;
use super::read::{get_here, LocalGet};
use super::serve::page;
use super::write::owner_write;
use crate::config::OPERATION_DEADLINE;
use crate::error::{Error, Result};
use crate::id::Id;
use super::relay::RELAY_TTL;
use crate::protocol::{Request, Response, Routed as Wire, WriteMode};
use crate::routing::NodeRef;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Redirects after which an operation backs off (the ring is changing under it).
const REDIRECTS_BEFORE_BACKOFF: u32 = 32;

/// Which dict operation a [`Routed`] machine carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DictOp {
    Get,
    Set,
    Delete,
}

enum Waiting {
    Nothing,
    Remote(ReqId),
    Local(TaskId),
    /// Paused until the time; then retarget from scratch (`true`) or retry the same target.
    Paused(Millis, bool),
    /// A lookup routing around a node we suspect.
    Lookup(TaskId),
}

/// A get, set or delete routed to the key's owner.
pub struct Routed {
    op: DictOp,
    position: Id,
    request: Request,
    target: Destination,
    /// The next request goes to the target itself, not through a relay (a relay ended at a
    /// node that could not forward to it).
    direct: bool,
    /// The next request goes through a relay even if a slot is free (a dial was refused:
    /// one end's table was full of connections it needs).
    relay: bool,
    redirects: u32,
    /// Network legs this operation has travelled so far: each request sent (to the target or a
    /// relay), each leg a relay forwarded it, and one more for each handshake a request had to
    /// wait for (no open connection to its first hop). 0 for an operation answered here.
    hops: u32,
    /// Redirects towards a node we suspect, each answered by a lookup around it.
    suspect_detours: u32,
    attempt: u32,
    deadline: Millis,
    waiting: Waiting,
    /// When the last `GetLeased` left: a lease it brings is timed from then.
    lease_asked_at: Option<Millis>,
    /// The owner whose replica this get went to instead (`delegate`).
    replica_of: Option<Id>,
}

impl Routed {
    pub fn new(op: DictOp, key: Vec<u8>, value: Option<Vec<u8>>) -> Routed {
        let position = Id::of_key(&key);
        let key = ByteBuf::from(key);
        let request = match op {
            DictOp::Get => Request::Get { key },
            // The nonce is drawn when the operation starts (`dedupe`).
            DictOp::Set => Request::Write { key, value: value.map(ByteBuf::from), mode: WriteMode::Set, nonce: 0 },
            DictOp::Delete => Request::Write { key, value: None, mode: WriteMode::Delete, nonce: 0 },
        };
        Routed {
            op,
            position,
            request,
            target: Destination::Local,
            direct: false,
            relay: false,
            redirects: 0,
            hops: 0,
            suspect_detours: 0,
            attempt: 0,
            deadline: 0,
            waiting: Waiting::Nothing,
            lease_asked_at: None,
            replica_of: None,
        }
    }

    fn retarget(&mut self, cx: &mut Cx<'_>) -> Step {
        match cx.core.first_destination(self.position) {
            Ok(target) => {
                self.target = target;
                self.go(cx)
            }
            Err(error) => Step::Done(Outcome::Op(Err(error))),
        }
    }

    fn go(&mut self, cx: &mut Cx<'_>) -> Step {
        match (&self.target, &self.request) {
            (Destination::Local, Request::Get { key }) => match get_here(cx.core, key.to_vec()) {
                LocalGet::Now(answer) => self.on_answer(cx, Ok(answer)),
                LocalGet::Around(read) => {
                    self.waiting = Waiting::Local(cx.spawn(read));
                    Step::Pending
                }
            },
            (Destination::Local, Request::Write { key, value, mode, nonce }) => match owner_write(cx, key.to_vec(), value.clone(), *mode, *nonce) {
                Ok(write) => {
                    self.waiting = Waiting::Local(cx.spawn(write));
                    Step::Pending
                }
                Err(answer) => self.on_answer(cx, Ok(answer)),
            },
            (Destination::Remote(owner), request) => {
                // A plain get (no lease wanted) on its first try may go to a replica instead.
                let lease = match request {
                    Request::Get { key } => cx.core.cache.wants_lease(key),
                    _ => false,
                };
                let replica = match request {
                    Request::Get { .. } if !lease && self.redirects == 0 && self.attempt == 0 && !self.relay => cx.core.read_replica(self.position, owner),
                    _ => None,
                };
                self.replica_of = replica.as_ref().map(|_| owner.id);
                if let Some(replica) = replica {
                    self.target = Destination::Remote(replica);
                }
                let Destination::Remote(node) = &self.target else { unreachable!("set above") };
                let via = if self.direct { None } else { cx.core.relay_via(self.position, node, self.relay) };
                let first_leg = via.as_ref().unwrap_or(node).id;
                self.hops += if cx.core.links.is_open(first_leg) { 1 } else { 2 };
                self.lease_asked_at = None;
                let id = match (via, Wire::of(request), request) {
                    (Some(via), Some(body), _) => cx.request(&via, Request::Relay { ttl: RELAY_TTL, body }),
                    // Straight to the owner with a cache to fill: ask for a lease with the value
                    // (for a key read lately already: see `ReadCache::wants_lease`).
                    (None, _, Request::Get { key }) if lease => {
                        self.lease_asked_at = Some(cx.now.mono);
                        cx.request(node, Request::GetLeased { key: key.clone() })
                    }
                    _ => cx.request(node, request.clone()),
                };
                self.direct = false;
                self.waiting = Waiting::Remote(id);
                Step::Pending
            }
            (Destination::Local, _) => unreachable!("only gets and writes are routed"),
        }
    }

    fn pause(&mut self, cx: &mut Cx<'_>, retarget: bool) -> Step {
        self.attempt += 1;
        match backoff(cx.now.mono, self.deadline, self.attempt) {
            Ok(at) => {
                cx.wake_at(at);
                self.waiting = Waiting::Paused(at, retarget);
                Step::Pending
            }
            Err(error) => Step::Done(Outcome::Op(Err(error))),
        }
    }

    /// Sent towards a node we suspect (the redirecting node has not noticed yet): find the
    /// owner by a lookup that routes around it, which also warns the nodes it asks.
    fn around_suspect(&mut self, cx: &mut Cx<'_>, suspect: Id, remote: Option<Id>) -> Step {
        // Sent there again after such a lookup: the members that point at the suspect have not
        // noticed yet (their probes are under way), so wait a little first.
        self.suspect_detours += 1;
        if self.suspect_detours > 1 {
            return self.pause(cx, true);
        }
        let avoid: Vec<Id> = [Some(suspect), remote].into_iter().flatten().filter(|id| cx.core.is_suspect(*id)).collect();
        self.waiting = Waiting::Lookup(cx.spawn(Lookup::avoiding(self.position, avoid)));
        Step::Pending
    }

    fn on_answer(&mut self, cx: &mut Cx<'_>, answer: Result<Response>) -> Step {
        self.waiting = Waiting::Nothing;
        let mut remote = match &self.target {
            Destination::Remote(node) => Some(node.id),
            Destination::Local => None,
        };
        let answer = match answer {
            Ok(Response::Relayed { hops, answer }) => {
                // Answered further along: a refusal is not the first hop's doing, and a
                // redirect names a node the relay could not reach, which we then ask directly.
                self.redirects += u32::from(hops);
                self.hops += u32::from(hops);
                remote = None;
                let response = Response::from(answer);
                self.direct = matches!(response, Response::Redirect(_));
                Ok(response)
            }
            // A value with a lease: kept for repeated gets until the lease ends.
            Ok(Response::Leased { item, arc }) => {
                if let (Some(sent), Request::Get { key }) = (self.lease_asked_at, &self.request) {
                    let value = item.as_ref().and_then(|i| i.value.as_ref()).map(|v| v.to_vec());
                    cx.core.cache.insert(key.to_vec(), value, sent, cx.now.mono);
                }
                Ok(Response::Value { item, arc })
            }
            other => other,
        };
        if let (Some(owner), Some(replica)) = (self.replica_of.take(), remote) {
            match &answer {
                Ok(Response::Value { arc, .. }) if arc.1 == owner => cx.core.read_copies.answered(owner, replica, cx.now.mono),
                _ => cx.core.read_copies.redirected(owner, replica),
            }
        }
        match answer {
            Ok(Response::Redirect(next)) => {
                self.redirects += 1;
                if let Some(id) = remote {
                    cx.core.arcs.remove(&id);
                }
                if cx.core.is_suspect(next.id) {
                    return self.around_suspect(cx, next.id, remote);
                }
                self.target = if next.id == cx.core.me.id { Destination::Local } else { Destination::Remote(next) };
                if self.redirects.is_multiple_of(REDIRECTS_BEFORE_BACKOFF) {
                    return self.pause(cx, false);
                }
                self.go(cx)
            }
            Ok(Response::Error { code, message }) => {
                if code == "not-member" {
                    if let Some(id) = remote {
                        cx.core.forget(id);
                    }
                }
                if !["not-member", "unavailable", "rejoining"].contains(&code.as_str()) {
                    return Step::Done(Outcome::Op(Err(unexpected(Response::Error { code, message }))));
                }
                self.pause(cx, true)
            }
            Ok(response) => {
                cx.core.remember_owner(&self.target, &response, self.redirects, self.hops);
                Step::Done(Outcome::Op(self.output(response)))
            }
            Err(error) if error.is_unreachable() => {
                if let Some(id) = remote {
                    cx.core.forget(id);
                }
                self.pause(cx, true)
            }
            // A table full of connections its node needs (ours or the owner's): alive, just
            // not dialable now; go through the connections that exist.
            Err(Error::Rejected { code, .. }) if code == "busy" => {
                self.relay = true;
                self.pause(cx, true)
            }
            Err(error) => Step::Done(Outcome::Op(Err(error))),
        }
    }

    fn output(&self, response: Response) -> Result<OpOutput> {
        match (self.op, response) {
            (DictOp::Get, Response::Value { item, .. }) => Ok(OpOutput::Value(item.and_then(|i| i.value).map(ByteBuf::into_vec))),
            (DictOp::Set | DictOp::Delete, Response::Written { previous, version, .. }) => {
                Ok(OpOutput::Written { previous: previous.map(ByteBuf::into_vec), version })
            }
            (_, other) => Err(unexpected(other)),
        }
    }
}

impl Machine for Routed {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                self.deadline = cx.now.mono + OPERATION_DEADLINE.as_millis() as u64;
                match &mut self.request {
                    Request::Get { key } => {
                        if let Some(value) = cx.core.cache.get(key, cx.now.mono) {
                            cx.core.counters.ops += 1;
                            return Step::Done(Outcome::Op(Ok(OpOutput::Value(value))));
                        }
                        // A replica of the key that reads for its owner answers here.
                        let key = key.to_vec();
                        if let Some(answer) = super::replica_read::delegated_get(cx, &key) {
                            cx.core.counters.ops += 1;
                            return Step::Done(Outcome::Op(self.output(answer)));
                        }
                    }
                    // Our own write: our copy goes now (the owner also invalidates it, if it
                    // granted us the lease, before the write resolves). Its nonce makes the
                    // owner run it once however often it is sent.
                    Request::Write { key, nonce, .. } => {
                        cx.core.cache.invalidate(key, cx.now.mono);
                        *nonce = rand::Rng::gen::<u64>(&mut cx.core.rng).max(1);
                    }
                    _ => {}
                }
                self.retarget(cx)
            }
            Input::Reply(id, reply) if matches!(self.waiting, Waiting::Remote(asked) if asked == id) => self.on_answer(cx, reply),
            Input::Child(child, Outcome::Response(response)) if matches!(self.waiting, Waiting::Local(task) if task == child) => {
                self.on_answer(cx, Ok(response))
            }
            Input::Child(child, Outcome::Owner(found)) if matches!(self.waiting, Waiting::Lookup(task) if task == child) => {
                self.waiting = Waiting::Nothing;
                match found {
                    Ok((owner, _)) if owner.id == cx.core.me.id => self.target = Destination::Local,
                    Ok((owner, _)) => self.target = Destination::Remote(owner),
                    Err(_) => return self.pause(cx, true),
                }
                self.go(cx)
            }
            Input::Timer => match self.waiting {
                Waiting::Paused(at, retarget) if cx.now.mono >= at => {
                    self.waiting = Waiting::Nothing;
                    if retarget {
                        self.retarget(cx)
                    } else {
                        self.go(cx)
                    }
                }
                _ => Step::Pending,
            },
            _ => Step::Pending,
        }
    }
}

/// `lookup()`: the owner of a key by a greedy finger-table lookup (no cache), and its hops.
pub struct UserLookup {
    position: Id,
}

impl UserLookup {
    pub fn new(key: &[u8]) -> UserLookup {
        UserLookup { position: Id::of_key(key) }
    }
}

impl Machine for UserLookup {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                cx.spawn(Lookup::new(self.position));
                Step::Pending
            }
            Input::Child(_, Outcome::Owner(result)) => Step::Done(Outcome::Op(result.map(|(owner, hops)| {
                cx.core.counters.lookups += 1;
                cx.core.counters.lookup_hops += hops as u64;
                OpOutput::Lookup(LookupInfo { owner, hops })
            }))),
            _ => Step::Pending,
        }
    }
}

/// Position of a ring walk, handed to the caller as opaque bytes between pages. It names the
/// node the next page is asked of, so the bytes carry a MAC keyed with this node's secret
/// ([`ScanCursor::seal`]): a cursor altered or made up by whoever held it is refused with
/// `ERR_INVALID_ARGUMENT` instead of making this node dial an address of their choosing. A
/// cursor is good only at the node that handed it out, until it restarts.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ScanCursor {
    start: Id,
    node: NodeRef,
    after: Option<(Id, ByteBuf)>,
}

/// A cursor as handed out: its fields, then the MAC of them (one flat MessagePack array).
#[derive(Serialize, Deserialize)]
struct SealedCursor {
    start: Id,
    node: NodeRef,
    after: Option<(Id, ByteBuf)>,
    mac: ByteBuf,
}

impl ScanCursor {
    /// Keyed BLAKE3 of the cursor's encoding.
    fn mac(&self, secret: &[u8; 32]) -> blake3::Hash {
        blake3::keyed_hash(secret, &rmp_serde::to_vec(self).expect("cursor encodes"))
    }

    fn seal(self, secret: &[u8; 32]) -> Vec<u8> {
        let mac = ByteBuf::from(self.mac(secret).as_bytes().to_vec());
        rmp_serde::to_vec(&SealedCursor { start: self.start, node: self.node, after: self.after, mac }).expect("cursor encodes")
    }

    /// The cursor in `bytes` if this node made it (its MAC checks out, compared in constant time).
    fn open(bytes: &[u8], secret: &[u8; 32]) -> Result<ScanCursor> {
        let sealed: SealedCursor = rmp_serde::from_slice(bytes).map_err(|_| Error::InvalidArgument("not a scan cursor".into()))?;
        let cursor = ScanCursor { start: sealed.start, node: sealed.node, after: sealed.after };
        let mac: [u8; 32] = sealed.mac.as_slice().try_into().map_err(|_| Error::InvalidArgument("not a scan cursor".into()))?;
        if cursor.mac(secret) != blake3::Hash::from(mac) {
            return Err(Error::InvalidArgument("not a scan cursor this node handed out (altered, forged, or from before a restart)".into()));
        }
        Ok(cursor)
    }
}

/// One page of a walk over the whole ring's live keys, node by node along successors. A node
/// that left or died is skipped to whoever owns its id now.
pub struct Scan {
    cursor: Option<Vec<u8>>,
    with_values: bool,
    limit: u32,
    at: Option<ScanCursor>,
    deadline: Millis,
    attempt: u32,
    waiting: Option<ReqId>,
    paused_until: Option<Millis>,
}

impl Scan {
    pub fn new(cursor: Option<Vec<u8>>, with_values: bool, limit: u32) -> Scan {
        Scan { cursor, with_values, limit: limit.max(1), at: None, deadline: 0, attempt: 0, waiting: None, paused_until: None }
    }

    fn ask(&mut self, cx: &mut Cx<'_>) -> Step {
        let at = self.at.as_ref().expect("started");
        if at.node.id == cx.core.me.id {
            let answer = page(cx.core, at.after.clone(), self.limit, self.with_values);
            return self.on_answer(cx, Ok(answer));
        }
        let request = Request::Page { after: at.after.clone(), limit: self.limit, with_values: self.with_values };
        self.waiting = Some(cx.request(&at.node, request));
        Step::Pending
    }

    fn on_answer(&mut self, cx: &mut Cx<'_>, answer: Result<Response>) -> Step {
        let at = self.at.clone().expect("started");
        match answer {
            Ok(Response::Page { items, more, successor }) => {
                let next = if more {
                    let last = items.last().map(|i| (Id::of_key(&i.key), ByteBuf::from(i.key.clone())));
                    Some(ScanCursor { after: last, ..at })
                } else if successor.id == at.start || successor.id == at.node.id {
                    None
                } else {
                    Some(ScanCursor { start: at.start, node: successor, after: None })
                };
                Step::Done(Outcome::Op(Ok(OpOutput::Page(ScanPage {
                    items: items.into_iter().map(|i| (i.key, i.value.map(ByteBuf::into_vec))).collect(),
                    cursor: next.map(|c| c.seal(&cx.core.secret)),
                }))))
            }
            Ok(Response::Error { .. }) | Err(_) => {
                // That node left or died (its arc now belongs to the next node clockwise), or it
                // is still syncing an arc it took over (ask it again shortly).
                let syncing = matches!(&answer, Ok(Response::Error { code, .. }) if code == "unavailable" || code == "rejoining");
                if !syncing {
                    cx.core.forget(at.node.id);
                }
                self.attempt += 1;
                match backoff(cx.now.mono, self.deadline, self.attempt) {
                    Ok(time) => {
                        cx.wake_at(time);
                        self.paused_until = Some(time);
                        Step::Pending
                    }
                    Err(error) => Step::Done(Outcome::Op(Err(error))),
                }
            }
            Ok(other) => Step::Done(Outcome::Op(Err(unexpected(other)))),
        }
    }
}

impl Machine for Scan {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                self.deadline = cx.now.mono + OPERATION_DEADLINE.as_millis() as u64;
                self.at = match self.cursor.take() {
                    Some(bytes) => match ScanCursor::open(&bytes, &cx.core.secret) {
                        Ok(cursor) => Some(cursor),
                        Err(error) => return Step::Done(Outcome::Op(Err(error))),
                    },
                    None => {
                        let first = if cx.core.is_member() { Some(cx.core.me.clone()) } else { cx.core.view.values().next().cloned() };
                        match first {
                            Some(node) => Some(ScanCursor { start: node.id, node, after: None }),
                            None => return Step::Done(Outcome::Op(Ok(OpOutput::Page(ScanPage::default())))),
                        }
                    }
                };
                self.ask(cx)
            }
            Input::Reply(id, reply) if self.waiting == Some(id) => {
                self.waiting = None;
                self.on_answer(cx, reply)
            }
            Input::Timer if self.paused_until.is_some_and(|at| cx.now.mono >= at) => {
                self.paused_until = None;
                let node = self.at.as_ref().expect("started").node.id;
                cx.spawn(Lookup::new(node));
                Step::Pending
            }
            Input::Child(_, Outcome::Owner(Ok((owner, _)))) => {
                self.at.as_mut().expect("started").node = owner;
                self.ask(cx)
            }
            Input::Child(_, Outcome::Owner(Err(error))) => Step::Done(Outcome::Op(Err(error))),
            _ => Step::Pending,
        }
    }
}

/// One request to one node, its answer returned as is (diagnostics).
pub struct Ask {
    to: NodeRef,
    request: Option<Request>,
    asked: Option<ReqId>,
}

impl Ask {
    pub fn new(to: NodeRef, request: Request) -> Ask {
        Ask { to, request: Some(request), asked: None }
    }
}

impl Machine for Ask {
    fn step(&mut self, cx: &mut Cx<'_>, input: Input) -> Step {
        match input {
            Input::Start => {
                let request = self.request.take().expect("started once");
                self.asked = Some(cx.request(&self.to, request));
                Step::Pending
            }
            Input::Reply(id, reply) if self.asked == Some(id) => Step::Done(Outcome::Op(reply.map(OpOutput::Answer))),
            _ => Step::Pending,
        }
    }
}

