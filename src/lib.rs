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
//! | [`address`] | E.164 destinations ([`address::Msisdn`]) and senders with their TON/NPI | accept an address it cannot send |
//! | [`config`] | the TOML file → validated [`config::Config`]; errors name key and line | print a secret |
//! | [`route`] | which route a message takes (first match, or the requested one) | look at SMSC health or do I/O |
//! | [`api`] | the submit protocol: request parsing/validation and replies, the server (pipelining, auth, back-pressure), a client | say `ok` before the store said durable |
//! | [`dispatch`] | from the store's queue to the SMSCs, one module per step: route tasks (token buckets, SMSC choice, circuit breakers), re-split, outcomes of what was sent (acknowledged, failed over, retried, expired), result writes, per-part side state | keep an unbounded queue, drop a part, or see an inbound PDU |
//! | [`daemon`] | `smppd run` as wiring: the `Daemon` value (start, reload, stop in named phases, every task joined) and the flows it wires: accept, inbound receipts and MO, housekeeping, live reload | acknowledge a deliver_sm before it is durable |
//! | [`metrics`] | metric names (documented constants), descriptions, the Prometheus recorder, `/metrics` and `/healthz` | label by number or message id |
//! | [`text`] | GSM 03.38 (+ national shift tables), Latin-1, UCS-2; encoding choice; splitting (UDH 8/16, SAR, payload); decoding; MO reassembly | I/O, tokio, clocks (time is a parameter) |
//! | [`policy`] | marketing policy as pure decisions: send windows (local time, DST, every zone of the country), frequency caps, opt-out keywords and footer, possible and mobile numbers (libphonenumber metadata, IANA zone tables) | I/O, tokio, clocks, the store |
//! | [`receipt`] | delivery-receipt text/TLV parsing, stat → outcome, SMSC message-id normalization | touch the store or the network |
//! | [`store`] | durable queue, parts, delivery-report log, MO, opt-out, events (SQLite, WAL, group commit) | say "durable" before the commit |
//! | [`session`] | one task per bind: connect (TCP/TLS), bind, window, keep-alive, throttling, reconnect, graceful unbind | decide routing, retry on its own, drop a message |
//! | [`sim`] | the SMSC simulator (`smppd sim`), in-process or as a CLI, with receipts, MO and fault injection | share state with the daemon other than the SMPP wire |
//!
//! Pure modules (`pdu`, `text`, `receipt`, `route` decisions) have no tokio in them and are tested
//! without sockets. See `ARCHITECTURE.md` for the invariants every module keeps.

#![forbid(unsafe_code)]

pub mod address;
pub mod api;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dispatch;
mod fnv;
pub mod metrics;
pub mod pdu;
pub mod policy;
pub mod receipt;
pub mod route;
pub mod session;
pub mod sim;
pub mod store;
pub mod text;
