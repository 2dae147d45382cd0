//! A dict workload on the simulated ring, and the data invariant checked against it: every
//! acknowledged write must end up on `r` live copies — the owner and its next `r − 1` members
//! — once repair has run.
//!
//! Writes are the engine's own `set` and `delete` operations from random live members over a
//! small key space, so keys are overwritten and deleted concurrently. The owner reports the
//! version it gave each acknowledged write; for each key the newest acknowledged version is
//! what every replica must hold (or a newer one: a write whose answer was lost may still have
//! been applied). Last writer by version wins, so during a partition an acknowledged write may
//! be superseded by a concurrent one with a higher version; it is never superseded by an older
//! one.

use crate::net::Sim;
use chord::engine::{OpId, OpOutput, UserOp};
use chord::version::Version;
use chord::Id;
use rand::Rng;
use std::collections::HashMap;

/// Share of writes that are deletes (of a random key of the key space).
const DELETE_SHARE: f64 = 0.2;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkloadCounts {
    pub issued: usize,
    pub acked: usize,
    /// Operations that failed (their owner stayed unreachable past the deadline).
    pub failed: usize,
    /// Deletes of keys that were absent (acknowledged, nothing written).
    pub noop_deletes: usize,
}

pub struct Workload {
    keys: usize,
    pending: HashMap<OpId, Vec<u8>>,
    /// Newest acknowledged version per key.
    acked: HashMap<Vec<u8>, Version>,
    pub counts: WorkloadCounts,
    serial: u64,
}

/// What the data check found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataCheck {
    /// Keys with an acknowledged write.
    pub keys: usize,
    /// Keys whose newest acknowledged version (or a newer one) is on fewer than `r` of the
    /// members that should hold it.
    pub under_replicated: usize,
    /// Keys whose newest acknowledged version is on none of them.
    pub lost: usize,
    /// Keys whose copies on their replica set disagree.
    pub diverged: usize,
}

impl DataCheck {
    pub fn holds(&self) -> bool {
        self.under_replicated == 0 && self.lost == 0 && self.diverged == 0
    }
}

impl Workload {
    pub fn new(keys: usize) -> Workload {
        Workload { keys, pending: HashMap::new(), acked: HashMap::new(), counts: WorkloadCounts::default(), serial: 0 }
    }

    fn key(&self, index: usize) -> Vec<u8> {
        format!("key-{index}").into_bytes()
    }

    /// Start `count` writes from random live members.
    pub fn issue(&mut self, sim: &mut Sim, count: usize) {
        for _ in 0..count {
            let Some(origin) = sim.random_live() else { return };
            let key = self.key(sim.rng().gen_range(0..self.keys));
            let op = if sim.rng().gen_bool(DELETE_SHARE) {
                UserOp::Delete(key.clone())
            } else {
                self.serial += 1;
                UserOp::Set(key.clone(), format!("value {} from {}", self.serial, origin.to_hex()).into_bytes())
            };
            if let Some(id) = sim.start_op(origin, op) {
                self.pending.insert(id, key);
                self.counts.issued += 1;
            }
        }
    }

    /// Record the writes that finished.
    pub fn collect(&mut self, sim: &mut Sim) {
        let finished: Vec<(OpId, Vec<u8>)> = self.pending.iter().map(|(op, key)| (*op, key.clone())).collect();
        for (op, key) in finished {
            let Some(result) = sim.take_result(op) else { continue };
            self.pending.remove(&op);
            match result {
                Ok(OpOutput::Written { version, .. }) if version == Version::default() => self.counts.noop_deletes += 1,
                Ok(OpOutput::Written { version, .. }) => {
                    self.counts.acked += 1;
                    let newest = self.acked.entry(key).or_default();
                    *newest = (*newest).max(version);
                }
                _ => self.counts.failed += 1,
            }
        }
    }

    /// Writes still waiting for their outcome.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Check every acknowledged key on the replica set the oracle gives it now.
    pub fn check(&self, sim: &Sim, replicas: usize) -> DataCheck {
        let snapshot = crate::ring::snapshot(sim);
        let mut check = DataCheck { keys: self.acked.len(), ..DataCheck::default() };
        if snapshot.is_empty() {
            return check;
        }
        for (key, &wanted) in &self.acked {
            let holders = snapshot.replica_set(Id::of_key(key), replicas);
            let versions: Vec<Option<Version>> = holders.iter().map(|&id| sim.engine(id).and_then(|e| e.store().version_of(key))).collect();
            let good = versions.iter().filter(|v| v.is_some_and(|v| v >= wanted)).count();
            check.under_replicated += usize::from(good < replicas.min(holders.len()));
            check.lost += usize::from(good == 0);
            check.diverged += usize::from(versions.windows(2).any(|pair| pair[0] != pair[1]));
        }
        check
    }
}
