//! `Connection`: a pooled connection (PEP 249), with the implicit
//! transaction that PEP 249 asks for.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use crate::cursor::Cursor;
use crate::errors::{status_error, OrRaise, MISUSE};
use crate::manager::Manager;
use crate::values::Collected;

/// What the first word of a statement says about transactions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    /// A query (SELECT, WITH, VALUES, SHOW, EXPLAIN): begins the implicit
    /// transaction only under an isolation level.
    Query,
    /// Starts no implicit transaction (PRAGMA, BEGIN, SET, ...).
    NoTransaction,
    /// Ends one (COMMIT, END, ROLLBACK).
    Ends,
    Insert,
    Replace,
    /// Anything else changes something: an implicit transaction first.
    Other,
}

/// Queries: they begin the implicit transaction only under an isolation level.
const QUERIES: &[&str] = &["SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN"];

/// Other statements that start no implicit transaction (`ATTACH` and
/// `DETACH`: SQLite refuses both inside a transaction).
const NO_IMPLICIT_TX: &[&str] = &[
    "PRAGMA", "BEGIN", "START", "RELEASE", "SET", "ANALYZE", "VACUUM", "ATTACH", "DETACH",
];

/// The first word of a statement, after whitespace and comments, as a
/// [`Word`] (compared without allocating: this runs on every execute).
pub(crate) fn first_word(sql: &str) -> Word {
    let mut s = sql.trim_start();
    loop {
        if let Some(rest) = s.strip_prefix("--") {
            s = rest.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(rest) = s.strip_prefix("/*") {
            s = rest.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            break;
        }
    }
    let end = s
        .char_indices()
        .find(|(_, c)| !c.is_alphabetic())
        .map_or(s.len(), |(i, _)| i);
    let w = &s[..end];
    let is = |k: &str| w.eq_ignore_ascii_case(k);
    if is("INSERT") {
        Word::Insert
    } else if is("REPLACE") {
        Word::Replace
    } else if is("COMMIT") || is("END") || is("ROLLBACK") {
        Word::Ends
    } else if QUERIES.iter().any(|k| is(k)) {
        Word::Query
    } else if NO_IMPLICIT_TX.iter().any(|k| is(k)) {
        Word::NoTransaction
    } else {
        Word::Other
    }
}

/// Locks `m`, also after a panic poisoned it (its data stays usable:
/// nothing here leaves it half-written). Where the holder may need the
/// GIL to let go, [`lock_detached`] instead.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Locks `m`; when another thread holds it, waits without the GIL (that
/// thread may need the GIL to let go).
pub(crate) fn lock_detached<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(_) => m.lock_py_attached(py).unwrap_or_else(|e| e.into_inner()),
    }
}

/// Why a statement did not run.
pub(crate) enum Failed {
    /// The connection was closed.
    Closed,
    /// The database (or dbmux) refused it.
    Db(dbmux::Error),
}

impl From<dbmux::Error> for Failed {
    fn from(e: dbmux::Error) -> Failed {
        Failed::Db(e)
    }
}

impl Failed {
    /// The PEP 249 exception.
    pub(crate) fn into_py(self, py: Python<'_>) -> PyErr {
        match self {
            Failed::Closed => Connection::closed_error(py),
            Failed::Db(e) => crate::errors::to_py(py, e),
        }
    }
}

/// Begins the implicit transaction before `sql` when it changes something;
/// a COMMIT or ROLLBACK run as SQL ends it. The statement's first word,
/// for the caller.
fn begin_if_needed(st: &mut State, sql: &str) -> Result<Word, Failed> {
    let word = first_word(sql);
    // queries begin one only under an isolation level: its snapshot
    // must cover every query of the transaction
    let skip = match word {
        Word::Ends | Word::NoTransaction => true,
        Word::Query => st.isolation.is_none(),
        _ => false,
    };
    if skip || st.autocommit {
        return Ok(word);
    }
    let level = st.isolation;
    let c = st.conn.as_mut().ok_or(Failed::Closed)?;
    // the connection knows best: a BEGIN or SAVEPOINT run as SQL opened one too
    if c.in_transaction() {
        return Ok(word);
    }
    c.begin()?;
    if let Some(l) = level {
        if let Err(e) = c.execute_batch(&format!("SET TRANSACTION ISOLATION LEVEL {l}")) {
            let _ = c.rollback();
            return Err(e.into());
        }
    }
    Ok(word)
}

pub(crate) struct State {
    pub conn: Option<dbmux::Connection>,
    /// No implicit transactions: every statement commits on its own.
    pub autocommit: bool,
    /// The isolation level of the transactions it begins (`None`: the
    /// database's default).
    pub isolation: Option<&'static str>,
}

/// PostgreSQL's isolation levels, as `SET TRANSACTION` spells them.
const LEVELS: &[&str] = &[
    "READ UNCOMMITTED",
    "READ COMMITTED",
    "REPEATABLE READ",
    "SERIALIZABLE",
];

/// A pooled connection (PEP 249). A transaction starts implicitly before
/// the first statement that changes something (not before SELECTs);
/// `commit()` / `rollback()` end it; `close()` rolls back and returns the
/// connection to the pool. `with` commits on success and rolls back on an
/// exception, then closes. `execute`, the cursor and its fetches run in
/// Rust, with the GIL released while the database works; the PEP 249
/// exception classes are attributes (`Connection.Error`, ...).
#[pyclass(subclass, frozen, module = "dbmux._dbmux")]
pub struct Connection {
    state: Mutex<State>,
    /// Interrupts its running statement without taking `state` (which the
    /// thread running it holds).
    interrupter: Option<dbmux::Interrupter>,
    readonly: bool,
    pub(crate) sqlite: bool,
    /// Values as the database gives them (no date, decimal or bool conversion).
    pub(crate) raw: bool,
    /// The first checkout of its underlying connection.
    first: bool,
    manager: Py<PyAny>,
}

impl Connection {
    /// Checks out a connection of `manager`: `Manager.connect` and
    /// `Connection(manager, ...)`.
    pub(crate) fn open(
        py: Python<'_>,
        manager: &Bound<'_, Manager>,
        readonly: bool,
        after: Option<&Bound<'_, PyAny>>,
        raw: bool,
        paramstyle: &str,
    ) -> PyResult<Connection> {
        let verbatim = match paramstyle {
            "qmark" => false,
            "numeric_dollar" => true,
            other => {
                return Err(status_error(
                    py,
                    crate::errors::INVALID_PARAMETER,
                    &format!(
                        "paramstyle must be \"qmark\" (? or $n, rewritten as the database \
                         needs) or \"numeric_dollar\" ($n sent as written, ? is an operator), \
                         not {other:?}"
                    ),
                ))
            }
        };
        let mgr = manager.get().get(py)?;
        let token = match after {
            None => None,
            Some(a) if a.is_none() => None,
            Some(a) => match a.extract::<String>() {
                Ok(s) => Some(s),
                Err(_) => {
                    let t = a.get_type().name()?.to_string();
                    return Err(pyo3::exceptions::PyTypeError::new_err(format!(
                        "after must be a write token (a str from Connection.write_token), not {t}"
                    )));
                }
            },
        };
        let read = readonly || token.is_some();
        // an idle connection at hand is taken without releasing the GIL
        // (releasing and taking it again costs more than the checkout)
        let at_once = if read { None } else { mgr.try_get() };
        let mut conn = match at_once {
            Some(c) => c,
            None => py
                .detach(|| match &token {
                    Some(t) => t
                        .parse::<dbmux::WriteToken>()
                        .and_then(|t| mgr.get_read_after(&t)),
                    None if read => mgr.get_read(),
                    None => mgr.get(),
                })
                .or_raise(py)?,
        };
        conn.set_verbatim_sql(verbatim);
        Ok(Connection {
            interrupter: conn.interrupter(),
            sqlite: conn.backend() == dbmux::url::Backend::Sqlite,
            raw,
            first: conn.is_first_checkout(),
            state: Mutex::new(State {
                conn: Some(conn),
                autocommit: false,
                isolation: None,
            }),
            readonly: read,
            manager: manager.clone().into_any().unbind(),
        })
    }

    /// The state, waiting (without the GIL) while another thread uses it.
    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, State> {
        lock_detached(py, &self.state)
    }

    pub(crate) fn closed_error(py: Python<'_>) -> PyErr {
        status_error(py, MISUSE, "the connection is closed")
    }

    /// Runs `sql` with `p` into `sink` as `execute` does, beginning the
    /// implicit transaction first when the statement needs one: the rows
    /// affected, and on SQLite the row id an INSERT gave. It needs no GIL
    /// (the sync cursor runs it detached, `dbmux.aio`'s workers without
    /// ever taking it).
    pub(crate) fn run_statement(
        &self,
        sql: &str,
        p: &[dbmux::Value],
        sink: &mut Collected,
    ) -> Result<(u64, Option<i64>), Failed> {
        let mut st = lock(&self.state);
        let word = begin_if_needed(&mut st, sql)?;
        let c = st.conn.as_mut().ok_or(Failed::Closed)?;
        let affected = c.query_into(sql, p, sink)?;
        if sink.fresh {
            sink.columns.clear();
        }
        let last_id = if self.sqlite
            && sink.columns.is_empty()
            && matches!(word, Word::Insert | Word::Replace)
        {
            Some(c.last_insert_id()?)
        } else {
            None
        };
        Ok((affected, last_id))
    }

    /// Runs `sql` once per parameter sequence (prepared once), beginning
    /// the implicit transaction first: the total rows affected and the
    /// last row id. No GIL needed.
    pub(crate) fn run_many(
        &self,
        sql: &str,
        all: &[Vec<dbmux::Value>],
    ) -> Result<(u64, Option<i64>), Failed> {
        let mut st = lock(&self.state);
        let word = begin_if_needed(&mut st, sql)?;
        let c = st.conn.as_mut().ok_or(Failed::Closed)?;
        let mut total = 0u64;
        for p in all {
            total += c.execute(sql, p)?;
        }
        let last_id = if self.sqlite && matches!(word, Word::Insert | Word::Replace) {
            Some(c.last_insert_id()?)
        } else {
            None
        };
        Ok((total, last_id))
    }

    fn end(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        let mut st = self.lock(py);
        let c = st.conn.as_mut().ok_or_else(|| Self::closed_error(py))?;
        if c.in_transaction() {
            py.detach(|| if commit { c.commit() } else { c.rollback() })
                .or_raise(py)?;
        }
        Ok(())
    }
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (manager, readonly=false, after=None, *, raw=false, paramstyle="qmark"))]
    fn new(
        py: Python<'_>,
        manager: &Bound<'_, Manager>,
        readonly: bool,
        after: Option<&Bound<'_, PyAny>>,
        raw: bool,
        paramstyle: &str,
    ) -> PyResult<Connection> {
        Connection::open(py, manager, readonly, after, raw, paramstyle)
    }

    /// Interrupts the statement this connection runs now, from any thread
    /// (SQLite's `sqlite3_interrupt`, a PostgreSQL cancel request); the
    /// statement fails. `dbmux.aio` calls it for a cancelled task.
    fn _interrupt(&self, py: Python<'_>) {
        if let Some(i) = &self.interrupter {
            let i = i.clone();
            py.detach(move || i.interrupt());
        }
    }

    /// True for a connection for reads (`connect(readonly=True)`).
    #[getter]
    fn readonly(&self) -> bool {
        self.readonly
    }

    /// True when values come back as the database gives them (`raw=True`).
    #[getter]
    fn raw(&self) -> bool {
        self.raw
    }

    /// True when this checkout is the first of its underlying connection
    /// (per-connection setup runs once, e.g. SQLAlchemy's `connect` event).
    #[getter]
    fn _first_checkout(&self) -> bool {
        self.first
    }

    /// Closes the underlying connection when this one is closed, instead of
    /// pooling it again (SQLAlchemy's invalidate).
    fn _discard(&self, py: Python<'_>) {
        if let Some(c) = self.lock(py).conn.as_mut() {
            c.discard();
        }
    }

    /// Registers `func` as the SQL function `name` taking `narg` arguments
    /// (-1: any number) on this connection's SQLite database, as the stdlib
    /// `sqlite3` does. It stays on the underlying connection for its life
    /// (register it at its first checkout: SQLAlchemy's `connect` event).
    /// Arguments and the result are None, int, float, str or bytes; an
    /// exception it raises fails the statement with its message
    /// (ProgrammingError, code `sql`).
    #[cfg(feature = "sqlite")]
    #[pyo3(signature = (name, narg, func, *, deterministic=false))]
    fn create_function(
        &self,
        py: Python<'_>,
        name: &str,
        narg: i32,
        func: Py<PyAny>,
        deterministic: bool,
    ) -> PyResult<()> {
        use rusqlite::functions::FunctionFlags;
        let mut st = self.lock(py);
        let c = st.conn.as_mut().ok_or_else(|| Self::closed_error(py))?;
        let Some(lite) = c.as_sqlite() else {
            return Err(crate::errors::not_supported(
                py,
                "create_function is for SQLite databases (PostgreSQL functions are CREATE FUNCTION)",
            ));
        };
        let mut flags = FunctionFlags::SQLITE_UTF8;
        if deterministic {
            flags |= FunctionFlags::SQLITE_DETERMINISTIC;
        }
        lite.create_scalar_function(name, narg, flags, move |ctx| {
            Python::attach(|py| crate::values::call_sql_function(py, &func, ctx))
        })
        .map_err(|e| {
            status_error(
                py,
                crate::errors::INVALID_PARAMETER,
                &format!("create_function({name:?}): {e}"),
            )
        })
    }

    /// False (the default): a transaction begins before the first statement
    /// that changes something, until `commit()` / `rollback()`. True: every
    /// statement commits on its own. Changing it inside a transaction is a
    /// ProgrammingError.
    #[getter]
    fn autocommit(&self, py: Python<'_>) -> bool {
        self.lock(py).autocommit
    }

    #[setter]
    fn set_autocommit(&self, py: Python<'_>, on: bool) -> PyResult<()> {
        let mut st = self.lock(py);
        let in_tx = match st.conn.as_ref() {
            None => return Err(Self::closed_error(py)),
            Some(c) => c.in_transaction(),
        };
        if in_tx && on != st.autocommit {
            return Err(crate::errors::programming_error(
                py,
                MISUSE,
                "cannot change autocommit inside a transaction; commit() or rollback() first",
            ));
        }
        st.autocommit = on;
        Ok(())
    }

    /// The isolation level of the transactions this connection begins:
    /// `None` (the database's default), or on PostgreSQL "READ
    /// UNCOMMITTED", "READ COMMITTED", "REPEATABLE READ" or "SERIALIZABLE"
    /// (SQLite's transactions are always "SERIALIZABLE"). It applies from
    /// the next transaction on, for this checkout only.
    #[getter]
    fn isolation_level(&self, py: Python<'_>) -> Option<&'static str> {
        let st = self.lock(py);
        match st.isolation {
            None if self.sqlite => Some("SERIALIZABLE"),
            l => l,
        }
    }

    #[setter]
    fn set_isolation_level(&self, py: Python<'_>, level: Option<&str>) -> PyResult<()> {
        let wanted = level.map(|l| l.trim().to_ascii_uppercase().replace('_', " "));
        let level = match wanted.as_deref() {
            None => None,
            Some("SERIALIZABLE") if self.sqlite => None,
            Some(l) if !self.sqlite => match LEVELS.iter().find(|k| **k == l) {
                Some(k) => Some(*k),
                None => {
                    return Err(status_error(
                        py,
                        crate::errors::INVALID_PARAMETER,
                        &format!(
                            "unknown isolation level {l:?}; use None, \"READ COMMITTED\", \
                             \"REPEATABLE READ\" or \"SERIALIZABLE\" (or autocommit = True)"
                        ),
                    ))
                }
            },
            Some(l) => {
                return Err(crate::errors::not_supported(
                    py,
                    &format!(
                        "SQLite transactions are always SERIALIZABLE; {l:?} is not available \
                         (use autocommit = True for no transaction)"
                    ),
                ))
            }
        };
        let mut st = self.lock(py);
        if st.conn.is_none() {
            return Err(Self::closed_error(py));
        }
        st.isolation = level;
        Ok(())
    }

    /// The manager it came from.
    #[getter]
    fn _manager(&self, py: Python<'_>) -> Py<PyAny> {
        self.manager.clone_ref(py)
    }

    /// True after `close()`.
    #[getter]
    pub(crate) fn closed(&self, py: Python<'_>) -> bool {
        self.lock(py).conn.is_none()
    }

    /// After a committed write on this connection (since it was checked
    /// out), a short string that `connect(readonly=True, after=token)`
    /// takes to read on a replica that has the write; else None.
    #[getter]
    fn write_token(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let mut st = self.lock(py);
        let c = st.conn.as_mut().ok_or_else(|| Self::closed_error(py))?;
        let t = py.detach(|| c.write_token()).or_raise(py)?;
        Ok(t.map(|t| t.to_string()))
    }

    /// A new cursor on this connection.
    pub(crate) fn cursor(slf: &Bound<'_, Self>) -> PyResult<Cursor> {
        let py = slf.py();
        if slf.get().lock(py).conn.is_none() {
            return Err(Self::closed_error(py));
        }
        Ok(Cursor::new(slf.clone().unbind()))
    }

    /// Shortcut: a new cursor, executed.
    #[pyo3(signature = (sql, params=None))]
    fn execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyAny>,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Cursor>> {
        let cur = Bound::new(slf.py(), Self::cursor(slf)?)?;
        Cursor::execute(&cur, sql, params)?;
        Ok(cur)
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, true)
    }

    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.end(py, false)
    }

    /// Rolls back anything uncommitted and returns the connection to the
    /// pool; later calls do nothing.
    fn close(&self, py: Python<'_>) {
        let c = {
            let mut st = self.lock(py);
            st.conn.take()
        };
        match c {
            // a return that waits on nothing: keep the GIL (releasing and
            // taking it again costs more than the return)
            Some(c) if c.returns_without_waiting() => drop(c),
            Some(c) => py.detach(|| drop(c)),
            None => {}
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Commits on success, rolls back on an exception, then closes.
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<&Bound<'_, PyAny>>,
        _exc: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let open = self.lock(py).conn.is_some();
        let r = if open {
            self.end(py, exc_type.is_none_or(|t| t.is_none()))
        } else {
            Ok(())
        };
        self.close(py);
        r.map(|()| false)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        let c = self.state.get_mut().map(|s| s.conn.take()).unwrap_or(None);
        if let Some(c) = c {
            // returning it may roll back: never hold the GIL meanwhile
            Python::attach(|py| py.detach(|| drop(c)));
        }
    }
}
