//! Maintenance of a SQLite database through its manager: online backup and
//! restore.

use std::path::Path;

use super::Manager;
use crate::error::{Error, ErrorCode, Result};
use crate::sqlite::{BackupOptions, BackupReport};
use crate::url::Target;

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
        let raw = reader
            .as_sqlite()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "a SQLite reader without SQLite"))?;
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
        let timeout = self.config().pool_timeout();
        let raw = conn
            .as_sqlite()
            .ok_or_else(|| Error::new(ErrorCode::Internal, "a SQLite connection without SQLite"))?;
        let r = crate::sqlite::backup::restore(raw, src.as_ref(), timeout);
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
