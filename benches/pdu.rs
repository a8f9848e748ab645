//! Decode and encode throughput of smppd's PDU codec against the `rusmpp` crate on the same bytes,
//! in the same run, both through their `tokio_util` codecs: submit_sm with GSM text, submit_sm
//! UCS-2 with a concatenation UDH, submit_sm with three TLVs, and a deliver_sm receipt.
//!
//! Run: `cargo bench --bench pdu`. Both sides get the same buffers, set up the way a
//! `tokio_util::codec::Framed` connection holds them in steady state:
//! - decode: a read buffer that already shares its allocation (as after the first frame split off
//!   a socket buffer), prepared outside the timed section (`iter_batched`); timed: framing +
//!   parsing into the library's typed value;
//! - encode: one write buffer reused across iterations (cleared as after a flush); timed:
//!   computing lengths + writing the PDU.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rusmpp::tokio_codec::CommandCodec;
use smppd::pdu::{Frame, PduCodec};
use tokio_util::codec::{Decoder, Encoder};

/// (case, PDU hex) — the bytes come from `pdus/` (vectors.jsonl).
const CASES: [(&str, &str); 4] = [
    (
        "submit_sm_gsm",
        "0000003c00000004000000000000001400050041434d45000101343437373030393030313233000000000000010000000b48656c6c6f20776f726c64",
    ),
    (
        "submit_sm_ucs2_udh",
        "000000bd00000004000000000000002900050041434d45000101343437373030393030313233004000000000010008008c0500031302010417043404400430043204410442043204430439044204350021002004170434044004300432044104420432044304390442043500210020041704340440043004320441044204320443043904420435002100200417043404400430043204410442043204430439044204350021002004170434044004300432044104420432044304390442",
    ),
    (
        "submit_sm_3_tlvs",
        "000000da00000004000000000000003300050041434d4500010134343737303039303031323300000000000001000000995365676d656e746174696f6e20616e64207265617373656d626c79207669612053415220544c567320696e7374656164206f66206120757365722064617461206865616465722e205365676d656e746174696f6e20616e64207265617373656d626c79207669612053415220544c567320696e7374656164206f66206120757365722064617461206865616465722e205365676d656e746174020c00021a2b020e000102020f000101",
    ),
    (
        "deliver_sm_receipt",
        "000000bd00000005000000000000004600010134343737303039303031323300050041434d45000400000000000000007169643a30613162326333643465207375623a30303120646c7672643a303031207375626d697420646174653a3235303130323135333020646f6e6520646174653a3235303130323135333120737461743a44454c49565244206572723a30303020746578743a48656c6c6f20776f726c64042300030300000427000102001e000b3061316232633364346500",
    ),
];

/// A read buffer holding `wire` whose storage is already shared, as a `Framed` read buffer is
/// after its first frame: splitting a frame off it costs a reference count, not an allocation.
fn read_buffer(wire: &[u8]) -> BytesMut {
    let mut buf = BytesMut::with_capacity(wire.len() + 64);
    buf.extend_from_slice(wire);
    drop(buf.split_off(wire.len()));
    buf
}

fn decode_smppd(wire: &[u8]) -> smppd::pdu::Pdu {
    let mut buf = BytesMut::from(wire);
    match PduCodec::default().decode(&mut buf) {
        Ok(Some(Frame::Pdu(p))) => p,
        other => panic!("smppd did not decode the bench PDU: {other:?}"),
    }
}

fn decode_rusmpp(wire: &[u8]) -> rusmpp::Command {
    let mut buf = BytesMut::from(wire);
    match CommandCodec::new().decode(&mut buf) {
        Ok(Some(c)) => c,
        other => panic!("rusmpp did not decode the bench PDU: {other:?}"),
    }
}

fn bench(c: &mut Criterion) {
    for (name, hex) in CASES {
        let wire = hex::decode(hex).expect("bench hex");
        // Both libraries must understand these bytes, and re-encode them identically.
        let ours = decode_smppd(&wire);
        let theirs = decode_rusmpp(&wire);
        let mut out = BytesMut::new();
        PduCodec::default()
            .encode(&ours, &mut out)
            .expect("smppd encodes");
        assert_eq!(&out[..], &wire[..], "smppd re-encoding differs for {name}");
        let mut out = BytesMut::new();
        CommandCodec::new()
            .encode(&theirs, &mut out)
            .expect("rusmpp encodes");
        assert_eq!(&out[..], &wire[..], "rusmpp re-encoding differs for {name}");

        let mut g = c.benchmark_group(format!("decode/{name}"));
        g.bench_function("smppd", |b| {
            let mut codec = PduCodec::default();
            b.iter_batched(
                || read_buffer(&wire),
                |mut buf| black_box(codec.decode(&mut buf)),
                BatchSize::SmallInput,
            )
        });
        g.bench_function("rusmpp", |b| {
            let mut codec = CommandCodec::new();
            b.iter_batched(
                || read_buffer(&wire),
                |mut buf| black_box(codec.decode(&mut buf)),
                BatchSize::SmallInput,
            )
        });
        g.finish();

        let mut g = c.benchmark_group(format!("encode/{name}"));
        g.bench_function("smppd", |b| {
            let mut codec = PduCodec::default();
            let mut dst = BytesMut::with_capacity(4096);
            b.iter(|| {
                dst.clear();
                let r = codec.encode(black_box(&ours), &mut dst);
                black_box((r.is_ok(), dst.len()))
            })
        });
        g.bench_function("rusmpp", |b| {
            let mut codec = CommandCodec::new();
            let mut dst = BytesMut::with_capacity(4096);
            b.iter(|| {
                dst.clear();
                let r = codec.encode(black_box(&theirs), &mut dst);
                black_box((r.is_ok(), dst.len()))
            })
        });
        g.finish();
    }
}

// No plots: criterion's plotters backend panics when the machine has no fonts (a fresh CI box).
criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = bench
}
criterion_main!(benches);
