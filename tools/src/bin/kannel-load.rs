//! The side-by-side benchmark of smppd against Kannel (issue #8, item 2), run by
//! `bench/vs-kannel.sh`, or directly: `cargo run --release -p smppd-tools --bin kannel-load -- --rounds 3`.
//!
//! One `smppd sim` (receipts at once, or `--receipt-delay 1s..30s`: each 1–30 s late) is the
//! SMSC of both gateways. Each round runs smppd
//! (`smppd run` driven by `smppd bench`) and then Kannel (bearerbox + smsbox driven over HTTP
//! by this program), A B A B…, the same message count and mix, each against a fresh store. For
//! Kannel this program is the load driver and the DLR endpoint: C keep-alive HTTP connections
//! send `GET /cgi-bin/sendsms` (one request in flight each, HTTP/1.1 has no pipelining), every
//! request carries a `dlr-url` with its sequence number, and a message is delivered when its DLR
//! has hit the endpoint. (Kannel splits long texts itself and asks the SMSC for a receipt on one
//! part only, so a message has one DLR; smppd asks for and records a receipt for every part.) It measures what `smppd bench` measures: the submit (HTTP accept) rate, the
//! end-to-end rate to delivered, latency p50/p99/p99.9 of accept and of submit → delivered,
//! CPU time of bearerbox + smsbox (from /proc) and their peak RSS.
//!
//! After the rounds, both gateways run paced at each of `--pacing-rates` (500/s and 2,000/s):
//! the light-load CPU per message and peak RSS of each, in the same run (issue #20).
//!
//! Kannel's settings, and why each is its best, are in [`kannel_conf`]. The results go to
//! `bench/results/vs-kannel.{json,csv}` (per-round rows, medians, ratios, both configurations).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::{Value, json};
use smppd::text::samples::Mix;
use smppd_tools::common;
use smppd_tools::common::{BenchRun, Daemon, DaemonSpec, Proc, Sim};

/// Options; the defaults are what `bench/vs-kannel.sh` runs.
#[derive(Debug, Parser)]
#[command(
    name = "kannel_load",
    about = "smppd against Kannel on the same simulator, A B A B"
)]
struct Args {
    /// Messages per run (each system, each round).
    #[arg(long, default_value_t = 50_000)]
    count: usize,
    /// Rounds (each round runs smppd, then Kannel).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Message mix as weights: short GSM, 3-part GSM, 2-part UCS-2 with emoji.
    #[arg(long, default_value = "short=80,long=10,emoji=10")]
    mix: String,
    /// SMPP window of both gateways (smppd `window`, Kannel `max-pending-submits`). 500 was
    /// Kannel's best of 10 (its default), 100, 500 and 1000 here; smppd is the same at 100 or 500.
    #[arg(long, default_value_t = 500)]
    window: u32,
    /// Concurrent keep-alive HTTP connections to Kannel's sendsms port. Of 16, 32, 64, 128 and
    /// 512 tried here, 32 gave Kannel its best rates; from 128 on some requests stall about 55 s
    /// in smsbox (seen in 2 of 3 rounds of 50,000), at 512 it also refuses requests.
    #[arg(long, default_value_t = 32)]
    kannel_connections: usize,
    /// smppd bench connections.
    #[arg(long, default_value_t = 4)]
    smppd_connections: usize,
    /// smppd bench requests in flight per connection.
    #[arg(long, default_value_t = 64)]
    pipeline: usize,
    /// Longest wait for the last receipts after the last accept (seconds).
    #[arg(long, default_value_t = 300)]
    settle: u64,
    /// After the rounds, paced runs of each system at each of these rates (comma-separated; 0: no
    /// paced run), interleaved smppd, Kannel per rate: the load driver sends at the rate (smppd
    /// bench --rate; Kannel's HTTP driver spaces its requests the same way), the gateway is
    /// limited to it too (Kannel `throughput`, smppd route `tps` with a burst of 10), short
    /// messages for `--pacing-secs`. Reports CPU µs per message and peak RSS of each gateway at
    /// that rate (the light-load cost), and the largest number of submits the simulator saw in
    /// any 100 ms window against rate/10.
    #[arg(long, value_delimiter = ',', default_value = "500,2000")]
    pacing_rates: Vec<u32>,
    /// Seconds of each paced run.
    #[arg(long, default_value_t = 10)]
    pacing_secs: u32,
    /// Paced rounds per rate (each runs smppd, then Kannel); medians are reported.
    #[arg(long, default_value_t = 1)]
    pacing_rounds: usize,
    /// The simulator's receipt delay: a duration (`0ms`: at once) or a range `MIN..MAX`
    /// (`1s..30s`: each receipt its own delay, the "receipts realistically late" case).
    #[arg(long, default_value = "0ms")]
    receipt_delay: String,
    /// The simulator's deliver_sm window (outstanding receipts per bind before it waits for
    /// answers). A gateway that answers a receipt only once it is stored delivers at most
    /// window / time-to-store receipts a second.
    #[arg(long, default_value_t = 100)]
    deliver_window: u32,
    /// After the rounds, smppd paced by the load tool at half its median end-to-end rate for
    /// this many seconds, same mix, no route limit: the latency goals of #8 (accept p99 and
    /// accept → delivered p99 at half the maximum rate). 0: no such run.
    #[arg(long, default_value_t = 10)]
    half_rate_secs: u64,
    /// Run only one system (for trying settings): smppd or kannel.
    #[arg(long)]
    only: Option<String>,
    /// The smppd binary (default: $SMPPD_BIN, else $CARGO_TARGET_DIR/release/smppd).
    #[arg(long)]
    smppd: Option<PathBuf>,
    /// Another smppd binary to measure as the gateway (`smppd run` only), while `--smppd` still
    /// runs the simulator and the load tool: two daemon builds compared against the same SMSC
    /// and the same client.
    #[arg(long)]
    daemon: Option<PathBuf>,
    #[arg(long, default_value = "/usr/sbin/bearerbox")]
    bearerbox: PathBuf,
    #[arg(long, default_value = "/usr/sbin/smsbox")]
    smsbox: PathBuf,
    /// Where the JSON and CSV results go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Working directory for stores, configurations and logs (default: a fresh one in /tmp).
    #[arg(long)]
    work: Option<PathBuf>,
}

/// Parts of each text of the mix (GSM 153 septets a part with a UDH; UCS-2 67 characters): the
/// simulator must see this many submit_sm from either gateway.
const PARTS: [u64; 3] = [1, 3, 2];

/// Burst of smppd's route in the paced comparison (Kannel's `throughput` has no such setting).
const PACED_BURST: u32 = 10;

/// What one run sends: a count of a mix, optionally at a rate limit (Kannel `throughput`,
/// smppd route `tps`).
#[derive(Debug, Clone)]
struct Load {
    count: usize,
    mix: String,
    rate: Option<u32>,
}

/// The destination of message number `k`: the same numbers as `smppd bench` (+4670 and 7 digits).
fn destination(k: usize) -> String {
    format!("+4670{:07}", k % 10_000_000)
}

/// Ports of one Kannel instance.
struct KannelPorts {
    admin: u16,
    smsbox: u16,
    sendsms: u16,
}

/// Kannel's configuration for one round. Every setting that bears on speed is chosen for speed
/// within the rules of the comparison (one SMPP connection, receipts on, a durable store):
///
/// - `store-type = file`: messages are written to Kannel's store before the sendsms answer
///   (durable like smppd's accept). `immediate-sendsms-reply` stays false (its default) so the
///   HTTP 202 comes after bearerbox has taken and stored the message, as smppd answers after
///   its commit; true would answer before anything is stored.
/// - `dlr-storage = internal`: the fastest DLR store (in memory; MySQL/Redis/SQLite would add a
///   round trip per part). It is not durable: this favours Kannel.
/// - one `group = smsc` with `transceiver-mode = true`: one SMPP connection, like smppd's one
///   transceiver bind. `max-pending-submits` = the window, 500 by default (smppd gets the same;
///   Kannel's default of 10 gave it a quarter of the end-to-end rate). No `throughput` line:
///   unlimited (only the paced comparison sets one).
/// - `log-level = 3` (errors only) in every group and no access log: Kannel logs every message
///   at info level, which costs it time.
/// - `sms-incoming-queue-limit`/`sms-outgoing-queue-limit` = -1: no queue refuses load;
///   `smsbox-max-pending = 2048`: messages (here DLRs) bearerbox may have unacknowledged at
///   smsbox (default 100, which would throttle the DLR flow).
/// - smsbox `max-pending-requests = 2048`: DLR callbacks smsbox may have open at once (default
///   512), so the DLR endpoint is never starved; the load driver keeps C sendsms connections
///   alive (keep-alive) so no request pays a TCP handshake; C = 32 was Kannel's best (see
///   `--kannel-connections`).
/// - sendsms-user `max-messages = 10` and `concatenation = true`: long texts are split into
///   concatenated parts (UDH), as smppd does.
fn kannel_conf(
    dir: &Path,
    ports: &KannelPorts,
    sim: &Sim,
    window: u32,
    throughput: Option<u32>,
) -> String {
    let throughput = throughput.map_or(String::new(), |r| format!("throughput = {r}\n"));
    format!(
        r#"# Written by tools/src/bin/kannel-load.rs for one round; see kannel_conf() there for the reasons.
group = core
admin-port = {admin}
admin-password = bench
admin-allow-ip = "127.0.0.1"
smsbox-port = {smsbox}
box-allow-ip = "127.0.0.1"
log-file = "{dir}/bearerbox.log"
log-level = 3
store-type = file
store-location = "{dir}/kannel.store"
dlr-storage = internal
smsbox-max-pending = 2048
sms-incoming-queue-limit = -1
sms-outgoing-queue-limit = -1

group = smsc
smsc = smpp
smsc-id = sim
host = 127.0.0.1
port = {sim_port}
transceiver-mode = true
smsc-username = bench
smsc-password = bench
system-type = ""
interface-version = 34
max-pending-submits = {window}
{throughput}enquire-link-interval = 30
reconnect-delay = 1
log-level = 3

group = smsbox
bearerbox-host = 127.0.0.1
bearerbox-port = {smsbox}
sendsms-port = {sendsms}
log-file = "{dir}/smsbox.log"
log-level = 3
max-pending-requests = 2048
http-request-retry = 0

group = sendsms-user
username = bench
password = bench
max-messages = 10
concatenation = true
"#,
        admin = ports.admin,
        smsbox = ports.smsbox,
        sendsms = ports.sendsms,
        sim_port = sim.port(),
        dir = dir.display(),
    )
}

/// One row of the results: one system in one round.
#[derive(Debug, Clone, Serialize)]
struct Row {
    system: String,
    round: usize,
    sent: usize,
    accepted: u64,
    rejected: u64,
    delivered: u64,
    /// Messages accepted per second (first submit → last accept).
    accept_rate: f64,
    /// Messages delivered per second (first submit → last message delivered).
    end_to_end_rate: f64,
    accept_p50_ms: f64,
    accept_p99_ms: f64,
    accept_p999_ms: f64,
    /// Submit → delivered (every part's receipt in).
    delivered_p50_ms: f64,
    delivered_p99_ms: f64,
    delivered_p999_ms: f64,
    cpu_seconds: f64,
    cpu_us_per_message: f64,
    peak_rss_mib: f64,
    /// CPU of the rest of the run per message: the simulator and the load tool (for Kannel the
    /// load and DLR-callback server of this program). On a machine the whole run shares, the
    /// end-to-end rate cannot exceed cores / (gateway + harness) CPU per message.
    harness_cpu_us_per_message: f64,
    /// submit_sm the simulator received (parts) and receipts it sent during the run.
    sim_submits: u64,
    sim_receipts: u64,
}

/// Shared state of one Kannel run: per message, when it was sent, how many delivered DLRs came,
/// and when the first came.
struct KRun {
    start: Instant,
    sent_ns: Vec<AtomicU64>,
    dlrs: Vec<AtomicU32>,
    done_ns: Vec<AtomicU64>,
    /// Delivered DLRs beyond the first of a message (none expected).
    dlr_extra: AtomicU64,
    /// DLRs of another type than delivered (none expected: the simulator delivers all).
    dlr_other: AtomicU64,
    /// DLRs whose number is not one of ours.
    dlr_unknown: AtomicU64,
}

impl KRun {
    fn new(n: usize) -> Self {
        Self {
            start: Instant::now(),
            sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            dlrs: (0..n).map(|_| AtomicU32::new(0)).collect(),
            done_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            dlr_extra: AtomicU64::new(0),
            dlr_other: AtomicU64::new(0),
            dlr_unknown: AtomicU64::new(0),
        }
    }

    /// Nanoseconds since `start`, never 0 (0 means "not yet").
    fn now_ns(&self) -> u64 {
        (self.start.elapsed().as_nanos() as u64).max(1)
    }

    /// One DLR callback: `s` is the message number, `t` Kannel's delivery type (1 delivered).
    fn on_dlr(&self, query: Option<&str>) {
        let (mut seq, mut typ) = (None, None);
        for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match &*k {
                "s" => seq = v.parse::<usize>().ok(),
                "t" => typ = v.parse::<u32>().ok(),
                _ => {}
            }
        }
        let Some(seq) = seq.filter(|s| *s < self.dlrs.len()) else {
            self.dlr_unknown.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if typ != Some(1) {
            self.dlr_other.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.dlrs[seq].fetch_add(1, Ordering::AcqRel) == 0 {
            self.done_ns[seq].store(self.now_ns(), Ordering::Release);
        } else {
            self.dlr_extra.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Serves the DLR endpoint on a free loopback port until the task is aborted.
async fn dlr_sink(run: Arc<KRun>) -> Result<(u16, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let run = run.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    run.on_dlr(req.uri().query());
                    async {
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    Ok((port, task))
}

/// The sendsms query of message `k` (its kind's text, DLR for final states to our endpoint).
fn sendsms_uri(k: usize, kind: usize, texts: &[String; 3], dlr_port: u16) -> String {
    let dlr_url = format!("http://127.0.0.1:{dlr_port}/dlr?s={k}&t=%d");
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("username", "bench")
        .append_pair("password", "bench")
        .append_pair("from", "BENCH")
        .append_pair("to", &destination(k))
        .append_pair("text", &texts[kind])
        // 1 delivered + 2 undelivered: final states only, as smppd reports.
        .append_pair("dlr-mask", "3")
        .append_pair("dlr-url", &dlr_url);
    if kind == 2 {
        q.append_pair("coding", "2").append_pair("charset", "UTF-8");
    }
    format!("/cgi-bin/sendsms?{}", q.finish())
}

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

async fn connect(port: u16) -> Result<Sender> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One GET; the status and the body read to the end (so the connection can be reused).
async fn get(sender: &mut Sender, port: u16, uri: &str) -> Result<StatusCode> {
    sender.ready().await?;
    let req = Request::get(uri)
        .header(hyper::header::HOST, format!("127.0.0.1:{port}"))
        .body(Empty::<Bytes>::new())?;
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    resp.into_body().collect().await?;
    Ok(status)
}

/// Sends message `warm` (an extra number past the measured ones) and waits for its DLR: proves
/// the whole path (sendsms, SMPP, receipt, dlr-url) before the clock starts.
async fn warm_up(
    run: &KRun,
    port: u16,
    dlr_port: u16,
    warm: usize,
    texts: &[String; 3],
) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let attempt = async {
            let mut s = connect(port).await?;
            get(&mut s, port, &sendsms_uri(warm, 0, texts, dlr_port)).await
        };
        match attempt.await {
            Ok(s) if s == StatusCode::ACCEPTED => break,
            Ok(s) if Instant::now() > until => bail!("Kannel's sendsms answers {s}"),
            Err(e) if Instant::now() > until => bail!("Kannel's sendsms: {e:#}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    while run.done_ns[warm].load(Ordering::Acquire) == 0 {
        if Instant::now() > until {
            bail!("the warm-up message's DLR never reached the endpoint (see the Kannel logs)");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// What one HTTP connection measured.
#[derive(Default)]
struct WorkerOut {
    accept_ms: Vec<f64>,
    /// (sent at, ms since the start; accept latency, ms) of requests slower than a second.
    slow: Vec<(f64, f64)>,
    accepted: Vec<usize>,
    rejected: BTreeMap<String, u64>,
    last_accept_ns: u64,
}

/// Drives Kannel: `conns` connections take message numbers from a shared counter until the
/// load's count; with a rate, message `k` is not sent before `k / rate` seconds into the run.
async fn kannel_load(
    run: Arc<KRun>,
    port: u16,
    dlr_port: u16,
    load: &Load,
    conns: usize,
) -> Result<(WorkerOut, f64)> {
    let (count, mix) = (load.count, Mix::parse(&load.mix)?);
    let pace = load.rate.filter(|r| *r > 0).map(|r| 1e9 / f64::from(r));
    let t0 = tokio::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let texts = Arc::new(smppd::text::samples::mix_texts());
    let mut tasks = Vec::new();
    for _ in 0..conns {
        let (next, texts, run) = (next.clone(), texts.clone(), run.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = WorkerOut::default();
            let mut sender = connect(port).await?;
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    break;
                }
                if let Some(ns) = pace {
                    tokio::time::sleep_until(t0 + Duration::from_nanos((k as f64 * ns) as u64))
                        .await;
                }
                let uri = sendsms_uri(k, mix.kind_of(k as u64), &texts, dlr_port);
                let t0 = run.now_ns();
                run.sent_ns[k].store(t0, Ordering::Release);
                match get(&mut sender, port, &uri).await {
                    Ok(StatusCode::ACCEPTED) => {
                        let t1 = run.now_ns();
                        out.accept_ms.push((t1 - t0) as f64 / 1e6);
                        if t1 - t0 > 1_000_000_000 {
                            out.slow.push((t0 as f64 / 1e6, (t1 - t0) as f64 / 1e6));
                        }
                        out.accepted.push(k);
                        out.last_accept_ns = out.last_accept_ns.max(t1);
                    }
                    Ok(s) => *out.rejected.entry(s.as_u16().to_string()).or_default() += 1,
                    Err(_) => {
                        // The connection broke: count it and reconnect.
                        *out.rejected.entry("connection".into()).or_default() += 1;
                        sender = connect(port).await?;
                    }
                }
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = WorkerOut::default();
    for t in tasks {
        let o = t.await.context("load task")??;
        all.accept_ms.extend(o.accept_ms);
        all.slow.extend(o.slow);
        all.accepted.extend(o.accepted);
        for (k, v) in o.rejected {
            *all.rejected.entry(k).or_default() += v;
        }
        all.last_accept_ns = all.last_accept_ns.max(o.last_accept_ns);
    }
    let accept_secs = all.last_accept_ns as f64 / 1e9;
    Ok((all, accept_secs))
}

/// One Kannel round: start bearerbox and smsbox, warm up, load, wait for the DLRs, stop.
fn kannel_round(args: &Args, sim: &Sim, dir: &Path, round: usize, load: &Load) -> Result<Row> {
    std::fs::create_dir_all(dir)?;
    let ports = KannelPorts {
        admin: common::free_port()?,
        smsbox: common::free_port()?,
        sendsms: common::free_port()?,
    };
    let conf = dir.join("kannel.conf");
    std::fs::write(&conf, kannel_conf(dir, &ports, sim, args.window, load.rate))?;
    sim.wait_unbound(std::time::Duration::from_secs(30))?;
    let (mut bearerbox, _) = common::spawn_reading(
        "bearerbox",
        Command::new(&args.bearerbox).arg("-v").arg("3").arg(&conf),
        &dir.join("bearerbox.out"),
        &[],
        Duration::from_secs(1),
    )?;
    sim.wait_bound(1, Duration::from_secs(60))
        .context("bearerbox did not bind to the simulator")?;
    let (mut smsbox, _) = common::spawn_reading(
        "smsbox",
        Command::new(&args.smsbox).arg("-v").arg("3").arg(&conf),
        &dir.join("smsbox.out"),
        &[],
        Duration::from_secs(1),
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let n = load.count;
    let run = Arc::new(KRun::new(n + 1));
    let result = rt.block_on(async {
        let (dlr_port, sink) = dlr_sink(run.clone()).await?;
        warm_up(
            &run,
            ports.sendsms,
            dlr_port,
            n,
            &smppd::text::samples::mix_texts(),
        )
        .await?;
        sim.command("pacing_reset")?;
        let sim_before = sim.stats()?;
        let cpu_before = cpu_of(&[&bearerbox, &smsbox]);
        let harness_before = harness_cpu(sim);
        // The measured run starts now (all times are relative to `start`).
        let start_ns = run.now_ns();
        let (out, _) = kannel_load(
            run.clone(),
            ports.sendsms,
            dlr_port,
            load,
            args.kannel_connections,
        )
        .await?;
        let want = out.accepted.len();
        let settle_until = Instant::now() + Duration::from_secs(args.settle);
        let mut last_progress = (0usize, Instant::now());
        loop {
            let done = out
                .accepted
                .iter()
                .filter(|&&k| run.done_ns[k].load(Ordering::Acquire) != 0)
                .count();
            if done >= want || Instant::now() > settle_until {
                break;
            }
            if done != last_progress.0 {
                last_progress = (done, Instant::now());
            } else if last_progress.1.elapsed() > Duration::from_secs(60) {
                eprintln!("kannel: no DLR for 60 s, {done} of {want} delivered; giving up");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cpu_after = cpu_of(&[&bearerbox, &smsbox]);
        let harness = harness_cpu(sim) - harness_before;
        let sim_after = sim.stats()?;
        sink.abort();
        if !out.slow.is_empty() {
            let mut slow = out.slow.clone();
            slow.sort_by(|a, b| b.1.total_cmp(&a.1));
            eprintln!(
                "kannel: {} sendsms requests took over 1 s; slowest (sent at ms, took ms): {:?}",
                slow.len(),
                &slow[..slow.len().min(5)]
            );
        }
        let mut acc = out.accept_ms.clone();
        acc.sort_by(f64::total_cmp);
        let mut e2e = Vec::new();
        let mut last_done = start_ns;
        for &k in &out.accepted {
            let d = run.done_ns[k].load(Ordering::Acquire);
            if d != 0 {
                e2e.push((d - run.sent_ns[k].load(Ordering::Acquire)) as f64 / 1e6);
                last_done = last_done.max(d);
            }
        }
        e2e.sort_by(f64::total_cmp);
        let accepted = want as u64;
        let cpu = cpu_after - cpu_before;
        let rss: u64 = [&bearerbox, &smsbox]
            .iter()
            .filter_map(|p| common::proc_rss(p.pid()).map(|r| r.1))
            .sum();
        let d = |k: &str| {
            sim_after[k]
                .as_u64()
                .unwrap_or(0)
                .saturating_sub(sim_before[k].as_u64().unwrap_or(0))
        };
        let odd = [
            run.dlr_extra.load(Ordering::Relaxed),
            run.dlr_other.load(Ordering::Relaxed),
            run.dlr_unknown.load(Ordering::Relaxed),
        ];
        if odd.iter().sum::<u64>() > 0 {
            eprintln!(
                "kannel: {} extra delivered DLRs, {} of another type, {} for unknown numbers",
                odd[0], odd[1], odd[2]
            );
        }
        anyhow::Ok(Row {
            system: "kannel".into(),
            round,
            sent: n,
            accepted,
            rejected: out.rejected.values().sum(),
            delivered: e2e.len() as u64,
            accept_rate: accepted as f64
                / ((out.last_accept_ns.saturating_sub(start_ns)) as f64 / 1e9),
            end_to_end_rate: e2e.len() as f64 / ((last_done - start_ns) as f64 / 1e9),
            accept_p50_ms: common::percentile(&acc, 0.5),
            accept_p99_ms: common::percentile(&acc, 0.99),
            accept_p999_ms: common::percentile(&acc, 0.999),
            delivered_p50_ms: common::percentile(&e2e, 0.5),
            delivered_p99_ms: common::percentile(&e2e, 0.99),
            delivered_p999_ms: common::percentile(&e2e, 0.999),
            cpu_seconds: cpu,
            cpu_us_per_message: per_message(cpu, accepted),
            peak_rss_mib: rss as f64 / 1024.0,
            harness_cpu_us_per_message: per_message(harness, accepted),
            sim_submits: d("submits"),
            sim_receipts: d("receipts_sent"),
        })
    });
    smsbox.stop(Duration::from_secs(20));
    bearerbox.stop(Duration::from_secs(30));
    result
}

fn cpu_of(procs: &[&Proc]) -> f64 {
    procs.iter().filter_map(|p| common::proc_cpu(p.pid())).sum()
}

/// CPU seconds so far of the simulator and of this program (the Kannel load and its DLR sink).
fn harness_cpu(sim: &Sim) -> f64 {
    cpu_of(&[&sim.proc]) + common::proc_cpu(std::process::id()).unwrap_or(0.0)
}

fn per_message(cpu_seconds: f64, messages: u64) -> f64 {
    if messages > 0 {
        cpu_seconds * 1e6 / messages as f64
    } else {
        f64::NAN
    }
}

/// One smppd round: `smppd run` against the simulator, driven by `smppd bench`.
fn smppd_round(
    args: &Args,
    smppd: &Path,
    sim: &Sim,
    dir: &Path,
    round: usize,
    load: &Load,
    bench_rate: u64,
) -> Result<(Row, Value)> {
    sim.wait_unbound(Duration::from_secs(30))?;
    let spec = DaemonSpec {
        window: args.window,
        route_tps: load.rate.map(|r| (r, PACED_BURST)),
        ..DaemonSpec::default()
    };
    let daemon = Daemon::start(
        args.daemon.as_deref().unwrap_or(smppd),
        &spec,
        &sim.addr,
        dir,
    )?;
    sim.wait_bound(1, Duration::from_secs(60))
        .context("smppd did not bind to the simulator")?;
    let sim_before = cpu_of(&[&sim.proc]);
    let r = common::smppd_bench(
        smppd,
        &daemon,
        sim,
        &BenchRun {
            count: load.count,
            connections: args.smppd_connections,
            pipeline: args.pipeline,
            mix: load.mix.clone(),
            settle: args.settle,
            rate: bench_rate,
        },
    )?;
    // `smppd bench` reports its own CPU over its measured span; the simulator's is read here.
    let sim_cpu = cpu_of(&[&sim.proc]) - sim_before;
    let mut daemon = daemon;
    daemon.proc.stop(Duration::from_secs(30));
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let accepted = r["accepted"].as_u64().unwrap_or(0);
    let harness = sim_cpu + f(&r["load_cpu_seconds"]);
    let row = Row {
        system: "smppd".into(),
        round,
        sent: load.count,
        accepted,
        rejected: r["rejected"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum())
            .unwrap_or(0),
        delivered: r["final_states"]["delivered"].as_u64().unwrap_or(0),
        accept_rate: f(&r["accept_rate"]),
        end_to_end_rate: f(&r["end_to_end_rate"]),
        accept_p50_ms: f(&r["accept_ms"]["p50"]),
        accept_p99_ms: f(&r["accept_ms"]["p99"]),
        accept_p999_ms: f(&r["accept_ms"]["p999"]),
        delivered_p50_ms: f(&r["accept_to_final_ms"]["p50"]),
        delivered_p99_ms: f(&r["accept_to_final_ms"]["p99"]),
        delivered_p999_ms: f(&r["accept_to_final_ms"]["p999"]),
        cpu_seconds: f(&r["daemon_cpu_seconds"]),
        cpu_us_per_message: f(&r["daemon_cpu_us_per_message"]),
        peak_rss_mib: f(&r["daemon_peak_rss_mib"]),
        harness_cpu_us_per_message: per_message(harness, accepted),
        sim_submits: r["sim"]["submits"].as_u64().unwrap_or(0),
        sim_receipts: r["sim"]["receipts_sent"].as_u64().unwrap_or(0),
    };
    Ok((row, r))
}

fn print_header() {
    println!(
        "{:<7} {:>5} {:>7} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7}",
        "system",
        "round",
        "accept",
        "deliv",
        "accept/s",
        "e2e/s",
        "acc p50",
        "acc p99",
        "acc p99.9",
        "e2e p50",
        "e2e p99",
        "e2e p99.9",
        "cpu µs/m",
        "RSS MiB",
        "parts"
    );
}

fn print_row(r: &Row) {
    println!(
        "{:<7} {:>5} {:>7} {:>7} {:>9.0} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>9.1} {:>9.1} {:>8.1} {:>7.1} {:>7}",
        r.system,
        r.round,
        r.accepted,
        r.delivered,
        r.accept_rate,
        r.end_to_end_rate,
        r.accept_p50_ms,
        r.accept_p99_ms,
        r.accept_p999_ms,
        r.delivered_p50_ms,
        r.delivered_p99_ms,
        r.delivered_p999_ms,
        r.cpu_us_per_message,
        r.peak_rss_mib,
        r.sim_submits
    );
}

/// Medians per system and the ratios smppd / Kannel.
fn summary(rows: &[Row]) -> Value {
    type Pick = fn(&Row) -> f64;
    let metrics: [(&str, Pick); 11] = [
        ("accept_rate", |r| r.accept_rate),
        ("end_to_end_rate", |r| r.end_to_end_rate),
        ("accept_p50_ms", |r| r.accept_p50_ms),
        ("accept_p99_ms", |r| r.accept_p99_ms),
        ("accept_p999_ms", |r| r.accept_p999_ms),
        ("delivered_p50_ms", |r| r.delivered_p50_ms),
        ("delivered_p99_ms", |r| r.delivered_p99_ms),
        ("delivered_p999_ms", |r| r.delivered_p999_ms),
        ("cpu_us_per_message", |r| r.cpu_us_per_message),
        ("peak_rss_mib", |r| r.peak_rss_mib),
        ("harness_cpu_us_per_message", |r| {
            r.harness_cpu_us_per_message
        }),
    ];
    let mut out = serde_json::Map::new();
    for (name, pick) in metrics {
        let med = |sys: &str| {
            common::median(
                &rows
                    .iter()
                    .filter(|r| r.system == sys)
                    .map(pick)
                    .collect::<Vec<_>>(),
            )
        };
        let (s, k) = (med("smppd"), med("kannel"));
        out.insert(
            name.to_owned(),
            json!({"smppd": s, "kannel": k, "smppd_over_kannel": s / k}),
        );
    }
    Value::Object(out)
}

fn print_summary(s: &Value) {
    println!();
    println!("medians            smppd        Kannel   smppd/Kannel");
    let rows = [
        ("accept rate /s", "accept_rate", 0),
        ("end-to-end /s", "end_to_end_rate", 0),
        ("accept p50 ms", "accept_p50_ms", 2),
        ("accept p99 ms", "accept_p99_ms", 2),
        ("accept p99.9 ms", "accept_p999_ms", 2),
        ("deliv. p50 ms", "delivered_p50_ms", 1),
        ("deliv. p99 ms", "delivered_p99_ms", 1),
        ("deliv. p99.9 ms", "delivered_p999_ms", 1),
        ("CPU µs/message", "cpu_us_per_message", 1),
        ("peak RSS MiB", "peak_rss_mib", 1),
        ("harness µs/msg", "harness_cpu_us_per_message", 1),
    ];
    for (label, key, prec) in rows {
        let m = &s[key];
        let g = |k: &str| m[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{label:<16} {:>9.prec$} {:>13.prec$} {:>14.3}",
            g("smppd"),
            g("kannel"),
            g("smppd_over_kannel"),
        );
    }
    print_ceiling(s);
}

/// What this machine allows each gateway end to end: its cores divided by the CPU one message
/// costs the whole run (gateway + simulator + load tool), against the rate measured.
fn print_ceiling(s: &Value) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let g = |key: &str, sys: &str| s[key][sys].as_f64().unwrap_or(f64::NAN);
    println!();
    println!("machine ceiling ({cores} cores shared by gateway, simulator and load tool):");
    for sys in ["smppd", "kannel"] {
        let total = g("cpu_us_per_message", sys) + g("harness_cpu_us_per_message", sys);
        println!(
            "  {sys:<7} {:.1} + {:.1} µs/message → at most {:.0}/s; measured end to end {:.0}/s",
            g("cpu_us_per_message", sys),
            g("harness_cpu_us_per_message", sys),
            cores * 1e6 / total,
            g("end_to_end_rate", sys),
        );
    }
}

fn write_results(
    args: &Args,
    rows: &[Row],
    summary: &Value,
    pacing: &Value,
    half_rate: &Value,
    configs: &Value,
) -> Result<()> {
    std::fs::create_dir_all(&args.out)?;
    let kannel_version = Command::new(&args.bearerbox)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .chain(String::from_utf8_lossy(&o.stderr).lines())
                .find(|l| l.contains("version"))
                .map(str::to_owned)
        })
        .unwrap_or_default();
    let doc = json!({
        "generated_at": common::utc_now(),
        "machine": common::machine(),
        "kannel_version": kannel_version,
        "settings": {
            "count": args.count, "rounds": args.rounds, "mix": args.mix, "window": args.window,
            "kannel_connections": args.kannel_connections,
            "smppd_connections": args.smppd_connections, "smppd_pipeline": args.pipeline,
            "smppd": args.smppd, "daemon": args.daemon,
            "simulator": format!("smppd sim, receipt delay {}, deliver window {}, DELIVRD only", args.receipt_delay, args.deliver_window),
            "pacing_rates": args.pacing_rates, "pacing_secs": args.pacing_secs,
            "pacing_rounds": args.pacing_rounds,
        },
        "rows": rows,
        "summary": summary,
        "pacing": pacing,
        "half_rate": half_rate,
        "configs": configs,
    });
    let json_path = args.out.join("vs-kannel.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&doc)? + "\n")?;
    let mut csv = String::from(
        "system,round,sent,accepted,rejected,delivered,accept_rate,end_to_end_rate,accept_p50_ms,accept_p99_ms,accept_p999_ms,delivered_p50_ms,delivered_p99_ms,delivered_p999_ms,cpu_seconds,cpu_us_per_message,peak_rss_mib,harness_cpu_us_per_message,sim_submits,sim_receipts\n",
    );
    for r in rows {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{:.1},{:.1},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.2},{:.1},{:.2},{},{}\n",
            r.system, r.round, r.sent, r.accepted, r.rejected, r.delivered, r.accept_rate,
            r.end_to_end_rate, r.accept_p50_ms, r.accept_p99_ms, r.accept_p999_ms,
            r.delivered_p50_ms, r.delivered_p99_ms, r.delivered_p999_ms, r.cpu_seconds,
            r.cpu_us_per_message, r.peak_rss_mib, r.harness_cpu_us_per_message, r.sim_submits,
            r.sim_receipts
        ));
    }
    let csv_path = args.out.join("vs-kannel.csv");
    std::fs::write(&csv_path, csv)?;
    println!(
        "\nresults: {} and {}",
        json_path.display(),
        csv_path.display()
    );
    Ok(())
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kannel-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let mix = Mix::parse(&args.mix)?;
    let smppd = args.smppd.clone().unwrap_or_else(common::default_smppd);
    if !smppd.exists() {
        bail!(
            "{} not found: build it with cargo build --release",
            smppd.display()
        );
    }
    let systems: Vec<&str> = match args.only.as_deref() {
        None => vec!["smppd", "kannel"],
        Some("smppd") => vec!["smppd"],
        Some("kannel") => vec!["kannel"],
        Some(o) => bail!("--only {o:?}: smppd or kannel"),
    };
    if systems.contains(&"kannel") && !args.bearerbox.exists() {
        bail!(
            "{} not found: install Kannel (apt-get install -y kannel)",
            args.bearerbox.display()
        );
    }
    let work = common::work_dir(args.work.as_deref(), "vs-kannel")?;
    println!("working directory {}", work.display());
    let sim = Sim::start(
        &smppd,
        &work.join("sim.log"),
        &[
            "--receipt-delay",
            &args.receipt_delay,
            "--deliver-window",
            &args.deliver_window.to_string(),
        ],
    )?;
    println!(
        "simulator {} (control {}, receipt delay {}, deliver window {}), {} messages per run, mix {}, window {}, {} rounds",
        sim.addr,
        sim.control,
        args.receipt_delay,
        args.deliver_window,
        args.count,
        args.mix,
        args.window,
        args.rounds
    );
    let expected_parts: u64 = (0..args.count).map(|k| PARTS[mix.kind_of(k as u64)]).sum();
    print_header();
    let mut rows = Vec::new();
    let mut smppd_config = String::new();
    let load = Load {
        count: args.count,
        mix: args.mix.clone(),
        rate: None,
    };
    for round in 1..=args.rounds {
        for sys in &systems {
            let dir = work.join(format!("{sys}-r{round}"));
            let row = if *sys == "smppd" {
                let (row, _) = smppd_round(&args, &smppd, &sim, &dir, round, &load, 0)?;
                smppd_config = std::fs::read_to_string(dir.join("smppd.toml")).unwrap_or_default();
                row
            } else {
                kannel_round(&args, &sim, &dir, round, &load)?
            };
            print_row(&row);
            if row.sim_submits != expected_parts {
                eprintln!(
                    "{sys}: the simulator saw {} submit_sm, the mix makes {expected_parts} parts",
                    row.sim_submits
                );
            }
            rows.push(row);
        }
    }
    let s = summary(&rows);
    if !rows.is_empty() {
        print_summary(&s);
    }
    let half_rate = if args.half_rate_secs > 0 && systems.contains(&"smppd") {
        half_rate(&args, &smppd, &sim, &work, &s)?
    } else {
        Value::Null
    };
    let mut pacing = Vec::new();
    for &rate in args.pacing_rates.iter().filter(|r| **r > 0) {
        pacing.push(paced(&args, &smppd, &sim, &work, &systems, rate)?);
    }
    let pacing = Value::Array(pacing);
    let kannel_config =
        std::fs::read_to_string(work.join("kannel-r1").join("kannel.conf")).unwrap_or_default();
    write_results(
        &args,
        &rows,
        &s,
        &pacing,
        &half_rate,
        &json!({"kannel.conf": kannel_config, "smppd.toml": smppd_config}),
    )?;
    Ok(())
}

/// smppd paced by `smppd bench --rate` at half its median end-to-end rate of the rounds: what
/// a client sees when the gateway is not saturated (at full speed, submit → delivered is mostly
/// time spent queued behind the rest of the run).
fn half_rate(args: &Args, smppd: &Path, sim: &Sim, work: &Path, summary: &Value) -> Result<Value> {
    let max = summary["end_to_end_rate"]["smppd"].as_f64().unwrap_or(0.0);
    let rate = (max / 2.0).floor() as u64;
    if rate == 0 {
        bail!("no end-to-end rate for smppd to halve");
    }
    let load = Load {
        count: (rate * args.half_rate_secs) as usize,
        mix: args.mix.clone(),
        rate: None,
    };
    println!(
        "
smppd at half its median end-to-end rate: {rate}/s for {} s ({} messages, mix {}):",
        args.half_rate_secs, load.count, args.mix
    );
    let dir = work.join("smppd-half-rate");
    let (row, _) = smppd_round(args, smppd, sim, &dir, 0, &load, rate)?;
    println!(
        "  accepted {} at {:.0}/s, delivered {}; accept p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms; submit → delivered p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms; CPU {:.1} µs/message, peak RSS {:.1} MiB",
        row.accepted,
        row.accept_rate,
        row.delivered,
        row.accept_p50_ms,
        row.accept_p99_ms,
        row.accept_p999_ms,
        row.delivered_p50_ms,
        row.delivered_p99_ms,
        row.delivered_p999_ms,
        row.cpu_us_per_message,
        row.peak_rss_mib
    );
    Ok(json!({"rate": rate, "seconds": args.half_rate_secs, "row": row}))
}

/// One paced comparison at `rate`: each system, `--pacing-rounds` times interleaved, loaded at
/// the rate and limited to it, short messages for `--pacing-secs`. Per run: CPU µs per message,
/// peak RSS, the simulator's largest 100 ms window; then the medians and the CPU ratio.
fn paced(
    args: &Args,
    smppd: &Path,
    sim: &Sim,
    work: &Path,
    systems: &[&str],
    rate: u32,
) -> Result<Value> {
    let load = Load {
        count: (rate * args.pacing_secs) as usize,
        mix: "short=1,long=0,emoji=0".into(),
        rate: Some(rate),
    };
    println!(
        "\npaced at {rate}/s, {} short messages (load sent at {rate}/s; smppd route tps {rate} burst {PACED_BURST}; Kannel throughput = {rate}):",
        load.count
    );
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for round in 1..=args.pacing_rounds {
        for sys in systems {
            let dir = work.join(format!("{sys}-paced-{rate}-r{round}"));
            sim.command("pacing_reset")?;
            let row = if *sys == "smppd" {
                smppd_round(args, smppd, sim, &dir, round, &load, u64::from(rate))?.0
            } else {
                kannel_round(args, sim, &dir, round, &load)?
            };
            let pacing = pacing_report(sim)?;
            println!(
                "  {sys:<7} round {round}: CPU {:.1} µs/message, peak RSS {:.1} MiB, delivered {} at {:.0}/s, accept p99 {:.2} ms; max {} submits in any 100 ms (rate/10 = {}), busiest 100 ms {}",
                row.cpu_us_per_message,
                row.peak_rss_mib,
                row.delivered,
                row.end_to_end_rate,
                row.accept_p99_ms,
                pacing["max_per_100ms"],
                rate / 10,
                pacing["busiest"]
            );
            runs.push(json!({"system": sys, "round": round, "pacing": pacing}));
            rows.push(row);
        }
    }
    let s = summary(&rows);
    let g = |k: &str, sys: &str| s[k][sys].as_f64().unwrap_or(f64::NAN);
    println!(
        "  medians at {rate}/s: CPU µs/message smppd {:.1}, Kannel {:.1}, smppd/Kannel {:.3}; peak RSS MiB smppd {:.1}, Kannel {:.1}",
        g("cpu_us_per_message", "smppd"),
        g("cpu_us_per_message", "kannel"),
        g("cpu_us_per_message", "smppd_over_kannel"),
        g("peak_rss_mib", "smppd"),
        g("peak_rss_mib", "kannel"),
    );
    Ok(
        json!({"rate": rate, "seconds": args.pacing_secs, "smppd_burst": PACED_BURST,
              "rows": rows, "runs": runs, "summary": s}),
    )
}

/// The simulator's pacing figures since the last reset: the largest 100 ms window, the
/// per-100 ms counts (leading and trailing zeros cut) and the five busiest.
fn pacing_report(sim: &Sim) -> Result<Value> {
    let report: Value = serde_json::from_str(&sim.command("pacing")?)?;
    let max = report["max_per_window"].as_u64().unwrap_or(0);
    let mut counts: Vec<u64> = report["counts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    while counts.last() == Some(&0) {
        counts.pop();
    }
    while counts.first() == Some(&0) {
        counts.remove(0);
    }
    let mut busiest = counts.clone();
    busiest.sort_unstable_by(|a, b| b.cmp(a));
    busiest.truncate(5);
    Ok(json!({"max_per_100ms": max, "per_100ms": counts, "busiest": busiest}))
}
