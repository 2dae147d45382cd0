//! Plausibility checks on peers' requests, made before a request changes any state. One hook
//! in [`super::serve::serve`] asks [`check`]; a refused request is answered with an `Error`
//! response carrying a stable code and reported to the user as an `ERR_BAD_PEER` notice. The
//! connection stays open: a member with a skewed clock is misconfigured, not hostile.
//!
//! The rules (docs/PROTOCOL.md §6.1, "What a node refuses"):
//!
//! - **Bounded clocks.** A `Replicate` or `Handoff` carrying a version more than
//!   `max_clock_drift` ahead of our wall clock is refused whole (`"clock-drift"`): its versions
//!   are never observed, so one frame cannot drag our hybrid logical clock, or a key, to the
//!   end of time. Items that arrive in answers (`Items` of a `Fetch`) pass [`observable`].
//! - **Replicated items where the sender could hold them.** An honest sender only replicates
//!   entries of arcs that end at or before itself (its own arc, arcs it replicates, what it
//!   pulls when joining). So a `Replicate`d item must lie in our own arc `(predecessor, us]` or
//!   in `(us, sender]`; what lies after the sender and up to our predecessor is refused
//!   (`"bad-request"`). Without a predecessor we cannot tell, and accept. A `Handoff` names us
//!   as the items' owner: one outside our arc is stale routing during a join, which
//!   `sync::TakeOver` answers with a redirect, not an offence.
//! - **Notify names its sender.** A node notifies its successor of itself (Chord's rectify), so
//!   `Notify(candidate)` is refused unless `candidate` is the sender: with key-bound ids nobody
//!   can propose another node, or a made-up one, as our predecessor.
//!
//! Members of a keyed network are trusted beyond this; Byzantine members are out of scope.

use super::cx::{Cx, Notice};
use crate::config::DEFAULT_MAX_CLOCK_DRIFT;
use crate::id::Id;
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;
use crate::store::Item;
use crate::version::{within_drift, Version};

/// `Some(refusal)` when `body` from `sender` is implausible; `None` lets it be served.
pub fn check(cx: &mut Cx<'_>, sender: Option<&NodeRef>, body: &Request) -> Option<Response> {
    let sender = sender?; // we serve ourselves without checks
    let refusal = match body {
        Request::Replicate { items } => check_items(cx, sender, items),
        // A hand-off names its receiver as the items' owner; one outside our arc is stale
        // routing, answered with a redirect (see `sync::TakeOver`), not an offence.
        Request::Handoff { items } => check_drift(cx, items),
        Request::Notify(candidate) if candidate.id != sender.id => {
            Err(("bad-request", format!("Notify names {} but comes from {}: a node notifies of itself only", candidate.id, sender.id)))
        }
        _ => Ok(()),
    };
    let (code, message) = refusal.err()?;
    let what = request_name(body);
    cx.notice(Notice::Error { code: "ERR_BAD_PEER".into(), message: format!("refused {what} from {}:{} ({}): {message}", sender.host, sender.port, sender.id) });
    Some(Response::Error { code: code.into(), message })
}

fn check_drift(cx: &Cx<'_>, items: &[Item]) -> Result<(), (&'static str, String)> {
    let (wall, drift) = (cx.now.wall, max_drift_ms(cx));
    match items.iter().find(|item| !within_drift(&item.version, wall, drift)) {
        Some(item) => Err(("clock-drift", format!("version {} ms ahead of our clock (the limit is {drift} ms)", item.version.millis.saturating_sub(wall)))),
        None => Ok(()),
    }
}

fn check_items(cx: &Cx<'_>, sender: &NodeRef, items: &[Item]) -> Result<(), (&'static str, String)> {
    check_drift(cx, items)?;
    let me = cx.core.me.id;
    let Some(predecessor) = cx.core.ring.as_ref().and_then(|ring| ring.predecessor()).map(|p| p.id) else { return Ok(()) };
    let implausible = |item: &&Item| {
        let position = Id::of_key(&item.key);
        !position.in_half_open(predecessor, me) && !position.in_half_open(me, sender.id)
    };
    if let Some(item) = items.iter().find(implausible) {
        return Err((
            "bad-request",
            format!("key at {} is neither in our arc ({predecessor}, {me}] nor at or before the sender", Id::of_key(&item.key)),
        ));
    }
    Ok(())
}

/// May a version that arrived in an answer be observed and stored? Reports it when not.
pub fn observable(cx: &mut Cx<'_>, version: &Version) -> bool {
    let (wall, drift) = (cx.now.wall, max_drift_ms(cx));
    if within_drift(version, wall, drift) {
        return true;
    }
    let ahead = version.millis.saturating_sub(wall);
    cx.notice(Notice::Error { code: "ERR_BAD_PEER".into(), message: format!("dropped an item whose version is {ahead} ms ahead of our clock (the limit is {drift} ms)") });
    false
}

fn max_drift_ms(cx: &Cx<'_>) -> u64 {
    cx.core.chord.as_ref().map_or(DEFAULT_MAX_CLOCK_DRIFT, |c| c.max_clock_drift).as_millis() as u64
}

fn request_name(body: &Request) -> &'static str {
    match body {
        Request::Replicate { .. } => "Replicate",
        Request::Handoff { .. } => "Handoff",
        Request::Notify(_) => "Notify",
        _ => "a request",
    }
}

#[cfg(test)]
mod tests {
    use super::super::cx::{Action, Now, ReplyTo};
    use super::super::{Engine, Settings};
    use crate::config::ChordConfig;
    use crate::id::Id;
    use crate::protocol::{Request, Response};
    use crate::routing::NodeRef;
    use crate::store::Item;
    use crate::testing::IdealRing;
    use crate::version::Version;
    use serde_bytes::ByteBuf;

    const WALL: u64 = 1_800_000_000_000;
    const Q: u128 = 1 << 126;

    fn node(id: u128) -> NodeRef {
        NodeRef { id: Id(id), host: "10.0.0.1".into(), port: 4000 }
    }

    /// A member at 2Q of the settled ring 0, Q, 2Q, 3Q (so its arc is (Q, 2Q]).
    fn member() -> Engine {
        let config = ChordConfig::default();
        let ring = IdealRing::new([0, Q, 2 * Q, 3 * Q].map(Id));
        let mut engine = Engine::new(Settings::member(node(2 * Q), config.clone(), 1), Now { mono: 0, wall: WALL });
        engine.settle(ring.routing_of(Id(2 * Q), config.successor_list_len(), |id| node(id.0)));
        engine
    }

    /// A key whose position lies in `(from, to]`.
    fn key_in(from: u128, to: u128) -> Vec<u8> {
        (0..).map(|i: u32| format!("key-{i}").into_bytes()).find(|k| Id::of_key(k).in_half_open(Id(from), Id(to))).unwrap()
    }

    fn item(key: Vec<u8>, millis: u64, counter: u32) -> Item {
        Item { key, value: Some(ByteBuf::from(b"evil".to_vec())), version: Version { millis, counter, writer: Id(7) } }
    }

    /// Serve `body` from `from` and return the answer and the notices.
    fn serve(engine: &mut Engine, from: u128, body: Request) -> (Response, Vec<String>) {
        engine.handle_request(Now { mono: 1, wall: WALL }, &node(from), ReplyTo { conn: 1, id: 1 }, body);
        let (mut answer, mut notices) = (None, Vec::new());
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Respond { body, .. } => answer = Some(body),
                Action::Notice(super::Notice::Error { code, message }) => notices.push(format!("{code}: {message}")),
                _ => {}
            }
        }
        (answer.expect("answered at once"), notices)
    }

    #[test]
    fn a_far_future_version_is_refused_and_never_observed() {
        let mut engine = member();
        let key = key_in(Q, 2 * Q);
        for (millis, counter) in [(u64::MAX, u32::MAX), (WALL + 60_001, 0)] {
            let (answer, notices) = serve(&mut engine, Q, Request::Replicate { items: vec![item(key.clone(), millis, counter)] });
            assert!(matches!(&answer, Response::Error { code, .. } if code == "clock-drift"), "{answer:?}");
            assert!(notices[0].starts_with("ERR_BAD_PEER: refused Replicate"), "{notices:?}");
            assert_eq!(engine.local_get(&key), None);
        }
        // Our clock did not move: nothing past our own wall clock was observed.
        assert!(engine.clock_high_water_millis() <= WALL);
        // Within the bound is fine.
        let (answer, _) = serve(&mut engine, Q, Request::Replicate { items: vec![item(key.clone(), WALL + 59_000, 0)] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.local_get(&key), Some(b"evil".to_vec()));
    }

    #[test]
    fn items_must_lie_in_our_arc_or_at_or_before_the_sender() {
        let mut engine = member();
        // From the owner at Q behind us: its own arc (0, Q] is fine; our arc (Q, 2Q] too.
        let (answer, _) = serve(&mut engine, Q, Request::Replicate { items: vec![item(key_in(0, Q), WALL, 0), item(key_in(Q, 2 * Q), WALL, 0)] });
        assert_eq!(answer, Response::Ok);
        // A sender at 3Q cannot hold keys of (3Q, Q]: they lie after it and up to our
        // predecessor, outside our arc.
        let (answer, notices) = serve(&mut engine, 3 * Q, Request::Replicate { items: vec![item(key_in(3 * Q, Q), WALL, 0)] });
        assert!(matches!(&answer, Response::Error { code, .. } if code == "bad-request"), "{answer:?}");
        assert!(notices[0].contains("neither in our arc"), "{notices:?}");
        // From 3Q, keys of (2Q, 3Q] (at or before it) are fine: a joiner there pushes them.
        let (answer, _) = serve(&mut engine, 3 * Q, Request::Replicate { items: vec![item(key_in(2 * Q, 3 * Q), WALL, 0)] });
        assert_eq!(answer, Response::Ok);
    }

    #[test]
    fn notify_must_name_its_sender() {
        let mut engine = member();
        let (answer, notices) = serve(&mut engine, Q, Request::Notify(node(2 * Q - 1)));
        assert!(matches!(&answer, Response::Error { code, .. } if code == "bad-request"), "{answer:?}");
        assert!(notices[0].contains("refused Notify"));
        assert_eq!(engine.ring().unwrap().predecessor().map(|p| p.id), Some(Id(Q)));
        let (answer, _) = serve(&mut engine, 2 * Q - 1, Request::Notify(node(2 * Q - 1)));
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.ring().unwrap().predecessor().map(|p| p.id), Some(Id(2 * Q - 1)));
    }
}
