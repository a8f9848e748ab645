//! The submit protocol's lines: one JSON object per line in, one per line out.
//!
//! Owns: parsing a request line into a validated [`Request`] (or an [`ApiError`] with the code
//! the client receives), and rendering responses and errors. Pure: no I/O, never panics on any
//! input (a fuzz target feeds it arbitrary bytes). The request's `ref` is echoed byte for byte,
//! whatever JSON value the client chose, even when the rest of the request is invalid.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::address::{AddressError, Msisdn, Sender};
pub use crate::store::MessageClass as Class;
pub use crate::text::EncodingRequest;

/// The longest accepted line, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;
/// Limits on client-supplied fields, so that one request cannot make the store or the logs huge.
pub const MAX_TAGS: usize = 32;
pub const MAX_TAG_KEY: usize = 64;
pub const MAX_TAG_VALUE: usize = 256;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
pub const MAX_VALIDITY: Duration = Duration::from_secs(30 * 86400);
/// One-time passwords may be worth only seconds; below 10 s no SMSC round trip is reliable.
pub const MIN_VALIDITY: Duration = Duration::from_secs(10);
/// The furthest ahead a `send_at` may be (the accept step checks it against the clock).
pub const MAX_SEND_AHEAD: Duration = Duration::from_secs(30 * 86400);

/// The error codes a client can receive. Stable strings: clients branch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    InvalidDestination,
    InvalidSender,
    Unencodable,
    TooLong,
    NoRoute,
    OptedOut,
    /// A `marketing` text without an opt-out instruction while `[marketing] require_optout`.
    MissingOptout,
    /// Marketing (or a `send_at`) that could not be sent within its validity: no send window opens
    /// before it ends. `allowed_at` says when the window opens.
    OutsideWindow,
    /// A frequency cap (`[[cap]]`) would be exceeded; `allowed_at` says when it frees up.
    FrequencyCapped,
    Unauthorized,
    Overloaded,
    /// The shared database cannot be reached: nothing was stored; retry (any instance).
    Unavailable,
    ShuttingDown,
    NotFound,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::InvalidDestination => "invalid_destination",
            ErrorCode::InvalidSender => "invalid_sender",
            ErrorCode::Unencodable => "unencodable",
            ErrorCode::TooLong => "too_long",
            ErrorCode::NoRoute => "no_route",
            ErrorCode::OptedOut => "opted_out",
            ErrorCode::MissingOptout => "missing_optout",
            ErrorCode::OutsideWindow => "outside_window",
            ErrorCode::FrequencyCapped => "frequency_capped",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::NotFound => "not_found",
        }
    }

    /// Every code, for metrics descriptions and documentation tests.
    pub const ALL: [ErrorCode; 15] = [
        ErrorCode::BadRequest,
        ErrorCode::InvalidDestination,
        ErrorCode::InvalidSender,
        ErrorCode::Unencodable,
        ErrorCode::TooLong,
        ErrorCode::NoRoute,
        ErrorCode::OptedOut,
        ErrorCode::MissingOptout,
        ErrorCode::OutsideWindow,
        ErrorCode::FrequencyCapped,
        ErrorCode::Unauthorized,
        ErrorCode::Overloaded,
        ErrorCode::Unavailable,
        ErrorCode::ShuttingDown,
        ErrorCode::NotFound,
    ];
}

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// When the request would be allowed (ms since the epoch): the send window's opening for
    /// `outside_window`, the cap freeing up for `frequency_capped`. Sent as `allowed_at`.
    pub allowed_at: Option<i64>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            allowed_at: None,
        }
    }

    /// The same error, saying when the request would be allowed.
    pub fn allowed_at(mut self, ms: i64) -> ApiError {
        self.allowed_at = Some(ms);
        self
    }
    fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }
}

/// A validated submit.
#[derive(Debug, Clone, PartialEq)]
pub struct Submit {
    pub to: Msisdn,
    pub from: Sender,
    pub text: String,
    pub route: Option<String>,
    pub encoding: EncodingRequest,
    /// `None`: the route's default.
    pub smart: Option<bool>,
    pub dlr: bool,
    pub validity: Option<Duration>,
    /// 0 (lowest) to 3 (highest).
    pub priority: u8,
    pub key: Option<String>,
    pub class: Class,
    pub tags: BTreeMap<String, String>,
    /// `send_at`: hold the message until this instant (ms since the epoch). Whether it is too
    /// far ahead is the accept step's to decide (this layer has no clock).
    pub send_at: Option<i64>,
}

/// A validated request.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Submit(Box<Submit>),
    Query {
        id: String,
    },
    Subscribe {
        after: u64,
    },
    Status,
    Ping,
    Auth {
        token: String,
    },
    Reload,
    /// Opt-out list maintenance (the daemon's store writer does the write).
    OptOut(OptOutOp),
}

/// What an `optout` request does.
#[derive(Debug, Clone, PartialEq)]
pub enum OptOutOp {
    /// Opt a number out of `scope`: a sender address (standing for its `[[sender]]` group) or
    /// `None` for every sender (the global list).
    Add(Msisdn, Option<String>),
    /// Take a number off exactly `scope` (`None`: the global list).
    Remove(Msisdn, Option<String>),
    /// A page of the list in (number, scope) order: entries after (`after`, `scope`), or after
    /// every entry of `after` when no scope is given.
    List {
        after: Option<Msisdn>,
        scope: Option<String>,
    },
}

/// Entries per `optout` list answer; the client pages with the last number.
pub const OPTOUT_PAGE: usize = 1000;

impl Request {
    /// The operation's name, for logs and metrics.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Submit(_) => "submit",
            Request::Query { .. } => "query",
            Request::Subscribe { .. } => "subscribe",
            Request::Status => "status",
            Request::Ping => "ping",
            Request::Auth { .. } => "auth",
            Request::Reload => "reload",
            Request::OptOut(_) => "optout",
        }
    }
}

/// A parsed line: the client's `ref` (verbatim JSON, if one could be read) and the request or
/// the error to answer.
#[derive(Debug)]
pub struct Parsed {
    pub reference: Option<Box<RawValue>>,
    pub request: Result<Request, ApiError>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire<'a> {
    op: Option<&'a str>,
    #[serde(rename = "ref")]
    reference: Option<Box<RawValue>>,
    to: Option<String>,
    from: Option<String>,
    text: Option<String>,
    route: Option<String>,
    encoding: Option<EncodingRequest>,
    smart: Option<bool>,
    dlr: Option<bool>,
    validity: Option<String>,
    priority: Option<i64>,
    key: Option<String>,
    class: Option<Class>,
    tags: Option<BTreeMap<String, String>>,
    send_at: Option<serde_json::Value>,
    id: Option<String>,
    after: Option<u64>,
    token: Option<String>,
    action: Option<String>,
    number: Option<String>,
    scope: Option<String>,
}

/// Only the `ref`, for echoing it when the full request does not deserialize.
#[derive(Deserialize)]
struct RefOnly {
    #[serde(rename = "ref")]
    reference: Option<Box<RawValue>>,
}

/// Parses one line (without its newline). Never panics.
pub fn parse_line(line: &[u8]) -> Parsed {
    if line.len() > MAX_LINE {
        return Parsed {
            reference: None,
            request: Err(ApiError::bad(format!(
                "line is {} bytes; at most {MAX_LINE} are accepted",
                line.len()
            ))),
        };
    }
    let text = match std::str::from_utf8(line) {
        Ok(t) => t,
        Err(e) => {
            return Parsed {
                reference: None,
                request: Err(ApiError::bad(format!(
                    "line is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                ))),
            };
        }
    };
    // serde reads a struct from a JSON array too, by position (`["ping"]` would be a ping and
    // `[[1]]` a request whose `ref` is `[1]`); the protocol is one object per line.
    let start = text.trim_start_matches([' ', '\t', '\r', '\n']);
    if !start.starts_with('{') {
        let what = match start.chars().next() {
            None => "an empty line".to_owned(),
            Some('[') => "an array".to_owned(),
            Some(_) => "not an object".to_owned(),
        };
        return Parsed {
            reference: None,
            request: Err(ApiError::bad(format!(
                "a request is one JSON object per line, like {{\"op\":\"ping\"}}; got {what}"
            ))),
        };
    }
    match serde_json::from_str::<Wire<'_>>(text) {
        Ok(mut wire) => {
            let reference = wire.reference.take();
            Parsed {
                reference,
                request: validate(wire).map_err(|mut e| {
                    // Backstop: every message stays short whatever the client sent.
                    e.message = shorten(&e.message);
                    e
                }),
            }
        }
        Err(e) => {
            let reference = serde_json::from_str::<RefOnly>(text)
                .ok()
                .and_then(|r| r.reference);
            Parsed {
                reference,
                request: Err(ApiError::bad(shorten(&describe_json_error(&e)))),
            }
        }
    }
}

/// Longest error message, in bytes. serde's messages quote the offending value in full
/// ("invalid type: string \"…60 KiB…\", expected i64"); a response should not echo a line.
pub const MAX_MESSAGE: usize = 256;

/// `message` itself when short; else its start and its end (where serde says what it expected)
/// around "…", cut at character boundaries, at most [`MAX_MESSAGE`] bytes.
fn shorten(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let half = (MAX_MESSAGE - '…'.len_utf8()) / 2;
    let mut head = half;
    while !message.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = message.len() - half;
    while !message.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}…{}", &message[..head], &message[tail..])
}

fn describe_json_error(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    // serde_json appends " at line L column C"; a request is one line, so keep only the column.
    let msg = e.to_string();
    let msg = match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    };
    match e.classify() {
        Category::Syntax | Category::Eof => {
            format!("malformed JSON at column {}: {msg}", e.column())
        }
        // serde's wording already names the field ("unknown field `x`", "invalid type: …").
        Category::Data => msg,
        Category::Io => format!("could not read the request: {msg}"),
    }
}

impl Wire<'_> {
    /// Refuses fields that belong to other operations, so that typos and mix-ups surface.
    fn only(&self, op: &str, allowed: &[&str]) -> Result<(), ApiError> {
        let present: [(&str, bool); 19] = [
            ("to", self.to.is_some()),
            ("from", self.from.is_some()),
            ("text", self.text.is_some()),
            ("route", self.route.is_some()),
            ("encoding", self.encoding.is_some()),
            ("smart", self.smart.is_some()),
            ("dlr", self.dlr.is_some()),
            ("validity", self.validity.is_some()),
            ("priority", self.priority.is_some()),
            ("key", self.key.is_some()),
            ("class", self.class.is_some()),
            ("tags", self.tags.is_some()),
            ("send_at", self.send_at.is_some()),
            ("id", self.id.is_some()),
            ("after", self.after.is_some()),
            ("token", self.token.is_some()),
            ("action", self.action.is_some()),
            ("number", self.number.is_some()),
            ("scope", self.scope.is_some()),
        ];
        match present
            .iter()
            .find(|(name, is)| *is && !allowed.contains(name))
        {
            Some((name, _)) => Err(ApiError::bad(format!(
                "field `{name}` does not belong to op `{op}`"
            ))),
            None => Ok(()),
        }
    }
}

/// The fields a submit may carry.
const SUBMIT_FIELDS: &[&str] = &[
    "to", "from", "text", "route", "encoding", "smart", "dlr", "validity", "priority", "key",
    "class", "tags", "send_at",
];

fn validate(w: Wire<'_>) -> Result<Request, ApiError> {
    let op = w.op.ok_or_else(|| ApiError::bad("missing field `op`"))?;
    match op {
        "submit" => {
            w.only(op, SUBMIT_FIELDS)?;
            validate_submit(w).map(|s| Request::Submit(Box::new(s)))
        }
        "query" => {
            w.only(op, &["id"])?;
            let id = w.id.ok_or_else(|| ApiError::bad("missing field `id`"))?;
            if id.is_empty() || id.len() > 64 {
                return Err(ApiError::bad("`id` must be 1-64 characters"));
            }
            Ok(Request::Query { id })
        }
        "subscribe" => {
            w.only(op, &["after"])?;
            Ok(Request::Subscribe {
                after: w.after.unwrap_or(0),
            })
        }
        "status" => w.only(op, &[]).map(|()| Request::Status),
        "ping" => w.only(op, &[]).map(|()| Request::Ping),
        "reload" => w.only(op, &[]).map(|()| Request::Reload),
        "auth" => {
            w.only(op, &["token"])?;
            let token = w
                .token
                .ok_or_else(|| ApiError::bad("missing field `token`"))?;
            Ok(Request::Auth { token })
        }
        "optout" => {
            w.only(op, &["action", "number", "scope"])?;
            let scope = optout_scope(w.scope)?;
            validate_optout(w.action.as_deref(), w.number, scope).map(Request::OptOut)
        }
        other => Err(ApiError::bad(format!(
            "unknown op {}; expected submit, query, subscribe, status, ping, auth, reload or optout",
            quote_limited(other)
        ))),
    }
}

fn optout_number(n: Option<String>) -> Result<Msisdn, ApiError> {
    let n = n.ok_or_else(|| ApiError::bad("missing field `number`"))?;
    Msisdn::parse(&n).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidDestination,
            format!("number {}: {e}", quote_limited(&n)),
        )
    })
}

/// An opt-out scope as given: a sender address or `all`, 1-64 characters.
fn optout_scope(scope: Option<String>) -> Result<Option<String>, ApiError> {
    match scope.as_deref().map(str::trim) {
        None => Ok(None),
        Some(s) if s.is_empty() || s.chars().count() > 64 => Err(ApiError::bad(format!(
            "scope {}: a sender address or \"all\", 1-64 characters",
            quote_limited(s)
        ))),
        Some(s) => Ok(Some(s.to_owned())),
    }
}

fn validate_optout(
    action: Option<&str>,
    number: Option<String>,
    scope: Option<String>,
) -> Result<OptOutOp, ApiError> {
    match action {
        Some("add") => Ok(OptOutOp::Add(optout_number(number)?, scope)),
        Some("remove") => Ok(OptOutOp::Remove(optout_number(number)?, scope)),
        Some("list") => Ok(OptOutOp::List {
            after: match number {
                Some(n) => Some(optout_number(Some(n))?),
                None => None,
            },
            scope,
        }),
        Some(other) => Err(ApiError::bad(format!(
            "`action` {}: expected add, remove or list",
            quote_limited(other)
        ))),
        None => Err(ApiError::bad("missing field `action`")),
    }
}

fn validate_submit(w: Wire<'_>) -> Result<Submit, ApiError> {
    let to = w.to.ok_or_else(|| ApiError::bad("missing field `to`"))?;
    let to = Msisdn::parse(&to).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidDestination,
            format!("destination {}: {e}", quote_limited(&to)),
        )
    })?;
    let from = w
        .from
        .ok_or_else(|| ApiError::bad("missing field `from`"))?;
    let from = Sender::parse(&from).map_err(|e: AddressError| {
        ApiError::new(
            ErrorCode::InvalidSender,
            format!("sender {}: {e}", quote_limited(&from)),
        )
    })?;
    let text = w
        .text
        .ok_or_else(|| ApiError::bad("missing field `text`"))?;
    if text.is_empty() {
        return Err(ApiError::bad("`text` is empty"));
    }
    if let Some(k) = &w.key
        && (k.is_empty() || k.len() > MAX_IDEMPOTENCY_KEY)
    {
        return Err(ApiError::bad(format!(
            "`key` must be 1-{MAX_IDEMPOTENCY_KEY} bytes"
        )));
    }
    if let Some(r) = &w.route
        && (r.is_empty() || r.len() > 64)
    {
        return Err(ApiError::bad("`route` must be 1-64 characters"));
    }
    Ok(Submit {
        to,
        from,
        text,
        route: w.route,
        encoding: w.encoding.unwrap_or_default(),
        smart: w.smart,
        dlr: w.dlr.unwrap_or(true),
        validity: w.validity.as_deref().map(validity).transpose()?,
        priority: priority(w.priority)?,
        key: w.key,
        class: w.class.unwrap_or_default(),
        tags: tags(w.tags.unwrap_or_default())?,
        send_at: w.send_at.as_ref().map(send_at).transpose()?,
    })
}

/// `send_at`: an RFC 3339 time (`"2026-12-24T09:00:00+01:00"`) or epoch milliseconds.
fn send_at(v: &serde_json::Value) -> Result<i64, ApiError> {
    let given = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let shape = || {
        ApiError::bad(format!(
            "`send_at` {} is neither an RFC 3339 time like \"2026-12-24T09:00:00+01:00\" nor \
             epoch milliseconds",
            quote_limited(&given)
        ))
    };
    match v {
        serde_json::Value::Number(n) => n.as_i64().filter(|ms| *ms >= 0).ok_or_else(shape),
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|_| shape()),
        _ => Err(shape()),
    }
}

fn validity(v: &str) -> Result<Duration, ApiError> {
    let d = crate::config::parse_duration(v).map_err(|_| {
        ApiError::bad(format!(
            "`validity` {} is not a duration like \"30s\", \"10m\" or \"48h\"",
            quote_limited(v)
        ))
    })?;
    if !(MIN_VALIDITY..=MAX_VALIDITY).contains(&d) {
        return Err(ApiError::bad(format!(
            "`validity` must be between 10s and 30d (got {})",
            quote_limited(v)
        )));
    }
    Ok(d)
}

fn priority(p: Option<i64>) -> Result<u8, ApiError> {
    match p {
        None => Ok(0),
        Some(p @ 0..=3) => Ok(p as u8),
        Some(p) => Err(ApiError::bad(format!("`priority` must be 0-3 (got {p})"))),
    }
}

fn tags(tags: BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::bad(format!(
            "`tags` has {} entries; at most {MAX_TAGS}",
            tags.len()
        )));
    }
    if let Some((k, _)) = tags
        .iter()
        .find(|(k, v)| k.is_empty() || k.len() > MAX_TAG_KEY || v.len() > MAX_TAG_VALUE)
    {
        return Err(ApiError::bad(format!(
            "tag {}: keys must be 1-{MAX_TAG_KEY} bytes and values at most {MAX_TAG_VALUE}",
            quote_limited(k)
        )));
    }
    Ok(tags)
}

/// A client value quoted for an error message, cut so that an absurd value does not make an
/// absurd response.
fn quote_limited(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(MAX).collect();
        format!("{cut:?}…")
    }
}

/// Renders responses. Each call returns one line including its `\n`.
pub struct Reply;

impl Reply {
    /// `{"ref":…,"ok":false,"error":{"code":…,"message":…}}`, with `"allowed_at":ms` when the
    /// error says when the request would be allowed.
    pub fn error(reference: Option<&RawValue>, err: &ApiError) -> String {
        let mut s = Self::start(reference);
        s.push_str("\"ok\":false,\"error\":{\"code\":\"");
        s.push_str(err.code.as_str());
        s.push_str("\",\"message\":");
        push_json_str(&mut s, &err.message);
        if let Some(at) = err.allowed_at {
            s.push_str(",\"allowed_at\":");
            s.push_str(&at.to_string());
        }
        s.push_str("}}\n");
        s
    }

    /// `{"ref":…,"ok":true}` followed by the fields of `body` (a JSON object, possibly empty).
    pub fn ok<T: Serialize>(reference: Option<&RawValue>, body: &T) -> String {
        let mut s = Self::start(reference);
        s.push_str("\"ok\":true");
        match serde_json::to_string(body) {
            Ok(obj) if obj.len() > 2 && obj.starts_with('{') => {
                s.push(',');
                s.push_str(&obj[1..]);
            }
            _ => s.push('}'),
        }
        s.push('\n');
        s
    }

    fn start(reference: Option<&RawValue>) -> String {
        // Room for the ref and an ordinary body up front: a line that outgrew a fixed 128 bytes
        // doubled, and a client that never reads keeps 256 of them queued.
        let mut s = String::with_capacity(128 + reference.map_or(4, |r| r.get().len()));
        s.push_str("{\"ref\":");
        match reference {
            Some(r) => s.push_str(r.get()),
            None => s.push_str("null"),
        }
        s.push(',');
        s
    }
}

fn push_json_str(out: &mut String, v: &str) {
    match serde_json::to_string(v) {
        Ok(q) => out.push_str(&q),
        // Serializing a &str cannot fail; keep the line valid JSON regardless.
        Err(_) => {
            let _ = write!(out, "\"\"");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(line: &str) -> Result<Request, ApiError> {
        parse_line(line.as_bytes()).request
    }

    #[test]
    fn optout_requests() {
        let Ok(Request::OptOut(OptOutOp::Add(n, None))) =
            req(r#"{"op":"optout","action":"add","number":"0046 70-111 22 33"}"#)
        else {
            panic!("not an add")
        };
        assert_eq!(n.to_string(), "+46701112233");
        assert!(matches!(
            req(r#"{"op":"optout","action":"remove","number":"+46701112233"}"#),
            Ok(Request::OptOut(OptOutOp::Remove(_, None)))
        ));
        assert_eq!(
            req(r#"{"op":"optout","action":"add","number":"+46701112233","scope":" 72000 "}"#),
            Ok(Request::OptOut(OptOutOp::Add(
                Msisdn::parse("+46701112233").expect("number"),
                Some("72000".into())
            )))
        );
        assert_eq!(
            req(r#"{"op":"optout","action":"list"}"#),
            Ok(Request::OptOut(OptOutOp::List {
                after: None,
                scope: None
            }))
        );
        let code = |line: &str| req(line).map(|_| ()).map_err(|e| e.code);
        assert_eq!(
            code(r#"{"op":"optout","action":"add","number":"12ab"}"#),
            Err(ErrorCode::InvalidDestination)
        );
        assert_eq!(
            code(r#"{"op":"optout","action":"add"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"optout","action":"purge"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"optout","number":"+46701112233"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"optout","action":"add","number":"+46701112233","text":"x"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"status","number":"+46701112233"}"#),
            Err(ErrorCode::BadRequest)
        );
    }

    #[test]
    fn parses_a_full_submit() {
        let p = parse_line(br#"{"op":"submit","ref":{"a":[1,2]},"to":"+46 70-123 45 67","from":"ACME","text":"Hej","route":"nordics","encoding":"gsm7","smart":true,"dlr":false,"validity":"48h","priority":3,"key":"k1","class":"marketing","tags":{"kind":"otp"}}"#);
        assert_eq!(
            p.reference.as_ref().map(|r| r.get()),
            Some(r#"{"a":[1,2]}"#)
        );
        let Ok(Request::Submit(s)) = p.request else {
            panic!("not a submit: {:?}", p.request)
        };
        assert_eq!(s.to.to_string(), "+46701234567");
        assert_eq!(s.from, Sender::Alphanumeric("ACME".into()));
        assert_eq!(s.encoding, EncodingRequest::Gsm7);
        assert_eq!((s.smart, s.dlr, s.priority), (Some(true), false, 3));
        assert_eq!(s.validity, Some(Duration::from_secs(48 * 3600)));
        assert_eq!(s.class, Class::Marketing);
        assert_eq!(s.tags.get("kind").map(String::as_str), Some("otp"));
    }

    #[test]
    fn send_at_is_rfc3339_or_epoch_ms_and_anything_else_names_it() {
        let at = |v: &str| {
            let line = format!(
                r#"{{"op":"submit","to":"+46701234567","from":"A","text":"x","send_at":{v}}}"#
            );
            match req(&line) {
                Ok(Request::Submit(s)) => Ok(s.send_at),
                Ok(other) => panic!("not a submit: {other:?}"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(at("1796716800000").ok(), Some(Some(1_796_716_800_000)));
        assert_eq!(
            at(r#""2026-12-08T09:00:00+01:00""#).ok(),
            Some(Some(1_796_716_800_000))
        );
        assert_eq!(
            at(r#""2026-12-08T08:00:00.250Z""#).ok(),
            Some(Some(1_796_716_800_250))
        );
        for bad in [
            r#""tomorrow""#,
            r#""2026-12-08 08:00""#,
            "-1",
            "1.5",
            "true",
            "[1]",
        ] {
            let e = at(bad).expect_err(bad);
            assert_eq!(e.code, ErrorCode::BadRequest, "{bad}");
            assert!(e.message.contains("`send_at`"), "{bad}: {}", e.message);
        }
        let e = req(r#"{"op":"query","id":"1","send_at":1}"#).expect_err("query");
        assert!(e.message.contains("send_at"), "{}", e.message);
    }

    #[test]
    fn codes_for_bad_input() {
        let code = |l: &str| req(l).map(|_| ()).map_err(|e| e.code);
        assert_eq!(
            code(r#"{"op":"submit","to":"12","from":"A","text":"x"}"#),
            Err(ErrorCode::InvalidDestination)
        );
        assert_eq!(
            code(r#"{"op":"submit","to":"+46701234567","from":"ACME Corporation Ltd","text":"x"}"#),
            Err(ErrorCode::InvalidSender)
        );
        assert_eq!(
            code(r#"{"op":"submit","to":"+46701234567","from":"A"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"submit","to":"+46701234567","from":"A","text":"x","priority":7}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"submit","to":"+46701234567","from":"A","text":"x","validity":"2y"}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(
                r#"{"op":"submit","to":"+46701234567","from":"A","text":"x","encoding":"ebcdic"}"#
            ),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(
            code(r#"{"op":"submit","to":"+46701234567","from":"A","text":"x","after":3}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(code(r#"{"op":"nope"}"#), Err(ErrorCode::BadRequest));
        assert_eq!(
            code(r#"{"op":"ping","colour":1}"#),
            Err(ErrorCode::BadRequest)
        );
        assert_eq!(code("not json"), Err(ErrorCode::BadRequest));
        assert_eq!(code("[1,2]"), Err(ErrorCode::BadRequest));
        // serde would read a struct from an array by position: refused, with no ref.
        assert_eq!(code(r#"["ping"]"#), Err(ErrorCode::BadRequest));
        assert_eq!(
            code(r#"["submit",1,"+46701234567","ACME","x"]"#),
            Err(ErrorCode::BadRequest)
        );
        let p = parse_line(b"[[1,2]]");
        assert!(p.reference.is_none());
        assert!(p.request.expect_err("array").message.contains("an array"));
        assert_eq!(code(r#"{"op":"query"}"#), Err(ErrorCode::BadRequest));
        assert_eq!(code(r#"{"op":"ping"}"#), Ok(()));
    }

    #[test]
    fn ref_is_echoed_even_when_the_request_is_invalid() {
        let p = parse_line(br#"{"ref":"r-17","op":"submit","priority":"high"}"#);
        assert_eq!(p.reference.as_ref().map(|r| r.get()), Some(r#""r-17""#));
        let e = p.request.expect_err("wrong type");
        assert!(e.message.contains("invalid type"), "{e}");
        let line = Reply::error(p.reference.as_deref(), &e);
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["ref"], "r-17");
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn an_error_says_when_the_request_would_be_allowed() {
        let e = ApiError::new(ErrorCode::FrequencyCapped, "3 in 7d").allowed_at(1_700_000_000_123);
        let line = Reply::error(None, &e);
        let v: serde_json::Value = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(v["error"]["code"], "frequency_capped");
        assert_eq!(v["error"]["allowed_at"], 1_700_000_000_123_i64);
        let plain = Reply::error(None, &ApiError::new(ErrorCode::OutsideWindow, "x"));
        assert!(!plain.contains("allowed_at"), "{plain}");
    }

    #[test]
    fn invalid_utf8_and_long_lines() {
        let e = parse_line(b"{\"op\":\"ping\",\"x\":\"\xff\"}")
            .request
            .expect_err("utf-8");
        assert!(e.message.contains("UTF-8"), "{e}");
        let long = vec![b' '; MAX_LINE + 1];
        let e = parse_line(&long).request.expect_err("long");
        assert!(e.message.contains("at most"), "{e}");
    }

    #[test]
    fn ok_reply_merges_the_body() {
        #[derive(Serialize)]
        struct B {
            id: &'static str,
            parts: u32,
        }
        let r = RawValue::from_string("7".into()).expect("raw");
        let line = Reply::ok(Some(&r), &B { id: "x", parts: 2 });
        assert_eq!(line, "{\"ref\":7,\"ok\":true,\"id\":\"x\",\"parts\":2}\n");
        #[derive(Serialize)]
        struct E {}
        assert_eq!(Reply::ok(None, &E {}), "{\"ref\":null,\"ok\":true}\n");
    }

    #[test]
    fn error_messages_never_echo_a_whole_value() {
        let huge = "\u{7f}".repeat(20_000);
        for line in [
            format!(r#"{{"op":"{huge}"}}"#),
            format!(r#"{{"op":"optout","action":"{huge}"}}"#),
            format!(r#"{{"op":"optout","action":"add","number":"+46{huge}"}}"#),
            format!(
                r#"{{"op":"submit","to":"+46701234567","from":"A","text":"x","validity":"{huge}"}}"#
            ),
            format!(
                r#"{{"op":"submit","to":"+46701234567","from":"A","text":"x","priority":"{huge}"}}"#
            ),
            format!(
                r#"{{"op":"submit","to":"+46701234567","from":"A","text":"x","encoding":"{huge}"}}"#
            ),
            format!(r#"{{"op":"ping","{huge}":1}}"#),
        ] {
            let e = req(&line).expect_err("refused");
            assert!(
                e.message.len() <= MAX_MESSAGE,
                "{} bytes: {}",
                e.message.len(),
                e.message
            );
        }
        // The end of serde's message, which says what was expected, survives.
        let line = format!(r#"{{"op":"submit","priority":"{}"}}"#, "x".repeat(5000));
        let e = req(&line).expect_err("wrong type");
        assert!(e.message.starts_with("invalid type: string"), "{e}");
        assert!(e.message.ends_with("expected i64"), "{e}");
        assert!(e.message.contains('…'));
    }

    #[test]
    fn absurd_values_are_bounded() {
        let big = "x".repeat(1000);
        let line = format!(r#"{{"op":"submit","to":"+46701234567","from":"{big}","text":"x"}}"#);
        let e = req(&line).expect_err("long sender");
        assert!(e.message.len() < 200, "{}", e.message);
        let tags: Vec<String> = (0..40).map(|i| format!("\"k{i}\":\"v\"")).collect();
        let line = format!(
            r#"{{"op":"submit","to":"+46701234567","from":"A","text":"x","tags":{{{}}}}}"#,
            tags.join(",")
        );
        assert!(
            req(&line)
                .expect_err("too many tags")
                .message
                .contains("at most 32")
        );
    }
}
