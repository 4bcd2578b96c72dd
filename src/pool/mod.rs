#![doc = include_str!("README.md")]

pub(crate) mod checks;
pub(crate) mod core;
mod counts;
#[cfg(feature = "metrics")]
pub(crate) mod facade;
pub(crate) mod histogram;
pub(crate) mod leaks;
pub(crate) mod readtx;
pub(crate) mod retry;
pub(crate) mod status;

pub(crate) use counts::{CloseReason, Count, Timing, SQLITE_GATE_WAIT, SQLITE_LANE_WAIT};
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

/// Counters, gauges and histograms of one manager, fed by the pool, the
/// connection checks and the connections.
#[derive(Debug)]
pub(crate) struct Stats {
    counts: [AtomicU64; Count::ALL.len()],
    closed_by: [AtomicU64; CloseReason::ALL.len()],
    /// Failed connection attempts by error code.
    connect_errors: Mutex<Vec<(crate::ErrorCode, u64)>>,
    /// The last connection attempt's duration, in microseconds.
    pub connect_last_us: AtomicU64,
    /// Whether the histograms are recorded (`DB_METRICS_HISTOGRAMS`).
    histograms: bool,
    timings: [histogram::Histogram; Timing::ALL.len()],
    pub last_error: Mutex<Option<String>>,
    /// The WARN rate limit of connect errors.
    warned: Mutex<WarnLimit>,
    /// The `metrics` facade's handles.
    #[cfg(feature = "metrics")]
    pub(crate) facade: crate::pool::facade::Handles,
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
    /// The counters of a manager built from `config`.
    pub(crate) fn new(config: &crate::Config) -> Stats {
        Stats {
            counts: Default::default(),
            closed_by: Default::default(),
            connect_errors: Mutex::new(Vec::new()),
            connect_last_us: AtomicU64::new(0),
            histograms: config.metrics_histograms(),
            timings: Default::default(),
            last_error: Mutex::new(None),
            warned: Mutex::new(WarnLimit::default()),
            #[cfg(feature = "metrics")]
            facade: crate::pool::facade::Handles::new(config),
        }
    }

    /// Adds one to a counter.
    #[inline]
    pub(crate) fn add(&self, c: Count) {
        self.add_n(c, 1);
    }

    /// Adds `n` to a counter.
    #[inline]
    pub(crate) fn add_n(&self, c: Count, n: u64) {
        self.counts[c as usize].fetch_add(n, Relaxed);
        #[cfg(feature = "metrics")]
        self.facade.count(c, n);
    }

    /// A counter's value.
    pub(crate) fn get(&self, c: Count) -> u64 {
        if c == Count::Checkouts && self.histograms {
            // every checkout and timeout is in the acquire histogram (one
            // atomic add less per checkout)
            let waits = self.timing(Timing::Acquire).count();
            return waits.saturating_sub(self.get(Count::Timeouts));
        }
        self.counts[c as usize].load(Relaxed)
    }

    /// Counts `n` connections the pool closed for `why`.
    pub(crate) fn closed_for(&self, why: CloseReason, n: u64) {
        if n == 0 {
            return;
        }
        self.closed_by[why as usize].fetch_add(n, Relaxed);
        #[cfg(feature = "metrics")]
        self.facade.closed(why, n);
    }

    /// Connections the pool closed for `why`.
    pub(crate) fn closed_count(&self, why: CloseReason) -> u64 {
        self.closed_by[why as usize].load(Relaxed)
    }

    /// Failed connection attempts in all.
    pub(crate) fn connect_errors_total(&self) -> u64 {
        let by_code = self
            .connect_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        by_code.iter().map(|(_, n)| n).sum()
    }

    /// Failed connection attempts by error code, in code order.
    pub(crate) fn connect_errors(&self) -> Vec<(crate::ErrorCode, u64)> {
        let mut v = self
            .connect_errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        v.sort_by_key(|(c, _)| *c as i32);
        v
    }

    /// Records a duration in a histogram (when histograms are on).
    #[inline]
    pub(crate) fn time(&self, t: Timing, d: Duration) {
        if self.histograms {
            self.timings[t as usize].record(d);
            #[cfg(feature = "metrics")]
            self.facade.time(t, d);
        }
    }

    /// Records `n` durations of `d` each in a histogram (when histograms
    /// are on).
    pub(crate) fn time_n(&self, t: Timing, d: Duration, n: u64) {
        if self.histograms && n > 0 {
            self.timings[t as usize].record_n(d, n);
            #[cfg(feature = "metrics")]
            self.facade.time_n(t, d, n);
        }
    }

    /// Whether the histograms are recorded.
    #[inline]
    pub(crate) fn histograms(&self) -> bool {
        self.histograms
    }

    /// A histogram.
    pub(crate) fn timing(&self, t: Timing) -> &histogram::Histogram {
        &self.timings[t as usize]
    }

    pub(crate) fn record_checkout(&self, waited: Duration) {
        if self.histograms {
            self.time(Timing::Acquire, waited);
            #[cfg(feature = "metrics")]
            self.facade.count(Count::Checkouts, 1);
        } else {
            self.add(Count::Checkouts);
        }
    }

    pub(crate) fn record_timeout(&self, waited: Duration) {
        self.add(Count::Timeouts);
        self.time(Timing::Acquire, waited);
    }

    pub(crate) fn record_checkin(&self, held: Duration) {
        self.time(Timing::Hold, held);
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
        {
            let mut by_code = self
                .connect_errors
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match by_code.iter_mut().find(|(c, _)| *c == e.code()) {
                Some((_, n)) => *n += 1,
                None => by_code.push((e.code(), 1)),
            }
        }
        #[cfg(feature = "metrics")]
        self.facade.connect_error(e.code());
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
    /// The pre-ping query failed, or the server closed the connection: it
    /// is discarded.
    PingFailed(crate::Error),
    /// It works, but the pool will not use it again (opened before the
    /// server failed, the server changed role, ...): it is discarded.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Invalidated(crate::Error),
}

impl ConnError {
    /// The `reason` label of the close.
    pub(crate) fn close_reason(&self) -> CloseReason {
        match self {
            ConnError::Expired => CloseReason::Recycled,
            ConnError::PingFailed(_) => CloseReason::Broken,
            ConnError::Invalidated(_) => CloseReason::Invalidated,
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Expired => f.write_str("connection reached pool_recycle and was closed"),
            ConnError::PingFailed(e) => write!(f, "pre-ping failed: {e}"),
            ConnError::Invalidated(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ConnError {}
