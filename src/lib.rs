//! # smppd — an SMPP 3.4 gateway and dispatch daemon
//!
//! Map of the crate. Data flows one way, and the module names show it:
//!
//! ```text
//!  client ──► api ──► route ──► text ──► store ──► dispatch ──► session ──► SMSC
//!  (NDJSON)  (submit  (which   (encode  (durable  (token      (bind,
//!            protocol) route)   & split) accept)   buckets,    window)
//!                                                  failover)
//!  SMSC ──► session ──► receipt ──► store ──► api events, metrics
//!  deliver_sm          (parse,     (DLR log,
//!                      correlate)   final state)
//! ```
//!
//! | module | owns | never does |
//! |---|---|---|
//! | [`pdu`] | SMPP 3.4 PDUs as typed values; bytes ⇄ PDU; the stream codec | I/O, sockets, clocks |
//! | [`receipt`] | delivery-receipt text/TLV parsing, stat → outcome, SMSC message-id normalization | touch the store or the network |
//! | [`store`] | durable queue, parts, delivery-report log, MO, opt-out, events (SQLite, WAL, group commit) | say "durable" before the commit |
//!
//! Pure modules (`pdu`, `text`, `receipt`, `route` decisions) have no tokio in them and are tested
//! without sockets. See `ARCHITECTURE.md` for the invariants every module keeps.

#![forbid(unsafe_code)]

pub mod receipt;
pub mod store;
