//! `floor`: what this machine charges for the steps no gateway can skip, at a paced rate.
//!
//! A message through any SMPP gateway of this shape crosses processes at least three times
//! (client → gateway → client for the accept, gateway → SMSC → gateway for submit_sm, SMSC →
//! gateway → SMSC for the receipt) and is made durable at least once. At a paced rate each of
//! these is a wake-up of its own: nothing arrives with it to share the cost. This program
//! measures, in one process, each step's CPU on the side that plays the gateway, paced exactly
//! like `bench/vs-kannel.sh`'s paced runs:
//!
//! - `tcp-blocking`: a loopback TCP line exchange, the gateway side a blocking thread (one
//!   `read` and one `write` per exchange: the cheapest a socket can be served);
//! - `tcp-tokio`: the same exchange served by a tokio current-thread runtime (what an async
//!   gateway adds: `epoll_wait` and the runtime's bookkeeping);
//! - `thread-handoff`: a request handed to another thread and answered (a store writer thread),
//!   CPU of both threads;
//! - `sqlite-commit`: one small row inserted and committed in WAL mode with `synchronous =
//!   NORMAL` (smppd's default durability), no other work; the thread is woken by a timer for
//!   each, which `timer-wakeup` measures alone.
//!
//! CPU is read from `/proc/thread-self/schedstat` (nanoseconds on the CPU, user and kernel) of
//! the threads playing the gateway, over the whole paced loop (a running thread's figure is
//! brought up to date only when it is switched out, so only whole loops are measured), so the
//! client side does not count. The figures
//! are floors for one step; a gateway's cost per message at that rate is at least the sum of
//! the steps it must take.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use serde_json::json;

#[derive(Parser, Debug)]
#[command(about = "CPU floor per step of a message at a paced rate, on this machine")]
struct Args {
    /// Exchanges per second (each step is paced at this rate).
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Exchanges per step.
    #[arg(long, default_value_t = 5000)]
    count: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Nanoseconds the calling thread has been on a CPU (user + kernel).
fn thread_cpu_ns() -> Result<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat")
        .context("reading /proc/thread-self/schedstat")?;
    s.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .context("parsing /proc/thread-self/schedstat")
}

/// Runs `step` `count` times at `rate` per second (absolute deadlines, so a late step does not
/// shift the rest).
fn paced(rate: u64, count: u64, mut step: impl FnMut(u64) -> Result<()>) -> Result<()> {
    let every = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    for i in 0..count {
        let due = start + every * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        step(i)?;
    }
    Ok(())
}

/// The client side of a line exchange: sends a 100-byte line, waits for the answer line.
fn client(addr: std::net::SocketAddr, rate: u64, count: u64) -> Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let line = format!("{}\n", "x".repeat(99));
    let mut answer = String::new();
    paced(rate, count, |_| {
        writer.write_all(line.as_bytes())?;
        answer.clear();
        reader.read_line(&mut answer)?;
        Ok(())
    })
}

/// Gateway side, blocking: read a line, write a 60-byte answer; returns its CPU ns.
fn serve_blocking(listener: TcpListener, count: u64) -> Result<u64> {
    let (stream, _) = listener.accept()?;
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let answer = format!("{}\n", "y".repeat(59));
    let mut line = String::new();
    let before = thread_cpu_ns()?;
    for _ in 0..count {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        writer.write_all(answer.as_bytes())?;
    }
    Ok(thread_cpu_ns()? - before)
}

/// Gateway side on a tokio current-thread runtime; returns its CPU ns.
fn serve_tokio(listener: TcpListener, count: u64) -> Result<u64> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        listener.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut reader = tokio::io::BufReader::new(r);
        let answer = format!("{}\n", "y".repeat(59));
        let mut line = String::new();
        let before = thread_cpu_ns()?;
        for _ in 0..count {
            line.clear();
            if reader.read_line(&mut line).await? == 0 {
                break;
            }
            w.write_all(answer.as_bytes()).await?;
        }
        Ok(thread_cpu_ns()? - before)
    })
}

/// One TCP step: a server thread running `serve`, the paced client on this thread.
fn tcp_step(rate: u64, count: u64, serve: fn(TcpListener, u64) -> Result<u64>) -> Result<u64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let server = std::thread::spawn(move || serve(listener, count));
    client(addr, rate, count)?;
    server
        .join()
        .map_err(|_| anyhow::anyhow!("server thread panicked"))?
}

/// A request handed to a worker thread and answered back over channels; CPU of both sides.
fn handoff_step(rate: u64, count: u64) -> Result<u64> {
    let (to_worker, jobs) = mpsc::channel::<mpsc::Sender<u64>>();
    let worker = std::thread::spawn(move || -> Result<u64> {
        let before = thread_cpu_ns()?;
        for (i, reply) in jobs.iter().enumerate() {
            let _ = reply.send(i as u64);
        }
        Ok(thread_cpu_ns()? - before)
    });
    let before = thread_cpu_ns()?;
    paced(rate, count, |_| {
        let (tx, rx) = mpsc::channel();
        to_worker.send(tx)?;
        rx.recv()?;
        Ok(())
    })?;
    let caller_ns = thread_cpu_ns()? - before;
    drop(to_worker);
    let worker_ns = worker
        .join()
        .map_err(|_| anyhow::anyhow!("worker thread panicked"))??;
    Ok(worker_ns + caller_ns)
}

/// One small row per commit in a WAL file, `synchronous = NORMAL`; CPU of this thread.
fn sqlite_step(rate: u64, count: u64) -> Result<u64> {
    let dir = std::env::temp_dir().join(format!("smppd-floor-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("floor.db");
    let conn = rusqlite::Connection::open(&path)?;
    conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch("CREATE TABLE m (id INTEGER PRIMARY KEY, body BLOB NOT NULL)")?;
    let body = vec![7u8; 200];
    let before = thread_cpu_ns()?;
    let result = paced(rate, count, |i| {
        conn.execute_batch("BEGIN")?;
        conn.prepare_cached("INSERT INTO m (id, body) VALUES (?1, ?2)")?
            .execute(rusqlite::params![i as i64, body])?;
        conn.execute_batch("COMMIT")?;
        Ok(())
    });
    let cpu = thread_cpu_ns()? - before;
    drop(conn);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|()| cpu)
}

/// The paced loop alone: a thread woken `rate` times a second with nothing to do (what each
/// step above pays to be woken at all; the sqlite step includes it).
fn wakeup_step(rate: u64, count: u64) -> Result<u64> {
    let before = thread_cpu_ns()?;
    paced(rate, count, |_| Ok(()))?;
    Ok(thread_cpu_ns()? - before)
}

/// One measured step: returns the CPU nanoseconds it cost over `count` repetitions.
type Step = Box<dyn Fn() -> Result<u64>>;

fn main() -> Result<()> {
    let args = Args::parse();
    let (rate, count) = (args.rate, args.count);
    let steps: [(&str, Step); 5] = [
        ("timer-wakeup", Box::new(move || wakeup_step(rate, count))),
        (
            "tcp-blocking",
            Box::new(move || tcp_step(rate, count, serve_blocking)),
        ),
        (
            "tcp-tokio",
            Box::new(move || tcp_step(rate, count, serve_tokio)),
        ),
        (
            "thread-handoff",
            Box::new(move || handoff_step(rate, count)),
        ),
        ("sqlite-commit", Box::new(move || sqlite_step(rate, count))),
    ];
    let mut out = serde_json::Map::new();
    for (name, step) in steps {
        let ns = step().with_context(|| format!("step {name}"))?;
        out.insert(name.into(), json!(ns as f64 / 1000.0 / count as f64));
    }
    let doc = json!({"rate": rate, "count": count, "cpu_us_per_step": out});
    if args.json {
        println!("{doc}");
    } else {
        println!("CPU µs per step at {rate}/s ({count} steps each), gateway side only:");
        for (name, v) in &out {
            println!("  {name:<15} {:>7.1}", v.as_f64().unwrap_or(f64::NAN));
        }
    }
    Ok(())
}
