//! The one home of every limit and default. [`with_limits!`] lists each user-facing one once,
//! with its documentation: this module expands the list into Rust constants, and the N-API
//! binding expands the same list into the `limits()` object that TypeScript reads (its typings
//! and JSDoc come from here too), so no value is ever copied by hand. Internal tuning
//! constants (batch sizes, periods of background work) sit at the top of the engine module
//! that uses them; the few that several crates share are below the list.
//!
//! Also here: [`ChordConfig`], the ring's part of a node's options, and its checks.

use crate::error::{Error, Result};
use std::time::Duration;

/// Calls `$callback!` with every user-facing limit and default, each as
/// `#[doc] CONST_NAME, js_name: Type = value;` (a `Duration` is shown to users in
/// milliseconds, and its `js_name` ends in `_ms`). See the module documentation. The docs are
/// `#[doc = "…"]` attributes rather than `///` comments because a `///` passed through a macro
/// becomes a raw string, which napi's typings generator prints with its `r"` prefix.
#[macro_export]
macro_rules! with_limits {
    ($callback:ident) => {
        $callback! {
            #[doc = "Largest key accepted by the dict, in bytes (64 KiB)."]
            MAX_KEY_BYTES, max_key_bytes: usize = 64 << 10;
            #[doc = "Subscribers a member keeps in its table (`add`/`delete` listeners and"]
            #[doc = "`watch()` across the ring); past it only renewals are taken."]
            MAX_SUBSCRIBERS, max_subscribers: usize = 4096;
            #[doc = "Key prefixes one node may watch at once (`watch(prefix)`)."]
            MAX_WATCHED_PREFIXES, max_watched_prefixes: usize = 16;
            #[doc = "Longest key prefix `watch(prefix)` accepts, in bytes."]
            MAX_WATCH_PREFIX_BYTES, max_watch_prefix_bytes: usize = 1024;
            #[doc = "Largest value accepted by the dict, in bytes (1 MiB); a value must fit in one"]
            #[doc = "frame with its key."]
            MAX_VALUE_BYTES, max_value_bytes: usize = 1 << 20;
            #[doc = "Smallest `maxFrameBytes` a ChordSocket accepts: a full bulk message plus the"]
            #[doc = "item that crossed its budget, with room for the envelope."]
            MIN_CHORD_FRAME_BYTES, min_chord_frame_bytes: usize = 2 * MAX_ITEM_WIRE_BYTES + (64 << 10);
            #[doc = "Default largest frame body accepted (4 MiB): room for the largest value plus"]
            #[doc = "framing, yet far from the 4 GiB the old p2p.today framing let a peer announce."]
            DEFAULT_MAX_FRAME_BYTES, default_max_frame_bytes: usize = 4 << 20;
            #[doc = "Smallest configurable `maxFrameBytes`: a handshake and a small message must fit."]
            MIN_FRAME_BYTES, min_frame_bytes: usize = 4 << 10;
            #[doc = "Largest configurable `maxFrameBytes` (1 GiB): beyond that one peer could pin a"]
            #[doc = "gigabyte."]
            MAX_FRAME_BYTES, max_frame_bytes: usize = 1 << 30;
            #[doc = "Default bound on open peer connections (`maxPeers`, inbound and outbound"]
            #[doc = "together). A ring member reaches owners in one hop while the ring fits a mesh"]
            #[doc = "in three quarters of it (96 members: `Core::mesh_fits`), and relays along its"]
            #[doc = "routing set beyond that."]
            DEFAULT_MAX_PEERS, default_max_peers: usize = 128;
            #[doc = "Largest configurable `maxPeers` (one port's worth of peers)."]
            MAX_PEERS, max_peers: usize = 65_535;
            #[doc = "Default wait for any single response from a peer (`requestTimeoutMs`)."]
            DEFAULT_REQUEST_TIMEOUT, default_request_timeout_ms: Duration = Duration::from_secs(5);
            #[doc = "Longest configurable `requestTimeoutMs` (10 minutes)."]
            MAX_REQUEST_TIMEOUT, max_request_timeout_ms: Duration = Duration::from_secs(600);
            #[doc = "Default `failureTimeoutMs`: a peer silent this long while we wait on it is"]
            #[doc = "probed (at half of it) and suspected (at all of it), so a cut link is routed"]
            #[doc = "around in about 2 s."]
            DEFAULT_FAILURE_TIMEOUT, default_failure_timeout_ms: Duration = Duration::from_secs(2);
            #[doc = "Shortest configurable `failureTimeoutMs` (below it a busy peer would be"]
            #[doc = "suspected)."]
            MIN_FAILURE_TIMEOUT, min_failure_timeout_ms: Duration = Duration::from_millis(100);
            #[doc = "A connection must complete its handshake within this time or be dropped."]
            HANDSHAKE_TIMEOUT, handshake_timeout_ms: Duration = Duration::from_secs(5);
            #[doc = "Connections allowed to be mid-handshake at once, beyond `maxPeers`; a newcomer"]
            #[doc = "finding them all taken displaces the oldest one of the source holding most."]
            MAX_PENDING_HANDSHAKES, max_pending_handshakes: usize = 64;
            #[doc = "Connections one source address may have mid-handshake at once; its newest"]
            #[doc = "displaces its oldest, so idle sockets cannot keep anyone else out."]
            MAX_PENDING_HANDSHAKES_PER_SOURCE, max_pending_handshakes_per_source: usize = 8;
            #[doc = "Frames queued for one peer before it is considered too slow and disconnected."]
            SEND_QUEUE_FRAMES, send_queue_frames: usize = 8192;
            #[doc = "Bytes queued for one peer (answers with values included) before it is"]
            #[doc = "considered too slow and disconnected: a peer that stops reading cannot make the"]
            #[doc = "node hold more than this for it."]
            SEND_QUEUE_BYTES, send_queue_bytes: usize = 32 << 20;
            #[doc = "Bytes queued for all peers together; past it, a peer with more than a"]
            #[doc = "megabyte queued is disconnected rather than queued more."]
            SEND_QUEUE_TOTAL_BYTES, send_queue_total_bytes: usize = 256 << 20;
            #[doc = "Connections one peer identity may hold to a node at once."]
            MAX_CONNECTIONS_PER_PEER, max_connections_per_peer: usize = 2;
            #[doc = "Events kept waiting for the user before new ones are dropped (and one error"]
            #[doc = "says so)."]
            MAX_QUEUED_EVENTS, max_queued_events: usize = 100_000;
            #[doc = "Mesh messages kept for `recv()` before the oldest are dropped."]
            MAX_QUEUED_MESSAGES, max_queued_messages: usize = 10_000;
            #[doc = "Default number of copies of each key (`replicas`: the owner and its next two"]
            #[doc = "successors)."]
            DEFAULT_REPLICAS, default_replicas: usize = 3;
            #[doc = "Most copies of a key a ring can be configured for."]
            MAX_REPLICAS, max_replicas: usize = 64;
            #[doc = "Default period of stabilize / check-predecessor / fix-fingers (`stabilizeMs`)."]
            DEFAULT_STABILIZE_INTERVAL, default_stabilize_ms: Duration = Duration::from_millis(250);
            #[doc = "Shortest `stabilizeMs` (below it maintenance traffic would swamp a ring)."]
            MIN_STABILIZE_INTERVAL, min_stabilize_ms: Duration = Duration::from_millis(10);
            #[doc = "Longest `stabilizeMs` (10 minutes)."]
            MAX_STABILIZE_INTERVAL, max_stabilize_ms: Duration = Duration::from_secs(600);
            #[doc = "An operation whose owner stays unreachable this long fails with"]
            #[doc = "`ERR_UNAVAILABLE`."]
            OPERATION_DEADLINE, operation_deadline_ms: Duration = Duration::from_secs(15);
            #[doc = "Tombstones are kept this long, longer than any replica can stay out of sync in"]
            #[doc = "practice."]
            TOMBSTONE_HORIZON, tombstone_horizon_ms: Duration = Duration::from_secs(600);
            #[doc = "Default `maxClockDriftMs`: how far ahead of our wall clock a peer's version may"]
            #[doc = "be (60 s: far beyond NTP-synchronised skew, far below the \"end of time\" a"]
            #[doc = "hostile version could claim)."]
            DEFAULT_MAX_CLOCK_DRIFT, default_max_clock_drift_ms: Duration = Duration::from_secs(60);
            #[doc = "Smallest configurable `maxClockDriftMs` (1 s: below it, ordinary skew would"]
            #[doc = "refuse writes)."]
            MIN_CLOCK_DRIFT, min_clock_drift_ms: Duration = Duration::from_secs(1);
            #[doc = "Largest configurable `maxClockDriftMs` (1 day)."]
            MAX_CLOCK_DRIFT, max_clock_drift_ms: Duration = Duration::from_secs(86_400);
            #[doc = "Shortest network key given as bytes: shorter keys are guessable (use a"]
            #[doc = "passphrase instead)."]
            MIN_NETWORK_KEY_BYTES, min_network_key_bytes: usize = 16;
            #[doc = "Block cache of a node's on-disk store (`dataDir`), in bytes. Set explicitly, so"]
            #[doc = "that a node's memory grows with its number of keys (the index) and not with the"]
            #[doc = "bytes of its values: 32 MiB keeps the hot blocks of a few hundred thousand 1 KiB"]
            #[doc = "values."]
            STORE_CACHE_BYTES, store_cache_bytes: u64 = 32 << 20;
            #[doc = "Default `cacheBytes`: values a node read from other members kept in memory for"]
            #[doc = "repeated gets, under read leases (keys, values and about 100 bytes per entry)."]
            DEFAULT_CACHE_BYTES, default_cache_bytes: usize = 32 << 20;
            #[doc = "Largest configurable `cacheBytes` (16 GiB)."]
            MAX_CACHE_BYTES, max_cache_bytes: usize = 16 << 30;
            #[doc = "How long a read lease lasts: a node answers a cached key from memory for at"]
            #[doc = "most this long after it asked the owner, a write waits at most this long for a"]
            #[doc = "silent holder to drop its copy, and a node that took over part of the ring"]
            #[doc = "takes writes to it only this long after it synced it."]
            READ_LEASE, read_lease_ms: Duration = Duration::from_secs(1);
        }
    };
}

macro_rules! define_limits {
    ($( $(#[doc = $doc:literal])* $name:ident, $js:ident : $ty:ty = $value:expr; )*) => {
        $( $(#[doc = $doc])* pub const $name: $ty = $value; )*
    };
}

with_limits!(define_limits);

/// How a limit is shown to users: a number (bytes, counts), durations in milliseconds.
pub trait LimitValue {
    fn exported(&self) -> f64;
}

impl LimitValue for usize {
    fn exported(&self) -> f64 {
        *self as f64
    }
}

impl LimitValue for u64 {
    fn exported(&self) -> f64 {
        *self as f64
    }
}

impl LimitValue for Duration {
    fn exported(&self) -> f64 {
        self.as_millis() as f64
    }
}

/// Most bytes one item (key, value, version) takes on the wire: the largest key and value and
/// a kilobyte for its version and encoding.
pub const MAX_ITEM_WIRE_BYTES: usize = MAX_KEY_BYTES + MAX_VALUE_BYTES + 1024;
/// Bulk messages — hand-offs, replication batches, anti-entropy lists and fetches, pages of a
/// ring walk — stop taking items once past this many bytes; with the one item that crossed it
/// they stay under [`MIN_CHORD_FRAME_BYTES`], so a value of the maximum size always moves.
pub const DATA_BUDGET_BYTES: usize = MAX_ITEM_WIRE_BYTES;
/// One group commit of a node's on-disk store takes at most this many staged bytes; what was
/// staged beyond waits for the next commit. It also bounds the tail a crash can tear off the
/// journal, which the start tells apart from a damaged journal.
pub const MAX_COMMIT_BYTES: usize = 4 << 20;
/// Most node ids a `FindSuccessor`'s `avoid` list may carry; a longer one is refused
/// (`"bad-request"`). An honest lookup adds one id per dead hop it routes around and keeps the
/// latest 32 (it pauses after 3 detours and gives up at the 15 s operation deadline, so it
/// rarely holds more than a few); checking each finger against a list costs its length, and
/// a 4 MiB list would cost 30 million comparisons per request.
pub const MAX_AVOIDED_IDS: usize = 32;
/// Candidates of one `Candidates` message a node considers; the rest are ignored. Each one it
/// considers may cost a `State` probe (a dial), so one message makes at most this many.
/// Honest senders name one node, or a successor list (`max(r + 1, 4)`: 4 by default).
pub const MAX_CANDIDATES_PER_MESSAGE: usize = 8;
/// Ring members a node learns from one `Peers` frame of a member it trusts (a frame from
/// anyone else teaches it nothing). Peers advertise up to 32; learning a few per frame is
/// enough for first-hop guesses, and no frame can flood the view.
pub const ADVERTS_LEARNED_PER_MESSAGE: usize = 8;
/// Ring members a node keeps in its view (first-hop guesses, stand-in replicas, members to
/// rejoin through); past it, a member at a random place in the id space gives way. 4,096
/// covers the one-hop table of rings of thousands of nodes in about 400 KiB.
pub const MAX_VIEW_MEMBERS: usize = 4096;
/// The encryptions a node can speak: Noise (the default) or Plaintext (debugging only).
pub const ENCRYPTIONS: [&str; 2] = ["Noise", "Plaintext"];
/// The default encryption.
pub const DEFAULT_ENCRYPTION: &str = "Noise";

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
    /// Bytes of values read with a lease kept for repeated gets (`engine::lease`); 0: none.
    pub cache_bytes: usize,
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
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

impl ChordConfig {
    /// At least r + 1 successors, so r − 1 replicas remain placeable after a failure.
    pub fn successor_list_len(&self) -> usize {
        self.successor_list.map_or((self.replicas + 1).max(4), |len| len.max(2))
    }

    pub fn validate(&self) -> Result<()> {
        check_range("replicas", self.replicas as u64, 1, MAX_REPLICAS as u64)?;
        check_range("cacheBytes", self.cache_bytes as u64, 0, MAX_CACHE_BYTES as u64)?;
        check_range(
            "stabilizeMs",
            self.stabilize_interval.as_millis() as u64,
            MIN_STABILIZE_INTERVAL.as_millis() as u64,
            MAX_STABILIZE_INTERVAL.as_millis() as u64,
        )?;
        check_range(
            "maxClockDriftMs",
            self.max_clock_drift.as_millis() as u64,
            MIN_CLOCK_DRIFT.as_millis() as u64,
            MAX_CLOCK_DRIFT.as_millis() as u64,
        )
    }
}

/// `Err(InvalidArgument)` naming the option as users spell it unless `min <= value <= max`.
pub fn check_range(name: &str, value: u64, min: u64, max: u64) -> Result<()> {
    if value < min || value > max {
        return Err(Error::InvalidArgument(format!("{name} must be from {min} to {max} (got {value})")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_options_out_of_range_name_themselves() {
        assert_eq!(ChordConfig::default().validate(), Ok(()));
        let error = ChordConfig { replicas: 0, ..ChordConfig::default() }.validate().unwrap_err();
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
        assert!(error.to_string().starts_with("replicas must be from 1 to 64"), "{error}");
        let error = ChordConfig { stabilize_interval: Duration::from_millis(5), ..ChordConfig::default() }.validate().unwrap_err();
        assert!(error.to_string().starts_with("stabilizeMs"), "{error}");
        let error = ChordConfig { max_clock_drift: Duration::from_millis(10), ..ChordConfig::default() }.validate().unwrap_err();
        assert!(error.to_string().starts_with("maxClockDriftMs must be from 1000 to 86400000"), "{error}");
    }

    #[test]
    fn successor_lists_leave_room_for_a_failure() {
        assert_eq!(ChordConfig::default().successor_list_len(), 4);
        assert_eq!(ChordConfig { replicas: 5, ..ChordConfig::default() }.successor_list_len(), 6);
    }

    macro_rules! exported_names {
        ($( $(#[doc = $doc:literal])* $name:ident, $js:ident : $ty:ty = $value:expr; )*) => {
            vec![$( (stringify!($js), LimitValue::exported(&$name)) ),*]
        };
    }

    #[test]
    fn durations_are_exported_in_milliseconds_under_names_that_say_so() {
        let limits: Vec<(&str, f64)> = with_limits!(exported_names);
        assert!(limits.contains(&("default_request_timeout_ms", 5_000.0)));
        assert!(limits.contains(&("max_key_bytes", 65_536.0)));
        let mut names: Vec<&str> = limits.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), limits.len(), "every limit has a name of its own");
    }
}
