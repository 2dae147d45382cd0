//! The simulated network: one real `chord::engine::Engine` per node, a discrete-event queue of
//! message deliveries and timer wake-ups, and the faults a network can have — message loss,
//! delay distributions, partitions into groups, crashes and restarts, skewed wall clocks.
//!
//! Nothing here decides anything about the ring: every request, answer and timeout goes to the
//! node's engine exactly as the tokio driver (`chord-node`) would deliver it, and every action
//! the engine returns is executed the way the driver executes it. A run is a pure function of
//! its seed.
//!
//! Fault semantics, chosen to match TCP: a message to a crashed node fails fast (the sender
//! sees a refused connection one delay later, as after a RST); a message lost to the network
//! or blocked by a partition is silent, and the sender's engine times the request out.
//!
//! Connections are modelled as the node has them: a message to a node without a connection
//! first dials it, which costs a round trip before the message leaves, and both ends hold at
//! most `max_peers` connections. At the limit each end asks its engine which connection gives
//! way (`Engine::admit`, the node's own policy) or refuses (the dialer's request then fails
//! with `busy`). Engines hear of every connection opened and closed, and close the idle ones
//! themselves (`Action::Disconnect`), exactly as over real sockets.

use chord::config::ChordConfig;
use chord::engine::{Action, Admission, Engine, Millis, Notice, Now, OpId, OpOutput, ReplyTo, Restored, Settings, UserOp};
use chord::error::Error;
use chord::protocol::{encode, Message, Request, Response, Routed};
use chord::routing::{NodeRef, Routing};
use chord::Id;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

/// Wall clock of simulated time zero (2026-01-01), so versions look like real ones.
const EPOCH_MS: u64 = 1_767_225_600_000;

/// How long a message takes from one node to another.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Delay {
    Fixed(Millis),
    /// Uniform in `[low, high]` ms.
    Uniform(Millis, Millis),
    /// `base` plus an exponential tail of mean `mean` ms (a long-tailed network).
    Tail { base: Millis, mean: f64 },
}

impl Delay {
    fn sample(self, rng: &mut StdRng) -> Millis {
        match self {
            Delay::Fixed(ms) => ms,
            Delay::Uniform(low, high) => rng.gen_range(low..=high.max(low)),
            Delay::Tail { base, mean } => base + (-mean * (1.0 - rng.gen::<f64>()).ln()) as Millis,
        }
    }
}

/// Settings of a simulated network.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub seed: u64,
    pub chord: ChordConfig,
    pub request_timeout: Millis,
    pub failure_timeout: Millis,
    pub delay: Delay,
    /// Most connections one node holds (the node's `maxPeers`).
    pub max_peers: usize,
}

impl NetConfig {
    /// The node's defaults (3 replicas, 250 ms stabilize, 5 s request timeout), events off, a
    /// 1–3 ms network.
    pub fn new(seed: u64) -> NetConfig {
        NetConfig {
            seed,
            chord: ChordConfig { events: false, ..ChordConfig::default() },
            request_timeout: chord::config::DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
            failure_timeout: chord::config::DEFAULT_FAILURE_TIMEOUT.as_millis() as u64,
            delay: Delay::Uniform(1, 3),
            max_peers: chord::config::DEFAULT_MAX_PEERS,
        }
    }

    pub fn round_ms(&self) -> Millis {
        self.chord.stabilize_interval.as_millis() as Millis
    }
}

/// Traffic counted by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub state: u64,
    pub notify: u64,
    pub ping: u64,
    pub find_successor: u64,
    /// Membership anti-entropy requests (`Members`, `MemberEntries`) and their bytes, both ways.
    pub members: u64,
    pub member_bytes: u64,
    /// Every other request (data: get, write, replicate, sync, fetch, hand-off, page...).
    pub data: u64,
    /// Responses and one-way messages.
    pub other: u64,
    /// Messages lost to the network or a partition.
    pub dropped: u64,
    /// Requests to crashed nodes (refused).
    pub refused: u64,
    /// Connections dialed (each cost a round trip before its first message).
    pub dials: u64,
    /// Dials refused because an end's table was full of connections routing needs.
    pub busy: u64,
    /// Connections closed by their engines (idle, or to make room).
    pub closed: u64,
    /// Ring events sent (`Message::Event`, one per subscriber a change goes to), subscription
    /// messages sent (`Message::Subscribe`), and changes heard by listening nodes.
    pub events: u64,
    pub subscribes: u64,
    pub heard: u64,
}

impl Counters {
    /// Maintenance requests (stabilize, notify, ping, lookups).
    pub fn maintenance(&self) -> u64 {
        self.state + self.notify + self.ping + self.find_successor
    }

    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            state: self.state - earlier.state,
            notify: self.notify - earlier.notify,
            ping: self.ping - earlier.ping,
            find_successor: self.find_successor - earlier.find_successor,
            members: self.members - earlier.members,
            member_bytes: self.member_bytes - earlier.member_bytes,
            data: self.data - earlier.data,
            other: self.other - earlier.other,
            dropped: self.dropped - earlier.dropped,
            refused: self.refused - earlier.refused,
            dials: self.dials - earlier.dials,
            busy: self.busy - earlier.busy,
            closed: self.closed - earlier.closed,
            events: self.events - earlier.events,
            subscribes: self.subscribes - earlier.subscribes,
            heard: self.heard - earlier.heard,
        }
    }

    fn count(&mut self, request: &Request) {
        match request {
            Request::State => self.state += 1,
            Request::Notify(_) => self.notify += 1,
            Request::Ping => self.ping += 1,
            Request::FindSuccessor { .. } | Request::Relay { body: Routed::FindSuccessor { .. }, .. } => self.find_successor += 1,
            Request::Members { .. } | Request::MemberEntries { .. } => {
                self.members += 1;
                self.member_bytes += encode(&Message::Request { id: 0, body: request.clone() }).len() as u64;
            }
            _ => self.data += 1,
        }
    }

    /// Bytes of membership anti-entropy answers (as framed on the wire, before encryption).
    fn count_response(&mut self, response: &Response) {
        self.other += 1;
        if matches!(response, Response::MemberDigests(_) | Response::MemberEntries(_)) {
            self.member_bytes += encode(&Message::Response { id: 0, body: response.clone() }).len() as u64;
        }
    }
}

enum Event {
    Request { from: usize, to: usize, id: u64, body: Request },
    Response { from: usize, to: usize, id: u64, body: Response },
    OneWay { from: usize, to: usize, message: Message },
    /// The connection to a crashed node was refused.
    Refused { to: usize, id: u64, peer: String },
    /// A request could not be sent (no connection could be made).
    Failed { to: usize, id: u64, error: Error },
    Wake { node: usize },
}

struct Scheduled {
    at: Millis,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    /// Earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

struct SimNode {
    id: Id,
    engine: Option<Engine>,
    /// What a crashed node with a data folder kept, until it restarts on it.
    kept: Option<Restored>,
    /// Partition group: nodes in different groups cannot reach each other.
    group: u32,
    /// This node's wall clock minus true time.
    skew_ms: i64,
    /// The wake-up already queued for this node, if any.
    wake_at: Option<Millis>,
    /// The nodes it holds a connection to, by slot.
    links: std::collections::BTreeSet<usize>,
}

pub struct Sim {
    pub config: NetConfig,
    pub now: Millis,
    nodes: Vec<SimNode>,
    slot_of: HashMap<Id, usize>,
    /// Live nodes by id: the oracle's view of the ring.
    live: BTreeMap<Id, usize>,
    queue: BinaryHeap<Scheduled>,
    seq: u64,
    rng: StdRng,
    /// Share of messages lost, 0..1.
    pub loss: f64,
    pub counters: Counters,
    next_op: OpId,
    /// Finished user operations, by id, until taken.
    done: HashMap<OpId, Result<OpOutput, Error>>,
    /// Error notices the engines raised (node, code, message): a healthy ring raises none.
    pub errors: Vec<(Id, String, String)>,
}

impl Sim {
    pub fn new(config: NetConfig) -> Sim {
        let rng = StdRng::seed_from_u64(config.seed);
        Sim {
            config,
            now: 0,
            nodes: Vec::new(),
            slot_of: HashMap::new(),
            live: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            rng,
            loss: 0.0,
            counters: Counters::default(),
            next_op: 0,
            done: HashMap::new(),
            errors: Vec::new(),
        }
    }

    pub fn rng(&mut self) -> &mut StdRng {
        &mut self.rng
    }

    /// How other nodes address `id`: ids are addresses here, hosts are empty.
    pub fn node_ref(id: Id) -> NodeRef {
        NodeRef { id, host: String::new(), port: 0 }
    }

    fn clock(&self, slot: usize) -> Now {
        let wall = (EPOCH_MS + self.now) as i64 + self.nodes[slot].skew_ms;
        Now { mono: self.now, wall: wall.max(0) as u64 }
    }

    fn new_engine(&mut self, id: Id) -> Engine {
        let seed: u64 = self.rng.gen();
        let settings = Settings {
            me: Sim::node_ref(id),
            chord: Some(self.config.chord.clone()),
            request_timeout: self.config.request_timeout,
            failure_timeout: self.config.failure_timeout,
            seed,
            max_peers: self.config.max_peers,
            // Derived from the seed, so runs replay by seed (no secret matters in a simulation).
            secret: Settings::secret_from_seed(seed),
        };
        Engine::new(settings, Now { mono: self.now, wall: EPOCH_MS + self.now })
    }

    /// Start a node that is a ring of its own. Returns false if the id is taken.
    pub fn spawn(&mut self, id: Id) -> bool {
        if self.slot_of.contains_key(&id) {
            return false;
        }
        let engine = self.new_engine(id);
        let slot = self.nodes.len();
        self.nodes.push(SimNode { id, engine: Some(engine), kept: None, group: 0, skew_ms: 0, wake_at: None, links: Default::default() });
        self.slot_of.insert(id, slot);
        self.live.insert(id, slot);
        self.schedule_wake(slot);
        true
    }

    /// The node crashes silently: no goodbye, its state is gone.
    pub fn crash(&mut self, id: Id) {
        self.crash_many(&[id]);
    }

    /// These nodes crash at once. Peers connected to them — waiting on an answer, or naming
    /// them in their routing state — see those connections reset, as the kernel reports a
    /// dead process's sockets (unless a partition keeps the reset from arriving).
    pub fn crash_many(&mut self, ids: &[Id]) {
        self.crash_many_keeping(ids, false);
    }

    /// These nodes crash at once, each keeping what a node with a `dataDir` keeps on disk (its
    /// store, clock high-water mark and members) for [`Sim::restart_from_disk`].
    pub fn crash_keeping(&mut self, ids: &[Id]) {
        self.crash_many_keeping(ids, true);
    }

    fn crash_many_keeping(&mut self, ids: &[Id], keep: bool) {
        let mut dead = Vec::new();
        for id in ids {
            let Some(&slot) = self.slot_of.get(id) else { continue };
            if let Some(engine) = self.nodes[slot].engine.take() {
                self.nodes[slot].kept = keep.then(|| engine.into_restored());
                self.nodes[slot].wake_at = None;
                self.live.remove(id);
                dead.push(slot);
            }
        }
        // Their connections reset: the other ends hear of it, unless a partition keeps the
        // reset from arriving (then their requests time out).
        for slot in dead {
            for peer in std::mem::take(&mut self.nodes[slot].links) {
                self.nodes[peer].links.remove(&slot);
                if self.nodes[peer].group == self.nodes[slot].group {
                    let id = self.nodes[slot].id;
                    self.with_engine(peer, |engine, now| engine.peer_gone(now, id, Error::PeerGone("connection reset".into()), true));
                }
            }
        }
    }

    /// Open connections of node `id` (the oracle's count).
    pub fn connections(&self, id: Id) -> usize {
        self.slot_of.get(&id).map_or(0, |&slot| self.nodes[slot].links.len())
    }

    /// A connection from `from` to `to`, dialing one if there is none: whether one is open
    /// now, and whether it was just made (the message then waits a round trip). At either
    /// end's limit its engine chooses a connection to close, or the dial fails (`busy`).
    fn connect(&mut self, from: usize, to: usize) -> Result<bool, Error> {
        if self.nodes[from].links.contains(&to) {
            return Ok(false);
        }
        for (end, other) in [(from, to), (to, from)] {
            // As the transport does: ask, close the one named, until a slot is free.
            for _ in 0..4 {
                if self.nodes[end].links.len() < self.config.max_peers {
                    break;
                }
                let newcomer = self.nodes[other].id;
                let admission = self.nodes[end].engine.as_ref().map(|engine| engine.admit(newcomer));
                match admission {
                    Some(Admission::Evict(victim)) => match self.slot_of.get(&victim) {
                        Some(&victim) if self.nodes[end].links.contains(&victim) => self.disconnect(end, victim, "making room for a newcomer"),
                        // The engine names a connection the network no longer has: tell it.
                        _ => self.with_engine(end, |engine, now| engine.peer_gone(now, victim, Error::PeerGone("closed".into()), true)),
                    },
                    Some(Admission::Refuse(reason)) => {
                        self.counters.busy += 1;
                        // As the transport does: the refusing end names members to try instead
                        // (our own full table names none).
                        let elsewhere = if end == to { self.nodes[end].engine.as_ref().map(|e| e.elsewhere()).unwrap_or_default() } else { Vec::new() };
                        return Err(Error::Rejected { code: "busy".into(), reason, elsewhere });
                    }
                    None => return Err(Error::PeerGone("crashed".into())),
                }
            }
            if self.nodes[end].links.len() >= self.config.max_peers {
                self.counters.busy += 1;
                return Err(Error::Rejected { code: "busy".into(), reason: "no slot freed".into(), elsewhere: Vec::new() });
            }
        }
        self.counters.dials += 1;
        self.nodes[from].links.insert(to);
        self.nodes[to].links.insert(from);
        for (end, other) in [(from, to), (to, from)] {
            let peer = Sim::node_ref(self.nodes[other].id);
            let member = self.nodes[other].engine.as_ref().is_some_and(|e| e.is_member());
            self.with_engine(end, |engine, now| engine.connected(now, &peer, member));
        }
        Ok(true)
    }

    /// Close the connection between two nodes: both ends hear of it.
    fn disconnect(&mut self, a: usize, b: usize, reason: &str) {
        if !self.nodes[a].links.remove(&b) {
            return;
        }
        self.nodes[b].links.remove(&a);
        self.counters.closed += 1;
        for (end, other) in [(a, b), (b, a)] {
            let id = self.nodes[other].id;
            let error = Error::PeerGone(format!("connection closed: {reason}"));
            self.with_engine(end, |engine, now| engine.peer_closed(now, id, error, true));
        }
    }

    /// A crashed node comes back with the same id and an empty store and joins through
    /// `contact`, as a node restarted without a data folder is connected again by its user.
    pub fn restart(&mut self, id: Id, contact: Id) {
        let Some(&slot) = self.slot_of.get(&id) else { return };
        if self.nodes[slot].engine.is_some() {
            return;
        }
        let engine = self.new_engine(id);
        self.nodes[slot].engine = Some(engine);
        self.live.insert(id, slot);
        self.schedule_wake(slot);
        // As its user would: a fresh node (no data folder) joins by connecting to a member. A
        // lone node that merely knows a member and never had a ring is the first node of a
        // ring and waits for joiners; it does not go looking for one.
        self.start_op(id, UserOp::JoinThrough(Sim::node_ref(contact)));
    }

    /// A node crashed by [`Sim::crash_keeping`] restarts on what it kept, as a node restarts on
    /// its data folder: same id, same entries, a clock past its high-water mark, and the
    /// members it knew to rejoin through. Returns false if it kept nothing or is running.
    pub fn restart_from_disk(&mut self, id: Id) -> bool {
        let Some(&slot) = self.slot_of.get(&id) else { return false };
        if self.nodes[slot].engine.is_some() {
            return false;
        }
        let Some(kept) = self.nodes[slot].kept.take() else { return false };
        let mut engine = self.new_engine(id);
        engine.restore(kept);
        self.nodes[slot].engine = Some(engine);
        self.live.insert(id, slot);
        self.schedule_wake(slot);
        true
    }

    /// Node `id`'s user starts listening for changes of the keys under `prefixes` (an empty
    /// prefix: every key), as `on('add')` or `watch()` do.
    pub fn watch(&mut self, id: Id, prefixes: Vec<Vec<u8>>) {
        if let Some(&slot) = self.live.get(&id) {
            self.with_engine(slot, |engine, now| engine.watch(now, prefixes));
        }
    }

    /// Start a user operation at node `id`; take its result with [`Sim::take_result`].
    pub fn start_op(&mut self, id: Id, op: UserOp) -> Option<OpId> {
        let slot = *self.live.get(&id)?;
        self.next_op += 1;
        let op_id = self.next_op;
        self.with_engine(slot, |engine, now| engine.start_op(now, op_id, op));
        Some(op_id)
    }

    /// Whether operation `op` finished (its result waits for [`Sim::take_result`]).
    pub fn is_done(&self, op: OpId) -> bool {
        self.done.contains_key(&op)
    }

    pub fn take_result(&mut self, op: OpId) -> Option<Result<OpOutput, Error>> {
        self.done.remove(&op)
    }

    pub fn is_alive(&self, id: Id) -> bool {
        self.live.contains_key(&id)
    }

    pub fn live_count(&self) -> usize {
        self.live.len()
    }

    /// Live ids in ring order.
    pub fn live_ids(&self) -> Vec<Id> {
        self.live.keys().copied().collect()
    }

    /// Every node ever spawned, live or crashed.
    pub fn all_ids(&self) -> Vec<Id> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn random_live(&mut self) -> Option<Id> {
        if self.live.is_empty() {
            return None;
        }
        let index = self.rng.gen_range(0..self.live.len());
        self.live.keys().nth(index).copied()
    }

    /// Oracle: the live node that owns `position` (first live id at or after it, wrapping).
    pub fn owner_of(&self, position: Id) -> Option<Id> {
        self.live.range(position..).next().or_else(|| self.live.iter().next()).map(|(id, _)| *id)
    }

    pub fn engine(&self, id: Id) -> Option<&Engine> {
        self.nodes[*self.slot_of.get(&id)?].engine.as_ref()
    }

    pub fn engine_mut(&mut self, id: Id) -> Option<&mut Engine> {
        let slot = *self.slot_of.get(&id)?;
        self.nodes[slot].engine.as_mut()
    }

    pub fn routing(&self, id: Id) -> Option<&Routing> {
        self.engine(id)?.ring()
    }

    /// Put node `id` in partition group `group` (nodes of different groups cannot talk).
    pub fn set_group(&mut self, id: Id, group: u32) {
        if let Some(&slot) = self.slot_of.get(&id) {
            self.nodes[slot].group = group;
        }
    }

    /// Heal every partition.
    pub fn heal(&mut self) {
        for node in &mut self.nodes {
            node.group = 0;
        }
    }

    pub fn set_skew(&mut self, id: Id, skew_ms: i64) {
        if let Some(&slot) = self.slot_of.get(&id) {
            self.nodes[slot].skew_ms = skew_ms;
        }
    }

    /// Run every event up to and including time `until`.
    pub fn run_until(&mut self, until: Millis) {
        while self.queue.peek().is_some_and(|s| s.at <= until) {
            let scheduled = self.queue.pop().expect("peeked");
            self.now = scheduled.at;
            self.handle(scheduled.event);
        }
        self.now = self.now.max(until);
    }

    pub fn run_for(&mut self, duration: Millis) {
        let until = self.now + duration;
        self.run_until(until);
    }

    /// Run until operation `op` finished or `limit` ms passed.
    pub fn run_op(&mut self, op: OpId, limit: Millis) -> Option<Result<OpOutput, Error>> {
        let until = self.now + limit;
        while !self.done.contains_key(&op) {
            let Some(next) = self.queue.peek().map(|s| s.at) else { break };
            if next > until {
                break;
            }
            let scheduled = self.queue.pop().expect("peeked");
            self.now = scheduled.at;
            self.handle(scheduled.event);
        }
        self.take_result(op)
    }

    fn push(&mut self, at: Millis, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled { at, seq: self.seq, event });
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Request { from, to, id, body } => {
                let peer = Sim::node_ref(self.nodes[from].id);
                self.with_engine(to, |engine, now| engine.handle_request(now, &peer, ReplyTo { conn: from as u64, id }, body));
            }
            Event::Response { from, to, id, body } => {
                let peer = self.nodes[from].id;
                if std::env::var("SIM_TRACE").is_ok_and(|t| format!("{:08x}", (self.nodes[to].id.0 >> 96) as u32) == t) {
                    eprintln!("TRACE {} resp {id}: {}", self.now, format!("{body:?}").chars().take(300).collect::<String>());
                }
                self.with_engine(to, |engine, now| engine.handle_response(now, peer, id, body));
            }
            Event::OneWay { from, to, message } => {
                if matches!(message, Message::Event { .. } | Message::Subscribe { .. }) {
                    let sender = Sim::node_ref(self.nodes[from].id);
                    self.with_engine(to, |engine, now| engine.handle_message(now, &sender, message));
                }
            }
            Event::Refused { to, id, peer } => {
                let error = Error::Io { code: "ECONNREFUSED", message: format!("cannot connect to {peer}: refused") };
                self.with_engine(to, |engine, now| engine.request_failed(now, id, error));
            }
            Event::Failed { to, id, error } => {
                if std::env::var("SIM_TRACE").is_ok_and(|t| format!("{:08x}", (self.nodes[to].id.0 >> 96) as u32) == t) {
                    eprintln!("TRACE {} failed {id}: {error:?}", self.now);
                }
                self.with_engine(to, |engine, now| engine.request_failed(now, id, error))
            }
            Event::Wake { node } => {
                if self.nodes[node].wake_at == Some(self.now) {
                    self.nodes[node].wake_at = None;
                    self.with_engine(node, |engine, now| engine.handle_timeout(now));
                }
            }
        }
    }

    /// Give one input to a live node's engine, then carry out its actions.
    fn with_engine(&mut self, slot: usize, input: impl FnOnce(&mut Engine, Now)) {
        let now = self.clock(slot);
        let Some(engine) = self.nodes[slot].engine.as_mut() else { return };
        input(engine, now);
        let mut actions = Vec::new();
        while let Some(action) = engine.poll_action() {
            actions.push(action);
        }
        for action in actions {
            self.execute(slot, action);
        }
        self.schedule_wake(slot);
    }

    fn schedule_wake(&mut self, slot: usize) {
        let Some(engine) = self.nodes[slot].engine.as_mut() else { return };
        let Some(at) = engine.poll_timeout() else { return };
        let at = at.max(self.now);
        if self.nodes[slot].wake_at.is_none_or(|queued| at < queued) {
            self.nodes[slot].wake_at = Some(at);
            self.push(at, Event::Wake { node: slot });
        }
    }

    /// Can a message from `from` reach `to` now? Partitions and loss decide.
    fn passes(&mut self, from: usize, to: usize) -> bool {
        if self.nodes[from].group != self.nodes[to].group || (self.loss > 0.0 && self.rng.gen_bool(self.loss)) {
            self.counters.dropped += 1;
            return false;
        }
        true
    }

    fn execute(&mut self, slot: usize, action: Action) {
        let delay = self.config.delay.sample(&mut self.rng);
        let mut at = self.now + delay.max(1);
        match action {
            Action::Request { to, id, body } => {
                self.counters.count(&body);
                if std::env::var("SIM_TRACE").is_ok_and(|t| format!("{:08x}", (self.nodes[slot].id.0 >> 96) as u32) == t) {
                    eprintln!("TRACE {} req {id} to {:08x}: {body:?}", self.now, (to.id.0 >> 96) as u32);
                }
                let Some(&target) = self.slot_of.get(&to.id) else { return };
                if self.nodes[target].engine.is_none() {
                    // A crashed node's port refuses connections, unless the network is cut.
                    if self.nodes[slot].group == self.nodes[target].group {
                        self.counters.refused += 1;
                        self.push(at, Event::Refused { to: slot, id, peer: to.id.to_hex() });
                    }
                    return;
                }
                if self.nodes[slot].group != self.nodes[target].group && !self.nodes[slot].links.contains(&target) {
                    // A dial across a partition: silence (the request times out).
                    self.counters.dropped += 1;
                    return;
                }
                match self.connect(slot, target) {
                    // A new connection: its handshake takes a round trip first.
                    Ok(true) => at += 2 * delay.max(1),
                    Ok(false) => {}
                    Err(error) => {
                        self.push(at, Event::Failed { to: slot, id, error });
                        return;
                    }
                }
                if self.passes(slot, target) {
                    self.push(at, Event::Request { from: slot, to: target, id, body });
                }
            }
            Action::Respond { to, body } => {
                self.counters.count_response(&body);
                let target = to.conn as usize;
                // An answer goes back on the connection the request came on, if it still stands.
                if self.nodes[slot].links.contains(&target) && self.passes(slot, target) {
                    self.push(at, Event::Response { from: slot, to: target, id: to.id, body });
                }
            }
            Action::Send { to, message } => {
                self.counters.other += 1;
                match message {
                    Message::Event { .. } => self.counters.events += 1,
                    Message::Subscribe { .. } => self.counters.subscribes += 1,
                    _ => {}
                }
                if let Some(&target) = self.slot_of.get(&to.id) {
                    if self.nodes[target].engine.is_some() && self.connect(slot, target).is_ok() && self.passes(slot, target) {
                        self.push(at, Event::OneWay { from: slot, to: target, message });
                    }
                }
            }
            Action::Disconnect { peer, reason } => {
                if let Some(&target) = self.slot_of.get(&peer) {
                    self.disconnect(slot, target, &reason);
                }
            }
            Action::Notice(Notice::Error { code, message }) => self.errors.push((self.nodes[slot].id, code, message)),
            Action::Notice(Notice::Added(_) | Notice::Deleted(_)) => self.counters.heard += 1,
            Action::ToClients { .. } => {}
            // Simulated nodes keep their stores in memory: the engine never asks for a commit.
            Action::Persist { .. } => unreachable!("a store in memory needs no commit"),
            Action::Done { op, result } => {
                self.done.insert(op, result);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u128) -> Vec<Id> {
        (1..=n).map(|i| Id(i * (u128::MAX / (n + 1)))).collect()
    }

    #[test]
    fn nodes_joining_one_by_one_form_a_ring_and_answer_lookups() {
        let mut sim = Sim::new(NetConfig::new(1));
        let ids = ids(8);
        sim.spawn(ids[0]);
        for &id in &ids[1..] {
            sim.spawn(id);
            let op = sim.start_op(id, UserOp::JoinThrough(Sim::node_ref(ids[0]))).unwrap();
            assert!(matches!(sim.run_op(op, 10_000), Some(Ok(_))));
        }
        sim.run_for(5_000);
        for (i, &id) in ids.iter().enumerate() {
            let routing = sim.routing(id).unwrap();
            assert_eq!(routing.successor().id, ids[(i + 1) % ids.len()]);
        }
        let op = sim.start_op(ids[3], UserOp::Lookup(b"some key".to_vec())).unwrap();
        let Some(Ok(OpOutput::Lookup(info))) = sim.run_op(op, 10_000) else { panic!("lookup failed") };
        assert_eq!(Some(info.owner.id), sim.owner_of(Id::of_key(b"some key")));
    }

    #[test]
    fn a_request_to_a_crashed_node_is_refused_and_a_partitioned_one_times_out() {
        let mut sim = Sim::new(NetConfig::new(2));
        let ids = ids(3);
        for &id in &ids {
            sim.spawn(id);
        }
        for &id in &ids[1..] {
            let op = sim.start_op(id, UserOp::JoinThrough(Sim::node_ref(ids[0]))).unwrap();
            sim.run_op(op, 10_000);
        }
        sim.run_for(2_000);
        sim.crash(ids[2]);
        let before = sim.counters;
        sim.run_for(1_000);
        assert!(sim.counters.since(&before).refused > 0 || sim.routing(ids[1]).unwrap().successors().iter().all(|s| s.id != ids[2]));
        sim.set_group(ids[1], 1);
        let before = sim.counters;
        sim.run_for(1_000);
        assert!(sim.counters.since(&before).dropped > 0);
    }
}
