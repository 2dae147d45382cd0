//! The Noise handshake and record layer on hostile bytes: a responder fed arbitrary first and
//! third messages, an initiator fed an arbitrary second message, and an established session
//! fed arbitrary records or tampered ones. Nothing may panic, and nothing forged may open.
#![no_main]

use bytes::BytesMut;
use chord_noise::{self as noise, Handshake, KeyPair, MAX_HANDSHAKE_MESSAGE};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn keys() -> &'static (KeyPair, KeyPair) {
    static KEYS: OnceLock<(KeyPair, KeyPair)> = OnceLock::new();
    KEYS.get_or_init(|| (KeyPair::from_secret([1; 32]), KeyPair::from_secret([2; 32])))
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let (a, b) = keys();
    let key = noise::open_network_key();
    match mode % 4 {
        // Responder: arbitrary first message, then (if it passed) arbitrary third message.
        0 => {
            let mut responder = Handshake::responder(b, &key);
            let (first, third) = rest.split_at(rest.len().min(48));
            if responder.read(first).is_ok() {
                let mut out = Vec::new();
                responder.write(&mut out).expect("second message");
                if responder.read(third).is_ok() {
                    let _ = responder.finish();
                }
            }
        }
        // Initiator: arbitrary second message.
        1 => {
            let mut initiator = Handshake::initiator(a, &key);
            let mut out = Vec::new();
            initiator.write(&mut out).expect("first message");
            assert!(initiator.read(rest).is_err(), "a forged second message must not authenticate");
        }
        // Established session: arbitrary record bytes must not open.
        2 | 3 => {
            let (mut seal, mut open, _) = session(a, b, &key);
            let mut records = BytesMut::new();
            if mode % 4 == 3 {
                // A real record with the fuzz input XORed into it (past the length prefix).
                seal.seal(b"a frame that was really sent", &mut records);
                let applied = &rest[..rest.len().min(records.len() - 2)];
                let changed = applied.iter().any(|&x| x != 0);
                for (at, x) in applied.iter().enumerate() {
                    records[2 + at] ^= x;
                }
                let mut plain = BytesMut::new();
                let opened = open.open(&mut records, &mut plain);
                assert_eq!(opened.is_ok(), !changed, "a tampered record must not open");
            } else {
                records.extend_from_slice(rest);
                let mut plain = BytesMut::new();
                if open.open(&mut records, &mut plain).is_ok() {
                    assert!(plain.is_empty(), "forged bytes opened as a record");
                }
            }
        }
        _ => unreachable!(),
    }
    let _ = noise::check_message(rest, MAX_HANDSHAKE_MESSAGE);
});

/// A finished handshake: the initiator's sealer and the responder's opener (and the rest).
fn session(a: &KeyPair, b: &KeyPair, key: &noise::NetworkKey) -> (noise::Sealer, noise::Opener, noise::Opener) {
    let mut i = Handshake::initiator(a, key);
    let mut r = Handshake::responder(b, key);
    let mut wire = Vec::new();
    i.write(&mut wire).unwrap();
    r.read(&wire[2..]).unwrap();
    wire.clear();
    r.write(&mut wire).unwrap();
    i.read(&wire[2..]).unwrap();
    wire.clear();
    i.write(&mut wire).unwrap();
    r.read(&wire[2..]).unwrap();
    let (seal, open_i, _) = i.finish().unwrap();
    let (_, open_r, _) = r.finish().unwrap();
    (seal, open_r, open_i)
}
