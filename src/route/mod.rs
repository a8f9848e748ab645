//! Routing decisions: which route a message takes.
//!
//! Owns: matching a message (destination, sender, tags, or an explicitly requested route)
//! against the configured routes, first match wins. Pure: no I/O, no clock, no tokio. Must never
//! look at SMSC health — choosing among a route's SMSCs (failover) is dispatch's job, which
//! gets the route from here.

use std::collections::BTreeMap;

use crate::address::{Msisdn, Sender};
use crate::config::Route;

/// Why no route was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("no route matches destination {to}")]
    NoMatch { to: String },
    #[error("route {0:?} does not exist")]
    Unknown(String),
    #[error("route {route:?} does not take destination {to}")]
    RequestedDoesNotMatch { route: String, to: String },
}

/// The facts about a message that routes match on.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub to: &'a Msisdn,
    pub from: &'a Sender,
    pub tags: &'a BTreeMap<String, String>,
}

/// The routes in configuration order, ready to match.
#[derive(Debug, Clone)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        Router { routes }
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// The first route whose rules all match; or the requested one, which must exist and whose
    /// prefix rule must still allow the destination (a client cannot push a number through an
    /// operator the route was not set up for; sender and tag rules are what the request
    /// overrides).
    pub fn select(&self, facts: Facts<'_>, requested: Option<&str>) -> Result<&Route, RouteError> {
        select(&self.routes, facts, requested)
    }
}

/// [`Router::select`] over routes in configuration order.
pub fn select<'r>(
    routes: &'r [Route],
    facts: Facts<'_>,
    requested: Option<&str>,
) -> Result<&'r Route, RouteError> {
    if let Some(name) = requested {
        let route = routes
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| RouteError::Unknown(name.to_owned()))?;
        if !prefix_matches(route, facts.to) {
            return Err(RouteError::RequestedDoesNotMatch {
                route: name.to_owned(),
                to: facts.to.to_string(),
            });
        }
        return Ok(route);
    }
    routes
        .iter()
        .find(|r| matches(r, facts))
        .ok_or_else(|| RouteError::NoMatch {
            to: facts.to.to_string(),
        })
}

fn prefix_matches(route: &Route, to: &Msisdn) -> bool {
    route.prefix.is_empty() || route.prefix.iter().any(|p| to.has_prefix(p))
}

fn matches(route: &Route, facts: Facts<'_>) -> bool {
    if !prefix_matches(route, facts.to) {
        return false;
    }
    if !route.sender.is_empty() {
        let from = facts.from.to_string();
        // Alphanumeric senders are compared case-insensitively: handsets show them as sent, but
        // operators register them without regard to case.
        if !route.sender.iter().any(|s| s.eq_ignore_ascii_case(&from)) {
            return false;
        }
    }
    match &route.tag {
        None => true,
        Some(rule) => match (facts.tags.get(&rule.key), &rule.value) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(v), Some(want)) => v == want,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    fn router(toml: &str) -> Router {
        let cfg = Config::parse(toml, "test.toml", Path::new(".")).expect("valid config");
        Router::new(cfg.routes)
    }

    const CONF: &str = r#"
        [[smsc]]
        name = "a"
        address = "127.0.0.1:2775"
        system_id = "x"
        password = "y"
        [[smsc]]
        name = "b"
        address = "127.0.0.1:2776"
        system_id = "x"
        password = "y"
        [[route]]
        name = "otp"
        tag = "kind=otp"
        smsc = ["b"]
        [[route]]
        name = "acme-se"
        prefix = ["+46"]
        sender = ["ACME"]
        smsc = ["b", "a"]
        [[route]]
        name = "nordics"
        prefix = ["+46", "+47", "45"]
        smsc = ["a", "b"]
        [[route]]
        name = "default"
        smsc = ["b"]
    "#;

    fn pick(
        r: &Router,
        to: &str,
        from: &str,
        tags: &[(&str, &str)],
        req: Option<&str>,
    ) -> Result<String, RouteError> {
        let to = Msisdn::parse(to).expect("valid number");
        let from = Sender::parse(from).expect("valid sender");
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect();
        r.select(
            Facts {
                to: &to,
                from: &from,
                tags: &tags,
            },
            req,
        )
        .map(|r| r.name.clone())
    }

    #[test]
    fn first_matching_route_wins() {
        let r = router(CONF);
        assert_eq!(
            pick(&r, "+46701234567", "OTHER", &[], None),
            Ok("nordics".into())
        );
        assert_eq!(
            pick(&r, "+46701234567", "acme", &[], None),
            Ok("acme-se".into())
        );
        assert_eq!(
            pick(&r, "+4512345678", "OTHER", &[], None),
            Ok("nordics".into())
        );
        assert_eq!(
            pick(&r, "+33612345678", "OTHER", &[], None),
            Ok("default".into())
        );
        assert_eq!(
            pick(&r, "+33612345678", "OTHER", &[("kind", "otp")], None),
            Ok("otp".into())
        );
        assert_eq!(
            pick(&r, "+33612345678", "OTHER", &[("kind", "promo")], None),
            Ok("default".into())
        );
    }

    #[test]
    fn requested_route_must_exist_and_take_the_number() {
        let r = router(CONF);
        assert_eq!(
            pick(&r, "+33612345678", "X", &[], Some("otp")),
            Ok("otp".into())
        );
        assert_eq!(
            pick(&r, "+33612345678", "X", &[], Some("nope")),
            Err(RouteError::Unknown("nope".into()))
        );
        assert!(matches!(
            pick(&r, "+33612345678", "X", &[], Some("nordics")),
            Err(RouteError::RequestedDoesNotMatch { .. })
        ));
    }

    #[test]
    fn no_catch_all_means_no_route() {
        let conf = CONF.replace(
            "name = \"default\"\n        smsc = [\"b\"]",
            "name = \"fr\"\n        prefix = [\"+33\"]\n        smsc = [\"b\"]",
        );
        let r = router(&conf);
        assert_eq!(
            pick(&r, "+14155550100", "X", &[], None),
            Err(RouteError::NoMatch {
                to: "+14155550100".into()
            })
        );
    }
}
