//! Shared plumbing of the end-to-end measurement programs (`kannel-load`, `scaling`): starting
//! `smppd sim` and `smppd run` as child processes on loopback with free ports, talking to the
//! simulator's control port and the daemon's submit protocol (one JSON line each way), running
//! `smppd bench --json`, reading CPU time and RSS from /proc, and small statistics.
//!
//! Every child is stopped (SIGTERM, then SIGKILL after a grace period) when its handle drops, so
//! an error or a panic never leaves a simulator or a daemon behind. Only loopback addresses are
//! used. Each tool uses a part of this module, hence the `dead_code` allowance below.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// The `smppd` binary to drive: `$SMPPD_BIN`, else `$CARGO_TARGET_DIR/release/smppd`, else
/// `target/release/smppd`.
pub fn default_smppd() -> PathBuf {
    if let Ok(p) = std::env::var("SMPPD_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".to_owned());
    Path::new(&target).join("release").join("smppd")
}

/// A free TCP port on 127.0.0.1 (bound, then released: for programs that need a port number in
/// their configuration, such as Kannel; the short race is acceptable on a test machine).
pub fn free_port() -> Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding a free port")?;
    Ok(l.local_addr()?.port())
}

/// A child process stopped gracefully when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL. Returns whether it exited by itself.
    pub fn stop(&mut self, grace: Duration) -> bool {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return true;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let until = Instant::now() + grace;
        while Instant::now() < until {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(10));
    }
}

/// Spawns `cmd` with stdout piped and stderr to `log`, and waits (up to `timeout`) for a stdout
/// line starting with each of `wants`, in order; returns those lines. The rest of stdout is
/// copied to `log` by a thread.
pub fn spawn_reading(
    name: &str,
    cmd: &mut Command,
    log: &Path,
    wants: &[&str],
    timeout: Duration,
) -> Result<(Proc, Vec<String>)> {
    let err = std::fs::File::create(log).with_context(|| format!("{}", log.display()))?;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(err)
        .stdin(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {name} ({cmd:?})"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let proc = Proc {
        name: name.to_owned(),
        child,
    };
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let mut out_log = std::fs::OpenOptions::new()
        .append(true)
        .open(log)
        .with_context(|| format!("{}", log.display()))?;
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = writeln!(out_log, "{line}");
            let _ = tx.send(line);
        }
    });
    let mut found = Vec::new();
    let until = Instant::now() + timeout;
    for want in wants {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with(want) => {
                    found.push(line);
                    break;
                }
                Ok(_) => continue,
                Err(_) => bail!(
                    "{name} did not print {want:?} within {timeout:?} (see {})",
                    log.display()
                ),
            }
        }
    }
    Ok((proc, found))
}

/// Sends one line over a fresh TCP connection and reads one line back.
pub fn line_call(addr: &str, line: &str) -> Result<String> {
    let mut s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\n")?;
    let mut r = BufReader::new(s);
    let mut out = String::new();
    r.read_line(&mut out)
        .with_context(|| format!("reading the answer of {addr}"))?;
    Ok(out.trim_end().to_owned())
}

/// A running `smppd sim`.
pub struct Sim {
    pub proc: Proc,
    /// SMPP address (`127.0.0.1:port`).
    pub addr: String,
    /// Control port address.
    pub control: String,
}

impl Sim {
    /// Starts `smppd sim` on free ports with login `bench`/`bench`, receipts at once (unless
    /// `extra` holds `--receipt-delay`) and `extra` flags; `--stats` lines go to `log` every 10 s.
    pub fn start(smppd: &Path, log: &Path, extra: &[&str]) -> Result<Sim> {
        let mut cmd = Command::new(smppd);
        cmd.args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--control",
            "127.0.0.1:0",
            "--system-id",
            "bench",
            "--password",
            "bench",
            "--stats",
            "--stats-interval",
            "10s",
        ])
        .args(extra);
        if !extra.contains(&"--receipt-delay") {
            cmd.args(["--receipt-delay", "0ms"]);
        }
        let (proc, lines) = spawn_reading(
            "smppd sim",
            &mut cmd,
            log,
            &["listening on ", "control on "],
            Duration::from_secs(20),
        )?;
        let addr = lines[0].trim_start_matches("listening on ").to_owned();
        let control = lines[1].trim_start_matches("control on ").to_owned();
        Ok(Sim {
            proc,
            addr,
            control,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0)
    }

    /// One control command; an `error: …` answer is an error.
    pub fn command(&self, line: &str) -> Result<String> {
        let a = line_call(&self.control, line)?;
        if let Some(e) = a.strip_prefix("error: ") {
            bail!("sim control {line:?}: {e}");
        }
        Ok(a)
    }

    /// The counters (`stats`).
    pub fn stats(&self) -> Result<Value> {
        Ok(serde_json::from_str(&self.command("stats")?)?)
    }

    /// Waits until `bound_now` reaches `n`.
    pub fn wait_bound(&self, n: u64, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        loop {
            let s = self.stats()?;
            if s["bound_now"].as_u64().unwrap_or(0) >= n {
                return Ok(());
            }
            if Instant::now() > until {
                bail!(
                    "the simulator saw {} binds, wanted {n}: {s}",
                    s["bound_now"]
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until no session is bound (the previous gateway has gone).
    pub fn wait_unbound(&self, timeout: Duration) -> Result<()> {
        let until = Instant::now() + timeout;
        while self.stats()?["bound_now"].as_u64().unwrap_or(0) > 0 {
            if Instant::now() > until {
                bail!("a session is still bound to the simulator");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}

/// Settings of one `smppd run` for a benchmark: one SMSC (the simulator), one catch-all route.
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    pub binds: u32,
    pub window: u32,
    /// Route rate limit (parts per second) and its burst; `None`: unlimited.
    pub route_tps: Option<(u32, u32)>,
    /// Backoff ceiling of reconnects (short for the backlog drain).
    pub reconnect_max: &'static str,
}

impl Default for DaemonSpec {
    fn default() -> Self {
        Self {
            binds: 1,
            window: 100,
            route_tps: None,
            reconnect_max: "2s",
        }
    }
}

/// A running `smppd run`.
pub struct Daemon {
    pub proc: Proc,
    /// Submit-protocol address.
    pub submit: String,
    pub dir: PathBuf,
}

impl Daemon {
    /// The configuration text for `spec` against `sim_addr`, store in `dir`.
    pub fn config(spec: &DaemonSpec, sim_addr: &str, submit: &str, dir: &Path) -> String {
        let rate = match spec.route_tps {
            Some((tps, burst)) => format!("tps = {tps}\nburst = {burst}\n"),
            None => String::new(),
        };
        format!(
            r#"# Written by the benchmark tools (tools/src/common.rs).
[listen]
submit = "{submit}"

[store]
path = "{db}"
# Survives a process crash (the documented default); "full" would fsync every commit.
sync = "normal"

[log]
level = "warn"

[[smsc]]
name = "sim"
address = "{sim_addr}"
system_id = "bench"
password = "bench"
bind = "transceiver"
binds = {binds}
window = {window}
reconnect_min = "100ms"
reconnect_max = "{reconnect_max}"
response_timeout = "30s"

[[route]]
name = "all"
smsc = ["sim"]
{rate}"#,
            db = dir.join("smppd.db").display(),
            binds = spec.binds,
            window = spec.window,
            reconnect_max = spec.reconnect_max,
        )
    }

    /// Writes the configuration into `dir` and starts `smppd run`; returns once it accepts submits.
    pub fn start(smppd: &Path, spec: &DaemonSpec, sim_addr: &str, dir: &Path) -> Result<Daemon> {
        std::fs::create_dir_all(dir)?;
        let submit = format!("127.0.0.1:{}", free_port()?);
        let cfg = dir.join("smppd.toml");
        std::fs::write(&cfg, Self::config(spec, sim_addr, &submit, dir))?;
        let mut cmd = Command::new(smppd);
        cmd.arg("run").arg("--config").arg(&cfg);
        let (proc, _) = spawn_reading(
            "smppd run",
            &mut cmd,
            &dir.join("smppd.log"),
            &["smppd: accepting submits on"],
            Duration::from_secs(60),
        )?;
        Ok(Daemon {
            proc,
            submit,
            dir: dir.to_owned(),
        })
    }

    /// The daemon's `status` object.
    pub fn status(&self) -> Result<Value> {
        let a = line_call(&self.submit, r#"{"op":"status","ref":1}"#)?;
        Ok(serde_json::from_str(&a)?)
    }

    /// Parts waiting in all routes.
    pub fn queued(&self) -> Result<u64> {
        let s = self.status()?;
        Ok(s["routes"]
            .as_array()
            .map(|rs| rs.iter().filter_map(|r| r["queued"].as_u64()).sum())
            .unwrap_or(0))
    }
}

/// Options of one `smppd bench` run.
#[derive(Debug, Clone)]
pub struct BenchRun {
    pub count: usize,
    pub connections: usize,
    pub pipeline: usize,
    pub mix: String,
    pub settle: u64,
    pub rate: u64,
}

/// Runs `smppd bench --json` against `daemon` (with its pid and the simulator's control port)
/// and returns its report.
pub fn smppd_bench(smppd: &Path, daemon: &Daemon, sim: &Sim, run: &BenchRun) -> Result<Value> {
    let out = Command::new(smppd)
        .arg("bench")
        .args(["--addr", &daemon.submit])
        .args(["-n", &run.count.to_string()])
        .args(["-C", &run.connections.to_string()])
        .args(["-p", &run.pipeline.to_string()])
        .args(["--mix", &run.mix])
        .args(["--settle", &run.settle.to_string()])
        .args(["--rate", &run.rate.to_string()])
        .args(["--pid", &daemon.proc.pid().to_string()])
        .args(["--sim-control", &sim.control])
        .arg("--json")
        .stdin(Stdio::null())
        .output()
        .context("running smppd bench")?;
    if !out.status.success() {
        bail!(
            "smppd bench failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    serde_json::from_slice(&out.stdout).context("smppd bench --json output")
}

/// User + system CPU seconds of a process, from /proc/PID/stat.
pub fn proc_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    // USER_HZ is 100 on Linux.
    Some(ticks / 100.0)
}

/// (VmRSS, VmHWM) of a process in KiB, from /proc/PID/status.
pub fn proc_rss(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find(|l| l.starts_with(name))?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Nearest-rank percentile of sorted values (the same rule as `smppd bench`).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Median of the finite values (NaN when there is none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A fresh working directory under `base` (or the system's temporary directory).
pub fn work_dir(base: Option<&Path>, prefix: &str) -> Result<PathBuf> {
    let base = base.map_or_else(std::env::temp_dir, Path::to_owned);
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dir = base.join(format!("{prefix}-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    Ok(dir)
}

/// UTC timestamp for result files, `YYYY-MM-DDTHH:MM:SSZ`.
pub fn utc_now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A short description of the machine for result files: cores, CPU model, load average.
pub fn machine() -> Value {
    let mut model = String::new();
    if let Ok(mut f) = std::fs::File::open("/proc/cpuinfo") {
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        model = s
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default();
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    serde_json::json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": model,
        "loadavg_at_start": load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    })
}

/// Registers a sans-serif font for a plot's text (plotters draws text only with a font): `font`,
/// or DejaVu Sans from the system's fonts.
pub fn register_font(font: Option<&Path>) -> Result<()> {
    let candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
    ];
    let path = match font {
        Some(p) => p.to_path_buf(),
        None => candidates
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .context("no DejaVu Sans font found: apt-get install -y fonts-dejavu-core, or --font FILE.ttf")?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
    // plotters keeps fonts for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", plotters::style::FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{}: not a usable font", path.display()))
}
