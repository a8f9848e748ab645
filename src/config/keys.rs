//! Every key of the configuration file, written once: name, kind, default and documentation.
//!
//! Owns the schema. The parser refuses any key not listed here, the getters take ranges,
//! choices and defaults from here, and the comments in `conf/smppd.toml` and the README's key
//! table are generated from here (`smppd check-config --annotate` / `--keys`; tests/config.rs
//! checks the committed files). Adding a key is one entry here plus its validation in the
//! section's parser. Must never hold behaviour: only data.

use super::schema::{Bounds, Default, Key, Kind, Section};

/// The sections in the order the documentation shows them.
pub const SECTIONS: &[&Section] = &[
    &LISTEN, &STORE, &LOG, &OPTOUT, &MARKETING, &SENDER, &WINDOW, &CAP, &SMSC, &TLS, &ROUTE,
    &SIMULATOR,
];

/// The top-level sections (`tls` is nested in `[[smsc]]`).
pub const TOP: &[&Section] = &[
    &LISTEN, &STORE, &CLUSTER, &LOG, &OPTOUT, &MARKETING, &SENDER, &WINDOW, &CAP, &SMSC, &ROUTE,
    &SIMULATOR,
];

const fn key(name: &'static str, kind: Kind, default: Default, doc: &'static str) -> Key {
    Key {
        name,
        kind,
        default,
        doc,
    }
}

const DURATION: Kind = Kind::Duration(Bounds::Any);
/// The `name` of a window, a route, a simulator: the same rule everywhere (`values::valid_name`).
const NAME: Key = key(
    "name",
    Kind::Str,
    Default::Required,
    "A unique name (1-64 letters, digits, '-', '_', '.').",
);
const RATE: Kind = Kind::Int {
    min: 1,
    max: 1_000_000,
};

pub const LISTEN: Section = Section {
    name: "listen",
    array: false,
    within: None,
    doc: "Where the submit protocol and the metrics endpoint listen.",
    keys: &[
        key(
            "submit",
            Kind::Str,
            Default::Str("127.0.0.1:2776"),
            "The submit protocol (newline-delimited JSON). An IP:port, or \"unix:/path/to/socket\". \
             A non-loopback address requires `token`.",
        ),
        key(
            "metrics",
            Kind::Str,
            Default::Off("off"),
            "Prometheus /metrics and /healthz on this IP:port. Omit (or \"\") to disable.",
        ),
        key(
            "token",
            Kind::Str,
            Default::Off("none"),
            "Shared secret clients must send first: {\"op\":\"auth\",\"token\":\"…\"}. At least 16 \
             characters.",
        ),
        key(
            "max_connections",
            Kind::Int {
                min: 1,
                max: 100_000,
            },
            Default::Int(1024),
            "Concurrent submit-protocol connections; more wait in the kernel backlog. `smppd run` \
             raises its open-file limit (RLIMIT_NOFILE) towards the hard limit to fit them, and \
             warns when it cannot.",
        ),
        key(
            "write_timeout",
            Kind::Duration(Bounds::Between("100ms", "1h")),
            Default::Str("30s"),
            "A client that leaves a response unread this long is disconnected. Each connection \
             buffers at most 256 requests in progress and 256 unwritten responses.",
        ),
    ],
};

pub const STORE: Section = Section {
    name: "store",
    array: false,
    within: None,
    doc: "The durable queue and logs: SQLite at `path` (one daemon), or PostgreSQL at `url` \
          (several daemons sharing it; see `[cluster]`).",
    keys: &[
        key(
            "path",
            Kind::Str,
            Default::Str("var/smppd.db"),
            "The SQLite database (created with mode 0600; WAL files beside it), relative to the \
             working directory. Not used when `url` is set.",
        ),
        key(
            "url",
            Kind::Str,
            Default::Off("SQLite at `path`"),
            "A PostgreSQL database shared by every instance: \
             `postgres://user@host:5432/smppd`, with `?sslmode=require` (or `verify-full`) for \
             TLS. Put no password here: use `password_file` or the `PGPASSWORD` environment \
             variable.",
        ),
        key(
            "password_file",
            Kind::Str,
            Default::Off("`PGPASSWORD`, else none"),
            "A file holding the PostgreSQL password (its first line), relative to this file.",
        ),
        key(
            "pool_size",
            Kind::Int { min: 4, max: 64 },
            Default::Int(8),
            "PostgreSQL connections of this instance's store: the writer's, the event \
             sequencer's, and reads (which never wait behind a write). The lease task and the \
             route budgets open two more each.",
        ),
        key(
            "sync",
            Kind::Choice(&["normal", "full"]),
            Default::Str("normal"),
            "\"normal\": survives a process crash. \"full\": fsync at every commit, survives power \
             loss.",
        ),
        key(
            "retain_text",
            Kind::Bool,
            Default::Bool(true),
            "Keep the text of a message after all its parts were acknowledged by an SMSC.",
        ),
        key(
            "keep_messages",
            DURATION,
            Default::Str("30d"),
            "Finished messages and their parts are pruned after this long.",
        ),
        key(
            "keep_reports",
            DURATION,
            Default::Str("30d"),
            "Delivery-report and MO log rows are pruned after this long.",
        ),
        key(
            "receipt_wait",
            DURATION,
            Default::Str("72h"),
            "A submitted message with no final receipt after this long becomes `no_receipt`.",
        ),
        key(
            "max_size",
            Kind::Size,
            Default::Off("no cap"),
            "Cap on the store file (\"512MiB\", \"8GiB\"; units B, KiB, MiB, GiB, TiB; at least \
             64KiB). Past it, writes fail as on a full disk: submits get `overloaded`, receipts \
             are answered ESME_RX_T_APPN (the SMSC redelivers) until pruning frees room or a \
             reload raises the cap.",
        ),
    ],
};

pub const CLUSTER: Section = Section {
    name: "cluster",
    array: false,
    within: None,
    doc: "Several instances on one PostgreSQL store (`[store] url`): each SMSC is owned by one \
          live instance through a lease in the database. Ignored with SQLite.",
    keys: &[
        key(
            "instance",
            Kind::Str,
            Default::Derived("the host name"),
            "This instance's name, unique in the cluster (letters, digits, `.`, `-`, `_`).",
        ),
        key(
            "lease_ttl",
            Kind::Duration(Bounds::AtLeast("2s")),
            Default::Str("10s"),
            "How long an SMSC lease lasts without renewal. The owner renews it every third of \
             this and unbinds when it could not renew for half of it; a dead instance's SMSCs \
             are taken over after at most this long.",
        ),
    ],
};

pub const LOG: Section = Section {
    name: "log",
    array: false,
    within: None,
    doc: "What the daemon logs, and how.",
    keys: &[
        key(
            "format",
            Kind::Choice(&["text", "json"]),
            Default::Str("text"),
            "\"text\" or \"json\" (one JSON object per line).",
        ),
        key(
            "level",
            Kind::Str,
            Default::Str("info"),
            "A level (error, warn, info, debug, trace) or per-module levels: \
             \"info,smppd::session=debug\".",
        ),
    ],
};

pub const OPTOUT: Section = Section {
    name: "optout",
    array: false,
    within: None,
    doc: "MO keywords that maintain the opt-out list.",
    keys: &[
        key(
            "stop",
            Kind::Strings,
            Default::List(&[
                "STOP",
                "STOPP",
                "AVSLUTA",
                "END",
                "UNSUBSCRIBE",
                "CANCEL",
                "QUIT",
            ]),
            "An MO whose first word is one of these (case, punctuation and diacritics ignored: \
             \"Stopp tack\", \"STOP!\") opts its sender out of the address the MO was sent to \
             (and the senders of its `[[sender]]` group); `marketing` from them to the number \
             is refused with `opted_out`.",
        ),
        key(
            "start",
            Kind::Strings,
            Default::List(&["START", "UNSTOP"]),
            "An MO whose first word is one of these undoes the opt-out of exactly the address \
             it was sent to (its group's); a global opt-out (`global_stop`) stays until \
             `smppd optout remove --scope all` (or the `optout` op) takes it off.",
        ),
    ],
};

const CLASS: Kind = Kind::Choice(&["marketing", "transactional"]);

pub const MARKETING: Section = Section {
    name: "marketing",
    array: false,
    within: None,
    doc: "How marketing texts offer an opt-out: the footer (or `require_optout`) applies to every \
          `marketing` submit, and `global_stop` to MO replies (by their first word).",
    keys: &[
        key(
            "footer",
            Kind::Str,
            Default::Off("none"),
            "Appended (after a newline) to a marketing text that contains no stop keyword as a \
             word; must itself contain one (of `optout.stop` or `global_stop`).",
        ),
        key(
            "require_optout",
            Kind::Bool,
            Default::Bool(false),
            "Without a footer: refuse a marketing text that contains no stop keyword with \
             `missing_optout`.",
        ),
        key(
            "global_stop",
            Kind::Strings,
            Default::List(&["STOPALL"]),
            "MO keywords that opt the sender out of every sender's messages. Replies match on \
             their first word, ignoring case, punctuation and diacritics (\"Stopall!\" matches).",
        ),
    ],
};

pub const SENDER: Section = Section {
    name: "sender",
    array: true,
    within: None,
    doc: "Senders that belong together for opt-out: an MO stop keyword sent to `address` opts \
          the number out of `marketing` from the address and from every alias (a sender in no \
          group is its own scope). Numbers compare by their digits, other senders ignoring case.",
    keys: &[
        key(
            "address",
            Kind::Str,
            Default::Required,
            "The short code or number MOs arrive on: the scope of the group's opt-outs.",
        ),
        key(
            "aliases",
            Kind::Strings,
            Default::List(&[]),
            "Senders (alphanumeric, or other numbers) that belong with it; a sender may be in \
             one group only.",
        ),
    ],
};

pub const WINDOW: Section = Section {
    name: "window",
    array: true,
    within: None,
    doc: "Send windows: a message of the window's class to a destination whose local time is \
          outside every window that applies is held until the next one opens. Without \
          `timezone`, a country with several zones (US, Russia…) gets the intersection of the \
          window over all of them, so nobody is messaged at night. Held messages are accepted \
          (the reply's `held_until`, `query` says `scheduled`) and released at the route's pace \
          when the window opens; one whose validity ends first is refused (`outside_window`). \
          `transactional` messages are held only by windows of that class.",
    keys: &[
        NAME,
        key(
            "class",
            CLASS,
            Default::Str("marketing"),
            "The messages it holds: \"marketing\" or \"transactional\".",
        ),
        key(
            "prefix",
            Kind::Strings,
            Default::Off("every destination"),
            "E.164 prefixes of the destinations it applies to, like \"+46\".",
        ),
        key(
            "allow",
            Kind::Strings,
            Default::Required,
            "Local times messages may be sent: days (mon…sun, ranges mon-fri, lists mon,wed, or \
             daily) and a range HH:MM-HH:MM (the end excluded; 24:00 is midnight). A range past \
             midnight is refused: write two rules.",
        ),
        key(
            "timezone",
            Kind::Str,
            Default::Derived("every zone of the destination's country"),
            "An IANA zone (\"Europe/Stockholm\") the rules are read in, instead of the \
             destination's.",
        ),
    ],
};

pub const CAP: Section = Section {
    name: "cap",
    array: true,
    within: None,
    doc: "Frequency caps: at most `max` accepted messages of a class per recipient in any `per`; \
          a refused submit (`frequency_capped`) is told when it would be allowed (`allowed_at`) \
          and does not count. Counts are kept in the store: they survive restarts and are shared \
          by every instance on one PostgreSQL; a repeated idempotency key does not count again.",
    keys: &[
        key(
            "class",
            CLASS,
            Default::Str("marketing"),
            "The messages it counts: \"marketing\" or \"transactional\".",
        ),
        key(
            "max",
            Kind::Int {
                min: 1,
                max: 1_000_000,
            },
            Default::Required,
            "Accepted messages allowed per recipient in any `per`.",
        ),
        key(
            "per",
            Kind::Duration(Bounds::AtLeast("1s")),
            Default::Required,
            "The sliding window, like \"24h\" or \"7d\".",
        ),
        key(
            "tag",
            Kind::Str,
            Default::Off("per recipient"),
            "Count per recipient and value of this submit tag (\"campaign\": `max` per campaign); \
             messages without the tag are not capped by it.",
        ),
    ],
};

pub const SMSC: Section = Section {
    name: "smsc",
    array: true,
    within: None,
    doc: "One operator SMSC per section.",
    keys: &[
        key(
            "name",
            Kind::Str,
            Default::Required,
            "A unique name (1-64 letters, digits, '-', '_', '.'): used in routes, logs, metrics \
             and `smppd status`.",
        ),
        key(
            "address",
            Kind::Str,
            Default::Required,
            "host:port of the SMSC (2775 is SMPP's usual port).",
        ),
        key(
            "tls",
            Kind::FlagOrTable(&TLS),
            Default::Bool(false),
            "false (plain TCP), true (TLS with the system's trusted roots), or a table:\n   \
             { ca = \"ca.pem\", cert = \"client.pem\", key = \"client.key\", server_name = \
             \"smsc.example.net\",\n     insecure = false }\n\
             `insecure = true` skips certificate checks (test SMSCs only; logged loudly at every \
             bind).",
        ),
        key(
            "system_id",
            Kind::Str,
            Default::Required,
            "The login: at most 15 ASCII characters (SMPP 3.4 limit).",
        ),
        key(
            "password",
            Kind::Str,
            Default::Required,
            "The password: at most 8 ASCII characters (SMPP 3.4 limit). Never logged.",
        ),
        key(
            "system_type",
            Kind::Str,
            Default::Str(""),
            "system_type sent in the bind (at most 12 characters; usually empty).",
        ),
        key(
            "bind",
            Kind::Choice(&["transceiver", "tx_rx"]),
            Default::Str("transceiver"),
            "\"transceiver\" (one connection per bind) or \"tx_rx\" (a transmitter and a \
             receiver).",
        ),
        key(
            "binds",
            Kind::Int { min: 1, max: 64 },
            Default::Int(1),
            "Parallel binds to this SMSC.",
        ),
        key(
            "window",
            Kind::Int {
                min: 1,
                max: 10_000,
            },
            Default::Int(10),
            "Requests in flight per bind before waiting for responses.",
        ),
        key(
            "tps",
            RATE,
            Default::Off("unlimited"),
            "The SMSC's contractual rate in parts per second across all its binds.",
        ),
        key(
            "enquire_link",
            Kind::Duration(Bounds::AtLeast("100ms")),
            Default::Str("30s"),
            "Send enquire_link after this long without traffic; no answer within \
             response_timeout → rebind.",
        ),
        key(
            "response_timeout",
            Kind::Duration(Bounds::AtLeast("100ms")),
            Default::Str("10s"),
            "How long to wait for a response before handing the message back for retry.",
        ),
        key(
            "reconnect_min",
            Kind::Duration(Bounds::AtLeast("100ms")),
            Default::Str("1s"),
            "Reconnect backoff: doubles from reconnect_min up to reconnect_max, with jitter, \
             while binds fail or drop before carrying any traffic; a bind that worked and is \
             dropped by the SMSC comes back after reconnect_min.",
        ),
        key(
            "reconnect_max",
            DURATION,
            Default::Str("60s"),
            "The longest reconnect delay; not shorter than reconnect_min.",
        ),
        key(
            "split",
            Kind::Choice(&["udh8", "udh16", "sar", "payload"]),
            Default::Str("udh8"),
            "How long messages are split: \"udh8\", \"udh16\", \"sar\" (TLVs), or \"payload\" \
             (one message_payload).",
        ),
        key(
            "receipt_id",
            Kind::Choice(&["same", "hex_to_dec", "dec_to_hex"]),
            Default::Str("same"),
            "How this SMSC's receipt ids relate to its submit_sm_resp ids: \"same\", \"hex_to_dec\" \
             (decimal receipts for hex ids) or \"dec_to_hex\".",
        ),
        key(
            "shift_tables",
            Kind::Choices(&["tr", "es", "pt"]),
            Default::List(&[]),
            "National language shift tables this SMSC delivers correctly: any of \"tr\", \"es\", \"pt\".",
        ),
        key(
            "gsm_packed",
            Kind::Bool,
            Default::Bool(false),
            "Send GSM 7-bit packed (8 septets in 7 octets). Most SMSCs want unpacked (false).",
        ),
        key(
            "max_parts",
            Kind::Int { min: 1, max: 255 },
            Default::Int(10),
            "Most parts a message may have through this SMSC; longer texts are refused as \
             too_long.",
        ),
        key(
            "failover_statuses",
            Kind::Statuses,
            Default::List(&[
                "ESME_RSYSERR",
                "ESME_RSUBMITFAIL",
                "ESME_RX_T_APPN",
                "ESME_RUNKNOWNERR",
            ]),
            "A part this SMSC rejects with one of these statuses is tried on the route's next \
             SMSC instead of failing. Names or numbers.",
        ),
        key(
            "acceptd_final",
            Kind::Bool,
            Default::Bool(false),
            "What a receipt with stat ACCEPTD means. false: \"accepted by the network / next \
             hop\", as real SMSCs and aggregators use it; intermediate, the message waits for the \
             outcome. true: the SMPP 3.4 meaning (manually accepted); final with the state \
             \"accepted\". Never \"delivered\".",
        ),
        key(
            "validity",
            Kind::Choice(&["relative", "absolute", "none"]),
            Default::Str("relative"),
            "How a message's `validity` is put in submit_sm's validity_period, computed when the \
             part is written: \"relative\" (the time left, e.g. 000000002959000R; needs no clock \
             agreement with the SMSC), \"absolute\" (the end as UTC time, YYMMDDhhmmss000+), or \
             \"none\" (empty: the SMSC's default). Messages without a validity always go with an \
             empty field.",
        ),
    ],
};

pub const TLS: Section = Section {
    name: "tls",
    array: false,
    within: Some("smsc"),
    doc: "An SMSC's TLS settings, when `tls` is a table. Files are relative to the \
          configuration file.",
    keys: &[
        key(
            "ca",
            Kind::Str,
            Default::Off("the system's trusted roots"),
            "A PEM file of the CA certificates that may sign the SMSC's certificate.",
        ),
        key(
            "cert",
            Kind::Str,
            Default::Off("none"),
            "A PEM client certificate to present; needs `key`.",
        ),
        key(
            "key",
            Kind::Str,
            Default::Off("none"),
            "The PEM private key of `cert`.",
        ),
        key(
            "server_name",
            Kind::Str,
            Default::Derived("the host of `address`"),
            "The name the SMSC's certificate must carry.",
        ),
        key(
            "insecure",
            Kind::Bool,
            Default::Bool(false),
            "Skip certificate checks (test SMSCs only; logged loudly at every bind).",
        ),
    ],
};

pub const ROUTE: Section = Section {
    name: "route",
    array: true,
    within: None,
    doc: "Routes are tried in order; the first whose rules all match takes the message. A route \
          without match rules takes every remaining message and must be the last one.",
    keys: &[
        NAME,
        key(
            "prefix",
            Kind::Strings,
            Default::Off("every destination"),
            "E.164 prefixes of the destination, like \"+46\".",
        ),
        key(
            "sender",
            Kind::Strings,
            Default::Off("every sender"),
            "Senders this route is for (exact; alphanumeric compared without case).",
        ),
        key(
            "tag",
            Kind::Str,
            Default::Off("no tag rule"),
            "A tag rule: \"key\" (the submit's tags have that key) or \"key=value\".",
        ),
        key(
            "smsc",
            Kind::Strings,
            Default::Required,
            "SMSCs in failover order (names of [[smsc]] sections).",
        ),
        key(
            "tps",
            RATE,
            Default::Off("unlimited"),
            "Parts per second through this route (the SMSCs' own tps still applies).",
        ),
        key(
            "burst",
            RATE,
            Default::Derived("tps/10, at least 1"),
            "Parts the route may send at once after being idle.",
        ),
        key(
            "reroute_undelivered",
            Kind::Bool,
            Default::Bool(false),
            "Resend a part once through the next SMSC when its receipt says UNDELIV or REJECTD: \
             the message keeps its id, is `queued` again meanwhile, and reports the resend's \
             outcome. Only one resend per part, and none when the route has no other SMSC (the \
             receipt is final then). Counted in smppd_reroutes_total{route,from,to}.",
        ),
        key(
            "smart",
            Kind::Bool,
            Default::Bool(false),
            "Replace typographic look-alikes (curly quotes, dashes, …) with GSM characters by \
             default.",
        ),
    ],
};

pub const SIMULATOR: Section = Section {
    name: "simulator",
    array: true,
    within: None,
    doc: "Embedded SMSC simulators: the `smppd sim` code started inside the daemon, on \
          loopback, before the binds. For demos and trying smppd out; remove them for real \
          SMSCs.",
    keys: &[
        NAME,
        key(
            "listen",
            Kind::Str,
            Default::Required,
            "The IP:port it listens on; loopback only.",
        ),
        key(
            "system_id",
            Kind::Str,
            Default::Off("any login"),
            "The login it accepts; give both system_id and password, or neither.",
        ),
        key(
            "password",
            Kind::Str,
            Default::Off("any password"),
            "The password it accepts.",
        ),
        key(
            "receipt_delay",
            DURATION,
            Default::Str("100ms"),
            "Delay between a submit and its delivery receipt.",
        ),
        key(
            "receipt_mix",
            Kind::Str,
            Default::Str("DELIVRD=1"),
            "Receipt states with weights: DELIVRD, UNDELIV, EXPIRED, REJECTD.",
        ),
        key(
            "id_format",
            Kind::Choice(&["hex", "decimal"]),
            Default::Str("hex"),
            "Its message ids: \"hex\" or \"decimal\".",
        ),
    ],
};
