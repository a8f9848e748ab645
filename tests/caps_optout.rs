//! Issue #19 items 3 and 4 through the public interface: frequency caps (`[[cap]]`) enforced
//! at submit, durably (a restart keeps the count), and opt-out that follows the sender
//! (`[[sender]]`), driven by MO replies injected at an SMSC simulator and read back with
//! `smppd optout list`.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::{MoMessage, SimConfig, SimHandle, Simulator};
use support::{Client, Daemon, DaemonBuilder};

/// One SMSC (the simulator) and one route for everything; `extra` goes before them.
fn config(sim: &SimHandle, extra: &str) -> String {
    format!(
        r#"{extra}
[[smsc]]
name = "op-a"
address = "{a}"
system_id = "smppd"
password = "secret"
reconnect_min = "200ms"
reconnect_max = "1s"
[[route]]
name = "default"
smsc = ["op-a"]
"#,
        a = sim.addr(),
    )
}

async fn start(extra: &str) -> (SimHandle, Daemon, Client) {
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .expect("simulator");
    let d = DaemonBuilder::new(config(&sim, extra))
        .inherit_stderr()
        .start_blocking();
    let mut c = d.client().await;
    c.wait_bound(&["op-a"]).await;
    (sim, d, c)
}

fn marketing(to: &str, from: &str) -> Value {
    json!({"op":"submit","to":to,"from":from,"text":"Sale! Reply STOP to opt out","class":"marketing"})
}

fn transactional(to: &str, from: &str) -> Value {
    json!({"op":"submit","to":to,"from":from,"text":"Your code is 1234"})
}

/// `ok`, or the error code.
fn outcome(v: &Value) -> String {
    if v["ok"] == true {
        "ok".into()
    } else {
        v["error"]["code"].as_str().unwrap_or("?").into()
    }
}

// ---- opt-out by sender ------------------------------------------------------------------

const SENDERS: &str = r#"[[sender]]
address = "72000"
aliases = ["ACME", "AcmeNews"]
"#;

fn inject_mo(sim: &SimHandle, from: &str, to: &str, text: &str) {
    sim.inject_mo(MoMessage {
        system_id: None,
        from: from.trim_start_matches('+').into(),
        to: to.into(),
        text: text.into(),
        concatenated: false,
    });
}

/// Injects an MO, then submits `probe` until its outcome is `want` (the MO is recorded
/// asynchronously); returns the last answer.
async fn mo_until(
    sim: &SimHandle,
    c: &mut Client,
    mo: (&str, &str, &str),
    probe: Value,
    want: &str,
) -> Value {
    inject_mo(sim, mo.0, mo.1, mo.2);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = c.call(probe.clone()).await;
        if outcome(&v) == want {
            return v;
        }
        assert!(Instant::now() < deadline, "MO {mo:?} did not apply: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn optout_cli(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["optout", "--addr", d.submit.as_str()];
    all.extend_from_slice(args);
    let out = support::smppd(&all);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The (number, scope) pairs `smppd optout list --json` shows.
fn listed(d: &Daemon) -> Vec<(String, String)> {
    let (ok, out, err) = optout_cli(d, &["list", "--json"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json line");
            let s = |k: &str| v[k].as_str().expect("field").to_owned();
            (s("number"), s("scope"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mo_stop_opts_out_of_its_senders_group_and_stopall_of_every_sender() {
    let (sim, d, mut c) = start(SENDERS).await;
    let n = "+46701230001";
    // "Stopp tack" to 72000: marketing from 72000 and from its alias is refused, naming the
    // scope; another sender's marketing and 72000's transactional messages still go.
    let v = mo_until(
        &sim,
        &mut c,
        (n, "72000", "Stopp tack"),
        marketing(n, "72000"),
        "opted_out",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("72000"),
        "{v}"
    );
    let v = c.call(marketing(n, "ACME")).await;
    assert_eq!(outcome(&v), "opted_out", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("from 72000"),
        "{v}"
    );
    assert_eq!(
        outcome(&c.call(marketing(n, "acmenews")).await),
        "opted_out"
    );
    assert_eq!(outcome(&c.call(marketing(n, "OtherShop")).await), "ok");
    assert_eq!(outcome(&c.call(transactional(n, "72000")).await), "ok");
    assert_eq!(listed(&d), [(n.to_owned(), "72000".to_owned())]);

    // STOPALL: every sender is refused, and the list says `all`.
    let v = mo_until(
        &sim,
        &mut c,
        (n, "72000", "STOPALL"),
        marketing(n, "OtherShop"),
        "opted_out",
    )
    .await;
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("every sender"),
        "{v}"
    );
    assert_eq!(outcome(&c.call(transactional(n, "OtherShop")).await), "ok");

    // START to 72000 undoes exactly that scope: the global opt-out stays.
    let m = "+46701230002";
    mo_until(
        &sim,
        &mut c,
        (m, "72000", "STOP"),
        marketing(m, "ACME"),
        "opted_out",
    )
    .await;
    mo_until(
        &sim,
        &mut c,
        (m, "73000", "stop please"),
        marketing(m, "73000"),
        "opted_out",
    )
    .await;
    mo_until(
        &sim,
        &mut c,
        (n, "72000", "Start"),
        marketing(n, "ACME"),
        "opted_out",
    )
    .await;
    mo_until(
        &sim,
        &mut c,
        (m, "72000", "START"),
        marketing(m, "ACME"),
        "ok",
    )
    .await;
    assert_eq!(outcome(&c.call(marketing(m, "73000")).await), "opted_out");
    let scopes = listed(&d);
    assert_eq!(
        scopes,
        [
            (n.to_owned(), "all".to_owned()),
            (m.to_owned(), "73000".to_owned())
        ],
        "START removed only 72000's entries"
    );
    assert_eq!(
        outcome(&c.call(marketing(n, "OtherShop")).await),
        "opted_out"
    );

    // The table shows the scope column; the global opt-out goes only with --scope all.
    let (ok, out, err) = optout_cli(&d, &["list"]);
    assert!(ok, "{err}");
    assert!(out.lines().next().unwrap_or("").contains("SCOPE"), "{out}");
    assert!(out.contains(&format!("{n:<17} all ")), "{out}");
    let (ok, out, err) = optout_cli(&d, &["remove", n, "--scope", "all"]);
    assert!(ok && out.contains("removed"), "{out}{err}");
    assert_eq!(outcome(&c.call(marketing(n, "ACME")).await), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn optout_by_scope_through_the_cli_and_the_api() {
    let (_sim, d, mut c) = start(SENDERS).await;
    let n = "+46701230003";
    // An alias names its group: the entry is kept under the group's address.
    let (ok, out, err) = optout_cli(&d, &["add", n, "--scope", "AcmeNews"]);
    assert!(ok, "{err}");
    assert_eq!(out, format!("{n}: added to the opt-out list of 72000\n"));
    assert_eq!(outcome(&c.call(marketing(n, "72000")).await), "opted_out");
    assert_eq!(outcome(&c.call(marketing(n, "Other")).await), "ok");
    // Without --scope: the global list, as before scopes existed.
    let (ok, out, _) = optout_cli(&d, &["add", n]);
    assert!(
        ok && out == format!("{n}: added to the opt-out list\n"),
        "{out}"
    );
    let (ok, out, _) = optout_cli(&d, &["list"]);
    assert!(ok && out.ends_with("1 number, 2 entries\n"), "{out}");
    // The API op: remove exactly one scope.
    let v = c
        .call(json!({"op":"optout","action":"remove","number":n,"scope":"ACME"}))
        .await;
    assert_eq!(
        (v["changed"].clone(), v["scope"].clone()),
        (json!(true), json!("72000")),
        "{v}"
    );
    assert_eq!(listed(&d), [(n.to_owned(), "all".to_owned())]);
    let v = c
        .call(json!({"op":"optout","action":"add","number":n,"scope":""}))
        .await;
    assert_eq!(outcome(&v), "bad_request", "{v}");
}

// ---- frequency caps ---------------------------------------------------------------------

const CAPS: &str = r#"[[cap]]
max = 3
per = "15s"
[[cap]]
max = 1
per = "1h"
tag = "campaign"
"#;

fn tagged(to: &str, campaign: &str) -> Value {
    let mut v = marketing(to, "ACME");
    v["tags"] = json!({ "campaign": campaign });
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fourth_marketing_message_is_capped_until_the_window_frees_and_restarts_keep_the_count()
{
    let (_sim, mut d, mut c) = start(CAPS).await;
    let r = "+46701230010";
    for i in 0..3 {
        let v = c.call(marketing(r, "ACME")).await;
        assert_eq!(outcome(&v), "ok", "submit {i}: {v}");
    }
    let before = smppd::clock::now_ms();
    let v = c.call(marketing(r, "ACME")).await;
    assert_eq!(outcome(&v), "frequency_capped", "{v}");
    let message = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("max = 3") && message.contains("per = \"15s\""),
        "{v}"
    );
    let allowed_at = v["error"]["allowed_at"].as_i64().expect("allowed_at");
    assert!(allowed_at > before && allowed_at <= before + 15_000, "{v}");
    // `smppd send` says when it would be allowed.
    let out = support::smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--to",
        r,
        "--from",
        "ACME",
        "--class",
        "marketing",
        "--text",
        "Rea",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("frequency_capped")
            && err.contains("; allowed from 20"),
        "{err}"
    );
    // A refused submit did not count, transactional is not capped, another recipient is not.
    assert_eq!(outcome(&c.call(transactional(r, "ACME")).await), "ok");
    assert_eq!(
        outcome(&c.call(marketing("+46701230011", "ACME")).await),
        "ok"
    );
    // A repeated idempotency key is the first message again, counted once.
    let keyed = |key: &str| {
        let mut v = marketing("+46701230012", "ACME");
        v["key"] = json!(key);
        v
    };
    let first = c.call(keyed("k1")).await;
    for _ in 0..3 {
        let v = c.call(keyed("k1")).await;
        assert_eq!(
            (v["id"].clone(), v["duplicate"].clone()),
            (first["id"].clone(), json!(true)),
            "{v}"
        );
    }
    assert_eq!(outcome(&c.call(keyed("k2")).await), "ok");
    assert_eq!(outcome(&c.call(keyed("k3")).await), "ok");
    assert_eq!(outcome(&c.call(keyed("k4")).await), "frequency_capped");

    // The count is in the store: a restarted daemon still refuses, with the same time.
    drop(c);
    d.stop();
    d.spawn().await;
    let mut c = d.client().await;
    let v = c.call(marketing(r, "ACME")).await;
    assert_eq!(outcome(&v), "frequency_capped", "after a restart: {v}");
    assert_eq!(v["error"]["allowed_at"].as_i64(), Some(allowed_at), "{v}");

    // Once the oldest accept has left the window (at `allowed_at`), one more is accepted.
    let wait = allowed_at - smppd::clock::now_ms() + 200;
    tokio::time::sleep(Duration::from_millis(wait.max(0) as u64)).await;
    assert_eq!(outcome(&c.call(marketing(r, "ACME")).await), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_cap_counts_per_campaign() {
    let (_sim, _d, mut c) = start(CAPS).await;
    let r = "+46701230020";
    assert_eq!(outcome(&c.call(tagged(r, "xmas")).await), "ok");
    let v = c.call(tagged(r, "xmas")).await;
    assert_eq!(outcome(&v), "frequency_capped", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("tag = \"campaign\""),
        "{v}"
    );
    // Another campaign, and an untagged message, have their own counts.
    assert_eq!(outcome(&c.call(tagged(r, "easter")).await), "ok");
    assert_eq!(outcome(&c.call(marketing(r, "ACME")).await), "ok");
    // The per-recipient cap counts them all: 3 accepted in 15 s.
    let v = c.call(tagged(r, "midsummer")).await;
    assert_eq!(outcome(&v), "frequency_capped", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("max = 3"),
        "{v}"
    );
}
