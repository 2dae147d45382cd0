//! Time as the engine sees it: handed in with every input, never read from a clock.

/// Monotonic milliseconds, from an origin the driver chooses (its start, or simulated zero).
pub type Millis = u64;

/// The time of an input: monotonic time for deadlines, wall time for versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    pub mono: Millis,
    /// Milliseconds since the Unix epoch (this node's clock, which may be skewed).
    pub wall: u64,
}
