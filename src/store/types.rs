//! The values that cross the store boundary: what callers write, and what they read back.

use super::MessageId;
use crate::receipt::{IdRule, Outcome, Receipt};
use serde::Serialize;

/// Message class (the submit protocol's `class`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageClass {
    /// OTPs, notifications (default).
    #[default]
    Transactional,
    /// Campaigns; subject to opt-out.
    Marketing,
}

impl MessageClass {
    pub(crate) fn code(self) -> i64 {
        match self {
            MessageClass::Transactional => 0,
            MessageClass::Marketing => 1,
        }
    }
    pub(crate) fn from_code(c: i64) -> MessageClass {
        if c == 1 {
            MessageClass::Marketing
        } else {
            MessageClass::Transactional
        }
    }
}

/// One rendered segment of a message, ready for a `submit_sm`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPart {
    /// `data_coding` for this segment.
    pub data_coding: u8,
    /// `esm_class` (0x40 when the segment starts with a UDH).
    pub esm_class: u8,
    /// `short_message` bytes, UDH included.
    pub segment: Vec<u8>,
    /// `sar_msg_ref_num` when the split uses SAR TLVs.
    pub sar_ref: Option<u16>,
}

/// A message to accept.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewMessage {
    /// Client idempotency key; a second accept with the same key returns the first id.
    pub key: Option<String>,
    /// Destination, E.164.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Route name.
    pub route: String,
    /// Class.
    pub class: MessageClass,
    /// 0–3, higher first.
    pub priority: u8,
    /// Validity deadline (ms since epoch); never sent after it.
    pub valid_until_ms: Option<i64>,
    /// Encoding chosen (`gsm7`, `latin1`, `ucs2`, …).
    pub encoding: String,
    /// How the segments were split (`udh8`, `udh16`, `sar`, `payload`).
    pub split: String,
    /// Opaque encoding options the text layer needs to re-split (JSON).
    pub options: String,
    /// Whether a delivery receipt is requested.
    pub dlr: bool,
    /// Client tags (JSON object), if any.
    pub tags: Option<String>,
    /// The message text (kept for re-splitting; dropped after acknowledgement when
    /// `retain_text = false`).
    pub text: String,
    /// The rendered segments, 1–255.
    pub parts: Vec<NewPart>,
    /// Acceptance time (ms since epoch).
    pub now_ms: i64,
    /// The frequency caps that apply (`[[cap]]`): checked and counted by the store's writer in
    /// the accept's own transaction, so racing accepts never both pass. Empty: no cap applies.
    pub caps: Vec<CapLimit>,
    /// Held until then (ms since epoch: a send window opens, or the client's `send_at`): the
    /// message row records it and its parts start `waiting` with `ready_at` at it, so the
    /// claims' wake-up releases them. `None`: the parts are queued at once.
    pub held_until_ms: Option<i64>,
}

/// One frequency cap as the store applies it at accept: at most `max` accepts counted under
/// (`key`, `scope`) in `(now - per_ms, now]`. Accepts are counted once per (`key`, `scope`)
/// however many caps share it (a daily and a weekly cap read the same accepts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapLimit {
    /// What is counted: the class's name (`marketing`), so caps of one class share counts.
    pub key: String,
    /// The counter within `key`: the recipient, or recipient and tag value
    /// ([`crate::policy::Cap::scope`]).
    pub scope: String,
    /// At most this many accepts in the window (0: none).
    pub max: u32,
    /// The window's length (ms).
    pub per_ms: i64,
    /// How a refusal names the cap, e.g. `max = 3, per = "7d"`.
    pub label: String,
}

/// The accept a cap refused: nothing was stored or counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapRefusal {
    /// The refusing cap's [`CapLimit::label`] (the one that frees up last).
    pub label: String,
    /// The first millisecond at which the message would be allowed.
    pub allowed_at_ms: i64,
}

/// The opt-out scope of every sender: a global opt-out (`[marketing] global_stop`, or an
/// operator's change without a scope).
pub const GLOBAL_SCOPE: &str = "all";

/// The answer to [`super::StoreBackend::accept`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The message id (the first message's id on a duplicate key).
    pub id: MessageId,
    /// Number of parts.
    pub parts: u8,
    /// The route stored (the first message's on a duplicate).
    pub route: String,
    /// The encoding stored (the first message's on a duplicate).
    pub encoding: String,
    /// True when the idempotency key was seen before and nothing new was stored.
    pub duplicate: bool,
}

/// Identifies a part: message id and 1-based part number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PartRef {
    /// Message.
    pub message: MessageId,
    /// 1-based part number.
    pub n: u8,
}

/// A part taken from the queue, with what `submit_sm` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedPart {
    /// Which part.
    pub part: PartRef,
    /// Number of parts of its message.
    pub total: u8,
    /// Destination.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Priority 0–3.
    pub priority: u8,
    /// Receipt requested.
    pub dlr: bool,
    /// Validity deadline.
    pub valid_until_ms: Option<i64>,
    /// Split the segment was rendered with.
    pub split: String,
    /// `data_coding`.
    pub data_coding: u8,
    /// `esm_class`.
    pub esm_class: u8,
    /// `short_message` bytes.
    pub segment: Vec<u8>,
    /// `sar_msg_ref_num`, if SAR.
    pub sar_ref: Option<u16>,
    /// Attempts including this one.
    pub attempts: u32,
    /// This part may have reached an SMSC before (it was in flight at a crash or a timeout).
    pub maybe_sent: bool,
    /// SMSC of the previous attempt, if any.
    pub last_smsc: Option<String>,
    /// Set when this part is being resent after an UNDELIV/REJECTD receipt (route
    /// `reroute_undelivered`): the SMSC whose receipt failed it, which the resend must avoid.
    pub rerouted_from: Option<String>,
    /// The SMSC the part is headed for (PostgreSQL: set at accept to its route's first SMSC,
    /// changed by failover, reroute and `retarget`). SQLite keeps no targets: always `None`.
    pub target: Option<String>,
    /// The SMSCs that refused the part with a failover status ([`Disposition::Failover`]), in
    /// refusal order. SQLite keeps none (dispatch's in-memory refusal map does): always empty.
    pub refused: Vec<String>,
}

/// An SMSC acknowledged a part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Which part.
    pub part: PartRef,
    /// SMSC name.
    pub smsc: String,
    /// `message_id` from `submit_sm_resp`, as given.
    pub smsc_id: String,
    /// The SMSC's id rule (for matching receipts).
    pub rule: IdRule,
    /// When (ms since epoch).
    pub now_ms: i64,
    /// Applied to receipts that arrived before this response (held), as at
    /// [`super::StoreBackend::record_receipt`].
    pub reroute: RerouteRule,
}

/// A receipt applied to a part (at `record_receipt`, or at `acked` when it had been held).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptApplied {
    /// The delivery-report log row.
    pub log_id: i64,
    /// The part.
    pub part: PartRef,
    /// The message's state afterwards.
    pub state: MessageState,
    /// The event sequence number of the `dlr` event.
    pub seq: i64,
}

/// The answer to [`super::StoreBackend::acked`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckResult {
    /// The message's state afterwards.
    pub state: MessageState,
    /// Receipts that had arrived before the response and were matched now.
    pub held_receipts: Vec<ReceiptApplied>,
    /// Set when one of them sent the part back to the queue (see [`RerouteRule`]).
    pub rerouted: Option<Reroute>,
}

/// What to do with a part that was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disposition {
    /// Temporary error: queue again, not before `at_ms`.
    RetryAt {
        /// Earliest next attempt (ms since epoch).
        at_ms: i64,
    },
    /// Hand back without an SMSC answer (timeout, disconnect, shutdown). `maybe_sent` when the
    /// PDU was written, so a resend may be a duplicate.
    Requeue {
        /// The submit_sm may have reached the SMSC.
        maybe_sent: bool,
    },
    /// Permanent failure: the part (and so the message) is `failed`.
    Permanent,
    /// Its validity ended before it was written to an SMSC (the session checks right before
    /// the write): the part (and so the message) is `expired`.
    Expired,
    /// The SMSC `failure.smsc` refused the part with a failover status: queue it again for the
    /// SMSC `to`. PostgreSQL appends the refusing SMSC to the part's `refused` list and sets its
    /// `target` to `to`; SQLite keeps no targets and treats it exactly as
    /// `Requeue { maybe_sent: false }` (dispatch remembers refusals in memory there).
    Failover {
        /// The SMSC the part goes to next.
        to: String,
    },
}

/// A part was not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Which part.
    pub part: PartRef,
    /// SMSC tried, if any.
    pub smsc: Option<String>,
    /// `command_status`, if the SMSC answered.
    pub status: Option<u32>,
    /// What happens next.
    pub disposition: Disposition,
    /// When.
    pub now_ms: i64,
}

/// A delivery receipt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingReceipt {
    /// SMSC name.
    pub smsc: String,
    /// The SMSC's id rule.
    pub rule: IdRule,
    /// The parsed receipt.
    pub receipt: Receipt,
    /// The final outcome for the part, or `None` for an intermediate receipt
    /// (see [`crate::receipt::final_outcome`]).
    pub outcome: Option<Outcome>,
    /// The receipt text as parsed: `short_message` or `message_payload` decoded by its
    /// `data_coding` (UTF-8 for UCS-2 and Latin-1, the octets otherwise; see
    /// [`crate::receipt::receipt_text`]).
    pub raw: Vec<u8>,
    /// The TLV `message_state`, as received.
    pub tlv_state: Option<u8>,
    /// The TLV `network_error_code`, as received.
    pub tlv_network_error: Option<[u8; 3]>,
    /// When (ms since epoch).
    pub now_ms: i64,
    /// The routes that resend a part once through another SMSC after an UNDELIV/REJECTD
    /// receipt (config `reroute_undelivered`); empty for none.
    pub reroute: RerouteRule,
}

/// Which routes resend an undelivered part once through another of their SMSCs (route option
/// `reroute_undelivered`), with each route's SMSCs in failover order. Passed with every receipt
/// rather than kept in the store, so a config reload applies to the next receipt. Cheap to
/// clone (shared), as every receipt and acknowledgement carries one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RerouteRule {
    routes: std::sync::Arc<Vec<(String, Vec<String>)>>,
}

impl RerouteRule {
    /// No route reroutes (every receipt is final as received).
    pub fn none() -> RerouteRule {
        RerouteRule::default()
    }

    /// Adds a route that reroutes, with its SMSCs in failover order.
    pub fn with_route(mut self, route: &str, smscs: &[String]) -> RerouteRule {
        std::sync::Arc::make_mut(&mut self.routes).push((route.to_owned(), smscs.to_vec()));
        self
    }

    /// Whether no route reroutes.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The SMSC a part of `route` failed by `failed_smsc` is resent through: the first of the
    /// route's failover list other than `failed_smsc`. `None` when the route does not reroute
    /// or has no other SMSC.
    pub fn next_smsc(&self, route: &str, failed_smsc: &str) -> Option<&str> {
        let (_, smscs) = self.routes.iter().find(|(r, _)| r == route)?;
        smscs
            .iter()
            .find(|s| s.as_str() != failed_smsc)
            .map(String::as_str)
    }
}

/// A part sent back to the queue by an UNDELIV/REJECTD receipt (see [`RerouteRule`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reroute {
    /// The part.
    pub part: PartRef,
    /// Its route.
    pub route: String,
    /// The SMSC whose receipt failed the part.
    pub from_smsc: String,
    /// The SMSC next in the route's failover order (dispatch may pick a later one when that one
    /// cannot transmit).
    pub to_smsc: String,
    /// The receipt's stat (`UNDELIV`, `REJECTD`, or the SMSC's own spelling).
    pub stat: String,
}

/// The answer to [`super::StoreBackend::record_receipt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptRecorded {
    /// Logged and matched to a part.
    Matched(ReceiptApplied),
    /// Logged, no part known yet: held and matched when the `submit_sm_resp` lands, or kept
    /// unmatched (and counted) for ever.
    Held {
        /// The log row.
        log_id: i64,
    },
    /// Logged and matched to a part whose route reroutes (see [`RerouteRule`]): the receipt
    /// said UNDELIV or REJECTD, the part had not been rerouted before and its route has another
    /// SMSC, so the part is queued again (the message is `queued` until the resend's outcome)
    /// and the resend avoids `from_smsc`.
    Rerouted {
        /// The receipt as applied (`state` is the message's state afterwards: queued).
        applied: ReceiptApplied,
        /// Where the part goes.
        reroute: Reroute,
    },
    /// The same receipt was recorded before (the SMSC re-sent it); nothing written.
    Duplicate {
        /// The earlier log row.
        log_id: i64,
    },
}

/// An opt-out list change carried by an MO.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptOutChange {
    /// Add the sender (keyword that did it) to `scope`.
    Add {
        /// e.g. `STOP`.
        keyword: String,
        /// The sender address opted out of, or [`GLOBAL_SCOPE`].
        scope: String,
    },
    /// Remove the sender's opt-out of exactly `scope` (other scopes stay).
    Remove {
        /// The sender address the start keyword was sent to.
        scope: String,
    },
}

impl OptOutChange {
    /// The scope the change applies to.
    pub fn scope(&self) -> &str {
        match self {
            OptOutChange::Add { scope, .. } | OptOutChange::Remove { scope } => scope,
        }
    }
}

/// A mobile-originated message to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingMo {
    /// SMSC name.
    pub smsc: String,
    /// Sender (the handset).
    pub from: String,
    /// Recipient (our number or short code).
    pub to: String,
    /// Decoded text.
    pub text: String,
    /// Number of parts it was reassembled from.
    pub parts: u8,
    /// Opt-out change, if the text was a keyword.
    pub optout: Option<OptOutChange>,
    /// When.
    pub now_ms: i64,
}

/// Identifies a concatenated MO being collected, as reassembly keys it (addresses as received).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MoSet {
    /// Originating address, as received.
    pub source: String,
    /// Destination address, as received.
    pub dest: String,
    /// Concatenation reference.
    pub reference: u16,
    /// Parts announced.
    pub total: u8,
}

/// One part of a concatenated MO, kept durably until its set is complete (or given up), so a
/// crash between its `deliver_sm_resp` and the last part loses nothing. Holds the PDU's fields
/// as received, so the part is decoded the same way when the set is rebuilt at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoFragment {
    /// The set it belongs to.
    pub set: MoSet,
    /// This part's 1-based number.
    pub seq: u8,
    /// SMSC name.
    pub smsc: String,
    /// The PDU's `data_coding`.
    pub data_coding: u8,
    /// Whether `esm_class` had UDHI set.
    pub udhi: bool,
    /// The SAR TLVs (reference, total, number), when the part carried them.
    pub sar: Option<(u16, u8, u8)>,
    /// `short_message` (or `message_payload`) bytes, UDH included.
    pub payload: Vec<u8>,
    /// When it arrived (ms since epoch).
    pub now_ms: i64,
}

/// The answer to [`super::StoreBackend::record_mo`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MoRecorded {
    /// MO row id.
    pub id: i64,
    /// `mo` event sequence number.
    pub seq: i64,
}

/// The answer to [`super::StoreBackend::expire`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expired {
    /// Messages that became `expired` (validity passed before sending).
    pub expired: u64,
    /// Messages that became `no_receipt`.
    pub no_receipt: u64,
    /// Messages looked at.
    pub scanned: u64,
    /// The call stopped at its limit: more may be due now, so call again.
    pub more: bool,
    /// Every message this call made final (expired, no_receipt, or a worse part's state), so
    /// that whoever keeps state per message in memory can release it.
    pub finished: Vec<MessageId>,
}

/// Retention ages (ms). `None` keeps for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Retention {
    /// Finished messages (and their parts) older than this, counted from their final state.
    pub messages_ms: Option<i64>,
    /// Delivery-report log rows, MO rows and events older than this.
    pub log_ms: Option<i64>,
    /// Frequency-cap counts older than this (the longest `[[cap]] per`); `None` keeps them.
    pub cap_hits_ms: Option<i64>,
}

/// `sync` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// Survives a process crash (WAL, fsync at checkpoints).
    #[default]
    Normal,
    /// Also survives power loss (fsync at every commit).
    Full,
}

impl SyncMode {
    /// The config spelling.
    pub fn from_name(s: &str) -> Option<SyncMode> {
        match s {
            "normal" => Some(SyncMode::Normal),
            "full" => Some(SyncMode::Full),
            _ => None,
        }
    }
}

/// Settings that can change while running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `normal` or `full`.
    pub sync: SyncMode,
    /// Keep message text after every part is acknowledged.
    pub retain_text: bool,
    /// Cap on the store file size (bytes); writes past it fail as `disk_full`.
    pub max_size_bytes: Option<u64>,
    /// Each route's SMSCs in failover order (route name → SMSC names), filled from the config
    /// at open and at every reload. PostgreSQL sets a part's `target` from it at accept and at
    /// a reroute; SQLite ignores it.
    pub routes: std::sync::Arc<Vec<(String, Vec<String>)>>,
}

impl Settings {
    /// The SMSCs of `route` in failover order (empty for a route not listed).
    pub fn route_smscs(&self, route: &str) -> &[String] {
        self.routes
            .iter()
            .find(|(r, _)| r == route)
            .map_or(&[][..], |(_, s)| s.as_slice())
    }
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            sync: SyncMode::Normal,
            retain_text: true,
            max_size_bytes: None,
            routes: std::sync::Arc::default(),
        }
    }
}

/// What recovery found at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Parts that were in flight at the last stop, re-queued and marked as possible duplicates.
    pub requeued_in_flight: u64,
    /// Parts ready in the queue after recovery.
    pub queued: u64,
    /// Schema migrations applied at this open.
    pub migrations_applied: u32,
}

/// Counters for status and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct StoreStats {
    /// Receipts in the log that match no part.
    pub unmatched_receipts: u64,
    /// Parts queued or waiting for a retry.
    pub queued_parts: u64,
    /// Parts in flight (claimed, not answered).
    pub in_flight_parts: u64,
    /// Last event sequence number.
    pub last_seq: i64,
}

macro_rules! codes {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $v:ident = $c:expr, $s:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $v = $c,)* }
        impl $name {
            /// The stored code.
            pub fn code(self) -> i64 { self as i64 }
            /// From the stored code.
            pub fn from_code(c: i64) -> Option<$name> {
                match c { $($c => Some($name::$v),)* _ => None }
            }
            /// The name used in the API, the CLI and events.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => $s,)* }
            }
            /// From the name.
            pub fn from_name(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$v),)* _ => None }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

codes! {
    /// A message's state, aggregated from its parts.
    MessageState {
        /// Some part not yet acknowledged by an SMSC.
        Queued = 0, "queued";
        /// Every part acknowledged; waiting for receipts (final when no receipt was requested).
        Submitted = 1, "submitted";
        /// Every part delivered.
        Delivered = 2, "delivered";
        /// Some part undeliverable.
        Undeliverable = 3, "undeliverable";
        /// Some part expired (validity).
        Expired = 4, "expired";
        /// Some part rejected.
        Rejected = 5, "rejected";
        /// An SMSC refused a part permanently.
        Failed = 6, "failed";
        /// No receipt within the configured wait.
        NoReceipt = 7, "no_receipt";
        /// Every part final, some accepted (ACCEPTD at an SMSC where it is final,
        /// `acceptd_final = true`) and the rest delivered: final, but not known to be delivered.
        Accepted = 8, "accepted";
    }
}

codes! {
    /// A part's state.
    PartState {
        /// Ready to send.
        Queued = 0, "queued";
        /// Claimed, in flight.
        Sending = 1, "sending";
        /// Waiting for a retry time.
        Waiting = 2, "waiting";
        /// Acknowledged by an SMSC, waiting for a receipt.
        Submitted = 3, "submitted";
        /// Receipt: delivered.
        Delivered = 4, "delivered";
        /// Receipt: undeliverable.
        Undeliverable = 5, "undeliverable";
        /// Expired (receipt EXPIRED, or validity passed before sending).
        Expired = 6, "expired";
        /// Receipt: rejected.
        Rejected = 7, "rejected";
        /// SMSC refused permanently.
        Failed = 8, "failed";
        /// No receipt within the wait.
        NoReceipt = 9, "no_receipt";
        /// Receipt: ACCEPTD at an SMSC where it is final (`acceptd_final = true`).
        Accepted = 10, "accepted";
    }
}

impl MessageState {
    /// True for the states a message never leaves (bar a late receipt correcting `no_receipt`).
    pub fn is_final(self) -> bool {
        !matches!(self, MessageState::Queued | MessageState::Submitted)
    }
}

impl PartState {
    /// Not yet acknowledged and still to be sent.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            PartState::Queued | PartState::Sending | PartState::Waiting
        )
    }

    /// A final part state.
    pub fn is_final(self) -> bool {
        !self.is_pending() && self != PartState::Submitted
    }

    pub(crate) fn from_outcome(o: Outcome) -> PartState {
        match o {
            Outcome::Delivered => PartState::Delivered,
            Outcome::Accepted => PartState::Accepted,
            Outcome::Expired => PartState::Expired,
            Outcome::Undeliverable => PartState::Undeliverable,
            Outcome::Rejected => PartState::Rejected,
        }
    }

    /// How bad a final part state is; the message takes its worst part's state.
    fn severity(self) -> u8 {
        match self {
            PartState::Failed => 6,
            PartState::Rejected => 5,
            PartState::Undeliverable => 4,
            PartState::Expired => 3,
            PartState::NoReceipt => 2,
            // Final and not a failure, but less than delivered: one accepted part makes the
            // message `accepted`, not `delivered`.
            PartState::Accepted => 1,
            _ => 0,
        }
    }

    fn message_state(self) -> MessageState {
        match self {
            PartState::Failed => MessageState::Failed,
            PartState::Rejected => MessageState::Rejected,
            PartState::Undeliverable => MessageState::Undeliverable,
            PartState::Expired => MessageState::Expired,
            PartState::NoReceipt => MessageState::NoReceipt,
            PartState::Accepted => MessageState::Accepted,
            PartState::Delivered => MessageState::Delivered,
            PartState::Queued | PartState::Sending | PartState::Waiting => MessageState::Queued,
            PartState::Submitted => MessageState::Submitted,
        }
    }
}

/// A message's state from its parts' states: one state however many parts it has.
///
/// Queued while any part is still to be sent; then submitted until every part is final (with no
/// receipt requested, submitted is final); then the worst part's outcome (failed, rejected,
/// undeliverable, expired, no_receipt, accepted), or delivered when every part was delivered.
pub fn aggregate(dlr: bool, parts: &[PartState]) -> MessageState {
    if parts.is_empty() || parts.iter().any(|p| p.is_pending()) {
        return MessageState::Queued;
    }
    let worst = parts.iter().copied().max_by_key(|p| p.severity());
    let all_final = parts.iter().all(|p| p.is_final());
    match worst {
        Some(w) if w.severity() > 0 && (all_final || !dlr) => w.message_state(),
        _ if all_final => MessageState::Delivered,
        _ => MessageState::Submitted,
    }
}

/// One part, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartView {
    /// 1-based number.
    pub n: u8,
    /// State.
    pub state: PartState,
    /// SMSC of the last attempt.
    pub smsc: Option<String>,
    /// The SMSC's message id, as returned.
    pub smsc_id: Option<String>,
    /// Attempts.
    pub attempts: u32,
    /// Last command_status (0 when acknowledged).
    pub last_status: Option<u32>,
    /// Last receipt stat.
    pub stat: Option<String>,
    /// Last receipt err.
    pub error: Option<String>,
    /// May have been sent twice.
    pub maybe_duplicate: bool,
    /// When acknowledged (ms).
    pub acked_at: Option<i64>,
    /// When final (ms).
    pub done_at: Option<i64>,
}

/// One delivery-report log row, as read back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReceiptView {
    /// Log row id (the log's order).
    pub log_id: i64,
    /// When received (ms).
    pub at: i64,
    /// SMSC.
    pub smsc: String,
    /// The id the receipt carried.
    pub smsc_id: String,
    /// The matched message, if any.
    pub message: Option<MessageId>,
    /// The matched part, if any.
    pub part: Option<u8>,
    /// Parsed stat.
    pub stat: String,
    /// Parsed err.
    pub err: Option<String>,
    /// Parsed submit date.
    pub submit_date: Option<String>,
    /// Parsed done date.
    pub done_date: Option<String>,
    /// Raw receipt text (lossy UTF-8).
    pub raw: String,
    /// TLV message_state, if present.
    pub tlv_state: Option<u8>,
    /// TLV network_error_code (hex), if present.
    pub tlv_network_error: Option<String>,
}

/// One message with its parts and receipts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageView {
    /// Gateway id.
    pub id: MessageId,
    /// Idempotency key.
    pub key: Option<String>,
    /// Destination.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Route.
    pub route: String,
    /// Class.
    pub class: MessageClass,
    /// Priority.
    pub priority: u8,
    /// Encoding.
    pub encoding: String,
    /// Split.
    pub split: String,
    /// Receipt requested.
    pub dlr: bool,
    /// State.
    pub state: MessageState,
    /// Text, unless dropped.
    pub text: Option<String>,
    /// Tags JSON.
    pub tags: Option<String>,
    /// Accepted (ms).
    pub accepted_at: i64,
    /// First part acknowledged (ms).
    pub submitted_at: Option<i64>,
    /// Final (ms).
    pub done_at: Option<i64>,
    /// Validity deadline (ms).
    pub valid_until: Option<i64>,
    /// Held until then at accept (a send window or `send_at`), if it was.
    pub held_until: Option<i64>,
    /// The encoding options the message was accepted with (JSON), for re-splitting.
    pub options: String,
    /// Parts.
    pub parts: Vec<PartView>,
    /// Receipts matched to this message, in log order.
    pub receipts: Vec<ReceiptView>,
}

impl MessageView {
    /// Whether the message is still held at `now_ms` (a send window or `send_at`): held until
    /// a later instant and nothing of it sent yet. A message released, retried or sent reads as
    /// its stored state.
    pub fn is_scheduled(&self, now_ms: i64) -> bool {
        self.state == MessageState::Queued
            && self.held_until.is_some_and(|t| t > now_ms)
            && self
                .parts
                .iter()
                .all(|p| p.state == PartState::Waiting && p.attempts == 0)
    }

    /// The state shown to clients and in `smppd reports`: `scheduled` while
    /// [`is_scheduled`](Self::is_scheduled), else the state's own name.
    pub fn shown_state(&self, now_ms: i64) -> &'static str {
        if self.is_scheduled(now_ms) {
            SCHEDULED
        } else {
            self.state.as_str()
        }
    }
}

/// The state name of a message held until a later instant ([`MessageView::is_scheduled`]): a
/// view of a `queued` message, not a stored state.
pub const SCHEDULED: &str = "scheduled";

/// An event in the sequence subscribers follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Sequence number (strictly increasing; resume with `after = seq`).
    pub seq: i64,
    /// `dlr`, `mo` or `state` (a final state reached without a receipt: expired, failed, no_receipt).
    pub kind: String,
    /// When (ms).
    pub at: i64,
    /// The event's fields: a JSON object, as stored (kept as text: subscribers get it spliced
    /// into their line without a parse and a re-serialization per event).
    pub body: String,
}

impl Event {
    /// The event's fields, parsed (`Null` if the stored text is not JSON).
    pub fn fields(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The subscriber's line, with its `\n`: `{"event":…,"seq":…,"at":…,` then the body's own
    /// fields (the body never holds those three keys).
    pub fn to_line(&self) -> String {
        use std::fmt::Write as _;
        let mut line = String::with_capacity(self.body.len() + 64);
        line.push_str(r#"{"event":"#);
        // The kinds are plain words (`dlr`, `mo`, `state`): written as they are, without a
        // JSON value built per event; anything else is escaped.
        if self
            .kind
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            line.push('"');
            line.push_str(&self.kind);
            line.push('"');
        } else {
            line.push_str(&serde_json::Value::from(self.kind.as_str()).to_string());
        }
        let _ = write!(line, r#","seq":{},"at":{}"#, self.seq, self.at);
        let inner = self
            .body
            .trim()
            .strip_prefix('{')
            .and_then(|b| b.strip_suffix('}'))
            .map(str::trim);
        match inner {
            Some("") => {}
            Some(fields) => {
                line.push(',');
                line.push_str(fields);
            }
            // Not an object (a row from a damaged file): carried whole rather than dropped.
            None => {
                line.push_str(r#","body":"#);
                line.push_str(&serde_json::Value::from(self.body.as_str()).to_string());
            }
        }
        line.push_str("}\n");
        line
    }
}

/// Filter for listing messages (the `reports` command).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageFilter {
    /// Exact id.
    pub id: Option<MessageId>,
    /// Destination.
    pub to: Option<String>,
    /// State.
    pub state: Option<MessageState>,
    /// Accepted at or after (ms).
    pub since_ms: Option<i64>,
    /// At most this many messages (newest first).
    pub limit: usize,
}

/// One number on the opt-out list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptOutEntry {
    /// E.164 with the `+`.
    pub number: String,
    /// What it opted out of: a sender address (the short code or number its MO was sent to,
    /// standing for that sender's group), or [`GLOBAL_SCOPE`] for every sender.
    pub scope: String,
    /// The MO keyword that put it there, or `manual` when an operator added it.
    pub keyword: String,
    /// When it was added (ms since the epoch).
    pub at_ms: i64,
    /// The SMSC the keyword came through; `-` when an operator added it.
    pub smsc: String,
}

/// Parts waiting (queued or waiting for a retry) on one route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QueueDepth {
    /// Route name.
    pub route: String,
    /// Parts waiting to be sent (queued, or waiting for a retry), held ones not counted.
    pub parts: u64,
    /// When the oldest of those parts' message was accepted (ms since the epoch); `None` when
    /// the route has only held parts.
    pub oldest_ms: Option<i64>,
    /// Parts held until a later time by a send window or `send_at` (waiting, never tried): a
    /// message held overnight is not a queue that is falling behind.
    pub scheduled: u64,
}
