//! Housekeeping: the daemon's periodic work beside the message flows — gauges once a second
//! (queue depth and age per route, in-flight per bind, dispatch's side state; stranded jobs
//! reclaimed), the expiry sweep (validity passed, receipt wait over) every second until caught
//! up, pruning old rows every minute, and the metrics endpoint with its recorder upkeep.
//!
//! Owns those timers, each a task the daemon's tracker joins at a stop. Must never stall the
//! store's writer (every write here is a small batch) and never run after its stop token.

use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::dispatch::{Dispatch, now_ms};
use crate::store::{Retention, Store};

/// How often the metrics recorder folds recorded histogram samples into its histograms.
const METRICS_UPKEEP: Duration = Duration::from_secs(1);

/// Spawns the gauges and the expiry/pruning timer on `tasks`; both end at `stop`.
pub(super) fn spawn(
    tasks: &TaskTracker,
    store: &Store,
    dispatch: &Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    leader: Option<watch::Receiver<crate::cluster::Ownership>>,
    stop: &CancellationToken,
) {
    tasks.spawn(gauges(store.clone(), dispatch.clone(), stop.clone()));
    tasks.spawn(housekeeping(
        store.clone(),
        dispatch.clone(),
        config,
        leader,
        stop.clone(),
    ));
}

/// Spawns the metrics endpoint (`/metrics`, `/healthz`) and the recorder's upkeep on `tasks`;
/// both end at `stop`.
pub(super) fn spawn_metrics(
    tasks: &TaskTracker,
    (listener, handle): (TcpListener, PrometheusHandle),
    store: &Store,
    dispatch: &Arc<Dispatch>,
    stop: &CancellationToken,
) {
    // Histogram samples wait in the recorder until an upkeep folds them in: without it they
    // pile up between scrapes (or forever, with no scraper) at several per message.
    let upkeep = handle.clone();
    let upkeep_stop = stop.clone();
    tasks.spawn(async move {
        let mut tick = tokio::time::interval(METRICS_UPKEEP);
        loop {
            tokio::select! {
                _ = upkeep_stop.cancelled() => return,
                _ = tick.tick() => upkeep.run_upkeep(),
            }
        }
    });
    let (store, dispatch) = (store.clone(), dispatch.clone());
    tasks.spawn(crate::metrics::http::serve(
        listener,
        move || handle.render(),
        move || health(store.clone(), dispatch.clone()),
        stop.clone(),
    ));
}

/// The `/healthz` answer: binds up and parts queued, or why the store cannot say.
async fn health(store: Store, dispatch: Arc<Dispatch>) -> Result<String, String> {
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
        let now = now_ms();
        if let Ok(depth) = store.backend().queue_depth(now).await {
            for q in depth {
                let oldest = q.oldest_ms.map_or(0, |t| (now - t).max(0));
                metrics::gauge!(m::QUEUE_OLDEST_SECONDS, m::label::ROUTE => q.route.clone())
                    .set(oldest as f64 / 1000.0);
                metrics::gauge!(m::QUEUE_SCHEDULED, m::label::ROUTE => q.route.clone())
                    .set(q.scheduled as f64);
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
/// the writer never stalls. In a cluster only the leader does it (`leader`: the lease task's
/// published ownership), so the shared store is swept once, not once per instance.
async fn housekeeping(
    store: Store,
    dispatch: Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    leader: Option<watch::Receiver<crate::cluster::Ownership>>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        if leader.as_ref().is_some_and(|l| !l.borrow().leader) {
            continue;
        }
        n += 1;
        let cfg = config.borrow().clone();
        let wait_ms = cfg.store.receipt_wait.as_millis() as i64;
        sweep(&store, &dispatch, wait_ms, &stop).await;
        if n.is_multiple_of(60) {
            let retention = Retention {
                messages_ms: Some(cfg.store.keep_messages.as_millis() as i64),
                log_ms: Some(cfg.store.keep_reports.as_millis() as i64),
                // No cap reads a count older than the longest `per` (none: none is read).
                cap_hits_ms: Some(
                    cfg.policy
                        .caps
                        .iter()
                        .map(|c| c.per.as_millis() as i64)
                        .max()
                        .unwrap_or(0),
                ),
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
