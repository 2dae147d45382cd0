//! The chordnet engine: a Chord distributed hash table with replication, sans I/O.
//!
//! Pure data and decisions: [`addr`] (which addresses from the wire a node uses), [`id`] (ring arithmetic), [`routing`] (predecessor, successor list,
//! fingers), [`store`] (the versioned index of what a node holds), [`version`] (hybrid logical
//! clocks), [`protocol`] (messages and the frame codec), [`metrics`], [`config`] (the one home of
//! every limit) and [`engine`], every protocol step as a state machine fed inputs with the time
//! and returning actions. [`testing`] holds what simulators and tests build and check rings
//! with. This crate has no tokio, disk or crypto-handshake dependency, so the
//! compiler keeps it pure: the tokio node (`chord-node`) and the simulator (`chord-sim`) drive
//! the same machines.

pub mod addr;
pub mod config;
pub mod engine;
pub mod error;
pub mod id;
pub mod metrics;
pub mod protocol;
pub mod routing;
pub mod seen;
pub mod store;
pub mod testing;
pub mod version;

pub use id::Id;
pub use routing::NodeRef;
