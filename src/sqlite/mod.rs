#![doc = include_str!("README.md")]

#[cfg(all(target_os = "linux", not(target_arch = "wasm32")))]
mod copies;
pub(crate) mod library;
pub use crate::url::sqlite::{
    CacheMode, JournalMode, OpenMode, ResolvedPragmas, SqliteOptions, Synchronous,
};
#[cfg(not(target_arch = "wasm32"))]
pub use backup::{BackupOptions, BackupProgress, BackupReport};
pub use library::{sqlite_version, MIN_SQLITE_VERSION, MIN_SQLITE_VERSION_NUMBER};
pub use reports::{CheckpointMode, CheckpointReport, IntegrityReport};
/// The rusqlite crate dbmux is built on, for use with
/// [`Connection::as_sqlite`](crate::Connection::as_sqlite).
pub use rusqlite;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod backup;
pub(crate) mod checkpointer;
mod errors;
mod handle;
pub(crate) mod lane;
mod open;
mod reports;
mod statements;
pub(crate) mod wal;

use errors::classify;
use lane::{Held, Lane, WriteGate};
pub(crate) use open::{open_keeper, open_spec, LaneSettings, SqliteManager};
use statements::{execute, execute_batch, query_into, query_value};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::Result;
use crate::platform::Instant;
use crate::pool::checks::Checked;
use crate::pool::{ConnError, Stats};
use crate::value::Value;

/// How many SQLite VM steps run between two statement-timeout checks.
const PROGRESS_STEPS: i32 = 1000;

/// A pooled SQLite connection with the bookkeeping the checks need.
pub(crate) struct SqliteConn {
    /// The connection and its prepared statements (rusqlite's `Connection`
    /// through `Deref`).
    pub conn: handle::Handle,
    born: Instant,
    /// Checked out at least once since it was opened.
    pub(crate) used: bool,
    idle_since: Instant,
    /// Deadline of the running statement, in ns since [`epoch`]; 0 = none.
    deadline: Arc<AtomicU64>,
    stats: Arc<Stats>,
    /// Set after a connection-class failure: discard instead of pooling.
    pub broken: bool,
    /// The writer lane (and WAL controller) of its database.
    lane: Option<Arc<Lane>>,
    /// It may write (readers never take the lane).
    writes: bool,
    /// Its `busy_timeout` (the busy handler of a writer keeps to it).
    busy_timeout: Duration,
    /// The lane, while this connection writes.
    held: Option<Held>,
    /// An interrupt was asked for (see `NativeConn::take_interrupted`).
    interrupted: Arc<std::sync::atomic::AtomicBool>,
    /// Held across statements and transactions ([`NativeConn::hold_lane`]):
    /// not given back in autocommit mode.
    ///
    /// [`NativeConn::hold_lane`]: crate::native::NativeConn::hold_lane
    pinned: bool,
    /// How long a writer waits for the lane (`pool_timeout`), and whether
    /// to note where it took it (leak detection on).
    lane_timeout: Duration,
    lane_trace: bool,
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        if self.writes {
            // a connection opens the WAL at its first read transaction; one
            // that never read (only PRAGMAs) would not checkpoint and remove
            // the -wal/-shm files when it closes last after a reader
            let _ = self.conn.query_row("PRAGMA schema_version", [], |_| Ok(()));
        }
        self.stats.add(crate::pool::Count::Closed);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl SqliteConn {
    /// The gate its statements pass, and the connection.
    #[inline]
    fn gated(&mut self) -> (&handle::Handle, WriteGate<'_>) {
        if self.writes {
            lane::set_busy_timeout(self.busy_timeout);
        }
        (
            &self.conn,
            WriteGate {
                conn: &self.conn,
                lane: self.lane.as_ref(),
                writes: self.writes,
                held: &mut self.held,
                timeout: self.lane_timeout,
                trace: self.lane_trace,
            },
        )
    }

    /// After a statement: the lane goes to the next writer once the
    /// connection is in autocommit mode again.
    #[inline]
    fn after(&mut self) {
        if self.held.is_some() && self.conn.is_autocommit() && !self.pinned {
            if let Some(l) = &self.lane {
                l.wal.after_write();
            }
            self.held = None;
        }
    }

    /// Arms the statement timeout (if any) for the next statement.
    #[inline]
    pub fn arm(&self, timeout: Option<Duration>) {
        if let Some(t) = timeout {
            let at = (Instant::now() + t).duration_since(epoch()).as_nanos() as u64;
            self.deadline.store(at.max(1), Relaxed);
        }
    }

    /// Disarms the statement timeout.
    #[inline]
    pub fn disarm(&self, timeout: Option<Duration>) {
        if timeout.is_some() {
            self.deadline.store(0, Relaxed);
        }
    }
}

impl Checked for SqliteConn {
    fn born(&self) -> Instant {
        self.born
    }

    fn idle_since(&self) -> Instant {
        self.idle_since
    }

    fn set_idle_since(&mut self, now: Instant) {
        self.idle_since = now;
        self.deadline.store(0, Relaxed);
    }

    fn ping(&mut self) -> Result<(), ConnError> {
        self.conn
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(|e| ConnError::PingFailed(classify(e)))
    }

    fn is_broken(&self) -> bool {
        self.broken
    }

    fn transaction_open(&self) -> bool {
        !self.conn.is_autocommit()
    }

    fn roll_back(&mut self) -> bool {
        let done = self.conn.execute_batch("ROLLBACK").is_ok() && self.conn.is_autocommit();
        self.after();
        done
    }
}

impl crate::native::NativeConn for SqliteConn {
    fn backend(&self) -> crate::url::Backend {
        crate::url::Backend::Sqlite
    }

    fn take_first_checkout(&mut self) -> bool {
        !std::mem::replace(&mut self.used, true)
    }

    fn discard(&mut self) {
        self.broken = true;
    }

    fn interrupter(&mut self) -> Option<crate::native::Interrupter> {
        let h = self.conn.get_interrupt_handle();
        Some(crate::native::asked(&self.interrupted, move || {
            h.interrupt()
        }))
    }

    fn take_interrupted(&mut self) -> bool {
        self.interrupted
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    #[inline]
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let (conn, mut gate) = self.gated();
        let r = execute(conn, &mut gate, sql, params);
        self.after();
        r
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        let (conn, mut gate) = self.gated();
        let r = execute_batch(conn, &mut gate, sql);
        self.after();
        r
    }

    #[inline]
    fn query_into(
        &mut self,
        sql: &str,
        params: &[Value],
        sink: &mut dyn crate::value::RowSink,
    ) -> Result<u64> {
        let (conn, mut gate) = self.gated();
        let r = query_into(conn, &mut gate, sql, params, sink);
        self.after();
        r
    }

    #[inline]
    fn query_value(&mut self, sql: &str, params: &[Value]) -> Result<Value> {
        let (conn, mut gate) = self.gated();
        let r = query_value(conn, &mut gate, sql, params);
        self.after();
        r
    }

    fn last_insert_id(&mut self) -> Result<i64> {
        Ok(self.conn.last_insert_rowid())
    }

    fn is_encrypted(&self) -> Option<bool> {
        None
    }

    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    #[inline]
    fn arm(&self, timeout: Option<Duration>) {
        SqliteConn::arm(self, timeout)
    }

    #[inline]
    fn disarm(&self, timeout: Option<Duration>) {
        SqliteConn::disarm(self, timeout)
    }

    fn after_connection_error(&mut self, _shared: &crate::pool::Shared) {
        self.broken = true;
    }

    fn hold_lane(&mut self, on: bool) -> Result<()> {
        if on {
            let (_, mut gate) = self.gated();
            gate.before(|| false)?;
            self.pinned = true;
        } else {
            self.pinned = false;
            self.after();
        }
        Ok(())
    }
}
