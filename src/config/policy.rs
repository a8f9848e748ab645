//! `[marketing]`, `[[window]]`, `[[cap]]` and `[[sender]]` to a validated [`Policy`].
//!
//! Owns what the policy's values must satisfy beyond their key tables: `allow` rules that
//! parse, IANA zone names, E.164 prefixes, unique window names, keywords that are not empty, a
//! footer that offers an opt-out, a sender in one `[[sender]]` group only. Must never write a default or range (they are in
//! [`super::keys`]) and never decide anything about a message (that is [`crate::policy`]).

use chrono_tz::Tz;

use super::table::Table;
use super::values::{e164_prefix, valid_name};
use super::*;
use crate::policy::{
    AllowRule, Cap, Class, Marketing, Policy, SenderGroup, Window, keyword, sender,
};

const CLASSES: [Class; 2] = [Class::Marketing, Class::Transactional];

/// The policy sections; `[optout]` is read already: a footer may name one of its stop
/// keywords, and a global stop keyword must not be one of its start keywords.
pub(super) fn policy(
    marketing: &Table<'_>,
    windows: &[Table<'_>],
    caps: &[Table<'_>],
    optout: &OptOut,
) -> Result<Policy, ConfigError> {
    let marketing = self::marketing(marketing, optout)?;
    let mut out: Vec<Window> = Vec::with_capacity(windows.len());
    for t in windows {
        let w = window(t)?;
        if out.iter().any(|o| o.name == w.name) {
            let message = format!("duplicate window name {:?}", w.name);
            return Err(t.err(t.span_of("name"), "name", message));
        }
        out.push(w);
    }
    Ok(Policy {
        windows: out,
        caps: caps.iter().map(cap).collect::<Result<_, _>>()?,
        senders: Vec::new(),
        marketing,
    })
}

fn marketing(t: &Table<'_>, optout: &OptOut) -> Result<Marketing, ConfigError> {
    let stop = &optout.stop;
    let start: Vec<String> = optout.start.iter().map(|k| keyword::normalize(k)).collect();
    let mut global_stop = Vec::new();
    for s in t.strings("global_stop")? {
        let words = keyword::words(s.get_ref());
        let message = match words.as_slice() {
            [one] if start.contains(one) => {
                format!("{:?} is also a start keyword (optout.start)", s.get_ref())
            }
            [one] => {
                global_stop.push(one.clone());
                continue;
            }
            [] => format!("{:?} has no letter or digit to match", s.get_ref()),
            _ => format!(
                "{:?} is more than one word: replies match on their first word only",
                s.get_ref()
            ),
        };
        return Err(t.err(s.span(), "global_stop", message));
    }
    let footer = match t.str("footer")? {
        None => None,
        Some(f) if f.get_ref().trim().is_empty() => {
            return Err(t.err(f.span(), "footer", "empty: omit the key for no footer"));
        }
        Some(f) => {
            let all: Vec<&String> = stop.iter().chain(&global_stop).collect();
            if !keyword::contains_keyword(f.get_ref(), &all) {
                let message = "the footer names no stop keyword (optout.stop or global_stop), \
                               so it offers no way to opt out";
                return Err(t.err(f.span(), "footer", message));
            }
            Some((*f.get_ref()).to_owned())
        }
    };
    Ok(Marketing {
        footer,
        require_optout: t.bool("require_optout")?,
        global_stop,
    })
}

fn window(t: &Table<'_>) -> Result<Window, ConfigError> {
    let name = t.required("name")?;
    if !valid_name(name.get_ref()) {
        let message = "names are 1-64 characters of letters, digits, '-', '_' and '.'";
        return Err(t.err(name.span(), "name", message));
    }
    let rules = t.strings("allow")?;
    if rules.is_empty() {
        let message = "missing: list when messages may be sent, like [\"mon-fri 09:00-20:00\"]";
        return Err(t.err(t.span_of("allow"), "allow", message));
    }
    let allow = rules
        .iter()
        .map(|r| AllowRule::parse(r.get_ref()).map_err(|e| t.err(r.span(), "allow", e.to_string())))
        .collect::<Result<_, _>>()?;
    let timezone = match t.str("timezone")? {
        None => None,
        Some(z) => Some(z.get_ref().parse::<Tz>().map_err(|_| {
            let message = format!(
                "{:?} is not an IANA time zone like \"Europe/Stockholm\"",
                z.get_ref()
            );
            t.err(z.span(), "timezone", message)
        })?),
    };
    Ok(Window {
        name: (*name.get_ref()).to_owned(),
        class: t.choice("class", &CLASSES)?,
        prefixes: prefixes(t)?,
        allow,
        timezone,
    })
}

/// E.164 prefixes, written with `+`.
fn prefixes(t: &Table<'_>) -> Result<Vec<String>, ConfigError> {
    t.strings("prefix")?
        .iter()
        .map(|p| {
            e164_prefix(p.get_ref()).ok_or_else(|| {
                let message = format!("{:?} is not an E.164 prefix like \"+46\"", p.get_ref());
                t.err(p.span(), "prefix", message)
            })
        })
        .collect()
}

fn cap(t: &Table<'_>) -> Result<Cap, ConfigError> {
    let Some(max) = t.opt_int("max")? else {
        return Err(t.err(t.span(), "max", "missing (required)"));
    };
    t.required("per")?;
    let tag = match t.str("tag")? {
        Some(s) if s.get_ref().trim().is_empty() => {
            return Err(t.err(
                s.span(),
                "tag",
                "empty: omit the key to count per recipient",
            ));
        }
        s => s.map(|s| s.get_ref().trim().to_owned()),
    };
    Ok(Cap {
        class: t.choice("class", &CLASSES)?,
        max: u32::try_from(max).unwrap_or(u32::MAX),
        per: t.duration("per")?,
        tag,
    })
}

/// `[[sender]]` groups: an address and its aliases, each sender in one group only.
pub(super) fn senders(tables: &[Table<'_>]) -> Result<Vec<SenderGroup>, ConfigError> {
    let mut out: Vec<SenderGroup> = Vec::with_capacity(tables.len());
    for t in tables {
        let address = t.required("address")?;
        let a = sender::normalize(address.get_ref());
        if a.is_empty() {
            return Err(t.err(address.span(), "address", "empty"));
        }
        if let Some(g) = out
            .iter()
            .find(|g| g.address == a || g.aliases.contains(&a))
        {
            let message = format!(
                "{:?} is already in the group of {:?}",
                address.get_ref(),
                g.address
            );
            return Err(t.err(address.span(), "address", message));
        }
        let mut aliases: Vec<String> = Vec::new();
        for s in t.strings("aliases")? {
            let n = sender::normalize(s.get_ref());
            if n.is_empty() {
                return Err(t.err(s.span(), "aliases", "an empty sender"));
            }
            let taken = out
                .iter()
                .find(|g| g.address == n || g.aliases.contains(&n));
            if let Some(g) = taken {
                let message = format!(
                    "{:?} is already in the group of {:?}: a sender belongs to one group",
                    s.get_ref(),
                    g.address
                );
                return Err(t.err(s.span(), "aliases", message));
            }
            if n != a && !aliases.contains(&n) {
                aliases.push(n);
            }
        }
        out.push(SenderGroup {
            address: a,
            aliases,
        });
    }
    Ok(out)
}
