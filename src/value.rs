//! `Value`, the one value type of the query API, and the rows it comes back in.

use std::fmt;
use std::sync::Arc;

use crate::error::{Error, ErrorCode, Result};

/// A value bound to a statement or read from a row.
///
/// The same five kinds exist on every backend: SQLite's storage classes.
/// Parameters use `?` placeholders; [`params!`](crate::params) converts
/// integers, floats, bools (as 0/1), strings, byte vectors and `Option`s.
/// Rows come back with column names and declared types (known even when
/// there are no rows), and [`Row::get`] converts to `i64`, `i32`, `u32`,
/// `f64`, `bool`, `String`, `Vec<u8>`, `Option<T>` or `Value`. How
/// PostgreSQL's types map to these five: [`dbmux::postgres`](crate::postgres).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// The kind's name, as used in type-mismatch messages (`null`, `integer`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// True for `Null`.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Integer(i) => write!(f, "{i}"),
            Value::Real(r) => write!(f, "{r}"),
            Value::Text(s) => f.write_str(s),
            Value::Blob(b) => write!(f, "x'{}'", hex(b)),
        }
    }
}

/// Bytes as lower-case hex digits.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Value { Value::Integer(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Real(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Value {
        Value::Real(f64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Value {
        Value::Blob(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<&Value> for Value {
    fn from(v: &Value) -> Value {
        v.clone()
    }
}

/// Conversion from a [`Value`] read from a row into a Rust type.
pub trait FromValue: Sized {
    /// Converts, or fails with [`ErrorCode::TypeMismatch`].
    ///
    /// # Errors
    /// When the value's kind cannot represent `Self`.
    fn from_value(v: Value) -> Result<Self>;
}

#[cold]
fn mismatch(want: &str, v: &Value) -> Error {
    Error::new(
        ErrorCode::TypeMismatch,
        format!("cannot read a {} value as {want}", v.kind()),
    )
}

impl FromValue for Value {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        Ok(v)
    }
}
impl FromValue for i64 {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Integer(i) => Ok(i),
            other => Err(mismatch("i64", &other)),
        }
    }
}
macro_rules! from_value_int {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            #[inline]
    fn from_value(v: Value) -> Result<Self> {
                match v {
                    Value::Integer(i) => <$t>::try_from(i).map_err(|_| Error::new(
                        ErrorCode::TypeMismatch,
                        format!("integer {i} does not fit in {}", stringify!($t)),
                    )),
                    other => Err(mismatch(stringify!($t), &other)),
                }
            }
        }
    )*};
}
from_value_int!(i32, u32, u64, usize, i16, u16, i8, u8);

impl FromValue for bool {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Integer(i) => Ok(i != 0),
            other => Err(mismatch("bool", &other)),
        }
    }
}
impl FromValue for f64 {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Real(r) => Ok(r),
            Value::Integer(i) => Ok(i as f64),
            other => Err(mismatch("f64", &other)),
        }
    }
}
impl FromValue for String {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Text(s) => Ok(s),
            other => Err(mismatch("String", &other)),
        }
    }
}
impl FromValue for Vec<u8> {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            other => Err(mismatch("Vec<u8>", &other)),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    #[inline]
    fn from_value(v: Value) -> Result<Self> {
        match v {
            Value::Null => Ok(None),
            other => T::from_value(other).map(Some),
        }
    }
}

/// Builds a `&[Value]` parameter list from anything convertible to [`Value`].
///
/// ```
/// let params = dbmux::params![1, "two", 3.0, None::<i64>];
/// assert_eq!(params.len(), 4);
/// ```
#[macro_export]
macro_rules! params {
    () => { &[] as &[$crate::Value] };
    ($($v:expr),+ $(,)?) => { &[$($crate::Value::from($v)),+] as &[$crate::Value] };
}

/// A borrowed value, handed to a [`RowSink`] while a result is read.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl Value {
    /// This value, borrowed.
    pub fn as_ref(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Integer(i) => ValueRef::Integer(*i),
            Value::Real(r) => ValueRef::Real(*r),
            Value::Text(s) => ValueRef::Text(s),
            Value::Blob(b) => ValueRef::Blob(b),
        }
    }
}

impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Value {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(s) => Value::Text(s.to_string()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

/// Receives a result cell by cell, without building [`Rows`]: for bindings
/// that turn values straight into their own objects
/// ([`Connection::query_into`](crate::Connection::query_into)).
pub trait RowSink {
    /// The result's columns, once, before any value.
    fn columns(&mut self, columns: &[Column]);
    /// The next value of the current row, in column order.
    fn value(&mut self, v: ValueRef<'_>);
    /// The current row is complete.
    fn end_row(&mut self);
    /// Asked after each row: `false` stops the read there (SQLite steps no
    /// further; PostgreSQL decodes no further rows). Defaults to `true`.
    fn wants_more(&self) -> bool {
        true
    }
}

/// The [`RowSink`] behind [`Connection::query`](crate::Connection::query):
/// collects a result into [`Rows`].
#[derive(Default)]
pub(crate) struct RowsBuilder {
    columns: Option<Arc<[Column]>>,
    rows: Vec<Row>,
    current: Vec<Value>,
    /// Stop after this many rows (`None`: read them all).
    limit: Option<usize>,
}

impl RowsBuilder {
    /// A builder that stops the read after `n` rows.
    pub(crate) fn first(n: usize) -> RowsBuilder {
        RowsBuilder {
            limit: Some(n),
            ..RowsBuilder::default()
        }
    }

    pub(crate) fn finish(self, rows_affected: u64) -> Rows {
        Rows::new(
            self.columns.unwrap_or_else(|| Arc::from(Vec::new())),
            self.rows,
        )
        .with_rows_affected(rows_affected)
    }
}

impl RowSink for RowsBuilder {
    fn columns(&mut self, columns: &[Column]) {
        self.columns = Some(columns.into());
    }

    fn value(&mut self, v: ValueRef<'_>) {
        self.current.push(v.into());
    }

    fn end_row(&mut self) {
        let n = self.columns.as_ref().map_or(0, |c| c.len());
        let values = std::mem::replace(&mut self.current, Vec::with_capacity(n));
        let columns = self
            .columns
            .clone()
            .unwrap_or_else(|| Arc::from(Vec::new()));
        self.rows.push(Row::new(columns, values));
    }

    fn wants_more(&self) -> bool {
        self.limit.map_or(true, |n| self.rows.len() < n)
    }
}

/// A result column: its name and the type it was declared with.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Column {
    /// The column name (or alias).
    pub name: String,
    /// The declared type (`INTEGER`, `TEXT`, `VARCHAR(20)`, ...); `None` for
    /// expressions, which have no declared type.
    pub decl_type: Option<String>,
    /// PostgreSQL's type OID of the column (`23` for `int4`, ...), which
    /// PEP 249 drivers report as the type code; `None` on SQLite.
    pub type_oid: Option<u32>,
}

/// One row of a result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    columns: Arc<[Column]>,
    values: Vec<Value>,
}

/// Something that picks a column: an index or a name.
pub trait ColumnIndex {
    /// The index within `columns`, if any.
    fn index(&self, columns: &[Column]) -> Option<usize>;
    /// For error messages.
    fn describe(&self) -> String;
}
impl ColumnIndex for usize {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        (*self < columns.len()).then_some(*self)
    }
    fn describe(&self) -> String {
        format!("column {self}")
    }
}
impl ColumnIndex for &str {
    fn index(&self, columns: &[Column]) -> Option<usize> {
        columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(self))
    }
    fn describe(&self) -> String {
        format!("column '{self}'")
    }
}

impl Row {
    pub(crate) fn new(columns: Arc<[Column]>, values: Vec<Value>) -> Row {
        Row { columns, values }
    }

    /// Reads a column by index or name and converts it.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidParameter`] for a column that does not exist,
    /// [`ErrorCode::TypeMismatch`] when the value does not convert.
    pub fn get<T: FromValue>(&self, col: impl ColumnIndex) -> Result<T> {
        let i = col.index(&self.columns).ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidParameter,
                format!(
                    "no {} in this row (columns: {})",
                    col.describe(),
                    self.columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        T::from_value(self.values[i].clone())
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// Consumes the row into its values.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The columns of the result this row belongs to.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }
}

/// A whole result: its columns (known even when there are no rows), its rows,
/// and for a statement without result columns the rows it changed.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    columns: Arc<[Column]>,
    rows: Vec<Row>,
    rows_affected: u64,
}

impl Rows {
    pub(crate) fn new(columns: Arc<[Column]>, rows: Vec<Row>) -> Rows {
        Rows {
            columns,
            rows,
            rows_affected: 0,
        }
    }

    pub(crate) fn with_rows_affected(mut self, n: u64) -> Rows {
        self.rows_affected = n;
        self
    }

    /// For a statement that returns no columns (INSERT, UPDATE, DDL) run
    /// through `query`: the number of rows it changed. 0 for a real query.
    pub fn rows_affected(&self) -> u64 {
        self.rows_affected
    }

    /// The result's columns.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The rows.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Iterates over the rows.
    pub fn iter(&self) -> std::slice::Iter<'_, Row> {
        self.rows.iter()
    }
}

impl IntoIterator for Rows {
    type Item = Row;
    type IntoIter = std::vec::IntoIter<Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.into_iter()
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = &'a Row;
    type IntoIter = std::slice::Iter<'a, Row>;
    fn into_iter(self) -> Self::IntoIter {
        self.rows.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Value::from(5i32), Value::Integer(5));
        assert_eq!(Value::from(true), Value::Integer(1));
        assert_eq!(Value::from(None::<i64>), Value::Null);
        assert_eq!(i64::from_value(Value::Integer(7)).unwrap(), 7);
        let e = i64::from_value(Value::Text("x".into())).unwrap_err();
        assert_eq!(e.code(), ErrorCode::TypeMismatch);
        assert_eq!(e.to_string(), "cannot read a text value as i64");
        let e = u8::from_value(Value::Integer(300)).unwrap_err();
        assert_eq!(e.to_string(), "integer 300 does not fit in u8");
        assert_eq!(Option::<i64>::from_value(Value::Null).unwrap(), None);
    }

    #[test]
    fn row_access_by_name_and_index() {
        let cols: Arc<[Column]> = vec![
            Column {
                name: "id".into(),
                decl_type: Some("INTEGER".into()),
                type_oid: None,
            },
            Column {
                name: "name".into(),
                decl_type: None,
                type_oid: None,
            },
        ]
        .into();
        let row = Row::new(cols, vec![Value::Integer(1), Value::Text("a".into())]);
        assert_eq!(row.get::<i64>(0).unwrap(), 1);
        assert_eq!(row.get::<String>("NAME").unwrap(), "a");
        let e = row.get::<i64>("nope").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no column 'nope' in this row (columns: id, name)"
        );
    }
}
