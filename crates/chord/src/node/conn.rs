//! Connections: accepting and dialing, the handshake, and the reader and writer task of each
//! authenticated connection. Bytes become messages through the pure codec in `protocol`;
//! anything a peer sends that breaks the protocol closes that connection only, with a reason.

use super::events::{Event, PeerInfo};
use super::{chord, mesh, Conn, Inner, NodeError, NodeResult, HANDSHAKE_TIMEOUT, MAX_PENDING_HANDSHAKES, SEND_QUEUE_FRAMES};
use crate::protocol::{self, FrameError, Hello, Message, PROTOCOL_VERSION};
use crate::routing::NodeRef;
use bytes::{Bytes, BytesMut};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

/// What the writer task is asked to do.
pub(crate) enum Outgoing {
    Frame(Bytes),
    /// Say goodbye (optionally) and shut the socket.
    Close { reason: String, tell_peer: bool },
}

/// Frames written with one syscall at most, when the queue has several waiting.
const WRITE_BATCH: usize = 128;
/// Initial read buffer; it grows only as far as a frame that passed the size check needs.
const READ_BUFFER_BYTES: usize = 64 << 10;

pub(crate) async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, done: oneshot::Sender<()>) {
    let mut shutdown = inner.shutdown_signal();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => {
                    if inner.handshakes.load(Ordering::Relaxed) >= MAX_PENDING_HANDSHAKES as u64 {
                        drop(stream); // too many half-open connections: shed load
                        continue;
                    }
                    inner.handshakes.fetch_add(1, Ordering::Relaxed);
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, accept(&inner, stream)).await;
                        inner.handshakes.fetch_sub(1, Ordering::Relaxed);
                        let error = match result {
                            Ok(Ok(())) => return,
                            Ok(Err(error)) => error,
                            Err(_) => format!("no handshake within {HANDSHAKE_TIMEOUT:?}"),
                        };
                        inner.emit(Event::Error { code: "ERR_BAD_PEER".into(), message: format!("closed connection from {addr}: {error}") });
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: report, breathe, keep serving.
                    inner.emit(Event::Error { code: "ERR_ACCEPT".into(), message: format!("accept failed: {error}") });
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(listener);
    let _ = done.send(());
}

/// Inbound handshake: expect a `Hello`, answer `Welcome` or `Reject`.
async fn accept(inner: &Arc<Inner>, stream: TcpStream) -> Result<(), String> {
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    let mut buffer = BytesMut::with_capacity(4096);
    let hello = match read_one(&mut reader, &mut buffer, inner.config.max_frame_bytes).await? {
        Message::Hello(hello) => hello,
        other => return Err(format!("expected a Hello frame first, got {}", message_name(&other))),
    };
    if let Err((code, reason)) = check_hello(inner, &hello) {
        let reject = Message::Reject { code: code.into(), reason: reason.clone(), subnet: inner.config.subnet.clone() };
        let _ = writer.write_all(&protocol::encode(&reject)).await;
        let _ = writer.shutdown().await;
        return Err(format!("rejected {}:{}: {reason}", hello.node.host, hello.node.port));
    }
    if inner.lock().conns.len() >= inner.config.max_peers {
        let reject = Message::Reject { code: "busy".into(), reason: format!("peer limit of {} reached", inner.config.max_peers), subnet: inner.config.subnet.clone() };
        let _ = writer.write_all(&protocol::encode(&reject)).await;
        let _ = writer.shutdown().await;
        return Ok(());
    }
    writer.write_all(&protocol::encode(&Message::Welcome(inner.hello()))).await.map_err(|e| format!("write failed: {e}"))?;
    register(inner, hello, reader, writer, buffer, false).map(|_| ()).map_err(|e| e.to_string())
}

fn check_hello(inner: &Inner, hello: &Hello) -> Result<(), (&'static str, String)> {
    if hello.version != PROTOCOL_VERSION {
        return Err(("version-mismatch", format!("protocol version {} is not ours ({PROTOCOL_VERSION})", hello.version)));
    }
    if hello.protocol_id != inner.protocol_id {
        return Err((
            "protocol-mismatch",
            format!("protocol mismatch: our subnet {:?}/{}, theirs {:?}/{}", inner.config.subnet, inner.config.encryption, hello.subnet, hello.encryption),
        ));
    }
    if hello.node.id == inner.me.id {
        return Err(("self", "a node cannot connect to itself".into()));
    }
    Ok(())
}

/// Dial `host:port` and complete the handshake; returns the new connection.
pub(crate) async fn dial(inner: &Arc<Inner>, host: &str, port: u16) -> NodeResult<(u64, PeerInfo)> {
    let connect = TcpStream::connect((host, port));
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect)
        .await
        .map_err(|_| NodeError::Timeout(format!("connecting to {host}:{port}")))?
        .map_err(|e| NodeError::io(e, &format!("cannot connect to {host}:{port}")))?;
    let _ = stream.set_nodelay(true);
    let (mut reader, mut writer) = stream.into_split();
    writer.write_all(&protocol::encode(&Message::Hello(inner.hello()))).await.map_err(|e| NodeError::io(e, "handshake write failed"))?;
    let mut buffer = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(HANDSHAKE_TIMEOUT, read_one(&mut reader, &mut buffer, inner.config.max_frame_bytes))
        .await
        .map_err(|_| NodeError::Timeout(format!("handshake with {host}:{port}")))?
        .map_err(|e| NodeError::Protocol(format!("{host}:{port}: {e}")))?;
    let hello = match first {
        Message::Welcome(hello) => hello,
        Message::Reject { code, reason, subnet } if code == "protocol-mismatch" => {
            return Err(NodeError::ProtocolMismatch {
                ours: inner.config.subnet.clone(),
                our_encryption: inner.config.encryption.clone(),
                theirs: subnet,
                reason,
            })
        }
        Message::Reject { code, reason, .. } => return Err(NodeError::Rejected { code, reason }),
        other => return Err(NodeError::Protocol(format!("{host}:{port} answered the handshake with {}", message_name(&other)))),
    };
    if hello.protocol_id != inner.protocol_id {
        return Err(NodeError::ProtocolMismatch {
            ours: inner.config.subnet.clone(),
            our_encryption: inner.config.encryption.clone(),
            theirs: hello.subnet,
            reason: "the peer welcomed us with another protocol id".into(),
        });
    }
    register(inner, hello, reader, writer, buffer, true)
}

/// A connection to `node`, reusing an open one or dialing once for all concurrent callers.
pub(crate) async fn connection_to(inner: &Arc<Inner>, node: &NodeRef) -> NodeResult<u64> {
    let waiter = {
        let mut state = inner.lock();
        if state.closed {
            return Err(NodeError::Closed);
        }
        if let Some(conn_id) = state.by_node.get(&node.id) {
            return Ok(*conn_id);
        }
        match state.dialing.get_mut(&node.id) {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Some(rx)
            }
            None => {
                state.dialing.insert(node.id, Vec::new());
                None
            }
        }
    };
    if let Some(rx) = waiter {
        return rx.await.unwrap_or_else(|_| Err(NodeError::PeerGone(format!("{}:{}", node.host, node.port))));
    }
    make_room(inner);
    let result = match dial(inner, &node.host, node.port).await {
        Ok((conn_id, info)) if info.id == node.id => Ok(conn_id),
        Ok(_) => Err(NodeError::PeerGone(format!("{}:{} is now another node", node.host, node.port))),
        Err(error) => Err(error),
    };
    let waiters = inner.lock().dialing.remove(&node.id).unwrap_or_default();
    for waiter in waiters {
        let _ = waiter.send(result.clone());
    }
    result
}

/// At the peer limit, close one connection that routing does not need, so a dial can proceed.
fn make_room(inner: &Arc<Inner>) {
    let victim = {
        let state = inner.lock();
        if state.conns.len() < inner.config.max_peers {
            return;
        }
        let needed: Vec<_> = state.ring.as_ref().map(|r| r.known_nodes().into_iter().map(|n| n.id).collect()).unwrap_or_default();
        state.conns.iter().find(|(_, c)| !needed.contains(&c.peer.id)).map(|(id, _)| *id)
    };
    if let Some(conn_id) = victim {
        inner.drop_conn(conn_id, "making room for a routing connection", true);
    }
}

/// Read exactly one frame (handshake phase).
async fn read_one(reader: &mut OwnedReadHalf, buffer: &mut BytesMut, max_frame_bytes: usize) -> Result<Message, String> {
    loop {
        match protocol::decode(buffer, max_frame_bytes) {
            Ok(Some(message)) => return Ok(message),
            Ok(None) => {}
            Err(error) => return Err(error.to_string()),
        }
        let read = reader.read_buf(buffer).await.map_err(|e| format!("read failed: {e}"))?;
        if read == 0 {
            return Err("connection closed during the handshake".into());
        }
    }
}

fn register(inner: &Arc<Inner>, hello: Hello, reader: OwnedReadHalf, writer: OwnedWriteHalf, buffer: BytesMut, outbound: bool) -> NodeResult<(u64, PeerInfo)> {
    let conn_id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(SEND_QUEUE_FRAMES);
    tokio::spawn(write_loop(writer, rx));
    // The reader waits for its registration before touching state.
    let (go_tx, go_rx) = oneshot::channel::<()>();
    let reader_task = tokio::spawn(read_loop(inner.clone(), conn_id, hello.node.clone(), reader, buffer, go_rx));
    let conn = Conn { peer: hello.node.clone(), member: hello.member, outbound, tx, reader: reader_task.abort_handle() };
    let info = PeerInfo::of(&conn);
    {
        let mut state = inner.lock();
        if state.closed {
            drop(state);
            reader_task.abort();
            let _ = conn.tx.try_send(Outgoing::Close { reason: "socket closed".into(), tell_peer: true });
            return Err(NodeError::Closed);
        }
        state.conns.insert(conn_id, conn);
        state.by_node.insert(hello.node.id, conn_id);
        if hello.member {
            state.view.insert(hello.node.id, hello.node.clone());
        }
    }
    let _ = go_tx.send(());
    inner.metrics.record_connection_opened();
    inner.emit(Event::Connect(info.clone()));
    mesh::send_peer_list(inner, conn_id);
    Ok((conn_id, info))
}

async fn write_loop(mut writer: OwnedWriteHalf, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    let mut out = BytesMut::new();
    while rx.recv_many(&mut batch, WRITE_BATCH).await > 0 {
        let mut close = None;
        for item in batch.drain(..) {
            match item {
                Outgoing::Frame(frame) => out.extend_from_slice(&frame),
                Outgoing::Close { reason, tell_peer } => {
                    if tell_peer {
                        out.extend_from_slice(&protocol::encode(&Message::Goodbye { reason }));
                    }
                    close = Some(());
                    break;
                }
            }
        }
        if !out.is_empty() {
            if writer.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close.is_some() {
            let _ = writer.shutdown().await;
            return;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_loop(inner: Arc<Inner>, conn_id: u64, peer: NodeRef, mut reader: OwnedReadHalf, mut buffer: BytesMut, go: oneshot::Receiver<()>) {
    if go.await.is_err() {
        return;
    }
    buffer.reserve(READ_BUFFER_BYTES);
    let max = inner.config.max_frame_bytes;
    let reason = loop {
        loop {
            match protocol::decode(&mut buffer, max) {
                Ok(Some(message)) => {
                    if dispatch(&inner, conn_id, &peer, message).is_err() {
                        return; // dispatch closed the connection and said why
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    report_bad_peer(&inner, &peer, &error);
                    inner.drop_conn(conn_id, &format!("protocol error: {error}"), true);
                    return;
                }
            }
        }
        // No check that the connection still exists: dropping it aborts this task, which
        // takes effect at the read below.
        if buffer.capacity() - buffer.len() < READ_BUFFER_BYTES / 16 {
            // Reclaim the consumed front (or grow) once per 64 KiB, not a little at every read.
            buffer.reserve(READ_BUFFER_BYTES);
        }
        match reader.read_buf(&mut buffer).await {
            Ok(0) => break "peer closed the connection".to_string(),
            Ok(_) => {}
            Err(error) => break format!("read failed: {error}"),
        }
    };
    inner.drop_conn(conn_id, &reason, false);
}

fn report_bad_peer(inner: &Inner, peer: &NodeRef, error: &FrameError) {
    inner.emit(Event::Error { code: "ERR_BAD_PEER".into(), message: format!("closed connection to {}:{}: {error}", peer.host, peer.port) });
}

/// Handle one message from an authenticated peer. `Err` closes the connection with a reason.
fn dispatch(inner: &Arc<Inner>, conn_id: u64, peer: &NodeRef, message: Message) -> Result<(), String> {
    match message {
        Message::Request { id, body } => chord::handle_request(inner, conn_id, peer, id, body),
        Message::Response { id, body } => inner.complete(id, body),
        Message::Broadcast { id, origin, time_ms, packets } => mesh::on_broadcast(inner, conn_id, id, origin, time_ms, packets),
        Message::Whisper { origin, target, time_ms, packets } => mesh::on_whisper(inner, origin, target, time_ms, packets),
        Message::Peers(ads) => mesh::on_peer_list(inner, ads),
        Message::Event { id, key, added, limit } => chord::on_event(inner, id, key.into_vec(), added, limit),
        Message::Goodbye { reason } => {
            let reason = format!("peer said goodbye: {reason}");
            inner.drop_conn(conn_id, &reason, false);
            return Err(reason); // stop reading: frames after a goodbye are not processed
        }
        other @ (Message::Hello(_) | Message::Welcome(_) | Message::Reject { .. }) => {
            let reason = format!("unexpected {} after the handshake", message_name(&other));
            inner.emit(Event::Error { code: "ERR_BAD_PEER".into(), message: format!("closed connection to {}:{}: {reason}", peer.host, peer.port) });
            inner.drop_conn(conn_id, &reason, true);
            return Err(reason);
        }
    }
    Ok(())
}

fn message_name(message: &Message) -> &'static str {
    match message {
        Message::Hello(_) => "Hello",
        Message::Welcome(_) => "Welcome",
        Message::Reject { .. } => "Reject",
        Message::Peers(_) => "Peers",
        Message::Broadcast { .. } => "Broadcast",
        Message::Whisper { .. } => "Whisper",
        Message::Event { .. } => "Event",
        Message::Request { .. } => "Request",
        Message::Response { .. } => "Response",
        Message::Goodbye { .. } => "Goodbye",
    }
}
