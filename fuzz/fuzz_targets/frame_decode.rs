//! Frame decoding: any byte stream, cut into frames by `protocol::decode` with a small frame
//! limit, must never panic or allocate past the limit; whatever decodes must encode and decode
//! back to itself.
#![no_main]

use bytes::BytesMut;
use chord::protocol::{self, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = protocol::parse(data);
    let mut buffer = BytesMut::from(data);
    while let Ok(Some(message)) = protocol::decode(&mut buffer, 64 << 10) {
        round_trip(&message);
    }
    if let Ok(message) = protocol::parse(data) {
        round_trip(&message);
    }
});

fn round_trip(message: &Message) {
    let frame = protocol::encode(message);
    let mut again = BytesMut::from(&frame[..]);
    let decoded = protocol::decode(&mut again, usize::MAX).expect("our own frame decodes").expect("a whole frame");
    assert_eq!(&decoded, message, "a message must survive encode/decode");
    assert!(again.is_empty());
}
