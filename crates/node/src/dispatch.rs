//! Dispatch: where the transport hands authenticated traffic, and where each kind of message
//! goes — ring requests, answers and events to the driver (the engine), broadcasts, whispers
//! and peer lists to the mesh, connection changes to both and to the user's event queue.

use crate::driver::Driver;
use crate::events::{Event, EventQueue, PeerInfo};
use crate::mesh::Mesh;
use crate::transport::{ConnId, Inbound, Transport};
use chord::config::ADVERTS_LEARNED_PER_MESSAGE;
use chord::engine::Admission;
use chord::id::Id;
use chord::protocol::{Hello, Message, PROTOCOL_VERSION};
use chord::routing::NodeRef;
use std::sync::Arc;

pub(crate) struct Dispatch {
    pub driver: Arc<Driver>,
    pub mesh: Arc<Mesh>,
    pub events: Arc<EventQueue>,
    pub transport: Arc<Transport>,
    /// This node runs a Chord engine (a ChordSocket), not only the mesh.
    pub chord: bool,
}

impl Inbound for Dispatch {
    fn hello(&self) -> Hello {
        let identity = &self.transport.identity;
        Hello {
            version: PROTOCOL_VERSION,
            protocol_id: identity.protocol_id,
            subnet: identity.subnet.clone(),
            encryption: identity.encryption.clone(),
            node: identity.me.clone(),
            member: self.driver.is_member(),
        }
    }

    fn connected(&self, conn: ConnId, info: &PeerInfo) {
        self.driver.metrics.record_connection_opened();
        // A Hello's `member` flag is a claim: the engine checks it before learning the peer.
        self.driver.connected(&node_of(info), info.member);
        self.events.push(Event::Connect(info.clone()));
        self.mesh.send_peer_list(conn);
    }

    fn message(&self, conn: ConnId, peer: &NodeRef, message: Message) {
        match message {
            Message::Request { id, body } => self.driver.on_request(conn, peer, id, body),
            Message::Response { id, body } => self.driver.on_response(peer.id, id, body),
            message @ (Message::Event { .. } | Message::Subscribe { .. }) => self.driver.on_ring_message(peer, message),
            Message::Broadcast { id, origin, time_ms, packets } => self.mesh.on_broadcast(conn, peer, id, origin, time_ms, packets),
            Message::Whisper { origin, target, time_ms, packets } => self.mesh.on_whisper(peer, origin, target, time_ms, packets),
            Message::Peers(mut ads) => {
                // Addresses on a peer's word: only those this node may dial (chord::addr).
                ads.retain(|ad| chord::addr::check_dialable(&ad.node.host, ad.node.port, &self.transport.identity.me.host).is_ok());
                // A few members per frame, from a member the engine knows; nothing from others.
                if self.driver.inspect(|engine| engine.trusts_adverts_of(peer.id)) {
                    for ad in ads.iter().filter(|ad| ad.member).take(ADVERTS_LEARNED_PER_MESSAGE) {
                        self.driver.learn_member(&ad.node);
                    }
                }
                self.mesh.on_peer_list(&ads);
            }
            // The transport keeps handshake frames and goodbyes to itself.
            Message::Hello(_) | Message::Welcome(_) | Message::Reject { .. } | Message::Goodbye { .. } => {}
        }
    }

    fn disconnected(&self, info: &PeerInfo, reason: &str, last: bool, lost: bool) {
        self.driver.metrics.record_connection_closed();
        if self.chord {
            self.driver.peer_gone(&node_of(info), reason, last, lost);
        }
        if last {
            self.events.push(Event::Disconnect { peer: info.clone(), reason: reason.to_string() });
        }
    }

    fn bad_peer(&self, message: String) {
        self.events.push(Event::Error { code: "ERR_BAD_PEER".into(), message });
    }

    fn admit(&self, peer: Id) -> Admission {
        self.driver.admit(peer)
    }

    fn elsewhere(&self) -> Vec<NodeRef> {
        self.driver.inspect(|engine| engine.elsewhere())
    }
}

fn node_of(info: &PeerInfo) -> NodeRef {
    NodeRef { id: info.id, host: info.host.clone(), port: info.port }
}

