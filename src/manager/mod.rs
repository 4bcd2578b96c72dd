//! `Manager`: one pool for one database, with health and debug info.

mod backend;
#[cfg(all(feature = "tokio", not(target_arch = "wasm32")))]
mod interact;
#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
mod maintenance;
mod reports;
#[cfg(all(feature = "metrics", not(target_arch = "wasm32")))]
mod sampler;

use backend::{build_pool, BackendPool};
use reports::{common_labels, debug_snapshot, health_check, metric_families};

use crate::pool::core::{Refused, State};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::platform::Instant;

use crate::config::Config;
use crate::connection::{Connection, Transaction};
use crate::error::{Error, ErrorCode, Result};
use crate::health::{DebugInfo, HealthReport};
use crate::pool::{Count, PoolStatus, Shared, Stats};
use crate::url::Target;
use crate::value::{FromValue, Row, Rows, Value};

/// Managers created in this process (`engine_creation_count`).
pub(crate) static MANAGERS_CREATED: AtomicU64 = AtomicU64::new(0);

pub(crate) struct Inner {
    /// What checked-out connections share with the pool.
    pub shared: Arc<Shared>,
    pub pool: RwLock<Option<BackendPool>>,
    health_cache: Mutex<Option<(Instant, HealthReport)>>,
    /// Set once `get_read` made sure a SQLite file exists (checked once, not
    /// on every read checkout).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    file_ensured: std::sync::atomic::AtomicBool,
}

/// A connection manager: one pool for one database.
///
/// Cloning is cheap and every clone refers to the same pool. A manager may be
/// used from any thread. Creating one never blocks on the database:
/// connections are opened on first use.
///
/// ```
/// let mgr = dbmux::Manager::from_url("sqlite::memory:")?;
/// mgr.execute("CREATE TABLE t (x INTEGER)", dbmux::params![])?;
/// mgr.execute("INSERT INTO t VALUES (?)", dbmux::params![42])?;
/// let x: i64 = mgr.query_scalar("SELECT x FROM t", dbmux::params![])?;
/// assert_eq!(x, 42);
/// mgr.shutdown();
/// # Ok::<(), dbmux::Error>(())
/// ```
#[derive(Clone)]
pub struct Manager {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.inner.shared.config.redacted_url())
            .field("pool_size", &self.inner.shared.config.pool_size())
            .field("max_overflow", &self.inner.shared.config.max_overflow())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Manager {
    /// Creates a manager for `config`. Does not connect.
    ///
    /// # Errors
    /// [`ErrorCode::FeatureDisabled`] when the URL needs a backend this build
    /// lacks; [`ErrorCode::ConnectFailed`] when an in-memory database cannot
    /// be created.
    pub fn new(config: Config) -> Result<Manager> {
        let stats = Arc::new(Stats::new(&config));
        let pool = build_pool(&config, &stats)?;
        let leaks = config.leak_detection_threshold().map(|t| {
            crate::pool::leaks::LeakDetector::start(t, config.redacted_url(), stats.clone())
        });
        MANAGERS_CREATED.fetch_add(1, Relaxed);
        let mgr = Manager {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    read_txs: match (config.backend(), config.sqlite_max_read_tx()) {
                        (crate::url::Backend::Sqlite, Some(max)) => Some(
                            crate::pool::readtx::ReadTxWatch::new(max, config.redacted_url()),
                        ),
                        _ => None,
                    },
                    config,
                    stats,
                    leaks,
                }),
                pool: RwLock::new(Some(pool)),
                health_cache: Mutex::new(None),
                file_ensured: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        #[cfg(all(feature = "metrics", not(target_arch = "wasm32")))]
        sampler::register(&mgr.inner);
        Ok(mgr)
    }

    /// A manager for `url` with default pool settings.
    ///
    /// # Errors
    /// As [`Config::from_url`] and [`Manager::new`].
    pub fn from_url(url: &str) -> Result<Manager> {
        Manager::new(Config::from_url(url)?)
    }

    /// A manager configured from the environment ([`Config::from_env`]).
    ///
    /// # Errors
    /// As [`Config::from_env`] and [`Manager::new`].
    pub fn from_env() -> Result<Manager> {
        Manager::new(Config::from_env()?)
    }

    /// The configuration this manager was built with.
    pub fn config(&self) -> &Config {
        &self.inner.shared.config
    }

    /// True after [`shutdown`](Self::shutdown).
    pub fn is_closed(&self) -> bool {
        self.read_pool().is_none()
    }

    fn read_pool(&self) -> std::sync::RwLockReadGuard<'_, Option<BackendPool>> {
        self.inner.pool.read().unwrap_or_else(|e| e.into_inner())
    }

    fn closed_error(&self) -> Error {
        Error::new(
            ErrorCode::ManagerClosed,
            format!(
                "the manager for {} was shut down; create a new one (or call dbmux::global() \
                 again for the global manager)",
                self.inner.shared.config.redacted_url()
            ),
        )
    }

    /// Checks a connection out of the pool, waiting up to `pool_timeout`.
    ///
    /// The connection goes back to the pool when dropped; an open transaction
    /// is rolled back first. It may be moved to and used on another thread.
    ///
    /// # Errors
    /// [`ErrorCode::PoolTimeout`] with the pool's state when no connection
    /// became free; [`ErrorCode::ConnectFailed`] with the cause when no
    /// connection could be opened; [`ErrorCode::ManagerClosed`] after shutdown.
    pub fn get(&self) -> Result<Connection> {
        self.get_timeout(self.inner.shared.config.pool_timeout())
    }

    /// Checks a connection for reads out of the read pool (sized by
    /// `DB_READ_POOL_SIZE`), waiting up to `pool_timeout`. The engine refuses
    /// writes through it ([`ErrorCode::ReadOnly`], with a message that says
    /// to use [`get`](Self::get)):
    ///
    /// - SQLite: the same database opened `SQLITE_OPEN_READONLY` (the shared
    ///   in-memory database too);
    /// - PostgreSQL: a session with `default_transaction_read_only=on`; with
    ///   several hosts, on a standby where one qualifies (a random one, so
    ///   that reads spread), else on the primary.
    ///
    /// A transaction on it is a plain `BEGIN` (no write lock).
    ///
    /// On wasm32, where a manager holds one connection (the wasm VFSs do no
    /// locking between connections), it is that connection with SQLite's
    /// `query_only` on until it is returned.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    #[track_caller]
    pub fn get_read(&self) -> Result<Connection> {
        let at = std::panic::Location::caller();
        #[cfg(target_arch = "wasm32")]
        {
            let mut conn = self.get()?;
            conn.execute_batch("PRAGMA query_only = ON")?;
            Ok(conn.into_reader(at))
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            if !self.inner.file_ensured.load(Relaxed) {
                if let Target::Sqlite(t) = self.inner.shared.config.target() {
                    if let crate::url::SqliteLocation::File(p) = &t.location {
                        // a reader cannot create the file: let the write pool do it
                        if !p.exists() && t.options.mode != Some(crate::url::sqlite::OpenMode::Ro) {
                            drop(self.get()?);
                        }
                    }
                }
                self.inner.file_ensured.store(true, Relaxed);
            }
            let start = Instant::now();
            let timeout = self.inner.shared.config.pool_timeout();
            if let Some(w) = &self.inner.shared.read_txs {
                w.check();
            }
            let mut conn = self.checkout(timeout, true)?;
            conn.set_checked_out_at(at);
            self.within_max_lag(conn, start, timeout)
        }
    }

    /// With `DB_READ_MAX_LAG` and several hosts: a reader on a standby that
    /// lags more is returned (and the standby left out for a second), and
    /// the read goes to another standby, else to the primary.
    #[cfg(not(target_arch = "wasm32"))]
    fn within_max_lag(
        &self,
        mut conn: Connection,
        start: Instant,
        timeout: Duration,
    ) -> Result<Connection> {
        let Some(max) = self.inner.shared.config.read_max_lag() else {
            return Ok(conn);
        };
        let Some(primary) = self.primary_reads() else {
            return Ok(conn); // one server: there is nowhere else to read
        };
        for _ in 0..2 {
            match conn.lags_more_than(max)? {
                None => return Ok(conn),
                Some(why) => {
                    self.inner.shared.stats.add(Count::ReadLagAvoided);
                    log::info!(target: "dbmux::postgres", "{why}; reading elsewhere");
                    drop(conn);
                    conn = self.checkout(timeout.saturating_sub(start.elapsed()), true)?;
                }
            }
        }
        match conn.lags_more_than(max)? {
            None => Ok(conn),
            Some(_) => {
                drop(conn);
                self.checkout_primary_read(primary, start, timeout)
            }
        }
    }

    /// A read-only session on the primary (several hosts), within what is
    /// left of `timeout`.
    #[cfg(not(target_arch = "wasm32"))]
    fn checkout_primary_read(
        &self,
        handle: backend::PoolHandle,
        start: Instant,
        timeout: Duration,
    ) -> Result<Connection> {
        let now = Instant::now();
        let left = timeout
            .saturating_sub(now.saturating_duration_since(start))
            .max(Duration::from_millis(1));
        handle
            .checkout(now, left, &self.inner.shared)
            .map_err(|refused| self.refusal(refused, start))
    }

    /// The handle of the primary's read pool, when there is one.
    #[cfg(not(target_arch = "wasm32"))]
    fn primary_reads(&self) -> Option<backend::PoolHandle> {
        self.read_pool()
            .as_ref()
            .and_then(BackendPool::primary_reads)
    }

    /// A reader that has everything up to `token` (read-your-writes):
    ///
    /// - PostgreSQL: a reader (as [`get_read`](Self::get_read)) on a standby
    ///   that has replayed the token's WAL position, or on the primary; when
    ///   the standby has not yet, it is asked again until
    ///   `DB_READ_AFTER_WAIT` (default 50 ms) passed, and then the read goes
    ///   to a read-only session on the primary;
    /// - SQLite: as [`get_read`](Self::get_read) (every reader of the file
    ///   sees every commit).
    ///
    /// `debug_info()` counts which served: `read_after_standby`,
    /// `read_after_primary`.
    ///
    /// # Errors
    /// As [`get_read`](Self::get_read); [`ErrorCode::InvalidParameter`] for
    /// a token of the other backend.
    pub fn get_read_after(&self, token: &crate::WriteToken) -> Result<Connection> {
        let backend = self.inner.shared.config.backend();
        if token.backend() != backend {
            return Err(Error::new(
                ErrorCode::InvalidParameter,
                format!(
                    "the write token {token} is from {}, but this manager is for {backend}",
                    token.backend()
                ),
            ));
        }
        let Some(lsn) = token.lsn() else {
            return self.get_read();
        };
        #[cfg(target_arch = "wasm32")]
        {
            let _ = lsn;
            self.get_read()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let start = Instant::now();
            let timeout = self.inner.shared.config.pool_timeout();
            let wait = self.inner.shared.config.read_after_wait();
            let stats = &self.inner.shared.stats;
            let mut conn = self.get_read()?;
            let primary = self.primary_reads();
            // with a primary to fall back to, wait DB_READ_AFTER_WAIT; one
            // server (a standby) is waited for within pool_timeout
            let limit = if primary.is_some() { wait } else { timeout };
            let mut pause = Duration::from_micros(500);
            loop {
                if conn.has_replayed(lsn)? {
                    stats.add(Count::ReadAfterStandby);
                    return Ok(conn);
                }
                if start.elapsed() >= limit {
                    break;
                }
                crate::platform::sleep(pause.min(limit.saturating_sub(start.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(5));
            }
            let Some(primary) = primary else {
                return Err(Error::new(
                    ErrorCode::PoolTimeout,
                    format!(
                        "the server has not replayed the write {token} within pool_timeout \
                         ({:.2} s), and the URL names no other server",
                        start.elapsed().as_secs_f64()
                    ),
                ));
            };
            drop(conn);
            let conn = self.checkout_primary_read(primary, start, timeout)?;
            stats.add(Count::ReadAfterPrimary);
            Ok(conn)
        }
    }

    /// A connection from the pool without waiting: `Some` when one is idle,
    /// nobody is queued for one, and it passes the checkout checks without
    /// a round trip (not due for a pre-ping, nothing unread on its socket,
    /// not due for recycling); `None` otherwise, and after shutdown. A
    /// `None` changes nothing: [`get`](Self::get) then waits, opens or
    /// pings as needed. Bindings that hold a lock of their own (Python's
    /// GIL) try this first and release the lock only for `get`.
    pub fn try_get(&self) -> Option<Connection> {
        let guard = self.read_pool();
        let handle = guard.as_ref()?.handle(false);
        drop(guard);
        handle.try_checkout(Instant::now(), &self.inner.shared)
    }

    pub(crate) fn get_timeout(&self, timeout: Duration) -> Result<Connection> {
        self.checkout(timeout, false)
    }

    fn checkout(&self, timeout: Duration, read: bool) -> Result<Connection> {
        let guard = self.read_pool();
        let Some(pool) = guard.as_ref() else {
            return Err(self.closed_error());
        };
        let handle = pool.handle(read);
        drop(guard);
        let start = Instant::now();
        handle
            .checkout(start, timeout, &self.inner.shared)
            .map_err(|refused| self.refusal(refused, start))
    }

    /// The error of a checkout the pool refused.
    fn refusal(&self, refused: Refused, start: Instant) -> Error {
        match refused {
            Refused::Failed(e) => e,
            Refused::Closed => self.closed_error(),
            Refused::Timeout { state, last_error } => self.timeout_error(start, state, last_error),
        }
    }

    /// The error of a checkout that gave up: a connect failure when opening
    /// a connection failed during the wait (the pool's typed signal), else
    /// an exhausted pool.
    fn timeout_error(&self, start: Instant, state: State, connect_cause: Option<Error>) -> Error {
        let c = &self.inner.shared.config;
        let status = PoolStatus::from_state(c.pool_size(), c.max_overflow(), state);
        let waited = format!("{:.2} s", start.elapsed().as_secs_f64());
        match connect_cause {
            Some(cause) => Error::new(
                cause.code(),
                format!(
                    "no connection could be opened within pool_timeout ({waited}): {cause} \
                     [pool: {status}]"
                ),
            )
            .caused_by(cause)
            .with_pool(status),
            #[cfg(target_arch = "wasm32")]
            None => Error::new(
                ErrorCode::PoolTimeout,
                format!(
                    "the connection of this manager is checked out [pool: {status}]: on wasm32 a \
                     manager holds one connection and nothing could return it while you wait; \
                     drop the other Connection first (inside a transaction, use the \
                     transaction's own methods)"
                ),
            )
            .with_pool(status),
            #[cfg(not(target_arch = "wasm32"))]
            None => {
                let advice = "return connections sooner, or raise pool_size/max_overflow \
                              (DB_POOL_SIZE/DB_MAX_OVERFLOW) or pool_timeout (DB_POOL_TIMEOUT)";
                let last = match self.inner.shared.stats.last_error() {
                    Some(l) => format!("; last connection error: {l}"),
                    None => String::new(),
                };
                Error::new(
                    ErrorCode::PoolTimeout,
                    format!(
                        "timed out after {waited} waiting for a connection: all {} allowed \
                         connections are in use [pool: {status}]{last}; {advice}",
                        c.pool_size() + c.max_overflow()
                    ),
                )
                .with_pool(status)
            }
        }
    }

    /// Checks out a connection, runs one query and logs one INFO line with the
    /// backend, the redacted URL and the pool sizes.
    ///
    /// # Errors
    /// The error of the checkout or of the query.
    pub fn connect_check(&self) -> Result<String> {
        let mut conn = self.get()?;
        let version = conn.server_version()?;
        let c = &self.inner.shared.config;
        log::info!(
            target: "dbmux",
            "connected: backend={} database={} version={} pool_size={} max_overflow={}",
            c.backend(),
            c.redacted_url(),
            version,
            c.pool_size(),
            c.max_overflow()
        );
        Ok(version)
    }

    /// Runs one statement on a pooled connection; returns the rows changed.
    ///
    /// # Errors
    /// A checkout error or the statement's error.
    pub fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        self.get()?.execute(sql, params)
    }

    /// Runs several `;`-separated statements without parameters.
    ///
    /// # Errors
    /// A checkout error or the first failing statement's error.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        self.get()?.execute_batch(sql)
    }

    /// Runs a query on a pooled connection and returns all rows.
    ///
    /// # Errors
    /// A checkout error or the query's error.
    pub fn query(&self, sql: &str, params: &[Value]) -> Result<Rows> {
        self.get()?.query(sql, params)
    }

    /// Runs a query and returns its first row.
    ///
    /// # Errors
    /// [`ErrorCode::NoRows`] when there is none.
    pub fn query_row(&self, sql: &str, params: &[Value]) -> Result<Row> {
        self.get()?.query_row(sql, params)
    }

    /// Runs a query and converts the first column of its first row.
    ///
    /// # Errors
    /// [`ErrorCode::NoRows`] when there is none, [`ErrorCode::TypeMismatch`]
    /// when it does not convert.
    pub fn query_scalar<T: FromValue>(&self, sql: &str, params: &[Value]) -> Result<T> {
        self.get()?.query_scalar(sql, params)
    }

    /// Runs `f` in a write transaction (`BEGIN IMMEDIATE` on SQLite) on a
    /// pooled connection: commits when it returns `Ok`, rolls back when it
    /// returns `Err` or panics.
    ///
    /// # Errors
    /// A checkout error, `f`'s error, or the COMMIT's error.
    pub fn transaction<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        self.get()?.transaction(f)
    }

    /// Runs `f` on a pooled connection, and again on a fresh connection when
    /// it fails with a transient error ([`Error::is_transient`]: a lost or
    /// refused connection, a serialization failure or deadlock, SQLite
    /// BUSY), up to the retry policy's attempts with exponential backoff and
    /// full jitter. Each retry is logged at WARN and counted in
    /// `debug_info().retries`. `f` must be safe to run again.
    ///
    /// # Errors
    /// The last error, or the first that is not transient.
    pub fn with_retry<T>(&self, mut f: impl FnMut(&mut Connection) -> Result<T>) -> Result<T> {
        let policy = self.inner.shared.config.retry();
        let mut attempt = 0;
        loop {
            let r = self.get().and_then(|mut c| f(&mut c));
            match r {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt + 1 < policy.attempts => {
                    self.inner.shared.stats.add(Count::Retries);
                    let delay = policy.delay(attempt);
                    log::warn!(
                        target: "dbmux::retry",
                        "attempt {} of {} failed ({}): {e}; retrying in {:.0} ms",
                        attempt + 1,
                        policy.attempts,
                        e.code(),
                        delay.as_secs_f64() * 1000.0
                    );
                    crate::platform::sleep(delay);
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// [`Manager::transaction`] under [`Manager::with_retry`]: the whole
    /// transaction is run again on a fresh connection after a transient
    /// failure. A failure during COMMIT whose outcome is unknown is reported
    /// as [`ErrorCode::CommitUnknown`] and never retried.
    ///
    /// # Errors
    /// As [`Manager::with_retry`].
    pub fn transaction_with_retry<T>(
        &self,
        mut f: impl FnMut(&mut Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.with_retry(|c| c.transaction(&mut f))
    }

    /// SQLite: the database's writer lane and WAL controller (`None` after
    /// shutdown, for PostgreSQL, and on wasm32).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    pub(crate) fn sqlite_lane(&self) -> Option<std::sync::Arc<crate::sqlite::lane::Lane>> {
        self.read_pool().as_ref().and_then(BackendPool::sqlite_lane)
    }

    /// SQLite: the database file (`None` in memory, after shutdown, for
    /// PostgreSQL).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    pub(crate) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        self.read_pool().as_ref().and_then(BackendPool::sqlite_file)
    }

    /// SQLite: the `sqlite` section of debug info (`None` after shutdown).
    pub(crate) fn sqlite_info(&self) -> Option<crate::health::SqliteInfo> {
        let mut info = self
            .read_pool()
            .as_ref()
            .and_then(BackendPool::sqlite_info)?;
        if let Some(w) = &self.inner.shared.read_txs {
            w.check();
            info.oldest_read_tx_ms = w.oldest_ms();
            info.long_read_tx_warnings = w.warnings();
        }
        Some(info)
    }

    /// Connects to every host of a multi-host PostgreSQL URL to refresh what
    /// [`hosts`](Self::hosts) reports (health checks do this).
    pub(crate) fn probe_hosts(&self) {
        if let Some(p) = self.read_pool().as_ref() {
            p.probe_hosts();
        }
    }

    /// PostgreSQL: every host of the URL with its role and state, as this
    /// manager last saw it (empty for SQLite and after shutdown).
    pub fn hosts(&self) -> Vec<crate::health::HostHealth> {
        self.read_pool()
            .as_ref()
            .map(BackendPool::hosts)
            .unwrap_or_default()
    }

    /// The pool's current state.
    pub fn pool_status(&self) -> PoolStatus {
        let c = &self.inner.shared.config;
        let state = self.read_pool().as_ref().map(BackendPool::state);
        match state {
            Some(s) => PoolStatus::from_state(c.pool_size(), c.max_overflow(), s),
            None => PoolStatus::closed(c.pool_size(), c.max_overflow()),
        }
    }

    /// A health report, reused for `health_check_interval` (`DB_HEALTH_CHECK_INTERVAL`).
    /// Never fails: problems show as `status: "unhealthy"` with a message.
    pub fn health(&self) -> HealthReport {
        let interval = self.inner.shared.config.health_check_interval();
        if !interval.is_zero() {
            let cache = self
                .inner
                .health_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some((at, report)) = cache.as_ref() {
                if at.elapsed() < interval {
                    return report.clone();
                }
            }
        }
        self.check_health()
    }

    /// A fresh health report (runs a real query now) that also refreshes the cache.
    pub fn check_health(&self) -> HealthReport {
        let report = health_check(self);
        *self
            .inner
            .health_cache
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), report.clone()));
        report
    }

    /// Counters and pool state for debugging.
    pub fn debug_info(&self) -> DebugInfo {
        debug_snapshot(self)
    }

    /// This manager's metrics in the Prometheus text exposition format
    /// (0.0.4; serve it with `Content-Type: text/plain; version=0.0.4`):
    /// gauges of the pools, counters and the duration histograms, every
    /// sample labelled with `pool` (`DB_POOL_NAME`) and `backend`. The
    /// families and buckets are listed in the README's "Metrics". Reading
    /// them takes each pool's lock once and never touches the database.
    ///
    /// ```
    /// let db = dbmux::Manager::from_url("sqlite::memory:")?;
    /// db.execute("CREATE TABLE t (x INTEGER)", dbmux::params![])?;
    /// let text = db.metrics_text();
    /// assert!(text.contains("# TYPE dbmux_checkouts_total counter"));
    /// assert!(text.contains("dbmux_checkouts_total{pool=\"sqlite::memory:\",backend=\"sqlite\"} 1"));
    /// # Ok::<(), dbmux::Error>(())
    /// ```
    pub fn metrics_text(&self) -> String {
        self.render_metrics(crate::exposition::Format::Prometheus)
    }

    /// The same metrics as [`metrics_text`](Self::metrics_text) in
    /// OpenMetrics 1.0 (`Content-Type: application/openmetrics-text;
    /// version=1.0.0; charset=utf-8`): counters announced without their
    /// `_total` suffix, `# UNIT` lines, and the closing `# EOF`.
    pub fn metrics_openmetrics(&self) -> String {
        self.render_metrics(crate::exposition::Format::OpenMetrics)
    }

    fn render_metrics(&self, format: crate::exposition::Format) -> String {
        crate::exposition::render(&metric_families(self), &common_labels(self), format)
    }

    /// Closes every pooled connection (and the connection that keeps an
    /// in-memory database alive) before returning. Connections still checked
    /// out are closed when they are dropped. Afterwards every call on this
    /// manager fails with [`ErrorCode::ManagerClosed`], and the database files
    /// may be deleted or reopened by a new manager. Calling it twice is harmless.
    pub fn shutdown(&self) {
        // The pool (and the in-memory keeper) is dropped at the end of this
        // block, which closes every idle connection before we return.
        let was_open = {
            let taken = self
                .inner
                .pool
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(pool) = &taken {
                pool.close();
                #[cfg(feature = "metrics")]
                self.inner.shared.stats.facade.shut_down();
            }
            taken.is_some()
        };
        if was_open {
            *self
                .inner
                .health_cache
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = None;
            log::info!(
                target: "dbmux",
                "manager for {} shut down",
                self.inner.shared.config.redacted_url()
            );
        }
    }

    /// The target this manager serves.
    pub fn target(&self) -> &Target {
        self.inner.shared.config.target()
    }
}
