//! chord-sim: a deterministic simulator of the chordnet engine at sizes and under faults no
//! test machine can host.
//!
//! Every simulated node runs the real sans-I/O engine (`chord::engine::Engine`): the same
//! lookup, maintenance, replication and membership machines the tokio node drives. This crate
//! holds only what a network and an experimenter add — message delivery with delays, loss,
//! partitions, crashes and restarts, skewed clocks ([`net`]); the oracle and the invariants
//! checked against it ([`ring`], [`workload`]); the studies ([`studies`]: hops, failures,
//! churn, faults); and their reports ([`stats`], [`report`], [`svg`]). It restates no routing
//! or maintenance rule: a run is the engine's behaviour, and a pure function of its seed.
//!
//! The protocol is Chord (Stoica et al., "Chord: A Scalable Peer-to-peer Lookup Service for
//! Internet Applications", SIGCOMM 2001) with the corrected maintenance of Zave ("Reasoning
//! about identifier spaces: how to make Chord correct", IEEE TSE 2017).

pub mod net;
pub mod report;
pub mod ring;
pub mod stats;
pub mod studies;
pub mod svg;
pub mod workload;
