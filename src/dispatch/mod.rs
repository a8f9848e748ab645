//! Dispatch: from the durable queue to the SMSCs, and session results back into the store.
//!
//! The flow, one module per step:
//! - [`routes`]: one task per route claims ready parts from the store (priority, then age),
//!   paces them through the route's and the chosen SMSC's token buckets (`governor`, GCRA:
//!   smooth, not once-a-second bursts), picks the SMSC (the first of the route's failover list
//!   that has a bound transmitter, a closed circuit and has not refused this part; later parts
//!   of a multipart message follow the first) and hands the `submit_sm` to its sessions;
//! - [`resplit`]: a multipart message moved to an SMSC that splits differently is re-split;
//! - [`outcomes`]: what happens to a part after a bind answered (acknowledged, refused and
//!   failed over, retried, expired, handed back unsent);
//! - [`results`]: the keeper of the result writes, which releases a message's side state once
//!   the store says nothing of it is pending;
//! - [`parts`]: the one owner of the per-part side state (refusals, affinity, re-split marks);
//! - [`link`] (one SMSC: sessions, bucket, [`breaker`]) and [`reload`] (a new configuration).
//!
//! This module owns the [`Dispatch`] value that ties them: the SMSC links and route states
//! (swapped by a reload), the route tasks (tracked, stopped and joined by
//! [`Dispatch::stop_routes`]), and the acknowledged-rate meters for `smppd status`.
//!
//! Must never hold more than a bounded number of parts in memory (claims are small batches,
//! in-flight parts are bounded by the SMSC windows and job channels), never drop a part (every
//! claimed part either reaches an SMSC and is acknowledged, or goes back to the store), never
//! see an inbound PDU, and never skip work on a poisoned lock (see [`locks`]).

pub mod breaker;
mod link;
pub(crate) mod locks;
mod outcomes;
mod owners;
mod parts;
pub mod rate;
mod reload;
mod resplit;
mod results;
mod routes;

pub use link::SmscLink;
pub use parts::SideSizes;

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::address::{Msisdn, Sender};
use crate::config::{Config, Route};
use crate::metrics as m;
use crate::pdu::{
    Address, DataCoding, EsmClass, Npi, OctetString, RegisteredDelivery, SubmitSm, Tlv, Ton,
};
use crate::session::{Channels, SmscHandle, StartError};
use crate::store::{MessageId, QueuedPart, Store};
use locks::{lock, read};
use outcomes::InFlight;

/// Parts claimed from the store at once per route (fewer when the route is rate-limited).
const CLAIM_BATCH: usize = 256;
/// How long an idle route waits before looking at the store again (retries become due, parts
/// accepted by another path); new accepts wake it at once.
const IDLE_POLL: Duration = Duration::from_millis(100);
/// First retry delay after a temporary SMSC error; doubles per attempt up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
const RETRY_MAX: Duration = Duration::from_secs(300);

/// Milliseconds since the Unix epoch, on the daemon's clock ([`crate::clock`]).
pub fn now_ms() -> i64 {
    crate::clock::now_ms()
}

/// Starts the sessions of one configured SMSC, their job channel sized to its windows.
pub fn start_sessions(
    smsc: &crate::config::Smsc,
    channels: &Channels,
) -> Result<SmscHandle, StartError> {
    let capacity = (smsc.window as usize * usize::from(smsc.binds)).max(16);
    SmscHandle::start_with(smsc.session_config(), capacity, channels.clone())
}

/// State shared by the route tasks, the event consumer and the API.
pub struct Dispatch {
    store: Store,
    /// Per (route, smsc): parts answered ESME_ROK, and accept → submit latency.
    submit_metrics: m::Handles<(Arc<str>, Arc<str>), (metrics::Counter, metrics::Histogram)>,
    /// Acknowledgements, retries and failures on their way into the store (watched, retried).
    results: results::Results,
    config: watch::Receiver<Arc<Config>>,
    /// Read by every route task per part, written only by a reload.
    smscs: RwLock<HashMap<String, Arc<SmscLink>>>,
    routes: Mutex<HashMap<String, Arc<RouteState>>>,
    /// Parts handed to sessions and not yet answered (see [`outcomes`]): inserted by route
    /// tasks, taken by the event consumer, so shared behind a lock.
    in_flight: Mutex<HashMap<u64, InFlight>>,
    /// Refusals, affinity and re-split marks (see [`parts`]); released by `finish` when a
    /// message is done, by whatever road.
    side: Arc<parts::SideState>,
    next_key: AtomicU64,
    /// Stops the route tasks; they are spawned on (and joined through) `route_tasks`.
    routes_stop: CancellationToken,
    route_tasks: TaskTracker,
    /// Sessions retired by a reload, draining (see [`reload`]).
    retiring: TaskTracker,
    /// Acknowledged submits per second, per SMSC and per route (for `smppd status`); keyed by
    /// configured names only, so bounded by the configuration.
    smsc_rates: Mutex<HashMap<Arc<str>, rate::RateMeter>>,
    route_rates: Mutex<HashMap<Arc<str>, rate::RateMeter>>,
    /// Cluster mode: the SMSCs this instance owns (name → lease epoch); `None` on a single
    /// node, which owns every SMSC (see [`owners`]).
    owned: RwLock<Option<std::collections::BTreeMap<String, i64>>>,
    /// Cluster mode: the lease task's picture of the cluster.
    cluster_view: RwLock<Option<Arc<RwLock<crate::cluster::View>>>>,
    /// Cluster mode: the routes' shared rate budgets.
    route_budget: RwLock<Option<Arc<crate::cluster::budget::RouteBudget>>>,
}

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

/// Waits until `bucket` grants a token, on tokio's timer. (governor's own `until_ready` sleeps
/// on `futures-timer`, whose thread then wakes a runtime worker: two thread wake-ups per paced
/// part instead of one.)
async fn until_ready(bucket: &DefaultDirectRateLimiter) {
    use governor::clock::Clock;
    while let Err(not_until) = bucket.check() {
        tokio::time::sleep(not_until.wait_time_from(bucket.clock().now())).await;
    }
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
            routes_stop: CancellationToken::new(),
            route_tasks: TaskTracker::new(),
            retiring: TaskTracker::new(),
            smsc_rates: Mutex::new(HashMap::new()),
            route_rates: Mutex::new(HashMap::new()),
            owned: RwLock::new(None),
            cluster_view: RwLock::new(None),
            route_budget: RwLock::new(None),
        })
    }

    /// The SMSC links, for status output.
    pub fn smscs(&self) -> Vec<Arc<SmscLink>> {
        let mut v: Vec<Arc<SmscLink>> = read(&self.smscs, "smsc links").values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    fn link(&self, name: &str) -> Option<Arc<SmscLink>> {
        read(&self.smscs, "smsc links").get(name).cloned()
    }

    /// Acknowledged submits per second to the SMSC over the last few seconds.
    pub fn smsc_rate(&self, smsc: &str) -> f64 {
        let sec = (now_ms() / 1000) as u64;
        lock(&self.smsc_rates, "smsc rates")
            .get(smsc)
            .map_or(0.0, |r| r.per_second(sec))
    }

    /// Acknowledged submits per second on the route over the last few seconds.
    pub fn route_rate(&self, route: &str) -> f64 {
        let sec = (now_ms() / 1000) as u64;
        lock(&self.route_rates, "route rates")
            .get(route)
            .map_or(0.0, |r| r.per_second(sec))
    }

    fn count_submit(&self, route: &Arc<str>, smsc: &Arc<str>) {
        let sec = (now_ms() / 1000) as u64;
        lock(&self.smsc_rates, "smsc rates")
            .entry(smsc.clone())
            .or_default()
            .record(sec, 1);
        lock(&self.route_rates, "route rates")
            .entry(route.clone())
            .or_default()
            .record(sec, 1);
    }

    /// Parts handed to sessions and not yet answered.
    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight, "in flight").len()
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

    /// Wakes every route's task (a bind came up, a reload changed rates or SMSC lists).
    fn wake_all(&self) {
        let all: Vec<Arc<RouteState>> = lock(&self.routes, "routes").values().cloned().collect();
        for r in all {
            r.wake.notify_one();
        }
    }

    fn route_state(&self, route: &str) -> Option<Arc<RouteState>> {
        lock(&self.routes, "routes").get(route).cloned()
    }

    /// Starts one task per configured route. Each runs until [`Self::stop_routes`].
    pub fn spawn_routes(self: &Arc<Self>) {
        let names: Vec<String> = lock(&self.routes, "routes").keys().cloned().collect();
        for name in names {
            self.spawn_route(name);
        }
    }

    fn spawn_route(self: &Arc<Self>, name: String) {
        let stop = self.routes_stop.clone();
        let me = self.clone();
        self.route_tasks
            .spawn(async move { me.route_task(name, stop).await });
    }

    /// Stops every route task and waits for them: they claim no more, and what they hold unsent
    /// goes back to the queue.
    pub async fn stop_routes(&self) {
        self.routes_stop.cancel();
        self.route_tasks.close();
        self.route_tasks.wait().await;
    }

    /// Waits until the sessions retired by reloads have drained and handed back what they
    /// held (at a stop, with the live sessions).
    pub async fn wait_retired(&self) {
        self.retiring.close();
        self.retiring.wait().await;
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
