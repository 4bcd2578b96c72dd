//! Status codes: the C names of `dbmux::ErrorCode` (the one list of codes
//! lives in Rust) and their names.

use std::ffi::{c_char, c_int, CString};
use std::ptr;

use super::*;

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
    /// The server refused the credentials (wrong password, unknown role, no
    /// pg_hba.conf entry). Returned at once: no retry can fix it.
    DBMUX_AUTH_FAILED = 19,
    /// The database does not exist (PostgreSQL 3D000, or a missing SQLite
    /// file under mode=ro or mode=rw). Returned at once.
    DBMUX_DATABASE_NOT_FOUND = 20,
    /// TLS failed: certificate verification, the handshake, or a server that
    /// refuses TLS where sslmode requires it. Returned at once.
    DBMUX_TLS_FAILED = 21,
    /// The caller cancelled the operation (a backup's progress callback
    /// returned false); nothing is left behind.
    DBMUX_CANCELLED = 22,
    /// The migrations and the database's ledger disagree (a modified or
    /// missing applied migration, a dirty ledger, an out-of-order version),
    /// or a migration file is malformed; the message names each version.
    DBMUX_MIGRATION = 23,
    /// A bug in dbmux (including a caught panic).
    DBMUX_INTERNAL = 99,
}

pub(crate) fn status_of(code: ErrorCode) -> dbmux_status {
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
        ErrorCode::AuthFailed => DBMUX_AUTH_FAILED,
        ErrorCode::DatabaseNotFound => DBMUX_DATABASE_NOT_FOUND,
        ErrorCode::TlsFailed => DBMUX_TLS_FAILED,
        ErrorCode::Cancelled => DBMUX_CANCELLED,
        ErrorCode::Migration => DBMUX_MIGRATION,
        _ => DBMUX_INTERNAL,
    }
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
