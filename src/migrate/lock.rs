//! The migration lock: one runner at a time per database, across processes.
//!
//! SQLite: an exclusive OS lock (`flock` / `LockFileEx`) on a file beside
//! the database, `<db>-migrations.lock`, which the kernel releases when the
//! process dies. The file is left in place: removing a lock file lets two
//! processes lock two different files. PostgreSQL: a session advisory lock
//! (`pg_try_advisory_lock`), released by the server when the session ends.

use std::time::Duration;

use crate::connection::Connection;
use crate::error::Result;
#[cfg(not(target_arch = "wasm32"))]
use crate::error::{Error, ErrorCode};
use crate::platform::Instant;

/// The advisory lock key on PostgreSQL: "dbmuxmig" in ASCII.
pub(crate) const PG_LOCK_KEY: i64 = 0x6462_6d75_786d_6967;

/// How long between two tries for a lock another runner holds.
const RETRY: Duration = Duration::from_millis(25);
/// After how long waiting for it is logged (and then every such period).
const TELL_EVERY: Duration = Duration::from_secs(5);

/// Tries `attempt` until it succeeds, logging every [`TELL_EVERY`];
/// returns how long it waited.
fn wait_for(what: &str, mut attempt: impl FnMut() -> Result<bool>) -> Result<Duration> {
    let start = Instant::now();
    let mut told = start;
    while !attempt()? {
        if told.elapsed() >= TELL_EVERY {
            told = Instant::now();
            log::info!(
                target: "dbmux::migrate",
                "waiting for {what} (another process is migrating) for {:.0} s",
                start.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(RETRY);
    }
    Ok(start.elapsed())
}

/// The held lock of a SQLite file (dropping the file releases it).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) struct FileLock {
    _file: std::fs::File,
}

/// Takes the exclusive lock on `<db>-migrations.lock`, waiting while
/// another process holds it; returns it and the time waited.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn lock_file(db: &std::path::Path) -> Result<(FileLock, Duration)> {
    use fs4::FileExt;
    let db = std::path::absolute(db).unwrap_or_else(|_| db.to_path_buf());
    let mut name = db.as_os_str().to_owned();
    name.push("-migrations.lock");
    let path = std::path::PathBuf::from(name);
    let io = |e: std::io::Error| {
        Error::new(
            ErrorCode::Io,
            format!(
                "cannot lock {} (the migration lock beside the database): {e}; the directory \
                 must be writable",
                path.display()
            ),
        )
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io)?;
    let waited = wait_for(
        &format!("the lock {}", path.display()),
        || match FileExt::try_lock(&file) {
            Ok(()) => Ok(true),
            Err(fs4::TryLockError::WouldBlock) => Ok(false),
            Err(fs4::TryLockError::Error(e)) => Err(io(e)),
        },
    )?;
    Ok((FileLock { _file: file }, waited))
}

/// Takes the advisory lock on PostgreSQL's session of `conn`, waiting
/// while another session holds it; returns the time waited.
pub(crate) fn lock_pg(conn: &mut Connection) -> Result<Duration> {
    wait_for("the migration advisory lock", || {
        conn.query_scalar::<bool>(
            "SELECT pg_try_advisory_lock(?)",
            &[crate::Value::Integer(PG_LOCK_KEY)],
        )
    })
}

/// Gives the advisory lock back; a session whose unlock fails is dead (and
/// its lock went with it).
pub(crate) fn unlock_pg(conn: &mut Connection) {
    let _ = conn.query_scalar::<bool>(
        "SELECT pg_advisory_unlock(?)",
        &[crate::Value::Integer(PG_LOCK_KEY)],
    );
}
