//! `smppd run`: the daemon in the foreground, stopped gracefully by SIGTERM or SIGINT.

use std::path::PathBuf;

use anyhow::Context;
use smppd::config::{Config, LogFormat};
use tokio::signal::unix::{SignalKind, signal};
use tracing_subscriber::EnvFilter;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "conf/smppd.toml")]
    pub config: PathBuf,
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let config = Config::load(&args.config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let filter = EnvFilter::try_new(&config.log.level)
        .with_context(|| format!("log.level {:?}", config.log.level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(super::log::colour_on_stderr())
        .with_writer(std::io::stderr);
    match config.log.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
    raise_open_file_limit(config.listen.max_connections);
    let runtime = runtime_builder()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
        let running = smppd::daemon::Daemon::start(config, Some(args.config.clone())).await?;
        // A line for scripts and people: where to submit.
        println!("smppd: accepting submits on {}", running.submit);
        let stop = running.stop_token();
        let reloader = running.reloader();
        let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => {
                        // A bad file keeps the running configuration; the error names key and line.
                        if let Err(e) = reloader.reload().await {
                            tracing::error!(error = %e, "reload refused; the running configuration stays");
                        }
                    }
                }
            }
            stop.cancel();
        });
        running.wait().await;
        anyhow::Ok(())
    })
}

/// File descriptors the daemon needs besides its clients: the store and its WAL, SMSC binds,
/// simulators, the metrics endpoint, and some slack for connections being closed.
const FD_RESERVE: u64 = 256;

/// Raises the soft RLIMIT_NOFILE towards the hard limit so that `max_connections` clients fit
/// (a common default soft limit is 1024, below the default `max_connections` plus the daemon's
/// own files). When the hard limit is too low, says so: accepts beyond it fail with EMFILE and
/// are retried, so clients wait instead of being served.
fn raise_open_file_limit(max_connections: usize) {
    let want = max_connections as u64 + FD_RESERVE;
    match rlimit::increase_nofile_limit(want) {
        Ok(got) if got < want => tracing::warn!(
            limit = got,
            wanted = want,
            "the open-file limit (RLIMIT_NOFILE) is below listen.max_connections + {FD_RESERVE}: \
             raise the hard limit (LimitNOFILE= in the systemd unit) or lower max_connections"
        ),
        Ok(got) => tracing::debug!(limit = got, "open-file limit"),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-file limit"),
    }
}

/// The daemon's runtime: one worker fewer than the machine has cores (at least one), since the
/// store's writer thread keeps a core busy at full load. On two cores that is one worker, which
/// measured the same at saturation as two and a tenth less CPU and half the context switches
/// per message at 500 messages/s: with two workers, each wake-up at light load (a line from a
/// client, a store answer, a PDU) also woke the other, idle, worker. `TOKIO_WORKER_THREADS`
/// in the environment overrides the count (tokio reads it).
fn runtime_builder() -> tokio::runtime::Builder {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        b.worker_threads(cores.saturating_sub(1).max(1));
    }
    b
}
