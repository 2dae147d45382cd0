//! The wire protocol: message types, framing and limits. Pure: it turns bytes into messages and
//! back, and owns no socket (the frame codec follows mini-redis: `check` the buffer, then parse).
//!
//! A frame is a 4-byte big-endian body length followed by a MessagePack body (structs as maps
//! with field names, enums as `{ "Variant": content }`). docs/PROTOCOL.md is the normative text.

use crate::id::Id;
use crate::metrics::{MemberInfo, Traffic};
use crate::routing::{Hop, NodeRef};
use crate::store::Item;
use crate::version::Version;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;

/// Bumped on any incompatible change; peers with another version are rejected at handshake.
/// Version 2: Noise by default, ids bound to static keys, byte-bounded anti-entropy pages and
/// fetches, ring-merge candidates, `Info`. Version 3: `Relay` (lookups and dict operations
/// forwarded along open connections), the `rejoining` refusal (docs/PROTOCOL.md). Version 4:
/// read leases (`GetLeased`, `Leased`, `Invalidate`).
pub const PROTOCOL_VERSION: u16 = 6;
pub use crate::config::{DEFAULT_MAX_FRAME_BYTES, MAX_KEY_BYTES, MAX_VALUE_BYTES, MIN_FRAME_BYTES};
/// Bytes of the length prefix.
pub const LENGTH_PREFIX_BYTES: usize = 4;

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

/// What a node says about itself in the handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub version: u16,
    pub protocol_id: Id,
    pub subnet: String,
    pub encryption: String,
    pub node: NodeRef,
    /// Whether the node is a member of the Chord ring (holds data and routes).
    pub member: bool,
}

/// Which dict write an owner is asked to perform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WriteMode {
    /// Store the value.
    Set,
    /// Store a tombstone if the key is live; report what was there.
    Delete,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Message {
    /// First frame of the connecting side.
    Hello(Hello),
    /// The accepting side's answer to an acceptable `Hello`.
    Welcome(Hello),
    /// The accepting side refuses; the connection closes after this frame. A node too busy
    /// for a newcomer names members of its ring to try instead (`elsewhere`).
    Reject {
        code: String,
        reason: String,
        subnet: String,
        #[serde(default)]
        elsewhere: Vec<NodeRef>,
    },
    /// Peer exchange: nodes the sender is connected to.
    Peers(Vec<PeerAd>),
    /// A message for every node; `id` deduplicates it.
    Broadcast { id: Id, origin: NodeRef, time_ms: u64, packets: Vec<ByteBuf> },
    /// A message for one node.
    Whisper { origin: NodeRef, target: Id, time_ms: u64, packets: Vec<ByteBuf> },
    /// A dict change, sent by the key's owner to each subscriber that watches it (and by a
    /// member to its clients that do). `limit` is unused (the receiver's own id).
    Event { id: Id, key: ByteBuf, added: bool, limit: Id },
    Request { id: u64, body: Request },
    Response { id: u64, body: Response },
    /// The sender is closing this connection, and why.
    Goodbye { reason: String },
    /// `node` watches the keys starting with one of `prefixes` (empty: it stopped) for
    /// `lease_ms`: passed ring-wide over the finger tables (El-Ansary et al. 2003), each
    /// receiver covering `(itself, limit)`; sent by a client to the members it is attached to.
    Subscribe { id: Id, node: NodeRef, prefixes: Vec<ByteBuf>, lease_ms: u64, limit: Id },
}

/// One subscriber as a member's table holds it, with what is left of its lease.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub node: NodeRef,
    pub prefixes: Vec<ByteBuf>,
    pub lease_ms: u64,
}

impl Message {
    /// What this message is for, as its bytes are counted (`Metrics::record_sent`).
    pub fn traffic(&self) -> Traffic {
        match self {
            Message::Request { body, .. } => match body {
                Request::Ping | Request::State | Request::Notify(_) => Traffic::Maintenance,
                Request::FindSuccessor { .. } | Request::Relay { body: Routed::FindSuccessor { .. }, .. } => Traffic::Lookup,
                Request::Get { .. } | Request::GetLeased { .. } | Request::Write { .. } | Request::Relay { .. } => Traffic::Data,
                Request::Invalidate { .. } | Request::Delegate { .. } => Traffic::Data,
                Request::Replicate { .. } | Request::Handoff { .. } => Traffic::Replication,
                Request::SyncArc { .. } | Request::Fetch { .. } => Traffic::AntiEntropy,
                Request::Page { .. } => Traffic::Walk,
                Request::Leaving { .. } | Request::Candidates(_) => Traffic::Membership,
                Request::Info => Traffic::Other,
                Request::Subscriptions | Request::Members { .. } | Request::MemberEntries { .. } => Traffic::Membership,
            },
            Message::Response { body, .. } => match body {
                Response::Pong | Response::State { .. } => Traffic::Maintenance,
                Response::Next(_) | Response::Relayed { answer: RelayAnswer::Next(_), .. } => Traffic::Lookup,
                Response::Value { .. } | Response::Leased { .. } | Response::Written { .. } | Response::Redirect(_) | Response::Relayed { .. } => Traffic::Data,
                Response::InSync | Response::SubDigests(_) | Response::Versions { .. } | Response::Items { .. } => Traffic::AntiEntropy,
                Response::Page { .. } => Traffic::Walk,
                Response::Ok | Response::Info(_) | Response::Error { .. } => Traffic::Other,
                Response::Subscriptions(_) | Response::MemberDigests(_) | Response::MemberEntries(_) => Traffic::Membership,
            },
            Message::Event { .. } => Traffic::Events,
            // Who listens is membership of a kind: a node that does not listen hears no events.
            Message::Subscribe { .. } => Traffic::Membership,
            Message::Broadcast { .. } | Message::Whisper { .. } | Message::Peers(_) => Traffic::Mesh,
            Message::Hello(_) | Message::Welcome(_) | Message::Reject { .. } | Message::Goodbye { .. } => Traffic::Other,
        }
    }
}

/// One ring member as membership gossip carries it (`engine::members`): `incarnation` orders
/// what is said about one node (its start time, or later to refute a rumour of its death); a
/// death at an incarnation beats life at it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEntry {
    pub node: NodeRef,
    pub incarnation: u64,
    pub alive: bool,
}

/// A peer advertised in peer exchange.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeerAd {
    pub node: NodeRef,
    pub member: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Request {
    Ping,
    /// Stabilize: your predecessor and successor list, please.
    State,
    /// I think I am your predecessor.
    Notify(NodeRef),
    /// Next hop towards the owner of `position` (one step of an iterative lookup), skipping
    /// the nodes the asker found dead.
    FindSuccessor { position: Id, avoid: Vec<Id> },
    /// Read a key at its owner.
    Get { key: ByteBuf },
    /// Write a key at its owner, which versions and replicates it before answering. `nonce`
    /// (random, per user write; 0: none) lets the owner run a retried write once
    /// (`engine::dedupe`).
    Write {
        key: ByteBuf,
        value: Option<ByteBuf>,
        mode: WriteMode,
        #[serde(default)]
        nonce: u64,
    },
    /// Store these versioned items as a replica.
    Replicate { items: Vec<Item> },
    /// Anti-entropy: does your copy of `(from, to]` hash to `digest`? If not, list your
    /// versions after the cursor `after` (ring position, key).
    SyncArc {
        from: Id,
        to: Id,
        digest: ByteBuf,
        #[serde(default)]
        after: Option<(Id, ByteBuf)>,
    },
    /// Send me these keys' entries (tombstones included).
    Fetch { keys: Vec<ByteBuf> },
    /// A page of the live keys you are primary for, after the cursor.
    Page { after: Option<(Id, ByteBuf)>, limit: u32, with_values: bool },
    /// Take these entries over as their new primary, and replicate them before answering.
    Handoff { items: Vec<Item> },
    /// I am leaving: here are my predecessor and successors, take over.
    Leaving { predecessor: Option<NodeRef>, successors: Vec<NodeRef> },
    /// Live nodes that may belong next to you (ring merging after a partition).
    Candidates(Vec<NodeRef>),
    /// What do you hold and see? (diagnostics: the web view); answered from local state.
    Info,
    /// Carry `body` towards the owner of its position along open connections: answer it if
    /// you can, else forward it (`ttl` − 1) to your next hop when you hold a connection to it
    /// and `ttl` > 0, else answer as to `body` alone (a redirect or a closer hop).
    Relay { ttl: u8, body: Routed },
    /// Your table of subscribers, please (a joiner copies its successor's).
    Subscriptions,
    /// Read a key at its owner and grant me a read lease on it (`engine::lease`): answered
    /// `Leased` by an owner that grants one, else as `Get`.
    GetLeased { key: ByteBuf },
    /// These keys changed at their owner: drop them from your read cache, then answer `Ok`
    /// (the owner acknowledges the write only then, or once your lease ran out).
    Invalidate { keys: Vec<ByteBuf> },
    /// Membership anti-entropy (`engine::members`): does your table hash to `digest`? If not,
    /// answer the digests of its buckets.
    Members { digest: u64 },
    /// Our entries in these buckets of the member table (where our digests differ): merge
    /// them, and answer yours.
    MemberEntries { buckets: Vec<u16>, entries: Vec<MemberEntry> },
    /// Let me answer gets of your arc `(from, to]` for a read lease's time from when I sent
    /// this (`engine::delegate`): answered `Ok` when granted, then you resolve no write to the
    /// arc I have not acknowledged until that time has passed.
    Delegate { from: Id, to: Id },
}

/// A request that can be relayed towards the owner of a ring position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Routed {
    FindSuccessor { position: Id, avoid: Vec<Id> },
    Get { key: ByteBuf },
    Write {
        key: ByteBuf,
        value: Option<ByteBuf>,
        mode: WriteMode,
        #[serde(default)]
        nonce: u64,
    },
}

impl Routed {
    /// The request itself, as asked of one node.
    pub fn into_request(self) -> Request {
        match self {
            Routed::FindSuccessor { position, avoid } => Request::FindSuccessor { position, avoid },
            Routed::Get { key } => Request::Get { key },
            Routed::Write { key, value, mode, nonce } => Request::Write { key, value, mode, nonce },
        }
    }

    /// The relayable part of a request, if it is one.
    pub fn of(request: &Request) -> Option<Routed> {
        Some(match request.clone() {
            Request::FindSuccessor { position, avoid } => Routed::FindSuccessor { position, avoid },
            Request::Get { key } => Routed::Get { key },
            Request::Write { key, value, mode, nonce } => Routed::Write { key, value, mode, nonce },
            _ => return None,
        })
    }
}

/// The answer that ends a `Relay`: what the node that answered said.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum RelayAnswer {
    Next(Hop),
    Value { item: Option<Item>, arc: (Id, Id) },
    Written { previous: Option<ByteBuf>, version: Version, arc: (Id, Id) },
    Redirect(NodeRef),
    Error { code: String, message: String },
}

impl From<RelayAnswer> for Response {
    fn from(answer: RelayAnswer) -> Response {
        match answer {
            RelayAnswer::Next(hop) => Response::Next(hop),
            RelayAnswer::Value { item, arc } => Response::Value { item, arc },
            RelayAnswer::Written { previous, version, arc } => Response::Written { previous, version, arc },
            RelayAnswer::Redirect(node) => Response::Redirect(node),
            RelayAnswer::Error { code, message } => Response::Error { code, message },
        }
    }
}

impl From<Response> for RelayAnswer {
    /// Answers a relayed request can have; anything else is reported as an error.
    fn from(response: Response) -> RelayAnswer {
        match response {
            Response::Next(hop) => RelayAnswer::Next(hop),
            Response::Value { item, arc } => RelayAnswer::Value { item, arc },
            Response::Written { previous, version, arc } => RelayAnswer::Written { previous, version, arc },
            Response::Redirect(node) => RelayAnswer::Redirect(node),
            Response::Error { code, message } => RelayAnswer::Error { code, message },
            Response::Relayed { answer, .. } => answer,
            other => RelayAnswer::Error { code: "internal".into(), message: format!("a relayed request ended with {other:?}") },
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    Ok,
    Pong,
    State { predecessor: Option<NodeRef>, successors: Vec<NodeRef> },
    Next(Hop),
    /// The owner's answer to `Get`; `arc` is its primary arc, for the caller's location cache.
    Value { item: Option<Item>, arc: (Id, Id) },
    /// The owner's answer to `Write`: the live value that was replaced, if any.
    Written { previous: Option<ByteBuf>, version: Version, arc: (Id, Id) },
    /// Not the owner (any more): ask this node.
    Redirect(NodeRef),
    InSync,
    /// The arc's digests cut at bucket boundaries (`Store::split_arc`), when it spans several.
    SubDigests(Vec<ByteBuf>),
    /// One page of versions of an arc, cut by count and bytes; `more` when it was cut.
    Versions { versions: Vec<(ByteBuf, Version)>, more: bool },
    /// The answer to `Fetch`: the entries of the first `served` keys asked for (absent keys have
    /// none), cut by bytes — ask again for the rest.
    Items { items: Vec<Item>, served: u32 },
    Page { items: Vec<Item>, more: bool, successor: NodeRef },
    /// The answer to `Info`.
    Info(Box<MemberInfo>),
    /// The request was understood but refused.
    Error { code: String, message: String },
    /// The answer to a `Relay`, given by the node `hops` relays away from the one asked.
    Relayed { hops: u8, answer: RelayAnswer },
    /// The answer to `Subscriptions` (cut by bytes: renewals bring the rest).
    Subscriptions(Vec<Subscription>),
    /// The owner's answer to `GetLeased`: as `Value`, with a lease on the key for
    /// `engine::lease::LEASE_MS` from when the request was sent.
    Leased { item: Option<Item>, arc: (Id, Id) },
    /// The answer to `Members`: the digest of each bucket of our member table, or none when
    /// the whole table hashed to the digest asked about.
    MemberDigests(Vec<u64>),
    /// The answer to `MemberEntries`: our entries in those buckets.
    MemberEntries(Vec<MemberEntry>),
}

/// Why a byte stream could not be read as frames; each closes that connection.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("this port speaks the chordnet protocol, not HTTP (got an HTTP request)")]
    Http,
    #[error("empty frame")]
    Empty,
    #[error("unknown message type: {0}")]
    UnknownType(String),
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Encode one message as a complete frame (length prefix included).
pub fn encode(message: &Message) -> Bytes {
    let mut out = BytesMut::with_capacity(64);
    out.put_u32(0);
    let mut writer = (&mut out).writer();
    rmp_serde::encode::write_named(&mut writer, message).expect("encoding into memory cannot fail");
    let body_len = (out.len() - LENGTH_PREFIX_BYTES) as u32;
    out[..LENGTH_PREFIX_BYTES].copy_from_slice(&body_len.to_be_bytes());
    out.freeze()
}

/// Is a whole frame buffered? `Ok(Some(len))` gives the body length; `Ok(None)` asks for more.
/// Rejects oversized frames from the prefix alone, before any body is buffered.
pub fn check(buffer: &[u8], max_frame_bytes: usize) -> Result<Option<usize>, FrameError> {
    if buffer.len() < LENGTH_PREFIX_BYTES {
        return Ok(None);
    }
    if looks_like_http(buffer) {
        return Err(FrameError::Http);
    }
    let size = u32::from_be_bytes(buffer[..4].try_into().unwrap()) as usize;
    if size == 0 {
        return Err(FrameError::Empty);
    }
    if size > max_frame_bytes {
        return Err(FrameError::TooLarge { size, limit: max_frame_bytes });
    }
    if buffer.len() < LENGTH_PREFIX_BYTES + size {
        return Ok(None);
    }
    Ok(Some(size))
}

/// Take one frame off the front of `buffer` if a whole one is there.
pub fn decode(buffer: &mut BytesMut, max_frame_bytes: usize) -> Result<Option<Message>, FrameError> {
    let Some(size) = check(buffer, max_frame_bytes)? else { return Ok(None) };
    buffer.advance(LENGTH_PREFIX_BYTES);
    let body = buffer.split_to(size);
    parse(&body).map(Some)
}

/// Parse a frame body.
pub fn parse(body: &[u8]) -> Result<Message, FrameError> {
    rmp_serde::from_slice(body).map_err(|error| {
        let text = error.to_string();
        match text.find("unknown variant") {
            Some(at) => FrameError::UnknownType(text[at..].chars().take(120).collect()),
            None => FrameError::Malformed(text.chars().take(200).collect()),
        }
    })
}

fn looks_like_http(buffer: &[u8]) -> bool {
    const METHODS: [&[u8]; 9] = [b"GET ", b"POST", b"PUT ", b"HEAD", b"DELE", b"OPTI", b"PATC", b"CONN", b"TRAC"];
    METHODS.iter().any(|m| buffer.starts_with(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeRef {
        NodeRef { id: Id(9), host: "127.0.0.1".into(), port: 4000 }
    }

    #[test]
    fn protocol_ids_differ_by_subnet_and_encryption() {
        assert_eq!(protocol_id("a", "Plaintext"), protocol_id("a", "Plaintext"));
        assert_ne!(protocol_id("a", "Plaintext"), protocol_id("b", "Plaintext"));
        assert_ne!(protocol_id("a", "Plaintext"), protocol_id("a", "TLS"));
        assert_ne!(protocol_id("ab", ""), protocol_id("a", "b"));
    }

    #[test]
    fn frames_round_trip() {
        let message = Message::Whisper { origin: node(), target: Id(3), time_ms: 5, packets: vec![ByteBuf::from(vec![1, 2, 3])] };
        let mut buffer = BytesMut::from(&encode(&message)[..]);
        assert_eq!(decode(&mut buffer, DEFAULT_MAX_FRAME_BYTES).unwrap(), Some(message));
        assert!(buffer.is_empty());
    }

    #[test]
    fn a_partial_frame_waits_for_more() {
        let frame = encode(&Message::Request { id: 1, body: Request::Ping });
        for cut in 0..frame.len() {
            let mut buffer = BytesMut::from(&frame[..cut]);
            assert_eq!(decode(&mut buffer, DEFAULT_MAX_FRAME_BYTES).unwrap(), None);
        }
    }

    #[test]
    fn two_frames_in_one_read_decode_in_order() {
        let mut buffer = BytesMut::new();
        buffer.extend_from_slice(&encode(&Message::Request { id: 1, body: Request::Ping }));
        buffer.extend_from_slice(&encode(&Message::Response { id: 1, body: Response::Pong }));
        assert!(matches!(decode(&mut buffer, 1 << 20).unwrap(), Some(Message::Request { id: 1, .. })));
        assert!(matches!(decode(&mut buffer, 1 << 20).unwrap(), Some(Message::Response { id: 1, .. })));
    }

    #[test]
    fn oversized_prefix_is_rejected_before_the_body_arrives() {
        let buffer = [0xff, 0xff, 0xff, 0xff, 1];
        assert_eq!(check(&buffer, 1024), Err(FrameError::TooLarge { size: u32::MAX as usize, limit: 1024 }));
    }

    #[test]
    fn limit_is_inclusive() {
        let frame = encode(&Message::Goodbye { reason: "x".repeat(100) });
        let size = frame.len() - 4;
        assert!(check(&frame, size).unwrap().is_some());
        assert!(check(&frame, size - 1).is_err());
    }

    #[test]
    fn http_and_garbage_are_named() {
        assert_eq!(check(b"GET / HTTP/1.1\r\n", 1024), Err(FrameError::Http));
        assert_eq!(check(&[0, 0, 0, 0], 1024), Err(FrameError::Empty));
        let mut junk = BytesMut::from(&[0, 0, 0, 3, 0xc1, 0xc1, 0xc1][..]);
        assert!(matches!(decode(&mut junk, 1024), Err(FrameError::Malformed(_))));
    }

    #[test]
    fn unknown_message_type_is_reported_as_such() {
        let mut body = Vec::new();
        rmp_serde::encode::write_named(&mut body, &std::collections::BTreeMap::from([("Teleport", 1)])).unwrap();
        assert!(matches!(parse(&body), Err(FrameError::UnknownType(_))));
    }

    #[test]
    fn random_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for _ in 0..5000 {
            let len = rng.gen_range(0..64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
            let _ = parse(&bytes);
            let mut buffer = BytesMut::from(&bytes[..]);
            let _ = decode(&mut buffer, 1 << 16);
        }
    }
}
