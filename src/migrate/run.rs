//! The runner: reads the ledger, decides what stands where, and applies
//! the pending migrations under the lock, each with its ledger row.

use std::collections::BTreeMap;

use super::{
    lock, Applied, MigrateOptions, Migration, MigrationReport, MigrationStatus, Migrations, State,
    VersionStatus, LEDGER_TABLE,
};
use crate::connection::Connection;
use crate::error::{Error, ErrorCode, Result};
use crate::manager::Manager;
use crate::placeholders::{leading_trivia, split_statements};
use crate::platform::Instant;
use crate::url::Backend;
use crate::value::Value;

/// One row of the ledger.
struct Entry {
    name: String,
    checksum: String,
    applied_at: String,
    duration_ms: i64,
    success: bool,
}

fn ledger_ddl(backend: Backend) -> String {
    match backend {
        Backend::Postgres => format!(
            "CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (version BIGINT PRIMARY KEY, name TEXT NOT \
             NULL, checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(), \
             duration_ms BIGINT NOT NULL, success BOOLEAN NOT NULL)"
        ),
        _ => format!(
            "CREATE TABLE IF NOT EXISTS {LEDGER_TABLE} (version INTEGER PRIMARY KEY, name TEXT \
             NOT NULL, checksum TEXT NOT NULL, applied_at TEXT NOT NULL, duration_ms INTEGER NOT \
             NULL, success INTEGER NOT NULL)"
        ),
    }
}

/// `now` in the ledger's form for `backend` (SQL).
fn now_sql(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => "now()",
        _ => "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    }
}

/// Reads the ledger; `None` when it does not exist yet.
fn read_ledger(conn: &mut Connection) -> Result<Option<BTreeMap<u64, Entry>>> {
    let backend = conn.backend();
    let exists: bool = match backend {
        Backend::Postgres => conn.query_scalar(
            &format!("SELECT to_regclass('{LEDGER_TABLE}') IS NOT NULL"),
            &[],
        )?,
        _ => {
            conn.query_scalar::<i64>(
                &format!(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = \
                 '{LEDGER_TABLE}'"
                ),
                &[],
            )? > 0
        }
    };
    if !exists {
        return Ok(None);
    }
    let (at, ok) = match backend {
        Backend::Postgres => (
            "to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')",
            "CASE WHEN success THEN 1 ELSE 0 END",
        ),
        _ => ("applied_at", "success"),
    };
    let rows = conn.query(
        &format!(
            "SELECT version, name, checksum, {at}, duration_ms, {ok} FROM {LEDGER_TABLE} ORDER \
             BY version"
        ),
        &[],
    )?;
    let mut out = BTreeMap::new();
    for r in rows.iter() {
        let v: i64 = r.get(0)?;
        out.insert(
            v as u64,
            Entry {
                name: r.get(1)?,
                checksum: r.get(2)?,
                applied_at: r.get(3)?,
                duration_ms: r.get(4)?,
                success: r.get::<i64>(5)? != 0,
            },
        );
    }
    Ok(Some(out))
}

/// Where each version stands, and the sentences that stop `migrate`.
fn compare(
    files: &[&Migration],
    ledger: &BTreeMap<u64, Entry>,
    allow_out_of_order: bool,
) -> (Vec<VersionStatus>, Vec<String>) {
    let highest = ledger.keys().next_back().copied().unwrap_or(0);
    let by_version: BTreeMap<u64, &Migration> = files.iter().map(|m| (m.version, *m)).collect();
    let mut versions: Vec<u64> = by_version.keys().chain(ledger.keys()).copied().collect();
    versions.sort_unstable();
    versions.dedup();
    let mut out = Vec::with_capacity(versions.len());
    let mut problems = Vec::new();
    for v in versions {
        let file = by_version.get(&v).copied();
        let entry = ledger.get(&v);
        let state = match (file, entry) {
            (_, Some(e)) if !e.success => {
                problems.push(format!(
                    "V{v:04} ({}) failed part-way outside a transaction (-- dbmux:no-transaction) \
                     and the ledger is dirty: repair the schema by hand, then delete its row to \
                     run it again (DELETE FROM {LEDGER_TABLE} WHERE version = {v}) or mark it \
                     done (UPDATE {LEDGER_TABLE} SET success = {} WHERE version = {v})",
                    file.map_or(e.name.as_str(), |m| m.file.as_str()),
                    "TRUE"
                ));
                State::Dirty
            }
            (Some(m), Some(e)) if m.checksum == e.checksum => State::Applied,
            (Some(m), Some(e)) => {
                problems.push(format!(
                    "V{v:04} ({}) was applied with checksum {} but the file's is now {} \
                     (modified): restore the file as it was applied and put the change in a \
                     new migration",
                    m.file,
                    short(&e.checksum),
                    short(&m.checksum)
                ));
                State::Modified
            }
            (None, Some(e)) => {
                problems.push(format!(
                    "V{v:04} ({}) was applied but its file is gone (missing): restore the file",
                    e.name
                ));
                State::Missing
            }
            (Some(m), None) if v < highest => {
                if !allow_out_of_order {
                    problems.push(format!(
                        "V{v:04} ({}) is pending but below the highest applied version \
                         V{highest:04} (out of order): give it a version above V{highest:04}, \
                         or allow out-of-order migrations (--allow-out-of-order, \
                         MigrateOptions::allow_out_of_order)",
                        m.file
                    ));
                }
                State::OutOfOrder
            }
            (Some(_), None) => State::Pending,
            (None, None) => continue,
        };
        out.push(VersionStatus {
            version: v,
            name: file.map_or_else(
                || entry.map(|e| e.name.clone()).unwrap_or_default(),
                |m| m.name.clone(),
            ),
            state,
            file: file.map(|m| m.file.clone()),
            checksum: file.map(|m| m.checksum.clone()),
            applied_checksum: entry.map(|e| e.checksum.clone()),
            applied_at: entry.map(|e| e.applied_at.clone()),
            duration_ms: entry.map(|e| e.duration_ms),
        });
    }
    (out, problems)
}

fn short(checksum: &str) -> &str {
    &checksum[..checksum.len().min(12)]
}

fn status_of(
    mgr: &Manager,
    migrations: &Migrations,
    ledger: &BTreeMap<u64, Entry>,
    allow_out_of_order: bool,
    start: Instant,
) -> MigrationStatus {
    let backend = mgr.config().backend();
    let files = migrations.for_backend(backend);
    let (versions, problems) = compare(&files, ledger, allow_out_of_order);
    MigrationStatus {
        backend,
        database: mgr.config().redacted_url(),
        applied: versions
            .iter()
            .filter(|v| v.state == State::Applied)
            .count(),
        pending: versions
            .iter()
            .filter(|v| matches!(v.state, State::Pending | State::OutOfOrder))
            .count(),
        versions,
        problems,
        duration_ms: start.elapsed().as_secs_f64() * 1000.0,
    }
}

pub(super) fn status(mgr: &Manager, migrations: &Migrations) -> Result<MigrationStatus> {
    let start = Instant::now();
    // the primary on PostgreSQL (a standby may lag); on SQLite reading
    // takes no lane, and a writable connection closing last removes the
    // -wal and -shm files, as a reader cannot
    let mut conn = mgr.get()?;
    let ledger = read_ledger(&mut conn)?.unwrap_or_default();
    drop(conn);
    Ok(status_of(mgr, migrations, &ledger, false, start))
}

/// The line (1-based) of byte `offset` in `sql`.
fn line_of(sql: &str, offset: usize) -> usize {
    sql.as_bytes()[..offset.min(sql.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Takes the lock, runs the migrations and gives the lock back, whatever
/// happens in between.
pub(super) fn migrate(
    mgr: &Manager,
    migrations: &Migrations,
    options: &MigrateOptions,
) -> Result<MigrationReport> {
    let start = Instant::now();
    let backend = mgr.config().backend();
    match backend {
        Backend::Postgres => {
            let mut conn = mgr.get()?;
            let waited = lock::lock_pg(&mut conn)?;
            let r = unwind_safe(&mut conn, |c| {
                run_locked(mgr, c, migrations, options, start, waited)
            });
            lock::unlock_pg(&mut conn);
            r
        }
        _ => {
            // the OS lock first (other processes), then this process's lane
            #[cfg(not(target_arch = "wasm32"))]
            let (file_lock, waited) = match sqlite_file(mgr) {
                Some(path) => {
                    let (l, w) = lock::lock_file(&path)?;
                    (Some(l), w)
                }
                None => (None, std::time::Duration::ZERO),
            };
            #[cfg(target_arch = "wasm32")]
            let waited = std::time::Duration::ZERO;
            let mut conn = mgr.get()?;
            conn.hold_lane(true)?;
            let r = unwind_safe(&mut conn, |c| {
                run_locked(mgr, c, migrations, options, start, waited)
            });
            let _ = conn.hold_lane(false);
            #[cfg(not(target_arch = "wasm32"))]
            drop(file_lock);
            r
        }
    }
}

/// Runs `f`; if it panics, the connection is closed instead of pooled
/// (taking the session's advisory lock and whatever state the run left with
/// it) and a SQLite writer lane held across the run is given back, before
/// the panic goes on.
fn unwind_safe<T>(conn: &mut Connection, f: impl FnOnce(&mut Connection) -> T) -> T {
    struct Discard<'a>(&'a mut Connection, bool);
    impl Drop for Discard<'_> {
        fn drop(&mut self) {
            if self.1 {
                self.0.discard();
                // a SQLite writer's lane, held across the run, goes back too
                let _ = self.0.hold_lane(false);
            }
        }
    }
    let mut guard = Discard(conn, true);
    let r = f(guard.0);
    guard.1 = false;
    r
}

#[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
fn sqlite_file(mgr: &Manager) -> Option<std::path::PathBuf> {
    mgr.sqlite_file()
}

#[cfg(all(not(feature = "sqlite"), not(target_arch = "wasm32")))]
fn sqlite_file(_: &Manager) -> Option<std::path::PathBuf> {
    None
}

fn run_locked(
    mgr: &Manager,
    conn: &mut Connection,
    migrations: &Migrations,
    options: &MigrateOptions,
    start: Instant,
    waited: std::time::Duration,
) -> Result<MigrationReport> {
    let backend = conn.backend();
    conn.execute_batch(&ledger_ddl(backend))?;
    // read after the lock is held: what another runner applied is seen
    let ledger = read_ledger(conn)?.unwrap_or_default();
    let status = status_of(mgr, migrations, &ledger, options.allow_out_of_order, start);
    if !status.problems.is_empty() {
        return Err(Error::new(
            ErrorCode::Migration,
            format!(
                "{} was not migrated: {}",
                status.database,
                status.problems.join("; ")
            ),
        ));
    }
    let todo = status.to_apply();
    let mut report = MigrationReport {
        backend,
        database: status.database.clone(),
        applied: Vec::new(),
        already_applied: status.applied,
        lock_wait_ms: waited.as_secs_f64() * 1000.0,
        duration_ms: 0.0,
    };
    for m in migrations.for_backend(backend) {
        if !todo.contains(&m.version) {
            continue;
        }
        let t = Instant::now();
        match apply(conn, m) {
            Ok(true) => {
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                log::info!(target: "dbmux::migrate", "applied {} in {ms:.1} ms", m.file);
                report.applied.push(Applied {
                    version: m.version,
                    name: m.name.clone(),
                    file: m.file.clone(),
                    duration_ms: ms,
                });
            }
            // applied meanwhile by a runner that does not take the lock
            Ok(false) => report.already_applied += 1,
            Err(e) => {
                let done: Vec<&str> = report.applied.iter().map(|a| a.file.as_str()).collect();
                let e = e.context(format!(
                    "migrating {}: {}{}",
                    report.database,
                    migrations.origin(),
                    m.file
                ));
                return Err(if done.is_empty() {
                    e
                } else {
                    e.note(format!("applied before it: {}", done.join(", ")))
                });
            }
        }
    }
    report.duration_ms = start.elapsed().as_secs_f64() * 1000.0;
    Ok(report)
}

/// The ledger row of `m` (`success` as SQL).
fn insert_entry(conn: &mut Connection, m: &Migration, ms: i64, success: bool) -> Result<u64> {
    let backend = conn.backend();
    conn.execute(
        &format!(
            "INSERT INTO {LEDGER_TABLE} (version, name, checksum, applied_at, duration_ms, \
             success) VALUES (?, ?, ?, {}, ?, {})",
            now_sql(backend),
            if success { "TRUE" } else { "FALSE" }
        ),
        &[
            Value::Integer(m.version as i64),
            Value::Text(m.name.clone()),
            Value::Text(m.checksum.clone()),
            Value::Integer(ms),
        ],
    )
}

fn already_in_ledger(conn: &mut Connection, m: &Migration) -> Result<bool> {
    Ok(conn.query_scalar::<i64>(
        &format!("SELECT count(*) FROM {LEDGER_TABLE} WHERE version = ?"),
        &[Value::Integer(m.version as i64)],
    )? > 0)
}

/// Applies one migration with its ledger row. `Ok(false)` when the ledger
/// already has it (nothing was run). `-- dbmux:foreign-keys=off` on SQLite
/// follows SQLite's table-rebuild procedure: foreign keys off before BEGIN
/// (inside a transaction the pragma does nothing), checked before COMMIT,
/// on again after it.
fn apply(conn: &mut Connection, m: &Migration) -> Result<bool> {
    let switch = m.foreign_keys_off
        && conn.backend() == Backend::Sqlite
        && conn.query_scalar::<i64>("PRAGMA foreign_keys", &[])? != 0;
    if switch {
        conn.execute_batch("PRAGMA foreign_keys = OFF")?;
    }
    let r = apply_as_is(conn, m, switch);
    if switch {
        if let Err(e) = conn.execute_batch("PRAGMA foreign_keys = ON") {
            // never hand a connection without foreign keys back to the pool
            conn.discard();
            return r.and(Err(e));
        }
    }
    r
}

fn apply_as_is(conn: &mut Connection, m: &Migration, fk_switched: bool) -> Result<bool> {
    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as i64;
    if m.no_transaction {
        // the row first, marked failed: a crash part-way leaves it dirty
        if already_in_ledger(conn, m)? {
            return Ok(false);
        }
        insert_entry(conn, m, 0, false)?;
        run_body(conn, m, fk_switched).map_err(|e| {
            e.note(format!(
                "it ran outside a transaction (-- dbmux:no-transaction), so what ran before the \
                 failure stays, and the ledger marks V{:04} dirty until it is repaired",
                m.version
            ))
        })?;
        conn.execute(
            &format!("UPDATE {LEDGER_TABLE} SET success = TRUE, duration_ms = ? WHERE version = ?"),
            &[Value::Integer(ms()), Value::Integer(m.version as i64)],
        )?;
        return Ok(true);
    }
    conn.begin()?;
    let r = (|| -> Result<bool> {
        if already_in_ledger(conn, m)? {
            return Ok(false);
        }
        run_body(conn, m, fk_switched)?;
        insert_entry(conn, m, ms(), true)?;
        Ok(true)
    })();
    match r {
        Ok(true) => conn.commit().map(|()| true),
        Ok(false) => conn.rollback().map(|()| false),
        Err(e) => {
            if conn.in_transaction() {
                let _ = conn.rollback();
            }
            Err(e.note("rolled back: nothing of it was applied"))
        }
    }
}

/// Runs a migration's SQL on the open connection (in its transaction, or
/// in autocommit for `no-transaction`); an error names the line.
fn run_body(conn: &mut Connection, m: &Migration, fk_switched: bool) -> Result<()> {
    #[cfg(not(feature = "sqlite"))]
    let _ = fk_switched;
    let at_line = |offset: usize, e: Error| e.context(format!("line {}", line_of(&m.sql, offset)));
    match conn.backend() {
        #[cfg(feature = "sqlite")]
        Backend::Sqlite => run_sqlite(conn, m, fk_switched).map_err(|(at, e)| at_line(at, e)),
        _ if has_begin_atomic(&m.sql) => {
            // a SQL-standard function body holds semicolons of its own: the
            // script goes as one query (inside the migration's transaction)
            conn.execute_batch(&m.sql)
                .map_err(|e| at_line(pg_offset(&e, &m.sql), e))
        }
        _ => {
            // one statement at a time, so that an error names its line (and
            // because a multi-statement query is one implicit transaction,
            // which CREATE INDEX CONCURRENTLY refuses)
            for (offset, stmt) in split_statements(&m.sql) {
                let lead = leading_trivia(stmt);
                let body = &stmt[lead..];
                conn.execute_batch(body)
                    .map_err(|e| at_line(offset + lead + pg_offset(&e, body), e))?;
            }
            Ok(())
        }
    }
}

/// Whether a script has a SQL-standard function body (`BEGIN ATOMIC ...
/// END`), whose semicolons do not end the statement.
fn has_begin_atomic(sql: &str) -> bool {
    let words: Vec<String> = sql
        .split_whitespace()
        .map(|w| w.to_ascii_uppercase())
        .collect();
    words
        .windows(2)
        .any(|w| w[0] == "BEGIN" && w[1].starts_with("ATOMIC"))
}

/// Where in `sql` PostgreSQL points (its error position), as a byte
/// offset; 0 when it does not say.
fn pg_offset(e: &Error, sql: &str) -> usize {
    #[cfg(feature = "postgres")]
    {
        let pg = std::error::Error::source(e)
            .and_then(|s| s.downcast_ref::<tokio_postgres::Error>())
            .and_then(|p| p.as_db_error());
        if let Some(tokio_postgres::error::ErrorPosition::Original(p)) =
            pg.and_then(|d| d.position())
        {
            // a position in characters, from 1
            return sql
                .char_indices()
                .nth((*p as usize).saturating_sub(1))
                .map_or(sql.len(), |(i, _)| i);
        }
    }
    let _ = (e, sql);
    0
}

/// SQLite: statement by statement on the raw connection (the writer lane is
/// held for the whole run), with the foreign-key guard while they are on;
/// after a migration that ran with them switched off (`checked`),
/// `PRAGMA foreign_key_check` must find nothing.
#[cfg(feature = "sqlite")]
fn run_sqlite(conn: &mut Connection, m: &Migration, checked: bool) -> Result<(), (usize, Error)> {
    use super::sqlite::{foreign_key_violations, foreign_keys_on, run_script};
    let c = conn.as_sqlite().ok_or_else(|| {
        (
            0,
            Error::new(ErrorCode::Internal, "a SQLite connection is not SQLite"),
        )
    })?;
    let fk_on = foreign_keys_on(c).map_err(|e| (0, e.into()))?;
    run_script(c, &m.sql, fk_on)?;
    if checked {
        let (n, some) = foreign_key_violations(c).map_err(|e| (0, e.into()))?;
        if n > 0 {
            return Err((
                m.sql.len(),
                Error::new(
                    ErrorCode::Constraint,
                    format!(
                        "PRAGMA foreign_key_check found {n} row(s) whose parent is missing at \
                         the end of the migration ({}); fix it so that every child keeps its \
                         parent",
                        some.join("; ")
                    ),
                ),
            ));
        }
    }
    Ok(())
}
