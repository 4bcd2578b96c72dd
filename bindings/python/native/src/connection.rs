//! `Connection`: a pooled connection (PEP 249), with the implicit
//! transaction that PEP 249 asks for.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::sync::MutexExt;

use crate::cursor::Cursor;
use crate::errors::{status_error, OrRaise, MISUSE};
use crate::manager::Manager;

/// What the first word of a statement says about transactions.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    /// Starts no implicit transaction (SELECT, WITH, PRAGMA, BEGIN, SET, ...).
    NoTransaction,
    /// Ends one (COMMIT, END, ROLLBACK).
    Ends,
    Insert,
    Replace,
    /// Anything else changes something: an implicit transaction first.
    Other,
}

/// Statements that start no implicit transaction.
const NO_IMPLICIT_TX: &[&str] = &[
    "SELECT",
    "WITH",
    "VALUES",
    "SHOW",
    "EXPLAIN",
    "PRAGMA",
    "BEGIN",
    "START",
    "SAVEPOINT",
    "RELEASE",
    "SET",
    "ANALYZE",
    "VACUUM",
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
    } else if NO_IMPLICIT_TX.iter().any(|k| is(k)) {
        Word::NoTransaction
    } else {
        Word::Other
    }
}

/// Locks `m`; when another thread holds it, waits without the GIL (that
/// thread may need the GIL to let go).
pub(crate) fn lock_detached<'a, T>(py: Python<'_>, m: &'a Mutex<T>) -> MutexGuard<'a, T> {
    match m.try_lock() {
        Ok(g) => g,
        Err(_) => m.lock_py_attached(py).unwrap_or_else(|e| e.into_inner()),
    }
}

pub(crate) struct State {
    pub conn: Option<dbmux::Connection>,
    pub in_tx: bool,
}

/// A pooled connection (PEP 249). A transaction starts implicitly before
/// the first statement that changes something (not before SELECTs);
/// `commit()` / `rollback()` end it; `close()` rolls back and returns the
/// connection to the pool. `with` commits on success and rolls back on an
/// exception, then closes.
#[pyclass(subclass, frozen, module = "dbmux._dbmux")]
pub struct Connection {
    state: Mutex<State>,
    /// Interrupts its running statement without taking `state` (which the
    /// thread running it holds).
    interrupter: Option<dbmux::Interrupter>,
    readonly: bool,
    pub(crate) sqlite: bool,
    manager: Py<PyAny>,
}

impl Connection {
    /// The state, waiting (without the GIL) while another thread uses it.
    pub(crate) fn lock(&self, py: Python<'_>) -> MutexGuard<'_, State> {
        lock_detached(py, &self.state)
    }

    pub(crate) fn closed_error(py: Python<'_>) -> PyErr {
        status_error(py, MISUSE, "the connection is closed")
    }

    /// Begins the implicit transaction before `sql` when it changes
    /// something; a COMMIT or ROLLBACK run as SQL ends it. The statement's
    /// first word, for the caller.
    pub(crate) fn begin_if_needed(py: Python<'_>, st: &mut State, sql: &str) -> PyResult<Word> {
        let word = first_word(sql);
        match word {
            Word::Ends => st.in_tx = false,
            Word::NoTransaction => {}
            _ if st.in_tx => {}
            _ => {
                let c = st.conn.as_mut().ok_or_else(|| Self::closed_error(py))?;
                py.detach(|| c.begin()).or_raise(py)?;
                st.in_tx = true;
            }
        }
        Ok(word)
    }

    fn end(&self, py: Python<'_>, commit: bool) -> PyResult<()> {
        let mut st = self.lock(py);
        let in_tx = st.in_tx;
        let c = st.conn.as_mut().ok_or_else(|| Self::closed_error(py))?;
        if in_tx {
            let r = py.detach(|| if commit { c.commit() } else { c.rollback() });
            st.in_tx = false;
            r.or_raise(py)?;
        }
        Ok(())
    }
}

#[pymethods]
impl Connection {
    #[new]
    #[pyo3(signature = (manager, readonly=false, after=None))]
    fn new(
        py: Python<'_>,
        manager: &Bound<'_, Manager>,
        readonly: bool,
        after: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Connection> {
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
        let mut conn = py
            .detach(|| match &token {
                Some(t) => t
                    .parse::<dbmux::WriteToken>()
                    .and_then(|t| mgr.get_read_after(&t)),
                None if read => mgr.get_read(),
                None => mgr.get(),
            })
            .or_raise(py)?;
        Ok(Connection {
            interrupter: conn.interrupter(),
            sqlite: conn.backend() == dbmux::url::Backend::Sqlite,
            state: Mutex::new(State {
                conn: Some(conn),
                in_tx: false,
            }),
            readonly: read,
            manager: manager.clone().into_any().unbind(),
        })
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
            st.in_tx = false;
            st.conn.take()
        };
        if let Some(c) = c {
            py.detach(|| drop(c));
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
