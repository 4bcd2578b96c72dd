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

/// A statement prepared on the connection, with its result's columns as
/// dbmux describes them (made once, not per execution).
#[derive(Clone)]
pub(super) struct Prepared {
    stmt: Statement,
    columns: Arc<[Column]>,
}

/// Notes transaction-control statements so that a connection returned with
/// an open transaction is rolled back.
fn track_tx(c: &mut PgConn, sql: &str) {
    // compared in place: this runs before every statement
    let s = sql.trim_start();
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(s.len());
    let word = &s[..end];
    let is = |k: &str| word.eq_ignore_ascii_case(k);
    if is("BEGIN") || is("START") {
        c.in_tx = true;
    } else if is("COMMIT") || is("END") {
        c.in_tx = false;
        if std::mem::take(&mut c.ddl_in_tx) {
            c.known.schema_changed();
        }
    } else if is("ABORT") {
        c.in_tx = false;
    } else if is("CREATE") || is("ALTER") || is("DROP") || is("COMMENT") {
        c.known.schema_changed();
        c.ddl_in_tx |= c.in_tx;
    } else if is("ROLLBACK") {
        let rest = s[end..].trim_start();
        if !rest.get(..2).is_some_and(|t| t.eq_ignore_ascii_case("TO")) {
            c.in_tx = false;
        }
    } else if is("PREPARE") && sql.to_ascii_uppercase().contains("TRANSACTION") {
        c.in_tx = false;
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
    mut run: impl FnMut(&mut PgConn, &Prepared) -> Result<T>,
) -> Result<T> {
    let p = prepared(c, sql)?;
    check_count(&p.stmt, params)?;
    match run(c, &p) {
        Err(e) if stale_plan(&e) && !c.in_tx => {
            forget_statements(c);
            let p = prepared(c, sql)?;
            run(c, &p)
        }
        r => r,
    }
}

/// Empties the statement cache: they are prepared again when used.
fn forget_statements(c: &mut PgConn) {
    c.statements.clear();
    c.last = None;
}

fn prepared(c: &mut PgConn, sql: &str) -> Result<Prepared> {
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
    let p = Prepared {
        columns: columns(&stmt),
        stmt,
    };
    if c.statements.len() >= STATEMENT_CACHE {
        c.statements.clear();
    }
    c.statements.insert(key.to_string(), p.clone());
    c.last = Some((key.to_string(), p.clone()));
    Ok(p)
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
    with_statement(c, sql, params, |c, prep| {
        c.client()
            .call("executing", c.client().client().execute(&prep.stmt, &p))
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
    track_tx(c, sql);
    let p = refs(params);
    let changed = with_statement(c, sql, params, |c, prep| {
        let client = c.client().client();
        let stmt = &prep.stmt;
        if prep.columns.is_empty() {
            let changed = c.client().call("executing", client.execute(stmt, &p))?;
            sink.columns(&[]);
            return Ok(changed);
        }
        // Rows go into the sink as they arrive, without a list of all of
        // them first.
        c.client().call("querying", async {
            let rows = client.query_raw(stmt, p.iter().copied()).await?;
            let mut rows = std::pin::pin!(rows);
            sink.columns(&prep.columns);
            let mut fed = Ok(());
            while let Some(row) =
                std::future::poll_fn(|cx| futures_core::Stream::poll_next(rows.as_mut(), cx))
                    .await
                    .transpose()?
            {
                fed = feed(&row, prep.columns.len(), sink);
                if fed.is_err() || !sink.wants_more() {
                    // the rest is read and dropped by the connection
                    break;
                }
            }
            Ok(fed)
        })??;
        Ok(0)
    })?;
    Ok(changed)
}

/// One row into `sink`.
fn feed(r: &tokio_postgres::Row, n: usize, sink: &mut dyn crate::value::RowSink) -> Result<()> {
    use crate::postgres::values::Cell;
    for i in 0..n {
        match r.try_get::<_, Cell<'_>>(i).map_err(decode_error)? {
            Cell::Ref(v) => sink.value(v),
            Cell::Owned(v) => sink.value(v.as_ref()),
        }
    }
    sink.end_row();
    Ok(())
}

pub(super) fn query_value(c: &mut PgConn, sql: &str, params: &[Value]) -> Result<Value> {
    let prep = prepared(c, sql)?;
    check_count(&prep.stmt, params)?;
    let p = refs(params);
    let rows = c
        .client()
        .call("querying", c.client().client().query(&prep.stmt, &p))?;
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
