#![doc = include_str!("README.md")]

use std::fmt;
use std::path::{Path, PathBuf};

mod lexical;
mod percent;
pub mod postgres;
mod redact;
pub mod sqlite;

use lexical::{split_scheme, LIBPQ_KEYWORDS};
use percent::percent_decode;
pub use redact::redact;

use crate::error::{Error, ErrorCode, Result};
#[cfg(not(target_arch = "wasm32"))]
use postgres::parse_postgres;
use postgres::PgSettings;
use sqlite::SqliteOptions;

/// The database engine a URL points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// SQLite, embedded in the process.
    Sqlite,
    /// A PostgreSQL server. Serialised as `"postgresql"`, the spelling of
    /// every JSON document ([`Backend::name`]).
    #[serde(rename = "postgresql")]
    Postgres,
}

impl Backend {
    /// The lowercase name used in JSON and logs (`sqlite`, `postgresql`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgresql",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a SQLite database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SqliteLocation {
    /// A private in-memory database, shared by all connections of one manager.
    Memory,
    /// A database file. Relative paths are relative to the current directory
    /// at the time the manager opens its first connection.
    File(PathBuf),
}

/// A parsed SQLite URL: the location plus the options from its query string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteTarget {
    /// The file or `:memory:`.
    pub location: SqliteLocation,
    /// Options from the URL's query string (`mode`, `cache`, pragmas, ...).
    pub options: SqliteOptions,
}

impl SqliteTarget {
    /// The absolute path of the file, or `:memory:`, for logs and JSON.
    pub fn display_path(&self) -> String {
        match &self.location {
            SqliteLocation::Memory => ":memory:".to_string(),
            SqliteLocation::File(p) => redact(&absolute(p).display().to_string()),
        }
    }

    /// True for an in-memory database (`:memory:` or `mode=memory`).
    pub fn is_memory(&self) -> bool {
        self.location == SqliteLocation::Memory
            || self.options.mode == Some(sqlite::OpenMode::Memory)
    }
}

/// A PostgreSQL connection string, normalised the way libpq reads it.
/// Its `Display` and `Debug` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresTarget {
    settings: Box<PgSettings>,
}

impl PostgresTarget {
    /// The normalised settings (host list, ports, sslmode, ...).
    pub fn settings(&self) -> &PgSettings {
        &self.settings
    }
}

impl fmt::Display for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.settings.fmt(f)
    }
}

impl fmt::Debug for PostgresTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgresTarget({:?})", self.settings)
    }
}

/// A parsed database URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Target {
    /// A SQLite database.
    Sqlite(SqliteTarget),
    /// A PostgreSQL server.
    Postgres(PostgresTarget),
}

impl Target {
    /// Which backend serves this target.
    pub fn backend(&self) -> Backend {
        match self {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }
}

impl Target {
    /// How the URL was understood, as JSON: for PostgreSQL libpq's keyword
    /// names (`host`, `port`, `dbname`, `user`, `sslmode`, ...; the password
    /// as `***`), for SQLite the resolved path, open options and the pragmas
    /// every connection will get.
    pub fn describe(&self) -> serde_json::Value {
        match self {
            Target::Sqlite(t) => {
                let pragmas = t.options.resolved(t.is_memory());
                serde_json::json!({
                    "backend": "sqlite",
                    "path": t.display_path(),
                    "memory": t.is_memory(),
                    "mode": t.options.mode,
                    "cache": t.options.cache,
                    "vfs": t.options.vfs,
                    "immutable": t.options.immutable,
                    "busy_timeout": pragmas.busy_timeout.as_millis() as u64,
                    "journal_mode": pragmas.journal_mode.map(|j| j.as_str().to_ascii_lowercase()),
                    "synchronous": pragmas.synchronous.as_str().to_ascii_lowercase(),
                    "foreign_keys": pragmas.foreign_keys,
                })
            }
            Target::Postgres(p) => p.settings.describe(),
        }
    }
}

impl fmt::Display for Target {
    /// The redacted form: the SQLite path, or the PostgreSQL URL with `***`
    /// in place of the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Sqlite(t) => write!(f, "sqlite:{}", t.display_path()),
            Target::Postgres(t) => t.fmt(f),
        }
    }
}

/// The forms a URL may take, quoted in every "unsupported URL" error.
pub const SUPPORTED_FORMS: &str =
    "supported forms: sqlite:///relative.db, sqlite:////absolute.db, \
sqlite://, sqlite::memory:, sqlite:relative.db, sqlite+<driver>:///..., file:path.db?mode=ro, \
a plain path (./app.db, /abs/app.db, data.sqlite3), :memory:, \
postgres://user@host/db, postgresql+<driver>://..., or a libpq 'host=... dbname=...' string";

/// File extensions that make a bare name (no `/`) count as a SQLite path.
const SQLITE_EXTENSIONS: &[&str] = &["db", "sqlite", "sqlite3", "db3", "s3db", "sl3"];

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidUrl, msg)
}

/// A PostgreSQL URL or key=value string, parsed with libpq's rules.
#[cfg(not(target_arch = "wasm32"))]
fn postgres_target(s: &str) -> Result<Target> {
    Ok(Target::Postgres(PostgresTarget {
        settings: Box::new(parse_postgres(s)?),
    }))
}

/// On wasm32 there is no PostgreSQL backend (no TCP sockets), so the libpq
/// parser is left out of the module (about 20 KB) and the URL is refused
/// here, without repeating it.
#[cfg(target_arch = "wasm32")]
fn postgres_target(_: &str) -> Result<Target> {
    Err(Error::new(
        ErrorCode::FeatureDisabled,
        "a PostgreSQL URL, but the wasm32 build of dbmux serves SQLite only (a browser or a wasm \
         instance cannot open the TCP connection a server needs): use a sqlite: URL",
    ))
}

/// Parses a database URL into a [`Target`].
///
/// # Errors
/// [`ErrorCode::InvalidUrl`] when the string is empty, uses an unknown scheme,
/// has a bad `%` escape or an unknown or invalid query parameter. The message
/// lists the supported forms and never contains the password.
pub fn parse_url(url: &str) -> Result<Target> {
    let s = url.trim();
    if s.is_empty() {
        return Err(invalid(format!(
            "the database URL is empty; set DATABASE_URL or pass a URL ({SUPPORTED_FORMS})"
        )));
    }
    if s.contains('\0') {
        return Err(invalid("the database URL contains a NUL byte"));
    }
    if s == ":memory:" {
        return Ok(Target::Sqlite(SqliteTarget {
            location: SqliteLocation::Memory,
            options: SqliteOptions::default(),
        }));
    }
    if let Some((scheme, rest)) = split_scheme(s) {
        let base = scheme.split('+').next().unwrap_or_default();
        return match base {
            "sqlite" | "sqlite3" => parse_sqlite_url(rest).map(Target::Sqlite),
            "file" => parse_file_uri(rest).map(Target::Sqlite),
            "postgres" | "postgresql" => postgres_target(s),
            _ => Err(invalid(format!(
                "unsupported database URL scheme '{}:'; {SUPPORTED_FORMS}",
                scheme
            ))),
        };
    }
    if let Some(key) = libpq_leading_key(s) {
        return if LIBPQ_KEYWORDS.contains(&key.as_str()) {
            postgres_target(s)
        } else {
            Err(invalid(format!(
                "'{key}' is not a libpq connection keyword, so this is not a PostgreSQL \
                 key=value string; {SUPPORTED_FORMS}"
            )))
        };
    }
    if userinfo_like(s) {
        return Err(invalid(format!(
            "'{}' looks like a URL without its scheme; write postgresql://{} for a \
             PostgreSQL server; {SUPPORTED_FORMS}",
            redact(s),
            redact(s)
        )));
    }
    if looks_like_path(s) {
        return Ok(Target::Sqlite(SqliteTarget {
            location: SqliteLocation::File(PathBuf::from(s)),
            options: SqliteOptions::default(),
        }));
    }
    Err(invalid(format!(
        "'{}' is neither a URL nor a recognisable SQLite path; to use a file with another \
         name write ./{} or sqlite:///{}; {SUPPORTED_FORMS}",
        redact(s),
        redact(s),
        redact(s)
    )))
}

/// `keyword` when `s` starts with `keyword =` (libpq key/value syntax).
fn libpq_leading_key(s: &str) -> Option<String> {
    let t = s.trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(t.len());
    if end == 0 {
        return None;
    }
    let after = t[end..].trim_start();
    if after.starts_with('=') && !t[..end].contains('.') {
        Some(t[..end].to_ascii_lowercase())
    } else {
        None
    }
}

/// `user:password@host...` without a scheme.
fn userinfo_like(s: &str) -> bool {
    match s.find('@') {
        Some(at) => s[..at].contains(':') && !s[..at].contains('/'),
        None => false,
    }
}

fn looks_like_path(s: &str) -> bool {
    if s.contains('/') || s.contains('\\') {
        return true;
    }
    match Path::new(s).extension().and_then(|e| e.to_str()) {
        Some(ext) => SQLITE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()),
        None => false,
    }
}

/// Parses what follows `sqlite:` / `sqlite+driver:`.
fn parse_sqlite_url(rest: &str) -> Result<SqliteTarget> {
    let (path_part, options) = split_query(rest)?;
    let path = if let Some(after) = path_part.strip_prefix("//") {
        // SQLAlchemy form: sqlite://<host>/<path>. The host must be empty.
        match after.find('/') {
            Some(0) => {
                let p = &after[1..];
                if p.is_empty() {
                    return Err(invalid(
                        "'sqlite:///' names no file; write sqlite:///path.db for a file \
                         or sqlite:// for an in-memory database",
                    ));
                }
                p.to_string()
            }
            _ if after.is_empty() => ":memory:".to_string(), // sqlite://
            _ => {
                if after.contains('@') {
                    return Err(invalid(
                        "SQLite URLs take no user name or password; remove the 'user:***@' part",
                    ));
                }
                // sqlx form: sqlite://rel.db (relative, host part is the path)
                after.to_string()
            }
        }
    } else if path_part.is_empty() {
        ":memory:".to_string() // sqlite: alone
    } else {
        path_part.to_string() // sqlx form: sqlite:rel.db, sqlite::memory:
    };
    target(&path, options)
}

/// Parses what follows `file:` (an SQLite URI filename).
fn parse_file_uri(rest: &str) -> Result<SqliteTarget> {
    let (path_part, options) = split_query(rest)?;
    let path = if let Some(after) = path_part.strip_prefix("//") {
        // file://[localhost]/abs/path
        let (host, p) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
            return Err(invalid(format!(
                "file: URIs may only name the local host, got '{host}'; \
                 write file:///abs/path.db or file:rel.db"
            )));
        }
        p.to_string()
    } else {
        path_part.to_string()
    };
    if path.is_empty() {
        return Err(invalid(
            "the file: URI names no file; write file:path.db or file:///abs/path.db",
        ));
    }
    target(&path, options)
}

/// Splits `path?query` and parses the query's SQLite options.
fn split_query(rest: &str) -> Result<(&str, SqliteOptions)> {
    match rest.split_once('?') {
        Some((p, q)) => Ok((p, SqliteOptions::from_query(q)?)),
        None => Ok((rest, SqliteOptions::default())),
    }
}

/// The target for a still percent-encoded path (`:memory:` is in-memory).
fn target(path: &str, options: SqliteOptions) -> Result<SqliteTarget> {
    let decoded = percent_decode(path, "path")?;
    let location = if decoded == ":memory:" {
        SqliteLocation::Memory
    } else {
        SqliteLocation::File(PathBuf::from(decoded))
    };
    Ok(SqliteTarget { location, options })
}

/// `p` made absolute against the current directory (without touching the
/// file system beyond reading the current directory).
pub(crate) fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_serialises_as_its_json_name() {
        for b in [Backend::Sqlite, Backend::Postgres] {
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(json, format!("\"{}\"", b.name()));
        }
        assert_eq!(
            serde_json::to_string(&Backend::Postgres).unwrap(),
            "\"postgresql\""
        );
    }

    fn sqlite_path(url: &str) -> SqliteLocation {
        match parse_url(url).unwrap() {
            Target::Sqlite(t) => t.location,
            other => panic!("{url} parsed as {other:?}"),
        }
    }

    #[test]
    fn sqlalchemy_slash_rule() {
        assert_eq!(
            sqlite_path("sqlite:///rel/path.db"),
            SqliteLocation::File("rel/path.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite:////abs/path.db"),
            SqliteLocation::File("/abs/path.db".into())
        );
        assert_eq!(sqlite_path("sqlite://"), SqliteLocation::Memory);
        assert_eq!(sqlite_path("sqlite:///:memory:"), SqliteLocation::Memory);
        assert_eq!(sqlite_path("sqlite::memory:"), SqliteLocation::Memory);
        assert_eq!(
            sqlite_path("sqlite:rel.db"),
            SqliteLocation::File("rel.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite://rel.db"),
            SqliteLocation::File("rel.db".into())
        );
        assert_eq!(
            sqlite_path("sqlite+aiosqlite:///app.db"),
            SqliteLocation::File("app.db".into())
        );
    }

    #[test]
    fn redaction() {
        let cases = [
            ("postgres://u:secret@h/db", "postgres://u:***@h/db"),
            ("postgres://u@h/db", "postgres://u@h/db"),
            (
                "postgresql://u:p%40ss@h:5432/db?x=1",
                "postgresql://u:***@h:5432/db?x=1",
            ),
            (
                "postgres://h/db?password=secret&x=1",
                "postgres://h/db?password=***&x=1",
            ),
            (
                "host=h password=secret dbname=d",
                "host=h password=*** dbname=d",
            ),
            (
                "host=h password = 'se cret' dbname=d",
                "host=h password = *** dbname=d",
            ),
            (
                "host=h password='a\\'b' user=x",
                "host=h password=*** user=x",
            ),
            ("sqlite:///x.db", "sqlite:///x.db"),
            ("postgres:/u:pw@h/db", "postgres:/u:***@h/db"),
            ("u:pw@h/db", "u:***@h/db"),
            ("app:pw@h/db", "app:***@h/db"),
            ("postgres://h@x/db", "postgres://h@x/db"),
            ("postgres://u:p@ss:w@rd@h/db", "postgres://u:***@h/db"),
            ("host=h password=se@cret", "host=h password=***"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input), want, "{input}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b", "path").unwrap(), "a b");
        assert!(percent_decode("a%2", "path").is_err());
        assert!(percent_decode("a%zz", "path").is_err());
        assert!(percent_decode("a%00", "path").is_err());
        assert!(percent_decode("%ff", "path").is_err());
    }
}
