#![doc = include_str!("README.md")]

pub(crate) mod build;
pub(crate) mod checks;
#[cfg(target_arch = "wasm32")]
pub(crate) mod holder;
pub(crate) mod leaks;
pub(crate) mod retry;
pub(crate) mod status;

pub use leaks::LongHeld;
pub use retry::RetryPolicy;
pub use status::PoolStatus;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use ::r2d2;
/// r2d2, written once: the crate natively, and on wasm32 (no threads) dbmux's
/// one-connection holder with the part of r2d2's API that dbmux uses.
#[cfg(target_arch = "wasm32")]
pub(crate) use holder as r2d2;

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
}

/// Counters of one manager. r2d2 keeps none, so they are fed by its event
/// and error hooks and by the connection checks.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub opened: AtomicU64,
    pub closed: AtomicU64,
    pub checkouts: AtomicU64,
    pub checkins: AtomicU64,
    pub timeouts: AtomicU64,
    pub wait_total_us: AtomicU64,
    pub wait_max_us: AtomicU64,
    pub failures: AtomicU64,
    pub invalidated: AtomicU64,
    pub recycled: AtomicU64,
    pub resets: AtomicU64,
    pub pre_pings: AtomicU64,
    pub retries: AtomicU64,
    /// Connections born before this (ns since the process epoch) are
    /// invalidated: the server went away after they were opened. 0 = none.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub invalidate_before: AtomicU64,
    pub last_error: Mutex<Option<String>>,
    /// The last failure to open a connection and when it happened: the
    /// typed signal that tells a checkout which could open nothing from one
    /// that waited on a full pool.
    open_failure: Mutex<Option<(crate::platform::Instant, String)>>,
}

impl Stats {
    /// Connections open right now (as seen by the hooks).
    pub fn open(&self) -> u64 {
        self.opened
            .load(Relaxed)
            .saturating_sub(self.closed.load(Relaxed))
    }

    /// Connections handed out right now.
    pub fn checked_out(&self) -> u64 {
        self.checkouts
            .load(Relaxed)
            .saturating_sub(self.checkins.load(Relaxed))
    }

    fn record_wait(&self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        self.wait_total_us.fetch_add(us, Relaxed);
        self.wait_max_us.fetch_max(us, Relaxed);
    }

    /// Marks every connection opened until now as stale (the server went away).
    #[cfg(feature = "postgres")]
    pub fn invalidate_all_now(&self) {
        self.invalidate_before
            .store(epoch_nanos(crate::platform::Instant::now()), Relaxed);
    }

    /// True when a connection born at `born` predates a server failure.
    #[cfg(feature = "postgres")]
    pub fn is_stale(&self, born: crate::platform::Instant) -> bool {
        let before = self.invalidate_before.load(Relaxed);
        before != 0 && epoch_nanos(born) < before
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set_last_error(&self, msg: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(msg);
    }

    fn record_open_failure(&self, msg: String) {
        *self.open_failure.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((crate::platform::Instant::now(), msg.clone()));
        self.set_last_error(msg);
    }

    /// The message of a failure to open a connection at or after `t`.
    pub fn open_failure_since(&self, t: crate::platform::Instant) -> Option<String> {
        match &*self.open_failure.lock().unwrap_or_else(|e| e.into_inner()) {
            Some((at, msg)) if *at >= t => Some(msg.clone()),
            _ => None,
        }
    }
}

/// Settings the connection checks of every backend need.
#[derive(Debug)]
pub(crate) struct CheckSettings {
    pub pool_size: u32,
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
            pool_size: config.pool_size(),
            recycle: config.pool_recycle(),
            pre_ping: config.pool_pre_ping(),
            pre_ping_window: config.pre_ping_window(),
            statement_timeout: config.local_statement_timeout(),
            stats: stats.clone(),
        })
    }
}

/// Nanoseconds between a process-wide epoch and `t`.
#[cfg(feature = "postgres")]
pub(crate) fn epoch_nanos(t: crate::platform::Instant) -> u64 {
    static EPOCH: std::sync::OnceLock<crate::platform::Instant> = std::sync::OnceLock::new();
    let e =
        *EPOCH.get_or_init(|| crate::platform::Instant::now() - std::time::Duration::from_secs(1));
    t.saturating_duration_since(e).as_nanos() as u64
}

/// Feeds r2d2's events into [`Stats`]. Closed connections are counted by the
/// connection's own `Drop`, because r2d2 fires no event when a pool is dropped.
#[derive(Debug)]
pub(crate) struct EventHooks(pub std::sync::Arc<Stats>);

impl r2d2::HandleEvent for EventHooks {
    fn handle_acquire(&self, _: r2d2::event::AcquireEvent) {
        self.0.opened.fetch_add(1, Relaxed);
    }
    fn handle_checkout(&self, e: r2d2::event::CheckoutEvent) {
        self.0.checkouts.fetch_add(1, Relaxed);
        self.0.record_wait(e.duration());
    }
    fn handle_timeout(&self, e: r2d2::event::TimeoutEvent) {
        self.0.timeouts.fetch_add(1, Relaxed);
        self.0.record_wait(e.timeout());
    }
    fn handle_checkin(&self, _: r2d2::event::CheckinEvent) {
        self.0.checkins.fetch_add(1, Relaxed);
    }
}

/// Why a connection could not be opened or was refused on checkout.
#[derive(Debug)]
pub(crate) enum ConnError {
    /// Opening a new connection failed (the message is already redacted).
    Open(crate::Error),
    /// The connection outlived `pool_recycle`; not a failure.
    Expired,
    /// The pre-ping query failed: the connection is discarded.
    PingFailed(crate::Error),
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Open(e) => e.fmt(f),
            ConnError::Expired => f.write_str("connection reached pool_recycle and was closed"),
            ConnError::PingFailed(e) => write!(f, "pre-ping failed: {e}"),
        }
    }
}

impl std::error::Error for ConnError {}

/// Counts and logs connection errors (r2d2's default handler logs at ERROR
/// with no context; this one counts, remembers the last cause and logs once
/// at WARN).
#[derive(Debug)]
pub(crate) struct ErrorHooks(pub std::sync::Arc<Stats>);

impl r2d2::HandleError<ConnError> for ErrorHooks {
    fn handle_error(&self, error: ConnError) {
        match &error {
            ConnError::Open(e) => {
                self.0.failures.fetch_add(1, Relaxed);
                self.0.record_open_failure(e.to_string());
                log::warn!(target: "dbmux::pool", "could not open a connection: {e}");
            }
            ConnError::Expired => {
                self.0.recycled.fetch_add(1, Relaxed);
                log::debug!(target: "dbmux::pool", "{error}");
            }
            ConnError::PingFailed(e) => {
                self.0.invalidated.fetch_add(1, Relaxed);
                log::warn!(target: "dbmux::pool", "discarding a connection whose pre-ping failed: {e}");
            }
        }
    }
}
