//! Several instances on one PostgreSQL store: who is alive, which instance owns each SMSC
//! account, and which one runs the cluster's housekeeping.
//!
//! Ownership is a lease row per SMSC in the database (`smsc_lease`: owner, epoch, expiry) —
//! PostgreSQL is the only distributed engine; nothing here votes or replicates. One task per
//! instance ([`Cluster::run`]) does, every round ([`Timing::round`]):
//! 1. heartbeat its `cluster_instance` row (address, config hash, version);
//! 2. renew the leases it holds (and publish whether each SMSC can transmit, so other owners
//!    know where failover may go);
//! 3. read the lease table and the live instances, and take or give back leases to hold its
//!    fair share ([`share`]); a lease taken from a dead owner gets a new epoch, and that SMSC's
//!    parts claimed under older epochs are re-queued as possible duplicates;
//! 4. the same for the leader lease (expiry, `no_receipt` and pruning run on the leader only).
//!
//! The fence: the database sets a lease's expiry to *its* `now() + lease_ttl` at each renewal,
//! and this instance notes its own clock *before* sending the renewal. When it has not renewed
//! for half the TTL (the database is unreachable, or slow), it gives up every lease locally —
//! dispatch unbinds those SMSCs — well before any other instance may take them. Advisory locks
//! are not used for ownership: they vanish silently with a connection and do not survive a
//! transaction pooler.
//!
//! Owns the lease rows of this instance and the published [`Ownership`]. Must never hold a lease
//! it could not renew for half its TTL, never take a lease another live instance holds, and
//! never give a lease back before dispatch has stopped that SMSC's binds (a stopping instance
//! releases its leases last, see `Daemon::stop`).

pub mod budget;
mod share;
pub mod sql;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics as m;
use crate::store::Store;
pub use share::{Decision, LeaseRow, decide};

/// The leader lease's name (one row in `leader_lease`).
const LEADER: &str = "housekeeping";

/// What this instance owns now: SMSC name → lease epoch, and whether it leads housekeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ownership {
    pub smscs: BTreeMap<String, i64>,
    pub leader: bool,
}

/// The cluster as the last round saw it (for `smppd status` and failover choices).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// This instance's name and configuration fingerprint.
    pub me: String,
    pub config_hash: String,
    pub instances: Vec<sql::InstanceRow>,
    pub leases: Vec<sql::LeaseView>,
}

impl View {
    /// The status view: every instance (name, address, last heartbeat, config hash), the
    /// owner of each SMSC, and whether live instances run different configurations.
    pub fn to_json(&self) -> serde_json::Value {
        let live_hashes: BTreeSet<&str> = self
            .instances
            .iter()
            .filter(|i| i.live && !i.stopping)
            .map(|i| i.config_hash.as_str())
            .collect();
        let instances: Vec<serde_json::Value> = self
            .instances
            .iter()
            .map(|i| {
                serde_json::json!({
                    "name": i.name,
                    "address": i.address,
                    "heartbeat_age_ms": i.heartbeat_age_ms,
                    "config_hash": i.config_hash,
                    "version": i.version,
                    "state": if i.stopping { "stopped" } else if i.live { "live" } else { "dead" },
                })
            })
            .collect();
        let owners: Vec<serde_json::Value> = self
            .leases
            .iter()
            .map(|l| {
                serde_json::json!({
                    "smsc": l.smsc,
                    "owner": if l.live { l.owner.clone() } else { None },
                    "epoch": l.epoch,
                    "usable": l.live && l.usable,
                })
            })
            .collect();
        serde_json::json!({
            "instance": self.me,
            "config_hash": self.config_hash,
            "instances": instances,
            "owners": owners,
            "config_mismatch": live_hashes.len() > 1,
        })
    }

    /// Whether `smsc` has a live owner whose transmitter is bound (a failover may go there).
    pub fn usable(&self, smsc: &str) -> bool {
        self.leases
            .iter()
            .any(|l| l.smsc == smsc && l.live && l.usable)
    }
}

/// Dispatch's link to one SMSC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// No sessions (never started, or stopped).
    None,
    /// Sessions running, no transmitter bound or the circuit open.
    Down,
    /// A transmitter is bound and the circuit lets parts through.
    Up,
}

/// How the lease task asks dispatch about a link.
pub type Links = Arc<dyn Fn(&str) -> LinkState + Send + Sync>;

/// Intervals derived from `lease_ttl`.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub ttl: Duration,
}

impl Timing {
    /// How often the task runs: a third of the TTL, at most a second (so a released lease is
    /// picked up within a second).
    pub fn round(&self) -> Duration {
        (self.ttl / 3).min(Duration::from_secs(1))
    }

    /// Unrenewed this long, every lease is given up locally.
    pub fn fence(&self) -> Duration {
        self.ttl / 2
    }
}

/// Who this instance is, as its heartbeat row says.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub address: String,
    pub config_hash: String,
}

/// What the lease task follows of the rest of the daemon, as it changes.
pub struct Followed {
    /// Configured SMSCs (changes with a reload).
    pub smscs: watch::Receiver<Vec<String>>,
    /// Dispatch's link to an SMSC, as it is now.
    pub links: Links,
}

/// The lease task's state (one owner: the task).
pub struct Cluster {
    pool: Pool,
    store: Store,
    me: Identity,
    timing: Timing,
    /// Configured SMSCs (changes with a reload).
    smscs: watch::Receiver<Vec<String>>,
    /// Dispatch's link to an SMSC, as it is now.
    links: Links,
    owned: watch::Sender<Ownership>,
    view: Arc<RwLock<View>>,
    /// When the last successful renewal was sent (the fence counts from here).
    renewed: Instant,
    /// Whether the last round saw other live instances with another configuration.
    mismatch: bool,
}

impl Cluster {
    pub fn new(
        pool: Pool,
        store: Store,
        me: Identity,
        timing: Timing,
        followed: Followed,
    ) -> (Cluster, watch::Receiver<Ownership>, Arc<RwLock<View>>) {
        let Followed { smscs, links } = followed;
        let (owned, owned_rx) = watch::channel(Ownership::default());
        let view = Arc::new(RwLock::new(View::default()));
        let cluster = Cluster {
            pool,
            store,
            me,
            timing,
            smscs,
            links,
            owned,
            view: view.clone(),
            renewed: Instant::now(),
            mismatch: false,
        };
        (cluster, owned_rx, view)
    }

    /// Rounds until `stop`, taking no lease once `leaving` (what is held is still renewed
    /// while the binds drain). The caller then gives everything back with [`Self::release`].
    pub async fn run(mut self, leaving: CancellationToken, stop: CancellationToken) -> Self {
        let mut tick = tokio::time::interval(self.timing.round());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // The fence has its own timer: it must fire on time even while rounds fail or hang.
            let fence_at = tokio::time::Instant::from_std(self.renewed + self.timing.fence());
            tokio::select! {
                _ = stop.cancelled() => return self,
                _ = tokio::time::sleep_until(fence_at), if self.holds_anything() => {}
                _ = tick.tick() => {
                    // A round may not outlast its interval (a database that accepts
                    // connections but does not answer would otherwise hold it for ever).
                    let limit = self.timing.round();
                    let round = self.round(leaving.is_cancelled());
                    match tokio::time::timeout(limit, round).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => {
                            m::cluster_errors();
                            tracing::warn!(error = %e, "cluster round failed (the database is unreachable)");
                        }
                        Err(_) => {
                            m::cluster_errors();
                            tracing::warn!("cluster round timed out (the database is slow or unreachable)");
                        }
                    }
                }
            }
            self.fence_if_stale();
        }
    }

    fn holds_anything(&self) -> bool {
        let o = self.owned.borrow();
        !o.smscs.is_empty() || o.leader
    }

    /// One round: heartbeat, renew, look, take or give back.
    async fn round(&mut self, leaving: bool) -> Result<(), sql::Error> {
        let client = self.pool.get().await.map_err(sql::Error::pool)?;
        let sent = Instant::now();
        sql::heartbeat(&client, &self.me).await?;
        let mut owned = self.owned.borrow().clone();
        let usable: Vec<String> = owned
            .smscs
            .keys()
            .filter(|s| (self.links)(s) == LinkState::Up)
            .cloned()
            .collect();
        let held: Vec<String> = owned.smscs.keys().cloned().collect();
        let kept = sql::renew(&client, &self.me.name, &held, &usable, self.timing.ttl).await?;
        owned.leader = owned.leader
            && sql::renew_leader(&client, &self.me.name, LEADER, self.timing.ttl).await?;
        self.renewed = sent;
        for smsc in held.iter().filter(|s| !kept.contains(*s)) {
            tracing::error!(smsc = %smsc, "lease lost to another instance: unbinding");
            owned.smscs.remove(smsc);
        }
        let mut view = sql::view(&client, self.timing.ttl).await?;
        view.me = self.me.name.clone();
        view.config_hash = self.me.config_hash.clone();
        self.warn_mismatch(&view);
        if !leaving {
            self.balance(&client, &view, &mut owned).await?;
        }
        if !owned.leader && !leaving {
            owned.leader = sql::take_leader(&client, &self.me.name, LEADER, self.timing.ttl)
                .await?
                .is_some();
            if owned.leader {
                tracing::info!("this instance now runs the cluster's housekeeping");
            }
        }
        m::cluster_leases(owned.smscs.len());
        self.publish(owned);
        *crate::dispatch::locks::write(&self.view, "cluster view") = view;
        Ok(())
    }

    /// Takes or gives back leases to hold the fair share.
    async fn balance(
        &mut self,
        client: &deadpool_postgres::Object,
        view: &View,
        owned: &mut Ownership,
    ) -> Result<(), sql::Error> {
        let smscs = self.smscs.borrow().clone();
        let table: Vec<LeaseRow> = view
            .leases
            .iter()
            .map(|l| LeaseRow {
                smsc: l.smsc.clone(),
                live_owner: l.live.then(|| l.owner.clone()).flatten(),
            })
            .collect();
        let live = view
            .instances
            .iter()
            .filter(|i| i.live && !i.stopping)
            .count();
        let d = decide(&self.me.name, &smscs, &table, live);
        // An SMSC removed from the configuration is given back like an excess one.
        owned.smscs.retain(|s, _| smscs.contains(s));
        for smsc in &d.give_back {
            // Dispatch unbinds once the published ownership drops it; the row goes back at a
            // later round, once its binds are down (see `release_unbound`).
            owned.smscs.remove(smsc);
        }
        self.release_unbound(client, view, owned).await?;
        for smsc in &d.take {
            let previous = view
                .leases
                .iter()
                .find(|l| &l.smsc == smsc)
                .and_then(|l| l.owner.clone());
            if let Some(epoch) = sql::take(client, &self.me.name, smsc, self.timing.ttl).await? {
                self.taken(smsc, epoch, previous).await;
                owned.smscs.insert(smsc.clone(), epoch);
            }
        }
        Ok(())
    }

    /// Rows this instance still holds in the table but no longer owns (given back, fenced, or
    /// no longer configured) go back once dispatch has no link to that SMSC any more.
    async fn release_unbound(
        &self,
        client: &deadpool_postgres::Object,
        view: &View,
        owned: &Ownership,
    ) -> Result<(), sql::Error> {
        let drop: Vec<String> = view
            .leases
            .iter()
            .filter(|l| l.live && l.owner.as_deref() == Some(self.me.name.as_str()))
            .filter(|l| !owned.smscs.contains_key(&l.smsc))
            .filter(|l| (self.links)(&l.smsc) == LinkState::None)
            .map(|l| l.smsc.clone())
            .collect();
        if !drop.is_empty() {
            tracing::info!(smscs = ?drop, "giving leases back");
            sql::release(client, &self.me.name, &drop).await?;
        }
        Ok(())
    }

    /// A lease just taken: parts claimed under an older epoch (their owner died with them in
    /// flight) go back to the queue, marked as possible duplicates.
    async fn taken(&self, smsc: &str, epoch: i64, previous: Option<String>) {
        let takeover = previous.is_some_and(|p| p != self.me.name);
        if takeover {
            m::cluster_takeover(smsc);
        }
        match self.store.backend().requeue_in_flight(smsc, epoch).await {
            Ok(n) => tracing::info!(
                smsc,
                epoch,
                takeover,
                requeued = n,
                "lease taken: this instance owns the SMSC"
            ),
            Err(e) => {
                tracing::warn!(smsc, epoch, error = %e, "lease taken, but its in-flight parts could not be re-queued yet")
            }
        }
    }

    /// Says once per change when live instances run different configurations.
    fn warn_mismatch(&mut self, view: &View) {
        let others: BTreeSet<&str> = view
            .instances
            .iter()
            .filter(|i| i.live && !i.stopping && i.config_hash != self.me.config_hash)
            .map(|i| i.name.as_str())
            .collect();
        let mismatch = !others.is_empty();
        if mismatch && !self.mismatch {
            tracing::warn!(instances = ?others, "instances run a different configuration than this one (see smppd status)");
        }
        self.mismatch = mismatch;
    }

    /// Gives up everything locally when renewals have failed for half the TTL.
    fn fence_if_stale(&mut self) {
        let stale = self.renewed.elapsed() >= self.timing.fence();
        let owned = self.owned.borrow().clone();
        if stale && (!owned.smscs.is_empty() || owned.leader) {
            tracing::error!(
                unrenewed_ms = self.renewed.elapsed().as_millis() as u64,
                smscs = owned.smscs.len(),
                "leases not renewed for half their TTL: unbinding every SMSC before another instance may take them"
            );
            m::cluster_leases(0);
            self.publish(Ownership::default());
        }
    }

    fn publish(&self, owned: Ownership) {
        self.owned.send_if_modified(|o| {
            let changed = *o != owned;
            *o = owned;
            changed
        });
    }

    /// Hands every lease back and marks the instance as stopping, so a survivor takes them at
    /// its next round instead of waiting for the TTL. Call after the binds are down.
    pub async fn release(self) {
        let result = async {
            let client = self.pool.get().await.map_err(sql::Error::pool)?;
            sql::leave(&client, &self.me.name, LEADER).await
        }
        .await;
        match result {
            Ok(()) => tracing::info!("leases released"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the leases; survivors take them when they expire")
            }
        }
    }

    /// The configured SMSCs, for the watch the daemon keeps current across reloads.
    pub fn configured(config: &crate::config::Config) -> Vec<String> {
        config
            .smscs
            .iter()
            .map(|s| s.name.clone())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }
}
