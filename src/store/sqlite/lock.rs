//! One daemon per store file: an exclusive OS lock (`flock`) on `<store>.lock`, held for as long
//! as the store is open.
//!
//! Why a lock file beside the database and not a lock on the database itself: SQLite uses POSIX
//! record locks on the database, and those are dropped when *any* descriptor of the process on
//! that file is closed; `flock` on a separate file is independent of them. The kernel releases
//! the lock when the holder dies (SIGKILL included), so a stale lock cannot outlive its process;
//! the PID written into the file is only there to name the holder in the error.
//!
//! Readers (`smppd reports`, the read-only connections) do not take it: WAL readers never
//! disturb the writer. Only the writing side — the one that recovers in-flight parts at start —
//! must be alone.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::store::StoreError;

/// How long a start waits for a holder that is going away: a restart (systemd's, or an
/// operator's `stop; start`) may begin while the old process is still exiting, and a child
/// process forked by the holder keeps the lock's file description until its `exec` closes it.
const HOLDER_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The held lock; dropping it (or the process dying) releases it.
#[derive(Debug)]
pub(crate) struct StoreLock {
    _file: File,
}

/// The lock file's path for a store file: `<store>.lock`.
pub(crate) fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

impl StoreLock {
    /// Takes the lock, waiting at most [`HOLDER_GRACE`] for a holder on its way out; fails with
    /// [`StoreError::InUse`] naming the file and the
    /// holder's PID when another process (or another open store in this one) holds it.
    pub(crate) fn acquire(store: &Path) -> Result<StoreLock, StoreError> {
        let path = lock_path(store);
        let open_err = |e: std::io::Error| StoreError::Open {
            path: store.to_path_buf(),
            detail: format!("lock file {}: {e}", path.display()),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(open_err)?;
        let give_up = std::time::Instant::now() + HOLDER_GRACE;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if std::time::Instant::now() < give_up => {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(StoreError::InUse {
                        path: store.to_path_buf(),
                        holder: holder_of(&mut file),
                    });
                }
                Err(TryLockError::Error(e)) => return Err(open_err(e)),
            }
        }
        // Ours now: say who holds it, for the next one that tries.
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)).map(drop))
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(open_err)?;
        Ok(StoreLock { _file: file })
    }
}

/// The PID recorded by the holder, as written (it may be mid-write: then "unknown").
fn holder_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let pid = text.trim();
    if !pid.is_empty() && pid.len() <= 10 && pid.bytes().all(|b| b.is_ascii_digit()) {
        format!("pid {pid}")
    } else {
        "an unknown process".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_pid_and_the_lock_is_released_on_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = dir.path().join("s.db");
        let first = StoreLock::acquire(&store).expect("first");
        let err = StoreLock::acquire(&store).expect_err("second must be refused");
        let text = err.to_string();
        assert!(text.contains(&store.display().to_string()), "{text}");
        assert!(
            text.contains(&format!("pid {}", std::process::id())),
            "{text}"
        );
        drop(first);
        StoreLock::acquire(&store).expect("free again after drop");
    }
}
