//! Live reload (SIGHUP, `smppd reload`): the file is validated fully first, then dispatch
//! swaps what changed (see [`crate::dispatch`]'s `reload`), the new configuration is published
//! on the `watch` channel every task reads, and the store takes its new settings.
//!
//! Owns the session channels new SMSCs report on, until the stop closes them (so the event
//! consumer and the inbound task can end). Must never apply a file that did not validate, and
//! never run two reloads at once.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Mutex, watch};

use crate::config::Config;
use crate::dispatch::Dispatch;
use crate::session::Channels;
use crate::store::Store;

/// Re-reads the configuration file and applies it.
pub struct Reloader {
    path: Option<PathBuf>,
    dispatch: Arc<Dispatch>,
    store: Store,
    config_tx: watch::Sender<Arc<Config>>,
    /// Where new sessions report; `None` once stopping. The lock also makes reloads one at a
    /// time (held across the whole reload, hence tokio's).
    channels: Mutex<Option<Channels>>,
}

impl Reloader {
    pub(super) fn new(
        path: Option<PathBuf>,
        dispatch: Arc<Dispatch>,
        store: Store,
        config_tx: watch::Sender<Arc<Config>>,
        channels: Channels,
    ) -> Reloader {
        Reloader {
            path,
            dispatch,
            store,
            config_tx,
            channels: Mutex::new(Some(channels)),
        }
    }

    /// Validates the file fully first; a bad file changes nothing and the error (file, line,
    /// key) is returned. Returns a summary of what changed.
    pub async fn reload(&self) -> Result<String, String> {
        let channels = self.channels.lock().await;
        let Some(path) = &self.path else {
            return Err("this daemon was not started from a file".to_owned());
        };
        let new = Config::load(path).map_err(|e| e.to_string())?;
        let channels = channels
            .as_ref()
            .ok_or_else(|| "smppd is stopping".to_owned())?;
        let settings = super::store_settings(&new);
        let summary = self
            .dispatch
            .apply(new, channels, &self.config_tx)
            .map_err(|e| with_causes(&e))?;
        // The rest of the file is in force by now; a store that refuses its settings (a write
        // error) is said, not hidden: a raised size cap that did not take leaves a full store
        // refusing every submit.
        if let Err(e) = self.store.backend().reload(settings).await {
            tracing::error!(error = %e, changes = %summary, "store settings not reloaded");
            return Err(format!(
                "applied ({summary}) except the [store] settings, which the store refused: {e}; \
                 reload again"
            ));
        }
        tracing::info!(path = %path.display(), changes = %summary, "configuration reloaded");
        Ok(summary)
    }

    /// Drops the session channels (waiting for a reload in progress): no session can start
    /// any more, and once the running ones stop, the channels' readers end.
    pub(super) async fn close(&self) {
        self.channels.lock().await.take();
    }
}

/// An error and its causes, `outer: inner: …` (what `{:#}` prints for anyhow), for the reload
/// answer that goes to the client as one string.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}
