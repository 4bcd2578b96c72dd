//! The C ABI of dbmux. See `bindings/c/README.md` for the conventions and
//! `bindings/c/dbmux.h` (generated from this file by cbindgen) for the API.
//!
//! Every `extern "C"` function body runs inside [`guard`], which catches
//! panics (a panic escaping `extern "C"` would abort the host) and records
//! the last error message for the calling thread.
#![allow(clippy::missing_safety_doc)] // the safety rules are in the header comments

use std::cell::RefCell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::{Mutex, RwLock};

use dbmux::{Connection, Error, ErrorCode, Manager, Rows, Value};

/// Major version of this header and library.
pub const DBMUX_VERSION_MAJOR: u32 = 0;
/// Minor version of this header and library.
pub const DBMUX_VERSION_MINOR: u32 = 1;
/// Patch version of this header and library.
pub const DBMUX_VERSION_PATCH: u32 = 0;

/// The status every fallible function returns. The numbers are the same as
/// the Rust `dbmux::ErrorCode` and are never renumbered.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub enum dbmux_status {
    /// Success.
    DBMUX_OK = 0,
    /// The URL or connection string could not be understood.
    DBMUX_INVALID_URL = 1,
    /// A setting is out of range.
    DBMUX_INVALID_CONFIG = 2,
    /// The URL needs a backend this build does not include, or the SQLite
    /// library in the process is older than 3.36.0.
    DBMUX_FEATURE_DISABLED = 3,
    /// No connection to the database could be opened.
    DBMUX_CONNECT_FAILED = 4,
    /// No connection became free within pool_timeout.
    DBMUX_POOL_TIMEOUT = 5,
    /// The manager was shut down.
    DBMUX_MANAGER_CLOSED = 6,
    /// The global manager already exists.
    DBMUX_ALREADY_INITIALIZED = 7,
    /// The database rejected the SQL.
    DBMUX_SQL = 8,
    /// A constraint was violated.
    DBMUX_CONSTRAINT = 9,
    /// A write on a read-only database.
    DBMUX_READ_ONLY = 10,
    /// A lock was held longer than busy_timeout.
    DBMUX_BUSY = 11,
    /// A statement ran longer than statement_timeout, or the server gave no
    /// answer within DB_QUERY_TIMEOUT.
    DBMUX_STATEMENT_TIMEOUT = 12,
    /// A value has another type than the one asked for.
    DBMUX_TYPE_MISMATCH = 13,
    /// A query that must return a row returned none.
    DBMUX_NO_ROWS = 14,
    /// Wrong parameters: count, kind, invalid UTF-8, column out of range.
    DBMUX_INVALID_PARAMETER = 15,
    /// A file-system level failure.
    DBMUX_IO = 16,
    /// The API was misused: a NULL pointer, COMMIT without BEGIN, a call out of order.
    DBMUX_MISUSE = 17,
    /// The connection broke during COMMIT: the transaction may or may not be applied.
    DBMUX_COMMIT_UNKNOWN = 18,
    /// A bug in dbmux (including a caught panic).
    DBMUX_INTERNAL = 99,
}

fn status_of(code: ErrorCode) -> dbmux_status {
    use dbmux_status::*;
    match code {
        ErrorCode::InvalidUrl => DBMUX_INVALID_URL,
        ErrorCode::InvalidConfig => DBMUX_INVALID_CONFIG,
        ErrorCode::FeatureDisabled => DBMUX_FEATURE_DISABLED,
        ErrorCode::ConnectFailed => DBMUX_CONNECT_FAILED,
        ErrorCode::PoolTimeout => DBMUX_POOL_TIMEOUT,
        ErrorCode::ManagerClosed => DBMUX_MANAGER_CLOSED,
        ErrorCode::AlreadyInitialized => DBMUX_ALREADY_INITIALIZED,
        ErrorCode::Sql => DBMUX_SQL,
        ErrorCode::Constraint => DBMUX_CONSTRAINT,
        ErrorCode::ReadOnly => DBMUX_READ_ONLY,
        ErrorCode::Busy => DBMUX_BUSY,
        ErrorCode::StatementTimeout => DBMUX_STATEMENT_TIMEOUT,
        ErrorCode::TypeMismatch => DBMUX_TYPE_MISMATCH,
        ErrorCode::NoRows => DBMUX_NO_ROWS,
        ErrorCode::InvalidParameter => DBMUX_INVALID_PARAMETER,
        ErrorCode::Io => DBMUX_IO,
        ErrorCode::Misuse => DBMUX_MISUSE,
        ErrorCode::CommitUnknown => DBMUX_COMMIT_UNKNOWN,
        _ => DBMUX_INTERNAL,
    }
}

/// The kind of a value: one of the `DBMUX_TYPE_*` constants. A plain
/// integer, not an enum, because C fills it in: dbmux checks it, and any
/// other number is DBMUX_INVALID_PARAMETER with a message, never undefined
/// behaviour.
#[allow(non_camel_case_types)]
pub type dbmux_value_type = i32;

/// SQL NULL.
pub const DBMUX_TYPE_NULL: dbmux_value_type = 0;
/// A 64-bit integer (`int64`).
pub const DBMUX_TYPE_INT64: dbmux_value_type = 1;
/// A double (`real`).
pub const DBMUX_TYPE_DOUBLE: dbmux_value_type = 2;
/// UTF-8 text (`ptr`, `len`; not NUL-terminated).
pub const DBMUX_TYPE_TEXT: dbmux_value_type = 3;
/// Bytes (`ptr`, `len`).
pub const DBMUX_TYPE_BLOB: dbmux_value_type = 4;

/// A parameter value. Set `type` and the matching field(s); the others are
/// ignored. Text must be valid UTF-8. The caller keeps ownership of `ptr`.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct dbmux_value {
    /// Which field holds the value: a `DBMUX_TYPE_*` constant.
    pub r#type: dbmux_value_type,
    /// The value for `DBMUX_TYPE_INT64`.
    pub int64: i64,
    /// The value for `DBMUX_TYPE_DOUBLE`.
    pub real: f64,
    /// The bytes for `DBMUX_TYPE_TEXT` and `DBMUX_TYPE_BLOB` (may be NULL when `len` is 0).
    pub ptr: *const u8,
    /// The number of bytes at `ptr`.
    pub len: usize,
}

/// A connection manager (a pool). Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_manager {
    mgr: Manager,
    /// The global manager's handle: not freed by `dbmux_manager_close`.
    global: bool,
}

/// A connection checked out of a manager. Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_conn {
    conn: Connection,
}

/// A query result with a cursor. Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_result {
    rows: Rows,
    /// Index of the current row; `None` before the first `dbmux_result_next`.
    current: Option<usize>,
    /// NUL-terminated copies of column names and declared types.
    names: Vec<CString>,
    decl_types: Vec<Option<CString>>,
}

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn set_error(msg: impl Into<String>) {
    let msg = msg.into();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg));
}

fn fail(e: Error) -> dbmux_status {
    let status = status_of(e.code());
    set_error(e.to_string());
    status
}

fn misuse(msg: &str) -> dbmux_status {
    set_error(msg);
    dbmux_status::DBMUX_MISUSE
}

fn null_arg(name: &str) -> dbmux_status {
    misuse(&format!("{name} must not be NULL"))
}

/// Runs an `extern "C"` body: clears the thread's last error, catches panics.
fn guard(f: impl FnOnce() -> dbmux_status) -> dbmux_status {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s,
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error (a panic was caught): {what}"));
            dbmux_status::DBMUX_INTERNAL
        }
    }
}

/// Reads a NUL-terminated UTF-8 C string.
unsafe fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, dbmux_status> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        set_error(format!(
            "{name} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ));
        dbmux_status::DBMUX_INVALID_PARAMETER
    })
}

/// Converts C parameter values.
unsafe fn values(params: *const dbmux_value, n: usize) -> Result<Vec<Value>, dbmux_status> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if params.is_null() {
        return Err(null_arg("params (with n > 0)"));
    }
    let slice = std::slice::from_raw_parts(params, n);
    let mut out = Vec::with_capacity(n);
    for (i, v) in slice.iter().enumerate() {
        let bytes = || -> Result<&[u8], dbmux_status> {
            if v.len == 0 {
                Ok(&[])
            } else if v.ptr.is_null() {
                Err(misuse(&format!(
                    "params[{i}].ptr is NULL but len is {}",
                    v.len
                )))
            } else {
                Ok(std::slice::from_raw_parts(v.ptr, v.len))
            }
        };
        out.push(match v.r#type {
            DBMUX_TYPE_NULL => Value::Null,
            DBMUX_TYPE_INT64 => Value::Integer(v.int64),
            DBMUX_TYPE_DOUBLE => Value::Real(v.real),
            DBMUX_TYPE_TEXT => match std::str::from_utf8(bytes()?) {
                Ok(s) => Value::Text(s.to_string()),
                Err(e) => {
                    set_error(format!(
                        "params[{i}] text is not valid UTF-8 (invalid byte at offset {})",
                        e.valid_up_to()
                    ));
                    return Err(dbmux_status::DBMUX_INVALID_PARAMETER);
                }
            },
            DBMUX_TYPE_BLOB => Value::Blob(bytes()?.to_vec()),
            other => {
                set_error(format!(
                    "params[{i}].type is {other}, which is no value type: use DBMUX_TYPE_NULL (0), \
                     DBMUX_TYPE_INT64 (1), DBMUX_TYPE_DOUBLE (2), DBMUX_TYPE_TEXT (3) or \
                     DBMUX_TYPE_BLOB (4)"
                ));
                return Err(dbmux_status::DBMUX_INVALID_PARAMETER);
            }
        });
    }
    Ok(out)
}

fn to_c_string(s: String) -> *mut c_char {
    // Interior NULs cannot occur in dbmux's JSON or messages; replace defensively.
    CString::new(s.replace('\0', "\u{FFFD}"))
        .map(CString::into_raw)
        .unwrap_or(ptr::null_mut())
}

// ---------------------------------------------------------------- strings --

/// Frees a string returned by dbmux (`dbmux_last_error_message`,
/// `dbmux_health_json`, `dbmux_debug_info_json`). NULL is accepted and ignored.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = catch_unwind(|| drop(CString::from_raw(s)));
    }
}

/// The last error message of the calling thread, or NULL when the last call
/// on this thread succeeded. The caller owns the string: free it with
/// `dbmux_string_free`. Messages never contain passwords.
#[no_mangle]
pub extern "C" fn dbmux_last_error_message() -> *mut c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().clone()))
        .ok()
        .flatten()
        .map(to_c_string)
        .unwrap_or(ptr::null_mut())
}

/// A static string naming the library version and the enabled features,
/// e.g. `"dbmux 0.1.0 (sqlite, postgres, tls)"` (`bundled` is named too
/// when SQLite is compiled into the library). Do not free it. Any thread.
#[no_mangle]
pub extern "C" fn dbmux_version() -> *const c_char {
    static VERSION: std::sync::OnceLock<CString> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let mut features = Vec::new();
            if cfg!(feature = "sqlite") {
                features.push("sqlite");
            }
            if cfg!(feature = "bundled") {
                features.push("bundled");
            }
            if cfg!(feature = "postgres") {
                features.push("postgres");
            }
            if cfg!(feature = "tls") {
                features.push("tls");
            }
            CString::new(format!(
                "dbmux {} ({})",
                dbmux::VERSION,
                features.join(", ")
            ))
            .unwrap_or_default()
        })
        .as_ptr()
}

/// The stable name of a status code: `"ok"` for DBMUX_OK, else the name of
/// the Rust error code with that number (`"invalid_url"`, `"pool_timeout"`,
/// `"commit_unknown"`, ...; the same names as the JSON `error_code` and the
/// Python exceptions' `name`), or NULL for a number that is no status. A
/// static string: do not free it. Any thread.
#[no_mangle]
pub extern "C" fn dbmux_status_name(status: c_int) -> *const c_char {
    static NAMES: std::sync::OnceLock<Vec<(c_int, CString)>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        std::iter::once((0, "ok"))
            .chain(ErrorCode::ALL.iter().map(|c| (c.as_i32(), c.name())))
            .map(|(n, name)| (n, CString::new(name).unwrap_or_default()))
            .collect()
    });
    names
        .iter()
        .find(|(n, _)| *n == status)
        .map_or(ptr::null(), |(_, name)| name.as_ptr())
}

/// A static string with the version of the SQLite library dbmux runs on,
/// e.g. `"3.40.1"` (`sqlite3_libversion()` of dbmux's copy), or NULL when
/// the library was built without the `sqlite` feature. Do not free it. Any
/// thread.
///
/// By default libdbmux links the system `libsqlite3` as a shared library,
/// so this equals what the host's own `sqlite3_libversion()` returns; a
/// `bundled` build has its own copy (see bindings/c/README.md: never open a
/// database file through two copies of SQLite in one process).
#[no_mangle]
pub extern "C" fn dbmux_sqlite_version() -> *const c_char {
    #[cfg(feature = "sqlite")]
    {
        static VERSION: std::sync::OnceLock<CString> = std::sync::OnceLock::new();
        VERSION
            .get_or_init(|| CString::new(dbmux::sqlite_version()).unwrap_or_default())
            .as_ptr()
    }
    #[cfg(not(feature = "sqlite"))]
    {
        ptr::null()
    }
}

// --------------------------------------------------------------- managers --

/// Opens a manager for `url`, or for `DATABASE_URL` (then `./.env`, then the
/// embedded default `./dbmux.db`) when `url` is NULL. In both cases the pool
/// settings come from the `DB_*` environment variables (`DB_POOL_SIZE`,
/// `DB_POOL_TIMEOUT`, ...) and their defaults. Does not connect. On success `*out`
/// owns the manager: close it with `dbmux_manager_close`. A manager may be
/// used from any thread at once.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_open(
    url: *const c_char,
    out: *mut *mut dbmux_manager,
) -> dbmux_status {
    guard(|| {
        if out.is_null() {
            return null_arg("out");
        }
        let mgr = if url.is_null() {
            Manager::from_env()
        } else {
            match c_str(url, "url") {
                Ok(u) => dbmux::Config::builder()
                    .url(u)
                    .with_env()
                    .build()
                    .and_then(Manager::new),
                Err(s) => return s,
            }
        };
        match mgr {
            Ok(mgr) => {
                *out = Box::into_raw(Box::new(dbmux_manager { mgr, global: false }));
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
    })
}

/// Closes every connection of the manager (those still checked out close
/// when released) and frees it. NULL is accepted. The global manager's
/// handle is not freed (use `dbmux_global_shutdown`).
/// Thread: Any thread, once no other thread uses the manager.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_close(mgr: *mut dbmux_manager) {
    let _ = guard(|| {
        if mgr.is_null() || (*mgr).global {
            return dbmux_status::DBMUX_OK;
        }
        let m = Box::from_raw(mgr);
        m.mgr.shutdown();
        dbmux_status::DBMUX_OK
    });
}

/// The global handle, kept alive until `dbmux_global_shutdown`.
static GLOBAL: Mutex<Option<Box<dbmux_manager>>> = Mutex::new(None);

/// The process-wide manager, created from the environment on first use.
/// `*out` is borrowed: do not close it; it stays valid until
/// `dbmux_global_shutdown`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_global(out: *mut *mut dbmux_manager) -> dbmux_status {
    guard(|| {
        if out.is_null() {
            return null_arg("out");
        }
        let mut slot = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = slot.as_mut() {
            if !h.mgr.is_closed() {
                *out = &mut **h as *mut dbmux_manager;
                return dbmux_status::DBMUX_OK;
            }
        }
        match dbmux::global() {
            Ok(mgr) => {
                let h = slot.insert(Box::new(dbmux_manager { mgr, global: true }));
                *out = &mut **h as *mut dbmux_manager;
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
    })
}

/// Shuts the global manager down and invalidates handles from
/// `dbmux_global`; the next `dbmux_global` builds a fresh one.
/// Thread: Any thread, once no other thread uses the global handle.
#[no_mangle]
pub extern "C" fn dbmux_global_shutdown() {
    let _ = guard(|| {
        dbmux::shutdown();
        GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).take();
        dbmux_status::DBMUX_OK
    });
}

/// The manager's health report as JSON (the same object as Rust's
/// `HealthReport`), cached for DB_HEALTH_CHECK_INTERVAL. `*out` is owned by
/// the caller: free it with `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_health_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, |m| m.health().to_json())
}

/// The manager's debug info as JSON (Rust's `DebugInfo`). `*out` is owned
/// by the caller: free it with `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_debug_info_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, |m| m.debug_info().to_json())
}

/// Checks the pointers and hands `json(manager)` to the caller as a C string.
unsafe fn manager_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
    json: impl FnOnce(&Manager) -> String,
) -> dbmux_status {
    guard(|| {
        if mgr.is_null() {
            return null_arg("mgr");
        }
        if out.is_null() {
            return null_arg("out");
        }
        *out = to_c_string(json(&(*mgr).mgr));
        dbmux_status::DBMUX_OK
    })
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
        if mgr.is_null() {
            return null_arg("mgr");
        }
        if out.is_null() {
            return null_arg("out");
        }
        match (*mgr).mgr.get() {
            Ok(conn) => {
                *out = Box::into_raw(Box::new(dbmux_conn { conn }));
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
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

unsafe fn with_conn(
    conn: *mut dbmux_conn,
    f: impl FnOnce(&mut Connection) -> dbmux_status,
) -> dbmux_status {
    guard(|| {
        if conn.is_null() {
            return null_arg("conn");
        }
        f(&mut (*conn).conn)
    })
}

fn unit_status(r: dbmux::Result<()>) -> dbmux_status {
    match r {
        Ok(()) => dbmux_status::DBMUX_OK,
        Err(e) => fail(e),
    }
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
        let sql = match c_str(sql, "sql") {
            Ok(s) => s,
            Err(s) => return s,
        };
        let params = match values(params, n) {
            Ok(p) => p,
            Err(s) => return s,
        };
        match c.execute(sql, &params) {
            Ok(count) => {
                if !rows_affected.is_null() {
                    *rows_affected = count;
                }
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
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
        if out.is_null() {
            return null_arg("out");
        }
        let sql = match c_str(sql, "sql") {
            Ok(s) => s,
            Err(s) => return s,
        };
        let params = match values(params, n) {
            Ok(p) => p,
            Err(s) => return s,
        };
        match c.query(sql, &params) {
            Ok(rows) => {
                let c_string =
                    |s: &str| CString::new(s.replace('\0', "\u{FFFD}")).unwrap_or_default();
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
                *out = Box::into_raw(Box::new(dbmux_result {
                    rows,
                    current: None,
                    names,
                    decl_types,
                }));
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
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
        if out.is_null() {
            return null_arg("out");
        }
        match c.last_insert_id() {
            Ok(id) => {
                *out = id;
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
    })
}

// ---------------------------------------------------------------- results --

unsafe fn with_result(
    r: *const dbmux_result,
    f: impl FnOnce(&dbmux_result) -> dbmux_status,
) -> dbmux_status {
    guard(|| {
        if r.is_null() {
            return null_arg("result");
        }
        f(&*r)
    })
}

/// The number of columns (also for a result without rows).
/// Thread: One thread at a time per result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_column_count(
    r: *const dbmux_result,
    out: *mut usize,
) -> dbmux_status {
    with_result(r, |r| {
        if out.is_null() {
            return null_arg("out");
        }
        *out = r.rows.columns().len();
        dbmux_status::DBMUX_OK
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
        if out.is_null() {
            return null_arg("out");
        }
        match r.names.get(i) {
            Some(n) => {
                *out = n.as_ptr();
                dbmux_status::DBMUX_OK
            }
            None => column_range(i, r.names.len()),
        }
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
        if out.is_null() {
            return null_arg("out");
        }
        match r.decl_types.get(i) {
            Some(t) => {
                *out = t.as_ref().map_or(ptr::null(), |t| t.as_ptr());
                dbmux_status::DBMUX_OK
            }
            None => column_range(i, r.decl_types.len()),
        }
    })
}

fn column_range(i: usize, n: usize) -> dbmux_status {
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
        if r.is_null() {
            return null_arg("result");
        }
        if has_row.is_null() {
            return null_arg("has_row");
        }
        let r = &mut *r;
        let next = r.current.map_or(0, |c| c + 1).min(r.rows.len());
        r.current = Some(next);
        *has_row = next < r.rows.len();
        dbmux_status::DBMUX_OK
    })
}

fn cell(r: &dbmux_result, i: usize) -> Result<&Value, dbmux_status> {
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
        if out.is_null() {
            return null_arg("out");
        }
        match cell(r, i) {
            Ok(v) => {
                *out = match v {
                    Value::Null => DBMUX_TYPE_NULL,
                    Value::Integer(_) => DBMUX_TYPE_INT64,
                    Value::Real(_) => DBMUX_TYPE_DOUBLE,
                    Value::Text(_) => DBMUX_TYPE_TEXT,
                    Value::Blob(_) => DBMUX_TYPE_BLOB,
                };
                dbmux_status::DBMUX_OK
            }
            Err(s) => s,
        }
    })
}

fn wrong_type(want: &str, v: &Value) -> dbmux_status {
    set_error(format!("the value is {}, not {want}", v.kind()));
    dbmux_status::DBMUX_TYPE_MISMATCH
}

/// The body the typed getters share: `null_out` names an output pointer
/// that is NULL; `pick` reads column `i` of the current row as `want`
/// (`None`: another type, DBMUX_TYPE_MISMATCH); `put` writes it out.
unsafe fn typed_getter<T>(
    r: *const dbmux_result,
    i: usize,
    want: &str,
    null_out: Option<&str>,
    pick: impl FnOnce(&Value) -> Option<T>,
    put: impl FnOnce(T),
) -> dbmux_status {
    with_result(r, |r| {
        if let Some(name) = null_out {
            return null_arg(name);
        }
        match cell(r, i) {
            Ok(v) => match pick(v) {
                Some(x) => {
                    put(x);
                    dbmux_status::DBMUX_OK
                }
                None => wrong_type(want, v),
            },
            Err(s) => s,
        }
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
    typed_getter(
        r,
        i,
        "int64",
        out.is_null().then_some("out"),
        |v| match v {
            Value::Integer(n) => Some(*n),
            _ => None,
        },
        |n| *out = n,
    )
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
    typed_getter(
        r,
        i,
        "double",
        out.is_null().then_some("out"),
        |v| match v {
            Value::Real(f) => Some(*f),
            Value::Integer(n) => Some(*n as f64),
            _ => None,
        },
        |f| *out = f,
    )
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
        (ptr_out.is_null() || len.is_null()).then_some("ptr and len"),
        |v| match v {
            Value::Text(s) => Some((s.as_ptr(), s.len())),
            _ => None,
        },
        |(p, n)| {
            *ptr_out = p;
            *len = n;
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
        (ptr_out.is_null() || len.is_null()).then_some("ptr and len"),
        |v| match v {
            Value::Blob(b) => Some((b.as_ptr(), b.len())),
            _ => None,
        },
        |(p, n)| {
            *ptr_out = p;
            *len = n;
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
        if out.is_null() {
            return null_arg("out");
        }
        *out = r.rows.rows_affected();
        dbmux_status::DBMUX_OK
    })
}

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
        if r.is_null() {
            return null_arg("result");
        }
        if out.is_null() || len.is_null() {
            return null_arg("out and len");
        }
        let r = &mut *r;
        let start = r.current.map_or(0, |c| c + 1).min(r.rows.len());
        let buf = pymarshal::result(&r.rows, start);
        r.current = Some(r.rows.len());
        give_bytes(buf, out, len);
        dbmux_status::DBMUX_OK
    })
}

unsafe fn give_bytes(buf: Vec<u8>, out: *mut *mut u8, len: *mut usize) {
    let boxed = buf.into_boxed_slice();
    *len = boxed.len();
    *out = Box::into_raw(boxed) as *mut u8;
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
        if out.is_null() || len.is_null() {
            return null_arg("out and len");
        }
        let sql = match c_str(sql, "sql") {
            Ok(s) => s,
            Err(s) => return s,
        };
        let params = match values(params, n) {
            Ok(p) => p,
            Err(s) => return s,
        };
        let mut sink = pymarshal::Sink::new();
        match c.query_into(sql, &params, &mut sink) {
            Ok(affected) => {
                give_bytes(sink.finish(affected), out, len);
                dbmux_status::DBMUX_OK
            }
            Err(e) => fail(e),
        }
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

/// Frees a result. NULL is accepted.
/// Thread: The thread using the result.
#[no_mangle]
pub unsafe extern "C" fn dbmux_result_free(r: *mut dbmux_result) {
    if !r.is_null() {
        let _ = catch_unwind(|| drop(Box::from_raw(r)));
    }
}

// ---------------------------------------------------------------- logging --

/// A log callback: `level` is 1 error, 2 warn, 3 info, 4 debug, 5 trace;
/// `target` and `message` are NUL-terminated and valid only during the call.
#[allow(non_camel_case_types)]
pub type dbmux_log_fn = Option<
    unsafe extern "C" fn(
        level: i32,
        target: *const c_char,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;

struct Callback {
    f: unsafe extern "C" fn(i32, *const c_char, *const c_char, *mut c_void),
    user_data: *mut c_void,
}
// The host promises (in the header) that the callback and user_data may be
// used from any thread.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

static CALLBACK: RwLock<Option<Callback>> = RwLock::new(None);

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target().starts_with("dbmux")
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let guard = CALLBACK.read().unwrap_or_else(|e| e.into_inner());
        if let Some(cb) = guard.as_ref() {
            let target = CString::new(r.target()).unwrap_or_default();
            let msg = CString::new(r.args().to_string().replace('\0', " ")).unwrap_or_default();
            // A panic must not unwind into the host's callback frames and back.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                (cb.f)(
                    r.level() as i32,
                    target.as_ptr(),
                    msg.as_ptr(),
                    cb.user_data,
                )
            }));
        }
    }
    fn flush(&self) {}
}

/// Routes dbmux's log lines (level, target, message) to `f`, with
/// `user_data` passed back. NULL `f` stops logging. `f` may be called from
/// any thread, also concurrently. DBMUX_MISUSE when another logger owns the
/// process's `log` facade.
#[no_mangle]
pub unsafe extern "C" fn dbmux_set_log_callback(
    f: dbmux_log_fn,
    user_data: *mut c_void,
) -> dbmux_status {
    guard(|| {
        static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let ok = *INSTALLED.get_or_init(|| {
            let ok = log::set_logger(&Bridge).is_ok();
            if ok {
                log::set_max_level(log::LevelFilter::Trace);
            }
            ok
        });
        if !ok {
            return misuse(
                "another logger is installed in this process; dbmux cannot route its log lines",
            );
        }
        *CALLBACK.write().unwrap_or_else(|e| e.into_inner()) = f.map(|f| Callback { f, user_data });
        dbmux_status::DBMUX_OK
    })
}

#[cfg(test)]
mod tests;
