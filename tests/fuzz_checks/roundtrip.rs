//! The `roundtrip` fuzz target's property, shared by `fuzz/fuzz_targets/roundtrip.rs` (nightly,
//! libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): parse → encode → parse equality.
//! Any PDU the decoder accepts encodes, decodes back to the same value, and re-encodes to the
//! same bytes (the encoding is canonical).

use bytes::Bytes;
use smppd::pdu::Pdu;

pub fn check(data: &[u8]) {
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
