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
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn as_sql(self) -> &'static str {
        match self {
            CheckpointMode::Passive => "PASSIVE",
            CheckpointMode::Full => "FULL",
            CheckpointMode::Restart => "RESTART",
            CheckpointMode::Truncate => "TRUNCATE",
        }
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
