//! Connections: accepting and dialing, the handshake, and the reader and writer task of each
//! authenticated connection. Bytes become messages through the pure codec in `protocol`;
//! anything a peer sends that breaks the protocol closes that connection only, with a reason.
//!
//! With Noise (the default) every connection first runs the handshake of [`chord_noise`]
//! (which proves both static keys and the shared network key); the `Hello` exchange and every
//! frame after it travel inside encrypted records, and a peer whose claimed id is not the id of
//! the key it proved is refused. With Plaintext the `Hello` is the first frame, in clear, and ids
//! are claimed, not proven.
//!
//! The transport knows nothing of Chord: it hands every message of an authenticated peer to an
//! [`Inbound`] handler (the node's dispatch) and reports connections coming and going. It owns
//! one piece of state, the connection table.

use crate::events::PeerInfo;
use crate::config::{HANDSHAKE_TIMEOUT, MAX_CONNECTIONS_PER_PEER, SEND_QUEUE_BYTES, SEND_QUEUE_FRAMES, SEND_QUEUE_TOTAL_BYTES};
use crate::gate::Gate;
use crate::reports::{ReportLimiter, Verdict, REPORTS_PER_SECOND};
use chord::engine::Admission;
use chord::metrics::{Metrics, Traffic};
use chord::error::{Error, Result};
use chord::id::Id;
use chord_noise::{self as noise, Handshake, KeyPair, NetworkKey, NoiseError, Opener, Sealer, MAX_HANDSHAKE_MESSAGE, NOISE_PREFIX_BYTES};
use chord::protocol::{self, FrameError, Hello, Message, PROTOCOL_VERSION};
use chord::routing::NodeRef;
use bytes::{Buf, Bytes, BytesMut};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Frames written with one syscall at most, when the queue has several waiting.
const WRITE_BATCH: usize = 128;
/// Initial read buffer; it grows only as far as a frame that passed the size check needs.
const READ_BUFFER_BYTES: usize = 64 << 10;
/// Largest first frame of a plaintext connection: a `Hello` is far smaller. A first frame
/// announcing more, with a zero first byte, is a Noise handshake sent to a plaintext node.
const MAX_HELLO_FRAME_BYTES: usize = 64 << 10;
/// Reject code both encryptions use when the other side speaks the other one.
const ENCRYPTION_MISMATCH: &str = "encryption-mismatch";
/// Dials whose handshake was cut before the peer answered are tried again this many times,
/// 20, 40, 80 ms apart (see `Transport::dial`).
const HANDSHAKE_RETRIES: u32 = 3;

pub(crate) type ConnId = u64;

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Closing {
    /// We closed it (and say goodbye, with the reason).
    ByUs,
    /// The peer said goodbye.
    ByPeer,
    /// It broke: the peer went without a goodbye, or reading failed.
    Lost,
}

/// Who the transport hands authenticated traffic to.
pub(crate) trait Inbound: Send + Sync + 'static {
    /// Our handshake frame as of now (the member flag may change).
    fn hello(&self) -> Hello;
    fn connected(&self, conn: ConnId, info: &PeerInfo);
    /// A message from an authenticated peer (never a handshake frame or a goodbye).
    fn message(&self, conn: ConnId, peer: &NodeRef, message: Message);
    /// A connection closed; `last` when no other connection to that peer remains; `lost`
    /// when it broke (no goodbye either way) rather than being closed by one side.
    fn disconnected(&self, info: &PeerInfo, reason: &str, last: bool, lost: bool);
    /// Something a peer did was refused (bad bytes, a failed handshake).
    fn bad_peer(&self, message: String);
    /// Every slot is taken and `peer` knocks (or we dial it): which connection gives way, if
    /// any (the engine's connection policy).
    fn admit(&self, peer: Id) -> Admission;
    /// Members a newcomer we refuse for want of room may try instead.
    fn elsewhere(&self) -> Vec<NodeRef>;
}

/// What the transport checks in a handshake.
pub(crate) struct Identity {
    pub me: NodeRef,
    pub protocol_id: Id,
    pub subnet: String,
    pub encryption: String,
    pub max_peers: usize,
    pub max_frame_bytes: usize,
    /// Our static key pair (`me.id` is its id).
    pub keys: KeyPair,
    /// Mixed into every Noise handshake.
    pub network_key: NetworkKey,
    /// Noise (true) or Plaintext.
    pub noise: bool,
}

/// What the writer task is asked to do.
pub(crate) enum Outgoing {
    Frame(Bytes),
    /// Say goodbye (optionally) and shut the socket.
    Close { reason: String, tell_peer: bool },
}

pub(crate) struct Conn {
    pub peer: NodeRef,
    pub member: bool,
    pub outbound: bool,
    tx: mpsc::Sender<Outgoing>,
    /// Bytes queued and not yet written to the socket.
    queued: Arc<AtomicUsize>,
    reader: tokio::task::AbortHandle,
}

impl Conn {
    pub fn info(&self) -> PeerInfo {
        PeerInfo { id: self.peer.id, host: self.peer.host.clone(), port: self.peer.port, outbound: self.outbound, member: self.member }
    }
}

#[derive(Default)]
struct Table {
    closed: bool,
    conns: HashMap<ConnId, Conn>,
    by_node: HashMap<Id, ConnId>,
    dialing: HashMap<Id, Vec<oneshot::Sender<Result<ConnId>>>>,
    /// Slots held for connections under way (handshakes we accepted, our dials): with `conns`
    /// they never exceed `max_peers`.
    reserved: usize,
}

/// A slot of the connection table held for a connection under way; given back when dropped
/// unused, so `max_peers` stays a hard bound however many handshakes run at once.
pub(crate) struct Slot {
    transport: Arc<Transport>,
    used: bool,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.used {
            self.transport.lock().reserved -= 1;
        }
    }
}

/// An encoded message and what it is for (its bytes are counted when queued).
#[derive(Clone)]
pub(crate) struct Frame {
    pub bytes: Bytes,
    pub kind: Traffic,
}

impl Frame {
    pub fn of(message: &Message) -> Frame {
        Frame { bytes: protocol::encode(message), kind: message.traffic() }
    }
}

pub(crate) struct Transport {
    pub identity: Identity,
    /// Counters the node reports (traffic by kind is counted here, as frames come and go).
    pub metrics: Arc<Metrics>,
    table: Mutex<Table>,
    next_conn: AtomicU64,
    /// Sockets waiting for their handshake, shared out fairly (see `gate`).
    gate: Mutex<Gate>,
    /// Bytes queued to every peer together.
    queued_total: Arc<AtomicUsize>,
    /// Connection troubles reported at a bounded rate (see `reports`).
    reports: Mutex<ReportLimiter>,
    inbound: OnceLock<Weak<dyn Inbound>>,
    shutdown: watch::Sender<bool>,
    listener_done: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Transport {
    pub fn new(identity: Identity, metrics: Arc<Metrics>) -> Transport {
        let (shutdown, _) = watch::channel(false);
        Transport {
            identity,
            metrics,
            table: Mutex::new(Table::default()),
            next_conn: AtomicU64::new(1),
            gate: Mutex::new(Gate::default()),
            queued_total: Arc::new(AtomicUsize::new(0)),
            reports: Mutex::new(ReportLimiter::default()),
            inbound: OnceLock::new(),
            shutdown,
            listener_done: Mutex::new(None),
        }
    }

    /// Start serving `listener`, handing traffic to `inbound`.
    pub fn start(self: &Arc<Self>, listener: TcpListener, inbound: Weak<dyn Inbound>) {
        let _ = self.inbound.set(inbound);
        let (done_tx, done_rx) = oneshot::channel();
        *self.listener_done.lock().unwrap_or_else(|p| p.into_inner()) = Some(done_rx);
        tokio::spawn(accept_loop(self.clone(), listener, done_tx));
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while holding the lock must not wedge the node forever: take the data anyway.
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn inbound(&self) -> Option<Arc<dyn Inbound>> {
        self.inbound.get().and_then(Weak::upgrade)
    }

    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// The open connection to `node`, if any.
    pub fn conn_to(&self, node: Id) -> Option<ConnId> {
        self.lock().by_node.get(&node).copied()
    }

    pub fn len(&self) -> usize {
        self.lock().conns.len()
    }

    /// Currently connected peers, one entry per node.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut peers: Vec<PeerInfo> = self.lock().conns.values().map(Conn::info).collect();
        peers.sort_by_key(|a| a.id);
        peers.dedup_by(|a, b| a.id == b.id);
        peers
    }

    pub fn connections(&self) -> Vec<(ConnId, PeerInfo)> {
        self.lock().conns.iter().map(|(id, c)| (*id, c.info())).collect()
    }

    /// Connections to peers that are not ring members (clients and plain mesh nodes).
    pub fn client_conns(&self) -> Vec<ConnId> {
        self.lock().conns.iter().filter(|(_, c)| !c.member).map(|(id, _)| *id).collect()
    }

    /// Room for more connections under `max_peers`, counting those under way.
    pub fn room(&self) -> usize {
        let table = self.lock();
        self.identity.max_peers.saturating_sub(table.conns.len() + table.reserved)
    }

    fn try_reserve(self: &Arc<Self>) -> Option<Slot> {
        let mut table = self.lock();
        if table.closed || table.conns.len() + table.reserved >= self.identity.max_peers {
            return None;
        }
        table.reserved += 1;
        Some(Slot { transport: self.clone(), used: false })
    }

    /// A slot for a connection to `peer`: a free one, or one freed by closing the connection
    /// the engine's policy gives up (see `chord::engine::Admission`); the policy's reason when
    /// every connection is needed.
    fn slot_for(self: &Arc<Self>, peer: Id) -> std::result::Result<Slot, String> {
        if let Some(slot) = self.try_reserve() {
            return Ok(slot);
        }
        let inbound = self.inbound().ok_or("the node is closing")?;
        // Another newcomer may take the slot we free: a few tries, then the table is full.
        for _ in 0..4 {
            match inbound.admit(peer) {
                Admission::Evict(victim) => self.drop_peer(victim, "making room for a newcomer: the least recently used connection routing does not need"),
                Admission::Refuse(reason) => return Err(reason),
            }
            if let Some(slot) = self.try_reserve() {
                return Ok(slot);
            }
        }
        Err(format!("peer limit of {} reached", self.identity.max_peers))
    }

    pub fn is_known(&self, node: Id) -> bool {
        let table = self.lock();
        table.by_node.contains_key(&node) || table.dialing.contains_key(&node)
    }

    /// Queue a frame on a connection; false if the connection is gone. A full queue means the
    /// peer stopped reading: it is disconnected rather than allowed to grow our memory.
    pub fn send_frame(&self, conn: ConnId, frame: Frame) -> bool {
        let (tx, queued) = match self.lock().conns.get(&conn) {
            Some(c) => (c.tx.clone(), c.queued.clone()),
            None => return false,
        };
        let (kind, bytes) = (frame.kind, frame.bytes.len());
        // Bounded in bytes, not only frames: answers carrying values (a get of 1 MiB asked
        // two thousand times) would otherwise pile up for a peer that never reads.
        let mine = queued.fetch_add(bytes, Ordering::AcqRel) + bytes;
        let total = self.queued_total.fetch_add(bytes, Ordering::AcqRel) + bytes;
        if mine > SEND_QUEUE_BYTES || (total > SEND_QUEUE_TOTAL_BYTES && mine > 1 << 20) {
            queued.fetch_sub(bytes, Ordering::AcqRel);
            self.queued_total.fetch_sub(bytes, Ordering::AcqRel);
            self.drop_conn(conn, &format!("peer is not reading ({mine} bytes queued for it)"), Closing::ByUs);
            return false;
        }
        match tx.try_send(Outgoing::Frame(frame.bytes)) {
            Ok(()) => {
                self.metrics.record_sent(kind, bytes);
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                queued.fetch_sub(bytes, Ordering::AcqRel);
                self.queued_total.fetch_sub(bytes, Ordering::AcqRel);
                self.drop_conn(conn, "peer is not reading (send queue full)", Closing::ByUs);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                queued.fetch_sub(bytes, Ordering::AcqRel);
                self.queued_total.fetch_sub(bytes, Ordering::AcqRel);
                false
            }
        }
    }

    pub fn send_message(&self, conn: ConnId, message: &Message) -> bool {
        self.send_frame(conn, Frame::of(message))
    }

    /// A connection to `node`, reusing an open one or dialing once for all concurrent callers.
    pub async fn connection_to(self: &Arc<Self>, node: &NodeRef) -> Result<ConnId> {
        // A node named by a peer: never an address that cannot be a node's, nor loopback on a
        // peer's word when we are not on loopback ourselves.
        if let Err(unusable) = chord::addr::check_dialable(&node.host, node.port, &self.identity.me.host) {
            // Unreachable (routing goes around it), with the reason.
            return Err(Error::Io { code: "EADDRNOTAVAIL", message: format!("will not dial {}:{}: {unusable} (EADDRNOTAVAIL)", node.host, node.port) });
        }
        let waiter = {
            let mut table = self.lock();
            if table.closed {
                return Err(Error::Closed);
            }
            if let Some(conn) = table.by_node.get(&node.id) {
                return Ok(*conn);
            }
            match table.dialing.get_mut(&node.id) {
                Some(waiters) => {
                    let (tx, rx) = oneshot::channel();
                    waiters.push(tx);
                    Some(rx)
                }
                None => {
                    table.dialing.insert(node.id, Vec::new());
                    None
                }
            }
        };
        if let Some(rx) = waiter {
            return rx.await.unwrap_or_else(|_| Err(Error::PeerGone(format!("{}:{}", node.host, node.port))));
        }
        let result = match self.dial(&node.host, node.port, Some(node.id)).await {
            Ok((conn, info)) if info.id == node.id => Ok(conn),
            Ok(_) => Err(Error::PeerGone(format!("{}:{} is now another node", node.host, node.port))),
            Err(error) => Err(error),
        };
        let waiters = self.lock().dialing.remove(&node.id).unwrap_or_default();
        for waiter in waiters {
            let _ = waiter.send(result.clone());
        }
        result
    }

    /// Dial `host:port` and complete the handshake; returns the new connection. `expected`:
    /// the node we mean to reach, if we know it (the policy never gives its slot away to it).
    pub async fn dial(self: &Arc<Self>, host: &str, port: u16, expected: Option<Id>) -> Result<(ConnId, PeerInfo)> {
        let inbound = self.inbound().ok_or(Error::Closed)?;
        let slot = self
            .slot_for(expected.unwrap_or_default())
            .map_err(|reason| Error::Rejected { code: "busy".into(), reason: format!("this node's own connection table is full: {reason}"), elsewhere: Vec::new() })?;
        // A handshake cut before the peer answered is tried again a few times: a node under a
        // flood of sockets from our address (a NAT, loopback) gives waiting sockets' slots to
        // newer ones until our first message proves we hold the network key (see `gate`).
        let mut attempt = 0;
        let (link, first, remote_key) = loop {
            match self.handshake_with(host, port, &inbound).await {
                Err(Error::Io { code: "ECONNRESET", .. }) if attempt < HANDSHAKE_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                }
                result => break result?,
            }
        };
        let hello = match first {
            Message::Welcome(hello) => hello,
            Message::Reject { code, reason, subnet, .. } if code == "protocol-mismatch" || code == ENCRYPTION_MISMATCH => return Err(self.mismatch(subnet, reason)),
            Message::Reject { code, reason, elsewhere, .. } => return Err(Error::Rejected { code, reason, elsewhere }),
            other => return Err(Error::Protocol(format!("{host}:{port} answered the handshake with {}", message_name(&other)))),
        };
        if hello.protocol_id != self.identity.protocol_id {
            return Err(self.mismatch(hello.subnet, "the peer welcomed us with another protocol id".into()));
        }
        if let Some(key) = remote_key {
            if hello.node.id != Id::of_public_key(&key) {
                return Err(Error::Handshake(format!("{host}:{port} claims node id {} but proved the key of {}", hello.node.id, Id::of_public_key(&key))));
            }
        }
        self.register(hello, link, true, slot)
    }

    /// Connect to `host:port` and go as far as the peer's first answer to our `Hello`.
    async fn handshake_with(&self, host: &str, port: u16, inbound: &Arc<dyn Inbound>) -> Result<(Link, Message, Option<[u8; 32]>)> {
        let connect = TcpStream::connect((host, port));
        let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
            .await
            .map_err(|_| Error::Timeout(format!("connecting to {host}:{port}")))?
            .map_err(|e| Error::io(e, &format!("cannot connect to {host}:{port}")))?;
        let _ = stream.set_nodelay(true);
        let mut link = Link::new(stream);
        let handshake = async {
            let remote_key = if self.identity.noise {
                Some(self.noise_initiate(&mut link, host, port).await?)
            } else {
                None
            };
            link.send(&Message::Hello(inbound.hello())).await.map_err(|e| Error::io(e, "handshake write failed"))?;
            let first = link.recv(self.identity.max_frame_bytes).await.map_err(|e| handshake_error(host, port, e))?;
            Ok::<_, Error>((first, remote_key))
        };
        let (first, remote_key) = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await.map_err(|_| Error::Timeout(format!("handshake with {host}:{port}")))??;
        Ok((link, first, remote_key))
    }

    /// The initiator's Noise handshake; returns the static key the peer proved.
    async fn noise_initiate(&self, link: &mut Link, host: &str, port: u16) -> Result<[u8; 32]> {
        let mut handshake = Handshake::initiator(&self.identity.keys, &self.identity.network_key);
        let mut out = Vec::with_capacity(128);
        handshake.write(&mut out).map_err(|e| Error::Handshake(e.to_string()))?;
        link.writer.write_all(&out).await.map_err(|e| Error::io(e, "handshake write failed"))?;
        let second = match link.recv_noise().await {
            Ok(message) => message,
            // A plaintext node refuses a Noise handshake in a plaintext frame.
            Err(LinkError::Plaintext) => {
                return match link.recv(self.identity.max_frame_bytes).await.map_err(|e| handshake_error(host, port, e))? {
                    Message::Reject { subnet, reason, .. } => Err(self.mismatch(subnet, reason)),
                    other => Err(Error::Handshake(format!("{host}:{port} answered the Noise handshake with a plaintext {}", message_name(&other)))),
                };
            }
            Err(error) => return Err(handshake_error(host, port, error)),
        };
        match handshake.read(&second) {
            Ok(()) => {}
            Err(NoiseError::KeyMismatch) => {
                return Err(Error::Handshake(format!(
                    "the network key does not match the one of {host}:{port} (its handshake answer failed authentication)"
                )))
            }
            Err(error) => return Err(Error::Handshake(format!("{host}:{port}: {error}"))),
        }
        out.clear();
        handshake.write(&mut out).map_err(|e| Error::Handshake(e.to_string()))?;
        let (sealer, opener, remote) = handshake.finish().map_err(|e| Error::Handshake(e.to_string()))?;
        // The third message goes out with the Hello that follows it, in one write.
        link.pending = out;
        link.session = Some((sealer, opener));
        Ok(remote)
    }

    fn mismatch(&self, theirs: String, reason: String) -> Error {
        Error::ProtocolMismatch { ours: self.identity.subnet.clone(), our_encryption: self.identity.encryption.clone(), theirs, reason }
    }

    /// Close one connection. The handler hears of it (and fails what waited on it).
    pub fn drop_conn(&self, conn: ConnId, reason: &str, how: Closing) {
        let tell_peer = how == Closing::ByUs;
        let (removed, last) = {
            let mut table = self.lock();
            let Some(removed) = table.conns.remove(&conn) else { return };
            if table.by_node.get(&removed.peer.id) == Some(&conn) {
                table.by_node.remove(&removed.peer.id);
                // Another connection to the same node may remain; keep it reachable.
                let other = table.conns.iter().find(|(_, c)| c.peer.id == removed.peer.id).map(|(id, _)| *id);
                if let Some(other) = other {
                    table.by_node.insert(removed.peer.id, other);
                }
            }
            let last = !table.by_node.contains_key(&removed.peer.id);
            (removed, last)
        };
        let _ = removed.tx.try_send(Outgoing::Close { reason: reason.to_string(), tell_peer });
        removed.reader.abort();
        if let Some(inbound) = self.inbound() {
            inbound.disconnected(&removed.info(), reason, last, how == Closing::Lost);
        }
    }

    /// Close every connection to `peer`.
    pub fn drop_peer(&self, peer: Id, reason: &str) {
        let conns: Vec<ConnId> = self.lock().conns.iter().filter(|(_, c)| c.peer.id == peer).map(|(id, _)| *id).collect();
        for conn in conns {
            self.drop_conn(conn, reason, Closing::ByUs);
        }
    }

    /// Close every connection and the listener. Idempotent.
    pub fn shut_down(&self, reason: &str) {
        let conns: Vec<ConnId> = {
            let mut table = self.lock();
            if table.closed {
                return;
            }
            table.closed = true;
            table.conns.keys().copied().collect()
        };
        let _ = self.shutdown.send(true);
        for conn in conns {
            self.drop_conn(conn, reason, Closing::ByUs);
        }
    }

    /// Wait until the listening port is released.
    pub async fn listener_closed(&self) {
        let done = self.listener_done.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(done) = done {
            let _ = done.await;
        }
    }

    fn check_hello(&self, hello: &Hello) -> std::result::Result<(), (&'static str, String)> {
        if hello.version != PROTOCOL_VERSION {
            return Err(("version-mismatch", format!("protocol version {} is not ours ({PROTOCOL_VERSION})", hello.version)));
        }
        if hello.protocol_id != self.identity.protocol_id {
            return Err((
                "protocol-mismatch",
                format!(
                    "protocol mismatch: our subnet {:?}/{}, theirs {:?}/{}",
                    self.identity.subnet, self.identity.encryption, hello.subnet, hello.encryption
                ),
            ));
        }
        if hello.node.id == self.identity.me.id {
            return Err(("self", "a node cannot connect to itself".into()));
        }
        chord::addr::check_advertised(&hello.node.host, hello.node.port).map_err(|why| ("bad-address", format!("the Hello names {}:{} as where the node listens: {why}", hello.node.host, hello.node.port)))?;
        Ok(())
    }

    /// Inbound handshake: (Noise first, then) expect a `Hello`, answer `Welcome` or `Reject`.
    async fn accept(self: &Arc<Self>, stream: TcpStream, ticket: u64) -> std::result::Result<(), String> {
        let inbound = self.inbound().ok_or("the node is closing")?;
        let _ = stream.set_nodelay(true);
        let mut link = Link::new(stream);
        let remote_key = if self.identity.noise { Some(self.noise_respond(&mut link, ticket).await?) } else { self.plaintext_first(&mut link).await?; None };
        let hello = match link.recv(self.identity.max_frame_bytes).await.map_err(|e| e.to_string())? {
            Message::Hello(hello) => hello,
            other => return Err(format!("expected a Hello frame first, got {}", message_name(&other))),
        };
        let subnet = self.identity.subnet.clone();
        let checked = self.check_hello(&hello).and_then(|()| match remote_key {
            Some(key) if hello.node.id != Id::of_public_key(&key) => {
                Err(("id-mismatch", format!("node id {} is not the id of the key proved in the handshake ({})", hello.node.id, Id::of_public_key(&key))))
            }
            _ => Ok(()),
        });
        if let Err((code, reason)) = checked {
            let reject = Message::Reject { code: code.into(), reason: reason.clone(), subnet, elsewhere: Vec::new() };
            let _ = link.send(&reject).await;
            let _ = link.writer.shutdown().await;
            return Err(format!("rejected {}:{}: {reason}", hello.node.host, hello.node.port));
        }
        let slot = match self.slot_for(hello.node.id) {
            Ok(slot) => slot,
            Err(reason) => {
                let reject = Message::Reject { code: "busy".into(), reason, subnet, elsewhere: inbound.elsewhere() };
                let _ = link.send(&reject).await;
                let _ = link.writer.shutdown().await;
                return Ok(());
            }
        };
        link.send(&Message::Welcome(inbound.hello())).await.map_err(|e| format!("write failed: {e}"))?;
        self.register(hello, link, false, slot).map(|_| ()).map_err(|e| e.to_string())
    }

    /// The responder's Noise handshake; returns the static key the peer proved. A plaintext
    /// `Hello` is answered with a plaintext `Reject`, never a `Welcome`.
    async fn noise_respond(&self, link: &mut Link, ticket: u64) -> std::result::Result<[u8; 32], String> {
        let mut handshake = Handshake::responder(&self.identity.keys, &self.identity.network_key);
        let first = match link.recv_noise().await {
            Ok(message) => message,
            Err(LinkError::Plaintext) => {
                let message = link.recv(self.identity.max_frame_bytes).await?;
                if !matches!(message, Message::Hello(_)) {
                    return Err(format!("expected a Noise handshake, got a plaintext {}", message_name(&message)));
                }
                let reason = "this node requires Noise encryption: a plaintext Hello is refused".to_string();
                let _ = link.send(&Message::Reject { code: ENCRYPTION_MISMATCH.into(), reason, subnet: String::new(), elsewhere: Vec::new() }).await;
                let _ = link.writer.shutdown().await;
                return Err("refused a plaintext Hello: this node requires Noise encryption".into());
            }
            Err(error) => return Err(error.to_string()),
        };
        match handshake.read(&first) {
            // The first message authenticated: the peer holds the network key (`psk0`), so
            // outsiders' sockets no longer push this handshake out of the door.
            Ok(()) => self.gate().proven(ticket),
            Err(NoiseError::KeyMismatch) => {
                // Answer like a node would, with bytes that cannot authenticate: the initiator
                // learns that the keys differ, and nothing about us.
                let _ = link.writer.write_all(&noise::decoy_second_message()).await;
                let _ = link.writer.shutdown().await;
                return Err("Noise handshake failed: the peer's first message did not authenticate (its network key differs from ours)".into());
            }
            Err(error) => return Err(error.to_string()),
        }
        let mut out = Vec::with_capacity(128);
        handshake.write(&mut out).map_err(|e| e.to_string())?;
        link.writer.write_all(&out).await.map_err(|e| format!("write failed: {e}"))?;
        let third = link.recv_noise().await.map_err(|e| e.to_string())?;
        handshake.read(&third).map_err(|e| format!("Noise handshake failed at the third message: {e}"))?;
        let (sealer, opener, remote) = handshake.finish().map_err(|e| e.to_string())?;
        link.session = Some((sealer, opener));
        Ok(remote)
    }

    /// A plaintext node's first read: a Noise handshake (a first frame announcing more than a
    /// Hello can be, with a zero first byte) is refused with a plaintext `Reject`.
    async fn plaintext_first(&self, link: &mut Link) -> std::result::Result<(), String> {
        while link.raw.len() < protocol::LENGTH_PREFIX_BYTES {
            link.fill().await?;
        }
        let announced = u32::from_be_bytes(link.raw[..4].try_into().expect("4 bytes")) as usize;
        if link.raw[0] == 0 && announced > MAX_HELLO_FRAME_BYTES {
            let reason = "this node uses Plaintext encryption: a Noise handshake is refused".to_string();
            let _ = link.send(&Message::Reject { code: ENCRYPTION_MISMATCH.into(), reason, subnet: self.identity.subnet.clone(), elsewhere: Vec::new() }).await;
            let _ = link.writer.shutdown().await;
            return Err("refused a Noise handshake: this node uses Plaintext encryption".into());
        }
        Ok(())
    }

    fn register(self: &Arc<Self>, hello: Hello, link: Link, outbound: bool, mut slot: Slot) -> Result<(ConnId, PeerInfo)> {
        let Link { reader, writer, raw, plain, session, .. } = link;
        let (sealer, opener) = match session {
            Some((sealer, opener)) => (Some(sealer), Some(opener)),
            None => (None, None),
        };
        // Encrypted: `raw` holds records, `plain` what they decrypted to. Plaintext: `raw` holds frames.
        let (records, frames) = if opener.is_some() { (raw, plain) } else { (BytesMut::new(), raw) };
        let conn_id = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SEND_QUEUE_FRAMES);
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(write_loop(writer, sealer, rx, queued.clone(), self.queued_total.clone()));
        // The reader waits for its registration before handing anything on.
        let (go_tx, go_rx) = oneshot::channel::<()>();
        let reader_task = tokio::spawn(read_loop(self.clone(), conn_id, hello.node.clone(), reader, Incoming { records, frames, opener }, go_rx));
        let conn = Conn { peer: hello.node.clone(), member: hello.member, outbound, tx, queued, reader: reader_task.abort_handle() };
        let info = conn.info();
        {
            let mut table = self.lock();
            if table.closed {
                drop(table);
                reader_task.abort();
                let _ = conn.tx.try_send(Outgoing::Close { reason: "socket closed".into(), tell_peer: true });
                return Err(Error::Closed);
            }
            let same_peer = table.conns.values().filter(|c| c.peer.id == hello.node.id).count();
            if same_peer >= MAX_CONNECTIONS_PER_PEER {
                drop(table);
                reader_task.abort();
                let _ = conn.tx.try_send(Outgoing::Close { reason: format!("already {same_peer} connections to this node"), tell_peer: true });
                return Err(Error::Rejected { code: "busy".into(), reason: format!("already {same_peer} connections to {}", hello.node.id), elsewhere: Vec::new() });
            }
            table.conns.insert(conn_id, conn);
            table.by_node.insert(hello.node.id, conn_id);
            // The slot becomes the connection.
            table.reserved -= 1;
            slot.used = true;
        }
        let _ = go_tx.send(());
        if let Some(inbound) = self.inbound() {
            inbound.connected(conn_id, &info);
        }
        Ok((conn_id, info))
    }

    fn gate(&self) -> MutexGuard<'_, Gate> {
        self.gate.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Tell the user (an `ERR_BAD_PEER` event), at most `REPORTS_PER_SECOND` a second; the
    /// rest are summed up in one event when the second is over.
    fn report_bad_peer(self: &Arc<Self>, message: String) {
        let now = Instant::now();
        let verdict = self.reports.lock().unwrap_or_else(|p| p.into_inner()).offer(now);
        match verdict {
            Verdict::Report => {
                if let Some(inbound) = self.inbound() {
                    inbound.bad_peer(message);
                }
            }
            Verdict::Hold { first: false } => {}
            Verdict::Hold { first: true } => {
                let due = self.reports.lock().unwrap_or_else(|p| p.into_inner()).summary_due(now);
                let transport = Arc::downgrade(self);
                tokio::spawn(async move {
                    tokio::time::sleep_until(due.into()).await;
                    let Some(transport) = transport.upgrade() else { return };
                    let held = transport.reports.lock().unwrap_or_else(|p| p.into_inner()).take_held();
                    if let (Some(inbound), true) = (transport.inbound(), held > 0) {
                        inbound.bad_peer(format!(
                            "{held} more connection problems in the last second were not reported one by one (at most {REPORTS_PER_SECOND} a second are), the first of them: {message}"
                        ));
                    }
                });
            }
        }
    }
}

async fn accept_loop(transport: Arc<Transport>, listener: TcpListener, done: oneshot::Sender<()>) {
    let mut shutdown = transport.shutdown_signal();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    // Fairly shared slots, newest wins (see `gate`): idle sockets give way.
                    let ticket = transport.gate().admit(addr.ip());
                    let task = transport.clone();
                    let handle = tokio::spawn(async move {
                        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, task.accept(stream, ticket)).await;
                        task.gate().left(ticket);
                        let error = match result {
                            Ok(Ok(())) => return,
                            Ok(Err(error)) => error,
                            Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                        };
                        task.report_bad_peer(format!("closed connection from {addr}: {error}"));
                    });
                    transport.gate().started(ticket, handle.abort_handle());
                }
                Err(error) => {
                    // Out of file descriptors and the like: report, breathe, keep serving.
                    transport.report_bad_peer(format!("accept failed: {error}"));
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = done.send(());
}

/// What a handshake read can fail with.
enum LinkError {
    /// A Noise message was expected and the peer sent a plaintext frame (its first two bytes,
    /// an empty Noise message, are zero); the frame is still buffered.
    Plaintext,
    Noise(NoiseError),
    Other(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Plaintext => f.write_str("a plaintext frame where a Noise handshake message was expected"),
            LinkError::Noise(error) => error.fmt(f),
            LinkError::Other(text) => f.write_str(text),
        }
    }
}

fn handshake_error(host: &str, port: u16, error: impl std::fmt::Display) -> Error {
    let text = error.to_string();
    // The socket failed under us (a reset, a broken pipe), or the peer closed it before
    // answering — a node gives a waiting handshake's slot to a newer one when many wait from
    // one address (`gate`): the peer is unreachable for now, not breaking the protocol, so an
    // operation retries elsewhere or later. (A wrong network key is told apart: the answer
    // fails authentication, below.)
    if text.contains("closed during the handshake") {
        return Error::Io { code: "ECONNRESET", message: format!("{host}:{port} closed the connection during the handshake (ECONNRESET)") };
    }
    if text.starts_with("read failed") || text.starts_with("write failed") {
        return Error::Io { code: "ECONNRESET", message: format!("{host}:{port}: {text} during the handshake (ECONNRESET)") };
    }
    Error::Protocol(format!("{host}:{port}: {text}"))
}

/// One connection during its handshake: the socket's halves, what was read and not yet used,
/// and (once Noise has finished) the session.
struct Link {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// Bytes read from the socket and not used yet (records, when a session is up).
    raw: BytesMut,
    /// Decrypted bytes not decoded yet (with a session only).
    plain: BytesMut,
    session: Option<(Sealer, Opener)>,
    /// Handshake bytes to send ahead of the next frame (the initiator's third message).
    pending: Vec<u8>,
}

impl Link {
    fn new(stream: TcpStream) -> Link {
        let (reader, writer) = stream.into_split();
        Link { reader, writer, raw: BytesMut::with_capacity(4096), plain: BytesMut::new(), session: None, pending: Vec::new() }
    }

    /// Read more bytes from the socket.
    async fn fill(&mut self) -> std::result::Result<(), String> {
        let read = self.reader.read_buf(&mut self.raw).await.map_err(|e| format!("read failed: {e}"))?;
        if read == 0 {
            return Err("connection closed during the handshake".into());
        }
        Ok(())
    }

    /// Send one frame (sealed when a session is up), after any pending handshake bytes.
    async fn send(&mut self, message: &Message) -> std::io::Result<()> {
        let frame = protocol::encode(message);
        let mut out = BytesMut::from(&std::mem::take(&mut self.pending)[..]);
        match &mut self.session {
            Some((sealer, _)) => sealer.seal(&frame, &mut out),
            None => out.extend_from_slice(&frame),
        }
        self.writer.write_all(&out).await
    }

    /// Read one frame (opening records when a session is up).
    async fn recv(&mut self, max_frame_bytes: usize) -> std::result::Result<Message, String> {
        loop {
            let decoded = match &mut self.session {
                Some((_, opener)) => {
                    opener.open(&mut self.raw, &mut self.plain).map_err(|e| e.to_string())?;
                    protocol::decode(&mut self.plain, max_frame_bytes)
                }
                None => protocol::decode(&mut self.raw, max_frame_bytes),
            };
            if let Some(message) = decoded.map_err(|e| e.to_string())? {
                return Ok(message);
            }
            self.fill().await?;
        }
    }

    /// Read one Noise handshake message (without its prefix).
    async fn recv_noise(&mut self) -> std::result::Result<Vec<u8>, LinkError> {
        loop {
            if self.raw.len() >= NOISE_PREFIX_BYTES && self.raw[..2] == [0, 0] {
                return Err(LinkError::Plaintext);
            }
            if self.raw.len() >= protocol::LENGTH_PREFIX_BYTES && protocol::check(&self.raw[..4], usize::MAX) == Err(FrameError::Http) {
                return Err(LinkError::Other(FrameError::Http.to_string()));
            }
            // Four bytes decide the two checks above; a handshake message is longer anyway.
            if self.raw.len() >= protocol::LENGTH_PREFIX_BYTES {
                if let Some(len) = noise::check_message(&self.raw, MAX_HANDSHAKE_MESSAGE).map_err(LinkError::Noise)? {
                    let message = self.raw[NOISE_PREFIX_BYTES..NOISE_PREFIX_BYTES + len].to_vec();
                    self.raw.advance(NOISE_PREFIX_BYTES + len);
                    return Ok(message);
                }
            }
            self.fill().await.map_err(LinkError::Other)?;
        }
    }
}

async fn write_loop(mut writer: OwnedWriteHalf, mut sealer: Option<Sealer>, mut rx: mpsc::Receiver<Outgoing>, queued: Arc<AtomicUsize>, total: Arc<AtomicUsize>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut out = BytesMut::new();
    let mut sealed = BytesMut::new();
    // Whatever is still queued when the connection ends no longer counts.
    let release = |bytes: usize| {
        queued.fetch_sub(bytes, Ordering::AcqRel);
        total.fetch_sub(bytes, Ordering::AcqRel);
    };
    let mut taken = 0;
    while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut close = false;
        for item in batch.drain(..) {
            match item {
                Outgoing::Frame(frame) => {
                    taken += frame.len();
                    out.extend_from_slice(&frame);
                }
                Outgoing::Close { reason, tell_peer } => {
                    if tell_peer {
                        out.extend_from_slice(&protocol::encode(&Message::Goodbye { reason }));
                    }
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            // The whole batch becomes as few records as fit: one seal and one syscall.
            let bytes = match &mut sealer {
                Some(sealer) => {
                    sealed.clear();
                    sealer.seal(&out, &mut sealed);
                    &sealed
                }
                None => &out,
            };
            let written = writer.write_all(bytes).await;
            release(std::mem::take(&mut taken));
            if written.is_err() {
                drain(&mut rx, &release);
                return;
            }
            out.clear();
        }
        if close {
            drain(&mut rx, &release);
            let _ = writer.shutdown().await;
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// Give back the bytes of frames that will never be written.
fn drain(rx: &mut mpsc::Receiver<Outgoing>, release: &impl Fn(usize)) {
    rx.close();
    while let Ok(item) = rx.try_recv() {
        if let Outgoing::Frame(frame) = item {
            release(frame.len());
        }
    }
}

/// A connection's unread input: records still to open (encrypted connections) and the frames
/// they, or the socket directly (plaintext), gave.
struct Incoming {
    records: BytesMut,
    frames: BytesMut,
    opener: Option<Opener>,
}

async fn read_loop(transport: Arc<Transport>, conn: ConnId, peer: NodeRef, mut reader: OwnedReadHalf, incoming: Incoming, go: oneshot::Receiver<()>) {
    if go.await.is_err() {
        return;
    }
    let Some(inbound) = transport.inbound() else { return };
    let Incoming { mut records, frames: mut buffer, mut opener } = incoming;
    buffer.reserve(READ_BUFFER_BYTES);
    let max = transport.identity.max_frame_bytes;
    let reason = loop {
        if let Some(opener) = opener.as_mut() {
            if let Err(error) = opener.open(&mut records, &mut buffer) {
                transport.report_bad_peer(format!("closed connection to {}:{}: {error}", peer.host, peer.port));
                transport.drop_conn(conn, &format!("protocol error: {error}"), Closing::ByUs);
                return;
            }
        }
        loop {
            let buffered = buffer.len();
            match protocol::decode(&mut buffer, max) {
                Ok(Some(Message::Goodbye { reason })) => {
                    // Frames after a goodbye are not processed.
                    transport.drop_conn(conn, &format!("peer said goodbye: {reason}"), Closing::ByPeer);
                    return;
                }
                Ok(Some(other @ (Message::Hello(_) | Message::Welcome(_) | Message::Reject { .. }))) => {
                    let reason = format!("unexpected {} after the handshake", message_name(&other));
                    transport.report_bad_peer(format!("closed connection to {}:{}: {reason}", peer.host, peer.port));
                    transport.drop_conn(conn, &reason, Closing::ByUs);
                    return;
                }
                Ok(Some(message)) => {
                    transport.metrics.record_received(message.traffic(), buffered - buffer.len());
                    inbound.message(conn, &peer, message)
                }
                Ok(None) => break,
                Err(error) => {
                    report_frame_error(&transport, &peer, &error);
                    transport.drop_conn(conn, &format!("protocol error: {error}"), Closing::ByUs);
                    return;
                }
            }
        }
        // No check that the connection still exists: dropping it aborts this task, which
        // takes effect at the read below. Encrypted bytes go to `records`, plaintext to `buffer`.
        let target = if opener.is_some() { &mut records } else { &mut buffer };
        if target.capacity() - target.len() < READ_BUFFER_BYTES / 16 {
            // Reclaim the consumed front (or grow) once per 64 KiB, not a little at every read.
            target.reserve(READ_BUFFER_BYTES);
        }
        match reader.read_buf(target).await {
            Ok(0) => break "peer closed the connection".to_string(),
            Ok(_) => {}
            Err(error) => break format!("read failed: {error}"),
        }
    };
    transport.drop_conn(conn, &reason, Closing::Lost);
}

fn report_frame_error(transport: &Arc<Transport>, peer: &NodeRef, error: &FrameError) {
    transport.report_bad_peer(format!("closed connection to {}:{}: {error}", peer.host, peer.port));
}

fn message_name(message: &Message) -> &'static str {
    match message {
        Message::Hello(_) => "Hello",
        Message::Welcome(_) => "Welcome",
        Message::Reject { .. } => "Reject",
        Message::Peers(_) => "Peers",
        Message::Broadcast { .. } => "Broadcast",
        Message::Whisper { .. } => "Whisper",
        Message::Event { .. } => "Event",
        Message::Subscribe { .. } => "Subscribe",
        Message::Request { .. } => "Request",
        Message::Response { .. } => "Response",
        Message::Goodbye { .. } => "Goodbye",
    }
}
