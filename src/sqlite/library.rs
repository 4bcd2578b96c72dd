//! The SQLite library dbmux runs on: its version, the oldest version dbmux
//! accepts, and the once-per-process check at the first open (version floor,
//! then a look for a second SQLite loaded beside it).

use std::sync::OnceLock;

use crate::error::{Error, ErrorCode, Result};

/// The oldest SQLite library dbmux runs on, as `sqlite3_libversion_number()`
/// counts (3.36.0).
///
/// Why 3.36.0: an in-memory database (`sqlite::memory:`) is shared by the
/// connections of a pool through SQLite's `memdb` VFS, which SQLite added in
/// 3.36.0; before it, only shared-cache mode could share one, and that mode
/// has table-level locks that ignore `busy_timeout`. (rusqlite's own
/// bindings assume 3.34.1, which 3.36.0 covers.)
pub const MIN_SQLITE_VERSION_NUMBER: i32 = 3_036_000;

/// [`MIN_SQLITE_VERSION_NUMBER`] as text.
pub const MIN_SQLITE_VERSION: &str = "3.36.0";

/// The version of the SQLite library dbmux runs on in this process
/// (`sqlite3_libversion()`), for example `"3.40.1"`.
///
/// With the `bundled` feature it is the copy compiled into dbmux; without
/// it, the system `libsqlite3` that the process loaded (and that Python's
/// `sqlite3` module or a C program's own SQLite calls share).
pub fn sqlite_version() -> &'static str {
    rusqlite::version()
}

/// Refuses a SQLite library older than [`MIN_SQLITE_VERSION`]; `number` and
/// `text` are what the library reports (`sqlite3_libversion_number()` and
/// `sqlite3_libversion()`).
///
/// # Errors
/// [`ErrorCode::FeatureDisabled`], naming both versions and what to do.
pub(crate) fn check_version(number: i32, text: &str) -> Result<()> {
    if number >= MIN_SQLITE_VERSION_NUMBER {
        return Ok(());
    }
    Err(Error::new(
        ErrorCode::FeatureDisabled,
        format!(
            "dbmux needs SQLite {MIN_SQLITE_VERSION} or newer, but the SQLite library loaded in \
             this process is {text} (dbmux shares in-memory databases through the memdb VFS, \
             added in SQLite 3.36.0); upgrade the system libsqlite3, or build dbmux with the \
             `bundled` feature if nothing else in the process uses SQLite"
        ),
    ))
}

/// The check every SQLite open goes through. The work runs once per process,
/// at the first open: the version floor, then (where the platform lets dbmux
/// see the loaded objects) one WARN if a second SQLite library is loaded.
///
/// # Errors
/// The version refusal of [`check_version`], on every open.
pub(crate) fn check_library() -> Result<()> {
    static REFUSED: OnceLock<Option<String>> = OnceLock::new();
    let refused = REFUSED.get_or_init(|| {
        if let Err(e) = check_version(rusqlite::version_number(), rusqlite::version()) {
            log::error!(target: "dbmux::sqlite", "{}", e.message());
            return Some(e.message().to_string());
        }
        #[cfg(all(target_os = "linux", not(target_arch = "wasm32")))]
        super::copies::warn_if_several();
        None
    });
    match refused {
        None => Ok(()),
        Some(m) => Err(Error::new(ErrorCode::FeatureDisabled, m.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_older_sqlite_is_refused_naming_both_versions() {
        let e = check_version(3_035_005, "3.35.5").unwrap_err();
        assert_eq!(e.code(), ErrorCode::FeatureDisabled);
        let m = e.message();
        assert!(m.contains("3.35.5"), "{m}");
        assert!(m.contains("3.36.0 or newer"), "{m}");
        assert!(m.contains("memdb"), "{m}");
        assert!(m.contains("`bundled`"), "{m}");
    }

    #[test]
    fn the_floor_itself_and_newer_are_accepted() {
        check_version(3_036_000, "3.36.0").unwrap();
        check_version(3_053_000, "3.53.0").unwrap();
    }

    #[test]
    fn the_library_in_use_passes_and_reports_its_version() {
        check_library().unwrap();
        let v = sqlite_version();
        assert_eq!(v, rusqlite::version());
        let parts: Vec<u32> = v.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts[0], 3, "{v}");
        assert!(parts[1] >= 36, "{v}");
    }
}
