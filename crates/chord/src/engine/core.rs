//! The state one node's machines share, and the small decisions several of them take on it:
//! where to send an operation first, which hop a lookup takes from here, what to forget when
//! a node stops answering. One owner: the [`super::Engine`] that holds it.

use super::arc::ArcState;
use super::contacts::Contacts;
use super::links::Links;
use super::recent::RecentMap;
use super::time::Millis;
use crate::config::{ChordConfig, MAX_VIEW_MEMBERS};
use crate::error::{Error, Result};
use crate::id::Id;
use crate::metrics::RingFigures;
use crate::protocol::Response;
use crate::routing::{Hop, NodeRef, Routing};
use crate::seen::SeenSet;
use crate::store::Store;
use crate::version::Clock;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Owners remembered in the location cache.
const ARC_CACHE_ENTRIES: usize = 4096;
/// Peers whose last word we remember (`last_heard`): the failure detector only asks about the
/// last failure timeout or request timeout, so what is older goes first when it is full; the
/// cap bounds it against a stream of new ids (each handshake can bring one).
pub const HEARD_ENTRIES: usize = 4096;
/// Suspects remembered through their quarantine: expired ones go first when it is full; past
/// the cap a suspect may be re-learned early, which only costs another probe.
pub const SUSPECT_ENTRIES: usize = 1024;
/// Routing unchanged this long counts as calm: maintenance starts slowing down (see
/// `Engine::interval`). Long enough to cover a join's or a failure's ripple of stabilizations.
pub const CALM_AFTER_MS: Millis = 4_000;

/// Counters shown by `stats()`.
#[derive(Default, Clone, Debug, PartialEq)]
pub struct Counters {
    pub ops: u64,
    pub op_redirects: u64,
    /// Network legs of the operations in `ops` (see `route::Routed::hops`).
    pub op_hops: u64,
    pub lookups: u64,
    pub lookup_hops: u64,
    /// Ring events (add/delete) this node sent on to other nodes.
    pub events_forwarded: u64,
    /// Ring events dropped: sent by a peer that is not (or did not prove to be) a member.
    pub events_refused: u64,
    /// Nodes of another ring adopted as successor (ring merges, one gap each).
    pub merges: u64,
    /// Read leases this node granted as an owner, and invalidations it sent for writes.
    pub leases_granted: u64,
    pub invalidations_sent: u64,
    /// Writes that waited for a holder that did not confirm its invalidation (its lease ran
    /// out instead).
    pub lease_timeouts: u64,
    /// Read delegations granted as an owner, and gets answered here as a delegate.
    pub delegations_granted: u64,
    pub replica_reads: u64,
    /// Lookup hops, anti-entropy and suspicions, as the metrics show them.
    pub figures: RingFigures,
}

/// Checks of nodes (is it a ring member?) in flight at once; see `verify`.
const VERIFICATIONS_IN_FLIGHT: usize = 16;
/// Checks started per second: each may cost a dial (a merge candidate is asked at its
/// address), so a stream of hints makes at most this many a second.
const VERIFICATIONS_PER_SECOND: u32 = 16;

/// Dials to addresses one peer named (merge candidates it passed on) that it may cost us at
/// once: one message's worth...
pub const DIALS_PER_TELLER_BURST: u64 = 8;
/// ...and then this many a second: a member that keeps naming nodes makes us dial no faster.
pub const DIALS_PER_TELLER_PER_SECOND: u64 = 2;
/// Peers whose dial budget is remembered; past it, a teller whose budget is spent is refused
/// until budgets refill (a stream of fresh ids cannot reset its own budget).
const TELLERS: usize = 1024;

/// The bounds on checks of nodes that claim to be ring members (see `verify`): one check per
/// node at a time, [`VERIFICATIONS_IN_FLIGHT`] at once, [`VERIFICATIONS_PER_SECOND`] started
/// per second; and a token bucket per peer for the dials its word costs
/// ([`DIALS_PER_TELLER_BURST`], then [`DIALS_PER_TELLER_PER_SECOND`]).
#[derive(Debug, Default)]
pub struct Verifier {
    in_flight: HashSet<Id>,
    window_start: Millis,
    started: u32,
    /// Per teller: thousandths of a dial left, and when that was counted.
    budgets: HashMap<Id, (u64, Millis)>,
}

impl Verifier {
    /// May a check of `id` start now? If so it counts as started until [`Verifier::end`].
    pub fn begin(&mut self, id: Id, now: Millis) -> bool {
        if now >= self.window_start + 1_000 {
            self.window_start = now;
            self.started = 0;
        }
        if self.started >= VERIFICATIONS_PER_SECOND || self.in_flight.len() >= VERIFICATIONS_IN_FLIGHT || !self.in_flight.insert(id) {
            return false;
        }
        self.started += 1;
        true
    }

    pub fn end(&mut self, id: Id) {
        self.in_flight.remove(&id);
    }

    /// May `teller`'s word cost us one more dial now? Takes a token from its bucket if so.
    pub fn may_dial_for(&mut self, teller: Id, now: Millis) -> bool {
        const FULL: u64 = DIALS_PER_TELLER_BURST * 1_000;
        let refilled = |(left, at): (u64, Millis)| (left + now.saturating_sub(at) * DIALS_PER_TELLER_PER_SECOND).min(FULL);
        if !self.budgets.contains_key(&teller) && self.budgets.len() >= TELLERS {
            self.budgets.retain(|_, budget| refilled(*budget) < FULL);
            if self.budgets.len() >= TELLERS {
                return false;
            }
        }
        let left = self.budgets.get(&teller).map_or(FULL, |budget| refilled(*budget));
        if left < 1_000 {
            return false;
        }
        self.budgets.insert(teller, (left - 1_000, now));
        true
    }
}

/// Where an operation goes first.
#[derive(Clone, Debug, PartialEq)]
pub enum Destination {
    Local,
    Remote(NodeRef),
}

pub struct Core {
    pub(super) me: NodeRef,
    /// `None` for a plain MeshSocket.
    pub(super) chord: Option<ChordConfig>,
    pub(super) request_timeout: Millis,
    /// A peer silent this long while we wait on it is probed, then suspected.
    pub(super) failure_timeout: Millis,
    /// The time of the input being handled.
    pub(super) now: Millis,
    /// When each peer last said anything to us (a request or an answer).
    pub(super) last_heard: RecentMap<Id>,
    /// Suspected peers and until when they stay out of our tables unless they speak.
    pub(super) suspects: RecentMap<Id>,
    /// Peers a failure-detector probe is out to (one probe per peer at a time).
    pub(super) probing: HashSet<Id>,
    /// When the last sweep of quiet peers started (see `detector`).
    pub(super) last_sweep: Option<Millis>,
    /// Former neighbours and sampled members, probed to find other rings.
    pub(super) contacts: Contacts,
    /// A live member a lone node heard of: the next rejoin goes through it.
    pub(super) rejoin_via: Option<NodeRef>,
    /// Merge hints sent recently, by (to, first candidate): not repeated within a second.
    pub(super) told: RecentMap<(Id, Id)>,
    /// Nodes asked to prove they are ring members before we act on their word (see `verify`).
    pub(super) verifier: Verifier,
    /// Present while this node is a ring member.
    pub(super) ring: Option<Routing>,
    pub(super) store: Store,
    pub(super) clock: Clock,
    /// Ring members we know of (from routing, members' answers and adverts, nodes that proved
    /// they are members): first-hop guesses. At most `MAX_VIEW_MEMBERS` (see `remember`).
    pub(super) view: BTreeMap<Id, NodeRef>,
    /// Every ring member we know of, alive or lately dead, kept complete by anti-entropy with
    /// our neighbours (see `members`): where a member sends an operation first.
    pub(super) members: super::members::Members,
    /// Our own incarnation in that table: when we started, or later to refute a rumour of our
    /// death.
    pub(super) incarnation: u64,
    /// Location cache: owner id -> (its predecessor id, owner), from owners' answers.
    pub(super) arcs: BTreeMap<Id, (Id, NodeRef)>,
    /// Replica leases: owner id -> (start of its arc, last anti-entropy from it). Entries outside
    /// our own arc and every fresh lease are strays (left by a stand-in write or an old ring
    /// shape) and are handed to their owner, then dropped.
    pub(super) leases: HashMap<Id, (Id, Millis)>,
    /// Read leases granted as an owner (`lease`).
    pub(super) read_leases: super::lease::Leases,
    /// Values read with a lease from their owners (`cacheBytes`).
    pub(super) cache: super::lease::ReadCache,
    /// Read delegations granted to our replicas, as an owner (`delegate`).
    pub(super) delegates: super::delegate::Delegates,
    /// Read delegations held from the owners we replicate for (`delegate`).
    pub(super) held: super::delegate::Held,
    /// As a reader: which replicas answer gets for which owner (`delegate`).
    pub(super) read_copies: super::delegate::ReadCopies,
    /// User writes run here lately, by nonce (`dedupe`).
    pub(super) recent_writes: super::dedupe::RecentWrites,
    /// Ring events already delivered here.
    pub(super) seen: SeenSet,
    /// Events and subscriptions from peers that claim membership but have not proved it yet
    /// (see `events`).
    pub(super) unproven: std::collections::VecDeque<(NodeRef, crate::protocol::Message)>,
    /// Who in the ring listens for which keys, and what we and our clients watch.
    pub(super) watch: super::subscribers::Watch,
    pub(super) counters: Counters,
    /// What we hold of our own arc, and whether anti-entropy is wanted (see `arc`).
    pub(super) arc: ArcState,
    /// The open connections and the policy choosing them (see `links`).
    pub(super) links: Links,
    /// Run a maintenance round soon (a routing node went away, the predecessor changed).
    pub(super) maintenance_due: bool,
    /// When our routing state last changed (see `stir` and `Engine::interval`): maintenance
    /// runs at its full pace while the neighbourhood changes and slows down when it is calm.
    pub(super) calm_since: Millis,
    /// Restarted from its folder knowing the members of its ring: until it is back in a ring
    /// (or has forgotten every contact, after an hour of failures) it is rejoining, even when
    /// none of them answers yet, and must not answer as a ring of one.
    pub(super) restored: bool,
    /// A restarted node that found every member it reached restarting too, and has the
    /// smallest id of them: the others rejoin through it (see `membership::Rejoin`). It takes
    /// joins, still not data, until it has neighbours and has synced.
    pub(super) seeding: bool,
    /// This node has had a successor of its own at some point (it was part of a ring).
    pub(super) had_ring: bool,
    /// A join this node was asked to make failed and it has had no ring since: it keeps
    /// trying through the members it knows, like a node that lost its ring.
    pub(super) join_failed: bool,
    /// A join this node was asked to make is under way (`connect()` on a lone node): until it
    /// ends the node is on its way into another ring, no ring of one to be joined through.
    pub(super) joining: bool,
    /// Seeded by the driver: the simulator's runs are a function of their seed.
    pub(super) rng: StdRng,
    /// This node's secret (`Settings::secret`): keys the MAC of the scan cursors it hands out.
    pub(super) secret: [u8; 32],
}

impl Core {
    pub fn chord(&self) -> Result<&ChordConfig> {
        self.chord.as_ref().ok_or(Error::NotChord)
    }

    pub fn is_member(&self) -> bool {
        self.ring.is_some()
    }

    /// Remember a ring member (not ourselves, not a suspect); some become contacts.
    pub fn learn(&mut self, node: &NodeRef) {
        if node.id != self.me.id && !self.is_suspect(node.id) {
            self.members.saw(node, self.now);
        }
        if node.id != self.me.id && !self.is_suspect(node.id) && self.remember(node) {
            self.contacts.add_sample(node, self.now);
        }
    }

    /// Put `node` in the view; whether it is new there. A full view (`MAX_VIEW_MEMBERS`) first
    /// drops the member that follows a random point of the id space, so the view stays spread
    /// over the ring (and routing keeps its own copies of the nodes it needs).
    fn remember(&mut self, node: &NodeRef) -> bool {
        if self.view.len() >= MAX_VIEW_MEMBERS && !self.view.contains_key(&node.id) {
            let spot = Id(self.rng.gen());
            let victim = self.view.range(spot..).next().or_else(|| self.view.iter().next()).map(|(id, _)| *id);
            if let Some(victim) = victim {
                self.view.remove(&victim);
            }
        }
        self.view.insert(node.id, node.clone()).is_none()
    }

    /// Is `id` a ring member we know — in our routing state, our view, or our contacts — and
    /// so one whose word (adverts, merge hints) we act on without asking it first?
    pub fn knows_member(&self, id: Id) -> bool {
        self.view.contains_key(&id) || self.ring.as_ref().is_some_and(|r| r.knows(id)) || self.contacts.contains(id)
    }

    /// `id` said something: it is alive, whatever we suspected.
    pub fn heard(&mut self, id: Id) {
        let stale_before = self.now.saturating_sub(self.request_timeout.max(self.failure_timeout));
        self.last_heard.insert(id, self.now, stale_before);
        self.suspects.remove(&id);
    }

    /// Keep `id` out of our tables until `until`, unless it speaks first.
    pub fn suspect_until(&mut self, id: Id, until: Millis) {
        let now = self.now;
        self.suspects.insert(id, until, now + 1);
    }

    pub fn is_suspect(&self, id: Id) -> bool {
        self.suspects.get(&id).is_some_and(|until| *until > self.now)
    }

    /// A node did not answer: drop it from every table so routing stops choosing it. A
    /// routing neighbour becomes a contact: if it comes back (a partition heals, it restarts),
    /// the probe duty finds it. So does, for a client, any member of its view: the members it
    /// knows are all it has, and a client that dropped them all for good (a ring silent for a
    /// few seconds) could never read again.
    pub fn forget(&mut self, id: Id) {
        if id == self.me.id {
            return;
        }
        let former = match &self.ring {
            Some(ring) => ring.known_nodes().into_iter().find(|n| n.id == id),
            None => self.view.get(&id).cloned(),
        };
        if let Some(node) = former {
            self.contacts.add_former(&node, self.now);
        }
        self.drop_node(id);
    }

    /// A client whose view holds no member it does not suspect: it probes its contacts (the
    /// members it forgot) to find the ring again.
    pub fn client_lost_ring(&self) -> bool {
        self.ring.is_none() && self.chord.is_some() && !self.contacts.is_empty() && self.view.keys().all(|id| self.is_suspect(*id))
    }

    /// Drop a node from every table without keeping it as a contact (it left gracefully).
    pub fn drop_node(&mut self, id: Id) {
        self.view.remove(&id);
        self.members.died(id, self.now);
        self.arcs.remove(&id);
        if let Some(ring) = self.ring.as_mut() {
            if ring.remove(id) {
                self.maintenance_due = true;
            }
        }
    }

    /// Best first guess for the owner of `position`: ourselves, a cached owner arc, the member
    /// that follows the position in our view, or our finger table when we are closest.
    pub fn first_destination(&self, position: Id) -> Result<Destination> {
        if let Some(ring) = &self.ring {
            if ring.owns(position) || ring.is_alone() {
                return Ok(Destination::Local);
            }
        }
        let cached = self.arcs.range(position..).next().or_else(|| self.arcs.iter().next());
        if let Some((_, (pred, owner))) = cached {
            if position.in_half_open(*pred, owner.id) {
                return Ok(Destination::Remote(owner.clone()));
            }
        }
        // A member's table of every member names the owner itself, when it is complete.
        let listed = (self.ring.is_some() && !self.members.saturated()).then(|| self.members.following(position).filter(|n| n.id != self.me.id).cloned()).flatten();
        let guess = listed.or_else(|| self.view.range(position..).next().or_else(|| self.view.iter().next()).map(|(_, n)| n.clone()));
        // Are we ourselves the first member at or after the position? Then our fingers know best.
        let me_first = guess.as_ref().is_none_or(|g| position.distance_to(self.me.id) < position.distance_to(g.id));
        if let (Some(ring), true) = (&self.ring, me_first) {
            return Ok(match ring.next_hop(position) {
                Hop::Local => Destination::Local,
                Hop::Owner(n) | Hop::Closer(n) => Destination::Remote(n),
            });
        }
        // A client that forgot every member it knew tries the one that answered last.
        let guess = guess.or_else(|| self.ring.is_none().then(|| self.contacts.freshest()).flatten());
        guess.map(Destination::Remote).ok_or_else(|| Error::Unavailable("not connected to any ring member: connect() to one first".into()))
    }

    /// The nodes routing keeps connections to, as many as fit the table with a quarter of it
    /// left for clients, joiners and the owners we reach (two at least), in this order: the
    /// successor and the predecessor, the rest of the successor list, then the distinct
    /// fingers, farthest first (the longest jumps; near fingers are covered by the
    /// successors). With the default 64 slots that is every finger up to rings of millions;
    /// with 16, seven.
    pub fn routing_set(&self) -> Vec<Id> {
        self.routing_set_with(None)
    }

    /// The routing set as it would be if `newcomer` (a member knocking at a full table) were
    /// in the ring: a node between us and a neighbour becomes that neighbour, and the one it
    /// displaces may drop out of the set — its connection is the one to give way.
    pub fn routing_set_with(&self, newcomer: Option<Id>) -> Vec<Id> {
        let Some(ring) = &self.ring else { return Vec::new() };
        let me = self.me.id;
        let mut successors: Vec<Id> = ring.successors().iter().map(|n| n.id).collect();
        let mut predecessor = ring.predecessor().map(|p| p.id);
        if let Some(newcomer) = newcomer {
            if successors.first().is_some_and(|&s| newcomer.in_open(me, s)) {
                successors.insert(0, newcomer);
            } else if predecessor.is_some_and(|p| newcomer.in_open(p, me)) {
                predecessor = Some(newcomer);
            }
        }
        let mut ordered: Vec<Id> = successors.iter().copied().take(1).chain(predecessor).chain(successors.iter().copied().skip(1)).collect();
        ordered.extend(ring.distinct_fingers().into_iter().rev().map(|f| f.id));
        let mut set = Vec::new();
        let room = (self.links.limit() - self.links.limit() / 4).max(2);
        for id in ordered {
            if set.len() == room {
                break;
            }
            if !set.contains(&id) {
                set.push(id);
            }
        }
        set
    }

    /// The node we hold a connection to that lies closest before `position` and after us
    /// (so asking it makes progress), skipping `avoid` and suspects: where a lookup or relay
    /// goes when its natural next hop is not connected.
    pub fn open_hop_towards(&self, position: Id, avoid: &[Id]) -> Option<NodeRef> {
        let ring = self.ring.as_ref()?;
        ring.known_nodes()
            .into_iter()
            .filter(|n| n.id.in_open(self.me.id, position) && self.links.is_open(n.id) && !avoid.contains(&n.id) && !self.is_suspect(n.id))
            .max_by_key(|n| self.me.id.distance_to(n.id))
    }

    /// Whether to reach `node` (the owner we believe in) through a relay, and through whom:
    /// only when we hold no connection to it and either every slot is taken or the ring is
    /// larger than a mesh we could hold (`mesh_fits`), through the open connection closest
    /// before the position (a finger or successor of ours, or for a client
    /// a member it is connected to). Below the limit a direct connection costs one handshake
    /// and gives one hop from then on; at the limit it would displace a connection in use.
    /// Where to send a plain get of `position` whose owner is `owner`: the owner or one of the
    /// successors holding its replicas, as the member table lists them, among those we hold a
    /// connection to and that answer for the owner (`delegate::ReadCopies::pick`), so a hot
    /// key's readers spread over its copies. `None`: the owner.
    pub fn read_replica(&mut self, position: Id, owner: &NodeRef) -> Option<NodeRef> {
        if self.ring.is_none() || self.members.saturated() {
            return None;
        }
        let replicas = self.chord.as_ref().map_or(1, |c| c.replicas);
        let copies = self.members.following_n(position, replicas);
        if copies.first().is_none_or(|first| first.id != owner.id) {
            return None;
        }
        let open: Vec<NodeRef> = copies.into_iter().filter(|n| n.id == owner.id || (n.id != self.me.id && self.links.is_open(n.id))).cloned().collect();
        self.read_copies.pick(&open, self.now, &mut self.rng)
    }

    pub fn relay_via(&self, position: Id, node: &NodeRef, prefer_relay: bool) -> Option<NodeRef> {
        if self.links.is_open(node.id) || (self.links.has_room() && !prefer_relay && self.mesh_fits()) {
            return None;
        }
        let routing = self.ring.as_ref().map(|ring| ring.known_nodes()).unwrap_or_default();
        routing
            .into_iter()
            .chain(self.view.values().cloned())
            .filter(|n| n.id != node.id && n.id != self.me.id && self.links.is_open(n.id) && !self.is_suspect(n.id))
            .min_by_key(|n| n.id.distance_to(position))
    }

    /// Could we hold a connection to every member we know at once, within the slots our own
    /// dials may take? Then a connection dialled to reach an owner is kept and used again, and
    /// the tables settle into a mesh. In a larger ring most owners are met now and then: a
    /// direct dial to each costs a handshake at both ends, takes a slot at the owner (where a
    /// full table evicts someone, who dials again...) and is soon closed idle — a churn that
    /// kept a 1,000-node ring under load opening 7,000 connections a second. There, operations
    /// travel along the connections routing keeps anyway (`relay`).
    pub fn mesh_fits(&self) -> bool {
        self.view.len().max(self.members.len()) + self.links.limit() / 4 < self.links.limit()
    }

    /// The first hop of a lookup from here: our finger table, or for a client the member that
    /// precedes the position in its view.
    pub fn start_hop(&self, position: Id) -> Result<Hop> {
        if self.ring.is_some() {
            return self.local_hop(position, &[]);
        }
        let preceding = self.view.range(..position).next_back().or_else(|| self.view.iter().next_back()).map(|(_, node)| node.clone());
        let preceding = preceding.or_else(|| self.contacts.freshest());
        preceding.map(Hop::Closer).ok_or_else(|| Error::Unavailable("not connected to any ring member".into()))
    }

    /// The next hop from our own tables, skipping nodes found dead; a closer node we are
    /// connected to rather than one we would have to dial, when the table is full.
    pub fn local_hop(&self, position: Id, avoid: &[Id]) -> Result<Hop> {
        if let Some(ring) = &self.ring {
            return Ok(match ring.next_hop_avoiding(position, avoid) {
                Hop::Closer(next) if !self.links.is_open(next.id) && !self.links.has_room() => {
                    Hop::Closer(self.open_hop_towards(position, avoid).unwrap_or(next))
                }
                hop => hop,
            });
        }
        let preceding = self.view.range(..position).rev().chain(self.view.iter().rev()).find(|(id, _)| !avoid.contains(id));
        preceding.map(|(_, n)| Hop::Closer(n.clone())).ok_or_else(|| Error::Unavailable("no ring member left to ask".into()))
    }

    /// An owner answered an operation: count it and cache its arc for the next first guess.
    pub fn remember_owner(&mut self, target: &Destination, response: &Response, redirects: u32, hops: u32) {
        self.counters.ops += 1;
        self.counters.op_redirects += redirects as u64;
        self.counters.op_hops += hops as u64;
        let Destination::Remote(owner) = target else { return };
        let arc = match response {
            Response::Value { arc, .. } | Response::Written { arc, .. } => *arc,
            _ => return,
        };
        if arc.1 != owner.id {
            return;
        }
        if self.arcs.len() >= ARC_CACHE_ENTRIES {
            self.arcs.clear();
        }
        self.arcs.insert(owner.id, (arc.0, owner.clone()));
        self.members.saw(owner, self.now);
        self.remember(owner);
    }

    /// A lone member that had a ring (or was restarted on one) and knows of members of it has
    /// lost its ring and is rejoining (a restart, a node cut off, a join that failed): it must
    /// not answer as the owner of everything, or a write would be acknowledged with one copy
    /// in the wrong place. A lone member that never had a ring (the first node, even once
    /// others connect to it to join) or knows no one (the last survivor) is a ring of one and
    /// does.
    pub fn rejoining(&self) -> bool {
        let lost_ring = (self.had_ring || self.restored || self.join_failed) && !self.view.is_empty();
        self.ring.as_ref().is_some_and(|r| r.is_alone()) && (lost_ring || self.rejoin_via.is_some() || (self.restored && !self.contacts.is_empty()))
    }

    /// Does a lone node hold everything, so that when it gets a predecessor its arc counts as
    /// synced? Only the first node of a ring: one that had a ring or was restarted holds what
    /// it held then, perhaps not the writes made meanwhile.
    pub fn holds_everything(&self) -> bool {
        self.ring.as_ref().is_some_and(|r| r.is_alone()) && !self.had_ring && !self.restored && !self.join_failed
    }

    /// Our routing state changed (a successor, the predecessor, a finger): maintenance goes
    /// back to its full pace.
    pub fn stir(&mut self) {
        self.calm_since = self.now;
    }

    /// Has our routing state been calm long enough for maintenance to slow down?
    pub fn calm(&self) -> bool {
        self.now.saturating_sub(self.calm_since) >= CALM_AFTER_MS
    }

    /// Does this node refuse to be joined through (it would make joiners a ring apart from the
    /// one it is rejoining)? Only a rejoining node that is not the seed of a whole ring's
    /// restart.
    pub fn refuses_joins(&self) -> bool {
        (self.rejoining() || (self.joining && self.ring.as_ref().is_some_and(|r| r.is_alone()))) && !self.seeding
    }

    /// Did our arc grow, or rings merge around us, lately? Then copies of our arc may still
    /// sit on nodes other than our replicas.
    pub fn unsettled(&self) -> bool {
        self.arc.unsettled(self.now)
    }

    /// Is `position` in the part of our arc we took over and have not synced yet?
    pub fn unsynced(&self, position: Id) -> bool {
        self.arc.unsynced(position, self.predecessor_id(), self.me.id)
    }

    /// The node our predecessor `leaver` named as its own predecessor when it left, as we know
    /// it, if it may become ours: only a node we know already (routing or view: it answered
    /// us, or a member named it), not suspected, lying between us and the leaver — where a
    /// predecessor of the leaver can lie. Our own record of it is used, not the address named.
    pub fn inherited_predecessor(&self, named: &NodeRef, leaver: Id) -> Option<NodeRef> {
        if named.id == self.me.id || self.is_suspect(named.id) || !named.id.in_open(self.me.id, leaver) {
            return None;
        }
        let routing = self.ring.as_ref().and_then(|r| r.known_nodes().into_iter().find(|n| n.id == named.id));
        routing.or_else(|| self.view.get(&named.id).cloned())
    }

    /// Our predecessor's id, while we are a member that has one.
    pub fn predecessor_id(&self) -> Option<Id> {
        self.ring.as_ref().and_then(|r| r.predecessor()).map(|p| p.id)
    }

    /// Where a write's copies go: our successors, the fingers beyond them, then the other
    /// members we know of, clockwise (`Routing::replica_candidates`). Right after a ring forms a
    /// node's tables may name a single node while it knows more: the stand-ins still give a
    /// write its `replicas` copies.
    pub fn replica_candidates(&self) -> Vec<NodeRef> {
        let Some(ring) = &self.ring else { return Vec::new() };
        let mut candidates = ring.replica_candidates();
        let reach = candidates.last().map_or(0, |last| self.me.id.distance_to(last.id));
        let mut others: Vec<&NodeRef> = self.view.values().filter(|n| self.me.id.distance_to(n.id) > reach && !self.is_suspect(n.id)).collect();
        others.sort_by_key(|n| self.me.id.distance_to(n.id));
        candidates.extend(others.into_iter().cloned());
        candidates
    }
}

/// The answer of a node that is not (or no longer) a ring member.
pub fn not_member() -> Response {
    Response::Error { code: "not-member".into(), message: "this node is not a ring member".into() }
}

/// The answer of a lone member that is rejoining its ring: ask again shortly.
pub fn rejoining() -> Response {
    Response::Error { code: "rejoining".into(), message: "this node lost its ring and is rejoining it".into() }
}

/// The answer to a write this node could not store durably (its disk is full, or failed), or
/// to a read of a value it could not read (a damaged file). The asker's error keeps the kind.
pub fn not_stored(error: &Error) -> Response {
    let code = match error {
        Error::StorageFull(_) => "storage-full",
        Error::StorageCorrupt(_) => "storage-corrupt",
        _ => "storage",
    };
    Response::Error { code: code.into(), message: error.to_string() }
}

/// The answer for a key of an arc just taken over and not synced yet: ask again shortly.
pub fn syncing() -> Response {
    Response::Error { code: "unavailable".into(), message: "this node is taking over the key's arc and syncing it".into() }
}

/// An answer that does not fit the request: a refusal becomes `ERR_UNAVAILABLE` with the
/// peer's reason, anything else a protocol error.
pub fn unexpected(response: Response) -> Error {
    match response {
        Response::Error { code, message } if code == "storage-full" => Error::StorageFull(message),
        Response::Error { code, message } if code == "storage-corrupt" => Error::StorageCorrupt(message),
        Response::Error { code, message } => Error::Unavailable(format!("{code}: {message}")),
        other => Error::Protocol(format!("unexpected answer {other:?}")),
    }
}

/// Pause before the next attempt of an operation, or give up at its deadline.
pub fn backoff(now: Millis, deadline: Millis, attempt: u32) -> Result<Millis> {
    if now >= deadline {
        return Err(Error::Unavailable(format!(
            "no owner answered within {:?}; the ring may be partitioned or still recovering",
            crate::config::OPERATION_DEADLINE
        )));
    }
    Ok(now + (10 * attempt as u64).min(200))
}
