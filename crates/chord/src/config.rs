//! The one home of every user-facing limit and default, and of the checks on a node's
//! configuration. The binding converts JavaScript options into [`Config`] and calls
//! [`Config::validate`]; the TypeScript layer reads the limits from [`Limits`] through the
//! binding instead of restating them. Internal tuning constants (batch sizes, periods of
//! background work) sit at the top of the engine module that uses them.

use crate::error::{Error, Result};
use crate::id::KeyPair;
use std::path::PathBuf;
use std::time::Duration;

/// Largest key accepted by the dict (64 KiB).
pub const MAX_KEY_BYTES: usize = 64 << 10;
/// Largest value accepted by the dict (1 MiB); a value must fit in one frame with its key.
pub const MAX_VALUE_BYTES: usize = 1 << 20;
/// Most bytes one item (key, value, version) takes on the wire: the largest key and value and
/// a kilobyte for its version and encoding.
pub const MAX_ITEM_WIRE_BYTES: usize = MAX_KEY_BYTES + MAX_VALUE_BYTES + 1024;
/// Bulk messages — hand-offs, replication batches, anti-entropy lists and fetches, pages of a
/// ring walk — stop taking items once past this many bytes; with the one item that crossed it
/// they stay under [`MIN_CHORD_FRAME_BYTES`], so a value of the maximum size always moves.
pub const DATA_BUDGET_BYTES: usize = MAX_ITEM_WIRE_BYTES;
/// Smallest `maxFrameBytes` a ChordSocket accepts: a full bulk message plus the item that
/// crossed its budget, with room for the envelope.
pub const MIN_CHORD_FRAME_BYTES: usize = 2 * MAX_ITEM_WIRE_BYTES + (64 << 10);
/// Default largest frame body accepted (4 MiB): room for the largest value plus framing, yet
/// far from the 4 GiB the old p2p.today framing allowed a hostile peer to announce.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 4 << 20;
/// Smallest configurable frame limit: a handshake and a small message must fit.
pub const MIN_FRAME_BYTES: usize = 4 << 10;
/// Largest configurable frame limit (1 GiB): beyond that one peer could pin a gigabyte.
pub const MAX_FRAME_BYTES: usize = 1 << 30;
/// Default bound on open peer connections (inbound and outbound together).
pub const DEFAULT_MAX_PEERS: usize = 64;
/// Largest configurable `max_peers` (one port's worth of peers).
pub const MAX_PEERS: usize = 65_535;
/// Default wait for any single response from a peer.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest configurable request timeout (10 minutes).
pub const MAX_REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Default failure timeout: a peer silent this long while we wait on it is probed (at half of
/// it) and suspected (at all of it), so a cut link is routed around in about 2 s.
pub const DEFAULT_FAILURE_TIMEOUT: Duration = Duration::from_secs(2);
/// Shortest configurable failure timeout (below it a busy peer would be suspected).
pub const MIN_FAILURE_TIMEOUT: Duration = Duration::from_millis(100);
/// A connection must complete its handshake within this time or be dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections allowed to be mid-handshake at once, beyond `max_peers`.
pub const MAX_PENDING_HANDSHAKES: usize = 64;
/// Frames queued for one peer before it is considered too slow and disconnected.
pub const SEND_QUEUE_FRAMES: usize = 8192;
/// Events kept waiting for the user before new ones are dropped (and one error says so).
pub const MAX_QUEUED_EVENTS: usize = 100_000;
/// Default number of copies of each key (the owner and its next two successors).
pub const DEFAULT_REPLICAS: usize = 3;
/// Most copies of a key a ring can be configured for.
pub const MAX_REPLICAS: usize = 64;
/// Default period of stabilize / check-predecessor / fix-fingers.
pub const DEFAULT_STABILIZE_INTERVAL: Duration = Duration::from_millis(250);
/// Shortest stabilize period (below it maintenance traffic would swamp a ring).
pub const MIN_STABILIZE_INTERVAL: Duration = Duration::from_millis(10);
/// Longest stabilize period (10 minutes).
pub const MAX_STABILIZE_INTERVAL: Duration = Duration::from_secs(600);
/// An operation whose owner stays unreachable this long fails with `ERR_UNAVAILABLE`.
pub const OPERATION_DEADLINE: Duration = Duration::from_secs(15);
/// Tombstones are kept this long, longer than any replica can stay out of sync in practice.
pub const TOMBSTONE_HORIZON: Duration = Duration::from_secs(600);
/// Default bound on how far ahead of our wall clock a peer's version may be (60 s: far beyond
/// NTP-synchronised skew, far below the "end of time" a hostile version could claim).
pub const DEFAULT_MAX_CLOCK_DRIFT: Duration = Duration::from_secs(60);
/// Smallest configurable drift bound (1 s: below it, ordinary skew would refuse writes).
pub const MIN_CLOCK_DRIFT: Duration = Duration::from_secs(1);
/// Largest configurable drift bound (1 day).
pub const MAX_CLOCK_DRIFT: Duration = Duration::from_secs(86_400);
/// The encryptions a node can speak: Noise (the default) or Plaintext (debugging only).
pub const ENCRYPTIONS: [&str; 2] = ["Noise", "Plaintext"];
/// The default encryption.
pub const DEFAULT_ENCRYPTION: &str = "Noise";
/// Shortest network key given as bytes: shorter keys are guessable (use a passphrase instead).
pub const MIN_NETWORK_KEY_BYTES: usize = 16;
/// Block cache of a node's on-disk store (`dataDir`). Set explicitly, so that a node's memory
/// grows with its number of keys (the index) and not with the bytes of its values: 32 MiB keeps
/// the hot blocks of a few hundred thousand 1 KiB values.
pub const STORE_CACHE_BYTES: u64 = 32 << 20;
/// One group commit takes at most this many staged bytes; what was staged beyond waits for
/// the next commit. It also bounds the tail a crash can tear off the journal, which the start
/// tells apart from a damaged journal.
pub const MAX_COMMIT_BYTES: usize = 4 << 20;

/// When a write counts as stored on a node with a `dataDir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// After the store's journal was flushed to the disk (`fdatasync`): survives a process
    /// kill, an OS crash and a power loss.
    Sync,
    /// After it was handed to the operating system (written, not flushed); the journal is
    /// flushed to the disk once a second. Survives a process kill; an OS crash or power loss
    /// may lose the last second of acknowledged writes.
    Os,
}

impl Durability {
    pub fn parse(text: &str) -> Result<Durability> {
        match text {
            "sync" => Ok(Durability::Sync),
            "os" => Ok(Durability::Os),
            other => Err(Error::InvalidArgument(format!("durability must be 'sync' or 'os' (got {other:?})"))),
        }
    }
}

/// Where and how a node keeps what it holds across restarts.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// The node's folder: its identity, its entries, its clock's high-water mark, its members.
    pub dir: PathBuf,
    pub durability: Durability,
    /// Keep the identity, drop the entries (a damaged store) and refill from the ring.
    pub resync: bool,
}
/// The limits a binding shows its users, in one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    pub default_max_frame_bytes: usize,
    pub min_frame_bytes: usize,
    pub min_chord_frame_bytes: usize,
    pub max_frame_bytes: usize,
    pub default_max_peers: usize,
    pub max_peers: usize,
    pub default_request_timeout_ms: u64,
    pub max_request_timeout_ms: u64,
    pub default_failure_timeout_ms: u64,
    pub min_failure_timeout_ms: u64,
    pub default_replicas: usize,
    pub max_replicas: usize,
    pub default_stabilize_ms: u64,
    pub min_stabilize_ms: u64,
    pub max_stabilize_ms: u64,
    pub operation_deadline_ms: u64,
    pub max_queued_events: usize,
    pub default_max_clock_drift_ms: u64,
    pub min_clock_drift_ms: u64,
    pub max_clock_drift_ms: u64,
    pub min_network_key_bytes: usize,
}

pub const LIMITS: Limits = Limits {
    max_key_bytes: MAX_KEY_BYTES,
    max_value_bytes: MAX_VALUE_BYTES,
    default_max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
    min_frame_bytes: MIN_FRAME_BYTES,
    min_chord_frame_bytes: MIN_CHORD_FRAME_BYTES,
    max_frame_bytes: MAX_FRAME_BYTES,
    default_max_peers: DEFAULT_MAX_PEERS,
    max_peers: MAX_PEERS,
    default_request_timeout_ms: DEFAULT_REQUEST_TIMEOUT.as_millis() as u64,
    max_request_timeout_ms: MAX_REQUEST_TIMEOUT.as_millis() as u64,
    default_failure_timeout_ms: DEFAULT_FAILURE_TIMEOUT.as_millis() as u64,
    min_failure_timeout_ms: MIN_FAILURE_TIMEOUT.as_millis() as u64,
    default_replicas: DEFAULT_REPLICAS,
    max_replicas: MAX_REPLICAS,
    default_stabilize_ms: DEFAULT_STABILIZE_INTERVAL.as_millis() as u64,
    min_stabilize_ms: MIN_STABILIZE_INTERVAL.as_millis() as u64,
    max_stabilize_ms: MAX_STABILIZE_INTERVAL.as_millis() as u64,
    operation_deadline_ms: OPERATION_DEADLINE.as_millis() as u64,
    max_queued_events: MAX_QUEUED_EVENTS,
    default_max_clock_drift_ms: DEFAULT_MAX_CLOCK_DRIFT.as_millis() as u64,
    min_clock_drift_ms: MIN_CLOCK_DRIFT.as_millis() as u64,
    max_clock_drift_ms: MAX_CLOCK_DRIFT.as_millis() as u64,
    min_network_key_bytes: MIN_NETWORK_KEY_BYTES,
};

/// Everything a node is started with.
#[derive(Clone, Debug)]
pub struct Config {
    pub host: String,
    pub port: u16,
    /// Address advertised to peers, when it differs from the bound one (NAT, 0.0.0.0).
    pub out_addr: Option<(String, u16)>,
    pub subnet: String,
    /// `"Noise"` (the default) or `"Plaintext"`.
    pub encryption: String,
    /// The node's static key pair (its id derives from it); a fresh one when `None`.
    pub key_pair: Option<KeyPair>,
    /// The pre-shared key mixed into every Noise handshake (`noise::network_key_from_*`);
    /// `None` = an open network (`noise::open_network_key`).
    pub network_key: Option<[u8; 32]>,
    pub max_peers: usize,
    pub max_frame_bytes: usize,
    pub request_timeout: Duration,
    /// A peer silent this long while we wait on it is suspected; at most `request_timeout`.
    pub failure_timeout: Duration,
    /// Connect to peers learned through peer exchange, up to `max_peers`.
    pub peer_exchange: bool,
    /// Present for a ChordSocket.
    pub chord: Option<ChordConfig>,
    /// Present when the node keeps its data on disk (`dataDir`); in memory otherwise.
    pub storage: Option<StorageConfig>,
}

/// The Chord part of a node's configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ChordConfig {
    pub replicas: usize,
    /// Take part in the ring (store and route). `false` = a client that only reads and writes.
    pub join: bool,
    /// Report `Added` / `Deleted` events for the whole ring.
    pub events: bool,
    pub stabilize_interval: Duration,
    /// Successor-list length when set (at least 2); by default `max(replicas + 1, 4)`. Not a
    /// user option: the simulator's studies vary it (Stoica et al.'s `r`).
    pub successor_list: Option<usize>,
    /// Versions further ahead of our wall clock than this are refused, never observed.
    pub max_clock_drift: Duration,
}

impl Default for ChordConfig {
    fn default() -> Self {
        ChordConfig {
            replicas: DEFAULT_REPLICAS,
            join: true,
            events: true,
            stabilize_interval: DEFAULT_STABILIZE_INTERVAL,
            successor_list: None,
            max_clock_drift: DEFAULT_MAX_CLOCK_DRIFT,
        }
    }
}

impl ChordConfig {
    /// At least r + 1 successors, so r − 1 replicas remain placeable after a failure.
    pub fn successor_list_len(&self) -> usize {
        self.successor_list.map_or((self.replicas + 1).max(4), |len| len.max(2))
    }

    pub fn validate(&self) -> Result<()> {
        in_range("replicas", self.replicas as u64, 1, MAX_REPLICAS as u64)?;
        in_range(
            "stabilizeMs",
            self.stabilize_interval.as_millis() as u64,
            MIN_STABILIZE_INTERVAL.as_millis() as u64,
            MAX_STABILIZE_INTERVAL.as_millis() as u64,
        )?;
        in_range(
            "maxClockDriftMs",
            self.max_clock_drift.as_millis() as u64,
            MIN_CLOCK_DRIFT.as_millis() as u64,
            MAX_CLOCK_DRIFT.as_millis() as u64,
        )
    }
}

impl Config {
    pub fn new(host: impl Into<String>, port: u16) -> Config {
        Config {
            host: host.into(),
            port,
            out_addr: None,
            subnet: String::new(),
            encryption: DEFAULT_ENCRYPTION.into(),
            key_pair: None,
            network_key: None,
            max_peers: DEFAULT_MAX_PEERS,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            failure_timeout: DEFAULT_FAILURE_TIMEOUT,
            peer_exchange: true,
            chord: None,
            storage: None,
        }
    }

    /// Check every option against its limit; the error names the option as users spell it.
    pub fn validate(&self) -> Result<()> {
        in_range("maxPeers", self.max_peers as u64, 1, MAX_PEERS as u64)?;
        in_range("maxFrameBytes", self.max_frame_bytes as u64, MIN_FRAME_BYTES as u64, MAX_FRAME_BYTES as u64)?;
        in_range("requestTimeoutMs", self.request_timeout.as_millis() as u64, 1, MAX_REQUEST_TIMEOUT.as_millis() as u64)?;
        in_range(
            "failureTimeoutMs",
            self.failure_timeout.as_millis() as u64,
            MIN_FAILURE_TIMEOUT.as_millis() as u64,
            (self.request_timeout.as_millis() as u64).max(MIN_FAILURE_TIMEOUT.as_millis() as u64),
        )?;
        if !ENCRYPTIONS.contains(&self.encryption.as_str()) {
            return Err(Error::InvalidArgument(format!("encryption must be 'Noise' or 'Plaintext' (got {:?})", self.encryption)));
        }
        if self.network_key.is_some() && self.encryption != "Noise" {
            return Err(Error::InvalidArgument("a networkKey needs Noise encryption (Plaintext cannot keep anyone out)".into()));
        }
        if let Some(pair) = &self.key_pair {
            if KeyPair::from_secret(pair.secret).public != pair.public {
                return Err(Error::InvalidArgument("keyPair.publicKey is not the public key of keyPair.secretKey".into()));
            }
        }
        if let Some(storage) = &self.storage {
            if self.chord.is_none() {
                return Err(Error::InvalidArgument("dataDir is an option of a ChordSocket".into()));
            }
            if storage.dir.as_os_str().is_empty() {
                return Err(Error::InvalidArgument("dataDir must name a folder (got an empty string)".into()));
            }
        }
        let Some(chord) = &self.chord else { return Ok(()) };
        if self.max_frame_bytes < MIN_CHORD_FRAME_BYTES {
            return Err(Error::InvalidArgument(format!(
                "maxFrameBytes must be at least {MIN_CHORD_FRAME_BYTES} for a ChordSocket, so that a value of the maximum size ({MAX_VALUE_BYTES} bytes) with its key always fits a frame, with room for bulk transfers (got {})",
                self.max_frame_bytes
            )));
        }
        chord.validate()
    }
}

fn in_range(name: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::InvalidArgument(format!("{name} must be from {min} to {max} (got {value})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig::default());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn out_of_range_options_name_themselves() {
        let mut config = Config::new("127.0.0.1", 0);
        config.max_frame_bytes = MIN_FRAME_BYTES - 1;
        let error = config.validate().unwrap_err();
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
        assert!(error.to_string().starts_with("maxFrameBytes must be from 4096"), "{error}");
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig { replicas: 0, ..ChordConfig::default() });
        assert!(config.validate().unwrap_err().to_string().starts_with("replicas must be from 1 to 64"));
        config.chord = Some(ChordConfig { stabilize_interval: Duration::from_millis(5), ..ChordConfig::default() });
        assert!(config.validate().unwrap_err().to_string().starts_with("stabilizeMs"));
        let mut config = Config::new("127.0.0.1", 0);
        config.max_peers = 0;
        assert!(config.validate().is_err());
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig { max_clock_drift: Duration::from_millis(10), ..ChordConfig::default() });
        assert!(config.validate().unwrap_err().to_string().starts_with("maxClockDriftMs must be from 1000 to 86400000"));
    }

    #[test]
    fn encryption_network_key_and_key_pair_are_checked() {
        let mut config = Config::new("127.0.0.1", 0);
        assert_eq!(config.encryption, "Noise", "secure by default");
        config.encryption = "TLS".into();
        assert!(config.validate().unwrap_err().to_string().contains("'Noise' or 'Plaintext'"));
        config.encryption = "Plaintext".into();
        config.network_key = Some([1; 32]);
        assert!(config.validate().unwrap_err().to_string().contains("needs Noise"));
        let mut config = Config::new("127.0.0.1", 0);
        let mut pair = KeyPair::generate();
        config.key_pair = Some(pair.clone());
        assert_eq!(config.validate(), Ok(()));
        pair.public[0] ^= 1;
        config.key_pair = Some(pair);
        assert!(config.validate().unwrap_err().to_string().contains("keyPair.publicKey"));
    }

    #[test]
    fn a_chord_node_needs_frames_big_enough_for_the_largest_value() {
        let mut config = Config::new("127.0.0.1", 0);
        config.chord = Some(ChordConfig::default());
        config.max_frame_bytes = MIN_CHORD_FRAME_BYTES - 1;
        let error = config.validate().unwrap_err();
        assert!(error.to_string().contains("for a ChordSocket"), "{error}");
        config.max_frame_bytes = MIN_CHORD_FRAME_BYTES;
        assert_eq!(config.validate(), Ok(()));
        config.chord = None;
        config.max_frame_bytes = MIN_FRAME_BYTES;
        assert_eq!(config.validate(), Ok(()), "a plain MeshSocket may use small frames");
    }

    #[test]
    fn successor_lists_leave_room_for_a_failure() {
        assert_eq!(ChordConfig::default().successor_list_len(), 4);
        assert_eq!(ChordConfig { replicas: 5, ..ChordConfig::default() }.successor_list_len(), 6);
    }
}
