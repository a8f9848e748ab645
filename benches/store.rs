//! Store benchmarks.
//!
//! 1. `lifecycle`: message lifecycles per second, every step durable: accept, claim, acknowledge
//!    (submit_sm_resp), receipt, in pipelined batches as the daemon issues them. Goal ≥ 50k/s.
//! 2. Steady load (printed before criterion runs): accepts at a steady 20,000/s while the same
//!    process claims, acknowledges and records receipts for them, for 10 s; prints the durable
//!    accept latency p50/p99/p99.9/max. Goal p99 ≤ 5 ms.
//!
//! Run: `cargo bench --bench store` (`sync = "normal"`; set `SMPPD_BENCH_SYNC=full` for full).
//! `SMPPD_BENCH_STEADY_SECS` changes the steady run's length (0 skips it and the burst);
//! `SMPPD_BENCH_ONLY=burst` runs only the burst (for `perf stat` or callgrind), `SMPPD_BENCH_BURST`
//! its size (default 200,000); `SMPPD_BENCH_RATE` changes the steady rate; `SMPPD_BENCH_SLOW=1`
//! prints when the accepts slower than 4 ms happened (clusters at a steady period point at a
//! periodic stall in the writer: that is how the WAL-reset fsync was found).

use criterion::{Criterion, Throughput};
use smppd::receipt::{AcceptedIs, IdRule, ReceiptTlvs, final_outcome, parse_receipt};
use smppd::store::{
    Ack, IncomingReceipt, NewMessage, NewPart, RerouteRule, Settings, SqliteOptions, Store,
    SyncMode,
};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn open(dir: &std::path::Path) -> Store {
    let mut o = SqliteOptions::new(dir.join("bench.db"));
    let sync = match std::env::var("SMPPD_BENCH_SYNC").as_deref() {
        Ok("full") => SyncMode::Full,
        _ => SyncMode::Normal,
    };
    o.settings = Settings {
        sync,
        ..Settings::default()
    };
    Store::open_sqlite(o).expect("open store").0
}

fn message(i: u64) -> NewMessage {
    NewMessage {
        key: Some(format!("bench-{i}")),
        to: format!("+4670{:07}", i % 10_000_000),
        from: "ACME".into(),
        route: "default".into(),
        encoding: "gsm7".into(),
        split: "udh8".into(),
        options: "{}".into(),
        dlr: true,
        text: "Your code is 123456".into(),
        parts: vec![NewPart {
            data_coding: 0,
            esm_class: 0,
            segment: b"Your code is 123456".to_vec(),
            sar_ref: None,
        }],
        now_ms: now_ms(),
        ..NewMessage::default()
    }
}

fn receipt_for(smsc_id: &str) -> IncomingReceipt {
    let text = format!(
        "id:{smsc_id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010001 stat:DELIVRD err:000 text:Your code is 123456"
    );
    let r = parse_receipt(text.as_bytes(), &ReceiptTlvs::default()).expect("parse");
    IncomingReceipt {
        smsc: "op-a".into(),
        rule: IdRule::Same,
        outcome: final_outcome(r.stat, AcceptedIs::Final),
        receipt: r,
        raw: text.into_bytes(),
        tlv_state: None,
        tlv_network_error: None,
        now_ms: now_ms(),
        reroute: RerouteRule::none(),
    }
}

/// Claims up to `limit` parts and takes each through acknowledgement and receipt (durable).
/// Returns how many.
async fn drive(store: &Store, limit: usize) -> usize {
    let parts = store
        .claim("default", limit, now_ms())
        .await
        .expect("claim");
    let acks: Vec<_> = parts
        .iter()
        .map(|p| {
            store.acked(Ack {
                part: p.part,
                smsc: "op-a".into(),
                smsc_id: format!("{:X}", p.part.message.0),
                rule: IdRule::Same,
                now_ms: now_ms(),
                reroute: RerouteRule::none(),
            })
        })
        .collect();
    for a in acks {
        a.await.expect("ack");
    }
    let receipts: Vec<_> = parts
        .iter()
        .map(|p| store.record_receipt(receipt_for(&format!("{:X}", p.part.message.0))))
        .collect();
    for r in receipts {
        r.await.expect("receipt");
    }
    parts.len()
}

fn lifecycles(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut next = 0u64;
    const BATCH: u64 = 4096;
    let mut g = c.benchmark_group("store");
    g.throughput(Throughput::Elements(BATCH));
    g.sample_size(20);
    g.measurement_time(Duration::from_secs(15));
    g.bench_function("lifecycle", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                rt.block_on(async {
                    let accepts: Vec<_> = (0..BATCH)
                        .map(|_| {
                            next += 1;
                            store.accept(message(next))
                        })
                        .collect();
                    for a in accepts {
                        a.await.expect("accept");
                    }
                    let mut done = 0;
                    while done < BATCH as usize {
                        done += drive(&store, 2048).await;
                    }
                });
            }
            start.elapsed()
        })
    });
    g.finish();
}

/// CPU seconds (user + system) used so far by this process's thread named `name`.
fn thread_cpu_secs(name: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0.0;
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        // Fields after the parenthesised command: state is field 3; utime 14, stime 15.
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        let f: Vec<&str> = after.split_whitespace().collect();
        let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
        total += (ut + st) / ticks;
    }
    total
}

/// Process CPU seconds (user + system).
fn process_cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ut: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    let st: f64 = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    (ut + st) / 100.0
}

/// As many lifecycles as fast as possible (pipelined in batches of 4096): prints the rate and
/// the CPU time per lifecycle, of the writer thread and of the whole process. The writer is one
/// thread, so 1 / (writer CPU per lifecycle) is the ceiling on an idle machine.
fn burst(n: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let w0 = thread_cpu_secs("store-writer");
    // Thread names are cut to 15 bytes by the kernel.
    let c0 = thread_cpu_secs("store-checkpoin");
    let p0 = process_cpu_secs();
    let started = Instant::now();
    rt.block_on(async {
        let mut next = 0u64;
        while next < n {
            let accepts: Vec<_> = (0..4096)
                .map(|_| {
                    next += 1;
                    store.accept(message(next))
                })
                .collect();
            for a in accepts {
                a.await.expect("accept");
            }
            while drive(&store, 2048).await > 0 {}
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let w = thread_cpu_secs("store-writer") - w0;
    let ckpt = thread_cpu_secs("store-checkpoin") - c0;
    let p = process_cpu_secs() - p0;
    println!(
        "burst: {n} lifecycles in {secs:.2} s = {:.0}/s; CPU per lifecycle: writer {:.1} µs, checkpoints {:.1} µs, process {:.1} µs (writer ceiling {:.0}/s)",
        n as f64 / secs,
        w / n as f64 * 1e6,
        ckpt / n as f64 * 1e6,
        p / n as f64 * 1e6,
        n as f64 / w.max(1e-9)
    );
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Accepts at a steady `rate`/s for `secs` while the lifecycle runs behind them; prints the
/// durable-accept latency distribution.
fn steady_load(rate: u64, secs: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let latencies = Arc::new(Mutex::new(Vec::with_capacity((rate * secs) as usize)));
    let started = Instant::now();
    let (accepted, completed) = rt.block_on(async {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let worker = {
            let store = store.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let mut total = 0;
                loop {
                    // Window-sized pages, as a session with a window of 64 would take them; a
                    // bigger page queues a burst of writes ahead of the accepts.
                    let n = drive(&store, 64).await;
                    total += n;
                    if n == 0 {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            return total;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                }
            })
        };
        // Issue in 1 ms slots against the wall clock, so a slow slot is caught up, not skipped.
        let mut issued = 0u64;
        let mut tasks = Vec::with_capacity((rate * secs) as usize);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        while started.elapsed() < Duration::from_secs(secs) {
            tick.tick().await;
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while issued < due {
                issued += 1;
                let t0 = Instant::now();
                let p = store.accept(message(issued));
                let lat = Arc::clone(&latencies);
                tasks.push(tokio::spawn(async move {
                    p.await.expect("accept");
                    let d = t0.elapsed();
                    lat.lock().expect("latencies").push((d, t0));
                }));
            }
        }
        for t in tasks {
            t.await.expect("task");
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        (issued, worker.await.expect("worker"))
    });
    let elapsed = started.elapsed();
    let raw = latencies.lock().expect("latencies").clone();
    if std::env::var("SMPPD_BENCH_SLOW").is_ok() {
        let mut slow: Vec<(f64, f64)> = raw
            .iter()
            .filter(|(d, _)| *d > Duration::from_millis(4))
            .map(|(d, t)| {
                (
                    t.duration_since(started).as_secs_f64() * 1e3,
                    d.as_secs_f64() * 1e3,
                )
            })
            .collect();
        slow.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut last = -100.0;
        for (t, d) in slow {
            if t - last > 5.0 {
                eprintln!("slow cluster at {t:.1} ms: {d:.2} ms");
            }
            last = t;
        }
    }
    let mut l: Vec<Duration> = raw.iter().map(|(d, _)| *d).collect();
    l.sort();
    println!(
        "steady load: {accepted} accepts at {rate}/s target ({:.0}/s achieved) over {:.1} s, {completed} full lifecycles",
        accepted as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "durable accept latency: p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        percentile(&l, 0.50).as_secs_f64() * 1e3,
        percentile(&l, 0.99).as_secs_f64() * 1e3,
        percentile(&l, 0.999).as_secs_f64() * 1e3,
        l.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let secs: u64 = std::env::var("SMPPD_BENCH_STEADY_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    // `cargo test --benches` runs benches in test mode: keep that quick.
    let test_mode = std::env::args().any(|a| a == "--test");
    if secs > 0 && !test_mode {
        let n = std::env::var("SMPPD_BENCH_BURST")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(200_000);
        burst(n);
        if std::env::var("SMPPD_BENCH_ONLY").as_deref() == Ok("burst") {
            return;
        }
        let rate = std::env::var("SMPPD_BENCH_RATE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(20_000);
        steady_load(rate, secs);
    }
    // No plots: criterion's plotters backend panics when the machine has no fonts.
    let mut c = Criterion::default().without_plots().configure_from_args();
    lifecycles(&mut c);
    c.final_summary();
}
