//! The shared test harness: everything a test binary needs to run `smppd` end to end.
//!
//! - [`daemon`]: `smppd run` as a child process ([`DaemonBuilder`] writes the config and starts
//!   it; [`Daemon`] stops, kills, restarts it and talks to it);
//! - [`client`]: the submit protocol (NDJSON over TCP) client;
//! - [`metrics`]: `/metrics` and `/healthz` over HTTP, and samples read by name and labels;
//! - [`smscs`]: two simulated SMSCs that outlive the daemon, and the config that points at them;
//! - [`campaign`]: the reliability campaigns' load generator and their lost/duplicated verdict;
//! - here: [`free_port`], [`smppd`] (one CLI run), [`until`] (a poll with a deadline).
//!
//! Each test binary uses a subset of it (`mod support;`), hence the `dead_code` allowance (and
//! `unused_imports` on the re-exports). The harness never asserts on the daemon's behaviour
//! beyond "it started" and "it stopped": that is the tests' job.
#![allow(dead_code)]

pub mod campaign;
pub mod client;
pub mod daemon;
pub mod metrics;
pub mod pg;
pub mod smscs;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

// The names most tests use, at `support::`; each binary uses some of them.
#[allow(unused_imports)]
pub use campaign::*;
#[allow(unused_imports)]
pub use client::Client;
#[allow(unused_imports)]
pub use daemon::{Daemon, DaemonBuilder};
#[allow(unused_imports)]
pub use smscs::{Smsc, Smscs};

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs the `smppd` binary with `args` to completion.
pub fn smppd(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_smppd"))
        .args(args)
        .output()
        .expect("run smppd")
}

/// Waits until `ok()` holds; panics naming `what` after `timeout`.
pub async fn until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `smppd reports <args> --json --db <db>`: one JSON value per line; panics unless it succeeds.
pub fn reports_json(db: &std::path::Path, args: &[&str]) -> Vec<serde_json::Value> {
    let db = db.display().to_string();
    let mut all = vec!["reports"];
    all.extend_from_slice(args);
    all.extend(["--json", "--db", &db]);
    let out = smppd(&all);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}
