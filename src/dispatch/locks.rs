//! Taking dispatch's few remaining shared locks, loudly.
//!
//! Owns nothing but the policy for a poisoned lock: a task panicked while holding it. That is
//! a bug, so it is logged at error level every time, and the value is used as it was left —
//! safe here because every update made under these locks is one map or field operation, so no
//! half-done change can be seen. Must never be used to skip work on poison (the old
//! `.lock().ok()` pattern silently did nothing), and never for a lock held across an `.await`.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `m` (`what` names it in the error log).
pub(crate) fn lock<'a, T>(m: &'a Mutex<T>, what: &str) -> MutexGuard<'a, T> {
    m.lock().unwrap_or_else(|poisoned| {
        tracing::error!(
            lock = what,
            "a task panicked while holding this lock; carrying on with the value as left"
        );
        m.clear_poison();
        poisoned.into_inner()
    })
}

/// Locks `l` for reading (see [`lock`]).
pub(crate) fn read<'a, T>(l: &'a RwLock<T>, what: &str) -> RwLockReadGuard<'a, T> {
    l.read().unwrap_or_else(|poisoned| {
        tracing::error!(
            lock = what,
            "a task panicked while holding this lock; carrying on with the value as left"
        );
        l.clear_poison();
        poisoned.into_inner()
    })
}

/// Locks `l` for writing (see [`lock`]).
pub(crate) fn write<'a, T>(l: &'a RwLock<T>, what: &str) -> RwLockWriteGuard<'a, T> {
    l.write().unwrap_or_else(|poisoned| {
        tracing::error!(
            lock = what,
            "a task panicked while holding this lock; carrying on with the value as left"
        );
        l.clear_poison();
        poisoned.into_inner()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poisoned_lock_still_gives_its_value() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("poison it");
        })
        .join();
        assert!(m.is_poisoned());
        *lock(&m, "test") += 1;
        assert_eq!(*lock(&m, "test"), 2);
        assert!(!m.is_poisoned());
    }
}
