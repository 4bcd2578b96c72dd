#![doc = include_str!("README.md")]

#[cfg(all(target_os = "linux", not(target_arch = "wasm32")))]
mod copies;
pub(crate) mod library;
pub use crate::url::sqlite::{
    CacheMode, JournalMode, OpenMode, ResolvedPragmas, SqliteOptions, Synchronous,
};
pub use library::{sqlite_version, MIN_SQLITE_VERSION, MIN_SQLITE_VERSION_NUMBER};
/// The rusqlite crate dbmux is built on, for use with
/// [`Connection::as_sqlite`](crate::Connection::as_sqlite).
pub use rusqlite;

mod errors;
mod open;
mod statements;

use errors::classify;
pub(crate) use open::{open_keeper, open_spec, SqliteManager};
use statements::{execute, query_into, query_value};

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::platform::Instant;
use crate::pool::checks::Checked;
use crate::pool::{ConnError, Stats};
use crate::value::Value;

/// How many SQLite VM steps run between two statement-timeout checks.
const PROGRESS_STEPS: i32 = 1000;

/// A pooled SQLite connection with the bookkeeping the checks need.
pub(crate) struct SqliteConn {
    pub conn: rusqlite::Connection,
    born: Instant,
    idle_since: Instant,
    /// Deadline of the running statement, in ns since [`epoch`]; 0 = none.
    deadline: Arc<AtomicU64>,
    stats: Arc<Stats>,
    /// Set after a connection-class failure: discard instead of pooling.
    pub broken: bool,
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        self.stats.closed.fetch_add(1, Relaxed);
    }
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl SqliteConn {
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
        self.conn.execute_batch("ROLLBACK").is_ok() && self.conn.is_autocommit()
    }
}

impl crate::native::NativeConn for SqliteConn {
    fn backend(&self) -> crate::url::Backend {
        crate::url::Backend::Sqlite
    }

    #[inline]
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        execute(&self.conn, sql, params)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(Error::from)
    }

    #[inline]
    fn query_into(
        &mut self,
        sql: &str,
        params: &[Value],
        sink: &mut dyn crate::value::RowSink,
    ) -> Result<u64> {
        query_into(&self.conn, sql, params, sink)
    }

    #[inline]
    fn query_value(&mut self, sql: &str, params: &[Value]) -> Result<Value> {
        query_value(&self.conn, sql, params)
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
}
