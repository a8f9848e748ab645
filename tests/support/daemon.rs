//! `smppd run` as a child process: [`DaemonBuilder`] writes its config (store in a temporary
//! directory, submit on port 0, optional metrics on a free port, the SMSC and route sections a
//! test gives) and starts it; [`Daemon`] reads the "accepting submits on" line, stops it
//! (SIGTERM with a deadline, SIGKILL and a panic past it), kills it (SIGKILL, as a crash), starts
//! it again on the same store, and SIGKILLs whatever still runs when it is dropped.
//!
//! It never judges the daemon's behaviour beyond "it started" and "it stopped": every assertion
//! on what the daemon did belongs to the test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::client::Client;
use super::{free_port, metrics};

/// How long a graceful stop may take before the harness kills the process and fails the test.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// Where the daemon's stderr goes.
#[derive(Clone, Copy, PartialEq)]
enum Stderr {
    /// Appended to [`Daemon::log`] (every start of the process), for `log_tail` and `panics`.
    File,
    /// The test's own stderr (shown by the test runner when the test fails).
    Inherit,
}

/// The config of a daemon to start. The sections the harness writes:
///
/// ```toml
/// [listen]
/// submit = "127.0.0.1:0"             # or `submit(addr)`
/// metrics = "127.0.0.1:<free port>"   # with `metrics()`
/// <listen>
/// [store]
/// path = "<dir>/smppd.db"
/// <store>
/// [log]
/// level = "<level>"
/// <log>
/// <body>                               # [[smsc]], [[route]], …
/// ```
#[derive(Clone)]
pub struct DaemonBuilder {
    body: String,
    submit: String,
    listen: String,
    store: String,
    log: String,
    level: String,
    metrics: bool,
    store_dir: Option<PathBuf>,
    store_file: String,
    stderr: Stderr,
    /// `SMPPD_CLOCK_START` for the process, if set ([`DaemonBuilder::clock_start`]).
    clock_start: Option<String>,
}

impl DaemonBuilder {
    /// A daemon whose config ends with `body` (its `[[smsc]]` and `[[route]]` sections).
    pub fn new(body: impl Into<String>) -> DaemonBuilder {
        DaemonBuilder {
            body: body.into(),
            submit: "127.0.0.1:0".to_owned(),
            listen: String::new(),
            store: String::new(),
            log: String::new(),
            level: "warn".to_owned(),
            metrics: false,
            store_dir: None,
            store_file: "smppd.db".to_owned(),
            stderr: Stderr::File,
            clock_start: None,
        }
    }

    /// `[listen] submit` (default `127.0.0.1:0`: a free port, read from the daemon's first line).
    pub fn submit(mut self, addr: &str) -> Self {
        self.submit = addr.to_owned();
        self
    }

    /// Extra lines of `[listen]`.
    pub fn listen(mut self, extra: &str) -> Self {
        self.listen = extra.to_owned();
        self
    }

    /// Extra lines of `[store]`.
    pub fn store(mut self, extra: &str) -> Self {
        self.store = extra.to_owned();
        self
    }

    /// Extra lines of `[log]`.
    pub fn log(mut self, extra: &str) -> Self {
        self.log = extra.to_owned();
        self
    }

    /// `[log] level` (default `warn`).
    pub fn level(mut self, level: &str) -> Self {
        self.level = level.to_owned();
        self
    }

    /// Serve `/metrics` on a free loopback port ([`Daemon::metrics_port`]).
    pub fn metrics(mut self) -> Self {
        self.metrics = true;
        self
    }

    /// Keep the store in `dir` (a tmpfs, say) instead of the temporary directory.
    pub fn store_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.store_dir = dir;
        self
    }

    /// The store's file name, relative to its directory (default `smppd.db`).
    pub fn store_file(mut self, name: &str) -> Self {
        self.store_file = name.to_owned();
        self
    }

    /// Let the daemon's stderr through to the test's instead of the log file.
    pub fn inherit_stderr(mut self) -> Self {
        self.stderr = Stderr::Inherit;
        self
    }

    /// Starts the daemon's clock at this instant (RFC 3339; `SMPPD_CLOCK_START`, see
    /// `smppd::clock`), running at real speed from there, at every start of the process.
    pub fn clock_start(mut self, at: &str) -> Self {
        self.clock_start = Some(at.to_owned());
        self
    }

    /// Writes the config; the daemon is not started ([`Daemon::spawn`] starts it).
    pub fn build(self) -> Daemon {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = self
            .store_dir
            .clone()
            .unwrap_or_else(|| tmp.path().to_path_buf());
        let d = Daemon {
            child: None,
            submit: String::new(),
            db: dir.join(&self.store_file),
            config: tmp.path().join("smppd.toml"),
            log: tmp.path().join("smppd.log"),
            dir,
            _tmp: tmp,
            starts: 0,
            peak_rss_kib: 0,
            metrics_port: if self.metrics { free_port() } else { 0 },
            builder: self,
        };
        d.write_config();
        d
    }

    /// Writes the config and starts the daemon; returns once it accepts submits.
    pub async fn start(self) -> Daemon {
        let mut d = self.build();
        d.spawn().await;
        d
    }

    /// As [`DaemonBuilder::start`], for tests without a runtime.
    pub fn start_blocking(self) -> Daemon {
        let mut d = self.build();
        d.spawn_blocking();
        d
    }

    fn text(&self, db: &Path, metrics_port: u16) -> String {
        let metrics = if self.metrics {
            format!("metrics = \"127.0.0.1:{metrics_port}\"\n")
        } else {
            String::new()
        };
        format!(
            "[listen]\nsubmit = \"{submit}\"\n{metrics}{listen}\n\
             [store]\npath = \"{db}\"\n{store}\n\
             [log]\nlevel = \"{level}\"\n{log}\n{body}",
            submit = self.submit,
            listen = self.listen,
            db = db.display(),
            store = self.store,
            level = self.level,
            log = self.log,
            body = self.body,
        )
    }
}

/// `smppd run` as a child process, restartable on the same store and config.
pub struct Daemon {
    child: Option<Child>,
    /// The submit address of the running process (a new port at every start).
    pub submit: String,
    /// Where the store lives.
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
    pub config: PathBuf,
    pub db: PathBuf,
    /// Where stderr of every run is appended (unless it is inherited).
    pub log: PathBuf,
    /// Processes started.
    pub starts: u32,
    /// The largest VmHWM seen (KiB).
    pub peak_rss_kib: u64,
    /// The `/metrics` port (0 without [`DaemonBuilder::metrics`]).
    pub metrics_port: u16,
    builder: DaemonBuilder,
}

impl Daemon {
    /// Rewrites the config file from the builder (after [`Daemon::rebuild`]).
    fn write_config(&self) {
        let text = self.builder.text(&self.db, self.metrics_port);
        std::fs::write(&self.config, text).expect("write config");
    }

    /// Changes the config for the next start (or a reload): `change` edits the builder the
    /// daemon was made from; the store, log and ports stay.
    pub fn rebuild(&mut self, change: impl FnOnce(DaemonBuilder) -> DaemonBuilder) {
        self.builder = change(self.builder.clone());
        self.write_config();
    }

    /// The config file's text.
    pub fn config_text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read config")
    }

    /// Starts a process on the config and store; returns once it accepts submits.
    pub async fn spawn(&mut self) {
        let mut child = self.spawn_child();
        let stdout = child.stdout.take().expect("stdout");
        let line = tokio::task::spawn_blocking(move || first_line(stdout))
            .await
            .expect("read the listening line");
        self.started(child, &line);
    }

    /// As [`Daemon::spawn`], for tests without a runtime.
    pub fn spawn_blocking(&mut self) {
        let mut child = self.spawn_child();
        let line = first_line(child.stdout.take().expect("stdout"));
        self.started(child, &line);
    }

    fn spawn_child(&self) -> Child {
        assert!(self.child.is_none(), "already running");
        let stderr = match self.builder.stderr {
            Stderr::Inherit => Stdio::inherit(),
            Stderr::File => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&self.log)
                    .expect("daemon log"),
            ),
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_smppd"));
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .stdout(Stdio::piped())
            .stderr(stderr);
        if let Some(at) = &self.builder.clock_start {
            cmd.env(smppd::clock::START_VAR, at);
        }
        cmd.spawn().expect("spawn smppd run")
    }

    /// Takes the address from "… accepting submits on ADDR", or fails the test with the log.
    fn started(&mut self, mut child: Child, line: &str) {
        if !line.contains("accepting submits") {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "smppd run did not start ({line:?}); log:\n{}",
                self.log_tail(40)
            );
        }
        self.submit = line.trim().rsplit(' ').next().unwrap_or("").to_owned();
        self.child = Some(child);
        self.starts += 1;
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs; panics with the log when it exited on its own (a crash).
    pub fn assert_alive(&mut self) {
        self.assert_alive_during("the test");
    }

    /// As [`Daemon::assert_alive`], naming what the test was doing.
    pub fn assert_alive_during(&mut self, what: &str) {
        if let Some(c) = &mut self.child
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!(
                "smppd exited on its own ({status}) during {what}; log:\n{}",
                self.log_tail(60)
            );
        }
    }

    /// `VmHWM` (peak resident set) and `VmRSS` of the running process, KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.pid().expect("smppd runs");
        memory_kib(pid).expect("/proc/PID/status")
    }

    fn sample_rss(&mut self) {
        if let Some((hwm, _)) = self.pid().and_then(memory_kib) {
            self.peak_rss_kib = self.peak_rss_kib.max(hwm);
        }
    }

    /// SIGKILL, as a crash or the OOM killer would.
    pub fn kill(&mut self) {
        self.assert_alive();
        self.sample_rss();
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.submit.clear();
    }

    /// Sends SIGTERM without waiting (the test watches the stop itself, then calls
    /// [`Daemon::wait_stopped`]).
    pub fn sigterm(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }

    /// Waits for the process to exit (SIGKILL and a panic past `deadline`); its exit status.
    pub fn wait_stopped(&mut self, deadline: Duration) -> ExitStatus {
        let mut c = self.child.take().expect("smppd runs");
        let until = Instant::now() + deadline;
        let status = loop {
            if let Ok(Some(s)) = c.try_wait() {
                break s;
            }
            if Instant::now() > until {
                let _ = c.kill();
                let _ = c.wait();
                panic!("smppd did not stop within {deadline:?} of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        self.submit.clear();
        status
    }

    /// SIGTERM and wait for the graceful stop; the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        self.assert_alive();
        self.sample_rss();
        self.sigterm();
        self.wait_stopped(STOP_DEADLINE)
    }

    /// SIGTERM and wait for the graceful stop; panics unless it exits 0.
    pub fn terminate(&mut self) {
        if self.child.is_none() {
            return;
        }
        let status = self.stop();
        assert_eq!(status.code(), Some(0), "log:\n{}", self.log_tail(40));
    }

    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Lines of the daemon's log that say it panicked.
    pub fn panics(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("panicked"))
            .map(str::to_owned)
            .collect()
    }

    /// A submit-protocol connection to the running process.
    pub async fn client(&self) -> Client {
        Client::connect(&self.submit).await
    }

    /// One request on a fresh connection.
    pub async fn call(&self, req: Value) -> Value {
        tokio::time::timeout(Duration::from_secs(5), self.client())
            .await
            .expect("connect in time")
            .request(&req)
            .await
    }

    /// Waits until every bind of every SMSC is bound.
    pub async fn wait_bound(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.call(json!({"op":"status"})).await;
            let up = v["smscs"].as_array().is_some_and(|list| {
                !list.is_empty() && list.iter().all(|s| all_bound(&s["binds"]))
            });
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "binds not up: {v}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the binds of `smsc` are up (status op), whatever the other SMSCs do.
    pub async fn wait_smsc_bound(&self, smsc: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self.call(json!({"op":"status"})).await;
            let up = v["smscs"].as_array().is_some_and(|l| {
                l.iter()
                    .any(|s| s["name"] == smsc && all_bound(&s["binds"]))
            });
            if up {
                return;
            }
            assert!(Instant::now() < deadline, "{smsc} not bound: {v}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Requests in flight at the SMSCs now (sum over binds, from the status op).
    pub async fn in_flight(&self) -> u64 {
        let v = self.call(json!({"op":"status"})).await;
        v["smscs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .flat_map(|s| s["binds"].as_array().cloned().unwrap_or_default())
                    .map(|b| b["in_flight"].as_u64().unwrap_or(0))
                    .sum()
            })
            .unwrap_or(0)
    }

    /// The `/metrics` text.
    pub async fn scrape(&self) -> String {
        assert!(
            self.metrics_port > 0,
            "the daemon was built without metrics"
        );
        metrics::scrape(self.metrics_port).await
    }

    /// A counter from `/metrics` (summed over label sets matching every `labels` fragment).
    pub async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        metrics::sum(&self.scrape().await, name, labels)
    }
}

/// Whether a `binds` list of the status op is non-empty and all `Bound`.
pub fn all_bound(binds: &Value) -> bool {
    binds
        .as_array()
        .is_some_and(|b| !b.is_empty() && b.iter().all(|b| b["state"] == "Bound"))
}

/// `VmHWM` and `VmRSS` of a process, KiB (`None` when it is gone).
fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some((field("VmHWM:"), field("VmRSS:")))
}

/// The first line the daemon prints (empty when it exits first).
fn first_line(stdout: std::process::ChildStdout) -> String {
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    line
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
