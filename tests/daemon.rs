//! `smppd run` as a process, with two simulated SMSCs, driven through the submit protocol.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::{MoMessage, SimConfig, SimHandle, Simulator};
use support::metrics::{first as sample, http_get};
use support::{Client, Daemon, DaemonBuilder, free_port};

/// The `[[smsc]]` and `[[route]]` sections naming the two simulators; `extra` ends op-b's.
fn smscs(a: &SimHandle, b: &SimHandle, extra: &str) -> String {
    format!(
        r#"[[smsc]]
name = "op-a"
address = "{a}"
system_id = "smppd"
password = "secret"
window = 20
reconnect_min = "200ms"
reconnect_max = "1s"
[[smsc]]
name = "op-b"
address = "{b}"
system_id = "smppd"
password = "secret"
split = "sar"
reconnect_min = "200ms"
reconnect_max = "1s"
{extra}
[[route]]
name = "nordics"
prefix = ["+46", "+47"]
smsc = ["op-a", "op-b"]
[[route]]
name = "default"
smsc = ["op-b"]
"#,
        a = a.addr(),
        b = b.addr(),
    )
}

/// Starts `smppd run` with a config naming the two simulators; returns once it listens.
fn start(a: &SimHandle, b: &SimHandle, extra: &str) -> Daemon {
    start_with(a, b, "", extra)
}

/// As [`start`], with extra `[listen]` lines.
fn start_with(a: &SimHandle, b: &SimHandle, listen: &str, extra: &str) -> Daemon {
    DaemonBuilder::new(smscs(a, b, extra))
        .listen(listen)
        .inherit_stderr()
        .start_blocking()
}

async fn sims() -> (SimHandle, SimHandle) {
    let mut a = SimConfig::new("127.0.0.1:0");
    a.record_submits = true;
    let mut b = SimConfig::new("127.0.0.1:0");
    b.record_submits = true;
    b.id_format = smppd::sim::IdFormat::Decimal;
    (
        Simulator::start(a).await.expect("sim a"),
        Simulator::start(b).await.expect("sim b"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_multipart_messages_are_delivered_through_their_routes() {
    let (a, b) = sims().await;
    let mut d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;

    let one = c.submit("+46 70-123 45 67", "Hej världen").await;
    assert_eq!(
        (
            one["ok"].clone(),
            one["parts"].clone(),
            one["encoding"].clone(),
            one["route"].clone()
        ),
        (json!(true), json!(1), json!("gsm7"), json!("nordics")),
        "{one}"
    );
    // 161 GSM septets: two parts; via op-a (UDH).
    let long = c.submit("+4712345678", &"a".repeat(161)).await;
    assert_eq!(
        (long["parts"].clone(), long["encoding"].clone()),
        (json!(2), json!("gsm7")),
        "{long}"
    );
    // Emoji: UCS-2, and the default route (op-b, SAR).
    let emoji = c
        .submit("+33612345678", &format!("{} 🎉", "x".repeat(70)))
        .await;
    assert_eq!(
        (
            emoji["parts"].clone(),
            emoji["encoding"].clone(),
            emoji["route"].clone()
        ),
        (json!(2), json!("ucs2"), json!("default")),
        "{emoji}"
    );

    for (reply, smsc) in [(&one, "op-a"), (&long, "op-a"), (&emoji, "op-b")] {
        let id = reply["id"].as_str().expect("id");
        let m = c.final_state(id).await;
        assert_eq!(m["state"], "delivered", "{m}");
        let parts = m["parts"].as_array().expect("parts");
        assert_eq!(parts.len() as u64, reply["parts"].as_u64().expect("n"));
        for p in parts {
            assert_eq!(p["smsc"], smsc, "{m}");
            assert_eq!(p["stat"], "DELIVRD", "{m}");
        }
    }
    // What the SMSCs saw: op-a got 3 submit_sm (1 + 2 with UDH), op-b 2 with SAR TLVs.
    let sa = a.submits();
    let sb = b.submits();
    assert_eq!(sa.len(), 3, "{sa:?}");
    assert_eq!(sb.len(), 2, "{sb:?}");
    assert_eq!(d.stop().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_requests_get_their_codes_and_duplicates_their_first_id() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let code = |v: &Value| v["error"]["code"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        code(&c.submit("0701234567", "x").await),
        "invalid_destination"
    );
    assert_eq!(
        code(
            &c.call(
                json!({"op":"submit","to":"+46701234567","from":"ACME Corporation AB","text":"x"})
            )
            .await
        ),
        "invalid_sender"
    );
    assert_eq!(code(&c.call(json!({"op":"submit","to":"+46701234567","from":"ACME","text":"x","encoding":"gsm7"})).await), "");
    let e = c.call(json!({"op":"submit","to":"+46701234567","from":"ACME","text":"€ and 😀","encoding":"gsm7"})).await;
    assert_eq!(code(&e), "unencodable", "{e}");
    assert_eq!(
        code(&c.submit("+46701234567", &"x".repeat(153 * 10 + 1)).await),
        "too_long"
    );
    assert_eq!(
        code(
            &c.call(
                json!({"op":"submit","to":"+46701234567","from":"ACME","text":"x","route":"nope"})
            )
            .await
        ),
        "bad_request"
    );
    assert_eq!(
        code(&c.call(json!({"op":"query","id":"00000000000000ff"})).await),
        "not_found"
    );
    // A malformed line: bad_request, and the connection stays usable.
    c.send(b"{not json\n").await;
    assert_eq!(code(&c.line().await), "bad_request");

    let first = c
        .call(
            json!({"op":"submit","to":"+46701234567","from":"ACME","text":"once","key":"order-17"}),
        )
        .await;
    let again = c
        .call(
            json!({"op":"submit","to":"+46701234567","from":"ACME","text":"once","key":"order-17"}),
        )
        .await;
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["duplicate"], true);
    let id = first["id"].as_str().expect("id");
    assert_eq!(c.final_state(id).await["state"], "delivered");
    // Only one of them reached an SMSC (plus the forced-gsm7 message above).
    assert_eq!(
        a.submits()
            .iter()
            .filter(|s| s.payload.as_ref() == b"once")
            .count(),
        1
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_the_first_smsc_is_down_and_nothing_is_lost() {
    let (a, b) = sims().await;
    // op-a rejects every bind: the nordics route must use op-b.
    a.update_faults(|f| f.reject_binds = Some(smppd::pdu::CommandStatus::ESME_RBINDFAIL));
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let r = c.submit("+46701234567", &format!("msg {i}")).await;
        assert_eq!(r["ok"], true, "{r}");
        ids.push(r["id"].as_str().expect("id").to_owned());
    }
    for id in &ids {
        let m = c.final_state(id).await;
        assert_eq!(
            (m["state"].clone(), m["parts"][0]["smsc"].clone()),
            (json!("delivered"), json!("op-b")),
            "{m}"
        );
    }
    assert_eq!(a.submits().len(), 0);
    assert_eq!(b.submits().len(), 20);

    // A long message was rendered for op-a (UDH); op-b takes SAR, so it is re-split: two
    // submit_sm without UDH, carrying the SAR TLVs.
    let long = c.submit("+46701234567", &"z".repeat(200)).await;
    assert_eq!(long["parts"], 2, "{long}");
    let m = c.final_state(long["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "delivered", "{m}");
    assert_eq!(m["parts"].as_array().map(Vec::len), Some(2), "{m}");
    let sar: Vec<_> = b
        .submits()
        .into_iter()
        .filter(|s| s.payload.starts_with(b"zzz"))
        .collect();
    assert_eq!(sar.len(), 2, "{sar:?}");
    assert!(
        sar.iter().all(|s| s.esm_class & 0x40 == 0),
        "no UDH after the re-split: {sar:?}"
    );
    let text: Vec<u8> = sar.iter().flat_map(|s| s.payload.to_vec()).collect();
    assert_eq!(text, vec![b'z'; 200]);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_get_receipts_and_mo_and_resume_without_gaps() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let mut sub = d.client().await;
    let ok = sub.call(json!({"op":"subscribe","after":0})).await;
    assert_eq!(ok["ok"], true);
    let first = c.submit("+46701234567", "one").await;
    let ev = sub.line().await;
    assert_eq!(
        (ev["event"].clone(), ev["state"].clone()),
        (json!("dlr"), json!("delivered")),
        "{ev}"
    );
    assert_eq!(ev["id"], first["id"], "{ev}");
    let seq = ev["seq"].as_i64().expect("seq");
    drop(sub);

    // While nobody listens: two more receipts and an MO.
    c.submit("+46701234568", "two").await;
    c.submit("+46701234569", "three").await;
    a.inject_mo(MoMessage {
        system_id: None,
        from: "46709999999".into(),
        to: "72000".into(),
        text: "Hello back".into(),
        concatenated: false,
    });
    let mut sub = d.client().await;
    sub.call(json!({"op":"subscribe","after":seq})).await;
    let mut got = Vec::new();
    while got.len() < 3 {
        got.push(sub.line().await);
    }
    let seqs: Vec<i64> = got
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]) && seqs[0] > seq,
        "{got:?}"
    );
    let kinds: Vec<&str> = got
        .iter()
        .map(|e| e["event"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "dlr").count(), 2, "{got:?}");
    let mo = got
        .iter()
        .find(|e| e["event"] == "mo")
        .expect("an mo event");
    assert_eq!(
        (mo["text"].clone(), mo["from"].clone()),
        (json!("Hello back"), json!("+46709999999")),
        "{mo}"
    );
    drop(d);
}

/// Sends `n` submits pipelined on one connection; returns the ids.
async fn submit_many(c: &mut Client, to: &str, n: usize) -> Vec<String> {
    let mut batch = String::new();
    for i in 0..n {
        batch.push_str(
            &json!({"op":"submit","ref":i,"to":to,"from":"ACME","text":format!("m{i}")})
                .to_string(),
        );
        batch.push('\n');
    }
    c.send(batch.as_bytes()).await;
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let v = c.line().await;
        assert_eq!(v["ok"], true, "{v}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_routes_tps_is_respected_at_the_smsc() {
    let (a, b) = sims().await;
    let d = start(
        &a,
        &b,
        "[[route]]\nname = \"paced\"\nprefix = [\"+49\"]\nsmsc = [\"op-a\"]\ntps = 100\nburst = 10\n",
    );
    let mut c = d.client().await;
    c.wait_bound(&["op-a"]).await;
    submit_many(&mut c, "+4915112345678", 1500).await;
    // Count what the simulator received over 10 s once sending has begun.
    let start = Instant::now();
    while a.stats().submits == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "nothing sent");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = a.stats().submits;
    let t0 = Instant::now();
    tokio::time::sleep_until((t0 + Duration::from_secs(10)).into()).await;
    let sent = a.stats().submits - first;
    // 100/s for 10 s: 1000, within 10 % (the issue's acceptance bound; the smoothness of the
    // pacing is measured by the benchmarks, not asserted here).
    assert!(
        (900..=1100).contains(&sent),
        "sent {sent} in 10 s at tps 100"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttling_smsc_slows_the_bind_and_every_message_gets_through() {
    let (a, b) = sims().await;
    a.update_faults(|f| f.throttle_every = 4);
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let ids = submit_many(&mut c, "+46701234567", 60).await;
    for id in &ids {
        let m = c.final_state(id).await;
        assert_eq!(m["state"], "delivered", "{m}");
    }
    let stats = a.stats();
    assert!(stats.throttled >= 10, "{stats:?}");
    // Every message was accepted exactly once by op-a (throttled attempts were retried).
    let ok = a
        .submits()
        .iter()
        .filter(|s| s.status == Some(smppd::pdu::CommandStatus::ESME_ROK))
        .count();
    assert_eq!(ok, 60);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_healthz_after_traffic() {
    let (a, b) = sims().await;
    let port = free_port();
    let d = start_with(&a, &b, &format!("metrics = \"127.0.0.1:{port}\""), "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let ids = submit_many(&mut c, "+46701234567", 5).await;
    for id in &ids {
        assert_eq!(c.final_state(id).await["state"], "delivered");
    }
    assert_eq!(
        c.submit("12", "x").await["error"]["code"],
        "invalid_destination"
    );
    // Gauges refresh once a second.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, body) = http_get(port, "/metrics").await;
    assert!(status.contains("200"), "{status}");
    let accepted = sample(
        &body,
        "smppd_messages_accepted_total",
        &["route=\"nordics\""],
    );
    assert_eq!(accepted, Some(5.0), "{body}");
    let submitted = sample(
        &body,
        "smppd_parts_submitted_total",
        &["smsc=\"op-a\"", "status=\"ESME_ROK\""],
    );
    assert_eq!(submitted, Some(5.0), "{body}");
    assert_eq!(
        sample(&body, "smppd_receipts_total", &["stat=\"DELIVRD\""]),
        Some(5.0),
        "{body}"
    );
    assert_eq!(
        sample(
            &body,
            "smppd_messages_rejected_total",
            &["code=\"invalid_destination\""]
        ),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "smppd_bind_up", &["smsc=\"op-a\""]),
        Some(1.0),
        "{body}"
    );
    // Every submit that reached the accept is timed on the daemon's side (the one refused
    // while its line was parsed is answered at once and not counted).
    assert_eq!(
        sample(&body, "smppd_api_submit_seconds_count", &[]),
        Some(5.0),
        "{body}"
    );
    assert!(
        body.contains("# HELP smppd_parts_submitted_total"),
        "{body}"
    );
    assert!(!body.contains("secret"), "a password leaked into metrics");
    let (status, body) = http_get(port, "/healthz").await;
    assert!(
        status.contains("200") && body.starts_with("ok: 2/2 binds up"),
        "{status} {body}"
    );
    let (status, _) = http_get(port, "/nope").await;
    assert!(status.contains("404"), "{status}");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_when_an_smsc_goes_down_mid_run_loses_nothing() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let mut batch = String::new();
    for i in 0..300 {
        batch.push_str(&json!({"op":"submit","ref":i,"to":"+46701234567","from":"ACME","text":format!("m{i}")}).to_string());
        batch.push('\n');
    }
    c.send(batch.as_bytes()).await;
    let mut ids = Vec::new();
    for n in 0..300 {
        if n == 100 {
            // op-a goes away mid-run and refuses to come back.
            a.update_faults(|f| f.reject_binds = Some(smppd::pdu::CommandStatus::ESME_RBINDFAIL));
            a.drop_connections();
        }
        let v = c.line().await;
        assert_eq!(v["ok"], true, "{v}");
        ids.push(v["id"].as_str().expect("id").to_owned());
    }
    // Every message is acknowledged by an SMSC. (Receipts for what op-a took before it went
    // away stay at op-a: those messages remain `submitted` until receipt_wait passes.)
    let mut via_b = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in &ids {
        loop {
            let v = c.call(json!({"op":"query","id":id})).await;
            let m = &v["message"];
            if ["submitted", "delivered"].contains(&m["state"].as_str().unwrap_or("")) {
                via_b += usize::from(m["parts"][0]["smsc"] == "op-b");
                break;
            }
            assert!(Instant::now() < deadline, "{id} not acknowledged: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(via_b > 0, "nothing failed over");
    // Every message reached an SMSC; duplicates only for what was in flight at the drop.
    let mut seen = std::collections::HashSet::new();
    for s in a.submits().iter().chain(b.submits().iter()) {
        if s.status == Some(smppd::pdu::CommandStatus::ESME_ROK) {
            seen.insert(s.payload.clone());
        }
    }
    assert_eq!(seen.len(), 300);
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_a_good_file_and_keeps_the_running_config_on_a_bad_one() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let before = std::fs::read_to_string(&d.config).expect("read config");

    // A bad file: refused with file, line and key; nothing changes.
    let bad = before.replace("window = 20", "window = 20\nwindw = 3");
    std::fs::write(&d.config, &bad).expect("write");
    let v = c.call(json!({"op":"reload"})).await;
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("smppd.toml:") && msg.contains("windw"),
        "{msg}"
    );
    let r = c.submit("+4915112345678", "still the old routes").await;
    assert_eq!(r["route"], "default", "{r}");

    // A good file: a new route for +49 through op-a, applied at once; binds untouched.
    let good = before.replace(
        "[[route]]\nname = \"default\"",
        "[[route]]\nname = \"germany\"\nprefix = [\"+49\"]\nsmsc = [\"op-a\"]\n\n[[route]]\nname = \"default\"",
    );
    assert_ne!(good, before);
    std::fs::write(&d.config, &good).expect("write");
    let v = c.call(json!({"op":"reload"})).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        v["changes"]
            .as_str()
            .unwrap_or("")
            .contains("route germany updated"),
        "{v}"
    );
    let r = c.submit("+4915112345678", "new route").await;
    assert_eq!(r["route"], "germany", "{r}");
    let m = c.final_state(r["id"].as_str().expect("id")).await;
    assert_eq!(
        (m["state"].clone(), m["parts"][0]["smsc"].clone()),
        (json!("delivered"), json!("op-a")),
        "{m}"
    );
    // Unchanged SMSCs were not re-bound.
    assert_eq!(a.stats().binds, 1);
    assert_eq!(b.stats().binds, 1);

    // A changed connection setting re-binds that SMSC only.
    let rebind = good.replace("window = 20", "window = 30");
    std::fs::write(&d.config, &rebind).expect("write");
    let v = c.call(json!({"op":"reload"})).await;
    assert!(
        v["changes"]
            .as_str()
            .unwrap_or("")
            .contains("smsc op-a re-bound"),
        "{v}"
    );
    c.wait_bound(&["op-a"]).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.stats().binds < 2 {
        assert!(Instant::now() < deadline, "op-a not re-bound");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.stats().binds, 1);
    let r = c.submit("+46701234567", "after rebind").await;
    assert_eq!(
        c.final_state(r["id"].as_str().expect("id")).await["state"],
        "delivered"
    );
    drop(d);
}

/// The alphanumeric sender ACME belongs with the short code 72000 (opt-outs sent to 72000
/// apply to it).
const ACME_72000: &str = "[[sender]]\naddress = \"72000\"\naliases = [\"ACME\"]\n";

/// Injects a one-part MO from `from` (E.164) to 72000 at the simulator.
fn inject_mo(sim: &smppd::sim::SimHandle, from: &str, text: &str) {
    sim.inject_mo(MoMessage {
        system_id: None,
        from: from.trim_start_matches('+').into(),
        to: "72000".into(),
        text: text.into(),
        concatenated: false,
    });
}

/// Injects an MO from `from` at the simulator and waits until a marketing submit to it gets
/// `opted_out` (`want_out`) or `ok`.
async fn mo_then_wait(
    sim: &smppd::sim::SimHandle,
    c: &mut support::Client,
    from: &str,
    text: &str,
    want_out: bool,
) {
    inject_mo(sim, from, text);
    let marketing =
        json!({"op":"submit","to":from,"from":"ACME","text":"Sale!","class":"marketing"});
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.call(marketing.clone()).await;
        if (v["ok"] == false) == want_out {
            if want_out {
                assert_eq!(v["error"]["code"], "opted_out", "{v}");
            }
            return;
        }
        assert!(Instant::now() < deadline, "{text:?} did not apply: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_reply_opts_out_by_its_first_word() {
    let (a, b) = sims().await;
    // The MOs go to 72000; the probes' sender ACME belongs with it (an opt-out follows the
    // sender it was sent to: tests/caps_optout.rs).
    let d = start(&a, &b, ACME_72000);
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    // Real replies: the keyword first, then anything; case, punctuation and diacritics ignored.
    for (n, text) in ["Stopp tack", "STOP!", "stop please", "Stöpp"]
        .iter()
        .enumerate()
    {
        let number = format!("+4670111{n:04}");
        mo_then_wait(&a, &mut c, &number, text, true).await;
        mo_then_wait(&a, &mut c, &number, "Start igen", false).await;
    }
    // A stop keyword that is not the first word opts nobody out: the MO is recorded, and a
    // marketing message still goes (checked after a START-free MO was surely processed).
    let number = "+46701119999";
    inject_mo(&a, number, "Please do not stop");
    mo_then_wait(&a, &mut c, "+46701119998", "STOP", true).await;
    let v = c
        .call(json!({"op":"submit","to":number,"from":"ACME","text":"Sale!","class":"marketing"}))
        .await;
    assert_eq!(v["ok"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_out_by_mo_keyword_blocks_marketing_but_not_transactional() {
    let (a, b) = sims().await;
    let d = start(&a, &b, ACME_72000);
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let marketing =
        json!({"op":"submit","to":"+46701112222","from":"ACME","text":"Sale!","class":"marketing"});
    assert_eq!(c.call(marketing.clone()).await["ok"], true);
    a.inject_mo(MoMessage {
        system_id: None,
        from: "46701112222".into(),
        to: "72000".into(),
        text: " stop ".into(),
        concatenated: false,
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.call(marketing.clone()).await;
        if v["ok"] == false {
            assert_eq!(v["error"]["code"], "opted_out", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "STOP not applied: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let otp = c
        .call(json!({"op":"submit","to":"+46701112222","from":"ACME","text":"Code 1234"}))
        .await;
    assert_eq!(otp["ok"], true, "transactional passes: {otp}");
    a.inject_mo(MoMessage {
        system_id: None,
        from: "46701112222".into(),
        to: "72000".into(),
        text: "START".into(),
        concatenated: false,
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.call(marketing.clone()).await["ok"] != true {
        assert!(Instant::now() < deadline, "START not applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_messages_in_flight_loses_nothing_and_they_go_after_a_restart() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    // op-a stops answering: everything sent stays in flight.
    a.update_faults(|f| f.silent = true);
    let ids = submit_many(&mut c, "+46701234567", 30).await;
    let dir = d.dir.clone();
    // The same Daemon value (and so its directory and store) lives across the restart.
    let mut d = d;
    let status = {
        d.sigterm();
        // While it drains (op-a is silent, so the window waits for its deadline), a connected
        // client's new submit is refused with shutting_down.
        refused_while_stopping(&mut c).await;
        drop(c);
        d.wait_stopped(Duration::from_secs(30))
    };
    assert_eq!(status.code(), Some(0), "a clean exit");
    // Restart on the same store with op-a answering again.
    a.update_faults(|f| f.silent = false);
    d.spawn().await;
    assert!(dir.join("smppd.db").exists());
    let mut c = d.client().await;
    for id in &ids {
        let m = c.final_state(id).await;
        assert_eq!(m["state"], "delivered", "{m}");
    }
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_or_token_in_logs_status_or_errors() {
    let (a, b) = sims().await;
    let body = format!(
        r#"[[smsc]]
name = "op-a"
address = "{a}"
system_id = "smppd"
password = "Pw9xQz"
[[smsc]]
name = "op-b"
address = "{b}"
system_id = "smppd"
password = "Pw9xQz"
[[route]]
name = "default"
smsc = ["op-a", "op-b"]
"#,
        a = a.addr(),
        b = b.addr()
    );
    let mut d = DaemonBuilder::new(body)
        .listen(r#"token = "tok-9f8e7d6c5b4a3210""#)
        .store_file("s.db")
        .level("trace")
        .log(r#"format = "json""#)
        .start()
        .await;
    let mut c = d.client().await;
    // Unauthenticated, then a wrong token, then the right one.
    assert_eq!(
        c.call(json!({"op":"status"})).await["error"]["code"],
        "unauthorized"
    );
    assert_eq!(
        c.call(json!({"op":"auth","token":"tok-wrong-0000000000"}))
            .await["error"]["code"],
        "unauthorized"
    );
    assert_eq!(
        c.call(json!({"op":"auth","token":"tok-9f8e7d6c5b4a3210"}))
            .await["ok"],
        true
    );
    c.wait_bound(&["op-a", "op-b"]).await;
    let r = c.submit("+46701234567", "hello").await;
    c.final_state(r["id"].as_str().expect("id")).await;
    let status = c.call(json!({"op":"status"})).await.to_string();
    let _ = d.stop();
    let logs = std::fs::read_to_string(&d.log).expect("logs");
    assert!(logs.lines().count() > 5, "expected trace logs: {logs}");
    for secret in ["Pw9xQz", "tok-9f8e7d6c5b4a3210", "50773978517a"] {
        assert!(!logs.contains(secret), "{secret} in the logs");
        assert!(!status.contains(secret), "{secret} in status");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_past_its_validity_is_expired_and_never_sent() {
    let (a, b) = sims().await;
    // Neither SMSC lets us bind: nothing can be sent.
    for s in [&a, &b] {
        s.update_faults(|f| f.reject_binds = Some(smppd::pdu::CommandStatus::ESME_RBINDFAIL));
    }
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    let r = c
        .call(json!({"op":"submit","to":"+46701234567","from":"ACME","text":"code 1234","validity":"10s"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    // Nothing can leave: status shows it waiting, with its age.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let st = c.call(json!({"op":"status"})).await;
    let nordics = st["routes"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["name"] == "nordics").cloned())
        .expect("nordics in status");
    assert_eq!(nordics["queued"], 1, "{st}");
    assert!(
        nordics["oldest_s"].as_f64().is_some_and(|s| s >= 1.0),
        "{st}"
    );
    // After the validity has passed, the binds come back: the message must not go out.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for s in [&a, &b] {
        s.update_faults(|f| f.reject_binds = None);
    }
    let m = c.final_state(r["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "expired", "{m}");
    c.wait_bound(&["op-a", "op-b"]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        a.stats().submits + b.stats().submits,
        0,
        "an expired message was sent"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_expires_at_its_validity_while_no_smsc_is_bound() {
    let (a, b) = sims().await;
    // Neither SMSC lets us bind, and neither ever will during this test.
    for s in [&a, &b] {
        s.update_faults(|f| f.reject_binds = Some(smppd::pdu::CommandStatus::ESME_RBINDFAIL));
    }
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    let mut sub = d.client().await;
    assert_eq!(
        sub.call(json!({"op":"subscribe","after":0})).await["ok"],
        true
    );
    let r = c
        .call(json!({"op":"submit","to":"+33612345678","from":"ACME","text":"code 1234","validity":"10s"}))
        .await;
    assert_eq!(r["ok"], true, "{r}");
    let id = r["id"].as_str().expect("id");
    let m = c.final_state(id).await;
    assert_eq!(m["state"], "expired", "{m}");
    // Its final event came without any bind: a `state` event saying expired.
    let ev = sub.line().await;
    assert_eq!(
        (ev["event"].clone(), ev["id"].clone(), ev["state"].clone()),
        (json!("state"), json!(id), json!("expired")),
        "{ev}"
    );
    // Expired within a few seconds of the end of its validity (the sweep runs every second),
    // not when a bind came back (none did).
    let valid_until = m["accepted_at"].as_i64().expect("accepted_at") + 10_000;
    let late = m["done_at"].as_i64().expect("done_at") - valid_until;
    assert!(
        (0..5_000).contains(&late),
        "expired {late} ms after its validity: {m}"
    );
    assert_eq!(m["parts"][0]["state"], "expired", "{m}");
    assert_eq!(a.stats().submits + b.stats().submits, 0);
    drop(d);
}

/// Seconds of a relative SMPP time (`0000DDhhmmss000R`).
fn relative_secs(t: &str) -> u64 {
    assert!(
        t.len() == 16 && t.starts_with("0000") && t.ends_with("000R"),
        "{t:?}"
    );
    let n = |r: std::ops::Range<usize>| t[r].parse::<u64>().expect("digits");
    n(4..6) * 86_400 + n(6..8) * 3600 + n(8..10) * 60 + n(10..12)
}

/// Unix seconds of an absolute UTC SMPP time (`YYMMDDhhmmss000+`, 20YY).
fn absolute_secs(t: &str) -> i64 {
    assert!(t.len() == 16 && t.ends_with("000+"), "{t:?}");
    let n = |r: std::ops::Range<usize>| t[r].parse::<i64>().expect("digits");
    let (y, m, d) = (2000 + n(0..2), n(2..4), n(4..6));
    // Days from the civil date (Howard Hinnant's days_from_civil), independent of smppd's own.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(6..8) * 3600 + n(8..10) * 60 + n(10..12)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_period_carries_the_time_left_in_each_smscs_format() {
    let (a, b) = sims().await;
    // op-a: the default (relative); op-b: absolute.
    let d = start(&a, &b, r#"validity = "absolute""#);
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let rel = c
        .call(json!({"op":"submit","to":"+46701234567","from":"ACME","text":"rel","validity":"1h"}))
        .await;
    let abs = c
        .call(json!({"op":"submit","to":"+33612345678","from":"ACME","text":"abs","validity":"2h"}))
        .await;
    let none = c.submit("+46701234567", "none").await;
    for r in [&rel, &abs, &none] {
        let m = c.final_state(r["id"].as_str().expect("id")).await;
        assert_eq!(m["state"], "delivered", "{m}");
    }
    let field = |sim: &SimHandle, text: &[u8]| {
        sim.submits()
            .into_iter()
            .find(|s| &s.payload[..] == text)
            .map(|s| s.validity_period)
            .unwrap_or_else(|| panic!("{:?} not received", String::from_utf8_lossy(text)))
    };
    let left = relative_secs(&field(&a, b"rel"));
    assert!((3590..=3600).contains(&left), "{left} s left of 1 h");
    let accepted = c.call(json!({"op":"query","id":abs["id"]})).await["message"]["accepted_at"]
        .as_i64()
        .expect("accepted_at");
    let until = absolute_secs(&field(&b, b"abs"));
    assert_eq!(
        until,
        (accepted + 7_200_000) / 1000,
        "the end of the validity, UTC"
    );
    assert_eq!(field(&a, b"none"), "", "no validity: the SMSC's default");
    drop(d);

    // `none`: the field stays empty even for a message with a validity.
    let (a, b) = sims().await;
    let d = start(&a, &b, r#"validity = "none""#);
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let r = c
        .call(
            json!({"op":"submit","to":"+33612345678","from":"ACME","text":"plain","validity":"1h"}),
        )
        .await;
    assert_eq!(
        c.final_state(r["id"].as_str().expect("id")).await["state"],
        "delivered"
    );
    assert_eq!(field(&b, b"plain"), "");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_that_waits_past_its_validity_at_the_bind_is_not_written() {
    let (a, b) = sims().await;
    // op-b (route `default`) takes one submit at a time and answers each after 13 s: the second
    // message is claimed and handed to the bind at once, then waits there for the window.
    b.update_faults(|f| f.response_delay = Duration::from_secs(13));
    let d = start(&a, &b, "window = 1\nresponse_timeout = \"30s\"");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let first = c.submit("+33612345678", "first").await;
    assert_eq!(first["ok"], true, "{first}");
    let second = c
        .call(json!({"op":"submit","to":"+33612345678","from":"ACME","text":"second","validity":"10s"}))
        .await;
    assert_eq!(second["ok"], true, "{second}");
    // Handed to the bind (claimed) long before its validity ends.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let q = c.call(json!({"op":"query","id":second["id"]})).await;
    assert_eq!(q["message"]["parts"][0]["attempts"], 1, "claimed: {q}");
    let m = c.final_state(second["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "expired", "{m}");
    assert_eq!(m["parts"][0]["state"], "expired", "{m}");
    let m1 = c.final_state(first["id"].as_str().expect("id")).await;
    assert_eq!(m1["state"], "delivered", "{m1}");
    let sent: Vec<Vec<u8>> = b.submits().iter().map(|s| s.payload.to_vec()).collect();
    assert_eq!(
        sent,
        vec![b"first".to_vec()],
        "only the first reached the SMSC"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_tool_reports_what_it_measured() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    // Both simulators' control ports, so the tool reports what the SMSCs counted.
    let mut controls = Vec::new();
    for s in [&a, &b] {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        controls.push(l.local_addr().unwrap().to_string());
        tokio::spawn(smppd::sim::control::serve(l, s.control()));
    }
    let pid = d.pid().expect("smppd runs").to_string();
    let r = bench_json(&[
        "--addr",
        &d.submit,
        "-n",
        "60",
        "-C",
        "2",
        "-p",
        "8",
        "--settle",
        "20",
        "--pid",
        &pid,
        "--sim-control",
        &controls[0],
        "--sim-control",
        &controls[1],
    ])
    .await;
    assert_eq!(r["accepted"], 60, "{r}");
    assert_eq!(r["final"], 60, "{r}");
    assert_eq!(r["final_states"]["delivered"], 60, "{r}");
    assert!(
        r["accept_ms"]["p99"].as_f64().is_some_and(|x| x > 0.0),
        "{r}"
    );
    assert!(
        r["daemon_peak_rss_mib"].as_f64().is_some_and(|x| x > 1.0),
        "{r}"
    );
    // The load tool's own CPU over the run (a reading from /proc, so whole ticks: it may be 0).
    assert!(
        r["load_cpu_seconds"].as_f64().is_some_and(|x| x >= 0.0),
        "{r}"
    );
    // The simulators saw every part: 60 messages of the default mix (1, 3 or 2 parts each), and
    // the tool reports the same count from their control ports.
    let parts = a.stats().submits + b.stats().submits;
    assert!(parts >= 60, "{parts}");
    assert_eq!(r["sim"]["submits"], parts, "{r}");
    assert_eq!(r["sim"]["responses"]["ESME_ROK"], parts, "{r}");
    // Every part's receipt left the simulator before its message could become final.
    assert!(
        r["sim"]["receipts_sent"]
            .as_u64()
            .is_some_and(|n| n >= parts),
        "{r}"
    );
    assert!(
        r["sim"]["max_submits_100ms"]
            .as_u64()
            .is_some_and(|n| (1..=parts).contains(&n)),
        "{r}"
    );
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_load_tool_paces_to_a_target_rate_and_counts_every_response() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    // 40 messages at 100/s over 2 connections: each connection sends every 20 ms, while the
    // pipeline (8) would allow more; a paced sender reads responses as they come, so the run
    // ends with every response counted.
    let r = bench_json(&[
        "--addr", &d.submit, "-n", "40", "-C", "2", "-p", "8", "--rate", "100", "--settle", "20",
    ])
    .await;
    assert_eq!(r["accepted"], 40, "{r}");
    assert_eq!(r["final_states"]["delivered"], 40, "{r}");
    // Pacing is a lower bound on the run's length (19 intervals of 20 ms per connection), so
    // the accept rate cannot exceed the target by more than the first, immediate tick.
    let rate = r["accept_rate"].as_f64().expect("accept_rate");
    assert!(
        rate <= 110.0,
        "paced at 100/s but accepted at {rate}/s: {r}"
    );
    drop(d);
}

/// A route that reroutes, for `+45` numbers, over op-a then op-b (the template's "nordics" route
/// has the same SMSCs without the flag).
const REROUTE_ROUTE: &str = r#"
[[route]]
name = "danes"
prefix = ["+45"]
smsc = ["op-a", "op-b"]
reroute_undelivered = true
"#;

fn mix(delivered: u32, undeliverable: u32, rejected: u32) -> smppd::sim::StatusMix {
    smppd::sim::StatusMix {
        delivered,
        undeliverable,
        expired: 0,
        rejected,
    }
}

/// Submits the SMSC saw for one destination (digits, no `+`).
fn submits_to(sim: &SimHandle, digits: &str) -> usize {
    sim.submits()
        .iter()
        .filter(|s| s.destination_addr == digits)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reroute_after_undeliv_resends_once_through_the_next_smsc() {
    let (a, b) = sims().await;
    // op-a fails everything with UNDELIV; op-b delivers.
    a.update_receipts(|r| r.mix = mix(0, 1, 0));
    b.update_receipts(|r| r.mix = mix(1, 0, 0));
    let port = free_port();
    let mut d = start_with(
        &a,
        &b,
        &format!("metrics = \"127.0.0.1:{port}\""),
        REROUTE_ROUTE,
    );
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;

    // With the flag: UNDELIV from op-a, resent through op-b, delivered, same id.
    let on = c.submit("+4511111111", "reroute me").await;
    assert_eq!(on["route"], "danes", "{on}");
    let id = on["id"].as_str().expect("id");
    let m = c.final_state(id).await;
    assert_eq!(m["id"], id, "{m}");
    assert_eq!(m["state"], "delivered", "{m}");
    let parts = m["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 1, "{m}");
    assert_eq!(parts[0]["smsc"], "op-b", "{m}");
    assert_eq!(parts[0]["stat"], "DELIVRD", "{m}");
    assert_eq!(submits_to(&a, "4511111111"), 1, "op-a got it once");
    assert_eq!(submits_to(&b, "4511111111"), 1, "op-b got it once");

    // Without the flag (same SMSCs): the UNDELIV is final.
    let off = c.submit("+46722222222", "no reroute").await;
    assert_eq!(off["route"], "nordics", "{off}");
    let m = c.final_state(off["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "undeliverable", "{m}");
    assert_eq!(m["parts"][0]["smsc"], "op-a", "{m}");
    assert_eq!(submits_to(&a, "46722222222"), 1);
    assert_eq!(submits_to(&b, "46722222222"), 0, "not rerouted");

    // Rerouted only once: when op-b rejects the resend too, that is the final outcome.
    b.update_receipts(|r| r.mix = mix(0, 0, 1));
    let twice = c.submit("+4533333333", "fails everywhere").await;
    let m = c.final_state(twice["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "rejected", "{m}");
    assert_eq!(m["parts"][0]["smsc"], "op-b", "{m}");
    assert_eq!(submits_to(&a, "4533333333"), 1, "not sent back to op-a");
    assert_eq!(submits_to(&b, "4533333333"), 1, "op-b got it once");

    // The UNDELIV arriving before op-a's submit_sm_resp (held, applied at the response) is
    // rerouted too.
    a.update_receipts(|r| r.before_response = true);
    b.update_receipts(|r| r.mix = mix(1, 0, 0));
    let early = c.submit("+4544444444", "receipt first").await;
    let m = c.final_state(early["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "delivered", "{m}");
    assert_eq!(m["parts"][0]["smsc"], "op-b", "{m}");
    assert_eq!(submits_to(&a, "4544444444"), 1);
    assert_eq!(submits_to(&b, "4544444444"), 1);

    let (_, body) = http_get(port, "/metrics").await;
    assert_eq!(
        sample(
            &body,
            "smppd_reroutes_total",
            &["route=\"danes\"", "from=\"op-a\"", "to=\"op-b\""]
        ),
        Some(3.0),
        "{body}"
    );
    assert_eq!(d.stop().code(), Some(0));
}

/// Runs the `smppd` binary with `args`; returns (success, stdout, stderr).
fn smppd(args: &[&str]) -> (bool, String, String) {
    let out = support::smppd(args);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_file_pipelines_every_row_and_prints_the_summary_and_final_states() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let csv = dir.path().join("numbers.csv");
    let mut rows = String::from("to,name\n");
    for i in 0..300 {
        rows.push_str(&format!("+467010{i:05},\"Name{i}\"\n"));
    }
    rows.push_str("12ab,Broken\n");
    // The same numbers again, one written differently: skipped, not sent twice.
    rows.push_str("+46 70-100 00 07,Dup\n+46701000299,Again\n");
    std::fs::write(&csv, rows).expect("write csv");
    let (ok, stdout, stderr) = smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--file",
        csv.to_str().expect("utf-8 path"),
        "--text",
        "Hej {name}!",
        "--in-flight",
        "64",
        "--wait",
        "--timeout",
        "30",
    ]);
    // One rejected row makes the exit status 1, after the summary.
    assert!(!ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("sent 301 rows from"), "{stdout}");
    assert!(stdout.contains("\naccepted: 300 (300 parts)\n"), "{stdout}");
    assert!(
        stdout.contains("\nrejected: 1\n  invalid_destination: 1\n"),
        "{stdout}"
    );
    assert!(stdout.contains("final states after"), "{stdout}");
    assert!(stdout.contains("\n  delivered: 300\n"), "{stdout}");
    assert!(
        stdout.contains(
            "skipped duplicate numbers: 2\n  PATH:303: +46701000007 (first on line 9)\n  PATH:304: +46701000299 (first on line 301)\n"
                .replace("PATH", &csv.display().to_string())
                .as_str()
        ),
        "{stdout}"
    );
    assert!(
        stderr.contains("numbers.csv:302: invalid_destination"),
        "{stderr}"
    );
    assert!(stderr.contains("1 of 301 rows rejected"), "{stderr}");
    // The SMSC got every message once, with the template rendered from its row.
    let mut seen: Vec<(String, Vec<u8>)> = a
        .submits()
        .into_iter()
        .map(|s| (s.destination_addr, s.payload.to_vec()))
        .collect();
    seen.sort();
    let want: Vec<(String, Vec<u8>)> = (0..300)
        .map(|i| {
            (
                format!("467010{i:05}"),
                format!("Hej Name{i}!").into_bytes(),
            )
        })
        .collect();
    assert_eq!(seen, want);
    assert!(b.submits().is_empty());

    // A file without a `to` column is refused before anything is sent.
    std::fs::write(&csv, "number,text\n+46701234567,hi\n").expect("write csv");
    let (ok, _, stderr) = smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--file",
        csv.to_str().expect("utf-8 path"),
    ]);
    assert!(!ok && stderr.contains("no `to` column"), "{stderr}");
    // One message from flags still works.
    let (ok, stdout, stderr) = smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--to",
        "+46701234567",
        "--text",
        "single",
        "--class",
        "marketing",
        "--tag",
        "campaign=xmas",
        "--tag",
        "team=growth",
    ]);
    assert!(ok && stdout.starts_with("accepted "), "{stdout}{stderr}");
    // Its tags and class are the message's, as `query` shows them.
    let id = stdout["accepted ".len()..].split(':').next().expect("id");
    let m = c.call(json!({"op":"query","id":id})).await;
    assert_eq!(
        (&m["message"]["class"], &m["message"]["tags"]),
        (
            &json!("marketing"),
            &json!({"campaign":"xmas","team":"growth"})
        ),
        "{m}"
    );
    let (ok, _, stderr) = smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--to",
        "+46701234567",
        "--text",
        "x",
        "--tag",
        "=nokey",
    ]);
    assert!(!ok && stderr.contains("expected KEY=VALUE"), "{stderr}");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optout_cli_add_import_list_remove_through_the_daemon() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let addr = d.submit.clone();
    let optout = |args: &[&str]| {
        let mut all = vec!["optout", "--addr", addr.as_str()];
        all.extend_from_slice(args);
        smppd(&all)
    };
    let marketing =
        |to: &str| json!({"op":"submit","to":to,"from":"ACME","text":"Sale!","class":"marketing"});

    // Added in another spelling: stored normalized, and marketing to it is refused.
    let (ok, out, err) = optout(&["add", "0046 70-111 22 33"]);
    assert!(ok, "{err}");
    assert_eq!(out, "+46701112233: added to the opt-out list\n");
    let (ok, out, _) = optout(&["add", "+46701112233"]);
    assert!(ok && out.contains("already on the opt-out list"), "{out}");
    let v = c.call(marketing("+46701112233")).await;
    assert_eq!(v["error"]["code"], "opted_out", "{v}");
    assert_eq!(
        c.call(json!({"op":"submit","to":"+46701112233","from":"ACME","text":"OTP 1"}))
            .await["ok"],
        true
    );

    // Import: a header, a comment, a CSV line, one invalid number.
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("optouts.csv");
    std::fs::write(
        &file,
        "number\n# from the old system\n+4670200000,x\n\n+47 912 34 567\n+46701112233\nnot-a-number\n",
    )
    .expect("write");
    let (ok, out, err) = optout(&["import", file.to_str().expect("utf-8")]);
    assert!(!ok, "one invalid line fails the import: {out}");
    assert!(
        out.contains("2 added, 1 already listed, 1 invalid"),
        "{out}"
    );
    assert!(err.contains("optouts.csv:7: \"not-a-number\""), "{err}");
    let v = c.call(marketing("+4791234567")).await;
    assert_eq!(v["error"]["code"], "opted_out", "{v}");

    let (ok, out, err) = optout(&["list"]);
    assert!(ok, "{err}");
    let numbers: Vec<&str> = out
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with('+'))
        .collect();
    assert_eq!(
        numbers,
        ["+46701112233", "+4670200000", "+4791234567"],
        "{out}"
    );
    assert!(out.ends_with("3 numbers\n"), "{out}");
    assert!(out.contains(" manual "), "{out}");

    let (ok, out, _) = optout(&["remove", "+46701112233"]);
    assert!(
        ok && out == "+46701112233: removed from the opt-out list\n",
        "{out}"
    );
    let (ok, out, _) = optout(&["remove", "+46701112233"]);
    assert!(ok && out.contains("was not on the opt-out list"), "{out}");
    assert_eq!(c.call(marketing("+46701112233")).await["ok"], true);
    let (ok, out, _) = optout(&["list", "--json"]);
    assert!(ok && out.lines().count() == 2, "{out}");
    let (ok, _, err) = optout(&["add", "12ab"]);
    assert!(!ok && err.contains("invalid_destination"), "{err}");
    drop(d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_bind_since_rates_and_delivery_ratio_after_traffic() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let ids = submit_many(&mut c, "+46701230000", 40).await;
    for id in &ids {
        c.final_state(id).await;
    }
    // The rate counts complete seconds: wait until the submits' second is over.
    let deadline = Instant::now() + Duration::from_secs(10);
    let v = loop {
        let v = c.call(json!({"op":"status"})).await;
        if v["smscs"][0]["rate"].as_f64().unwrap_or(0.0) > 0.0 {
            break v;
        }
        assert!(Instant::now() < deadline, "no rate: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as f64;
    let op_a = &v["smscs"][0];
    assert_eq!(op_a["name"], "op-a", "{v}");
    // 40 submits over a 10-second average: at most 4/s, and more than zero.
    let rate = op_a["rate"].as_f64().expect("smsc rate");
    assert!(rate > 0.0 && rate <= 4.0, "{v}");
    assert_eq!(v["smscs"][1]["rate"], 0.0, "op-b got nothing: {v}");
    for s in v["smscs"].as_array().expect("smscs") {
        for bind in s["binds"].as_array().expect("binds") {
            let since = bind["since_ms"].as_f64().expect("since_ms");
            assert!(since > now_ms - 120_000.0 && since <= now_ms, "{bind}");
            assert!(bind.get("last_error").is_some(), "{bind}");
        }
    }
    let nordics = &v["routes"][0];
    assert_eq!(nordics["name"], "nordics", "{v}");
    let route_rate = nordics["rate"].as_f64().expect("route rate");
    assert!(route_rate > 0.0 && route_rate <= 4.0, "{v}");
    for window in ["5m", "60m"] {
        let w = &v["delivery"][window];
        let fin = w["final"].as_u64().expect("final");
        let delivered = w["delivered"].as_u64().expect("delivered");
        assert_eq!(fin, 40, "{v}");
        assert!(delivered <= fin, "{v}");
        let ratio = w["ratio"].as_f64().expect("ratio");
        assert!((ratio - delivered as f64 / 40.0).abs() < 0.001, "{v}");
        let states: u64 = w["states"]
            .as_object()
            .expect("states")
            .values()
            .map(|n| n.as_u64().expect("count"))
            .sum();
        assert_eq!(states, 40, "{v}");
    }

    // The same through the CLI table.
    let (ok, out, err) = smppd(&["status", "--addr", &d.submit]);
    assert!(ok, "{err}");
    assert!(
        out.contains("SINCE (UTC)") && out.contains("LAST ERROR"),
        "{out}"
    );
    assert!(out.contains("RATE/S"), "{out}");
    let last5 = out
        .lines()
        .find(|l| l.starts_with("last 5 min"))
        .unwrap_or_else(|| panic!("no delivery line: {out}"));
    assert_eq!(
        last5.split_whitespace().nth(3),
        Some("40"),
        "final count: {out}"
    );
    drop(d);
}

/// Start-up and connection errors name what failed and give the OS's reason once (a regression:
/// the reason was printed twice, once in the message and once as its cause).
#[test]
fn start_and_connect_errors_give_their_cause_once() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let d = DaemonBuilder::new(
        "[[smsc]]\nname = \"x\"\naddress = \"127.0.0.1:9\"\nsystem_id = \"a\"\n\
         password = \"b\"\n[[route]]\nname = \"r\"\nsmsc = [\"x\"]\n",
    )
    .submit(&format!("127.0.0.1:{port}"))
    .build();
    let conf = &d.config;
    let (ok, _, err) = smppd(&["run", "--config", conf.to_str().expect("utf-8")]);
    assert!(!ok, "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("smppd: "))
        .unwrap_or_else(|| panic!("no error line: {err}"));
    assert!(
        line.starts_with(&format!("smppd: listen 127.0.0.1:{port}: ")),
        "{line}"
    );
    assert_eq!(line.matches("os error").count(), 1, "{line}");

    // The port closed: the connection is refused.
    drop(taken);
    let (ok, _, err) = smppd(&["status", "--addr", &format!("127.0.0.1:{port}")]);
    assert!(!ok, "{err}");
    assert!(err.contains("cannot connect to smppd at"), "{err}");
    assert_eq!(err.matches("os error").count(), 1, "{err}");
}

/// Runs `smppd bench --json ARGS`, asserts it succeeded and returns its one JSON object.
async fn bench_json(args: &[&str]) -> Value {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(["bench", "--json"])
        .args(args)
        .output()
        .await
        .expect("run smppd bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_while_stopping_is_refused_and_the_stop_still_exits_cleanly() {
    let (a, b) = sims().await;
    let mut d = start(&a, &b, "");
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    // op-a stops answering: the stop waits in its drain while the connection is still open.
    a.update_faults(|f| f.silent = true);
    submit_many(&mut c, "+46701234567", 5).await;
    d.sigterm();
    refused_while_stopping(&mut c).await;
    // Stopping: no reload may start sessions the stop would not drain.
    let v = c.call(json!({"op":"reload"})).await;
    assert_eq!(v["error"]["code"], "bad_request", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("stopping"), "{msg}");
    drop(c);
    let status = d.wait_stopped(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "a clean exit");
}

/// After SIGTERM, a connected client's new submit is refused with `shutting_down` within 5 s.
async fn refused_while_stopping(c: &mut Client) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let v = c.submit("+46701234567", "too late").await;
        if v["ok"] == false {
            assert_eq!(v["error"]["code"], "shutting_down", "{v}");
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still accepting after SIGTERM: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_marketing_text_carries_the_opt_out_instruction() {
    let (a, b) = sims().await;
    let body = format!(
        "[marketing]\nfooter = \"Svara STOPP för att avsluta\"\n\n{}",
        smscs(&a, &b, "")
    );
    let d = DaemonBuilder::new(body).start().await;
    let mut c = d.client().await;
    c.wait_bound(&["op-a", "op-b"]).await;
    let submit = |text: &str, class: &str| json!({"op":"submit","to":"+46701234567","from":"ACME","text":text,"class":class});
    // 150 characters: one part alone, two with the footer (the reply counts the footer).
    let sale = "A".repeat(150);
    let v = c.call(submit(&sale, "marketing")).await;
    assert_eq!(
        (v["ok"].clone(), v["parts"].clone()),
        (json!(true), json!(2)),
        "{v}"
    );
    let with_stop = c
        .call(submit("Sale! Reply STOP to opt out", "marketing"))
        .await;
    assert_eq!(
        with_stop["parts"], 1,
        "a text with a stop keyword gets no footer: {with_stop}"
    );
    let otp = c.call(submit(&sale, "transactional")).await;
    assert_eq!(otp["parts"], 1, "transactional texts get no footer: {otp}");
    for id in [&v["id"], &with_stop["id"], &otp["id"]] {
        c.final_state(id.as_str().expect("id")).await;
    }
    // What the SMSC received: the footer after a newline, split over the marketing message's
    // two parts (GSM 03.38 bytes as the simulator records them: ö is 0x7C).
    let joined: Vec<u8> = a
        .submits()
        .iter()
        .filter(|r| r.payload.starts_with(&[0x05, 0x00, 0x03]))
        .flat_map(|r| r.payload[6..].to_vec())
        .collect();
    let joined = String::from_utf8_lossy(&joined);
    assert!(
        joined.ends_with("\nSvara STOPP f\u{7c}r att avsluta"),
        "{joined:?}"
    );
    let plain: Vec<String> = a
        .submits()
        .iter()
        .filter(|r| !r.payload.starts_with(&[0x05, 0x00, 0x03]))
        .map(|r| String::from_utf8_lossy(&r.payload).into_owned())
        .collect();
    assert!(plain.iter().all(|t| !t.contains("Svara")), "{plain:?}");
    drop(d);

    // Without a footer, require_optout refuses such a text and names the keywords.
    let body = format!(
        "[marketing]\nrequire_optout = true\n\n{}",
        smscs(&a, &b, "")
    );
    let d = DaemonBuilder::new(body).start().await;
    let mut c = d.client().await;
    let v = c.call(submit("Big sale today", "marketing")).await;
    assert_eq!(v["error"]["code"], "missing_optout", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("STOP"),
        "{v}"
    );
    let ok = c
        .call(submit("Big sale today, reply STOP to opt out", "marketing"))
        .await;
    assert_eq!(ok["ok"], true, "{ok}");
    let otp = c.call(submit("Code 1234", "transactional")).await;
    assert_eq!(otp["ok"], true, "{otp}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_are_checked_against_their_countrys_numbering_plan() {
    let (a, b) = sims().await;
    let d = start(&a, &b, "");
    let mut c = d.client().await;
    // Too short for Sweden: refused, naming the country and the reason.
    let v = c.submit("+4670123", "hi").await;
    assert_eq!(v["error"]["code"], "invalid_destination", "{v}");
    let why = v["error"]["message"].as_str().unwrap_or("");
    assert!(why.contains("Sweden") && why.contains("too short"), "{v}");
    // A Swedish fixed line (Stockholm 08): accepted, flagged.
    let fixed = c.submit("+4681234567", "hi").await;
    assert_eq!(
        (fixed["ok"].clone(), fixed["warning"].clone()),
        (json!(true), json!("not_mobile")),
        "{fixed}"
    );
    // A Swedish mobile: no warning.
    let mobile = c.submit("+46701234567", "hi").await;
    assert_eq!(mobile["ok"], true, "{mobile}");
    assert!(mobile.get("warning").is_none(), "{mobile}");
}
