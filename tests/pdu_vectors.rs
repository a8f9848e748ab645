//! Runs every golden vector in `pdus/` in both directions: hex → PDU → JSON must equal the
//! expected JSON (keys in the same order), and JSON → PDU → hex must give the original bytes (or
//! `reencoded_hex` for inputs in a non-canonical form). Invalid cases must fail with the named
//! field and command_status.

use std::path::Path;

use bytes::Bytes;
use smppd::pdu::json::{self, Json};
use smppd::pdu::{CommandStatus, Pdu};

fn cases() -> Vec<(String, Json)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("pdus");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("pdus/ exists") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable vector");
        let case = Json::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        out.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            case,
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn str_of<'a>(case: &'a Json, key: &str) -> Option<&'a str> {
    match case.get(key) {
        Some(Json::Str(s)) => Some(s),
        _ => None,
    }
}

#[test]
fn golden_vectors_both_directions() {
    let cases = cases();
    assert!(
        cases.len() >= 70,
        "expected the full set of golden vectors, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let hex_in = str_of(case, "hex").expect("every case has hex");
        let wire = Bytes::from(hex::decode(hex_in).expect("valid hex"));
        if let Some(expected_err) = case.get("error") {
            let field = match expected_err.get("field") {
                Some(Json::Str(f)) => Some(f.as_str()),
                _ => None,
            };
            let status = expected_err.get("command_status").and_then(|s| match s {
                Json::Num(n) => n.as_u64(),
                _ => None,
            });
            match Pdu::decode(wire) {
                Ok(p) => failures.push(format!("{name}: decoded but should fail: {p:?}")),
                Err(e) => {
                    if e.field() != field || Some(u64::from(e.command_status().0)) != status {
                        failures.push(format!(
                            "{name}: got field {:?} status {} ({e}), expected field {field:?} status {status:?}",
                            e.field(),
                            e.command_status()
                        ));
                    }
                }
            }
            continue;
        }
        let expected = case.get("json").expect("valid cases have json");
        match Pdu::decode(wire) {
            Err(e) => failures.push(format!("{name}: decode failed: {e}")),
            Ok(pdu) => {
                let got = json::to_json(&pdu);
                if &got != expected {
                    failures.push(format!(
                        "{name}: decode\n  got      {got}\n  expected {expected}"
                    ));
                }
            }
        }
        let want_hex = str_of(case, "reencoded_hex").unwrap_or(hex_in);
        match json::from_json(expected).map(|p| p.to_bytes()) {
            Ok(Ok(bytes)) if hex::encode(&bytes) == want_hex => {}
            Ok(Ok(bytes)) => failures.push(format!(
                "{name}: encode\n  got      {}\n  expected {want_hex}",
                hex::encode(bytes)
            )),
            Ok(Err(e)) => failures.push(format!("{name}: encode failed: {e}")),
            Err(e) => failures.push(format!("{name}: JSON rejected: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing vectors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_command_and_typed_tlv_has_a_vector() {
    let cases = cases();
    let mut commands = std::collections::BTreeSet::new();
    let mut tlvs = std::collections::BTreeSet::new();
    for (_, case) in &cases {
        if let Some(j) = case.get("json") {
            if let Some(Json::Str(c)) = j.get("command") {
                commands.insert(c.clone());
            }
            if let Some(Json::Obj(kv)) = j.get("tlvs") {
                tlvs.extend(kv.iter().map(|(k, _)| k.clone()));
            }
        }
    }
    for (id, name) in smppd::pdu::CommandId::ALL {
        assert!(
            commands.contains(name),
            "no golden vector for {name} ({id:?})"
        );
    }
    for (_, name) in smppd::pdu::TYPED_TLVS {
        assert!(tlvs.contains(*name), "no golden vector with TLV {name}");
    }
    let _ = CommandStatus::ESME_ROK;
}
