//! `[[route]]` sections to validated [`Route`]s.
//!
//! Owns what a route's values must satisfy beyond their key table: E.164 prefixes, senders
//! smppd can send as, SMSC names that exist (each once), unique route names, and no route
//! after a catch-all (it could never match). Must never write a default or range (they are in
//! [`super::keys`]).

use super::table::{Ctx, Table};
use super::values::{e164_prefix, valid_name};
use super::*;

/// Every `[[route]]`, in file order; at least one when there are SMSCs.
pub(super) fn routes(
    cx: &Ctx<'_>,
    tables: &[Table<'_>],
    smscs: &[Smsc],
) -> Result<Vec<Route>, ConfigError> {
    let mut routes: Vec<Route> = Vec::with_capacity(tables.len());
    for t in tables {
        let route = route(t, smscs)?;
        let name_span = t.span_of("name");
        if routes.iter().any(|o| o.name == route.name) {
            let message = format!("duplicate route name {:?}", route.name);
            return Err(t.err(name_span, "name", message));
        }
        if let Some(shadow) = routes.iter().find(|o| o.is_catch_all()) {
            let message = format!(
                "route {:?} can never match: route {:?} before it has no match rules and takes every message",
                route.name, shadow.name
            );
            return Err(t.section_err(name_span, message));
        }
        routes.push(route);
    }
    if !smscs.is_empty() && routes.is_empty() {
        let message = "no [[route]] sections: add at least one (a route without match rules catches every message)";
        return Err(cx.err(0..0, "route", message));
    }
    Ok(routes)
}

fn route(t: &Table<'_>, smscs: &[Smsc]) -> Result<Route, ConfigError> {
    let name = t.required("name")?;
    if !valid_name(name.get_ref()) {
        let message = "names are 1-64 characters of letters, digits, '-', '_' and '.'";
        return Err(t.err(name.span(), "name", message));
    }
    let mut prefix = Vec::new();
    for p in t.strings("prefix")? {
        let Some(valid) = e164_prefix(p.get_ref()) else {
            let message = format!("{:?} is not an E.164 prefix like \"+46\"", p.get_ref());
            return Err(t.err(p.span(), "prefix", message));
        };
        prefix.push(valid);
    }
    let mut sender = Vec::new();
    for s in t.strings("sender")? {
        match crate::address::Sender::parse(s.get_ref()) {
            Ok(parsed) => sender.push(parsed.to_string()),
            Err(e) => return Err(t.err(s.span(), "sender", format!("{:?}: {e}", s.get_ref()))),
        }
    }
    let tag = tag(t)?;
    let smsc = smsc_names(t, smscs)?;
    let tps = t.opt_int("tps")?.map(|n| n as u32);
    // The default burst is a tenth of a second's worth: smooth pacing, yet no stall at start.
    let burst = t
        .opt_int("burst")?
        .map_or(tps.map_or(1, |t| (t / 10).max(1)), |b| b as u32);
    Ok(Route {
        name: (*name.get_ref()).to_owned(),
        prefix,
        sender,
        tag,
        smsc,
        tps,
        burst,
        reroute_undelivered: t.bool("reroute_undelivered")?,
        smart: t.bool("smart")?,
    })
}

/// `key` or `key=value`.
fn tag(t: &Table<'_>) -> Result<Option<TagRule>, ConfigError> {
    let Some(s) = t.str("tag")? else {
        return Ok(None);
    };
    let (key, value) = match s.get_ref().split_once('=') {
        Some((a, b)) => (a.trim().to_owned(), Some(b.trim().to_owned())),
        None => (s.get_ref().trim().to_owned(), None),
    };
    if key.is_empty() {
        return Err(t.err(s.span(), "tag", "must be \"key\" or \"key=value\""));
    }
    Ok(Some(TagRule { key, value }))
}

/// The route's SMSCs in failover order: at least one, each defined, none twice.
fn smsc_names(t: &Table<'_>, smscs: &[Smsc]) -> Result<Vec<String>, ConfigError> {
    let list = t.strings("smsc")?;
    if list.is_empty() {
        let message = "missing: list the SMSCs this route uses, in failover order";
        return Err(t.err(t.span(), "smsc", message));
    }
    let mut names: Vec<String> = Vec::with_capacity(list.len());
    for s in list {
        let n = *s.get_ref();
        if !smscs.iter().any(|o| o.name == n) {
            let known: Vec<&str> = smscs.iter().map(|o| o.name.as_str()).collect();
            let known = if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            };
            let message = format!("no [[smsc]] is named {n:?} (defined: {known})");
            return Err(t.err(s.span(), "smsc", message));
        }
        if names.iter().any(|o| o == n) {
            return Err(t.err(s.span(), "smsc", format!("{n:?} is listed twice")));
        }
        names.push(n.to_owned());
    }
    Ok(names)
}
