//! Running statements on a SQLite connection: binding, the row count,
//! streaming rows into a [`RowSink`](crate::value::RowSink), one value.

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::ToSql;

use super::errors::classify;
use super::handle::Handle;
use super::lane::WriteGate;
use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{rewrite, Target};
use crate::value::{Column, Value};

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
            Value::Blob(b) => ValueRef::Blob(b),
        }))
    }
}

#[inline]
pub(crate) fn value_from_ref(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Integer(i),
        ValueRef::Real(r) => Value::Real(r),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

#[inline]
fn bind(stmt: &mut rusqlite::Statement<'_>, params: &[Value]) -> Result<()> {
    check_count(stmt, params)?;
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p)?;
    }
    Ok(())
}

/// Fails unless the statement takes exactly `params.len()` parameters.
#[inline]
fn check_count(stmt: &rusqlite::Statement<'_>, params: &[Value]) -> Result<()> {
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(param_count_error(expected, params.len()));
    }
    Ok(())
}

#[cold]
fn param_count_error(expected: usize, given: usize) -> Error {
    Error::new(
        ErrorCode::InvalidParameter,
        format!("the statement takes {expected} parameter(s) but {given} were given"),
    )
}

/// Runs a statement and returns the number of rows it changed. A statement
/// that returns rows (e.g. a PRAGMA) is run to completion and reports 0.
pub(crate) fn execute(
    conn: &Handle,
    gate: &mut WriteGate<'_>,
    sql: &str,
    params: &[Value],
) -> Result<u64> {
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    gate.before(|| stmt.readonly())?;
    if stmt.column_count() > 0 {
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
        return Ok(0);
    }
    run_counting(conn, &mut stmt)
}

/// Runs a statement without result columns and returns the rows it
/// changed. SQLite's `changes()` keeps the count of the last INSERT, UPDATE
/// or DELETE across statements that change no rows (DDL, BEGIN, PRAGMA
/// writes), so a statement that left `total_changes()` where it was changed
/// nothing, whatever `changes()` still says.
#[inline]
fn run_counting(conn: &rusqlite::Connection, stmt: &mut rusqlite::Statement<'_>) -> Result<u64> {
    let before = conn.total_changes();
    let n = stmt.raw_execute()? as u64;
    Ok(if conn.total_changes() == before { 0 } else { n })
}

/// Runs a statement and streams its result into `sink`; returns the rows
/// changed (0 for a query).
pub(crate) fn query_into(
    conn: &Handle,
    gate: &mut WriteGate<'_>,
    sql: &str,
    params: &[Value],
    sink: &mut dyn crate::value::RowSink,
) -> Result<u64> {
    use crate::value::ValueRef as V;
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    gate.before(|| stmt.readonly())?;
    let columns: Vec<Column> = stmt
        .columns()
        .into_iter()
        .map(|c| Column {
            name: c.name().to_string(),
            decl_type: c.decl_type().map(str::to_string),
            type_oid: None,
        })
        .collect();
    sink.columns(&columns);
    let n = columns.len();
    if n == 0 {
        return run_counting(conn, &mut stmt);
    }
    let mut rows = stmt.raw_query();
    while let Some(r) = rows.next()? {
        for i in 0..n {
            match r.get_ref(i)? {
                ValueRef::Null => sink.value(V::Null),
                ValueRef::Integer(x) => sink.value(V::Integer(x)),
                ValueRef::Real(x) => sink.value(V::Real(x)),
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(s) => sink.value(V::Text(s)),
                    Err(_) => sink.value(V::Text(&String::from_utf8_lossy(t))),
                },
                ValueRef::Blob(b) => sink.value(V::Blob(b)),
            }
        }
        sink.end_row();
        if !sink.wants_more() {
            break;
        }
    }
    Ok(0)
}

/// Runs a script of statements without parameters, each through the gate
/// (a `BEGIN IMMEDIATE` or `EXCLUSIVE` anywhere in it takes the lane first:
/// SQLite reports transaction control as read-only, but those take the
/// write lock).
pub(crate) fn execute_batch(
    conn: &rusqlite::Connection,
    gate: &mut WriteGate<'_>,
    sql: &str,
) -> Result<()> {
    if gate.is_open() && begins_a_write(sql) {
        gate.before(|| false)?;
    }
    use rusqlite::fallible_iterator::FallibleIterator;
    let mut batch = rusqlite::Batch::new(conn, sql);
    while let Some(mut stmt) = batch.next()? {
        gate.before(|| stmt.readonly())?;
        let mut rows = stmt.raw_query();
        while rows.next()?.is_some() {}
    }
    Ok(())
}

/// Whether a script contains `BEGIN IMMEDIATE` or `BEGIN EXCLUSIVE` (words
/// compared without case, whatever the spacing).
fn begins_a_write(sql: &str) -> bool {
    let mut words = sql
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty());
    let mut prev_begin = false;
    for w in words.by_ref() {
        if prev_begin
            && (w.eq_ignore_ascii_case("IMMEDIATE") || w.eq_ignore_ascii_case("EXCLUSIVE"))
        {
            return true;
        }
        prev_begin = w.eq_ignore_ascii_case("BEGIN");
    }
    false
}

#[cold]
fn no_rows() -> Error {
    Error::new(ErrorCode::NoRows, "the query returned no rows")
}

/// Runs a query and returns the first column of the first row (a statement
/// without result columns, such as an INSERT, runs and reports no rows).
#[inline(always)]
pub(crate) fn query_value(
    conn: &Handle,
    gate: &mut WriteGate<'_>,
    sql: &str,
    params: &[Value],
) -> Result<Value> {
    let sql = &*rewrite(sql, Target::Question)?;
    let mut stmt = conn.prepare_cached(sql)?;
    check_count(&stmt, params)?;
    gate.before(|| stmt.readonly())?;
    // Stay in rusqlite's error type on the hot path; convert once at the end.
    let first = (|| -> rusqlite::Result<Option<Value>> {
        for (i, p) in params.iter().enumerate() {
            stmt.raw_bind_parameter(i + 1, p)?;
        }
        let mut rows = stmt.raw_query();
        match rows.next()? {
            Some(r) => Ok(Some(value_from_ref(r.get_ref(0)?))),
            None => Ok(None),
        }
    })();
    match first {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(no_rows()),
        Err(e) => Err(classify(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::begins_a_write;

    #[test]
    fn begin_immediate_is_found_in_a_script() {
        assert!(begins_a_write("BEGIN IMMEDIATE"));
        assert!(begins_a_write("begin\n  exclusive transaction;"));
        assert!(begins_a_write(
            "SELECT 1; BEGIN IMMEDIATE; INSERT INTO t VALUES (1)"
        ));
        assert!(!begins_a_write("BEGIN"));
        assert!(!begins_a_write("BEGIN DEFERRED"));
        assert!(!begins_a_write("SELECT 'immediate'"));
    }
}
