//! Result writes: a part's acknowledgement, retry or failure as dispatch records it in the store.
//!
//! Dispatch's loops never wait for these writes (a crash that loses one only means a resend,
//! which at-least-once allows). But while the daemon runs, a write the store refuses because it
//! is full, read-only, failing or its queue is full must not simply be dropped: the part would
//! stay `sending` in the store, claimed by nobody, its message never final until the next start.
//! So every write is watched, and resubmitted with a growing delay until the store takes it or
//! is closed (at a stop, recovery re-queues the part at the next start).
//!
//! One keeper task watches all of them (rather than a task per write: a store commit resolves
//! hundreds at once, and one wake-up for the batch costs far less than hundreds). Owns nothing
//! but the writes being watched: at most one per part in flight, and parts in flight are bounded
//! by the SMSC windows and the claim batches, which bounds the keeper's channel and set too.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{mpsc, oneshot};

use crate::store::{Ack, AckResult, Failure, MessageState, Pending, Store, StoreError};

/// First delay before a refused write is resubmitted; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

type Watch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The handle dispatch records results through.
pub(crate) struct Results {
    store: Store,
    // Unbounded by type, bounded by use: one entry per part in flight (see the module docs).
    tx: mpsc::UnboundedSender<Watch>,
}

/// Resolves once a failure write is durable, or was given up (store closed, part gone).
pub(crate) struct Recorded(oneshot::Receiver<()>);

impl Future for Recorded {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

impl Results {
    /// Starts the keeper task (it ends when every handle is dropped and its writes are done).
    pub(crate) fn start(store: Store) -> Results {
        let (tx, mut rx) = mpsc::unbounded_channel::<Watch>();
        tokio::spawn(async move {
            let mut watched = FuturesUnordered::new();
            loop {
                tokio::select! {
                    w = rx.recv() => match w {
                        Some(w) => watched.push(w),
                        None => break,
                    },
                    Some(()) = watched.next(), if !watched.is_empty() => {}
                }
            }
            while watched.next().await.is_some() {}
        });
        Results { store, tx }
    }

    /// Records an acknowledgement; `then` gets the store's answer once it is durable.
    pub(crate) fn ack(&self, ack: Ack, then: impl FnOnce(AckResult) + Send + 'static) {
        let first = self.store.backend().acked(ack.clone());
        self.watch(keep(
            self.store.clone(),
            ack,
            first,
            |s, a| s.backend().acked(a),
            then,
        ));
    }

    /// Records a retry, a re-queue or a permanent failure. The answer may be awaited (to order
    /// later store writes after it) or dropped (the write goes on regardless).
    pub(crate) fn failure(&self, failure: Failure) -> Recorded {
        let (done, recorded) = oneshot::channel();
        let first = self.store.backend().failed(failure.clone());
        self.watch(keep(
            self.store.clone(),
            failure,
            first,
            |s, f| s.backend().failed(f),
            move |_: MessageState| {
                let _ = done.send(());
            },
        ));
        Recorded(recorded)
    }

    fn watch(&self, w: impl Future<Output = ()> + Send + 'static) {
        if let Err(e) = self.tx.send(Box::pin(w)) {
            // The keeper is gone (the runtime is shutting down): run the write's watch on its
            // own so it is still resubmitted while the process lives.
            tokio::spawn(e.0);
        }
    }
}

/// Awaits a write, resubmitting it while the store refuses it for a storage condition.
async fn keep<I, T>(
    store: Store,
    input: I,
    first: Pending<T>,
    send: fn(&Store, I) -> Pending<T>,
    then: impl FnOnce(T),
) where
    I: Clone + std::fmt::Debug,
{
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
            // Closed: stopping; the part is recovered at the next start. Anything else is a
            // write that can never succeed (the part is gone): nothing to retry.
            Err(StoreError::Closed) => return,
            Err(e) => {
                tracing::debug!(error = %e, write = ?input, "result write not applied");
                return;
            }
        }
    }
}
