//! The daemon (`smppd run`): wires config, store, sessions, dispatch and the submit protocol,
//! and runs until told to stop.
//!
//! Owns: start-up order (store and recovery first, then sessions, dispatch, and only then the
//! listener, so nothing is accepted that cannot be stored), the submit-protocol [`Handler`]
//! (route → encode → store → reply), inbound receipts and MO (parse, record durably, only then
//! answer the SMSC), periodic expiry and pruning, and the graceful stop (stop accepting, drain
//! windows, unbind, flush the store). Must never reply `ok` before the store said durable, and
//! never answer a deliver_sm with ESME_ROK before its receipt or MO is durable.

mod handler;
mod inbound;
mod mo_sets;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::api::server::{self, Listener, Settings};
use crate::config::{Config, ListenAddr};
use crate::dispatch::{Dispatch, SmscLink, now_ms};
use crate::session::{Channels, SmscHandle};
use crate::store::{Retention, SqliteOptions, Store, StoreError};

pub use handler::DaemonHandler;

/// Why the daemon could not start. The cause is each variant's `source` (not repeated in the
/// message: `smppd` prints the chain, "store var/smppd.db: storage unavailable …").
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("store {path}")]
    Store { path: PathBuf, source: StoreError },
    #[error("store directory {path}")]
    StoreDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Session(#[from] crate::session::StartError),
    #[error("simulator {name}")]
    Simulator {
        name: String,
        source: crate::sim::SimError,
    },
    #[error("metrics exporter: {0}")]
    Metrics(String),
    #[error("listen {addr}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// How long a graceful stop waits for in-flight responses before unbinding.
pub const DRAIN: Duration = Duration::from_secs(10);

/// A running daemon.
pub struct Running {
    /// Where the submit protocol listens (the real port when 0 was configured).
    pub submit: ListenAddr,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<()>,
    reloader: Arc<Reloader>,
}

impl Running {
    /// Asks the daemon to stop gracefully and waits until it has.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.done.await;
    }

    /// A token that stops the daemon when cancelled (signal handlers hold it).
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// The reloader (SIGHUP handlers hold it).
    pub fn reloader(&self) -> Arc<Reloader> {
        self.reloader.clone()
    }

    /// Waits until the daemon has stopped.
    pub async fn wait(self) {
        let _ = self.done.await;
    }
}

/// Starts everything; returns once the listener is bound.
pub async fn start(config: Config, path: Option<PathBuf>) -> Result<Running, StartError> {
    // Metrics first, so that nothing recorded during start-up (binds coming up) is lost.
    let metrics_listener = match config.listen.metrics {
        None => None,
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen {
                    addr: addr.to_string(),
                    source,
                })?;
            let handle =
                crate::metrics::install().map_err(|e| StartError::Metrics(e.to_string()))?;
            Some((listener, handle))
        }
    };
    let mut options = SqliteOptions::new(&config.store.path);
    options.settings.sync = config.store.sync;
    options.settings.retain_text = config.store.retain_text;
    options.settings.max_size_bytes = config.store.max_size;
    if let Some(dir) = config.store.path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| StartError::StoreDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let (store, recovery) = Store::open_sqlite(options).map_err(|source| StartError::Store {
        path: config.store.path.clone(),
        source,
    })?;
    tracing::info!(
        path = %config.store.path.display(),
        queued = recovery.queued,
        requeued_in_flight = recovery.requeued_in_flight,
        migrations = recovery.migrations_applied,
        "store open"
    );

    // Embedded simulators come up before the binds that use them.
    let mut simulators = Vec::with_capacity(config.simulators.len());
    for sim in &config.simulators {
        let mut sc = crate::sim::SimConfig::new(sim.listen.to_string());
        if let (Some(id), Some(pw)) = (&sim.system_id, &sim.password) {
            sc = sc.account(id, pw.expose());
        }
        sc.receipts.delay = sim.receipt_delay;
        if let Some(mix) = crate::sim::control::parse_mix(&sim.receipt_mix) {
            sc.receipts.mix = mix;
        }
        if sim.decimal_ids {
            sc.id_format = crate::sim::IdFormat::Decimal;
        }
        let handle =
            crate::sim::Simulator::start(sc)
                .await
                .map_err(|source| StartError::Simulator {
                    name: sim.name.clone(),
                    source,
                })?;
        tracing::info!(simulator = %sim.name, listen = %handle.addr(), "embedded SMSC simulator started");
        simulators.push(handle);
    }

    let (events_tx, events_rx) = mpsc::channel(8192);
    let (inbound_tx, inbound_rx) = mpsc::channel(4096);
    let channels = Channels {
        events: events_tx,
        inbound: inbound_tx,
    };
    let mut links = Vec::with_capacity(config.smscs.len());
    for smsc in &config.smscs {
        let capacity = (smsc.window as usize * usize::from(smsc.binds)).max(16);
        let handle = SmscHandle::start_with(smsc.session_config(), capacity, channels.clone())?;
        links.push(SmscLink::new(handle, smsc.tps));
    }

    let listener = Listener::bind(&config.listen.submit)
        .await
        .map_err(|source| StartError::Listen {
            addr: config.listen.submit.to_string(),
            source,
        })?;
    let submit = listener.local_addr().map_err(|source| StartError::Listen {
        addr: config.listen.submit.to_string(),
        source,
    })?;

    let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
    let dispatch = Dispatch::new(store.clone(), config_rx.clone(), links);
    let routes_stop = CancellationToken::new();
    dispatch.spawn_routes(routes_stop.clone());

    let consumer = tokio::spawn(dispatch.clone().consume_events(events_rx));
    let inbound_task = tokio::spawn(inbound::run(
        store.clone(),
        dispatch.clone(),
        config_rx.clone(),
        inbound_rx,
    ));

    let reloader = Arc::new(Reloader {
        path,
        dispatch: dispatch.clone(),
        store: store.clone(),
        channels: std::sync::Mutex::new(Some(channels)),
        config_tx,
        lock: tokio::sync::Mutex::new(()),
    });
    let shutting_down = Arc::new(AtomicBool::new(false));
    let handler = Arc::new(DaemonHandler::new(
        store.clone(),
        dispatch.clone(),
        config_rx.clone(),
        shutting_down.clone(),
        reloader.clone(),
    ));
    let stop_accepting = CancellationToken::new();
    let close = CancellationToken::new();
    let server_task = tokio::spawn(server::serve(
        listener,
        Settings {
            listen: config.listen.submit.clone(),
            token: config.listen.token.clone(),
            max_connections: config.listen.max_connections,
            write_timeout: config.listen.write_timeout,
        },
        handler,
        stop_accepting.clone(),
        close.clone(),
    ));
    tracing::info!(submit = %submit, smscs = config.smscs.len(), routes = config.routes.len(), "smppd running");

    let housekeeping_stop = CancellationToken::new();
    if let Some((listener, handle)) = metrics_listener {
        // Histogram samples wait in the recorder until an upkeep folds them in: without it
        // they pile up between scrapes (or forever, with no scraper) at several per message.
        let upkeep = handle.clone();
        let upkeep_stop = housekeeping_stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(METRICS_UPKEEP);
            loop {
                tokio::select! {
                    _ = upkeep_stop.cancelled() => return,
                    _ = tick.tick() => upkeep.run_upkeep(),
                }
            }
        });
        let health_store = store.clone();
        let health_dispatch = dispatch.clone();
        tokio::spawn(crate::metrics::http::serve(
            listener,
            move || handle.render(),
            move || {
                let store = health_store.clone();
                let dispatch = health_dispatch.clone();
                async move {
                    let stats = store
                        .backend()
                        .stats()
                        .await
                        .map_err(|e| format!("store: {e}"))?;
                    let (mut up, mut all) = (0, 0);
                    for l in dispatch.smscs() {
                        for b in l.status() {
                            all += 1;
                            up += usize::from(matches!(b.state, crate::session::BindState::Bound));
                        }
                    }
                    Ok(format!(
                        "ok: {up}/{all} binds up, {} parts queued",
                        stats.queued_parts
                    ))
                }
            },
            housekeeping_stop.clone(),
        ));
    }
    tokio::spawn(gauges(
        store.clone(),
        dispatch.clone(),
        housekeeping_stop.clone(),
    ));
    let housekeeping = tokio::spawn(housekeeping(
        store.clone(),
        dispatch.clone(),
        config_rx,
        housekeeping_stop.clone(),
    ));

    let stop = CancellationToken::new();
    let stop_wait = stop.clone();
    let reloader_for_stop = reloader.clone();
    let done = tokio::spawn(async move {
        stop_wait.cancelled().await;
        tracing::info!("stopping: no new submits; draining in-flight windows");
        shutting_down.store(true, Ordering::Release);
        stop_accepting.cancel();
        // Routes stop claiming; what they hold unsent goes back to the queue.
        routes_stop.cancel();
        dispatch.join_routes().await;
        // Sessions drain their windows, unbind, and hand back what was not answered.
        let mut stops = Vec::new();
        for link in dispatch.smscs() {
            if let Some(h) = link.take_handle() {
                stops.push(tokio::spawn(h.stop(DRAIN)));
            }
        }
        for s in stops {
            let _ = s.await;
        }
        // Every event sender is gone now (the reloader's last): the consumer records the last
        // results and ends.
        reloader_for_stop.close();
        let _ = consumer.await;
        // The results of what came back (parts handed back unsent, late answers) are written
        // before the store closes, so none is left `sending` for recovery to mark as a possible
        // duplicate. A store that keeps refusing them does not hold the stop for ever.
        if !dispatch.flush_results(DRAIN).await {
            tracing::warn!(
                "stopping with result writes the store has not taken; recovery re-queues those parts at the next start"
            );
        }
        let _ = inbound_task.await;
        close.cancel();
        let _ = server_task.await;
        housekeeping_stop.cancel();
        let _ = housekeeping.await;
        store.backend().close();
        for sim in simulators {
            sim.shutdown().await;
        }
        tracing::info!("stopped");
    });
    Ok(Running {
        submit,
        stop,
        done,
        reloader,
    })
}

/// Re-reads the configuration file and applies it (SIGHUP, `smppd reload`).
pub struct Reloader {
    path: Option<PathBuf>,
    dispatch: Arc<Dispatch>,
    store: Store,
    channels: std::sync::Mutex<Option<Channels>>,
    config_tx: watch::Sender<Arc<Config>>,
    /// One reload at a time.
    lock: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// Validates the file fully first; a bad file changes nothing and the error (file, line,
    /// key) is returned. Returns a summary of what changed.
    pub async fn reload(&self) -> Result<String, String> {
        let _one = self.lock.lock().await;
        let Some(path) = &self.path else {
            return Err("this daemon was not started from a file".to_owned());
        };
        let new = Config::load(path).map_err(|e| e.to_string())?;
        let channels = self
            .channels
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .ok_or_else(|| "smppd is stopping".to_owned())?;
        let settings = crate::store::Settings {
            sync: new.store.sync,
            retain_text: new.store.retain_text,
            max_size_bytes: new.store.max_size,
        };
        let summary = self
            .dispatch
            .apply(new, &channels, &self.config_tx)
            .map_err(|e| with_causes(&e))?;
        if let Err(e) = self.store.backend().reload(settings).await {
            tracing::warn!(error = %e, "store settings not reloaded");
        }
        tracing::info!(path = %path.display(), changes = %summary, "configuration reloaded");
        Ok(summary)
    }

    fn close(&self) {
        if let Ok(mut e) = self.channels.lock() {
            e.take();
        }
    }
}

/// How often the metrics recorder folds recorded histogram samples into its histograms.
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// An error and its causes, `outer: inner: …` (what `{:#}` prints for anyhow), for the reload
/// answer that goes to the client as one string.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Refreshes the gauges (queue depth per route, in-flight per bind, dispatch's side state) once
/// a second.
async fn gauges(store: Store, dispatch: Arc<Dispatch>, stop: CancellationToken) {
    use crate::metrics as m;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Ok(depth) = store.backend().queue_depth().await {
            let now = now_ms();
            for q in depth {
                metrics::gauge!(m::QUEUE_OLDEST_SECONDS, m::label::ROUTE => q.route.clone())
                    .set((now - q.oldest_ms).max(0) as f64 / 1000.0);
                metrics::gauge!(m::QUEUE_DEPTH, m::label::ROUTE => q.route).set(q.parts as f64);
            }
        }
        dispatch.reclaim_stranded();
        for (map, entries) in dispatch.side_state().by_name() {
            metrics::gauge!(m::DISPATCH_SIDE_STATE, m::label::MAP => map).set(entries as f64);
        }
        for link in dispatch.smscs() {
            for b in link.status() {
                metrics::gauge!(m::BIND_IN_FLIGHT, m::label::SMSC => link.name.to_string(), m::label::BIND => b.bind.to_string())
                    .set(b.in_flight as f64);
            }
        }
    }
}

/// Parts per kind one expiry call settles at most: one call is one short write among the
/// others (a few ms), so the writer never stalls on it.
const EXPIRE_BATCH: usize = 500;

/// Expires everything due now (validity passed, receipt wait over): calls the store in batches
/// of [`EXPIRE_BATCH`] until it says nothing more is due, so the sweep keeps up with any
/// accept rate instead of settling a fixed number per second. Each message settled this way
/// counts in `smppd_messages_final_total` like one settled by a receipt.
async fn sweep(store: &Store, dispatch: &Dispatch, wait_ms: i64, stop: &CancellationToken) {
    let (mut expired, mut no_receipt) = (0, 0);
    loop {
        match store
            .backend()
            .expire(now_ms(), wait_ms, EXPIRE_BATCH)
            .await
        {
            Ok(e) => {
                expired += e.expired;
                no_receipt += e.no_receipt;
                // Dispatch forgets what it kept for the messages that became final.
                for id in e.finished {
                    dispatch.finish(id);
                }
                if !e.more || stop.is_cancelled() {
                    break;
                }
                // Other writes queue between two batches; let their tasks run too.
                tokio::task::yield_now().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "expiry failed");
                break;
            }
        }
    }
    use crate::metrics as m;
    for (state, n) in [("expired", expired), ("no_receipt", no_receipt)] {
        if n > 0 {
            metrics::counter!(m::MESSAGES_FINAL, m::label::STATE => state).increment(n);
        }
    }
    if expired + no_receipt > 0 {
        tracing::info!(expired, no_receipt, "messages expired");
    }
}

/// Expires what waited too long (every second, until caught up; dispatch forgets what it kept
/// for the messages that became final) and prunes old rows (every minute), in small batches so
/// the writer never stalls.
async fn housekeeping(
    store: Store,
    dispatch: Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        n += 1;
        let cfg = config.borrow().clone();
        let wait_ms = cfg.store.receipt_wait.as_millis() as i64;
        sweep(&store, &dispatch, wait_ms, &stop).await;
        if n.is_multiple_of(60) {
            let retention = Retention {
                messages_ms: Some(cfg.store.keep_messages.as_millis() as i64),
                log_ms: Some(cfg.store.keep_reports.as_millis() as i64),
            };
            loop {
                match store.backend().prune(retention, now_ms(), 1000).await {
                    Ok(n) if n >= 1000 => tokio::task::yield_now().await,
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "pruning failed");
                        break;
                    }
                }
            }
        }
    }
}
