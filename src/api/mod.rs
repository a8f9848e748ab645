//! The submit protocol: how internal services hand messages to smppd.
//!
//! Owns: the newline-delimited JSON protocol (`protocol`: request parsing, validation and
//! response rendering, pure). Must never answer `ok` to a submit before the store reported the
//! message durable.

pub mod client;
pub mod protocol;
pub mod server;
