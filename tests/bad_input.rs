//! The bad-input campaign on the submit protocol (issue #9, item 3): `smppd run` as a process
//! against an in-process simulator, and clients that send malformed JSON, invalid UTF-8, lines
//! over the 64 KiB limit, missing and wrong-typed fields, absurd values, never read their
//! responses, open 1,000 connections at once, or disconnect in the middle of a request.
//!
//! Throughout, a well-behaved client keeps submitting on its own connection: every one of its
//! messages must be accepted and delivered, the daemon must stay up, every bad line must get its
//! error code, and the daemon's peak RSS (VmHWM) must stay bounded. A summary table is printed
//! (see it with `cargo test --test bad_input -- --nocapture`); the longer campaign is
//! `cargo test --test bad_input -- --ignored --nocapture`.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::{SimConfig, SimHandle, Simulator};
use support::{Client, Daemon, DaemonBuilder};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The daemon's peak RSS may not pass this (it idles near 20 MiB; 1,000 connections and the slow
/// clients' bounded buffers add a few tens).
const MAX_PEAK_RSS_KIB: u64 = 256 * 1024;
const WRITE_TIMEOUT: &str = "2s";

/// Starts `smppd run` against `sim` with metrics and at most `max_connections` submit
/// connections.
async fn start(sim: &SimHandle, max_connections: usize) -> Daemon {
    let body = format!(
        r#"[[smsc]]
name = "op-a"
address = "{a}"
system_id = "smppd"
password = "secret"
window = 50
reconnect_min = "200ms"
reconnect_max = "1s"
[[route]]
name = "default"
smsc = ["op-a"]
"#,
        a = sim.addr(),
    );
    DaemonBuilder::new(body)
        .metrics()
        .listen(&format!(
            "max_connections = {max_connections}\nwrite_timeout = \"{WRITE_TIMEOUT}\""
        ))
        .inherit_stderr()
        .start()
        .await
}

/// A submit-protocol connection that waits up to 30 s for each answer (the daemon is busy).
async fn conn(d: &Daemon) -> Client {
    d.client().await.with_timeout(Duration::from_secs(30))
}

/// Sum of a metric's samples whose label set contains `label` (or all of them).
fn metric(text: &str, name: &str, label: &str) -> f64 {
    support::metrics::sum(text, name, &[label])
}

/// What one case sent and what came back.
#[derive(Default)]
struct Row {
    case: String,
    requests: u64,
    codes: BTreeMap<String, u64>,
    note: String,
}

impl Row {
    fn new(case: &str) -> Row {
        Row {
            case: case.to_owned(),
            ..Row::default()
        }
    }

    fn count(&mut self, response: &Value) -> String {
        let code = if response["ok"] == true {
            "ok".to_owned()
        } else {
            response["error"]["code"]
                .as_str()
                .unwrap_or("<no code>")
                .to_owned()
        };
        *self.codes.entry(code.clone()).or_default() += 1;
        code
    }
}

/// Messages that were acknowledged `ok` and must be delivered.
#[derive(Default)]
struct Accepted {
    ids: Vec<String>,
}

fn submit(to: &str, text: &str) -> Value {
    json!({"op":"submit","to":to,"from":"ACME","text":text})
}

/// Sends each line and checks the code of its one response; returns the responses.
async fn expect_codes(c: &mut Client, row: &mut Row, cases: &[(Vec<u8>, &str)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (line, want) in cases {
        let mut l = line.clone();
        l.push(b'\n');
        c.send(&l).await;
        let v = c.line().await;
        row.requests += 1;
        let got = row.count(&v);
        let shown = String::from_utf8_lossy(&line[..line.len().min(60)]).into_owned();
        assert_eq!(&got, want, "{shown:?} answered {v}");
        if got != "ok" {
            let msg = v["error"]["message"].as_str().unwrap_or("");
            assert!(!msg.is_empty(), "{shown:?}: error without a message");
            assert!(
                msg.len() <= 512,
                "{shown:?}: message of {} bytes",
                msg.len()
            );
        }
        out.push(v);
    }
    // The connection is still usable.
    let v = c.request(&json!({"op":"ping","ref":"after"})).await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["ref"], "after");
    out
}

fn b(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

async fn malformed_json(d: &Daemon) -> Row {
    let mut row = Row::new("malformed JSON");
    let mut c = conn(d).await;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let cases: Vec<(Vec<u8>, &str)> = [
        "not json",
        "{",
        "}",
        "[]",
        "[1,2]",
        "\"op\"",
        "42",
        "null",
        "{\"op\":\"ping\"",
        "{\"op\":\"ping\"}}",
        "{\"op\":\"ping\",}",
        "{'op':'ping'}",
        "{\"op\":\"ping\"} trailing",
        "{\"op\":\"ping\",\"ref\":}",
        "{\"op\":\"ping\"\u{0}}",
        "{\"op\":\"ping\",\"op\":\"status\"}",
        "{\"op\":\"ping\",\"ref\":1,\"ref\":2}",
        "{\"op\":\"ping\",\"ref\":\"unterminated}",
        "\u{feff}{\"op\":\"ping\"}",
        &deep,
    ]
    .iter()
    .map(|l| (b(l), "bad_request"))
    .collect();
    let replies = expect_codes(&mut c, &mut row, &cases).await;
    // An invalid request still echoes the ref it could read.
    let mut c2 = conn(d).await;
    let v = c2
        .request(&json!({"op":"submit","ref":{"k":[1,"x"]},"priority":"high"}))
        .await;
    row.requests += 1;
    row.count(&v);
    assert_eq!(v["ref"], json!({"k":[1,"x"]}), "{v}");
    assert!(replies.iter().all(|r| r["ref"].is_null() || r["ref"] == 1));
    row.note = "each answered, connection kept".into();
    row
}

async fn invalid_utf8(d: &Daemon) -> Row {
    let mut row = Row::new("invalid UTF-8");
    let mut c = conn(d).await;
    let cases: Vec<(Vec<u8>, &str)> = [
        b"\xff".to_vec(),
        b"{\"op\":\"ping\",\"ref\":\"\xc3\x28\"}".to_vec(),
        b"{\"op\":\"ping\",\"ref\":\"\xed\xa0\x80\"}".to_vec(),
        b"{\"op\":\"ping\",\"ref\":\"\xc0\xaf\"}".to_vec(),
        b"{\"op\":\"ping\",\"ref\":\"\xf4\x90\x80\x80\"}".to_vec(),
        b"{\"op\":\"submit\",\"to\":\"+46701234567\",\"from\":\"A\",\"text\":\"\x80\"}".to_vec(),
        b"\xfe\xff\x00{\x00\"".to_vec(),
    ]
    .into_iter()
    .map(|l| (l, "bad_request"))
    .collect();
    let replies = expect_codes(&mut c, &mut row, &cases).await;
    for r in &replies {
        let m = r["error"]["message"].as_str().unwrap_or("");
        assert!(m.contains("UTF-8"), "{r}");
    }
    row.note = "message names the byte".into();
    row
}

async fn long_lines(d: &Daemon) -> Row {
    let mut row = Row::new("lines over 64 KiB");
    let mut c = conn(d).await;
    const MAX: usize = 64 * 1024;
    // Exactly the limit is accepted: a ping padded with spaces.
    let mut exact = b"{\"op\":\"ping\"".to_vec();
    exact.resize(MAX - 1, b' ');
    exact.push(b'}');
    let mut over = exact.clone();
    over.insert(1, b' ');
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (exact, "ok"),
        (over, "bad_request"),
        (vec![b'x'; 1 << 20], "bad_request"),
    ];
    expect_codes(&mut c, &mut row, &cases).await;
    // 16 MiB without a newline, in pieces: skipped as it streams, never buffered.
    let chunk = vec![b'y'; 1 << 20];
    for _ in 0..16 {
        c.send(&chunk).await;
    }
    c.send(b"\n").await;
    let v = c.line().await;
    row.requests += 1;
    assert_eq!(row.count(&v), "bad_request", "{v}");
    let m = v["error"]["message"].as_str().unwrap_or("");
    assert!(m.contains("16777216 bytes"), "{m}");
    let v = c.request(&json!({"op":"ping"})).await;
    assert_eq!(v["ok"], true);
    row.note = "64 KiB ok, 64 KiB+1 .. 16 MiB refused".into();
    row
}

async fn wrong_fields(d: &Daemon) -> Row {
    let mut row = Row::new("missing/wrong-typed fields");
    let mut c = conn(d).await;
    let to = "+46701234567";
    let base =
        |extra: &str| format!(r#"{{"op":"submit","to":"{to}","from":"ACME","text":"x"{extra}}}"#);
    let cases: Vec<(String, &str)> = vec![
        (r#"{"op":"submit"}"#.into(), "bad_request"),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"ACME"}}"#),
            "bad_request",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","text":"x"}}"#),
            "bad_request",
        ),
        (
            r#"{"op":"submit","from":"ACME","text":"x"}"#.into(),
            "bad_request",
        ),
        (
            format!(r#"{{"to":"{to}","from":"ACME","text":"x"}}"#),
            "bad_request",
        ),
        (r#"{"op":5}"#.into(), "bad_request"),
        (r#"{"op":null}"#.into(), "bad_request"),
        (
            r#"{"op":"submit","to":46701234567,"from":"ACME","text":"x"}"#.into(),
            "bad_request",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"ACME","text":["x"]}}"#),
            "bad_request",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"ACME","text":null}}"#),
            "bad_request",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"ACME","text":""}}"#),
            "bad_request",
        ),
        (base(r#","priority":"high""#), "bad_request"),
        (base(r#","priority":1e10"#), "bad_request"),
        (base(r#","priority":-1"#), "bad_request"),
        (base(r#","priority":9223372036854775808"#), "bad_request"),
        (base(r#","dlr":"yes""#), "bad_request"),
        (base(r#","smart":1"#), "bad_request"),
        (base(r#","tags":[1]"#), "bad_request"),
        (base(r#","tags":{"a":1}"#), "bad_request"),
        (base(r#","validity":10"#), "bad_request"),
        (base(r#","validity":"forever""#), "bad_request"),
        (base(r#","validity":"1s""#), "bad_request"),
        (base(r#","class":"spam""#), "bad_request"),
        (base(r#","encoding":"ebcdic""#), "bad_request"),
        (base(r#","key":5"#), "bad_request"),
        (base(r#","key":"""#), "bad_request"),
        (base(r#","route":"""#), "bad_request"),
        (base(r#","route":"nope""#), "bad_request"),
        (base(r#","colour":"red""#), "bad_request"),
        (base(r#","after":3"#), "bad_request"),
        (r#"{"op":"subscribe","after":-1}"#.into(), "bad_request"),
        (r#"{"op":"query","id":12}"#.into(), "bad_request"),
        (r#"{"op":"query"}"#.into(), "bad_request"),
        (
            r#"{"op":"query","id":"0000000000000000"}"#.into(),
            "not_found",
        ),
        (r#"{"op":"auth"}"#.into(), "bad_request"),
        (r#"{"op":"optout","action":"purge"}"#.into(), "bad_request"),
        (
            r#"{"op":"submit","to":"070123","from":"ACME","text":"x"}"#.into(),
            "invalid_destination",
        ),
        (
            r#"{"op":"submit","to":"+46 70 ☎","from":"ACME","text":"x"}"#.into(),
            "invalid_destination",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"ACME Corporation Ltd","text":"x"}}"#),
            "invalid_sender",
        ),
        (
            format!(r#"{{"op":"submit","to":"{to}","from":"€uro","text":"x"}}"#),
            "invalid_sender",
        ),
        (
            base(r#","encoding":"latin1","text":"中""#).replace(r#""text":"x","#, ""),
            "unencodable",
        ),
    ];
    let cases: Vec<(Vec<u8>, &str)> = cases
        .into_iter()
        .map(|(l, c)| (l.into_bytes(), c))
        .collect();
    expect_codes(&mut c, &mut row, &cases).await;
    row.note = "every one named the field".into();
    row
}

async fn absurd_values(d: &Daemon, accepted: &mut Accepted) -> Row {
    let mut row = Row::new("absurd values");
    let mut c = conn(d).await;
    let to = "+46701234567";
    let line = |text: &str, extra: &str| {
        format!(r#"{{"op":"submit","to":"{to}","from":"ACME","text":"{text}"{extra}}}"#)
    };
    // A 10,000-part text does not fit a line; the longest that fits needs ~425 parts.
    let ten_thousand_parts = line(&"x".repeat(153 * 10_000), "");
    let longest = line(&"x".repeat(65_000), "");
    let emoji = line(&"😀".repeat(16_000), "");
    let mb_tags: String = (0..40_000)
        .map(|i| format!(r#""k{i}":"{}""#, "v".repeat(20)))
        .collect::<Vec<_>>()
        .join(",");
    let mb_tags = line("x", &format!(r#","tags":{{{mb_tags}}}"#));
    let many_tags: String = (0..33)
        .map(|i| format!(r#""k{i}":"v""#))
        .collect::<Vec<_>>()
        .join(",");
    let cases: Vec<(String, &str)> = vec![
        (ten_thousand_parts, "bad_request"),
        (longest, "too_long"),
        (emoji, "too_long"),
        (mb_tags, "bad_request"),
        (
            line("x", &format!(r#","tags":{{{many_tags}}}"#)),
            "bad_request",
        ),
        (
            line("x", &format!(r#","tags":{{"k":"{}"}}"#, "v".repeat(257))),
            "bad_request",
        ),
        (
            line("x", &format!(r#","tags":{{"{}":"v"}}"#, "k".repeat(65))),
            "bad_request",
        ),
        (
            line("x", &format!(r#","key":"{}""#, "k".repeat(129))),
            "bad_request",
        ),
        (line("x", r#","validity":"3650d""#), "bad_request"),
        (
            line("x", r#","validity":"99999999999999999999d""#),
            "bad_request",
        ),
        (line("x", r#","priority":1e400"#), "bad_request"),
        (
            line("x", &format!(r#","route":"{}""#, "r".repeat(60_000))),
            "bad_request",
        ),
        (
            format!(
                r#"{{"op":"submit","to":"+{}","from":"ACME","text":"x"}}"#,
                "4".repeat(60_000)
            ),
            "invalid_destination",
        ),
        (
            format!(
                r#"{{"op":"submit","to":"{to}","from":"{}","text":"x"}}"#,
                "A".repeat(60_000)
            ),
            "invalid_sender",
        ),
        (
            format!(r#"{{"op":"{}"}}"#, "p".repeat(60_000)),
            "bad_request",
        ),
        (
            format!(r#"{{"op":"ping","ref":"{}"}}"#, "r".repeat(60_000)),
            "ok",
        ),
        (
            format!(
                r#"{{"op":"ping","ref":{}1{}}}"#,
                "[".repeat(100),
                "]".repeat(100)
            ),
            "ok",
        ),
        // Exactly ten parts (the SMSC's max_parts) is fine, and is delivered.
        (
            line(&"z".repeat(153 * 10), r#","tags":{"case":"ten-parts"}"#),
            "ok",
        ),
    ];
    let cases: Vec<(Vec<u8>, &str)> = cases
        .into_iter()
        .map(|(l, c)| (l.into_bytes(), c))
        .collect();
    let replies = expect_codes(&mut c, &mut row, &cases).await;
    let last = replies.last().expect("replies");
    assert_eq!(last["parts"], 10, "{last}");
    accepted
        .ids
        .push(last["id"].as_str().expect("id").to_owned());
    row.note = "errors quote at most 40 characters".into();
    row
}

/// Clients that pipeline requests and never read: the daemon stops reading them when 256
/// responses wait, and disconnects them after `write_timeout`.
async fn slow_readers(d: &mut Daemon, clients: usize) -> Row {
    let mut row = Row::new("slow readers (never read)");
    let before = metric(&d.scrape().await, "smppd_api_slow_clients_total", "");
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..clients {
        let s = TcpStream::connect(&d.submit).await.expect("connect");
        let sent = sent.clone();
        tasks.push(tokio::spawn(async move {
            // Pings with a 4 KiB ref: each response is as large, so buffers fill fast.
            let line = format!(r#"{{"op":"ping","ref":"{i}-{}"}}"#, "r".repeat(4096)) + "\n";
            let batch = line.repeat(64);
            let mut s = s;
            let started = Instant::now();
            loop {
                match tokio::time::timeout(Duration::from_secs(60), s.write_all(batch.as_bytes()))
                    .await
                {
                    Ok(Ok(())) => {
                        sent.fetch_add(64, Ordering::Relaxed);
                    }
                    // Reset by the daemon: disconnected.
                    Ok(Err(_)) => return Some(started.elapsed()),
                    // Still blocked after a minute: never disconnected.
                    Err(_) => return None,
                }
            }
        }));
    }
    let mut disconnected = 0;
    let mut longest = Duration::ZERO;
    for t in tasks {
        if let Some(after) = t.await.expect("slow client task") {
            disconnected += 1;
            longest = longest.max(after);
        }
    }
    d.assert_alive_during("slow readers");
    assert_eq!(disconnected, clients, "every slow reader is disconnected");
    // The counter is updated when the writer gives up; give it a moment to be scraped.
    let deadline = Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let n = metric(&d.scrape().await, "smppd_api_slow_clients_total", "") - before;
        if n >= clients as f64 || Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counted, clients as f64, "smppd_api_slow_clients_total");
    row.requests = sent.load(Ordering::Relaxed);
    row.codes.insert("(unread)".into(), row.requests);
    row.note = format!(
        "{clients} disconnected (write_timeout {WRITE_TIMEOUT}; last after {:.1} s), counted",
        longest.as_secs_f64()
    );
    row
}

/// Opens `n` connections at once, submits one message on each, and keeps them open until all
/// have answered.
async fn many_connections(d: &Daemon, n: usize, accepted: &mut Accepted) -> Row {
    let mut row = Row::new(&format!("{n} concurrent connections"));
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        conns.push(conn(d).await);
    }
    let peak_open = metric(&d.scrape().await, "smppd_api_connections", "");
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            tokio::spawn(async move {
                let v = c
                    .request(&submit("+46709990000", &format!("conn {i}")))
                    .await;
                (v, c)
            })
        })
        .collect();
    let mut open = Vec::new();
    for t in tasks {
        let (v, c) = t.await.expect("connection task");
        row.requests += 1;
        assert_eq!(row.count(&v), "ok", "{v}");
        accepted.ids.push(v["id"].as_str().expect("id").to_owned());
        open.push(c);
    }
    drop(open);
    row.note = format!("{peak_open} open at once (gauge), all accepted");
    row
}

/// Clients that leave in the middle: half a line then close, half a line then reset, a full
/// submit then close before the answer (its retry with the same key gets the first id).
async fn disconnects(d: &Daemon, n: usize, accepted: &mut Accepted) -> Row {
    let mut row = Row::new("disconnect mid-request");
    for i in 0..n {
        let mut c = conn(d).await;
        c.send(br#"{"op":"submit","to":"+46701234567","from":"AC"#)
            .await;
        row.requests += 1;
        drop(c);
        let s = TcpStream::connect(&d.submit).await.expect("connect");
        let _ = s.set_zero_linger();
        let (_, mut w) = s.into_split();
        let _ = w.write_all(br#"{"op":"submit","to":"+4670"#).await;
        row.requests += 1;
        drop(w);
        let mut c = conn(d).await;
        let key = format!("left-{i}");
        let mut l =
            json!({"op":"submit","to":"+46701234567","from":"ACME","text":"left","key":key})
                .to_string();
        l.push('\n');
        c.send(l.as_bytes()).await;
        row.requests += 1;
        drop(c);
    }
    *row.codes.entry("(no answer)".into()).or_default() += row.requests;
    // The retries: each key was accepted once, before its client left.
    let mut c = conn(d).await;
    let mut duplicates = 0;
    for i in 0..n {
        let v = c
            .request(&json!({"op":"submit","to":"+46701234567","from":"ACME","text":"left","key":format!("left-{i}")}))
            .await;
        row.requests += 1;
        assert_eq!(row.count(&v), "ok", "{v}");
        if v["duplicate"] == true {
            duplicates += 1;
        }
        accepted.ids.push(v["id"].as_str().expect("id").to_owned());
    }
    row.note = format!("{duplicates}/{n} retries were duplicates of the accepted first try");
    row
}

/// Waits until every id is final; returns (delivered, not delivered).
async fn delivered(d: &Daemon, ids: &[String]) -> (usize, Vec<String>) {
    let mut c = conn(d).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut pending: Vec<String> = ids.to_vec();
    let mut delivered = 0;
    let mut failed = Vec::new();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for chunk in pending.chunks(200) {
            for id in chunk {
                let l = json!({"op":"query","id":id}).to_string() + "\n";
                c.send(l.as_bytes()).await;
            }
            for id in chunk {
                let v = c.line().await;
                let state = v["message"]["state"].as_str().unwrap_or("?");
                match state {
                    "delivered" => delivered += 1,
                    "queued" | "submitted" | "partially_submitted" => still.push(id.clone()),
                    other => failed.push(format!("{id}: {other}")),
                }
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    failed.extend(pending.into_iter().map(|id| format!("{id}: not final")));
    (delivered, failed)
}

fn print_table(rows: &[Row], good: (usize, usize, usize), peak_kib: u64, metrics: &str) {
    println!();
    println!("{:<32} {:>9}  RESPONSES BY CODE / NOTE", "CASE", "REQUESTS");
    for r in rows {
        let codes: Vec<String> = r.codes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("{:<32} {:>9}  {}", r.case, r.requests, codes.join(" "));
        if !r.note.is_empty() {
            println!("{:<32} {:>9}  ({})", "", "", r.note);
        }
    }
    let mut by_code: BTreeMap<String, u64> = BTreeMap::new();
    for r in rows {
        for (k, v) in &r.codes {
            if k != "ok" && !k.starts_with('(') {
                *by_code.entry(k.clone()).or_default() += v;
            }
        }
    }
    println!();
    println!("{:<22} {:>8} {:>8}", "ERROR CODE", "CLIENTS", "METRIC");
    for (k, v) in &by_code {
        let m = metric(
            metrics,
            "smppd_messages_rejected_total",
            &format!("code=\"{k}\""),
        );
        println!("{k:<22} {v:>8} {:>8}", m as u64);
    }
    let (accepted, delivered, lost) = good;
    println!();
    println!("well-behaved client: accepted {accepted}, delivered {delivered}, lost {lost}");
    println!(
        "daemon peak RSS (VmHWM): {:.1} MiB",
        peak_kib as f64 / 1024.0
    );
}

async fn campaign(rounds: usize, slow: usize, connections: usize, leavers: usize) {
    // 1,000 connections here and as many in the daemon: raise the soft open-file limit (the
    // daemon raises its own; it would inherit this one anyway).
    let limit = rlimit::increase_nofile_limit(connections as u64 * 2 + 1024).expect("rlimit");
    assert!(
        limit >= connections as u64 + 256,
        "open-file limit {limit} is too low for {connections} connections: raise `ulimit -Hn`"
    );
    let sim = Simulator::start(SimConfig::new("127.0.0.1:0"))
        .await
        .expect("simulator");
    let mut d = start(&sim, connections + 512).await;

    // The well-behaved client: one submit every 10 ms on its own connection, throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        let mut c = conn(&d).await;
        tokio::spawn(async move {
            let mut ids = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let v = c
                    .request(&submit("+46701234567", &format!("good {i}")))
                    .await;
                assert_eq!(v["ok"], true, "well-behaved submit refused: {v}");
                ids.push(v["id"].as_str().expect("id").to_owned());
                i += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            ids
        })
    };

    let mut rows = Vec::new();
    let mut accepted = Accepted::default();
    for round in 0..rounds {
        let tag = |r: Row| {
            if rounds > 1 {
                Row {
                    case: format!("{} #{}", r.case, round + 1),
                    ..r
                }
            } else {
                r
            }
        };
        rows.push(tag(malformed_json(&d).await));
        d.assert_alive_during("malformed JSON");
        rows.push(tag(invalid_utf8(&d).await));
        d.assert_alive_during("invalid UTF-8");
        rows.push(tag(long_lines(&d).await));
        d.assert_alive_during("long lines");
        rows.push(tag(wrong_fields(&d).await));
        d.assert_alive_during("wrong fields");
        rows.push(tag(absurd_values(&d, &mut accepted).await));
        d.assert_alive_during("absurd values");
        rows.push(tag(slow_readers(&mut d, slow).await));
        rows.push(tag(many_connections(&d, connections, &mut accepted).await));
        d.assert_alive_during("many connections");
        rows.push(tag(disconnects(&d, leavers, &mut accepted).await));
        d.assert_alive_during("disconnects");
    }

    stop.store(true, Ordering::Relaxed);
    let good_ids = good.await.expect("well-behaved client");
    assert!(good_ids.len() >= 20, "the well-behaved client barely ran");
    let (good_delivered, good_failed) = delivered(&d, &good_ids).await;
    assert!(
        good_failed.is_empty(),
        "well-behaved messages not delivered: {good_failed:?}"
    );
    let (_, other_failed) = delivered(&d, &accepted.ids).await;
    assert!(
        other_failed.is_empty(),
        "accepted messages not delivered: {other_failed:?}"
    );
    d.assert_alive_during("the drain");
    let (peak, _) = d.memory_kib();
    let metrics = d.scrape().await;
    print_table(
        &rows,
        (
            good_ids.len(),
            good_delivered,
            good_ids.len() - good_delivered,
        ),
        peak,
        &metrics,
    );
    println!(
        "other accepted messages (ten-part, per-connection, retried): {} delivered",
        accepted.ids.len()
    );
    assert!(
        peak <= MAX_PEAK_RSS_KIB,
        "peak RSS {peak} KiB over {MAX_PEAK_RSS_KIB}"
    );
    // Still a clean, graceful stop.
    let status = d.stop();
    assert!(status.success(), "smppd exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_never_hurts_well_behaved_clients() {
    campaign(1, 20, 1_000, 30).await;
}

/// The longer campaign: five rounds, 100 slow readers and 2,000 connections per round.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long campaign; run with --ignored --nocapture"]
async fn bad_input_campaign_long() {
    campaign(5, 100, 2_000, 200).await;
}
