//! Python values to dbmux values (parameters), and results to Python rows.

use std::collections::HashMap;
use std::sync::Mutex;

use dbmux::{Column, RowSink, Value, ValueRef};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::errors::{status_error, INVALID_PARAMETER, TYPE_MISMATCH};

/// Python types the parameters may hold beyond the built-in scalars.
struct Kinds {
    datetime: Py<PyAny>,
    date: Py<PyAny>,
    time: Py<PyAny>,
    decimal: Py<PyAny>,
    memoryview: Py<PyAny>,
}

static KINDS: PyOnceLock<Kinds> = PyOnceLock::new();

fn kinds(py: Python<'_>) -> PyResult<&Kinds> {
    KINDS.get_or_try_init(py, || -> PyResult<Kinds> {
        let dt = py.import("datetime")?;
        Ok(Kinds {
            datetime: dt.getattr("datetime")?.unbind(),
            date: dt.getattr("date")?.unbind(),
            time: dt.getattr("time")?.unbind(),
            decimal: py.import("decimal")?.getattr("Decimal")?.unbind(),
            memoryview: py.import("builtins")?.getattr("memoryview")?.unbind(),
        })
    })
}

fn unsupported(py: Python<'_>, i: usize, v: &Bound<'_, PyAny>) -> PyErr {
    let name = v
        .get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".into());
    status_error(
        py,
        INVALID_PARAMETER,
        &format!(
            "parameter {}: values of type {name} are not supported; use None, int, float, str, \
             bytes, bool, date, time, datetime or Decimal",
            i + 1
        ),
    )
}

/// One parameter.
fn value(py: Python<'_>, i: usize, v: &Bound<'_, PyAny>) -> PyResult<Value> {
    if v.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Value::Integer(i64::from(b.is_true())));
    }
    if v.is_instance_of::<PyInt>() {
        return match v.extract::<i64>() {
            Ok(n) => Ok(Value::Integer(n)),
            Err(_) => Err(status_error(
                py,
                TYPE_MISMATCH,
                &format!("parameter {}: integer {v} does not fit in 64 bits", i + 1),
            )),
        };
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Value::Real(f.value()));
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Value::Text(s.to_str()?.to_owned()));
    }
    if let Ok(b) = v.cast::<PyBytes>() {
        return Ok(Value::Blob(b.as_bytes().to_vec()));
    }
    if let Ok(b) = v.cast::<PyByteArray>() {
        return Ok(Value::Blob(b.to_vec()));
    }
    let k = kinds(py)?;
    if v.is_instance(k.memoryview.bind(py))? {
        return Ok(Value::Blob(v.call_method0("tobytes")?.extract()?));
    }
    if v.is_instance(k.datetime.bind(py))? {
        return Ok(Value::Text(v.call_method1("isoformat", (" ",))?.extract()?));
    }
    if v.is_instance(k.date.bind(py))? || v.is_instance(k.time.bind(py))? {
        return Ok(Value::Text(v.call_method0("isoformat")?.extract()?));
    }
    if v.is_instance(k.decimal.bind(py))? {
        return Ok(Value::Text(v.str()?.to_str()?.to_owned()));
    }
    Err(unsupported(py, i, v))
}

/// The parameters of a statement: a sequence (tuple or list) in `?` order.
pub(crate) fn params(py: Python<'_>, p: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Value>> {
    let Some(p) = p else {
        return Ok(Vec::new());
    };
    if p.is_none() {
        return Ok(Vec::new());
    }
    if let Ok(t) = p.cast::<PyTuple>() {
        return t
            .iter()
            .enumerate()
            .map(|(i, v)| value(py, i, &v))
            .collect();
    }
    if let Ok(l) = p.cast::<PyList>() {
        return l
            .iter()
            .enumerate()
            .map(|(i, v)| value(py, i, &v))
            .collect();
    }
    let is_seq = !p.is_instance_of::<PyString>()
        && !p.is_instance_of::<PyBytes>()
        && p.hasattr("__len__")?
        && p.hasattr("__getitem__")?;
    if !is_seq {
        return Err(status_error(
            py,
            INVALID_PARAMETER,
            "parameters must be a sequence (tuple or list) of values, in ? order",
        ));
    }
    let n = p.len()?;
    (0..n).map(|i| value(py, i, &p.get_item(i)?)).collect()
}

/// One cell of a result, its text or bytes in [`Collected::bytes`].
#[derive(Clone, Copy)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(usize, usize),
    Blob(usize, usize),
}

/// A result as it is read, without the GIL: the columns, then the cells
/// row after row, their text and bytes in one buffer (one allocation for
/// the whole result instead of one per value).
#[derive(Default)]
pub(crate) struct Collected {
    pub columns: Vec<Column>,
    pub cells: Vec<Cell>,
    pub bytes: Vec<u8>,
    /// No `columns` call yet for this statement (`columns` is then stale).
    pub fresh: bool,
}

impl Collected {
    /// Empties it for the next statement, keeping its allocations (and
    /// its columns, which the next result often has again).
    pub(crate) fn clear(&mut self) {
        self.cells.clear();
        self.bytes.clear();
        self.fresh = true;
    }

    /// A spare buffer, or a new one.
    pub(crate) fn reuse() -> Collected {
        match SPARE.try_lock() {
            Ok(mut s) => s.pop().unwrap_or_default(),
            Err(_) => Collected::default(),
        }
    }

    /// Keeps this buffer for [`Collected::reuse`] when it is small.
    pub(crate) fn recycle(mut self) {
        let size = self.bytes.capacity() + self.cells.capacity() * std::mem::size_of::<Cell>();
        if size > SPARE_BYTES {
            return;
        }
        self.clear();
        if let Ok(mut s) = SPARE.try_lock() {
            if s.len() < SPARE_BUFFERS {
                s.push(self);
            }
        }
    }
}

/// Buffers of closed cursors, for the next ones: an application that
/// checks a connection out per request makes a cursor per request, and
/// would otherwise allocate its buffers (and copy the columns) each time.
static SPARE: Mutex<Vec<Collected>> = Mutex::new(Vec::new());

/// Spare buffers kept, at most...
const SPARE_BUFFERS: usize = 16;
/// ...and only small ones (a big result's buffer is freed).
const SPARE_BYTES: usize = 64 << 10;

impl RowSink for Collected {
    fn columns(&mut self, columns: &[Column]) {
        if self.columns != columns {
            self.columns = columns.to_vec();
        }
        self.fresh = false;
    }
    fn value(&mut self, v: ValueRef<'_>) {
        let mut keep = |b: &[u8]| {
            let at = self.bytes.len();
            self.bytes.extend_from_slice(b);
            (at, b.len())
        };
        let cell = match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Int(i),
            ValueRef::Real(r) => Cell::Real(r),
            ValueRef::Text(t) => {
                let (at, n) = keep(t.as_bytes());
                Cell::Text(at, n)
            }
            ValueRef::Blob(b) => {
                let (at, n) = keep(b);
                Cell::Blob(at, n)
            }
        };
        self.cells.push(cell);
    }
    fn end_row(&mut self) {}
}

/// The converters of declared types (`dbmux._types.converter`), asked once
/// per declared type name.
static CONVERTERS: PyOnceLock<Mutex<HashMap<String, Option<Py<PyAny>>>>> = PyOnceLock::new();

fn converter(py: Python<'_>, decl: &str) -> PyResult<Option<Py<PyAny>>> {
    let cache = CONVERTERS.get_or_init(py, || Mutex::new(HashMap::new()));
    if let Some(c) = crate::connection::lock(cache).get(decl) {
        return Ok(c.as_ref().map(|c| c.clone_ref(py)));
    }
    let f = py
        .import("dbmux._types")?
        .getattr("converter")?
        .call1((decl,))?;
    let f = if f.is_none() { None } else { Some(f.unbind()) };
    cache
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(decl.to_string(), f.as_ref().map(|c| c.clone_ref(py)));
    Ok(f)
}

fn to_object(py: Python<'_>, bytes: &[u8], c: Cell) -> Py<PyAny> {
    match c {
        Cell::Null => py.None(),
        Cell::Int(i) => i
            .into_pyobject(py)
            .map_or_else(|e| match e {}, |o| o.into_any().unbind()),
        Cell::Real(r) => r
            .into_pyobject(py)
            .map_or_else(|e| match e {}, |o| o.into_any().unbind()),
        Cell::Text(at, n) => {
            // SAFETY: these bytes were a whole `&str` (`ValueRef::Text`) when
            // `Collected::value` kept them, and nothing changes them since:
            // they are UTF-8, and checking again would scan every text twice
            // (Python decodes them once more anyway).
            let s = unsafe { std::str::from_utf8_unchecked(&bytes[at..at + n]) };
            PyString::new(py, s).into_any().unbind()
        }
        Cell::Blob(at, n) => PyBytes::new(py, &bytes[at..at + n]).into_any().unbind(),
    }
}

/// The rows of a result as tuples, with the declared types' conversions
/// (SQLite `DATE` text to `datetime.date`, ...) when `convert`.
pub(crate) fn rows<'py>(
    py: Python<'py>,
    c: &Collected,
    convert: bool,
) -> PyResult<Bound<'py, PyList>> {
    let n = c.columns.len();
    let mut convs = Vec::with_capacity(n);
    let mut any = false;
    for col in &c.columns {
        let f = match &col.decl_type {
            Some(d) if convert => converter(py, d)?,
            _ => None,
        };
        any |= f.is_some();
        convs.push(f);
    }
    if n == 0 {
        return Ok(PyList::empty(py));
    }
    let bytes = &c.bytes[..];
    // Built with the C API's own calls (the list and each tuple made at
    // their size, items placed, no intermediate vectors): this runs once
    // per value of every result.
    // as many rows as whole rows of cells (never an unset list item)
    let count = c.cells.len() / n;
    let list = new_owned(py, unsafe { pyo3::ffi::PyList_New(count as isize) })?;
    for (ri, row) in c.cells.chunks_exact(n).enumerate() {
        let tuple = new_owned(py, unsafe { pyo3::ffi::PyTuple_New(n as isize) })?;
        for (i, (&v, conv)) in row.iter().zip(&convs).enumerate() {
            let o = to_object(py, bytes, v);
            let o = match conv {
                Some(f) if !matches!(v, Cell::Null) => f.bind(py).call1((o,))?.unbind(),
                _ => o,
            };
            // SAFETY: `tuple` is a new tuple of `n` items and `i < n`;
            // SetItem takes over the reference `into_ptr` gives up.
            unsafe { pyo3::ffi::PyTuple_SetItem(tuple.as_ptr(), i as isize, o.into_ptr()) };
        }
        if !any {
            // None, int, float, str and bytes only: nothing the cycle
            // collector needs to see (it would untrack such a tuple itself
            // at its first collection, after scanning it)
            // SAFETY: `tuple` is a live tuple; untracking an object the
            // collector does not track is allowed.
            unsafe { pyo3::ffi::PyObject_GC_UnTrack(tuple.as_ptr().cast()) };
        }
        // SAFETY: `list` is a new list of `count` items and `ri` is one of
        // them; SetItem takes over the tuple's reference.
        unsafe { pyo3::ffi::PyList_SetItem(list.as_ptr(), ri as isize, tuple.into_ptr()) };
    }
    // SAFETY: made by PyList_New above
    Ok(unsafe { list.cast_into_unchecked::<PyList>() })
}

/// A new reference from the C API as an owned object, or the error it set.
fn new_owned(py: Python<'_>, p: *mut pyo3::ffi::PyObject) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: `p` is a new reference or null with an exception set
    unsafe { Bound::from_owned_ptr_or_err(py, p) }
}

/// Calls a Python SQL function registered by `Connection.create_function`
/// with the statement's arguments; its result as a SQLite value.
#[cfg(feature = "sqlite")]
pub(crate) fn call_sql_function(
    py: Python<'_>,
    func: &Py<PyAny>,
    ctx: &rusqlite::functions::Context<'_>,
) -> rusqlite::Result<rusqlite::types::Value> {
    use rusqlite::types::{Value as Lite, ValueRef as Ref};
    let mut args = Vec::with_capacity(ctx.len());
    for i in 0..ctx.len() {
        let o: Py<PyAny> = match ctx.get_raw(i) {
            Ref::Null => py.None(),
            Ref::Integer(n) => n
                .into_pyobject(py)
                .map_or_else(|e| match e {}, |o| o.into_any().unbind()),
            Ref::Real(r) => r
                .into_pyobject(py)
                .map_or_else(|e| match e {}, |o| o.into_any().unbind()),
            Ref::Text(t) => PyString::new(py, &String::from_utf8_lossy(t))
                .into_any()
                .unbind(),
            Ref::Blob(b) => PyBytes::new(py, b).into_any().unbind(),
        };
        args.push(o);
    }
    let fail = |msg: String| rusqlite::Error::UserFunctionError(msg.into());
    let args = PyTuple::new(py, args).map_err(|e| fail(e.to_string()))?;
    let r = func.bind(py).call1(args).map_err(|e| fail(e.to_string()))?;
    if r.is_none() {
        return Ok(Lite::Null);
    }
    match value(py, 0, &r) {
        Ok(Value::Null) => Ok(Lite::Null),
        Ok(Value::Integer(n)) => Ok(Lite::Integer(n)),
        Ok(Value::Real(x)) => Ok(Lite::Real(x)),
        Ok(Value::Text(t)) => Ok(Lite::Text(t)),
        Ok(Value::Blob(b)) => Ok(Lite::Blob(b)),
        Err(e) => Err(fail(e.to_string())),
    }
}
