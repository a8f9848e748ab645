//! The stream decoder on arbitrary bytes, cut into arbitrary reads: it must never panic, never
//! reserve past the configured maximum, and yield the same frames however the stream is cut.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use smppd::pdu::PduCodec;
use tokio_util::codec::Decoder;

/// Decodes `data` fed in pieces of `chunk` octets; returns the frames and whether it ended in error.
fn run(data: &[u8], chunk: usize, max_len: usize) -> (Vec<smppd::pdu::Frame>, bool) {
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
            assert!(buf.capacity() <= max_len.max(data.len()) * 2 + 64, "reserved too much");
        }
    }
    (frames, false)
}

fuzz_target!(|input: &[u8]| {
    let Some((&cut, data)) = input.split_first() else { return };
    let max_len = 16 + usize::from(cut) * 4;
    let whole = run(data, data.len(), max_len);
    let cut_up = run(data, usize::from(cut % 17) + 1, max_len);
    assert_eq!(whole, cut_up, "frames differ with reads of {} octets", cut % 17 + 1);
    for frame in whole.0 {
        if let smppd::pdu::Frame::Pdu(pdu) = frame {
            let wire = pdu.to_bytes().expect("a decoded PDU encodes");
            let again = smppd::pdu::Pdu::decode(wire).expect("an encoded PDU decodes");
            assert_eq!(again, pdu);
        }
    }
});
