//! Opening SQLite connections: the URI, flags and pragmas for a target,
//! the in-memory keeper, and the pool's opener.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{ffi, OpenFlags, TransactionBehavior};

use super::errors::classify;
use super::{epoch, CacheMode, OpenMode, ResolvedPragmas, SqliteConn, PROGRESS_STEPS};
use crate::error::{Error, ErrorCode, Result};
use crate::platform::Instant;
use crate::pool::core::Open;
use crate::pool::CheckSettings;
use crate::url::{SqliteLocation, SqliteTarget};

/// Opens the pool's SQLite connections: the URI and flags, then dbmux's
/// pragmas on each new connection.
pub(crate) struct SqliteManager {
    spec: OpenSpec,
    settings: Arc<CheckSettings>,
    display: String,
    lane: Option<LaneSettings>,
}

/// The writer lane of a pool whose connections may write.
#[derive(Clone)]
pub(crate) struct LaneSettings {
    pub lane: Arc<super::Lane>,
    /// How long a writer waits for it (`pool_timeout`).
    pub timeout: std::time::Duration,
    /// Note where a writer took it (leak detection on).
    pub trace: bool,
    /// The pool's connections write (else they are readers, which only
    /// pass the reader gate).
    pub writes: bool,
    /// Report commits to the file's WAL controller (it runs).
    pub wal_hook: bool,
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
    /// The database file (none for in-memory databases).
    pub path: Option<std::path::PathBuf>,
    /// `PRAGMA query_only` on top of a read-only open (readers).
    pub query_only: bool,
}

impl OpenSpec {
    /// What names the database in this process, for its writer lane: the
    /// file's absolute path, or the in-memory database's URI.
    pub(crate) fn lane_key(&self) -> String {
        match &self.path {
            Some(p) => p.display().to_string(),
            None => self.uri.clone(),
        }
    }
}

impl OpenSpec {
    /// The same database, opened read-only (`SQLITE_OPEN_READONLY`): the
    /// engine refuses writes. The journal mode is left as the writers set it.
    pub(crate) fn read_only(&self) -> OpenSpec {
        let mut spec = self.clone();
        spec.flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        spec.pragmas.journal_mode = None;
        spec.query_only = true;
        spec
    }
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
        path: match &t.location {
            SqliteLocation::File(p) if !memory => Some(p.clone()),
            _ => None,
        },
        query_only: false,
    }
}

/// Applies dbmux's per-connection pragmas (and `query_only` for readers).
fn apply_pragmas(
    conn: &mut rusqlite::Connection,
    p: &ResolvedPragmas,
    query_only: bool,
) -> rusqlite::Result<()> {
    if query_only {
        conn.execute_batch("PRAGMA query_only=ON")?;
    }
    conn.busy_timeout(p.busy_timeout)?;
    if let Some(j) = p.journal_mode {
        // a WAL (or journal) file left larger than this after a checkpoint
        // is truncated back to it
        conn.execute_batch("PRAGMA journal_size_limit=67108864")?;
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

impl SqliteManager {
    /// The opener of one pool; `lane`: its connections take the database's
    /// writer lane to write.
    pub fn new(
        spec: &OpenSpec,
        display: String,
        settings: Arc<CheckSettings>,
        lane: Option<LaneSettings>,
    ) -> SqliteManager {
        SqliteManager {
            spec: spec.clone(),
            settings,
            display,
            lane,
        }
    }

    /// The error of a failed open: what failed, and what to check.
    fn open_error(&self, e: rusqlite::Error) -> Error {
        let cannot_open = matches!(&e, rusqlite::Error::SqliteFailure(f, _) if f.code == ffi::ErrorCode::CannotOpen);
        if !cannot_open {
            // BUSY while switching to WAL stays transient; NOTADB and other I/O
            // errors are not (Error::is_transient)
            let inner = classify(e);
            // a generic SQLite error while opening (no such vfs, ...) is a
            // connect failure, not a statement's
            let code = match inner.code() {
                ErrorCode::Sql => ErrorCode::ConnectFailed,
                c => c,
            };
            return Error::new(
                code,
                format!("could not open SQLite database {}: {inner}", self.display),
            )
            .with_source(inner);
        }
        let must_exist =
            self.spec.flags & OpenFlags::SQLITE_OPEN_CREATE != OpenFlags::SQLITE_OPEN_CREATE;
        let missing = self.spec.path.as_deref().is_some_and(|p| !p.exists());
        if must_exist && missing {
            return Error::new(
                ErrorCode::DatabaseNotFound,
                format!(
                    "could not open SQLite database {}: the file does not exist, and mode=ro or \
                     mode=rw does not create it (use mode=rwc, the default, to create it): {e}",
                    self.display
                ),
            )
            .with_source(e);
        }
        Error::new(
            ErrorCode::ConnectFailed,
            format!(
                "could not open SQLite database {}: {e} (does the directory exist and is it \
                 writable?)",
                self.display
            ),
        )
        .with_source(e)
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

impl Open for SqliteManager {
    type Conn = SqliteConn;

    fn open(&self) -> Result<SqliteConn> {
        let conn = rusqlite::Connection::open_with_flags(&self.spec.uri, self.spec.flags)
            .and_then(|mut c| {
                apply_pragmas(&mut c, &self.spec.pragmas, self.spec.query_only).map(|()| c)
            })
            .map_err(|e| self.open_error(e))?;
        let deadline = Arc::new(AtomicU64::new(0));
        if self.settings.statement_timeout.is_some() {
            let d = deadline.clone();
            let handler = move || {
                let at = d.load(Relaxed);
                at != 0 && Instant::now().duration_since(epoch()).as_nanos() as u64 >= at
            };
            conn.progress_handler(PROGRESS_STEPS, Some(handler))
                .map_err(classify)?;
        }
        if self.lane.as_ref().is_some_and(|l| l.wal_hook && l.writes) {
            super::wal::install_hook(&conn);
        }
        if self.lane.as_ref().is_some_and(|l| l.writes) {
            // other processes' locks: looked for every 200 µs (see lane.rs)
            conn.busy_handler(Some(super::lane::busy_handler))
                .map_err(classify)?;
        }
        let now = Instant::now();
        Ok(SqliteConn {
            conn: super::handle::Handle::new(conn),
            born: now,
            used: false,
            idle_since: now,
            deadline,
            stats: self.settings.stats.clone(),
            broken: false,
            lane: self.lane.as_ref().map(|l| l.lane.clone()),
            writes: self.lane.as_ref().is_some_and(|l| l.writes),
            busy_timeout: self.spec.pragmas.busy_timeout,
            held: None,
            pinned: false,
            interrupted: Default::default(),
            lane_timeout: self.lane.as_ref().map_or(Duration::ZERO, |l| l.timeout),
            lane_trace: self.lane.as_ref().is_some_and(|l| l.trace),
        })
    }
}
