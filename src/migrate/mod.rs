#![doc = include_str!("README.md")]

mod lock;
mod run;
mod source;
#[cfg(feature = "sqlite")]
mod sqlite;

pub use source::{checksum, Migration, Migrations};

use serde::Serialize;

use crate::error::{Error, ErrorCode, Result};
use crate::manager::Manager;
use crate::url::Backend;

/// The ledger table: one row per applied (or failed `no-transaction`)
/// migration.
pub const LEDGER_TABLE: &str = "_dbmux_migrations";

/// Options of [`Manager::migrate_with`].
#[derive(Debug, Clone, Default)]
pub struct MigrateOptions {
    allow_out_of_order: bool,
}

impl MigrateOptions {
    /// The defaults: a pending version below the highest applied one is an
    /// error.
    pub fn new() -> MigrateOptions {
        MigrateOptions::default()
    }

    /// Applies pending versions below the highest applied one too (a
    /// migration merged from a branch), in version order, instead of
    /// refusing (the CLI's `--allow-out-of-order`).
    pub fn allow_out_of_order(mut self, on: bool) -> MigrateOptions {
        self.allow_out_of_order = on;
        self
    }
}

/// Where one version stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Applied, and the file's checksum equals the ledger's.
    Applied,
    /// Not applied yet.
    Pending,
    /// Applied, but the file changed since (checksum differs).
    Modified,
    /// Applied, but its file is gone.
    Missing,
    /// Not applied, and below the highest applied version.
    OutOfOrder,
    /// A `no-transaction` migration that failed part-way: the ledger is
    /// dirty until someone repairs the schema and the row.
    Dirty,
}

/// One version in a [`MigrationStatus`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VersionStatus {
    /// The version number.
    pub version: u64,
    /// Its name (from the file, else from the ledger).
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// The file that applies on this backend (`None` when missing).
    pub file: Option<String>,
    /// The file's checksum (`None` when missing).
    pub checksum: Option<String>,
    /// The checksum recorded when it was applied (`None` when not applied).
    pub applied_checksum: Option<String>,
    /// When it was applied (UTC, ISO 8601), from the ledger.
    pub applied_at: Option<String>,
    /// How long it took, from the ledger.
    pub duration_ms: Option<i64>,
}

/// What [`Manager::migration_status`] found: every version of the files
/// and of the ledger, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationStatus {
    /// The backend of the database.
    pub backend: Backend,
    /// The database, with any password redacted.
    pub database: String,
    /// Every version, in order.
    pub versions: Vec<VersionStatus>,
    /// How many are applied (and unchanged).
    pub applied: usize,
    /// How many are pending (including out-of-order ones).
    pub pending: usize,
    /// What stops `migrate` (modified, missing, dirty, out of order), one
    /// sentence each, naming the version and what to do; empty when none.
    pub problems: Vec<String>,
    /// How long the status took.
    pub duration_ms: f64,
}

impl MigrationStatus {
    /// The status as JSON (the same shape from Rust, C and Python).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The versions `migrate` would apply, in order: the pending ones and
    /// those out of order (which it applies only when allowed).
    pub fn to_apply(&self) -> Vec<u64> {
        self.versions
            .iter()
            .filter(|v| matches!(v.state, State::Pending | State::OutOfOrder))
            .map(|v| v.version)
            .collect()
    }

    /// True when every migration is applied, unchanged, and nothing else
    /// is in the ledger: the database is exactly what the files describe.
    pub fn is_current(&self) -> bool {
        self.versions.iter().all(|v| v.state == State::Applied)
    }

    /// `Ok` when the database is current ([`MigrationStatus::is_current`]);
    /// otherwise a [`ErrorCode::Migration`] error naming every version that
    /// is not applied as written.
    ///
    /// # Errors
    /// As above.
    pub fn verify(&self) -> Result<()> {
        if self.is_current() {
            return Ok(());
        }
        let mut reasons = self.problems.clone();
        let pending: Vec<String> = self
            .versions
            .iter()
            .filter(|v| v.state == State::Pending)
            .map(|v| v.file.clone().unwrap_or_else(|| v.version.to_string()))
            .collect();
        if !pending.is_empty() {
            reasons.push(format!(
                "{} pending: {} (apply with migrate / dbmux migrate up)",
                pending.len(),
                pending.join(", ")
            ));
        }
        Err(Error::new(
            ErrorCode::Migration,
            format!(
                "{} is not at the migrations' state: {}",
                self.database,
                reasons.join("; ")
            ),
        ))
    }
}

/// One migration that [`Manager::migrate`] applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Applied {
    /// The version number.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// The file that ran.
    pub file: String,
    /// How long it took.
    pub duration_ms: f64,
}

/// What [`Manager::migrate`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationReport {
    /// The backend of the database.
    pub backend: Backend,
    /// The database, with any password redacted.
    pub database: String,
    /// The migrations applied now, in order.
    pub applied: Vec<Applied>,
    /// How many were applied before (by an earlier run or another process).
    pub already_applied: usize,
    /// How long the run waited for the migration lock (another process was
    /// migrating).
    pub lock_wait_ms: f64,
    /// How long the whole run took.
    pub duration_ms: f64,
}

impl MigrationReport {
    /// The report as JSON (the same shape from Rust, C and Python).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl Manager {
    /// Applies the pending migrations, each in its own transaction with its
    /// ledger row, holding the migration lock for the whole run: an OS file
    /// lock beside a SQLite file (and its writer lane, so this process's
    /// own writers wait), a session advisory lock on PostgreSQL. Several
    /// processes started at once apply each migration exactly once.
    ///
    /// # Errors
    /// [`ErrorCode::Migration`] when an applied migration is modified or
    /// missing, the ledger is dirty, or a pending version is out of order
    /// (nothing is run then); a failing migration's error with its file and
    /// line (its transaction rolled back; the earlier ones stay applied); as
    /// [`Manager::get`].
    pub fn migrate(&self, migrations: &Migrations) -> Result<MigrationReport> {
        self.migrate_with(migrations, &MigrateOptions::new())
    }

    /// [`Manager::migrate`] with options.
    ///
    /// # Errors
    /// As [`Manager::migrate`].
    pub fn migrate_with(
        &self,
        migrations: &Migrations,
        options: &MigrateOptions,
    ) -> Result<MigrationReport> {
        run::migrate(self, migrations, options)
    }

    /// Where every version stands (applied, pending, modified, missing,
    /// out of order, dirty), without changing anything: the ledger is read,
    /// not created.
    ///
    /// # Errors
    /// As [`Manager::get`].
    pub fn migration_status(&self, migrations: &Migrations) -> Result<MigrationStatus> {
        run::status(self, migrations)
    }

    /// The migrations [`Manager::migrate`] would run now, in order, with
    /// the exact SQL for this backend; nothing is run.
    ///
    /// # Errors
    /// As [`Manager::migration_status`].
    pub fn migration_plan(&self, migrations: &Migrations) -> Result<Vec<Migration>> {
        let todo = self.migration_status(migrations)?.to_apply();
        Ok(migrations
            .for_backend(self.config().backend())
            .into_iter()
            .filter(|m| todo.contains(&m.version))
            .cloned()
            .collect())
    }
}

/// Compiles the migration files of a directory into the binary: an
/// expression of type `dbmux::Result<dbmux::migrate::Migrations>`. The path
/// is relative to the crate's `Cargo.toml`.
///
/// ```
/// // dbmux's own test fixture; an app names its own directory
/// let migrations = dbmux::embed_migrations!("tests/migrations")?;
/// let db = dbmux::Manager::from_url("sqlite::memory:")?;
/// assert_eq!(db.migrate(&migrations)?.applied.len(), 2);
/// # db.shutdown();
/// # Ok::<(), dbmux::Error>(())
/// ```
///
/// A changed file is recompiled by Cargo; a new file is seen after the
/// next build of the crate (add `println!("cargo:rerun-if-changed=migrations")`
/// to a build script to make that automatic).
#[macro_export]
macro_rules! embed_migrations {
    ($dir:literal) => {
        $crate::migrate::Migrations::from_files($crate::__embed_dir!($dir).iter().copied())
    };
}
