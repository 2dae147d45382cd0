//! N-API binding of the chordnet engine. It converts JavaScript values to engine types and back
//! and decides nothing: every rule lives in `crates/chord`. Errors cross as JSON in the error
//! message (`{"code", "message", ...}`) so the TypeScript layer can rebuild typed errors, and
//! every call runs under `catch_unwind` so a Rust panic becomes a JS error, never an abort.

use chord::engine::{LookupInfo, OpOutput, ScanPage, Stats, UserOp};
use chord::error::{Error as NodeError, ERROR_CODES};
use chord::{Id, NodeRef};
use chord_node::config::{ChordConfig, Config, Durability, StorageConfig};
use chord_node::mesh::WhisperTo;
use chord_node::{Event, Node, PeerInfo};
use chord_noise::KeyPair;
use futures::FutureExt;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

// glibc's malloc serialises the tokio workers and Node's thread on its arena locks: with
// frames, values and futures allocated on one thread and freed on another, a quarter of the
// CPU of a busy ring went to malloc and to futex waits on those locks.
#[cfg(any(all(target_os = "linux", target_env = "gnu"), target_os = "windows"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Options of `startNode`. The TypeScript layer checks their types; the engine checks their
/// ranges (`Config::validate`), so the limits live in one place.
#[napi(object)]
pub struct StartOptions {
    pub host: String,
    pub port: u32,
    pub subnet: String,
    /// 'Noise' or 'Plaintext'.
    pub encryption: String,
    /// The node's static X25519 key pair (32 bytes each); a fresh one when absent.
    pub public_key: Option<Buffer>,
    pub secret_key: Option<Buffer>,
    /// The network key as `deriveNetworkKey` returns it (32 bytes); absent = an open network.
    pub network_key: Option<Buffer>,
    pub out_host: Option<String>,
    pub out_port: Option<u32>,
    pub max_peers: Option<u32>,
    pub max_frame_bytes: Option<u32>,
    pub request_timeout_ms: Option<u32>,
    pub failure_timeout_ms: Option<u32>,
    pub peer_exchange: Option<bool>,
    /// Present for a ChordSocket.
    pub chord: Option<ChordOptions>,
}

/// Chord options; absent ones take the engine's defaults.
#[napi(object)]
pub struct ChordOptions {
    pub replicas: Option<u32>,
    pub join: Option<bool>,
    pub events: Option<bool>,
    pub stabilize_ms: Option<u32>,
    pub max_clock_drift_ms: Option<u32>,
    /// Keep the node's entries, identity, clock and known members in this folder (absent: in
    /// memory).
    pub data_dir: Option<String>,
    /// 'sync' (default) or 'os': when a write counts as stored on a node with a `dataDir`.
    pub durability: Option<String>,
    /// Keep the identity in `dataDir`, drop the local entries and refill them from the ring.
    pub resync: Option<bool>,
    /// Bytes of values read from other members kept for repeated gets, under read leases.
    pub cache_bytes: Option<f64>,
}

#[napi(object)]
pub struct JsPeer {
    pub id: String,
    pub host: String,
    pub port: u32,
    pub outbound: bool,
    pub member: bool,
}

#[napi(object)]
pub struct JsNodeRef {
    pub id: String,
    pub host: String,
    pub port: u32,
}

/// One event; `kind` says which fields are set.
#[napi(object)]
pub struct JsEvent {
    /// 'connect' | 'disconnect' | 'message' | 'error' | 'add' | 'delete'
    pub kind: String,
    pub peer: Option<JsPeer>,
    pub reason: Option<String>,
    /// The peer a message arrived from (its id proved in the handshake).
    pub sender: Option<JsNodeRef>,
    /// Who a message says wrote it (a broadcast's is claimed, not checked).
    pub origin: Option<JsNodeRef>,
    pub time_ms: Option<f64>,
    pub packets: Option<Vec<Buffer>>,
    pub broadcast: Option<bool>,
    pub code: Option<String>,
    pub key: Option<Buffer>,
}

#[napi(object)]
pub struct JsLookup {
    pub owner: JsNodeRef,
    pub hops: u32,
}

#[napi(object)]
pub struct JsStats {
    pub member: bool,
    pub predecessor: Option<JsNodeRef>,
    pub successors: Vec<JsNodeRef>,
    pub fingers: u32,
    pub ring_size_estimate: f64,
    pub keys: f64,
    pub primary_keys: f64,
    pub connections: u32,
    pub operations: f64,
    pub mean_redirects: f64,
    /// Mean network legs per operation started here (0 answered here or from the read cache, 1
    /// straight to the owner).
    pub mean_hops: f64,
    /// Live ring members this node's member table lists (itself included), spread by gossip.
    pub members: u32,
    pub lookups: f64,
    pub mean_lookup_hops: f64,
    /// Ring events (add/delete) this node sent on to other nodes.
    pub events_forwarded: f64,
    /// Ring events dropped because their sender is not (or did not prove to be) a ring member.
    pub events_refused: f64,
    /// Listening nodes (`add`/`delete` listeners, `watch()`) this member knows of, ring-wide.
    pub subscribers: f64,
    /// Peers suspected of having failed (silent past the failure timeout) since start.
    pub suspicions: f64,
    /// Gaps closed by adopting a node of another ring (ring merging after a partition).
    pub merges: f64,
    /// Former neighbours and sampled members remembered for probing.
    pub contacts: u32,
    /// Frames refused before sending for exceeding the frame limit (0 unless there is a bug).
    pub oversized_frames: f64,
    /// Gets answered from the read cache (`cacheBytes`), and gets that looked there and missed.
    pub cache_hits: f64,
    pub cache_misses: f64,
    /// Entries and bytes in the read cache now (bytes count keys, values and ~100 B of
    /// bookkeeping per entry; at most `cacheBytes`).
    pub cache_entries: f64,
    pub cache_bytes: f64,
    /// As an owner: read leases granted, invalidations sent for writes, and holders whose lease
    /// a write waited out because they did not confirm (silent or cut off).
    pub leases_granted: f64,
    pub invalidations_sent: f64,
    pub lease_timeouts: f64,
    /// As an owner: read delegations granted to replicas (each lets one replica answer gets of
    /// the arc for a lease's time); as a replica: gets answered here for the key's owner.
    pub delegations_granted: f64,
    pub replica_reads: f64,
}

/// One kind of traffic since the node started: frames (length prefix included, before
/// encryption) queued to peers and received from them.
#[napi(object)]
pub struct JsTraffic {
    /// 'maintenance' | 'lookup' | 'data' | 'replication' | 'anti_entropy' | 'walk' |
    /// 'membership' | 'events' | 'mesh' | 'other'
    pub kind: String,
    pub sent_messages: f64,
    pub sent_bytes: f64,
    pub received_messages: f64,
    pub received_bytes: f64,
}

#[napi(object)]
pub struct JsScanPage {
    pub keys: Vec<Buffer>,
    /// Parallel to `keys` when values were asked for.
    pub values: Option<Vec<Buffer>>,
    pub cursor: Option<Buffer>,
}

/// One dict operation of a `submit` batch. `kind`: 0 = get, 1 = set, 2 = delete.
#[napi(object)]
pub struct JsOp {
    pub id: u32,
    pub kind: u32,
    pub key: Buffer,
    pub value: Option<Buffer>,
}

/// The outcome of a submitted operation: `value` for get/delete (absent = no such key), or
/// `error` as the same JSON an async method would reject with.
#[napi(object)]
pub struct JsDone {
    pub id: u32,
    pub value: Option<Buffer>,
    pub error: Option<String>,
}

struct Done {
    id: u32,
    result: std::result::Result<Option<Vec<u8>>, NodeError>,
}

/// Finished operations waiting to be collected by `CompletionQueue::next`, in batches: one
/// promise per batch instead of one per operation is what makes many operations in flight cheap.
#[derive(Default)]
struct Completions {
    queue: Mutex<Vec<Done>>,
    ready: Notify,
}

impl Completions {
    fn push(&self, done: Done) {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(done);
        self.ready.notify_one();
    }

    async fn next_batch(&self) -> Vec<Done> {
        loop {
            let batch = std::mem::take(&mut *self.queue.lock().unwrap_or_else(|p| p.into_inner()));
            if !batch.is_empty() {
                return batch;
            }
            self.ready.notified().await;
        }
    }
}

/// A batched operation: `kind` 0 = get, 1 = set, 2 = delete.
fn dict_op(kind: u32, key: Vec<u8>, value: Option<Vec<u8>>) -> Result<UserOp> {
    match kind {
        0 => Ok(UserOp::Get(key)),
        1 => Ok(UserOp::Set(key, value.unwrap_or_default())),
        2 => Ok(UserOp::Delete(key)),
        other => Err(invalid(format!("unknown operation kind {other}"))),
    }
}

/// The value a get read or a delete removed (`None` for a set, whose resolution is the news).
fn value_of(output: OpOutput) -> Option<Vec<u8>> {
    match output {
        OpOutput::Value(value) => value,
        OpOutput::Written { previous, .. } => previous,
        _ => None,
    }
}

fn invalid(message: String) -> Error {
    to_js_error(NodeError::InvalidArgument(message))
}

fn to_js_error(error: NodeError) -> Error {
    let mut details = serde_json_lite(&[("code", error.code()), ("message", &error.to_string())]);
    if let NodeError::ProtocolMismatch { ours, theirs, .. } = &error {
        details = serde_json_lite(&[("code", error.code()), ("message", &error.to_string()), ("ours", ours), ("theirs", theirs)]);
    }
    Error::new(Status::GenericFailure, details)
}

/// A flat JSON object of strings (the binding needs no JSON library for this).
fn serde_json_lite(fields: &[(&str, &str)]) -> String {
    let escape = |s: &str| s.chars().flat_map(|c| match c {
        '"' => "\\\"".chars().collect::<Vec<_>>(),
        '\\' => "\\\\".chars().collect(),
        c if (c as u32) < 0x20 => format!("\\u{:04x}", c as u32).chars().collect(),
        c => vec![c],
    }).collect::<String>();
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("\"{}\":\"{}\"", k, escape(v))).collect();
    format!("{{{}}}", body.join(","))
}

fn panic_error(payload: Box<dyn std::any::Any + Send>) -> Error {
    let text = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    Error::new(Status::GenericFailure, serde_json_lite(&[("code", "ERR_INTERNAL"), ("message", &format!("internal error (Rust panic): {text}"))]))
}

/// Await an engine future; a panic inside becomes a JS error.
async fn guarded<T>(future: impl Future<Output = std::result::Result<T, NodeError>>) -> Result<T> {
    match AssertUnwindSafe(future).catch_unwind().await {
        Ok(result) => result.map_err(to_js_error),
        Err(payload) => Err(panic_error(payload)),
    }
}

/// Run a synchronous engine call; a panic inside becomes a JS error.
fn guarded_sync<T>(call: impl FnOnce() -> T) -> Result<T> {
    std::panic::catch_unwind(AssertUnwindSafe(call)).map_err(panic_error)
}

fn node_ref(node: &NodeRef) -> JsNodeRef {
    JsNodeRef { id: node.id.to_hex(), host: node.host.clone(), port: node.port as u32 }
}

fn peer(info: &PeerInfo) -> JsPeer {
    JsPeer { id: info.id.to_hex(), host: info.host.clone(), port: info.port as u32, outbound: info.outbound, member: info.member }
}

fn empty_event(kind: &str) -> JsEvent {
    JsEvent { kind: kind.into(), peer: None, reason: None, sender: None, origin: None, time_ms: None, packets: None, broadcast: None, code: None, key: None }
}

fn event(event: Event) -> JsEvent {
    match event {
        Event::Connect(info) => JsEvent { peer: Some(peer(&info)), ..empty_event("connect") },
        Event::Disconnect { peer: info, reason } => JsEvent { peer: Some(peer(&info)), reason: Some(reason), ..empty_event("disconnect") },
        Event::Message(message) => JsEvent {
            sender: Some(node_ref(&message.sender)),
            origin: Some(node_ref(&message.origin)),
            time_ms: Some(message.time_ms as f64),
            packets: Some(message.packets.into_iter().map(Buffer::from).collect()),
            broadcast: Some(message.broadcast),
            ..empty_event("message")
        },
        Event::Error { code, message } => JsEvent { code: Some(code), reason: Some(message), ..empty_event("error") },
        Event::Added(key) => JsEvent { key: Some(key.into()), ..empty_event("add") },
        Event::Deleted(key) => JsEvent { key: Some(key.into()), ..empty_event("delete") },
    }
}

fn port(value: u32, what: &str) -> Result<u16> {
    u16::try_from(value).map_err(|_| invalid(format!("{what} must be an integer from 0 to 65535 (got {value})")))
}

/// Tokio worker threads for every node in this process: one core is left to Node's own thread,
/// which runs the JavaScript half of every operation. Measured on 2 cores (16-node ring, 256 in
/// flight): one worker gave 5–10% more throughput and lower set latency than one per core.
/// `TOKIO_WORKER_THREADS` overrides it.
#[napi_derive::module_init]
fn configure_runtime() {
    if std::env::var_os("TOKIO_WORKER_THREADS").is_some() {
        return; // tokio's default builder reads it
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().worker_threads(cores.saturating_sub(1).max(1)).build();
    if let Ok(runtime) = runtime {
        napi::bindgen_prelude::create_custom_tokio_runtime(runtime);
    }
}

/// The wire protocol's version (docs/PROTOCOL.md), which peers must share.
#[napi]
pub fn protocol_version() -> u32 {
    chord::protocol::PROTOCOL_VERSION as u32
}

/// The id of a protocol: a hash of the protocol version, subnet and encryption (32 hex digits).
/// The network key is not part of it.
#[napi]
pub fn protocol_id(subnet: String, encryption: String) -> String {
    chord::protocol::protocol_id(&subnet, &encryption).to_hex()
}

/// A 32-byte key from a Buffer.
fn key32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes.try_into().map_err(|_| invalid(format!("{what} must be 32 bytes (got {})", bytes.len())))
}

/// A static key pair: `publicKey` and `secretKey`, 32 bytes each.
#[napi(object)]
pub struct JsKeyPair {
    pub public_key: Buffer,
    pub secret_key: Buffer,
}

fn js_key_pair(pair: &KeyPair) -> JsKeyPair {
    JsKeyPair { public_key: pair.public.to_vec().into(), secret_key: pair.secret.to_vec().into() }
}

/// A fresh static X25519 key pair for a node (its id is `nodeIdOf(publicKey)`).
#[napi]
pub fn generate_key_pair() -> JsKeyPair {
    js_key_pair(&KeyPair::generate())
}

/// The key pair of a 32-byte secret key.
#[napi]
pub fn key_pair_from_secret(secret_key: Buffer) -> Result<JsKeyPair> {
    Ok(js_key_pair(&KeyPair::from_secret(key32(&secret_key, "secretKey")?)))
}

/// The node id (32 hex digits) that a 32-byte public key gives its node.
#[napi]
pub fn node_id_of(public_key: Buffer) -> Result<String> {
    Ok(chord::Id::of_public_key(&key32(&public_key, "publicKey")?).to_hex())
}

/// The 32-byte network key of a passphrase (Argon2id) or of random bytes (BLAKE3) on a
/// subnet: the same key on two subnets gives two network keys.
#[napi]
pub fn derive_network_key(key: Either<String, Buffer>, subnet: String) -> Result<Buffer> {
    let derived = match &key {
        Either::A(passphrase) => chord_noise::network_key_from_passphrase(passphrase, &subnet),
        Either::B(bytes) => chord_noise::network_key_from_bytes(bytes, &subnet),
    };
    Ok(derived.map_err(to_js_error)?.to_vec().into())
}

fn config_of(options: StartOptions) -> Result<Config> {
    let mut config = Config::new(options.host.clone(), port(options.port, "port")?);
    config.subnet = options.subnet;
    config.encryption = options.encryption;
    config.key_pair = match (&options.public_key, &options.secret_key) {
        (Some(public), Some(secret)) => Some(KeyPair { public: key32(public, "keyPair.publicKey")?, secret: key32(secret, "keyPair.secretKey")? }),
        (None, None) => None,
        _ => return Err(invalid("keyPair needs both publicKey and secretKey".into())),
    };
    if let Some(key) = &options.network_key {
        config.network_key = Some(key32(key, "networkKey (as deriveNetworkKey returns it)")?);
    }
    if let Some(host) = options.out_host {
        config.out_addr = Some((host, port(options.out_port.unwrap_or(options.port), "outAddr port")?));
    }
    if let Some(max_peers) = options.max_peers {
        config.max_peers = max_peers as usize;
    }
    if let Some(max_frame) = options.max_frame_bytes {
        config.max_frame_bytes = max_frame as usize;
    }
    if let Some(timeout) = options.request_timeout_ms {
        config.request_timeout = Duration::from_millis(timeout as u64);
    }
    if let Some(timeout) = options.failure_timeout_ms {
        config.failure_timeout = Duration::from_millis(timeout as u64);
    }
    if let Some(exchange) = options.peer_exchange {
        config.peer_exchange = exchange;
    }
    if let Some(chord) = &options.chord {
        config.storage = match (&chord.data_dir, &chord.durability, chord.resync) {
            (Some(dir), durability, resync) => Some(StorageConfig {
                dir: dir.into(),
                durability: durability.as_deref().map_or(Ok(Durability::Sync), Durability::parse).map_err(to_js_error)?,
                resync: resync.unwrap_or(false),
            }),
            (None, None, None | Some(false)) => None,
            (None, _, _) => return Err(invalid("durability and resync need a dataDir".into())),
        };
    }
    config.chord = options.chord.map(|c| {
        let defaults = ChordConfig::default();
        ChordConfig {
            replicas: c.replicas.map_or(defaults.replicas, |r| r as usize),
            join: c.join.unwrap_or(defaults.join),
            events: c.events.unwrap_or(defaults.events),
            stabilize_interval: c.stabilize_ms.map_or(defaults.stabilize_interval, |ms| Duration::from_millis(ms as u64)),
            successor_list: None,
            max_clock_drift: c.max_clock_drift_ms.map_or(defaults.max_clock_drift, |ms| Duration::from_millis(ms as u64)),
            // Out of range (negative, fractional, huge) saturates and is refused by `validate`.
            cache_bytes: c.cache_bytes.map_or(defaults.cache_bytes, |bytes| if bytes.fract() == 0.0 && bytes >= 0.0 { bytes.min(usize::MAX as f64) as usize } else { usize::MAX }),
        }
    });
    Ok(config)
}

/// Check start options against the engine's limits without starting anything (so a
/// constructor can throw at once); throws `ERR_INVALID_ARGUMENT` naming the option.
#[napi]
pub fn validate_options(options: StartOptions) -> Result<()> {
    config_of(options)?.validate().map_err(to_js_error)
}

/// Start a node listening on `host:port` (port 0 = any free port).
#[napi]
pub async fn start_node(options: StartOptions) -> Result<NativeNode> {
    let config = config_of(options)?;
    let node = guarded(Node::start(config)).await?;
    Ok(NativeNode { node })
}

/// `JsLimits` and `limits()` from the engine's one list of limits (`chord::with_limits!`): every
/// field and its documentation come from `crates/chord/src/config.rs`, nothing is restated.
macro_rules! js_limits {
    ($( $(#[doc = $doc:literal])* $name:ident, $js:ident : $ty:ty = $value:expr; )*) => {
        /// The engine's limits and defaults, for the TypeScript layer (which restates none).
        /// Durations are in milliseconds (their names end in `Ms`).
        #[napi(object)]
        pub struct JsLimits {
            $( $(#[doc = $doc])* pub $js: f64, )*
        }

        /// The engine's limits and defaults.
        #[napi]
        pub fn limits() -> JsLimits {
            use chord::config::LimitValue;
            JsLimits { $( $js: chord::config::$name.exported(), )* }
        }
    };
}

chord::with_limits!(js_limits);

/// Every error code the engine can raise (each maps to one TypeScript error class).
#[napi]
pub fn error_codes() -> Vec<String> {
    ERROR_CODES.iter().map(|c| c.to_string()).collect()
}

/// A running node. Every method is a thin conversion around `chord_node::Node`.
#[napi]
pub struct NativeNode {
    node: Node,
}

/// Where the outcomes of `submit`ted operations are collected. One queue serves every node of
/// a JavaScript realm: with one pending `next()` for all of them, a process running many
/// nodes crosses to JavaScript once per batch of the whole process instead of once per node
/// (each crossing of an async call sets up and tears down a wake-up handle).
#[napi]
pub struct CompletionQueue {
    inner: Arc<Completions>,
}

#[napi]
impl CompletionQueue {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> CompletionQueue {
        CompletionQueue { inner: Arc::default() }
    }

    /// Outcomes of submitted operations, waiting for at least one.
    #[napi]
    pub async fn next(&self) -> Result<Vec<JsDone>> {
        let inner = self.inner.clone();
        let batch = inner.next_batch().await;
        Ok(batch
            .into_iter()
            .map(|done| match done.result {
                Ok(value) => JsDone { id: done.id, value: value.map(Buffer::from), error: None },
                Err(error) => JsDone { id: done.id, value: None, error: Some(to_js_error(error).reason.clone()) },
            })
            .collect())
    }
}

#[napi]
impl NativeNode {
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.node.id().to_hex()
    }

    #[napi(getter)]
    pub fn host(&self) -> String {
        self.node.addr().0
    }

    #[napi(getter)]
    pub fn port(&self) -> u32 {
        self.node.addr().1 as u32
    }

    #[napi]
    pub async fn connect(&self, host: String, port_number: u32) -> Result<JsPeer> {
        let target_port = port(port_number, "port")?;
        let info = guarded(self.node.connect(&host, target_port)).await?;
        Ok(peer(&info))
    }

    #[napi]
    pub fn peers(&self) -> Result<Vec<JsPeer>> {
        guarded_sync(|| self.node.peers().iter().map(peer).collect())
    }

    /// Broadcast when `to` is absent; else whisper to the node with that id (dialing
    /// `toHost:toPort` first if not connected).
    #[napi]
    pub async fn send(&self, packets: Vec<Buffer>, to: Option<String>, to_host: Option<String>, to_port: Option<u32>) -> Result<()> {
        let packets: Vec<Vec<u8>> = packets.iter().map(|p| p.to_vec()).collect();
        let target = match to {
            None => None,
            Some(id) => {
                let id = Id::from_hex(&id).ok_or_else(|| invalid(format!("`to` must be a node id of 32 hex digits (got {id:?})")))?;
                let addr = match (to_host, to_port) {
                    (Some(host), Some(p)) => Some((host, port(p, "port")?)),
                    _ => None,
                };
                Some(WhisperTo { id, addr })
            }
        };
        guarded(self.node.send(packets, target)).await
    }

    /// The next events (at most `max`), waiting for one; `null` once the node is closed.
    #[napi]
    pub async fn next_events(&self, max: u32) -> Result<Option<Vec<JsEvent>>> {
        let node = self.node.clone();
        let batch = guarded(async move { Ok(node.next_events(max as usize).await) }).await?;
        Ok(batch.map(|events| events.into_iter().map(event).collect()))
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        let node = self.node.clone();
        guarded(async move {
            node.close().await;
            Ok(())
        })
        .await
    }

    /// Close at once without leaving the ring or handing data over (peers see a crash).
    #[napi]
    pub async fn destroy(&self) -> Result<()> {
        let node = self.node.clone();
        guarded(async move {
            node.destroy().await;
            Ok(())
        })
        .await
    }

    /// Start a batch of dict operations; their outcomes arrive through `queue`, under the ids
    /// given.
    #[napi]
    pub fn submit(&self, ops: Vec<JsOp>, queue: &CompletionQueue) -> Result<()> {
        for op in ops {
            let (id, is_set) = (op.id, op.kind == 1);
            let user_op = dict_op(op.kind, op.key.to_vec(), op.value.map(|v| v.to_vec()))?;
            let completions = queue.inner.clone();
            guarded_sync(|| self.node.submit(user_op, move |result| completions.push(Done { id, result: result.map(|output| if is_set { None } else { value_of(output) }) })))?;
        }
        Ok(())
    }

    #[napi]
    pub async fn get(&self, key: Buffer) -> Result<Option<Buffer>> {
        let key = key.to_vec();
        Ok(guarded(self.node.get(key)).await?.map(Buffer::from))
    }

    #[napi]
    pub async fn set(&self, key: Buffer, value: Buffer) -> Result<()> {
        let (key, value) = (key.to_vec(), value.to_vec());
        guarded(self.node.set(key, value)).await
    }

    /// Delete a key; resolves to its previous value, or `null` when it was absent.
    #[napi]
    pub async fn delete(&self, key: Buffer) -> Result<Option<Buffer>> {
        let key = key.to_vec();
        Ok(guarded(self.node.delete(key)).await?.map(Buffer::from))
    }

    #[napi]
    pub async fn lookup(&self, key: Buffer) -> Result<JsLookup> {
        let key = key.to_vec();
        let LookupInfo { owner, hops } = guarded(self.node.lookup(key)).await?;
        Ok(JsLookup { owner: node_ref(&owner), hops })
    }

    /// Watch the keys starting with one of `prefixes` (an empty prefix: every key; none: stop).
    #[napi]
    pub fn watch(&self, prefixes: Vec<Buffer>) -> Result<()> {
        guarded_sync(|| self.node.watch(prefixes.iter().map(|p| p.to_vec()).collect()))?.map_err(to_js_error)
    }

    /// The value this node holds locally for `key` (owner or replica), without routing.
    #[napi]
    pub fn local_get(&self, key: Buffer) -> Result<Option<Buffer>> {
        guarded_sync(|| self.node.local_get(&key).map(Buffer::from))
    }

    #[napi]
    pub fn stats(&self) -> Result<JsStats> {
        guarded_sync(|| {
            let s: Stats = self.node.stats();
            JsStats {
                member: s.member,
                predecessor: s.predecessor.as_ref().map(node_ref),
                successors: s.successors.iter().map(node_ref).collect(),
                fingers: s.fingers as u32,
                ring_size_estimate: s.ring_size_estimate,
                keys: s.keys as f64,
                primary_keys: s.primary_keys as f64,
                connections: s.connections as u32,
                operations: s.operations as f64,
                mean_redirects: s.mean_redirects,
                mean_hops: s.mean_hops,
                members: s.members as u32,
                lookups: s.lookups as f64,
                mean_lookup_hops: s.mean_lookup_hops,
                events_forwarded: s.events_forwarded as f64,
                events_refused: s.events_refused as f64,
                subscribers: s.subscribers as f64,
                suspicions: s.suspicions as f64,
                merges: s.merges as f64,
                contacts: s.contacts as u32,
                oversized_frames: s.oversized_frames as f64,
                cache_hits: s.cache_hits as f64,
                cache_misses: s.cache_misses as f64,
                cache_entries: s.cache_entries as f64,
                cache_bytes: s.cache_bytes as f64,
                leases_granted: s.leases_granted as f64,
                invalidations_sent: s.invalidations_sent as f64,
                lease_timeouts: s.lease_timeouts as f64,
                delegations_granted: s.delegations_granted as f64,
                replica_reads: s.replica_reads as f64,
            }
        })
    }

    /// A get answered at once if it can be (the read cache under a lease, or a key this node
    /// owns): the value, `null` when absent, `undefined` when it must go through `get`.
    #[napi(ts_return_type = "Buffer | null | undefined")]
    pub fn get_now(&self, key: Buffer) -> Result<Either3<Buffer, Null, Undefined>> {
        guarded_sync(|| match self.node.get_now(&key) {
            Some(Some(value)) => Either3::A(Buffer::from(value)),
            Some(None) => Either3::B(Null),
            None => Either3::C(()),
        })
    }

    /// One page of a walk over the ring's keys; pass `cursor` back for the next page.
    #[napi]
    pub async fn scan(&self, cursor: Option<Buffer>, with_values: bool, limit: u32) -> Result<JsScanPage> {
        let cursor = cursor.map(|c| c.to_vec());
        let ScanPage { items, cursor } = guarded(self.node.scan(cursor, with_values, limit)).await?;
        let mut keys = Vec::with_capacity(items.len());
        let mut values = Vec::with_capacity(items.len());
        for (key, value) in items {
            keys.push(Buffer::from(key));
            values.push(Buffer::from(value.unwrap_or_default()));
        }
        Ok(JsScanPage { keys, values: with_values.then_some(values), cursor: cursor.map(Buffer::from) })
    }

    #[napi]
    pub async fn join(&self) -> Result<()> {
        guarded(self.node.join()).await
    }

    #[napi]
    pub async fn unjoin(&self) -> Result<()> {
        guarded(self.node.unjoin()).await
    }
}

// ─── Observation: metrics and member info (the web view, `/metrics`) ─────────────────────────
// Read-only snapshots converted to JS types. u64 counters cross as f64 (exact below 2^53).

/// A histogram's non-empty buckets as parallel arrays (`indexes[i]` holds `counts[i]`).
#[napi(object)]
pub struct JsHistogram {
    pub count: f64,
    /// Sum of observed values: microseconds for latencies, hops for lookups.
    pub sum: f64,
    pub indexes: Vec<u32>,
    pub counts: Vec<f64>,
}

#[napi(object)]
pub struct JsOpMetrics {
    pub latency: JsHistogram,
    /// Error codes (`ERR_TIMEOUT`, ..., or `other`) parallel to `errorCounts`.
    pub error_codes: Vec<String>,
    pub error_counts: Vec<f64>,
}

/// Cumulative counters of a node since it started.
#[napi(object)]
pub struct JsMetrics {
    pub get: JsOpMetrics,
    pub set: JsOpMetrics,
    pub delete: JsOpMetrics,
    /// Bucket i counts greedy lookups of i hops (the last bucket: that many or more).
    pub lookup_hops: JsHistogram,
    pub anti_entropy_syncs: f64,
    pub repaired_pushed: f64,
    pub repaired_fetched: f64,
    pub suspicions: f64,
    pub connections_opened: f64,
    pub connections_closed: f64,
    /// Frames refused before sending for exceeding the frame limit (0 unless there is a bug).
    pub oversized_frames: f64,
    /// Messages and bytes by what they are for, sent and received.
    pub traffic: Vec<JsTraffic>,
}

/// What a node reports about itself (local, or asked over the wire with `memberInfo`).
#[napi(object)]
pub struct JsMemberInfo {
    pub node: JsNodeRef,
    pub member: bool,
    pub predecessor: Option<JsNodeRef>,
    pub successors: Vec<JsNodeRef>,
    pub fingers: Vec<JsNodeRef>,
    pub known: Vec<JsNodeRef>,
    pub keys: f64,
    pub primary_keys: f64,
    pub bytes: f64,
    pub connections: u32,
    pub ring_size_estimate: f64,
    pub metrics: JsMetrics,
}

/// Bucket layout of the metrics' histograms, so JavaScript never restates it.
#[napi(object)]
pub struct JsHistogramLayout {
    /// Exclusive upper bound of each latency bucket in microseconds; the last is `Infinity`.
    pub latency_upper_bounds_micros: Vec<f64>,
    /// Number of lookup-hop buckets (bucket i = i hops; the last also holds longer lookups).
    pub hop_buckets: u32,
}

fn js_histogram(h: &chord::metrics::HistogramSnapshot) -> JsHistogram {
    JsHistogram {
        count: h.count as f64,
        sum: h.sum as f64,
        indexes: h.buckets.iter().map(|(i, _)| *i as u32).collect(),
        counts: h.buckets.iter().map(|(_, n)| *n as f64).collect(),
    }
}

fn js_op(op: &chord::metrics::OpSnapshot) -> JsOpMetrics {
    JsOpMetrics {
        latency: js_histogram(&op.latency),
        error_codes: op.errors.iter().map(|(code, _)| code.clone()).collect(),
        error_counts: op.errors.iter().map(|(_, n)| *n as f64).collect(),
    }
}

fn js_metrics(m: &chord::metrics::MetricsSnapshot) -> JsMetrics {
    JsMetrics {
        get: js_op(&m.get),
        set: js_op(&m.set),
        delete: js_op(&m.delete),
        lookup_hops: js_histogram(&m.lookup_hops),
        anti_entropy_syncs: m.anti_entropy_syncs as f64,
        repaired_pushed: m.repaired_pushed as f64,
        repaired_fetched: m.repaired_fetched as f64,
        suspicions: m.suspicions as f64,
        connections_opened: m.connections_opened as f64,
        connections_closed: m.connections_closed as f64,
        oversized_frames: m.oversized_frames as f64,
        traffic: m
            .traffic
            .iter()
            .map(|t| JsTraffic {
                kind: t.kind.clone(),
                sent_messages: t.sent_messages as f64,
                sent_bytes: t.sent_bytes as f64,
                received_messages: t.received_messages as f64,
                received_bytes: t.received_bytes as f64,
            })
            .collect(),
    }
}

fn js_member_info(info: &chord::metrics::MemberInfo) -> JsMemberInfo {
    JsMemberInfo {
        node: node_ref(&info.node),
        member: info.member,
        predecessor: info.predecessor.as_ref().map(node_ref),
        successors: info.successors.iter().map(node_ref).collect(),
        fingers: info.fingers.iter().map(node_ref).collect(),
        known: info.known.iter().map(node_ref).collect(),
        keys: info.keys as f64,
        primary_keys: info.primary_keys as f64,
        bytes: info.bytes as f64,
        connections: info.connections,
        ring_size_estimate: info.ring_size_estimate,
        metrics: js_metrics(&info.metrics),
    }
}

/// The bucket layout of `metrics()` histograms.
#[napi]
pub fn histogram_layout() -> JsHistogramLayout {
    use chord::metrics::{bucket_upper_bound, HOP_BUCKETS, LATENCY_BUCKETS};
    JsHistogramLayout {
        latency_upper_bounds_micros: (0..LATENCY_BUCKETS).map(|i| match bucket_upper_bound(i) { u64::MAX => f64::INFINITY, b => b as f64 }).collect(),
        hop_buckets: HOP_BUCKETS as u32,
    }
}

#[napi]
impl NativeNode {
    /// This node's counters and latency histograms (cheap: no lock).
    #[napi]
    pub fn metrics(&self) -> Result<JsMetrics> {
        guarded_sync(|| js_metrics(&self.node.metrics()))
    }

    /// This node's routing state, holdings and counters.
    #[napi]
    pub fn info(&self) -> Result<JsMemberInfo> {
        guarded_sync(|| js_member_info(&self.node.info()))
    }

    /// Another node's `info()`, asked over the wire (`Request::Info`).
    #[napi]
    pub async fn member_info(&self, id: String, host: String, port_number: u32) -> Result<JsMemberInfo> {
        let id = Id::from_hex(&id).ok_or_else(|| invalid(format!("`id` must be a node id of 32 hex digits (got {id:?})")))?;
        let target = NodeRef { id, host, port: port(port_number, "port")? };
        let info = guarded(self.node.member_info(&target)).await?;
        Ok(js_member_info(&info))
    }
}
