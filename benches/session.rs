//! Throughput of one bind against the in-process simulator, with window 1, 10 and 100, and of the
//! simulator alone (a raw pipelined client with 1,000 submits in flight). Release build:
//! `cargo bench --bench session`. Prints submits per second; `SESSION_BENCH_N` sets the number of
//! messages per run (default 200,000; window 1 runs a tenth of that).

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use smppd::pdu::{
    Address, Body, Npi, OctetString, Pdu, PduCodec, RegisteredDelivery, SubmitSm, Ton,
};
use smppd::session::{Event, Job, JobBody, SessionConfig, SmscHandle};
use smppd::sim::{SimConfig, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::Decoder;

fn template() -> SubmitSm {
    SubmitSm {
        source_addr: Address::new(Ton::ALPHANUMERIC, Npi::UNKNOWN, "ACME").unwrap_or_default(),
        dest_addr: Address::new(Ton::INTERNATIONAL, Npi::ISDN, "46701234567").unwrap_or_default(),
        registered_delivery: RegisteredDelivery::RECEIPT,
        short_message: OctetString::new(Bytes::from_static(
            b"Your code is 123456. It expires in 10 minutes.",
        ))
        .unwrap_or_default(),
        ..SubmitSm::default()
    }
}

/// Messages per second through one bind; with `receipts`, a message counts once its submit_sm_resp
/// and its receipt (answered deliver_sm_resp) are both in.
async fn one_bind(window: usize, n: u64, receipts: bool) -> f64 {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.receipts.enabled = receipts;
    let sim = Simulator::start(sc).await.expect("simulator");
    let mut cfg = SessionConfig::new("bench", sim.addr().to_string());
    cfg.window = window;
    cfg.reconnect_min = Duration::from_millis(10);
    let (etx, mut erx) = mpsc::channel(4096);
    let handle = SmscHandle::start(cfg, 4096, etx).expect("session");
    // Wait for the bind.
    while !handle.can_transmit() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let jobs = handle.jobs();
    let sm = template();
    let feeder = tokio::spawn(async move {
        for key in 0..n {
            let job = Job {
                key,
                body: JobBody::SubmitSm(sm.clone()),
                validity: None,
            };
            if jobs.send(job).await.is_err() {
                return;
            }
        }
    });
    let start = Instant::now();
    let mut done = 0u64;
    let mut receipts_in = 0u64;
    while done < n || (receipts && receipts_in < n) {
        match erx.recv().await {
            Some(Event::Submitted { .. }) => done += 1,
            Some(Event::Inbound { reply, .. }) => {
                reply.ok();
                receipts_in += 1;
            }
            Some(Event::Failed { status, .. }) => panic!("failed: {status}"),
            Some(Event::Retry { reason, .. }) => panic!("retry: {reason}"),
            Some(_) => {}
            None => break,
        }
    }
    let rate = done as f64 / start.elapsed().as_secs_f64();
    let _ = feeder.await;
    let max_window = sim.stats().max_window;
    assert!(max_window <= window as u64, "window exceeded: {max_window}");
    handle.stop(Duration::from_secs(1)).await;
    while erx.recv().await.is_some() {}
    sim.shutdown().await;
    rate
}

/// The simulator alone: a raw client keeps `inflight` submits outstanding.
async fn simulator_alone(n: u64, inflight: u64) -> f64 {
    let mut sc = SimConfig::new("127.0.0.1:0");
    sc.receipts.enabled = false;
    let sim = Simulator::start(sc).await.expect("simulator");
    let mut sock = tokio::net::TcpStream::connect(sim.addr())
        .await
        .expect("connect");
    sock.set_nodelay(true).ok();
    let bind = Pdu::new(1, Body::BindTransceiver(Default::default()));
    sock.write_all(&bind.to_bytes().expect("bind"))
        .await
        .expect("write");
    let mut codec = PduCodec::default();
    let mut rbuf = BytesMut::with_capacity(1 << 16);
    // Wait for bind_resp.
    loop {
        if let Ok(Some(_)) = codec.decode(&mut rbuf) {
            break;
        }
        sock.read_buf(&mut rbuf).await.expect("read");
    }
    let sm = template();
    let start = Instant::now();
    let (mut sent, mut answered) = (0u64, 0u64);
    let mut wbuf = BytesMut::with_capacity(1 << 20);
    while answered < n {
        while sent < n && sent - answered < inflight {
            sent += 1;
            let seq = (sent % 0x7FFF_FFFF) as u32 + 1;
            Pdu::new(seq, Body::SubmitSm(sm.clone()))
                .encode(&mut wbuf)
                .expect("encode");
        }
        if !wbuf.is_empty() {
            sock.write_all(&wbuf).await.expect("write");
            wbuf.clear();
        }
        sock.read_buf(&mut rbuf).await.expect("read");
        while let Ok(Some(_)) = codec.decode(&mut rbuf) {
            answered += 1;
        }
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    sim.shutdown().await;
    rate
}

fn main() {
    let n: u64 = std::env::var("SESSION_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        println!("{:<32} {:>12} {:>14}", "run", "messages", "submits/s");
        let rate = simulator_alone(n, 1000).await;
        println!(
            "{:<32} {:>12} {:>14.0}",
            "simulator alone (1000 in flight)", n, rate
        );
        for window in [1usize, 10, 100] {
            let count = if window == 1 { n / 10 } else { n };
            let rate = one_bind(window, count, false).await;
            println!(
                "{:<32} {:>12} {:>14.0}",
                format!("one bind, window {window}"),
                count,
                rate
            );
        }
        let rate = one_bind(100, n, true).await;
        println!(
            "{:<32} {:>12} {:>14.0}",
            "window 100 + receipts (msg/s)", n, rate
        );
    });
}
