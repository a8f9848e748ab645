//! `smppd pdu decode|encode` through the binary: JSON on stdout for every golden vector, hex back,
//! and exit status 2 with exactly one stderr line naming the field on bad input.

use std::path::Path;
use std::process::{Command, Output};

use smppd::pdu::json::Json;

fn smppd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(args)
        .output()
        .expect("runs smppd")
}

fn stdout_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = String::from_utf8(out.stdout.clone()).expect("utf-8");
    assert_eq!(s.lines().count(), 1, "one line on stdout: {s}");
    s.trim_end().to_owned()
}

fn assert_one_line_error(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "exit status 2");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one stderr line, got: {err}");
    assert!(
        err.contains(needle),
        "stderr {err:?} should mention {needle:?}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn decode_then_encode_every_valid_vector() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdus");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let case = Json::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let (Some(Json::Str(hex)), Some(expected)) = (case.get("hex"), case.get("json")) else {
            continue;
        };
        let printed = stdout_line(&smppd(&["pdu", "decode", hex]));
        assert_eq!(
            &Json::parse(&printed).unwrap(),
            expected,
            "{}",
            path.display()
        );
        let want = match case.get("reencoded_hex") {
            Some(Json::Str(h)) => h,
            _ => hex,
        };
        assert_eq!(
            &stdout_line(&smppd(&["pdu", "encode", &printed])),
            want,
            "{}",
            path.display()
        );
        n += 1;
    }
    assert!(n >= 60, "only {n} vectors ran");
}

#[test]
fn bad_hex_exits_2_with_one_line() {
    assert_one_line_error(&smppd(&["pdu", "decode", "0000001g"]), "hex");
}

#[test]
fn invalid_pdu_names_the_field() {
    let sixteen_a = "41".repeat(16);
    // bind_transceiver whose system_id has 16 characters: no room for the NUL in C≤16.
    let hex = format!(
        "0000002700000009000000000000000{}{sixteen_a}00000034000000",
        1
    );
    let out = smppd(&["pdu", "decode", &hex]);
    assert_one_line_error(&out, "system_id");
    assert_one_line_error(
        &smppd(&["pdu", "decode", "0000001000000111000000000000000c"]),
        "command_id",
    );
}

#[test]
fn invalid_json_names_the_key() {
    let out = smppd(&[
        "pdu",
        "encode",
        r#"{"command":"submit_sm","sequence_number":1,"source_adr":"x"}"#,
    ]);
    assert_one_line_error(&out, "source_adr");
    let out = smppd(&[
        "pdu",
        "encode",
        r#"{"command":"submit_sm","sequence_number":1,"short_message":"41","sm_length":2}"#,
    ]);
    assert_one_line_error(&out, "sm_length");
    let long = "1".repeat(21);
    let out = smppd(&[
        "pdu",
        "encode",
        &format!(r#"{{"command":"submit_sm","sequence_number":1,"destination_addr":"{long}"}}"#),
    ]);
    assert_one_line_error(&out, "destination_addr");
    let out = smppd(&[
        "pdu",
        "encode",
        r#"{"command":"submit_sm","sequence_number":1,"short_message":"41","tlvs":{"message_payload":"42"}}"#,
    ]);
    assert_one_line_error(&out, "short_message");
    assert_one_line_error(&smppd(&["pdu", "encode", "{not json"]), "json");
}
