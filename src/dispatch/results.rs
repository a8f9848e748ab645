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
//!
//! The store's answer says the message's state after the write: when no part of it is pending
//! any more (acknowledged, failed for good, or both), its side state is released here
//! ([`SideState::finish`]), so every road to a final state through a result goes one way.
//! At a stop, [`Results::flush`] waits for the writes being watched before the store closes, so
//! a part handed back unsent is re-queued as such, not left `sending` for recovery to mark.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::sync::{Notify, mpsc, oneshot};

use super::parts::SideState;
use crate::store::{Ack, AckResult, Failure, MessageId, MessageState, Pending, Store, StoreError};

/// First delay before a refused write is resubmitted; doubles up to [`RETRY_MAX`].
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(5);

type Watch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The handle dispatch records results through.
pub(crate) struct Results {
    store: Store,
    side: Arc<SideState>,
    // Unbounded by type, bounded by use: one entry per part in flight (see the module docs).
    tx: mpsc::UnboundedSender<Watch>,
    /// Writes handed over and not yet settled (durable or given up), and its wake-up at zero.
    outstanding: Arc<AtomicUsize>,
    settled: Arc<Notify>,
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
    pub(crate) fn start(store: Store, side: Arc<SideState>) -> Results {
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
        Results {
            store,
            side,
            tx,
            outstanding: Arc::new(AtomicUsize::new(0)),
            settled: Arc::new(Notify::new()),
        }
    }

    /// Records an acknowledgement; `then` gets the store's answer once it is durable.
    pub(crate) fn ack(&self, ack: Ack, then: impl FnOnce(AckResult) + Send + 'static) {
        let first = self.store.backend().acked(ack.clone());
        let (side, id) = (self.side.clone(), ack.part.message);
        self.watch(keep(
            self.store.clone(),
            ack,
            first,
            |s, a| s.backend().acked(a),
            move |done: AckResult| {
                release_if_done(&side, id, done.state);
                then(done)
            },
        ));
    }

    /// Records a retry, a re-queue or a permanent failure. The answer may be awaited (to order
    /// later store writes after it) or dropped (the write goes on regardless).
    pub(crate) fn failure(&self, failure: Failure) -> Recorded {
        let (done, recorded) = oneshot::channel();
        let first = self.store.backend().failed(failure.clone());
        let (side, id) = (self.side.clone(), failure.part.message);
        self.watch(keep(
            self.store.clone(),
            failure,
            first,
            |s, f| s.backend().failed(f),
            move |state: MessageState| {
                release_if_done(&side, id, state);
                let _ = done.send(());
            },
        ));
        Recorded(recorded)
    }

    /// Waits until every write handed over so far has settled (durable, or given up), or until
    /// `deadline` has passed; false on the deadline (a store that keeps refusing).
    pub(crate) async fn flush(&self, deadline: Duration) -> bool {
        let end = tokio::time::Instant::now() + deadline;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.outstanding.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::timeout_at(end, settled).await.is_err() {
                return false;
            }
        }
    }

    fn watch(&self, w: impl Future<Output = ()> + Send + 'static) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let (outstanding, settled) = (self.outstanding.clone(), self.settled.clone());
        let w = async move {
            w.await;
            if outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
                settled.notify_waiters();
            }
        };
        if let Err(e) = self.tx.send(Box::pin(w)) {
            // The keeper is gone (the runtime is shutting down): run the write's watch on its
            // own so it is still resubmitted while the process lives.
            tokio::spawn(e.0);
        }
    }
}

/// Releases a message's side state once the store says none of its parts is pending: queued
/// means a part is still to be sent (a later part, a retry, a failover, a reroute's resend).
fn release_if_done(side: &SideState, id: MessageId, state: MessageState) {
    if state != MessageState::Queued {
        side.finish(id);
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
