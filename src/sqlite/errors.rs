//! SQLite's errors as dbmux errors: a stable code from SQLite's result
//! code, and a message that says what to do.

use rusqlite::ffi;

use crate::error::{Error, ErrorCode};

impl From<rusqlite::Error> for Error {
    #[cold]
    fn from(e: rusqlite::Error) -> Error {
        classify(e)
    }
}

/// Maps a rusqlite error to a dbmux error with a stable code and a message
/// that says what to do.
#[cold]
#[inline(never)]
pub(crate) fn classify(e: rusqlite::Error) -> Error {
    use rusqlite::Error as E;
    let (code, msg) = match &e {
        E::SqliteFailure(f, m) => {
            let text = m.clone().unwrap_or_else(|| f.to_string());
            match f.code {
                ffi::ErrorCode::ConstraintViolation => (
                    ErrorCode::Constraint,
                    format!("constraint violated: {text}"),
                ),
                ffi::ErrorCode::ReadOnly => (
                    ErrorCode::ReadOnly,
                    format!(
                        "{text}: the database is read-only (opened with mode=ro or \
                         immutable=1, or the file is not writable); open it read-write to change it"
                    ),
                ),
                ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => (
                    ErrorCode::Busy,
                    format!(
                        "{text}: another connection held the lock for longer than busy_timeout; \
                         keep write transactions short or raise busy_timeout"
                    ),
                ),
                ffi::ErrorCode::OperationInterrupted => (
                    ErrorCode::StatementTimeout,
                    "the statement was cancelled because it ran longer than statement_timeout \
                     (DB_STATEMENT_TIMEOUT or DB_QUERY_TIMEOUT)"
                        .to_string(),
                ),
                ffi::ErrorCode::CannotOpen => (ErrorCode::ConnectFailed, text),
                ffi::ErrorCode::SystemIoFailure
                | ffi::ErrorCode::DiskFull
                | ffi::ErrorCode::DatabaseCorrupt
                | ffi::ErrorCode::NotADatabase => (ErrorCode::Io, text),
                ffi::ErrorCode::TypeMismatch => (ErrorCode::TypeMismatch, text),
                _ => (ErrorCode::Sql, text),
            }
        }
        E::InvalidParameterCount(given, expected) => (
            ErrorCode::InvalidParameter,
            format!("the statement takes {expected} parameter(s) but {given} were given"),
        ),
        E::InvalidParameterName(n) => (
            ErrorCode::InvalidParameter,
            format!("unknown parameter name {n}"),
        ),
        E::QueryReturnedNoRows => (ErrorCode::NoRows, "the query returned no rows".to_string()),
        E::MultipleStatement => (
            ErrorCode::Sql,
            "the SQL text holds more than one statement; run scripts with execute_batch".into(),
        ),
        E::InvalidColumnType(..)
        | E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..) => (ErrorCode::TypeMismatch, e.to_string()),
        E::Utf8Error(..) => (ErrorCode::TypeMismatch, e.to_string()),
        E::NulError(_) => (
            ErrorCode::InvalidParameter,
            "the SQL text contains a NUL byte".into(),
        ),
        _ => (ErrorCode::Sql, e.to_string()),
    };
    Error::new(code, msg).with_source(e)
}
