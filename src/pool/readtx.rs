//! Long read transactions: on SQLite a read transaction pins the WAL (no
//! checkpoint can pass it), so one held longer than `DB_SQLITE_MAX_READ_TX`
//! is logged once at WARN, with where its connection was checked out. The
//! open read transactions of readers are looked at on each checkout and each
//! `debug_info()`, so no thread is needed.

use std::collections::HashMap;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

use crate::platform::Instant;

struct Open {
    since: Instant,
    at: &'static Location<'static>,
    warned: bool,
}

/// The open read transactions of one manager's readers.
pub(crate) struct ReadTxWatch {
    max: Duration,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Open>>,
    /// How many there are (read without the lock on each checkout).
    count: AtomicU64,
    warnings: AtomicU64,
    label: String,
}

impl ReadTxWatch {
    /// A watch that warns about read transactions older than `max`.
    pub(crate) fn new(max: Duration, label: String) -> ReadTxWatch {
        ReadTxWatch {
            max,
            next: AtomicU64::new(1),
            open: Mutex::new(HashMap::new()),
            count: AtomicU64::new(0),
            warnings: AtomicU64::new(0),
            label,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Open>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A read transaction began on a connection checked out at `at`.
    pub(crate) fn begin(&self, at: &'static Location<'static>) -> u64 {
        let id = self.next.fetch_add(1, Relaxed);
        self.lock().insert(
            id,
            Open {
                since: Instant::now(),
                at,
                warned: false,
            },
        );
        self.count.fetch_add(1, Relaxed);
        id
    }

    /// It ended.
    pub(crate) fn end(&self, id: u64) {
        if self.lock().remove(&id).is_some() {
            self.count.fetch_sub(1, Relaxed);
        }
    }

    /// Warns once about each read transaction older than the limit.
    #[inline]
    pub(crate) fn check(&self) {
        if self.count.load(Relaxed) == 0 {
            return;
        }
        let mut open = self.lock();
        for tx in open.values_mut() {
            let age = tx.since.elapsed();
            if !tx.warned && age > self.max {
                tx.warned = true;
                self.warnings.fetch_add(1, Relaxed);
                log::warn!(
                    target: "dbmux::sqlite",
                    "a read transaction on {} has been open for {:.1} s (more than \
                     DB_SQLITE_MAX_READ_TX, {:.1} s): it keeps the WAL from being checkpointed, \
                     so the WAL file grows; its connection was checked out at {}; commit or \
                     roll it back sooner",
                    self.label,
                    age.as_secs_f64(),
                    self.max.as_secs_f64(),
                    tx.at
                );
            }
        }
    }

    /// The age of the oldest open read transaction, in milliseconds.
    pub(crate) fn oldest_ms(&self) -> Option<f64> {
        self.lock()
            .values()
            .map(|t| t.since.elapsed().as_secs_f64() * 1000.0)
            .reduce(f64::max)
    }

    /// Warnings logged so far.
    pub(crate) fn warnings(&self) -> u64 {
        self.warnings.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_old_read_transaction_is_reported_once_and_forgotten_when_it_ends() {
        let w = ReadTxWatch::new(Duration::from_millis(20), "test.db".into());
        let id = w.begin(Location::caller());
        w.check();
        assert_eq!(w.warnings(), 0);
        std::thread::sleep(Duration::from_millis(30));
        w.check();
        w.check();
        assert_eq!(w.warnings(), 1);
        assert!(w.oldest_ms().unwrap() >= 30.0);
        w.end(id);
        assert_eq!(w.oldest_ms(), None);
    }
}
