//! The distributed dict as the user calls it: each call becomes one engine operation
//! ([`UserOp`]) and resolves with its outcome. Limits are checked by the engine; nothing here
//! decides anything.

use crate::Node;
use chord::engine::{LookupInfo, OpOutput, ScanPage, Stats, UserOp};
use chord::error::{Error, Result};

impl Node {
    async fn run(&self, op: UserOp) -> Result<OpOutput> {
        self.ensure_open()?;
        self.inner.driver.run_op(op).await
    }

    /// Start an operation without awaiting it: `done` runs once with its outcome (the binding
    /// batches many operations this way).
    pub fn submit(&self, op: UserOp, done: impl FnOnce(Result<OpOutput>) + Send + 'static) {
        if self.is_closed() {
            return done(Err(Error::Closed));
        }
        self.inner.driver.start_op(op, Box::new(done));
    }

    /// The value of `key`, or `None` when absent.
    pub async fn get(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        value(self.run(UserOp::Get(key)).await?)
    }

    /// `get` answered at once when it can be — from the read cache under a lease, or from our
    /// own store when we own the key — with the same guarantee; `None`: call `get`.
    pub fn get_now(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        if self.is_closed() {
            return None;
        }
        self.inner.driver.get_now(key)
    }

    /// Store `value` under `key`; resolves once every replica holds it.
    pub async fn set(&self, key: Vec<u8>, value: Vec<u8>) -> Result<()> {
        self.run(UserOp::Set(key, value)).await.map(|_| ())
    }

    /// Delete `key`; returns the value it had, `None` if it was absent (nothing is written then).
    pub async fn delete(&self, key: Vec<u8>) -> Result<Option<Vec<u8>>> {
        value(self.run(UserOp::Delete(key)).await?)
    }

    /// Who owns `key`, found by a greedy finger-table lookup (no cache), and in how many hops.
    pub async fn lookup(&self, key: Vec<u8>) -> Result<LookupInfo> {
        match self.run(UserOp::Lookup(key)).await? {
            OpOutput::Lookup(info) => Ok(info),
            other => Err(Error::Protocol(format!("lookup ended with {other:?}"))),
        }
    }

    /// One page of a walk over the whole ring's live keys, node by node along successors.
    pub async fn scan(&self, cursor: Option<Vec<u8>>, with_values: bool, limit: u32) -> Result<ScanPage> {
        match self.run(UserOp::Scan { cursor, with_values, limit }).await? {
            OpOutput::Page(page) => Ok(page),
            other => Err(Error::Protocol(format!("scan ended with {other:?}"))),
        }
    }

    /// Become a ring member (through a connected member if there is one).
    pub async fn join(&self) -> Result<()> {
        self.run(UserOp::Join).await.map(|_| ())
    }

    /// Leave the ring, handing data over, and stay connected as a client.
    pub async fn unjoin(&self) -> Result<()> {
        self.inner.driver.inspect(|engine| engine.chord_config().map(|_| ()))?;
        self.run(UserOp::Leave).await.map(|_| ())
    }

    /// Hear about changes to the keys starting with one of `prefixes` (`[b""]`: every key; none:
    /// stop): the subscription reaches every member, and their owners send this node an event
    /// for each matching write (see `chord::engine::watch`). Needs `events` on.
    pub fn watch(&self, prefixes: Vec<Vec<u8>>) -> Result<()> {
        self.inner.driver.inspect(|engine| engine.chord_config().map(|_| ()))?;
        if prefixes.len() > chord::config::MAX_WATCHED_PREFIXES || prefixes.iter().any(|p| p.len() > chord::config::MAX_WATCH_PREFIX_BYTES) {
            return Err(Error::InvalidArgument(format!(
                "at most {} prefixes of at most {} bytes each",
                chord::config::MAX_WATCHED_PREFIXES,
                chord::config::MAX_WATCH_PREFIX_BYTES
            )));
        }
        self.inner.driver.watch(prefixes);
        Ok(())
    }

    /// The live value this node itself holds for `key` (as owner or replica), without routing:
    /// for diagnostics and tests of replica convergence.
    pub fn local_get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.inner.driver.inspect(|engine| engine.local_get(key))
    }

    pub fn stats(&self) -> Stats {
        let mut stats = self.inner.driver.inspect(|engine| engine.stats());
        stats.connections = self.inner.transport.len();
        stats.oversized_frames = self.inner.driver.metrics.oversized_frames();
        stats
    }
}

/// A get's value, or the value a delete removed.
fn value(output: OpOutput) -> Result<Option<Vec<u8>>> {
    match output {
        OpOutput::Value(value) | OpOutput::Written { previous: value, .. } => Ok(value),
        other => Err(Error::Protocol(format!("a read ended with {other:?}"))),
    }
}
