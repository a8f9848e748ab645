//! Route tasks: one per configured route, from the durable queue to an SMSC's job channel.
//!
//! Owns claiming (small batches, priority then age), pacing (the route's and the SMSC's token
//! buckets), choosing the SMSC (affinity for later parts of a multipart message, then the
//! route's failover order, skipping SMSCs that refused the part or whose circuit is open) and
//! handing the `submit_sm` to that SMSC's sessions. What happens after that is in
//! [`outcomes`](super::outcomes). Must never hold more than one claim batch, and never drop a
//! claimed part: it is sent, or its result (re-queued, failed for good) is written.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::link::SmscLink;
use super::outcomes::InFlight;
use super::{CLAIM_BATCH, Dispatch, IDLE_POLL, RouteState, now_ms, submit_sm, until_ready};
use crate::config::Route;
use crate::session::{Job, JobBody, Validity};
use crate::store::{Disposition, Failure, QueuedPart};

impl Dispatch {
    /// Claims and sends the route's parts until `stop` is cancelled or the route is removed.
    pub(super) async fn route_task(self: Arc<Self>, name: String, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            // Looked up every round: a reload may have replaced the route's bucket.
            let Some(state) = self.route_state(&name) else {
                return;
            };
            let cfg = self.config.borrow().clone();
            let Some(route) = cfg.routes.iter().find(|r| r.name == name).cloned() else {
                return; // removed by a reload
            };
            let Some(parts) = self.claim(&route).await else {
                self.idle(&state, &stop).await;
                continue;
            };
            // In a cluster the route's rate is shared: parts go out as its budget grants them.
            let mut granted = 0;
            for (i, part) in parts.iter().enumerate() {
                if granted == 0 && !stop.is_cancelled() {
                    granted = self.route_budget(&route, parts.len() - i, &stop).await;
                }
                if stop.is_cancelled() {
                    // Not sent: back to the queue, untouched by any SMSC.
                    for p in &parts[i..] {
                        drop(self.requeue_unsent_part(p.part));
                    }
                    return;
                }
                granted -= 1;
                self.send(&state, &route, part).await;
            }
            self.resplit_waiting().await;
        }
    }

    /// A batch of the route's ready parts; `None` when there is nothing to do now (no SMSC of
    /// the route can transmit, the store refused, nothing is ready).
    async fn claim(&self, route: &Route) -> Option<Vec<QueuedPart>> {
        let batch = route
            .tps
            .map_or(CLAIM_BATCH, |t| (t as usize / 10).clamp(1, CLAIM_BATCH));
        let claimed = if self.clustered() {
            // Parts headed for an owned SMSC that cannot transmit move on in the store first.
            self.retarget_unusable(route).await;
            let owned = self.owned_usable(route);
            if owned.is_empty() {
                return None;
            }
            let started = Instant::now();
            let claimed = self
                .store
                .backend()
                .claim_owned(&route.name, owned, batch, now_ms())
                .await;
            metrics::histogram!(crate::metrics::STORE_CLAIM_SECONDS, crate::metrics::label::ROUTE => route.name.clone())
                .record(started.elapsed().as_secs_f64());
            claimed
        } else {
            if !route.smsc.iter().any(|s| self.can_transmit(s)) {
                return None;
            }
            self.store
                .backend()
                .claim(&route.name, batch, now_ms())
                .await
        };
        match claimed {
            Ok(p) if p.is_empty() => None,
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(route = %route.name, error = %e, "cannot claim parts from the store");
                None
            }
        }
    }

    async fn idle(&self, state: &RouteState, stop: &CancellationToken) {
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = state.wake.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }

    fn can_transmit(&self, smsc: &str) -> bool {
        let now = Instant::now();
        self.link(smsc).is_some_and(|l| l.usable(now))
    }

    /// SMSCs this part must not go to: those that refused it with a failover status and, for a
    /// part resent after an UNDELIV/REJECTD receipt, the SMSC whose receipt failed it.
    fn excluded(&self, part: &QueuedPart) -> Vec<Arc<str>> {
        let mut out = self.side.refused(&part.part);
        out.extend(part.refused.iter().map(|s| Arc::from(s.as_str())));
        if let Some(s) = &part.rerouted_from {
            out.push(Arc::from(s.as_str()));
        }
        out
    }

    /// Picks the SMSC for a part: the message's SMSC for later parts of a multipart message
    /// while it can transmit, otherwise the first of the route's list that can transmit and is
    /// not excluded for this part (see [`Self::excluded`]).
    fn choose(&self, route: &Route, part: &QueuedPart) -> Option<Arc<SmscLink>> {
        let now = Instant::now();
        if let Some(target) = &part.target {
            // The store says where it goes (cluster mode): that SMSC, or back to the queue.
            return self.link(target).filter(|l| l.usable(now) && l.admit(now));
        }
        let refused = self.excluded(part);
        if part.total > 1
            && let Some(s) = self.side.affinity(&part.part.message)
            && !refused.contains(&s)
            && let Some(link) = self.link(&s)
            && link.usable(now)
            && link.admit(now)
        {
            return Some(link);
        }
        route
            .smsc
            .iter()
            .filter(|s| !refused.iter().any(|r| &**r == s.as_str()))
            .filter_map(|s| self.link(s))
            .find(|l| l.usable(now) && l.admit(now))
    }

    /// Sends one claimed part: to the chosen SMSC's job channel, or back to the queue (nothing
    /// can take it now, or it waits for a re-split), or failed for good (every SMSC refused it,
    /// or it cannot be put on the wire).
    async fn send(&self, state: &RouteState, route: &Route, part: &QueuedPart) {
        let Some(link) = self.choose(route, part) else {
            self.unsendable(route, part);
            return;
        };
        let resplitting = self.side.resplitting(&part.part.message);
        if resplitting || self.needs_resplit(&link, part) {
            // Back to the queue (durably, so the re-split sees no part in flight); the message
            // is re-split for this SMSC once the batch is through.
            let _ = self.requeue_unsent_part(part.part).await;
            self.side
                .want_resplit(part.part.message, link.name.clone(), part.valid_until_ms);
            return;
        }
        // In a cluster the route's budget already paced this part (slot by slot, for every
        // instance together); the local bucket would only push it into a later slot.
        if let Some(b) = &state.bucket
            && !self.route_shared(route)
        {
            until_ready(b).await;
        }
        if let Some(b) = &link.bucket {
            until_ready(b).await;
        }
        let Some(job) = self.job(state, &link, part) else {
            return;
        };
        if let Err(e) = link.jobs.send(job).await {
            // The SMSC's sessions are gone (stopping): back to the queue.
            self.take(e.0.key);
            drop(self.requeue_unsent_part(part.part));
        }
    }

    /// No SMSC can take the part now (binds down, or every SMSC refused it). If every SMSC of
    /// the route is excluded for this part, it has failed for good; else it waits in the queue.
    fn unsendable(&self, route: &Route, part: &QueuedPart) {
        let excluded = self.excluded(part);
        let refused_all = !excluded.is_empty()
            && route
                .smsc
                .iter()
                .all(|s| excluded.iter().any(|x| &**x == s.as_str()));
        let disposition = if refused_all {
            Disposition::Permanent
        } else {
            Disposition::Requeue { maybe_sent: false }
        };
        drop(self.results.failure(Failure {
            part: part.part,
            smsc: None,
            status: None,
            disposition,
            now_ms: now_ms(),
        }));
    }

    /// The job for a part going through `link`, recorded in flight (with the affinity of a
    /// multipart message); `None` when the stored part cannot be put on the wire (then it has
    /// failed for good).
    fn job(&self, state: &RouteState, link: &SmscLink, part: &QueuedPart) -> Option<Job> {
        let body = match submit_sm(part) {
            Ok(b) => b,
            Err(problem) => {
                // A stored part that cannot be put on the wire is a bug or a corrupted row; it
                // fails with the reason rather than blocking the queue.
                tracing::error!(message = %part.part.message, part = part.part.n, %problem, "cannot build submit_sm");
                drop(self.results.failure(Failure {
                    part: part.part,
                    smsc: Some(link.name.to_string()),
                    status: None,
                    disposition: Disposition::Permanent,
                    now_ms: now_ms(),
                }));
                return None;
            }
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        if part.total > 1 {
            self.side
                .follow(part.part.message, link.name.clone(), part.valid_until_ms);
        }
        self.dispatched(
            key,
            InFlight {
                part: part.part,
                route: state.name.clone(),
                smsc: link.name.clone(),
                attempts: part.attempts,
                rerouted_from: part.rerouted_from.as_deref().map(Arc::from),
                refused: part.refused.iter().map(|s| Arc::from(s.as_str())).collect(),
                valid_until: part.valid_until_ms,
            },
        );
        Some(Job {
            key,
            body: JobBody::SubmitSm(body),
            validity: self.validity(&link.name, part.valid_until_ms),
        })
    }

    /// A part's validity as its job carries it: the end of the message's validity, written in
    /// the SMSC's `validity` format by the bind (see [`Validity`]).
    fn validity(&self, smsc: &str, valid_until_ms: Option<i64>) -> Option<Validity> {
        let until_ms = u64::try_from(valid_until_ms?).unwrap_or(0);
        let format = self
            .config
            .borrow()
            .smsc(smsc)
            .map(|s| s.validity)
            .unwrap_or_default();
        Some(Validity {
            until: UNIX_EPOCH + Duration::from_millis(until_ms),
            format,
        })
    }
}
