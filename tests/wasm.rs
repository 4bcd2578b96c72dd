//! The wasm32 build, run in Node by wasm-bindgen-test-runner (see
//! scripts/test-wasm.sh): the Rust `Manager` API over SQLite through
//! sqlite-wasm-rs, and the JavaScript `Database` class.
#![cfg(all(target_arch = "wasm32", feature = "wasm"))]

use dbmux::wasm::Database;
use dbmux::{params, Config, ErrorCode, Manager, Value};
use js_sys::{Array, BigInt, Function, Object, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap()
}

fn arr(items: &[JsValue]) -> Option<Array> {
    Some(items.iter().collect())
}

/// The code and kind of a JS error thrown by the API.
fn code_of(e: &JsValue) -> (i32, String) {
    assert!(e.is_instance_of::<js_sys::Error>(), "not an Error: {e:?}");
    assert_eq!(get(e, "name").as_string().unwrap(), "DbmuxError");
    (
        get(e, "code").as_f64().unwrap() as i32,
        get(e, "kind").as_string().unwrap(),
    )
}

fn message_of(e: &JsValue) -> String {
    get(e, "message").as_string().unwrap()
}

#[wasm_bindgen_test]
fn every_javascript_type_round_trips() {
    let db = Database::open("sqlite::memory:").unwrap();
    db.execute(
        "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB, n TEXT, big INTEGER, flag INTEGER, neg INTEGER)",
        None,
    )
    .unwrap();
    let big = BigInt::from(1i64 << 60);
    let blob = Uint8Array::from(&[0u8, 1, 255][..]);
    let changed = db
        .execute(
            "INSERT INTO t VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            arr(&[
                JsValue::from_f64(42.0),
                JsValue::from_f64(1.5),
                JsValue::from_str("héllo ✓"),
                blob.into(),
                JsValue::NULL,
                big.clone().into(),
                JsValue::TRUE,
                JsValue::from_f64(-7.0),
            ]),
        )
        .unwrap();
    assert_eq!(changed, 1.0);
    let rows = db.query("SELECT * FROM t", None).unwrap();
    assert_eq!(rows.length(), 1);
    let row = rows.get(0);
    assert_eq!(get(&row, "i").as_f64(), Some(42.0));
    assert_eq!(get(&row, "r").as_f64(), Some(1.5));
    assert_eq!(get(&row, "s").as_string().as_deref(), Some("héllo ✓"));
    let b = get(&row, "b").dyn_into::<Uint8Array>().unwrap();
    assert_eq!(b.to_vec(), vec![0, 1, 255]);
    assert!(get(&row, "n").is_null());
    let back = get(&row, "big");
    assert!(back.is_bigint(), "{back:?}");
    assert_eq!(
        i64::try_from(back.unchecked_into::<BigInt>()).unwrap(),
        1i64 << 60
    );
    assert_eq!(get(&row, "flag").as_f64(), Some(1.0));
    assert_eq!(get(&row, "neg").as_f64(), Some(-7.0));
    // the typed values on the Rust side, too
    let typeof_: Vec<String> = db
        .query(
            "SELECT typeof(i) AS a, typeof(r) AS b, typeof(s) AS c, typeof(b) AS d, typeof(n) AS e FROM t",
            None,
        )
        .unwrap()
        .get(0)
        .unchecked_into::<js_sys::Object>()
        .pipe(|o| js_sys::Object::values(&o))
        .iter()
        .map(|v| v.as_string().unwrap())
        .collect();
    assert_eq!(typeof_, ["integer", "real", "text", "blob", "null"]);
    db.close();
}

trait Pipe: Sized {
    fn pipe<R>(self, f: impl FnOnce(Self) -> R) -> R {
        f(self)
    }
}
impl<T> Pipe for T {}

#[wasm_bindgen_test]
fn a_throwing_transaction_rolls_back_and_a_returning_one_commits() {
    let db = Database::open("sqlite::memory:").unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", None).unwrap();
    let failing = Function::new_with_args(
        "tx",
        "tx.execute('INSERT INTO t VALUES (?)', [1]); throw new Error('boom');",
    );
    let e = db.transaction(&failing, None).unwrap_err();
    assert_eq!(message_of(&e), "boom");
    let count = |db: &Database| {
        get(
            &db.query("SELECT count(*) AS n FROM t", None)
                .unwrap()
                .get(0),
            "n",
        )
        .as_f64()
        .unwrap()
    };
    assert_eq!(count(&db), 0.0);
    let ok = Function::new_with_args(
        "tx",
        "tx.execute('INSERT INTO t VALUES (?)', [2]); return tx.query('SELECT x FROM t', []).length;",
    );
    assert_eq!(db.transaction(&ok, None).unwrap().as_f64(), Some(1.0));
    assert_eq!(count(&db), 1.0);
    // a transaction object used after its function returned
    let leak = Function::new_with_args("tx", "globalThis.__leaked = tx;");
    db.transaction(&leak, None).unwrap();
    let leaked = Reflect::get(&js_sys::global(), &"__leaked".into()).unwrap();
    let exec = Function::new_with_args("tx", "tx.execute('INSERT INTO t VALUES (3)', []);");
    let e = exec.call1(&JsValue::NULL, &leaked).unwrap_err();
    assert_eq!(code_of(&e), (17, "misuse".to_string()));
    assert_eq!(count(&db), 1.0);
    // a COMMIT refused by a deferred constraint is that constraint, as in
    // Rust, C and Python (Connection::commit), not commit_unknown
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)", None)
        .unwrap();
    db.execute(
        "CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)",
        None,
    )
    .unwrap();
    let orphan = Function::new_with_args("tx", "tx.execute('INSERT INTO child VALUES (42)', []);");
    let e = db.transaction(&orphan, None).unwrap_err();
    assert_eq!(code_of(&e), (9, "constraint".to_string()));
    let children = db
        .query("SELECT count(*) AS n FROM child", None)
        .unwrap()
        .get(0);
    assert_eq!(get(&children, "n").as_f64(), Some(0.0));
}

#[wasm_bindgen_test]
fn health_and_debug_info_have_the_rust_field_names() {
    let db = Database::open("sqlite::memory:").unwrap();
    db.execute("SELECT 1", None).unwrap();
    let h = db.health().unwrap();
    assert_eq!(get(&h, "status").as_string().as_deref(), Some("healthy"));
    // cached for the health check interval, as Manager::health is everywhere
    let again = db.health().unwrap();
    assert_eq!(
        get(&again, "timestamp").as_string(),
        get(&h, "timestamp").as_string()
    );
    assert_eq!(
        get(&h, "database_type").as_string().as_deref(),
        Some("sqlite")
    );
    assert!(get(&h, "version").as_string().unwrap().starts_with("3."));
    assert!(get(&h, "latency_ms").as_f64().unwrap() >= 0.0);
    assert!(get(&h, "timestamp").as_string().unwrap().starts_with("20"));
    // on wasm32 a manager holds one connection, and says so
    let pool = get(&h, "pool_status");
    assert_eq!(get(&pool, "pool_size").as_f64(), Some(1.0));
    assert_eq!(get(&pool, "max_overflow").as_f64(), Some(0.0));
    let d = db.debug_info().unwrap();
    assert_eq!(get(&d, "backend").as_string().as_deref(), Some("sqlite"));
    assert!(get(&d, "connections_opened").as_f64().unwrap() >= 1.0);
    assert!(get(&d, "engine_initialized").as_bool().unwrap());
    // the same keys as the Rust JSON of the same manager type
    let mgr = Manager::from_url("sqlite::memory:").unwrap();
    let rust: serde_json::Value = serde_json::from_str(&mgr.debug_info().to_json()).unwrap();
    let mut rust_keys: Vec<String> = rust.as_object().unwrap().keys().cloned().collect();
    let mut js_keys: Vec<String> = js_sys::Object::keys(d.unchecked_ref::<js_sys::Object>())
        .iter()
        .map(|k| k.as_string().unwrap())
        .collect();
    rust_keys.sort();
    js_keys.sort();
    assert_eq!(js_keys, rust_keys);
    // the metrics: the same text as Rust's, the checkouts above counted
    let text = db.metrics(None);
    let labels = "{pool=\"sqlite::memory:\",backend=\"sqlite\"}";
    assert!(
        text.contains(&format!("dbmux_checkouts_total{labels} 2\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("dbmux_statement_seconds_count{labels} 2\n")),
        "{text}"
    );
    assert!(db.metrics(Some(true)).ends_with("# EOF\n"));
    db.close();
    let e = db.execute("SELECT 1", None).unwrap_err();
    assert_eq!(code_of(&e), (6, "manager_closed".to_string()));
}

#[wasm_bindgen_test]
fn bad_urls_sql_and_parameters_are_errors_with_codes() {
    let e = Database::open("mysql://localhost/db").err().unwrap();
    assert_eq!(code_of(&e), (1, "invalid_url".to_string()));
    assert!(message_of(&e).contains("sqlite"), "{}", message_of(&e));
    let db = Database::open("sqlite::memory:").unwrap();
    let e = db.execute("SELEC 1", None).unwrap_err();
    assert_eq!(code_of(&e), (8, "sql".to_string()));
    assert!(
        message_of(&e).contains("syntax error"),
        "{}",
        message_of(&e)
    );
    db.execute("CREATE TABLE u (x INTEGER UNIQUE)", None)
        .unwrap();
    db.execute("INSERT INTO u VALUES (1)", None).unwrap();
    let e = db.execute("INSERT INTO u VALUES (1)", None).unwrap_err();
    assert_eq!(code_of(&e), (9, "constraint".to_string()));
    let e = db
        .execute(
            "INSERT INTO u VALUES (?)",
            arr(&[js_sys::Object::new().into()]),
        )
        .unwrap_err();
    assert_eq!(code_of(&e), (15, "invalid_parameter".to_string()));
    assert!(message_of(&e).contains("parameter 1"), "{}", message_of(&e));
    let e = db
        .execute(
            "INSERT INTO u VALUES (?)",
            arr(&[BigInt::from(u64::MAX).into()]),
        )
        .unwrap_err();
    assert_eq!(code_of(&e), (15, "invalid_parameter".to_string()));
    let e = db
        .execute("INSERT INTO u VALUES (?)", arr(&[]))
        .unwrap_err();
    assert_eq!(code_of(&e).1, "invalid_parameter");
    // nothing already stored was lost
    let rows = db.query("SELECT x FROM u", None).unwrap();
    assert_eq!(rows.length(), 1);
}

#[wasm_bindgen_test]
fn the_rust_manager_api_works_and_checkouts_share_the_data() {
    // a named database on sqlite-wasm-rs's memory VFS
    let mgr = Manager::from_url("sqlite:///shared.db").unwrap();
    {
        let mut c = mgr.get().unwrap();
        c.execute_batch("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v BLOB)")
            .unwrap();
        c.execute(
            "INSERT INTO kv VALUES (?, ?)",
            params!["a", Value::Blob(vec![1, 2])],
        )
        .unwrap();
        // a second checkout while the first is held fails at once, clearly
        let e = mgr.get().unwrap_err();
        assert_eq!(e.code(), ErrorCode::PoolTimeout);
        assert!(e.to_string().contains("one connection"), "{e}");
    }
    // another checkout of the same manager sees the row
    let mut c = mgr.get().unwrap();
    // no WAL on the memory VFS (no shared memory): SQLite's default journal
    let journal: String = c.query_scalar("PRAGMA journal_mode", params![]).unwrap();
    assert_eq!(journal, "delete");
    let v: Vec<u8> = c
        .query_scalar("SELECT v FROM kv WHERE k = ?", params!["a"])
        .unwrap();
    assert_eq!(v, vec![1, 2]);
    drop(c);
    // a transaction that fails is rolled back
    let r: dbmux::Result<()> = mgr.transaction(|tx| {
        tx.execute("INSERT INTO kv VALUES ('b', NULL)", params![])?;
        Err(dbmux::Error::new(ErrorCode::Sql, "changed my mind"))
    });
    assert!(r.is_err());
    let n: i64 = mgr
        .query_scalar("SELECT count(*) FROM kv", params![])
        .unwrap();
    assert_eq!(n, 1);
    let d = mgr.debug_info();
    assert_eq!(d.connections_opened, 1, "{d:?}");
    assert!(d.checkout_timeouts >= 1, "{d:?}");
    let h = mgr.check_health();
    assert!(h.is_healthy(), "{h:?}");
    mgr.shutdown();
    assert_eq!(
        mgr.execute("SELECT 1", params![]).unwrap_err().code(),
        ErrorCode::ManagerClosed
    );
    // the file outlives the manager for the life of this wasm instance
    let again = Database::open("sqlite:///shared.db").unwrap();
    let rows = again.query("SELECT k FROM kv", None).unwrap();
    assert_eq!(get(&rows.get(0), "k").as_string().as_deref(), Some("a"));
    again.close();
}

/// `?vfs=` picks the VFS: the memory VFS by name works; a VFS that was not
/// registered (OPFS's needs a dedicated browser worker) is a clear error.
#[wasm_bindgen_test]
fn the_vfs_parameter_selects_a_registered_vfs() {
    let mgr = Manager::from_url("sqlite:///picked.db?vfs=memvfs").unwrap();
    mgr.execute("CREATE TABLE t (x)", params![]).unwrap();
    mgr.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT x FROM t", params![])
            .unwrap(),
        1
    );
    let mgr = Manager::from_url("sqlite:///app.db?vfs=opfs-sahpool").unwrap();
    let e = mgr.execute("SELECT 1", params![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConnectFailed, "{e}");
    assert!(e.to_string().contains("no such vfs: opfs-sahpool"), "{e}");
}

#[wasm_bindgen_test]
fn config_and_the_global_manager_work_without_an_environment() {
    let c = Config::builder()
        .url("sqlite::memory:")
        .pool_size(1)
        .max_overflow(0)
        .build()
        .unwrap();
    assert_eq!(c.pool_size(), 1);
    let g = dbmux::global().unwrap();
    assert_eq!(g.config().backend(), dbmux::url::Backend::Sqlite);
    let x: i64 = g.query_scalar("SELECT 40 + ?", params![2]).unwrap();
    assert_eq!(x, 42);
    assert!(dbmux::health().is_healthy());
    dbmux::shutdown();
}

#[wasm_bindgen_test]
fn a_readonly_transaction_reads_and_refuses_writes() {
    let db = Database::open("sqlite::memory:").unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", None).unwrap();
    db.execute("INSERT INTO t VALUES (5)", None).unwrap();
    let options = Object::new();
    Reflect::set(&options, &JsValue::from_str("readonly"), &JsValue::TRUE).unwrap();
    let read = Function::new_with_args("tx", "return tx.query('SELECT x FROM t')[0].x;");
    assert_eq!(
        db.transaction(&read, Some(options.clone()))
            .unwrap()
            .as_f64(),
        Some(5.0)
    );
    let write = Function::new_with_args("tx", "tx.execute('INSERT INTO t VALUES (6)');");
    let e = db.transaction(&write, Some(options)).unwrap_err();
    assert_eq!(code_of(&e), (10, "read_only".to_string()));
    assert!(message_of(&e).contains("get()"), "{}", message_of(&e));
    // the connection is writable again afterwards, and nothing was written
    db.execute("INSERT INTO t VALUES (7)", None).unwrap();
    let n = db.query("SELECT count(*) AS n FROM t", None).unwrap();
    assert_eq!(get(&n.get(0), "n").as_f64(), Some(2.0));
    // a bad option is refused
    let bad = Object::new();
    Reflect::set(
        &bad,
        &JsValue::from_str("readonly"),
        &JsValue::from_str("yes"),
    )
    .unwrap();
    let e = db.transaction(&read, Some(bad)).unwrap_err();
    assert_eq!(code_of(&e), (15, "invalid_parameter".to_string()));
}

/// Outside a dedicated worker (Node, a page's main thread) the OPFS VFS
/// cannot start: `openAsync` rejects at once with an error naming the VFS
/// and what it needs, and the synchronous `open` says to use `openAsync`.
#[cfg(feature = "opfs")]
#[wasm_bindgen_test]
async fn opfs_outside_a_worker_is_a_clear_error() {
    let e = match Database::open_async("sqlite:///app.db?vfs=opfs-sahpool".into()).await {
        Ok(_) => panic!("the OPFS VFS started outside a dedicated worker"),
        Err(e) => e,
    };
    assert_eq!(code_of(&e), (4, "connect_failed".to_string()));
    let m = message_of(&e);
    assert!(m.contains("the opfs-sahpool VFS could not start"), "{m}");
    assert!(m.contains("dedicated Web Worker"), "{m}");
    let e = match Database::open("sqlite:///app.db?vfs=opfs-sahpool") {
        Ok(_) => panic!("open accepted a VFS that is not installed"),
        Err(e) => e,
    };
    assert_eq!(code_of(&e), (4, "connect_failed".to_string()));
    assert!(
        message_of(&e).contains("Database.openAsync"),
        "{}",
        message_of(&e)
    );
    // other URLs open as before through openAsync
    let db = Database::open_async("sqlite::memory:".into())
        .await
        .unwrap();
    assert_eq!(db.execute("CREATE TABLE t (x)", None).unwrap(), 0.0);
    db.close();
}

/// PostgreSQL is not there on wasm32 (no TCP sockets): its URLs are refused
/// at once, with the code of a feature that is not built in.
#[wasm_bindgen_test]
fn a_postgresql_url_says_wasm32_serves_sqlite_only() {
    for url in [
        "postgresql://app:s3cret@db.internal/app",
        "host=db.internal dbname=app",
    ] {
        let e = Manager::from_url(url).unwrap_err();
        assert_eq!(e.code(), ErrorCode::FeatureDisabled, "{e}");
        assert!(e.to_string().contains("serves SQLite only"), "{e}");
        assert!(!e.to_string().contains("s3cret"), "{e}");
    }
}
