//! The in-memory network: every simulated node's `chord::routing::Routing`, addressed by ring
//! id, and a request/response call that answers the Chord requests of the wire protocol
//! (`chord::protocol::Request::{State, Notify, Ping, FindSuccessor}`) exactly as the real
//! node's `serve_now` does (crates/chord/src/node/chord.rs). A dead node does not answer.
//!
//! No sockets and no clocks: the caller decides the order of events, so a run is reproducible.
//! Node references carry an empty host string (ids identify nodes here), which keeps the 128
//! finger slots of `Routing` free of heap allocations at 100,000 nodes.

use chord::protocol::{Request, Response};
use chord::routing::{NodeRef, Routing};
use chord::Id;
use rand::Rng;
use std::collections::{BTreeMap, HashMap};

/// The addressed node is dead (the real node sees a connect error or a timeout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unreachable;

/// Requests sent, by kind; `unanswered` counts requests to dead nodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub state: u64,
    pub notify: u64,
    pub ping: u64,
    pub find_successor: u64,
    pub unanswered: u64,
}

impl Counters {
    pub fn total(&self) -> u64 {
        self.state + self.notify + self.ping + self.find_successor
    }

    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters {
            state: self.state - earlier.state,
            notify: self.notify - earlier.notify,
            ping: self.ping - earlier.ping,
            find_successor: self.find_successor - earlier.find_successor,
            unanswered: self.unanswered - earlier.unanswered,
        }
    }

    fn count(&mut self, request: &Request) {
        match request {
            Request::State => self.state += 1,
            Request::Notify(_) => self.notify += 1,
            Request::Ping => self.ping += 1,
            Request::FindSuccessor { .. } => self.find_successor += 1,
            _ => {}
        }
    }
}

struct Slot {
    id: Id,
    /// `None` once the node died (its state is gone with it).
    routing: Option<Routing>,
    /// Index in `Network::live_slots` while alive.
    live_index: usize,
}

pub struct Network {
    slots: Vec<Slot>,
    slot_of: HashMap<Id, usize>,
    /// Live nodes by id: the oracle's view of the ring.
    live: BTreeMap<Id, usize>,
    /// Live slots in arbitrary (but deterministic) order, for uniform random picks.
    live_slots: Vec<usize>,
    successor_list_len: usize,
    pub counters: Counters,
}

impl Network {
    pub fn new(successor_list_len: usize) -> Network {
        Network {
            slots: Vec::new(),
            slot_of: HashMap::new(),
            live: BTreeMap::new(),
            live_slots: Vec::new(),
            successor_list_len,
            counters: Counters::default(),
        }
    }

    pub fn successor_list_len(&self) -> usize {
        self.successor_list_len
    }

    /// How other nodes address `id`: no host string, the id is the address.
    pub fn node_ref(id: Id) -> NodeRef {
        NodeRef { id, host: String::new(), port: 0 }
    }

    /// Start a node that is a ring of its own. Returns false if the id was ever used.
    pub fn spawn(&mut self, id: Id) -> bool {
        if self.slot_of.contains_key(&id) {
            return false;
        }
        let slot = self.slots.len();
        let routing = Routing::new(Network::node_ref(id), self.successor_list_len);
        self.slots.push(Slot { id, routing: Some(routing), live_index: self.live_slots.len() });
        self.slot_of.insert(id, slot);
        self.live.insert(id, slot);
        self.live_slots.push(slot);
        true
    }

    /// The node crashes silently: no goodbye, its state is lost.
    pub fn kill(&mut self, id: Id) {
        let Some(&slot) = self.slot_of.get(&id) else { return };
        if self.slots[slot].routing.take().is_none() {
            return;
        }
        self.live.remove(&id);
        let index = self.slots[slot].live_index;
        self.live_slots.swap_remove(index);
        if let Some(&moved) = self.live_slots.get(index) {
            self.slots[moved].live_index = index;
        }
    }

    pub fn is_alive(&self, id: Id) -> bool {
        self.live.contains_key(&id)
    }

    pub fn live_count(&self) -> usize {
        self.live_slots.len()
    }

    /// Live ids in ring order.
    pub fn live_ids(&self) -> Vec<Id> {
        self.live.keys().copied().collect()
    }

    pub fn random_live(&self, rng: &mut impl Rng) -> Option<Id> {
        if self.live_slots.is_empty() {
            return None;
        }
        let slot = self.live_slots[rng.gen_range(0..self.live_slots.len())];
        Some(self.slots[slot].id)
    }

    pub fn routing(&self, id: Id) -> Option<&Routing> {
        let slot = *self.slot_of.get(&id)?;
        self.slots[slot].routing.as_ref()
    }

    pub fn routing_mut(&mut self, id: Id) -> Option<&mut Routing> {
        let slot = *self.slot_of.get(&id)?;
        self.slots[slot].routing.as_mut()
    }

    /// Oracle: the live node that owns `position` (first live id at or after it, wrapping).
    pub fn owner_of(&self, position: Id) -> Option<Id> {
        self.live.range(position..).next().or_else(|| self.live.iter().next()).map(|(id, _)| *id)
    }

    /// Send `request` to node `to` and wait for its answer.
    pub fn request(&mut self, to: Id, request: Request) -> Result<Response, Unreachable> {
        self.counters.count(&request);
        match self.routing_mut(to) {
            Some(routing) => Ok(serve(routing, request)),
            None => {
                self.counters.unanswered += 1;
                Err(Unreachable)
            }
        }
    }
}

/// The answers of `serve_now` in node/chord.rs for the requests Chord maintenance uses.
fn serve(routing: &mut Routing, request: Request) -> Response {
    match request {
        Request::Ping => Response::Pong,
        Request::State => Response::State { predecessor: routing.predecessor().cloned(), successors: routing.successors().to_vec() },
        Request::Notify(candidate) => {
            routing.on_notify(&candidate);
            Response::Ok
        }
        Request::FindSuccessor { position, avoid } => Response::Next(routing.next_hop_avoiding(position, &avoid)),
        _ => Response::Error { code: "not-simulated".into(), message: "the simulator only carries Chord routing requests".into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_nodes_do_not_answer_and_leave_the_live_set() {
        let mut net = Network::new(3);
        assert!(net.spawn(Id(10)) && net.spawn(Id(20)));
        assert!(!net.spawn(Id(10)));
        net.kill(Id(10));
        assert_eq!(net.request(Id(10), Request::Ping), Err(Unreachable));
        assert_eq!(net.request(Id(20), Request::Ping), Ok(Response::Pong));
        assert_eq!(net.live_ids(), vec![Id(20)]);
        assert_eq!(net.owner_of(Id(25)), Some(Id(20)));
        assert_eq!(net.counters.ping, 2);
        assert_eq!(net.counters.unanswered, 1);
    }
}
