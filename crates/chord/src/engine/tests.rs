//! The engine's machines under a fake clock: a handful of engines wired by a test harness that
//! delivers messages at once and moves time only when told to. No sockets, no sleeps: every
//! timeout here is reached by advancing the clock.

use super::*;
use crate::config::MAX_CANDIDATES_PER_MESSAGE;
use crate::protocol::Message;
use crate::store::Item;
use crate::version::Version;
use std::collections::{BTreeMap, HashSet};

const WALL_EPOCH: u64 = 1_800_000_000_000;

/// Engines by id, delivering every action at once; `dead` nodes refuse connections, `silent`
/// ones swallow requests and send nothing (a cut link).
struct Harness {
    engines: BTreeMap<Id, Engine>,
    index: Vec<Id>,
    now: Millis,
    dead: HashSet<Id>,
    silent: HashSet<Id>,
    /// Answer pings only (a peer busy with everything else).
    busy: HashSet<Id>,
    /// (from, to) pairs whose requests fail as refused busy (a full connection table).
    refusing: HashSet<(Id, Id)>,
    /// Every answer delivered, with the node it went to.
    answered: Vec<(Id, Response)>,
    /// Pings lost on these links (from, to), this many each.
    lose_pings: HashMap<(Id, Id), u32>,
    /// Requests swallowed by silent nodes, by (from, to).
    swallowed: HashMap<(Id, Id), u32>,
    done: HashMap<OpId, Result<OpOutput, Error>>,
    notices: Vec<(Id, Notice)>,
    next_op: OpId,
    largest_frame: usize,
    /// Stores "on disk" (see `crate::store::fake`) and the commits they were asked for.
    disks: HashMap<Id, crate::store::fake::FakeDisk>,
    persists: Vec<(Id, Ticket)>,
}

fn node(id: u128) -> NodeRef {
    NodeRef { id: Id(id), host: "10.0.0.1".into(), port: (id % 60_000) as u16 }
}

fn chord(events: bool) -> ChordConfig {
    ChordConfig { events, ..ChordConfig::default() }
}

impl Harness {
    /// Members with the ideal ring state (successor lists, predecessors, fingers).
    fn ring(ids: &[u128], config: ChordConfig) -> Harness {
        Harness::rings(&[ids], config)
    }

    /// Separate correct rings (as after a partition), one per group of ids.
    fn rings(groups: &[&[u128]], config: ChordConfig) -> Harness {
        let mut h = Harness {
            engines: BTreeMap::new(),
            index: Vec::new(),
            now: 0,
            dead: HashSet::new(),
            silent: HashSet::new(),
            busy: HashSet::new(),
            refusing: HashSet::new(),
            answered: Vec::new(),
            lose_pings: HashMap::new(),
            swallowed: HashMap::new(),
            done: HashMap::new(),
            notices: Vec::new(),
            next_op: 0,
            largest_frame: 0,
            disks: HashMap::new(),
            persists: Vec::new(),
        };
        for ids in groups {
            let ring = crate::testing::IdealRing::new(ids.iter().map(|&id| Id(id)));
            for &id in ring.ids() {
                h.add(id.0, config.clone());
                let routing = ring.routing_of(id, config.successor_list_len(), |id| node(id.0));
                h.engine(id.0).settle(routing);
            }
        }
        h
    }

    fn add(&mut self, id: u128, config: ChordConfig) {
        let settings = Settings::member(node(id), config, id as u64);
        self.engines.insert(Id(id), Engine::new(settings, self.at()));
        self.index.push(Id(id));
    }

    fn at(&self) -> Now {
        Now { mono: self.now, wall: WALL_EPOCH + self.now }
    }

    fn engine(&mut self, id: u128) -> &mut Engine {
        self.engines.get_mut(&Id(id)).unwrap()
    }

    fn start(&mut self, at: u128, op: UserOp) -> OpId {
        self.next_op += 1;
        let (id, now) = (self.next_op, self.at());
        self.engine(at).start_op(now, id, op);
        self.pump();
        id
    }

    /// Deliver every action until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            let ids: Vec<Id> = self.engines.keys().copied().collect();
            for from in ids {
                while let Some(action) = self.engines.get_mut(&from).and_then(|e| e.poll_action()) {
                    moved = true;
                    self.deliver(from, action);
                }
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver(&mut self, from: Id, action: Action) {
        let now = self.at();
        // Every frame a node sends fits the smallest frame limit a ChordSocket may have.
        let message = match &action {
            Action::Request { id, body, .. } => Some(Message::Request { id: *id, body: body.clone() }),
            Action::Respond { to, body } => Some(Message::Response { id: to.id, body: body.clone() }),
            Action::Send { message, .. } => Some(message.clone()),
            _ => None,
        };
        if let Some(message) = message {
            let size = crate::protocol::encode(&message).len() - crate::protocol::LENGTH_PREFIX_BYTES;
            assert!(size <= crate::config::MIN_CHORD_FRAME_BYTES, "a frame of {size} bytes");
            self.largest_frame = self.largest_frame.max(size);
        }
        let conn = self.index.iter().position(|id| *id == from).unwrap() as u64;
        // A silent node's link is cut: nothing it sends arrives either.
        let cut = self.silent.contains(&from) && matches!(action, Action::Request { .. } | Action::Respond { .. } | Action::Send { .. });
        match action {
            _ if cut => {}
            Action::Request { to, body: Request::Ping, .. } if self.lose_pings.get(&(from, to.id)).is_some_and(|n| *n > 0) => {
                *self.lose_pings.get_mut(&(from, to.id)).unwrap() -= 1;
            }
            Action::Request { to, id, body } => {
                if self.dead.contains(&to.id) || !self.engines.contains_key(&to.id) {
                    let error = Error::Io { code: "ECONNREFUSED", message: "refused".into() };
                    self.engines.get_mut(&from).unwrap().request_failed(now, id, error);
                } else if self.refusing.contains(&(from, to.id)) {
                    let error = Error::Rejected { code: "busy".into(), reason: "peer limit reached".into(), elsewhere: Vec::new() };
                    self.engines.get_mut(&from).unwrap().request_failed(now, id, error);
                } else if self.silent.contains(&to.id) {
                    *self.swallowed.entry((from, to.id)).or_default() += 1;
                } else if !self.busy.contains(&to.id) || body == Request::Ping {
                    let sender = self.engines[&from].me().clone();
                    self.engines.get_mut(&to.id).unwrap().handle_request(now, &sender, ReplyTo { conn, id }, body);
                }
            }
            Action::Respond { to, body } => {
                let target = self.index[to.conn as usize];
                self.answered.push((target, body.clone()));
                if !self.dead.contains(&target) {
                    self.engines.get_mut(&target).unwrap().handle_response(now, from, to.id, body);
                }
            }
            Action::Send { to, message: message @ (Message::Event { .. } | Message::Subscribe { .. }) } => {
                if !self.dead.contains(&to.id) {
                    // Events travel on connections; the receiver knows whether the sender's
                    // handshake claimed membership.
                    let sender = self.engines[&from].me().clone();
                    let member = self.engines[&from].is_member();
                    let receiver = self.engines.get_mut(&to.id).unwrap();
                    receiver.connected(now, &sender, member);
                    receiver.handle_message(now, &sender, message);
                }
            }
            Action::Send { .. } | Action::ToClients { .. } | Action::Disconnect { .. } => {}
            Action::Persist { ticket } => self.persists.push((from, ticket)),
            Action::Notice(notice) => self.notices.push((from, notice)),
            Action::Done { op, result } => {
                self.done.insert(op, result);
            }
        }
    }

    /// Move the clock by `ms`, firing every deadline on the way in 50 ms steps.
    fn advance(&mut self, ms: Millis) {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + 50).min(end);
            let now = self.at();
            let ids: Vec<Id> = self.engines.keys().filter(|id| !self.dead.contains(id)).copied().collect();
            for id in ids {
                self.engines.get_mut(&id).unwrap().handle_timeout(now);
            }
            self.pump();
        }
    }

    fn result(&mut self, op: OpId) -> Option<Result<OpOutput, Error>> {
        self.done.remove(&op)
    }

    fn holds(&self, at: u128, key: &[u8]) -> Option<Vec<u8>> {
        self.engines[&Id(at)].local_get(key)
    }

    /// Give a node a store on "disk" (empty).
    fn on_disk(&mut self, at: u128) -> crate::store::fake::FakeDisk {
        let disk = crate::store::fake::FakeDisk::default();
        self.engine(at).restore(Restored { store: Store::with_values(Box::new(disk.clone()), []), high_water: None, members: Vec::new() });
        self.disks.insert(Id(at), disk.clone());
        disk
    }

    /// The node's disk commits what it staged; the commits it was asked for complete.
    fn commit(&mut self, at: u128) {
        self.disks[&Id(at)].commit();
        let now = self.at();
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.persists).into_iter().partition(|(id, _)| *id == Id(at));
        self.persists = others;
        for (_, ticket) in mine {
            self.engine(at).persisted(now, ticket, Ok(()));
        }
        self.pump();
    }
}

/// A key whose ring position falls in `(from, to]`.
fn key_in(from: u128, to: u128) -> Vec<u8> {
    (0u32..).map(|i| format!("k{i}").into_bytes()).find(|k| Id::of_key(k).in_half_open(Id(from), Id(to))).unwrap()
}

const Q: u128 = u128::MAX / 8;

#[test]
fn a_get_and_a_set_reach_the_owner_and_its_replicas() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    let key = key_in(2 * Q, 3 * Q); // owned by 3Q, replicas 4Q and 5Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(OpOutput::Written { .. }))));
    for holder in [3 * Q, 4 * Q, 5 * Q] {
        assert_eq!(h.holds(holder, &key), Some(b"v".to_vec()), "copy on {holder:x}");
    }
    assert_eq!(h.holds(Q, &key), None);
    let get = h.start(5 * Q, UserOp::Get(key));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"v".to_vec())))));
}

#[test]
fn a_write_stands_in_for_a_dead_replica() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    let key = key_in(2 * Q, 3 * Q);
    h.dead.insert(Id(4 * Q));
    let set = h.start(Q, UserOp::Set(key.clone(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    assert_eq!(h.holds(5 * Q, &key), Some(b"v".to_vec()));
    assert_eq!(h.holds(Q, &key), Some(b"v".to_vec()), "the next successor stands in for the dead one");
    assert!(!h.engines[&Id(3 * Q)].core.ring.as_ref().unwrap().successors().iter().any(|s| s.id == Id(4 * Q)), "the dead replica is forgotten");
}

#[test]
fn a_lookup_routes_around_a_dead_hop() {
    let ids: Vec<u128> = (1..=16).map(|i| i * (u128::MAX / 17)).collect();
    let mut h = Harness::ring(&ids, chord(false));
    let key = key_in(ids[9], ids[10]);
    let first = h.start(ids[0], UserOp::Lookup(key.clone()));
    let Some(Ok(OpOutput::Lookup(before))) = h.result(first) else { panic!() };
    assert_eq!(before.owner.id, Id(ids[10]));
    assert!(before.hops >= 1);
    // Kill the node the first lookup asked last before the owner: the path must go around it.
    h.dead.insert(Id(ids[9]));
    let second = h.start(ids[0], UserOp::Lookup(key));
    let Some(Ok(OpOutput::Lookup(after))) = h.result(second) else { panic!("lookup failed") };
    assert_eq!(after.owner.id, Id(ids[10]));
}

#[test]
fn a_silent_target_is_suspected_after_the_failure_timeout_and_the_sweep_finds_the_next_one_silent_too() {
    let mut h = Harness::ring(&[Q, 5 * Q], chord(false));
    h.add(3 * Q, ChordConfig { join: false, ..chord(false) });
    h.engine(3 * Q).learn_member(&node(Q));
    h.engine(3 * Q).learn_member(&node(5 * Q));
    h.silent.extend([Id(Q), Id(5 * Q)]);
    let get = h.start(3 * Q, UserOp::Get(key_in(Q, 5 * Q)));
    h.advance(1_900);
    assert_eq!(h.result(get), None, "the first target is not suspected before the failure timeout (2 s)");
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 0);
    h.advance(200);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 1, "the first target is suspected at 2 s");
    assert_eq!(h.result(get), None, "the second is being asked");
    // When the first ping to the first target went unanswered, a sweep probed the second
    // member too (silent since we last heard it): it is suspected half a failure timeout
    // after the first, not a whole one after it was asked.
    h.advance(1_000);
    let client = &h.engines[&Id(3 * Q)];
    assert!(client.core.view.is_empty(), "both are forgotten");
    assert_eq!(client.stats().suspicions, 2);
    assert!(client.core.contacts.contains(Id(Q)) && client.core.contacts.contains(Id(5 * Q)), "and kept as contacts to retry");
    // The client keeps retrying them until the operation's deadline, then gives up.
    assert_eq!(h.result(get), None);
    h.advance(17_000);
    let Some(Err(error)) = h.result(get) else { panic!("both members stayed silent: the operation fails at its deadline") };
    assert_eq!(error.code(), "ERR_UNAVAILABLE");
}

#[test]
fn a_client_that_suspected_every_member_reads_again_once_one_answers() {
    // A ring of one member (the harness cuts a silent node's every link), and a client.
    let mut h = Harness::ring(&[Q], chord(false));
    h.add(3 * Q, ChordConfig { join: false, ..chord(false) });
    h.engine(3 * Q).learn_member(&node(Q));
    let key = b"kept".to_vec();
    let set = h.start(3 * Q, UserOp::Set(key.clone(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    // The ring falls silent (a stopped process) for longer than the failure timeout.
    h.silent.insert(Id(Q));
    let during = h.start(3 * Q, UserOp::Get(key.clone()));
    h.advance(4_000);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 1, "its only member suspected");
    assert!(h.engines[&Id(3 * Q)].core.view.is_empty());
    // It answers again: the operation under way (retrying within its deadline), and new
    // ones, read the value.
    h.silent.clear();
    h.advance(8_000);
    assert_eq!(h.result(during), Some(Ok(OpOutput::Value(Some(b"v".to_vec())))));
    let after = h.start(3 * Q, UserOp::Get(key));
    h.advance(1_000);
    assert_eq!(h.result(after), Some(Ok(OpOutput::Value(Some(b"v".to_vec())))));
    assert!(!h.engines[&Id(3 * Q)].core.view.is_empty(), "the members it probed are back in its view");
}

#[test]
fn a_busy_peer_that_answers_the_probe_is_not_suspected() {
    let mut h = Harness::ring(&[Q, 5 * Q], chord(false));
    h.busy.insert(Id(5 * Q)); // answers pings, sits on everything else
    let get = h.start(Q, UserOp::Get(key_in(Q, 5 * Q)));
    h.advance(4_900);
    assert_eq!(h.result(get), None, "waits for the request timeout, not the failure timeout");
    assert_eq!(h.engines[&Id(Q)].stats().suspicions, 0);
    assert!(h.engines[&Id(Q)].core.ring.as_ref().unwrap().successors().iter().any(|s| s.id == Id(5 * Q)));
}

#[test]
fn a_silent_peer_whose_first_probe_ping_is_lost_is_suspected_only_if_the_second_is_too() {
    // A client outside the ring, so only its requests (never the owner's) carry news of life.
    let mut h = Harness::ring(&[Q, 5 * Q], chord(false));
    h.add(3 * Q, ChordConfig { join: false, ..chord(false) });
    h.engine(3 * Q).learn_member(&node(5 * Q));
    // The owner answers pings only, and the first probe ping is lost: not suspected.
    h.busy.insert(Id(5 * Q));
    h.lose_pings.insert((Id(3 * Q), Id(5 * Q)), 1);
    let first = h.start(3 * Q, UserOp::Get(key_in(Q, 5 * Q)));
    h.advance(2_500);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 0, "the second ping was answered");
    assert_eq!(h.result(first), None, "still waiting for the request timeout");
    // Every ping lost: suspected within the failure timeout of the next request.
    h.silent.insert(Id(5 * Q));
    let second = h.start(3 * Q, UserOp::Get(key_in(Q, 5 * Q)));
    h.advance(1_900);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 0, "not before the failure timeout");
    h.advance(200);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 1, "silent through both pings");
    // Its only member suspected, the client retries it (as a contact) until the deadline.
    assert!(h.result(second).is_none(), "still retrying its only member");
    h.advance(18_000);
    assert!(matches!(h.result(second), Some(Err(_))), "failed at the operation deadline");
}

#[test]
fn an_operation_redirected_to_a_node_we_suspect_routes_around_it_and_never_asks_it() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], chord(false));
    let client = 6 * Q;
    h.add(client, ChordConfig { join: false, ..chord(false) });
    h.engine(client).learn_member(&node(Q));
    // 3Q went silent; the client knows (it suspects 3Q), the members do not yet.
    h.silent.insert(Id(3 * Q));
    h.engine(client).core.suspect_until(Id(3 * Q), 60_000);
    let set = h.start(client, UserOp::Set(key_in(2 * Q, 3 * Q), b"v".to_vec()));
    h.advance(4_000);
    assert!(matches!(h.result(set), Some(Ok(OpOutput::Written { .. }))), "the write found 3Q's live successor once it took over");
    assert_eq!(h.swallowed.get(&(Id(client), Id(3 * Q))), None, "the client never asked the node it suspects");
}

#[test]
fn a_probe_that_hears_from_its_peer_meanwhile_does_not_suspect_it() {
    // A request overdue while its peer spoke after it was sent is re-armed, not probed at once:
    // checked through a silent peer that spoke just after our request left.
    let mut h = Harness::ring(&[Q, 5 * Q], chord(false));
    h.add(3 * Q, ChordConfig { join: false, ..chord(false) });
    h.engine(3 * Q).learn_member(&node(5 * Q));
    h.busy.insert(Id(5 * Q));
    let get = h.start(3 * Q, UserOp::Get(key_in(Q, 5 * Q)));
    h.advance(600);
    // 5Q speaks (a request of its own to the client) 600 ms in, then falls silent.
    let now = h.at();
    let peer = node(5 * Q);
    h.engine(3 * Q).handle_request(now, &peer, ReplyTo { conn: 0, id: 999 }, Request::Ping);
    h.silent.insert(Id(5 * Q));
    h.advance(1_500);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 0, "heard at 0.6 s: not suspected before 0.6 + 2 s");
    h.advance(700);
    assert_eq!(h.engines[&Id(3 * Q)].stats().suspicions, 1, "silent since 0.6 s: suspected by 2.6 s + the probe");
    h.advance(18_000);
    assert!(matches!(h.result(get), Some(Err(_))), "failed at the operation deadline");
}

#[test]
fn a_redirect_loop_backs_off_and_fails_at_the_operation_deadline() {
    // Maintenance paused (its longest period), so nothing repairs the inconsistency below.
    let quiet = ChordConfig { stabilize_interval: crate::config::MAX_STABILIZE_INTERVAL, ..chord(false) };
    let mut h = Harness::ring(&[Q, 2 * Q], quiet);
    let key = key_in(Q, 2 * Q);
    // 2Q believes a node just past the key precedes it, so it redirects the key back to Q,
    // which sends it to 2Q again: routing that cannot converge.
    let beyond = Id::of_key(&key).0 + 1;
    h.engine(2 * Q).core.ring.as_mut().unwrap().on_notify(&node(beyond));
    let get = h.start(Q, UserOp::Get(key));
    h.advance(14_000);
    assert_eq!(h.result(get), None, "still retrying before the 15 s deadline");
    h.advance(1_500);
    let Some(Err(error)) = h.result(get) else { panic!("the deadline passed") };
    assert_eq!(error.code(), "ERR_UNAVAILABLE");
    assert!(error.to_string().contains("15s"), "{error}");
}

#[test]
fn stabilize_walks_back_to_the_true_successor_within_one_round() {
    let ids: Vec<u128> = (1..=10).map(|i| i * (Q / 2)).collect();
    let mut h = Harness::ring(&ids, chord(false));
    // Node 0 believes its successor is node 7: the five nodes between are unknown to it.
    let ring = h.engine(ids[0]).core.ring.as_mut().unwrap();
    ring.join(vec![node(ids[7]), node(ids[8]), node(ids[9])]);
    h.advance(400); // one stabilize period (250 ms) plus its jitter
    let successor = h.engines[&Id(ids[0])].core.ring.as_ref().unwrap().successor().id;
    assert_eq!(successor.to_hex(), Id(ids[1]).to_hex());
}

#[test]
fn a_join_walks_back_when_its_lookup_overshoots() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    // The bootstrap's successor list is stale: it skips 2Q and 3Q, so its lookup of a joiner
    // at 2.5Q answers 4Q.
    h.engine(Q).core.ring.as_mut().unwrap().join(vec![node(4 * Q), node(5 * Q)]);
    let joiner = 2 * Q + Q / 2;
    h.add(joiner, chord(false));
    let join = h.start(joiner, UserOp::JoinThrough(node(Q)));
    assert!(matches!(h.result(join), Some(Ok(_))));
    assert_eq!(h.engines[&Id(joiner)].core.ring.as_ref().unwrap().successor().id, Id(3 * Q));
}

#[test]
fn a_joiner_refused_as_busy_by_one_successor_still_owns_its_arc_once_the_others_synced() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let key = key_in(2 * Q, 2 * Q + Q / 2); // owned by 3Q now, by the joiner after
    let set = h.start(Q, UserOp::Set(key.clone(), b"before".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    // The joiner's first sync covers all its successors (3Q, 4Q, Q); Q's table is full of its
    // own neighbours and refuses it for good.
    let joiner = 2 * Q + Q / 2;
    h.add(joiner, chord(false));
    h.refusing.insert((Id(joiner), Id(Q)));
    let join = h.start(joiner, UserOp::JoinThrough(node(3 * Q)));
    assert!(matches!(h.result(join), Some(Ok(_))));
    h.advance(2_000);
    assert!(!h.engines[&Id(joiner)].core.unsynced(Id(joiner)), "the arc is the joiner's once 3Q and 4Q synced");
    assert_eq!(h.holds(joiner, &key), Some(b"before".to_vec()));
    let write = h.start(4 * Q, UserOp::Set(key.clone(), b"after".to_vec()));
    h.advance(1_000);
    assert!(matches!(h.result(write), Some(Ok(_))), "writes to the joiner's arc do not wait");
    // With 2 copies per write, 2 refusing is too many: a write's copies may be on them alone.
    let two = ChordConfig { replicas: 2, ..chord(false) };
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], two.clone());
    h.add(joiner, two);
    h.refusing.extend([(Id(joiner), Id(Q)), (Id(joiner), Id(4 * Q))]);
    let join = h.start(joiner, UserOp::JoinThrough(node(3 * Q)));
    h.result(join);
    h.advance(2_000);
    assert!(h.engines[&Id(joiner)].core.unsynced(Id(joiner)));
}

#[test]
fn a_node_joining_through_a_contact_is_not_adopted_or_notified_into_a_ring_of_two_meanwhile() {
    // A member restarted without its folder joins through a contact; its old predecessor
    // still knows its id, asks it for its state and notifies it. Taken as "the second node of
    // a ring", it would make that member its successor and then walk the member's
    // predecessors back around the whole ring.
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], chord(false));
    let joiner = 2 * Q + Q / 2;
    h.add(joiner, chord(false));
    h.silent.insert(Id(Q)); // the contact is slow: the join is still under way below
    let _join = h.start(joiner, UserOp::JoinThrough(node(Q)));
    let now = h.at();
    for (id, body) in [(7, Request::State), (8, Request::Notify(node(2 * Q)))] {
        h.engine(joiner).handle_request(now, &node(2 * Q), ReplyTo { conn: 0, id }, body);
    }
    let mut answers = Vec::new();
    while let Some(action) = h.engine(joiner).poll_action() {
        if let Action::Respond { body, .. } = action {
            answers.push(body);
        }
    }
    assert!(answers.iter().all(|a| matches!(a, Response::Error { code, .. } if code == "rejoining")), "{answers:?}");
    assert_eq!(answers.len(), 2);
    assert!(h.engines[&Id(joiner)].core.ring.as_ref().unwrap().is_alone(), "no successor taken from a notify");
    // Once the contact answers, the join completes and the node is an ordinary member.
    h.silent.remove(&Id(Q));
    h.advance(6_000);
    assert_eq!(h.engines[&Id(joiner)].core.ring.as_ref().unwrap().successor().id, Id(3 * Q));
    assert!(!h.engines[&Id(joiner)].core.refuses_joins());
}

#[test]
fn a_repeated_get_is_answered_from_the_lease_and_a_write_elsewhere_invalidates_it_before_it_resolves() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 2Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"one".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    h.advance(super::LEASE_MS + 10); // the owner's sync-time lease wait is over
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"one".to_vec())))));
    assert_eq!(h.engines[&Id(2 * Q)].stats().leases_granted, 0, "a key read once is not leased");
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"one".to_vec())))));
    let now = h.at();
    assert_eq!(h.engine(4 * Q).get_now(now, &key), Some(Some(b"one".to_vec())), "answered from memory");
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert!(queued_requests(&mut h, 4 * Q).is_empty(), "a cached get sends nothing");
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"one".to_vec())))));
    assert_eq!(h.engines[&Id(2 * Q)].stats().leases_granted, 1);
    // A write from a third node: the owner invalidates 4Q's copy before it resolves.
    let set = h.start(3 * Q, UserOp::Set(key.clone(), b"two".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    assert_eq!(h.engines[&Id(2 * Q)].stats().invalidations_sent, 1);
    let now = h.at();
    assert_eq!(h.engine(4 * Q).get_now(now, &key), None, "the copy went before the write resolved");
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"two".to_vec())))));
    // Without a cache nothing is leased.
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], ChordConfig { cache_bytes: 0, ..chord(false) });
    h.advance(super::LEASE_MS + 10);
    let get = h.start(3 * Q, UserOp::Get(key.clone()));
    h.result(get);
    assert_eq!(h.engines[&Id(2 * Q)].stats().leases_granted, 0);
}

#[test]
fn a_silent_lease_holder_delays_a_write_by_at_most_the_lease() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 2Q, replicas 3Q and 4Q; 5Q only reads it
    h.advance(super::LEASE_MS + 10);
    for _ in 0..2 {
        // Leased from the second read on.
        let get = h.start(5 * Q, UserOp::Get(key.clone()));
        h.result(get);
    }
    let leased_at = h.now;
    h.silent.insert(Id(5 * Q)); // crashed or cut off, its lease still running
    let set = h.start(3 * Q, UserOp::Set(key.clone(), b"new".to_vec()));
    assert_eq!(h.result(set), None, "waits for the holder");
    h.advance(super::LEASE_MS);
    assert!(matches!(h.result(set), Some(Ok(_))), "resolved once the lease ran out");
    assert!(h.now <= leased_at + super::LEASE_MS + 100);
    assert_eq!(h.engines[&Id(2 * Q)].stats().lease_timeouts, 1);
}

#[test]
fn a_node_that_takes_over_an_arc_takes_writes_only_once_the_previous_owners_leases_ran_out() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 2Q, then by 3Q
    h.advance(super::LEASE_MS + 10);
    for _ in 0..2 {
        // Leased from the second read on.
        let get = h.start(4 * Q, UserOp::Get(key.clone()));
        h.result(get);
    }
    assert_eq!(h.engines[&Id(2 * Q)].stats().leases_granted, 1);
    // The owner dies with 4Q's lease on record: nobody will invalidate it.
    h.dead.insert(Id(2 * Q));
    let set = h.start(Q, UserOp::Set(key.clone(), b"after".to_vec()));
    let mut resolved = None;
    for _ in 0..200 {
        h.advance(50);
        if let Some(result) = h.result(set) {
            resolved = Some((result, h.now));
            break;
        }
    }
    let (result, at) = resolved.expect("the write resolves once 3Q took over");
    assert!(result.is_ok());
    // 4Q's copy, leased before the death, ran out before 3Q took the write: a get started now
    // reads the write, never the cached absence.
    let now = h.at();
    assert_eq!(h.engine(4 * Q).get_now(now, &key), None, "at {at}");
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"after".to_vec())))));
}

#[test]
fn a_write_sent_twice_with_its_nonce_runs_once_and_both_answers_agree() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], chord(true));
    h.advance(super::LEASE_MS + 10);
    let now = h.at();
    h.engine(3 * Q).watch(now, vec![Vec::new()]);
    h.pump();
    let key = key_in(Q, 2 * Q); // owned by 2Q
    let set = h.start(3 * Q, UserOp::Set(key.clone(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    // A delete whose answer was lost is sent again, as a retry does, with the same nonce.
    let delete = Request::Write { key: serde_bytes::ByteBuf::from(key.clone()), value: None, mode: crate::protocol::WriteMode::Delete, nonce: 42 };
    let mut answers = Vec::new();
    for id in [1, 2] {
        let now = h.at();
        h.engine(2 * Q).handle_request(now, &node(Q), ReplyTo { conn: 0, id }, delete.clone());
        for _ in 0..50 {
            h.pump();
            h.advance(10);
            let done: Vec<Response> = h.answered.drain(..).filter(|(to, r)| *to == Id(Q) && matches!(r, Response::Written { .. } | Response::Error { .. })).map(|(_, r)| r).collect();
            if !done.is_empty() {
                answers.extend(done);
                break;
            }
        }
    }
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(matches!(&answers[0], Response::Written { previous: Some(_), .. }), "{answers:?}");
    assert_eq!(answers[0], answers[1], "the retry gets the first answer: the value it deleted, not 'absent'");
    let deletions = h.notices.iter().filter(|(at, n)| *at == Id(3 * Q) && matches!(n, Notice::Deleted(_))).count();
    assert_eq!(deletions, 1, "announced once");
}

#[test]
fn a_joiner_takes_the_keys_it_now_owns() {
    let mut h = Harness::ring(&[Q, 3 * Q, 5 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 3Q now, by the joiner at 2Q after
    let set = h.start(Q, UserOp::Set(key.clone(), b"moved".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    h.add(2 * Q, chord(false));
    let join = h.start(2 * Q, UserOp::JoinThrough(node(5 * Q)));
    assert!(matches!(h.result(join), Some(Ok(_))));
    assert_eq!(h.holds(2 * Q, &key), Some(b"moved".to_vec()), "pulled before anyone routes to it");
    h.advance(2_000);
    let get = h.start(5 * Q, UserOp::Get(key));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"moved".to_vec())))));
}

#[test]
fn a_node_that_takes_over_an_arc_does_not_answer_absent_before_syncing_it() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 2Q, replicated on 3Q and 4Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"kept".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    // 3Q missed the write (its copy went to a stand-in), then the owner crashes: 3Q inherits
    // the arc and must pull the key from 4Q before it answers for it.
    h.engine(3 * Q).core.store.remove(&key);
    h.dead.insert(Id(2 * Q));
    h.advance(150);
    let get = h.start(5 * Q, UserOp::Get(key));
    h.advance(2_000);
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"kept".to_vec())))));
    assert_eq!(h.holds(3 * Q, &key_in(Q, 2 * Q)), Some(b"kept".to_vec()));
}

#[test]
fn anti_entropy_repairs_a_replica_both_ways() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], chord(false));
    let (a, b) = (key_in(2 * Q, 3 * Q), key_in(2 * Q, 3 * Q + 1).iter().rev().copied().collect::<Vec<u8>>());
    let version = |millis| Version { millis, counter: 0, writer: Id(9) };
    let item = |key: &[u8], value: &str, millis| Item { key: key.to_vec(), value: Some(serde_bytes::ByteBuf::from(value.as_bytes().to_vec())), version: version(millis) };
    // The owner (3Q) has a newer `a`; its replica (Q) has a newer `b` the owner lacks.
    h.engine(3 * Q).core.store.apply(&item(&a, "new", 20));
    h.engine(Q).core.store.apply(&item(&a, "old", 10));
    h.engine(Q).core.store.apply(&item(&b, "only-here", 30));
    h.advance(4 * 320); // the fourth round runs anti-entropy
    if Id::of_key(&b).in_half_open(Id(2 * Q), Id(3 * Q)) {
        assert_eq!(h.holds(3 * Q, &b), Some(b"only-here".to_vec()), "fetched from the replica");
    }
    assert_eq!(h.holds(Q, &a), Some(b"new".to_vec()), "pushed to the replica");
}

#[test]
fn a_stale_copy_does_not_resurrect_a_deleted_key() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let key = key_in(Q, 2 * Q);
    let set = h.start(Q, UserOp::Set(key.clone(), b"alive".to_vec()));
    h.result(set);
    let stale: Vec<Item> = h.engines[&Id(2 * Q)].core.store.items_in(Id(Q), Id(2 * Q));
    let delete = h.start(3 * Q, UserOp::Delete(key.clone()));
    assert!(matches!(h.result(delete), Some(Ok(OpOutput::Written { previous: Some(_), .. }))));
    // A replica that missed the delete pushes its old copy to the owner and everyone else.
    for holder in [2 * Q, 3 * Q, 4 * Q] {
        let (now, reply) = (h.at(), ReplyTo { conn: 0, id: 99 });
        h.engine(holder).handle_request(now, &node(Q), reply, Request::Replicate { items: stale.clone() });
    }
    h.pump();
    h.advance(2_000);
    let get = h.start(4 * Q, UserOp::Get(key));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(None))));
}

#[test]
fn leaving_hands_every_entry_to_the_successor() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let keys: Vec<Vec<u8>> = (0..40).map(|i| format!("leave-{i}").into_bytes()).collect();
    for key in &keys {
        let op = h.start(Q, UserOp::Set(key.clone(), key.clone()));
        assert!(matches!(h.result(op), Some(Ok(_))));
    }
    let leave = h.start(2 * Q, UserOp::Leave);
    assert!(matches!(h.result(leave), Some(Ok(OpOutput::Unit))));
    assert!(!h.engines[&Id(2 * Q)].is_member());
    assert_eq!(h.engines[&Id(2 * Q)].core.store.len(), 0);
    h.advance(3_000);
    for key in &keys {
        let get = h.start(4 * Q, UserOp::Get(key.clone()));
        assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(key.clone())))), "{}", String::from_utf8_lossy(key));
    }
}

#[test]
fn a_change_goes_to_its_subscribers_only_and_a_subscription_reaches_every_member() {
    let ids: Vec<u128> = (1..=12).map(|i| i * (u128::MAX / 13)).collect();
    let mut h = Harness::ring(&ids, chord(true));
    let set = h.start(ids[4], UserOp::Set(b"unheard".to_vec(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    let sent = |h: &Harness| h.engines.values().map(|e| e.stats().events_forwarded).sum::<u64>();
    assert_eq!(sent(&h), 0, "nobody listens: no event sent");
    assert!(h.notices.iter().all(|(_, n)| !matches!(n, Notice::Added(_))));
    let now = h.at();
    h.engine(ids[7]).watch(now, vec![Vec::new()]);
    h.engine(ids[9]).watch(now, vec![b"user/".to_vec()]);
    h.pump();
    for id in &ids {
        let expected = if *id == ids[7] || *id == ids[9] { 1 } else { 2 };
        assert_eq!(h.engine(*id).stats().subscribers, expected, "the finger-table broadcast reached every member");
    }
    for (key, from) in [(b"user/ada".to_vec(), ids[4]), (b"other".to_vec(), ids[0])] {
        let set = h.start(from, UserOp::Set(key, b"v".to_vec()));
        assert!(matches!(h.result(set), Some(Ok(_))));
    }
    let heard: Vec<(Id, Vec<u8>)> = h.notices.iter().filter_map(|(at, n)| if let Notice::Added(key) = n { Some((*at, key.clone())) } else { None }).collect();
    let mut expected = vec![(Id(ids[7]), b"user/ada".to_vec()), (Id(ids[9]), b"user/ada".to_vec()), (Id(ids[7]), b"other".to_vec())];
    let mut heard_sorted = heard.clone();
    heard_sorted.sort();
    expected.sort();
    assert_eq!(heard_sorted, expected, "each subscriber hears what it watches, once");
    assert!(sent(&h) <= 3, "one message per subscriber at most: {}", sent(&h));
}

#[test]
fn only_members_relay_events_and_an_unknown_member_proves_itself_first() {
    let ids: Vec<u128> = (1..=4).map(|i| i * (u128::MAX / 5)).collect();
    let mut h = Harness::ring(&ids, chord(true));
    let now = h.at();
    h.engine(ids[0]).watch(now, vec![Vec::new()]);
    h.pump();
    let event = |h: &mut Harness, from: &NodeRef, id: u128| {
        let message = Message::Event { id: Id(id), key: serde_bytes::ByteBuf::from(b"forged".to_vec()), added: true, limit: Id(ids[0]) };
        h.engine(ids[0]).handle_message(now, from, message);
        h.pump();
    };
    let client = node(7);
    h.engine(ids[0]).connected(now, &client, false);
    event(&mut h, &client, 1);
    assert!(h.notices.iter().all(|(_, n)| *n != Notice::Added(b"forged".to_vec())), "a client's event is dropped");
    assert_eq!(h.engine(ids[0]).stats().events_refused, 1);
    // A member the receiver has not met yet: its event waits for its State answer.
    // A member the receiver has not met yet (a ring of one elsewhere): its event waits for
    // its State answer.
    h.add(11, chord(true));
    let member = node(11);
    h.engine(ids[0]).connected(now, &member, true);
    event(&mut h, &member, 2);
    assert!(h.notices.iter().any(|(at, n)| *at == Id(ids[0]) && *n == Notice::Added(b"forged".to_vec())), "delivered once the sender answered as a member");
}

#[test]
fn events_off_means_no_event_traffic() {
    let ids: Vec<u128> = (1..=6).map(|i| i * (u128::MAX / 7)).collect();
    let mut h = Harness::ring(&ids, chord(false));
    let set = h.start(ids[0], UserOp::Set(b"quiet".to_vec(), b"v".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    assert!(h.notices.iter().all(|(_, n)| !matches!(n, Notice::Added(_))));
    assert_eq!(h.engines.values().map(|e| e.stats().events_forwarded).sum::<u64>(), 0);
}

#[test]
fn oversized_keys_and_values_are_refused_before_anything_moves() {
    let mut h = Harness::ring(&[Q, 2 * Q], chord(false));
    let op = h.start(Q, UserOp::Set(vec![0; MAX_KEY_BYTES + 1], b"v".to_vec()));
    assert_eq!(h.result(op).unwrap().unwrap_err().code(), "ERR_KEY_TOO_LARGE");
    let op = h.start(Q, UserOp::Set(b"k".to_vec(), vec![0; MAX_VALUE_BYTES + 1]));
    assert_eq!(h.result(op).unwrap().unwrap_err().code(), "ERR_VALUE_TOO_LARGE");
    assert_eq!(h.engines[&Id(Q)].in_flight(), 0);
}

#[test]
fn answers_from_a_node_that_was_not_asked_are_dropped() {
    let mut h = Harness::ring(&[Q, 5 * Q], chord(false));
    let key = key_in(Q, 5 * Q);
    h.silent.insert(Id(5 * Q));
    let get = h.start(Q, UserOp::Get(key));
    let now = h.at();
    // The get's request to the owner, swallowed by the cut link: the one a forger must match.
    let asked: Vec<ReqId> = h.engines[&Id(Q)].io.requests.iter().filter(|(_, r)| r.to.id == Id(5 * Q)).map(|(id, _)| *id).collect();
    assert_eq!(asked.len(), 1, "one request waits on the owner");
    let forged = Response::Value { item: None, arc: (Id(Q), Id(5 * Q)) };
    // A third party forges the answer to every request id of node Q, the real one included.
    for id in (1..=64).chain(asked.iter().copied()) {
        h.engine(Q).handle_response(now, Id(77), id, forged.clone());
    }
    h.pump();
    assert_eq!(h.result(get), None, "still waiting for the real owner");
    // The same answer from the node asked completes it: only the sender was wrong above.
    h.engine(Q).handle_response(now, Id(5 * Q), asked[0], forged);
    h.pump();
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(None))));
}

/// `count` keys of `(from, to]` with values of `size` bytes.
fn big_items(from: u128, to: u128, count: usize, size: usize) -> Vec<Item> {
    (0u32..)
        .map(|i| format!("big{i}").into_bytes())
        .filter(|k| Id::of_key(k).in_half_open(Id(from), Id(to)))
        .take(count)
        .enumerate()
        .map(|(i, key)| Item { key, value: Some(serde_bytes::ByteBuf::from(vec![i as u8; size])), version: Version { millis: 1, counter: 0, writer: Id(1) } })
        .collect()
}

#[test]
fn values_of_the_maximum_size_move_in_frames_that_fit() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let items = big_items(Q, 2 * Q, 8, MAX_VALUE_BYTES);
    // The owner holds eight values of 1 MiB its replicas lack: anti-entropy must move them
    // all, a frame at a time.
    for item in &items {
        h.engine(2 * Q).core.store.apply(item);
    }
    h.advance(6 * 320);
    for item in &items {
        assert_eq!(h.holds(3 * Q, &item.key).map(|v| v.len()), Some(MAX_VALUE_BYTES));
        assert_eq!(h.holds(4 * Q, &item.key).map(|v| v.len()), Some(MAX_VALUE_BYTES));
    }
    assert!(h.largest_frame > MAX_VALUE_BYTES, "one value per frame at least");
    // A ring walk pages them, and a graceful leave hands them over, within the limit too.
    let mut cursor = None;
    let mut walked = 0;
    loop {
        let op = h.start(Q, UserOp::Scan { cursor, with_values: true, limit: 256 });
        let Some(Ok(OpOutput::Page(page))) = h.result(op) else { panic!("scan failed") };
        walked += page.items.iter().filter(|(k, _)| k.starts_with(b"big")).count();
        cursor = page.cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(walked, items.len());
    let leave = h.start(2 * Q, UserOp::Leave);
    assert!(matches!(h.result(leave), Some(Ok(_))));
}

#[test]
fn a_replica_missing_thousands_of_long_keys_gets_them_all() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q], chord(false));
    // 3,000 keys of 1 KiB each: their version list alone is 3 MiB, past one frame's budget.
    let keys: Vec<Vec<u8>> = (0u32..).map(|i| { let mut k = vec![b'k'; 1024]; k[..4].copy_from_slice(&i.to_be_bytes()); k }).filter(|k| Id::of_key(k).in_half_open(Id(Q), Id(2 * Q))).take(3_000).collect();
    for key in &keys {
        let item = Item { key: key.clone(), value: Some(serde_bytes::ByteBuf::from(b"v".to_vec())), version: Version { millis: 1, counter: 0, writer: Id(1) } };
        h.engine(2 * Q).core.store.apply(&item);
        if key[3] % 2 == 0 {
            h.engine(3 * Q).core.store.apply(&item);
        }
    }
    h.advance(6 * 320);
    assert!(keys.iter().all(|k| h.holds(3 * Q, k).is_some()), "every key reached the replica");
    assert!(h.largest_frame <= crate::config::MIN_CHORD_FRAME_BYTES);
}

#[test]
fn on_disk_a_write_resolves_only_once_the_owner_and_its_replicas_committed_it() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], chord(false));
    let key = key_in(2 * Q, 3 * Q); // owned by 3Q, replicas 4Q and 5Q
    let disks: Vec<_> = [3 * Q, 4 * Q, 5 * Q].into_iter().map(|id| h.on_disk(id)).collect();
    let set = h.start(Q, UserOp::Set(key.clone(), b"v".to_vec()));
    for (holder, disk) in [4 * Q, 5 * Q].into_iter().zip(&disks[1..]) {
        assert_eq!(h.result(set), None, "not before {holder:x} committed");
        assert_eq!(disk.0.lock().unwrap().durable.len(), 0);
        h.commit(holder);
    }
    assert_eq!(h.result(set), None, "not before the owner committed its own copy");
    h.commit(3 * Q);
    assert!(matches!(h.result(set), Some(Ok(OpOutput::Written { .. }))));
    for disk in &disks {
        assert_eq!(disk.0.lock().unwrap().durable.len(), 1, "a durable copy on each of the three");
    }
    assert_eq!(h.holds(4 * Q, &key), Some(b"v".to_vec()), "a replica reads it back from its disk");
}

#[test]
fn on_a_full_disk_writes_fail_with_a_typed_error_while_reads_go_on() {
    let mut h = Harness::ring(&[Q], chord(false));
    let disk = h.on_disk(Q);
    let set = h.start(Q, UserOp::Set(b"k".to_vec(), b"v".to_vec()));
    h.commit(Q);
    assert!(matches!(h.result(set), Some(Ok(_))));
    disk.0.lock().unwrap().full = true;
    let refused = h.start(Q, UserOp::Set(b"k2".to_vec(), b"v".to_vec()));
    assert_eq!(h.result(refused).map(|r| r.map_err(|e| e.code())), Some(Err("ERR_STORAGE_FULL")));
    assert!(h.persists.is_empty(), "nothing staged while the disk is full");
    let get = h.start(Q, UserOp::Get(b"k".to_vec()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"v".to_vec())))));
    // A commit that fails (the disk filled meanwhile) answers the write with the same error.
    disk.0.lock().unwrap().full = false;
    let failing = h.start(Q, UserOp::Set(b"k3".to_vec(), b"v".to_vec()));
    let (_, ticket) = h.persists.pop().expect("a commit asked for");
    let now = h.at();
    h.engine(Q).persisted(now, ticket, Err(Error::StorageFull("the disk is full".into())));
    h.pump();
    assert_eq!(h.result(failing).map(|r| r.map_err(|e| e.code())), Some(Err("ERR_STORAGE_FULL")));
    let again = h.start(Q, UserOp::Set(b"k4".to_vec(), b"v".to_vec()));
    h.commit(Q);
    assert!(matches!(h.result(again), Some(Ok(_))), "writes resume once space returns");
}

#[test]
fn a_node_restored_from_its_folder_keeps_its_clock_rejoins_and_refuses_ownership_until_then() {
    let mut h = Harness::ring(&[Q, 3 * Q, 5 * Q], chord(false));
    let disks: Vec<_> = [Q, 3 * Q, 5 * Q].into_iter().map(|id| h.on_disk(id)).collect();
    let key = key_in(Q, 3 * Q); // owned by 3Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"v".to_vec()));
    for id in [Q, 3 * Q, 5 * Q] {
        h.commit(id);
    }
    let Some(Ok(OpOutput::Written { version: written, .. })) = h.result(set) else { panic!("the write resolves") };
    // 3Q restarts from its folder: a new engine with the same id, its index, clock and members.
    let members = h.engines[&Id(3 * Q)].members_to_remember();
    assert_eq!(members.iter().map(|n| n.id).collect::<HashSet<_>>(), [Id(Q), Id(5 * Q)].into_iter().collect());
    let settings = Settings::member(node(3 * Q), chord(false), 9);
    let mut restarted = Engine::new(settings, h.at());
    let store = Store::with_values(Box::new(disks[1].clone()), disks[1].index());
    restarted.restore(Restored { store, high_water: Some(Version { millis: WALL_EPOCH + 10_000_000, counter: 0, writer: Id(3 * Q) }), members });
    assert!(restarted.core.rejoining(), "alone but knowing its ring: rejoining");
    h.engines.insert(Id(3 * Q), restarted);
    h.dead.extend([Id(Q), Id(5 * Q)]);
    h.advance(3_000);
    assert!(h.engines[&Id(3 * Q)].core.rejoining(), "still rejoining while nobody answers: never a ring of one");
    h.dead.clear();
    h.advance(15_000);
    let ring = h.engines[&Id(3 * Q)].core.ring.as_ref().unwrap();
    assert_eq!(ring.successor().id, Id(5 * Q), "back in its ring");
    assert_eq!(ring.predecessor().map(|p| p.id), Some(Id(Q)));
    assert_eq!(h.holds(3 * Q, &key), Some(b"v".to_vec()), "with its data");
    let overwrite = h.start(5 * Q, UserOp::Set(key.clone(), b"w".to_vec()));
    for id in [Q, 3 * Q, 5 * Q] {
        h.commit(id);
    }
    let Some(Ok(OpOutput::Written { version, .. })) = h.result(overwrite) else { panic!("the overwrite resolves") };
    assert!(version > written && version.millis >= WALL_EPOCH + 10_000_000, "versions resume past the high-water mark");
}

#[test]
fn after_a_merge_a_new_owner_answers_for_the_other_rings_keys_only_once_it_has_them() {
    // Rings A = {Q, 3Q, 5Q} and B = {2Q, 4Q, 6Q} (a healed partition). A key of (2Q, 3Q] written
    // in B lives on 4Q and its replicas; in the merged ring 3Q owns it, and has never seen it.
    let mut h = Harness::rings(&[&[Q, 3 * Q, 5 * Q], &[2 * Q, 4 * Q, 6 * Q]], chord(false));
    let key = key_in(2 * Q, 3 * Q);
    let set = h.start(2 * Q, UserOp::Set(key.clone(), b"from-b".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    assert_eq!(h.holds(3 * Q, &key), None);
    // Q meets 2Q (a contact across the healed cut): the rings zip together.
    let now = h.at();
    h.engine(Q).handle_request(now, &node(6 * Q), ReplyTo { conn: 0, id: 77 }, Request::Candidates(vec![node(2 * Q)]));
    h.pump();
    let mut gets = Vec::new();
    for _ in 0..100 {
        gets.push(h.start(5 * Q, UserOp::Get(key.clone())));
        h.advance(10);
    }
    h.advance(3_000);
    let answers: Vec<_> = gets.into_iter().map(|get| h.result(get).expect("every get answered")).collect();
    let predecessor = h.engines[&Id(3 * Q)].core.ring.as_ref().unwrap().predecessor().map(|p| p.id);
    assert_eq!(predecessor, Some(Id(2 * Q)), "the rings merged");
    assert!(!answers.contains(&Ok(OpOutput::Value(None))), "no read missed the other ring's write: {answers:?}");
    assert_eq!(answers.last(), Some(&Ok(OpOutput::Value(Some(b"from-b".to_vec())))));
}

#[test]
fn a_miss_while_rings_merge_is_checked_with_the_successors() {
    let mut h = Harness::rings(&[&[Q, 3 * Q, 5 * Q], &[2 * Q, 4 * Q, 6 * Q]], chord(false));
    let now = h.at();
    h.engine(Q).handle_request(now, &node(6 * Q), ReplyTo { conn: 0, id: 77 }, Request::Candidates(vec![node(2 * Q)]));
    h.pump();
    h.advance(1_000);
    assert_eq!(h.engines[&Id(3 * Q)].core.ring.as_ref().unwrap().predecessor().map(|p| p.id), Some(Id(2 * Q)), "the rings merged");
    // 4Q, B's owner of (2Q, 3Q] until the merge, acknowledged a write of that arc just before it
    // noticed: only it and 3Q's other successors hold the copy, not 3Q, the owner now.
    let key = key_in(2 * Q, 3 * Q);
    let version = Version { millis: WALL_EPOCH + h.now, counter: 0, writer: Id(4 * Q) };
    let item = Item { key: key.clone(), value: Some(serde_bytes::ByteBuf::from(b"late".to_vec())), version };
    let now = h.at();
    h.engine(4 * Q).handle_request(now, &node(3 * Q), ReplyTo { conn: 0, id: 78 }, Request::Replicate { items: vec![item] });
    h.pump();
    assert_eq!(h.holds(3 * Q, &key), None);
    let get = h.start(5 * Q, UserOp::Get(key.clone()));
    h.advance(100);
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"late".to_vec())))), "the owner's miss was checked with its successors");
    // Long after the merge, a miss is a miss: nobody is asked.
    h.advance(super::arc::READ_AROUND_MS);
    let absent = key_in(3 * Q, 4 * Q);
    let get = h.start(5 * Q, UserOp::Get(absent));
    h.advance(100);
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(None))));
}

#[test]
fn a_hand_off_of_keys_outside_our_arc_is_redirected_to_our_predecessor_without_alarm() {
    let mut h = Harness::ring(&[Q, 3 * Q, 5 * Q], chord(false));
    // A node whose routing is stale hands 5Q a key of (Q, 3Q]: 3Q's arc, not 5Q's.
    let item = Item { key: key_in(Q, 3 * Q), value: Some(serde_bytes::ByteBuf::from(b"v".to_vec())), version: Version { millis: WALL_EPOCH, counter: 0, writer: Id(Q) } };
    let now = h.at();
    h.engine(5 * Q).handle_request(now, &node(Q), ReplyTo { conn: 0, id: 7 }, Request::Handoff { items: vec![item.clone()] });
    let mut answers = Vec::new();
    while let Some(action) = h.engine(5 * Q).poll_action() {
        match action {
            Action::Respond { body, .. } => answers.push(body),
            Action::Notice(notice) => panic!("no notice for stale routing: {notice:?}"),
            _ => {}
        }
    }
    assert_eq!(answers, vec![Response::Redirect(node(3 * Q))]);
    assert_eq!(h.holds(5 * Q, &item.key), None, "nothing taken");
    // The owner takes it.
    h.engine(3 * Q).handle_request(now, &node(Q), ReplyTo { conn: 0, id: 8 }, Request::Handoff { items: vec![item.clone()] });
    h.pump();
    assert_eq!(h.holds(3 * Q, &item.key), Some(b"v".to_vec()));
}

#[test]
fn a_value_that_cannot_be_read_is_an_error_and_never_a_tombstone() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let disk = h.on_disk(2 * Q);
    let key = key_in(Q, 2 * Q); // owned by 2Q, replicas 3Q and 4Q
    let set = h.start(2 * Q, UserOp::Set(key.clone(), b"precious".to_vec()));
    h.commit(2 * Q);
    assert!(matches!(h.result(set), Some(Ok(_))));
    disk.0.lock().unwrap().damaged.insert(key.clone());
    // A peer's Fetch: an error, not an entry without a value.
    let now = h.at();
    h.engine(2 * Q).handle_request(now, &node(3 * Q), ReplyTo { conn: 0, id: 9 }, Request::Fetch { keys: vec![serde_bytes::ByteBuf::from(key.clone())] });
    let mut answer = None;
    while let Some(action) = h.engine(2 * Q).poll_action() {
        if let Action::Respond { body, .. } = action {
            answer = Some(body);
        }
    }
    assert!(matches!(&answer, Some(Response::Error { code, .. }) if code == "storage-corrupt"), "{answer:?}");
    // A get from elsewhere hears why; a delete too.
    let get = h.start(Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get).map(|r| r.map_err(|e| e.code())), Some(Err("ERR_STORAGE_CORRUPT")));
    let delete = h.start(Q, UserOp::Delete(key.clone()));
    assert_eq!(h.result(delete).map(|r| r.map_err(|e| e.code())), Some(Err("ERR_STORAGE_CORRUPT")));
    // A replica that lost its copy: anti-entropy pushes no tombstone in its place.
    h.engine(3 * Q).core.store.remove(&key);
    h.advance(3_000);
    assert_eq!(h.engines[&Id(3 * Q)].core.store.version_of(&key), None, "no tombstone pushed");
    assert_eq!(h.holds(4 * Q, &key), Some(b"precious".to_vec()), "the good copy stays");
}

/// Requests `at` queued (not delivered yet): (to, body).
fn queued_requests(h: &mut Harness, at: u128) -> Vec<(Id, Request)> {
    let mut asked = Vec::new();
    let mut others = Vec::new();
    while let Some(action) = h.engine(at).poll_action() {
        match action {
            Action::Request { to, body, .. } => asked.push((to.id, body)),
            other => others.push(other),
        }
    }
    for action in others {
        h.deliver(Id(at), action);
    }
    asked
}

#[test]
fn a_scan_cursor_altered_or_forged_is_refused_and_never_dialled() {
    let mut h = Harness::ring(&[Q, 3 * Q, 5 * Q], chord(false));
    for i in 0..6 {
        let set = h.start(Q, UserOp::Set(format!("k{i}").into_bytes(), b"v".to_vec()));
        assert!(matches!(h.result(set), Some(Ok(_))));
    }
    let scan = h.start(Q, UserOp::Scan { cursor: None, with_values: false, limit: 1 });
    let Some(Ok(OpOutput::Page(page))) = h.result(scan) else { panic!("a page") };
    let cursor = page.cursor.expect("more to come");
    // The cursor as MessagePack: its fields, then their MAC. Point it at another node.
    type Sealed = (Id, NodeRef, Option<(Id, serde_bytes::ByteBuf)>, serde_bytes::ByteBuf);
    let (start, _, after, mac): Sealed = rmp_serde::from_slice(&cursor).expect("a flat array");
    let elsewhere = node(7 * Q);
    let forged = rmp_serde::to_vec(&(start, elsewhere.clone(), after.clone(), mac)).unwrap();
    let unsigned = rmp_serde::to_vec(&(start, elsewhere.clone(), after)).unwrap();
    for bytes in [forged, unsigned, b"junk".to_vec()] {
        let op = h.start(Q, UserOp::Scan { cursor: Some(bytes), with_values: false, limit: 1 });
        let Some(Err(error)) = h.result(op) else { panic!("refused") };
        assert_eq!(error.code(), "ERR_INVALID_ARGUMENT");
    }
    assert!(queued_requests(&mut h, Q).iter().all(|(to, _)| *to != elsewhere.id));
    // The cursor as handed out still works.
    let next = h.start(Q, UserOp::Scan { cursor: Some(cursor), with_values: false, limit: 1 });
    assert!(matches!(h.result(next), Some(Ok(OpOutput::Page(_)))));
    // Another node's secret: its cursors are not ours.
    let scan = h.start(3 * Q, UserOp::Scan { cursor: None, with_values: false, limit: 1 });
    let Some(Ok(OpOutput::Page(theirs))) = h.result(scan) else { panic!("a page") };
    let op = h.start(Q, UserOp::Scan { cursor: theirs.cursor, with_values: false, limit: 1 });
    assert!(matches!(h.result(op), Some(Err(error)) if error.code() == "ERR_INVALID_ARGUMENT"));
}

#[test]
fn the_view_is_bounded() {
    let mut h = Harness::ring(&[Q], ChordConfig { join: false, ..chord(false) });
    for i in 0..(crate::config::MAX_VIEW_MEMBERS as u128 + 500) {
        h.engine(Q).learn_member(&node(2 * Q + i));
    }
    assert_eq!(h.engines[&Id(Q)].core.view.len(), crate::config::MAX_VIEW_MEMBERS);
}

#[test]
fn an_anonymous_clients_candidates_make_a_node_dial_nobody_and_leave_its_arc_alone() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let client = 2 * Q + 7;
    // 2,000 made-up nodes between 2Q and its successor 3Q, where a merge would splice them in.
    let made_up: Vec<NodeRef> = (0..2_000u128).map(|i| node(2 * Q + 1_000 + i)).collect();
    let now = h.at();
    h.engine(2 * Q).handle_request(now, &node(client), ReplyTo { conn: 0, id: 5 }, Request::Candidates(made_up));
    let asked = queued_requests(&mut h, 2 * Q);
    assert_eq!(asked, vec![(Id(client), Request::State)], "only the sender is asked whether it is a member");
    // It does not answer as one (it is not in the harness: its connection is refused).
    h.pump();
    let engine = &h.engines[&Id(2 * Q)];
    assert_eq!(engine.core.ring.as_ref().unwrap().successor().id, Id(3 * Q));
    assert!(!engine.core.unsettled() && !engine.core.unsynced(Id(2 * Q)), "no merge: the arc stays synced");
    assert!(engine.core.view.keys().all(|id| [Q, 3 * Q, 4 * Q].contains(&id.0)), "nothing made up learned");
}

#[test]
fn a_members_candidates_are_bounded_and_checked_before_they_are_adopted() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let made_up: Vec<NodeRef> = (0..20u128).map(|i| node(2 * Q + 1_000 + i)).collect();
    let now = h.at();
    // From our predecessor, a member we know.
    h.engine(2 * Q).handle_request(now, &node(Q), ReplyTo { conn: 0, id: 5 }, Request::Candidates(made_up.clone()));
    let asked = queued_requests(&mut h, 2 * Q);
    assert_eq!(asked.len(), MAX_CANDIDATES_PER_MESSAGE, "at most {MAX_CANDIDATES_PER_MESSAGE} of one message: {asked:?}");
    assert!(asked.iter().all(|(to, body)| made_up.iter().any(|n| n.id == *to) && *body == Request::State), "each asked for its State first");
    assert_eq!(h.engines[&Id(2 * Q)].core.ring.as_ref().unwrap().successor().id, Id(3 * Q), "nothing adopted before it answered");
    h.pump(); // none of them exists
    let engine = &h.engines[&Id(2 * Q)];
    assert_eq!(engine.core.ring.as_ref().unwrap().successor().id, Id(3 * Q));
    assert!(made_up.iter().all(|n| !engine.core.view.contains_key(&n.id)));
}

#[test]
fn a_member_that_keeps_naming_strangers_makes_us_dial_no_faster_than_its_budget() {
    use crate::engine::core::{DIALS_PER_TELLER_BURST, DIALS_PER_TELLER_PER_SECOND};
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let mut fresh = 0u128;
    let mut strangers = || {
        fresh += 100;
        (0..MAX_CANDIDATES_PER_MESSAGE as u128).map(|i| node(2 * Q + fresh + i)).collect::<Vec<_>>()
    };
    // Our predecessor, a member we know, names 8 strangers every 100 ms for 5 s.
    let mut dialled = 0;
    for round in 0..50 {
        let now = h.at();
        h.engine(2 * Q).handle_request(now, &node(Q), ReplyTo { conn: 0, id: 100 + round }, Request::Candidates(strangers()));
        dialled += queued_requests(&mut h, 2 * Q).iter().filter(|(to, _)| to.0 > 2 * Q && to.0 < 3 * Q).count();
        h.advance(100);
    }
    let most = DIALS_PER_TELLER_BURST + 5 * DIALS_PER_TELLER_PER_SECOND;
    assert!(dialled as u64 <= most, "{dialled} strangers dialled in 5 s (budget {most})");
    assert!(dialled as u64 >= DIALS_PER_TELLER_BURST, "the first message is still checked ({dialled})");
    // Another member's word has a budget of its own (once the checks above timed out).
    h.advance(3_000);
    queued_requests(&mut h, 2 * Q);
    let now = h.at();
    h.engine(2 * Q).handle_request(now, &node(4 * Q), ReplyTo { conn: 0, id: 999 }, Request::Candidates(strangers()));
    let asked = queued_requests(&mut h, 2 * Q);
    assert!(asked.iter().filter(|(to, _)| to.0 > 2 * Q && to.0 < 3 * Q).count() > 0, "{asked:?}");
}

#[test]
fn a_connection_closed_on_purpose_does_not_make_a_live_successor_forgotten() {
    for lost in [false, true] {
        let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
        // Stabilize asks the successor for its state; the connection closes under the request.
        let mut asked = Vec::new();
        for _ in 0..80 {
            h.now += 50;
            let now = h.at();
            h.engine(2 * Q).handle_timeout(now);
            asked = queued_requests(&mut h, 2 * Q);
            if asked.iter().any(|(to, body)| *to == Id(3 * Q) && *body == Request::State) {
                break;
            }
        }
        assert!(asked.iter().any(|(to, body)| *to == Id(3 * Q) && *body == Request::State), "{asked:?}");
        let now = h.at();
        let error = Error::PeerGone("connection closed".into());
        if lost {
            h.engine(2 * Q).peer_gone(now, Id(3 * Q), error, true);
        } else {
            // The successor's table was full and it made room: it is alive.
            h.engine(2 * Q).peer_closed(now, Id(3 * Q), error, true);
        }
        let successor = h.engines[&Id(2 * Q)].core.ring.as_ref().unwrap().successor().id;
        assert_eq!(successor == Id(3 * Q), !lost, "lost {lost}: successor {successor:?}");
    }
}

#[test]
fn a_client_claiming_membership_counts_only_once_it_answers_as_a_member() {
    // A lone node (the first of a ring) and a client whose handshake claims it is a member.
    let mut h = Harness::ring(&[Q], chord(false));
    let client = 3 * Q;
    let now = h.at();
    h.engine(Q).connected(now, &node(client), true);
    assert_eq!(queued_requests(&mut h, Q), vec![(Id(client), Request::State)]);
    assert!(h.engines[&Id(Q)].core.view.is_empty(), "not learned on its word");
    assert!(!h.engines[&Id(Q)].core.rejoining(), "a lone node does not think it lost its ring");
    let set = h.start(Q, UserOp::Set(b"still mine".to_vec(), b"yes".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(OpOutput::Written { .. }))));
    // A real member (of a ring of its own) answers the check and is learned.
    h.add(5 * Q, chord(false));
    let now = h.at();
    h.engine(Q).connected(now, &node(5 * Q), true);
    h.pump();
    assert!(h.engines[&Id(Q)].core.view.contains_key(&Id(5 * Q)));
}

/// Open connections between every member and its routing set, both ways (gossip goes over
/// open connections only).
fn connect_routing_sets(h: &mut Harness) {
    let now = h.at();
    let ids: Vec<Id> = h.engines.keys().copied().collect();
    for id in ids {
        let me = h.engines[&id].me().clone();
        let set = h.engines[&id].core.routing_set();
        for peer in set {
            let them = h.engines[&peer].me().clone();
            h.engines.get_mut(&id).unwrap().connected(now, &them, true);
            h.engines.get_mut(&peer).unwrap().connected(now, &me, true);
        }
    }
    h.pump();
}

#[test]
fn member_tables_fill_by_gossip_a_false_death_is_refuted_and_a_crash_spreads() {
    let ids: Vec<u128> = (1..=24).map(|i| i * (u128::MAX / 25)).collect();
    let mut h = Harness::ring(&ids, chord(false));
    connect_routing_sets(&mut h);
    h.advance(20_000);
    for id in &ids {
        assert_eq!(h.engine(*id).stats().members, 24, "every table lists every member");
    }
    // A get goes straight to the owner the table names: no redirect.
    let key = key_in(ids[10], ids[11]);
    let get = h.start(ids[3], UserOp::Get(key));
    assert!(matches!(h.result(get), Some(Ok(_))));
    assert_eq!(h.engine(ids[3]).core.counters.op_redirects, 0);

    // One member wrongly records another dead: the rumour spreads, reaches its subject, which
    // refutes it with a newer incarnation, and every table lists it alive again.
    let subject = ids[7];
    let before = h.engine(subject).core.incarnation;
    let now = h.now;
    h.engine(ids[15]).core.members.died(Id(subject), now);
    h.advance(20_000);
    assert!(h.engine(subject).core.incarnation > before, "the subject refuted the rumour");
    for id in &ids {
        assert_eq!(h.engine(*id).stats().members, 24, "alive again everywhere");
    }

    // A member crashes: whoever finds it dead records it, and the death reaches every table.
    let crashed = ids[20];
    h.dead.insert(Id(crashed));
    h.advance(30_000);
    for id in ids.iter().filter(|id| **id != crashed) {
        assert_eq!(h.engine(*id).stats().members, 23, "the crash reached {id:x}'s table");
    }
}

#[test]
fn events_held_while_the_check_budget_is_spent_are_delivered_once_their_senders_are_checked() {
    let ids: Vec<u128> = (1..=4).map(|i| i * (u128::MAX / 5)).collect();
    let mut h = Harness::ring(&ids, chord(true));
    let now = h.at();
    h.engine(ids[0]).watch(now, vec![Vec::new()]);
    h.pump();
    // 24 members the listener never met (rings of one elsewhere) connect and each sends an
    // event at once: more than the 16 checks a second the listener may start.
    let senders: Vec<u128> = (0..24).map(|i| 1_000 + i).collect();
    for (n, &sender) in senders.iter().enumerate() {
        h.add(sender, chord(true));
        let from = node(sender);
        h.engine(ids[0]).connected(now, &from, true);
        let key = format!("held-{n}").into_bytes();
        let message = Message::Event { id: Id(5_000 + n as u128), key: serde_bytes::ByteBuf::from(key), added: true, limit: Id(ids[0]) };
        h.engine(ids[0]).handle_message(now, &from, message);
        h.pump();
    }
    let heard = |h: &Harness| h.notices.iter().filter(|(at, n)| *at == Id(ids[0]) && matches!(n, Notice::Added(key) if key.starts_with(b"held-"))).count();
    assert!(heard(&h) < senders.len(), "the budget held some back: {}", heard(&h));
    h.advance(3_000);
    assert_eq!(heard(&h), senders.len(), "every held event delivered once its sender was checked");
}

#[test]
fn the_heir_of_a_graceful_leave_takes_writes_only_once_the_leavers_leases_ran_out() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q], chord(false));
    let key = key_in(Q, 2 * Q); // owned by 2Q, then by its heir 3Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"before".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    h.advance(super::LEASE_MS + 10);
    for _ in 0..2 {
        // Leased from the second read on.
        let get = h.start(4 * Q, UserOp::Get(key.clone()));
        assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"before".to_vec())))));
    }
    let leased_at = h.now;
    assert_eq!(h.engines[&Id(2 * Q)].stats().leases_granted, 1);
    // 2Q leaves gracefully: 3Q inherits its arc, not the record of 4Q's lease.
    let leave = h.start(2 * Q, UserOp::Leave);
    assert!(matches!(h.result(leave), Some(Ok(_))));
    h.dead.insert(Id(2 * Q));
    let set = h.start(Q, UserOp::Set(key.clone(), b"after".to_vec()));
    let mut resolved_at = None;
    for _ in 0..200 {
        if let Some(result) = h.result(set) {
            assert!(result.is_ok());
            resolved_at = Some(h.now);
            break;
        }
        h.advance(20);
    }
    let at = resolved_at.expect("the write resolves once 3Q took over");
    assert!(at >= leased_at + super::LEASE_MS, "the write resolved at {at}, inside 4Q's lease from {leased_at}");
    let now = h.at();
    assert_eq!(h.engine(4 * Q).get_now(now, &key), None, "4Q's copy ran out first");
    let get = h.start(4 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"after".to_vec())))));
}

#[test]
fn an_in_sync_replica_answers_reads_for_its_owner_and_a_write_it_missed_waits_its_delegation_out() {
    let mut h = Harness::ring(&[Q, 2 * Q, 3 * Q, 4 * Q, 5 * Q], ChordConfig { cache_bytes: 0, ..chord(false) });
    let key = key_in(Q, 2 * Q); // owned by 2Q, replicas 3Q and 4Q
    let set = h.start(Q, UserOp::Set(key.clone(), b"one".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    // Anti-entropy finds 3Q in sync; a first read there asks 2Q for a delegation.
    h.advance(10_000);
    let get = h.start(3 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"one".to_vec())))));
    h.advance(600);
    assert!(h.engines[&Id(2 * Q)].stats().delegations_granted >= 1, "the owner delegated its reads");
    let now = h.at();
    assert_eq!(h.engine(3 * Q).get_now(now, &key), Some(Some(b"one".to_vec())), "answered from the replica's own copy");
    assert_eq!(h.engines[&Id(3 * Q)].stats().replica_reads, 1);
    // A write the replica acknowledges: read there at once.
    let set = h.start(5 * Q, UserOp::Set(key.clone(), b"two".to_vec()));
    assert!(matches!(h.result(set), Some(Ok(_))));
    let now = h.at();
    assert_eq!(h.engine(3 * Q).get_now(now, &key), Some(Some(b"two".to_vec())));
    // The owner stops asking the replica (it took it for dead) while the replica's delegation
    // runs: the write its stand-in acknowledges at once resolves only once that ran out.
    let now = h.at();
    h.engine(3 * Q).get_now(now, &key);
    h.engine(2 * Q).core.forget(Id(3 * Q));
    let started = h.now;
    let set = h.start(5 * Q, UserOp::Set(key.clone(), b"three".to_vec()));
    let mut resolved_at = None;
    for _ in 0..80 {
        if h.result(set).is_some() {
            resolved_at = Some(h.now);
            break;
        }
        h.advance(10);
    }
    let waited = resolved_at.expect("the write resolved") - started;
    // Renewed a quarter of a lease apart once under half a lease remains: a quarter at least.
    assert!(waited >= super::LEASE_MS / 4 && waited <= super::LEASE_MS, "waited {waited} ms for the delegation to run out");
    // The replica's own clock ended its delegation before the owner resolved the write: from
    // then on it answers for the owner only once anti-entropy gave it the write.
    let now = h.at();
    let answer = h.engine(3 * Q).get_now(now, &key);
    assert!(answer.is_none() || answer == Some(Some(b"three".to_vec())), "stale: {answer:?}");
    let get = h.start(3 * Q, UserOp::Get(key.clone()));
    assert_eq!(h.result(get), Some(Ok(OpOutput::Value(Some(b"three".to_vec())))));
}
