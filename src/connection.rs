//! `Connection`, the pooled connection guard, and `Transaction`.

use crate::platform::Instant;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};
use crate::native::NativeConn;
use crate::pool::{Shared, Timing};
use crate::url::Backend;
use crate::value::{FromValue, Row, Rows, Value};

enum Pooled {
    #[cfg(feature = "sqlite")]
    Sqlite(crate::pool::core::Pooled<crate::sqlite::SqliteManager>),
    #[cfg(feature = "postgres")]
    Postgres(crate::pool::core::Pooled<crate::postgres::PgManager>),
    /// Keeps the enum matchable in a build without any backend.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

impl Pooled {
    /// The one dispatch point between the backends: every statement,
    /// transaction query and check below goes through it.
    #[inline(always)]
    fn native(&mut self) -> &mut dyn NativeConn {
        match self {
            #[cfg(feature = "sqlite")]
            Pooled::Sqlite(c) => &mut **c,
            #[cfg(feature = "postgres")]
            Pooled::Postgres(c) => &mut **c,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pooled::None(n) => match *n {},
        }
    }

    /// [`Pooled::native`] for reading.
    fn native_ref(&self) -> &dyn NativeConn {
        match self {
            #[cfg(feature = "sqlite")]
            Pooled::Sqlite(c) => &**c,
            #[cfg(feature = "postgres")]
            Pooled::Postgres(c) => &**c,
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            Pooled::None(n) => match *n {},
        }
    }
}

#[cold]
fn log_statement(sql: &str, start: Instant, failed: bool) {
    log::info!(
        target: "dbmux::sql",
        "{sql} [{:.3} ms{}]",
        start.elapsed().as_secs_f64() * 1000.0,
        if failed { ", failed" } else { "" }
    );
}

/// A connection checked out of a [`Manager`](crate::Manager)'s pool.
///
/// Dropping it returns it to the pool; if a transaction is still open it is
/// rolled back first, so the next user always gets a clean connection.
///
/// It is `Send`: it may be checked out on one thread and used on another
/// (SQLAlchemy's `check_same_thread=False`), one thread at a time.
pub struct Connection {
    conn: Pooled,
    shared: Arc<Shared>,
    /// No echo and no client-side statement timeout: statements skip both.
    plain: bool,
    /// The leak detector's id for this checkout (when detection is on).
    leak_id: Option<u64>,
    /// Checked out for reads (`Manager::get_read`): engine-enforced read-only.
    read: bool,
    /// A write was committed during this checkout (see `write_token`).
    wrote: bool,
    /// A reader's open read transaction, in the manager's watch.
    read_tx: Option<u64>,
    /// Where a reader was checked out (`get_read`), for the long read
    /// transaction warning.
    checked_out_at: &'static std::panic::Location<'static>,
    /// The first checkout of its underlying connection.
    first: bool,
    /// Which statements are timed for the statement histogram.
    timing: StatementTiming,
}

/// Statements faster than this...
const FAST: std::time::Duration = std::time::Duration::from_micros(10);
/// ...are timed one in this many while they stay fast.
const FAST_SAMPLE: u32 = 64;

/// The statement histogram's sampling on one checkout. Reading the clock
/// twice costs 50-110 ns on a virtual machine, a third of a cached SQLite
/// `SELECT`; so once a timed statement took under [`FAST`] (the lowest
/// exported bucket), only one in [`FAST_SAMPLE`] of the next ones is timed,
/// and the others are counted in the bucket of the last one timed. The
/// counts stay exact; a statement of 10 µs or more is always timed when it
/// is seen, and timing every statement resumes from it.
#[derive(Debug, Default, Clone, Copy)]
struct StatementTiming {
    /// Statements to leave untimed before the next timed one.
    skip: u32,
    /// Untimed statements not yet counted.
    untimed: u64,
    /// The last timed statement's duration.
    last: std::time::Duration,
}

impl StatementTiming {
    /// Whether to time the next statement (counts it as untimed if not).
    #[inline(always)]
    fn due(&mut self) -> bool {
        if self.skip == 0 {
            return true;
        }
        self.skip -= 1;
        self.untimed += 1;
        false
    }

    /// A timed statement took `d`.
    #[inline]
    fn timed(&mut self, stats: &crate::pool::Stats, d: std::time::Duration) {
        self.flush(stats);
        stats.time(Timing::Statement, d);
        self.last = d;
        self.skip = if d < FAST { FAST_SAMPLE - 1 } else { 0 };
    }

    /// Counts the untimed statements in the last timed one's bucket.
    fn flush(&mut self, stats: &crate::pool::Stats) {
        if self.untimed > 0 {
            stats.time_n(
                Timing::Statement,
                self.last,
                std::mem::take(&mut self.untimed),
            );
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.timing.flush(&self.shared.stats);
        self.end_read_tx();
        self.conn.native().set_verbatim(false);
        #[cfg(target_arch = "wasm32")]
        if self.read {
            // the one connection of a wasm32 manager, lent for reads
            let _ = self.conn.native().execute_batch("PRAGMA query_only = OFF");
        }
        if let (Some(id), Some(d)) = (self.leak_id, &self.shared.leaks) {
            d.checkin(id);
        }
    }
}

fn leak_id(shared: &Shared) -> Option<u64> {
    shared.leaks.as_ref().map(|d| d.checkout())
}

fn is_plain(shared: &Shared) -> bool {
    !shared.config.echo() && shared.config.local_statement_timeout().is_none()
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("backend", &self.backend())
            .field("database", &self.shared.config.redacted_url())
            .finish()
    }
}

impl Connection {
    #[cfg(feature = "sqlite")]
    pub(crate) fn sqlite(
        c: crate::pool::core::Pooled<crate::sqlite::SqliteManager>,
        shared: Arc<Shared>,
        read: bool,
    ) -> Connection {
        Connection {
            conn: Pooled::Sqlite(c),
            plain: is_plain(&shared),
            leak_id: leak_id(&shared),
            shared,
            read,
            wrote: false,
            read_tx: None,
            checked_out_at: std::panic::Location::caller(),
            first: false,
            timing: StatementTiming::default(),
        }
        .first_checkout()
    }

    /// A handle that interrupts the statement this connection runs, from
    /// another thread (an async task that was cancelled, a watchdog): see
    /// [`Interrupter`](crate::Interrupter). `None` on wasm32.
    pub fn interrupter(&mut self) -> Option<crate::Interrupter> {
        self.conn.native().interrupter()
    }

    /// The backend of this connection.
    pub fn backend(&self) -> Backend {
        self.conn.native_ref().backend()
    }

    /// Runs `f` on the native connection with echo logging and the
    /// statement timeout around it. Generic, so the hot path inlines.
    #[inline(always)]
    fn run<R>(&mut self, sql: &str, f: impl FnOnce(&mut dyn NativeConn) -> Result<R>) -> Result<R> {
        let stats = &self.shared.stats;
        let start = (stats.histograms() && self.timing.due()).then(Instant::now);
        if self.plain {
            let r = f(self.conn.native());
            if let Some(start) = start {
                self.timing.timed(stats, start.elapsed());
            }
            return match r {
                Ok(v) => Ok(v),
                Err(e) => Err(self.after_error(e)),
            };
        }
        let cfg = &self.shared.config;
        let timeout = cfg.local_statement_timeout();
        let due = start.is_some();
        let start = start.or_else(|| cfg.echo().then(Instant::now));
        let native = self.conn.native();
        native.arm(timeout);
        let result = f(&mut *native);
        native.disarm(timeout);
        if let Some(start) = start {
            if due {
                self.timing.timed(stats, start.elapsed());
            }
            if cfg.echo() {
                log_statement(sql, start, result.is_err());
            }
        }
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(self.after_error(e)),
        }
    }

    /// A connection-class failure: this connection is discarded on return,
    /// and on a server (which may have restarted) every idle connection
    /// opened before now is invalidated too, as SQLAlchemy does.
    /// A write refused on a connection for reads says which call to use.
    #[cold]
    fn after_error(&mut self, e: Error) -> Error {
        if e.code() == ErrorCode::StatementTimeout && self.conn.native().take_interrupted() {
            return Error::new(
                ErrorCode::Cancelled,
                "the statement was interrupted (Interrupter::interrupt: a cancelled task or a \
                 watchdog); its transaction, if any, is still open and should be rolled back",
            )
            .caused_by(e);
        }
        if e.code() == ErrorCode::ConnectFailed {
            self.conn.native().after_connection_error(&self.shared);
        }
        if !self.read && e.code() == ErrorCode::ReadOnly {
            if let Some(why) = self.conn.native().after_read_only_refusal() {
                return Error::new(ErrorCode::ReadOnly, format!("{e}; {why}")).caused_by(e);
            }
        }
        if self.read && e.code() == ErrorCode::ReadOnly {
            return Error::new(
                ErrorCode::ReadOnly,
                format!(
                    "{e}; this connection is for reads (get_read): check out a connection for \
                     writes with get()"
                ),
            )
            .caused_by(e);
        }
        e
    }

    /// The one connection of a wasm32 manager, lent for reads
    /// (`query_only` is on; `Drop` turns it off again).
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn into_reader(mut self, at: &'static std::panic::Location<'static>) -> Connection {
        self.read = true;
        self.checked_out_at = at;
        self
    }

    /// Notes where a reader was checked out.
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn set_checked_out_at(&mut self, at: &'static std::panic::Location<'static>) {
        self.checked_out_at = at;
    }

    /// A reader's read transaction ended (or never began).
    #[inline]
    fn end_read_tx(&mut self) {
        if let Some(id) = self.read_tx.take() {
            if let Some(w) = &self.shared.read_txs {
                w.end(id);
            }
        }
    }

    /// Whether this connection was checked out for reads
    /// ([`Manager::get_read`](crate::Manager::get_read)).
    pub fn is_read_only(&self) -> bool {
        self.read
    }

    /// Runs one statement with `?` placeholders and returns the number of rows
    /// it changed.
    ///
    /// # Errors
    /// The database's error, classified ([`Error::code`]); a wrong number of
    /// parameters gives [`ErrorCode::InvalidParameter`].
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let was_in_tx = self.in_transaction();
        let n = self.run(sql, |n| n.execute(sql, params))?;
        self.note_write(was_in_tx, sql, true);
        Ok(n)
    }

    /// Notes a committed write for [`Connection::write_token`]: a statement
    /// that ran outside a transaction (`counts`: it was a write), or the end
    /// of a transaction other than a rollback.
    #[inline]
    fn note_write(&mut self, was_in_tx: bool, sql: &str, counts: bool) {
        if self.read_tx.is_some() && !self.in_transaction() {
            self.end_read_tx();
        }
        if self.read || self.wrote || self.in_transaction() {
            return;
        }
        if was_in_tx {
            let head = sql.trim_start().get(..8).unwrap_or("").to_ascii_uppercase();
            self.wrote = !(head.starts_with("ROLLBACK") || head.starts_with("ABORT"));
        } else {
            self.wrote = counts;
        }
    }

    /// After a committed write during this checkout, a [`WriteToken`](crate::WriteToken)
    /// that [`Manager::get_read_after`](crate::Manager::get_read_after) takes
    /// to read on a standby that has replayed it: on PostgreSQL the primary's
    /// WAL position now (one round trip) and its timeline, on SQLite a
    /// trivial token. `None` before any committed write, and on a connection
    /// for reads.
    ///
    /// # Errors
    /// The server's error when asked for its position.
    pub fn write_token(&mut self) -> Result<Option<crate::WriteToken>> {
        if !self.wrote {
            return Ok(None);
        }
        self.conn.native().write_token().map(Some)
    }

    /// Notes whether this is the first checkout of the underlying connection.
    fn first_checkout(mut self) -> Connection {
        self.first = self.conn.native().take_first_checkout();
        self
    }

    /// True when this checkout is the first of its underlying connection
    /// since that was opened: where a binding runs per-connection setup
    /// once (SQLAlchemy's `connect` event), not at every checkout.
    pub fn is_first_checkout(&self) -> bool {
        self.first
    }

    /// On PostgreSQL, `on` sends this checkout's SQL to the server as
    /// written: `$1, $2, ...` are the placeholders and a `?` is the jsonb
    /// operator, never rewritten (for SQL generators with their own
    /// placeholders, such as SQLAlchemy's `numeric_dollar` style). Off by
    /// default, and off again when the connection returns to the pool.
    /// SQLite accepts both styles either way, so it ignores this.
    pub fn set_verbatim_sql(&mut self, on: bool) {
        self.conn.native().set_verbatim(on);
    }

    /// Closes the underlying connection when this checkout returns it,
    /// instead of pooling it again (SQLAlchemy's `invalidate`: the caller
    /// no longer trusts its session state).
    pub fn discard(&mut self) {
        self.conn.native().discard();
    }

    /// Takes (`on`) or gives back the writer lane of a SQLite database,
    /// held across statements until given back (restores replace the file
    /// under it; migrations hold it for their whole run).
    pub(crate) fn hold_lane(&mut self, on: bool) -> Result<()> {
        self.conn.native().hold_lane(on)
    }

    /// Whether the server has replayed WAL up to `lsn` (always, on a
    /// primary and on SQLite).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn has_replayed(&mut self, lsn: u64) -> Result<bool> {
        self.conn.native().has_replayed(lsn)
    }

    /// A reason this reader lags more than `max` (`None`: it does not).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn lags_more_than(
        &mut self,
        max: crate::config::ReadMaxLag,
    ) -> Result<Option<String>> {
        self.conn.native().lags_more_than(max)
    }

    /// Runs several `;`-separated statements without parameters (a script).
    ///
    /// # Errors
    /// The first failing statement's error.
    pub fn execute_batch(&mut self, sql: &str) -> Result<()> {
        let was_in_tx = self.in_transaction();
        self.run(sql, |n| n.execute_batch(sql))?;
        self.note_write(was_in_tx, sql, true);
        Ok(())
    }

    /// Runs a query and returns every row, with column names and declared types.
    ///
    /// # Errors
    /// The database's error, classified.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> Result<Rows> {
        let mut rows = crate::value::RowsBuilder::default();
        let affected = self.query_into(sql, params, &mut rows)?;
        Ok(rows.finish(affected))
    }

    /// Runs a statement and streams its columns and values into `sink`
    /// instead of building [`Rows`] (for bindings that convert values
    /// straight into their own objects). Returns the rows changed by a
    /// statement without result columns, else 0.
    ///
    /// # Errors
    /// As [`Connection::query`].
    pub fn query_into(
        &mut self,
        sql: &str,
        params: &[Value],
        sink: &mut dyn crate::value::RowSink,
    ) -> Result<u64> {
        let was_in_tx = self.in_transaction();
        let changed = self.run(sql, |n| n.query_into(sql, params, sink))?;
        self.note_write(was_in_tx, sql, changed > 0);
        Ok(changed)
    }

    /// Runs a query and returns its first row.
    ///
    /// # Errors
    /// [`ErrorCode::NoRows`] when there is none.
    pub fn query_row(&mut self, sql: &str, params: &[Value]) -> Result<Row> {
        // stops at the first row: the rest is never read
        let mut first = crate::value::RowsBuilder::first(1);
        let affected = self.query_into(sql, params, &mut first)?;
        first
            .finish(affected)
            .into_iter()
            .next()
            .ok_or_else(|| Error::new(ErrorCode::NoRows, "the query returned no rows"))
    }

    /// Runs a query and converts the first column of its first row.
    ///
    /// # Errors
    /// [`ErrorCode::NoRows`] when there is none, [`ErrorCode::TypeMismatch`]
    /// when the value does not convert to `T`.
    pub fn query_scalar<T: FromValue>(&mut self, sql: &str, params: &[Value]) -> Result<T> {
        let v = self.run(sql, |n| n.query_value(sql, params))?;
        T::from_value(v)
    }

    /// The id of the last row inserted on this connection: SQLite's rowid;
    /// on PostgreSQL `lastval()`, the value a sequence last handed out in
    /// this session.
    ///
    /// # Errors
    /// On PostgreSQL, when no sequence was used yet in this session.
    pub fn last_insert_id(&mut self) -> Result<i64> {
        self.conn.native().last_insert_id()
    }

    /// Whether the session is encrypted: `Some(true/false)` on PostgreSQL
    /// (as `pg_stat_ssl` reports it), `None` for SQLite.
    pub fn is_encrypted(&self) -> Option<bool> {
        self.conn.native_ref().is_encrypted()
    }

    /// True while a transaction is open on this connection.
    pub fn in_transaction(&self) -> bool {
        self.conn.native_ref().in_transaction()
    }

    /// True when dropping this connection now (returning it to the pool)
    /// cannot wait on the database: no transaction or read snapshot is
    /// left to end, and closing it, should the pool not keep it, is a write
    /// to its socket (PostgreSQL). A binding that holds a lock of its own
    /// (Python's GIL) keeps it for such a return instead of releasing it
    /// for the blocking case.
    pub fn returns_without_waiting(&self) -> bool {
        let n = self.conn.native_ref();
        !cfg!(target_arch = "wasm32")
            && self.read_tx.is_none()
            && !n.in_transaction()
            && n.closes_without_waiting()
    }

    /// The database version: `sqlite_version()`, or PostgreSQL's `version()`.
    ///
    /// # Errors
    /// The query's error.
    pub fn server_version(&mut self) -> Result<String> {
        match self.backend() {
            Backend::Postgres => self.query_scalar("SELECT version()", &[]),
            _ => self.query_scalar("SELECT sqlite_version()", &[]),
        }
    }

    /// The native `rusqlite::Connection`, for anything dbmux does not wrap.
    /// Leave it in autocommit mode; an open transaction is rolled back on return.
    /// The statements dbmux keeps prepared on it are finalized first (they
    /// are prepared again when next used).
    #[cfg(feature = "sqlite")]
    pub fn as_sqlite(&mut self) -> Option<&mut rusqlite::Connection> {
        match &mut self.conn {
            Pooled::Sqlite(c) => Some(&mut c.conn),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// The native session, for anything dbmux does not wrap: build a call on
    /// [`PgClient::client`](crate::postgres::PgClient::client) (a `tokio_postgres::Client`) and wait for it with
    /// [`PgClient::block_on`](crate::postgres::PgClient::block_on), which drives the connection and applies
    /// `DB_QUERY_TIMEOUT`:
    ///
    /// ```no_run
    /// # fn f(conn: &mut dbmux::Connection) -> dbmux::Result<()> {
    /// let pg = conn.as_postgres().expect("a PostgreSQL connection");
    /// let rows = pg.block_on(pg.client().query("SELECT $1::int4", &[&7i32]))?;
    /// assert_eq!(rows[0].get::<_, i32>(0), 7);
    /// # Ok(()) }
    /// ```
    ///
    /// A transaction it opens is not seen by dbmux's reset on return: close it.
    #[cfg(feature = "postgres")]
    pub fn as_postgres(&mut self) -> Option<&crate::postgres::PgClient> {
        match &mut self.conn {
            Pooled::Postgres(c) => Some(c.client()),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    #[cfg(feature = "postgres")]
    pub(crate) fn postgres(
        c: crate::pool::core::Pooled<crate::postgres::PgManager>,
        shared: Arc<Shared>,
        read: bool,
    ) -> Connection {
        Connection {
            conn: Pooled::Postgres(c),
            plain: is_plain(&shared),
            leak_id: leak_id(&shared),
            shared,
            read,
            wrote: false,
            read_tx: None,
            checked_out_at: std::panic::Location::caller(),
            first: false,
            timing: StatementTiming::default(),
        }
        .first_checkout()
    }

    /// Begins a write transaction: `BEGIN IMMEDIATE` on SQLite (the write
    /// lock is taken up front, so read-then-write transactions from several
    /// threads queue on `busy_timeout` instead of failing with "database is
    /// locked"), `BEGIN` on PostgreSQL. End it with [`Connection::commit`] or
    /// [`Connection::rollback`]; one left open is rolled back when the
    /// connection returns to the pool.
    ///
    /// # Errors
    /// [`ErrorCode::Misuse`] when a transaction is already open; the
    /// database's error otherwise.
    pub fn begin(&mut self) -> Result<()> {
        if self.in_transaction() {
            return Err(Error::new(
                ErrorCode::Misuse,
                "a transaction is already open on this connection; nest with SAVEPOINT instead",
            ));
        }
        let begin = match self.backend() {
            // a reader takes no write lock (and may not: it is read-only)
            Backend::Sqlite if !self.read => "BEGIN IMMEDIATE",
            _ => "BEGIN",
        };
        self.execute_batch(begin)?;
        if self.read {
            if let Some(w) = &self.shared.read_txs {
                self.read_tx = Some(w.begin(self.checked_out_at));
            }
        }
        Ok(())
    }

    /// Commits the open transaction.
    ///
    /// This is the one place that decides what a failed COMMIT means, for
    /// Rust, C, Python and JavaScript alike: when the connection broke during
    /// the COMMIT nobody knows whether the database applied it, and the error
    /// is [`ErrorCode::CommitUnknown`] (never retried: check, then decide).
    /// Any other failure (a deferred constraint, a serialization failure) is
    /// reported as itself, and the transaction is rolled back.
    ///
    /// # Errors
    /// [`ErrorCode::Misuse`] when no transaction is open;
    /// [`ErrorCode::CommitUnknown`] as above; the database's error otherwise.
    pub fn commit(&mut self) -> Result<()> {
        if !self.in_transaction() {
            return Err(Error::new(
                ErrorCode::Misuse,
                "COMMIT without an open transaction; begin one first",
            ));
        }
        match self.execute_batch("COMMIT") {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::ConnectFailed => Err(e.into_commit_unknown()),
            Err(e) => {
                if self.in_transaction() {
                    let _ = self.execute_batch("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// Rolls back the open transaction.
    ///
    /// # Errors
    /// [`ErrorCode::Misuse`] when no transaction is open; the database's
    /// error otherwise.
    pub fn rollback(&mut self) -> Result<()> {
        if !self.in_transaction() {
            return Err(Error::new(
                ErrorCode::Misuse,
                "ROLLBACK without an open transaction; begin one first",
            ));
        }
        self.execute_batch("ROLLBACK")
    }

    /// Rolls back whatever is open, ignoring errors (the connection is
    /// discarded on return if it cannot be reset).
    fn rollback_quietly(&mut self) {
        if self.in_transaction() {
            let _ = self.execute_batch("ROLLBACK");
        }
    }

    /// Runs `f` in a write transaction ([`Connection::begin`]): commits when
    /// `f` returns `Ok` ([`Connection::commit`], with its rule for a COMMIT
    /// whose outcome is unknown), rolls back when it returns `Err` or panics.
    ///
    /// # Errors
    /// The BEGIN's error, `f`'s error, or the COMMIT's error.
    pub fn transaction<T, E, F>(&mut self, f: F) -> std::result::Result<T, E>
    where
        F: FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
        E: From<Error>,
    {
        self.begin()?;
        let mut tx = Transaction {
            conn: self,
            finished: false,
        };
        let result = f(&mut tx);
        tx.finished = true;
        match result {
            Ok(v) => {
                tx.conn.commit()?;
                Ok(v)
            }
            Err(e) => {
                tx.conn.rollback_quietly();
                Err(e)
            }
        }
    }
}

/// An open transaction, handed to the closure of
/// [`Connection::transaction`]. It offers every [`Connection`] method
/// (through `Deref`); the closure's result decides commit or rollback.
pub struct Transaction<'c> {
    conn: &'c mut Connection,
    finished: bool,
}

impl Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl DerefMut for Transaction<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        // Reached without `finished` only when the closure panicked.
        if !self.finished {
            self.conn.rollback_quietly();
        }
    }
}
