//! Properties of the codec: encode→decode is the identity on arbitrary valid PDUs (and the JSON
//! form round-trips too); decoding arbitrary bytes never panics and a decoded PDU re-encodes; the
//! framing decoder yields the same frames however the stream is cut.

use bytes::{Bytes, BytesMut};
use proptest::collection::vec;
use proptest::prelude::*;
use smppd::pdu::json;
use smppd::pdu::{
    Address, AlertNotification, Bind, BindResp, Body, COctetString, CancelSm, CommandStatus,
    DataCoding, DataSm, DestAddress, EsmClass, Frame, MessageState, NetworkErrorCode, Npi,
    OctetString, Outbind, Password, Pdu, PduCodec, QuerySm, QuerySmResp, RegisteredDelivery,
    ReplaceSm, SubmitMulti, SubmitMultiResp, SubmitSm, SubmitSmResp, Tlv, Tlvs, Ton, UnsuccessSme,
};
use tokio_util::codec::Decoder;

fn cstr<const MAX: usize>() -> impl Strategy<Value = COctetString<MAX>> {
    // Mostly printable ASCII, sometimes any non-NUL octet.
    prop_oneof![
        4 => proptest::string::string_regex(&format!("[ -~]{{0,{}}}", MAX - 1))
            .unwrap()
            .prop_map(|s| COctetString::try_from(s).unwrap()),
        1 => vec(1u8..=255, 0..MAX).prop_map(|v| COctetString::new(v).unwrap()),
    ]
}

fn octets<const MIN: usize, const MAX: usize>() -> impl Strategy<Value = OctetString<MIN, MAX>> {
    vec(any::<u8>(), MIN..=MAX.min(300)).prop_map(|v| OctetString::new(v).unwrap())
}

fn addr<const MAX: usize>() -> impl Strategy<Value = Address<MAX>> {
    (any::<u8>(), any::<u8>(), cstr::<MAX>()).prop_map(|(t, n, a)| Address {
        ton: Ton(t),
        npi: Npi(n),
        addr: a,
    })
}

fn tlv() -> impl Strategy<Value = Tlv> {
    prop_oneof![
        any::<u8>().prop_map(Tlv::DestAddrSubunit),
        any::<u8>().prop_map(Tlv::DestNetworkType),
        any::<u8>().prop_map(Tlv::DestBearerType),
        any::<u16>().prop_map(Tlv::DestTelematicsId),
        any::<u8>().prop_map(Tlv::SourceAddrSubunit),
        any::<u8>().prop_map(Tlv::SourceNetworkType),
        any::<u8>().prop_map(Tlv::SourceBearerType),
        any::<u16>().prop_map(Tlv::SourceTelematicsId),
        any::<u32>().prop_map(Tlv::QosTimeToLive),
        any::<u8>().prop_map(Tlv::PayloadType),
        cstr::<256>().prop_map(Tlv::AdditionalStatusInfoText),
        cstr::<65>().prop_map(Tlv::ReceiptedMessageId),
        any::<u8>().prop_map(Tlv::MsMsgWaitFacilities),
        any::<u8>().prop_map(Tlv::PrivacyIndicator),
        octets::<2, 23>().prop_map(Tlv::SourceSubaddress),
        octets::<2, 23>().prop_map(Tlv::DestSubaddress),
        any::<u16>().prop_map(Tlv::UserMessageReference),
        any::<u8>().prop_map(Tlv::UserResponseCode),
        any::<u16>().prop_map(Tlv::SourcePort),
        any::<u16>().prop_map(Tlv::DestinationPort),
        any::<u16>().prop_map(Tlv::SarMsgRefNum),
        any::<u8>().prop_map(Tlv::LanguageIndicator),
        any::<u8>().prop_map(Tlv::SarTotalSegments),
        any::<u8>().prop_map(Tlv::SarSegmentSeqnum),
        any::<u8>().prop_map(Tlv::ScInterfaceVersion),
        any::<u8>().prop_map(Tlv::CallbackNumPresInd),
        octets::<0, 65>().prop_map(Tlv::CallbackNumAtag),
        any::<u8>().prop_map(Tlv::NumberOfMessages),
        octets::<4, 19>().prop_map(Tlv::CallbackNum),
        any::<u8>().prop_map(Tlv::DpfResult),
        any::<u8>().prop_map(Tlv::SetDpf),
        any::<u8>().prop_map(Tlv::MsAvailabilityStatus),
        (any::<u8>(), any::<u16>()).prop_map(|(t, c)| Tlv::NetworkErrorCode(NetworkErrorCode {
            network_type: t,
            error_code: c
        })),
        any::<u8>().prop_map(Tlv::DeliveryFailureReason),
        any::<u8>().prop_map(Tlv::MoreMessagesToSend),
        any::<u8>().prop_map(|s| Tlv::MessageState(MessageState(s))),
        any::<u8>().prop_map(Tlv::UssdServiceOp),
        any::<u8>().prop_map(Tlv::DisplayTime),
        any::<u16>().prop_map(Tlv::SmsSignal),
        any::<u8>().prop_map(Tlv::MsValidity),
        proptest::option::of(any::<u8>()).prop_map(Tlv::AlertOnMessageDelivery),
        any::<u8>().prop_map(Tlv::ItsReplyType),
        any::<u16>().prop_map(Tlv::ItsSessionInfo),
        // Vendor range: no typed tag lives there.
        (0x1400u16..=0x3FFF, vec(any::<u8>(), 0..40)).prop_map(|(tag, v)| Tlv::Other {
            tag,
            value: Bytes::from(v)
        }),
    ]
}

/// TLVs without message_payload (which needs an empty short_message).
fn tlvs() -> impl Strategy<Value = Tlvs> {
    vec(tlv(), 0..5).prop_map(Tlvs)
}

/// short_message and TLVs, with message_payload only when short_message is empty.
fn message() -> impl Strategy<Value = (OctetString<0, 254>, Tlvs)> {
    prop_oneof![
        (octets::<0, 254>(), tlvs()),
        (vec(any::<u8>(), 0..600), tlvs()).prop_map(|(p, mut t)| {
            t.push(Tlv::MessagePayload(OctetString::new(p).unwrap()));
            (OctetString::default(), t)
        }),
    ]
}

prop_compose! {
    fn submit_sm()(
        service_type in cstr::<6>(), source_addr in addr::<21>(), dest_addr in addr::<21>(),
        flags in any::<[u8; 7]>(), times in (cstr::<17>(), cstr::<17>()), (short_message, tlvs) in message(),
    ) -> SubmitSm {
        SubmitSm {
            service_type, source_addr, dest_addr,
            esm_class: EsmClass(flags[0]), protocol_id: flags[1], priority_flag: flags[2],
            schedule_delivery_time: times.0, validity_period: times.1,
            registered_delivery: RegisteredDelivery(flags[3]), replace_if_present_flag: flags[4],
            data_coding: DataCoding(flags[5]), sm_default_msg_id: flags[6], short_message, tlvs,
        }
    }
}

prop_compose! {
    fn bind()(system_id in cstr::<16>(), pw in cstr::<9>(), system_type in cstr::<13>(),
              b in any::<[u8; 3]>(), address_range in cstr::<41>()) -> Bind {
        Bind { system_id, password: Password(pw), system_type, interface_version: b[0],
               addr_ton: Ton(b[1]), addr_npi: Npi(b[2]), address_range }
    }
}

fn resp() -> impl Strategy<Value = SubmitSmResp> {
    (cstr::<65>(), tlvs()).prop_map(|(message_id, tlvs)| SubmitSmResp { message_id, tlvs })
}

fn body() -> impl Strategy<Value = Body> {
    let dest = prop_oneof![
        addr::<21>().prop_map(DestAddress::Sme),
        cstr::<21>().prop_map(DestAddress::DistributionList),
    ];
    prop_oneof![
        Just(Body::GenericNack),
        Just(Body::Unbind),
        Just(Body::UnbindResp),
        Just(Body::EnquireLink),
        Just(Body::EnquireLinkResp),
        Just(Body::ReplaceSmResp),
        Just(Body::CancelSmResp),
        bind().prop_map(Body::BindTransmitter),
        bind().prop_map(Body::BindReceiver),
        bind().prop_map(Body::BindTransceiver),
        (cstr::<16>(), tlvs()).prop_map(|(s, t)| Body::BindTransceiverResp(BindResp {
            system_id: s,
            tlvs: t
        })),
        (cstr::<16>(), tlvs()).prop_map(|(s, t)| Body::BindReceiverResp(BindResp {
            system_id: s,
            tlvs: t
        })),
        (cstr::<16>(), tlvs()).prop_map(|(s, t)| Body::BindTransmitterResp(BindResp {
            system_id: s,
            tlvs: t
        })),
        (cstr::<16>(), cstr::<9>()).prop_map(|(s, p)| Body::Outbind(Outbind {
            system_id: s,
            password: Password(p)
        })),
        submit_sm().prop_map(Body::SubmitSm),
        submit_sm().prop_map(Body::DeliverSm),
        resp().prop_map(Body::SubmitSmResp),
        resp().prop_map(Body::DeliverSmResp),
        resp().prop_map(Body::DataSmResp),
        (submit_sm(), vec(dest, 1..5)).prop_map(|(s, dest_addresses)| Body::SubmitMulti(
            SubmitMulti {
                service_type: s.service_type,
                source_addr: s.source_addr,
                dest_addresses,
                esm_class: s.esm_class,
                protocol_id: s.protocol_id,
                priority_flag: s.priority_flag,
                schedule_delivery_time: s.schedule_delivery_time,
                validity_period: s.validity_period,
                registered_delivery: s.registered_delivery,
                replace_if_present_flag: s.replace_if_present_flag,
                data_coding: s.data_coding,
                sm_default_msg_id: s.sm_default_msg_id,
                short_message: s.short_message,
                tlvs: s.tlvs,
            }
        )),
        (
            cstr::<65>(),
            vec((addr::<21>(), any::<u32>()), 0..4),
            tlvs()
        )
            .prop_map(|(m, u, t)| {
                Body::SubmitMultiResp(SubmitMultiResp {
                    message_id: m,
                    unsuccess_smes: u
                        .into_iter()
                        .map(|(addr, s)| UnsuccessSme {
                            addr,
                            error_status_code: CommandStatus(s),
                        })
                        .collect(),
                    tlvs: t,
                })
            }),
        (
            cstr::<6>(),
            addr::<65>(),
            addr::<65>(),
            any::<[u8; 3]>(),
            message()
        )
            .prop_map(|(st, s, d, f, (_, t))| {
                Body::DataSm(DataSm {
                    service_type: st,
                    source_addr: s,
                    dest_addr: d,
                    esm_class: EsmClass(f[0]),
                    registered_delivery: RegisteredDelivery(f[1]),
                    data_coding: DataCoding(f[2]),
                    tlvs: t,
                })
            }),
        (cstr::<65>(), addr::<21>()).prop_map(|(m, a)| Body::QuerySm(QuerySm {
            message_id: m,
            source_addr: a
        })),
        (cstr::<65>(), cstr::<17>(), any::<u8>(), any::<u8>()).prop_map(|(m, f, s, e)| {
            Body::QuerySmResp(QuerySmResp {
                message_id: m,
                final_date: f,
                message_state: MessageState(s),
                error_code: e,
            })
        }),
        (cstr::<6>(), cstr::<65>(), addr::<21>(), addr::<21>()).prop_map(|(st, m, s, d)| {
            Body::CancelSm(CancelSm {
                service_type: st,
                message_id: m,
                source_addr: s,
                dest_addr: d,
            })
        }),
        (
            cstr::<65>(),
            addr::<21>(),
            cstr::<17>(),
            cstr::<17>(),
            any::<[u8; 2]>(),
            octets::<0, 254>()
        )
            .prop_map(|(m, a, s, v, f, sm)| Body::ReplaceSm(ReplaceSm {
                message_id: m,
                source_addr: a,
                schedule_delivery_time: s,
                validity_period: v,
                registered_delivery: RegisteredDelivery(f[0]),
                sm_default_msg_id: f[1],
                short_message: sm
            })),
        (addr::<65>(), addr::<65>(), tlvs()).prop_map(|(s, e, t)| {
            Body::AlertNotification(AlertNotification {
                source_addr: s,
                esme_addr: e,
                tlvs: t,
            })
        }),
    ]
}

fn pdu() -> impl Strategy<Value = Pdu> {
    (
        prop_oneof![3 => Just(0u32), 1 => any::<u32>()],
        1u32..=0x7FFF_FFFF,
        body(),
    )
        .prop_map(|(command_status, sequence_number, body)| {
            // Requests carry status 0; only responses and generic_nack get another.
            let command_status = if body.command_id().is_response() {
                command_status
            } else {
                0
            };
            Pdu {
                command_status: CommandStatus(command_status),
                sequence_number,
                body,
            }
        })
}

/// What a PDU becomes on the wire and back: an error response with an empty body is sent without
/// body, and its JSON has no body keys, so both come back as the same value.
fn expect_same(p: &Pdu) -> Result<(), TestCaseError> {
    let wire = p
        .to_bytes()
        .map_err(|e| TestCaseError::fail(format!("encode: {e}")))?;
    prop_assert_eq!(
        u32::from_be_bytes(wire[..4].try_into().unwrap()) as usize,
        wire.len()
    );
    let back =
        Pdu::decode(wire.clone()).map_err(|e| TestCaseError::fail(format!("decode: {e}")))?;
    prop_assert_eq!(&back, p);
    let j = json::to_json(p);
    let from_json = json::from_json(&json::Json::parse(&j.to_string()).unwrap())
        .map_err(|e| TestCaseError::fail(format!("json: {e}")))?;
    prop_assert_eq!(from_json.to_bytes().unwrap(), wire);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_decode_is_identity(p in pdu()) {
        expect_same(&p)?;
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in vec(any::<u8>(), 0..400)) {
        if let Ok(p) = Pdu::decode(Bytes::from(data)) {
            expect_same(&p)?;
        }
    }

    /// Bytes behind a consistent header with a real command_id reach the body parsers.
    #[test]
    fn decoding_arbitrary_bodies_never_panics(
        id in prop::sample::select(smppd::pdu::CommandId::ALL.iter().map(|(id, _)| id.0).collect::<Vec<_>>()),
        status in prop_oneof![Just(0u32), any::<u32>()],
        body in vec(any::<u8>(), 0..300),
    ) {
        let mut wire = Vec::with_capacity(16 + body.len());
        wire.extend(((16 + body.len()) as u32).to_be_bytes());
        wire.extend(id.to_be_bytes());
        wire.extend(status.to_be_bytes());
        wire.extend(7u32.to_be_bytes());
        wire.extend(&body);
        if let Ok(p) = Pdu::decode(Bytes::from(wire)) {
            expect_same(&p)?;
        }
    }

    #[test]
    fn framing_is_independent_of_cuts(pdus in vec(pdu(), 1..6), cuts in vec(1usize..64, 1..40)) {
        let mut stream = BytesMut::new();
        for p in &pdus {
            p.encode(&mut stream).unwrap();
        }
        let stream = stream.freeze();
        let mut codec = PduCodec::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut i = 0;
        while pos < stream.len() {
            let n = cuts[i % cuts.len()].min(stream.len() - pos);
            buf.extend_from_slice(&stream[pos..pos + n]);
            pos += n;
            i += 1;
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                match frame {
                    Frame::Pdu(p) => got.push(p),
                    Frame::Invalid { error, .. } => return Err(TestCaseError::fail(format!("invalid frame: {error}"))),
                }
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, pdus);
    }
}
