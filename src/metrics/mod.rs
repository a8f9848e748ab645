//! Metric names, their descriptions and labels: the contract with dashboards and alerts.
//!
//! Owns: every metric name as a documented constant (so a rename is a visible change), its kind,
//! unit and description in one table (`DESCRIPTIONS`), the one-time `describe` call, and the
//! label keys. Must never label by phone number, message id or any other unbounded value: labels
//! are route, smsc, bind, status, stat, code, from, to, state, map, reason.

pub mod http;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Histogram buckets (seconds) for latencies, from a millisecond to an hour: wide enough for
/// store commits and for receipts that take minutes.
const SECONDS_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Installs the Prometheus recorder as the process's metrics recorder and describes every
/// metric. Returns the handle that renders the text format. Call once per process.
pub fn install() -> Result<PrometheusHandle, metrics_exporter_prometheus::BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(STORE_BATCH_SIZE.into()),
            &[
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0,
            ],
        )?
        .install_recorder()?;
    describe();
    Ok(handle)
}

/// Metric handles by label values, for the per-message paths: the key (name and labels, with
/// their strings) is built, hashed and looked up in the recorder's registry once per label set
/// instead of at every increment. Keys are configuration names and status words, so the map is
/// as small as the configuration. Create it after the recorder is installed (handles taken
/// before that are no-ops for good).
pub struct Handles<K, H> {
    map: std::sync::Mutex<std::collections::HashMap<K, H>>,
}

impl<K: Eq + std::hash::Hash + Clone, H: Clone> Handles<K, H> {
    /// An empty cache.
    pub fn new() -> Handles<K, H> {
        Handles {
            map: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The handle for `key`, made by `make` the first time.
    pub fn get(&self, key: &K, make: impl FnOnce(&K) -> H) -> H {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(key) {
            return h.clone();
        }
        let h = make(key);
        map.insert(key.clone(), h.clone());
        h
    }

    /// Like [`Handles::get`], looked up by a borrowed form of the key (a `&str` for a
    /// `String` key: no allocation once the handle exists).
    pub fn get_by<Q>(&self, key: &Q, make: impl FnOnce(&Q) -> H) -> H
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + std::hash::Hash + ToOwned<Owned = K> + ?Sized,
    {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = map.get(key) {
            return h.clone();
        }
        let h = make(key);
        map.insert(key.to_owned(), h.clone());
        h
    }
}

impl<K: Eq + std::hash::Hash + Clone, H: Clone> Default for Handles<K, H> {
    fn default() -> Self {
        Handles::new()
    }
}

/// Label keys.
pub mod label {
    pub const ROUTE: &str = "route";
    pub const SMSC: &str = "smsc";
    pub const BIND: &str = "bind";
    /// An SMPP command_status name, e.g. `ESME_ROK`, `ESME_RTHROTTLED`.
    pub const STATUS: &str = "status";
    /// A receipt's stat, e.g. `DELIVRD`, `UNDELIV`.
    pub const STAT: &str = "stat";
    /// A submit-protocol error code, e.g. `invalid_destination`.
    pub const CODE: &str = "code";
    pub const FROM: &str = "from";
    pub const TO: &str = "to";
    pub const STATE: &str = "state";
    /// Which of dispatch's side-state maps: `refused`, `affinity`, `resplit`, `no_resplit`.
    pub const MAP: &str = "map";
    /// Why a receipt matched no part (`unknown_id`: no part has its id, yet; `no_id`: it carries
    /// no message id at all), or why a concatenated MO was given up (`expired`, `evicted`,
    /// `superseded`).
    pub const REASON: &str = "reason";
}

/// Messages accepted (durably stored) through the submit protocol. Labels: route.
pub const MESSAGES_ACCEPTED: &str = "smppd_messages_accepted_total";
/// Messages accepted held until a later instant (a send window, `send_at`). Labels: route.
pub const MESSAGES_HELD: &str = "smppd_messages_held_total";
/// Submits refused. Labels: code.
pub const MESSAGES_REJECTED: &str = "smppd_messages_rejected_total";
/// Messages reaching a final state through a receipt or the expiry sweeps (`expired`,
/// `no_receipt`). Labels: state.
pub const MESSAGES_FINAL: &str = "smppd_messages_final_total";
/// Parts answered by an SMSC. Labels: route, smsc, status.
pub const PARTS_SUBMITTED: &str = "smppd_parts_submitted_total";
/// Parts whose submit_sm_resp did not come within the response timeout. Labels: smsc.
pub const PARTS_TIMED_OUT: &str = "smppd_parts_timed_out_total";
/// Receipts received. Labels: route, smsc, stat.
pub const RECEIPTS: &str = "smppd_receipts_total";
/// Receipts that matched no sent part (kept in the log, answered ESME_ROK). Labels: smsc, reason
/// (`unknown_id`, `no_id`).
pub const RECEIPTS_UNMATCHED: &str = "smppd_receipts_unmatched_total";
/// A part moved from one SMSC to the next of its route. Labels: route, from, to.
pub const FAILOVERS: &str = "smppd_failovers_total";
/// Parts resent through the next SMSC after an UNDELIV/REJECTD receipt. Labels: route, from, to.
pub const REROUTES: &str = "smppd_reroutes_total";
/// ESME_RTHROTTLED / ESME_RMSGQFUL answers. Labels: smsc, status.
pub const THROTTLED: &str = "smppd_throttled_total";
/// 1 while a bind is bound, else 0. Labels: smsc, bind.
pub const BIND_UP: &str = "smppd_bind_up";
/// Requests in flight on a bind. Labels: smsc, bind.
pub const BIND_IN_FLIGHT: &str = "smppd_bind_in_flight";
/// Entries in dispatch's per-part side state (see `dispatch::parts`); every entry belongs to a
/// message still being sent, so it returns to 0 when traffic stops. Labels: map (`refused`:
/// parts with SMSCs that refused them; `affinity`: multipart messages following one SMSC;
/// `resplit`: messages waiting for a re-split; `no_resplit`: messages whose re-split was refused).
pub const DISPATCH_SIDE_STATE: &str = "smppd_dispatch_side_state";
/// Parts waiting to be sent. Labels: route.
pub const QUEUE_DEPTH: &str = "smppd_queue_depth";
/// Parts held until a send window opens or their `send_at` (not in `smppd_queue_depth`).
/// Labels: route.
pub const QUEUE_SCHEDULED: &str = "smppd_queue_scheduled";
/// Age of the oldest waiting part's message. Labels: route.
pub const QUEUE_OLDEST_SECONDS: &str = "smppd_queue_oldest_seconds";
/// From accept to the submit_sm_resp of the last part. Labels: route.
pub const ACCEPT_TO_SUBMIT_SECONDS: &str = "smppd_accept_to_submit_seconds";
/// From durable accept to the final receipt of a part. Labels: smsc.
pub const ACCEPT_TO_RECEIPT_SECONDS: &str = "smppd_accept_to_receipt_seconds";
/// From a submit request read to its answer handed to the connection's writer: the daemon's
/// share of the accept latency a client sees (routing, encoding, the durable commit).
pub const API_SUBMIT_SECONDS: &str = "smppd_api_submit_seconds";
/// Duration of one store group commit.
pub const STORE_COMMIT_SECONDS: &str = "smppd_store_commit_seconds";
/// Writes per store group commit.
pub const STORE_BATCH_SIZE: &str = "smppd_store_batch_size";
/// Mobile-originated messages received. Labels: smsc.
pub const MO_RECEIVED: &str = "smppd_mo_received_total";
/// Concatenated MO messages given up before all their parts came, recorded with the parts that
/// did (`incomplete` in the `mo` event). Labels: smsc, reason (`expired`, `evicted`,
/// `superseded`).
pub const MO_INCOMPLETE: &str = "smppd_mo_incomplete_total";
/// Opt-out list changes from MO keywords or the CLI. Labels: state (`added`, `removed`).
pub const OPTOUTS: &str = "smppd_optouts_total";
/// Requests refused for a missing or wrong token.
pub const UNAUTHORIZED: &str = "smppd_unauthorized_total";
/// Open submit-protocol connections.
pub const API_CONNECTIONS: &str = "smppd_api_connections";
/// Submit-protocol clients disconnected for leaving a response unread for `listen.write_timeout`.
pub const API_SLOW_CLIENTS: &str = "smppd_api_slow_clients_total";
/// SMSC leases this instance holds (cluster mode).
pub const CLUSTER_LEASES: &str = "smppd_cluster_leases_held";
/// SMSC leases taken from another instance whose lease had expired. Labels: smsc.
pub const CLUSTER_TAKEOVERS: &str = "smppd_cluster_takeovers_total";
/// Lease rounds that failed (database unreachable or slow).
pub const CLUSTER_ERRORS: &str = "smppd_cluster_errors_total";
/// Time a claim of queued parts took in the store. Labels: route.
pub const STORE_CLAIM_SECONDS: &str = "smppd_store_claim_seconds";
/// Time a read waited for a database connection from the pool (PostgreSQL).
pub const STORE_POOL_WAIT_SECONDS: &str = "smppd_store_pool_wait_seconds";
/// Database errors by kind (`unavailable`: connection refused, closed, timed out; `other`).
/// Labels: reason.
pub const STORE_DB_ERRORS: &str = "smppd_store_db_errors_total";

/// Sets the leases-held gauge.
pub fn cluster_leases(n: usize) {
    metrics::gauge!(CLUSTER_LEASES).set(n as f64);
}

/// Counts a takeover of `smsc`'s lease.
pub fn cluster_takeover(smsc: &str) {
    metrics::counter!(CLUSTER_TAKEOVERS, label::SMSC => smsc.to_owned()).increment(1);
}

/// Counts a failed lease round.
pub fn cluster_errors() {
    metrics::counter!(CLUSTER_ERRORS).increment(1);
}

/// What a metric is, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric's kind, unit and description (the `# HELP` line), registered by [`describe`].
const DESCRIPTIONS: &[(&str, Kind, Unit, &str)] = &[
    (
        CLUSTER_LEASES,
        Kind::Gauge,
        Unit::Count,
        "SMSC leases this instance holds (several instances on PostgreSQL).",
    ),
    (
        CLUSTER_TAKEOVERS,
        Kind::Counter,
        Unit::Count,
        "SMSC leases taken over from an instance whose lease expired, by smsc.",
    ),
    (
        CLUSTER_ERRORS,
        Kind::Counter,
        Unit::Count,
        "Lease rounds that failed (the database unreachable or slow).",
    ),
    (
        STORE_CLAIM_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "Time a claim of queued parts took in the store, by route.",
    ),
    (
        STORE_POOL_WAIT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "Time a store read waited for a PostgreSQL connection from the pool.",
    ),
    (
        STORE_DB_ERRORS,
        Kind::Counter,
        Unit::Count,
        "PostgreSQL errors, by reason (unavailable, other).",
    ),
    (
        MESSAGES_ACCEPTED,
        Kind::Counter,
        Unit::Count,
        "Messages durably accepted through the submit protocol, by route.",
    ),
    (
        MESSAGES_HELD,
        Kind::Counter,
        Unit::Count,
        "Messages accepted held until a send window opens or their send_at, by route.",
    ),
    (
        MESSAGES_REJECTED,
        Kind::Counter,
        Unit::Count,
        "Submits refused, by error code.",
    ),
    (
        MESSAGES_FINAL,
        Kind::Counter,
        Unit::Count,
        "Messages reaching a final state through a receipt or the expiry sweeps, by state.",
    ),
    (
        PARTS_SUBMITTED,
        Kind::Counter,
        Unit::Count,
        "Parts answered by an SMSC, by route, smsc and command_status.",
    ),
    (
        PARTS_TIMED_OUT,
        Kind::Counter,
        Unit::Count,
        "Parts with no submit_sm_resp within the response timeout (handed back for retry).",
    ),
    (
        RECEIPTS,
        Kind::Counter,
        Unit::Count,
        "Delivery receipts received, by route, smsc and stat.",
    ),
    (
        RECEIPTS_UNMATCHED,
        Kind::Counter,
        Unit::Count,
        "Receipts that matched no sent part (kept in the delivery-report log), by smsc and reason (unknown_id, no_id).",
    ),
    (
        FAILOVERS,
        Kind::Counter,
        Unit::Count,
        "Parts moved to the next SMSC of their route, by route, from and to.",
    ),
    (
        REROUTES,
        Kind::Counter,
        Unit::Count,
        "Parts resent through the next SMSC after an UNDELIV/REJECTD receipt.",
    ),
    (
        THROTTLED,
        Kind::Counter,
        Unit::Count,
        "ESME_RTHROTTLED / ESME_RMSGQFUL answers, by smsc and status.",
    ),
    (
        BIND_UP,
        Kind::Gauge,
        Unit::Count,
        "1 while the bind is bound, 0 otherwise.",
    ),
    (
        BIND_IN_FLIGHT,
        Kind::Gauge,
        Unit::Count,
        "Requests in flight on the bind.",
    ),
    (
        QUEUE_DEPTH,
        Kind::Gauge,
        Unit::Count,
        "Parts waiting to be sent (held ones are smppd_queue_scheduled), by route.",
    ),
    (
        QUEUE_SCHEDULED,
        Kind::Gauge,
        Unit::Count,
        "Parts held until a send window opens or their send_at, by route.",
    ),
    (
        QUEUE_OLDEST_SECONDS,
        Kind::Gauge,
        Unit::Seconds,
        "Age of the oldest waiting part's message, by route.",
    ),
    (
        ACCEPT_TO_SUBMIT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "From durable accept to the last part's submit_sm_resp.",
    ),
    (
        ACCEPT_TO_RECEIPT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "From durable accept to the final delivery receipt of a part, by smsc.",
    ),
    (
        API_SUBMIT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "From a submit request read to its answer queued for the client (routing, encoding, the durable commit): the daemon's share of the accept latency.",
    ),
    (
        STORE_COMMIT_SECONDS,
        Kind::Histogram,
        Unit::Seconds,
        "Duration of one store group commit.",
    ),
    (
        STORE_BATCH_SIZE,
        Kind::Histogram,
        Unit::Count,
        "Writes in one store group commit.",
    ),
    (
        MO_RECEIVED,
        Kind::Counter,
        Unit::Count,
        "Mobile-originated messages received, by smsc.",
    ),
    (
        MO_INCOMPLETE,
        Kind::Counter,
        Unit::Count,
        "Concatenated MO messages given up before all their parts came (recorded as incomplete), by smsc and reason.",
    ),
    (
        OPTOUTS,
        Kind::Counter,
        Unit::Count,
        "Opt-out list changes, by state (added, removed).",
    ),
    (
        UNAUTHORIZED,
        Kind::Counter,
        Unit::Count,
        "Submit-protocol requests refused for a missing or wrong token.",
    ),
    (
        DISPATCH_SIDE_STATE,
        Kind::Gauge,
        Unit::Count,
        "Entries in dispatch's per-part side state of messages still being sent, by map (refused, affinity, resplit, no_resplit).",
    ),
    (
        API_CONNECTIONS,
        Kind::Gauge,
        Unit::Count,
        "Open submit-protocol connections.",
    ),
    (
        API_SLOW_CLIENTS,
        Kind::Counter,
        Unit::Count,
        "Submit-protocol clients disconnected for leaving a response unread for listen.write_timeout.",
    ),
];

/// Registers every metric's description and unit with the installed recorder. Call once after
/// installing the exporter.
pub fn describe() {
    for &(name, kind, unit, text) in DESCRIPTIONS {
        match kind {
            Kind::Counter => describe_counter!(name, unit, text),
            Kind::Gauge => describe_gauge!(name, unit, text),
            Kind::Histogram => describe_histogram!(name, unit, text),
        }
    }
}

/// Every metric name, for tests that check the exporter's output and the dashboard.
pub const ALL: &[&str] = &[
    MESSAGES_ACCEPTED,
    MESSAGES_HELD,
    MESSAGES_REJECTED,
    MESSAGES_FINAL,
    PARTS_SUBMITTED,
    PARTS_TIMED_OUT,
    RECEIPTS,
    RECEIPTS_UNMATCHED,
    FAILOVERS,
    REROUTES,
    THROTTLED,
    BIND_UP,
    BIND_IN_FLIGHT,
    QUEUE_DEPTH,
    QUEUE_SCHEDULED,
    QUEUE_OLDEST_SECONDS,
    ACCEPT_TO_SUBMIT_SECONDS,
    ACCEPT_TO_RECEIPT_SECONDS,
    API_SUBMIT_SECONDS,
    STORE_COMMIT_SECONDS,
    STORE_BATCH_SIZE,
    MO_RECEIVED,
    MO_INCOMPLETE,
    OPTOUTS,
    UNAUTHORIZED,
    API_CONNECTIONS,
    API_SLOW_CLIENTS,
    DISPATCH_SIDE_STATE,
    CLUSTER_LEASES,
    CLUSTER_TAKEOVERS,
    CLUSTER_ERRORS,
    STORE_CLAIM_SECONDS,
    STORE_POOL_WAIT_SECONDS,
    STORE_DB_ERRORS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_prometheus_conventional_and_unique() {
        let mut seen = std::collections::HashSet::new();
        for name in ALL {
            assert!(name.starts_with("smppd_"), "{name}");
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(*name), "duplicate {name}");
        }
    }

    #[test]
    fn every_metric_is_described_once() {
        for name in ALL {
            let n = DESCRIPTIONS.iter().filter(|d| d.0 == *name).count();
            assert_eq!(n, 1, "{name} described {n} times");
        }
        for (name, ..) in DESCRIPTIONS {
            assert!(ALL.contains(name), "{name} described but not in ALL");
        }
    }
}
