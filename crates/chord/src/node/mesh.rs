//! The mesh layer: peer exchange, flooding broadcast with de-duplication, and whispers.
//!
//! A broadcast floods every connection except the one it came from; each node delivers and
//! forwards a broadcast id once (a bounded `SeenSet`), so a connected network sees it exactly
//! once per node however its links are arranged. A whisper goes over a direct connection,
//! dialing the target first when its address is known.

use super::events::{Event, Incoming};
use super::{conn, now_millis, Inner, NodeError, NodeResult, PEER_EXCHANGE_LIMIT};
use crate::id::Id;
use crate::protocol::{self, Message, PeerAd};
use crate::routing::NodeRef;
use serde_bytes::ByteBuf;
use std::sync::Arc;

/// Who a whisper is for: a node id and, if known, where it listens.
#[derive(Clone, Debug)]
pub struct Target {
    pub id: Id,
    pub addr: Option<(String, u16)>,
}

pub(crate) fn broadcast(inner: &Arc<Inner>, packets: Vec<Vec<u8>>) -> NodeResult<()> {
    let id = Id(rand::random());
    inner.lock().seen.first_time(id);
    let message = Message::Broadcast { id, origin: inner.me.clone(), time_ms: now_millis(), packets: to_bufs(packets) };
    let frame = protocol::encode(&message);
    check_size(inner, frame.len())?;
    let conn_ids: Vec<u64> = inner.lock().conns.keys().copied().collect();
    for conn_id in conn_ids {
        inner.send_frame(conn_id, frame.clone());
    }
    Ok(())
}

pub(crate) async fn whisper(inner: &Arc<Inner>, packets: Vec<Vec<u8>>, target: Target) -> NodeResult<()> {
    let message = Message::Whisper { origin: inner.me.clone(), target: target.id, time_ms: now_millis(), packets: to_bufs(packets) };
    let frame = protocol::encode(&message);
    check_size(inner, frame.len())?;
    let known = inner.lock().by_node.get(&target.id).copied();
    let conn_id = match (known, target.addr) {
        (Some(conn_id), _) => conn_id,
        (None, Some((host, port))) => conn::connection_to(inner, &NodeRef { id: target.id, host, port }).await?,
        (None, None) => return Err(NodeError::Unavailable(format!("no connection to peer {} and no address to reach it", target.id))),
    };
    if inner.send_frame(conn_id, frame) {
        Ok(())
    } else {
        Err(NodeError::PeerGone(target.id.to_hex()))
    }
}

fn check_size(inner: &Inner, frame_len: usize) -> NodeResult<()> {
    let body = frame_len - protocol::LENGTH_PREFIX_BYTES;
    if body > inner.config.max_frame_bytes {
        return Err(NodeError::InvalidArgument(format!(
            "message is {body} bytes framed; the frame limit (maxFrameBytes) is {}",
            inner.config.max_frame_bytes
        )));
    }
    Ok(())
}

pub(crate) fn on_broadcast(inner: &Arc<Inner>, from_conn: u64, id: Id, origin: NodeRef, time_ms: u64, packets: Vec<ByteBuf>) {
    let others: Vec<u64> = {
        let mut state = inner.lock();
        if !state.seen.first_time(id) {
            return;
        }
        state.conns.keys().copied().filter(|c| *c != from_conn).collect()
    };
    if !others.is_empty() {
        let frame = protocol::encode(&Message::Broadcast { id, origin: origin.clone(), time_ms, packets: packets.clone() });
        for conn_id in others {
            inner.send_frame(conn_id, frame.clone());
        }
    }
    if origin.id != inner.me.id {
        deliver(inner, origin, time_ms, packets, true);
    }
}

pub(crate) fn on_whisper(inner: &Arc<Inner>, origin: NodeRef, target: Id, time_ms: u64, packets: Vec<ByteBuf>) {
    if target == inner.me.id {
        deliver(inner, origin, time_ms, packets, false);
        return;
    }
    // Not for us: relay once if we are directly connected to the target, else drop.
    let relay = inner.lock().by_node.get(&target).copied();
    if let Some(conn_id) = relay {
        inner.send_message(conn_id, &Message::Whisper { origin, target, time_ms, packets });
    }
}

fn deliver(inner: &Inner, sender: NodeRef, time_ms: u64, packets: Vec<ByteBuf>, broadcast: bool) {
    let packets = packets.into_iter().map(ByteBuf::into_vec).collect();
    inner.emit(Event::Message(Incoming { sender, time_ms, packets, broadcast }));
}

/// Tell a newly connected peer whom we know, so it can join the rest of the mesh.
pub(crate) fn send_peer_list(inner: &Arc<Inner>, conn_id: u64) {
    let ads: Vec<PeerAd> = {
        let state = inner.lock();
        state
            .conns
            .iter()
            .filter(|(id, _)| **id != conn_id)
            .take(PEER_EXCHANGE_LIMIT)
            .map(|(_, c)| PeerAd { node: c.peer.clone(), member: c.member })
            .collect()
    };
    inner.send_message(conn_id, &Message::Peers(ads));
}

/// Learn of peers; connect to those we lack while under the peer limit.
pub(crate) fn on_peer_list(inner: &Arc<Inner>, ads: Vec<PeerAd>) {
    let to_dial: Vec<NodeRef> = {
        let mut state = inner.lock();
        for ad in ads.iter().filter(|ad| ad.member && ad.node.id != inner.me.id) {
            state.view.insert(ad.node.id, ad.node.clone());
        }
        if !inner.config.peer_exchange {
            return;
        }
        let room = inner.config.max_peers.saturating_sub(state.conns.len() + state.dialing.len());
        ads.into_iter()
            .map(|ad| ad.node)
            .filter(|n| n.id != inner.me.id && !state.by_node.contains_key(&n.id) && !state.dialing.contains_key(&n.id))
            .take(room)
            .collect()
    };
    for node in to_dial {
        let inner = inner.clone();
        tokio::spawn(async move {
            // Best effort: the peer may be gone or full; the mesh works without it.
            let _ = conn::connection_to(&inner, &node).await;
        });
    }
}

fn to_bufs(packets: Vec<Vec<u8>>) -> Vec<ByteBuf> {
    packets.into_iter().map(ByteBuf::from).collect()
}
