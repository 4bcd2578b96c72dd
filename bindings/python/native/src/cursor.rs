//! `Cursor`: PEP 249's cursor. `execute` runs the statement with the GIL
//! released and keeps the whole result as Python tuples; the fetches are
//! then slices of it.

use std::sync::{Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};

use crate::connection::{lock_detached, Connection, Failed};
use crate::errors::{programming_error, status_error, INVALID_PARAMETER, MISUSE};
use crate::values::{params, rows, Collected};

#[derive(Default)]
struct State {
    /// The rows of the last query; `None` when the statement returned none.
    rows: Option<Py<PyList>>,
    /// How many rows `rows` has.
    len: usize,
    /// Its first row (for the description's type codes).
    first: Option<Py<PyAny>>,
    pos: usize,
    executed: bool,
    closed: bool,
    /// A `dbmux.aio` worker runs a statement of this cursor.
    running: bool,
    rowcount: i64,
    lastrowid: Option<i64>,
    arraysize: usize,
    description: Option<Py<PyAny>>,
    /// The buffer results are read into, kept between statements.
    buf: Collected,
}

/// A PEP 249 cursor.
#[pyclass(subclass, frozen, module = "dbmux._dbmux")]
pub struct Cursor {
    conn: Py<Connection>,
    state: Mutex<State>,
}

fn misuse(py: Python<'_>, msg: &str) -> PyErr {
    programming_error(py, MISUSE, msg)
}

fn still_running(py: Python<'_>) -> PyErr {
    misuse(
        py,
        "a statement is still running on this cursor; await its execute() before using the cursor again",
    )
}

impl State {
    /// A statement starts: the last one's result is gone.
    fn start(&mut self) {
        self.executed = true;
        self.rows = None;
        self.len = 0;
        self.first = None;
        self.pos = 0;
        self.description = None;
        self.rowcount = -1;
        self.lastrowid = None;
    }
}

impl Cursor {
    pub(crate) fn new(conn: Py<Connection>) -> Cursor {
        Cursor {
            conn,
            state: Mutex::new(State {
                rowcount: -1,
                arraysize: 1,
                buf: Collected::reuse(),
                ..State::default()
            }),
        }
    }

    fn lock(&self, py: Python<'_>) -> MutexGuard<'_, State> {
        lock_detached(py, &self.state)
    }

    /// The SQL of `execute` / `executemany`, on an open cursor.
    fn statement<'a, 'py>(
        &self,
        py: Python<'py>,
        st: &State,
        sql: &'a Bound<'py, PyAny>,
    ) -> PyResult<&'a Bound<'py, PyString>> {
        self.check(py, st)?;
        if st.running {
            return Err(still_running(py));
        }
        sql.cast::<PyString>()
            .map_err(|_| status_error(py, INVALID_PARAMETER, "the SQL must be a str"))
    }

    fn check(&self, py: Python<'_>, st: &State) -> PyResult<()> {
        if st.closed {
            return Err(misuse(py, "cannot operate on a closed cursor"));
        }
        Ok(())
    }

    /// The rows to fetch from, after the PEP 249 checks.
    fn available<'a>(&self, py: Python<'_>, st: &'a mut State) -> PyResult<&'a mut State> {
        self.check(py, st)?;
        if self.conn.get().closed(py) {
            return Err(Connection::closed_error(py));
        }
        if st.running {
            return Err(still_running(py));
        }
        if !st.executed {
            return Err(misuse(
                py,
                "no statement was executed on this cursor; call execute() first",
            ));
        }
        if st.rows.is_none() {
            return Err(misuse(
                py,
                "the last statement returned no rows to fetch (it was not a query)",
            ));
        }
        Ok(st)
    }

    /// `execute` on an already locked cursor.
    fn run(&self, py: Python<'_>, st: &mut State, sql: &str, p: Vec<dbmux::Value>) -> PyResult<()> {
        let conn = self.conn.get();
        let mut sink = self.begin(st);
        let ran = py.detach(|| conn.run_statement(sql, &p, &mut sink));
        self.finish(py, st, sink, ran)
    }

    /// A statement starts: the buffer its rows go to.
    fn begin(&self, st: &mut State) -> Collected {
        st.start();
        let mut sink = std::mem::take(&mut st.buf);
        sink.clear();
        sink
    }

    /// A statement ended: its rows (as Python tuples), row count and row id
    /// on the cursor, or its error.
    fn finish(
        &self,
        py: Python<'_>,
        st: &mut State,
        sink: Collected,
        ran: Result<(u64, Option<i64>), Failed>,
    ) -> PyResult<()> {
        let (affected, last_id) = match ran {
            Ok(v) => v,
            Err(e) => {
                st.buf = sink;
                return Err(e.into_py(py));
            }
        };
        if !sink.columns.is_empty() {
            let list = rows(py, &sink, !self.conn.get().raw);
            st.buf = sink;
            let list = list?;
            st.len = list.len();
            st.first = if st.len > 0 {
                Some(list.get_item(0)?.unbind())
            } else {
                None
            };
            st.rows = Some(list.unbind());
        } else {
            st.buf = sink;
            st.rowcount = affected.min(i64::MAX as u64) as i64;
        }
        st.lastrowid = last_id;
        Ok(())
    }

    /// `execute` handed to a `dbmux.aio` worker, on the event loop: the
    /// checks and the parameters now, then what the worker runs without
    /// the GIL ([`Connection::run_statement`]); until [`Cursor::ended`],
    /// the cursor refuses fetches and other statements.
    pub(crate) fn started(
        &self,
        py: Python<'_>,
        sql: &Bound<'_, PyAny>,
        params: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<(String, Vec<dbmux::Value>, Collected)> {
        let mut st = self.lock(py);
        let sql = self.statement(py, &st, sql)?.to_str()?.to_owned();
        let p = self::params(py, params)?;
        let sink = self.begin(&mut st);
        st.running = true;
        Ok((sql, p, sink))
    }

    /// The end of a statement [`Cursor::started`]: as the sync `execute` ends.
    pub(crate) fn ended(
        &self,
        py: Python<'_>,
        sink: Collected,
        ran: Result<(u64, Option<i64>), Failed>,
    ) -> PyResult<()> {
        let mut st = self.lock(py);
        st.running = false;
        self.finish(py, &mut st, sink, ran)
    }

    /// The connection this cursor runs on.
    pub(crate) fn conn(&self) -> &Connection {
        self.conn.get()
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut st.buf).recycle();
    }
}

/// The type code of a column without a declared type: from its first value.
fn expr_type(first: Option<&Bound<'_, PyAny>>) -> Option<&'static str> {
    let v = first?;
    if v.is_none() {
        None
    } else if v.is_instance_of::<pyo3::types::PyInt>() || v.is_instance_of::<pyo3::types::PyFloat>()
    {
        Some("NUMERIC")
    } else if v.is_instance_of::<pyo3::types::PyBytes>() {
        Some("BLOB")
    } else {
        Some("TEXT")
    }
}

#[pymethods]
impl Cursor {
    #[new]
    fn py_new(conn: &Bound<'_, Connection>) -> PyResult<Cursor> {
        Connection::cursor(conn)
    }

    /// The connection this cursor runs on.
    #[getter]
    fn connection(&self, py: Python<'_>) -> Py<Connection> {
        self.conn.clone_ref(py)
    }

    #[getter]
    fn arraysize(&self, py: Python<'_>) -> usize {
        self.lock(py).arraysize
    }

    #[setter]
    fn set_arraysize(&self, py: Python<'_>, n: usize) {
        self.lock(py).arraysize = n;
    }

    #[getter]
    fn rowcount(&self, py: Python<'_>) -> i64 {
        self.lock(py).rowcount
    }

    #[getter]
    fn lastrowid(&self, py: Python<'_>) -> Option<i64> {
        self.lock(py).lastrowid
    }

    /// PEP 249's description: a 7-tuple per column (name, type code, and
    /// five Nones). The type code is PostgreSQL's type OID (an int, as
    /// psycopg2 gives), or on SQLite the declared type, else one read from
    /// the first value. `None` after a statement that returned no rows.
    #[getter]
    fn description(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut st = self.lock(py);
        if st.rows.is_none() {
            return Ok(None);
        }
        if let Some(d) = &st.description {
            return Ok(Some(d.clone_ref(py)));
        }
        let first = st.first.as_ref().map(|t| t.bind(py).clone());
        let mut items = Vec::with_capacity(st.buf.columns.len());
        for (i, c) in st.buf.columns.iter().enumerate() {
            let code: Py<PyAny> = match (c.type_oid, &c.decl_type) {
                (Some(oid), _) => oid
                    .into_pyobject(py)
                    .map_or_else(|e| match e {}, |o| o.into_any().unbind()),
                (None, Some(d)) => PyString::new(py, d).into_any().unbind(),
                (None, None) => {
                    let v = first.as_ref().map(|t| t.get_item(i)).transpose()?;
                    match expr_type(v.as_ref()) {
                        Some(t) => PyString::new(py, t).into_any().unbind(),
                        None => py.None(),
                    }
                }
            };
            let none = || py.None();
            items.push(PyTuple::new(
                py,
                [
                    PyString::new(py, &c.name).into_any().unbind(),
                    code,
                    none(),
                    none(),
                    none(),
                    none(),
                    none(),
                ],
            )?);
        }
        let d = PyList::new(py, items)?.into_any().unbind();
        st.description = Some(d.clone_ref(py));
        Ok(Some(d))
    }

    #[pyo3(signature = (sql, params=None))]
    pub(crate) fn execute<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyAny>,
        params: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        let mut st = this.lock(py);
        let sql = this.statement(py, &st, sql)?;
        let p = self::params(py, params)?;
        this.run(py, &mut st, sql.to_str()?, p)?;
        Ok(slf.clone())
    }

    /// Runs `sql` once per parameter sequence, in Rust: the parameters are
    /// converted first, then every statement runs with the GIL released
    /// (prepared once). `rowcount` is the total. A statement's rows, if it
    /// returns any, are not kept.
    fn executemany<'py>(
        slf: &Bound<'py, Self>,
        sql: &Bound<'py, PyAny>,
        seq_of_params: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, Self>> {
        let py = slf.py();
        let this = slf.get();
        let mut st = this.lock(py);
        let sql = this.statement(py, &st, sql)?;
        let sql = sql.to_str()?;
        let mut all = Vec::new();
        for p in seq_of_params.try_iter()? {
            all.push(self::params(py, Some(&p?))?);
        }
        let conn = this.conn.get();
        st.start();
        if all.is_empty() {
            if conn.closed(py) {
                return Err(Connection::closed_error(py));
            }
            st.rowcount = 0;
            return Ok(slf.clone());
        }
        let (total, last_id) = py
            .detach(|| conn.run_many(sql, &all))
            .map_err(|e| e.into_py(py))?;
        st.rowcount = total.min(i64::MAX as u64) as i64;
        st.lastrowid = last_id;
        Ok(slf.clone())
    }

    fn fetchone(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let mut g = self.lock(py);
        let st = self.available(py, &mut g)?;
        if st.pos >= st.len {
            return Ok(None);
        }
        let row = match &st.rows {
            Some(r) => r.bind(py).get_item(st.pos)?.unbind(),
            None => return Ok(None),
        };
        st.pos += 1;
        Ok(Some(row))
    }

    #[pyo3(signature = (size=None))]
    fn fetchmany<'py>(&self, py: Python<'py>, size: Option<usize>) -> PyResult<Bound<'py, PyList>> {
        let mut g = self.lock(py);
        let st = self.available(py, &mut g)?;
        let size = size.unwrap_or(st.arraysize);
        let end = (st.pos + size).min(st.len);
        let out = match &st.rows {
            Some(r) => r.bind(py).get_slice(st.pos, end),
            None => PyList::empty(py),
        };
        st.pos = end;
        Ok(out)
    }

    fn fetchall<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut g = self.lock(py);
        let st = self.available(py, &mut g)?;
        let out = match &st.rows {
            // all of it: the list itself, and the cursor keeps an empty one
            Some(r) if st.pos == 0 => {
                let all = r.bind(py).clone();
                st.rows = Some(PyList::empty(py).unbind());
                all
            }
            Some(r) => r.bind(py).get_slice(st.pos, st.len),
            None => PyList::empty(py),
        };
        st.pos = st.len;
        Ok(out)
    }

    fn close(&self, py: Python<'_>) {
        let mut st = self.lock(py);
        st.rows = None;
        st.closed = true;
    }

    /// Accepted and ignored (PEP 249).
    fn setinputsizes(&self, _sizes: &Bound<'_, PyAny>) {}

    /// Accepted and ignored (PEP 249).
    #[pyo3(signature = (_size, _column=None))]
    fn setoutputsize(&self, _size: &Bound<'_, PyAny>, _column: Option<&Bound<'_, PyAny>>) {}

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.fetchone(py)
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close(py);
        false
    }
}
