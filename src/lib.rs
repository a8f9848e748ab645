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
//! | [`session`] | one task per bind: connect (TCP/TLS), bind, window, keep-alive, throttling, reconnect, graceful unbind | decide routing, retry on its own, drop a message |
//! | [`sim`] | the SMSC simulator (`smppd sim`), in-process or as a CLI, with receipts, MO and fault injection | share state with the daemon other than the SMPP wire |
//!
//! Pure modules (`pdu`, `text`, `receipt`, `route` decisions) have no tokio in them and are tested
//! without sockets. See `ARCHITECTURE.md` for the invariants every module keeps.

#![forbid(unsafe_code)]

pub mod pdu;
pub mod session;
pub mod sim;
