//! SQLite open options and per-connection pragmas, as given in a URL's query
//! string or set in code.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};
use crate::url::percent::percent_decode;

/// How the database file is opened (`mode=` in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenMode {
    /// Read-only: every write fails with a read-only error.
    Ro,
    /// Read-write; the file must already exist.
    Rw,
    /// Read-write, creating the file if needed (the default).
    Rwc,
    /// An in-memory database, private to the manager.
    Memory,
}

/// SQLite's shared-cache setting (`cache=` in the URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Connections share one page cache (discouraged by SQLite; table-level locks).
    Shared,
    /// Each connection has its own cache (the default).
    Private,
}

/// `PRAGMA journal_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JournalMode {
    /// Write-ahead log: readers never block the writer (dbmux's default for files).
    Wal,
    /// Rollback journal, deleted after each transaction (SQLite's default).
    Delete,
    /// Rollback journal, truncated after each transaction.
    Truncate,
    /// Rollback journal, header zeroed after each transaction.
    Persist,
    /// Journal in memory (a crash may corrupt the file).
    Memory,
    /// No journal (a crash may corrupt the file; ROLLBACK is undefined).
    Off,
}

impl JournalMode {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalMode::Wal => "WAL",
            JournalMode::Delete => "DELETE",
            JournalMode::Truncate => "TRUNCATE",
            JournalMode::Persist => "PERSIST",
            JournalMode::Memory => "MEMORY",
            JournalMode::Off => "OFF",
        }
    }
}

/// `PRAGMA synchronous`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// No fsync at all.
    Off,
    /// In WAL mode: durable except for the last transactions before a power loss;
    /// never corrupt (dbmux's default).
    Normal,
    /// fsync at every commit (SQLite's default).
    Full,
    /// Like FULL, plus the directory after a journal is deleted.
    Extra,
}

impl Synchronous {
    /// The pragma value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

/// Options of a SQLite database: how it is opened and which pragmas every new
/// connection gets. `None` means "dbmux's default" (see [`SqliteOptions::resolved`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct SqliteOptions {
    /// `mode=ro|rw|rwc|memory`. Defaults to `rwc`.
    pub mode: Option<OpenMode>,
    /// `cache=shared|private`. Defaults to private.
    pub cache: Option<CacheMode>,
    /// `vfs=<name>`: a registered SQLite VFS. Defaults to the platform's.
    pub vfs: Option<String>,
    /// `immutable=1`: the file cannot change (read-only, no locking).
    pub immutable: bool,
    /// `busy_timeout=<ms>`. Defaults to 5000 ms.
    #[serde(serialize_with = "ser_opt_ms")]
    pub busy_timeout: Option<Duration>,
    /// `journal_mode=...`. Defaults to WAL for writable files.
    pub journal_mode: Option<JournalMode>,
    /// `synchronous=...`. Defaults to NORMAL.
    pub synchronous: Option<Synchronous>,
    /// `foreign_keys=on|off`. Defaults to on.
    pub foreign_keys: Option<bool>,
}

fn ser_opt_ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

/// The query parameters a SQLite URL may carry.
pub const SQLITE_PARAMS: &str =
    "mode, cache, vfs, immutable, busy_timeout, journal_mode, synchronous, foreign_keys";

fn bad_param(key: &str, value: &str, allowed: &str) -> Error {
    Error::new(
        ErrorCode::InvalidUrl,
        format!("invalid SQLite URL parameter {key}='{value}': allowed values are {allowed}"),
    )
}

fn parse_bool(key: &str, v: &str) -> Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "on" | "true" | "yes" => Ok(true),
        "0" | "off" | "false" | "no" => Ok(false),
        _ => Err(bad_param(key, v, "on/off, true/false, yes/no or 1/0")),
    }
}

impl SqliteOptions {
    /// Parses a URL query string (`a=1&b=2`, without the `?`).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidUrl`] for an unknown parameter, a parameter given
    /// twice, a missing `=`, a bad `%` escape or a value out of range.
    pub fn from_query(query: &str) -> Result<SqliteOptions> {
        let mut o = SqliteOptions::default();
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(Error::new(
                    ErrorCode::InvalidUrl,
                    format!("SQLite URL parameter '{pair}' has no value; write {pair}=<value>"),
                ));
            };
            let key = percent_decode(k, "query parameter name")?.to_ascii_lowercase();
            let v = percent_decode(v, "query parameter value")?;
            if seen.contains(&key) {
                return Err(Error::new(
                    ErrorCode::InvalidUrl,
                    format!("SQLite URL parameter '{key}' is given twice; keep one"),
                ));
            }
            seen.push(key.clone());
            let lv = v.to_ascii_lowercase();
            match key.as_str() {
                "mode" => {
                    o.mode = Some(match lv.as_str() {
                        "ro" => OpenMode::Ro,
                        "rw" => OpenMode::Rw,
                        "rwc" => OpenMode::Rwc,
                        "memory" => OpenMode::Memory,
                        _ => return Err(bad_param("mode", &v, "ro, rw, rwc, memory")),
                    })
                }
                "cache" => {
                    o.cache = Some(match lv.as_str() {
                        "shared" => CacheMode::Shared,
                        "private" => CacheMode::Private,
                        _ => return Err(bad_param("cache", &v, "shared, private")),
                    })
                }
                "vfs" => {
                    if v.is_empty() {
                        return Err(bad_param("vfs", &v, "the name of a registered SQLite VFS"));
                    }
                    o.vfs = Some(v)
                }
                "immutable" => o.immutable = parse_bool("immutable", &v)?,
                "busy_timeout" => {
                    let ms: u64 = v.parse().map_err(|_| {
                        bad_param(
                            "busy_timeout",
                            &v,
                            "a whole number of milliseconds, 0 or more",
                        )
                    })?;
                    if ms > i32::MAX as u64 {
                        return Err(bad_param("busy_timeout", &v, "at most 2147483647 ms"));
                    }
                    o.busy_timeout = Some(Duration::from_millis(ms));
                }
                "journal_mode" => {
                    o.journal_mode = Some(match lv.as_str() {
                        "wal" => JournalMode::Wal,
                        "delete" => JournalMode::Delete,
                        "truncate" => JournalMode::Truncate,
                        "persist" => JournalMode::Persist,
                        "memory" => JournalMode::Memory,
                        "off" => JournalMode::Off,
                        _ => {
                            return Err(bad_param(
                                "journal_mode",
                                &v,
                                "wal, delete, truncate, persist, memory, off",
                            ))
                        }
                    })
                }
                "synchronous" => {
                    o.synchronous = Some(match lv.as_str() {
                        "off" | "0" => Synchronous::Off,
                        "normal" | "1" => Synchronous::Normal,
                        "full" | "2" => Synchronous::Full,
                        "extra" | "3" => Synchronous::Extra,
                        _ => return Err(bad_param("synchronous", &v, "off, normal, full, extra")),
                    })
                }
                "foreign_keys" => o.foreign_keys = Some(parse_bool("foreign_keys", &v)?),
                other => {
                    return Err(Error::new(
                        ErrorCode::InvalidUrl,
                        format!(
                            "unknown SQLite URL parameter '{other}'; supported parameters: \
                             {SQLITE_PARAMS}"
                        ),
                    ))
                }
            }
        }
        Ok(o)
    }

    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub(crate) fn overlay(&self, over: &SqliteOptions) -> SqliteOptions {
        SqliteOptions {
            mode: over.mode.or(self.mode),
            cache: over.cache.or(self.cache),
            vfs: over.vfs.clone().or_else(|| self.vfs.clone()),
            immutable: over.immutable || self.immutable,
            busy_timeout: over.busy_timeout.or(self.busy_timeout),
            journal_mode: over.journal_mode.or(self.journal_mode),
            synchronous: over.synchronous.or(self.synchronous),
            foreign_keys: over.foreign_keys.or(self.foreign_keys),
        }
    }

    /// The effective pragmas for a connection: explicit values, else dbmux's
    /// defaults (`busy_timeout=5000`, `journal_mode=WAL` for writable files,
    /// `synchronous=NORMAL`, `foreign_keys=ON`). On wasm32 the journal mode
    /// is left as it is (DELETE): the VFSs there have no shared memory, so
    /// WAL is not available.
    pub fn resolved(&self, memory: bool) -> ResolvedPragmas {
        let writable_file = !memory && !self.immutable && !matches!(self.mode, Some(OpenMode::Ro));
        let wal_by_default = writable_file && cfg!(not(target_arch = "wasm32"));
        ResolvedPragmas {
            busy_timeout: self.busy_timeout.unwrap_or(Duration::from_millis(5000)),
            journal_mode: self.journal_mode.or(if wal_by_default {
                Some(JournalMode::Wal)
            } else {
                None
            }),
            synchronous: self.synchronous.unwrap_or(Synchronous::Normal),
            foreign_keys: self.foreign_keys.unwrap_or(true),
        }
    }
}

/// The pragmas every new connection actually gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ResolvedPragmas {
    /// How long a statement waits for a lock before failing with BUSY.
    #[serde(serialize_with = "ser_ms")]
    pub busy_timeout: Duration,
    /// `None` leaves the journal mode as it is (in-memory and read-only databases).
    pub journal_mode: Option<JournalMode>,
    /// The `synchronous` level.
    pub synchronous: Synchronous,
    /// Whether foreign keys are enforced.
    pub foreign_keys: bool,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl fmt::Display for ResolvedPragmas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "busy_timeout={}ms journal_mode={} synchronous={} foreign_keys={}",
            self.busy_timeout.as_millis(),
            self.journal_mode
                .map(|j| j.as_str())
                .unwrap_or("(unchanged)"),
            self.synchronous.as_str(),
            if self.foreign_keys { "ON" } else { "OFF" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_safe_for_concurrency() {
        let p = SqliteOptions::default().resolved(false);
        assert_eq!(p.busy_timeout, Duration::from_millis(5000));
        assert_eq!(p.journal_mode, Some(JournalMode::Wal));
        assert_eq!(p.synchronous, Synchronous::Normal);
        assert!(p.foreign_keys);
        // no WAL for memory or read-only
        assert_eq!(SqliteOptions::default().resolved(true).journal_mode, None);
        let ro = SqliteOptions::from_query("mode=ro").unwrap();
        assert_eq!(ro.resolved(false).journal_mode, None);
    }

    #[test]
    fn overlay_prefers_the_upper_layer() {
        let url = SqliteOptions::from_query("busy_timeout=100&synchronous=full").unwrap();
        let code = SqliteOptions {
            busy_timeout: Some(Duration::from_millis(7)),
            ..Default::default()
        };
        let merged = url.overlay(&code);
        assert_eq!(merged.busy_timeout, Some(Duration::from_millis(7)));
        assert_eq!(merged.synchronous, Some(Synchronous::Full));
    }
}
