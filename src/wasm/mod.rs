//! The JavaScript API of the wasm32 build (the `wasm` feature): a
//! `Database` class over a [`Manager`] on SQLite. `README.md` beside this
//! file is the chapter for users: building, what differs on wasm32, which
//! URL picks which VFS, the value mapping.
//!
//! ```js
//! const { Database } = require("./dbmux.js");
//! const db = Database.open("sqlite::memory:");
//! db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", []);
//! db.execute("INSERT INTO t (name) VALUES (?)", ["ada"]);
//! db.query("SELECT * FROM t", []);           // [{ id: 1, name: "ada" }]
//! db.transaction((tx) => { tx.execute("DELETE FROM t", []); });
//! db.health();                               // the same fields as the Rust health JSON
//! db.close();
//! ```
//!
//! Values, JavaScript to SQL: `null`/`undefined` -> NULL; a boolean -> 1/0;
//! a number that is a safe integer -> INTEGER, any other number -> REAL; a
//! BigInt -> INTEGER (it must fit in 64 bits); a string -> TEXT; a
//! `Uint8Array` -> BLOB. Anything else is an `invalid_parameter` error.
//! SQL to JavaScript: NULL -> `null`; INTEGER -> a number when it is a safe
//! integer (|n| < 2^53), else a BigInt; REAL -> a number; TEXT -> a string;
//! BLOB -> a `Uint8Array`.
//!
//! Errors are JavaScript `Error`s with `name = "DbmuxError"`, `code` (the
//! number of [`ErrorCode`], as in the C API) and `kind` (its name, e.g.
//! `"sql"`).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Array, BigInt, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use crate::{Connection, Error, ErrorCode, Manager, Rows, Value};

#[cfg(feature = "opfs")]
mod opfs;

/// Converts a dbmux error into a JavaScript `Error` carrying its code.
pub fn js_error(e: &Error) -> JsValue {
    let err = js_sys::Error::new(e.message());
    err.set_name("DbmuxError");
    let obj: &JsValue = err.as_ref();
    let _ = Reflect::set(obj, &"code".into(), &e.code().as_i32().into());
    let _ = Reflect::set(obj, &"kind".into(), &e.code().name().into());
    err.into()
}

fn fail(e: Error) -> JsValue {
    js_error(&e)
}

fn bad_param(i: usize, what: &str) -> Error {
    Error::new(
        ErrorCode::InvalidParameter,
        format!(
            "parameter {}: {what}; use null, a boolean, a number, a BigInt, a string or a \
             Uint8Array",
            i + 1
        ),
    )
}

/// One JavaScript value as a [`Value`] (see the module docs for the mapping).
pub fn to_value(i: usize, v: &JsValue) -> Result<Value, Error> {
    if v.is_null() || v.is_undefined() {
        return Ok(Value::Null);
    }
    if let Some(b) = v.as_bool() {
        return Ok(Value::Integer(i64::from(b)));
    }
    if let Some(n) = v.as_f64() {
        let safe = n.fract() == 0.0 && n.abs() <= 9_007_199_254_740_991.0;
        return Ok(if safe {
            Value::Integer(n as i64)
        } else {
            Value::Real(n)
        });
    }
    if let Some(s) = v.as_string() {
        return Ok(Value::Text(s));
    }
    if v.is_bigint() {
        let b: &BigInt = v.unchecked_ref();
        return i64::try_from(b.clone())
            .map(Value::Integer)
            .map_err(|_| bad_param(i, "a BigInt outside the 64-bit range"));
    }
    if let Some(a) = v.dyn_ref::<Uint8Array>() {
        return Ok(Value::Blob(a.to_vec()));
    }
    Err(bad_param(i, "an unsupported JavaScript type"))
}

/// A [`Value`] as a JavaScript value (see the module docs for the mapping).
pub fn from_value(v: &Value) -> JsValue {
    const SAFE: i64 = 9_007_199_254_740_991;
    match v {
        Value::Null => JsValue::NULL,
        Value::Integer(n) if (-SAFE..=SAFE).contains(n) => JsValue::from_f64(*n as f64),
        Value::Integer(n) => BigInt::from(*n).into(),
        Value::Real(f) => JsValue::from_f64(*f),
        Value::Text(s) => JsValue::from_str(s),
        Value::Blob(b) => Uint8Array::from(b.as_slice()).into(),
    }
}

fn params(p: Option<Array>) -> Result<Vec<Value>, JsValue> {
    match p {
        None => Ok(Vec::new()),
        Some(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| to_value(i, &v))
            .collect::<Result<_, _>>()
            .map_err(fail),
    }
}

fn rows_to_js(rows: &Rows) -> Array {
    let names: Vec<JsValue> = rows
        .columns()
        .iter()
        .map(|c| JsValue::from_str(&c.name))
        .collect();
    rows.iter()
        .map(|r| {
            let o = Object::new();
            for (name, v) in names.iter().zip(r.values()) {
                let _ = Reflect::set(&o, name, &from_value(v));
            }
            JsValue::from(o)
        })
        .collect()
}

fn json(text: &str) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(text)
}

/// A database: one dbmux manager (on wasm32 it holds one connection).
#[wasm_bindgen]
pub struct Database {
    mgr: Manager,
}

#[wasm_bindgen]
impl Database {
    /// Opens `url` (any SQLite URL that dbmux accepts; `sqlite::memory:`
    /// for a private in-memory database). Does not touch the database yet.
    pub fn open(url: &str) -> Result<Database, JsValue> {
        #[cfg(feature = "opfs")]
        opfs::check_installed(url).map_err(fail)?;
        Manager::from_url(url)
            .map(|mgr| Database { mgr })
            .map_err(fail)
    }

    /// Opens `url` as [`Database::open`] does, then opens its connection, so
    /// that a wrong path or VFS is told now. When the URL names the
    /// `opfs-sahpool` VFS (`?vfs=opfs-sahpool`), installs it first: the
    /// database then lives in the origin's private file system (OPFS) and
    /// survives reloads. That needs a dedicated Web Worker of a secure context
    /// (https:// or localhost); elsewhere the promise rejects with a
    /// `connect_failed` error naming the VFS and what it needs.
    #[cfg(feature = "opfs")]
    #[wasm_bindgen(js_name = openAsync)]
    pub async fn open_async(url: String) -> Result<Database, JsValue> {
        if opfs::named_in(&url) {
            opfs::install().await.map_err(fail)?;
        }
        let db = Self::open(&url)?;
        drop(db.mgr.get().map_err(fail)?);
        Ok(db)
    }

    /// Runs one statement with `?` parameters; returns the rows changed.
    pub fn execute(&self, sql: &str, params: Option<Array>) -> Result<f64, JsValue> {
        let p = self::params(params)?;
        self.mgr.execute(sql, &p).map(|n| n as f64).map_err(fail)
    }

    /// Runs a query; returns an array of plain objects keyed by column name
    /// (a later column wins over an earlier one of the same name).
    pub fn query(&self, sql: &str, params: Option<Array>) -> Result<Array, JsValue> {
        let p = self::params(params)?;
        self.mgr
            .query(sql, &p)
            .map(|r| rows_to_js(&r))
            .map_err(fail)
    }

    /// Runs `fn(tx)` in a write transaction: commits when it returns,
    /// rolls back when it throws (and rethrows). `tx` has `execute` and
    /// `query`; use them, not the database's, inside `fn`. Returns what
    /// `fn` returned. `options.readonly`: a read transaction (`get_read`
    /// in Rust), in which SQLite refuses writes (`read_only`).
    pub fn transaction(&self, f: &Function, options: Option<Object>) -> Result<JsValue, JsValue> {
        let readonly = match options {
            Some(o) => {
                let v = Reflect::get(&o, &JsValue::from_str("readonly"))?;
                if !(v.is_undefined() || v.as_bool().is_some()) {
                    return Err(fail(Error::new(
                        ErrorCode::InvalidParameter,
                        "options.readonly must be true or false",
                    )));
                }
                v.as_bool().unwrap_or(false)
            }
            None => false,
        };
        let conn = if readonly {
            self.mgr.get_read()
        } else {
            self.mgr.get()
        };
        let mut conn = conn.map_err(fail)?;
        conn.begin().map_err(fail)?;
        let shared = Rc::new(RefCell::new(Some(conn)));
        let tx = Transaction {
            conn: shared.clone(),
        };
        let result = f.call1(&JsValue::NULL, &JsValue::from(tx));
        let Some(mut conn) = shared.borrow_mut().take() else {
            return Err(fail(Error::new(
                ErrorCode::Internal,
                "the transaction's connection went missing",
            )));
        };
        match result {
            // Connection::commit decides what a failed COMMIT means, as in Rust, C and Python
            Ok(v) => conn.commit().map(|()| v).map_err(fail),
            Err(thrown) => {
                // the connection is discarded if even the rollback fails
                let _ = conn.rollback();
                Err(thrown)
            }
        }
    }

    /// The health report, as a plain object with the Rust JSON's fields;
    /// cached for the health check interval, as `Manager::health` is in
    /// Rust, C and Python.
    pub fn health(&self) -> Result<JsValue, JsValue> {
        json(&self.mgr.health().to_json())
    }

    /// Counters and pool state, as a plain object with the Rust JSON's fields.
    #[wasm_bindgen(js_name = debugInfo)]
    pub fn debug_info(&self) -> Result<JsValue, JsValue> {
        json(&self.mgr.debug_info().to_json())
    }

    /// The metrics in the Prometheus text format (0.0.4), or with
    /// `openmetrics` true in OpenMetrics 1.0, as `Manager::metrics_text`
    /// and `metrics_openmetrics` write them (a worker's `/metrics`).
    pub fn metrics(&self, openmetrics: Option<bool>) -> String {
        if openmetrics.unwrap_or(false) {
            self.mgr.metrics_openmetrics()
        } else {
            self.mgr.metrics_text()
        }
    }

    /// Closes the database; later calls fail with `manager_closed`.
    pub fn close(&self) {
        self.mgr.shutdown();
    }
}

/// The transaction handed to `Database.transaction`'s function.
#[wasm_bindgen]
pub struct Transaction {
    conn: Rc<RefCell<Option<Connection>>>,
}

impl Transaction {
    fn with<T>(&self, f: impl FnOnce(&mut Connection) -> crate::Result<T>) -> Result<T, JsValue> {
        match self.conn.borrow_mut().as_mut() {
            Some(c) => f(c).map_err(fail),
            None => Err(fail(Error::new(
                ErrorCode::Misuse,
                "this transaction is over: use it only inside the function given to \
                 Database.transaction",
            ))),
        }
    }
}

#[wasm_bindgen]
impl Transaction {
    /// As `Database.execute`, inside the transaction.
    pub fn execute(&self, sql: &str, params: Option<Array>) -> Result<f64, JsValue> {
        let p = self::params(params)?;
        self.with(|c| c.execute(sql, &p)).map(|n| n as f64)
    }

    /// As `Database.query`, inside the transaction.
    pub fn query(&self, sql: &str, params: Option<Array>) -> Result<Array, JsValue> {
        let p = self::params(params)?;
        self.with(|c| c.query(sql, &p)).map(|r| rows_to_js(&r))
    }
}
