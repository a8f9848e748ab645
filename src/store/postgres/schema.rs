//! The PostgreSQL schema as versioned migrations, and applying them. `schema_version` holds one
//! row per migration applied; a database with a version newer than this build is refused.
//!
//! Owns the schema and its version. Migrations run in one transaction under an advisory lock,
//! so instances starting together apply each migration once; a migration that has shipped is
//! never edited (append a new one). States are written through the same `{part:…}` /
//! `{message:…}` placeholders as the statements (`sqlite::sql::fill`), never as numbers.

use super::{Client, db_error};
use crate::store::StoreError;
use crate::store::sqlite::sql::fill;

/// Advisory lock key of the migrations (`smppd` `migrate` in ASCII).
const MIGRATE_LOCK: i64 = 0x736d_7070_645f_6d67;

/// Migrations, applied in order. Never edit one that has shipped; append.
const MIGRATIONS: &[&str] = &[
    // 1: the SQLite schema's end state (its migrations 1–6) in PostgreSQL types, plus what a
    // cluster of instances sharing the database needs: part targets, refusals and claim guards,
    // id and event sequences, and the instance and lease tables.
    r#"
    CREATE SEQUENCE message_counter MINVALUE 0 MAXVALUE 1048575 START 0 CYCLE;
    CREATE SEQUENCE event_seq;

    CREATE TABLE message (
        id           BIGINT PRIMARY KEY,  -- gateway id: ms << 20 | message_counter
        idem_key     TEXT,
        dest         TEXT NOT NULL,
        sender       TEXT NOT NULL,
        route        TEXT NOT NULL,
        class        INT NOT NULL,
        priority     INT NOT NULL,
        valid_until  BIGINT,
        encoding     TEXT NOT NULL,
        split        TEXT NOT NULL,
        options      TEXT NOT NULL,
        dlr          BOOLEAN NOT NULL,
        tags         TEXT,
        text         TEXT,
        parts        INT NOT NULL,
        state        INT NOT NULL,
        accepted_at  BIGINT NOT NULL,
        submitted_at BIGINT,
        done_at      BIGINT
    );
    CREATE UNIQUE INDEX message_idem_key ON message(idem_key) WHERE idem_key IS NOT NULL;
    CREATE INDEX message_done ON message(done_at) WHERE done_at IS NOT NULL;

    CREATE TABLE part (
        message_id    BIGINT NOT NULL,
        n             INT NOT NULL,
        route         TEXT NOT NULL,
        priority      INT NOT NULL,
        parts         INT NOT NULL,
        dlr           BOOLEAN NOT NULL,
        state         INT NOT NULL,
        ready_at      BIGINT NOT NULL DEFAULT 0,
        data_coding   INT NOT NULL,
        esm_class     INT NOT NULL,
        sar_ref       INT,
        segment       BYTEA NOT NULL,
        valid_until   BIGINT,
        smsc          TEXT,
        smsc_id       TEXT,
        smsc_key      TEXT,
        attempts      INT NOT NULL DEFAULT 0,
        maybe_dup     BOOLEAN NOT NULL DEFAULT false,
        last_status   BIGINT,
        stat          TEXT,
        err           TEXT,
        acked_at      BIGINT,
        done_at       BIGINT,
        receipts      TEXT,      -- 'log_id:fingerprint,…' of its receipts
        rerouted_from TEXT,
        target        TEXT,      -- SMSC name; set at accept to the route's first SMSC
        refused       TEXT[] NOT NULL DEFAULT '{}',
        claimed_by    TEXT,      -- instance name of the claim
        claim_epoch   BIGINT,    -- the SMSC lease epoch the claim was made under
        PRIMARY KEY (message_id, n)
    );
    CREATE INDEX part_queue ON part(route, priority DESC, message_id, n) WHERE state = {part:queued};
    CREATE INDEX part_target ON part(route, target, priority DESC, message_id, n)
        WHERE state = {part:queued};
    CREATE INDEX part_waiting ON part(ready_at) WHERE state = {part:waiting};
    CREATE INDEX part_in_flight ON part(target, claim_epoch) WHERE state = {part:sending};
    CREATE INDEX part_smsc_key ON part(smsc_key) WHERE smsc_key IS NOT NULL;
    CREATE INDEX part_validity ON part(valid_until)
        WHERE valid_until IS NOT NULL AND state IN ({part:queued}, {part:waiting});
    CREATE INDEX part_awaiting ON part(acked_at) WHERE state = {part:submitted} AND dlr;

    CREATE TABLE dlr_log (
        id          BIGSERIAL PRIMARY KEY,
        at          BIGINT NOT NULL,
        smsc        TEXT NOT NULL,
        smsc_id     TEXT NOT NULL,
        smsc_key    TEXT NOT NULL,
        fp          BIGINT NOT NULL,
        raw         BYTEA NOT NULL,
        tlv_state   INT,
        tlv_err     TEXT,
        stat        TEXT NOT NULL,
        err         TEXT,
        submit_ts   BIGINT,
        done_ts     BIGINT,
        outcome     INT,
        message_id  BIGINT,
        part_n      INT
    );
    CREATE INDEX dlr_unmatched ON dlr_log(smsc_key) WHERE message_id IS NULL;

    CREATE TABLE mo (
        id         BIGSERIAL PRIMARY KEY,
        at         BIGINT NOT NULL,
        smsc       TEXT NOT NULL,
        source     TEXT NOT NULL,
        dest       TEXT NOT NULL,
        text       TEXT NOT NULL,
        parts      INT NOT NULL,
        incomplete TEXT
    );

    CREATE TABLE mo_fragment (
        source      TEXT NOT NULL,
        dest        TEXT NOT NULL,
        ref         INT NOT NULL,
        total       INT NOT NULL,
        seq         INT NOT NULL,
        at          BIGINT NOT NULL,
        smsc        TEXT NOT NULL,
        data_coding INT NOT NULL,
        udhi        BOOLEAN NOT NULL,
        sar_ref     INT,
        sar_total   INT,
        sar_seq     INT,
        payload     BYTEA NOT NULL,
        PRIMARY KEY (source, dest, ref, total, seq)
    );

    CREATE TABLE optout (
        number  TEXT PRIMARY KEY,
        keyword TEXT NOT NULL,
        at      BIGINT NOT NULL,
        smsc    TEXT NOT NULL
    );

    -- Inserted with seq NULL; the sequencer numbers committed rows in id order (see events.rs).
    CREATE TABLE event (
        id         BIGSERIAL PRIMARY KEY,
        seq        BIGINT UNIQUE,
        at         BIGINT NOT NULL,
        kind       TEXT NOT NULL,
        message_id BIGINT,
        body       TEXT NOT NULL
    );
    CREATE INDEX event_unsequenced ON event(id) WHERE seq IS NULL;

    CREATE TABLE cluster_instance (name TEXT PRIMARY KEY, address TEXT NOT NULL,
        config_hash TEXT NOT NULL, version TEXT NOT NULL, schema_version INT NOT NULL,
        started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
        stopping BOOLEAN NOT NULL DEFAULT false);
    CREATE TABLE smsc_lease (smsc TEXT PRIMARY KEY, owner TEXT, epoch BIGINT NOT NULL DEFAULT 0,
        expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity', usable BOOLEAN NOT NULL DEFAULT false,
        taken_at TIMESTAMPTZ);
    CREATE TABLE leader_lease (name TEXT PRIMARY KEY, owner TEXT, epoch BIGINT NOT NULL DEFAULT 0,
        expires_at TIMESTAMPTZ NOT NULL DEFAULT '-infinity');
    -- A route's tps across the cluster (cluster/budget.rs): a ring of ten slot rows per route.
    CREATE TABLE route_budget (route TEXT NOT NULL, ring INT NOT NULL, slot BIGINT NOT NULL,
        used BIGINT NOT NULL, granted BIGINT NOT NULL, PRIMARY KEY (route, ring));
    "#,
    // 2 (issue #19): opt-out that follows the sender, and frequency caps counted in the store
    // (SQLite's migration 7). An opt-out is kept per (number, scope): the sender address it
    // applies to, or 'all' for every sender; existing entries were global and stay so.
    // `cap_hit` holds one row per accepted message per cap counter, read and written under a
    // transaction-level advisory lock per counter, and pruned past the longest cap.
    r#"
    ALTER TABLE optout ADD COLUMN scope TEXT NOT NULL DEFAULT 'all';
    ALTER TABLE optout DROP CONSTRAINT optout_pkey;
    ALTER TABLE optout ADD PRIMARY KEY (number, scope);
    ALTER TABLE optout ALTER COLUMN scope DROP DEFAULT;
    CREATE TABLE cap_hit (
        id         BIGSERIAL PRIMARY KEY,
        cap        TEXT NOT NULL,
        scope      TEXT NOT NULL,
        at         BIGINT NOT NULL,
        message_id BIGINT NOT NULL
    );
    CREATE INDEX cap_hit_counter ON cap_hit(cap, scope, at);
    CREATE INDEX cap_hit_at ON cap_hit(at);
    "#,
    // 3: send windows and `send_at` (issue #19): the instant a message was held until at
    // accept. Its parts wait (`waiting`, `ready_at` = this) like a retry, so no index is new.
    r#"
    ALTER TABLE message ADD COLUMN held_until BIGINT;
    "#,
];

/// The schema version the database holds (0: none yet).
pub(super) async fn found_version(client: &Client) -> Result<i64, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_version",
            &[],
        )
        .await?
        .get(0))
}

/// Whether binaries of the previous schema version keep working once each migration ran (one
/// entry per migration): only additive changes that older statements never notice (a new
/// table, a new nullable column, a new index) may say `true`. A rolling deploy relies on it: an
/// older instance starts on a newer schema only when every newer migration says so (the flags
/// are recorded in `schema_version`, since an older binary cannot know them), and a newer one
/// migrates past a `false` only when no live instance still runs an older schema.
const OLDER_BINARIES_OK: &[bool] = &[
    // 1: the initial schema (there is nothing older).
    false,
    // 2: no: an older binary's `ON CONFLICT (number)` finds no such key any more, and it would
    // take a sender's opt-out for a global one.
    false,
    // 3: `message.held_until`, a nullable column older statements never name. An older binary
    // releases held parts all the same (they wait on `ready_at` like a retry); its `query`
    // shows them `queued` rather than `scheduled`.
    true,
];

/// How long since its heartbeat an instance counts as live for the migration check (longer
/// than any lease TTL, so an instance in the middle of a restart is not missed).
const LIVE_FOR_MIGRATION_S: f64 = 60.0;

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database's schema to [`current_version`] in one transaction under an advisory
/// lock; returns how many migrations ran. `url` (without password) names the database in
/// [`StoreError::SchemaIncompatible`].
/// `me` is the instance migrating (its own row from before a restart is not an older instance).
pub(super) async fn migrate(client: &Client, url: &str, me: &str) -> Result<u32, StoreError> {
    let db = |e: tokio_postgres::Error| db_error(&e, url);
    client.batch_execute("BEGIN").await.map_err(db)?;
    let result = migrate_in(client, url, me).await;
    match result {
        Ok(applied) => {
            client.batch_execute("COMMIT").await.map_err(db)?;
            Ok(applied)
        }
        Err(e) => {
            let _ = client.batch_execute("ROLLBACK").await;
            Err(e)
        }
    }
}

async fn migrate_in(client: &Client, url: &str, me: &str) -> Result<u32, StoreError> {
    let db = |e: tokio_postgres::Error| db_error(&e, url);
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
        .await
        .map_err(db)?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                version INT PRIMARY KEY,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
                older_ok BOOLEAN NOT NULL DEFAULT false)",
        )
        .await
        .map_err(db)?;
    let found: i64 = client
        .query_one(
            "SELECT coalesce(max(version), 0)::bigint FROM schema_version",
            &[],
        )
        .await
        .map_err(db)?
        .get(0);
    let supported = current_version();
    if found > supported {
        return newer_schema(client, url, found, supported).await;
    }
    refuse_if_live_older(client, url, found, me).await?;
    let mut applied = 0;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        client
            .batch_execute(&fill(sql))
            .await
            .map_err(|e| StoreError::Open {
                path: url.into(),
                detail: format!("migration {}: {e}", i + 1),
            })?;
        client
            .execute(
                "INSERT INTO schema_version (version, older_ok) VALUES ($1, $2)",
                &[&((i + 1) as i32), &OLDER_BINARIES_OK[i]],
            )
            .await
            .map_err(db)?;
        applied += 1;
    }
    Ok(applied)
}

/// The database is newer than this build: it may run only if every newer migration said older
/// binaries keep working; else the error says which ones did not.
async fn newer_schema(
    client: &Client,
    url: &str,
    found: i64,
    supported: i64,
) -> Result<u32, StoreError> {
    let rows = client
        .query(
            "SELECT version FROM schema_version WHERE version > $1 AND NOT older_ok ORDER BY version",
            &[&(supported as i32)],
        )
        .await
        .map_err(|e| db_error(&e, url))?;
    if rows.is_empty() {
        tracing::warn!(
            found,
            supported,
            "the database's schema is newer than this build, and its newer migrations keep older binaries working: running; upgrade this instance soon"
        );
        return Ok(0);
    }
    let blocking: Vec<String> = rows
        .iter()
        .map(|r| r.get::<_, i32>(0).to_string())
        .collect();
    Err(StoreError::SchemaIncompatible {
        path: url.into(),
        found,
        supported,
        migrations: blocking.join(", "),
    })
}

/// Before migrating past one that breaks older binaries: no live instance may still run an
/// older schema (a rolling deploy must then stop them first).
async fn refuse_if_live_older(
    client: &Client,
    url: &str,
    found: i64,
    me: &str,
) -> Result<(), StoreError> {
    let pending = (found as usize)..MIGRATIONS.len();
    let breaking: Vec<usize> = pending
        .filter(|i| !OLDER_BINARIES_OK[*i])
        .map(|i| i + 1)
        .collect();
    if found == 0 || breaking.is_empty() {
        return Ok(());
    }
    let live = client
        .query(
            "SELECT name, schema_version FROM cluster_instance
             WHERE NOT stopping AND heartbeat_at > now() - make_interval(secs => $1)
               AND schema_version < $2 AND name <> $3 ORDER BY name",
            &[&LIVE_FOR_MIGRATION_S, &(current_version() as i32), &me],
        )
        .await
        .map_err(|e| db_error(&e, url))?;
    if live.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = live
        .iter()
        .map(|r| format!("{} (schema {})", r.get::<_, String>(0), r.get::<_, i32>(1)))
        .collect();
    Err(StoreError::Open {
        path: url.into(),
        detail: format!(
            "migration(s) {} would break instances still running an older schema: {}; stop them \
             (or upgrade them all at once), then start this one",
            breaking
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_says_whether_older_binaries_keep_working() {
        assert_eq!(OLDER_BINARIES_OK.len(), MIGRATIONS.len());
    }

    /// Every state placeholder of the migrations names a state (a typo would reach the
    /// database as `{part:…}` text and fail the migration only there).
    #[test]
    fn the_migrations_name_states_only_through_placeholders_that_fill() {
        for m in MIGRATIONS {
            let filled = fill(m);
            assert!(!filled.contains("{part:"), "{filled}");
            assert!(!filled.contains("{message:"), "{filled}");
        }
        let queued = format!("WHERE state = {}", crate::store::PartState::Queued.code());
        assert!(fill(MIGRATIONS[0]).contains(&queued));
    }
}
