//! Connections: checkout, transactions, statements.

use std::ffi::{c_char, CString};

use super::*;

/// A connection checked out of a manager. Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_conn {
    pub(crate) conn: Connection,
}

// ------------------------------------------------------------ connections --

/// Checks a connection out of `mgr`, waiting up to pool_timeout. `*out`
/// must be released with `dbmux_conn_release`. A connection is used by one
/// thread at a time and may move between threads.
#[no_mangle]
pub unsafe extern "C" fn dbmux_conn_get(
    mgr: *const dbmux_manager,
    out: *mut *mut dbmux_conn,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let out = out_ptr(out, "out")?;
        let conn = mgr.mgr.get().or_fail()?;
        out.put(Box::into_raw(Box::new(dbmux_conn { conn })));
        Ok(())
    })
}

/// Checks a connection for reads out of `mgr` (`Manager::get_read`): the
/// database refuses writes through it (DBMUX_READ_ONLY). With
/// `after_token` (a string from `dbmux_conn_write_token`), a reader that has
/// that write (`Manager::get_read_after`): on PostgreSQL a standby that
/// replayed it, else the primary after DB_READ_AFTER_WAIT; NULL for any
/// reader. `*out` must be released with `dbmux_conn_release`.
/// Errors: as `dbmux_conn_get`; DBMUX_INVALID_PARAMETER for a malformed token.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_conn_get_read(
    mgr: *const dbmux_manager,
    after_token: *const c_char,
    out: *mut *mut dbmux_conn,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let out = out_ptr(out, "out")?;
        let conn = if after_token.is_null() {
            mgr.mgr.get_read().or_fail()?
        } else {
            let token: dbmux::WriteToken = c_str(after_token, "after_token")?.parse().or_fail()?;
            mgr.mgr.get_read_after(&token).or_fail()?
        };
        out.put(Box::into_raw(Box::new(dbmux_conn { conn })));
        Ok(())
    })
}

/// After a committed write on `conn` during this checkout, sets `*token` to
/// a write token (a short string, e.g. `pg:1:0/3000148`; free it with
/// `dbmux_string_free`) for `dbmux_conn_get_read`; else (no write yet, or a
/// connection for reads) sets `*token` to NULL and returns DBMUX_OK.
/// Thread: The thread using the connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_conn_write_token(
    conn: *mut dbmux_conn,
    token: *mut *mut c_char,
) -> dbmux_status {
    guard(|| {
        let c = handle_mut(conn, "conn")?;
        let out = out_ptr(token, "token")?;
        let t = c.conn.write_token().or_fail()?;
        out.put(t.map_or(std::ptr::null_mut(), |t| to_c_string(t.to_string())));
        Ok(())
    })
}

/// Returns the connection to its pool (an open transaction is rolled back
/// first) and frees the handle. NULL is accepted.
/// Thread: The thread using the connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_conn_release(conn: *mut dbmux_conn) {
    let _ = guard(|| {
        if !conn.is_null() {
            drop(Box::from_raw(conn));
        }
        dbmux_status::DBMUX_OK
    });
}

pub(crate) unsafe fn with_conn<S: IntoStatus>(
    conn: *mut dbmux_conn,
    f: impl FnOnce(&mut Connection) -> S,
) -> dbmux_status {
    guard(|| {
        let conn = handle_mut(conn, "conn")?;
        f(&mut conn.conn).into_status().into_result()
    })
}

pub(crate) fn unit_status(r: dbmux::Result<()>) -> dbmux_status {
    r.or_fail().into_status()
}

/// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, `BEGIN` on
/// PostgreSQL). DBMUX_MISUSE when one is already open.
/// Thread: One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_begin(conn: *mut dbmux_conn) -> dbmux_status {
    with_conn(conn, |c| unit_status(c.begin()))
}

/// Commits the open transaction. DBMUX_MISUSE when none is open.
/// DBMUX_COMMIT_UNKNOWN when the connection broke during the COMMIT: the
/// transaction may or may not have been applied, so check before repeating
/// it (never retry it blindly). Any other failure (a deferred constraint,
/// DBMUX_CONSTRAINT) rolls the transaction back. The same rule as Rust's
/// `Connection::commit`.
/// Thread: One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_commit(conn: *mut dbmux_conn) -> dbmux_status {
    with_conn(conn, |c| unit_status(c.commit()))
}

/// Rolls back the open transaction. DBMUX_MISUSE when none is open.
/// Thread: One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_rollback(conn: *mut dbmux_conn) -> dbmux_status {
    with_conn(conn, |c| unit_status(c.rollback()))
}

/// Runs one statement with `?` placeholders bound to `params[0..n]`
/// (`params` may be NULL when `n` is 0). On success writes the number of
/// rows changed to `*rows_affected` (which may be NULL).
/// Thread: One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_execute(
    conn: *mut dbmux_conn,
    sql: *const c_char,
    params: *const dbmux_value,
    n: usize,
    rows_affected: *mut u64,
) -> dbmux_status {
    with_conn(conn, |c| {
        let sql = c_str(sql, "sql")?;
        let params = values(params, n)?;
        let count = c.execute(sql, &params).or_fail()?;
        if !rows_affected.is_null() {
            *rows_affected = count;
        }
        Ok(())
    })
}

/// Runs a query and returns all rows in `*out` (free with
/// `dbmux_result_free`). A statement without result columns runs too, and
/// its result has 0 columns and `dbmux_result_rows_affected`.
/// Thread: One thread at a time per connection; the result is independent of it.
#[no_mangle]
pub unsafe extern "C" fn dbmux_query(
    conn: *mut dbmux_conn,
    sql: *const c_char,
    params: *const dbmux_value,
    n: usize,
    out: *mut *mut dbmux_result,
) -> dbmux_status {
    with_conn(conn, |c| {
        let out = out_ptr(out, "out")?;
        let sql = c_str(sql, "sql")?;
        let params = values(params, n)?;
        let rows = c.query(sql, &params).or_fail()?;
        let c_string = |s: &str| CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default();
        let names = rows
            .columns()
            .iter()
            .map(|col| c_string(&col.name))
            .collect();
        let decl_types = rows
            .columns()
            .iter()
            .map(|col| col.decl_type.as_deref().map(c_string))
            .collect();
        out.put(Box::into_raw(Box::new(dbmux_result {
            rows,
            current: None,
            names,
            decl_types,
        })));
        Ok(())
    })
}

/// The id of the last inserted row on this connection (SQLite's rowid;
/// PostgreSQL's `lastval()`).
/// Thread: One thread at a time per connection.
#[no_mangle]
pub unsafe extern "C" fn dbmux_last_insert_id(
    conn: *mut dbmux_conn,
    out: *mut i64,
) -> dbmux_status {
    with_conn(conn, |c| {
        let out = out_ptr(out, "out")?;
        out.put(c.last_insert_id().or_fail()?);
        Ok(())
    })
}
