//! chord-sim: a deterministic ring simulator for the chordnet engine.
//!
//! It drives the very routing and maintenance decisions the real node takes
//! (`chord::routing::Routing`, answering `chord::protocol::Request`s as `node/chord.rs` does)
//! over an in-memory network with a seeded RNG, so a run is a pure function of its seed.
//! The protocol is Chord (Stoica et al., "Chord: A Scalable Peer-to-peer Lookup Service for
//! Internet Applications", SIGCOMM 2001) with the corrected maintenance of Zave ("Reasoning
//! about identifier spaces: how to make Chord correct", IEEE TSE 2017).
//!
//! Modules: [`network`] (nodes and message passing), [`maintenance`] (stabilize,
//! check-predecessor, fix-fingers, join), [`lookup`] (iterative greedy lookups with the node's
//! retry policy), [`ring`] (oracle, ideal state, invariants), [`studies`] (hops, failures,
//! churn), [`stats`], [`report`] (Markdown) and [`svg`] (hand-written charts).

pub mod lookup;
pub mod maintenance;
pub mod network;
pub mod report;
pub mod ring;
pub mod stats;
pub mod studies;
pub mod svg;
