//! Results: a cursor over rows and the typed getters.

use std::ffi::{c_char, CString};
use std::panic::catch_unwind;
use std::ptr;

use super::*;

/// A query result with a cursor. Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_result {
    pub(crate) rows: Rows,
    /// Index of the current row; `None` before the first `dbmux_result_next`.
    pub(crate) current: Option<usize>,
    /// NUL-terminated copies of column names and declared types.
    pub(crate) names: Vec<CString>,
    pub(crate) decl_types: Vec<Option<CString>>,
}

// ---------------------------------------------------------------- results --

/// Runs an `extern "C"` body on a result handle (DBMUX_MISUSE when NULL).
pub(crate) unsafe fn with_result(
    r: *const dbmux_result,
    f: impl FnOnce(&dbmux_result) -> Result<(), dbmux_status>,
) -> dbmux_status {
    guard(|| f(handle(r, "result")?))
}

/// The number of columns (also for a result without rows).
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_column_count(
    r: *const dbmux_result,
    out: *mut usize,
) -> dbmux_status {
    with_result(r, |r| {
        out_ptr(out, "out")?.put(r.rows.columns().len());
        Ok(())
    })
}

/// The name of column `i` (0-based). `*out` is borrowed from the result and
/// valid until `dbmux_result_free`.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_column_name(
    r: *const dbmux_result,
    i: usize,
    out: *mut *const c_char,
) -> dbmux_status {
    with_result(r, |r| {
        let out = out_ptr(out, "out")?;
        let name = r
            .names
            .get(i)
            .ok_or_else(|| column_range(i, r.names.len()))?;
        out.put(name.as_ptr());
        Ok(())
    })
}

/// The declared type of column `i` (`INTEGER`, `int4`, ...), or NULL for an
/// expression without one. Borrowed, valid until `dbmux_result_free`.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_column_decltype(
    r: *const dbmux_result,
    i: usize,
    out: *mut *const c_char,
) -> dbmux_status {
    with_result(r, |r| {
        let out = out_ptr(out, "out")?;
        let t = (r.decl_types.get(i)).ok_or_else(|| column_range(i, r.decl_types.len()))?;
        out.put(t.as_ref().map_or(ptr::null(), |t| t.as_ptr()));
        Ok(())
    })
}

pub(crate) fn column_range(i: usize, n: usize) -> dbmux_status {
    set_error(format!(
        "column {i} is out of range: the result has {n} column(s)"
    ));
    dbmux_status::DBMUX_INVALID_PARAMETER
}

/// Advances to the next row; `*has_row` is false after the last one.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_next(
    r: *mut dbmux_result,
    has_row: *mut bool,
) -> dbmux_status {
    guard(|| {
        let r = handle_mut(r, "result")?;
        let has_row = out_ptr(has_row, "has_row")?;
        let next = r.current.map_or(0, |c| c + 1).min(r.rows.len());
        r.current = Some(next);
        has_row.put(next < r.rows.len());
        Ok(())
    })
}

pub(crate) fn cell(r: &dbmux_result, i: usize) -> Result<&Value, dbmux_status> {
    let row = match r.current {
        Some(c) if c < r.rows.len() => &r.rows.rows()[c],
        _ => {
            return Err(misuse(
                "no current row: call dbmux_result_next until it reports a row",
            ))
        }
    };
    row.values()
        .get(i)
        .ok_or_else(|| column_range(i, row.values().len()))
}

/// The type of column `i` in the current row.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_value_type(
    r: *const dbmux_result,
    i: usize,
    out: *mut dbmux_value_type,
) -> dbmux_status {
    with_result(r, |r| {
        let out = out_ptr(out, "out")?;
        out.put(match cell(r, i)? {
            Value::Null => DBMUX_TYPE_NULL,
            Value::Integer(_) => DBMUX_TYPE_INT64,
            Value::Real(_) => DBMUX_TYPE_DOUBLE,
            Value::Text(_) => DBMUX_TYPE_TEXT,
            Value::Blob(_) => DBMUX_TYPE_BLOB,
        });
        Ok(())
    })
}

pub(crate) fn wrong_type(want: &str, v: &Value) -> dbmux_status {
    set_error(format!("the value is {}, not {want}", v.kind()));
    dbmux_status::DBMUX_TYPE_MISMATCH
}

/// Where a getter's value goes: one output pointer, or two (pointer, length).
pub(crate) trait Put<T> {
    unsafe fn put(self, v: T);
}

impl<T> Put<T> for Out<T> {
    unsafe fn put(self, v: T) {
        Out::put(self, v)
    }
}

impl<A, B> Put<(A, B)> for (Out<A>, Out<B>) {
    unsafe fn put(self, (a, b): (A, B)) {
        self.0.put(a);
        self.1.put(b);
    }
}

/// The body the typed getters share: `pick` reads column `i` of the
/// current row as `want` (`None`: another type, DBMUX_TYPE_MISMATCH) and the
/// value goes to `out`.
pub(crate) unsafe fn typed_getter<T>(
    r: *const dbmux_result,
    i: usize,
    want: &str,
    out: Result<impl Put<T>, dbmux_status>,
    pick: impl FnOnce(&Value) -> Option<T>,
) -> dbmux_status {
    with_result(r, |r| {
        let out = out?;
        let v = cell(r, i)?;
        out.put(pick(v).ok_or_else(|| wrong_type(want, v))?);
        Ok(())
    })
}

/// Column `i` of the current row as an int64 (DBMUX_TYPE_MISMATCH otherwise).
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_int64(
    r: *const dbmux_result,
    i: usize,
    out: *mut i64,
) -> dbmux_status {
    typed_getter(r, i, "int64", out_ptr(out, "out"), |v| match v {
        Value::Integer(n) => Some(*n),
        _ => None,
    })
}

/// Column `i` of the current row as a double (integers convert; other
/// types give DBMUX_TYPE_MISMATCH).
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_double(
    r: *const dbmux_result,
    i: usize,
    out: *mut f64,
) -> dbmux_status {
    typed_getter(r, i, "double", out_ptr(out, "out"), |v| match v {
        Value::Real(f) => Some(*f),
        Value::Integer(n) => Some(*n as f64),
        _ => None,
    })
}

/// Column `i` of the current row as UTF-8 text: `*ptr` and `*len` stay
/// valid until the next `dbmux_result_next` or `dbmux_result_free`. The
/// text is not NUL-terminated.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_text(
    r: *const dbmux_result,
    i: usize,
    ptr_out: *mut *const u8,
    len: *mut usize,
) -> dbmux_status {
    typed_getter(
        r,
        i,
        "text",
        out_ptr(ptr_out, "ptr").and_then(|p| Ok((p, out_ptr(len, "len")?))),
        |v| match v {
            Value::Text(s) => Some((s.as_ptr(), s.len())),
            _ => None,
        },
    )
}

/// Column `i` of the current row as bytes: `*ptr` and `*len` stay valid
/// until the next `dbmux_result_next` or `dbmux_result_free`.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_blob(
    r: *const dbmux_result,
    i: usize,
    ptr_out: *mut *const u8,
    len: *mut usize,
) -> dbmux_status {
    typed_getter(
        r,
        i,
        "blob",
        out_ptr(ptr_out, "ptr").and_then(|p| Ok((p, out_ptr(len, "len")?))),
        |v| match v {
            Value::Blob(b) => Some((b.as_ptr(), b.len())),
            _ => None,
        },
    )
}

/// For a statement without result columns: the rows it changed.
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_rows_affected(
    r: *const dbmux_result,
    out: *mut u64,
) -> dbmux_status {
    with_result(r, |r| {
        out_ptr(out, "out")?.put(r.rows.rows_affected());
        Ok(())
    })
}

/// Frees a result. NULL is accepted.
/// Thread: The thread using the result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_free(r: *mut dbmux_result) {
    if !r.is_null() {
        let _ = catch_unwind(|| drop(Box::from_raw(r)));
    }
}
