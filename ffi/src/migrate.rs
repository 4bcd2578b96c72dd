//! Migrations: apply a directory's, and report where each version stands.

use std::ffi::c_char;

use super::*;

/// The migrations of `dir`, read as `Migrations::from_dir` reads them.
fn read_dir(dir: &str) -> dbmux::Result<dbmux::migrate::Migrations> {
    dbmux::migrate::Migrations::from_dir(dir)
}

/// Applies the pending migrations of the directory `dir`
/// (`V0001__name.sql`, with `.sqlite.sql` / `.postgres.sql` variants) to
/// `mgr`'s database (`Manager::migrate`): each in its own transaction with
/// its row in the `_dbmux_migrations` ledger, under the migration lock, so
/// that several processes started at once apply each exactly once.
/// `report_json` (may be NULL) receives what was applied as JSON
/// (`backend`, `database`, `applied` [{`version`, `name`, `file`,
/// `duration_ms`}], `already_applied`, `lock_wait_ms`, `duration_ms`), the
/// same document as Rust's `MigrationReport::to_json`; free it with
/// `dbmux_string_free`.
/// Errors: DBMUX_MIGRATION when an applied migration was modified or is
/// missing, the ledger is dirty or a version is out of order (nothing
/// runs), or a file name is malformed; DBMUX_IO when `dir` cannot be read;
/// a failing migration's own code (DBMUX_SQL, DBMUX_CONSTRAINT, ...) with
/// the file and line in the message (that migration is rolled back).
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_migrate_dir(
    mgr: *const dbmux_manager,
    dir: *const c_char,
    report_json: *mut *mut c_char,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let dir = c_str(dir, "dir")?;
        let report = read_dir(dir).and_then(|m| mgr.mgr.migrate(&m)).or_fail()?;
        if !report_json.is_null() {
            *report_json = to_c_string(report.to_json());
        }
        Ok(())
    })
}

/// Where every migration of `dir` stands on `mgr`'s database
/// (`Manager::migration_status`), without changing anything. `status_json`
/// receives the JSON (`backend`, `database`, `versions` [{`version`,
/// `name`, `state` ("applied", "pending", "modified", "missing",
/// "out_of_order", "dirty"), `file`, `checksum`, `applied_checksum`,
/// `applied_at`, `duration_ms`}], `applied`, `pending`, `problems`,
/// `duration_ms`), the same document as Rust's `MigrationStatus::to_json`;
/// free it with `dbmux_string_free`.
/// Errors: DBMUX_IO when `dir` cannot be read; DBMUX_MIGRATION for a
/// malformed file name; as a checkout otherwise.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_migration_status(
    mgr: *const dbmux_manager,
    dir: *const c_char,
    status_json: *mut *mut c_char,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let dir = c_str(dir, "dir")?;
        let out = out_ptr(status_json, "status_json")?;
        let status = read_dir(dir)
            .and_then(|m| mgr.mgr.migration_status(&m))
            .or_fail()?;
        out.put(to_c_string(status.to_json()));
        Ok(())
    })
}
