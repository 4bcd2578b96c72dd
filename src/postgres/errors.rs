//! PostgreSQL errors to dbmux errors, by structure: the server's SQLSTATE, a
//! closed session or an I/O error, a typed bind error, or the call site
//! (an undecodable value is [`decode_error`]), never by the message's words.

use super::values::BindError;
use crate::error::{Error, ErrorCode};

/// A value of the result that could not be read (`Row::try_get` failed):
/// always [`ErrorCode::TypeMismatch`], decided here where it happens.
#[cold]
pub(crate) fn decode_error(e: tokio_postgres::Error) -> Error {
    Error::new(ErrorCode::TypeMismatch, crate::error::with_causes(&e)).with_source(e)
}

/// Maps a `postgres::Error` to a dbmux error with a stable code; the message
/// carries the server's message, detail, hint and SQLSTATE.
#[cold]
#[inline(never)]
pub(crate) fn classify(e: tokio_postgres::Error) -> Error {
    use tokio_postgres::error::SqlState;
    let Some(db) = e.as_db_error() else {
        let causes = || std::iter::successors(std::error::Error::source(&e), |x| (*x).source());
        // By structure, never by the message's words: a closed session or an
        // I/O error is the connection; a value dbmux could not bind is the
        // caller's parameter. (Connect failures are classified where they
        // happen, in PgManager::connect, and undecodable values where they
        // are read: see decode_error.)
        let code = if is_tls_error(&e) {
            ErrorCode::TlsFailed
        } else if e.is_closed() || causes().any(|x| x.is::<std::io::Error>()) {
            ErrorCode::ConnectFailed
        } else if causes().any(|x| x.is::<BindError>()) {
            ErrorCode::InvalidParameter
        } else {
            ErrorCode::Sql
        };
        return Error::new(code, crate::error::with_causes(&e)).with_source(e);
    };
    let state = db.code().code();
    let class = &state[..2];
    let code = match class {
        "23" => ErrorCode::Constraint,
        "22" => ErrorCode::TypeMismatch,
        "28" => ErrorCode::AuthFailed,
        "3D" => ErrorCode::DatabaseNotFound,
        "08" | "53" | "57" if *db.code() != SqlState::QUERY_CANCELED => ErrorCode::ConnectFailed,
        _ if *db.code() == SqlState::QUERY_CANCELED => ErrorCode::StatementTimeout,
        _ if *db.code() == SqlState::READ_ONLY_SQL_TRANSACTION => ErrorCode::ReadOnly,
        _ if *db.code() == SqlState::T_R_SERIALIZATION_FAILURE
            || *db.code() == SqlState::T_R_DEADLOCK_DETECTED
            || *db.code() == SqlState::LOCK_NOT_AVAILABLE =>
        {
            ErrorCode::Busy
        }
        _ => ErrorCode::Sql,
    };
    let mut msg = format!("{}: {}", db.severity(), db.message());
    if let Some(d) = db.detail() {
        msg.push_str(&format!(" (detail: {d})"));
    }
    if let Some(h) = db.hint() {
        msg.push_str(&format!(" (hint: {h})"));
    }
    msg.push_str(&format!(" [SQLSTATE {state}]"));
    if code == ErrorCode::StatementTimeout {
        msg.push_str("; the statement ran longer than statement_timeout (DB_STATEMENT_TIMEOUT)");
    }
    Error::new(code, msg).with_source(e)
}

/// Whether TLS failed: the handshake or the certificate check (a native-tls
/// error among the causes).
fn is_tls_error(e: &tokio_postgres::Error) -> bool {
    #[cfg(feature = "tls")]
    {
        std::iter::successors(std::error::Error::source(e), |x| (*x).source())
            .any(|x| x.is::<native_tls::Error>())
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = e;
        false
    }
}
