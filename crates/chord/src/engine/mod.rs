//! The sans-I/O Chord engine of one node: every protocol decision, no sockets, no clocks, no
//! tokio. The tokio node (`crate::node`) and the simulator (`crates/sim`) both drive it the
//! same way, as quinn-proto is driven by quinn:
//!
//! - feed it inputs with the time they happened: [`Engine::handle_request`],
//!   [`Engine::handle_response`], [`Engine::request_failed`], [`Engine::peer_gone`],
//!   [`Engine::handle_event`], [`Engine::start_op`] (a user operation),
//!   [`Engine::persisted`] (a durability barrier of a store on disk) and
//!   [`Engine::handle_timeout`] (once [`Engine::poll_timeout`]'s time has come);
//! - after each, execute what [`Engine::poll_action`] returns: send this request to that node,
//!   answer that request, deliver this notice, complete that operation.
//!
//! Inside, each protocol step is a [`Machine`] (lookup, routed operation, write at the owner,
//! anti-entropy, join, leave, stabilize, ...); machines send requests, sleep and spawn child
//! machines through their [`Cx`], and the engine routes every answer, timeout and child
//! outcome back to the machine that waits for it.

mod arc;
mod contacts;
mod dedupe;
mod delegate;
mod replica_read;
pub mod core;
pub mod cx;
mod detector;
mod events;
mod guard;
mod lease;
mod links;
mod lookup;
mod maintenance;
mod membership;
mod gossip;
mod members;
mod merge;
mod read;
mod recent;
mod relay;
mod route;
mod serve;
mod subscribers;
mod sync;
mod time;
mod verify;
mod watch;
mod write;

pub use self::core::Counters;
use self::core::{Core, CALM_AFTER_MS, HEARD_ENTRIES, SUSPECT_ENTRIES};
use self::recent::RecentMap;
pub use self::cx::{Action, LookupInfo, Millis, Notice, Now, OpId, OpOutput, ReplyTo, ReqId, ScanPage, Ticket};
pub use self::route::DictOp;
pub use self::links::{Admission, IDLE_CLOSE_MS};
pub use self::maintenance::FINGERS_PER_ROUND;
pub use self::lease::LEASE_MS;

use self::contacts::Contacts;
use self::links::Links;
use self::cx::{Cx, Input, Io, Machine, Outcome, Served, Step, TaskId};
use self::detector::Probe;
use self::maintenance::{CheckPredecessor, FixFingers, Stabilize};
use self::merge::ProbeContacts;
use self::membership::{BecomeMember, JoinThrough, Leave, Rejoin};
use self::route::{Routed, Scan, UserLookup};
use self::sync::{HandOffStrays, SyncReplicas};
use self::watch::PullSubscriptions;
use crate::config::{ChordConfig, MAX_KEY_BYTES, MAX_VALUE_BYTES, TOMBSTONE_HORIZON};
use crate::error::Error;
use crate::id::Id;
use crate::metrics::{MemberInfo, RingFigures, MAX_KNOWN_IN_INFO};
use crate::protocol::{Request, Response};
use crate::routing::{NodeRef, Routing};
use crate::seen::SeenSet;
use crate::store::Store;
use crate::version::{Clock, Version};
use rand::{Rng, SeedableRng};
use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// Anti-entropy with the replicas runs every this many rounds (and whenever the arc changes).
const SYNC_EVERY_ROUNDS: u64 = 4;
/// Stray collection runs every this many maintenance rounds.
const STRAY_EVERY_ROUNDS: u64 = 8;
/// A replica lease lasts this many anti-entropy periods without a sync from its owner.
const LEASE_SYNC_PERIODS: u64 = 10;
/// How much slower than `stabilizeMs` maintenance runs once the routing state is calm (a
/// power of two): at the default 250 ms, a round every 2 s, which cuts an idle member's
/// maintenance traffic about eightfold (bench/idle.js).
pub const MAX_CALM_SLOWDOWN: u64 = 8;
/// Members a stranded node asks at once whether they are in a ring, to rejoin through one.
const REJOIN_PROBES: usize = 8;
/// Tombstones past the horizon are collected every this many rounds.
const TOMBSTONE_EVERY_ROUNDS: u64 = 64;
/// Members a node offers to remember across a restart (`Engine::members_to_remember`): its
/// routing neighbours first, then others it knows; enough to find its ring again after most
/// of it restarted too.
pub const MEMBERS_TO_REMEMBER: usize = 64;

/// What a node restarted from its folder brings back (see [`Engine::restore`]).
pub struct Restored {
    /// The index of its entries, its values on disk.
    pub store: Store,
    /// The newest version it ever stored: its clock resumes past it, so versions never go
    /// backwards across a restart even if the wall clock did.
    pub high_water: Option<Version>,
    /// The members it knew: it rejoins its ring through them.
    pub members: Vec<NodeRef>,
}

/// How an engine starts.
#[derive(Clone, Debug)]
pub struct Settings {
    pub me: NodeRef,
    /// `None` for a plain MeshSocket (it only answers pings).
    pub chord: Option<ChordConfig>,
    pub request_timeout: Millis,
    /// A peer silent this long while we wait on it is suspected (see `detector`).
    pub failure_timeout: Millis,
    /// Seeds the engine's randomness (jitter, event ids): the simulator replays runs by seed.
    pub seed: u64,
    /// Most open connections (`maxPeers`): the connection policy keeps within it.
    pub max_peers: usize,
    /// Keys the MAC of the scan cursors this node hands out, so it accepts back only cursors
    /// it made (a cursor names a node to ask next). Secret and random per node: the driver
    /// draws it from the OS, since the engine's own randomness is seeded.
    pub secret: [u8; 32],
}

impl Settings {
    /// A ring member with the default request and failure timeouts (tests, fuzzing).
    pub fn member(me: NodeRef, chord: ChordConfig, seed: u64) -> Settings {
        Settings {
            me,
            chord: Some(chord),
            request_timeout: crate::config::DEFAULT_REQUEST_TIMEOUT.as_millis() as Millis,
            failure_timeout: crate::config::DEFAULT_FAILURE_TIMEOUT.as_millis() as Millis,
            seed,
            max_peers: crate::config::DEFAULT_MAX_PEERS,
            secret: Settings::secret_from_seed(seed),
        }
    }

    /// A `secret` derived from a seed, for simulators and tests whose runs replay by seed:
    /// anyone who knows the seed knows it, so a real node draws its secret from the OS.
    pub fn secret_from_seed(seed: u64) -> [u8; 32] {
        blake3::derive_key("chordnet: scan cursor key derived from a seed (simulation, tests)", &seed.to_le_bytes())
    }
}

/// A user operation.
#[derive(Clone, Debug)]
pub enum UserOp {
    Get(Vec<u8>),
    Set(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    Lookup(Vec<u8>),
    Scan { cursor: Option<Vec<u8>>, with_values: bool, limit: u32 },
    /// Become a ring member (`join()`).
    Join,
    /// We connected to member `peer`: join through it if we are a lone member.
    JoinThrough(NodeRef),
    /// Leave the ring, handing data over (`unjoin()`, `close()`).
    Leave,
    /// Send one request to a node and return its answer (diagnostics: another node's `Info`).
    Ask(NodeRef, Request),
}

/// Background duties of the maintenance round; at most one of each runs at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Duty {
    Rejoin,
    Stabilize,
    CheckPredecessor,
    FixFingers,
    Sync,
    Strays,
    Contacts,
    Subscriptions,
    Members,
    Delegations,
}

/// Where a finished machine's outcome goes.
enum Sink {
    Parent(TaskId),
    Op(OpId),
    Reply(ReplyTo),
    Duty(Duty),
    /// Nobody waits for the outcome (a failure-detector probe).
    Detached,
}

struct Task {
    machine: Option<Box<dyn Machine>>,
    sink: Sink,
}

struct Schedule {
    next_tick: Millis,
    last_tick: Millis,
    round: u64,
    running: HashMap<Duty, TaskId>,
}

/// A snapshot of a node's routing state and counters.
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
    pub operations: u64,
    pub mean_redirects: f64,
    /// Mean network legs per operation: 0 answered here (or from the read cache), 1 straight to the owner over an open
    /// connection, more through relays, redirects or a handshake first.
    pub mean_hops: f64,
    /// Live ring members in our member table (ourselves included): the ring's size, once
    /// gossip has spread.
    pub members: usize,
    pub lookups: u64,
    pub mean_lookup_hops: f64,
    pub events_forwarded: u64,
    pub events_refused: u64,
    /// Subscribers (listening nodes) this member knows of, ring-wide.
    pub subscribers: u64,
    /// Peers suspected of having failed since start.
    pub suspicions: u64,
    /// Gaps closed by adopting a node of another ring (ring merging).
    pub merges: u64,
    /// Former neighbours and sampled members remembered for probing.
    pub contacts: usize,
    /// Open connections (the driver's figure; the engine leaves it 0).
    pub connections: usize,
    /// Frames refused before sending for exceeding the frame limit: 0 unless there is a bug
    /// (the driver's figure; the engine leaves it 0).
    pub oversized_frames: u64,
    /// Gets answered from the read cache, and gets that looked there first and missed.
    pub cache_hits: u64,
    pub cache_misses: u64,
    /// Entries and bytes in the read cache now (at most `cacheBytes`).
    pub cache_entries: usize,
    pub cache_bytes: usize,
    /// As an owner: read leases granted, invalidations sent for writes, and holders whose
    /// lease a write waited out because they did not confirm.
    pub leases_granted: u64,
    pub invalidations_sent: u64,
    pub lease_timeouts: u64,
    /// As an owner: read delegations granted to replicas; as a replica: gets answered for
    /// their owner (`delegate`).
    pub delegations_granted: u64,
    pub replica_reads: u64,
}

pub struct Engine {
    core: Core,
    io: Io,
    tasks: HashMap<TaskId, Task>,
    queue: VecDeque<(TaskId, Input)>,
    schedule: Schedule,
}

impl Engine {
    pub fn new(settings: Settings, now: Now) -> Engine {
        let member = settings.chord.as_ref().is_some_and(|c| c.join);
        let list_len = settings.chord.as_ref().map_or(4, |c| c.successor_list_len());
        let me = settings.me;
        let cache_bytes = settings.chord.as_ref().map_or(0, |c| c.cache_bytes);
        let core = Core {
            ring: member.then(|| Routing::new(me.clone(), list_len)),
            clock: Clock::new(me.id),
            me,
            chord: settings.chord,
            request_timeout: settings.request_timeout,
            failure_timeout: settings.failure_timeout,
            now: now.mono,
            last_heard: RecentMap::new(HEARD_ENTRIES),
            suspects: RecentMap::new(SUSPECT_ENTRIES),
            probing: Default::default(),
            last_sweep: None,
            contacts: Contacts::default(),
            rejoin_via: None,
            told: RecentMap::new(merge::TOLD_ENTRIES),
            verifier: Default::default(),
            store: Store::new(),
            view: BTreeMap::new(),
            members: members::Members::for_max_peers(settings.max_peers),
            incarnation: now.wall.max(1),
            arcs: BTreeMap::new(),
            leases: HashMap::new(),
            read_leases: Default::default(),
            delegates: Default::default(),
            held: Default::default(),
            read_copies: Default::default(),
            cache: lease::ReadCache::new(cache_bytes),
            recent_writes: Default::default(),
            seen: SeenSet::new(),
            unproven: Default::default(),
            watch: Default::default(),
            counters: Counters::default(),
            arc: Default::default(),
            links: Links::new(settings.max_peers),
            maintenance_due: false,
            calm_since: now.mono,
            restored: false,
            seeding: false,
            had_ring: false,
            join_failed: false,
            joining: false,
            rng: rand::rngs::StdRng::seed_from_u64(settings.seed),
            secret: settings.secret,
        };
        let mut engine = Engine {
            core,
            io: Io::default(),
            tasks: HashMap::new(),
            queue: VecDeque::new(),
            schedule: Schedule { next_tick: now.mono, last_tick: now.mono, round: 0, running: HashMap::new() },
        };
        engine.schedule.next_tick = now.mono + engine.next_interval();
        engine
    }

    /// This node's routing state, while it is a ring member.
    pub fn ring(&self) -> Option<&Routing> {
        self.core.ring.as_ref()
    }

    /// The index of what this node holds.
    pub fn store(&self) -> &Store {
        &self.core.store
    }

    /// Lookup hops, anti-entropy and suspicions, as the metrics show them.
    pub fn ring_figures(&self) -> &RingFigures {
        &self.core.counters.figures
    }

    /// Milliseconds of the newest version this node's clock issued or observed.
    pub fn clock_high_water_millis(&self) -> u64 {
        self.core.clock.high_water_millis()
    }

    /// The ring options, or `Err(NotChord)` for a plain MeshSocket.
    pub fn chord_config(&self) -> Result<&ChordConfig, Error> {
        self.core.chord()
    }

    /// Install the routing state of a settled ring, as if this member had joined and synced
    /// its arc long ago: for simulators and tests that start from an ideal ring
    /// (`crate::testing::IdealRing`). A running node never calls it.
    pub fn settle(&mut self, routing: Routing) {
        self.core.arc.settled(routing.predecessor().map(|p| p.id));
        self.core.ring = Some(routing);
    }

    pub fn me(&self) -> &NodeRef {
        &self.core.me
    }

    pub fn is_member(&self) -> bool {
        self.core.is_member()
    }

    /// Start from what a node kept in its folder: its entries, its clock's high-water mark and
    /// the members it knew. Knowing members, it is rejoining: it takes no ownership until it is
    /// back in a ring (the `Rejoin` duty and the contact probes find one), then catches up by
    /// anti-entropy, which moves only what differs.
    pub fn restore(&mut self, restored: Restored) {
        let Restored { store, high_water, members } = restored;
        self.core.store = store;
        if let Some(version) = high_water {
            self.core.clock.observe(&version);
        }
        let (now, me) = (self.core.now, self.core.me.id);
        for node in members.iter().filter(|n| n.id != me) {
            self.core.learn(node);
            self.core.contacts.add_former(node, now);
        }
        self.core.restored = !members.is_empty() && self.core.is_member();
    }

    /// What this node would find in its folder after a crash (`restore` takes it back): its
    /// store, its clock's high-water mark, the members it knew. For simulators of nodes with a
    /// `dataDir`, where everything applied counts as on disk (a real node acknowledges a
    /// write only once committed, so only unacknowledged writes can be lost in a crash).
    pub fn into_restored(self) -> Restored {
        let members = self.members_to_remember();
        Restored { store: self.core.store, high_water: Some(self.core.clock.high_water()), members }
    }

    /// Members worth remembering across a restart, at most [`MEMBERS_TO_REMEMBER`]: successors,
    /// predecessor, fingers, then the rest of the view.
    pub fn members_to_remember(&self) -> Vec<NodeRef> {
        let mut nodes: Vec<NodeRef> = self.core.ring.as_ref().map(|r| r.known_nodes()).unwrap_or_default();
        nodes.extend(self.core.view.values().cloned());
        let mut seen = std::collections::HashSet::new();
        nodes.retain(|n| n.id != self.core.me.id && seen.insert(n.id));
        nodes.truncate(MEMBERS_TO_REMEMBER);
        nodes
    }

    /// What the store staged before `ticket` was asked for is durable (`Ok`), or could not be
    /// made so (a full disk): the machine waiting on it goes on.
    pub fn persisted(&mut self, now: Now, ticket: Ticket, result: Result<(), Error>) {
        self.core.now = now.mono;
        if let Some(task) = self.io.persists.remove(&ticket) {
            self.queue.push_back((task, Input::Persisted(ticket, result)));
            self.run(now);
        }
    }

    /// The next thing for the driver to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.io.actions.pop_front()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.io.requests.len()
    }

    /// When [`Engine::handle_timeout`] should be called next.
    pub fn poll_timeout(&mut self) -> Option<Millis> {
        self.io.prune_deadlines();
        while let Some(Reverse((_, task))) = self.io.timers.peek() {
            if self.tasks.contains_key(task) {
                break;
            }
            self.io.timers.pop();
        }
        let deadline = self.io.deadlines.peek().map(|Reverse((at, _))| *at);
        let overdue = self.io.overdue.peek().map(|Reverse((at, _))| *at);
        let timer = self.io.timers.peek().map(|Reverse((at, _))| *at);
        let tick = self.core.chord.is_some().then_some(self.schedule.next_tick);
        [deadline, overdue, timer, tick].into_iter().flatten().min()
    }

    /// Start a user operation; its result comes back as [`Action::Done`] with `op`.
    /// A get answered without waiting, if it can be: from the read cache while the key's lease
    /// holds, or from our own store when we own the key with its arc synced and settled —
    /// exactly what `start_op(UserOp::Get)` would answer at once (the binding's fast path).
    /// `None`: start the operation instead.
    pub fn get_now(&mut self, now: Now, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.core.now = now.mono;
        if self.core.chord.is_none() || key.len() > MAX_KEY_BYTES {
            return None;
        }
        if let Some(value) = self.core.cache.peek(key, now.mono) {
            self.core.counters.ops += 1;
            return Some(value);
        }
        let owned = self.core.ring.as_ref().is_some_and(|ring| matches!(ring.next_hop(Id::of_key(key)), crate::routing::Hop::Local));
        if !owned {
            // A replica of the key with a delegation from its owner answers it here too.
            let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
            let answer = replica_read::delegated_get(&mut cx, key)?;
            self.core.counters.ops += 1;
            return match answer {
                Response::Value { item, .. } => Some(item.and_then(|i| i.value).map(serde_bytes::ByteBuf::into_vec)),
                _ => None,
            };
        }
        if self.core.unsettled() {
            return None;
        }
        match read::owner_get(&self.core, key.to_vec()) {
            Response::Value { item, .. } => {
                // An operation answered here, in no hop.
                self.core.counters.ops += 1;
                Some(item.and_then(|i| i.value).map(serde_bytes::ByteBuf::into_vec))
            }
            _ => None,
        }
    }

    pub fn start_op(&mut self, now: Now, op: OpId, kind: UserOp) {
        self.core.now = now.mono;
        match self.machine_for(&kind) {
            Ok(machine) => self.launch(now, machine, Sink::Op(op)),
            Err(error) => self.io.actions.push_back(Action::Done { op, result: Err(error) }),
        }
    }

    fn machine_for(&self, kind: &UserOp) -> Result<Box<dyn Machine>, Error> {
        self.core.chord()?;
        let check_key = |key: &[u8]| {
            if key.len() > MAX_KEY_BYTES {
                return Err(Error::KeyTooLarge { size: key.len(), limit: MAX_KEY_BYTES });
            }
            Ok(())
        };
        Ok(match kind.clone() {
            UserOp::Get(key) => {
                check_key(&key)?;
                Box::new(Routed::new(DictOp::Get, key, None))
            }
            UserOp::Set(key, value) => {
                check_key(&key)?;
                if value.len() > MAX_VALUE_BYTES {
                    return Err(Error::ValueTooLarge { size: value.len(), limit: MAX_VALUE_BYTES });
                }
                Box::new(Routed::new(DictOp::Set, key, Some(value)))
            }
            UserOp::Delete(key) => {
                check_key(&key)?;
                Box::new(Routed::new(DictOp::Delete, key, None))
            }
            UserOp::Lookup(key) => Box::new(UserLookup::new(&key)),
            UserOp::Scan { cursor, with_values, limit } => Box::new(Scan::new(cursor, with_values, limit)),
            UserOp::Join => Box::new(BecomeMember),
            UserOp::JoinThrough(peer) => Box::new(JoinThrough::new(peer)),
            UserOp::Leave => Box::new(Leave::default()),
            UserOp::Ask(node, request) => Box::new(route::Ask::new(node, request)),
        })
    }

    /// A peer's request arrived; its answer comes back as [`Action::Respond`] to `reply`.
    pub fn handle_request(&mut self, now: Now, from: &NodeRef, reply: ReplyTo, body: Request) {
        self.core.now = now.mono;
        self.core.heard(from.id);
        self.core.links.used(from.id, now.mono);
        let served = {
            let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
            serve::serve(&mut cx, Some(from), body)
        };
        match served {
            Served::Now(response) => self.io.actions.push_back(Action::Respond { to: reply, body: response }),
            Served::Later(machine) => self.launch(now, machine, Sink::Reply(reply)),
        }
        self.run_spawned(now);
    }

    /// Start the machines an input spawned outside any machine (serving a request spawns
    /// probes and checks; so does a new connection): nobody waits for their outcome.
    fn run_spawned(&mut self, now: Now) {
        for (child, parent, machine) in std::mem::take(&mut self.io.spawned) {
            self.tasks.insert(child, Task { machine: Some(machine), sink: Sink::Parent(parent) });
            self.queue.push_back((child, Input::Start));
        }
        self.run(now);
    }

    /// The answer to request `id` arrived from `from`. Answers from anyone but the node asked
    /// (late, forged or misrouted) are dropped.
    pub fn handle_response(&mut self, now: Now, from: Id, id: ReqId, body: Response) {
        self.core.now = now.mono;
        if self.io.requests.get(&id).is_none_or(|r| r.to.id != from) {
            return;
        }
        self.core.heard(from);
        self.core.links.used(from, now.mono);
        let outstanding = self.io.requests.remove(&id).expect("checked");
        self.queue.push_back((outstanding.task, Input::Reply(id, Ok(body))));
        self.run(now);
    }

    /// Request `id` could not be delivered (no connection could be made, the connection went).
    pub fn request_failed(&mut self, now: Now, id: ReqId, error: Error) {
        self.core.now = now.mono;
        if let Some(outstanding) = self.io.requests.remove(&id) {
            self.queue.push_back((outstanding.task, Input::Reply(id, Err(error))));
            self.run(now);
        }
    }

    /// A connection to `peer` is up (either side dialed); `member`: its handshake says it is a
    /// ring member. That is only a claim (any client can make it): a node we do not know yet is
    /// asked for its `State` and learned as a member once it answers as one (see `verify`).
    pub fn connected(&mut self, now: Now, peer: &NodeRef, member: bool) {
        self.core.now = now.mono;
        self.core.links.opened(peer.id, member, now.mono);
        if member && self.core.chord.is_some() && !self.core.knows_member(peer.id) {
            let client = !self.core.is_member();
            let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
            // Once it answers as a member, ring events it sent meanwhile go on — and a client
            // that watches keys subscribes through it too.
            verify::verify(&mut cx, peer, Box::new(move |cx, member| {
                events::proven(cx, member);
                if client {
                    cx.core.watch.renew_soon();
                    watch::announce_if_due(cx);
                }
            }));
            self.run_spawned(now);
        }
    }

    /// Members a newcomer this node refused (busy) may try instead: its successors and
    /// predecessor, at most `links::ELSEWHERE`.
    pub fn elsewhere(&self) -> Vec<NodeRef> {
        let Some(ring) = &self.core.ring else { return Vec::new() };
        ring.successors().iter().chain(ring.predecessor()).filter(|n| n.id != self.core.me.id).take(links::ELSEWHERE).cloned().collect()
    }

    /// Every slot (`maxPeers`) is taken and `peer` knocks (its handshake, or our own dial):
    /// which connection gives way, if any. A question, not an input: nothing changes until
    /// the driver closes the one named and reports the newcomer `connected`.
    pub fn admit(&self, peer: Id) -> Admission {
        // A newcomer that would become our successor or predecessor takes the place of the
        // neighbour it displaces: otherwise a node whose table is full of its neighbours
        // could never get a new one (a joiner landing next to it would wait forever).
        // A routing peer beats a connection that only carries requests in flight (those fail
        // and retry): else a node whose replicas lie beyond its table would keep dialling
        // them and never make room for its own successor.
        let routing = self.core.routing_set_with(Some(peer));
        let kept: std::collections::HashSet<Id> = if routing.contains(&peer) { routing.into_iter().collect() } else { self.kept(Some(peer)) };
        self.core.links.admit(peer, |id| kept.contains(&id), self.core.chord.is_none())
    }

    /// The connections we must keep: peers we wait on, and the routing set that fits the
    /// table (`Core::routing_set_with` the newcomer knocking, if any).
    fn kept(&self, newcomer: Option<Id>) -> std::collections::HashSet<Id> {
        let mut kept: std::collections::HashSet<Id> = self.io.requests.values().map(|r| r.to.id).collect();
        kept.extend(self.core.routing_set_with(newcomer));
        kept
    }

    /// A connection to `peer` broke (reset, or ended without a goodbye): every request in
    /// flight to it fails with `error`, and if it is a routing neighbour maintenance runs
    /// soon. `last`: no connection to it remains.
    pub fn peer_gone(&mut self, now: Now, peer: Id, error: Error, last: bool) {
        self.disconnected(now, peer, error, last, true);
    }

    /// A connection to `peer` was closed by one side on purpose (idle, making room, a
    /// goodbye): what waited on it fails with `error`; the peer is fine, and the next request
    /// to it dials again.
    pub fn peer_closed(&mut self, now: Now, peer: Id, error: Error, last: bool) {
        self.disconnected(now, peer, error, last, false);
    }

    fn disconnected(&mut self, now: Now, peer: Id, error: Error, last: bool, lost: bool) {
        self.core.now = now.mono;
        if last {
            self.core.links.closed(peer);
            self.core.watch.client_gone(peer);
        }
        let mut failed: Vec<ReqId> = self.io.requests.iter().filter(|(_, r)| r.to.id == peer).map(|(id, _)| *id).collect();
        failed.sort_unstable();
        // Closed on purpose (a full table made room, an idle close, a goodbye): the peer is
        // alive, only busy. Failing its requests as unreachable would make stabilize forget a
        // live successor and the predecessor check a live predecessor — at full tables, where
        // one node's eviction is its neighbour's lost successor, rings came apart.
        let error = if lost { error } else { Error::Rejected { code: "busy".into(), reason: format!("{error}: closed on purpose, the peer is alive"), elsewhere: Vec::new() } };
        for id in failed {
            let outstanding = self.io.requests.remove(&id).expect("listed");
            self.queue.push_back((outstanding.task, Input::Reply(id, Err(error.clone()))));
        }
        if lost && self.core.ring.as_ref().is_some_and(|r| r.knows(peer)) {
            self.core.maintenance_due = true;
        }
        self.run(now);
    }

    /// A one-way message for the ring arrived from `from`: an `Event` (from a key's owner, or
    /// from the member a client is attached to) or a `Subscribe`. Only members send events
    /// and pass subscriptions on: a peer not known as a member is asked first (see `verify`),
    /// and a client's word counts only for itself.
    pub fn handle_message(&mut self, now: Now, from: &NodeRef, message: crate::protocol::Message) {
        use crate::protocol::Message;
        self.core.now = now.mono;
        if matches!(message, Message::Event { .. } | Message::Subscribe { .. }) {
            let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
            events::on_message(&mut cx, from, message);
            self.run_spawned(now);
        }
    }

    /// This node's user watches the keys starting with one of `prefixes` (`[b""]`: every key;
    /// none: it stopped listening). The subscription reaches the ring now and is renewed
    /// while it lasts (see `watch`).
    pub fn watch(&mut self, now: Now, prefixes: Vec<Vec<u8>>) {
        self.core.now = now.mono;
        self.core.watch.set_own(prefixes);
        let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
        watch::announce_if_due(&mut cx);
        self.run_spawned(now);
    }

    /// Someone we trust told us of a ring member: the user (a contact it gave), or a member we
    /// know advertising its peers (see [`Engine::trusts_adverts_of`]). Not for a node's own
    /// claim to be a member (a handshake): [`Engine::connected`] checks that first.
    pub fn learn_member(&mut self, node: &NodeRef) {
        self.core.learn(node);
    }

    /// Are the members that `peer` advertises (peer exchange) worth learning? Only if it is a
    /// member we know (routing, view or contacts), and then at most
    /// [`crate::config::ADVERTS_LEARNED_PER_MESSAGE`] of one frame: anyone else could fill our
    /// view with made-up members that reads and rejoins would then try.
    pub fn trusts_adverts_of(&self, peer: Id) -> bool {
        self.core.chord.is_some() && self.core.knows_member(peer)
    }

    /// Time has passed: fail overdue requests, wake sleeping machines, run maintenance.
    pub fn handle_timeout(&mut self, now: Now) {
        self.core.now = now.mono;
        self.probe_silent_peers(now);
        while let Some(Reverse((at, id))) = self.io.deadlines.peek().copied() {
            if at > now.mono {
                break;
            }
            self.io.deadlines.pop();
            if let Some(outstanding) = self.io.requests.remove(&id) {
                let peer = &outstanding.to;
                let timeout = self.core.request_timeout;
                let error = Error::Timeout(format!("no answer from {}:{} within {timeout} ms", peer.host, peer.port));
                self.queue.push_back((outstanding.task, Input::Reply(id, Err(error))));
            }
        }
        while let Some(Reverse((at, task))) = self.io.timers.peek().copied() {
            if at > now.mono {
                break;
            }
            self.io.timers.pop();
            self.queue.push_back((task, Input::Timer));
        }
        self.run(now);
        if self.core.chord.is_some() && now.mono >= self.schedule.next_tick {
            self.tick(now);
        }
    }

    /// Requests that have waited half the failure timeout on a peer that said nothing since
    /// they were sent, or since it last spoke: probe that peer (once at a time).
    fn probe_silent_peers(&mut self, now: Now) {
        while let Some(Reverse((at, id))) = self.io.overdue.peek().copied() {
            if at > now.mono {
                break;
            }
            self.io.overdue.pop();
            let Some(outstanding) = self.io.requests.get_mut(&id) else { continue };
            if outstanding.probed {
                continue;
            }
            let peer = outstanding.to.clone();
            // It spoke since we asked, within the last half failure timeout (perhaps just
            // before it fell silent): it must keep speaking while we wait, or be probed.
            let rearm_at = self.core.last_heard.get(&peer.id).filter(|heard| **heard >= outstanding.sent_at).map(|heard| heard + self.core.failure_timeout / 2);
            if let Some(rearm_at) = rearm_at.filter(|rearm_at| *rearm_at > now.mono) {
                outstanding.overdue_at = rearm_at;
                self.io.overdue.push(Reverse((rearm_at, id)));
                continue;
            }
            outstanding.probed = true;
            if self.core.probing.insert(peer.id) {
                self.launch(now, Box::new(Probe::overdue(peer)), Sink::Detached);
            }
        }
    }

    fn launch(&mut self, now: Now, machine: Box<dyn Machine>, sink: Sink) {
        let id = self.io.next_id();
        self.tasks.insert(id, Task { machine: Some(machine), sink });
        self.queue.push_back((id, Input::Start));
        self.run(now);
    }

    /// Feed queued inputs to their machines until none is left.
    fn run(&mut self, now: Now) {
        while let Some((id, input)) = self.queue.pop_front() {
            let Some(mut machine) = self.tasks.get_mut(&id).and_then(|t| t.machine.take()) else { continue };
            let step = {
                let mut cx = Cx::new(&mut self.core, &mut self.io, now, id);
                machine.step(&mut cx, input)
            };
            for (task, id, error) in std::mem::take(&mut self.io.failures) {
                self.queue.push_back((task, Input::Reply(id, Err(error))));
            }
            for (child, parent, child_machine) in std::mem::take(&mut self.io.spawned) {
                self.tasks.insert(child, Task { machine: Some(child_machine), sink: Sink::Parent(parent) });
                self.queue.push_back((child, Input::Start));
            }
            match step {
                Step::Pending => {
                    if let Some(task) = self.tasks.get_mut(&id) {
                        task.machine = Some(machine);
                    }
                }
                Step::Done(outcome) => {
                    if let Some(task) = self.tasks.remove(&id) {
                        self.deliver(id, task.sink, outcome);
                    }
                }
            }
        }
        self.after_input(now);
    }

    fn deliver(&mut self, id: TaskId, sink: Sink, outcome: Outcome) {
        match sink {
            Sink::Parent(parent) => self.queue.push_back((parent, Input::Child(id, outcome))),
            Sink::Op(op) => {
                let result = match outcome {
                    Outcome::Op(result) => result,
                    other => Err(Error::Protocol(format!("operation ended with {other:?}"))),
                };
                self.io.actions.push_back(Action::Done { op, result });
            }
            Sink::Reply(reply) => {
                let body = match outcome {
                    Outcome::Response(response) => response,
                    other => Response::Error { code: "internal".into(), message: format!("request ended with {other:?}") },
                };
                self.io.actions.push_back(Action::Respond { to: reply, body });
            }
            Sink::Duty(duty) => {
                self.schedule.running.remove(&duty);
            }
            Sink::Detached => {}
        }
    }

    /// A routing node went away or the predecessor changed: run maintenance soon, but no more
    /// often than eight times a period.
    fn after_input(&mut self, now: Now) {
        if std::mem::take(&mut self.core.maintenance_due) {
            self.core.stir();
            let interval = self.base_interval();
            let soonest = (self.schedule.last_tick + interval / 8).max(now.mono);
            self.schedule.next_tick = self.schedule.next_tick.min(soonest);
        }
    }

    /// The configured maintenance period (`stabilizeMs`).
    fn base_interval(&self) -> Millis {
        self.core.chord.as_ref().map_or(u64::MAX / 4, |c| c.stabilize_interval.as_millis() as u64)
    }

    /// The period of the next round: `stabilizeMs` while the routing state changes, then
    /// doubling with each further `CALM_AFTER_MS` of calm, up to [`MAX_CALM_SLOWDOWN`] times
    /// (2 s at the default 250 ms). Failures of the peers a node waits on are still found in
    /// the failure timeout (requests are probed when overdue, see `detector`); what slows is
    /// noticing an idle neighbour's death, and the fix-fingers and anti-entropy rounds.
    fn interval(&self) -> Millis {
        let base = self.base_interval();
        let calm = self.core.now.saturating_sub(self.core.calm_since);
        let doublings = (calm / CALM_AFTER_MS).min(MAX_CALM_SLOWDOWN.trailing_zeros() as u64);
        base.saturating_mul(1 << doublings)
    }

    /// The period plus up to a quarter of it at random, so nodes do not fall into lockstep.
    fn next_interval(&mut self) -> Millis {
        let interval = self.interval();
        if interval >= u64::MAX / 8 {
            return interval;
        }
        interval + self.core.rng.gen_range(0..=interval / 4)
    }

    /// One maintenance round: start each duty that is due and not still running.
    fn tick(&mut self, now: Now) {
        self.schedule.last_tick = now.mono;
        self.schedule.next_tick = now.mono + self.next_interval();
        self.core.cache.expire(now.mono);
        self.core.read_leases.expire(now.mono);
        let mut cx = Cx::new(&mut self.core, &mut self.io, now, 0);
        watch::announce_if_due(&mut cx);
        if !cx.core.unproven.is_empty() {
            events::check_unproven(&mut cx);
        }
        self.run_spawned(now);
        if !self.core.is_member() {
            if self.core.client_lost_ring() {
                self.start_duty(now, Duty::Contacts, Box::<ProbeContacts>::default());
            }
            return;
        }
        if self.core.watch.needs_pull() && self.core.ring.as_ref().is_some_and(|r| !r.is_alone()) {
            // Just joined: copy the subscribers, and tell the ring of our own.
            self.core.watch.renew_soon();
            self.start_duty(now, Duty::Subscriptions, Box::<PullSubscriptions>::default());
        }
        self.schedule.round += 1;
        let round = self.schedule.round;
        if let Some(plan) = self.stranded() {
            self.start_duty(now, Duty::Rejoin, Box::new(plan));
        }
        self.start_duty(now, Duty::Stabilize, Box::<Stabilize>::default());
        self.start_duty(now, Duty::CheckPredecessor, Box::<CheckPredecessor>::default());
        self.start_duty(now, Duty::FixFingers, Box::<FixFingers>::default());
        self.start_duty(now, Duty::Members, Box::<gossip::MemberSync>::default());
        if self.core.held.demanded_lately(now.mono) {
            self.start_duty(now, Duty::Delegations, Box::<replica_read::KeepDelegations>::default());
        }
        if !self.core.contacts.is_empty() {
            self.start_duty(now, Duty::Contacts, Box::<ProbeContacts>::default());
        }
        if round.is_multiple_of(SYNC_EVERY_ROUNDS) || self.core.arc.take_sync_wanted() {
            self.start_duty(now, Duty::Sync, Box::<SyncReplicas>::default());
        }
        if round.is_multiple_of(STRAY_EVERY_ROUNDS) {
            self.core.members.expire(now.mono);
            let lease_ttl = self.interval() * SYNC_EVERY_ROUNDS * LEASE_SYNC_PERIODS;
            self.start_duty(now, Duty::Strays, Box::new(HandOffStrays::new(lease_ttl)));
        }
        self.close_idle(now);
        if round.is_multiple_of(TOMBSTONE_EVERY_ROUNDS) {
            let horizon = now.wall.saturating_sub(TOMBSTONE_HORIZON.as_millis() as u64);
            self.core.store.collect_tombstones(horizon);
        }
    }

    /// Close connections to members outside the routing set that served nothing lately.
    fn close_idle(&mut self, now: Now) {
        let kept = self.kept(None);
        for peer in self.core.links.idle(now.mono, |id| kept.contains(&id)) {
            self.core.links.closed(peer);
            self.io.actions.push_back(Action::Disconnect { peer, reason: "idle: not in the routing set".into() });
        }
    }

    fn start_duty(&mut self, now: Now, duty: Duty, machine: Box<dyn Machine>) {
        if self.schedule.running.contains_key(&duty) {
            return;
        }
        let id = self.io.next_id();
        self.schedule.running.insert(duty, id);
        self.tasks.insert(id, Task { machine: Some(machine), sink: Sink::Duty(duty) });
        self.queue.push_back((id, Input::Start));
        self.run(now);
    }

    /// A lone member that knows other members: how it rejoins them — through a live member it
    /// was told of, else through whichever of a few members of its view (and its freshest
    /// contact) turns out to be in a ring (see `Rejoin`).
    fn stranded(&mut self) -> Option<Rejoin> {
        let ring = self.core.ring.as_ref()?;
        if !(ring.is_alone() && ring.predecessor().is_none()) {
            self.core.rejoin_via = None;
            self.core.restored = false;
            self.core.seeding = false;
            self.core.had_ring = true;
            self.core.join_failed = false;
            return None;
        }
        // Alone: when it is in a ring again it copies the subscribers anew.
        self.core.watch.pulled(false);
        // A lone node that never had a ring is the first of one: others join it.
        if !self.core.rejoining() {
            return None;
        }
        if let Some(node) = self.core.rejoin_via.take() {
            return Some(Rejoin::through(node));
        }
        let mut candidates: Vec<NodeRef> = self.core.view.values().cloned().collect();
        // A few at random: a restarted node's view is mostly its former neighbours.
        for i in 0..candidates.len().min(REJOIN_PROBES) {
            let pick = self.core.rng.gen_range(i..candidates.len());
            candidates.swap(i, pick);
        }
        candidates.truncate(REJOIN_PROBES);
        if let Some(contact) = self.core.contacts.freshest().filter(|c| !candidates.iter().any(|n| n.id == c.id)) {
            candidates.push(contact);
        }
        (!candidates.is_empty()).then(|| Rejoin::probing(candidates))
    }

    /// Every node routing needs a connection to (fingers, successors, predecessor).
    pub fn routing_nodes(&self) -> Vec<NodeRef> {
        self.core.ring.as_ref().map(|r| r.known_nodes()).unwrap_or_default()
    }

    /// What this node reports about itself (the answer to `Info`), without the driver's
    /// figures: connections and metrics are the driver's to fill in.
    pub fn member_info(&self) -> MemberInfo {
        let core = &self.core;
        let mut info = MemberInfo {
            node: core.me.clone(),
            member: core.is_member(),
            predecessor: None,
            successors: Vec::new(),
            fingers: Vec::new(),
            known: core.view.values().take(MAX_KNOWN_IN_INFO).cloned().collect(),
            keys: core.store.live_len() as u64,
            primary_keys: 0,
            bytes: core.store.bytes() as u64,
            connections: 0,
            ring_size_estimate: 1.0,
            metrics: Default::default(),
        };
        if let Some(ring) = &core.ring {
            info.predecessor = ring.predecessor().cloned();
            info.successors = ring.successors().to_vec();
            info.fingers = ring.distinct_fingers();
            info.ring_size_estimate = ring.estimated_ring_size();
            info.primary_keys = ring.primary_arc().map_or(0, |(from, to)| core.store.count_live_in(from, to)) as u64;
        }
        info
    }

    /// The live value this node holds for `key`, without routing.
    pub fn local_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.core.store.get(key).map(|(value, _)| value.to_vec())
    }

    pub fn stats(&self) -> Stats {
        let counters = &self.core.counters;
        let mut stats = Stats {
            member: self.core.is_member(),
            keys: self.core.store.live_len(),
            operations: counters.ops,
            mean_redirects: counters.op_redirects as f64 / counters.ops.max(1) as f64,
            mean_hops: counters.op_hops as f64 / counters.ops.max(1) as f64,
            members: self.core.members.len(),
            lookups: counters.lookups,
            mean_lookup_hops: counters.lookup_hops as f64 / counters.lookups.max(1) as f64,
            events_forwarded: counters.events_forwarded,
            events_refused: counters.events_refused,
            subscribers: self.core.watch.subscribers() as u64,
            suspicions: counters.figures.suspicions,
            merges: counters.merges,
            contacts: self.core.contacts.len(),
            cache_hits: self.core.cache.hits,
            cache_misses: self.core.cache.misses,
            cache_entries: self.core.cache.len(),
            cache_bytes: self.core.cache.bytes(),
            leases_granted: counters.leases_granted,
            invalidations_sent: counters.invalidations_sent,
            lease_timeouts: counters.lease_timeouts,
            delegations_granted: counters.delegations_granted,
            replica_reads: counters.replica_reads,
            ..Stats::default()
        };
        if let Some(ring) = &self.core.ring {
            stats.predecessor = ring.predecessor().cloned();
            stats.successors = ring.successors().to_vec();
            stats.fingers = ring.distinct_fingers().len();
            stats.ring_size_estimate = ring.estimated_ring_size();
            stats.primary_keys = ring.primary_arc().map_or(0, |(from, to)| self.core.store.count_live_in(from, to));
        }
        stats
    }
}

#[cfg(test)]
mod tests;
