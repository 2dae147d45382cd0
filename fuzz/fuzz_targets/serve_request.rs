//! Request handling: any frame body that decodes, fed to a ring member's engine as if a peer
//! sent it (requests, answers to its own requests, ring events), must never panic; the
//! engine's guard must keep far-future versions out of its clock.
#![no_main]

use chord::config::{ChordConfig, DEFAULT_MAX_CLOCK_DRIFT};
use chord::engine::{Engine, Now, ReplyTo, Settings, UserOp};
use chord::protocol::{self, Message};
use chord::testing::IdealRing;
use chord::{Id, NodeRef};
use libfuzzer_sys::fuzz_target;

const WALL: u64 = 1_800_000_000_000;
const Q: u128 = 1 << 126;

fn node(id: u128) -> NodeRef {
    NodeRef { id: Id(id), host: "10.0.0.1".into(), port: 4000 }
}

/// A member at 2Q of the settled ring 0, Q, 2Q, 3Q (predecessor Q, successors 3Q, 0, Q).
fn member() -> Engine {
    let config = ChordConfig::default();
    let ring = IdealRing::new([0, Q, 2 * Q, 3 * Q].map(Id));
    let mut engine = Engine::new(Settings::member(node(2 * Q), config.clone(), 1), Now { mono: 0, wall: WALL });
    engine.settle(ring.routing_of(Id(2 * Q), config.successor_list_len(), |id| node(id.0)));
    engine
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = protocol::parse(data) else { return };
    let mut engine = member();
    let now = Now { mono: 10, wall: WALL };
    // A write of our own puts a request in flight, so answers have something to match.
    engine.start_op(now, 1, UserOp::Set(b"k".to_vec(), b"v".to_vec()));
    drain(&mut engine);
    match message {
        Message::Request { id, body } => engine.handle_request(now, &node(Q), ReplyTo { conn: 1, id }, body),
        Message::Response { id, body } => {
            for to in [node(3 * Q), node(0), node(Q)] {
                engine.handle_response(now, to.id, id, body.clone());
            }
            let ids: Vec<u64> = (1..8).collect();
            for id in ids {
                engine.handle_response(now, Id(3 * Q), id, body.clone());
            }
        }
        message @ (Message::Event { .. } | Message::Subscribe { .. }) => engine.handle_message(now, &node(Q), message),
        _ => return,
    }
    drain(&mut engine);
    engine.handle_timeout(Now { mono: 60_000, wall: WALL + 60_000 });
    drain(&mut engine);
    // Whatever arrived, the clock stays within the drift bound of the wall clock.
    let high_water = engine.clock_high_water_millis();
    assert!(high_water <= WALL + 60_000 + DEFAULT_MAX_CLOCK_DRIFT.as_millis() as u64, "the clock was dragged to {high_water}");
});

fn drain(engine: &mut Engine) {
    while engine.poll_action().is_some() {}
}
