//! `smppd bench`: a load generator over the submit protocol, for measuring a running daemon.
//!
//! C connections each keep up to P requests in flight (pipelined), optionally paced to a target
//! rate; one more connection subscribes to events to time accept → final state. Reports accept
//! and end-to-end rates, latency percentiles, (with `--pid`) the daemon's CPU time and peak
//! RSS from /proc, and (with `--sim-control`) what the SMSC simulator counted during the run.
//! Only loopback or Unix-socket daemons are meant to be driven by it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use smppd::api::client::{Client, ClientWriter};
use smppd::text::samples::Mix;

use super::send::Target;

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub target: Target,
    /// Connections submitting in parallel.
    #[arg(long, short = 'C', default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, short = 'p', default_value_t = 64)]
    pub pipeline: usize,
    /// Messages to send in all.
    #[arg(long, short = 'n', default_value_t = 10_000)]
    pub count: usize,
    /// Target submit rate per second across all connections (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Message mix as weights: short GSM, 3-part GSM, 2-part UCS-2 with emoji.
    #[arg(long, default_value = "short=80,long=10,emoji=10")]
    pub mix: String,
    /// Destination prefix; a running counter completes each number (E.164, 11 digits in all).
    /// Several, comma-separated, take turns message by message (to load several routes).
    #[arg(long, default_value = "+4670")]
    pub prefix: String,
    /// How long to wait for final states after the last accept (seconds).
    #[arg(long, default_value_t = 60)]
    pub settle: u64,
    /// The daemon's process id, for its CPU time and peak RSS (repeatable: the CPU of every
    /// process given is added up, e.g. two instances and their PostgreSQL; RSS is the largest).
    #[arg(long)]
    pub pid: Vec<u32>,
    /// Another instance of a cluster (its submit address, repeatable): submitting connections
    /// are spread round-robin over the target and these; the subscriber stays on the target,
    /// which sees the whole cluster's events.
    #[arg(long, value_name = "ADDR")]
    pub also: Vec<String>,
    /// Control port of an `smppd sim` the daemon sends to (repeatable): its counts during the
    /// run (submits, receipts, largest window and largest 100 ms burst) are reported. The
    /// simulator's pacing figures are restarted at the start of the run.
    #[arg(long = "sim-control", value_name = "ADDR")]
    pub sim_control: Vec<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Per-process CPU seconds (user + system) and peak RSS in KiB.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    let hz = 100.0; // USER_HZ is 100 on Linux.
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((ticks / hz, hwm))
}

/// CPU seconds added up and the largest peak RSS over `pids`; `None` when there is none or one
/// cannot be read.
fn usage(pids: &[u32]) -> Option<(f64, u64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold((0.0, 0), |(cpu, rss), pid| {
        let (c, r) = proc_usage(*pid)?;
        Some((cpu + c, rss.max(r)))
    })
}

/// What the simulators counted since `before` (none without `--sim-control`).
async fn sims_since(control: &[String], before: &[Value]) -> anyhow::Result<Option<Value>> {
    if control.is_empty() {
        return Ok(None);
    }
    Ok(Some(sim_report(before, &sim_stats(control).await?)))
}

/// CPU seconds between two readings, with the later peak RSS.
fn since(before: Option<(f64, u64)>, after: Option<(f64, u64)>) -> Option<(f64, u64)> {
    match (before, after) {
        (Some((c0, _)), Some((c1, hwm))) => Some((c1 - c0, hwm)),
        _ => None,
    }
}

/// One line to a simulator's control port, one line back.
async fn sim_command(addr: &str, line: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("--sim-control {addr}"))?;
    s.write_all(format!("{line}\n").as_bytes()).await?;
    let mut answer = String::new();
    BufReader::new(s)
        .read_line(&mut answer)
        .await
        .with_context(|| format!("--sim-control {addr}: reading the answer"))?;
    let answer = answer.trim_end().to_owned();
    if let Some(e) = answer.strip_prefix("error: ") {
        bail!("--sim-control {addr}: {line}: {e}");
    }
    Ok(answer)
}

/// The `stats` of every simulator.
async fn sim_stats(addrs: &[String]) -> anyhow::Result<Vec<Value>> {
    let mut out = Vec::new();
    for a in addrs {
        let s = sim_command(a, "stats").await?;
        out.push(serde_json::from_str(&s).with_context(|| format!("--sim-control {a}: stats"))?);
    }
    Ok(out)
}

/// What the simulators counted between two snapshots, summed over them: counters as
/// differences, the largest window and 100 ms burst as maxima of the later snapshot.
fn sim_report(before: &[Value], after: &[Value]) -> Value {
    let delta = |k: &str| -> u64 {
        before
            .iter()
            .zip(after)
            .map(|(b, a)| {
                a[k].as_u64()
                    .unwrap_or(0)
                    .saturating_sub(b[k].as_u64().unwrap_or(0))
            })
            .sum()
    };
    let max = |k: &str| {
        after
            .iter()
            .filter_map(|a| a[k].as_u64())
            .max()
            .unwrap_or(0)
    };
    let mut responses: std::collections::BTreeMap<String, u64> = Default::default();
    for (b, a) in before.iter().zip(after) {
        if let Some(m) = a["responses"].as_object() {
            for (k, v) in m {
                let was = b["responses"][k].as_u64().unwrap_or(0);
                let d = v.as_u64().unwrap_or(0).saturating_sub(was);
                if d > 0 {
                    *responses.entry(k.clone()).or_default() += d;
                }
            }
        }
    }
    json!({
        "submits": delta("submits"),
        "responses": responses,
        "receipts_sent": delta("receipts_sent"),
        "deliveries_acked": delta("deliveries_acked"),
        "deliveries_retried": delta("deliveries_retried"),
        "max_window": max("max_window"),
        "max_submits_100ms": max("max_submits_100ms"),
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A submit request as the load tool sends it (typed: no JSON tree per request).
#[derive(serde::Serialize)]
struct SubmitLine<'a> {
    op: &'static str,
    to: &'a str,
    from: &'a str,
    text: &'a str,
}

/// The fields of a response or event line the load tool reads (the rest is skipped).
#[derive(serde::Deserialize)]
struct Line<'a> {
    #[serde(rename = "ref")]
    r: Option<u64>,
    ok: Option<bool>,
    #[serde(borrow)]
    id: Option<&'a str>,
    #[serde(borrow)]
    event: Option<&'a str>,
    #[serde(borrow)]
    state: Option<&'a str>,
    #[serde(borrow)]
    error: Option<LineError<'a>>,
}

#[derive(serde::Deserialize)]
struct LineError<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
}

#[derive(Default)]
struct Shared {
    /// id → accept time.
    accepted: HashMap<String, Instant>,
    accept_latency_ms: Vec<f64>,
    rejected: HashMap<String, u64>,
}

/// Counts one response: its accept latency and id (for the end-to-end time), or its error code.
async fn record(shared: &Mutex<Shared>, v: &Line<'_>, t0: Instant) {
    let now = Instant::now();
    let mut s = shared.lock().await;
    if v.ok == Some(true) {
        s.accept_latency_ms.push((now - t0).as_secs_f64() * 1000.0);
        if let Some(id) = v.id {
            s.accepted.insert(id.to_owned(), t0);
        }
    } else {
        let code = v.error.as_ref().and_then(|e| e.code).unwrap_or("?");
        *s.rejected.entry(code.to_owned()).or_default() += 1;
    }
}

/// Final states seen by the subscriber: (message id, when, state).
type Finals = Arc<Mutex<Vec<(String, Instant, String)>>>;

pub fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let mix = Mix::parse(&args.mix)?;
    if args.connections == 0 || args.pipeline == 0 {
        bail!("--connections and --pipeline must be at least 1");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args, mix))
}

async fn run(args: BenchArgs, mix: Mix) -> anyhow::Result<()> {
    let mut control = args.target.connect().await?;
    let status = control.call(json!({"op":"status"})).await?;
    let after = status["last_seq"].as_i64().unwrap_or(0);
    for a in &args.sim_control {
        sim_command(a, "pacing_reset").await?;
    }
    let sims_before = sim_stats(&args.sim_control).await?;
    let usage_before = usage(&args.pid);
    let own_before = proc_usage(std::process::id());
    let (subscriber, finals) = subscribe_finals(&args, after).await?;

    let shared = Arc::new(Mutex::new(Shared::default()));
    let texts = Arc::new(smppd::text::samples::mix_texts());
    let start = Instant::now();
    let per_conn = args.count.div_ceil(args.connections);
    let interval = (args.rate > 0)
        .then(|| Duration::from_secs_f64(args.connections as f64 / args.rate as f64));
    let mut workers = Vec::new();
    for conn in 0..args.connections {
        // Connection 0 goes to the target, 1 to the first `--also`, and so on round-robin.
        let client = match conn % (args.also.len() + 1) {
            0 => args.target.connect().await?,
            k => {
                let target = super::send::Target {
                    config: args.target.config.clone(),
                    addr: Some(args.also[k - 1].clone()),
                };
                target.connect().await?
            }
        };
        let worker = Worker {
            first: conn * per_conn,
            n: per_conn.min(args.count.saturating_sub(conn * per_conn)),
            pipeline: args.pipeline,
            prefix: args.prefix.clone(),
            mix,
            texts: texts.clone(),
            shared: shared.clone(),
        };
        workers.push(match interval {
            None => tokio::spawn(worker.unpaced(client)),
            Some(every) => tokio::spawn(worker.paced(client, every)),
        });
    }
    for w in workers {
        w.await.context("worker")??;
    }
    let accept_elapsed = start.elapsed();
    wait_settled(&shared, &finals, Duration::from_secs(args.settle)).await;
    subscriber.abort();
    let usage = since(usage_before, usage(&args.pid));
    // This load tool's own CPU over the same span: part of what the machine spends per message
    // besides the daemon (the ceiling of a 2-core machine depends on it).
    let load_cpu = since(own_before, proc_usage(std::process::id())).map(|u| u.0);
    let sims = sims_since(&args.sim_control, &sims_before).await?;
    let measured = Measured {
        start,
        accept_elapsed,
        usage,
        load_cpu,
        sims,
    };
    let report = report(&args, &*shared.lock().await, &finals.lock().await, measured);
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    if report["accepted"].as_u64() == Some(0) {
        bail!("nothing was accepted");
    }
    Ok(())
}

/// Subscribes to events from `after` and collects every final `dlr` state.
async fn subscribe_finals(
    args: &BenchArgs,
    after: i64,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, Finals)> {
    let finals: Finals = Arc::default();
    let mut sub = args.target.connect().await?;
    sub.call(json!({"op":"subscribe","after":after})).await?;
    let out = finals.clone();
    let task = tokio::spawn(async move {
        let mut line = String::new();
        while sub.next_raw(&mut line).await.is_ok() {
            let Ok(ev) = serde_json::from_str::<Line<'_>>(&line) else {
                continue;
            };
            let state = ev.state.unwrap_or("");
            if ev.event != Some("dlr") || ["submitted", "queued", ""].contains(&state) {
                continue;
            }
            let id = ev.id.unwrap_or("").to_owned();
            out.lock()
                .await
                .push((id, Instant::now(), state.to_owned()));
        }
    });
    Ok((task, finals))
}

/// Waits until every accepted message has a final state, or `settle` has passed.
async fn wait_settled(shared: &Mutex<Shared>, finals: &Finals, settle: Duration) {
    let until = Instant::now() + settle;
    loop {
        let (done, want) = {
            let s = shared.lock().await;
            let f = finals.lock().await;
            let done = f.iter().filter(|(id, _, _)| s.accepted.contains_key(id));
            (done.count(), s.accepted.len())
        };
        if done >= want || Instant::now() > until {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One submitting connection's share of the run: messages `first..first + n`.
struct Worker {
    first: usize,
    n: usize,
    pipeline: usize,
    prefix: String,
    mix: Mix,
    texts: Arc<[String; 3]>,
    shared: Arc<Mutex<Shared>>,
}

impl Worker {
    /// The destination of message `k`: the prefix completed by a counter to 11 digits.
    fn to(&self, k: usize) -> String {
        let prefixes: Vec<&str> = self.prefix.split(',').collect();
        let prefix = prefixes[k % prefixes.len()];
        let width = 11usize
            .saturating_sub(prefix.len().saturating_sub(1))
            .clamp(1, 9);
        format!("{prefix}{:0width$}", k % 10_000_000)
    }

    fn line<'a>(&'a self, to: &'a str, k: usize) -> SubmitLine<'a> {
        SubmitLine {
            op: "submit",
            to,
            from: "BENCH",
            text: &self.texts[self.mix.kind_of(k as u64)],
        }
    }

    /// As fast as possible: fills the pipeline, then reads one response and sends one more.
    async fn unpaced(self, mut c: Client) -> anyhow::Result<()> {
        let mut line = String::new();
        let mut sent_at: HashMap<u64, Instant> = HashMap::new();
        let mut next = 0usize;
        while next < self.n || !sent_at.is_empty() {
            while next < self.n && sent_at.len() < self.pipeline {
                let k = self.first + next;
                let to = self.to(k);
                let r = c.send_typed(&self.line(&to, k)).await?;
                sent_at.insert(r, Instant::now());
                next += 1;
            }
            c.flush().await?;
            c.next_raw(&mut line).await?;
            let Ok(v) = serde_json::from_str::<Line<'_>>(&line) else {
                continue;
            };
            if let Some(t0) = v.r.and_then(|r| sent_at.remove(&r)) {
                record(&self.shared, &v, t0).await;
            }
        }
        Ok(())
    }

    /// Paced: the sender ticks on its own and never waits for a response (waiting would add
    /// the pipeline's fill time to every accept latency); the reader takes responses as they
    /// come. The pipeline still bounds what is in flight.
    async fn paced(self, client: Client, every: Duration) -> anyhow::Result<()> {
        let (mut reader, writer) = client.into_split();
        let in_flight: InFlight = Arc::default();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.pipeline));
        let this = Arc::new(self);
        let sender =
            tokio::spawn(
                this.clone()
                    .send_paced(writer, every, in_flight.clone(), slots.clone()),
            );
        let mut line = String::new();
        let mut answered = 0usize;
        while answered < this.n {
            reader.next_raw(&mut line).await?;
            let Ok(v) = serde_json::from_str::<Line<'_>>(&line) else {
                continue;
            };
            let t0 = v.r.and_then(|r| lock(&in_flight).ok()?.remove(&r));
            let Some(t0) = t0 else { continue };
            answered += 1;
            slots.add_permits(1);
            record(&this.shared, &v, t0).await;
        }
        // The writer half is kept until every response is read: dropping it would close the
        // connection's sending side early.
        let _writer = sender.await.context("sender")??;
        Ok(())
    }

    async fn send_paced(
        self: Arc<Self>,
        mut writer: ClientWriter,
        every: Duration,
        in_flight: InFlight,
        slots: Arc<tokio::sync::Semaphore>,
    ) -> anyhow::Result<ClientWriter> {
        let mut pace = tokio::time::interval(every);
        for next in 0..self.n {
            slots.acquire().await.context("pipeline")?.forget();
            pace.tick().await;
            let k = self.first + next;
            let to = self.to(k);
            let r = writer.send_typed(&self.line(&to, k)).await?;
            // Recorded before the flush, so the response always finds it.
            lock(&in_flight)?.insert(r, Instant::now());
            writer.flush().await?;
        }
        Ok(writer)
    }
}

/// Requests of a paced connection in flight: ref → when it was sent.
type InFlight = Arc<std::sync::Mutex<HashMap<u64, Instant>>>;

fn lock(m: &InFlight) -> anyhow::Result<std::sync::MutexGuard<'_, HashMap<u64, Instant>>> {
    m.lock()
        .map_err(|_| anyhow::anyhow!("in-flight map poisoned"))
}

/// What the run measured besides the responses and events.
struct Measured {
    start: Instant,
    accept_elapsed: Duration,
    /// The daemon's CPU seconds during the run and its peak RSS (KiB), with `--pid`.
    usage: Option<(f64, u64)>,
    /// This load tool's CPU seconds during the run.
    load_cpu: Option<f64>,
    sims: Option<Value>,
}

/// The report: rates, latency percentiles, final states, the daemon's usage.
fn report(
    args: &BenchArgs,
    s: &Shared,
    finals: &[(String, Instant, String)],
    m: Measured,
) -> Value {
    let mut e2e_ms = Vec::new();
    let mut states: HashMap<String, u64> = HashMap::new();
    let mut last_final = m.start;
    for (id, at, state) in finals {
        if let Some(t0) = s.accepted.get(id) {
            e2e_ms.push((*at - *t0).as_secs_f64() * 1000.0);
            *states.entry(state.clone()).or_default() += 1;
            last_final = last_final.max(*at);
        }
    }
    let mut acc = s.accept_latency_ms.clone();
    acc.sort_by(f64::total_cmp);
    e2e_ms.sort_by(f64::total_cmp);
    let accepted = s.accepted.len();
    let delivered = states.get("delivered").copied().unwrap_or(0);
    let e2e_secs = (last_final - m.start).as_secs_f64();
    let pct = |v: &[f64]| json!({"p50": percentile(v, 0.5), "p99": percentile(v, 0.99), "p999": percentile(v, 0.999)});
    let cpu = m.usage;
    json!({
        "sent": args.count,
        "accepted": accepted,
        "rejected": s.rejected,
        "accept_rate": accepted as f64 / m.accept_elapsed.as_secs_f64(),
        "final": finals.len(),
        "final_states": states,
        "end_to_end_rate": if e2e_secs > 0.0 { delivered as f64 / e2e_secs } else { 0.0 },
        "accept_ms": pct(&acc),
        "accept_to_final_ms": pct(&e2e_ms),
        "daemon_cpu_seconds": cpu.map(|c| c.0),
        "daemon_cpu_us_per_message": cpu.map(|c| if accepted > 0 { c.0 * 1e6 / accepted as f64 } else { 0.0 }),
        "daemon_peak_rss_mib": cpu.map(|c| c.1 as f64 / 1024.0),
        "load_cpu_seconds": m.load_cpu,
        "sim": m.sims,
    })
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    println!("sent                {}", r["sent"]);
    println!(
        "accepted            {}   rejected {}",
        r["accepted"], r["rejected"]
    );
    println!("accept rate         {} /s", f(&r["accept_rate"]));
    println!("final states        {}", r["final_states"]);
    println!(
        "end-to-end rate     {} delivered/s",
        f(&r["end_to_end_rate"])
    );
    println!(
        "accept latency      p50 {} ms   p99 {} ms   p99.9 {} ms",
        f(&r["accept_ms"]["p50"]),
        f(&r["accept_ms"]["p99"]),
        f(&r["accept_ms"]["p999"])
    );
    println!(
        "accept → final      p50 {} ms   p99 {} ms   p99.9 {} ms",
        f(&r["accept_to_final_ms"]["p50"]),
        f(&r["accept_to_final_ms"]["p99"]),
        f(&r["accept_to_final_ms"]["p999"])
    );
    println!(
        "daemon              cpu {} s ({} µs/message), peak RSS {} MiB",
        f(&r["daemon_cpu_seconds"]),
        f(&r["daemon_cpu_us_per_message"]),
        f(&r["daemon_peak_rss_mib"])
    );
    let sim = &r["sim"];
    if !sim.is_null() {
        println!(
            "simulator           {} submits {}, {} receipts sent, {} acknowledged",
            sim["submits"], sim["responses"], sim["receipts_sent"], sim["deliveries_acked"]
        );
        println!(
            "                    max window {}, max submits in 100 ms {}",
            sim["max_window"], sim["max_submits_100ms"]
        );
    }
}
