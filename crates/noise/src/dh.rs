//! X25519 for snow, knowing our own public key. snow derives the public half of every private
//! key it is given, our static key included, at every handshake: a scalar multiplication and
//! a field inversion before a single byte was read — most of what an outsider's junk
//! handshake cost a node. Our static key's public half is known once and for all (it is our
//! id), so [`Resolver`] hands snow a Diffie-Hellman that takes it as given; every other key
//! (ephemerals) is derived as snow would, and the exchange itself is snow's, byte for byte.

use crate::KeyPair;
use curve25519_dalek::montgomery::MontgomeryPoint;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// snow's own resolvers (ring first, then the default), with [`KnownKeyDh`] for X25519.
pub struct Resolver {
    known: KeyPair,
    fallback: FallbackResolver,
}

impl Resolver {
    pub fn new(known: &KeyPair) -> Resolver {
        Resolver { known: KeyPair { public: known.public, secret: known.secret }, fallback: FallbackResolver::new(Box::new(RingResolver), Box::new(DefaultResolver)) }
    }
}

impl CryptoResolver for Resolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        self.fallback.resolve_rng()
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(KnownKeyDh { known: KeyPair { public: self.known.public, secret: self.known.secret }, public: [0; 32], secret: [0; 32] })),
            _ => self.fallback.resolve_dh(choice),
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        self.fallback.resolve_hash(choice)
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        self.fallback.resolve_cipher(choice)
    }
}

/// X25519 whose public key is derived unless it is the known pair's.
struct KnownKeyDh {
    known: KeyPair,
    public: [u8; 32],
    secret: [u8; 32],
}

impl KnownKeyDh {
    fn take(&mut self, secret: [u8; 32]) {
        self.secret = secret;
        self.public = if secret == self.known.secret { self.known.public } else { MontgomeryPoint::mul_base_clamped(secret).to_bytes() };
    }
}

impl Dh for KnownKeyDh {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        32
    }

    fn priv_len(&self) -> usize {
        32
    }

    fn set(&mut self, privkey: &[u8]) {
        let mut secret = [0u8; 32];
        secret.copy_from_slice(&privkey[..32]);
        self.take(secret);
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut secret = [0u8; 32];
        rng.try_fill_bytes(&mut secret)?;
        self.take(secret);
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.public
    }

    fn privkey(&self) -> &[u8] {
        &self.secret
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let mut point = [0u8; 32];
        point.copy_from_slice(&pubkey[..32]);
        out[..32].copy_from_slice(&MontgomeryPoint(point).mul_clamped(self.secret).to_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Our X25519 against snow's own, both ways: the same keys proved, the same session.
    #[test]
    fn interoperates_with_snows_own_x25519() {
        for ours_first in [true, false] {
            let (a, b) = (KeyPair::generate(), KeyPair::generate());
            let params: snow::params::NoiseParams = "Noise_XX_25519_ChaChaPoly_BLAKE2s".parse().unwrap();
            let ours = snow::Builder::with_resolver(params.clone(), Box::new(Resolver::new(&a))).local_private_key(&a.secret).unwrap();
            let theirs = snow::Builder::new(params).local_private_key(&b.secret).unwrap();
            let (mut initiator, mut responder) = if ours_first {
                (ours.build_initiator().unwrap(), theirs.build_responder().unwrap())
            } else {
                (theirs.build_initiator().unwrap(), ours.build_responder().unwrap())
            };
            let (mut wire, mut read) = ([0u8; 256], [0u8; 256]);
            for step in 0..3 {
                let (from, to) = if step % 2 == 0 { (&mut initiator, &mut responder) } else { (&mut responder, &mut initiator) };
                let n = from.write_message(&[], &mut wire).unwrap();
                to.read_message(&wire[..n], &mut read).unwrap();
            }
            let (initiator_key, responder_key) = if ours_first { (a.public, b.public) } else { (b.public, a.public) };
            assert_eq!(responder.get_remote_static().unwrap(), initiator_key);
            assert_eq!(initiator.get_remote_static().unwrap(), responder_key);
            let (mut sender, mut receiver) = (initiator.into_transport_mode().unwrap(), responder.into_transport_mode().unwrap());
            let n = sender.write_message(b"hello", &mut wire).unwrap();
            let m = receiver.read_message(&wire[..n], &mut read).unwrap();
            assert_eq!(&read[..m], b"hello");
        }
    }
}
