//! Store errors. The one distinction callers must act on: [`StoreError::is_overload`] (storage
//! full, read-only, failing, or the write queue full: refuse new work with `overloaded`, keep
//! running, retry later) versus everything else (a bug or a bad request).

use std::path::PathBuf;

/// Errors from the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage cannot take writes right now: disk full, read-only file system, I/O error,
    /// locked by another process. The write did not happen; nothing committed before is lost.
    #[error("storage unavailable ({kind}): {detail}")]
    Unavailable {
        /// `disk_full`, `read_only`, `io`, `locked`, `cannot_open`.
        kind: &'static str,
        /// SQLite's message.
        detail: String,
    },
    /// The write queue is full (backpressure); the write was not queued.
    #[error("store write queue is full ({capacity} pending writes)")]
    Busy {
        /// The queue capacity.
        capacity: usize,
    },
    /// The store was closed (shutdown) or its writer stopped.
    #[error("store is closed")]
    Closed,
    /// The file was written by a newer smppd.
    #[error(
        "store {path} has schema version {found}, this smppd supports up to {supported}: upgrade smppd or use another file"
    )]
    SchemaTooNew {
        /// The store file.
        path: PathBuf,
        /// Version found in the file.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
    },
    /// A shared database whose schema is newer than this build, with migrations that do not
    /// keep older binaries working (a rolling deploy must upgrade this instance first).
    #[error(
        "store {path} has schema version {found}, newer than this smppd's {supported}, and migration(s) {migrations} do not keep older binaries working: upgrade smppd on this instance to the version the others run"
    )]
    SchemaIncompatible {
        /// The database (URL without password).
        path: PathBuf,
        /// Version found in the database.
        found: i64,
        /// Newest version this build knows.
        supported: i64,
        /// The newer migrations that break older binaries, e.g. `3, 4`.
        migrations: String,
    },
    /// Another process (another `smppd run`) has this store open for writing.
    #[error(
        "in use by {holder}, which holds {path}.lock: another smppd runs on this store; stop it or set another [store] path"
    )]
    InUse {
        /// The store file.
        path: PathBuf,
        /// Who holds it, e.g. `pid 1234`.
        holder: String,
    },
    /// The store file could not be opened or prepared.
    #[error("cannot open store {path}: {detail}")]
    Open {
        /// The store file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A write referred to a message or part that does not exist.
    #[error("unknown {what} {id}")]
    NotFound {
        /// `message` or `part`.
        what: &'static str,
        /// The id.
        id: String,
    },
    /// A write's input was invalid.
    #[error("invalid {field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The problem.
        problem: String,
    },
    /// The write conflicts with the stored state (e.g. re-splitting an acknowledged message).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The store's settings cannot be used (a bad URL, an unreadable password file).
    #[error("{0}")]
    Config(String),
    /// A frequency cap refused the accept (nothing was stored or counted).
    #[error("frequency cap {} reached: allowed again at {} (ms since the epoch)", .0.label, .0.allowed_at_ms)]
    Capped(super::CapRefusal),
    /// An unexpected database error: a bug, not a storage condition.
    #[error("store internal error: {0}")]
    Internal(String),
}

impl StoreError {
    /// A write named a part that does not exist.
    pub(crate) fn part_not_found(p: super::PartRef) -> StoreError {
        StoreError::NotFound {
            what: "part",
            id: format!("{}/{}", p.message, p.n),
        }
    }

    /// A write named a message that does not exist.
    pub(crate) fn message_not_found(id: super::MessageId) -> StoreError {
        StoreError::NotFound {
            what: "message",
            id: id.to_string(),
        }
    }

    /// True when the client should be told `overloaded` (and the daemon keep running).
    pub fn is_overload(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Busy { .. }
        )
    }
}

/// Classifies an SQLite error: storage conditions become [`StoreError::Unavailable`].
pub(crate) fn classify(e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, msg) = e {
        let kind = match f.code {
            C::DiskFull => Some("disk_full"),
            C::ReadOnly => Some("read_only"),
            C::SystemIoFailure => Some("io"),
            C::DatabaseBusy | C::DatabaseLocked => Some("locked"),
            C::CannotOpen | C::PermissionDenied => Some("cannot_open"),
            C::OutOfMemory => Some("out_of_memory"),
            _ => None,
        };
        if let Some(kind) = kind {
            return StoreError::Unavailable {
                kind,
                detail: msg.clone().unwrap_or_else(|| f.to_string()),
            };
        }
    }
    StoreError::Internal(e.to_string())
}
