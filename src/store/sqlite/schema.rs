//! The schema, as an ordered list of migrations. `PRAGMA user_version` holds how many have been
//! applied; a file with a higher version than this build knows is refused.
//!
//! Kept close to portable SQL (integer keys, partial indexes, no SQLite-only column types) so a
//! PostgreSQL backend can reuse it with small changes (`BLOB` → `BYTEA`, `WITHOUT ROWID` dropped).
//!
//! `message.state` holds the message's state except in one case the writer leaves to readers:
//! a single-part message acknowledged by an SMSC and waiting for its receipt keeps `queued` (0)
//! until the receipt settles it, so the acknowledgement writes one row, not two. Readers take
//! a stored `queued` as the aggregate of the parts' states (`submitted` when none is pending).
//!
//! States are stored as their codes (`PartState`, `MessageState`). The migrations write codes
//! as numbers (the partial indexes' `WHERE state = 0` and the like): they are history, run once
//! per file and never edited. Every other statement names states through `sql!` (`sql.rs`),
//! whose test checks that the statements still match these indexes.

/// Migrations, applied in order. Never edit one that has shipped; append.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE message (
        id           INTEGER PRIMARY KEY,  -- gateway id: ms << 20 | counter
        idem_key     TEXT,
        dest         TEXT NOT NULL,
        sender       TEXT NOT NULL,
        route        TEXT NOT NULL,
        class        INTEGER NOT NULL,
        priority     INTEGER NOT NULL,
        valid_until  INTEGER,
        encoding     TEXT NOT NULL,
        split        TEXT NOT NULL,
        options      TEXT NOT NULL,
        dlr          INTEGER NOT NULL,
        tags         TEXT,
        text         TEXT,
        parts        INTEGER NOT NULL,
        state        INTEGER NOT NULL,
        accepted_at  INTEGER NOT NULL,
        submitted_at INTEGER,
        done_at      INTEGER
    );
    CREATE UNIQUE INDEX message_idem_key ON message(idem_key) WHERE idem_key IS NOT NULL;

    CREATE TABLE part (
        message_id  INTEGER NOT NULL,
        n           INTEGER NOT NULL,
        route       TEXT NOT NULL,
        priority    INTEGER NOT NULL,
        state       INTEGER NOT NULL,
        ready_at    INTEGER NOT NULL DEFAULT 0,
        data_coding INTEGER NOT NULL,
        esm_class   INTEGER NOT NULL,
        sar_ref     INTEGER,
        segment     BLOB NOT NULL,
        smsc        TEXT,
        smsc_id     TEXT,
        smsc_key    TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        maybe_dup   INTEGER NOT NULL DEFAULT 0,
        last_status INTEGER,
        stat        TEXT,
        err         TEXT,
        acked_at    INTEGER,
        done_at     INTEGER,
        PRIMARY KEY (message_id, n)
    ) WITHOUT ROWID;
    -- The queue: only ready parts are in it, in the order they are taken.
    CREATE INDEX part_queue ON part(route, priority DESC, message_id, n) WHERE state = 0;
    CREATE INDEX part_waiting ON part(ready_at) WHERE state = 2;
    CREATE INDEX part_smsc_key ON part(smsc_key) WHERE smsc_key IS NOT NULL;

    -- The delivery-report log: every receipt, matched or not, in arrival order.
    CREATE TABLE dlr_log (
        id          INTEGER PRIMARY KEY,
        at          INTEGER NOT NULL,
        smsc        TEXT NOT NULL,
        smsc_id     TEXT NOT NULL,
        smsc_key    TEXT NOT NULL,
        fp          INTEGER NOT NULL,
        raw         BLOB NOT NULL,
        tlv_state   INTEGER,
        tlv_err     TEXT,
        stat        TEXT NOT NULL,
        err         TEXT,
        submit_date TEXT,
        done_date   TEXT,
        outcome     INTEGER,
        message_id  INTEGER,
        part_n      INTEGER
    );
    CREATE INDEX dlr_unmatched ON dlr_log(smsc_key) WHERE message_id IS NULL;
    CREATE INDEX dlr_by_message ON dlr_log(message_id, part_n, fp) WHERE message_id IS NOT NULL;

    CREATE TABLE mo (
        id      INTEGER PRIMARY KEY,
        at      INTEGER NOT NULL,
        smsc    TEXT NOT NULL,
        source  TEXT NOT NULL,
        dest    TEXT NOT NULL,
        text    TEXT NOT NULL,
        parts   INTEGER NOT NULL
    );

    CREATE TABLE optout (
        number  TEXT PRIMARY KEY,
        keyword TEXT NOT NULL,
        at      INTEGER NOT NULL,
        smsc    TEXT NOT NULL
    );

    CREATE TABLE event (
        seq        INTEGER PRIMARY KEY,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        message_id INTEGER,
        body       TEXT NOT NULL
    );
    "#,
    // 2: the hot path settles single-part messages without reading them (part count and dlr flag
    // on the part), finds a part's receipts through the part (no dlr_log index to maintain per
    // receipt), and keeps receipt dates as YYYYMMDDhhmmss integers.
    r#"
    ALTER TABLE part ADD COLUMN parts INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE part ADD COLUMN dlr INTEGER NOT NULL DEFAULT 1;
    ALTER TABLE part ADD COLUMN receipts TEXT;  -- 'log_id:fingerprint,…' of its receipts
    UPDATE part SET
        parts = (SELECT m.parts FROM message m WHERE m.id = part.message_id),
        dlr = (SELECT m.dlr FROM message m WHERE m.id = part.message_id);
    UPDATE part SET receipts = (
        SELECT group_concat(d.id || ':' || d.fp, ',') FROM dlr_log d
        WHERE d.message_id = part.message_id AND d.part_n = part.n);
    DROP INDEX dlr_by_message;
    ALTER TABLE dlr_log ADD COLUMN submit_ts INTEGER;  -- YYYYMMDDhhmmss; the TEXT columns
    ALTER TABLE dlr_log ADD COLUMN done_ts INTEGER;    -- are kept for rows from version 1
    "#,
    // 3: reroute after UNDELIV/REJECTD (route `reroute_undelivered`): the SMSC whose receipt sent
    // a part back to the queue; set at most once per part, so a part is rerouted only once.
    r#"
    ALTER TABLE part ADD COLUMN rerouted_from TEXT;
    "#,
    // 4: `smppd status` counts the messages that became final in the last 5 and 60 minutes; a
    // partial index keeps that a range read instead of a scan of the retained history.
    r#"
    CREATE INDEX message_done ON message(done_at) WHERE done_at IS NOT NULL;
    "#,
    // 5: expiry that keeps up at any rate. A part carries its message's validity, and each sweep
    // reads a partial index of exactly what may be due (queued or waiting parts with a validity;
    // acknowledged parts waiting for a receipt), oldest first, instead of walking the messages.
    r#"
    ALTER TABLE part ADD COLUMN valid_until INTEGER;
    UPDATE part SET valid_until = (SELECT m.valid_until FROM message m WHERE m.id = part.message_id)
        WHERE message_id IN (SELECT id FROM message WHERE valid_until IS NOT NULL);
    CREATE INDEX part_validity ON part(valid_until) WHERE valid_until IS NOT NULL AND state IN (0, 2);
    CREATE INDEX part_awaiting ON part(acked_at) WHERE state = 3 AND dlr = 1;
    "#,
    // 6: the parts of a concatenated MO are durable before their deliver_sm_resp: kept here until
    // the set is complete (or given up), then deleted in the transaction that records the MO.
    // An MO recorded from a set given up says why in `incomplete`.
    r#"
    CREATE TABLE mo_fragment (
        source      TEXT NOT NULL,
        dest        TEXT NOT NULL,
        ref         INTEGER NOT NULL,
        total       INTEGER NOT NULL,
        seq         INTEGER NOT NULL,
        at          INTEGER NOT NULL,
        smsc        TEXT NOT NULL,
        data_coding INTEGER NOT NULL,
        udhi        INTEGER NOT NULL,
        sar_ref     INTEGER,
        sar_total   INTEGER,
        sar_seq     INTEGER,
        payload     BLOB NOT NULL,
        PRIMARY KEY (source, dest, ref, total, seq)
    ) WITHOUT ROWID;
    ALTER TABLE mo ADD COLUMN incomplete TEXT;
    "#,
    // 7 (issue #19): opt-out that follows the sender, and frequency caps counted in the store.
    // An opt-out is kept per (number, scope): the sender address it applies to, or 'all' for
    // every sender; the entries made before scopes existed were global and stay so. `cap_hit`
    // holds one row per accepted message per cap counter (class, recipient or recipient and
    // tag value), read in the accept's own transaction and pruned past the longest cap.
    r#"
    CREATE TABLE optout_scoped (
        number  TEXT NOT NULL,
        scope   TEXT NOT NULL,
        keyword TEXT NOT NULL,
        at      INTEGER NOT NULL,
        smsc    TEXT NOT NULL,
        PRIMARY KEY (number, scope)
    ) WITHOUT ROWID;
    INSERT INTO optout_scoped (number, scope, keyword, at, smsc)
        SELECT number, 'all', keyword, at, smsc FROM optout;
    DROP TABLE optout;
    ALTER TABLE optout_scoped RENAME TO optout;
    CREATE TABLE cap_hit (
        id         INTEGER PRIMARY KEY,
        cap        TEXT NOT NULL,
        scope      TEXT NOT NULL,
        at         INTEGER NOT NULL,
        message_id INTEGER NOT NULL
    );
    CREATE INDEX cap_hit_counter ON cap_hit(cap, scope, at);
    CREATE INDEX cap_hit_at ON cap_hit(at);
    "#,
    // 8: send windows and `send_at` (issue #19): the instant a message was held until at
    // accept. Its parts wait (`waiting`, `ready_at` = this) like a retry, so no index is new.
    r#"
    ALTER TABLE message ADD COLUMN held_until INTEGER;
    "#,
    // 9 (issue #20): receipts find their part through an integer hash of (SMSC, key) instead of
    // a text index on the key: a smaller index, integer comparisons, and no key text written
    // per acknowledgement (the key is `submit_key(smsc_id)`, derived again when a receipt is
    // matched). Rows acknowledged before keep their stored `smsc_key`, which the match compares
    // when present; their hash is filled here by `smppd_receipt_hash`, the SQL function
    // `migrate` registers (the writer's own `receipt_hash`: SQLite has no FNV).
    r#"
    ALTER TABLE part ADD COLUMN smsc_hash INTEGER;
    UPDATE part SET smsc_hash = smppd_receipt_hash(smsc, smsc_key)
        WHERE smsc_key IS NOT NULL AND smsc IS NOT NULL;
    DROP INDEX part_smsc_key;
    CREATE INDEX part_smsc_hash ON part(smsc_hash) WHERE smsc_hash IS NOT NULL;
    "#,
];

/// The schema version this build writes.
pub(crate) fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}
