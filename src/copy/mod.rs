#![doc = include_str!("README.md")]

mod convert;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;

use serde::Serialize;

use crate::connection::Connection;
use crate::error::{Error, ErrorCode, Result};
use crate::manager::Manager;
use crate::platform::Instant;
use crate::url::Backend;
use crate::value::Value;
use convert::Kind;

/// How many bytes of COPY text go to the server at once.
const CHUNK: usize = 256 * 1024;
/// How often progress is reported during a table.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Where a copy stands, for [`CopyOptions::progress`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyProgress {
    /// The table being copied.
    pub table: String,
    /// Its rows sent so far.
    pub rows: u64,
    /// Its rows in the source.
    pub total: u64,
    /// Rows per second over the table so far.
    pub rows_per_second: f64,
}

/// Options of [`Manager::copy_to`].
#[derive(Default)]
pub struct CopyOptions<'a> {
    tables: Option<Vec<String>>,
    truncate: bool,
    progress: Option<&'a mut dyn FnMut(&CopyProgress)>,
}

impl std::fmt::Debug for CopyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CopyOptions")
            .field("tables", &self.tables)
            .field("truncate", &self.truncate)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl<'a> CopyOptions<'a> {
    /// Every table, into empty target tables, without progress reports.
    pub fn new() -> CopyOptions<'a> {
        CopyOptions::default()
    }

    /// Copies only these tables (still in foreign-key order).
    pub fn tables<S: Into<String>>(mut self, tables: impl IntoIterator<Item = S>) -> Self {
        self.tables = Some(tables.into_iter().map(Into::into).collect());
        self
    }

    /// Empties the target tables first (`TRUNCATE`, inside the copy's
    /// transaction) instead of refusing tables that have rows.
    pub fn truncate(mut self, on: bool) -> Self {
        self.truncate = on;
        self
    }

    /// Calls `f` about once a second during a table, and at its end.
    pub fn progress(mut self, f: &'a mut dyn FnMut(&CopyProgress)) -> Self {
        self.progress = Some(f);
        self
    }
}

/// One table of a [`CopyReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableReport {
    /// The table (as PostgreSQL names it).
    pub table: String,
    /// Rows read from SQLite.
    pub rows: u64,
    /// Rows counted in PostgreSQL afterwards (equal, or the copy failed).
    pub target_rows: u64,
    /// The columns copied.
    pub columns: usize,
    /// How long the table took.
    pub duration_ms: f64,
}

/// What [`Manager::copy_to`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyReport {
    /// The SQLite database.
    pub source: String,
    /// The PostgreSQL database, with any password redacted.
    pub target: String,
    /// Every table, in the order copied (parents before children).
    pub tables: Vec<TableReport>,
    /// All rows copied.
    pub rows: u64,
    /// The sequences (serial and identity columns) set past the largest
    /// copied value, as `sequence=value`.
    pub sequences: Vec<String>,
    /// How long the whole copy took, COMMIT included.
    pub duration_ms: f64,
    /// Rows per second over the whole copy.
    pub rows_per_second: f64,
}

impl CopyReport {
    /// The report as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A name quoted for SQL (both backends).
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A table of the target, with its columns.
struct Target {
    oid: i64,
    /// `oid::regclass::text`: quoted as needed, schema-qualified if not on
    /// the search path.
    name: String,
    /// name -> (typname of the base type, generated)
    columns: Vec<(String, String, bool)>,
}

fn find_target(dst: &mut Connection, table: &str) -> Result<Option<Target>> {
    let rows = dst.query(
        "SELECT c.oid::bigint, c.oid::regclass::text FROM pg_class c WHERE c.oid = \
         COALESCE(to_regclass(quote_ident(?)), to_regclass(quote_ident(lower(?))))",
        &[Value::from(table), Value::from(table)],
    )?;
    let Some(r) = rows.iter().next() else {
        return Ok(None);
    };
    let (oid, name): (i64, String) = (r.get(0)?, r.get(1)?);
    let cols = dst.query(
        "SELECT a.attname::text, CASE WHEN t.typtype = 'd' THEN b.typname ELSE t.typname END::text, \
         a.attgenerated <> '' FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_type b ON b.oid = t.typbasetype \
         WHERE a.attrelid = ?::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        &[Value::Integer(oid)],
    )?;
    let mut columns = Vec::new();
    for c in cols.iter() {
        columns.push((c.get(0)?, c.get(1)?, c.get::<bool>(2)?));
    }
    Ok(Some(Target { oid, name, columns }))
}

/// The user tables of the SQLite database (not SQLite's own, not the
/// migration ledger, not virtual tables or their shadow tables).
fn source_tables(c: &rusqlite::Connection) -> Result<Vec<String>> {
    let listed = c
        .prepare(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND \
             name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name <> ? ORDER BY name",
        )
        .and_then(|mut s| {
            s.query_map([crate::migrate::LEDGER_TABLE], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        });
    match listed {
        Ok(v) => Ok(v),
        // SQLite before 3.37 has no table_list: the schema, minus virtual tables
        Err(_) => c
            .prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE \
                 'sqlite\\_%' ESCAPE '\\' AND name <> ? AND sql NOT LIKE 'CREATE VIRTUAL%' \
                 ORDER BY name",
            )
            .and_then(|mut s| {
                s.query_map([crate::migrate::LEDGER_TABLE], |r| r.get(0))?
                    .collect::<rusqlite::Result<Vec<String>>>()
            })
            .map_err(Error::from),
    }
}

/// A table's columns in SQLite (generated ones left out), and whether it
/// has a rowid.
fn source_columns(c: &rusqlite::Connection, table: &str) -> Result<(Vec<String>, bool)> {
    let cols = c
        .prepare("SELECT name FROM pragma_table_xinfo(?) WHERE hidden = 0 ORDER BY cid")?
        .query_map([table], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let rowid = c
        .prepare(&format!("SELECT rowid FROM {} LIMIT 0", quote(table)))
        .is_ok();
    Ok((cols, rowid))
}

/// Parents before children (by the target's foreign keys); ties, and
/// tables on a cycle, by name.
fn fk_order(dst: &mut Connection, tables: Vec<(String, Target)>) -> Result<Vec<(String, Target)>> {
    let edges = dst.query(
        "SELECT conrelid::bigint, confrelid::bigint FROM pg_constraint WHERE contype = 'f' AND \
         conrelid <> confrelid",
        &[],
    )?;
    let ours: BTreeSet<i64> = tables.iter().map(|(_, t)| t.oid).collect();
    let mut parents: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for e in edges.iter() {
        let (child, parent): (i64, i64) = (e.get(0)?, e.get(1)?);
        if ours.contains(&child) && ours.contains(&parent) {
            parents.entry(child).or_default().insert(parent);
        }
    }
    let mut left = tables;
    let mut done: BTreeSet<i64> = BTreeSet::new();
    let mut out = Vec::with_capacity(left.len());
    while !left.is_empty() {
        let ready = left.iter().position(|(_, t)| match parents.get(&t.oid) {
            None => true,
            Some(ps) => ps.iter().all(|p| done.contains(p)),
        });
        // a cycle: take the first by name (its keys must be deferrable)
        let i = ready.unwrap_or(0);
        let item = left.remove(i);
        done.insert(item.1.oid);
        out.push(item);
    }
    Ok(out)
}

/// A table's plan: what to read from SQLite and how to write each column.
struct Plan {
    source: String,
    target: Target,
    /// (source column, target column, kind)
    columns: Vec<(String, String, Kind)>,
    rowid: bool,
    total: u64,
}

fn plan_table(src: &rusqlite::Connection, table: &str, target: Target) -> Result<Plan> {
    let (cols, rowid) = source_columns(src, table)?;
    let mut columns = Vec::new();
    for col in cols {
        let found = target
            .columns
            .iter()
            .find(|(n, _, _)| *n == col)
            .or_else(|| {
                let lower = col.to_lowercase();
                target.columns.iter().find(|(n, _, _)| *n == lower)
            });
        match found {
            // a generated column is computed by PostgreSQL
            Some((_, _, true)) => {}
            Some((name, typ, false)) => columns.push((col, name.clone(), Kind::of(typ))),
            None => {
                return Err(Error::new(
                    ErrorCode::InvalidParameter,
                    format!(
                        "table {table}: SQLite's column {col} has no column in PostgreSQL's {} \
                         (its columns: {}); the schemas must come from the same migrations",
                        target.name,
                        target
                            .columns
                            .iter()
                            .map(|c| c.0.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ))
            }
        }
    }
    let total: i64 = src.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| {
        r.get(0)
    })?;
    Ok(Plan {
        source: table.to_string(),
        target,
        columns,
        rowid,
        total: total as u64,
    })
}

/// Reads a table from SQLite and hands COPY text to `tx` in chunks, each
/// with its number of rows; the number of rows, or the error of a value
/// that does not fit its column.
fn produce(
    c: &rusqlite::Connection,
    plan: &Plan,
    tx: mpsc::SyncSender<(Vec<u8>, u64)>,
) -> Result<u64> {
    let cols: Vec<String> = plan.columns.iter().map(|(s, _, _)| quote(s)).collect();
    let sql = format!(
        "SELECT {}{} FROM {}",
        if plan.rowid { "rowid, " } else { "" },
        if cols.is_empty() {
            "NULL".to_string()
        } else {
            cols.join(", ")
        },
        quote(&plan.source)
    );
    let mut stmt = c.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let first = usize::from(plan.rowid);
    let mut buf = Vec::with_capacity(CHUNK + 4096);
    let (mut n, mut sent): (u64, u64) = (0, 0);
    while let Some(r) = rows.next()? {
        n += 1;
        for (i, (col, _, kind)) in plan.columns.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            let v = r.get_ref(first + i)?;
            if let Err(need) = convert::push(&mut buf, *kind, v) {
                let at = if plan.rowid {
                    format!("rowid {}", r.get::<_, i64>(0)?)
                } else {
                    format!("row {n} (a WITHOUT ROWID table)")
                };
                return Err(Error::new(
                    ErrorCode::TypeMismatch,
                    format!(
                        "table {}, {at}, column {col}: SQLite holds a {} value where \
                         PostgreSQL's {} needs {need}; fix the row in SQLite (or the column's \
                         type in the migrations) and copy again; nothing was committed",
                        plan.source,
                        convert::sqlite_type(v),
                        plan.target.name
                    ),
                ));
            }
        }
        buf.push(b'\n');
        if buf.len() >= CHUNK {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(CHUNK + 4096));
            if tx.send((full, n - sent)).is_err() {
                // the sending side failed: its error is the one to report
                return Ok(n);
            }
            sent = n;
        }
    }
    if !buf.is_empty() {
        let _ = tx.send((buf, n - sent));
    }
    Ok(n)
}

/// Sends one chunk through a COPY sink.
async fn send(
    mut sink: std::pin::Pin<&mut tokio_postgres::CopyInSink<bytes::Bytes>>,
    chunk: bytes::Bytes,
) -> std::result::Result<(), tokio_postgres::Error> {
    use futures_sink::Sink;
    let mut chunk = Some(chunk);
    std::future::poll_fn(|cx| {
        if let Some(c) = chunk.take() {
            match sink.as_mut().poll_ready(cx) {
                std::task::Poll::Ready(Ok(())) => sink.as_mut().start_send(c)?,
                std::task::Poll::Ready(Err(e)) => return std::task::Poll::Ready(Err(e)),
                std::task::Poll::Pending => {
                    chunk = Some(c);
                    return std::task::Poll::Pending;
                }
            }
        }
        sink.as_mut().poll_flush(cx)
    })
    .await
}

fn no_backend(what: &str) -> Error {
    Error::new(
        ErrorCode::Internal,
        format!("a {what} connection is not {what}"),
    )
}

/// Copies one table: the COPY stream fed by a reader thread.
fn copy_table(
    src: &mut Connection,
    dst: &mut Connection,
    plan: &Plan,
    progress: &mut Option<&mut dyn FnMut(&CopyProgress)>,
) -> Result<u64> {
    let start = Instant::now();
    let cols: Vec<String> = plan.columns.iter().map(|(_, t, _)| quote(t)).collect();
    let copy_sql = format!("COPY {} ({}) FROM STDIN", plan.target.name, cols.join(", "));
    let pg = dst.as_postgres().ok_or_else(|| no_backend("PostgreSQL"))?;
    let sink = pg.block_on(pg.client().copy_in::<_, bytes::Bytes>(copy_sql.as_str()))?;
    let mut sink = Box::pin(sink);
    let raw = src.as_sqlite().ok_or_else(|| no_backend("SQLite"))?;
    let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, u64)>(4);
    let mut sent: Result<()> = Ok(());
    let mut told = Instant::now();
    let mut rows_sent = 0u64;
    let produced = std::thread::scope(|s| {
        let reader = s.spawn(move || produce(raw, plan, tx));
        for (chunk, rows) in rx.iter() {
            if sent.is_err() {
                continue; // drain, so the reader finishes
            }
            rows_sent += rows;
            sent = pg.block_on(send(sink.as_mut(), bytes::Bytes::from(chunk)));
            if let Some(p) = progress.as_mut() {
                if told.elapsed() >= PROGRESS_EVERY {
                    told = Instant::now();
                    p(&CopyProgress {
                        table: plan.target.name.clone(),
                        rows: rows_sent,
                        total: plan.total,
                        rows_per_second: rows_sent as f64 / start.elapsed().as_secs_f64(),
                    });
                }
            }
        }
        reader.join().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorCode::Internal,
                "the SQLite reader panicked",
            ))
        })
    });
    // the reader's error first (a value that does not fit), then the server's
    let rows = produced?;
    sent?;
    let copied = pg.block_on(sink.as_mut().finish())?;
    if let Some(p) = progress.as_mut() {
        p(&CopyProgress {
            table: plan.target.name.clone(),
            rows,
            total: plan.total,
            rows_per_second: rows as f64 / start.elapsed().as_secs_f64().max(1e-9),
        });
    }
    if copied != rows {
        return Err(Error::new(
            ErrorCode::Sql,
            format!(
                "table {}: COPY stored {copied} rows of the {rows} sent; nothing was committed",
                plan.target.name
            ),
        ));
    }
    Ok(rows)
}

/// Sets each serial / identity sequence of `t` past its largest value.
fn reset_sequences(dst: &mut Connection, t: &Target) -> Result<Vec<String>> {
    let seqs = dst.query(
        "SELECT a.attname::text, pg_get_serial_sequence(?, a.attname) FROM pg_attribute a \
         WHERE a.attrelid = ?::bigint::oid AND a.attnum > 0 AND NOT a.attisdropped AND \
         pg_get_serial_sequence(?, a.attname) IS NOT NULL",
        &[
            Value::from(t.name.as_str()),
            Value::Integer(t.oid),
            Value::from(t.name.as_str()),
        ],
    )?;
    let mut out = Vec::new();
    for r in seqs.iter() {
        let (col, seq): (String, String) = (r.get(0)?, r.get(1)?);
        let set = dst.query(
            &format!(
                "SELECT setval(?::regclass, m) FROM (SELECT max({})::bigint AS m FROM {}) s \
                 WHERE m IS NOT NULL",
                quote(&col),
                t.name
            ),
            &[Value::from(seq.as_str())],
        )?;
        if let Some(v) = set.iter().next() {
            out.push(format!("{seq}={}", v.get::<i64>(0)?));
        }
    }
    Ok(out)
}

impl Manager {
    /// Copies every table's rows from this SQLite database into the
    /// PostgreSQL database of `target`, whose schema the same migrations
    /// made: tables in foreign-key order (parents first), rows streamed
    /// through `COPY`, all in one transaction, so that a failure leaves the
    /// target as it was. Each value is converted by its target column's
    /// type (0/1 to boolean, ISO text to date, time and timestamps, numbers
    /// and decimal text to numeric exactly, blobs to bytea, text to
    /// json/jsonb/uuid) and checked first: one that does not fit is an
    /// error naming the table, the rowid, the column and the value's type.
    /// Afterwards serial and identity sequences are set past the largest
    /// copied value, and every table's rows are counted on both sides.
    ///
    /// The source is read in one read transaction (a consistent snapshot
    /// while writers go on). The ledger `_dbmux_migrations` is not copied:
    /// the target has its own, from running the migrations.
    ///
    /// # Errors
    /// [`ErrorCode::Misuse`] unless this is SQLite and `target` PostgreSQL;
    /// [`ErrorCode::InvalidParameter`] for a table or column missing in the
    /// target, a target table that has rows (without
    /// [`CopyOptions::truncate`]), or an unknown table in
    /// [`CopyOptions::tables`]; [`ErrorCode::TypeMismatch`] for a value that
    /// does not fit; the server's error otherwise. Nothing is committed on
    /// any error.
    pub fn copy_to(&self, target: &Manager, options: CopyOptions<'_>) -> Result<CopyReport> {
        let start = Instant::now();
        if self.config().backend() != Backend::Sqlite
            || target.config().backend() != Backend::Postgres
        {
            return Err(Error::new(
                ErrorCode::Misuse,
                format!(
                    "copy_to copies from SQLite into PostgreSQL; got {} into {}",
                    self.config().backend().name(),
                    target.config().backend().name()
                ),
            ));
        }
        let CopyOptions {
            tables: only,
            truncate,
            mut progress,
        } = options;
        let mut src = self.get_read()?;
        let mut dst = target.get()?;
        {
            let raw = src.as_sqlite().ok_or_else(|| no_backend("SQLite"))?;
            // one snapshot for every table and count
            raw.execute_batch("BEGIN")?;
            raw.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        }
        let r = (|| {
            let raw = src.as_sqlite().ok_or_else(|| no_backend("SQLite"))?;
            let mut names = source_tables(raw)?;
            if let Some(only) = &only {
                for t in only {
                    if !names.iter().any(|n| n.eq_ignore_ascii_case(t)) {
                        return Err(Error::new(
                            ErrorCode::InvalidParameter,
                            format!(
                                "--tables names {t}, which the SQLite database does not have \
                                 (its tables: {})",
                                names.join(", ")
                            ),
                        ));
                    }
                }
                names.retain(|n| only.iter().any(|t| n.eq_ignore_ascii_case(t)));
            }
            dst.begin()?;
            // DB_STATEMENT_TIMEOUT is for the app's statements; a COPY of a
            // large table may take minutes (this transaction only)
            dst.execute_batch("SET LOCAL statement_timeout = 0")?;
            let mut targets = Vec::new();
            for n in names {
                match find_target(&mut dst, &n)? {
                    Some(t) => targets.push((n, t)),
                    None => {
                        return Err(Error::new(
                            ErrorCode::InvalidParameter,
                            format!(
                                "table {n} is in SQLite but not in {}; create the schema with \
                                 the same migrations first (dbmux migrate --url ... --dir ...), \
                                 or leave it out with --tables",
                                target.config().redacted_url()
                            ),
                        ))
                    }
                }
            }
            let ordered = fk_order(&mut dst, targets)?;
            if truncate && !ordered.is_empty() {
                let all: Vec<&str> = ordered.iter().map(|(_, t)| t.name.as_str()).collect();
                dst.execute_batch(&format!("TRUNCATE {}", all.join(", ")))?;
            } else {
                for (_, t) in &ordered {
                    let has: bool = dst
                        .query_scalar(&format!("SELECT EXISTS (SELECT 1 FROM {})", t.name), &[])?;
                    if has {
                        return Err(Error::new(
                            ErrorCode::InvalidParameter,
                            format!(
                                "PostgreSQL's table {} is not empty; pass --truncate \
                                 (CopyOptions::truncate) to replace its rows",
                                t.name
                            ),
                        ));
                    }
                }
            }
            let mut plans = Vec::new();
            {
                let raw = src.as_sqlite().ok_or_else(|| no_backend("SQLite"))?;
                for (n, t) in ordered {
                    plans.push(plan_table(raw, &n, t)?);
                }
            }
            let mut tables = Vec::new();
            let mut sequences = Vec::new();
            let mut total = 0;
            for plan in &plans {
                let t0 = Instant::now();
                let rows = copy_table(&mut src, &mut dst, plan, &mut progress)?;
                let counted: i64 =
                    dst.query_scalar(&format!("SELECT count(*) FROM {}", plan.target.name), &[])?;
                if counted as u64 != plan.total || rows != plan.total {
                    return Err(Error::new(
                        ErrorCode::Sql,
                        format!(
                            "table {}: {} rows in SQLite, {rows} copied, {counted} in \
                             PostgreSQL (a trigger or rule on the target?); nothing was \
                             committed",
                            plan.target.name, plan.total
                        ),
                    ));
                }
                sequences.extend(reset_sequences(&mut dst, &plan.target)?);
                total += rows;
                tables.push(TableReport {
                    table: plan.target.name.clone(),
                    rows,
                    target_rows: counted as u64,
                    columns: plan.columns.len(),
                    duration_ms: t0.elapsed().as_secs_f64() * 1000.0,
                });
            }
            dst.commit()?;
            let secs = start.elapsed().as_secs_f64();
            Ok(CopyReport {
                source: self.config().redacted_url(),
                target: target.config().redacted_url(),
                tables,
                rows: total,
                sequences,
                duration_ms: secs * 1000.0,
                rows_per_second: total as f64 / secs.max(1e-9),
            })
        })();
        if dst.in_transaction() {
            let _ = dst.rollback();
        }
        if let Some(raw) = src.as_sqlite() {
            let _ = raw.execute_batch("ROLLBACK");
        }
        r
    }
}
