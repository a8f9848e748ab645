//! Send windows and scheduled sends (issue #19, items 1 and 2) through the public interface:
//! `smppd run` as a process whose clock starts at a chosen instant (`SMPPD_CLOCK_START`), a
//! simulated SMSC, the submit protocol and the CLI. What the daemon did is read from its replies,
//! `query`, `smppd reports` and what the simulator received over SMPP.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use smppd::sim::{SimConfig, SimHandle, Simulator};
use support::{Client, Daemon, DaemonBuilder};

/// The quick start's window: Swedish and Norwegian mobiles, daytime in their own zone.
const DAYTIME: &str = r#"[[window]]
name = "daytime"
prefix = ["+46", "+47"]
allow = ["mon-fri 09:00-20:00", "sat 10:00-18:00"]
"#;

/// A window that opens at 03:00 local every day (right after the spring-forward gap in
/// Europe/Stockholm, and an hour after the autumn transition).
const FROM_THREE: &str = r#"[[window]]
name = "from-three"
prefix = ["+46"]
allow = ["daily 03:00-20:00"]
"#;

/// A window no instant satisfies in every US zone at once (half an hour on Saturdays, read in
/// each zone of the country): a marketing message to the US can never be sent.
const NEVER_US: &str = r#"[[window]]
name = "us-brief"
prefix = ["+1"]
allow = ["sat 10:00-10:30"]
"#;

const SWEDE: &str = "+46701234567";

async fn sim() -> SimHandle {
    let mut c = SimConfig::new("127.0.0.1:0");
    c.record_submits = true;
    Simulator::start(c).await.expect("simulator")
}

/// A daemon with one SMSC (`op-a`, the simulator), one route for everything (`route_extra` ends
/// it), the given windows and its clock starting at `clock` (RFC 3339).
async fn daemon(sim: &SimHandle, windows: &str, route_extra: &str, clock: &str) -> Daemon {
    let body = format!(
        r#"{windows}
[[smsc]]
name = "op-a"
address = "{addr}"
system_id = "smppd"
password = "secret"
window = 20
reconnect_min = "200ms"
reconnect_max = "1s"
[[route]]
name = "all"
smsc = ["op-a"]
{route_extra}
"#,
        addr = sim.addr()
    );
    DaemonBuilder::new(body).clock_start(clock).start().await
}

async fn connect(d: &Daemon) -> Client {
    let mut c = d.client().await;
    c.wait_bound(&["op-a"]).await;
    c
}

fn submit(to: &str, text: &str, class: &str) -> Value {
    json!({"op":"submit","to":to,"from":"ACME","text":text,"class":class})
}

/// Milliseconds since the epoch of an RFC 3339 time.
fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .expect("RFC 3339")
        .timestamp_millis()
}

/// How many submits with `text` in their user data the simulator received.
fn received(sim: &SimHandle, text: &str) -> usize {
    sim.submits()
        .iter()
        .filter(|s| String::from_utf8_lossy(&s.payload).contains(text))
        .count()
}

async fn query(c: &mut Client, id: &str) -> Value {
    let v = c.call(json!({"op":"query","id":id})).await;
    assert_eq!(v["ok"], true, "{v}");
    v["message"].clone()
}

/// The daemon's clock, estimated from a message's `accepted_at` and the time since the test
/// saw the accept (never earlier than the daemon's own reading).
struct DaemonClock {
    accepted_at: i64,
    seen: Instant,
}

impl DaemonClock {
    async fn of(c: &mut Client, id: &str, seen: Instant) -> DaemonClock {
        let accepted_at = query(c, id).await["accepted_at"]
            .as_i64()
            .expect("accepted_at");
        DaemonClock { accepted_at, seen }
    }

    fn now(&self) -> i64 {
        self.accepted_at + i64::try_from(self.seen.elapsed().as_millis()).expect("ms")
    }
}

/// Submits a held message, checks its reply and `query` (`scheduled`, `held_until`), then
/// watches it: the simulator receives nothing of it while it is scheduled and not before the
/// daemon's clock reaches `held_until`, and receives it after. `text` must be unique.
async fn held_then_sent(c: &mut Client, sim: &SimHandle, req: Value, held_until: i64) {
    let text = req["text"].as_str().expect("text").to_owned();
    let v = c.call(req).await;
    let seen = Instant::now();
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["held_until"], held_until, "{v}");
    let id = v["id"].as_str().expect("id").to_owned();
    let clock = DaemonClock::of(c, &id, seen).await;
    let m = query(c, &id).await;
    assert_eq!(m["state"], "scheduled", "{m}");
    assert_eq!(m["held_until"], held_until, "{m}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The simulator first: a part reaches it only after the store moved it out of
        // `waiting`, so while the query still says scheduled nothing can have been sent.
        let got = received(sim, &text);
        let state = query(c, &id).await["state"].clone();
        if state == "scheduled" {
            assert_eq!(got, 0, "{text:?} reached the SMSC while scheduled");
        }
        if got > 0 {
            // One second of slack for the estimate (the query's round trip), not a speed bound.
            assert!(
                clock.now() >= held_until - 1_000,
                "{text:?} sent at about {} before its time {held_until}",
                clock.now()
            );
            assert_ne!(state, "scheduled");
            break;
        }
        assert!(Instant::now() < deadline, "{text:?} never sent ({state})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = c.final_state(&id).await;
    assert_eq!(done["state"], "delivered", "{done}");
    assert_eq!(done["held_until"], held_until, "{done}");
}

/// Item 6a: at 08:59:50 on a Tuesday in Stockholm a marketing message to a Swedish mobile is
/// held until 09:00 local and sent when the window opens; a transactional one goes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn marketing_waits_for_the_window_and_transactional_goes_at_once() {
    let sim = sim().await;
    // 2026-12-08 is a Tuesday; Stockholm is at UTC+1 in December.
    let d = daemon(&sim, DAYTIME, "", "2026-12-08T07:59:50Z").await;
    let mut c = connect(&d).await;

    let now = c
        .call(submit(SWEDE, "Your code 4711", "transactional"))
        .await;
    assert_eq!(now["ok"], true, "{now}");
    assert!(now.get("held_until").is_none(), "{now}");
    support::until("the transactional message", Duration::from_secs(10), || {
        received(&sim, "Your code 4711") == 1
    })
    .await;

    let sale = submit(SWEDE, "Sale starts now", "marketing");
    held_then_sent(&mut c, &sim, sale, ms("2026-12-08T08:00:00Z")).await;
    drop(d);
}

/// Item 6b, spring forward: on 2027-03-28 Stockholm's clocks jump from 02:00 to 03:00 (01:00
/// UTC). At 01:59:50 local a window opening at 03:00 opens ten seconds later, at 01:00 UTC
/// (not 02:00 UTC, which 03:00 at the winter offset would be).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_opening_after_the_spring_forward_gap_holds_until_the_right_instant() {
    let sim = sim().await;
    let d = daemon(&sim, FROM_THREE, "", "2027-03-28T00:59:50Z").await;
    let mut c = connect(&d).await;
    let sale = submit(SWEDE, "Spring sale", "marketing");
    held_then_sent(&mut c, &sim, sale, ms("2027-03-28T01:00:00Z")).await;
    drop(d);
}

/// Item 6b, fall back: on 2026-10-25 Stockholm's clocks go from 03:00 back to 02:00 (01:00
/// UTC). At 02:59:50 local after the transition, a window opening at 03:00 opens ten seconds
/// later, at 02:00 UTC (at the summer offset 03:00 would be 01:00 UTC, already past).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_window_opening_after_the_fall_back_holds_until_the_right_instant() {
    let sim = sim().await;
    let d = daemon(&sim, FROM_THREE, "", "2026-10-25T01:59:50Z").await;
    let mut c = connect(&d).await;
    let sale = submit(SWEDE, "Autumn sale", "marketing");
    held_then_sent(&mut c, &sim, sale, ms("2026-10-25T02:00:00Z")).await;
    drop(d);
}

/// Item 6c: `send_at` holds any class until then (epoch ms or RFC 3339), and the windows still
/// apply after it; one in the past means now; a bad or too distant one is `bad_request`
/// naming `send_at`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_at_holds_until_then_and_windows_still_apply_after_it() {
    let sim = sim().await;
    // Tuesday 11:00 in Stockholm: the daytime window is open.
    let d = daemon(&sim, DAYTIME, "", "2026-12-08T10:00:00Z").await;
    let mut c = connect(&d).await;
    let first = c.call(submit(SWEDE, "Receipt 1", "transactional")).await;
    let seen = Instant::now();
    let clock = DaemonClock::of(&mut c, first["id"].as_str().expect("id"), seen).await;

    // A send_at in the window: held until then, in either form, whatever the class.
    let at = clock.now() + 4_000;
    let mut sale = submit(SWEDE, "Timed sale", "marketing");
    sale["send_at"] = json!(at);
    held_then_sent(&mut c, &sim, sale, at).await;
    let at = clock.now() + 4_000;
    let rfc = chrono::DateTime::from_timestamp_millis(at)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut otp = submit(SWEDE, "Timed receipt", "transactional");
    otp["send_at"] = json!(rfc);
    held_then_sent(&mut c, &sim, otp, at).await;

    // 20:30 local is after the window: held until it opens on Wednesday at 09:00 local.
    let mut late = submit(SWEDE, "Evening sale", "marketing");
    late["send_at"] = json!("2026-12-08T20:30:00+01:00");
    let v = c.call(late).await;
    assert_eq!(v["held_until"], ms("2026-12-09T08:00:00Z"), "{v}");
    let m = query(&mut c, v["id"].as_str().expect("id")).await;
    assert_eq!(m["state"], "scheduled", "{m}");

    // A validity that ends before its send_at: refused, saying so and when it could go.
    let mut short = submit(SWEDE, "Short timed", "transactional");
    short["send_at"] = json!("2026-12-08T12:00:00Z");
    short["validity"] = json!("1h");
    let v = c.call(short).await;
    assert_eq!(v["error"]["code"], "outside_window", "{v}");
    assert_eq!(v["error"]["allowed_at"], ms("2026-12-08T12:00:00Z"), "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("`send_at`") && !msg.contains("daytime"),
        "{msg}"
    );

    // In the past: now.
    let mut past = submit(SWEDE, "Past receipt", "transactional");
    past["send_at"] = json!("2026-12-01T00:00:00Z");
    let v = c.call(past).await;
    assert_eq!(v["ok"], true, "{v}");
    assert!(v.get("held_until").is_none(), "{v}");

    for (bad, says) in [
        (json!("2027-01-20T10:00:00Z"), "more than 30 days ahead"),
        (json!("tomorrow"), "RFC 3339"),
        (json!(true), "RFC 3339"),
        (json!(-5), "RFC 3339"),
    ] {
        let mut r = submit(SWEDE, "x", "transactional");
        r["send_at"] = bad.clone();
        let v = c.call(r).await;
        assert_eq!(v["error"]["code"], "bad_request", "{bad}: {v}");
        let msg = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            msg.contains("send_at") && msg.contains(says),
            "{bad}: {msg}"
        );
    }
    assert_eq!(received(&sim, "Evening sale"), 0);
    drop(d);
}

/// `smppd send --send-at` holds the message, says until when, and `smppd reports` lists it as
/// scheduled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_sends_with_send_at_and_reports_show_scheduled() {
    let sim = sim().await;
    let d = daemon(&sim, DAYTIME, "", "2026-12-08T10:00:00Z").await;
    let _c = connect(&d).await;
    // 2026-12-18 is a Friday: 11:00 in Stockholm is inside the window.
    let out = support::smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--to",
        SWEDE,
        "--text",
        "Christmas sale",
        "--class",
        "marketing",
        "--send-at",
        "2026-12-18T10:00:00Z",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("scheduled: held until 2026-12-18T10:00:00Z"),
        "{stdout}"
    );
    // With --file, every row is held (epoch milliseconds this time).
    let csv = d.dir.join("rows.csv");
    std::fs::write(
        &csv,
        "to,text\n+46701000001,Row sale\n+46701000002,Row sale\n",
    )
    .expect("csv");
    let at = ms("2026-12-18T10:00:00Z").to_string();
    let csv_s = csv.display().to_string();
    let out = support::smppd(&[
        "send",
        "--addr",
        &d.submit,
        "--file",
        &csv_s,
        "--send-at",
        &at,
    ]);
    assert!(out.status.success(), "{out:?}");
    let db = d.db.display().to_string();
    let reports = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_smppd"))
            .args(["reports", "--state", "scheduled", "--db", &db])
            .args(extra)
            .env(smppd::clock::START_VAR, "2026-12-08T10:00:05Z")
            .output()
            .expect("smppd reports");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = reports(&[]);
    let rows: Vec<&str> = table.lines().filter(|l| l.contains("+4670")).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(rows.iter().all(|r| r.contains("scheduled")), "{table}");
    let json = reports(&["--json"]);
    assert_eq!(json.lines().count(), 3, "{json}");
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).expect("JSON line");
        assert_eq!(v["state"], "scheduled", "{v}");
        assert_eq!(v["held_until"], ms("2026-12-18T10:00:00Z"), "{v}");
    }
    assert_eq!(
        received(&sim, "Christmas sale") + received(&sim, "Row sale"),
        0
    );
    drop(d);
}

/// Item 6d: a marketing message whose validity ends before the window opens is refused with
/// `outside_window`, the window's name and `allowed_at`; one whose windows never open is refused
/// naming them; a transactional one is not held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validity_ending_before_the_window_opens_is_refused_with_allowed_at() {
    let sim = sim().await;
    // Tuesday 20:00 in Stockholm: the window has just closed until Wednesday 09:00 local.
    let windows = format!("{DAYTIME}\n{NEVER_US}");
    let d = daemon(&sim, &windows, "", "2026-12-08T19:00:00Z").await;
    let mut c = connect(&d).await;
    let opens = ms("2026-12-09T08:00:00Z");

    let mut short = submit(SWEDE, "Flash sale", "marketing");
    short["validity"] = json!("1h");
    let v = c.call(short).await;
    assert_eq!(v["error"]["code"], "outside_window", "{v}");
    assert_eq!(v["error"]["allowed_at"], opens, "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(
        msg.contains("daytime") && msg.contains("2026-12-09T08:00:00Z"),
        "{msg}"
    );

    let mut long = submit(SWEDE, "Long sale", "marketing");
    long["validity"] = json!("13h");
    let v = c.call(long).await;
    assert_eq!(
        (v["ok"].clone(), v["held_until"].clone()),
        (json!(true), json!(opens)),
        "{v}"
    );
    // `status` counts it as scheduled, not as a queue falling behind.
    let st = c.call(json!({"op":"status"})).await;
    let all = &st["routes"][0];
    assert_eq!(
        (all["scheduled"].clone(), all["queued"].clone()),
        (json!(1), json!(0)),
        "{st}"
    );
    assert!(all["oldest_s"].is_null(), "{st}");

    let v = c.call(submit("+12025550123", "US sale", "marketing")).await;
    assert_eq!(v["error"]["code"], "outside_window", "{v}");
    let msg = v["error"]["message"].as_str().unwrap_or("");
    assert!(msg.contains("us-brief"), "{msg}");

    let v = c.call(submit(SWEDE, "Code 1234", "transactional")).await;
    assert!(v.get("held_until").is_none(), "{v}");
    support::until("the transactional message", Duration::from_secs(10), || {
        received(&sim, "Code 1234") == 1
    })
    .await;
    drop(d);
}

/// Item 5: sixty messages released at the same instant leave at the route's pace (tps 20): no
/// second at the simulator carries more than the rate and its burst.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_messages_released_together_leave_at_the_routes_pace() {
    const N: usize = 60;
    const TPS: u64 = 20;
    let sim = sim().await;
    let d = daemon(&sim, "", &format!("tps = {TPS}\n"), "2026-12-08T10:00:00Z").await;
    let mut c = connect(&d).await;
    let first = c
        .call(submit("+4915112345678", "pace 0", "transactional"))
        .await;
    let seen = Instant::now();
    let clock = DaemonClock::of(&mut c, first["id"].as_str().expect("id"), seen).await;
    support::until("the first message", Duration::from_secs(10), || {
        sim.stats().submits == 1
    })
    .await;
    let at = clock.now() + 3_000;
    let mut batch = String::new();
    for i in 1..=N {
        let mut r = submit("+4915112345678", &format!("held {i}"), "transactional");
        r["send_at"] = json!(at);
        batch.push_str(&r.to_string());
        batch.push('\n');
    }
    c.send(batch.as_bytes()).await;
    for _ in 0..N {
        let v = c.line().await;
        assert_eq!(v["held_until"], at, "{v}");
    }
    assert_eq!(sim.stats().submits, 1, "nothing held left before its time");
    support::until("every held message", Duration::from_secs(30), || {
        sim.stats().submits == 1 + N as u64
    })
    .await;
    // Submits per sliding second (100 ms buckets) at the simulator: the rate plus the route's
    // burst (tps/10) and one for a bucket edge.
    let counts = sim.pacing().counts;
    let peak = counts
        .windows(10)
        .map(|w| w.iter().map(|n| u64::from(*n)).sum::<u64>())
        .max()
        .unwrap_or_default();
    assert!(
        peak <= TPS + TPS / 10 + 1,
        "{peak} in one second at tps {TPS}: {counts:?}"
    );
    drop(d);
}
