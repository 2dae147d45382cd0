//! Iterative greedy lookups: Chord's `find_successor` (Stoica et al. 2001, Fig. 5) run by the
//! originator one hop at a time, as the real node's `find_owner_from` does
//! (crates/chord/src/node/chord.rs): `Hop::Closer(n)` → ask `n`; `Hop::Owner(n)` → `n` is the
//! answer; `Hop::Local` (or `n` answering `Next(Local)`) → the node asked is the answer.
//!
//! Two policies: [`Policy::FirstTry`] stops at the first dead node and changes nothing;
//! [`Policy::Retry`] is the node's policy: forget the dead node (`Routing::remove`) in the
//! originator's tables and start over from them. A lookup is counted correct only when the
//! owner it returns is alive and is the oracle's owner of the position.

use crate::network::Network;
use chord::protocol::{Request, Response};
use chord::routing::Hop;
use chord::Id;

/// Hop budget of one lookup: the real node gives up after 128 hops (`find_owner_from`).
pub const MAX_HOPS: u32 = 128;

/// Whole-lookup attempts when the returned owner is dead. The real node keeps retrying until a
/// 15 s deadline, but no simulated time passes inside one lookup, so after a few attempts the
/// tables it consults cannot have changed any more.
pub const OWNER_ATTEMPTS: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    FirstTry,
    Retry,
}

/// The outcome of one `find_owner`: the owner found (if any), the remote nodes asked, and how
/// many of them were dead.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trial {
    pub owner: Option<Id>,
    pub hops: u32,
    pub dead_contacts: u32,
}

impl Trial {
    fn found(mut self, owner: Id) -> Trial {
        self.owner = Some(owner);
        self
    }
}

/// How a lookup ended, judged against the oracle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The live, true owner, after this many remote hops.
    Correct { hops: u32 },
    /// A node asked on the way (or the budget) failed.
    DeadHop,
    /// The owner returned is dead.
    DeadOwner,
    /// The owner returned is alive but is not the owner (an inconsistent lookup).
    WrongOwner,
}

/// Find the owner of `position` starting from `origin`'s own tables.
pub fn find_owner(net: &mut Network, origin: Id, position: Id, policy: Policy) -> Trial {
    match local_hop(net, origin, position, &[]) {
        Some(hop) => find_owner_from(net, origin, position, hop, policy),
        None => Trial::default(),
    }
}

/// Continue a lookup from `start` (the real node's `find_owner_from`): under [`Policy::Retry`]
/// a dead hop is forgotten and routed around by asking the node that pointed at it again,
/// with the dead nodes excluded (`FindSuccessor { avoid }`).
pub fn find_owner_from(net: &mut Network, origin: Id, position: Id, start: Hop, policy: Policy) -> Trial {
    let mut trial = Trial::default();
    let mut hop = start;
    let mut avoid: Vec<Id> = Vec::new();
    let mut last_answer: Option<Id> = None;
    loop {
        let node = match hop {
            Hop::Local => return trial.found(origin),
            Hop::Owner(node) => return trial.found(node.id),
            Hop::Closer(node) if node.id == origin => match local_hop(net, origin, position, &avoid) {
                Some(next) => {
                    hop = next;
                    continue;
                }
                None => return trial,
            },
            Hop::Closer(node) => node.id,
        };
        trial.hops += 1;
        if trial.hops > MAX_HOPS {
            return trial;
        }
        match net.request(node, Request::FindSuccessor { position, avoid: avoid.clone() }) {
            Ok(Response::Next(Hop::Local)) => return trial.found(node),
            Ok(Response::Next(next)) => {
                last_answer = Some(node);
                hop = next;
            }
            _ => {
                trial.dead_contacts += 1;
                if policy == Policy::FirstTry {
                    return trial;
                }
                forget(net, origin, node);
                avoid.push(node);
                hop = match last_answer.take() {
                    Some(previous) if previous != node => Hop::Closer(chord::NodeRef { id: previous, host: String::new(), port: 0 }),
                    _ => match local_hop(net, origin, position, &avoid) {
                        Some(next) => next,
                        None => return trial,
                    },
                };
            }
        }
    }
}

/// A lookup as an operation: find the owner, then reach it. Under [`Policy::Retry`] a dead
/// owner is forgotten and the lookup starts over (the node's `route` does the same).
pub fn lookup(net: &mut Network, origin: Id, position: Id, policy: Policy) -> Outcome {
    let attempts = if policy == Policy::Retry { OWNER_ATTEMPTS } else { 1 };
    let mut outcome = Outcome::DeadHop;
    for _ in 0..attempts {
        let trial = find_owner(net, origin, position, policy);
        outcome = judge(net, &trial, position);
        if outcome != Outcome::DeadOwner {
            return outcome;
        }
        if let Some(owner) = trial.owner {
            forget(net, origin, owner);
        }
    }
    outcome
}

fn judge(net: &Network, trial: &Trial, position: Id) -> Outcome {
    match trial.owner {
        None => Outcome::DeadHop,
        Some(owner) if !net.is_alive(owner) => Outcome::DeadOwner,
        Some(owner) if Some(owner) != net.owner_of(position) => Outcome::WrongOwner,
        Some(_) => Outcome::Correct { hops: trial.hops },
    }
}

fn local_hop(net: &Network, origin: Id, position: Id, avoid: &[Id]) -> Option<Hop> {
    net.routing(origin).map(|r| r.next_hop_avoiding(position, avoid))
}

/// A node did not answer: drop it from `at`'s tables (the node's `forget`).
pub fn forget(net: &mut Network, at: Id, dead: Id) {
    if let Some(routing) = net.routing_mut(at) {
        routing.remove(dead);
    }
}
