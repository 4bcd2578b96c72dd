//! Running statements on a PostgreSQL connection: the prepared-statement
//! cache, typed binding, streaming rows, transaction tracking.

use std::sync::Arc;

use tokio_postgres::Statement;

use super::errors::decode_error;
use super::values::PgValue;
use super::PgConn;
use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{rewrite, Target};
use crate::value::{Column, Value};

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// Notes transaction-control statements so that a connection returned with
/// an open transaction is rolled back.
fn track_tx(c: &mut PgConn, sql: &str) {
    let first: String = sql
        .trim_start()
        .chars()
        .take_while(|ch| ch.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => c.in_tx = true,
        "COMMIT" | "END" => {
            c.in_tx = false;
            if std::mem::take(&mut c.ddl_in_tx) {
                c.known.schema_changed();
            }
        }
        "ABORT" => c.in_tx = false,
        "CREATE" | "ALTER" | "DROP" | "COMMENT" => {
            c.known.schema_changed();
            c.ddl_in_tx |= c.in_tx;
        }
        "ROLLBACK" => {
            let rest = sql.trim_start()[8..].trim_start().to_ascii_uppercase();
            if !rest.starts_with("TO") {
                c.in_tx = false;
            }
        }
        "PREPARE" if sql.to_ascii_uppercase().contains("TRANSACTION") => c.in_tx = false,
        _ => {}
    }
}

/// SQLSTATE 0A000 "cached plan must not change result type": a statement
/// prepared before its table changed.
fn stale_plan(e: &Error) -> bool {
    e.sqlstate().as_deref() == Some("0A000")
}

/// Runs `run` with the prepared `sql`; when the plan went stale outside a
/// transaction (nothing ran), prepares it again and runs once more.
fn with_statement<T>(
    c: &mut PgConn,
    sql: &str,
    params: &[Value],
    mut run: impl FnMut(&mut PgConn, &Statement) -> Result<T>,
) -> Result<T> {
    let stmt = prepared(c, sql)?;
    check_count(&stmt, params)?;
    match run(c, &stmt) {
        Err(e) if stale_plan(&e) && !c.in_tx => {
            forget_statements(c);
            let stmt = prepared(c, sql)?;
            run(c, &stmt)
        }
        r => r,
    }
}

/// Empties the statement cache: they are prepared again when used.
fn forget_statements(c: &mut PgConn) {
    c.statements.clear();
    c.last = None;
}

fn prepared(c: &mut PgConn, sql: &str) -> Result<Statement> {
    let epoch = c.known.schema_epoch();
    if epoch != c.epoch {
        forget_statements(c);
        c.epoch = epoch;
    }
    // SQL with a `?` means something else verbatim: its own cache key
    let verbatim_key;
    let key = if c.verbatim && sql.as_bytes().contains(&b'?') {
        verbatim_key = format!("\0{sql}");
        verbatim_key.as_str()
    } else {
        sql
    };
    if let Some((last_sql, s)) = &c.last {
        if last_sql == key {
            return Ok(s.clone());
        }
    }
    if let Some(s) = c.statements.get(key) {
        return Ok(s.clone());
    }
    let pg_sql = if c.verbatim {
        std::borrow::Cow::Borrowed(sql)
    } else {
        rewrite(sql, Target::Dollar)?
    };
    let stmt = c.client().call(
        "preparing a statement",
        c.client().client().prepare(&pg_sql),
    )?;
    if c.statements.len() >= STATEMENT_CACHE {
        c.statements.clear();
    }
    c.statements.insert(key.to_string(), stmt.clone());
    c.last = Some((key.to_string(), stmt.clone()));
    Ok(stmt)
}

fn check_count(stmt: &Statement, params: &[Value]) -> Result<()> {
    let expected = stmt.params().len();
    if expected != params.len() {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!(
                "the statement takes {expected} parameter(s) but {} were given",
                params.len()
            ),
        ));
    }
    Ok(())
}

fn refs(params: &[Value]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

fn columns(stmt: &Statement) -> Arc<[Column]> {
    stmt.columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            decl_type: Some(c.type_().name().to_string()),
            type_oid: Some(c.type_().oid()),
        })
        .collect()
}

pub(super) fn execute(c: &mut PgConn, sql: &str, params: &[Value]) -> Result<u64> {
    track_tx(c, sql);
    let p = refs(params);
    with_statement(c, sql, params, |c, stmt| {
        c.client()
            .call("executing", c.client().client().execute(stmt, &p))
    })
}

pub(super) fn execute_batch(c: &mut PgConn, sql: &str) -> Result<()> {
    track_tx(c, sql);
    c.client()
        .call("executing", c.client().client().batch_execute(sql))
}

/// Runs a statement and streams its result into `sink`; returns the rows
/// changed (0 for a query).
pub(super) fn query_into(
    c: &mut PgConn,
    sql: &str,
    params: &[Value],
    sink: &mut dyn crate::value::RowSink,
) -> Result<u64> {
    use crate::postgres::values::Cell;
    track_tx(c, sql);
    let p = refs(params);
    let (cols, rows) = with_statement(c, sql, params, |c, stmt| {
        let cols = columns(stmt);
        let client = c.client().client();
        let rows = if cols.is_empty() {
            Err(c.client().call("executing", client.execute(stmt, &p))?)
        } else {
            Ok(c.client().call("querying", client.query(stmt, &p))?)
        };
        Ok((cols, rows))
    })?;
    sink.columns(&cols);
    let rows = match rows {
        Err(changed) => return Ok(changed),
        Ok(rows) => rows,
    };
    let n = cols.len();
    for r in &rows {
        for i in 0..n {
            match r.try_get::<_, Cell<'_>>(i).map_err(decode_error)? {
                Cell::Ref(v) => sink.value(v),
                Cell::Owned(v) => sink.value(v.as_ref()),
            }
        }
        sink.end_row();
        if !sink.wants_more() {
            break;
        }
    }
    Ok(0)
}

pub(super) fn query_value(c: &mut PgConn, sql: &str, params: &[Value]) -> Result<Value> {
    let stmt = prepared(c, sql)?;
    check_count(&stmt, params)?;
    let p = refs(params);
    let rows = c
        .client()
        .call("querying", c.client().client().query(&stmt, &p))?;
    match rows.first() {
        Some(r) if !r.is_empty() => r
            .try_get::<_, PgValue>(0)
            .map(|v| v.0)
            .map_err(decode_error),
        _ => Err(Error::new(ErrorCode::NoRows, "the query returned no rows")),
    }
}

pub(super) fn last_insert_id(c: &mut PgConn) -> Result<i64> {
    // Inside a transaction a failing lastval() would abort it: guard it with
    // a savepoint so that the caller's transaction survives the error.
    let in_tx = c.in_tx;
    let client = c.client().client();
    let result = c.client().call("reading lastval()", async {
        if in_tx {
            client.batch_execute("SAVEPOINT dbmux_lastval").await?;
        }
        let r = client.query_one("SELECT lastval()", &[]).await;
        if in_tx {
            let undo = if r.is_ok() {
                "RELEASE SAVEPOINT dbmux_lastval"
            } else {
                "ROLLBACK TO SAVEPOINT dbmux_lastval; RELEASE SAVEPOINT dbmux_lastval"
            };
            client.batch_execute(undo).await?;
        }
        r
    });
    let row = result.map_err(|inner| {
        if inner.code() != ErrorCode::Sql {
            return inner;
        }
        Error::new(
            ErrorCode::Sql,
            format!(
                "no last insert id: {inner}; on PostgreSQL use INSERT ... RETURNING id, or \
                 insert into a table with a serial/identity column first"
            ),
        )
    })?;
    row.try_get::<_, i64>(0).map_err(decode_error)
}
