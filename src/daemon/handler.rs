//! The submit protocol's behaviour: what each request does. A submit goes through the accept
//! flow ([`super::accept`]); the rest (query, subscribe, status, opt-out, reload) is answered
//! here. Must never answer `ok` to a submit before the store said durable.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::value::RawValue;
use tokio::sync::{mpsc, watch};
use tokio_util::task::TaskTracker;

use super::accept::{Accept, SubmitOk, store_error};
use crate::api::protocol::{ApiError, ErrorCode, OPTOUT_PAGE, OptOutOp, Reply, Request, Submit};
use crate::api::server::{Handler, Outcome, Peer};
use crate::config::Config;
use crate::dispatch::{Dispatch, now_ms};
use crate::metrics as m;
use crate::store::GLOBAL_SCOPE;
use crate::store::{MessageId, MessageState, Store};

/// Events sent per read when a subscriber catches up.
const EVENT_PAGE: usize = 512;

/// The daemon's [`Handler`].
pub struct DaemonHandler {
    store: Store,
    dispatch: Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    shutting_down: Arc<AtomicBool>,
    /// Route → encode → policy checks → durable accept.
    accept: Accept,
    reloader: Arc<super::Reloader>,
    /// The daemon's tracker: subscriber tasks are joined at the stop like every other task
    /// (each ends when its connection closes).
    tasks: TaskTracker,
}

impl DaemonHandler {
    pub fn new(
        store: Store,
        dispatch: Arc<Dispatch>,
        config: watch::Receiver<Arc<Config>>,
        shutting_down: Arc<AtomicBool>,
        reloader: Arc<super::Reloader>,
        tasks: TaskTracker,
    ) -> DaemonHandler {
        DaemonHandler {
            accept: Accept::new(store.clone(), dispatch.clone(), config.clone()),
            store,
            dispatch,
            config,
            shutting_down,
            reloader,
            tasks,
        }
    }

    async fn submit(&self, s: Submit) -> Result<SubmitOk, ApiError> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(ApiError::new(
                ErrorCode::ShuttingDown,
                "smppd is stopping; retry against the restarted daemon",
            ));
        }
        self.accept.submit(s).await
    }

    /// `optout`: add and remove go through the store's writer (durable before the answer);
    /// list reads a page. A scope given as a sender address stands for its `[[sender]]` group
    /// (the scope MOs to that group opt out of); `all` or none is the global list.
    async fn optout(&self, op: OptOutOp) -> Result<serde_json::Value, ApiError> {
        let backend = self.store.backend();
        let cfg = self.config.borrow().clone();
        let scope_of = |s: Option<String>| match s {
            Some(s) if !s.eq_ignore_ascii_case(GLOBAL_SCOPE) => cfg.policy.optout_scope(&s),
            _ => GLOBAL_SCOPE.to_owned(),
        };
        match op {
            OptOutOp::Add(n, scope) => {
                let scope = scope_of(scope);
                let added = backend
                    .optout_add(n.to_string(), scope.clone(), now_ms())
                    .await
                    .map_err(store_error)?;
                if added {
                    metrics::counter!(m::OPTOUTS, m::label::STATE => "added").increment(1);
                }
                Ok(serde_json::json!({"number": n.to_string(), "scope": scope, "changed": added}))
            }
            OptOutOp::Remove(n, scope) => {
                let scope = scope_of(scope);
                let removed = backend
                    .optout_remove(n.to_string(), scope.clone())
                    .await
                    .map_err(store_error)?;
                if removed {
                    metrics::counter!(m::OPTOUTS, m::label::STATE => "removed").increment(1);
                }
                Ok(serde_json::json!({"number": n.to_string(), "scope": scope, "changed": removed}))
            }
            OptOutOp::List { after, scope } => {
                let after = after.map(|n| n.to_string()).unwrap_or_default();
                let page = backend
                    .optout_list(after, scope, OPTOUT_PAGE)
                    .await
                    .map_err(store_error)?;
                let more = page.len() == OPTOUT_PAGE;
                Ok(serde_json::json!({"numbers": page, "more": more}))
            }
        }
    }

    async fn query(&self, id: &str) -> Result<serde_json::Value, ApiError> {
        let id: MessageId = id.parse().map_err(|e: crate::store::BadMessageId| {
            ApiError::new(ErrorCode::BadRequest, e.to_string())
        })?;
        let view = self
            .store
            .backend()
            .message(id)
            .await
            .map_err(store_error)?;
        let Some(v) = view else {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("no message {id}"),
            ));
        };
        let parts: Vec<serde_json::Value> = v
            .parts
            .iter()
            .map(|p| {
                serde_json::json!({
                    "n": p.n,
                    "smsc": p.smsc,
                    "smsc_id": p.smsc_id,
                    "state": p.state.as_str(),
                    "status": p.last_status.map(|s| crate::pdu::CommandStatus(s).to_string()),
                    "stat": p.stat,
                    "error": p.error,
                    "attempts": p.attempts,
                })
            })
            .collect();
        let mut message = serde_json::json!({
                "id": v.id.to_string(),
                "to": v.to,
                "from": v.from,
                "class": v.class,
                "route": v.route,
                "state": v.shown_state(now_ms()),
                "encoding": v.encoding,
                "parts": parts,
                "accepted_at": v.accepted_at,
                "submitted_at": v.submitted_at,
                "done_at": v.done_at,
        });
        if let Some(tags) = v
            .tags
            .as_deref()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        {
            message["tags"] = tags;
        }
        if let Some(until) = v.held_until {
            // Held at accept (a send window or `send_at`): shown as long as the message is.
            message["held_until"] = until.into();
        }
        Ok(serde_json::json!({ "message": message }))
    }

    fn subscribe(&self, after: u64) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(EVENT_PAGE);
        let store = self.store.clone();
        let mut last = store.backend().last_seq();
        self.tasks.spawn(async move {
            let mut after = after as i64;
            loop {
                let events = match store.backend().events_after(after, EVENT_PAGE).await {
                    Ok(e) => e,
                    Err(e) => {
                        tracing::warn!(error = %e, "subscriber: cannot read events");
                        return;
                    }
                };
                let full = events.len() == EVENT_PAGE;
                for ev in events {
                    after = ev.seq;
                    if tx.send(ev.to_line()).await.is_err() {
                        return; // the client left
                    }
                }
                if !full {
                    // Wait for a commit that adds events (or the client leaving).
                    tokio::select! {
                        _ = tx.closed() => return,
                        changed = last.changed() => if changed.is_err() { return },
                    }
                }
            }
        });
        rx
    }

    /// `status`: binds, in-flight, then routes (queue depth, oldest, rate) and delivery ratios
    /// over the last 5 and 60 minutes.
    async fn status_with_queues(&self) -> serde_json::Value {
        let mut status = self.status();
        let depth = self
            .store
            .backend()
            .queue_depth(now_ms())
            .await
            .unwrap_or_default();
        let cfg = self.config.borrow().clone();
        let routes: Vec<serde_json::Value> = cfg
            .routes
            .iter()
            .map(|route| {
                let q = depth.iter().find(|q| q.route == route.name);
                let queued = q.map_or(0, |q| q.parts);
                let oldest_s = q
                    .and_then(|q| q.oldest_ms)
                    .map(|t| (now_ms() - t).max(0) as f64 / 1000.0);
                serde_json::json!({
                    "name": route.name,
                    "queued": queued,
                    "scheduled": q.map_or(0, |q| q.scheduled),
                    "oldest_s": oldest_s,
                    "tps": route.tps,
                    "rate": round2(self.dispatch.route_rate(&route.name)),
                })
            })
            .collect();
        let now = now_ms();
        let mut delivery = serde_json::Map::new();
        for (label, minutes) in [("5m", 5), ("60m", 60)] {
            let counts = self
                .store
                .backend()
                .final_counts(now - minutes * 60_000)
                .await
                .unwrap_or_default();
            delivery.insert(label.into(), delivery_ratio(&counts));
        }
        if let serde_json::Value::Object(o) = &mut status {
            o.insert("routes".into(), routes.into());
            o.insert("delivery".into(), delivery.into());
        }
        status
    }

    fn status(&self) -> serde_json::Value {
        let smscs: Vec<serde_json::Value> = self
            .dispatch
            .smscs()
            .into_iter()
            .map(|l| {
                let binds: Vec<serde_json::Value> = l
                    .status()
                    .into_iter()
                    .map(|b| {
                        serde_json::json!({
                            "bind": b.bind.to_string(),
                            "state": format!("{:?}", b.state),
                            "in_flight": b.in_flight,
                            "response_timeouts": b.response_timeouts,
                            "throttled": b.throttled,
                            "binds": b.binds,
                            "bind_failures": b.bind_failures,
                            "since_ms": b.since.duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as u64),
                            "last_error": b.last_error,
                        })
                    })
                    .collect();
                serde_json::json!({
                    "name": &*l.name,
                    "circuit": if l.circuit_open() { "open" } else { "closed" },
                    "rate": round2(self.dispatch.smsc_rate(&l.name)),
                    "binds": binds,
                })
            })
            .collect();
        let mut status = serde_json::json!({
            "smscs": smscs,
            "in_flight": self.dispatch.in_flight(),
            // Subscribers that only want what happens from now on pass this as `after`.
            "last_seq": *self.store.backend().last_seq().borrow(),
        });
        if let (Some(view), serde_json::Value::Object(o)) =
            (self.dispatch.cluster_view(), &mut status)
        {
            o.insert("cluster".into(), view.to_json());
        }
        status
    }
}

/// Two decimals: status output, not accounting.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `{"final": n, "delivered": d, "ratio": d/n or null, "states": {state: n}}`.
fn delivery_ratio(counts: &[(MessageState, u64)]) -> serde_json::Value {
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let delivered: u64 = counts
        .iter()
        .filter(|(s, _)| *s == MessageState::Delivered)
        .map(|(_, n)| n)
        .sum();
    let states: serde_json::Map<String, serde_json::Value> = counts
        .iter()
        .map(|(s, n)| (s.as_str().to_owned(), (*n).into()))
        .collect();
    serde_json::json!({
        "final": total,
        "delivered": delivered,
        "ratio": (total > 0).then(|| round2(delivered as f64 / total as f64 * 100.0) / 100.0),
        "states": states,
    })
}

impl Handler for DaemonHandler {
    async fn handle(
        &self,
        request: Request,
        reference: Option<Box<RawValue>>,
        _peer: &Peer,
    ) -> Outcome {
        let r = reference.as_deref();
        let line = match request {
            Request::Submit(s) => match self.submit(*s).await {
                Ok(ok) => Reply::ok(r, &ok),
                Err(e) => {
                    metrics::counter!(m::MESSAGES_REJECTED, m::label::CODE => e.code.as_str())
                        .increment(1);
                    Reply::error(r, &e)
                }
            },
            Request::Query { id } => match self.query(&id).await {
                Ok(v) => Reply::ok(r, &v),
                Err(e) => Reply::error(r, &e),
            },
            Request::Subscribe { after } => {
                let rx = self.subscribe(after);
                return Outcome::Stream(Reply::ok(r, &serde_json::json!({})), rx);
            }
            Request::Status => Reply::ok(r, &self.status_with_queues().await),
            Request::Ping => Reply::ok(r, &serde_json::json!({})),
            // Answered by the server itself; reaching here means no token is configured.
            Request::Auth { .. } => Reply::ok(r, &serde_json::json!({})),
            Request::OptOut(op) => match self.optout(op).await {
                Ok(v) => Reply::ok(r, &v),
                Err(e) => Reply::error(r, &e),
            },
            Request::Reload => match self.reloader.reload().await {
                Ok(changes) => Reply::ok(r, &serde_json::json!({ "changes": changes })),
                Err(e) => Reply::error(r, &ApiError::new(ErrorCode::BadRequest, e)),
            },
        };
        Outcome::Line(line)
    }

    fn refused(&self, code: ErrorCode) {
        metrics::counter!(m::MESSAGES_REJECTED, m::label::CODE => code.as_str()).increment(1);
        if code == ErrorCode::Unauthorized {
            metrics::counter!(m::UNAUTHORIZED).increment(1);
        }
    }
}
