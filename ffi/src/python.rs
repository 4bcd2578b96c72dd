//! For the Python package only: a whole result as CPython `marshal` bytes
//! in one call. Not part of the C API a C program needs.

use std::ffi::c_char;
use std::panic::catch_unwind;

use super::*;

/// Encodes values in CPython's `marshal` format (version 2+, stable since
/// Python 3.4 for these types), so the Python binding can turn a whole result
/// into Python objects with one call into C (`marshal.loads`).
mod pymarshal {
    fn len(out: &mut Vec<u8>, n: usize) {
        out.extend_from_slice(&(n.min(i32::MAX as usize) as i32).to_le_bytes());
    }

    pub fn str(out: &mut Vec<u8>, s: &str) {
        out.push(b'u');
        len(out, s.len());
        out.extend_from_slice(s.as_bytes());
    }

    pub fn none(out: &mut Vec<u8>) {
        out.push(b'N');
    }

    pub fn int(out: &mut Vec<u8>, i: i64) {
        if let Ok(small) = i32::try_from(i) {
            out.push(b'i');
            out.extend_from_slice(&small.to_le_bytes());
            return;
        }
        // a long: base 2**15 digits, least significant first; the sign is
        // the sign of the digit count
        let mut mag = i.unsigned_abs();
        let mut digits = Vec::with_capacity(5);
        while mag > 0 {
            digits.push((mag & 0x7fff) as u16);
            mag >>= 15;
        }
        out.push(b'l');
        let n = digits.len() as i32;
        out.extend_from_slice(&(if i < 0 { -n } else { n }).to_le_bytes());
        for d in digits {
            out.extend_from_slice(&d.to_le_bytes());
        }
    }

    pub fn value(out: &mut Vec<u8>, v: dbmux::ValueRef<'_>) {
        use dbmux::ValueRef as V;
        match v {
            V::Null => none(out),
            V::Integer(i) => int(out, i),
            V::Real(r) => {
                out.push(b'g');
                out.extend_from_slice(&r.to_le_bytes());
            }
            V::Text(s) => str(out, s),
            V::Blob(b) => {
                out.push(b's');
                len(out, b.len());
                out.extend_from_slice(b);
            }
        }
    }

    /// Streams `(columns, [rows], rows_affected)` as a result is read.
    pub struct Sink {
        pub buf: Vec<u8>,
        ncols: usize,
        cell: usize,
        rows: usize,
        count_at: Option<usize>,
    }

    impl Sink {
        pub fn new() -> Sink {
            Sink {
                buf: Vec::with_capacity(4096),
                ncols: 0,
                cell: 0,
                rows: 0,
                count_at: None,
            }
        }

        /// Closes the row list and appends `rows_affected`.
        pub fn finish(mut self, rows_affected: u64) -> Vec<u8> {
            if let Some(at) = self.count_at {
                let n = (self.rows.min(i32::MAX as usize) as i32).to_le_bytes();
                self.buf[at..at + 4].copy_from_slice(&n);
            }
            int(&mut self.buf, rows_affected.min(i64::MAX as u64) as i64);
            self.buf
        }
    }

    impl dbmux::RowSink for Sink {
        fn columns(&mut self, cols: &[dbmux::Column]) {
            self.ncols = cols.len();
            tuple(&mut self.buf, 3);
            tuple(&mut self.buf, cols.len());
            for c in cols {
                tuple(&mut self.buf, 2);
                str(&mut self.buf, &c.name);
                match &c.decl_type {
                    Some(t) => str(&mut self.buf, t),
                    None => none(&mut self.buf),
                }
            }
            self.buf.push(b'[');
            self.count_at = Some(self.buf.len());
            self.buf.extend_from_slice(&[0, 0, 0, 0]);
        }

        fn value(&mut self, v: dbmux::ValueRef<'_>) {
            if self.cell == 0 {
                tuple(&mut self.buf, self.ncols);
            }
            self.cell += 1;
            value(&mut self.buf, v);
        }

        fn end_row(&mut self) {
            self.cell = 0;
            self.rows += 1;
        }
    }

    pub fn tuple(out: &mut Vec<u8>, n: usize) {
        if n < 256 {
            out.push(b')');
            out.push(n as u8);
        } else {
            out.push(b'(');
            len(out, n);
        }
    }

    /// `(columns, rows[start..], rows_affected)`.
    pub fn result(rows: &dbmux::Rows, start: usize) -> Vec<u8> {
        use dbmux::RowSink;
        let mut sink = Sink::new();
        sink.columns(rows.columns());
        for row in &rows.rows()[start.min(rows.len())..] {
            for v in row.values() {
                sink.value(v.as_ref());
            }
            sink.end_row();
        }
        sink.finish(rows.rows_affected())
    }
}

/// For the Python binding: the result's columns and all rows from the
/// cursor on, as CPython `marshal` bytes of
/// `(((name, decltype or None), ...), [(value, ...), ...], rows_affected)`, and moves the
/// cursor past the last row. `*out` (`*len` bytes) is owned by the caller:
/// free it with `dbmux_bytes_free`. One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_pymarshal(
    r: *mut dbmux_result,
    out: *mut *mut u8,
    len: *mut usize,
) -> dbmux_status {
    guard(|| {
        let r = handle_mut(r, "result")?;
        let (out, len) = (out_ptr(out, "out")?, out_ptr(len, "len")?);
        let start = r.current.map_or(0, |c| c + 1).min(r.rows.len());
        let buf = pymarshal::result(&r.rows, start);
        r.current = Some(r.rows.len());
        give_bytes(buf, out, len);
        Ok(())
    })
}

/// Hands `buf` to the caller (freed with `dbmux_bytes_free`).
pub(crate) unsafe fn give_bytes(buf: Vec<u8>, out: Out<*mut u8>, len: Out<usize>) {
    let boxed = buf.into_boxed_slice();
    len.put(boxed.len());
    out.put(Box::into_raw(boxed) as *mut u8);
}

/// For the Python binding: runs a statement like `dbmux_query` and returns
/// the whole result at once as CPython `marshal` bytes of
/// `(((name, decltype or None), ...), [(value, ...), ...], rows_affected)`.
/// `*out` (`*len` bytes) is owned by the caller: free it with
/// `dbmux_bytes_free`. One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_query_pymarshal(
    conn: *mut dbmux_conn,
    sql: *const c_char,
    params: *const dbmux_value,
    n: usize,
    out: *mut *mut u8,
    len: *mut usize,
) -> dbmux_status {
    with_conn(conn, |c| {
        let (out, len) = (out_ptr(out, "out")?, out_ptr(len, "len")?);
        let sql = c_str(sql, "sql")?;
        let params = values(params, n)?;
        let mut sink = pymarshal::Sink::new();
        let affected = c.query_into(sql, &params, &mut sink).or_fail()?;
        give_bytes(sink.finish(affected), out, len);
        Ok(())
    })
}

/// Frees bytes returned by dbmux (`dbmux_result_pymarshal`), given their
/// length. NULL is accepted. Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_bytes_free(p: *mut u8, len: usize) {
    if !p.is_null() {
        let _ = catch_unwind(|| drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(p, len))));
    }
}
