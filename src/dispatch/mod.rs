//! Dispatch: from the durable queue to the SMSCs, and session results back into the store.
//!
//! Owns: one task per route that claims ready parts from the store (priority, then age), paces
//! them through the route's and the chosen SMSC's token buckets (`governor`, GCRA: smooth, not
//! once-a-second bursts), picks the SMSC (the first of the route's failover list that has a bound
//! transmitter and has not refused this part), and hands the `submit_sm` to that SMSC's sessions;
//! and the consumer of session events, which records acknowledgements, retries, failures and
//! expiries (a part whose validity ended before the bind wrote it), and fails a part over to the
//! route's next SMSC when the refusing status is one another SMSC may accept. Parts of one
//! multipart message stay on one SMSC while it is usable. What it remembers per message between
//! attempts (refusals, affinity, re-split marks) lives in [`parts`] and is released when the
//! message ends, by whatever road.
//!
//! Must never hold more than a bounded number of parts in memory (claims are small batches,
//! in-flight parts are bounded by the SMSC windows and job channels), and never drop a part: every
//! claimed part either reaches an SMSC and is acknowledged, or goes back to the store.

pub mod breaker;
mod parts;
pub mod rate;
mod results;

pub use parts::SideSizes;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use breaker::Breaker;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::address::{Msisdn, Sender};
use crate::config::{Config, Route};
use crate::metrics as m;
use crate::pdu::{
    Address, DataCoding, EsmClass, Npi, OctetString, RegisteredDelivery, SubmitSm, Tlv, Ton,
};
use crate::session::{Channels, Event, Job, JobBody, RetryReason, SmscHandle, Validity};
use crate::store::{
    Ack, AckResult, Disposition, Failure, MessageId, PartRef, QueuedPart, Reroute, RerouteRule,
    Store,
};

/// Parts claimed from the store at once per route (fewer when the route is rate-limited).
const CLAIM_BATCH: usize = 256;
/// How long an idle route waits before looking at the store again (retries become due, parts
/// accepted by another path); new accepts wake it at once.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// First retry delay after a temporary SMSC error; doubles per attempt up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One SMSC as dispatch sees it.
pub struct SmscLink {
    pub name: Arc<str>,
    /// The sessions; taken out (set to `None`) when they are stopped.
    handle: Mutex<Option<SmscHandle>>,
    jobs: mpsc::Sender<Job>,
    bucket: Option<DefaultDirectRateLimiter>,
    breaker: Mutex<Breaker>,
}

/// Failures in a row that open an SMSC's circuit.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open circuit waits before a probe; doubles while probes fail.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(2);
const BREAKER_MAX_COOLDOWN: Duration = Duration::from_secs(60);
/// How long a probe may go without an outcome before another may go (see [`breaker`]).
const BREAKER_PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl SmscLink {
    /// Wraps started sessions with the SMSC's token bucket (its contractual `tps`).
    pub fn new(handle: SmscHandle, tps: Option<u32>) -> SmscLink {
        SmscLink {
            name: Arc::from(handle.name()),
            jobs: handle.jobs(),
            handle: Mutex::new(Some(handle)),
            bucket: tps.and_then(|t| limiter(t, (t / 10).max(1))),
            breaker: Mutex::new(Breaker::new(
                BREAKER_THRESHOLD,
                BREAKER_COOLDOWN,
                BREAKER_MAX_COOLDOWN,
                BREAKER_PROBE_TIMEOUT,
            )),
        }
    }

    /// Whether this SMSC can take a part now: a transmitter is bound and the circuit lets it.
    fn usable(&self, now: Instant) -> bool {
        self.can_transmit() && self.breaker.lock().is_ok_and(|b| b.is_usable(now))
    }

    /// Takes the circuit's permission for one part (the half-open probe slot, if so).
    fn admit(&self, now: Instant) -> bool {
        self.breaker.lock().is_ok_and(|mut b| b.allow(now))
    }

    fn record_success(&self) {
        if self.breaker.lock().is_ok_and(|mut b| b.success()) {
            tracing::info!(smsc = %self.name, "circuit closed: the SMSC accepts again");
        }
    }

    fn record_failure(&self, why: &str) {
        if self
            .breaker
            .lock()
            .is_ok_and(|mut b| b.failure(Instant::now()))
        {
            tracing::warn!(smsc = %self.name, reason = why, "circuit open: sending to the route's next SMSC until a probe succeeds");
        }
    }

    /// Whether the circuit is open (for status output).
    pub fn circuit_open(&self) -> bool {
        self.breaker
            .lock()
            .is_ok_and(|b| !matches!(b.state(), breaker::State::Closed))
    }

    /// Whether a transmitting bind is up.
    pub fn can_transmit(&self) -> bool {
        self.handle
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(SmscHandle::can_transmit))
            .unwrap_or(false)
    }

    /// A snapshot of every bind (empty once stopped).
    pub fn status(&self) -> Vec<crate::session::BindStatus> {
        self.handle
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(SmscHandle::status))
            .unwrap_or_default()
    }

    /// Jobs waiting in the channel while no transmitter is bound (see
    /// [`SmscHandle::reclaim_queued`]).
    fn reclaim_queued(&self) -> Vec<Job> {
        if self.can_transmit() {
            return Vec::new();
        }
        self.handle
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(SmscHandle::reclaim_queued))
            .unwrap_or_default()
    }

    /// Takes the sessions out for a graceful stop.
    pub fn take_handle(&self) -> Option<SmscHandle> {
        self.handle.lock().ok()?.take()
    }
}

/// A part handed to a session, waiting for its outcome.
#[derive(Debug, Clone)]
struct InFlight {
    part: PartRef,
    route: Arc<str>,
    smsc: Arc<str>,
    /// Attempts including this one (from the store).
    attempts: u32,
    /// The SMSC a reroute moved this part away from (not a failover target either).
    rerouted_from: Option<Arc<str>>,
    /// The message's validity (ms since the epoch), for the side state's release.
    valid_until: Option<i64>,
}

/// State shared by the route tasks, the event consumer and the API.
pub struct Dispatch {
    store: Store,
    /// Per (route, smsc): parts answered ESME_ROK, and accept → submit latency.
    submit_metrics: m::Handles<(Arc<str>, Arc<str>), (metrics::Counter, metrics::Histogram)>,
    /// Acknowledgements, retries and failures on their way into the store (watched, retried).
    results: results::Results,
    config: watch::Receiver<Arc<Config>>,
    smscs: RwLock<HashMap<String, Arc<SmscLink>>>,
    routes: Mutex<HashMap<String, Arc<RouteState>>>,
    in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Refusals, affinity and re-split marks (see [`parts`]); released by `finish` when a
    /// message is done, by whatever road.
    side: Arc<parts::SideState>,
    next_key: AtomicU64,
    routes_stop: Mutex<CancellationToken>,
    route_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Acknowledged submits per second, per SMSC and per route (for `smppd status`); keyed by
    /// configured names only, so bounded by the configuration.
    smsc_rates: Mutex<HashMap<Arc<str>, rate::RateMeter>>,
    route_rates: Mutex<HashMap<Arc<str>, rate::RateMeter>>,
}

/// How long sessions retired by a reload may drain their windows.
const RETIRE_DRAIN: Duration = Duration::from_secs(10);

/// Per-route pacing and wake-up.
pub struct RouteState {
    pub name: Arc<str>,
    bucket: Option<DefaultDirectRateLimiter>,
    wake: Notify,
}

fn limiter(tps: u32, burst: u32) -> Option<DefaultDirectRateLimiter> {
    let rate = NonZeroU32::new(tps)?;
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Some(RateLimiter::direct(
        Quota::per_second(rate).allow_burst(burst),
    ))
}

impl Dispatch {
    /// Builds the dispatch state for the given SMSC links (already started).
    pub fn new(
        store: Store,
        config: watch::Receiver<Arc<Config>>,
        smscs: Vec<SmscLink>,
    ) -> Arc<Dispatch> {
        let cfg = config.borrow().clone();
        let routes = cfg
            .routes
            .iter()
            .map(|r| (r.name.clone(), Arc::new(RouteState::new(r))))
            .collect();
        let side = Arc::new(parts::SideState::new());
        Arc::new(Dispatch {
            submit_metrics: m::Handles::new(),
            results: results::Results::start(store.clone(), side.clone()),
            side,
            store,
            config,
            smscs: RwLock::new(
                smscs
                    .into_iter()
                    .map(|s| (s.name.to_string(), Arc::new(s)))
                    .collect(),
            ),
            routes: Mutex::new(routes),
            in_flight: Mutex::new(HashMap::new()),
            next_key: AtomicU64::new(1),
            routes_stop: Mutex::new(CancellationToken::new()),
            route_tasks: Mutex::new(Vec::new()),
            smsc_rates: Mutex::new(HashMap::new()),
            route_rates: Mutex::new(HashMap::new()),
        })
    }

    /// The SMSC links, for status output.
    pub fn smscs(&self) -> Vec<Arc<SmscLink>> {
        let mut v: Vec<Arc<SmscLink>> = self
            .smscs
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn link(&self, name: &str) -> Option<Arc<SmscLink>> {
        self.smscs.read().ok()?.get(name).cloned()
    }

    /// Acknowledged submits per second to the SMSC over the last few seconds.
    pub fn smsc_rate(&self, smsc: &str) -> f64 {
        let sec = (now_ms() / 1000) as u64;
        self.smsc_rates
            .lock()
            .ok()
            .and_then(|m| m.get(smsc).map(|r| r.per_second(sec)))
            .unwrap_or(0.0)
    }

    /// Acknowledged submits per second on the route over the last few seconds.
    pub fn route_rate(&self, route: &str) -> f64 {
        let sec = (now_ms() / 1000) as u64;
        self.route_rates
            .lock()
            .ok()
            .and_then(|m| m.get(route).map(|r| r.per_second(sec)))
            .unwrap_or(0.0)
    }

    fn count_submit(&self, route: &Arc<str>, smsc: &Arc<str>) {
        let sec = (now_ms() / 1000) as u64;
        if let Ok(mut m) = self.smsc_rates.lock() {
            m.entry(smsc.clone()).or_default().record(sec, 1);
        }
        if let Ok(mut m) = self.route_rates.lock() {
            m.entry(route.clone()).or_default().record(sec, 1);
        }
    }

    /// Parts handed to sessions and not yet answered.
    pub fn in_flight(&self) -> usize {
        self.in_flight.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Entries of the per-part side state (for the gauge); messages past their validity are
    /// released first (see [`parts`]).
    pub fn side_state(&self) -> SideSizes {
        self.side.sweep(now_ms());
        self.side.sizes()
    }

    /// A message none of whose parts will be sent again (the store reported it final, e.g.
    /// expired by a sweep): its side state goes.
    pub fn finish(&self, id: MessageId) {
        self.side.finish(id);
    }

    /// Waits until every result write handed to the store so far is durable, was refused for
    /// good, or `deadline` passed (at a stop, before the store closes). Returns false on the
    /// deadline.
    pub async fn flush_results(&self, deadline: Duration) -> bool {
        self.results.flush(deadline).await
    }

    /// Wakes a route's task: a message was just accepted for it.
    pub fn wake(&self, route: &str) {
        if let Some(r) = self.route_state(route) {
            r.wake.notify_one();
        }
    }

    fn route_state(&self, route: &str) -> Option<Arc<RouteState>> {
        self.routes.lock().ok()?.get(route).cloned()
    }

    /// Starts one task per configured route. Each runs until `stop` is cancelled.
    pub fn spawn_routes(self: &Arc<Self>, stop: CancellationToken) {
        if let Ok(mut s) = self.routes_stop.lock() {
            *s = stop;
        }
        let names: Vec<String> = self
            .routes
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for name in names {
            self.spawn_route(name);
        }
    }

    fn spawn_route(self: &Arc<Self>, name: String) {
        let stop = self
            .routes_stop
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let me = self.clone();
        if let Ok(mut tasks) = self.route_tasks.lock() {
            tasks.push(tokio::spawn(async move { me.route_task(name, stop).await }));
        }
    }

    /// Waits for every route task (after their stop token was cancelled).
    pub async fn join_routes(&self) {
        let tasks: Vec<_> = self
            .route_tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
    }

    /// Applies a new, validated configuration: SMSCs whose connection settings changed are
    /// re-bound (the old sessions drain in the background and hand back what they held), new
    /// ones start, removed ones stop; unchanged binds are not touched. Routes, rates and
    /// failover lists apply at once. Returns what changed, for the log and the client.
    pub fn apply(
        self: &Arc<Self>,
        new: Config,
        channels: &Channels,
        config_tx: &watch::Sender<Arc<Config>>,
    ) -> Result<String, crate::session::StartError> {
        let old = self.config.borrow().clone();
        // Start every new session first, so that a failure changes nothing.
        let mut started: Vec<(String, SmscHandle)> = Vec::new();
        for smsc in &new.smscs {
            let unchanged = old
                .smsc(&smsc.name)
                .is_some_and(|o| !o.connection_settings_differ(smsc));
            if !unchanged {
                let capacity = (smsc.window as usize * usize::from(smsc.binds)).max(16);
                match SmscHandle::start_with(smsc.session_config(), capacity, channels.clone()) {
                    Ok(h) => started.push((smsc.name.clone(), h)),
                    Err(e) => {
                        for (_, h) in started {
                            tokio::spawn(h.stop(Duration::ZERO));
                        }
                        return Err(e);
                    }
                }
            }
        }
        let mut changes = Vec::new();
        let mut retired: Vec<SmscHandle> = Vec::new();
        if let Ok(mut links) = self.smscs.write() {
            for smsc in &new.smscs {
                if let Some(i) = started.iter().position(|(n, _)| *n == smsc.name) {
                    let (_, h) = started.swap_remove(i);
                    let link = Arc::new(SmscLink::new(h, smsc.tps));
                    match links.insert(smsc.name.clone(), link) {
                        Some(old_link) => {
                            changes.push(format!("smsc {} re-bound", smsc.name));
                            retired.extend(old_link.take_handle());
                        }
                        None => changes.push(format!("smsc {} added", smsc.name)),
                    }
                } else if old.smsc(&smsc.name).is_some_and(|o| o.tps != smsc.tps)
                    && let Some(old_link) = links.get(&smsc.name).cloned()
                    && let Some(h) = old_link.take_handle()
                {
                    // Same sessions, new contractual rate.
                    links.insert(smsc.name.clone(), Arc::new(SmscLink::new(h, smsc.tps)));
                    changes.push(format!("smsc {} tps {:?}", smsc.name, smsc.tps));
                }
            }
            let gone: Vec<String> = links
                .keys()
                .filter(|n| new.smsc(n).is_none())
                .cloned()
                .collect();
            for name in gone {
                if let Some(l) = links.remove(&name) {
                    retired.extend(l.take_handle());
                    changes.push(format!("smsc {name} removed"));
                }
            }
        }
        for h in retired {
            tokio::spawn(h.stop(RETIRE_DRAIN));
        }
        let mut new_routes = Vec::new();
        if let Ok(mut routes) = self.routes.lock() {
            for r in &new.routes {
                let same = old
                    .routes
                    .iter()
                    .any(|o| o.name == r.name && o.tps == r.tps && o.burst == r.burst);
                if !same {
                    if !routes.contains_key(&r.name) {
                        new_routes.push(r.name.clone());
                    }
                    routes.insert(r.name.clone(), Arc::new(RouteState::new(r)));
                    changes.push(format!("route {} updated", r.name));
                }
            }
            routes.retain(|name, _| new.routes.iter().any(|r| &r.name == name));
        }
        for r in &old.routes {
            if !new.routes.iter().any(|n| n.name == r.name) {
                changes.push(format!("route {} removed", r.name));
            }
        }
        let _ = config_tx.send(Arc::new(new));
        for name in new_routes {
            self.spawn_route(name);
        }
        // Wake every route: rates or SMSC lists may have changed.
        let all: Vec<Arc<RouteState>> = self
            .routes
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        for r in all {
            r.wake.notify_one();
        }
        Ok(if changes.is_empty() {
            "no changes".to_owned()
        } else {
            changes.join(", ")
        })
    }

    async fn route_task(self: Arc<Self>, name: String, stop: CancellationToken) {
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
            if !route.smsc.iter().any(|s| self.can_transmit(s)) {
                self.idle(&state, &stop).await;
                continue;
            }
            let batch = route
                .tps
                .map_or(CLAIM_BATCH, |t| (t as usize / 10).clamp(1, CLAIM_BATCH));
            let parts = match self.store.backend().claim(&name, batch, now_ms()).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(route = %name, error = %e, "cannot claim parts from the store");
                    self.idle(&state, &stop).await;
                    continue;
                }
            };
            if parts.is_empty() {
                self.idle(&state, &stop).await;
                continue;
            }
            for (i, part) in parts.iter().enumerate() {
                if stop.is_cancelled() {
                    // Not sent: back to the queue, untouched by any SMSC.
                    self.requeue_unsent(&parts[i..]);
                    return;
                }
                self.send(&state, &route, part).await;
            }
            self.resplit_waiting().await;
        }
    }

    /// Whether `part` must be re-split before it can go through `link`: a multipart message
    /// rendered for another split method (UDH 8/16, SAR, payload) than the one this SMSC takes.
    /// Parts of a message whose re-split was refused go as they are.
    fn needs_resplit(&self, link: &SmscLink, part: &QueuedPart) -> bool {
        let cfg = self.config.borrow().clone();
        let Some(smsc) = cfg.smsc(&link.name) else {
            return false;
        };
        let differs = part.split != smsc.split.name()
            && (part.total > 1 || smsc.split == crate::text::SplitMethod::Payload);
        differs && !self.side.resplit_refused(&part.part.message)
    }

    /// Re-splits the messages set aside by `send` for the SMSC they now go to, from their
    /// stored text. A message that cannot be re-split (a part already acknowledged, text
    /// dropped, too long for that SMSC) is sent as it is rendered.
    async fn resplit_waiting(&self) {
        let waiting = self.side.take_resplits();
        for (id, smsc_name) in waiting {
            let outcome = self.resplit_one(id, &smsc_name).await;
            match outcome {
                Ok(parts) => {
                    tracing::info!(message = %id, smsc = %smsc_name, parts, "re-split for the failover SMSC")
                }
                Err(why) => {
                    tracing::info!(message = %id, smsc = %smsc_name, reason = %why, "not re-split; sending as rendered");
                    self.side.refuse_resplit(id);
                }
            }
        }
    }

    async fn resplit_one(&self, id: MessageId, smsc_name: &str) -> Result<usize, String> {
        let cfg = self.config.borrow().clone();
        let smsc = cfg.smsc(smsc_name).ok_or("the SMSC is gone")?;
        let view = self
            .store
            .backend()
            .message(id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the message is gone")?;
        let text = view.text.ok_or("its text was dropped")?;
        let opts: serde_json::Value = serde_json::from_str(&view.options).unwrap_or_default();
        let mut languages = crate::text::LanguageSet::EMPTY;
        for l in &smsc.shift_tables {
            languages.insert(*l);
        }
        let encoding = opts["encoding"]
            .as_str()
            .and_then(|e| e.parse().ok())
            .unwrap_or_default();
        let options = crate::text::EncodeOptions {
            languages,
            encoding,
            smart: opts["smart"].as_bool().unwrap_or(false),
            split: smsc.split,
            max_parts: smsc.max_parts,
            packed: smsc.gsm_packed,
        };
        // A fresh reference: the message id's low bits rotate with every message.
        let reference = (id.0 & 0xFFFF) as u16;
        let encoded = crate::text::encode(&text, &options, reference).map_err(|e| e.to_string())?;
        let plan = *encoded.plan();
        let esm_class = if plan.udhi { 0x40 } else { 0 };
        let parts: Vec<crate::store::NewPart> = encoded
            .segments()
            .map(|seg| crate::store::NewPart {
                data_coding: plan.data_coding,
                esm_class,
                segment: seg.short_message().to_vec(),
                sar_ref: seg.sar.map(|x| x.msg_ref_num),
            })
            .collect();
        let n = parts.len();
        self.store
            .backend()
            .resplit(id, smsc.split.name().to_owned(), parts)
            .await
            .map_err(|e| e.to_string())?;
        Ok(n)
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

    fn requeue_unsent(&self, parts: &[QueuedPart]) {
        for p in parts {
            drop(self.requeue_unsent_part(p.part));
        }
    }

    /// Puts a part that never reached an SMSC back in the queue. The returned task may be
    /// awaited (to order later store writes after it) or dropped (the write goes on, retried
    /// while the store refuses it: see [`results`]).
    fn requeue_unsent_part(&self, part: PartRef) -> results::Recorded {
        self.results.failure(Failure {
            part,
            smsc: None,
            status: None,
            disposition: Disposition::Requeue { maybe_sent: false },
            now_ms: now_ms(),
        })
    }

    /// SMSCs this part must not go to: those that refused it with a failover status and, for a
    /// part resent after an UNDELIV/REJECTD receipt, the SMSC whose receipt failed it.
    fn excluded(&self, part: &QueuedPart) -> Vec<Arc<str>> {
        let mut out = self.side.refused(&part.part);
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

    async fn send(&self, state: &RouteState, route: &Route, part: &QueuedPart) {
        let Some(link) = self.choose(route, part) else {
            // Nothing can take it now (binds down, or every SMSC refused it). If every SMSC of
            // the route is excluded for this part, it has failed for good.
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
        if let Some(b) = &state.bucket {
            b.until_ready().await;
        }
        if let Some(b) = &link.bucket {
            b.until_ready().await;
        }
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
                return;
            }
        };
        let key = self.next_key.fetch_add(1, Ordering::Relaxed);
        if part.total > 1 {
            self.side
                .follow(part.part.message, link.name.clone(), part.valid_until_ms);
        }
        if let Ok(mut f) = self.in_flight.lock() {
            f.insert(
                key,
                InFlight {
                    part: part.part,
                    route: state.name.clone(),
                    smsc: link.name.clone(),
                    attempts: part.attempts,
                    rerouted_from: part.rerouted_from.as_deref().map(Arc::from),
                    valid_until: part.valid_until_ms,
                },
            );
        }
        let job = Job {
            key,
            body: JobBody::SubmitSm(body),
            validity: self.validity(&link.name, part.valid_until_ms),
        };
        if let Err(e) = link.jobs.send(job).await {
            // The SMSC's sessions are gone (stopping): back to the queue.
            self.in_flight.lock().ok().map(|mut f| f.remove(&e.0.key));
            drop(self.requeue_unsent_part(part.part));
        }
    }

    /// Consumes session events until the channel closes. Inbound PDUs have their own channel
    /// (see [`Channels`]) and never come here.
    pub async fn consume_events(self: Arc<Self>, mut events: mpsc::Receiver<Event>) {
        while let Some(ev) = events.recv().await {
            match ev {
                Event::Submitted {
                    key,
                    message_id,
                    bind,
                } => {
                    let Some(f) = self.take(key) else { continue };
                    if let Some(l) = self.link(&f.smsc) {
                        l.record_success();
                    }
                    let rule = self
                        .config
                        .borrow()
                        .smsc(&bind.smsc)
                        .map(|s| s.receipt_id)
                        .unwrap_or_default();
                    let (submitted, to_submit) = self.submit_metrics.get(
                        &(f.route.clone(), f.smsc.clone()),
                        |(route, smsc)| {
                            (
                                metrics::counter!(m::PARTS_SUBMITTED, m::label::ROUTE => route.to_string(), m::label::SMSC => smsc.to_string(), m::label::STATUS => "ESME_ROK"),
                                metrics::histogram!(m::ACCEPT_TO_SUBMIT_SECONDS, m::label::ROUTE => route.to_string()),
                            )
                        },
                    );
                    submitted.increment(1);
                    self.count_submit(&f.route, &f.smsc);
                    to_submit.record(((now_ms() - f.part.message.millis()).max(0) as f64) / 1000.0);
                    // The message's side state goes once the store says no part is pending
                    // (in `results`), whatever order its parts were acknowledged in.
                    self.side.part_done(&f.part);
                    // A receipt that came before this response is applied now; on a route that
                    // reroutes it may send the part back to the queue, so the answer is looked
                    // at (off this loop) to log and count that.
                    let reroute = self.reroute_rule(&f.route);
                    let me = self.clone();
                    self.results.ack(
                        Ack {
                            part: f.part,
                            smsc: f.smsc.to_string(),
                            smsc_id: message_id,
                            rule,
                            now_ms: now_ms(),
                            reroute,
                        },
                        move |done| {
                            if let AckResult {
                                rerouted: Some(r), ..
                            } = done
                            {
                                me.rerouted(&r);
                            }
                        },
                    );
                }
                Event::Failed { key, status, .. } => {
                    let Some(f) = self.take(key) else { continue };
                    let name = status.to_string();
                    metrics::counter!(m::PARTS_SUBMITTED, m::label::ROUTE => f.route.to_string(), m::label::SMSC => f.smsc.to_string(), m::label::STATUS => name.clone()).increment(1);
                    let cfg = self.config.borrow().clone();
                    let fails_over = cfg
                        .smsc(&f.smsc)
                        .is_some_and(|s| s.failover_statuses.contains(&status.0));
                    let next = cfg
                        .routes
                        .iter()
                        .find(|r| *r.name == *f.route)
                        .and_then(|r| {
                            let refused = self.side.refused(&f.part);
                            r.smsc
                                .iter()
                                .find(|s| {
                                    s.as_str() != &*f.smsc
                                        && f.rerouted_from.as_deref() != Some(s.as_str())
                                        && !refused.iter().any(|x| &**x == s.as_str())
                                })
                                .cloned()
                        });
                    let disposition = match (&next, fails_over) {
                        (Some(to), true) => {
                            tracing::warn!(message = %f.part.message, part = f.part.n, from = %f.smsc, %to, status = %name, "failover: part refused, trying the next SMSC");
                            metrics::counter!(m::FAILOVERS, m::label::ROUTE => f.route.to_string(), m::label::FROM => f.smsc.to_string(), m::label::TO => to.clone()).increment(1);
                            self.side.refuse(f.part, f.smsc.clone(), f.valid_until);
                            Disposition::Requeue { maybe_sent: false }
                        }
                        _ => Disposition::Permanent,
                    };
                    if matches!(disposition, Disposition::Permanent) {
                        self.side.part_done(&f.part);
                    }
                    drop(self.results.failure(Failure {
                        part: f.part,
                        smsc: Some(f.smsc.to_string()),
                        status: Some(status.0),
                        disposition,
                        now_ms: now_ms(),
                    }));
                    self.wake(&f.route);
                }
                Event::Expired { key, .. } => {
                    // Its validity ended while it waited for the bind: it was never written.
                    let Some(f) = self.take(key) else { continue };
                    drop(self.results.failure(Failure {
                        part: f.part,
                        smsc: None,
                        status: None,
                        disposition: Disposition::Expired,
                        now_ms: now_ms(),
                    }));
                }
                Event::Retry { job, reason, .. } => {
                    let Some(f) = self.take(job.key) else {
                        continue;
                    };
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
                Event::Inbound { bind, .. } => {
                    // A wiring mistake: dropping the reply makes the session answer
                    // ESME_RX_T_APPN, so the SMSC redelivers rather than loses it.
                    tracing::error!(smsc = %bind.smsc, "inbound PDU on the events channel; not answered");
                }
                Event::BindState { bind, state } => {
                    let up = matches!(state, crate::session::BindState::Bound);
                    metrics::gauge!(m::BIND_UP, m::label::SMSC => bind.smsc.to_string(), m::label::BIND => bind.to_string())
                        .set(if up { 1.0 } else { 0.0 });
                    tracing::debug!(smsc = %bind.smsc, bind = %bind, state = ?state, "bind state");
                    if !up {
                        self.reclaim_stranded();
                    }
                    if up {
                        // A bind came up: routes waiting for a transmitter can go.
                        let names: Vec<Arc<RouteState>> = self
                            .routes
                            .lock()
                            .map(|m| m.values().cloned().collect())
                            .unwrap_or_default();
                        for r in names {
                            r.wake.notify_one();
                        }
                    }
                }
            }
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

    fn take(&self, key: u64) -> Option<InFlight> {
        self.in_flight.lock().ok()?.remove(&key)
    }
}

impl RouteState {
    fn new(route: &Route) -> RouteState {
        RouteState {
            name: Arc::from(route.name.as_str()),
            bucket: route.tps.and_then(|t| limiter(t, route.burst)),
            wake: Notify::new(),
        }
    }
}

/// Delay before retrying after a temporary error: RETRY_MIN, doubling per attempt, at most
/// RETRY_MAX.
fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (RETRY_MIN * 2u32.pow(doublings)).min(RETRY_MAX)
}

/// Builds the `submit_sm` for a stored part.
pub fn submit_sm(part: &QueuedPart) -> Result<SubmitSm, String> {
    let sender = Sender::parse(&part.from).map_err(|e| format!("sender {:?}: {e}", part.from))?;
    let (ton, npi) = sender.ton_npi();
    let source =
        Address::new(Ton(ton), Npi(npi), sender.addr()).map_err(|e| format!("source_addr: {e}"))?;
    let to = Msisdn::parse(&part.to).map_err(|e| format!("destination {:?}: {e}", part.to))?;
    let dest = Address::new(Ton::INTERNATIONAL, Npi::ISDN, to.digits())
        .map_err(|e| format!("destination_addr: {e}"))?;
    let mut sm = SubmitSm {
        source_addr: source,
        dest_addr: dest,
        esm_class: EsmClass(part.esm_class),
        priority_flag: part.priority.min(3),
        registered_delivery: if part.dlr {
            RegisteredDelivery::RECEIPT
        } else {
            RegisteredDelivery(0)
        },
        data_coding: DataCoding(part.data_coding),
        ..SubmitSm::default()
    };
    let bytes = Bytes::copy_from_slice(&part.segment);
    if part.split == "payload" || bytes.len() > 254 {
        sm.tlvs.push(Tlv::MessagePayload(
            OctetString::new(bytes).map_err(|e| format!("message_payload: {e}"))?,
        ));
    } else {
        sm.short_message = OctetString::new(bytes).map_err(|e| format!("short_message: {e}"))?;
    }
    if let Some(r) = part.sar_ref
        && part.total > 1
    {
        sm.tlvs.push(Tlv::SarMsgRefNum(r));
        sm.tlvs.push(Tlv::SarTotalSegments(part.total));
        sm.tlvs.push(Tlv::SarSegmentSeqnum(part.part.n));
    }
    Ok(sm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_doubles_up_to_the_cap() {
        assert_eq!(retry_delay(1), Duration::from_secs(1));
        assert_eq!(retry_delay(2), Duration::from_secs(2));
        assert_eq!(retry_delay(4), Duration::from_secs(8));
        assert_eq!(retry_delay(30), RETRY_MAX);
        assert_eq!(retry_delay(0), Duration::from_secs(1));
    }
}
