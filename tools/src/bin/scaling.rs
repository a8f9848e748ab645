//! Scaling figures of smppd end to end against `smppd sim` (issue #8, item 4), run by
//! `bench/scaling.sh`, or directly: `cargo run --release -p smppd-tools --bin scaling -- --quick`.
//!
//! Every point starts a fresh simulator (receipts at once, or `--receipt-delay 1s..30s`: each
//! receipt 1–30 s after its submit, the "receipts realistically late" case) and a fresh `smppd run` (store
//! `sync = "normal"`) and drives it with `smppd bench`:
//! - throughput against binds (1, 2, 4, 8; window 100, short messages), window (1, 10, 100; one
//!   bind) and message size (short GSM, 3-part GSM, 2-part UCS-2 with emoji; one bind, window 100);
//! - the backlog drain: N messages (1,000,000; `--quick` 100,000) queued while the simulator
//!   rejects binds, then binds allowed: time to drain (until every receipt is durably recorded),
//!   drain rate and the daemon's RSS sampled from /proc every 250 ms;
//! - pacing: a route limited to R parts/s with a burst of 10, loaded above R: the largest number
//!   of submits the simulator saw in any 100 ms window against R/10 + burst.
//!
//! Writes `bench/results/scaling.{csv,json}`, `drain.csv`, `pacing.csv` and the plot
//! `scaling.png` (plotters; text in DejaVu Sans from the system's fonts).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Parser;
use plotters::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use smppd_tools::common;
use smppd_tools::common::{BenchRun, Daemon, DaemonSpec, Sim};

#[derive(Debug, Parser)]
#[command(
    name = "scaling",
    about = "smppd throughput, backlog drain and pacing figures"
)]
struct Args {
    /// Fewer messages, one repetition, a 100,000-message backlog, one pacing rate.
    #[arg(long)]
    quick: bool,
    /// Messages per throughput point (default 50,000; --quick 10,000).
    #[arg(long)]
    count: Option<usize>,
    /// Repetitions of each throughput point; the median is reported (default 3; --quick 1).
    #[arg(long)]
    repeat: Option<usize>,
    /// Messages in the backlog drain (default 1,000,000; --quick 100,000).
    #[arg(long)]
    backlog: Option<usize>,
    /// Route rates (parts/s) of the pacing check (default 500,2000; --quick 1000).
    #[arg(long, value_delimiter = ',')]
    pacing_rates: Option<Vec<u32>>,
    /// Burst of the paced route.
    #[arg(long, default_value_t = 10)]
    pacing_burst: u32,
    /// Skip parts: matrix, drain, pacing (comma-separated).
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// smppd bench connections and pipelined requests per connection.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    #[arg(long, default_value_t = 64)]
    pipeline: usize,
    /// The smppd binary (default: $SMPPD_BIN, else $CARGO_TARGET_DIR/release/smppd).
    #[arg(long)]
    smppd: Option<PathBuf>,
    /// Where results and the plot go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Working directory (default: a fresh one in /tmp).
    #[arg(long)]
    work: Option<PathBuf>,
    /// A TTF font for the plot's text (default: DejaVu Sans from /usr/share/fonts).
    #[arg(long)]
    font: Option<PathBuf>,
    /// The simulator's receipt delay for every point: a duration (`0ms`, receipts at once) or a
    /// range `MIN..MAX` (`1s..30s`: each receipt its own delay, as real SMSCs answer).
    #[arg(long, default_value = "0ms")]
    receipt_delay: String,
}

impl Args {
    /// The simulator flags of every point, with `more`.
    fn sim_flags<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--receipt-delay", self.receipt_delay.as_str()];
        v.extend_from_slice(more);
        v
    }
}

/// One measured throughput point (one repetition).
#[derive(Debug, Clone, Serialize)]
struct Point {
    group: String,
    binds: u32,
    window: u32,
    size: String,
    repetition: usize,
    messages: usize,
    delivered: u64,
    parts: u64,
    accept_rate: f64,
    end_to_end_rate: f64,
    parts_per_second: f64,
    accept_p50_ms: f64,
    accept_p99_ms: f64,
    delivered_p50_ms: f64,
    delivered_p99_ms: f64,
    cpu_us_per_message: f64,
    peak_rss_mib: f64,
}

/// The mix string of `smppd bench` for one size.
fn mix(size: &str) -> &'static str {
    match size {
        "long" => "short=0,long=1,emoji=0",
        "emoji" => "short=0,long=0,emoji=1",
        _ => "short=1,long=0,emoji=0",
    }
}

fn measure(
    args: &Args,
    smppd: &Path,
    work: &Path,
    (group, binds, window, size): (&str, u32, u32, &str),
    count: usize,
    repetition: usize,
) -> Result<Point> {
    let dir = work.join(format!("{group}-b{binds}-w{window}-{size}-r{repetition}"));
    std::fs::create_dir_all(&dir)?;
    let sim = Sim::start(smppd, &dir.join("sim.log"), &args.sim_flags(&[]))?;
    let spec = DaemonSpec {
        binds,
        window,
        ..DaemonSpec::default()
    };
    let daemon = Daemon::start(smppd, &spec, &sim.addr, &dir)?;
    sim.wait_bound(u64::from(binds), Duration::from_secs(60))?;
    let r = common::smppd_bench(
        smppd,
        &daemon,
        &sim,
        &BenchRun {
            count,
            connections: args.connections,
            pipeline: args.pipeline,
            mix: mix(size).to_owned(),
            settle: 300,
            rate: 0,
        },
    )?;
    drop(daemon);
    drop(sim);
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let delivered = r["final_states"]["delivered"].as_u64().unwrap_or(0);
    let parts = r["sim"]["submits"].as_u64().unwrap_or(0);
    let e2e = f(&r["end_to_end_rate"]);
    let per_message = if delivered > 0 {
        parts as f64 / r["accepted"].as_f64().unwrap_or(1.0).max(1.0)
    } else {
        f64::NAN
    };
    Ok(Point {
        group: group.to_owned(),
        binds,
        window,
        size: size.to_owned(),
        repetition,
        messages: count,
        delivered,
        parts,
        accept_rate: f(&r["accept_rate"]),
        end_to_end_rate: e2e,
        parts_per_second: e2e * per_message,
        accept_p50_ms: f(&r["accept_ms"]["p50"]),
        accept_p99_ms: f(&r["accept_ms"]["p99"]),
        delivered_p50_ms: f(&r["accept_to_final_ms"]["p50"]),
        delivered_p99_ms: f(&r["accept_to_final_ms"]["p99"]),
        cpu_us_per_message: f(&r["daemon_cpu_us_per_message"]),
        peak_rss_mib: f(&r["daemon_peak_rss_mib"]),
    })
}

/// Medians over repetitions of the same (group, binds, window, size).
fn medians(points: &[Point]) -> Vec<Point> {
    let mut out: Vec<Point> = Vec::new();
    for p in points {
        if out.iter().any(|o| {
            o.group == p.group && o.binds == p.binds && o.window == p.window && o.size == p.size
        }) {
            continue;
        }
        let same: Vec<&Point> = points
            .iter()
            .filter(|o| {
                o.group == p.group && o.binds == p.binds && o.window == p.window && o.size == p.size
            })
            .collect();
        let m =
            |f: fn(&Point) -> f64| common::median(&same.iter().map(|p| f(p)).collect::<Vec<_>>());
        out.push(Point {
            repetition: same.len(),
            accept_rate: m(|p| p.accept_rate),
            end_to_end_rate: m(|p| p.end_to_end_rate),
            parts_per_second: m(|p| p.parts_per_second),
            accept_p50_ms: m(|p| p.accept_p50_ms),
            accept_p99_ms: m(|p| p.accept_p99_ms),
            delivered_p50_ms: m(|p| p.delivered_p50_ms),
            delivered_p99_ms: m(|p| p.delivered_p99_ms),
            cpu_us_per_message: m(|p| p.cpu_us_per_message),
            peak_rss_mib: m(|p| p.peak_rss_mib),
            ..p.clone()
        });
    }
    out
}

/// One sample of the drain.
#[derive(Debug, Clone, Serialize)]
struct DrainSample {
    /// Seconds since the binds were allowed (negative: while queueing).
    t: f64,
    rss_mib: f64,
    submits: u64,
    receipts_acked: u64,
}

#[derive(Debug, Clone, Serialize)]
struct Drain {
    backlog: usize,
    accepted: u64,
    accept_rate_smsc_down: f64,
    queued_before_drain: u64,
    /// Binds allowed → every receipt durably recorded.
    drain_seconds: f64,
    drain_rate: f64,
    /// First → last submit the simulator saw.
    send_seconds: f64,
    rss_after_queueing_mib: f64,
    peak_rss_during_drain_mib: f64,
    rss_after_drain_mib: f64,
    daemon_cpu_seconds_drain: f64,
}

fn drain(
    args: &Args,
    smppd: &Path,
    work: &Path,
    backlog: usize,
) -> Result<(Drain, Vec<DrainSample>)> {
    let dir = work.join("drain");
    std::fs::create_dir_all(&dir)?;
    let sim = Sim::start(
        smppd,
        &dir.join("sim.log"),
        &args.sim_flags(&["--reject-binds", "ESME_RBINDFAIL"]),
    )?;
    let spec = DaemonSpec {
        reconnect_max: "1s",
        ..DaemonSpec::default()
    };
    let daemon = Daemon::start(smppd, &spec, &sim.addr, &dir)?;
    let pid = daemon.proc.pid();
    // The sampler: RSS from /proc and the simulator's counts, every 250 ms.
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, control) = (stop.clone(), sim.control.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Acquire) {
                let at = Instant::now();
                let rss = common::proc_rss(pid).map_or(f64::NAN, |r| r.0 as f64 / 1024.0);
                let stats: Value = common::line_call(&control, "stats")
                    .ok()
                    .and_then(|s| serde_json::from_str(&s).ok())
                    .unwrap_or(Value::Null);
                samples.push((
                    at,
                    rss,
                    stats["submits"].as_u64().unwrap_or(0),
                    stats["deliveries_acked"].as_u64().unwrap_or(0),
                ));
                std::thread::sleep(Duration::from_millis(250));
            }
            samples
        })
    };
    println!("drain: queueing {backlog} messages with the SMSC rejecting binds");
    let q = common::smppd_bench(
        smppd,
        &daemon,
        &sim,
        &BenchRun {
            count: backlog,
            connections: args.connections,
            pipeline: args.pipeline,
            mix: mix("short").to_owned(),
            settle: 0,
            rate: 0,
        },
    )?;
    let accepted = q["accepted"].as_u64().unwrap_or(0);
    let queued = daemon.queued()?;
    let rss_queued = common::proc_rss(pid).map_or(f64::NAN, |r| r.0 as f64 / 1024.0);
    println!(
        "drain: {accepted} accepted at {:.0}/s, {queued} parts queued, RSS {rss_queued:.1} MiB; allowing binds",
        q["accept_rate"].as_f64().unwrap_or(0.0)
    );
    let cpu0 = common::proc_cpu(pid).unwrap_or(0.0);
    let up = Instant::now();
    sim.command("reject_binds off")?;
    let deadline = up + Duration::from_secs(3600);
    let mut last_report = Instant::now();
    loop {
        let s = sim.stats()?;
        let acked = s["deliveries_acked"].as_u64().unwrap_or(0);
        if acked >= accepted {
            break;
        }
        if Instant::now() > deadline {
            bail!("drain: not done after an hour ({acked} of {accepted} receipts)");
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            println!(
                "drain: {:.0} s, {} submits, {acked} receipts recorded",
                up.elapsed().as_secs_f64(),
                s["submits"]
            );
            last_report = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let drain_seconds = up.elapsed().as_secs_f64();
    let cpu = common::proc_cpu(pid).unwrap_or(0.0) - cpu0;
    // A few samples after the end, to show RSS settling.
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::Release);
    let samples: Vec<DrainSample> = sampler
        .join()
        .unwrap_or_default()
        .into_iter()
        .map(|(at, rss_mib, submits, receipts_acked)| DrainSample {
            t: if at >= up {
                (at - up).as_secs_f64()
            } else {
                -(up - at).as_secs_f64()
            },
            rss_mib,
            submits,
            receipts_acked,
        })
        .collect();
    let rss_end = common::proc_rss(pid).map_or(f64::NAN, |r| r.0 as f64 / 1024.0);
    let during: Vec<&DrainSample> = samples.iter().filter(|s| s.t >= 0.0).collect();
    let peak = during.iter().map(|s| s.rss_mib).fold(f64::NAN, f64::max);
    let first_submit = during.iter().find(|s| s.submits > 0).map(|s| s.t);
    let last_submit = during.iter().find(|s| s.submits >= accepted).map(|s| s.t);
    let send_seconds = match (first_submit, last_submit) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    drop(daemon);
    drop(sim);
    Ok((
        Drain {
            backlog,
            accepted,
            accept_rate_smsc_down: q["accept_rate"].as_f64().unwrap_or(f64::NAN),
            queued_before_drain: queued,
            drain_seconds,
            drain_rate: accepted as f64 / drain_seconds,
            send_seconds,
            rss_after_queueing_mib: rss_queued,
            peak_rss_during_drain_mib: peak,
            rss_after_drain_mib: rss_end,
            daemon_cpu_seconds_drain: cpu,
        },
        samples,
    ))
}

#[derive(Debug, Clone, Serialize)]
struct Pacing {
    route_tps: u32,
    burst: u32,
    messages: usize,
    /// Largest number of submits in any 100 ms window (simulator, sliding, exact to the µs).
    max_per_100ms: u64,
    /// R/10 + burst.
    limit: u64,
    within: bool,
    /// Submits per second over the busy buckets.
    achieved_rate: f64,
    /// Submits per 100 ms bucket from the first busy one.
    counts: Vec<u64>,
}

fn pacing(args: &Args, smppd: &Path, work: &Path, rate: u32, seconds: u32) -> Result<Pacing> {
    let dir = work.join(format!("pacing-{rate}"));
    std::fs::create_dir_all(&dir)?;
    let sim = Sim::start(smppd, &dir.join("sim.log"), &args.sim_flags(&[]))?;
    let burst = args.pacing_burst;
    let spec = DaemonSpec {
        route_tps: Some((rate, burst)),
        ..DaemonSpec::default()
    };
    let daemon = Daemon::start(smppd, &spec, &sim.addr, &dir)?;
    sim.wait_bound(1, Duration::from_secs(60))?;
    let messages = (rate * seconds) as usize;
    let r = common::smppd_bench(
        smppd,
        &daemon,
        &sim,
        &BenchRun {
            count: messages,
            connections: args.connections,
            pipeline: args.pipeline,
            mix: mix("short").to_owned(),
            settle: u64::from(seconds) * 4 + 30,
            rate: 0,
        },
    )?;
    let report: Value = serde_json::from_str(&sim.command("pacing")?)?;
    drop(daemon);
    drop(sim);
    let mut counts: Vec<u64> = report["counts"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    while counts.last() == Some(&0) {
        counts.pop();
    }
    let max = r["sim"]["max_submits_100ms"].as_u64().unwrap_or(0);
    let limit = u64::from(rate / 10 + burst);
    // The first and last buckets are partial: the rate over the full ones in between.
    let achieved = if counts.len() > 2 {
        counts[1..counts.len() - 1].iter().sum::<u64>() as f64 / ((counts.len() - 2) as f64 * 0.1)
    } else {
        f64::NAN
    };
    Ok(Pacing {
        route_tps: rate,
        burst,
        messages,
        max_per_100ms: max,
        limit,
        within: max <= limit,
        achieved_rate: achieved,
        counts,
    })
}

fn main() -> std::process::ExitCode {
    match run(Args::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scaling: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<()> {
    let smppd = args.smppd.clone().unwrap_or_else(common::default_smppd);
    if !smppd.exists() {
        bail!(
            "{} not found: build it with cargo build --release",
            smppd.display()
        );
    }
    let count = args
        .count
        .unwrap_or(if args.quick { 10_000 } else { 50_000 });
    let repeat = args.repeat.unwrap_or(if args.quick { 1 } else { 3 }).max(1);
    let backlog = args
        .backlog
        .unwrap_or(if args.quick { 100_000 } else { 1_000_000 });
    let rates = args.pacing_rates.clone().unwrap_or_else(|| {
        if args.quick {
            vec![1000]
        } else {
            vec![500, 2000]
        }
    });
    let skip = |part: &str| args.skip.iter().any(|s| s == part);
    let work = common::work_dir(args.work.as_deref(), "scaling")?;
    std::fs::create_dir_all(&args.out)?;
    println!("working directory {}", work.display());
    let started = Instant::now();

    let mut raw = Vec::new();
    if !skip("matrix") {
        let mut plan: Vec<(&str, u32, u32, &str)> = Vec::new();
        for b in [1, 2, 4, 8] {
            plan.push(("binds", b, 100, "short"));
        }
        for w in [1, 10, 100] {
            plan.push(("window", 1, w, "short"));
        }
        for s in ["short", "long", "emoji"] {
            plan.push(("size", 1, 100, s));
        }
        println!(
            "{:<7} {:>5} {:>6} {:<6} {:>3} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7}",
            "group",
            "binds",
            "window",
            "size",
            "rep",
            "accept/s",
            "e2e/s",
            "parts/s",
            "acc p50",
            "acc p99",
            "e2e p50",
            "e2e p99",
            "cpu µs/m",
            "RSS MiB"
        );
        for rep in 1..=repeat {
            for &p in &plan {
                // Window 1 is slow by nature: a fifth of the messages keeps the run short.
                let n = if p.2 == 1 { count / 5 } else { count }.max(100);
                let pt = measure(&args, &smppd, &work, p, n, rep)?;
                print_point(&pt);
                raw.push(pt);
            }
        }
    }
    let table = medians(&raw);
    if !table.is_empty() {
        println!("\nmedians of {repeat} repetition(s):");
        for p in &table {
            print_point(p);
        }
    }

    let mut drain_result = None;
    if !skip("drain") {
        let (d, samples) = drain(&args, &smppd, &work, backlog)?;
        println!(
            "drain: {} messages in {:.1} s ({:.0}/s; sending took {:.1} s), RSS after queueing {:.1} MiB, peak during drain {:.1} MiB, after {:.1} MiB",
            d.accepted,
            d.drain_seconds,
            d.drain_rate,
            d.send_seconds,
            d.rss_after_queueing_mib,
            d.peak_rss_during_drain_mib,
            d.rss_after_drain_mib
        );
        let mut csv = String::from("t_seconds,rss_mib,sim_submits,receipts_recorded\n");
        for s in &samples {
            csv.push_str(&format!(
                "{:.3},{:.2},{},{}\n",
                s.t, s.rss_mib, s.submits, s.receipts_acked
            ));
        }
        std::fs::write(args.out.join("drain.csv"), csv)?;
        drain_result = Some((d, samples));
    }

    let mut pacing_results = Vec::new();
    if !skip("pacing") {
        for &r in &rates {
            let p = pacing(&args, &smppd, &work, r, if args.quick { 3 } else { 5 })?;
            println!(
                "pacing: route tps {} burst {}: max {} submits in 100 ms (limit R/10 + burst = {}) {}, achieved {:.0}/s",
                p.route_tps,
                p.burst,
                p.max_per_100ms,
                p.limit,
                if p.within { "ok" } else { "OVER" },
                p.achieved_rate
            );
            pacing_results.push(p);
        }
        let mut csv = String::from("route_tps,burst,bucket_start_ms,submits\n");
        for p in &pacing_results {
            for (i, n) in p.counts.iter().enumerate() {
                csv.push_str(&format!("{},{},{},{}\n", p.route_tps, p.burst, i * 100, n));
            }
        }
        std::fs::write(args.out.join("pacing.csv"), csv)?;
    }

    // Raw numbers.
    let mut csv = String::from(
        "group,binds,window,size,repetition,messages,delivered,parts,accept_rate,end_to_end_rate,parts_per_second,accept_p50_ms,accept_p99_ms,delivered_p50_ms,delivered_p99_ms,cpu_us_per_message,peak_rss_mib\n",
    );
    for p in &raw {
        csv.push_str(&format!(
            "{},{},{},{},{},{},{},{},{:.1},{:.1},{:.1},{:.3},{:.3},{:.3},{:.3},{:.2},{:.1}\n",
            p.group,
            p.binds,
            p.window,
            p.size,
            p.repetition,
            p.messages,
            p.delivered,
            p.parts,
            p.accept_rate,
            p.end_to_end_rate,
            p.parts_per_second,
            p.accept_p50_ms,
            p.accept_p99_ms,
            p.delivered_p50_ms,
            p.delivered_p99_ms,
            p.cpu_us_per_message,
            p.peak_rss_mib
        ));
    }
    std::fs::write(args.out.join("scaling.csv"), csv)?;
    let doc = json!({
        "generated_at": common::utc_now(),
        "machine": common::machine(),
        "settings": {"quick": args.quick, "count": count, "repeat": repeat, "backlog": backlog,
                     "connections": args.connections, "pipeline": args.pipeline,
                     "store_sync": "normal", "receipt_delay": args.receipt_delay},
        "points": raw,
        "medians": table,
        "drain": drain_result.as_ref().map(|d| &d.0),
        "pacing": pacing_results,
        "seconds": started.elapsed().as_secs_f64(),
    });
    std::fs::write(
        args.out.join("scaling.json"),
        serde_json::to_string_pretty(&doc)? + "\n",
    )?;
    let png = args.out.join("scaling.png");
    plot(
        &args,
        &png,
        &table,
        drain_result.as_ref().map(|d| d.1.as_slice()),
        &pacing_results,
    )
    .context("drawing the plot")?;
    println!(
        "\nresults in {} (scaling.csv, scaling.json, drain.csv, pacing.csv, scaling.png) after {:.0} s",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn print_point(p: &Point) {
    println!(
        "{:<7} {:>5} {:>6} {:<6} {:>3} {:>9.0} {:>9.0} {:>9.0} {:>8.2} {:>8.2} {:>9.1} {:>9.1} {:>8.1} {:>7.1}",
        p.group,
        p.binds,
        p.window,
        p.size,
        p.repetition,
        p.accept_rate,
        p.end_to_end_rate,
        p.parts_per_second,
        p.accept_p50_ms,
        p.accept_p99_ms,
        p.delivered_p50_ms,
        p.delivered_p99_ms,
        p.cpu_us_per_message,
        p.peak_rss_mib
    );
}

type DrawResult<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn plot(
    args: &Args,
    png: &Path,
    table: &[Point],
    drain: Option<&[DrainSample]>,
    pacing: &[Pacing],
) -> Result<()> {
    common::register_font(args.font.as_deref())?;
    draw(png, table, drain, pacing).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn draw(
    png: &Path,
    table: &[Point],
    drain: Option<&[DrainSample]>,
    pacing: &[Pacing],
) -> DrawResult<()> {
    let root = BitMapBackend::new(png, (1500, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "smppd end to end against smppd sim (receipts on, sync = normal)",
        ("sans-serif", 24),
    )?;
    let panels = root.split_evenly((2, 3));
    let group = |g: &str| -> Vec<&Point> { table.iter().filter(|p| p.group == g).collect() };

    // 1. Binds.
    let binds = group("binds");
    let ymax = binds
        .iter()
        .map(|p| p.end_to_end_rate.max(p.accept_rate))
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = ChartBuilder::on(&panels[0])
        .caption(
            "throughput vs binds (window 100, short)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(0.5f64..8.5f64, 0f64..ymax)?;
    c.configure_mesh()
        .x_desc("binds")
        .y_desc("messages/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_labels(8)
        .draw()?;
    c.draw_series(LineSeries::new(
        binds
            .iter()
            .map(|p| (f64::from(p.binds), p.end_to_end_rate)),
        BLUE.stroke_width(2),
    ))?
    .label("delivered/s")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
    c.draw_series(
        binds
            .iter()
            .map(|p| Circle::new((f64::from(p.binds), p.end_to_end_rate), 4, BLUE.filled())),
    )?;
    c.draw_series(LineSeries::new(
        binds.iter().map(|p| (f64::from(p.binds), p.accept_rate)),
        RED.stroke_width(2),
    ))?
    .label("accepted/s")
    .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
    c.configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    // 2. Window (log scale positions 0, 1, 2 for 1, 10, 100).
    let windows = group("window");
    let ymax = windows
        .iter()
        .map(|p| p.end_to_end_rate)
        .fold(1.0, f64::max)
        * 1.15;
    let mut c = ChartBuilder::on(&panels[1])
        .caption("throughput vs window (1 bind, short)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3f64..2.3f64, 0f64..ymax)?;
    c.configure_mesh()
        .x_desc("window (log scale)")
        .y_desc("delivered/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_labels(3)
        .x_label_formatter(&|x| format!("{}", 10f64.powf(x.round())))
        .draw()?;
    let pos = |w: u32| f64::from(w).log10();
    c.draw_series(LineSeries::new(
        windows.iter().map(|p| (pos(p.window), p.end_to_end_rate)),
        BLUE.stroke_width(2),
    ))?;
    c.draw_series(
        windows
            .iter()
            .map(|p| Circle::new((pos(p.window), p.end_to_end_rate), 4, BLUE.filled())),
    )?;

    // 3. Message size: messages/s and parts/s.
    let sizes = group("size");
    let ymax = sizes
        .iter()
        .map(|p| p.parts_per_second.max(p.end_to_end_rate))
        .filter(|x| x.is_finite())
        .fold(1.0, f64::max)
        * 1.15;
    let names = ["short", "long", "emoji"];
    let mut c = ChartBuilder::on(&panels[2])
        .caption(
            "throughput vs size (1 bind, window 100)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5f64..2.5f64, 0f64..ymax)?;
    c.configure_mesh()
        .x_desc("short GSM | 3-part GSM | 2-part UCS-2")
        .y_desc("per second")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .x_labels(3)
        .x_label_formatter(&|x| {
            names
                .get(x.round().max(0.0) as usize)
                .copied()
                .unwrap_or("")
                .to_owned()
        })
        .draw()?;
    let at = |s: &str| names.iter().position(|n| *n == s).unwrap_or(0) as f64;
    c.draw_series(sizes.iter().map(|p| {
        Rectangle::new(
            [
                (at(&p.size) - 0.35, 0.0),
                (at(&p.size) - 0.02, p.end_to_end_rate),
            ],
            BLUE.filled(),
        )
    }))?
    .label("messages delivered/s")
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], BLUE.filled()));
    c.draw_series(sizes.iter().map(|p| {
        Rectangle::new(
            [
                (at(&p.size) + 0.02, 0.0),
                (at(&p.size) + 0.35, p.parts_per_second),
            ],
            GREEN.filled(),
        )
    }))?
    .label("parts/s")
    .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], GREEN.filled()));
    c.configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    // 4 and 5. Drain progress and RSS.
    if let Some(samples) = drain {
        let during: Vec<&DrainSample> = samples.iter().filter(|s| s.t >= 0.0).collect();
        let tmax = during.iter().map(|s| s.t).fold(1.0, f64::max);
        let nmax = during
            .iter()
            .map(|s| s.submits.max(s.receipts_acked) as f64)
            .fold(1.0, f64::max)
            * 1.05;
        let mut c = ChartBuilder::on(&panels[3])
            .caption("backlog drain: progress", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..tmax, 0f64..nmax)?;
        c.configure_mesh()
            .x_desc("seconds since the SMSC accepts binds")
            .y_desc("messages")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        c.draw_series(LineSeries::new(
            during.iter().map(|s| (s.t, s.submits as f64)),
            RED.stroke_width(2),
        ))?
        .label("submitted")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
        c.draw_series(LineSeries::new(
            during.iter().map(|s| (s.t, s.receipts_acked as f64)),
            BLUE.stroke_width(2),
        ))?
        .label("receipts recorded")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;

        let all: Vec<&DrainSample> = samples.iter().filter(|s| s.rss_mib.is_finite()).collect();
        let t0 = all.iter().map(|s| s.t).fold(0.0, f64::min);
        let rmax = all
            .iter()
            .map(|s| s.rss_mib)
            .fold(10.0, f64::max)
            .max(150.0)
            * 1.1;
        let mut c = ChartBuilder::on(&panels[4])
            .caption("backlog drain: daemon RSS", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(t0..tmax, 0f64..rmax)?;
        c.configure_mesh()
            .x_desc("seconds (negative: queueing with the SMSC down)")
            .y_desc("RSS MiB")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        c.draw_series(LineSeries::new(
            all.iter().map(|s| (s.t, s.rss_mib)),
            BLUE.stroke_width(2),
        ))?
        .label("VmRSS")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], BLUE));
        c.draw_series(LineSeries::new(
            [(t0, 150.0), (tmax, 150.0)],
            RED.stroke_width(1),
        ))?
        .label("150 MiB goal")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], RED));
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }

    // 6. Pacing: submits per 100 ms with the R/10 + burst limit.
    if !pacing.is_empty() {
        let tmax = pacing
            .iter()
            .map(|p| p.counts.len() as f64 * 0.1)
            .fold(1.0, f64::max);
        let ymax = pacing
            .iter()
            .flat_map(|p| p.counts.iter().map(|&n| n as f64).chain([p.limit as f64]))
            .fold(1.0, f64::max)
            * 1.2;
        let mut c = ChartBuilder::on(&panels[5])
            .caption("pacing: submits per 100 ms at the SMSC", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax)?;
        c.configure_mesh()
            .x_desc("seconds")
            .y_desc("submits / 100 ms")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        let colours = [BLUE, GREEN, MAGENTA, CYAN];
        for (i, p) in pacing.iter().enumerate() {
            let col = colours[i % colours.len()];
            c.draw_series(LineSeries::new(
                p.counts
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| (k as f64 * 0.1, n as f64)),
                col.stroke_width(2),
            ))?
            .label(format!(
                "route tps {} (max {})",
                p.route_tps, p.max_per_100ms
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], col));
            c.draw_series(LineSeries::new(
                [(0.0, p.limit as f64), (tmax, p.limit as f64)],
                RED.stroke_width(1),
            ))?;
        }
        c.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
