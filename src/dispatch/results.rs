//! Result writes: a part's acknowledgement, retry or failure as dispatch records it in the store.
//!
//! Dispatch's loops never wait for these writes (a crash that loses one only means a resend,
//! which at-least-once allows). But while the daemon runs, a write the store refuses because it
//! is full, read-only, failing or its queue is full must not simply be dropped: the part would
//! stay `sending` in the store, claimed by nobody, its message never final until the next start.
//! So each write is watched by a small task that resubmits it, with a growing delay, until the
//! store takes it or is closed (at a stop, recovery re-queues the part at the next start).
//!
//! Owns nothing but those tasks; there is at most one per part in flight (parts are bounded by
//! the SMSC windows and the claim batches), so they are bounded too.

use std::time::Duration;

use crate::store::{Ack, AckResult, Failure, MessageState, Pending, Store, StoreError};

/// First delay before a refused write is resubmitted; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Records an acknowledgement; `then` gets the store's answer once it is durable.
pub(crate) fn ack(
    store: &Store,
    ack: Ack,
    then: impl FnOnce(AckResult) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    keep(store, ack, |s, a| s.backend().acked(a), then)
}

/// Records a retry, a re-queue or a permanent failure.
pub(crate) fn failure(store: &Store, failure: Failure) -> tokio::task::JoinHandle<()> {
    keep(
        store,
        failure,
        |s, f| s.backend().failed(f),
        |_: MessageState| {},
    )
}

fn keep<I, T>(
    store: &Store,
    input: I,
    send: fn(&Store, I) -> Pending<T>,
    then: impl FnOnce(T) + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    I: Clone + std::fmt::Debug + Send + 'static,
    T: Send + 'static,
{
    let store = store.clone();
    let first = send(&store, input.clone());
    tokio::spawn(async move {
        let mut pending = first;
        let mut delay = RETRY_FIRST;
        loop {
            match pending.await {
                Ok(v) => return then(v),
                Err(e) if e.is_overload() => {
                    tracing::debug!(error = %e, write = ?input, "result write refused; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(RETRY_MAX);
                    pending = send(&store, input.clone());
                }
                // Closed: stopping; the part is recovered at the next start. Anything else is
                // a write that can never succeed (the part is gone): nothing to retry.
                Err(StoreError::Closed) => return,
                Err(e) => {
                    tracing::debug!(error = %e, write = ?input, "result write not applied");
                    return;
                }
            }
        }
    })
}
