//! chordnet engine: a Chord distributed hash table with replication, in Rust.
//!
//! Pure modules ([`id`], [`routing`], [`store`], [`version`], [`protocol`], [`noise`], [`metrics`])
//! hold the state and the decisions and are tested alone; [`node`] is the only module that does I/O (tokio); [`sim`]
//! drives [`routing`] over an in-memory network. Nothing here knows about N-API.

pub mod config;
pub mod engine;
pub mod error;
pub mod id;
pub mod metrics;
pub mod noise;
pub mod protocol;
pub mod seen;
pub mod routing;
pub mod store;
pub mod version;
pub mod node;

pub use id::Id;
pub use routing::NodeRef;
