//! The gateway message id: 64 bits, milliseconds since the Unix epoch shifted left by 20, plus a
//! counter (a million ids per millisecond). Rendered as 16 lowercase hex digits, so ids sort the
//! same as text and as integers, and the acceptance time can be read back from the id.
//!
//! Who picks the counter depends on the backend:
//! - SQLite (one process per store file): `IdGen` in the writer, strictly increasing even
//!   when the clock stalls or steps back.
//! - PostgreSQL (several instances share the database): the counter is the low 20 bits of the
//!   database sequence `message_counter` (cycling through 0..2^20), taken for a whole accept
//!   batch with one `nextval` statement. Two instances accepting in the same millisecond get
//!   different sequence values, so they never issue the same id (unless the cluster accepts
//!   more than 2^20 messages in one millisecond; the insert then fails on the primary key
//!   rather than reuse an id). Ids of one instance increase with time, and within one
//!   millisecond with the sequence (except where it cycles back to 0).

use std::fmt;
use std::str::FromStr;

/// A gateway message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub u64);

impl MessageId {
    /// Bits of the counter below the milliseconds.
    pub const COUNTER_BITS: u32 = 20;

    /// The smallest id that can be issued at `ms` (for time-range queries).
    pub fn first_at(ms: i64) -> MessageId {
        MessageId((ms.max(0) as u64) << Self::COUNTER_BITS)
    }

    /// The millisecond the id was issued at.
    pub fn millis(self) -> i64 {
        (self.0 >> Self::COUNTER_BITS) as i64
    }

    /// The id as SQLite stores it (ids stay below 2^63 until the year 2248).
    pub fn as_i64(self) -> i64 {
        self.0 as i64
    }

    /// From the stored integer.
    pub fn from_i64(v: i64) -> MessageId {
        MessageId(v as u64)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Error parsing a message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid message id {0:?}: expected 16 hex digits")]
pub struct BadMessageId(pub String);

impl FromStr for MessageId {
    type Err = BadMessageId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 16 || !s.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(BadMessageId(s.chars().take(40).collect()));
        }
        u64::from_str_radix(s, 16)
            .map(MessageId)
            .map_err(|_| BadMessageId(s.to_string()))
    }
}

impl serde::Serialize for MessageId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Issues strictly increasing ids even when the clock stalls or steps back.
#[derive(Debug, Default)]
pub(crate) struct IdGen {
    last: u64,
}

impl IdGen {
    pub(crate) fn starting_after(last: u64) -> IdGen {
        IdGen { last }
    }

    pub(crate) fn next(&mut self, now_ms: i64) -> MessageId {
        let candidate = MessageId::first_at(now_ms).0;
        self.last = candidate.max(self.last.saturating_add(1));
        MessageId(self.last)
    }
}
