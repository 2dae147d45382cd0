//! Property: every `Message` survives `protocol::encode` then `protocol::decode` unchanged, and
//! the decoder never panics on the truncations of a valid frame. The strategies cover every
//! variant: `variant` below matches them without a wildcard, so a new message or request type
//! does not compile until it is given a strategy here too.

use chord::protocol::{self, Hello, MemberEntry, Message, PeerAd, RelayAnswer, Request, Response, Routed, Subscription, WriteMode, PROTOCOL_VERSION};
use chord::metrics::{MemberInfo, MetricsSnapshot};
use chord::routing::Hop;
use chord::store::Item;
use chord::version::Version;
use chord::{Id, NodeRef};
use proptest::collection::vec;
use proptest::prelude::*;
use serde_bytes::ByteBuf;

fn id() -> impl Strategy<Value = Id> {
    any::<u128>().prop_map(Id)
}

fn bytes() -> impl Strategy<Value = ByteBuf> {
    vec(any::<u8>(), 0..40).prop_map(ByteBuf::from)
}

fn node() -> impl Strategy<Value = NodeRef> {
    (id(), "[a-z0-9.:]{0,20}", any::<u16>()).prop_map(|(id, host, port)| NodeRef { id, host, port })
}

fn version() -> impl Strategy<Value = Version> {
    (any::<u64>(), any::<u32>(), id()).prop_map(|(millis, counter, writer)| Version { millis, counter, writer })
}

fn item() -> impl Strategy<Value = Item> {
    (vec(any::<u8>(), 0..40), proptest::option::of(bytes()), version()).prop_map(|(key, value, version)| Item { key, value, version })
}

fn hop() -> impl Strategy<Value = Hop> {
    prop_oneof![Just(Hop::Local), node().prop_map(Hop::Owner), node().prop_map(Hop::Closer)]
}

fn member() -> impl Strategy<Value = MemberEntry> {
    (node(), any::<u64>(), any::<bool>()).prop_map(|(node, incarnation, alive)| MemberEntry { node, incarnation, alive })
}

fn hello() -> impl Strategy<Value = Hello> {
    (id(), ".{0,12}", prop_oneof![Just("Noise".to_string()), Just("Plaintext".to_string())], node(), any::<bool>()).prop_map(
        |(protocol_id, subnet, encryption, node, member)| Hello { version: PROTOCOL_VERSION, protocol_id, subnet, encryption, node, member },
    )
}

fn info() -> impl Strategy<Value = MemberInfo> {
    let tables = (proptest::option::of(node()), vec(node(), 0..3), vec(node(), 0..3), vec(node(), 0..3));
    let counts = (any::<u64>(), any::<u64>(), any::<u64>(), any::<u32>(), 0.0..1e9f64, any::<u64>());
    (node(), any::<bool>(), tables, counts).prop_map(
        |(node, member, (predecessor, successors, fingers, known), (keys, primary_keys, bytes, connections, ring_size_estimate, suspicions))| MemberInfo {
            node,
            member,
            predecessor,
            successors,
            fingers,
            known,
            keys,
            primary_keys,
            bytes,
            connections,
            ring_size_estimate,
            metrics: MetricsSnapshot { suspicions, ..MetricsSnapshot::default() },
        },
    )
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Ping),
        Just(Request::State),
        node().prop_map(Request::Notify),
        (id(), vec(id(), 0..4)).prop_map(|(position, avoid)| Request::FindSuccessor { position, avoid }),
        bytes().prop_map(|key| Request::Get { key }),
        (bytes(), proptest::option::of(bytes()), prop_oneof![Just(WriteMode::Set), Just(WriteMode::Delete)])
            .prop_map(|(key, value, mode)| Request::Write { key, value, mode, nonce: 7 }),
        vec(item(), 0..4).prop_map(|items| Request::Replicate { items }),
        (id(), id(), bytes(), proptest::option::of((id(), bytes()))).prop_map(|(from, to, digest, after)| Request::SyncArc { from, to, digest, after }),
        vec(bytes(), 0..4).prop_map(|keys| Request::Fetch { keys }),
        (proptest::option::of((id(), bytes())), any::<u32>(), any::<bool>()).prop_map(|(after, limit, with_values)| Request::Page { after, limit, with_values }),
        vec(item(), 0..4).prop_map(|items| Request::Handoff { items }),
        (proptest::option::of(node()), vec(node(), 0..4)).prop_map(|(predecessor, successors)| Request::Leaving { predecessor, successors }),
        vec(node(), 0..4).prop_map(Request::Candidates),
        Just(Request::Info),
        Just(Request::Subscriptions),
        (any::<u8>(), routed()).prop_map(|(ttl, body)| Request::Relay { ttl, body }),
        bytes().prop_map(|key| Request::GetLeased { key }),
        vec(bytes(), 0..4).prop_map(|keys| Request::Invalidate { keys }),
        any::<u64>().prop_map(|digest| Request::Members { digest }),
        (vec(any::<u16>(), 0..4), vec(member(), 0..3)).prop_map(|(buckets, entries)| Request::MemberEntries { buckets, entries }),
        (id(), id()).prop_map(|(from, to)| Request::Delegate { from, to }),
    ]
}

fn routed() -> impl Strategy<Value = Routed> {
    prop_oneof![
        (id(), vec(id(), 0..4)).prop_map(|(position, avoid)| Routed::FindSuccessor { position, avoid }),
        bytes().prop_map(|key| Routed::Get { key }),
        (bytes(), proptest::option::of(bytes()), prop_oneof![Just(WriteMode::Set), Just(WriteMode::Delete)])
            .prop_map(|(key, value, mode)| Routed::Write { key, value, mode, nonce: 9 }),
    ]
}

fn relay_answer() -> impl Strategy<Value = RelayAnswer> {
    prop_oneof![
        hop().prop_map(RelayAnswer::Next),
        (proptest::option::of(item()), id(), id()).prop_map(|(item, a, b)| RelayAnswer::Value { item, arc: (a, b) }),
        (proptest::option::of(bytes()), version(), id(), id()).prop_map(|(previous, version, a, b)| RelayAnswer::Written { previous, version, arc: (a, b) }),
        node().prop_map(RelayAnswer::Redirect),
        (".{0,12}", ".{0,30}").prop_map(|(code, message)| RelayAnswer::Error { code, message }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Ok),
        Just(Response::Pong),
        (proptest::option::of(node()), vec(node(), 0..4)).prop_map(|(predecessor, successors)| Response::State { predecessor, successors }),
        hop().prop_map(Response::Next),
        (proptest::option::of(item()), id(), id()).prop_map(|(item, a, b)| Response::Value { item, arc: (a, b) }),
        (proptest::option::of(item()), id(), id()).prop_map(|(item, a, b)| Response::Leased { item, arc: (a, b) }),
        vec(any::<u64>(), 0..4).prop_map(Response::MemberDigests),
        vec(member(), 0..3).prop_map(Response::MemberEntries),
        (proptest::option::of(bytes()), version(), id(), id()).prop_map(|(previous, version, a, b)| Response::Written { previous, version, arc: (a, b) }),
        node().prop_map(Response::Redirect),
        Just(Response::InSync),
        vec(bytes(), 0..4).prop_map(Response::SubDigests),
        (vec((bytes(), version()), 0..4), any::<bool>()).prop_map(|(versions, more)| Response::Versions { versions, more }),
        (vec(item(), 0..4), any::<u32>()).prop_map(|(items, served)| Response::Items { items, served }),
        info().prop_map(|info| Response::Info(Box::new(info))),
        vec((node(), vec(bytes(), 0..3), any::<u64>()).prop_map(|(node, prefixes, lease_ms)| Subscription { node, prefixes, lease_ms }), 0..3).prop_map(Response::Subscriptions),
        (vec(item(), 0..4), any::<bool>(), node()).prop_map(|(items, more, successor)| Response::Page { items, more, successor }),
        (".{0,12}", ".{0,30}").prop_map(|(code, message)| Response::Error { code, message }),
        (any::<u8>(), relay_answer()).prop_map(|(hops, answer)| Response::Relayed { hops, answer }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        hello().prop_map(Message::Hello),
        hello().prop_map(Message::Welcome),
        (".{0,12}", ".{0,30}", ".{0,12}", vec(node(), 0..3)).prop_map(|(code, reason, subnet, elsewhere)| Message::Reject { code, reason, subnet, elsewhere }),
        vec((node(), any::<bool>()).prop_map(|(node, member)| PeerAd { node, member }), 0..4).prop_map(Message::Peers),
        (id(), node(), any::<u64>(), vec(bytes(), 0..3)).prop_map(|(id, origin, time_ms, packets)| Message::Broadcast { id, origin, time_ms, packets }),
        (node(), id(), any::<u64>(), vec(bytes(), 0..3)).prop_map(|(origin, target, time_ms, packets)| Message::Whisper { origin, target, time_ms, packets }),
        (id(), bytes(), any::<bool>(), id()).prop_map(|(id, key, added, limit)| Message::Event { id, key, added, limit }),
        (any::<u64>(), request()).prop_map(|(id, body)| Message::Request { id, body }),
        (any::<u64>(), response()).prop_map(|(id, body)| Message::Response { id, body }),
        ".{0,30}".prop_map(|reason| Message::Goodbye { reason }),
        (id(), node(), vec(bytes(), 0..3), any::<u64>(), id()).prop_map(|(id, node, prefixes, lease_ms, limit)| Message::Subscribe { id, node, prefixes, lease_ms, limit }),
    ]
}

/// Every variant by name, without a wildcard: a new variant breaks this until it has a strategy.
fn variant(message: &Message) -> &'static str {
    match message {
        Message::Hello(_) => "Hello",
        Message::Welcome(_) => "Welcome",
        Message::Reject { .. } => "Reject",
        Message::Peers(_) => "Peers",
        Message::Broadcast { .. } => "Broadcast",
        Message::Whisper { .. } => "Whisper",
        Message::Event { .. } => "Event",
        Message::Goodbye { .. } => "Goodbye",
        Message::Subscribe { .. } => "Subscribe",
        Message::Request { body, .. } => match body {
            Request::Ping => "Ping",
            Request::State => "State",
            Request::Notify(_) => "Notify",
            Request::FindSuccessor { .. } => "FindSuccessor",
            Request::Get { .. } => "Get",
            Request::Write { .. } => "Write",
            Request::Replicate { .. } => "Replicate",
            Request::SyncArc { .. } => "SyncArc",
            Request::Fetch { .. } => "Fetch",
            Request::Page { .. } => "Page",
            Request::Handoff { .. } => "Handoff",
            Request::Leaving { .. } => "Leaving",
            Request::Candidates(_) => "Candidates",
            Request::Info => "Info",
            Request::Subscriptions => "Subscriptions",
            Request::GetLeased { .. } => "GetLeased",
            Request::Invalidate { .. } => "Invalidate",
            Request::Members { .. } => "Members",
            Request::MemberEntries { .. } => "MemberEntries",
            Request::Delegate { .. } => "Delegate",
            Request::Relay { body, .. } => match body {
                Routed::FindSuccessor { .. } => "Relay(FindSuccessor)",
                Routed::Get { .. } => "Relay(Get)",
                Routed::Write { .. } => "Relay(Write)",
            },
        },
        Message::Response { body, .. } => match body {
            Response::Ok => "Ok",
            Response::Pong => "Pong",
            Response::State { .. } => "State",
            Response::Next(_) => "Next",
            Response::Value { .. } => "Value",
            Response::Leased { .. } => "Leased",
            Response::MemberDigests(_) => "MemberDigests",
            Response::MemberEntries(_) => "MemberEntries",
            Response::Written { .. } => "Written",
            Response::Redirect(_) => "Redirect",
            Response::InSync => "InSync",
            Response::SubDigests(_) => "SubDigests",
            Response::Versions { .. } => "Versions",
            Response::Items { .. } => "Items",
            Response::Info(_) => "Info",
            Response::Subscriptions(_) => "Subscriptions",
            Response::Page { .. } => "Page",
            Response::Error { .. } => "Error",
            Response::Relayed { answer, .. } => match answer {
                RelayAnswer::Next(_) => "Relayed(Next)",
                RelayAnswer::Value { .. } => "Relayed(Value)",
                RelayAnswer::Written { .. } => "Relayed(Written)",
                RelayAnswer::Redirect(_) => "Relayed(Redirect)",
                RelayAnswer::Error { .. } => "Relayed(Error)",
            },
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn every_message_round_trips(message in message()) {
        let frame = protocol::encode(&message);
        let mut buffer = bytes::BytesMut::from(&frame[..]);
        let decoded = protocol::decode(&mut buffer, usize::MAX).map_err(|e| TestCaseError::fail(format!("{} failed to decode: {e}", variant(&message))))?;
        prop_assert_eq!(decoded.as_ref(), Some(&message), "{}", variant(&message));
        prop_assert!(buffer.is_empty());
        // Every cut of a valid frame is "wait for more", never a panic or a wrong message.
        for cut in [0, 1, frame.len() / 2, frame.len() - 1] {
            let mut partial = bytes::BytesMut::from(&frame[..cut]);
            prop_assert_eq!(protocol::decode(&mut partial, usize::MAX), Ok(None));
        }
    }
}
