//! Live reload as dispatch applies it: SMSCs whose connection settings changed are re-bound
//! (the old sessions drain in the background and hand back what they held), new ones start,
//! removed ones stop, unchanged binds are not touched; routes, rates and failover lists apply
//! at the next part.
//!
//! Owns the swap of the SMSC links and route states. Must never leave a half-applied change:
//! every new session is started before anything is swapped, so a failure changes nothing.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use super::link::SmscLink;
use super::locks::{lock, write};
use super::{Dispatch, RouteState};
use crate::config::Config;
use crate::session::{Channels, SmscHandle, StartError};

/// How long sessions retired by a reload may drain their windows.
const RETIRE_DRAIN: Duration = Duration::from_secs(10);

impl Dispatch {
    /// Applies a new, validated configuration (see the module docs). Returns what changed, for
    /// the log and the client.
    pub fn apply(
        self: &Arc<Self>,
        new: Config,
        channels: &Channels,
        config_tx: &watch::Sender<Arc<Config>>,
    ) -> Result<String, StartError> {
        let old = self.config.borrow().clone();
        // In a cluster only owned SMSCs have sessions here; the lease task takes care of the
        // rest (a new SMSC is taken by some instance at its next round).
        let owned = self.owned();
        let mine = |name: &str| owned.as_ref().is_none_or(|o| o.contains_key(name));
        // Start every new session first, so that a failure changes nothing.
        let started = start_changed(&old, &new, channels, &self.retiring, &mine)?;
        let mut changes = Vec::new();
        for h in self.swap_links(&old, &new, started, &mut changes) {
            // Joined at a stop (see `Dispatch::wait_retired`).
            self.retiring.spawn(h.stop(RETIRE_DRAIN));
        }
        let new_routes = self.swap_routes(&old, &new, &mut changes);
        let _ = config_tx.send(Arc::new(new));
        for name in new_routes {
            self.spawn_route(name);
        }
        // Wake every route: rates or SMSC lists may have changed.
        self.wake_all();
        Ok(if changes.is_empty() {
            "no changes".to_owned()
        } else {
            changes.join(", ")
        })
    }

    /// Puts the newly started sessions in place, gives an SMSC whose rate changed a new bucket
    /// and removes SMSCs no longer configured. Returns the sessions to retire.
    fn swap_links(
        &self,
        old: &Config,
        new: &Config,
        mut started: Vec<(String, SmscHandle)>,
        changes: &mut Vec<String>,
    ) -> Vec<SmscHandle> {
        let mut retired = Vec::new();
        let mut links = write(&self.smscs, "smsc links");
        for smsc in &new.smscs {
            if let Some(i) = started.iter().position(|(n, _)| *n == smsc.name) {
                let (_, h) = started.swap_remove(i);
                let link = Arc::new(SmscLink::new(h, smsc.tps));
                match links.insert(smsc.name.clone(), link) {
                    Some(old_link) => {
                        changes.push(format!("smsc {} re-bound", smsc.name));
                        retired.extend(old_link.take_handle());
                    }
                    None => changes.push(format!("smsc {} added", smsc.name)),
                }
            } else if old.smsc(&smsc.name).is_some_and(|o| o.tps != smsc.tps)
                && let Some(old_link) = links.get(&smsc.name).cloned()
                && let Some(h) = old_link.take_handle()
            {
                // Same sessions, new contractual rate.
                links.insert(smsc.name.clone(), Arc::new(SmscLink::new(h, smsc.tps)));
                changes.push(format!("smsc {} tps {:?}", smsc.name, smsc.tps));
            }
        }
        let gone: Vec<String> = links
            .keys()
            .filter(|n| new.smsc(n).is_none())
            .cloned()
            .collect();
        for name in gone {
            if let Some(l) = links.remove(&name) {
                retired.extend(l.take_handle());
                changes.push(format!("smsc {name} removed"));
            }
        }
        retired
    }

    /// Gives routes whose rate changed a new state, adds new ones and drops removed ones.
    /// Returns the names of routes that need a task.
    fn swap_routes(&self, old: &Config, new: &Config, changes: &mut Vec<String>) -> Vec<String> {
        let mut new_routes = Vec::new();
        let mut routes = lock(&self.routes, "routes");
        for r in &new.routes {
            let same = old
                .routes
                .iter()
                .any(|o| o.name == r.name && o.tps == r.tps && o.burst == r.burst);
            if !same {
                if !routes.contains_key(&r.name) {
                    new_routes.push(r.name.clone());
                }
                routes.insert(r.name.clone(), Arc::new(RouteState::new(r)));
                changes.push(format!("route {} updated", r.name));
            }
        }
        routes.retain(|name, _| new.routes.iter().any(|r| &r.name == name));
        for r in &old.routes {
            if !new.routes.iter().any(|n| n.name == r.name) {
                changes.push(format!("route {} removed", r.name));
            }
        }
        new_routes
    }
}

/// Starts the sessions of every SMSC that is new or whose connection settings changed; on a
/// failure, stops those already started and returns the error.
fn start_changed(
    old: &Config,
    new: &Config,
    channels: &Channels,
    retiring: &TaskTracker,
    mine: &dyn Fn(&str) -> bool,
) -> Result<Vec<(String, SmscHandle)>, StartError> {
    let mut started: Vec<(String, SmscHandle)> = Vec::new();
    for smsc in new.smscs.iter().filter(|s| mine(&s.name)) {
        let unchanged = old
            .smsc(&smsc.name)
            .is_some_and(|o| !o.connection_settings_differ(smsc));
        if unchanged {
            continue;
        }
        match super::start_sessions(smsc, channels) {
            Ok(h) => started.push((smsc.name.clone(), h)),
            Err(e) => {
                for (_, h) in started {
                    retiring.spawn(h.stop(Duration::ZERO));
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}
