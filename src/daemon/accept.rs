//! The accept flow: a validated submit becomes a durable message, in named steps —
//! [`route`](Accept::route) (which route and its first SMSC), [`encode`](Accept::encode)
//! (encoding and split for that SMSC, after [`optout_instruction`](Accept::optout_instruction)
//! added a marketing text's footer), [`check_policy`](Accept::check_policy) (opt-out for
//! `marketing`, by the sender's scope), [`schedule`](Accept::schedule) (send windows and
//! `send_at`: when the message may go), [`message`] (the row and its parts) with [`caps`] (the
//! frequency caps that apply, checked and counted by the store in the accept's own
//! transaction) and [`durable`](Accept::durable) (one store write; counted, the route's task
//! woken; a full cap is `frequency_capped` with `allowed_at`).
//!
//! Owns the steps and the concatenation references handed out per destination. Must never
//! answer before the store said durable, and never wait for an SMSC: dispatch sends later.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::watch;

use crate::api::protocol::{ApiError, Class, ErrorCode, MAX_SEND_AHEAD, Submit};
use crate::config::{Config, Route, Smsc};
use crate::dispatch::locks::lock;
use crate::dispatch::{Dispatch, now_ms};
use crate::metrics as m;
use crate::policy::Decision;
use crate::route::{self, Facts, RouteError};
use crate::store::{CapLimit, GLOBAL_SCOPE, NewMessage, NewPart, Store, StoreError};
use crate::text::{self, EncodeOptions, Encoded, LanguageSet, ReferenceAllocator};

/// The accept flow's state (shared by every API connection).
pub(super) struct Accept {
    store: Store,
    dispatch: Arc<Dispatch>,
    config: watch::Receiver<Arc<Config>>,
    /// Concatenation references per destination; one map operation per message.
    references: Mutex<ReferenceAllocator>,
    /// Messages accepted, per route.
    accepted: m::Handles<String, metrics::Counter>,
    /// Messages accepted held (a send window or `send_at`), per route.
    held: m::Handles<String, metrics::Counter>,
}

/// The `ok` answer to a submit.
#[derive(Serialize)]
pub(super) struct SubmitOk {
    id: String,
    parts: u8,
    encoding: String,
    route: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    duplicate: Option<bool>,
    /// `not_mobile`: the destination is a possible number of its country but not in a mobile
    /// range (SMS to it usually fails); the message is accepted all the same.
    #[serde(skip_serializing_if = "Option::is_none")]
    warning: Option<&'static str>,
    /// Held until then (ms since the epoch): a send window opens, or the client's `send_at`.
    #[serde(skip_serializing_if = "Option::is_none")]
    held_until: Option<i64>,
}

impl Accept {
    pub(super) fn new(
        store: Store,
        dispatch: Arc<Dispatch>,
        config: watch::Receiver<Arc<Config>>,
    ) -> Accept {
        Accept {
            store,
            dispatch,
            config,
            references: Mutex::new(ReferenceAllocator::default()),
            accepted: m::Handles::new(),
            held: m::Handles::new(),
        }
    }

    /// Route → encode → policy checks → durable accept.
    pub(super) async fn submit(&self, s: Submit) -> Result<SubmitOk, ApiError> {
        let cfg = self.config.borrow().clone();
        let warning = Self::check_number(&s)?;
        let (route, smsc) = Self::route(&cfg, &s)?;
        let s = Self::optout_instruction(&cfg, s)?;
        let (encoded, smart) = self.encode(&s, route, smsc)?;
        self.check_policy(&cfg, &s).await?;
        let held_until = Self::schedule(&cfg, &s, now_ms())?;
        let caps = caps(&cfg, &s);
        let mut msg = message(s, &route.name, &encoded, smart);
        msg.held_until_ms = held_until;
        msg.caps = caps;
        let mut ok = self.durable(msg).await?;
        ok.warning = warning;
        if ok.duplicate.is_none() {
            // A repeated key stored nothing new: what the first one was held until is its own.
            ok.held_until = held_until;
            self.count_held(&ok);
        }
        Ok(ok)
    }

    /// When the message may go: not before `send_at` (any class), then at the first instant a
    /// send window that applies to it is open (`marketing` by default; the policy decides by
    /// class). `None`: at once. Refused when `send_at` is too far ahead, when no window ever
    /// opens (`outside_window` naming the windows), or when the validity ends before the
    /// message could be sent (`outside_window` with `allowed_at`).
    fn schedule(cfg: &Config, s: &Submit, now: i64) -> Result<Option<i64>, ApiError> {
        let ahead = i64::try_from(MAX_SEND_AHEAD.as_millis()).unwrap_or(i64::MAX);
        if let Some(at) = s.send_at
            && at > now.saturating_add(ahead)
        {
            return Err(ApiError::new(
                ErrorCode::BadRequest,
                format!(
                    "`send_at` {} is more than 30 days ahead (the limit is 30d)",
                    rfc3339(at)
                ),
            ));
        }
        if cfg.policy.windows.is_empty() && s.send_at.is_none() {
            return Ok(None); // nothing can hold it: no allocation or lookup per message
        }
        let start = s.send_at.map_or(now, |at| at.max(now));
        let to = s.to.to_string();
        let start_utc = chrono::DateTime::from_timestamp_millis(start).unwrap_or_default();
        // What holds it, for the refusal below: a window, or only `send_at`.
        let (held, by_window) = match cfg.policy.window_decision(&to, s.class, start_utc) {
            Decision::SendNow => ((start > now).then_some(start), false),
            Decision::HoldUntil(t) => (Some(t.timestamp_millis()), true),
            Decision::Never => {
                return Err(ApiError::new(
                    ErrorCode::OutsideWindow,
                    format!(
                        "no send window opens within a year for {} to {to} (window {})",
                        class_name(s.class),
                        window_names(cfg, s)
                    ),
                ));
            }
        };
        if let (Some(until), Some(validity)) = (held, s.validity) {
            let ends = now.saturating_add(i64::try_from(validity.as_millis()).unwrap_or(i64::MAX));
            if ends < until {
                let why = if by_window {
                    format!("window {}", window_names(cfg, s))
                } else {
                    "`send_at`".to_owned()
                };
                return Err(too_late(&why, until, ends));
            }
        }
        Ok(held)
    }

    /// Counts a message accepted held (`smppd_messages_held_total`).
    fn count_held(&self, ok: &SubmitOk) {
        if ok.held_until.is_some() {
            self.held
                .get_by(ok.route.as_str(), |route| {
                    metrics::counter!(m::MESSAGES_HELD, m::label::ROUTE => route.to_owned())
                })
                .increment(1);
        }
    }

    /// The route for the message and the SMSC whose settings decide its encoding and split
    /// (the route's first; dispatch re-splits when a message fails over to an SMSC that
    /// splits differently).
    fn route<'c>(cfg: &'c Config, s: &Submit) -> Result<(&'c Route, &'c Smsc), ApiError> {
        let facts = Facts {
            to: &s.to,
            from: &s.from,
            tags: &s.tags,
        };
        let route = route::select(&cfg.routes, facts, s.route.as_deref()).map_err(|e| match e {
            RouteError::Unknown(_) => ApiError::new(ErrorCode::BadRequest, e.to_string()),
            _ => ApiError::new(ErrorCode::NoRoute, e.to_string()),
        })?;
        let smsc = route
            .smsc
            .first()
            .and_then(|n| cfg.smsc(n))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::NoRoute,
                    format!("route {} has no SMSC", route.name),
                )
            })?;
        Ok((route, smsc))
    }

    /// The destination against libphonenumber's metadata for its country: an impossible number
    /// (wrong length, unknown country code) is `invalid_destination` naming the country and the
    /// reason; a possible one outside the mobile ranges is accepted with a `not_mobile` warning.
    fn check_number(s: &Submit) -> Result<Option<&'static str>, ApiError> {
        match crate::policy::number::check(&s.to.to_string()) {
            Ok(info) if info.may_be_mobile() => Ok(None),
            Ok(_) => Ok(Some("not_mobile")),
            Err(problem) => Err(ApiError::new(
                ErrorCode::InvalidDestination,
                problem.to_string(),
            )),
        }
    }

    /// The opt-out instruction every `marketing` text carries: `[marketing] footer` appended
    /// (after a newline) when the text has no stop keyword, so the parts counted and sent hold
    /// it; without a footer, `require_optout` refuses such a text (`missing_optout`).
    fn optout_instruction(cfg: &Config, mut s: Submit) -> Result<Submit, ApiError> {
        if s.class != Class::Marketing {
            return Ok(s);
        }
        match cfg.policy.marketing.text(&s.text, &cfg.optout.stop) {
            Ok(std::borrow::Cow::Borrowed(_)) => Ok(s),
            Ok(std::borrow::Cow::Owned(with_footer)) => {
                s.text = with_footer;
                Ok(s)
            }
            Err(e) => Err(ApiError::new(ErrorCode::MissingOptout, e.to_string())),
        }
    }

    /// Encodes and splits the text for `smsc`. Returns the segments and whether smart
    /// substitution was on (stored with the message, for a re-split).
    fn encode(&self, s: &Submit, route: &Route, smsc: &Smsc) -> Result<(Encoded, bool), ApiError> {
        let mut languages = LanguageSet::EMPTY;
        for l in &smsc.shift_tables {
            languages.insert(*l);
        }
        let opts = EncodeOptions {
            languages,
            encoding: s.encoding,
            smart: s.smart.unwrap_or(route.smart),
            split: smsc.split,
            max_parts: smsc.max_parts,
            packed: smsc.gsm_packed,
        };
        let reference = lock(&self.references, "references").next(s.to.digits());
        let encoded = text::encode(&s.text, &opts, reference).map_err(|e| {
            let code = match e.code() {
                "unencodable" => ErrorCode::Unencodable,
                "too_long" => ErrorCode::TooLong,
                _ => ErrorCode::BadRequest,
            };
            ApiError::new(code, e.to_string())
        })?;
        Ok((encoded, opts.smart))
    }

    /// A `marketing` message to a number that opted out of its sender's scope (the sender's
    /// `[[sender]]` group) or of every sender is refused; transactional never is.
    async fn check_policy(&self, cfg: &Config, s: &Submit) -> Result<(), ApiError> {
        if s.class != Class::Marketing {
            return Ok(());
        }
        let scope = cfg.policy.optout_scope(&s.from.to_string());
        let opted = self
            .store
            .backend()
            .is_opted_out(&s.to.to_string(), &scope)
            .await
            .map_err(store_error)?;
        match opted {
            Some(all) if all == GLOBAL_SCOPE => Err(ApiError::new(
                ErrorCode::OptedOut,
                format!("{} has opted out of marketing from every sender", s.to),
            )),
            Some(scope) => Err(ApiError::new(
                ErrorCode::OptedOut,
                format!(
                    "{} has opted out of marketing from {scope} (sender {})",
                    s.to, s.from
                ),
            )),
            None => Ok(()),
        }
    }

    /// One store write holds the message and its parts; the answer comes once it is durable.
    async fn durable(&self, msg: NewMessage) -> Result<SubmitOk, ApiError> {
        let accepted = self
            .store
            .backend()
            .accept(msg)
            .await
            .map_err(|e| match e {
                StoreError::Capped(r) => ApiError::new(
                    ErrorCode::FrequencyCapped,
                    format!("frequency cap {} reached for this recipient", r.label),
                )
                .allowed_at(r.allowed_at_ms),
                e => store_error(e),
            })?;
        if !accepted.duplicate {
            // A repeated idempotency key stored nothing new.
            self.accepted
                .get_by(accepted.route.as_str(), |route| {
                    metrics::counter!(m::MESSAGES_ACCEPTED, m::label::ROUTE => route.to_owned())
                })
                .increment(1);
        }
        self.dispatch.wake(&accepted.route);
        Ok(SubmitOk {
            id: accepted.id.to_string(),
            parts: accepted.parts,
            encoding: accepted.encoding,
            route: accepted.route,
            duplicate: accepted.duplicate.then_some(true),
            warning: None,
            held_until: None,
        })
    }
}

/// The frequency caps (`[[cap]]`) that apply to the submit, as the store checks and counts
/// them: a cap counts messages of its own class only (a transactional message is counted by
/// transactional caps alone), per recipient or per recipient and tag value.
fn caps(cfg: &Config, s: &Submit) -> Vec<CapLimit> {
    if cfg.policy.caps.is_empty() {
        return Vec::new();
    }
    let to = s.to.to_string();
    cfg.policy
        .caps
        .iter()
        .filter_map(|cap| {
            let scope = cap.scope(s.class, &to, &s.tags)?;
            let mut label = format!("max = {}, per = \"{}\"", cap.max, config_duration(cap.per));
            if let Some(tag) = &cap.tag {
                label.push_str(&format!(", tag = \"{tag}\""));
            }
            Some(CapLimit {
                key: class_name(s.class).to_owned(),
                scope,
                max: cap.max,
                per_ms: i64::try_from(cap.per.as_millis()).unwrap_or(i64::MAX),
                label,
            })
        })
        .collect()
}

/// `outside_window` for a message whose validity ends (`ends`) before it could be sent
/// (`until`): names what holds it (`why`: the window(s), or `send_at`) and until when.
fn too_late(why: &str, until: i64, ends: i64) -> ApiError {
    ApiError::new(
        ErrorCode::OutsideWindow,
        format!(
            "the validity ends at {} but {why} holds the message until {}",
            rfc3339(ends),
            rfc3339(until)
        ),
    )
    .allowed_at(until)
}

/// The names of the send windows that apply to the message, comma-separated (empty: none).
fn window_names(cfg: &Config, s: &Submit) -> String {
    let to = s.to.to_string();
    let names: Vec<&str> = cfg
        .policy
        .windows
        .iter()
        .filter(|w| w.applies(s.class, &to))
        .map(|w| w.name.as_str())
        .collect();
    names.join(", ")
}

/// A duration as the config writes it ("7d", "24h", "15s"), in its largest whole unit, so a
/// refusal names the cap the way the operator wrote it.
fn config_duration(d: std::time::Duration) -> String {
    let secs = d.as_secs();
    let unit = [(86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(n, _)| secs > 0 && secs.is_multiple_of(*n) && d.subsec_nanos() == 0);
    match unit {
        Some((n, u)) => format!("{}{u}", secs / n),
        None => humantime::format_duration(d).to_string(),
    }
}

fn class_name(c: Class) -> &'static str {
    match c {
        Class::Marketing => "marketing",
        Class::Transactional => "transactional",
    }
}

/// An instant as RFC 3339 in UTC, to the second (for error messages).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || format!("{ms} ms"),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

/// The message row and its parts, as the store takes them.
fn message(s: Submit, route: &str, encoded: &Encoded, smart: bool) -> NewMessage {
    let plan = *encoded.plan();
    let esm_class = if plan.udhi { 0x40 } else { 0 };
    let parts: Vec<NewPart> = encoded
        .segments()
        .map(|seg| NewPart {
            data_coding: plan.data_coding,
            esm_class,
            segment: seg.short_message().to_vec(),
            sar_ref: seg.sar.map(|x| x.msg_ref_num),
        })
        .collect();
    let now = now_ms();
    NewMessage {
        key: s.key,
        to: s.to.to_string(),
        from: s.from.to_string(),
        route: route.to_owned(),
        class: s.class,
        priority: s.priority,
        valid_until_ms: s.validity.map(|v| now + v.as_millis() as i64),
        encoding: plan.encoding.to_string(),
        split: plan.split.name().to_owned(),
        // Both values are fixed words: formatted directly (no JSON tree per message).
        options: format!(
            r#"{{"encoding":"{}","smart":{}}}"#,
            s.encoding.name(),
            smart
        ),
        dlr: s.dlr,
        tags: if s.tags.is_empty() {
            None
        } else {
            serde_json::to_string(&s.tags).ok()
        },
        text: s.text,
        parts,
        now_ms: now,
        caps: Vec::new(),
        held_until_ms: None,
    }
}

/// Whatever the store's trouble (disk full, read-only, queue full, the shared database
/// unreachable), the client must retry later: nothing was accepted. An unreachable database is
/// `unavailable` (retry, maybe at another instance); the rest is `overloaded`.
pub(super) fn store_error(e: StoreError) -> ApiError {
    tracing::warn!(error = %e, "store refused a request");
    let code = match e {
        StoreError::Unavailable {
            kind: "database", ..
        } => ErrorCode::Unavailable,
        _ => ErrorCode::Overloaded,
    };
    ApiError::new(code, format!("store unavailable: {e}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn cap_periods_read_as_configured() {
        let d = |s| super::config_duration(Duration::from_secs(s));
        assert_eq!(d(7 * 86_400), "7d");
        assert_eq!(d(36 * 3_600), "36h");
        assert_eq!(d(90 * 60), "90m");
        assert_eq!(d(15), "15s");
        assert_eq!(
            super::config_duration(Duration::from_millis(1_500)),
            "1s 500ms"
        );
    }
}
