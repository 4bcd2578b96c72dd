//! The one error type of dbmux and its stable codes.

use std::error::Error as StdError;
use std::fmt;

use crate::pool::status::PoolStatus;

/// Declares [`ErrorCode`], its list [`ErrorCode::ALL`] and its names from
/// one table, so that a code can never lack a number, a name or a place in
/// the list that the C status names, the Python exception table and the
/// tests in each language are checked against.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $n:literal, $name:literal; )*) => {
        /// A stable classification of every dbmux error.
        ///
        /// The numbers are part of the public contract: the C ABI returns them as
        /// status codes and the Python driver picks its exception class from them.
        /// They are never renumbered; new codes get new numbers.
        ///
        #[doc = include_str!("error.md")]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
        #[serde(rename_all = "snake_case")]
        #[non_exhaustive]
        #[repr(i32)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant = $n, )*
        }

        impl ErrorCode {
            /// Every code, in number order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// A short, stable, snake_case name for the code (used in JSON,
            /// logs, `dbmux_status_name` and the Python exceptions' `name`).
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $name,)*
                }
            }
        }
    };
}

error_codes! {
    /// The URL or connection string could not be understood.
    InvalidUrl = 1, "invalid_url";
    /// A setting (from code, the environment, `.env` or a profile) is out of range.
    InvalidConfig = 2, "invalid_config";
    /// The URL needs a backend that this build does not include, or the
    /// SQLite library loaded in the process is older than dbmux needs
    /// (3.36.0, `dbmux::sqlite::MIN_SQLITE_VERSION`).
    FeatureDisabled = 3, "feature_disabled";
    /// A connection to the database could not be opened.
    ConnectFailed = 4, "connect_failed";
    /// No connection became free within `pool_timeout`.
    PoolTimeout = 5, "pool_timeout";
    /// The manager was shut down.
    ManagerClosed = 6, "manager_closed";
    /// `dbmux::init` was called while the global manager already exists.
    AlreadyInitialized = 7, "already_initialized";
    /// The database rejected the SQL (syntax error, missing table, ...).
    Sql = 8, "sql";
    /// A constraint (UNIQUE, NOT NULL, FOREIGN KEY, CHECK) was violated.
    Constraint = 9, "constraint";
    /// A write was attempted on a read-only database.
    ReadOnly = 10, "read_only";
    /// The database stayed locked by another connection for longer than `busy_timeout`.
    Busy = 11, "busy";
    /// A statement ran longer than `statement_timeout` and was cancelled, or
    /// the server gave no answer within `DB_QUERY_TIMEOUT`.
    StatementTimeout = 12, "statement_timeout";
    /// A value could not be converted to the requested Rust type.
    TypeMismatch = 13, "type_mismatch";
    /// A query that must return a row returned none.
    NoRows = 14, "no_rows";
    /// The wrong number or kind of parameters was bound to a statement.
    InvalidParameter = 15, "invalid_parameter";
    /// A file-system level failure (disk full, I/O error, corrupt file).
    Io = 16, "io";
    /// The API was used out of order or with a missing argument (a NULL
    /// pointer in C, COMMIT without BEGIN, a handle used after release).
    Misuse = 17, "misuse";
    /// COMMIT failed in a way that leaves its outcome unknown (the connection
    /// broke during it): the transaction may or may not have been applied.
    /// Never retried automatically; check and decide.
    CommitUnknown = 18, "commit_unknown";
    /// The server refused the credentials: a wrong password, a role that
    /// does not exist, or no `pg_hba.conf` entry for this client
    /// (SQLSTATE class 28). Not retried: a retry cannot fix it.
    AuthFailed = 19, "auth_failed";
    /// The database does not exist: PostgreSQL's 3D000, or a SQLite file
    /// that is missing while `mode=ro` / `mode=rw` forbids creating it.
    DatabaseNotFound = 20, "database_not_found";
    /// TLS could not be set up: the server's certificate failed
    /// verification, the handshake failed, or the server refused TLS where
    /// `sslmode` requires it.
    TlsFailed = 21, "tls_failed";
    /// The caller cancelled the operation (a backup's progress callback
    /// returned false); nothing it would have written is left behind.
    Cancelled = 22, "cancelled";
    /// The migrations and the database's ledger disagree, or a migration
    /// directory is malformed: an applied migration whose file changed or
    /// is gone, a ledger left dirty by a failed `no-transaction`
    /// migration, a new version below the highest applied one, a file name
    /// that is not a migration's. The message names each version and what
    /// to do. (A migration whose SQL fails keeps the database's code.)
    Migration = 23, "migration";
    /// A bug in dbmux or a dependency (including a caught panic).
    Internal = 99, "internal";
}

impl ErrorCode {
    /// The stable number of this code (the C status value).
    pub const fn as_i32(self) -> i32 {
        self as i32
    }

    /// The code with the stable number `n`, if there is one.
    pub fn from_i32(n: i32) -> Option<ErrorCode> {
        ErrorCode::ALL.iter().copied().find(|c| c.as_i32() == n)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

type BoxError = Box<dyn StdError + Send + Sync + 'static>;
type SharedError = std::sync::Arc<dyn StdError + Send + Sync + 'static>;

/// `e`'s message followed by the messages of its causes, each once: many
/// errors (tokio-postgres', native-tls') already print their direct cause,
/// so a cause whose text the message already holds is not repeated.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn with_causes(e: &(dyn StdError + 'static)) -> String {
    let mut msg = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !text.is_empty() && !msg.contains(&text) {
            msg.push_str(": ");
            msg.push_str(&text);
        }
        cause = c.source();
    }
    msg
}

/// The error type of every fallible dbmux operation.
///
/// Ask it questions instead of matching on its internals: [`Error::code`]
/// gives the stable classification, [`Error::pool_status`] the pool snapshot
/// of a checkout timeout, and [`std::error::Error::source`] the underlying
/// driver error. The message (`Display`) says what went wrong and what to do,
/// and never contains a password.
pub struct Error(Box<Inner>);

/// Boxed so that `Result<T, Error>` stays small on the hot (success) path.
#[derive(Clone)]
struct Inner {
    code: ErrorCode,
    message: String,
    /// Shared, so that one connect error can be handed to every waiter.
    source: Option<SharedError>,
    pool: Option<PoolStatus>,
    /// Set where the error happened when its code alone does not say
    /// whether a retry can help (a host name that does not resolve).
    permanent: bool,
}

/// Cloning is cheap: the underlying driver error is shared.
impl Clone for Error {
    fn clone(&self) -> Error {
        Error(self.0.clone())
    }
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Builds an error from a code and a message (for layers built on dbmux,
    /// such as the C ABI).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Error {
        Error(Box::new(Inner {
            code,
            message: message.into(),
            source: None,
            pool: None,
            permanent: false,
        }))
    }

    /// Marks the error as one that no retry can fix.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn permanent(mut self) -> Error {
        self.0.permanent = true;
        self
    }

    /// Attaches the underlying error.
    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        let boxed: BoxError = source.into();
        self.0.source = Some(SharedError::from(boxed));
        self
    }

    /// Attaches `inner` as the cause, keeping its verdict on retrying.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn caused_by(mut self, inner: Error) -> Error {
        self.0.permanent |= inner.0.permanent;
        self.with_source(inner)
    }

    /// Attaches a pool snapshot.
    pub(crate) fn with_pool(mut self, pool: PoolStatus) -> Error {
        self.0.pool = Some(pool);
        self
    }

    /// An out-of-range setting: names the setting, the bad value and what is allowed.
    pub(crate) fn config(setting: &str, value: impl fmt::Display, allowed: &str) -> Error {
        Error::new(
            ErrorCode::InvalidConfig,
            format!("invalid {setting} = '{value}': {allowed}"),
        )
    }

    /// The stable classification of this error.
    pub fn code(&self) -> ErrorCode {
        self.0.code
    }

    /// The human-readable message (the same text as `Display`).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// For a checkout timeout: the state of the pool when the wait gave up.
    pub fn pool_status(&self) -> Option<&PoolStatus> {
        self.0.pool.as_ref()
    }

    /// True when the error means no connection could be had (a connect
    /// failure of any kind, a pool timeout or a closed manager), as opposed
    /// to a problem with one statement.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self.0.code,
            ErrorCode::ConnectFailed
                | ErrorCode::PoolTimeout
                | ErrorCode::ManagerClosed
                | ErrorCode::AuthFailed
                | ErrorCode::DatabaseNotFound
                | ErrorCode::TlsFailed
        )
    }

    /// The chain of underlying errors, nearest first.
    fn causes(&self) -> impl Iterator<Item = &(dyn StdError + 'static)> {
        std::iter::successors(StdError::source(self), |e: &&(dyn StdError + 'static)| {
            (*e).source()
        })
    }

    /// The PostgreSQL SQLSTATE (e.g. `40001`), when the server sent one.
    pub fn sqlstate(&self) -> Option<String> {
        #[cfg(feature = "postgres")]
        if let Some(pg) = self
            .causes()
            .find_map(|e| e.downcast_ref::<tokio_postgres::Error>())
        {
            return pg.code().map(|c| c.code().to_string());
        }
        None
    }

    /// True for failures that a retry on a fresh connection may cure: a
    /// lost or refused connection (SQLSTATE class 08, 57P01-57P03, a closed
    /// socket, a connect timeout), too many connections or too few server
    /// resources (class 53), a serialization failure or deadlock (40001,
    /// 40P01), and SQLite's BUSY/LOCKED. Never true for syntax, permission
    /// or constraint errors, for [`ErrorCode::CommitUnknown`], nor for the
    /// connect errors no retry can fix: [`ErrorCode::AuthFailed`],
    /// [`ErrorCode::DatabaseNotFound`], [`ErrorCode::TlsFailed`], a host
    /// name that does not resolve, a SQLite file that cannot be opened.
    pub fn is_transient(&self) -> bool {
        if self.0.permanent {
            return false;
        }
        match self.0.code {
            ErrorCode::Busy => true,
            ErrorCode::ConnectFailed => match self.sqlstate() {
                Some(s) => {
                    s.starts_with("08")
                        || s.starts_with("53")
                        || matches!(s.as_str(), "57P01" | "57P02" | "57P03")
                }
                None => !self.is_sqlite_error(),
            },
            _ => false,
        }
    }

    fn is_sqlite_error(&self) -> bool {
        #[cfg(feature = "sqlite")]
        if self.causes().any(|e| e.is::<rusqlite::Error>()) {
            return true;
        }
        false
    }

    /// The same error with `prefix: ` before its message (what was being
    /// done), keeping its code, source and retry verdict.
    pub(crate) fn context(mut self, prefix: impl fmt::Display) -> Error {
        self.0.message = format!("{prefix}: {}", self.0.message);
        self
    }

    /// The same error with `; note` after its message (what it left
    /// behind), keeping its code, source and retry verdict.
    pub(crate) fn note(mut self, note: impl fmt::Display) -> Error {
        self.0.message = format!("{}; {note}", self.0.message);
        self
    }

    /// Re-labels a failed COMMIT whose outcome is unknown.
    pub(crate) fn into_commit_unknown(self) -> Error {
        let msg = format!(
            "the outcome of COMMIT is unknown: {}; the transaction may or may not have been \
             applied, so check before repeating it",
            self.0.message
        );
        let mut e = Error::new(ErrorCode::CommitUnknown, msg);
        e.0.source = Some(std::sync::Arc::new(self));
        e
    }

    /// The SQLite extended result code, when the error came from SQLite.
    #[cfg(feature = "sqlite")]
    pub fn sqlite_code(&self) -> Option<i32> {
        match self
            .0
            .source
            .as_deref()?
            .downcast_ref::<rusqlite::Error>()?
        {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.extended_code),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message is already redacted; the source is a driver error that
        // never sees the URL, so printing both is safe.
        let mut d = f.debug_struct("Error");
        d.field("code", &self.0.code)
            .field("message", &self.0.message);
        if let Some(p) = &self.0.pool {
            d.field("pool", p);
        }
        if let Some(s) = &self.0.source {
            d.field("source", &s.to_string());
        }
        d.finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable() {
        // These numbers are a public contract (C status codes, Python exceptions).
        let table = [
            (ErrorCode::InvalidUrl, 1),
            (ErrorCode::InvalidConfig, 2),
            (ErrorCode::FeatureDisabled, 3),
            (ErrorCode::ConnectFailed, 4),
            (ErrorCode::PoolTimeout, 5),
            (ErrorCode::ManagerClosed, 6),
            (ErrorCode::AlreadyInitialized, 7),
            (ErrorCode::Sql, 8),
            (ErrorCode::Constraint, 9),
            (ErrorCode::ReadOnly, 10),
            (ErrorCode::Busy, 11),
            (ErrorCode::StatementTimeout, 12),
            (ErrorCode::TypeMismatch, 13),
            (ErrorCode::NoRows, 14),
            (ErrorCode::InvalidParameter, 15),
            (ErrorCode::Io, 16),
            (ErrorCode::Misuse, 17),
            (ErrorCode::CommitUnknown, 18),
            (ErrorCode::AuthFailed, 19),
            (ErrorCode::DatabaseNotFound, 20),
            (ErrorCode::TlsFailed, 21),
            (ErrorCode::Cancelled, 22),
            (ErrorCode::Migration, 23),
            (ErrorCode::Internal, 99),
        ];
        for (code, n) in table {
            assert_eq!(code.as_i32(), n, "{code}");
            assert_eq!(ErrorCode::from_i32(n), Some(code));
        }
        // ALL is exactly this list, in number order, with distinct names
        assert_eq!(ErrorCode::ALL, table.map(|(c, _)| c).as_slice());
        let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        names.dedup();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert_eq!(ErrorCode::from_i32(0), None);
        assert_eq!(ErrorCode::from_i32(24), None);
        // the JSON spelling is the name
        for c in ErrorCode::ALL {
            assert_eq!(
                serde_json::to_string(c).unwrap(),
                format!("\"{}\"", c.name())
            );
        }
    }

    #[test]
    fn each_cause_is_told_once() {
        #[derive(Debug)]
        struct Root;
        impl fmt::Display for Root {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("certificate verify failed")
            }
        }
        impl StdError for Root {}
        /// An error that prints its cause itself (as tokio-postgres' does), or not.
        #[derive(Debug)]
        struct Wrap(Root, bool);
        impl fmt::Display for Wrap {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("error performing TLS handshake")?;
                if self.1 {
                    write!(f, ": {}", self.0)?;
                }
                Ok(())
            }
        }
        impl StdError for Wrap {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let expected = "error performing TLS handshake: certificate verify failed";
        assert_eq!(with_causes(&Wrap(Root, true)), expected);
        assert_eq!(with_causes(&Wrap(Root, false)), expected);
    }

    #[test]
    fn config_error_names_setting_value_and_range() {
        let e = Error::config("pool_size", 0, "must be at least 1");
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
        assert_eq!(e.to_string(), "invalid pool_size = '0': must be at least 1");
    }
}
