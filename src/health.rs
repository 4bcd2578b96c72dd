#![doc = include_str!("health.md")]

use crate::config::Profile;
use crate::error::ErrorCode;
use crate::pool::PoolStatus;
use crate::url::Backend;

/// Whether a health check reached the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// The check's query ran.
    Healthy,
    /// It did not: see the report's `message` and `error_code`.
    Unhealthy,
}

impl HealthStatus {
    /// `healthy` or `unhealthy`, as in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

impl std::fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `database_type`: the backend's JSON name, `"unknown"` when the manager
/// could not be built.
fn backend_or_unknown<S: serde::Serializer>(b: &Option<Backend>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(b.map_or("unknown", Backend::name))
}

/// The result of a health check (seed 002's field names).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct HealthReport {
    /// `healthy` or `unhealthy`.
    pub status: HealthStatus,
    /// `sqlite` or `postgresql` (`"unknown"` in the JSON, `None` here, when
    /// the manager could not be built).
    #[serde(serialize_with = "backend_or_unknown")]
    pub database_type: Option<Backend>,
    /// The database's version (`sqlite_version()` or PostgreSQL's `version()`);
    /// `null` when the database could not be reached.
    pub version: Option<String>,
    /// SQLite: the version of the SQLite library dbmux runs on in this
    /// process (see [`crate::sqlite_version`]), even when the database could
    /// not be reached; `null` for PostgreSQL.
    pub sqlite_version: Option<String>,
    /// When the check ran, RFC 3339 in UTC.
    pub timestamp: String,
    /// How long the checkout and the query took, in milliseconds.
    pub latency_ms: f64,
    /// What happened, in words; the error message when unhealthy.
    pub message: String,
    /// The redacted URL (SQLite: the absolute path; PostgreSQL: the server
    /// addresses, no password).
    pub database: String,
    /// PostgreSQL: whether the checked connection is encrypted (as the
    /// server's `pg_stat_ssl` reports it); `null` for SQLite.
    pub tls: Option<bool>,
    /// The error's code when unhealthy (`connect_failed`, ... in the JSON).
    pub error_code: Option<ErrorCode>,
    /// The pool's state after the check.
    pub pool_status: PoolStatus,
    /// PostgreSQL: every host of the URL, with its role and state as this
    /// manager last saw it (empty for SQLite).
    pub hosts: Vec<HostHealth>,
}

/// A server's role, as it reports itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    /// Not in recovery: accepts writes (unless its sessions are read-only).
    Primary,
    /// In recovery (a hot standby): reads only.
    Standby,
    /// Not connected to yet.
    Unknown,
}

/// What dbmux makes of a host now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// The last connection attempt succeeded.
    Up,
    /// The last attempt failed (see `last_error`); skipped for
    /// `DB_HOST_RECHECK` while another host can serve.
    Down,
    /// A primary on an older timeline than one seen on another host (an old
    /// primary restarted after a failover): never used, see `last_error`.
    Fenced,
    /// Not tried yet.
    Unchecked,
}

/// One host of a PostgreSQL URL in a [`HealthReport`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct HostHealth {
    /// The host name, address or socket directory.
    pub host: String,
    /// The port.
    pub port: u16,
    /// Primary or standby, as last seen.
    pub role: HostRole,
    /// Up, down, fenced or unchecked.
    pub state: HostState,
    /// The last error on this host, redacted; `null` when the last attempt
    /// succeeded.
    pub last_error: Option<String>,
    /// How long ago the host was last connected to or failed, in
    /// milliseconds; `null` before the first attempt.
    pub checked_ms_ago: Option<u64>,
    /// The server's timeline, when known (primaries).
    pub timeline: Option<u32>,
    /// A standby's replay lag in bytes of WAL (as last measured; `null`
    /// when unknown, and for primaries).
    pub replay_lag_bytes: Option<u64>,
}

impl HealthReport {
    /// True when `status` is `healthy`.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }

    /// The report as a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Counters and state for debugging (seed 001's names plus more).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct DebugInfo {
    /// `PYTEST_XDIST_WORKER` or `DBMUX_WORKER_ID`, else `main`.
    pub worker_id: String,
    /// This process's id.
    pub process_id: u32,
    /// The calling thread's id (Rust's `ThreadId` number).
    pub thread_id: u64,
    /// `sqlite` or `postgresql`.
    pub backend: Backend,
    /// The redacted URL (SQLite: the absolute path).
    pub url: String,
    /// The profile in force, if any.
    pub profile: Option<Profile>,
    /// Managers (engines) created in this process so far.
    pub engine_creation_count: u64,
    /// Checkouts (sessions) served by this manager.
    pub session_creation_count: u64,
    /// Attempts to open a connection that failed.
    pub connection_failures: u64,
    /// The last connection error, redacted.
    pub last_connection_error: Option<String>,
    /// False once the manager is shut down.
    pub engine_initialized: bool,
    /// Configured pool size.
    pub pool_size: u32,
    /// Configured maximum overflow.
    pub pool_max_overflow: u32,
    /// Connections handed out now.
    pub pool_checked_out: u32,
    /// Idle connections in the pool now.
    pub pool_checked_in: u32,
    /// Open connections beyond `pool_size` now.
    pub pool_overflow: u32,
    /// Connections discarded as broken (failed pre-ping or failed reset).
    pub pool_invalidated: u64,
    /// Connections closed because they reached `pool_recycle`.
    pub pool_recycled: u64,
    /// Checkouts that gave up after `pool_timeout`.
    pub checkout_timeouts: u64,
    /// Total time spent waiting for checkouts, in milliseconds.
    pub total_wait_ms: f64,
    /// Longest single checkout wait, in milliseconds.
    pub max_wait_ms: f64,
    /// Median checkout wait, in milliseconds. This and every other `_p50`
    /// and `_p99` figure come from the histograms of
    /// [`Manager::metrics_text`](crate::Manager::metrics_text): the upper
    /// bound of the bucket the quantile falls in, within 12.5 %.
    pub wait_p50_ms: f64,
    /// 99th percentile of checkout waits, in milliseconds.
    pub wait_p99_ms: f64,
    /// Median time a connection stays checked out, in milliseconds.
    pub hold_p50_ms: f64,
    /// 99th percentile of the time a connection stays checked out, in milliseconds.
    pub hold_p99_ms: f64,
    /// Checkouts waiting in line now.
    pub threads_waiting: u64,
    /// Connection attempts in flight now (including those waiting to retry).
    pub connects_in_flight: u64,
    /// How long the last connection attempt took, in milliseconds.
    pub connect_last_ms: f64,
    /// Median connection attempt, in milliseconds.
    pub connect_p50_ms: f64,
    /// 99th percentile of the connection attempts, in milliseconds.
    pub connect_p99_ms: f64,
    /// The longest connection attempt, in milliseconds.
    pub connect_max_ms: f64,
    /// Median statement time (rows read included), in milliseconds.
    pub statement_p50_ms: f64,
    /// 99th percentile of the statement times, in milliseconds.
    pub statement_p99_ms: f64,
    /// The longest statement, in milliseconds.
    pub statement_max_ms: f64,
    /// Whether the duration histograms are recorded (`DB_METRICS_HISTOGRAMS`);
    /// when not, the `_p50`, `_p99`, `_max` and `total_wait_ms` figures are 0.
    pub histograms: bool,
    /// Connections opened.
    pub connections_opened: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Connections that came back with an open transaction and were rolled back.
    pub resets_on_return: u64,
    /// Pre-ping queries run on checkout.
    pub pre_pings: u64,
    /// Retries made by `with_retry` / `transaction_with_retry`.
    pub retries: u64,
    /// `get_read_after` checkouts served by a standby that had replayed the write.
    pub read_after_standby: u64,
    /// `get_read_after` checkouts served by the primary, because no standby
    /// had replayed the write within `DB_READ_AFTER_WAIT`.
    pub read_after_primary: u64,
    /// Read checkouts that left a standby out for lagging more than
    /// `DB_READ_MAX_LAG`.
    pub read_lag_avoided: u64,
    /// Connections held longer than the leak detection threshold, with
    /// their age (empty when detection is off).
    pub long_held: Vec<crate::pool::leaks::LongHeld>,
    /// Leak warnings logged so far.
    pub leak_warnings: u64,
    /// SQLite: the journal, the WAL file and the writer lane (`null` for
    /// PostgreSQL).
    pub sqlite: Option<SqliteInfo>,
}

/// The `sqlite` section of [`DebugInfo`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct SqliteInfo {
    /// The journal mode dbmux sets on writable files (`wal`), `null` when
    /// left as it is (in-memory and read-only databases).
    pub journal_mode: Option<String>,
    /// The size of the `-wal` file now, in bytes (`null`: none).
    pub wal_bytes: Option<u64>,
    /// Writers waiting for the writer lane of this database now (every
    /// manager of the process on the file shares it).
    pub lane_waiting: u64,
    /// Writes that took the lane so far (those that timed out included).
    pub lane_waits: u64,
    /// Median wait for the lane, in milliseconds.
    pub lane_wait_p50_ms: f64,
    /// 99th percentile of the waits for the lane, in milliseconds.
    pub lane_wait_p99_ms: f64,
    /// The longest wait for the lane, in milliseconds.
    pub lane_wait_max_ms: f64,
    /// The age of the oldest read transaction open on a reader, in
    /// milliseconds (`null`: none; it keeps the WAL from being checkpointed).
    pub oldest_read_tx_ms: Option<f64>,
    /// Read transactions logged for lasting longer than `DB_SQLITE_MAX_READ_TX`.
    pub long_read_tx_warnings: u64,
    /// dbmux's WAL controller runs for this file (`DB_SQLITE_WAL_SOFT_LIMIT`
    /// is not 0, the file is writable and in WAL mode).
    pub wal_controlled: bool,
    /// Frames in the WAL after the last commit of this process.
    pub wal_frames: u64,
    /// Checkpoints the controller ran that copied the whole WAL.
    pub checkpoints: u64,
    /// Closures of the reader gate that could not empty the WAL, because a
    /// read transaction outlasted the gate (230 ms).
    pub checkpoints_blocked: u64,
    /// Times the reader gate closed (the WAL grew past the soft limit).
    pub gate_closures: u64,
    /// Read transactions that waited at the closed gate.
    pub gate_waits: u64,
    /// The longest wait at the gate, in milliseconds.
    pub gate_wait_max_ms: f64,
}

impl DebugInfo {
    /// The info as a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// Now as an RFC 3339 timestamp with milliseconds.
pub(crate) fn timestamp_now() -> String {
    use crate::platform::SystemTime;
    let since = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    // web-time's SystemTime (wasm32) is not std's: format via the offset
    humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + since).to_string()
}

impl HealthReport {
    /// An `unhealthy` report for a manager that could not be built.
    pub(crate) fn from_config_error(e: &crate::Error) -> HealthReport {
        HealthReport {
            status: HealthStatus::Unhealthy,
            database_type: None,
            version: None,
            sqlite_version: None,
            timestamp: timestamp_now(),
            latency_ms: 0.0,
            message: e.to_string(),
            database: String::new(),
            tls: None,
            error_code: Some(e.code()),
            pool_status: PoolStatus::closed(0, 0),
            hosts: Vec::new(),
        }
    }
}
