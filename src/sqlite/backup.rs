//! Online backup and restore of a SQLite database.
//!
//! A backup reads one consistent snapshot (a read transaction held on a
//! reader for the whole copy, so writers go on and the copy never
//! restarts), page by page through SQLite's backup API (or `VACUUM INTO`
//! when compacting), into a temporary file beside the destination. The copy
//! is made self-contained (`journal_mode=DELETE`), fsynced, renamed over the
//! destination and the directory fsynced: the destination is the old file or
//! the whole new one, never a partial file. A failed or cancelled backup
//! removes its temporary file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::backup::{Backup, StepResult};

use crate::error::{Error, ErrorCode, Result};

/// Pages copied per step of a backup (then progress is reported).
const STEP_PAGES: i32 = 1024;

/// How a backup runs ([`Manager::backup_to`](crate::Manager::backup_to)).
#[derive(Default)]
pub struct BackupOptions<'a> {
    compact: bool,
    overwrite: bool,
    progress: Option<&'a mut dyn FnMut(BackupProgress) -> bool>,
}

impl std::fmt::Debug for BackupOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupOptions")
            .field("compact", &self.compact)
            .field("overwrite", &self.overwrite)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> BackupOptions<'a> {
    /// A plain copy, refusing to replace an existing file.
    pub fn new() -> BackupOptions<'a> {
        BackupOptions::default()
    }

    /// Compact the copy (`VACUUM INTO`: no free pages, defragmented). Its
    /// progress is reported at the start and the end only.
    pub fn compact(mut self, on: bool) -> Self {
        self.compact = on;
        self
    }

    /// Replace the destination if it exists (atomically).
    pub fn overwrite(mut self, on: bool) -> Self {
        self.overwrite = on;
        self
    }

    /// Called after each step with the pages copied so far; returning
    /// `false` cancels the backup ([`ErrorCode::Cancelled`]), which removes
    /// its temporary file and leaves the destination as it was.
    pub fn progress(mut self, f: &'a mut dyn FnMut(BackupProgress) -> bool) -> Self {
        self.progress = Some(f);
        self
    }
}

/// How far a backup is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupProgress {
    /// Pages copied so far.
    pub pages_done: u64,
    /// Pages in the snapshot.
    pub pages_total: u64,
}

/// What a finished backup wrote.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct BackupReport {
    /// The destination file.
    pub path: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Pages copied.
    pub pages: u64,
    /// Whether it was compacted (`VACUUM INTO`).
    pub compact: bool,
    /// How long the backup took, in milliseconds.
    pub duration_ms: f64,
}

impl BackupReport {
    /// The report as a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// The temporary file of a backup: removed when dropped unless published.
struct Temp {
    path: PathBuf,
    published: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.published {
            for suffix in ["", "-journal", "-wal", "-shm"] {
                let mut p = self.path.clone().into_os_string();
                p.push(suffix);
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::Io,
        format!("could not {what} {}: {e}", path.display()),
    )
    .with_source(e)
}

fn cancelled() -> Error {
    Error::new(
        ErrorCode::Cancelled,
        "the backup was cancelled by its progress callback; its temporary file was removed and \
         the destination is as it was",
    )
}

/// Where the copy is made: beside `dest`, so that the rename is atomic.
fn temp_beside(dest: &Path) -> Result<Temp> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let name = dest.file_name().ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidParameter,
            format!("{} names no file to back up into", dest.display()),
        )
    })?;
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".dbmux-tmp-{}-{n}", std::process::id()));
    Ok(Temp {
        path: dest.with_file_name(tmp),
        published: false,
    })
}

/// Copies the database `src` (a reader) is on into `dest`, as above.
pub(crate) fn backup(
    src: &rusqlite::Connection,
    dest: &Path,
    mut opts: BackupOptions<'_>,
) -> Result<BackupReport> {
    let start = Instant::now();
    if dest.exists() && !opts.overwrite {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!(
                "{} exists; back up to a new path, or replace it with overwrite \
                 (BackupOptions::overwrite, --overwrite)",
                dest.display()
            ),
        ));
    }
    let tmp = temp_beside(dest)?;
    let compact = opts.compact;
    let mut progress = opts.progress.take();
    let mut report = |done: u64, total: u64| -> Result<()> {
        let go_on = match progress.as_mut() {
            Some(f) => f(BackupProgress {
                pages_done: done,
                pages_total: total,
            }),
            None => true,
        };
        if go_on {
            Ok(())
        } else {
            Err(cancelled())
        }
    };
    if compact {
        // VACUUM INTO reads one snapshot by itself (and may not run inside
        // a transaction)
        report(0, page_count(src)?)?;
        // query_only refuses VACUUM INTO; the reader is opened read-only,
        // so its own database stays unwritable meanwhile
        let query_only: bool = src.query_row("PRAGMA query_only", [], |r| r.get(0))?;
        src.execute_batch("PRAGMA query_only=OFF")?;
        let vacuumed = src.execute("VACUUM INTO ?1", [tmp.path.to_string_lossy().as_ref()]);
        if query_only {
            src.execute_batch("PRAGMA query_only=ON")?;
        }
        vacuumed?;
        let pages = page_count(&rusqlite::Connection::open(&tmp.path)?)?;
        report(pages, pages)?;
        return finish(tmp, dest, pages, compact, start);
    }
    // one snapshot for the whole copy (a read transaction, begun by reading
    // the schema): writers go on, and the copy does not restart
    src.execute_batch("BEGIN")?;
    let copied = (|| -> Result<u64> {
        src.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
            r.get::<_, i64>(0)
        })?;
        let mut dst = rusqlite::Connection::open(&tmp.path)?;
        {
            let b = Backup::new(src, &mut dst)?;
            let mut pages = STEP_PAGES;
            let mut left = i64::MAX;
            loop {
                match b.step(pages)? {
                    StepResult::Done => break,
                    StepResult::More => {
                        let p = b.progress();
                        if i64::from(p.remaining) > left {
                            // it restarted after all: finish in one pass,
                            // which no writer can restart
                            log::warn!(
                                target: "dbmux::sqlite",
                                "the backup restarted; copying the rest in one pass"
                            );
                            pages = -1;
                        }
                        left = i64::from(p.remaining);
                        let total = p.pagecount.max(0) as u64;
                        report(total.saturating_sub(p.remaining.max(0) as u64), total)?;
                    }
                    // another connection holds a lock on the copy's file
                    _ => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        }
        let pages = page_count(&dst)?;
        report(pages, pages)?;
        Ok(pages)
    })();
    let _ = src.execute_batch("COMMIT");
    let pages = copied?;
    finish(tmp, dest, pages, compact, start)
}

/// Makes the copy self-contained (no `-wal` or `-shm` beside it) and
/// publishes it.
fn finish(
    mut tmp: Temp,
    dest: &Path,
    pages: u64,
    compact: bool,
    start: Instant,
) -> Result<BackupReport> {
    let dst = rusqlite::Connection::open(&tmp.path)?;
    let mode: String = dst.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    debug_assert_eq!(mode, "delete");
    drop(dst);
    publish(&mut tmp, dest)?;
    let bytes = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
    Ok(BackupReport {
        path: dest.display().to_string(),
        bytes,
        pages,
        compact,
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
    })
}

/// The pages of the database `conn` is on.
fn page_count(conn: &rusqlite::Connection) -> Result<u64> {
    let n: i64 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// fsync the copy, rename it over `dest`, fsync the directory.
fn publish(tmp: &mut Temp, dest: &Path) -> Result<()> {
    std::fs::File::open(&tmp.path)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_error("sync", &tmp.path, e))?;
    std::fs::rename(&tmp.path, dest).map_err(|e| io_error("rename the copy to", dest, e))?;
    tmp.published = true;
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    #[cfg(unix)]
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error("sync the directory", &dir, e))?;
    Ok(())
}

/// Replaces the contents of the database `dest` is on with `src`'s, in one
/// write (the caller holds the writer lane), waiting up to `timeout` for
/// other processes' locks.
pub(crate) fn restore(
    dest: &mut rusqlite::Connection,
    src: &Path,
    timeout: Duration,
) -> Result<()> {
    if !src.is_file() {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!("{} is not a file to restore from", src.display()),
        ));
    }
    let from = rusqlite::Connection::open_with_flags(
        src,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let check: String = from
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| {
            Error::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{} is not a SQLite database dbmux can restore from: {e}",
                    src.display()
                ),
            )
        })?;
    if check != "ok" {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!(
                "{} fails PRAGMA quick_check ({check}); nothing was restored",
                src.display()
            ),
        ));
    }
    let start = Instant::now();
    let b = Backup::new(&from, dest)?;
    loop {
        match b.step(-1)? {
            StepResult::Done => return Ok(()),
            // another process holds a lock: wait for it, within the timeout
            _ if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(1)),
            _ => {
                return Err(Error::new(
                    ErrorCode::Busy,
                    format!(
                        "could not restore within {:.1} s: another process keeps the database \
                         locked",
                        timeout.as_secs_f64()
                    ),
                ))
            }
        }
    }
}
