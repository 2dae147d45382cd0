//! The node: the tokio driver of the chord engine, and where all of chordnet's I/O happens. One
//! [`Node`] listens on a TCP port, keeps authenticated connections to peers (Noise sessions from
//! `chord-noise`), relays mesh messages and, when it is a ChordSocket, runs the sans-I/O
//! [`chord::engine::Engine`]; with a `dataDir` it also keeps an on-disk store ([`disk`]).
//!
//! Modules, each the one owner of its state, calls flowing one way:
//!
//! ```text
//! Node (this file: start, connect, send, close)   dict (the user's dict operations)
//!   │                                                │
//!   ├──────────────► dispatch ◄── transport (connections, handshake, framing; no Chord)
//!   │                  │   │
//!   │                  ▼   ▼
//!   └────────────► driver  mesh (broadcast, whisper, peer exchange)
//!                    │
//!                    ▼
//!                  engine (chord::engine, another crate: every ring decision)
//! ```
//!
//! Entry points: [`Node::start`], then the mesh calls here and the dict calls in [`dict`].

mod clock;
pub mod config;
pub mod dict;
mod gate;
pub mod disk;
mod dispatch;
mod driver;
mod events;
mod info;
pub mod mesh;
mod reports;
mod transport;

pub use config::{ChordConfig, Config};
pub use chord::protocol::protocol_id;
pub use events::{Event, Incoming, PeerInfo};

use self::dispatch::Dispatch;
use self::driver::Driver;
use self::events::EventQueue;
use self::mesh::Mesh;
use self::transport::{Identity, Inbound, Transport};
use self::disk::{Disk, DiskValues};
use chord::engine::{Engine, Now, Restored, Settings, UserOp};
use chord::metrics::Metrics;
use chord::error::{Error, Result};
use chord::id::Id;
use chord::routing::NodeRef;
use chord::store::Store;
use chord_noise::{open_network_key, KeyPair};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use tokio::net::TcpListener;

/// A running node. Cheap to clone; every clone drives the same node.
#[derive(Clone)]
pub struct Node {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    me: NodeRef,
    protocol_id: Id,
    transport: Arc<Transport>,
    driver: Arc<Driver>,
    mesh: Arc<Mesh>,
    events: Arc<EventQueue>,
    /// Held so the transport's weak handle to it stays valid while the node lives.
    _dispatch: Arc<Dispatch>,
}

impl Node {
    /// Bind the port and start serving. Port 0 picks a free port.
    pub async fn start(config: Config) -> Result<Node> {
        config.validate()?;
        let listener = TcpListener::bind((config.host.as_str(), config.port))
            .await
            .map_err(|e| Error::io(e, &format!("cannot listen on {}:{}", config.host, config.port)))?;
        let bound: SocketAddr = listener.local_addr().map_err(|e| Error::io(e, "cannot read the bound address"))?;
        let (out_host, out_port) = match config.out_addr.clone() {
            // Port 0 in outAddr: the port bound (as with port 0 to listen on).
            Some((host, 0)) => (host, bound.port()),
            Some(addr) => addr,
            None => (config.host.clone(), bound.port()),
        };
        let protocol_id = protocol_id(&config.subnet, &config.encryption);
        // The id is the key's: with Noise, peers check it against the key proved in the handshake.
        // With a dataDir the key pair comes back from the folder's identity record (made once,
        // from the given keyPair or a fresh one), so a restarted node keeps its id.
        let opened = match config.storage.clone() {
            None => None,
            Some(storage) => {
                let given = config.key_pair.clone();
                let make = move || identity_record(&given.unwrap_or_else(KeyPair::generate));
                let opened = tokio::task::spawn_blocking(move || Disk::open(&storage, protocol_id, make))
                    .await
                    .map_err(|e| Error::Internal(format!("opening the data folder panicked: {e}")))??;
                Some(opened)
            }
        };
        let keys = match &opened {
            Some(opened) => key_pair_of_identity(&opened.identity, opened.disk.dir(), config.key_pair.as_ref())?,
            None => config.key_pair.clone().unwrap_or_else(KeyPair::generate),
        };
        let me = NodeRef { id: keys.id(), host: out_host, port: out_port };
        let transport = Arc::new(Transport::new(Identity {
            me: me.clone(),
            protocol_id,
            subnet: config.subnet.clone(),
            encryption: config.encryption.clone(),
            max_peers: config.max_peers,
            max_frame_bytes: config.max_frame_bytes,
            keys,
            network_key: config.network_key.unwrap_or_else(open_network_key),
            noise: config.encryption == "Noise",
        }, Arc::new(Metrics::new())));
        let events = Arc::new(EventQueue::new());
        let settings = Settings {
            me: me.clone(),
            chord: config.chord.clone(),
            request_timeout: config.request_timeout.as_millis() as u64,
            failure_timeout: config.failure_timeout.as_millis() as u64,
            seed: rand::random(),
            max_peers: config.max_peers,
            // From the OS (`rand::random` is its thread generator, seeded from it): nobody can
            // guess it from the seed above.
            secret: rand::random(),
        };
        let mut engine = Engine::new(settings, Now { mono: 0, wall: clock::wall_millis() });
        let disk = opened.map(|opened| {
            let store = Store::with_values(Box::new(DiskValues(opened.disk.clone())), opened.index);
            engine.restore(Restored { store, high_water: opened.high_water, members: opened.members });
            opened.disk
        });
        let driver = Arc::new(Driver::new(engine, tokio::time::Instant::now(), transport.clone(), events.clone(), disk));
        driver.start_committer()?;
        // Ring members and clients connect by routing need (the engine's policy); only a plain
        // MeshSocket fills its table from peer exchange.
        let fill_table = config.peer_exchange && config.chord.is_none();
        let mesh = Arc::new(Mesh::new(me.clone(), transport.clone(), events.clone(), fill_table));
        let dispatch = Arc::new(Dispatch {
            driver: driver.clone(),
            mesh: mesh.clone(),
            events: events.clone(),
            transport: transport.clone(),
            chord: config.chord.is_some(),
        });
        let inbound: Weak<dyn Inbound> = Arc::downgrade(&dispatch) as Weak<dyn Inbound>;
        transport.start(listener, inbound);
        tokio::spawn(driver.clone().run_timers());
        // Set the first timer now: a node restored from its folder has a ring to find again
        // before anything else reaches it.
        driver.wake();
        Ok(Node { inner: Arc::new(Inner { config, me, protocol_id, transport, driver, mesh, events, _dispatch: dispatch }) })
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
        self.inner.transport.is_closed()
    }

    /// `Err(Closed)` once closed; `Err(Internal)` with the reason if the node stopped on its
    /// own (its engine panicked).
    fn ensure_open(&self) -> Result<()> {
        if let Some(reason) = self.inner.driver.failure() {
            return Err(Error::Internal(reason));
        }
        if self.is_closed() {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Connect to a node and complete the handshake; a lone ring member joins through it. A
    /// node too busy to take us names other members of its ring: we try those.
    pub async fn connect(&self, host: &str, port: u16) -> Result<PeerInfo> {
        self.ensure_open()?;
        let (_, info) = match self.inner.transport.dial(host, port, None).await {
            Err(Error::Rejected { code, reason, elsewhere }) if code == "busy" && !elsewhere.is_empty() => {
                let mut last = Error::Rejected { code, reason, elsewhere: Vec::new() };
                let mut connected = None;
                for member in elsewhere {
                    match self.inner.transport.dial(&member.host, member.port, Some(member.id)).await {
                        Ok(done) => {
                            connected = Some(done);
                            break;
                        }
                        Err(error) => last = error,
                    }
                }
                connected.ok_or(last)?
            }
            other => other?,
        };
        if self.inner.config.chord.is_some() && info.member {
            let peer = NodeRef { id: info.id, host: info.host.clone(), port: info.port };
            self.inner.driver.run_op(UserOp::JoinThrough(peer)).await?;
        }
        Ok(info)
    }

    /// Currently connected peers.
    pub fn peers(&self) -> Vec<PeerInfo> {
        self.inner.transport.peers()
    }

    /// Send packets to every node of the network (`to == None`) or to one node.
    pub async fn send(&self, packets: Vec<Vec<u8>>, to: Option<mesh::WhisperTo>) -> Result<()> {
        self.ensure_open()?;
        match to {
            None => self.inner.mesh.broadcast(packets),
            Some(target) => self.inner.mesh.whisper(packets, target).await,
        }
    }

    /// Wait for events; `None` once the node is closed and every event was taken.
    pub async fn next_events(&self, max: usize) -> Option<Vec<Event>> {
        self.inner.events.next_batch(max).await
    }

    /// Leave the ring if a member (handing data over), then release the port and every
    /// connection. Idempotent.
    pub async fn close(&self) {
        if !self.is_closed() && self.inner.driver.is_member() {
            let _ = self.inner.driver.run_op(UserOp::Leave).await;
        }
        self.shut_down("socket closed").await;
    }

    /// Drop every connection and the port at once, without leaving the ring or handing data
    /// over: to peers this looks like a crash.
    pub async fn destroy(&self) {
        self.shut_down("socket destroyed").await;
    }

    async fn shut_down(&self, reason: &str) {
        self.inner.driver.close();
        self.inner.transport.shut_down(reason);
        self.inner.events.close();
        self.inner.transport.listener_closed().await;
        self.inner.driver.close_storage().await;
    }
}

/// A node's identity record as its folder keeps it. Today the id itself (from a random salt);
/// once ids derive from a static key pair, the key pair. Opaque to the folder.
/// The identity record a data folder keeps: a format byte, then the static secret key (the
/// public key and so the id derive from it).
fn identity_record(keys: &KeyPair) -> Vec<u8> {
    let mut record = vec![IDENTITY_KEY_PAIR];
    record.extend_from_slice(&keys.secret);
    record
}

const IDENTITY_KEY_PAIR: u8 = 1;

/// The key pair of a folder's identity record; a `keyPair` option must be that one.
fn key_pair_of_identity(record: &[u8], dir: &std::path::Path, given: Option<&KeyPair>) -> Result<KeyPair> {
    let file = dir.join("identity");
    let keys = match record {
        [IDENTITY_KEY_PAIR, secret @ ..] if secret.len() == 32 => KeyPair::from_secret(secret.try_into().expect("32 bytes")),
        _ => return Err(Error::StorageCorrupt(format!("{}: an identity record of an unknown format ({} bytes)", file.display(), record.len()))),
    };
    if given.is_some_and(|given| given.public != keys.public) {
        return Err(Error::InvalidArgument(format!(
            "keyPair differs from the key pair kept in {} (a node keeps the identity of its dataDir): omit keyPair, or use another dataDir",
            file.display()
        )));
    }
    Ok(keys)
}
