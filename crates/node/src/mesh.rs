//! The mesh layer: peer exchange, flooding broadcast with de-duplication, and whispers.
//!
//! A broadcast floods every connection except the one it came from; each node delivers and
//! forwards a broadcast id once (a bounded `SeenSet`), so a connected network sees it exactly
//! once per node however its links are arranged. A whisper goes over a direct connection,
//! dialing the target first when its address is known. Owns the set of seen broadcast ids.
//!
//! Who sent what: a message is delivered with the peer it arrived from as its sender, whose id
//! that peer proved in the handshake. A whisper is only taken from its author over a direct
//! connection: one whose origin is not the connection's peer, or whose target is another node,
//! is dropped and reported (whispers are never relayed: a relayed whisper's origin could not be
//! told from a forged one). A broadcast is flooded, so its origin is only claimed: it is
//! delivered beside the sender, never in its place.

use crate::clock::wall_millis;
use crate::events::{Event, EventQueue, Incoming};
use crate::transport::{ConnId, Frame, Transport};
use chord::error::{Error, Result};
use chord::id::Id;
use chord::protocol::{self, Message, PeerAd};
use chord::routing::NodeRef;
use chord::seen::SeenSet;
use serde_bytes::ByteBuf;
use std::sync::{Arc, Mutex};

/// Peers advertised in one peer-exchange frame.
pub const PEER_EXCHANGE_LIMIT: usize = 32;

/// Who a whisper is for: a node id and, if known, where it listens.
#[derive(Clone, Debug)]
pub struct WhisperTo {
    pub id: Id,
    pub addr: Option<(String, u16)>,
}

pub(crate) struct Mesh {
    me: NodeRef,
    transport: Arc<Transport>,
    events: Arc<EventQueue>,
    seen: Mutex<SeenSet>,
    /// Dial advertised peers up to `maxPeers` (a plain MeshSocket with peer exchange on).
    fill_table: bool,
}

impl Mesh {
    pub fn new(me: NodeRef, transport: Arc<Transport>, events: Arc<EventQueue>, fill_table: bool) -> Mesh {
        Mesh { me, transport, events, seen: Mutex::new(SeenSet::new()), fill_table }
    }

    fn first_time(&self, id: Id) -> bool {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).first_time(id)
    }

    pub fn broadcast(&self, packets: Vec<Vec<u8>>) -> Result<()> {
        let id = Id(rand::random());
        self.first_time(id);
        let message = Message::Broadcast { id, origin: self.me.clone(), time_ms: wall_millis(), packets: to_bufs(packets) };
        let frame = Frame::of(&message);
        self.check_size(frame.bytes.len())?;
        for (conn, _) in self.transport.connections() {
            self.transport.send_frame(conn, frame.clone());
        }
        Ok(())
    }

    pub async fn whisper(&self, packets: Vec<Vec<u8>>, target: WhisperTo) -> Result<()> {
        let message = Message::Whisper { origin: self.me.clone(), target: target.id, time_ms: wall_millis(), packets: to_bufs(packets) };
        let frame = Frame::of(&message);
        self.check_size(frame.bytes.len())?;
        let conn = match (self.transport.conn_to(target.id), target.addr) {
            (Some(conn), _) => conn,
            (None, Some((host, port))) => self.transport.connection_to(&NodeRef { id: target.id, host, port }).await?,
            (None, None) => return Err(Error::Unavailable(format!("no connection to peer {} and no address to reach it", target.id))),
        };
        if self.transport.send_frame(conn, frame) {
            Ok(())
        } else {
            Err(Error::PeerGone(target.id.to_hex()))
        }
    }

    fn check_size(&self, frame_len: usize) -> Result<()> {
        let body = frame_len - protocol::LENGTH_PREFIX_BYTES;
        let limit = self.transport.identity.max_frame_bytes;
        if body > limit {
            return Err(Error::InvalidArgument(format!("message is {body} bytes framed; the frame limit (maxFrameBytes) is {limit}")));
        }
        Ok(())
    }

    /// A broadcast that arrived over `from`, from the proven peer `sender`.
    pub fn on_broadcast(&self, from: ConnId, sender: &NodeRef, id: Id, origin: NodeRef, time_ms: u64, packets: Vec<ByteBuf>) {
        if !self.first_time(id) {
            return;
        }
        let others: Vec<ConnId> = self.transport.connections().into_iter().map(|(c, _)| c).filter(|c| *c != from).collect();
        if !others.is_empty() {
            let frame = Frame::of(&Message::Broadcast { id, origin: origin.clone(), time_ms, packets: packets.clone() });
            for conn in others {
                self.transport.send_frame(conn, frame.clone());
            }
        }
        if origin.id != self.me.id {
            self.deliver(sender.clone(), origin, time_ms, packets, true);
        }
    }

    /// A whisper from the proven peer `sender`: delivered only if it is for this node and says
    /// it comes from that peer.
    pub fn on_whisper(&self, sender: &NodeRef, origin: NodeRef, target: Id, time_ms: u64, packets: Vec<ByteBuf>) {
        if target != self.me.id {
            return self.refuse(sender, format!("a whisper for {target}, another node: whispers are not relayed"));
        }
        if origin.id != sender.id {
            return self.refuse(sender, format!("a whisper claiming to come from {}", origin.id));
        }
        self.deliver(sender.clone(), sender.clone(), time_ms, packets, false);
    }

    /// Drop a message and tell the user why (the connection stays: an older node may relay).
    fn refuse(&self, sender: &NodeRef, why: String) {
        self.events.push(Event::Error { code: "ERR_BAD_PEER".into(), message: format!("peer {} sent {why}; dropped", sender.id) });
    }

    fn deliver(&self, sender: NodeRef, origin: NodeRef, time_ms: u64, packets: Vec<ByteBuf>, broadcast: bool) {
        let packets = packets.into_iter().map(ByteBuf::into_vec).collect();
        self.events.push(Event::Message(Incoming { sender, origin, time_ms, packets, broadcast }));
    }

    /// Tell a newly connected peer whom we know, so it can join the rest of the mesh.
    pub fn send_peer_list(&self, conn: ConnId) {
        let ads: Vec<PeerAd> = self
            .transport
            .connections()
            .into_iter()
            .filter(|(id, _)| *id != conn)
            .take(PEER_EXCHANGE_LIMIT)
            .map(|(_, info)| PeerAd { node: NodeRef { id: info.id, host: info.host, port: info.port }, member: info.member })
            .collect();
        self.transport.send_message(conn, &Message::Peers(ads));
    }

    /// Connect to advertised peers we lack while under the peer limit (a plain MeshSocket;
    /// ring members and clients only learn them, see `fill_table`).
    pub fn on_peer_list(&self, ads: &[PeerAd]) {
        if !self.fill_table {
            return;
        }
        let room = self.transport.room();
        let to_dial: Vec<NodeRef> =
            ads.iter().map(|ad| ad.node.clone()).filter(|n| n.id != self.me.id && !self.transport.is_known(n.id)).take(room).collect();
        for node in to_dial {
            let transport = self.transport.clone();
            tokio::spawn(async move {
                // Best effort: the peer may be gone or full; the mesh works without it.
                let _ = transport.connection_to(&node).await;
            });
        }
    }
}

fn to_bufs(packets: Vec<Vec<u8>>) -> Vec<ByteBuf> {
    packets.into_iter().map(ByteBuf::from).collect()
}
