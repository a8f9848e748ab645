//! The `frame_decoder` fuzz target's property, shared by `fuzz/fuzz_targets/frame_decoder.rs`
//! (nightly, libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): the stream decoder on
//! arbitrary bytes, cut into arbitrary reads, never panics, never reserves past the configured
//! maximum, and yields the same frames however the stream is cut.
//!
//! Input layout: byte 0 sets the maximum PDU length (16 + 4·b) and the read size (b mod 17 + 1);
//! the rest is the stream.

use bytes::BytesMut;
use smppd::pdu::{Frame, Pdu, PduCodec};
use tokio_util::codec::Decoder;

/// Decodes `data` fed in pieces of `chunk` octets; returns the frames and whether it ended in
/// error.
fn run(data: &[u8], chunk: usize, max_len: usize) -> (Vec<Frame>, bool) {
    let mut codec = PduCodec::new(max_len);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => frames.push(frame),
                Ok(None) => break,
                Err(_) => return (frames, true),
            }
            assert!(
                buf.capacity() <= max_len.max(data.len()) * 2 + 64,
                "reserved too much"
            );
        }
    }
    (frames, false)
}

pub fn check(input: &[u8]) {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let max_len = 16 + usize::from(cut) * 4;
    let whole = run(data, data.len(), max_len);
    let cut_up = run(data, usize::from(cut % 17) + 1, max_len);
    assert_eq!(
        whole,
        cut_up,
        "frames differ with reads of {} octets",
        cut % 17 + 1
    );
    for frame in whole.0 {
        if let Frame::Pdu(pdu) = frame {
            let wire = pdu.to_bytes().expect("a decoded PDU encodes");
            let again = Pdu::decode(wire).expect("an encoded PDU decodes");
            assert_eq!(again, pdu);
        }
    }
}
