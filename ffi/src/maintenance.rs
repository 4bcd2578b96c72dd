//! SQLite maintenance: online backup and restore.

use std::ffi::{c_char, c_void};

use super::*;

/// A backup's progress callback: the pages copied so far and the pages in
/// the snapshot, and the `user_data` given to `dbmux_backup`. Return true to
/// go on, false to cancel (the backup then fails with DBMUX_CANCELLED and
/// leaves nothing behind). Called on the thread that called `dbmux_backup`.
#[allow(non_camel_case_types)]
pub type dbmux_progress_fn =
    Option<unsafe extern "C" fn(pages_done: u64, pages_total: u64, user_data: *mut c_void) -> bool>;

/// `dbmux_backup` flag: compact the copy (VACUUM INTO); progress is then
/// reported at the start and the end only.
pub const DBMUX_BACKUP_COMPACT: u32 = 1;
/// `dbmux_backup` flag: replace `dest` if it exists (atomically).
pub const DBMUX_BACKUP_OVERWRITE: u32 = 2;

/// Copies the live SQLite database of `mgr` to the file `dest`
/// (`Manager::backup_to`): one consistent snapshot while writers go on,
/// written beside `dest` and renamed over it, so `dest` is never a partial
/// file. `flags`: DBMUX_BACKUP_COMPACT, DBMUX_BACKUP_OVERWRITE (or 0).
/// `progress` (may be NULL) is called after each step and can cancel.
/// `report_json` (may be NULL) receives what was written as JSON (`path`,
/// `bytes`, `pages`, `compact`, `duration_ms`); free it with
/// `dbmux_string_free`.
/// Errors: DBMUX_INVALID_PARAMETER when `dest` exists without
/// DBMUX_BACKUP_OVERWRITE, or for unknown flags; DBMUX_CANCELLED; DBMUX_IO;
/// DBMUX_MISUSE for a PostgreSQL manager.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_backup(
    mgr: *const dbmux_manager,
    dest: *const c_char,
    flags: u32,
    progress: dbmux_progress_fn,
    user_data: *mut c_void,
    report_json: *mut *mut c_char,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let dest = c_str(dest, "dest")?;
        if flags & !(DBMUX_BACKUP_COMPACT | DBMUX_BACKUP_OVERWRITE) != 0 {
            set_error(format!(
                "flags is {flags}; use DBMUX_BACKUP_COMPACT and DBMUX_BACKUP_OVERWRITE, or 0"
            ));
            return Err(dbmux_status::DBMUX_INVALID_PARAMETER);
        }
        let report = backup_to(&mgr.mgr, dest, flags, progress, user_data).or_fail()?;
        if !report_json.is_null() {
            *report_json = to_c_string(report);
        }
        Ok(())
    })
}

/// Replaces the contents of `mgr`'s SQLite database with the database file
/// `src` (`Manager::restore_from`), in one write under the writer lane.
/// Errors: DBMUX_INVALID_PARAMETER when `src` is missing or not a sound
/// SQLite database (nothing is changed); DBMUX_MISUSE for PostgreSQL.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_restore(
    mgr: *const dbmux_manager,
    src: *const c_char,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let src = c_str(src, "src")?;
        #[cfg(feature = "sqlite")]
        mgr.mgr.restore_from(src).or_fail()?;
        #[cfg(not(feature = "sqlite"))]
        {
            let _ = (mgr, src);
            Err(no_sqlite()).or_fail()?;
        }
        Ok(())
    })
}

/// `Manager::backup_to` with the C flags and callback; the report as JSON.
#[cfg(feature = "sqlite")]
unsafe fn backup_to(
    mgr: &Manager,
    dest: &str,
    flags: u32,
    progress: dbmux_progress_fn,
    user_data: *mut c_void,
) -> dbmux::Result<String> {
    let mut call = |p: dbmux::sqlite::BackupProgress| match progress {
        Some(f) => f(p.pages_done, p.pages_total, user_data),
        None => true,
    };
    let opts = dbmux::sqlite::BackupOptions::new()
        .compact(flags & DBMUX_BACKUP_COMPACT != 0)
        .overwrite(flags & DBMUX_BACKUP_OVERWRITE != 0)
        .progress(&mut call);
    mgr.backup_to(dest, opts).map(|r| r.to_json())
}

#[cfg(not(feature = "sqlite"))]
unsafe fn backup_to(
    _mgr: &Manager,
    _dest: &str,
    _flags: u32,
    _progress: dbmux_progress_fn,
    _user_data: *mut c_void,
) -> dbmux::Result<String> {
    Err(no_sqlite())
}

#[cfg(not(feature = "sqlite"))]
fn no_sqlite() -> Error {
    Error::new(
        ErrorCode::FeatureDisabled,
        "this libdbmux was built without SQLite (the `sqlite` feature)",
    )
}
