//! The daemon (`smppd run`): wires config, store, sessions, dispatch and the submit protocol,
//! and runs until told to stop. It only wires: each flow lives in its own module —
//! [`accept`] (route → encode → policy checks → durable accept, behind the API [`handler`]),
//! [`crate::dispatch`] (route tasks and the outcomes of what was sent), [`inbound`] (receipts
//! and MO, fed by the sessions' own inbound channel), [`housekeeping`] (gauges, expiry,
//! pruning, the metrics endpoint) and [`reload`].
//!
//! Owns: the start-up order (metrics, then the store and recovery, simulators, sessions,
//! dispatch, and only then the listener, so nothing is accepted that cannot be stored), one
//! task tracker for every task it spawns, and the graceful stop in named phases (see
//! [`Phase`]), each joining the tasks it ends. Must never reply `ok` before the store said
//! durable, never answer a deliver_sm with ESME_ROK before its receipt or MO is durable, and
//! never close the store before the result writes of what came back were made.

mod accept;
mod cluster;
mod handler;
mod housekeeping;
mod inbound;
mod mo_sets;
mod reload;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::server::{self, Listener, Settings};
use crate::config::{Config, ListenAddr};
use crate::dispatch::{Dispatch, SmscLink, start_sessions};
use crate::session::Channels;
use crate::sim::SimHandle;
use crate::store::{SqliteOptions, Store, StoreError};

pub use handler::DaemonHandler;
pub use reload::Reloader;

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

/// Capacity of the sessions' events channel (submit outcomes, bind states).
const EVENTS: usize = 8192;
/// Capacity of the sessions' inbound channel (receipts, MO).
const INBOUND: usize = 4096;

/// A running daemon.
pub struct Daemon {
    /// Where the submit protocol listens (the real port when 0 was configured).
    pub submit: ListenAddr,
    stop: CancellationToken,
    /// The stop sequence (see [`Phase`]), waiting for `stop`.
    done: JoinHandle<()>,
    reloader: Arc<Reloader>,
}

impl Daemon {
    /// Starts everything in order; returns once the listener is bound. `path` is the file a
    /// reload reads again.
    pub async fn start(config: Config, path: Option<PathBuf>) -> Result<Daemon, StartError> {
        // Metrics first, so that nothing recorded during start-up (binds coming up) is lost.
        let metrics = open_metrics(&config).await?;
        let (store, pool) = open_store(&config).await?;
        // Embedded simulators come up before the binds that use them.
        let simulators = start_simulators(&config).await?;
        let (events_tx, events_rx) = mpsc::channel(EVENTS);
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND);
        let channels = Channels {
            events: events_tx,
            inbound: inbound_tx,
        };
        // In a cluster no SMSC is bound before its lease is taken (see `cluster`).
        let links = config
            .smscs
            .iter()
            .filter(|_| pool.is_none())
            .map(|smsc| Ok(SmscLink::new(start_sessions(smsc, &channels)?, smsc.tps)))
            .collect::<Result<Vec<_>, StartError>>()?;
        let listener = Listener::bind(&config.listen.submit)
            .await
            .map_err(|source| listen_error(&config, source))?;
        let submit = listener
            .local_addr()
            .map_err(|source| listen_error(&config, source))?;
        let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
        let dispatch = Dispatch::new(store.clone(), config_rx.clone(), links);
        let tasks = TaskTracker::new();
        let membership = pool.map(|pools| {
            let cx = cluster::Context {
                store: &store,
                config_rx: &config_rx,
                dispatch: &dispatch,
                tasks: &tasks,
            };
            cluster::Membership::start(pools, &submit, channels.clone(), cx)
        });
        dispatch.spawn_routes();
        let reloader = Arc::new(Reloader::new(
            path,
            dispatch.clone(),
            store.clone(),
            config_tx,
            channels,
        ));
        let mut wired = Wired::new(store, dispatch, simulators, reloader.clone(), tasks);
        wired.membership = membership;
        wired.spawn_flows(events_rx, inbound_rx, config_rx.clone());
        wired.spawn_api(listener, &config, config_rx.clone());
        tracing::info!(submit = %submit, smscs = config.smscs.len(), routes = config.routes.len(), "smppd running");
        wired.spawn_housekeeping(metrics, config_rx);
        let stop = CancellationToken::new();
        let stop_wait = stop.clone();
        let done = tokio::spawn(async move {
            stop_wait.cancelled().await;
            wired.stop().await;
        });
        Ok(Daemon {
            submit,
            stop,
            done,
            reloader,
        })
    }

    /// Re-reads the configuration file and applies it (see [`Reloader::reload`]).
    pub async fn reload(&self) -> Result<String, String> {
        self.reloader.reload().await
    }

    /// Stops gracefully (every [`Phase`] in order) and waits until it has.
    pub async fn stop(self) {
        self.stop.cancel();
        self.wait().await;
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
        if let Err(e) = self.done.await {
            tracing::error!(error = %e, "the stop sequence failed");
        }
    }
}

/// The phases of a graceful stop, in order. Each ends some tasks and joins them before the
/// next begins, so that nothing a later phase closes is still in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Submits are refused (`shutting_down`), the listener takes no new connections, and
    /// reloads are refused (no session may start any more).
    StopAccepting,
    /// Route tasks claim no more; what they hold unsent goes back to the queue.
    StopRoutes,
    /// Sessions (live and retired by a reload) drain their windows, unbind and hand back what
    /// was not answered.
    DrainBinds,
    /// The event consumer records the last outcomes and ends; their result writes are waited
    /// for (up to [`DRAIN`]); the inbound task answers what it holds and ends.
    FlushResults,
    /// In a cluster: every SMSC lease goes back (the binds are down and their results
    /// written), so a survivor binds at its next round instead of after the lease TTL.
    ReleaseLeases,
    /// Open API connections close; the listener task ends.
    CloseApi,
    /// Gauges, expiry, pruning and the metrics endpoint end; every task still tracked
    /// (subscribers, whose connections closed at [`Phase::CloseApi`]) is joined.
    StopHousekeeping,
    /// The store's writer finishes and closes; embedded simulators stop.
    CloseStore,
}

/// Everything [`Daemon::start`] wired, and the tasks it spawned, for the stop sequence.
struct Wired {
    store: Store,
    dispatch: Arc<Dispatch>,
    simulators: Vec<SimHandle>,
    reloader: Arc<Reloader>,
    /// Read by the API handler: set at [`Phase::StopAccepting`].
    shutting_down: Arc<AtomicBool>,
    /// Every task the daemon spawns; closed and waited for at the end of the stop.
    tasks: TaskTracker,
    /// [`Phase::StopAccepting`]: the listener takes no new connections.
    stop_accepting: CancellationToken,
    /// [`Phase::CloseApi`]: open connections close.
    close_api: CancellationToken,
    /// [`Phase::StopHousekeeping`].
    stop_housekeeping: CancellationToken,
    consumer: Option<JoinHandle<()>>,
    inbound: Option<JoinHandle<()>>,
    server: Option<JoinHandle<()>>,
    /// The lease task, in a cluster.
    membership: Option<cluster::Membership>,
}

impl Wired {
    fn new(
        store: Store,
        dispatch: Arc<Dispatch>,
        simulators: Vec<SimHandle>,
        reloader: Arc<Reloader>,
        tasks: TaskTracker,
    ) -> Wired {
        Wired {
            store,
            dispatch,
            simulators,
            reloader,
            shutting_down: Arc::new(AtomicBool::new(false)),
            tasks,
            stop_accepting: CancellationToken::new(),
            close_api: CancellationToken::new(),
            stop_housekeeping: CancellationToken::new(),
            consumer: None,
            inbound: None,
            server: None,
            membership: None,
        }
    }

    /// The two readers of the sessions' channels: dispatch's outcomes and the inbound task.
    fn spawn_flows(
        &mut self,
        events: mpsc::Receiver<crate::session::Event>,
        inbound: mpsc::Receiver<crate::session::Event>,
        config: watch::Receiver<Arc<Config>>,
    ) {
        let consumer = self.dispatch.clone().consume_events(events);
        self.consumer = Some(self.tasks.spawn(consumer));
        let inbound = inbound::run(self.store.clone(), self.dispatch.clone(), config, inbound);
        self.inbound = Some(self.tasks.spawn(inbound));
    }

    /// The submit protocol's listener, with the daemon's handler.
    fn spawn_api(
        &mut self,
        listener: Listener,
        config: &Config,
        config_rx: watch::Receiver<Arc<Config>>,
    ) {
        let handler = Arc::new(DaemonHandler::new(
            self.store.clone(),
            self.dispatch.clone(),
            config_rx,
            self.shutting_down.clone(),
            self.reloader.clone(),
            self.tasks.clone(),
        ));
        let settings = Settings {
            listen: config.listen.submit.clone(),
            token: config.listen.token.clone(),
            max_connections: config.listen.max_connections,
            write_timeout: config.listen.write_timeout,
        };
        self.server = Some(self.tasks.spawn(server::serve(
            listener,
            settings,
            handler,
            self.stop_accepting.clone(),
            self.close_api.clone(),
        )));
    }

    fn spawn_housekeeping(
        &self,
        metrics: Option<(TcpListener, PrometheusHandle)>,
        config: watch::Receiver<Arc<Config>>,
    ) {
        let stop = &self.stop_housekeeping;
        if let Some(m) = metrics {
            housekeeping::spawn_metrics(&self.tasks, m, &self.store, &self.dispatch, stop);
        }
        let leader = self.membership.as_ref().map(|m| m.owned.clone());
        housekeeping::spawn(
            &self.tasks,
            &self.store,
            &self.dispatch,
            config,
            leader,
            stop,
        );
    }

    /// Runs every [`Phase`] in order.
    async fn stop(mut self) {
        for phase in [
            Phase::StopAccepting,
            Phase::StopRoutes,
            Phase::DrainBinds,
            Phase::FlushResults,
            Phase::ReleaseLeases,
            Phase::CloseApi,
            Phase::StopHousekeeping,
            Phase::CloseStore,
        ] {
            tracing::debug!(?phase, "stopping");
            self.run(phase).await;
        }
        tracing::info!("stopped");
    }

    async fn run(&mut self, phase: Phase) {
        match phase {
            Phase::StopAccepting => {
                tracing::info!("stopping: no new submits; draining in-flight windows");
                self.shutting_down.store(true, Ordering::Release);
                self.stop_accepting.cancel();
                // No reload may start sessions from here on (one in progress finishes first).
                self.reloader.close().await;
                if let Some(m) = &self.membership {
                    m.leave();
                }
            }
            Phase::StopRoutes => self.dispatch.stop_routes().await,
            Phase::DrainBinds => self.drain_binds().await,
            Phase::FlushResults => self.flush_results().await,
            Phase::ReleaseLeases => {
                if let Some(m) = self.membership.take() {
                    m.release().await;
                }
            }
            Phase::CloseApi => {
                self.close_api.cancel();
                join(self.server.take(), "submit listener").await;
            }
            Phase::StopHousekeeping => {
                self.stop_housekeeping.cancel();
                // Every task left (housekeeping, metrics endpoint) ends with this token.
                self.tasks.close();
                self.tasks.wait().await;
            }
            Phase::CloseStore => {
                self.store.backend().close();
                for sim in std::mem::take(&mut self.simulators) {
                    sim.shutdown().await;
                }
            }
        }
    }

    /// [`Phase::DrainBinds`]: every SMSC's sessions stop at once, each draining for up to
    /// [`DRAIN`].
    async fn drain_binds(&self) {
        let stops: Vec<_> = self
            .dispatch
            .smscs()
            .iter()
            .filter_map(|link| link.take_handle())
            .map(|h| h.stop(DRAIN))
            .collect();
        futures_util::future::join_all(stops).await;
        self.dispatch.wait_retired().await;
    }

    /// [`Phase::FlushResults`].
    async fn flush_results(&mut self) {
        // Every session sender is gone now (the reloader's went at StopAccepting): the consumer
        // records the last outcomes and ends, and so does the inbound task.
        join(self.consumer.take(), "event consumer").await;
        // The results of what came back (parts handed back unsent, late answers) are written
        // before the store closes, so none is left `sending` for recovery to mark as a possible
        // duplicate. A store that keeps refusing them does not hold the stop for ever.
        if !self.dispatch.flush_results(DRAIN).await {
            tracing::warn!(
                "stopping with result writes the store has not taken; recovery re-queues those parts at the next start"
            );
        }
        join(self.inbound.take(), "inbound").await;
    }
}

/// Joins a task, saying loudly if it panicked.
async fn join(task: Option<JoinHandle<()>>, what: &str) {
    if let Some(t) = task
        && let Err(e) = t.await
    {
        tracing::error!(task = what, error = %e, "task failed");
    }
}

fn listen_error(config: &Config, source: std::io::Error) -> StartError {
    StartError::Listen {
        addr: config.listen.submit.to_string(),
        source,
    }
}

/// The metrics listener and recorder, when configured.
async fn open_metrics(
    config: &Config,
) -> Result<Option<(TcpListener, PrometheusHandle)>, StartError> {
    let Some(addr) = config.listen.metrics else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            addr: addr.to_string(),
            source,
        })?;
    let handle = crate::metrics::install().map_err(|e| StartError::Metrics(e.to_string()))?;
    Ok(Some((listener, handle)))
}

/// Opens the store: PostgreSQL when `[store] url` is set (with the lease task's own small
/// pool, so renewals never wait behind store traffic), else SQLite (creating its directory,
/// running recovery).
async fn open_store(config: &Config) -> Result<(Store, Option<cluster::Pools>), StartError> {
    let Some(pg) = &config.store.postgres else {
        return open_sqlite(config).map(|s| (s, None));
    };
    let err = |source| StartError::Store {
        path: PathBuf::from(&pg.url),
        source,
    };
    let mut options = crate::store::PostgresOptions::new(pg.clone(), &config.cluster.instance);
    options.settings = store_settings(config);
    let (store, recovery) = Store::open_postgres(options).await.map_err(err)?;
    let mut small = pg.clone();
    small.pool_size = 2;
    let name = &config.cluster.instance;
    let pools = cluster::Pools {
        leases: crate::store::postgres::pool(&small, &format!("smppd-leases/{name}"))
            .map_err(err)?,
        budget: crate::store::postgres::pool(&small, &format!("smppd-budget/{name}"))
            .map_err(err)?,
    };
    tracing::info!(url = %pg.url, instance = %config.cluster.instance, queued = recovery.queued, migrations = recovery.migrations_applied, "store open (PostgreSQL, cluster)");
    Ok((store, Some(pools)))
}

/// The store settings a configuration gives (at open and at each reload).
pub(crate) fn store_settings(config: &Config) -> crate::store::Settings {
    crate::store::Settings {
        sync: config.store.sync,
        retain_text: config.store.retain_text,
        max_size_bytes: config.store.max_size,
        routes: std::sync::Arc::new(
            config
                .routes
                .iter()
                .map(|r| (r.name.clone(), r.smsc.clone()))
                .collect(),
        ),
    }
}

fn open_sqlite(config: &Config) -> Result<Store, StartError> {
    let mut options = SqliteOptions::new(&config.store.path);
    options.settings = store_settings(config);
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
    Ok(store)
}

/// Starts the embedded simulators (`[[simulator]]`).
async fn start_simulators(config: &Config) -> Result<Vec<SimHandle>, StartError> {
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
    Ok(simulators)
}
