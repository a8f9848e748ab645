//! parse → encode → parse equality: any PDU the decoder accepts encodes, decodes back to the same
//! value, and re-encodes to the same bytes (the encoding is canonical).
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use smppd::pdu::Pdu;

fuzz_target!(|data: &[u8]| {
    let Ok(pdu) = Pdu::decode(Bytes::copy_from_slice(data)) else { return };
    let wire = pdu.to_bytes().expect("a decoded PDU encodes");
    let again = Pdu::decode(wire.clone()).expect("an encoded PDU decodes");
    assert_eq!(again, pdu, "decode(encode(p)) != p");
    assert_eq!(again.to_bytes().expect("encodes twice"), wire, "encoding is not canonical");
});
