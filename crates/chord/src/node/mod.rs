//! The node: the only part of the engine that does I/O. One [`Node`] listens on a TCP port,
//! keeps authenticated connections to peers, relays mesh messages and, when it is a ring
//! member, runs Chord maintenance and serves its share of the dict.
//!
//! Shape: per connection, a reader task decodes frames and answers cheap requests inline, and a
//! writer task drains a bounded queue; operations that wait on other nodes (lookups, replicated
//! writes, maintenance) run as their own tasks. The node's state sits behind one std `Mutex`
//! that is never held across an `.await` (as in mini-redis): the pure modules make each critical
//! section a few map operations, and this avoids a message hop per frame that an actor would add.
//!
//! Entry points: [`Node::start`], then the mesh calls in this file and the dict calls in
//! [`chord`].

pub mod chord;
mod conn;
mod events;
mod info;
pub mod mesh;

use crate::id::Id;
use crate::metrics::Metrics;
use crate::protocol::{self, Hello, Message, Request, Response, PROTOCOL_VERSION};
use crate::routing::{NodeRef, Routing};
use crate::store::Store;
use crate::version::Clock;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch, Notify};

pub use events::{Event, Incoming, PeerInfo};

/// Default bound on open peer connections (inbound and outbound together).
pub const DEFAULT_MAX_PEERS: usize = 64;
/// A connection must complete its handshake within this time or be dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default wait for any single response from a peer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Frames queued for one peer before it is considered too slow and disconnected.
pub const SEND_QUEUE_FRAMES: usize = 8192;
/// Connections allowed to be mid-handshake at once, beyond `max_peers`.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Broadcast ids remembered for de-duplication.
pub const SEEN_BROADCASTS: usize = 65_536;
/// Peers advertised in one peer-exchange frame.
pub const PEER_EXCHANGE_LIMIT: usize = 32;

/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Address advertised to peers, when it differs from the bound one (NAT, 0.0.0.0).
    pub out_addr: Option<(String, u16)>,
    pub subnet: String,
    pub encryption: String,
    pub max_peers: usize,
    pub max_frame_bytes: usize,
    pub request_timeout: Duration,
    /// Connect to peers learned through peer exchange, up to `max_peers`.
    pub peer_exchange: bool,
    /// Present for a ChordSocket.
    pub chord: Option<chord::ChordConfig>,
}

impl Config {
    pub fn new(host: impl Into<String>, port: u16) -> Config {
        Config {
            host: host.into(),
            port,
            out_addr: None,
            subnet: String::new(),
            encryption: "Plaintext".into(),
            max_peers: DEFAULT_MAX_PEERS,
            max_frame_bytes: protocol::DEFAULT_MAX_FRAME_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            peer_exchange: true,
            chord: None,
        }
    }
}

/// The protocol id: a hash of the protocol version, subnet and encryption. Nodes only talk to
/// nodes with the same id.
pub fn protocol_id(subnet: &str, encryption: &str) -> Id {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"chordnet-protocol\0");
    hasher.update(&PROTOCOL_VERSION.to_be_bytes());
    hasher.update(subnet.as_bytes());
    hasher.update(b"\0");
    hasher.update(encryption.as_bytes());
    Id::from_slice(&hasher.finalize().as_bytes()[..16]).expect("16 bytes")
}

/// Every way a node operation can fail; `code()` is the stable name shown to users.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeError {
    #[error("the socket is closed")]
    Closed,
    #[error("protocol mismatch: our subnet {ours:?} / {our_encryption}, theirs {theirs:?} ({reason})")]
    ProtocolMismatch { ours: String, our_encryption: String, theirs: String, reason: String },
    #[error("peer refused the connection ({code}): {reason}")]
    Rejected { code: String, reason: String },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("{message}")]
    Io { code: &'static str, message: String },
    #[error("peer {0} went away before answering")]
    PeerGone(String),
    #[error("key is {size} bytes; the limit is {limit}")]
    KeyTooLarge { size: usize, limit: usize },
    #[error("value is {size} bytes; the limit is {limit}")]
    ValueTooLarge { size: usize, limit: usize },
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("peer broke the protocol: {0}")]
    Protocol(String),
}

impl NodeError {
    pub fn code(&self) -> &'static str {
        match self {
            NodeError::Closed => "ERR_SOCKET_CLOSED",
            NodeError::ProtocolMismatch { .. } => "ERR_PROTOCOL_MISMATCH",
            NodeError::Rejected { .. } => "ERR_PEER_REJECTED",
            NodeError::Timeout(_) => "ERR_TIMEOUT",
            NodeError::Io { code, .. } => code,
            NodeError::PeerGone(_) => "ERR_PEER_GONE",
            NodeError::KeyTooLarge { .. } => "ERR_KEY_TOO_LARGE",
            NodeError::ValueTooLarge { .. } => "ERR_VALUE_TOO_LARGE",
            NodeError::Unavailable(_) => "ERR_UNAVAILABLE",
            NodeError::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
            NodeError::Protocol(_) => "ERR_PROTOCOL",
        }
    }

    pub(crate) fn io(error: std::io::Error, context: &str) -> NodeError {
        use std::io::ErrorKind::*;
        let code = match error.kind() {
            AddrInUse => "EADDRINUSE",
            AddrNotAvailable => "EADDRNOTAVAIL",
            ConnectionRefused => "ECONNREFUSED",
            ConnectionReset => "ECONNRESET",
            PermissionDenied => "EACCES",
            TimedOut => "ETIMEDOUT",
            _ => "ERR_IO",
        };
        NodeError::Io { code, message: format!("{context}: {error} ({code})") }
    }

    /// Failures that mean "that peer is unreachable", as opposed to a refusal or our own state.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, NodeError::PeerGone(_) | NodeError::Timeout(_) | NodeError::Io { .. })
    }
}

pub type NodeResult<T> = Result<T, NodeError>;

/// A running node. Cheap to clone; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    config: Config,
    me: NodeRef,
    protocol_id: Id,
    member: AtomicBool,
    state: Mutex<State>,
    pending: Mutex<HashMap<u64, (u64, oneshot::Sender<Response>)>>,
    next_request: AtomicU64,
    next_conn: AtomicU64,
    events: events::EventQueue,
    shutdown: watch::Sender<bool>,
    /// Wakes the maintenance loop early (a routing peer disconnected, the predecessor changed).
    maintenance_wake: Notify,
    /// Anti-entropy should run at the next maintenance round (our arc or replicas changed).
    sync_wanted: AtomicBool,
    listener_done: Mutex<Option<oneshot::Receiver<()>>>,
    handshakes: AtomicU64,
    /// Counters and latency histograms (relaxed atomics: updated without the state lock).
    metrics: Metrics,
}

pub(crate) struct State {
    closed: bool,
    conns: HashMap<u64, Conn>,
    by_node: HashMap<Id, u64>,
    dialing: HashMap<Id, Vec<oneshot::Sender<NodeResult<u64>>>>,
    seen: SeenSet,
    ring: Option<Routing>,
    store: Store,
    clock: Clock,
    /// Ring members we know of (from handshakes, peer exchange, answers): first-hop guesses.
    view: BTreeMap<Id, NodeRef>,
    /// Location cache: owner id -> (its predecessor id, owner), from owners' answers.
    arcs: BTreeMap<Id, (Id, NodeRef)>,
    /// Replica leases: owner id -> (start of its arc, last anti-entropy from it). Entries outside
    /// our own arc and every fresh lease are strays (left by a stand-in write or an old ring
    /// shape) and are handed to their owner, then dropped.
    leases: HashMap<Id, (Id, std::time::Instant)>,
    stats: Counters,
}

#[derive(Default, Clone, Debug)]
pub(crate) struct Counters {
    ops: u64,
    op_redirects: u64,
    lookups: u64,
    lookup_hops: u64,
}

pub(crate) struct Conn {
    peer: NodeRef,
    member: bool,
    outbound: bool,
    tx: mpsc::Sender<conn::Outgoing>,
    reader: tokio::task::AbortHandle,
}

/// Remembers recent broadcast ids so each is delivered and forwarded once.
pub(crate) struct SeenSet {
    ids: HashSet<Id>,
    order: VecDeque<Id>,
}

impl SeenSet {
    fn new() -> SeenSet {
        SeenSet { ids: HashSet::new(), order: VecDeque::new() }
    }

    /// True the first time an id is offered.
    pub(crate) fn first_time(&mut self, id: Id) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > SEEN_BROADCASTS {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

pub(crate) fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

impl Node {
    /// Bind the port and start serving. Port 0 picks a free port.
    pub async fn start(config: Config) -> NodeResult<Node> {
        if config.max_frame_bytes < protocol::MIN_FRAME_BYTES {
            return Err(NodeError::InvalidArgument(format!(
                "maxFrameBytes must be at least {} (got {})",
                protocol::MIN_FRAME_BYTES,
                config.max_frame_bytes
            )));
        }
        if config.max_peers == 0 {
            return Err(NodeError::InvalidArgument("maxPeers must be at least 1".into()));
        }
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|e| NodeError::io(e, &format!("cannot listen on {}:{}", config.host, config.port)))?;
        let bound: SocketAddr = listener.local_addr().map_err(|e| NodeError::io(e, "cannot read the bound address"))?;
        let (out_host, out_port) = config.out_addr.clone().unwrap_or_else(|| (config.host.clone(), bound.port()));
        let protocol_id = protocol_id(&config.subnet, &config.encryption);
        let salt: [u8; 16] = rand::random();
        let me = NodeRef { id: Id::of_node(&out_host, out_port, &protocol_id.to_bytes(), &salt), host: out_host, port: out_port };
        let member = config.chord.as_ref().is_some_and(|c| c.join);
        let successor_list_len = config.chord.as_ref().map_or(4, |c| c.successor_list_len());
        let (shutdown, _) = watch::channel(false);
        let (done_tx, done_rx) = oneshot::channel();
        let inner = Arc::new(Inner {
            me: me.clone(),
            protocol_id,
            member: AtomicBool::new(member),
            state: Mutex::new(State {
                closed: false,
                conns: HashMap::new(),
                by_node: HashMap::new(),
                dialing: HashMap::new(),
                seen: SeenSet::new(),
                ring: member.then(|| Routing::new(me.clone(), successor_list_len)),
                store: Store::new(),
                clock: Clock::new(me.id),
                view: BTreeMap::new(),
                arcs: BTreeMap::new(),
                leases: HashMap::new(),
                stats: Counters::default(),
            }),
            pending: Mutex::new(HashMap::new()),
            next_request: AtomicU64::new(1),
            next_conn: AtomicU64::new(1),
            events: events::EventQueue::new(),
            shutdown,
            maintenance_wake: Notify::new(),
            sync_wanted: AtomicBool::new(false),
            listener_done: Mutex::new(Some(done_rx)),
            handshakes: AtomicU64::new(0),
            metrics: Metrics::new(),
            config,
        });
        tokio::spawn(conn::accept_loop(inner.clone(), listener, done_tx));
        if inner.config.chord.is_some() {
            tokio::spawn(chord::maintenance_loop(inner.clone()));
        }
        Ok(Node { inner })
    }

    pub fn id(&self) -> Id {
        self.inner.me.id
    }

    /// The address peers reach this node at.
    pub fn addr(&self) -> (String, u16) {
        (self.inner.me.host.clone(), self.inner.me.port)
    }

    pub fn protocol_id(&self) -> Id {
        self.inner.protocol_id
    }

    pub fn is_closed(&self) -> bool {
        self.inner.lock().closed
    }

    /// Connect to a node and complete the handshake.
    pub async fn connect(&self, host: &str, port: u16) -> NodeResult<PeerInfo> {
        self.inner.ensure_open()?;
        let (_, info) = conn::dial(&self.inner, host, port).await?;
        if self.inner.config.chord.is_some() && info.member {
            chord::on_member_connected(&self.inner, &info).await;
        }
        Ok(info)
    }

    /// Currently connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let state = self.inner.lock();
        let mut peers: Vec<PeerInfo> = state.conns.values().map(PeerInfo::of).collect();
        peers.sort_by_key(|a| a.id);
        peers.dedup_by(|a, b| a.id == b.id);
        peers
    }

    /// Send packets to every node of the network (`to == None`) or to one node.
    pub async fn send(&self, packets: Vec<Vec<u8>>, to: Option<mesh::Target>) -> NodeResult<()> {
        self.inner.ensure_open()?;
        match to {
            None => mesh::broadcast(&self.inner, packets),
            Some(target) => mesh::whisper(&self.inner, packets, target).await,
        }
    }

    /// Wait for events; `None` once the node is closed and every event was taken.
    pub async fn next_events(&self, max: usize) -> Option<Vec<Event>> {
        self.inner.events.next_batch(max).await
    }

    /// Leave the ring if a member (handing data over), then release the port and every
    /// connection. Idempotent.
    pub async fn close(&self) {
        if self.inner.member.load(Ordering::SeqCst) {
            let _ = chord::leave(&self.inner).await;
        }
        self.inner.shut_down("socket closed");
        let done = self.inner.listener_done.lock().unwrap().take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    /// Drop every connection and the port at once, without leaving the ring or handing data
    /// over: to peers this looks like a crash.
    pub async fn destroy(&self) {
        self.inner.member.store(false, Ordering::SeqCst);
        self.inner.shut_down("socket destroyed");
        let done = self.inner.listener_done.lock().unwrap().take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock must not wedge the node forever: take the data anyway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn ensure_open(&self) -> NodeResult<()> {
        if self.lock().closed {
            Err(NodeError::Closed)
        } else {
            Ok(())
        }
    }

    pub(crate) fn hello(&self) -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            protocol_id: self.protocol_id,
            subnet: self.config.subnet.clone(),
            encryption: self.config.encryption.clone(),
            node: self.me.clone(),
            member: self.member.load(Ordering::SeqCst),
        }
    }

    pub(crate) fn emit(&self, event: Event) {
        self.events.push(event);
    }

    /// Queue a frame on a connection; false if the connection is gone. A full queue means the
    /// peer stopped reading: it is disconnected rather than allowed to grow our memory.
    pub(crate) fn send_frame(&self, conn_id: u64, frame: Bytes) -> bool {
        let tx = match self.lock().conns.get(&conn_id) {
            Some(conn) => conn.tx.clone(),
            None => return false,
        };
        match tx.try_send(conn::Outgoing::Frame(frame)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.drop_conn(conn_id, "peer is not reading (send queue full)", true);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(crate) fn send_message(&self, conn_id: u64, message: &Message) -> bool {
        self.send_frame(conn_id, protocol::encode(message))
    }

    /// Send a request to a node (connecting if needed) and wait for its response.
    pub(crate) async fn request(self: &Arc<Self>, node: &NodeRef, body: Request) -> NodeResult<Response> {
        let conn_id = conn::connection_to(self, node).await?;
        self.request_on(conn_id, &node.host, node.port, body).await
    }

    pub(crate) async fn request_on(&self, conn_id: u64, host: &str, port: u16, body: Request) -> NodeResult<Response> {
        let id = self.next_request.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, (conn_id, tx));
        if !self.send_message(conn_id, &Message::Request { id, body }) {
            self.pending.lock().unwrap().remove(&id);
            return Err(NodeError::PeerGone(format!("{host}:{port}")));
        }
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(NodeError::PeerGone(format!("{host}:{port}"))),
            Err(_) => {
                self.pending.lock().unwrap().remove(&id);
                Err(NodeError::Timeout(format!("no answer from {host}:{port} within {:?}", self.config.request_timeout)))
            }
        }
    }

    /// A response arrived: hand it to whoever waits. Unknown ids (late or forged) are dropped.
    pub(crate) fn complete(&self, id: u64, response: Response) {
        if let Some((_, tx)) = self.pending.lock().unwrap().remove(&id) {
            let _ = tx.send(response);
        }
    }

    /// Close one connection, failing the requests waiting on it.
    pub(crate) fn drop_conn(&self, conn_id: u64, reason: &str, tell_peer: bool) {
        let removed = {
            let mut state = self.lock();
            let conn = state.conns.remove(&conn_id);
            if let Some(conn) = &conn {
                if state.by_node.get(&conn.peer.id) == Some(&conn_id) {
                    state.by_node.remove(&conn.peer.id);
                    // Another connection to the same node may remain; keep it reachable.
                    let other = state.conns.iter().find(|(_, c)| c.peer.id == conn.peer.id).map(|(id, _)| *id);
                    if let Some(other) = other {
                        state.by_node.insert(conn.peer.id, other);
                    }
                }
            }
            conn
        };
        let Some(conn) = removed else { return };
        self.metrics.record_connection_closed();
        self.pending.lock().unwrap().retain(|_, (pending_conn, _)| *pending_conn != conn_id);
        let _ = conn.tx.try_send(conn::Outgoing::Close { reason: reason.to_string(), tell_peer });
        conn.reader.abort();
        let still_connected = self.lock().by_node.contains_key(&conn.peer.id);
        if !still_connected {
            self.emit(Event::Disconnect { peer: PeerInfo::of(&conn), reason: reason.to_string() });
            if conn.member {
                self.maintenance_wake.notify_one();
            }
        }
    }

    pub(crate) fn shut_down(&self, reason: &str) {
        let conn_ids: Vec<u64> = {
            let mut state = self.lock();
            if state.closed {
                return;
            }
            state.closed = true;
            state.conns.keys().copied().collect()
        };
        self.member.store(false, Ordering::SeqCst);
        let _ = self.shutdown.send(true);
        for conn_id in conn_ids {
            self.drop_conn(conn_id, reason, true);
        }
        self.pending.lock().unwrap().clear();
        self.events.close();
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seen_set_delivers_each_broadcast_once_within_its_window() {
        let mut seen = SeenSet::new();
        assert!(seen.first_time(Id(1)));
        assert!(!seen.first_time(Id(1)));
        for i in 2..(SEEN_BROADCASTS as u128 + 2) {
            assert!(seen.first_time(Id(i)));
        }
        // The window is bounded: the oldest id was forgotten, the newest are remembered.
        assert_eq!(seen.ids.len(), SEEN_BROADCASTS);
        assert!(seen.first_time(Id(1)));
        assert!(!seen.first_time(Id(SEEN_BROADCASTS as u128)));
    }

    #[test]
    fn protocol_ids_differ_by_subnet_and_encryption() {
        assert_eq!(protocol_id("a", "Plaintext"), protocol_id("a", "Plaintext"));
        assert_ne!(protocol_id("a", "Plaintext"), protocol_id("b", "Plaintext"));
        assert_ne!(protocol_id("a", "Plaintext"), protocol_id("a", "TLS"));
        assert_ne!(protocol_id("ab", ""), protocol_id("a", "b"));
    }

    #[test]
    fn io_errors_keep_the_os_code() {
        let error = NodeError::io(std::io::Error::from(std::io::ErrorKind::AddrInUse), "cannot listen");
        assert_eq!(error.code(), "EADDRINUSE");
        assert!(error.to_string().contains("cannot listen"));
        assert!(error.is_unreachable());
        assert!(!NodeError::Closed.is_unreachable());
    }
}
