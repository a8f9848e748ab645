//! The PDU codec through its public API: decode/encode of real PDUs, error mapping, and the
//! stream framing (partial reads, several PDUs per read, one-byte reads, bad command_length).

use bytes::{Bytes, BytesMut};
use smppd::pdu::codec::CodecError;
use smppd::pdu::{
    Address, Body, CommandId, CommandStatus, DataCoding, EsmClass, Frame, MessageState, Npi, Pdu,
    PduCodec, PduError, RegisteredDelivery, ShortMessage, SubmitMultiResp, SubmitSm, SubmitSmResp,
    Tlv, Tlvs, Ton, UnsuccessSme,
};
use tokio_util::codec::{Decoder, Encoder};

fn bytes(hex: &str) -> Bytes {
    Bytes::from(hex::decode(hex).expect("test hex"))
}

fn roundtrip(hex: &str) -> Pdu {
    let pdu = Pdu::decode(bytes(hex)).expect("decodes");
    assert_eq!(hex::encode(pdu.to_bytes().expect("encodes")), hex);
    pdu
}

const SUBMIT: &str = "0000003c00000004000000000000001400050041434d45000101343437373030393030313233000000000000010000000b48656c6c6f20776f726c64";
const RECEIPT: &str = "000000bd00000005000000000000004600010134343737303039303031323300050041434d45000400000000000000007169643a30613162326333643465207375623a30303120646c7672643a303031207375626d697420646174653a3235303130323135333020646f6e6520646174653a3235303130323135333120737461743a44454c49565244206572723a30303020746578743a48656c6c6f20776f726c64042300030300000427000102001e000b3061316232633364346500";

#[test]
fn submit_sm_round_trips_with_typed_fields() {
    let pdu = roundtrip(SUBMIT);
    assert_eq!(pdu.command_id(), CommandId::SUBMIT_SM);
    assert_eq!(pdu.sequence_number, 20);
    let Body::SubmitSm(sm) = &pdu.body else {
        panic!("not submit_sm: {pdu:?}")
    };
    assert_eq!(sm.source_addr.ton, Ton::ALPHANUMERIC);
    assert_eq!(sm.source_addr.addr, "ACME");
    assert_eq!(sm.dest_addr.addr, "447700900123");
    assert_eq!(sm.registered_delivery, RegisteredDelivery::RECEIPT);
    assert_eq!(sm.short_message.as_bytes(), b"Hello world");
}

#[test]
fn receipt_tlvs_are_typed() {
    let pdu = roundtrip(RECEIPT);
    let Body::DeliverSm(sm) = &pdu.body else {
        panic!("not deliver_sm")
    };
    assert!(sm.esm_class.is_receipt());
    assert_eq!(
        sm.tlvs
            .receipted_message_id()
            .map(|m| m.to_string())
            .as_deref(),
        Some("0a1b2c3d4e")
    );
    assert_eq!(sm.tlvs.message_state(), Some(MessageState::DELIVERED));
    assert_eq!(
        sm.tlvs.network_error_code().map(|n| n.network_type),
        Some(3)
    );
}

#[test]
fn built_pdu_derives_lengths() {
    let body = SubmitSm {
        source_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "447700900001").unwrap(),
        dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "447700900002").unwrap(),
        esm_class: EsmClass::DEFAULT,
        data_coding: DataCoding::UCS2,
        short_message: ShortMessage::new(&b"\x00h\x00i"[..]).unwrap(),
        tlvs: Tlvs::new()
            .with(Tlv::SarMsgRefNum(7))
            .with(Tlv::SarTotalSegments(2))
            .with(Tlv::SarSegmentSeqnum(1)),
        ..SubmitSm::default()
    };
    let pdu = Pdu::new(5, Body::SubmitSm(body));
    let wire = pdu.to_bytes().unwrap();
    assert_eq!(
        u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize,
        wire.len()
    );
    let back = Pdu::decode(wire).unwrap();
    assert_eq!(back, pdu);
    let Body::SubmitSm(sm) = &back.body else {
        panic!()
    };
    assert_eq!(sm.tlvs.sar(), Some((7, 2, 1)));
}

#[test]
fn error_response_without_body_decodes_and_encodes_without_body() {
    let pdu = roundtrip("00000010800000040000005800000015");
    assert_eq!(pdu.command_status, CommandStatus::ESME_RTHROTTLED);
    // The smpplib form with a lone NUL decodes too and is re-encoded in the spec's form.
    let pdu = Pdu::decode(bytes("00000011800000090000000e0000000800")).unwrap();
    assert_eq!(
        hex::encode(pdu.to_bytes().unwrap()),
        "00000010800000090000000e00000008"
    );
}

#[test]
fn short_message_with_payload_is_rejected_both_ways() {
    let body = SubmitSm {
        short_message: ShortMessage::new(&b"x"[..]).unwrap(),
        tlvs: Tlvs::new().with(Tlv::MessagePayload(
            smppd::pdu::OctetString::new(&b"y"[..]).unwrap(),
        )),
        ..SubmitSm::default()
    };
    let err = Pdu::new(1, Body::SubmitSm(body)).to_bytes().unwrap_err();
    assert_eq!(err.command_status(), CommandStatus::ESME_RINVMSGLEN);
}

#[test]
fn unknown_command_id_maps_to_rinvcmdid() {
    let err = Pdu::decode(bytes("0000001000000111000000000000000c")).unwrap_err();
    assert_eq!(err, PduError::UnknownCommandId(0x111));
    assert_eq!(err.command_status(), CommandStatus::ESME_RINVCMDID);
}

#[test]
fn over_long_c_string_names_the_field() {
    // system_id of 16 characters: no NUL within 16 octets.
    let mut wire = hex::decode(
        "0000000000000009000000000000000141414141414141414141414141414141000000340000000000",
    )
    .unwrap();
    let len = wire.len() as u32;
    wire[..4].copy_from_slice(&len.to_be_bytes());
    let err = Pdu::decode(Bytes::from(wire)).unwrap_err();
    assert_eq!(err.field(), Some("system_id"));
    assert_eq!(err.command_status(), CommandStatus::ESME_RINVSYSID);
}

#[test]
fn stream_split_into_single_bytes_and_batches() {
    let mut stream = Vec::new();
    stream.extend(hex::decode(SUBMIT).unwrap());
    stream.extend(hex::decode(RECEIPT).unwrap());
    stream.extend(hex::decode("0000001000000015000000000000000a").unwrap());
    for chunk in [1usize, 2, 7, 16, 1000] {
        let mut codec = PduCodec::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        assert_eq!(out.len(), 3, "chunk size {chunk}");
        assert!(matches!(&out[2], Frame::Pdu(p) if p.body == Body::EnquireLink));
    }
}

#[test]
fn invalid_frame_keeps_the_stream() {
    let mut codec = PduCodec::default();
    let mut buf = BytesMut::from(
        &hex::decode("0000001000000111000000000000000c0000001000000015000000000000000d").unwrap()[..],
    );
    match codec.decode(&mut buf).unwrap() {
        Some(Frame::Invalid {
            command_id,
            sequence_number,
            error,
        }) => {
            assert_eq!(command_id, CommandId(0x111));
            assert_eq!(sequence_number, 12);
            assert_eq!(error.command_status(), CommandStatus::ESME_RINVCMDID);
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert!(matches!(
        codec.decode(&mut buf).unwrap(),
        Some(Frame::Pdu(_))
    ));
}

#[test]
fn bad_command_length_is_a_stream_error_before_reserving() {
    let mut codec = PduCodec::default();
    let mut buf = BytesMut::from(&hex::decode("0000000f").unwrap()[..]);
    assert!(matches!(
        codec.decode(&mut buf),
        Err(CodecError::Framing(_))
    ));
    let mut buf = BytesMut::from(&hex::decode("7fffffff").unwrap()[..]);
    let cap = buf.capacity();
    let err = codec.decode(&mut buf).unwrap_err();
    assert_eq!(err.command_status(), CommandStatus::ESME_RINVCMDLEN);
    assert_eq!(buf.capacity(), cap);
}

#[test]
fn encoder_writes_what_decoder_reads() {
    let mut codec = PduCodec::default();
    let mut buf = BytesMut::new();
    let resp = Pdu::new(
        9,
        Body::SubmitSmResp(SubmitSmResp {
            message_id: "abc".try_into().unwrap(),
            tlvs: Tlvs::new(),
        }),
    );
    codec.encode(&resp, &mut buf).unwrap();
    codec
        .encode(
            Pdu::generic_nack(CommandStatus::ESME_RINVCMDID, 3),
            &mut buf,
        )
        .unwrap();
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::Pdu(resp)));
    assert!(
        matches!(codec.decode(&mut buf).unwrap(), Some(Frame::Pdu(p)) if p.command_status == CommandStatus::ESME_RINVCMDID)
    );
}

#[test]
fn ok_response_without_body_reads_as_empty_body() {
    // deliver_sm_resp with command_length 16: some ESMEs omit the unused message_id.
    let pdu = Pdu::decode(bytes("00000010800000050000000000000046")).unwrap();
    assert_eq!(pdu.body, Body::DeliverSmResp(SubmitSmResp::default()));
    // Written back in the canonical form, with the NUL message_id.
    assert_eq!(
        hex::encode(pdu.to_bytes().unwrap()),
        "0000001180000005000000000000004600"
    );
}

#[test]
fn truncated_ok_response_is_rejected_but_truncated_error_response_is_not() {
    // submit_sm_resp status 0 whose message_id has no NUL: malformed.
    let err = Pdu::decode(bytes("000000128000000400000000000000014142")).unwrap_err();
    assert_eq!(err.field(), Some("message_id"));
    // The same cut body with a non-zero status: the body is ignored.
    let pdu = Pdu::decode(bytes("000000128000000400000045000000014142")).unwrap();
    assert_eq!(pdu.command_status, CommandStatus::ESME_RSUBMITFAIL);
    assert_eq!(
        hex::encode(pdu.to_bytes().unwrap()),
        "00000010800000040000004500000001"
    );
}

/// The encoder holds fixed-size fields back and writes each run at once; runs that cross list
/// entries (an empty address's NUL, a 4-octet status, then the next entry's TON and NPI) must come
/// out complete, in order and big-endian.
#[test]
fn runs_of_fixed_size_fields_across_list_entries_encode_in_order() {
    let entry = |ton, npi, status| UnsuccessSme {
        addr: Address::new(Ton(ton), Npi(npi), "").unwrap(),
        error_status_code: CommandStatus(status),
    };
    let body = SubmitMultiResp {
        message_id: "m1".try_into().unwrap(),
        unsuccess_smes: vec![entry(1, 1, 0x45), entry(2, 8, 0x0b), entry(5, 0, 0x400)],
        tlvs: Tlvs::new(),
    };
    let pdu = Pdu::new(7, Body::SubmitMultiResp(body));
    let expected = concat!(
        "00000029800000210000000000000007",
        "6d3100",
        "03",
        "01010000000045",
        "0208000000000b",
        "05000000000400",
    );
    assert_eq!(hex::encode(pdu.to_bytes().unwrap()), expected);
    assert_eq!(pdu.encoded_len().unwrap(), expected.len() / 2);
    assert_eq!(roundtrip(expected), pdu);
}
