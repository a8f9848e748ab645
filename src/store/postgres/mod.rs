//! The PostgreSQL backend of the store: several instances share one database (`[store] url`).
//!
//! Owns the connection pool and its settings ([`connect`]). Must never put the password in a
//! log line, an error or a metric.

mod connect;

pub use connect::{check_url, pool};

/// The newest schema version this build knows (its migrations' count).
pub const SCHEMA_VERSION: i32 = 1;
