//! Outcomes: what happens to a part after it left a route task for a bind, until the store
//! holds its result.
//!
//! Owns the parts in flight (handed to a session, not yet answered) and the road each takes
//! from the session's answer: [`acknowledged`](Dispatch::acknowledged) (ESME_ROK: counted, the
//! ack written, a receipt that came first applied), [`refused`](Dispatch::refused) (a permanent
//! status: failed over to the route's next SMSC when the status allows it, else failed for
//! good), [`retried`](Dispatch::retried) (throttled, a temporary status, a timeout, a lost
//! connection, a stop), [`expired`](Dispatch::expired) (its validity ended before the bind
//! wrote it), and parts handed back unsent (stranded in the channel of an SMSC with no bound
//! transmitter, or claimed while stopping). Every road ends in one result write through
//! [`results`](super::results); the per-part side state those roads leave (refusals,
//! affinity) lives in [`parts`](super::parts), whose `finish` releases it when the store says
//! the message has nothing pending, whatever road it took.
//!
//! Must never drop a part (each answer becomes exactly one result write), never wait on a
//! store write in the event loop (the session's events would back up behind the store), and
//! never see an inbound PDU (those have their own channel, see [`crate::session::Channels`]).

use std::sync::Arc;

use tokio::sync::mpsc;

use super::locks::lock;
use super::{Dispatch, retry_delay};
use crate::config::Config;
use crate::dispatch::now_ms;
use crate::metrics as m;
use crate::pdu::CommandStatus;
use crate::session::{BindId, BindState, Event, RetryReason};
use crate::store::{Ack, AckResult, Disposition, Failure, PartRef, Reroute, RerouteRule};

/// A part handed to a session, waiting for its outcome.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    pub(super) part: PartRef,
    pub(super) route: Arc<str>,
    pub(super) smsc: Arc<str>,
    /// Attempts including this one (from the store).
    pub(super) attempts: u32,
    /// The SMSC a reroute moved this part away from (not a failover target either).
    pub(super) rerouted_from: Option<Arc<str>>,
    /// SMSCs that refused this part before, as the store keeps them (cluster mode).
    pub(super) refused: Vec<Arc<str>>,
    /// The message's validity (ms since the epoch), for the side state's release.
    pub(super) valid_until: Option<i64>,
}

impl Dispatch {
    /// Consumes session events until the channel closes (every session stopped and the
    /// daemon's own sender dropped).
    pub async fn consume_events(self: Arc<Self>, mut events: mpsc::Receiver<Event>) {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Submitted {
                    key,
                    message_id,
                    bind,
                } => self.acknowledged(key, message_id, &bind),
                Event::Failed { key, status, .. } => self.refused(key, status),
                Event::Expired { key, .. } => self.expired(key),
                Event::Retry { job, reason, .. } => self.retried(job.key, reason),
                Event::BindState { bind, state } => self.bind_state(&bind, state),
                Event::Inbound { bind, .. } => {
                    // A wiring mistake: dropping the reply makes the session answer
                    // ESME_RX_T_APPN, so the SMSC redelivers rather than loses it.
                    tracing::error!(smsc = %bind.smsc, "inbound PDU on the events channel; not answered");
                }
            }
        }
    }

    /// Records a part in flight under `key` until its outcome comes back.
    pub(super) fn dispatched(&self, key: u64, f: InFlight) {
        lock(&self.in_flight, "in flight").insert(key, f);
    }

    /// The part in flight under `key`, no longer in flight.
    pub(super) fn take(&self, key: u64) -> Option<InFlight> {
        lock(&self.in_flight, "in flight").remove(&key)
    }

    /// ESME_ROK: counted, the circuit told, the ack written (not awaited); a receipt that came
    /// before this response is applied with it and may send the part back for a reroute.
    fn acknowledged(self: &Arc<Self>, key: u64, smsc_id: String, bind: &BindId) {
        let Some(f) = self.take(key) else { return };
        if let Some(l) = self.link(&f.smsc) {
            l.record_success();
        }
        let rule = self
            .config
            .borrow()
            .smsc(&bind.smsc)
            .map(|s| s.receipt_id)
            .unwrap_or_default();
        let (submitted, to_submit) =
            self.submit_metrics
                .get(&(f.route.clone(), f.smsc.clone()), |(route, smsc)| {
                    (
                        metrics::counter!(m::PARTS_SUBMITTED, m::label::ROUTE => route.to_string(), m::label::SMSC => smsc.to_string(), m::label::STATUS => "ESME_ROK"),
                        metrics::histogram!(m::ACCEPT_TO_SUBMIT_SECONDS, m::label::ROUTE => route.to_string()),
                    )
                });
        submitted.increment(1);
        self.count_submit(&f.route, &f.smsc);
        to_submit.record(((now_ms() - f.part.message.millis()).max(0) as f64) / 1000.0);
        // The message's side state goes once the store says no part is pending (in
        // `results`), whatever order its parts were acknowledged in.
        self.side.part_done(&f.part);
        let reroute = self.reroute_rule(&f.route);
        let me = self.clone();
        let ack = Ack {
            part: f.part,
            smsc: f.smsc.to_string(),
            smsc_id,
            rule,
            now_ms: now_ms(),
            reroute,
        };
        // Looked at off this loop, to log and count a reroute.
        self.results.ack(ack, move |done| {
            if let AckResult {
                rerouted: Some(r), ..
            } = done
            {
                me.rerouted(&r);
            }
        });
    }

    /// A permanent status: failed over to the route's next SMSC when this SMSC lists the status
    /// as one another may accept and one is left, else failed for good.
    fn refused(&self, key: u64, status: CommandStatus) {
        let Some(f) = self.take(key) else { return };
        let name = status.to_string();
        metrics::counter!(m::PARTS_SUBMITTED, m::label::ROUTE => f.route.to_string(), m::label::SMSC => f.smsc.to_string(), m::label::STATUS => name.clone()).increment(1);
        let cfg = self.config.borrow().clone();
        let fails_over = cfg
            .smsc(&f.smsc)
            .is_some_and(|s| s.failover_statuses.contains(&status.0));
        let disposition = match (self.failover_target(&cfg, &f), fails_over) {
            (Some(to), true) => self.failed_over(&f, &to, &name),
            _ => {
                self.side.part_done(&f.part);
                Disposition::Permanent
            }
        };
        drop(self.results.failure(Failure {
            part: f.part,
            smsc: Some(f.smsc.to_string()),
            status: Some(status.0),
            disposition,
            now_ms: now_ms(),
        }));
        self.wake(&f.route);
    }

    /// The route's next SMSC for a refused part: not the refusing one, not the one a reroute
    /// moved it from, none that refused it before.
    fn failover_target(&self, cfg: &Config, f: &InFlight) -> Option<String> {
        let route = cfg.routes.iter().find(|r| *r.name == *f.route)?;
        let mut refused = self.side.refused(&f.part);
        refused.extend(f.refused.iter().cloned());
        route
            .smsc
            .iter()
            .find(|s| {
                s.as_str() != &*f.smsc
                    && f.rerouted_from.as_deref() != Some(s.as_str())
                    && !refused.iter().any(|x| &**x == s.as_str())
            })
            .cloned()
    }

    /// Remembers the refusal (so the next attempt goes elsewhere) and re-queues the part.
    fn failed_over(&self, f: &InFlight, to: &str, status: &str) -> Disposition {
        tracing::warn!(message = %f.part.message, part = f.part.n, from = %f.smsc, %to, %status, "failover: part refused, trying the next SMSC");
        metrics::counter!(m::FAILOVERS, m::label::ROUTE => f.route.to_string(), m::label::FROM => f.smsc.to_string(), m::label::TO => to.to_owned()).increment(1);
        if self.clustered() {
            // The refusal and the next SMSC live with the part in the shared store, so that
            // SMSC's owner (maybe another instance) picks it up and a new owner remembers it.
            return Disposition::Failover { to: to.to_owned() };
        }
        self.side.refuse(f.part, f.smsc.clone(), f.valid_until);
        Disposition::Requeue { maybe_sent: false }
    }

    /// Its validity ended while it waited for the bind: it was never written.
    fn expired(&self, key: u64) {
        let Some(f) = self.take(key) else { return };
        drop(self.results.failure(Failure {
            part: f.part,
            smsc: None,
            status: None,
            disposition: Disposition::Expired,
            now_ms: now_ms(),
        }));
    }

    /// The session handed the part back: throttled (head of the queue), a temporary status
    /// (retried later, with a growing delay), or an unknown outcome (timeout, lost connection,
    /// stop: re-queued, marked as a possible duplicate when it may have reached the SMSC).
    fn retried(&self, key: u64, reason: RetryReason) {
        let Some(f) = self.take(key) else { return };
        if let Some(l) = self.link(&f.smsc)
            && matches!(
                reason,
                RetryReason::Throttled(_)
                    | RetryReason::Temporary(_)
                    | RetryReason::ResponseTimeout
            )
        {
            l.record_failure(&reason.to_string());
        }
        if reason == RetryReason::ResponseTimeout {
            metrics::counter!(m::PARTS_TIMED_OUT, m::label::SMSC => f.smsc.to_string())
                .increment(1);
        }
        let disposition = match reason {
            RetryReason::Throttled(s) => {
                metrics::counter!(m::THROTTLED, m::label::SMSC => f.smsc.to_string(), m::label::STATUS => s.to_string()).increment(1);
                Disposition::Requeue { maybe_sent: false }
            }
            RetryReason::Temporary(_) => {
                let delay = retry_delay(f.attempts);
                Disposition::RetryAt {
                    at_ms: now_ms() + delay.as_millis() as i64,
                }
            }
            r => Disposition::Requeue {
                maybe_sent: r.outcome_unknown(),
            },
        };
        let status = match reason {
            RetryReason::Throttled(s) | RetryReason::Temporary(s) => Some(s.0),
            _ => None,
        };
        drop(self.results.failure(Failure {
            part: f.part,
            smsc: Some(f.smsc.to_string()),
            status,
            disposition,
            now_ms: now_ms(),
        }));
        self.wake(&f.route);
    }

    /// A bind changed state: the gauge follows; a bind down hands back what waits for it, a
    /// bind up wakes the routes waiting for a transmitter.
    fn bind_state(&self, bind: &BindId, state: BindState) {
        let up = matches!(state, BindState::Bound);
        metrics::gauge!(m::BIND_UP, m::label::SMSC => bind.smsc.to_string(), m::label::BIND => bind.to_string())
            .set(if up { 1.0 } else { 0.0 });
        tracing::debug!(smsc = %bind.smsc, bind = %bind, state = ?state, "bind state");
        if up {
            self.wake_all();
        } else {
            self.reclaim_stranded();
        }
    }

    /// Parts waiting in the job channel of an SMSC that has no bound transmitter go back to the
    /// queue, so that the route's other SMSCs can take them. Called when a bind goes down and
    /// once a second.
    pub fn reclaim_stranded(&self) {
        for link in self.smscs() {
            let jobs = link.reclaim_queued();
            if jobs.is_empty() {
                continue;
            }
            tracing::info!(smsc = %link.name, parts = jobs.len(), "no bound transmitter: parts handed back to the queue");
            for job in jobs {
                if let Some(f) = self.take(job.key) {
                    drop(self.requeue_unsent_part(f.part));
                    self.wake(&f.route);
                }
            }
        }
    }

    /// Puts a part that never reached an SMSC back in the queue. The returned task may be
    /// awaited (to order later store writes after it) or dropped (the write goes on, retried
    /// while the store refuses it: see [`results`](super::results)).
    pub(super) fn requeue_unsent_part(&self, part: PartRef) -> super::results::Recorded {
        self.results.failure(Failure {
            part,
            smsc: None,
            status: None,
            disposition: Disposition::Requeue { maybe_sent: false },
            now_ms: now_ms(),
        })
    }

    /// The reroute rule (see [`RerouteRule`]) for one route: itself when it has
    /// `reroute_undelivered`, else none.
    fn reroute_rule(&self, route: &str) -> RerouteRule {
        let cfg = self.config.borrow().clone();
        cfg.routes
            .iter()
            .find(|r| r.name == route && r.reroute_undelivered)
            .map_or_else(RerouteRule::none, |r| {
                RerouteRule::none().with_route(&r.name, &r.smsc)
            })
    }

    /// A receipt sent a part back to the queue for a resend through another SMSC: logged with
    /// both SMSC names, counted, and the route woken so the resend goes at once.
    pub fn rerouted(&self, r: &Reroute) {
        tracing::warn!(message = %r.part.message, part = r.part.n, route = %r.route, from = %r.from_smsc, to = %r.to_smsc, stat = %r.stat, "reroute: receipt says not delivered, resending once through the next SMSC");
        metrics::counter!(m::REROUTES, m::label::ROUTE => r.route.clone(), m::label::FROM => r.from_smsc.clone(), m::label::TO => r.to_smsc.clone()).increment(1);
        self.wake(&r.route);
    }
}
