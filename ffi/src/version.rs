//! The library's version, features and SQLite version.

use std::ffi::{c_char, CString};

/// Major version of this header and library.
pub const DBMUX_VERSION_MAJOR: u32 = 0;
/// Minor version of this header and library.
pub const DBMUX_VERSION_MINOR: u32 = 1;
/// Patch version of this header and library.
pub const DBMUX_VERSION_PATCH: u32 = 0;

/// A static string naming the library version and the enabled features,
/// e.g. `"dbmux 0.1.0 (sqlite, postgres, tls)"` (`bundled` is named too
/// when SQLite is compiled into the library). Do not free it. Any thread.
#[no_mangle]
pub extern "C" fn dbmux_version() -> *const c_char {
    static VERSION: std::sync::OnceLock<CString> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| CString::new(dbmux::version_with_features()).unwrap_or_default())
        .as_ptr()
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
        std::ptr::null()
    }
}
