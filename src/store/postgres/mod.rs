//! The PostgreSQL backend of the store: several instances share one database (`[store] url`).
//!
//! Owns the connection pool and its settings ([`connect`]). Must never put the password in a
//! log line, an error or a metric.

mod connect;

pub use connect::{check_url, pool};
