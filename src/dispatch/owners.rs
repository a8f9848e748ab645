//! Dispatch in a cluster (PostgreSQL store): the SMSCs this instance owns through their leases,
//! and the store-side failover that lets another owner pick a part up.
//!
//! On SQLite the instance owns every SMSC and nothing here is used: `owned` stays `None`.
//! With leases, `owned` names the SMSCs (and lease epochs) whose binds this instance may hold:
//! [`Dispatch::set_owned`] starts the sessions of an SMSC gained and stops those of an SMSC
//! lost (draining first, so the lease task gives the row back only once the binds are down).
//! Route tasks claim only parts headed for an owned SMSC that can transmit; when an owned SMSC
//! cannot (binds down, circuit open), its queued parts are re-targeted in the store to the
//! route's next SMSC that has a live owner able to transmit, where that owner claims them.
//!
//! Must never keep sessions of an SMSC it does not own, and never re-target a part to an SMSC
//! that refused it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::Dispatch;
use super::link::SmscLink;
use super::locks::{read, write};
use crate::cluster::budget::RouteBudget;
use crate::cluster::{LinkState, View};
use crate::config::Route;
use crate::session::Channels;

/// Parts moved per re-target statement.
const RETARGET_BATCH: usize = 1000;

impl Dispatch {
    /// Whether this instance shares its store with others (SMSCs are owned through leases).
    pub(super) fn clustered(&self) -> bool {
        read(&self.owned, "owned smscs").is_some()
    }

    /// Switches to cluster mode: owns nothing until the lease task says so. `view` is the lease
    /// task's picture of the cluster (where failover may go).
    pub fn join_cluster(&self, view: Arc<RwLock<View>>, budget: Arc<RouteBudget>) {
        *write(&self.owned, "owned smscs") = Some(BTreeMap::new());
        *write(&self.cluster_view, "cluster view") = Some(view);
        *write(&self.route_budget, "route budget") = Some(budget);
    }

    /// The SMSCs owned now with their lease epochs (`None`: not clustered, every SMSC).
    pub fn owned(&self) -> Option<BTreeMap<String, i64>> {
        read(&self.owned, "owned smscs").clone()
    }

    /// The cluster as the lease task last saw it (`None`: not clustered).
    pub fn cluster_view(&self) -> Option<View> {
        let view = read(&self.cluster_view, "cluster view").clone()?;
        let v = read(&view, "cluster view").clone();
        Some(v)
    }

    /// The link to `smsc` as the lease task needs to know it.
    pub fn link_state(&self, smsc: &str) -> LinkState {
        match self.link(smsc) {
            None => LinkState::None,
            Some(l) if l.usable(Instant::now()) => LinkState::Up,
            Some(_) => LinkState::Down,
        }
    }

    /// Applies a new ownership: starts the sessions of SMSCs gained, stops (draining up to
    /// `drain`) those of SMSCs lost, and only then forgets their links.
    pub async fn set_owned(
        self: &Arc<Self>,
        owned: BTreeMap<String, i64>,
        channels: &Channels,
        drain: Duration,
    ) {
        let before = self.owned().unwrap_or_default();
        *write(&self.owned, "owned smscs") = Some(owned.clone());
        let lost: Vec<Arc<SmscLink>> = self
            .smscs()
            .into_iter()
            .filter(|l| !owned.contains_key(&*l.name))
            .collect();
        for link in lost {
            if let Some(h) = link.take_handle() {
                tracing::info!(smsc = %link.name, "lease gone: unbinding");
                h.stop(drain).await;
            }
            write(&self.smscs, "smsc links").remove(&*link.name);
        }
        let cfg = self.config.borrow().clone();
        for (name, epoch) in &owned {
            if self.link(name).is_some() {
                continue;
            }
            let Some(smsc) = cfg.smsc(name) else { continue };
            match super::start_sessions(smsc, channels) {
                Ok(h) => {
                    tracing::info!(smsc = %name, epoch, gained = !before.contains_key(name), "binding (this instance owns the SMSC)");
                    let link = Arc::new(SmscLink::new(h, smsc.tps));
                    write(&self.smscs, "smsc links").insert(name.clone(), link);
                }
                Err(e) => {
                    tracing::error!(smsc = %name, error = %e, "cannot start the sessions of an owned SMSC")
                }
            }
        }
        self.wake_all();
    }

    /// Whether `route`'s rate is shared with other instances through its budget.
    pub(super) fn route_shared(&self, route: &Route) -> bool {
        route.tps.is_some() && read(&self.route_budget, "route budget").is_some()
    }

    /// How many of `want` parts of `route` may go now: all of them on a single node or for a
    /// route without `tps`; in a cluster, what the route's shared budget grants (waiting for the
    /// next slot while it grants nothing; at least one, unless `stop` comes first). When the
    /// database cannot be asked, the parts go at this instance's own pace (its token bucket
    /// still holds the route's `tps`) rather than wait for the database.
    pub(super) async fn route_budget(
        &self,
        route: &Route,
        want: usize,
        stop: &tokio_util::sync::CancellationToken,
    ) -> usize {
        let budget = read(&self.route_budget, "route budget").clone();
        let (Some(budget), Some(tps)) = (budget, route.tps) else {
            return want;
        };
        loop {
            let now = super::now_ms();
            let slot = crate::cluster::budget::Slot::at(tps, now);
            match budget.reserve(&route.name, slot, want).await {
                Ok(0) => {}
                Ok(n) => return n,
                Err(e) => {
                    tracing::warn!(route = %route.name, error = %e, "cannot reserve the route's rate in the database: pacing on this instance only");
                    return want;
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return want,
                _ = tokio::time::sleep(slot.until_next(now)) => {}
            }
        }
    }

    /// The owned SMSCs of `route` that can transmit now, with their epochs (cluster mode).
    pub(super) fn owned_usable(&self, route: &Route) -> Vec<(String, i64)> {
        let owned = read(&self.owned, "owned smscs");
        let Some(owned) = owned.as_ref() else {
            return Vec::new();
        };
        let now = Instant::now();
        route
            .smsc
            .iter()
            .filter_map(|s| owned.get(s).map(|e| (s.clone(), *e)))
            .filter(|(s, _)| self.link(s).is_some_and(|l| l.usable(now)))
            .collect()
    }

    /// Moves the queued parts of `route` headed for an owned SMSC that cannot transmit to the
    /// route's first SMSC that can (anywhere in the cluster).
    pub(super) async fn retarget_unusable(&self, route: &Route) {
        let Some(owned) = self.owned() else { return };
        let now = Instant::now();
        for from in route.smsc.iter().filter(|s| owned.contains_key(*s)) {
            if self.link(from).is_some_and(|l| l.usable(now)) {
                continue;
            }
            let Some(to) = self.failover_in_cluster(route, from) else {
                continue;
            };
            match self
                .store
                .backend()
                .retarget(&route.name, from, &to, RETARGET_BATCH)
                .await
            {
                Ok(0) => {}
                Ok(n) => {
                    tracing::warn!(route = %route.name, %from, %to, parts = n, "failover: queued parts moved to the next SMSC (this SMSC cannot transmit)")
                }
                Err(e) => {
                    tracing::warn!(route = %route.name, %from, error = %e, "cannot move queued parts to the next SMSC")
                }
            }
        }
    }

    /// The route's first SMSC other than `from` that the cluster can send through now: owned
    /// here and usable, or owned elsewhere by a live instance that says it can transmit.
    pub(super) fn failover_in_cluster(&self, route: &Route, from: &str) -> Option<String> {
        let view = read(&self.cluster_view, "cluster view").clone()?;
        let view = read(&view, "cluster view");
        let now = Instant::now();
        route
            .smsc
            .iter()
            .filter(|s| s.as_str() != from)
            .find(|s| view.usable(s) || self.link(s).is_some_and(|l| l.usable(now)))
            .cloned()
    }
}
