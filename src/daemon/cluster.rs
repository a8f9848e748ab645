//! The daemon's side of a cluster (`[store] url`): starts the lease task, applies what it
//! publishes to dispatch (sessions of gained SMSCs start, lost ones drain and stop), tells
//! housekeeping whether this instance leads, and hands the leases back at a stop.
//!
//! Owns the order of a graceful leave: the lease task stops taking leases when the daemon
//! stops accepting, keeps renewing what it holds while the binds drain, and gives everything
//! back only after the binds are down and their results written. Must never give a lease back
//! while one of its binds may still be up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::{Cluster, Followed, Identity, Links, Ownership, Timing};
use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::session::Channels;
use crate::store::Store;

/// The cluster's own connections, apart from the store's so that a busy store never delays a
/// lease renewal: the lease task's, and the route budgets'.
pub(super) struct Pools {
    pub(super) leases: deadpool_postgres::Pool,
    pub(super) budget: deadpool_postgres::Pool,
}

/// What the lease task is wired to.
pub(super) struct Context<'a> {
    pub(super) store: &'a Store,
    pub(super) config_rx: &'a watch::Receiver<Arc<Config>>,
    pub(super) dispatch: &'a Arc<Dispatch>,
    pub(super) tasks: &'a TaskTracker,
}

/// The running lease task and its applier.
pub(super) struct Membership {
    /// Stops taking leases (renewals go on).
    leaving: CancellationToken,
    /// Ends the lease task.
    stop: CancellationToken,
    task: JoinHandle<Cluster>,
    pub(super) owned: watch::Receiver<Ownership>,
}

impl Membership {
    /// Starts the lease task for this instance and the task that applies its ownership to
    /// dispatch. Dispatch switches to cluster mode (owning nothing until the first round).
    pub(super) fn start(
        pools: Pools,
        submit: &crate::config::ListenAddr,
        channels: Channels,
        cx: Context<'_>,
    ) -> Membership {
        let Context {
            store,
            config_rx,
            dispatch,
            tasks,
        } = cx;
        let config = &*config_rx.borrow().clone();
        let timing = Timing {
            ttl: config.cluster.lease_ttl,
        };
        let me = Identity {
            name: config.cluster.instance.clone(),
            // Where clients reach it (the bound address, when the config said port 0).
            address: submit.to_string(),
            config_hash: config_hash(config),
        };
        let (leaving, stop) = (CancellationToken::new(), CancellationToken::new());
        let (smscs_tx, smscs_rx) = watch::channel(Cluster::configured(config));
        tasks.spawn(follow_config(config_rx.clone(), smscs_tx, leaving.clone()));
        let links: Links = {
            let d = dispatch.clone();
            Arc::new(move |s: &str| d.link_state(s))
        };
        let followed = Followed {
            smscs: smscs_rx,
            links,
        };
        let (cluster, owned, view) =
            Cluster::new(pools.leases, store.clone(), me, timing, followed);
        let budget = Arc::new(crate::cluster::budget::RouteBudget::new(pools.budget));
        dispatch.join_cluster(view, budget);
        let task = tokio::spawn(cluster.run(leaving.clone(), stop.clone()));
        // A lost lease's binds are down within a quarter of the TTL: with the fence at half of
        // it, they are gone well before the lease can expire and another instance bind.
        let drain = timing.ttl / 4;
        tasks.spawn(apply(
            owned.clone(),
            dispatch.clone(),
            channels,
            drain,
            leaving.clone(),
        ));
        Membership {
            leaving,
            stop,
            task,
            owned,
        }
    }

    /// The daemon stops accepting: no lease is taken or applied from now on.
    pub(super) fn leave(&self) {
        self.leaving.cancel();
    }

    /// The binds are down and their results written: every lease goes back.
    pub(super) async fn release(self) {
        self.stop.cancel();
        match self.task.await {
            Ok(cluster) => cluster.release().await,
            Err(e) => {
                tracing::error!(error = %e, "the lease task failed; leases expire by themselves")
            }
        }
    }
}

/// Applies each new ownership to dispatch until the daemon leaves.
async fn apply(
    mut owned: watch::Receiver<Ownership>,
    dispatch: Arc<Dispatch>,
    channels: Channels,
    drain: Duration,
    leaving: CancellationToken,
) {
    loop {
        let now = owned.borrow_and_update().clone();
        dispatch.set_owned(now.smscs, &channels, drain).await;
        tokio::select! {
            _ = leaving.cancelled() => return,
            changed = owned.changed() => if changed.is_err() { return },
        }
    }
}

/// Keeps the lease task's list of configured SMSCs current across reloads, until the daemon
/// leaves.
async fn follow_config(
    mut config: watch::Receiver<Arc<Config>>,
    smscs: watch::Sender<Vec<String>>,
    leaving: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = leaving.cancelled() => return,
            changed = config.changed() => if changed.is_err() { return },
        }
        let names = Cluster::configured(&config.borrow_and_update());
        smscs.send_if_modified(|s| {
            let changed = *s != names;
            *s = names;
            changed
        });
    }
}

/// A fingerprint of the configuration (its parsed form, secrets redacted by their `Debug`),
/// so `smppd status` can warn when instances run different configurations. The instance's own
/// name and addresses, and the unused SQLite path, are left out: they differ by design.
fn config_hash(config: &Config) -> String {
    let mut c = config.clone();
    c.cluster.instance.clear();
    c.store.path = Default::default();
    c.listen.submit = crate::config::ListenAddr::Unix(Default::default());
    c.listen.metrics = None;
    format!("{:016x}", crate::fnv::fnv1a(format!("{c:?}").as_bytes()))
}
