//! Plausibility checks on peers' requests, made before a request changes any state. One hook
//! in [`super::serve::serve`] asks [`check`]; a refused request is answered with an `Error`
//! response carrying a stable code and reported to the user as an `ERR_BAD_PEER` notice. The
//! connection stays open: a member with a skewed clock is misconfigured, not hostile.
//!
//! The rules (docs/PROTOCOL.md §6.1, "What a node refuses"):
//!
//! - **The user's limits.** A key over `MAX_KEY_BYTES` or a value over `MAX_VALUE_BYTES` in a
//!   `Write`, `Get`, `Replicate` or `Handoff` (relayed or not) is refused whole
//!   (`"too-large"`): a peer stores nothing a local caller could not, and no entry too large
//!   to ever leave in a frame can block anti-entropy. Items that arrive in answers pass
//!   [`storable`].
//! - **Bounded clocks.** A `Replicate` or `Handoff` carrying a version more than
//!   `max_clock_drift` ahead of our wall clock is refused whole (`"clock-drift"`): its versions
//!   are never observed, so one frame cannot drag our hybrid logical clock, or a key, to the
//!   end of time. Items that arrive in answers (`Items` of a `Fetch`) pass [`storable`].
//! - **Replicated items where the sender could hold them.** An honest sender only replicates
//!   entries of arcs that end at or before itself (its own arc, arcs it replicates, what it
//!   pulls when joining). So a `Replicate`d item must lie in our own arc `(predecessor, us]` or
//!   in `(us, sender]`; what lies after the sender and up to our predecessor is refused
//!   (`"bad-request"`). Without a predecessor we do not know where our arc starts: only
//!   `(us, sender]` is accepted then. A `Handoff` names us as the items' owner: one outside
//!   our arc is stale routing during a join, which `sync::TakeOver` answers with a redirect,
//!   not an offence.
//! - **Notify names its sender.** A node notifies its successor of itself (Chord's rectify), so
//!   `Notify(candidate)` is refused unless `candidate` is the sender: with key-bound ids nobody
//!   can propose another node, or a made-up one, as our predecessor.
//! - **Bounded lists.** A `FindSuccessor` (relayed or not) whose `avoid` list is longer than
//!   `MAX_AVOIDED_IDS` is refused (`"bad-request"`): each id costs a comparison per finger.
//!
//! Members of a keyed network are trusted beyond this; Byzantine members are out of scope.

use super::cx::{Cx, Notice};
use crate::config::{DEFAULT_MAX_CLOCK_DRIFT, MAX_AVOIDED_IDS, MAX_KEY_BYTES, MAX_VALUE_BYTES};
use crate::id::Id;
use crate::protocol::{Request, Response, Routed};
use crate::routing::NodeRef;
use crate::store::Item;
use crate::version::{within_drift, Version};

type Refusal = (&'static str, String);

/// `Some(refusal)` when `body` from `sender` is implausible; `None` lets it be served.
pub fn check(cx: &mut Cx<'_>, sender: Option<&NodeRef>, body: &Request) -> Option<Response> {
    let sender = sender?; // we serve ourselves without checks
    let refusal = match body {
        Request::Get { key } | Request::GetLeased { key } => check_key(key),
        Request::Invalidate { keys } => keys.iter().try_for_each(|key| check_key(key)),
        Request::Write { key, value, .. } => check_sizes(key, value.as_deref().map(|v| &v[..])),
        Request::Replicate { items } => check_item_sizes(items).and_then(|()| check_items(cx, sender, items)),
        // A hand-off names its receiver as the items' owner; one outside our arc is stale
        // routing, answered with a redirect (see `sync::TakeOver`), not an offence.
        Request::Handoff { items } => check_item_sizes(items).and_then(|()| check_drift(cx, items)),
        Request::Notify(candidate) if candidate.id != sender.id => {
            Err(("bad-request", format!("Notify names {} but comes from {}: a node notifies of itself only", candidate.id, sender.id)))
        }
        Request::FindSuccessor { avoid, .. } => check_avoid(avoid),
        Request::Relay { body, .. } => match body {
            Routed::FindSuccessor { avoid, .. } => check_avoid(avoid),
            Routed::Get { key } => check_key(key),
            Routed::Write { key, value, .. } => check_sizes(key, value.as_deref().map(|v| &v[..])),
        },
        _ => Ok(()),
    };
    let (code, message) = refusal.err()?;
    let what = request_name(body);
    cx.notice(Notice::Error { code: "ERR_BAD_PEER".into(), message: format!("refused {what} from {}:{} ({}): {message}", sender.host, sender.port, sender.id) });
    Some(Response::Error { code: code.into(), message })
}

fn check_key(key: &[u8]) -> Result<(), Refusal> {
    if key.len() > MAX_KEY_BYTES {
        return Err(("too-large", format!("a key of {} bytes is over the limit of {MAX_KEY_BYTES}", key.len())));
    }
    Ok(())
}

fn check_sizes(key: &[u8], value: Option<&[u8]>) -> Result<(), Refusal> {
    check_key(key)?;
    match value {
        Some(value) if value.len() > MAX_VALUE_BYTES => Err(("too-large", format!("a value of {} bytes is over the limit of {MAX_VALUE_BYTES}", value.len()))),
        _ => Ok(()),
    }
}

fn check_item_sizes(items: &[Item]) -> Result<(), Refusal> {
    items.iter().try_for_each(|item| check_sizes(&item.key, item.value.as_deref().map(|v| &v[..])))
}

fn check_avoid(avoid: &[Id]) -> Result<(), Refusal> {
    if avoid.len() > MAX_AVOIDED_IDS {
        return Err(("bad-request", format!("an avoid list of {} ids is over the limit of {MAX_AVOIDED_IDS}", avoid.len())));
    }
    Ok(())
}

fn check_drift(cx: &Cx<'_>, items: &[Item]) -> Result<(), Refusal> {
    let (wall, drift) = (cx.now.wall, max_drift_ms(cx));
    match items.iter().find(|item| !within_drift(&item.version, wall, drift)) {
        Some(item) => Err(("clock-drift", format!("version {} ms ahead of our clock (the limit is {drift} ms)", item.version.millis.saturating_sub(wall)))),
        None => Ok(()),
    }
}

/// Replicated items must lie in our arc `(predecessor, us]` or at or before the sender,
/// `(us, sender]`; without a predecessor only the latter.
fn check_items(cx: &Cx<'_>, sender: &NodeRef, items: &[Item]) -> Result<(), Refusal> {
    check_drift(cx, items)?;
    let me = cx.core.me.id;
    let predecessor = cx.core.predecessor_id();
    let plausible = |item: &Item| {
        let position = Id::of_key(&item.key);
        position.in_half_open(me, sender.id) || predecessor.is_some_and(|p| position.in_half_open(p, me))
    };
    let Some(item) = items.iter().find(|item| !plausible(item)) else { return Ok(()) };
    let ours = match predecessor {
        Some(p) => format!("in our arc ({p}, {me}]"),
        None => "in our arc (we know no predecessor)".to_string(),
    };
    Err(("bad-request", format!("key at {} is neither {ours} nor at or before the sender", Id::of_key(&item.key))))
}

/// May an item that arrived in an answer (a `Fetch`'s `Items`, a read around) be stored or
/// served? Not if it breaks the user's size limits or its version is too far ahead of our
/// clock (then it is never observed); either is reported.
pub fn storable(cx: &mut Cx<'_>, item: &Item) -> bool {
    if let Err((_, message)) = check_sizes(&item.key, item.value.as_deref().map(|v| &v[..])) {
        cx.notice(Notice::Error { code: "ERR_BAD_PEER".into(), message: format!("dropped an item that arrived in an answer: {message}") });
        return false;
    }
    observable(cx, &item.version)
}

/// May a version that arrived in an answer be observed and stored? Reports it when not.
fn observable(cx: &mut Cx<'_>, version: &Version) -> bool {
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
        Request::Get { .. } => "Get",
        Request::Write { .. } => "Write",
        Request::Replicate { .. } => "Replicate",
        Request::Handoff { .. } => "Handoff",
        Request::Notify(_) => "Notify",
        Request::FindSuccessor { .. } => "FindSuccessor",
        Request::Relay { .. } => "Relay",
        _ => "a request",
    }
}

#[cfg(test)]
mod tests {
    use super::super::cx::{Action, Now, ReplyTo};
    use super::super::{Engine, Settings};
    use crate::config::{ChordConfig, MAX_AVOIDED_IDS, MAX_KEY_BYTES, MAX_VALUE_BYTES};
    use crate::id::Id;
    use crate::protocol::{Request, Response, Routed, WriteMode};
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

    fn refused_with(answer: &Response, wanted: &str) -> bool {
        matches!(answer, Response::Error { code, .. } if code == wanted)
    }

    fn sized(key: Vec<u8>, value_len: usize) -> Item {
        Item { key, value: Some(ByteBuf::from(vec![b'v'; value_len])), version: Version { millis: WALL, counter: 0, writer: Id(7) } }
    }

    #[test]
    fn peers_obey_the_users_key_and_value_limits() {
        let mut engine = member();
        let key = key_in(Q, 2 * Q);
        let big_key = vec![b'k'; MAX_KEY_BYTES + 1];
        let big_value = || Some(ByteBuf::from(vec![b'v'; MAX_VALUE_BYTES + 1]));
        let cases = vec![
            Request::Write { key: ByteBuf::from(big_key.clone()), value: Some(ByteBuf::from(b"v".to_vec())), mode: WriteMode::Set, nonce: 0 },
            Request::Write { key: ByteBuf::from(key.clone()), value: big_value(), mode: WriteMode::Set, nonce: 0 },
            Request::Relay { ttl: 3, body: Routed::Write { key: ByteBuf::from(key.clone()), value: big_value(), mode: WriteMode::Set, nonce: 0 } },
            Request::Get { key: ByteBuf::from(big_key.clone()) },
            Request::Relay { ttl: 3, body: Routed::Get { key: ByteBuf::from(big_key.clone()) } },
            Request::Replicate { items: vec![sized(key.clone(), MAX_VALUE_BYTES + 1)] },
            Request::Replicate { items: vec![sized(key.clone(), 1), sized(big_key.clone(), 1)] },
            Request::Handoff { items: vec![sized(key.clone(), MAX_VALUE_BYTES + 1)] },
            Request::Handoff { items: vec![sized(big_key.clone(), 1)] },
        ];
        for body in cases {
            let what = format!("{body:?}").chars().take(40).collect::<String>();
            let (answer, notices) = serve(&mut engine, Q, body);
            assert!(refused_with(&answer, "too-large"), "{what}: {answer:?}");
            assert!(notices[0].starts_with("ERR_BAD_PEER: refused") && notices[0].contains("over the limit"), "{notices:?}");
        }
        assert_eq!(engine.store().len(), 0, "nothing of a refused request is stored");
        // At the limits exactly: taken.
        let (answer, _) = serve(&mut engine, Q, Request::Replicate { items: vec![sized(key.clone(), MAX_VALUE_BYTES)] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.local_get(&key).map(|v| v.len()), Some(MAX_VALUE_BYTES));
    }

    #[test]
    fn an_avoid_list_past_the_bound_is_refused() {
        let mut engine = member();
        let long: Vec<Id> = (1..=MAX_AVOIDED_IDS as u128 + 1).map(Id).collect();
        let (answer, _) = serve(&mut engine, Q, Request::FindSuccessor { position: Id(3 * Q + 1), avoid: long.clone() });
        assert!(refused_with(&answer, "bad-request"), "{answer:?}");
        let (answer, _) = serve(&mut engine, Q, Request::Relay { ttl: 2, body: Routed::FindSuccessor { position: Id(3 * Q + 1), avoid: long } });
        assert!(refused_with(&answer, "bad-request"), "{answer:?}");
        let bounded: Vec<Id> = (1..=MAX_AVOIDED_IDS as u128).map(Id).collect();
        let (answer, _) = serve(&mut engine, Q, Request::FindSuccessor { position: Id(3 * Q + 1), avoid: bounded });
        assert!(matches!(answer, Response::Next(_)), "{answer:?}");
    }

    #[test]
    fn without_a_predecessor_only_items_at_or_before_the_sender_are_taken() {
        let mut engine = member();
        engine.core.ring.as_mut().unwrap().remove(Id(Q));
        assert!(engine.ring().unwrap().predecessor().is_none());
        // From our successor 3Q: (2Q, 3Q] lies at or before it.
        let (answer, _) = serve(&mut engine, 3 * Q, Request::Replicate { items: vec![item(key_in(2 * Q, 3 * Q), WALL, 0)] });
        assert_eq!(answer, Response::Ok);
        // What lies after it — our old predecessor's arc, or our own — could be anybody's.
        for key in [key_in(0, Q), key_in(Q, 2 * Q)] {
            let (answer, notices) = serve(&mut engine, 3 * Q, Request::Replicate { items: vec![item(key.clone(), WALL, 0)] });
            assert!(refused_with(&answer, "bad-request"), "{answer:?}");
            assert!(notices[0].contains("we know no predecessor"), "{notices:?}");
            assert_eq!(engine.local_get(&key), None);
        }
    }

    /// Serve `body` from `from`: the answer, and the nodes the engine sent requests to.
    fn serve_asking(engine: &mut Engine, from: u128, body: Request) -> (Response, Vec<Id>) {
        engine.handle_request(Now { mono: 1, wall: WALL }, &node(from), ReplyTo { conn: 1, id: 1 }, body);
        let (mut answer, mut asked) = (None, Vec::new());
        while let Some(action) = engine.poll_action() {
            match action {
                Action::Respond { body, .. } => answer = Some(body),
                Action::Request { to, .. } => asked.push(to.id),
                _ => {}
            }
        }
        (answer.expect("answered at once"), asked)
    }

    #[test]
    fn leaving_installs_no_stranger_and_moves_nothing_unless_a_neighbour_leaves() {
        let mut engine = member();
        let made_up = node(Q + 12_345);
        // From a node outside our routing state: nothing but the sender itself changes.
        let (answer, asked) = serve_asking(&mut engine, 2 * Q + 5, Request::Leaving { predecessor: Some(made_up.clone()), successors: vec![] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.ring().unwrap().predecessor().map(|p| p.id), Some(Id(Q)));
        assert!(asked.is_empty() && !engine.core.arc.take_sync_wanted(), "no dial, no sync");
        // Our predecessor leaves naming a node we never heard of: dropped, nothing adopted, no dial.
        let (answer, asked) = serve_asking(&mut engine, Q, Request::Leaving { predecessor: Some(made_up.clone()), successors: vec![node(2 * Q)] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.ring().unwrap().predecessor(), None);
        assert!(!asked.contains(&made_up.id) && !engine.core.view.contains_key(&made_up.id));
        // Naming a node we know (0, in our successor list), which lies before it: adopted, as we
        // know it (not at the address named).
        let mut engine = member();
        let named = NodeRef { id: Id(0), host: "203.0.113.9".into(), port: 9 };
        let (answer, _) = serve_asking(&mut engine, Q, Request::Leaving { predecessor: Some(named), successors: vec![node(2 * Q)] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.ring().unwrap().predecessor(), Some(&node(0)));
        // A successor leaving names its predecessor (us): nothing to adopt.
        let mut engine = member();
        let (answer, _) = serve_asking(&mut engine, 3 * Q, Request::Leaving { predecessor: Some(node(2 * Q)), successors: vec![node(0)] });
        assert_eq!(answer, Response::Ok);
        assert_eq!(engine.ring().unwrap().predecessor().map(|p| p.id), Some(Id(Q)));
        assert!(!engine.ring().unwrap().successors().iter().any(|s| s.id == Id(3 * Q)));
    }
}
