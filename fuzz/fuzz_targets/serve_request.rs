//! Request handling: any frame body that decodes, fed to a ring member's engine as if a peer
//! sent it (requests, answers to its own requests, ring events), must never panic; the
//! engine's guard must keep far-future versions out of its clock.
#![no_main]

use chord::config::{ChordConfig, DEFAULT_MAX_CLOCK_DRIFT};
use chord::engine::{Engine, Now, ReplyTo, Settings, UserOp};
use chord::protocol::{self, Message};
use chord::{Id, NodeRef};
use libfuzzer_sys::fuzz_target;

const WALL: u64 = 1_800_000_000_000;
const Q: u128 = 1 << 126;

fn node(id: u128) -> NodeRef {
    NodeRef { id: Id(id), host: "10.0.0.1".into(), port: 4000 }
}

/// A member at 2Q with predecessor Q and successors 3Q, 0, holding a few keys.
fn member() -> Engine {
    let settings = Settings::member(node(2 * Q), ChordConfig::default(), 1);
    let mut engine = Engine::new(settings, Now { mono: 0, wall: WALL });
    let ring = engine.core_mut().ring.as_mut().expect("a member");
    ring.join(vec![node(3 * Q), node(0)]);
    ring.on_notify(&node(Q));
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
        Message::Event { id, key, added, limit } => engine.handle_event(now, id, key.into_vec(), added, limit),
        _ => return,
    }
    drain(&mut engine);
    engine.handle_timeout(Now { mono: 60_000, wall: WALL + 60_000 });
    drain(&mut engine);
    // Whatever arrived, the clock stays within the drift bound of the wall clock.
    let next = engine.core_mut().clock.tick(WALL + 60_000);
    assert!(next.millis <= WALL + 60_000 + DEFAULT_MAX_CLOCK_DRIFT.as_millis() as u64 + 1, "the clock was dragged to {next:?}");
});

fn drain(engine: &mut Engine) {
    while engine.poll_action().is_some() {}
}
