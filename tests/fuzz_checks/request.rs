//! The `request` fuzz target's property, shared by `fuzz/fuzz_targets/request.rs` (nightly,
//! libFuzzer) and `tests/fuzz_regressions.rs` (stable replay): the submit protocol's line parser
//! and validator (`smppd::api::protocol`) on arbitrary bytes.
//!
//! - `parse_line` never panics and is deterministic;
//! - a refusal carries one of the codes the parser may give (`bad_request`,
//!   `invalid_destination`, `invalid_sender`; all in the documented set), a non-empty message of
//!   bounded size, and renders as one line of valid JSON echoing the client's `ref`;
//! - the `ref`, when read, is the JSON value the client sent;
//! - an accepted request, written back as a request line, parses to the same request.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use smppd::address::{Msisdn, Sender};
use smppd::api::protocol::{
    ErrorCode, MAX_LINE, MAX_MESSAGE, OptOutOp, Reply, Request, parse_line,
};

/// The request as a client would write it.
/// An `optout` request as a client writes it.
fn optout_json(op: &OptOutOp) -> Value {
    let (action, number, scope) = match op {
        OptOutOp::Add(n, s) => ("add", Some(n), s),
        OptOutOp::Remove(n, s) => ("remove", Some(n), s),
        OptOutOp::List { after, scope } => ("list", after.as_ref(), scope),
    };
    let mut o = json!({"op":"optout","action":action});
    if let Some(n) = number {
        o["number"] = json!(n.to_string());
    }
    if let Some(s) = scope {
        o["scope"] = json!(s);
    }
    o
}

fn to_line(r: &Request) -> Value {
    match r {
        Request::Submit(s) => {
            let mut o = Map::new();
            o.insert("op".into(), json!("submit"));
            o.insert("to".into(), json!(s.to.to_string()));
            o.insert("from".into(), json!(s.from.to_string()));
            o.insert("text".into(), json!(s.text));
            if let Some(r) = &s.route {
                o.insert("route".into(), json!(r));
            }
            o.insert("encoding".into(), json!(s.encoding.name()));
            if let Some(smart) = s.smart {
                o.insert("smart".into(), json!(smart));
            }
            o.insert("dlr".into(), json!(s.dlr));
            if let Some(v) = s.validity {
                o.insert("validity".into(), json!(format!("{}ns", v.as_nanos())));
            }
            o.insert("priority".into(), json!(s.priority));
            if let Some(k) = &s.key {
                o.insert("key".into(), json!(k));
            }
            o.insert(
                "class".into(),
                serde_json::to_value(s.class).expect("class"),
            );
            o.insert("tags".into(), json!(s.tags));
            Value::Object(o)
        }
        Request::Query { id } => json!({"op":"query","id":id}),
        Request::Subscribe { after } => json!({"op":"subscribe","after":after}),
        Request::Status => json!({"op":"status"}),
        Request::Ping => json!({"op":"ping"}),
        Request::Reload => json!({"op":"reload"}),
        Request::Auth { token } => json!({"op":"auth","token":token}),
        Request::OptOut(op) => optout_json(op),
    }
}

/// What the validator promises about an accepted request.
fn assert_valid(r: &Request) {
    match r {
        Request::Submit(s) => {
            assert!(!s.text.is_empty());
            assert!(s.priority <= 3);
            assert!(s.tags.len() <= 32);
            assert!(
                s.tags
                    .iter()
                    .all(|(k, v)| !k.is_empty() && k.len() <= 64 && v.len() <= 256)
            );
            assert!(
                s.key
                    .as_ref()
                    .is_none_or(|k| !k.is_empty() && k.len() <= 128)
            );
            assert!(
                s.route
                    .as_ref()
                    .is_none_or(|r| !r.is_empty() && r.len() <= 64)
            );
            assert!(
                s.validity
                    .is_none_or(|v| (10..=30 * 86400).contains(&v.as_secs()))
            );
            // Addresses are what they claim: they re-parse to themselves.
            assert_eq!(Msisdn::parse(&s.to.to_string()).as_ref(), Ok(&s.to));
            assert_eq!(Sender::parse(&s.from.to_string()).as_ref(), Ok(&s.from));
            let d = s.to.digits();
            assert!((7..=15).contains(&d.len()) && !d.starts_with('0'));
            assert!(d.bytes().all(|c| c.is_ascii_digit()));
        }
        Request::Query { id } => assert!(!id.is_empty() && id.len() <= 64),
        _ => {}
    }
}

/// A reply line's top-level fields, each as raw JSON (so that a `ref` such as `1e400`, valid
/// JSON but no `f64`, is compared as written).
fn reply_fields(reply: &str) -> BTreeMap<String, Box<RawValue>> {
    assert!(reply.ends_with('\n') && !reply[..reply.len() - 1].contains('\n'));
    serde_json::from_str(reply).unwrap_or_else(|e| panic!("reply is not JSON ({e}): {reply}"))
}

/// Checks every line of `input` as the server splits it (at `\n`, one trailing `\r` removed).
pub fn check(input: &[u8]) {
    for line in input.split(|&b| b == b'\n') {
        check_line(line.strip_suffix(b"\r").unwrap_or(line));
    }
}

fn check_line(line: &[u8]) {
    let parsed = parse_line(line);
    let again = parse_line(line);
    assert_eq!(
        parsed.request, again.request,
        "parsing is not deterministic"
    );
    let raw_ref = parsed.reference.as_ref().map(|r| r.get());
    assert_eq!(raw_ref, again.reference.as_ref().map(|r| r.get()));
    let expected_ref = raw_ref.unwrap_or("null");

    // A ref is read only from an object (an array is not read by position), and it is the
    // client's value.
    let sent: Option<Value> = serde_json::from_slice(line).ok();
    let object = line
        .iter()
        .find(|b| !b" \t\r\n".contains(b))
        .is_some_and(|&b| b == b'{');
    if raw_ref.is_some() || parsed.request.is_ok() {
        assert!(object, "ref or request read from a line that is no object");
    }
    if let (Some(r), Some(Value::Object(o))) = (raw_ref, &sent) {
        let value: Value = serde_json::from_str(r).expect("a ref inside parsed JSON parses");
        assert_eq!(o.get("ref"), Some(&value), "ref not echoed as sent");
    }

    match &parsed.request {
        Err(e) => {
            assert!(
                matches!(
                    e.code,
                    ErrorCode::BadRequest
                        | ErrorCode::InvalidDestination
                        | ErrorCode::InvalidSender
                ),
                "parser gave {:?}",
                e.code
            );
            assert!(ErrorCode::ALL.contains(&e.code));
            assert!(!e.message.is_empty());
            assert!(
                e.message.len() <= MAX_MESSAGE,
                "error message of {} bytes: {:?}…",
                e.message.len(),
                e.message.chars().take(120).collect::<String>()
            );
            let reply = Reply::error(parsed.reference.as_deref(), e);
            let f = reply_fields(&reply);
            assert_eq!(f.len(), 3, "{reply}");
            assert_eq!(f["ref"].get(), expected_ref);
            assert_eq!(f["ok"].get(), "false");
            let err: Value = serde_json::from_str(f["error"].get()).expect("error object");
            assert_eq!(err["code"], e.code.as_str());
            assert_eq!(err["message"], e.message.as_str());
        }
        Ok(r) => {
            assert!(line.len() <= MAX_LINE);
            assert_valid(r);
            let body = to_line(r).to_string();
            let text = match raw_ref {
                Some(raw) => format!("{{\"ref\":{raw},{}", &body[1..]),
                None => body,
            };
            let back = parse_line(text.as_bytes());
            assert_eq!(
                back.request.as_ref(),
                Ok(r),
                "{text} does not parse back to the accepted request"
            );
            assert_eq!(back.reference.as_ref().map(|r| r.get()), raw_ref);
            let reply = Reply::ok(parsed.reference.as_deref(), &json!({"op": r.op()}));
            let f = reply_fields(&reply);
            assert_eq!(f["ref"].get(), expected_ref);
            assert_eq!(f["ok"].get(), "true");
        }
    }
}
