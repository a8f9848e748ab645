//! The writer's two lanes: writes about messages already on their way (claims, send results,
//! receipts, MO) go before writes that bring new work in (accepts, sweeps, housekeeping).
//!
//! Why: under load the queue holds hundreds of accepts (every pipelined submit of every client).
//! A receipt queued behind them waits for all of them, and an SMSC sends at most its window of
//! receipts before it waits for their answers, which the receipt task may give only after the
//! commit: with one queue, the receipt rate of a bind was the SMSC's window divided by the depth
//! of the accept queue (measured: 100 receipts per ~4–5 ms, about 22,000 a second, while accepts
//! ran at 35,000; with the simulator's window at 1,000 the same build delivered 31,000–35,000
//! a second). Writes of the first lane are bounded in number by what is in flight (SMPP windows,
//! one claim per route) but not in rate: writes that fail come back at once (a full disk:
//! receipts redelivered, results retried), so after `FIRST_LANE_RUN` first-lane writes in a row
//! the writer takes one from the channel if it holds any; accepts still share every commit. And a batch
//! that has run 0.4 ms commits as soon as a first-lane write waits (`fill_and_run`), so a receipt
//! waits for a short batch, not a 2 ms one: at saturation delivery then keeps pace with the
//! accepts (submit → delivered p50 34–107 ms instead of about 300, end to end +9–17 %).
//!
//! Together: with `kannel-load --only smppd --count 20000 --rounds 3`, a first-lane-only build
//! gave 21,474 and 22,392 msg/s end to end, this one 23,399 and 26,205 (interleaved).
//!
//! Owns the first lane's queue and the wake-up that tells the writer it is not empty. Must never
//! let a first-lane write bypass the queue's capacity, or reorder writes within a lane.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::time::Instant;

use super::Job;
use crate::store::StoreError;

/// Which lane a write takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lane {
    /// About work in flight: taken before anything in [`Lane::New`].
    InFlight,
    /// New work and housekeeping: the channel, in order.
    New,
}

/// The first lane: a bounded queue the writer empties before it takes from the channel.
pub(super) struct FirstLane {
    jobs: Mutex<VecDeque<Box<dyn Job>>>,
    capacity: usize,
}

impl FirstLane {
    pub(super) fn new(capacity: usize) -> FirstLane {
        FirstLane {
            jobs: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
        }
    }

    /// Queues `job` in the first lane and, when the lane was empty, wakes the writer through the
    /// channel. A lane that was not empty needs no token: the writer looks at this lane before
    /// each write it takes and before it blocks, so it has not blocked since the lane last had
    /// a write (tokens stay few and never crowd accepts out of the channel). A full channel
    /// needs none either: the writer is busy.
    pub(super) fn push(&self, job: Box<dyn Job>, wake: &SyncSender<Box<dyn Job>>) {
        {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            if jobs.len() >= self.capacity {
                drop(jobs);
                job.finish(Some(StoreError::Busy {
                    capacity: self.capacity,
                }));
                return;
            }
            jobs.push_back(job);
            if jobs.len() > 1 {
                return;
            }
        }
        match wake.try_send(Box::new(Wake)) {
            Ok(()) | Err(TrySendError::Full(_)) => {}
            // The writer is gone: fail what is queued here rather than leave it unanswered.
            Err(TrySendError::Disconnected(_)) => self.fail_all(),
        }
    }

    /// Whether a write waits in this lane.
    pub(super) fn waiting(&self) -> bool {
        !self
            .jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }

    fn pop(&self) -> Option<Box<dyn Job>> {
        self.jobs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop_front()
    }

    fn fail_all(&self) {
        let jobs = std::mem::take(&mut *self.jobs.lock().unwrap_or_else(|p| p.into_inner()));
        for job in jobs {
            job.finish(Some(StoreError::Closed));
        }
    }
}

/// The token a first-lane write sends through the channel to wake an idle writer; never run.
struct Wake;

impl Job for Wake {
    fn run(&mut self, _: &mut super::write::Writer<'_>) -> Result<(), rusqlite::Error> {
        Ok(())
    }
    fn finish(self: Box<Self>, _: Option<StoreError>) {}
    fn lazy(&self) -> bool {
        true
    }
    fn is_wake(&self) -> bool {
        true
    }
}

/// First-lane writes taken in a row, at most, while the channel holds a write: then one of the
/// channel's. Bounded in number is not bounded in rate: writes that fail (a full disk) come back
/// at once (receipts redelivered, results retried), and without this the reload that frees
/// space, and every accept, would wait behind them for as long as they kept coming.
const FIRST_LANE_RUN: u32 = 32;

/// The writer's view of both lanes: every way of taking a write looks at the first lane first
/// (but see [`FIRST_LANE_RUN`]) and skips wake-up tokens.
pub(super) struct Inbox<'a> {
    pub(super) rx: Receiver<Box<dyn Job>>,
    pub(super) first: &'a FirstLane,
    /// First-lane writes taken since the last write from the channel.
    pub(super) run: std::cell::Cell<u32>,
    /// A write taken while a batch was filling that must start a transaction of its own
    /// (`Commit::Alone`): [`Inbox::recv`] gives it before anything else.
    pub(super) held: std::cell::Cell<Option<Box<dyn Job>>>,
}

impl Inbox<'_> {
    /// A first-lane write, unless [`FIRST_LANE_RUN`] of them were taken in a row and the channel
    /// holds a write: then that one.
    fn take_first(&self) -> Option<Box<dyn Job>> {
        if self.run.get() >= FIRST_LANE_RUN
            && let Some(job) = self.channel_now()
        {
            return Some(job);
        }
        let job = self.first.pop()?;
        self.run.set(self.run.get() + 1);
        Some(job)
    }

    /// A write from the channel if one is queued now (wake-up tokens skipped).
    fn channel_now(&self) -> Option<Box<dyn Job>> {
        loop {
            match self.rx.try_recv() {
                Ok(job) if job.is_wake() => continue,
                Ok(job) => return Some(self.taken_from_channel(job)),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return None,
            }
        }
    }

    fn taken_from_channel(&self, job: Box<dyn Job>) -> Box<dyn Job> {
        self.run.set(0);
        job
    }

    /// Keeps `job` for the next [`Inbox::recv`], which starts the next batch with it.
    pub(super) fn hold(&self, job: Box<dyn Job>) {
        debug_assert!(!self.holding(), "one write held at a time");
        self.held.set(Some(job));
    }

    /// Whether a write is held: then nothing more joins the batch being filled (the held write
    /// comes next, in its lane's order).
    fn holding(&self) -> bool {
        let job = self.held.take();
        let holding = job.is_some();
        self.held.set(job);
        holding
    }

    /// Blocks until a write comes (a held write first); `None` when every sender is gone and
    /// both lanes are empty.
    pub(super) fn recv(&self) -> Option<Box<dyn Job>> {
        if let Some(job) = self.held.take() {
            return Some(job);
        }
        loop {
            if let Some(job) = self.take_first() {
                return Some(job);
            }
            match self.rx.recv() {
                Ok(job) if job.is_wake() => continue,
                Ok(job) => return Some(self.taken_from_channel(job)),
                Err(_) => return self.first.pop(),
            }
        }
    }

    /// Whether a write about work in flight waits (the batch running should commit soon).
    pub(super) fn in_flight_waiting(&self) -> bool {
        self.first.waiting()
    }

    /// The next write if one is queued now (none while a write is held).
    pub(super) fn try_recv(&self) -> Option<Box<dyn Job>> {
        if self.holding() {
            return None;
        }
        self.take_first().or_else(|| self.channel_now())
    }

    /// The next write that comes before `until` (none while a write is held).
    pub(super) fn recv_until(&self, until: Instant) -> Option<Box<dyn Job>> {
        if self.holding() {
            return None;
        }
        loop {
            if let Some(job) = self.take_first() {
                return Some(job);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.try_recv();
            }
            match self.rx.recv_timeout(left) {
                Ok(job) if job.is_wake() => continue,
                Ok(job) => return Some(self.taken_from_channel(job)),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                    return self.first.pop();
                }
            }
        }
    }
}
