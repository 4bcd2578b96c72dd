//! Maintenance of a SQLite database through its manager: online backup and
//! restore.

use std::path::Path;

use super::Manager;
use crate::error::{Error, ErrorCode, Result};
use crate::sqlite::{
    BackupOptions, BackupReport, CheckpointMode, CheckpointReport, IntegrityReport,
};
use crate::url::Target;

/// A SQLite manager's connection that is not SQLite (cannot happen).
fn no_sqlite() -> Error {
    Error::new(
        ErrorCode::Internal,
        "a SQLite manager's connection is not SQLite",
    )
}

impl Manager {
    /// Fails unless this is a SQLite manager (`what` names the call).
    fn sqlite_only(&self, what: &str) -> Result<()> {
        match self.target() {
            Target::Sqlite(_) => Ok(()),
            _ => Err(Error::new(
                ErrorCode::Misuse,
                format!(
                    "{what} is for SQLite databases; for PostgreSQL use pg_dump / pg_restore or \
                     pg_basebackup"
                ),
            )),
        }
    }

    /// Copies the live database to `dest`: one consistent snapshot, read on
    /// a reader while writers go on, written to a temporary file beside
    /// `dest`, made self-contained (`journal_mode=DELETE`), fsynced and
    /// renamed over `dest` (the directory fsynced too), so that `dest` is
    /// never a partial file. Works for the shared in-memory database too.
    /// See [`BackupOptions`] for compaction, overwriting, progress and
    /// cancellation.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] when `dest` exists (without
    /// `overwrite`); [`ErrorCode::Cancelled`] when the progress callback
    /// cancelled it; [`ErrorCode::Io`] when the copy cannot be written;
    /// [`ErrorCode::Misuse`] for a PostgreSQL manager.
    pub fn backup_to(
        &self,
        dest: impl AsRef<Path>,
        options: BackupOptions<'_>,
    ) -> Result<BackupReport> {
        self.sqlite_only("backup_to")?;
        let mut reader = self.get_read()?;
        let raw = reader.as_sqlite().ok_or_else(no_sqlite)?;
        crate::sqlite::backup::backup(raw, dest.as_ref(), options)
    }

    /// Replaces the database's contents with the database file `src` (for
    /// example a backup), in one write transaction under the writer lane:
    /// writers of this process wait, readers see the old contents or the
    /// new. `src` must pass `PRAGMA quick_check`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] when `src` is missing or not a sound
    /// SQLite database (nothing is changed then); as [`Manager::get`].
    pub fn restore_from(&self, src: impl AsRef<Path>) -> Result<()> {
        self.sqlite_only("restore_from")?;
        let mut conn = self.get()?;
        conn.hold_lane(true)?;
        // new read transactions wait for the new contents (each at most the
        // gate's bound); the current ones keep their snapshot
        let lane = self.sqlite_lane();
        let gate = lane.as_ref().map(|l| l.wal.hold_gate());
        let timeout = self.config().pool_timeout();
        let raw = conn.as_sqlite().ok_or_else(no_sqlite)?;
        let r = crate::sqlite::backup::restore(raw, src.as_ref(), timeout);
        drop(gate);
        conn.hold_lane(false)?;
        if r.is_ok() {
            log::info!(
                target: "dbmux::sqlite",
                "restored {} from {}",
                self.config().redacted_url(),
                src.as_ref().display()
            );
        }
        r
    }
}

impl Manager {
    /// Runs a WAL checkpoint now. `Passive` never waits; the others take the
    /// writer lane first (writers of this process wait in line, instead of
    /// the checkpoint spinning on SQLite's lock).
    ///
    /// # Errors
    /// As [`Manager::get`]; [`ErrorCode::Misuse`] for PostgreSQL.
    pub fn checkpoint(&self, mode: CheckpointMode) -> Result<CheckpointReport> {
        self.sqlite_only("checkpoint")?;
        let mut conn = self.get()?;
        let lane = mode != CheckpointMode::Passive;
        if lane {
            conn.hold_lane(true)?;
        }
        let raw = conn.as_sqlite().ok_or_else(no_sqlite)?;
        let r = mode.run(raw).map_err(Error::from);
        if lane {
            conn.hold_lane(false)?;
        }
        r
    }

    /// Checks the database on a reader: `PRAGMA quick_check` (`quick`) or
    /// the full `PRAGMA integrity_check`, stopped after `DB_QUERY_TIMEOUT`
    /// (else `pool_timeout`) with [`ErrorCode::StatementTimeout`].
    ///
    /// # Errors
    /// As [`Manager::get_read`]; [`ErrorCode::StatementTimeout`] when it ran
    /// out of time; [`ErrorCode::Misuse`] for PostgreSQL.
    pub fn integrity_check(&self, quick: bool) -> Result<IntegrityReport> {
        self.sqlite_only("integrity_check")?;
        let start = std::time::Instant::now();
        let limit = self
            .config()
            .query_timeout()
            .unwrap_or_else(|| self.config().pool_timeout());
        let mut reader = self.get_read()?;
        let raw = reader.as_sqlite().ok_or_else(no_sqlite)?;
        // a watchdog interrupts the check when it runs out of time
        let interrupt = raw.get_interrupt_handle();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if done_rx.recv_timeout(limit).is_err() {
                interrupt.interrupt();
                true
            } else {
                false
            }
        });
        let sql = if quick {
            "PRAGMA quick_check"
        } else {
            "PRAGMA integrity_check"
        };
        let rows: rusqlite::Result<Vec<String>> = raw
            .prepare(sql)
            .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect());
        let _ = done_tx.send(());
        let interrupted = watchdog.join().unwrap_or(false);
        let rows = match rows {
            Ok(rows) => rows,
            Err(_) if interrupted => {
                return Err(Error::new(
                    ErrorCode::StatementTimeout,
                    format!(
                        "{sql} did not finish within {:.1} s (DB_QUERY_TIMEOUT, else \
                         pool_timeout); run it with a larger limit, or quick",
                        limit.as_secs_f64()
                    ),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        let ok = rows.len() == 1 && rows[0] == "ok";
        Ok(IntegrityReport {
            ok,
            problems: if ok { Vec::new() } else { rows },
            quick,
            duration_ms: start.elapsed().as_secs_f64() * 1000.0,
        })
    }
}
