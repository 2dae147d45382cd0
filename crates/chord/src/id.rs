//! Ring identifiers: 128-bit positions on the Chord circle with exact arithmetic modulo 2^128.
//!
//! Node ids hash the node's static public key (its Noise static key, so a peer proves its id in the
//! handshake); key positions hash the key bytes. Both use BLAKE3 truncated to 128 bits, so
//! positions are uniform and stable across platforms and languages (docs/PROTOCOL.md gives the
//! exact derivation).
//!
//! Interval helpers follow the Chord paper's notation: `(a, b]` and `(a, b)` walk clockwise from
//! `a` and wrap past zero; when `a == b` the interval is the whole ring (minus `a` for the open
//! one), which is what a ring of one node needs.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Number of bits in an identifier (the `m` of the Chord paper).
pub const ID_BITS: u32 = 128;

/// A point on the identifier circle.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Id(pub u128);

impl Id {
    /// Position of a key on the ring: the first 16 bytes of BLAKE3(key), big-endian.
    pub fn of_key(key: &[u8]) -> Id {
        Id::from_digest(blake3::hash(key).as_bytes())
    }

    /// A node's id: the first 16 bytes of BLAKE3("chordnet-node-id-v2\0" ‖ its static X25519
    /// public key). A node cannot pick its place on the ring, and the Noise handshake proves it.
    pub fn of_public_key(public_key: &[u8; 32]) -> Id {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"chordnet-node-id-v2\0");
        hasher.update(public_key);
        Id::from_digest(hasher.finalize().as_bytes())
    }

    fn from_digest(digest: &[u8; 32]) -> Id {
        let mut first = [0u8; 16];
        first.copy_from_slice(&digest[..16]);
        Id(u128::from_be_bytes(first))
    }

    /// `self + 2^i mod 2^128`: the start of finger `i`.
    pub fn finger_start(self, i: u32) -> Id {
        Id(self.0.wrapping_add(1u128 << i))
    }

    /// Clockwise distance from `self` to `other`.
    pub fn distance_to(self, other: Id) -> u128 {
        other.0.wrapping_sub(self.0)
    }

    /// `self ∈ (a, b]` walking clockwise; the whole ring when `a == b`.
    pub fn in_half_open(self, a: Id, b: Id) -> bool {
        if a == b {
            return true;
        }
        let span = a.distance_to(b);
        let offset = a.distance_to(self);
        offset != 0 && offset <= span
    }

    /// `self ∈ (a, b)` walking clockwise; the whole ring except `a` when `a == b`.
    pub fn in_open(self, a: Id, b: Id) -> bool {
        if a == b {
            return self != a;
        }
        let span = a.distance_to(b);
        let offset = a.distance_to(self);
        offset != 0 && offset < span
    }

    pub fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    pub fn from_slice(bytes: &[u8]) -> Option<Id> {
        let array: [u8; 16] = bytes.try_into().ok()?;
        Some(Id(u128::from_be_bytes(array)))
    }

    /// 32 lowercase hex digits, the form shown to users.
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.0)
    }

    pub fn from_hex(text: &str) -> Option<Id> {
        if text.len() != 32 {
            return None;
        }
        u128::from_str_radix(text, 16).ok().map(Id)
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", &self.to_hex()[..8])
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// On the wire an id is a 16-byte MessagePack `bin`, big-endian.
impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.to_bytes())
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Id, D::Error> {
        let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(deserializer)?;
        Id::from_slice(&bytes).ok_or_else(|| serde::de::Error::invalid_length(bytes.len(), &"16 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn half_open_interval_wraps_past_zero() {
        let a = Id(u128::MAX - 5);
        let b = Id(10);
        assert!(Id(0).in_half_open(a, b));
        assert!(Id(10).in_half_open(a, b));
        assert!(Id(u128::MAX).in_half_open(a, b));
        assert!(!a.in_half_open(a, b));
        assert!(!Id(11).in_half_open(a, b));
    }

    #[test]
    fn equal_bounds_mean_the_whole_ring() {
        let a = Id(42);
        assert!(Id(42).in_half_open(a, a));
        assert!(Id(7).in_half_open(a, a));
        assert!(!Id(42).in_open(a, a));
        assert!(Id(43).in_open(a, a));
    }

    #[test]
    fn open_interval_excludes_both_ends() {
        assert!(!Id(5).in_open(Id(5), Id(9)));
        assert!(!Id(9).in_open(Id(5), Id(9)));
        assert!(Id(6).in_open(Id(5), Id(9)));
    }

    #[test]
    fn finger_start_is_modular() {
        assert_eq!(Id(u128::MAX).finger_start(0), Id(0));
        assert_eq!(Id(1).finger_start(127), Id(1 + (1u128 << 127)));
    }

    #[test]
    fn hex_round_trips() {
        let id = Id::of_key(b"hello");
        assert_eq!(Id::from_hex(&id.to_hex()), Some(id));
        assert_eq!(Id::from_hex("zz"), None);
    }

    #[test]
    fn node_ids_of_keys_are_stable() {
        // A vector for other implementations (docs/PROTOCOL.md): the all-zero public key.
        assert_eq!(Id::of_public_key(&[0; 32]).to_hex(), "5283dfe513146e4d85f01a3909ae4f2d");
        assert_ne!(Id::of_public_key(&[0; 32]), Id::of_public_key(&[1; 32]));
    }

    #[test]
    fn key_hash_is_stable() {
        // BLAKE3("") starts with af1349b9f5f9a1a6a0404dea36dcc949: a vector other languages can check.
        assert_eq!(Id::of_key(b"").to_hex(), "af1349b9f5f9a1a6a0404dea36dcc949");
    }

    proptest! {
        #[test]
        fn every_point_is_in_exactly_one_of_two_adjacent_arcs(x: u128, a: u128, b: u128) {
            prop_assume!(a != b);
            let (x, a, b) = (Id(x), Id(a), Id(b));
            prop_assert!(x.in_half_open(a, b) ^ x.in_half_open(b, a));
        }

        #[test]
        fn open_is_half_open_minus_end(x: u128, a: u128, b: u128) {
            let (x, a, b) = (Id(x), Id(a), Id(b));
            prop_assert_eq!(x.in_open(a, b), x.in_half_open(a, b) && x != b);
        }
    }
}
