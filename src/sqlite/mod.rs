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

use crate::pool::r2d2;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::platform::Instant;

#[cfg(not(target_arch = "wasm32"))]
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{ffi, OpenFlags, ToSql, TransactionBehavior};

use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{rewrite, Target};
use crate::pool::checks::Checked;
use crate::pool::{CheckSettings, ConnError, Stats};
use crate::url::{SqliteLocation, SqliteTarget};
use crate::value::{Column, Value};

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

/// `r2d2_sqlite::SqliteConnectionManager` plus dbmux's checks.
pub(crate) struct SqliteManager {
    #[cfg(not(target_arch = "wasm32"))]
    inner: SqliteConnectionManager,
    /// On wasm32 (no r2d2_sqlite): what to open, and the pragmas.
    #[cfg(target_arch = "wasm32")]
    inner: WasmOpener,
    settings: Arc<CheckSettings>,
    display: String,
}

impl std::fmt::Debug for SqliteManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteManager")
            .field("database", &self.display)
            .finish_non_exhaustive()
    }
}

/// What to hand to `sqlite3_open_v2`.
#[derive(Debug, Clone)]
pub(crate) struct OpenSpec {
    pub uri: String,
    pub flags: OpenFlags,
    pub memory: bool,
    pub pragmas: ResolvedPragmas,
}

fn memory_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "dbmux-mem-{}-{}",
        crate::platform::process_id(),
        NEXT.fetch_add(1, Relaxed)
    )
}

fn uri_escape(path: &Path) -> String {
    let s = path.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            _ => out.push(c),
        }
    }
    out
}

/// Decides the URI, flags and pragmas for a target. Every in-memory target
/// gets a fresh name, so two managers never share a memory database.
pub(crate) fn open_spec(t: &SqliteTarget) -> OpenSpec {
    let o = &t.options;
    let memory = t.is_memory();
    let mut params: Vec<String> = Vec::new();
    let uri = if memory {
        if o.cache == Some(CacheMode::Shared) {
            params.push("mode=memory".into());
            params.push("cache=shared".into());
            format!("file:{}", memory_name())
        } else {
            // The memdb VFS with a name starting with '/' is shared by every
            // connection of this process that uses the name, and it has real
            // locking, so busy_timeout works (unlike shared cache).
            params.push("vfs=memdb".into());
            format!("file:/{}", memory_name())
        }
    } else {
        let SqliteLocation::File(p) = &t.location else {
            unreachable!("non-memory targets have a file")
        };
        if let Some(c) = o.cache {
            params.push(format!(
                "cache={}",
                if c == CacheMode::Shared {
                    "shared"
                } else {
                    "private"
                }
            ));
        }
        if let Some(v) = &o.vfs {
            params.push(format!("vfs={v}"));
        }
        if o.immutable {
            params.push("immutable=1".into());
        }
        format!("file:{}", uri_escape(p))
    };
    let uri = if params.is_empty() {
        uri
    } else {
        format!("{uri}?{}", params.join("&"))
    };
    let mut flags = OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    flags |= match o.mode {
        Some(OpenMode::Ro) => OpenFlags::SQLITE_OPEN_READ_ONLY,
        _ if o.immutable => OpenFlags::SQLITE_OPEN_READ_ONLY,
        Some(OpenMode::Rw) => OpenFlags::SQLITE_OPEN_READ_WRITE,
        _ => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    };
    OpenSpec {
        uri,
        flags,
        memory,
        pragmas: o.resolved(memory),
    }
}

/// Applies dbmux's per-connection pragmas.
fn apply_pragmas(conn: &mut rusqlite::Connection, p: &ResolvedPragmas) -> rusqlite::Result<()> {
    conn.busy_timeout(p.busy_timeout)?;
    if let Some(j) = p.journal_mode {
        let got: String =
            conn.query_row(&format!("PRAGMA journal_mode={}", j.as_str()), [], |r| {
                r.get(0)
            })?;
        if !got.eq_ignore_ascii_case(j.as_str()) {
            log::warn!(
                target: "dbmux::sqlite",
                "journal_mode={} was requested but SQLite kept journal_mode={got}",
                j.as_str()
            );
        }
    }
    conn.execute_batch(&format!(
        "PRAGMA synchronous={}; PRAGMA foreign_keys={};",
        p.synchronous.as_str(),
        if p.foreign_keys { "ON" } else { "OFF" }
    ))?;
    conn.set_transaction_behavior(TransactionBehavior::Immediate);
    Ok(())
}

/// Opens connections on wasm32 the way `SqliteConnectionManager` does.
#[cfg(target_arch = "wasm32")]
struct WasmOpener(OpenSpec);

#[cfg(target_arch = "wasm32")]
impl WasmOpener {
    fn connect(&self) -> rusqlite::Result<rusqlite::Connection> {
        let mut c = rusqlite::Connection::open_with_flags(&self.0.uri, self.0.flags)?;
        apply_pragmas(&mut c, &self.0.pragmas)?;
        Ok(c)
    }
}

impl SqliteManager {
    pub fn new(spec: &OpenSpec, display: String, settings: Arc<CheckSettings>) -> SqliteManager {
        #[cfg(not(target_arch = "wasm32"))]
        let inner = {
            let pragmas = spec.pragmas;
            SqliteConnectionManager::file(&spec.uri)
                .with_flags(spec.flags)
                .with_init(move |c| apply_pragmas(c, &pragmas))
        };
        #[cfg(target_arch = "wasm32")]
        let inner = WasmOpener(spec.clone());
        SqliteManager {
            inner,
            settings,
            display,
        }
    }
}

/// Opens the connection that keeps an in-memory database alive for the
/// manager's lifetime. It is not pooled, so no idle or lifetime timer sees it.
pub(crate) fn open_keeper(spec: &OpenSpec) -> Result<rusqlite::Connection> {
    rusqlite::Connection::open_with_flags(&spec.uri, spec.flags).map_err(|e| {
        Error::new(
            ErrorCode::ConnectFailed,
            format!("could not create the in-memory SQLite database: {e}"),
        )
        .with_source(e)
    })
}

impl r2d2::ManageConnection for SqliteManager {
    type Connection = SqliteConn;
    type Error = ConnError;

    fn connect(&self) -> Result<SqliteConn, ConnError> {
        let conn = self.inner.connect().map_err(|e| {
            let hint = match &e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == ffi::ErrorCode::CannotOpen => {
                    " (does the directory exist, is it writable, and for mode=ro/rw does the file exist?)"
                }
                _ => "",
            };
            ConnError::Open(
                Error::new(
                    ErrorCode::ConnectFailed,
                    format!("could not open SQLite database {}: {e}{hint}", self.display),
                )
                .with_source(e),
            )
        })?;
        let deadline = Arc::new(AtomicU64::new(0));
        if self.settings.statement_timeout.is_some() {
            let d = deadline.clone();
            let handler = move || {
                let at = d.load(Relaxed);
                at != 0 && Instant::now().duration_since(epoch()).as_nanos() as u64 >= at
            };
            conn.progress_handler(PROGRESS_STEPS, Some(handler))
                .map_err(|e| ConnError::Open(classify(e)))?;
        }
        let now = Instant::now();
        Ok(SqliteConn {
            conn,
            born: now,
            idle_since: now,
            deadline,
            stats: self.settings.stats.clone(),
            broken: false,
        })
    }

    fn is_valid(&self, c: &mut SqliteConn) -> Result<(), ConnError> {
        self.settings.validate(c)
    }

    fn has_broken(&self, c: &mut SqliteConn) -> bool {
        self.settings.on_return(c)
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

impl From<rusqlite::Error> for Error {
    #[cold]
    fn from(e: rusqlite::Error) -> Error {
        classify(e)
    }
}

/// Maps a rusqlite error to a dbmux error with a stable code and a message
/// that says what to do.
#[cold]
#[inline(never)]
pub(crate) fn classify(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    let (code, msg) = match &e {
        E::SqliteFailure(f, m) => {
            let text = m.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ffi::ErrorCode::ConstraintViolation => (
                    ErrorCode::Constraint,
                    format!("constraint violated: {text}"),
                ),
                ffi::ErrorCode::ReadOnly => (
                    ErrorCode::ReadOnly,
                    format!(
                        "{text}: the database is read-only (opened with mode=ro or \
                         immutable=1, or the file is not writable); open it read-write to change it"
                    ),
                ),
                ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => (
                    ErrorCode::Busy,
                    format!(
                        "{text}: another connection held the lock for longer than busy_timeout; \
                         keep write transactions short or raise busy_timeout"
                    ),
                ),
                ffi::ErrorCode::OperationInterrupted => (
                    ErrorCode::StatementTimeout,
                    "the statement was cancelled because it ran longer than statement_timeout \
                     (DB_STATEMENT_TIMEOUT or DB_QUERY_TIMEOUT)"
                        .to_string(),
                ),
                ffi::ErrorCode::CannotOpen => (ErrorCode::ConnectFailed, text),
                ffi::ErrorCode::SystemIoFailure
                | ffi::ErrorCode::DiskFull
                | ffi::ErrorCode::DatabaseCorrupt
                | ffi::ErrorCode::NotADatabase => (ErrorCode::Io, text),
                ffi::ErrorCode::TypeMismatch => (ErrorCode::TypeMismatch, text),
                _ => (ErrorCode::Sql, text),
            }
        }
        E::InvalidParameterCount(given, expected) => (
            ErrorCode::InvalidParameter,
            format!("the statement takes {expected} parameter(s) but {given} were given"),
        ),
        E::InvalidParameterName(n) => (
            ErrorCode::InvalidParameter,
            format!("unknown parameter name {n}"),
        ),
        E::QueryReturnedNoRows => (ErrorCode::NoRows, "the query returned no rows".to_string()),
        E::MultipleStatement => (
            ErrorCode::Sql,
            "the SQL text holds more than one statement; run scripts with execute_batch".into(),
        ),
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => (ErrorCode::TypeMismatch, e.to_string()),
        E::Utf8Error(..) => (ErrorCode::TypeMismatch, e.to_string()),
        E::NulError(_) => (
            ErrorCode::InvalidParameter,
            "the SQL text contains a NUL byte".into(),
        ),
        _ => (ErrorCode::Sql, e.to_string()),
    };
    Error::new(code, msg).with_source(e)
}

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

#[inline]
pub(crate) fn value_from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[inline]
fn bind(stmt: &mut rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<()> {
    check_count(stmt, params)?;
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p)?;
    }
    Ok(())
}

/// Fails unless the statement takes exactly `params.len()` parameters.
#[inline]
fn check_count(stmt: &rusqlite::CachedStatement<'_>, params: &[Value]) -> Result<()> {
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(param_count_error(expected, params.len()));
    }
    Ok(())
}

#[cold]
fn param_count_error(expected: usize, given: usize) -> Error {
    Error::new(
        ErrorCode::InvalidParameter,
        format!("the statement takes {expected} parameter(s) but {given} were given"),
    )
}

/// Runs a statement and returns the number of rows it changed. A statement
/// that returns rows (e.g. a PRAGMA) is run to completion and reports 0.
pub(crate) fn execute(conn: &rusqlite::Connection, sql: &str, params: &[Value]) -> Result<u64> {
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    if stmt.column_count() > 0 {
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        return Ok(0);
    }
    run_counting(conn, &mut stmt)
}

/// Runs a statement without result columns and returns the rows it
/// changed. SQLite's `changes()` keeps the count of the last INSERT, UPDATE
/// or DELETE across statements that change no rows (DDL, BEGIN, PRAGMA
/// writes), so a statement that left `total_changes()` where it was changed
/// nothing, whatever `changes()` still says.
#[inline]
fn run_counting(
    conn: &rusqlite::Connection,
    stmt: &mut rusqlite::CachedStatement<'_>,
) -> Result<u64> {
    let before = conn.total_changes();
    let n = stmt.raw_execute()? as u64;
    Ok(if conn.total_changes() == before { 0 } else { n })
}

/// Runs a statement and streams its result into `sink`; returns the rows
/// changed (0 for a query).
pub(crate) fn query_into(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
    sink: &mut dyn crate::value::RowSink,
) -> Result<u64> {
    use crate::value::ValueRef as V;
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let columns: Vec<Column> = stmt
        .columns()
        .into_iter()
        .map(|c| Column {
            name: c.name().to_string(),
            decl_type: c.decl_type().map(str::to_string),
        })
        .collect();
    sink.columns(&columns);
    let n = columns.len();
    if n == 0 {
        return run_counting(conn, &mut stmt);
    }
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        for i in 0..n {
            match r.get_ref(i)? {
                ValueRef::Null => sink.value(V::Null),
                ValueRef::Integer(x) => sink.value(V::Integer(x)),
                ValueRef::Real(x) => sink.value(V::Real(x)),
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(s) => sink.value(V::Text(s)),
                    Err(_) => sink.value(V::Text(&String::from_utf8_lossy(t))),
                },
                ValueRef::Blob(b) => sink.value(V::Blob(b)),
            }
        }
        sink.end_row();
        if !sink.wants_more() {
            break;
        }
    }
    Ok(0)
}

#[cold]
fn no_rows() -> Error {
    Error::new(ErrorCode::NoRows, "the query returned no rows")
}

/// Runs a query and returns the first column of the first row (a statement
/// without result columns, such as an INSERT, runs and reports no rows).
#[inline(always)]
pub(crate) fn query_value(
    conn: &rusqlite::Connection,
    sql: &str,
    params: &[Value],
) -> Result<Value> {
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    check_count(&stmt, params)?;
    // Stay in rusqlite's error type on the hot path; convert once at the end.
    let first = (|| -> rusqlite::Result<Option<Value>> {
        for (i, p) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, p)?;
        }
        let mut rows = stmt.raw_query();
        match rows.next()? {
            Some(r) => Ok(Some(value_from_ref(r.get_ref(0)?))),
            None => Ok(None),
        }
    })();
    match first {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(no_rows()),
        Err(e) => Err(classify(e)),
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
