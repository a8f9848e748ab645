//! `smppd text inspect` through the real binary.

use std::process::{Command, Output};

fn smppd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(args)
        .output()
        .expect("run smppd")
}

fn json(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["text", "inspect", "--json"];
    all.extend_from_slice(args);
    let out = smppd(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object on one line");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn json_for_a_two_part_gsm_text() {
    let text = "b".repeat(161);
    let v = json(&["--reference", "30", &text]);
    assert_eq!(v["encoding"], "gsm7");
    assert_eq!(v["parts"], 2);
    assert_eq!(v["units"], 161);
    assert_eq!(v["replaced"], 0);
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0]["udh"], "0500031e0201");
    assert_eq!(segs[1]["udh"], "0500031e0202");
    assert_eq!(segs[1]["payload"], "6262626262626262");
    assert_eq!(segs[0]["payload"].as_str().unwrap().len(), 153 * 2);
}

#[test]
fn json_national_shift_smart_and_forced_encodings() {
    let v = json(&["--shift", "tr,es,pt", "Şişli'de ağaç ığık"]);
    assert_eq!(v["encoding"], "gsm7+tr");
    assert_eq!(v["parts"], 1);
    assert_eq!(v["segments"][0]["udh"], "03250101");

    let v = json(&["Şişli'de ağaç ığık"]);
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["units"], 18);

    let v = json(&["--smart", "It\u{2019}s \u{201C}ok\u{201D}"]);
    assert_eq!(v["encoding"], "gsm7");
    assert_eq!(v["replaced"], 3);
    assert_eq!(v["segments"][0]["payload"], hex::encode("It's \"ok\""));

    let v = json(&["--encoding", "latin1", "café"]);
    assert_eq!(v["encoding"], "latin1");
    assert_eq!(v["segments"][0]["payload"], "636166e9");

    let v = json(&["-5 °C"]);
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["characters"], 5);

    let v = json(&["--encoding", "ucs2", "hi"]);
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["segments"][0]["payload"], "00680069");
}

#[test]
fn json_split_methods() {
    let text = "x".repeat(200);
    let v = json(&["--split", "sar", "--reference", "258", &text]);
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(segs[0]["udh"], "");
    assert_eq!(segs[1]["sar"]["msg_ref_num"], 258);
    assert_eq!(segs[1]["sar"]["total_segments"], 2);
    assert_eq!(segs[1]["sar"]["segment_seqnum"], 2);

    let v = json(&["--split", "udh16", "--reference", "258", &text]);
    assert_eq!(v["segments"][0]["udh"], "06080401020201");

    let v = json(&["--split", "payload", &text]);
    assert_eq!(v["parts"], 1);
    assert_eq!(v["segments"][0]["payload"].as_str().unwrap().len(), 400);
}

#[test]
fn human_output_names_encoding_counts_and_parts() {
    let out = smppd(&["text", "inspect", "--shift", "tr", &"ş".repeat(160)]);
    assert!(out.status.success());
    let s = String::from_utf8(out.stdout).unwrap();
    assert!(s.contains("encoding:    gsm7+tr (data_coding 0x00)"), "{s}");
    assert!(s.contains("characters:  160"), "{s}");
    assert!(s.contains("septets:     160"), "{s}");
    assert!(s.contains("parts:       2"), "{s}");
    assert!(
        s.contains("part 1/2: 149 septets, udh 0800030002012501"),
        "{s}"
    );
    assert!(s.contains("part 2/2: 11 septets"), "{s}");
}

#[test]
fn errors_exit_non_zero_with_a_reason() {
    let out = smppd(&["text", "inspect", "--encoding", "gsm7", "abc ж"]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("'ж'") && err.contains("position 4"), "{err}");

    let out = smppd(&["text", "inspect", "--max-parts", "2", &"a".repeat(400)]);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("needs 3 parts"), "{err}");

    let out = smppd(&["text", "inspect", "--split", "udh32", "x"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("udh8, udh16, sar, payload")
    );

    let out = smppd(&["text", "inspect", "--shift", "de", "x"]);
    assert!(!out.status.success());
}

#[test]
fn class_marketing_shows_the_footer_the_daemon_appends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("smppd.toml");
    std::fs::write(
        &conf,
        "[marketing]\nfooter = \"Reply STOP to opt out\"\n[[smsc]]\nname = \"x\"\n\
         address = \"127.0.0.1:9\"\nsystem_id = \"a\"\npassword = \"b\"\n\
         [[route]]\nname = \"r\"\nsmsc = [\"x\"]\n",
    )
    .expect("write config");
    let conf = conf.display().to_string();
    // 150 characters fit one part; with "\nReply STOP to opt out" they take two.
    let text = "a".repeat(150);
    let plain = json(&[&text]);
    assert_eq!(
        (plain["units"].clone(), plain["parts"].clone()),
        (150.into(), 1.into())
    );
    let marketing = json(&["--class", "marketing", "--config", &conf, &text]);
    assert_eq!(marketing["units"], 172, "{marketing}");
    assert_eq!(marketing["parts"], 2, "{marketing}");
    // A text that already has a stop keyword is sent as it is.
    let with_stop = json(&[
        "--class",
        "marketing",
        "--config",
        &conf,
        "Sale, reply STOP",
    ]);
    assert_eq!(with_stop["units"], 16, "{with_stop}");
}
