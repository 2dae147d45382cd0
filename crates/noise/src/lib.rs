//! The secure channel under the frame codec: a Noise handshake (Perrin, "The Noise Protocol
//! Framework", rev. 34) and the record layer that encrypts frames after it. Pure: bytes in,
//! bytes out, no socket (the tokio transport drives it; the fuzz targets feed it directly).
//!
//! - Pattern `Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s` through the `snow` crate. XX proves both
//!   static keys; `psk0` mixes the network key in before the first message, so a node without
//!   the key fails at the responder's very first read — before the responder has said anything
//!   about itself (with `psk3`, as in libp2p's private networks, the responder would already
//!   have sent its static key).
//! - Every Noise message on the wire is a 2-byte big-endian length and the message (≤ 65,535
//!   bytes, the Noise limit). After the handshake each message is a *record*: the encryption of
//!   a run of whole or partial protocol frames (`protocol::encode`), so the frame codec above
//!   is the same in both encryptions, and a writer seals a whole batch of frames at once.
//! - A node's ring id is bound to its static key ([`Id::of_public_key`]); the transport refuses
//!   a peer whose claimed id is not the id of the key it proved.
//! - A network key is derived from what the user gives (a passphrase or bytes) *and the
//!   subnet*, so one passphrase gives every deployment its own key, and a dictionary of
//!   passphrases precomputed for one subnet is worth nothing against another.
//!
//! docs/PROTOCOL.md §3 is the normative text.

use chord::config::MIN_NETWORK_KEY_BYTES;
use chord::error::Error;
use chord::id::Id;
use chord::protocol::PROTOCOL_VERSION;
use bytes::{Buf, BytesMut};
use std::sync::Arc;

mod dh;

/// The Noise protocol name (pattern, DH, cipher, hash).
pub const NOISE_PARAMS: &str = "Noise_XXpsk0_25519_ChaChaPoly_BLAKE2s";
/// Bytes of the length prefix of every Noise message on the wire.
pub const NOISE_PREFIX_BYTES: usize = 2;
/// The Noise spec's largest message.
pub const MAX_NOISE_MESSAGE: usize = 65_535;
/// ChaCha20-Poly1305 authentication tag.
pub const TAG_BYTES: usize = 16;
/// Plaintext bytes one record carries at most.
pub const MAX_RECORD_PAYLOAD: usize = MAX_NOISE_MESSAGE - TAG_BYTES;
/// Largest handshake message accepted. Ours carry no payload (48, 96 and 64 bytes); anything
/// much larger is not a chordnet handshake, and is refused before it is buffered.
pub const MAX_HANDSHAKE_MESSAGE: usize = 1024;
/// Length of the responder's second message (`e`, encrypted `s`, empty encrypted payload).
const SECOND_MESSAGE_BYTES: usize = 32 + (32 + TAG_BYTES) + TAG_BYTES;
/// Argon2id cost for passphrases (OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane).
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
/// The start of a passphrase's Argon2id salt; the subnet follows it. Every node of a subnet
/// must derive the same key from the same passphrase, so the salt is what a deployment shares:
/// its subnet. "v3": version 2 salted every deployment alike (the label alone).
const ARGON2_SALT_LABEL: &[u8] = b"chordnet network key v3\0";
/// The BLAKE3 context of a network key given as bytes ("3": the derivation's version, as above).
const BYTES_KEY_CONTEXT: &str = "chordnet 3 network key";

/// The prologue both sides hash into the handshake: a different protocol version cannot
/// complete it.
pub fn prologue() -> Vec<u8> {
    let mut prologue = b"chordnet\0".to_vec();
    prologue.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    prologue
}

/// A 32-byte pre-shared key mixed into every handshake (`psk0`).
pub type NetworkKey = [u8; 32];

/// The network key of a passphrase on `subnet`: Argon2id (19 MiB, 2 passes, 1 lane, salt
/// `"chordnet network key v3\0"` followed by the subnet's UTF-8 bytes), 32 bytes. Slow on
/// purpose (tens of ms): a weak passphrase costs an attacker that much per guess, and per
/// subnet attacked.
pub fn network_key_from_passphrase(passphrase: &str, subnet: &str) -> chord::error::Result<NetworkKey> {
    if passphrase.is_empty() {
        return Err(Error::InvalidArgument("networkKey must not be empty".into()));
    }
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(32)).expect("valid Argon2 parameters");
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = [ARGON2_SALT_LABEL, subnet.as_bytes()].concat();
    let mut key = [0u8; 32];
    argon.hash_password_into(passphrase.as_bytes(), &salt, &mut key).map_err(|e| Error::InvalidArgument(format!("cannot derive a network key on this subnet: {e}")))?;
    Ok(key)
}

/// The network key of random bytes (at least [`MIN_NETWORK_KEY_BYTES`]) on `subnet`:
/// `BLAKE3-derive_key("chordnet 3 network key", u32 BE length of the subnet ‖ subnet ‖ bytes)`.
pub fn network_key_from_bytes(bytes: &[u8], subnet: &str) -> chord::error::Result<NetworkKey> {
    if bytes.len() < MIN_NETWORK_KEY_BYTES {
        return Err(Error::InvalidArgument(format!(
            "a networkKey of bytes must have at least {MIN_NETWORK_KEY_BYTES} bytes (got {}); use a string passphrase instead",
            bytes.len()
        )));
    }
    let subnet_len = u32::try_from(subnet.len()).map_err(|_| Error::InvalidArgument("the subnet is too long".into()))?;
    let mut hasher = blake3::Hasher::new_derive_key(BYTES_KEY_CONTEXT);
    hasher.update(&subnet_len.to_be_bytes()).update(subnet.as_bytes()).update(bytes);
    Ok(*hasher.finalize().as_bytes())
}

/// The key of a network that set none: public, so anyone who speaks the protocol can join
/// (connections are still encrypted and ids still bound to keys).
pub fn open_network_key() -> NetworkKey {
    blake3::derive_key("chordnet 2 open network", b"")
}

/// Why a handshake or a record failed; each closes that connection.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NoiseError {
    /// A handshake message failed authentication: the two sides hold different network keys
    /// (or the bytes are not a chordnet Noise handshake).
    #[error("the Noise handshake failed authentication: the network key does not match")]
    KeyMismatch,
    #[error("Noise handshake message of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge { size: usize, limit: usize },
    #[error("empty Noise message")]
    Empty,
    #[error("the Noise handshake failed: {0}")]
    Handshake(String),
    /// A record failed authentication: it was tampered with or corrupted on the way.
    #[error("a Noise record failed authentication (tampered or corrupted ciphertext)")]
    RecordAuth,
}

/// Is a whole Noise message at the front of `buffer`? `Ok(Some(len))` gives its length (the
/// prefix excluded); `Ok(None)` asks for more. Refuses from the prefix alone.
pub fn check_message(buffer: &[u8], limit: usize) -> Result<Option<usize>, NoiseError> {
    if buffer.len() < NOISE_PREFIX_BYTES {
        return Ok(None);
    }
    let size = u16::from_be_bytes([buffer[0], buffer[1]]) as usize;
    if size == 0 {
        return Err(NoiseError::Empty);
    }
    if size > limit {
        return Err(NoiseError::TooLarge { size, limit });
    }
    Ok((buffer.len() >= NOISE_PREFIX_BYTES + size).then_some(size))
}

/// One side of a handshake in progress.
pub struct Handshake {
    state: snow::HandshakeState,
    scratch: Vec<u8>,
}

impl Handshake {
    pub fn initiator(keys: &KeyPair, network_key: &NetworkKey) -> Handshake {
        Handshake::build(keys, network_key, true)
    }

    pub fn responder(keys: &KeyPair, network_key: &NetworkKey) -> Handshake {
        Handshake::build(keys, network_key, false)
    }

    fn build(keys: &KeyPair, network_key: &NetworkKey, initiator: bool) -> Handshake {
        let prologue = prologue();
        let builder = snow::Builder::with_resolver(NOISE_PARAMS.parse().expect("valid Noise parameters"), Box::new(dh::Resolver::new(keys)))
            .local_private_key(&keys.secret)
            .and_then(|b| b.psk(0, network_key))
            .and_then(|b| b.prologue(&prologue))
            .expect("fixed Noise settings are valid");
        let state = if initiator { builder.build_initiator() } else { builder.build_responder() }.expect("fixed Noise settings are valid");
        Handshake { state, scratch: vec![0u8; MAX_HANDSHAKE_MESSAGE] }
    }

    /// Append our next handshake message, with its length prefix, to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>) -> Result<(), NoiseError> {
        let len = self.state.write_message(&[], &mut self.scratch).map_err(|e| NoiseError::Handshake(e.to_string()))?;
        out.extend_from_slice(&(len as u16).to_be_bytes());
        out.extend_from_slice(&self.scratch[..len]);
        Ok(())
    }

    /// Read the peer's next handshake message (without its prefix). A message that does not
    /// authenticate means the network keys differ.
    pub fn read(&mut self, message: &[u8]) -> Result<(), NoiseError> {
        if message.len() > MAX_HANDSHAKE_MESSAGE {
            return Err(NoiseError::TooLarge { size: message.len(), limit: MAX_HANDSHAKE_MESSAGE });
        }
        match self.state.read_message(message, &mut self.scratch) {
            Ok(_) => Ok(()),
            Err(snow::Error::Decrypt) => Err(NoiseError::KeyMismatch),
            Err(error) => Err(NoiseError::Handshake(error.to_string())),
        }
    }

    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// The session and the static key the peer proved.
    pub fn finish(self) -> Result<(Sealer, Opener, [u8; 32]), NoiseError> {
        let remote: [u8; 32] = self
            .state
            .get_remote_static()
            .and_then(|key| key.try_into().ok())
            .ok_or_else(|| NoiseError::Handshake("the peer proved no static key".into()))?;
        let transport = Arc::new(self.state.into_stateless_transport_mode().map_err(|e| NoiseError::Handshake(e.to_string()))?);
        Ok((Sealer { transport: transport.clone(), nonce: 0 }, Opener { transport, nonce: 0 }, remote))
    }
}

/// What a responder whose first read failed sends instead of its second message: random bytes
/// of the same length, so the initiator learns only that the keys differ (its read fails) and
/// an outsider cannot tell a refusal from an answer.
pub fn decoy_second_message() -> Vec<u8> {
    let mut out = (SECOND_MESSAGE_BYTES as u16).to_be_bytes().to_vec();
    out.extend((0..SECOND_MESSAGE_BYTES).map(|_| rand::random::<u8>()));
    out
}

/// The sending half of a session: seals plaintext into records.
pub struct Sealer {
    transport: Arc<snow::StatelessTransportState>,
    nonce: u64,
}

impl Sealer {
    /// Encrypt `plaintext` as records (cut at [`MAX_RECORD_PAYLOAD`]) appended to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut BytesMut) {
        for chunk in plaintext.chunks(MAX_RECORD_PAYLOAD) {
            let len = chunk.len() + TAG_BYTES;
            out.extend_from_slice(&(len as u16).to_be_bytes());
            let at = out.len();
            out.resize(at + len, 0);
            let written = self.transport.write_message(self.nonce, chunk, &mut out[at..]).expect("a chunk fits one record");
            debug_assert_eq!(written, len);
            self.nonce += 1;
        }
    }
}

/// The receiving half of a session: opens records into plaintext.
pub struct Opener {
    transport: Arc<snow::StatelessTransportState>,
    nonce: u64,
}

impl Opener {
    /// Decrypt every whole record at the front of `records`, appending the plaintext to
    /// `plain`; a partial record stays for the next call. A record that fails authentication
    /// is an error (and the session is over).
    pub fn open(&mut self, records: &mut BytesMut, plain: &mut BytesMut) -> Result<(), NoiseError> {
        while let Some(len) = check_message(records, MAX_NOISE_MESSAGE)? {
            if len < TAG_BYTES {
                return Err(NoiseError::RecordAuth);
            }
            let at = plain.len();
            plain.resize(at + len - TAG_BYTES, 0);
            let opened = self.transport.read_message(self.nonce, &records[NOISE_PREFIX_BYTES..NOISE_PREFIX_BYTES + len], &mut plain[at..]);
            if opened.is_err() {
                plain.truncate(at);
                return Err(NoiseError::RecordAuth);
            }
            self.nonce += 1;
            records.advance(NOISE_PREFIX_BYTES + len);
        }
        Ok(())
    }
}

/// A node's static X25519 key pair (the Noise static key, see `crate::noise`); its ring id is
/// [`Id::of_public_key`] of `public`.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    pub public: [u8; 32],
    pub secret: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret key.
        write!(f, "KeyPair {{ public: {:02x?}, secret: <hidden> }}", &self.public[..4])
    }
}

fn dh() -> Box<dyn snow::types::Dh> {
    use snow::resolvers::CryptoResolver;
    snow::resolvers::DefaultResolver.resolve_dh(&snow::params::DHChoice::Curve25519).expect("the default resolver has X25519")
}

impl KeyPair {
    /// A fresh key pair from the operating system's random source.
    pub fn generate() -> KeyPair {
        KeyPair::from_secret(rand::random())
    }

    /// The key pair of a secret key (any 32 bytes; X25519 clamps them).
    pub fn from_secret(secret: [u8; 32]) -> KeyPair {
        let mut dh = dh();
        dh.set(&secret);
        let public: [u8; 32] = dh.pubkey().try_into().expect("32-byte X25519 key");
        KeyPair { public, secret }
    }

    /// The ring id this key pair gives its node.
    pub fn id(&self) -> Id {
        Id::of_public_key(&self.public)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chord::id::Id;

    type Side = (Sealer, Opener, [u8; 32]);

    fn run(initiator_key: &NetworkKey, responder_key: &NetworkKey) -> Result<(Side, Side, KeyPair, KeyPair), NoiseError> {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let mut i = Handshake::initiator(&a, initiator_key);
        let mut r = Handshake::responder(&b, responder_key);
        let mut wire = Vec::new();
        i.write(&mut wire)?;
        r.read(&wire[2..])?;
        wire.clear();
        r.write(&mut wire)?;
        i.read(&wire[2..])?;
        wire.clear();
        i.write(&mut wire)?;
        r.read(&wire[2..])?;
        assert!(i.is_finished() && r.is_finished());
        Ok((i.finish()?, r.finish()?, a, b))
    }

    #[test]
    fn a_handshake_proves_both_static_keys() {
        let key = open_network_key();
        let ((_, _, i_saw), (_, _, r_saw), a, b) = run(&key, &key).unwrap();
        assert_eq!(i_saw, b.public);
        assert_eq!(r_saw, a.public);
    }

    #[test]
    fn a_different_network_key_fails_at_the_responders_first_read() {
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let mut i = Handshake::initiator(&a, &network_key_from_bytes(b"sixteen bytes!!!", "").unwrap());
        let mut r = Handshake::responder(&b, &open_network_key());
        let mut wire = Vec::new();
        i.write(&mut wire).unwrap();
        assert_eq!(wire.len(), 2 + 48);
        assert_eq!(r.read(&wire[2..]), Err(NoiseError::KeyMismatch));
        // The decoy it answers with makes the initiator's read fail the same way.
        let decoy = decoy_second_message();
        assert_eq!(check_message(&decoy, MAX_HANDSHAKE_MESSAGE), Ok(Some(SECOND_MESSAGE_BYTES)));
        assert_eq!(i.read(&decoy[2..]), Err(NoiseError::KeyMismatch));
    }

    #[test]
    fn the_real_second_message_has_the_decoys_length() {
        let key = open_network_key();
        let (a, b) = (KeyPair::generate(), KeyPair::generate());
        let mut i = Handshake::initiator(&a, &key);
        let mut r = Handshake::responder(&b, &key);
        let mut wire = Vec::new();
        i.write(&mut wire).unwrap();
        r.read(&wire[2..]).unwrap();
        wire.clear();
        r.write(&mut wire).unwrap();
        assert_eq!(wire.len(), decoy_second_message().len());
    }

    #[test]
    fn records_round_trip_in_pieces_and_large_plaintext_is_cut() {
        let key = open_network_key();
        let ((mut seal, _, _), (_, mut open, _), _, _) = run(&key, &key).unwrap();
        let plaintext: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut wire = BytesMut::new();
        seal.seal(&plaintext, &mut wire);
        seal.seal(b"tail", &mut wire);
        assert_eq!(wire.len(), plaintext.len() + 4 + 5 * (2 + TAG_BYTES));
        let mut records = BytesMut::new();
        let mut plain = BytesMut::new();
        for piece in wire.chunks(7_001) {
            records.extend_from_slice(piece);
            open.open(&mut records, &mut plain).unwrap();
        }
        assert!(records.is_empty());
        assert_eq!(&plain[..plaintext.len()], &plaintext[..]);
        assert_eq!(&plain[plaintext.len()..], b"tail");
    }

    #[test]
    fn a_flipped_bit_fails_authentication() {
        let key = open_network_key();
        let ((mut seal, _, _), (_, mut open, _), _, _) = run(&key, &key).unwrap();
        let mut wire = BytesMut::new();
        seal.seal(b"hello", &mut wire);
        wire[4] ^= 1;
        assert_eq!(open.open(&mut wire, &mut BytesMut::new()), Err(NoiseError::RecordAuth));
    }

    #[test]
    fn keys_and_ids() {
        let pair = KeyPair::generate();
        assert_eq!(KeyPair::from_secret(pair.secret), pair);
        assert_eq!(pair.id(), Id::of_public_key(&pair.public));
        assert_ne!(KeyPair::generate().id(), pair.id());
        assert!(format!("{pair:?}").contains("secret: <hidden>"));
        assert_eq!(network_key_from_passphrase("correct horse", "app"), network_key_from_passphrase("correct horse", "app"));
        assert_ne!(network_key_from_passphrase("correct horse", "app").unwrap(), network_key_from_passphrase("correct horsf", "app").unwrap());
        assert_ne!(network_key_from_bytes(&[7; 16], "").unwrap(), open_network_key());
        assert_eq!(network_key_from_bytes(&[7; 15], "").unwrap_err().code(), "ERR_INVALID_ARGUMENT");
        assert_eq!(network_key_from_passphrase("", "app").unwrap_err().code(), "ERR_INVALID_ARGUMENT");
    }

    #[test]
    fn one_key_gives_each_subnet_its_own_network_key() {
        let on = |subnet: &str| network_key_from_passphrase("a shared passphrase", subnet).unwrap();
        assert_ne!(on("alpha"), on("beta"));
        assert_ne!(on(""), on("alpha"));
        let bytes = |subnet: &str| network_key_from_bytes(&[9; 32], subnet).unwrap();
        assert_ne!(bytes("alpha"), bytes("beta"));
        // The subnet is length-prefixed: where it ends and the key begins is never ambiguous.
        assert_ne!(network_key_from_bytes(&[b'b'; 16], "a").unwrap(), network_key_from_bytes(&[[b'a'].as_slice(), &[b'b'; 15]].concat(), "").unwrap());
    }

    #[test]
    fn derivations_match_the_documented_vectors() {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(&open_network_key()), "b0d5c1bbe6fe567d9878226b6621ff1172d3b6d63857e9222f16a3c2078cf89a");
        // Checked against other implementations (Python's blake3 and argon2-cffi).
        assert_eq!(hex(&network_key_from_bytes(&[0; 32], "my-app").unwrap()), "8da2b50df38ec8c37fdfc28db738880523888c0484cafbcb7b58c32c727da0a1");
        assert_eq!(hex(&network_key_from_bytes(&[0; 32], "").unwrap()), "bac982453b0daad423d33a0611bdadb69ba9bf284277571b72a7a46acd5f7aa8");
        assert_eq!(
            hex(&network_key_from_passphrase("correct horse battery staple", "my-app").unwrap()),
            "7b8bad80f8b19712e2367c66b4b99511bba80959c219f0137d2a59dd65768e93"
        );
        assert_eq!(
            hex(&network_key_from_passphrase("correct horse battery staple", "").unwrap()),
            "1d0f7ae66edad5a0243b27c75774e4c8ff5598406c556752a74238be36867397"
        );
        let pair = KeyPair::from_secret([1; 32]);
        assert_eq!(hex(&pair.public), "a4e09292b651c278b9772c569f5fa9bb13d906b46ab68c9df9dc2b4409f8a209");
        assert_eq!(pair.id().to_hex(), "3581814d6776fbf5e9a4162580e715aa");
    }

    #[test]
    fn oversized_and_empty_prefixes_are_refused_before_buffering() {
        assert_eq!(check_message(&[0xff, 0xff], MAX_HANDSHAKE_MESSAGE), Err(NoiseError::TooLarge { size: 65_535, limit: MAX_HANDSHAKE_MESSAGE }));
        assert_eq!(check_message(&[0, 0], MAX_HANDSHAKE_MESSAGE), Err(NoiseError::Empty));
        assert_eq!(check_message(&[0, 5, 1], MAX_HANDSHAKE_MESSAGE), Ok(None));
    }
}
