//! What a node reports about itself for observation (the web view, `/metrics`): its own
//! [`MemberInfo`], another node's asked over the wire (`Request::Info`), and the metrics.
//! Read-only: nothing here changes routing or data.

use crate::Node;
use chord::engine::{OpOutput, UserOp};
use chord::error::{Error, Result};
use chord::metrics::{MemberInfo, MetricsSnapshot};
use chord::protocol::{Request, Response};
use chord::routing::NodeRef;

impl Node {
    /// This node's routing state, holdings and counters.
    pub fn info(&self) -> MemberInfo {
        self.inner.driver.member_info()
    }

    /// `node`'s own [`MemberInfo`], asked over the wire (answered locally for this node).
    pub async fn member_info(&self, node: &NodeRef) -> Result<MemberInfo> {
        self.ensure_open()?;
        if node.id == self.id() {
            return Ok(self.info());
        }
        match self.inner.driver.run_op(UserOp::Ask(node.clone(), Request::Info)).await? {
            OpOutput::Answer(Response::Info(info)) => Ok(*info),
            OpOutput::Answer(Response::Error { code, message }) => Err(Error::Unavailable(format!("{code}: {message}"))),
            other => Err(Error::Protocol(format!("unexpected answer to Info: {other:?}"))),
        }
    }

    /// The counters and latency histograms.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.driver.metrics_snapshot()
    }
}
