//! Checkpoints and integrity checks: what they are asked to do and what
//! they report.

/// How hard a WAL checkpoint tries
/// ([`Manager::checkpoint`](crate::Manager::checkpoint)): SQLite's modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointMode {
    /// As much as can be done without waiting for anyone.
    Passive,
    /// Waits for writers, then copies the whole WAL into the database.
    Full,
    /// As `Full`, then waits for readers so the next writer starts the WAL
    /// from its beginning.
    Restart,
    /// As `Restart`, and truncates the WAL file to zero bytes.
    Truncate,
}

impl CheckpointMode {
    fn as_sql(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PASSIVE",
            CheckpointMode::Full => "FULL",
            CheckpointMode::Restart => "RESTART",
            CheckpointMode::Truncate => "TRUNCATE",
        }
    }
}

impl CheckpointMode {
    /// Runs `PRAGMA wal_checkpoint(mode)` on `conn`.
    pub(crate) fn run(self, conn: &rusqlite::Connection) -> rusqlite::Result<CheckpointReport> {
        conn.query_row(
            &format!("PRAGMA wal_checkpoint({})", self.as_sql()),
            [],
            |r| {
                Ok(CheckpointReport {
                    busy: r.get::<_, i64>(0)? != 0,
                    wal_frames: r.get(1)?,
                    checkpointed_frames: r.get(2)?,
                })
            },
        )
    }
}

/// What a checkpoint did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CheckpointReport {
    /// The checkpoint could not finish (a reader or writer was in the way).
    pub busy: bool,
    /// Frames in the WAL (`-1` when the database is not in WAL mode).
    pub wal_frames: i64,
    /// Frames copied into the database (`-1` when not in WAL mode).
    pub checkpointed_frames: i64,
}

impl CheckpointReport {
    /// It finished and the whole WAL is in the database.
    pub(crate) fn complete(&self) -> bool {
        !self.busy && self.wal_frames == self.checkpointed_frames
    }
}

/// What an integrity check found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct IntegrityReport {
    /// No problem found.
    pub ok: bool,
    /// The problems SQLite reported (empty when `ok`).
    pub problems: Vec<String>,
    /// `quick_check` (true) or `integrity_check`.
    pub quick: bool,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
}
