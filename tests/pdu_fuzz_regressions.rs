//! Replays fuzzer inputs kept under `tests/fuzz-inputs/<target>/` with the same assertions as the
//! cargo-fuzz targets in `fuzz/`, so every input that ever crashed (and a sample of the corpus)
//! stays covered by `cargo test` without nightly. Add a crashing input by copying it from
//! `fuzz/artifacts/<target>/` into the matching folder.

use std::path::Path;

use bytes::{Bytes, BytesMut};
use smppd::pdu::{Frame, Pdu, PduCodec};
use tokio_util::codec::Decoder;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-inputs")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let path = e.expect("dir entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable input"))
        })
        .collect();
    out.sort();
    out
}

/// `fuzz/fuzz_targets/roundtrip.rs`.
fn roundtrip(data: &[u8]) {
    let Ok(pdu) = Pdu::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    let wire = pdu.to_bytes().expect("a decoded PDU encodes");
    let again = Pdu::decode(wire.clone()).expect("an encoded PDU decodes");
    assert_eq!(again, pdu, "decode(encode(p)) != p");
    assert_eq!(
        again.to_bytes().expect("encodes twice"),
        wire,
        "encoding is not canonical"
    );
}

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
        }
    }
    (frames, false)
}

/// `fuzz/fuzz_targets/frame_decoder.rs`.
fn frame_decoder(input: &[u8]) {
    let Some((&cut, data)) = input.split_first() else {
        return;
    };
    let max_len = 16 + usize::from(cut) * 4;
    let whole = run(data, data.len(), max_len);
    let cut_up = run(data, usize::from(cut % 17) + 1, max_len);
    assert_eq!(whole, cut_up);
    for frame in whole.0 {
        if let Frame::Pdu(pdu) = frame {
            let again = Pdu::decode(pdu.to_bytes().expect("encodes")).expect("decodes");
            assert_eq!(again, pdu);
        }
    }
}

#[test]
fn roundtrip_inputs() {
    let all = inputs("roundtrip");
    assert!(!all.is_empty());
    for (name, data) in all {
        eprintln!("roundtrip/{name}");
        roundtrip(&data);
    }
}

#[test]
fn frame_decoder_inputs() {
    let all = inputs("frame_decoder");
    assert!(!all.is_empty());
    for (name, data) in all {
        eprintln!("frame_decoder/{name}");
        frame_decoder(&data);
    }
}
