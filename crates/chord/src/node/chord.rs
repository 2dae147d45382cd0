//! The distributed dict on the Chord ring: request handlers, routed operations, replication,
//! anti-entropy, join and leave, and the periodic maintenance that keeps the ring correct.
//!
//! Routing: an operation goes to its best first guess (location cache of owners' arcs, else the
//! member whose id follows the key's position in our view of the ring, else the finger table);
//! a node that is not the owner answers `Redirect` with its own next hop (greedy Chord
//! routing), so operations converge in O(log n) redirects even with an empty cache.
//!
//! Data: the owner versions each write with its hybrid logical clock, stores it, and answers
//! only after its first `replicas - 1` successors (or stand-ins further down the successor list
//! when some are dead) hold it. Anti-entropy compares digests of the owner's arc with each
//! replica and repairs both ways; joins pull, leaves push, crashes are repaired by the new
//! owner's next sync.

use super::events::{Event, PeerInfo};
use super::{conn, now_millis, Inner, Node, NodeError, NodeResult};
use crate::id::Id;
use crate::metrics::Op;
use crate::protocol::{self, Message, Request, Response, WriteMode, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::routing::{Hop, NodeRef, Routing};
use crate::store::{Applied, Item, Store};
use crate::version::Version;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Default number of copies of each key (the owner and its next two successors).
pub const DEFAULT_REPLICAS: usize = 3;
/// Default period of stabilize / check-predecessor / fix-fingers.
pub const DEFAULT_STABILIZE_INTERVAL: Duration = Duration::from_millis(250);
/// Fingers refreshed per maintenance round (those needing a lookup).
const FINGERS_PER_ROUND: usize = 8;
/// Anti-entropy with the replicas runs every this many rounds (and whenever the arc changes).
const SYNC_EVERY_ROUNDS: u64 = 4;
/// Tombstones are kept this long, longer than any replica can stay out of sync in practice.
pub const TOMBSTONE_HORIZON: Duration = Duration::from_secs(600);
/// Give up on an operation whose owner stays unreachable this long.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(15);
/// Redirects after which an operation backs off (the ring is changing under it).
const REDIRECTS_BEFORE_BACKOFF: u32 = 32;
/// Most `(key, version)` pairs a replica lists in one anti-entropy answer.
const SYNC_VERSIONS_LIMIT: usize = 4096;
/// Keys fetched per request while repairing.
const FETCH_BATCH: usize = 256;
/// Bytes of values per replication or hand-off frame (well under the frame limit).
const ITEM_BATCH_BYTES: usize = 1 << 20;
/// Stray collection runs every this many maintenance rounds.
const STRAY_EVERY_ROUNDS: u64 = 8;
/// A replica lease lasts this many anti-entropy periods without a sync from its owner.
const LEASE_SYNC_PERIODS: u32 = 10;
/// Owners remembered in the location cache.
const ARC_CACHE_ENTRIES: usize = 4096;
/// Keys per page of a ring walk.
pub const DEFAULT_PAGE_SIZE: u32 = 256;

#[derive(Clone, Debug)]
pub struct ChordConfig {
    pub replicas: usize,
    /// Take part in the ring (store and route). `false` = a client that only reads and writes.
    pub join: bool,
    /// Report `Added` / `Deleted` events for the whole ring.
    pub events: bool,
    pub stabilize_interval: Duration,
}

impl Default for ChordConfig {
    fn default() -> Self {
        ChordConfig { replicas: DEFAULT_REPLICAS, join: true, events: true, stabilize_interval: DEFAULT_STABILIZE_INTERVAL }
    }
}

impl ChordConfig {
    /// At least r + 1 successors, so r − 1 replicas remain placeable after a failure.
    pub(crate) fn successor_list_len(&self) -> usize {
        (self.replicas + 1).max(4)
    }
}

/// Where a key lives and how far the lookup went.
#[derive(Clone, Debug)]
pub struct LookupInfo {
    pub owner: NodeRef,
    /// Remote nodes asked during a greedy finger-table lookup (no cache).
    pub hops: u32,
}

#[derive(Clone, Debug, Default)]
pub struct Stats {
    pub member: bool,
    pub predecessor: Option<NodeRef>,
    pub successors: Vec<NodeRef>,
    pub fingers: usize,
    pub ring_size_estimate: f64,
    /// Live keys held here (as owner or replica).
    pub keys: usize,
    /// Live keys this node owns.
    pub primary_keys: usize,
    pub connections: usize,
    pub operations: u64,
    pub mean_redirects: f64,
    pub lookups: u64,
    pub mean_lookup_hops: f64,
}

/// Position of a ring walk, handed to the caller as opaque bytes between pages.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct ScanCursor {
    start: Id,
    node: NodeRef,
    after: Option<(Id, ByteBuf)>,
}

/// One page of a ring walk.
#[derive(Clone, Debug, Default)]
pub struct ScanPage {
    pub items: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Pass back to get the next page; `None` once the walk is complete.
    pub cursor: Option<Vec<u8>>,
}

enum Target {
    Local,
    Remote(NodeRef),
}

fn chord_config(inner: &Inner) -> NodeResult<&ChordConfig> {
    inner.config.chord.as_ref().ok_or_else(|| NodeError::InvalidArgument("this node is a MeshSocket, not a ChordSocket".into()))
}

/// What every dict operation checks first: a ChordSocket, still open, a key within limits.
/// Returns the key's ring position.
fn admit(inner: &Inner, key: &[u8]) -> NodeResult<Id> {
    chord_config(inner)?;
    inner.ensure_open()?;
    if key.len() > MAX_KEY_BYTES {
        return Err(NodeError::KeyTooLarge { size: key.len(), limit: MAX_KEY_BYTES });
    }
    Ok(Id::of_key(key))
}

/// Record a finished dict operation's latency and outcome in the node's metrics. (Called at the
/// end of each operation rather than wrapping its future: a wrapper doubled the future's size
/// and the bytes copied per operation.)
fn record_op<T>(inner: &Inner, op: Op, started: Instant, result: NodeResult<T>) -> NodeResult<T> {
    let micros = started.elapsed().as_micros() as u64;
    inner.metrics.record_op(op, micros, result.as_ref().err().map(NodeError::code));
    result
}

impl Node {
    /// The value of `key`, or `None` when absent.
    pub async fn get(&self, key: Vec<u8>) -> NodeResult<Option<Vec<u8>>> {
        let inner = self.inner();
        let started = Instant::now();
        let position = match admit(inner, &key) {
            Ok(position) => position,
            Err(error) => return record_op(inner, Op::Get, started, Err(error)),
        };
        let result = match route(inner, position, Request::Get { key: ByteBuf::from(key) }).await {
            Ok(Response::Value { item, .. }) => Ok(item.and_then(|i| i.value).map(ByteBuf::into_vec)),
            Ok(other) => Err(unexpected(other)),
            Err(error) => Err(error),
        };
        record_op(inner, Op::Get, started, result)
    }

    /// Store `value` under `key`; resolves once every replica holds it.
    pub async fn set(&self, key: Vec<u8>, value: Vec<u8>) -> NodeResult<()> {
        let inner = self.inner();
        let started = Instant::now();
        let position = match admit(inner, &key) {
            Ok(_) if value.len() > MAX_VALUE_BYTES => {
                return record_op(inner, Op::Set, started, Err(NodeError::ValueTooLarge { size: value.len(), limit: MAX_VALUE_BYTES }))
            }
            Ok(position) => position,
            Err(error) => return record_op(inner, Op::Set, started, Err(error)),
        };
        let request = Request::Write { key: ByteBuf::from(key), value: Some(ByteBuf::from(value)), mode: WriteMode::Set };
        let result = match route(inner, position, request).await {
            Ok(Response::Written { .. }) => Ok(()),
            Ok(other) => Err(unexpected(other)),
            Err(error) => Err(error),
        };
        record_op(inner, Op::Set, started, result)
    }

    /// Delete `key`; returns the value it had, `None` if it was absent (nothing is written then).
    pub async fn delete(&self, key: Vec<u8>) -> NodeResult<Option<Vec<u8>>> {
        let inner = self.inner();
        let started = Instant::now();
        let position = match admit(inner, &key) {
            Ok(position) => position,
            Err(error) => return record_op(inner, Op::Delete, started, Err(error)),
        };
        let request = Request::Write { key: ByteBuf::from(key), value: None, mode: WriteMode::Delete };
        let result = match route(inner, position, request).await {
            Ok(Response::Written { previous, .. }) => Ok(previous.map(ByteBuf::into_vec)),
            Ok(other) => Err(unexpected(other)),
            Err(error) => Err(error),
        };
        record_op(inner, Op::Delete, started, result)
    }

    /// Who owns `key`, found by a greedy finger-table lookup (no cache), and in how many hops.
    pub async fn lookup(&self, key: Vec<u8>) -> NodeResult<LookupInfo> {
        let inner = self.inner();
        chord_config(inner)?;
        inner.ensure_open()?;
        let (owner, hops) = find_owner(inner, Id::of_key(&key)).await?;
        let mut state = inner.lock();
        state.stats.lookups += 1;
        state.stats.lookup_hops += hops as u64;
        Ok(LookupInfo { owner, hops })
    }

    /// The live value this node itself holds for `key` (as owner or replica), without routing:
    /// for diagnostics and tests of replica convergence.
    pub fn local_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner().lock().store.get(key).map(|(value, _)| value.to_vec())
    }

    pub fn stats(&self) -> Stats {
        let inner = self.inner();
        let state = inner.lock();
        let mut stats = Stats {
            member: state.ring.is_some(),
            keys: state.store.live_len(),
            connections: state.conns.len(),
            operations: state.stats.ops,
            mean_redirects: state.stats.op_redirects as f64 / state.stats.ops.max(1) as f64,
            lookups: state.stats.lookups,
            mean_lookup_hops: state.stats.lookup_hops as f64 / state.stats.lookups.max(1) as f64,
            ..Stats::default()
        };
        if let Some(ring) = &state.ring {
            stats.predecessor = ring.predecessor().cloned();
            stats.successors = ring.successors().to_vec();
            stats.fingers = ring.distinct_fingers().len();
            stats.ring_size_estimate = ring.estimated_ring_size();
            stats.primary_keys = ring.primary_arc().map_or(0, |(from, to)| state.store.count_live_in(from, to));
        }
        stats
    }

    /// One page of a walk over the whole ring's live keys, node by node along successors.
    pub async fn scan(&self, cursor: Option<Vec<u8>>, with_values: bool, limit: u32) -> NodeResult<ScanPage> {
        let inner = self.inner();
        chord_config(inner)?;
        inner.ensure_open()?;
        let mut cursor = match cursor {
            Some(bytes) => rmp_serde::from_slice::<ScanCursor>(&bytes).map_err(|_| NodeError::InvalidArgument("not a scan cursor".into()))?,
            None => match first_member(inner) {
                Some(node) => ScanCursor { start: node.id, node, after: None },
                None => return Ok(ScanPage::default()),
            },
        };
        let deadline = Instant::now() + OPERATION_DEADLINE;
        let request = Request::Page { after: cursor.after.clone(), limit: limit.max(1), with_values };
        let (items, more, successor) = loop {
            let answer = if cursor.node.id == inner.me.id { Ok(serve_now(inner, None, request.clone()).unwrap_or_else(|_| not_member())) } else { inner.request(&cursor.node, request.clone()).await };
            match answer {
                Ok(Response::Page { items, more, successor }) => break (items, more, successor),
                Ok(Response::Error { .. }) | Err(_) => {
                    // That node left or died: its arc now belongs to the next node clockwise.
                    forget(inner, cursor.node.id);
                    backoff(deadline, 1).await?;
                    cursor.node = find_owner(inner, cursor.node.id).await?.0;
                }
                Ok(other) => return Err(unexpected(other)),
            }
        };
        let next = if more {
            let last = items.last().map(|i| (Id::of_key(&i.key), ByteBuf::from(i.key.clone())));
            Some(ScanCursor { after: last, ..cursor.clone() })
        } else if successor.id == cursor.start || successor.id == cursor.node.id {
            None
        } else {
            Some(ScanCursor { start: cursor.start, node: successor, after: None })
        };
        Ok(ScanPage {
            items: items.into_iter().map(|i| (i.key, i.value.map(ByteBuf::into_vec))).collect(),
            cursor: next.map(|c| rmp_serde::to_vec(&c).expect("cursor encodes")),
        })
    }

    /// Become a ring member (through a connected member if there is one).
    pub async fn join(&self) -> NodeResult<()> {
        let inner = self.inner();
        let config = chord_config(inner)?;
        inner.ensure_open()?;
        let bootstrap = {
            let mut state = inner.lock();
            if state.ring.is_none() {
                state.ring = Some(Routing::new(inner.me.clone(), config.successor_list_len()));
            }
            inner.member.store(true, Ordering::SeqCst);
            if !state.ring.as_ref().is_some_and(|r| r.is_alone()) {
                return Ok(());
            }
            state.view.values().find(|n| n.id != inner.me.id).cloned()
        };
        match bootstrap {
            Some(node) => join_via(inner, &node).await,
            None => Ok(()),
        }
    }

    /// Leave the ring, handing data over, and stay connected as a client.
    pub async fn unjoin(&self) -> NodeResult<()> {
        chord_config(self.inner())?;
        self.inner().ensure_open()?;
        leave(self.inner()).await
    }
}

fn unexpected(response: Response) -> NodeError {
    match response {
        Response::Error { code, message } => NodeError::Unavailable(format!("{code}: {message}")),
        other => NodeError::Protocol(format!("unexpected answer {other:?}")),
    }
}

fn not_member() -> Response {
    Response::Error { code: "not-member".into(), message: "this node is not a ring member".into() }
}

fn first_member(inner: &Inner) -> Option<NodeRef> {
    let state = inner.lock();
    if state.ring.is_some() {
        return Some(inner.me.clone());
    }
    state.view.values().next().cloned()
}

/// Send a routed request (Get / Write) to the owner of `position`, following redirects.
async fn route(inner: &Arc<Inner>, position: Id, request: Request) -> NodeResult<Response> {
    let deadline = Instant::now() + OPERATION_DEADLINE;
    let mut redirects = 0u32;
    let mut attempt = 0u32;
    let mut target = first_target(inner, position)?;
    loop {
        let answer = match &target {
            Target::Local => Ok(serve(inner, request.clone()).await),
            Target::Remote(node) => inner.request(node, request.clone()).await,
        };
        match answer {
            Ok(Response::Redirect(next)) => {
                redirects += 1;
                if let Target::Remote(node) = &target {
                    inner.lock().arcs.remove(&node.id);
                }
                if redirects.is_multiple_of(REDIRECTS_BEFORE_BACKOFF) {
                    attempt += 1;
                    backoff(deadline, attempt).await?;
                }
                target = if next.id == inner.me.id { Target::Local } else { Target::Remote(next) };
            }
            Ok(Response::Error { code, message }) => {
                if let Target::Remote(node) = &target {
                    if code == "not-member" {
                        forget(inner, node.id);
                    }
                }
                if code != "not-member" && code != "unavailable" {
                    return Err(NodeError::Unavailable(format!("{code}: {message}")));
                }
                attempt += 1;
                backoff(deadline, attempt).await?;
                target = first_target(inner, position)?;
            }
            Ok(response) => {
                remember_owner(inner, &target, &response, redirects);
                return Ok(response);
            }
            Err(error) if error.is_unreachable() => {
                if let Target::Remote(node) = &target {
                    forget(inner, node.id);
                }
                attempt += 1;
                backoff(deadline, attempt).await?;
                target = first_target(inner, position)?;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn backoff(deadline: Instant, attempt: u32) -> NodeResult<()> {
    if Instant::now() >= deadline {
        return Err(NodeError::Unavailable(format!("no owner answered within {OPERATION_DEADLINE:?}; the ring may be partitioned or still recovering")));
    }
    let pause = Duration::from_millis((10 * attempt as u64).min(200));
    tokio::time::sleep(pause).await;
    Ok(())
}

/// Best first guess for the owner of `position`.
fn first_target(inner: &Inner, position: Id) -> NodeResult<Target> {
    let state = inner.lock();
    if let Some(ring) = &state.ring {
        if ring.owns(position) || ring.is_alone() {
            return Ok(Target::Local);
        }
    }
    let cached = state.arcs.range(position..).next().or_else(|| state.arcs.iter().next());
    if let Some((_, (pred, owner))) = cached {
        if position.in_half_open(*pred, owner.id) {
            return Ok(Target::Remote(owner.clone()));
        }
    }
    let guess = state.view.range(position..).next().or_else(|| state.view.iter().next()).map(|(_, n)| n.clone());
    // Are we ourselves the first member at or after the position? Then our fingers know best.
    let me_first = state.ring.is_some() && guess.as_ref().is_none_or(|g| position.distance_to(inner.me.id) < position.distance_to(g.id));
    if let (Some(ring), true) = (&state.ring, me_first) {
        return Ok(match ring.next_hop(position) {
            Hop::Local => Target::Local,
            Hop::Owner(n) | Hop::Closer(n) => Target::Remote(n),
        });
    }
    match guess {
        Some(node) => Ok(Target::Remote(node)),
        None => Err(NodeError::Unavailable("not connected to any ring member: connect() to one first".into())),
    }
}

fn remember_owner(inner: &Inner, target: &Target, response: &Response, redirects: u32) {
    let mut state = inner.lock();
    state.stats.ops += 1;
    state.stats.op_redirects += redirects as u64;
    let Target::Remote(owner) = target else { return };
    let arc = match response {
        Response::Value { arc, .. } | Response::Written { arc, .. } => *arc,
        _ => return,
    };
    if arc.1 != owner.id {
        return;
    }
    if state.arcs.len() >= ARC_CACHE_ENTRIES {
        state.arcs.clear();
    }
    state.arcs.insert(owner.id, (arc.0, owner.clone()));
    state.view.insert(owner.id, owner.clone());
}

/// A node did not answer: drop it from every table so routing stops choosing it.
fn forget(inner: &Inner, id: Id) {
    let mut state = inner.lock();
    let mut known = state.view.remove(&id).is_some();
    state.arcs.remove(&id);
    if let Some(ring) = state.ring.as_mut() {
        if ring.remove(id) {
            known = true;
            inner.maintenance_wake.notify_one();
        }
    }
    if known {
        inner.metrics.record_suspicion();
    }
}

/// Iterative greedy lookup of the owner of `position` over finger tables.
async fn find_owner(inner: &Arc<Inner>, position: Id) -> NodeResult<(NodeRef, u32)> {
    let start = {
        let state = inner.lock();
        match &state.ring {
            Some(ring) => ring.next_hop(position),
            None => {
                let preceding = state.view.range(..position).next_back().or_else(|| state.view.iter().next_back());
                match preceding {
                    Some((_, node)) => Hop::Closer(node.clone()),
                    None => return Err(NodeError::Unavailable("not connected to any ring member".into())),
                }
            }
        }
    };
    let found = find_owner_from(inner, position, start).await;
    if let Ok((_, hops)) = &found {
        inner.metrics.record_lookup(*hops);
    }
    found
}

async fn find_owner_from(inner: &Arc<Inner>, position: Id, start: Hop) -> NodeResult<(NodeRef, u32)> {
    let deadline = Instant::now() + OPERATION_DEADLINE;
    let mut hops = 0u32;
    let mut attempt = 0;
    let mut hop = start;
    // Nodes found dead during this lookup, and the last node that answered: a dead hop is
    // routed around by asking that node again with the dead one excluded.
    let mut avoid: Vec<Id> = Vec::new();
    let mut last_answer: Option<NodeRef> = None;
    loop {
        let node = match hop {
            Hop::Local => return Ok((inner.me.clone(), hops)),
            Hop::Owner(node) => return Ok((node, hops)),
            Hop::Closer(node) if node.id == inner.me.id => {
                hop = local_hop(inner, position, &avoid)?;
                continue;
            }
            Hop::Closer(node) => node,
        };
        hops += 1;
        if hops > 128 {
            return Err(NodeError::Unavailable("lookup did not converge in 128 hops".into()));
        }
        match inner.request(&node, Request::FindSuccessor { position, avoid: avoid.clone() }).await {
            Ok(Response::Next(Hop::Local)) => return Ok((node, hops)),
            Ok(Response::Next(next)) => {
                last_answer = Some(node);
                hop = next;
            }
            Ok(Response::Error { .. }) => {
                hop = route_around(inner, position, &node, &mut avoid, &mut last_answer, deadline, &mut attempt).await?;
            }
            Ok(other) => return Err(unexpected(other)),
            Err(error) if error.is_unreachable() => {
                hop = route_around(inner, position, &node, &mut avoid, &mut last_answer, deadline, &mut attempt).await?;
            }
            Err(error) => return Err(error),
        }
    }
}

/// `dead` did not answer: forget it and continue through the node that pointed at it, or
/// from our own tables if there is none (or it is the dead one).
async fn route_around(
    inner: &Arc<Inner>,
    position: Id,
    dead: &NodeRef,
    avoid: &mut Vec<Id>,
    last_answer: &mut Option<NodeRef>,
    deadline: Instant,
    attempt: &mut u32,
) -> NodeResult<Hop> {
    forget(inner, dead.id);
    avoid.push(dead.id);
    *attempt += 1;
    if *attempt > 3 {
        backoff(deadline, *attempt).await?;
    }
    match last_answer.take() {
        Some(previous) if previous.id != dead.id => Ok(Hop::Closer(previous)),
        _ => local_hop(inner, position, avoid),
    }
}

fn local_hop(inner: &Inner, position: Id, avoid: &[Id]) -> NodeResult<Hop> {
    let state = inner.lock();
    if let Some(ring) = &state.ring {
        return Ok(ring.next_hop_avoiding(position, avoid));
    }
    let preceding = state.view.range(..position).rev().chain(state.view.iter().rev()).find(|(id, _)| !avoid.contains(id));
    preceding.map(|(_, n)| Hop::Closer(n.clone())).ok_or_else(|| NodeError::Unavailable("no ring member left to ask".into()))
}

/// Answer a request from a peer: cheap ones inline on the reader task, the rest in a task.
pub(crate) fn handle_request(inner: &Arc<Inner>, conn_id: u64, peer: &NodeRef, id: u64, body: Request) {
    match serve_now(inner, Some(peer), body) {
        Ok(response) => {
            inner.send_message(conn_id, &Message::Response { id, body: response });
        }
        Err(body) => {
            let inner = inner.clone();
            tokio::spawn(async move {
                let response = serve(&inner, body).await;
                inner.send_message(conn_id, &Message::Response { id, body: response });
            });
        }
    }
}

async fn serve(inner: &Arc<Inner>, body: Request) -> Response {
    let body = match serve_now(inner, None, body) {
        Ok(response) => return response,
        Err(body) => body,
    };
    match body {
        Request::Write { key, value, mode } => serve_write(inner, key.into_vec(), value, mode).await,
        Request::Handoff { items } => {
            if inner.lock().ring.is_none() {
                return not_member();
            }
            apply_items(inner, &items);
            sync_replicas(inner).await;
            Response::Ok
        }
        _ => Response::Error { code: "bad-request".into(), message: "unsupported request".into() },
    }
}

/// Requests answered from local state alone; `None` for those that must wait on other nodes.
fn serve_now(inner: &Arc<Inner>, sender: Option<&NodeRef>, body: Request) -> Result<Response, Request> {
    if matches!(body, Request::Write { .. } | Request::Handoff { .. }) && inner.config.chord.is_some() {
        return Err(body);
    }
    if inner.config.chord.is_none() {
        return Ok(match body {
            Request::Ping => Response::Pong,
            _ => Response::Error { code: "not-chord".into(), message: "this node is a plain MeshSocket".into() },
        });
    }
    let mut state = inner.lock();
    let state = &mut *state;
    if matches!(body, Request::Info) {
        return Ok(Response::Info(Box::new(super::info::member_info(inner, state))));
    }
    if state.ring.is_none() && !matches!(body, Request::Ping) {
        // A client (or a node that left) stores nothing: whoever asks must pick a member.
        return Ok(not_member());
    }
    let response = match body {
        Request::Ping => Response::Pong,
        Request::Write { .. } | Request::Handoff { .. } => unreachable!("answered by serve()"),
        Request::Info => unreachable!("answered above"),
        Request::Replicate { items } => {
            for item in &items {
                state.clock.observe(&item.version);
                state.store.apply(item);
            }
            Response::Ok
        }
        Request::Fetch { keys } => Response::Items(
            keys.iter()
                .filter_map(|key| {
                    let version = state.store.version_of(key)?;
                    let value = state.store.get(key).map(|(v, _)| ByteBuf::from(v.to_vec()));
                    Some(Item { key: key.to_vec(), value, version })
                })
                .collect(),
        ),
        Request::SyncArc { from, to, digest } => {
            // Owners sync their own arc (it ends at their id): that grants us a replica lease.
            // Bucket-sized pieces of it (which end elsewhere) grant nothing new.
            if sender.is_some_and(|s| s.id == to) {
                state.leases.insert(to, (from, Instant::now()));
            }
            if state.store.digest(from, to)[..] == digest[..] {
                Response::InSync
            } else if Store::split_arc(from, to).len() > 1 {
                Response::SubDigests(state.store.sub_digests(from, to).iter().map(|d| ByteBuf::from(d.to_vec())).collect())
            } else {
                let mut versions = state.store.versions_in(from, to);
                versions.truncate(SYNC_VERSIONS_LIMIT);
                Response::Versions(versions.into_iter().map(|(k, v)| (ByteBuf::from(k), v)).collect())
            }
        }
        _ => {
            let Some(ring) = state.ring.as_mut() else { return Ok(not_member()) };
            match body {
                Request::State => Response::State { predecessor: ring.predecessor().cloned(), successors: ring.successors().to_vec() },
                Request::Notify(candidate) => {
                    if ring.on_notify(&candidate) {
                        inner.sync_wanted.store(true, Ordering::Relaxed);
                    }
                    state.view.insert(candidate.id, candidate);
                    Response::Ok
                }
                Request::FindSuccessor { position, avoid } => Response::Next(ring.next_hop_avoiding(position, &avoid)),
                Request::Get { key } => {
                    let position = Id::of_key(&key);
                    match ring.next_hop(position) {
                        Hop::Local => {
                            let arc = ring.primary_arc().unwrap_or((inner.me.id, inner.me.id));
                            let item = state.store.get(&key).map(|(value, version)| Item { key: key.into_vec(), value: Some(ByteBuf::from(value.to_vec())), version });
                            Response::Value { item, arc }
                        }
                        Hop::Owner(next) | Hop::Closer(next) => Response::Redirect(next),
                    }
                }
                Request::Page { after, limit, with_values } => match ring.primary_arc() {
                    Some((from, to)) => {
                        let after = after.map(|(p, k)| (p, k.into_vec()));
                        let (mut items, more) = state.store.live_page(from, to, after.as_ref(), limit.min(4096) as usize);
                        if !with_values {
                            for item in items.iter_mut() {
                                item.value = None;
                            }
                        }
                        Response::Page { items, more, successor: ring.successor().clone() }
                    }
                    None => Response::Error { code: "unavailable".into(), message: "predecessor unknown; the ring is stabilizing".into() },
                },
                Request::Leaving { predecessor, successors: _ } => {
                    // A neighbour is leaving: drop it; if it was our predecessor, its own
                    // predecessor is ours now. Stabilize confirms the rest.
                    let Some(leaver) = sender else { return Ok(Response::Ok) };
                    ring.remove(leaver.id);
                    state.view.remove(&leaver.id);
                    state.arcs.remove(&leaver.id);
                    if let Some(pred) = predecessor.filter(|p| p.id != inner.me.id) {
                        if ring.predecessor().is_none() {
                            ring.on_notify(&pred);
                        }
                        state.view.insert(pred.id, pred);
                    }
                    inner.sync_wanted.store(true, Ordering::Relaxed);
                    inner.maintenance_wake.notify_one();
                    Response::Ok
                }
                _ => unreachable!("handled above"),
            }
        }
    };
    Ok(response)
}

async fn serve_write(inner: &Arc<Inner>, key: Vec<u8>, value: Option<ByteBuf>, mode: WriteMode) -> Response {
    let Ok(config) = chord_config(inner) else { return not_member() };
    let position = Id::of_key(&key);
    let (item, previous, successors, arc, changed) = {
        let mut state = inner.lock();
        let state = &mut *state;
        let Some(ring) = state.ring.as_ref() else { return not_member() };
        match ring.next_hop(position) {
            Hop::Local => {}
            Hop::Owner(next) | Hop::Closer(next) => return Response::Redirect(next),
        }
        let arc = ring.primary_arc().unwrap_or((inner.me.id, inner.me.id));
        let previous = state.store.get(&key).map(|(v, _)| ByteBuf::from(v.to_vec()));
        if mode == WriteMode::Delete && previous.is_none() {
            return Response::Written { previous: None, version: Version::default(), arc };
        }
        let version = state.clock.tick(now_millis());
        let item = Item { key, value, version };
        let changed = matches!(state.store.apply(&item), Applied::Stored { .. });
        (item, previous, ring.successors().to_vec(), arc, changed)
    };
    let wanted = config.replicas.saturating_sub(1).min(successors.len());
    let stored = replicate(inner, std::slice::from_ref(&item), successors, wanted).await;
    if stored < wanted {
        inner.emit(Event::Error {
            code: "ERR_UNDER_REPLICATED".into(),
            message: format!("write stored on {} of {} replicas; anti-entropy will retry", stored + 1, wanted + 1),
        });
    }
    // A ring with events off (the option is meant to be the same on every node) carries no
    // event traffic at all: the owner announces only when it reports events itself.
    if changed && config.events {
        announce(inner, item.key.clone(), item.value.is_some());
    }
    Response::Written { previous, version: item.version, arc }
}

/// Store `items` on `wanted` of `candidates` (in order, skipping dead ones). Returns how many
/// acknowledged.
async fn replicate(inner: &Arc<Inner>, items: &[Item], candidates: Vec<NodeRef>, wanted: usize) -> usize {
    if wanted == 0 {
        return 0;
    }
    let mut candidates = candidates.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    let spawn = |tasks: &mut tokio::task::JoinSet<(NodeRef, bool)>, node: NodeRef| {
        let inner = inner.clone();
        let items = items.to_vec();
        tasks.spawn(async move {
            let ok = matches!(inner.request(&node, Request::Replicate { items }).await, Ok(Response::Ok));
            (node, ok)
        });
    };
    for node in candidates.by_ref().take(wanted) {
        spawn(&mut tasks, node);
    }
    let mut acked = 0;
    while let Some(joined) = tasks.join_next().await {
        let Ok((node, ok)) = joined else { continue };
        if ok {
            acked += 1;
        } else {
            forget(inner, node.id);
            if let Some(stand_in) = candidates.next() {
                spawn(&mut tasks, stand_in);
            }
        }
    }
    acked
}

fn apply_items(inner: &Inner, items: &[Item]) {
    let mut state = inner.lock();
    for item in items {
        state.clock.observe(&item.version);
        state.store.apply(item);
    }
}

/// Announce a change ring-wide: El-Ansary et al.'s broadcast over the finger table, each node
/// covering the arc up to the next finger, so every member hears it once (N−1 messages).
fn announce(inner: &Arc<Inner>, key: Vec<u8>, added: bool) {
    let id = Id(rand::random());
    inner.lock().seen.first_time(id);
    deliver_event(inner, &key, added);
    forward_event(inner, id, key, added, inner.me.id);
}

pub(crate) fn on_event(inner: &Arc<Inner>, id: Id, key: Vec<u8>, added: bool, limit: Id) {
    if !inner.lock().seen.first_time(id) {
        return;
    }
    deliver_event(inner, &key, added);
    forward_event(inner, id, key, added, limit);
}

fn deliver_event(inner: &Inner, key: &[u8], added: bool) {
    if inner.config.chord.as_ref().is_some_and(|c| c.events) {
        inner.emit(if added { Event::Added(key.to_vec()) } else { Event::Deleted(key.to_vec()) });
    }
}

fn forward_event(inner: &Arc<Inner>, id: Id, key: Vec<u8>, added: bool, limit: Id) {
    let (members, clients) = {
        let state = inner.lock();
        let Some(ring) = &state.ring else { return };
        let mut members = ring.distinct_fingers();
        for s in ring.successors() {
            if !members.iter().any(|m| m.id == s.id) {
                members.push(s.clone());
            }
        }
        members.retain(|n| n.id.in_open(inner.me.id, limit));
        members.sort_by_key(|n| inner.me.id.distance_to(n.id));
        let clients: Vec<u64> = state.conns.iter().filter(|(_, c)| !c.member).map(|(id, _)| *id).collect();
        (members, clients)
    };
    let key = ByteBuf::from(key);
    for (i, member) in members.iter().enumerate() {
        let next_limit = members.get(i + 1).map_or(limit, |n| n.id);
        let message = Message::Event { id, key: key.clone(), added, limit: next_limit };
        send_to(inner, member.clone(), message);
    }
    if !clients.is_empty() {
        let frame = protocol::encode(&Message::Event { id, key, added, limit: inner.me.id });
        for conn_id in clients {
            inner.send_frame(conn_id, frame.clone());
        }
    }
}

/// Fire-and-forget delivery to a node, dialing it in the background if needed.
fn send_to(inner: &Arc<Inner>, node: NodeRef, message: Message) {
    let open = inner.lock().by_node.get(&node.id).copied();
    match open {
        Some(conn_id) => {
            inner.send_message(conn_id, &message);
        }
        None => {
            let inner = inner.clone();
            tokio::spawn(async move {
                if let Ok(conn_id) = conn::connection_to(&inner, &node).await {
                    inner.send_message(conn_id, &message);
                }
            });
        }
    }
}

/// After `connect()` to a member: a lone member joins the ring through it.
pub(crate) async fn on_member_connected(inner: &Arc<Inner>, peer: &PeerInfo) {
    let alone = inner.lock().ring.as_ref().is_some_and(|r| r.is_alone() && r.predecessor().is_none());
    if alone {
        let node = NodeRef { id: peer.id, host: peer.host.clone(), port: peer.port };
        if let Err(error) = join_via(inner, &node).await {
            inner.emit(Event::Error { code: error.code().into(), message: format!("joining the ring through {}:{} failed: {error}", peer.host, peer.port) });
        }
    }
}

/// Join the ring that `bootstrap` belongs to: find our successor, pull the keys we will own,
/// adopt its successor list and notify it (Zave's join).
async fn join_via(inner: &Arc<Inner>, bootstrap: &NodeRef) -> NodeResult<()> {
    let successor = find_successor_through(inner, bootstrap).await?;
    let (predecessor, successors) = match inner.request(&successor, Request::State).await? {
        Response::State { predecessor, successors } => (predecessor, successors),
        other => return Err(unexpected(other)),
    };
    let held = inner.lock().store.all_items();
    // Pull the arc we are about to own, (its predecessor, us], before anyone routes to us.
    let from = predecessor.as_ref().map_or(successor.id, |p| p.id);
    let _ = sync_arc_with(inner, &successor, (from, inner.me.id)).await;
    {
        let mut state = inner.lock();
        let Some(ring) = state.ring.as_mut() else { return Err(NodeError::Closed) };
        let mut list = vec![successor.clone()];
        list.extend(successors);
        ring.join(list);
        for node in ring.known_nodes() {
            state.view.insert(node.id, node);
        }
    }
    let _ = inner.request(&successor, Request::Notify(inner.me.clone())).await;
    // A node that was a ring of its own hands what it held to the owners in the joined ring.
    let foreign: Vec<Item> = held.into_iter().filter(|i| !Id::of_key(&i.key).in_half_open(from, inner.me.id)).collect();
    for item in foreign {
        if let Ok((owner, _)) = find_owner(inner, Id::of_key(&item.key)).await {
            if owner.id != inner.me.id {
                let _ = inner.request(&owner, Request::Handoff { items: vec![item] }).await;
            }
        }
    }
    inner.sync_wanted.store(true, Ordering::Relaxed);
    inner.maintenance_wake.notify_one();
    Ok(())
}

/// Our successor-to-be, looked up through `bootstrap`. A lookup that falls back on our own
/// tables (a ring of one: "we own everything") did not find it, so it is retried through the
/// bootstrap rather than mistaken for a completed join.
async fn find_successor_through(inner: &Arc<Inner>, bootstrap: &NodeRef) -> NodeResult<NodeRef> {
    const ATTEMPTS: u32 = 5;
    let mut last_error = None;
    for attempt in 1..=ATTEMPTS {
        match find_owner_from(inner, inner.me.id, Hop::Closer(bootstrap.clone())).await {
            Ok((successor, _)) if successor.id != inner.me.id => return Ok(successor),
            Ok(_) => {}
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(Duration::from_millis(50 * attempt as u64)).await;
    }
    Err(last_error.unwrap_or_else(|| NodeError::Unavailable(format!("no successor found through {}:{}", bootstrap.host, bootstrap.port))))
}

/// Leave the ring gracefully: tell the neighbours, push our data to the successor (which
/// replicates it before answering), then become a client.
pub(crate) async fn leave(inner: &Arc<Inner>) -> NodeResult<()> {
    if !inner.member.swap(false, Ordering::SeqCst) {
        return Ok(());
    }
    let (ring, items) = {
        let mut state = inner.lock();
        let ring = state.ring.take();
        let items = state.store.all_items();
        (ring, items)
    };
    let Some(ring) = ring else { return Ok(()) };
    let mut heirs: Vec<NodeRef> = ring.successors().to_vec();
    if heirs.is_empty() {
        return Ok(()); // the last node: nobody to hand anything to
    }
    let notice = Request::Leaving { predecessor: ring.predecessor().cloned(), successors: ring.successors().to_vec() };
    if let Some(pred) = ring.predecessor() {
        let _ = inner.request(pred, notice.clone()).await;
    }
    while !heirs.is_empty() {
        let heir = heirs.remove(0);
        if inner.request(&heir, notice.clone()).await.is_err() {
            continue;
        }
        let mut delivered = true;
        for batch in batches(&items) {
            if !matches!(inner.request(&heir, Request::Handoff { items: batch }).await, Ok(Response::Ok)) {
                delivered = false;
                break;
            }
        }
        if delivered {
            break;
        }
    }
    let mut state = inner.lock();
    state.store = crate::store::Store::new();
    state.arcs.clear();
    Ok(())
}

fn batches(items: &[Item]) -> Vec<Vec<Item>> {
    let mut out = vec![Vec::new()];
    let mut bytes = 0;
    for item in items {
        let size = item.key.len() + item.value.as_ref().map_or(0, |v| v.len()) + 64;
        if bytes + size > ITEM_BATCH_BYTES && !out.last().unwrap().is_empty() {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += size;
        out.last_mut().unwrap().push(item.clone());
    }
    out.retain(|b| !b.is_empty());
    out
}

/// Periodic Chord maintenance while the node is open.
pub(crate) async fn maintenance_loop(inner: Arc<Inner>) {
    let Some(config) = inner.config.chord.clone() else { return };
    let mut shutdown = inner.shutdown_signal();
    let mut round: u64 = 0;
    loop {
        let jitter = Duration::from_millis(rand::random::<u64>() % (config.stabilize_interval.as_millis() as u64 / 4 + 1));
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(config.stabilize_interval + jitter) => {}
            _ = inner.maintenance_wake.notified() => {}
        }
        if !inner.member.load(Ordering::SeqCst) || inner.lock().closed {
            continue;
        }
        round += 1;
        rejoin_if_stranded(&inner).await;
        stabilize(&inner).await;
        check_predecessor(&inner).await;
        fix_fingers(&inner).await;
        if round.is_multiple_of(SYNC_EVERY_ROUNDS) || inner.sync_wanted.swap(false, Ordering::Relaxed) {
            sync_replicas(&inner).await;
        }
        if round.is_multiple_of(STRAY_EVERY_ROUNDS) {
            let lease_ttl = config.stabilize_interval * (SYNC_EVERY_ROUNDS as u32) * LEASE_SYNC_PERIODS;
            hand_off_strays(&inner, lease_ttl).await;
        }
        if round.is_multiple_of(64) {
            let horizon = now_millis().saturating_sub(TOMBSTONE_HORIZON.as_millis() as u64);
            inner.lock().store.collect_tombstones(horizon);
        }
    }
}

/// A member that is alone (no successor, no predecessor) while it knows other members was cut
/// off, or its join failed (e.g. its lookup met only dead nodes): join them again rather than
/// stay a ring of one.
async fn rejoin_if_stranded(inner: &Arc<Inner>) {
    let bootstrap = {
        let state = inner.lock();
        let stranded = state.ring.as_ref().is_some_and(|r| r.is_alone() && r.predecessor().is_none());
        if !stranded || state.view.is_empty() {
            return;
        }
        let members: Vec<&NodeRef> = state.view.values().filter(|n| n.id != inner.me.id).collect();
        if members.is_empty() {
            return;
        }
        members[rand::random::<usize>() % members.len()].clone()
    };
    if let Err(error) = join_via(inner, &bootstrap).await {
        if error.is_unreachable() {
            forget(inner, bootstrap.id);
        }
    }
}

async fn stabilize(inner: &Arc<Inner>) {
    let successor = match inner.lock().ring.as_ref() {
        Some(ring) if !ring.is_alone() => ring.successor().clone(),
        _ => return,
    };
    match inner.request(&successor, Request::State).await {
        Ok(Response::State { predecessor, successors }) => {
            let adopted = {
                let mut state = inner.lock();
                for node in successors.iter().chain(predecessor.iter()) {
                    if node.id != inner.me.id {
                        state.view.insert(node.id, node.clone());
                    }
                }
                let Some(ring) = state.ring.as_mut() else { return };
                let before: Vec<Id> = ring.successors().iter().map(|n| n.id).collect();
                let adopted = ring.on_successor_state(&successor, predecessor, successors);
                if before != ring.successors().iter().map(|n| n.id).collect::<Vec<_>>() {
                    inner.sync_wanted.store(true, Ordering::Relaxed);
                }
                adopted
            };
            let notify_target = adopted.unwrap_or(successor);
            if let Err(error) = inner.request(&notify_target, Request::Notify(inner.me.clone())).await {
                if error.is_unreachable() {
                    forget(inner, notify_target.id);
                }
            }
        }
        Ok(Response::Error { .. }) => forget(inner, successor.id),
        Ok(_) => {}
        Err(error) if error.is_unreachable() => forget(inner, successor.id),
        Err(_) => {}
    }
}

async fn check_predecessor(inner: &Arc<Inner>) {
    let Some(pred) = inner.lock().ring.as_ref().and_then(|r| r.predecessor().cloned()) else { return };
    match inner.request(&pred, Request::Ping).await {
        Ok(_) => {}
        Err(error) if error.is_unreachable() => {
            forget(inner, pred.id);
        }
        Err(_) => {}
    }
}

async fn fix_fingers(inner: &Arc<Inner>) {
    for _ in 0..FINGERS_PER_ROUND {
        let next = inner.lock().ring.as_mut().and_then(|r| r.next_finger_to_fix());
        let Some((index, start)) = next else { return };
        match find_owner(inner, start).await {
            Ok((owner, _)) => {
                let mut state = inner.lock();
                if owner.id != inner.me.id {
                    state.view.insert(owner.id, owner.clone());
                }
                if let Some(ring) = state.ring.as_mut() {
                    ring.set_finger(index, owner);
                }
            }
            Err(_) => return,
        }
    }
}

/// Entries we are neither owner nor a leased replica of go to their owner, then are dropped,
/// so copies left on stand-ins cannot resurface after the tombstone horizon.
async fn hand_off_strays(inner: &Arc<Inner>, lease_ttl: Duration) {
    let strays: Vec<Item> = {
        let mut state = inner.lock();
        let state = &mut *state;
        let Some(ring) = &state.ring else { return };
        let Some((from, to)) = ring.primary_arc() else { return };
        state.leases.retain(|_, (_, seen)| seen.elapsed() < lease_ttl);
        let mut covered: Vec<(Id, Id)> = state.leases.iter().map(|(owner, (start, _))| (*start, *owner)).collect();
        covered.push((from, to));
        state.store.items_outside(&covered, FETCH_BATCH)
    };
    for item in strays {
        let Ok((owner, _)) = find_owner(inner, Id::of_key(&item.key)).await else { return };
        if owner.id == inner.me.id {
            continue;
        }
        if let Ok(Response::Ok) = inner.request(&owner, Request::Handoff { items: vec![item.clone()] }).await {
            let mut state = inner.lock();
            if state.store.version_of(&item.key) == Some(item.version) {
                state.store.remove(&item.key);
            }
        }
    }
}

/// Anti-entropy of our primary arc with each replica.
async fn sync_replicas(inner: &Arc<Inner>) {
    let Some(config) = inner.config.chord.as_ref() else { return };
    let (arc, replicas) = {
        let state = inner.lock();
        let Some(ring) = &state.ring else { return };
        let Some(arc) = ring.primary_arc() else { return };
        (arc, ring.replica_targets(config.replicas))
    };
    for replica in replicas {
        if let Err(error) = sync_arc_with(inner, &replica, arc).await {
            if error.is_unreachable() {
                forget(inner, replica.id);
            }
        }
    }
}

/// Make `peer`'s copy of `(from, to]` and ours agree: each side gets the newer version of every
/// entry. Equal digests end it at once; otherwise only the bucket-sized pieces whose digests
/// differ exchange version lists, so repairs cost what differs, not the arc's size.
async fn sync_arc_with(inner: &Arc<Inner>, peer: &NodeRef, (from, to): (Id, Id)) -> NodeResult<()> {
    let digest = inner.lock().store.digest(from, to);
    inner.metrics.record_sync();
    match inner.request(peer, Request::SyncArc { from, to, digest: ByteBuf::from(digest.to_vec()) }).await? {
        Response::InSync => Ok(()),
        Response::Versions(theirs) => repair_piece(inner, peer, (from, to), theirs).await,
        Response::SubDigests(theirs) => {
            let (pieces, ours) = {
                let state = inner.lock();
                (Store::split_arc(from, to), state.store.sub_digests(from, to))
            };
            if theirs.len() != pieces.len() {
                return Err(NodeError::Protocol(format!("{} sub-digests for {} pieces", theirs.len(), pieces.len())));
            }
            for (index, piece) in pieces.into_iter().enumerate() {
                if theirs[index][..] != ours[index][..] {
                    repair_sub_arc(inner, peer, piece).await?;
                }
            }
            Ok(())
        }
        other => Err(unexpected(other)),
    }
}

/// One piece (at most a bucket): ask for its version list and repair, repeating while the
/// replica's list was truncated.
async fn repair_sub_arc(inner: &Arc<Inner>, peer: &NodeRef, (from, to): (Id, Id)) -> NodeResult<()> {
    for _ in 0..16 {
        let digest = inner.lock().store.digest(from, to);
        let theirs = match inner.request(peer, Request::SyncArc { from, to, digest: ByteBuf::from(digest.to_vec()) }).await? {
            Response::InSync => return Ok(()),
            Response::Versions(versions) => versions,
            other => return Err(unexpected(other)),
        };
        let truncated = theirs.len() >= SYNC_VERSIONS_LIMIT;
        repair_piece(inner, peer, (from, to), theirs).await?;
        if !truncated {
            return Ok(());
        }
    }
    Ok(())
}

/// Given the replica's versions of `(from, to]`, push what it lacks and fetch what we lack.
async fn repair_piece(inner: &Arc<Inner>, peer: &NodeRef, (from, to): (Id, Id), theirs: Vec<(ByteBuf, Version)>) -> NodeResult<()> {
    let theirs: HashMap<Vec<u8>, Version> = theirs.into_iter().map(|(k, v)| (k.into_vec(), v)).collect();
    let (to_push, to_fetch) = {
        // Compare versions only; values are copied just for the entries the replica lacks.
        let state = inner.lock();
        let to_fetch: Vec<ByteBuf> = theirs
            .iter()
            .filter(|(key, version)| state.store.version_of(key).is_none_or(|mine| mine < **version))
            .map(|(key, _)| ByteBuf::from(key.clone()))
            .collect();
        let to_push: Vec<Item> = state
            .store
            .versions_in(from, to)
            .into_iter()
            .filter(|(key, version)| theirs.get(key).is_none_or(|v| v < version))
            .map(|(key, version)| {
                let value = state.store.get(&key).map(|(v, _)| ByteBuf::from(v.to_vec()));
                Item { key, value, version }
            })
            .collect();
        (to_push, to_fetch)
    };
    for batch in batches(&to_push) {
        let pushed = batch.len();
        inner.request(peer, Request::Replicate { items: batch }).await?;
        inner.metrics.record_repairs(pushed, 0);
    }
    for keys in to_fetch.chunks(FETCH_BATCH) {
        if let Response::Items(items) = inner.request(peer, Request::Fetch { keys: keys.to_vec() }).await? {
            apply_items(inner, &items);
            inner.metrics.record_repairs(0, items.len());
        }
    }
    Ok(())
}
