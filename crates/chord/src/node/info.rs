//! What a node reports about itself for observation (the web view, `/metrics`): the local
//! [`MemberInfo`] snapshot, the same snapshot asked of another node over the wire
//! (`Request::Info`), and the raw counters. Read-only: nothing here changes routing or data.

use super::{Inner, Node, NodeError, NodeResult, State};
use crate::metrics::{MemberInfo, MetricsSnapshot, MAX_KNOWN_IN_INFO};
use crate::protocol::{Request, Response};
use crate::routing::NodeRef;

impl Node {
    /// This node's routing state, holdings and counters.
    pub fn info(&self) -> MemberInfo {
        let inner = self.inner();
        member_info(inner, &inner.lock())
    }

    /// `node`'s own [`MemberInfo`], asked over the wire (answered locally for this node).
    pub async fn member_info(&self, node: &NodeRef) -> NodeResult<MemberInfo> {
        let inner = self.inner();
        inner.ensure_open()?;
        if node.id == inner.me.id {
            return Ok(self.info());
        }
        match inner.request(node, Request::Info).await? {
            Response::Info(info) => Ok(*info),
            Response::Error { code, message } => Err(NodeError::Unavailable(format!("{code}: {message}"))),
            other => Err(NodeError::Protocol(format!("unexpected answer to Info: {other:?}"))),
        }
    }

    /// The counters and latency histograms alone (no lock taken).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner().metrics.snapshot()
    }
}

/// The snapshot a node gives of itself; the answer to `Request::Info`.
pub(crate) fn member_info(inner: &Inner, state: &State) -> MemberInfo {
    let mut info = MemberInfo {
        node: inner.me.clone(),
        member: state.ring.is_some(),
        predecessor: None,
        successors: Vec::new(),
        fingers: Vec::new(),
        known: state.view.values().filter(|n| n.id != inner.me.id).take(MAX_KNOWN_IN_INFO).cloned().collect(),
        keys: state.store.live_len() as u64,
        primary_keys: 0,
        bytes: state.store.bytes() as u64,
        connections: state.conns.len() as u32,
        ring_size_estimate: 1.0,
        metrics: inner.metrics.snapshot(),
    };
    if let Some(ring) = &state.ring {
        info.predecessor = ring.predecessor().cloned();
        info.successors = ring.successors().to_vec();
        info.fingers = ring.distinct_fingers();
        info.ring_size_estimate = ring.estimated_ring_size();
        info.primary_keys = ring.primary_arc().map_or(0, |(from, to)| state.store.count_live_in(from, to)) as u64;
    }
    info
}
