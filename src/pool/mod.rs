#![doc = include_str!("README.md")]

pub(crate) mod checks;
pub(crate) mod core;
pub(crate) mod histogram;
pub(crate) mod leaks;
pub(crate) mod readtx;
pub(crate) mod retry;
pub(crate) mod status;

pub use leaks::LongHeld;
pub use retry::RetryPolicy;
pub use status::PoolStatus;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

/// What a checked-out connection shares with its pool: the settings, the
/// counters and the leak detector. A `Connection` holds this, never the
/// manager, so that the manager, the connection and the health reports do not
/// need each other.
pub(crate) struct Shared {
    pub config: crate::Config,
    pub stats: std::sync::Arc<Stats>,
    /// Present when leak detection is on.
    pub leaks: Option<std::sync::Arc<leaks::LeakDetector>>,
    /// SQLite: the readers' open read transactions (`DB_SQLITE_MAX_READ_TX`).
    pub read_txs: Option<readtx::ReadTxWatch>,
}

/// Counters of one manager, fed by the pool and the connection checks.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    pub checkouts: AtomicU64,
    pub checkins: AtomicU64,
    pub timeouts: AtomicU64,
    pub wait_total_us: AtomicU64,
    pub failures: AtomicU64,
    pub invalidated: AtomicU64,
    pub recycled: AtomicU64,
    pub resets: AtomicU64,
    pub pre_pings: AtomicU64,
    pub retries: AtomicU64,
    /// `get_read_after` served by a standby that had replayed the write.
    pub read_after_standby: AtomicU64,
    /// `get_read_after` served by the primary (no standby had it in time).
    pub read_after_primary: AtomicU64,
    /// Reads that left a standby out for lagging more than `DB_READ_MAX_LAG`.
    pub read_lag_avoided: AtomicU64,
    /// Checkouts waiting in line now.
    pub waiting: AtomicU64,
    /// Connection attempts in flight now (or waiting to retry).
    pub connecting: AtomicU64,
    /// The last connection attempt's duration, in microseconds.
    pub connect_last_us: AtomicU64,
    /// How long connection attempts take.
    pub connect_time: histogram::Histogram,
    /// How long checkouts wait (served and timed out).
    pub wait_time: histogram::Histogram,
    /// How long connections stay checked out.
    pub hold_time: histogram::Histogram,
    pub last_error: Mutex<Option<String>>,
    /// The WARN rate limit of connect errors.
    warned: Mutex<WarnLimit>,
}

/// One WARN per distinct connect error per [`WARN_EVERY`], then a count of
/// the repeats.
#[derive(Debug, Default)]
struct WarnLimit {
    /// Message -> (when it was last logged, repeats since).
    seen: std::collections::HashMap<String, (crate::platform::Instant, u64)>,
}

/// The window of the connect-error WARN rate limit.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(10);

impl Stats {
    pub(crate) fn record_checkout(&self, waited: Duration) {
        self.checkouts.fetch_add(1, Relaxed);
        self.record_wait(waited);
    }

    pub(crate) fn record_timeout(&self, waited: Duration) {
        self.timeouts.fetch_add(1, Relaxed);
        self.record_wait(waited);
    }

    pub(crate) fn record_checkin(&self, held: Duration) {
        self.checkins.fetch_add(1, Relaxed);
        self.hold_time.record(held);
    }

    #[inline]
    fn record_wait(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.wait_total_us.fetch_add(us, Relaxed);
        self.wait_time.record(d);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a failed connection attempt, remembers it, and logs it at
    /// WARN at most once per distinct error per [`WARN_EVERY`].
    pub(crate) fn record_open_failure(&self, e: &crate::Error) {
        self.failures.fetch_add(1, Relaxed);
        let msg = e.to_string();
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg.clone());
        let now = crate::platform::Instant::now();
        let mut w = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if w.seen.len() > 64 {
            w.seen
                .retain(|_, (at, _)| now.duration_since(*at) < WARN_EVERY);
        }
        match w.seen.get_mut(&msg) {
            Some((at, repeats)) if now.duration_since(*at) < WARN_EVERY => *repeats += 1,
            Some((at, repeats)) => {
                let n = std::mem::take(repeats);
                *at = now;
                drop(w);
                log::warn!(
                    target: "dbmux::pool",
                    "could not open a connection: {msg} (and {n} more time(s) in the last {} s)",
                    WARN_EVERY.as_secs()
                );
            }
            None => {
                w.seen.insert(msg.clone(), (now, 0));
                drop(w);
                log::warn!(target: "dbmux::pool", "could not open a connection: {msg}");
            }
        }
    }
}

/// Settings the connection checks of every backend need.
#[derive(Debug)]
pub(crate) struct CheckSettings {
    pub recycle: Option<std::time::Duration>,
    pub pre_ping: bool,
    pub pre_ping_window: std::time::Duration,
    /// Client-side (SQLite's progress handler); PostgreSQL sends it to the server.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub statement_timeout: Option<std::time::Duration>,
    pub stats: std::sync::Arc<Stats>,
}

impl CheckSettings {
    pub fn new(
        config: &crate::Config,
        stats: &std::sync::Arc<Stats>,
    ) -> std::sync::Arc<CheckSettings> {
        std::sync::Arc::new(CheckSettings {
            recycle: config.pool_recycle(),
            pre_ping: config.pool_pre_ping(),
            pre_ping_window: config.pre_ping_window(),
            statement_timeout: config.local_statement_timeout(),
            stats: stats.clone(),
        })
    }
}

/// Why a pooled connection was refused on checkout.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// The connection outlived `pool_recycle`; not a failure.
    Expired,
    /// The pre-ping query failed: the connection is discarded.
    PingFailed(crate::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Expired => f.write_str("connection reached pool_recycle and was closed"),
            ConnError::PingFailed(e) => write!(f, "pre-ping failed: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}
