//! The SQLite backend on real files: sharing, safety defaults, concurrency,
//! reset on return, shutdown, timeouts.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager, Value};

fn file_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite:///{}", dir.path().join(name).display())
}

#[test]
fn in_memory_database_is_shared_by_all_connections_of_a_manager() {
    let mgr = Manager::new(
        Config::builder()
            .url("sqlite::memory:")
            .pool_size(4)
            .max_overflow(4)
            .pool_recycle(Some(Duration::from_millis(50)))
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (thread INTEGER, n INTEGER)", params![])
        .unwrap();
    // Hold several connections at once so that the pool really opens many.
    let barrier = Arc::new(Barrier::new(6));
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (mgr, barrier) = (mgr.clone(), barrier.clone());
            thread::spawn(move || {
                let mut c = mgr.get().unwrap();
                barrier.wait();
                for n in 0..50 {
                    c.execute("INSERT INTO t VALUES (?, ?)", params![i, n])
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert!(mgr.debug_info().connections_opened >= 6);
    // Every connection sees every row.
    let counts: Vec<i64> = (0..4)
        .map(|_| {
            mgr.query_scalar("SELECT count(*) FROM t", params![])
                .unwrap()
        })
        .collect();
    assert_eq!(counts, vec![300; 4]);
    // Recycling closes pooled connections; the data must survive that.
    thread::sleep(Duration::from_millis(120));
    let n: i64 = mgr
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(n, 300);
    assert!(
        mgr.debug_info().pool_recycled >= 1,
        "{:?}",
        mgr.debug_info()
    );
    // A second manager on :memory: gets its own, empty database.
    let other = Manager::from_url(":memory:").unwrap();
    let e = other
        .query("SELECT count(*) FROM t", params![])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Sql);
    assert!(e.to_string().contains("no such table: t"), "{e}");
    mgr.shutdown();
    other.shutdown();
}

#[test]
fn defaults_are_applied_to_every_connection() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::from_url(&file_url(&dir, "d.db")).unwrap();
    let mut c = mgr.get().unwrap();
    let jm: String = c.query_scalar("PRAGMA journal_mode", params![]).unwrap();
    let sync: i64 = c.query_scalar("PRAGMA synchronous", params![]).unwrap();
    let fk: i64 = c.query_scalar("PRAGMA foreign_keys", params![]).unwrap();
    assert_eq!((jm.as_str(), sync, fk), ("wal", 1, 1));
    // a connection that writes keeps busy_timeout through dbmux's busy
    // handler (so SQLite reports 0); a reader through SQLite's own
    let busy: i64 = c.query_scalar("PRAGMA busy_timeout", params![]).unwrap();
    assert_eq!(busy, 0);
    let busy: i64 = mgr
        .get_read()
        .unwrap()
        .query_scalar("PRAGMA busy_timeout", params![])
        .unwrap();
    assert_eq!(busy, 5000);
    c.execute_batch(
        "CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE ch (p INTEGER REFERENCES p(id));",
    )
    .unwrap();
    // The WAL file exists while the database is in use.
    c.execute("INSERT INTO p VALUES (1)", params![]).unwrap();
    assert!(dir.path().join("d.db-wal").exists());
    // foreign_keys=ON is enforced: a Constraint error, and nothing stored.
    let e = c
        .execute("INSERT INTO ch VALUES (99)", params![])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint);
    assert!(e.to_string().contains("FOREIGN KEY"), "{e}");
    assert_eq!(
        c.query_scalar::<i64>("SELECT count(*) FROM ch", params![])
            .unwrap(),
        0
    );
    drop(c);

    // URL overrides reach the connection.
    let mgr2 = Manager::from_url(&format!(
        "{}?busy_timeout=1234&synchronous=full&foreign_keys=off&journal_mode=delete",
        file_url(&dir, "o.db")
    ))
    .unwrap();
    // (a reader reports busy_timeout; a writer keeps it in dbmux's handler)
    assert_eq!(
        mgr2.get_read()
            .unwrap()
            .query_scalar::<i64>("PRAGMA busy_timeout", params![])
            .unwrap(),
        1234
    );
    let mut c = mgr2.get().unwrap();
    assert_eq!(
        c.query_scalar::<i64>("PRAGMA synchronous", params![])
            .unwrap(),
        2
    );
    assert_eq!(
        c.query_scalar::<i64>("PRAGMA foreign_keys", params![])
            .unwrap(),
        0
    );
    assert_eq!(
        c.query_scalar::<String>("PRAGMA journal_mode", params![])
            .unwrap(),
        "delete"
    );
    drop(c);
    mgr.shutdown();
    mgr2.shutdown();
}

#[test]
fn read_only_mode_refuses_writes_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let rw = Manager::from_url(&file_url(&dir, "ro.db")).unwrap();
    rw.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    rw.shutdown();

    let ro = Manager::from_url(&format!("{}?mode=ro", file_url(&dir, "ro.db"))).unwrap();
    assert_eq!(
        ro.query_scalar::<i64>("SELECT x FROM t", params![])
            .unwrap(),
        1
    );
    let e = ro
        .execute("INSERT INTO t VALUES (2)", params![])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ReadOnly);
    assert!(e.to_string().contains("read-only"), "{e}");
    assert!(e.to_string().contains("mode=ro"), "{e}");
    // nothing changed
    assert_eq!(
        ro.query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        1
    );
    ro.shutdown();

    // mode=ro on a file that does not exist: DatabaseNotFound naming the
    // file, at once (no retry can create it), though pool_timeout is 30 s
    let missing = Manager::new(
        Config::builder()
            .url(format!("{}?mode=ro", file_url(&dir, "missing.db")))
            .pool_timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    )
    .unwrap();
    let t = std::time::Instant::now();
    let e = missing.get().unwrap_err();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(e.code(), ErrorCode::DatabaseNotFound);
    assert!(e.to_string().contains("missing.db"), "{e}");
    assert!(!dir.path().join("missing.db").exists());
}

#[test]
fn concurrent_read_then_write_transactions_never_fail() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::from_url(&file_url(&dir, "c.db")).unwrap();
    mgr.execute_batch("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL); INSERT INTO counter VALUES (1, 0); CREATE TABLE log (v INTEGER NOT NULL);")
        .unwrap();
    let threads = 8;
    let per_thread = 500;
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let mgr = mgr.clone();
            thread::spawn(move || {
                let mut errors = 0;
                for _ in 0..per_thread {
                    let r = mgr.transaction(|tx| {
                        let n: i64 =
                            tx.query_scalar("SELECT n FROM counter WHERE id = 1", params![])?;
                        tx.execute("UPDATE counter SET n = ? WHERE id = 1", params![n + 1])?;
                        tx.execute("INSERT INTO log VALUES (?)", params![n + 1])?;
                        Ok::<_, dbmux::Error>(())
                    });
                    if r.is_err() {
                        errors += 1;
                    }
                }
                errors
            })
        })
        .collect();
    let errors: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(errors, 0);
    let total = (threads * per_thread) as i64;
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT n FROM counter", params![])
            .unwrap(),
        total
    );
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT count(*) FROM log", params![])
            .unwrap(),
        total
    );
    // no lost update: every value 1..=total appears exactly once
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT count(DISTINCT v) FROM log", params![])
            .unwrap(),
        total
    );
    assert_eq!(
        mgr.query_scalar::<String>("PRAGMA integrity_check", params![])
            .unwrap(),
        "ok"
    );
    mgr.shutdown();
}

#[test]
fn open_transaction_is_rolled_back_on_return() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(file_url(&dir, "r.db"))
            .pool_size(1)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    {
        let mut c = mgr.get().unwrap();
        c.execute_batch("BEGIN").unwrap();
        c.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
        assert!(c.in_transaction());
    } // returned with the transaction open
    let mut c = mgr.get().unwrap(); // the same, single connection
    assert!(!c.in_transaction());
    assert_eq!(
        c.query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        0
    );
    // and the database is not left locked: another write succeeds
    c.execute("INSERT INTO t VALUES (2)", params![]).unwrap();
    drop(c);
    assert_eq!(mgr.debug_info().resets_on_return, 1);
    assert_eq!(mgr.debug_info().connections_opened, 1);
    mgr.shutdown();
}

#[test]
fn transaction_commits_on_ok_and_rolls_back_on_err_and_panic() {
    let mgr = Manager::from_url(":memory:").unwrap();
    mgr.execute("CREATE TABLE t (x INTEGER UNIQUE)", params![])
        .unwrap();
    mgr.transaction(|tx| tx.execute("INSERT INTO t VALUES (1)", params![]))
        .unwrap();
    let e = mgr
        .transaction(|tx| {
            tx.execute("INSERT INTO t VALUES (2)", params![])?;
            tx.execute("INSERT INTO t VALUES (1)", params![]) // UNIQUE violation
        })
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint);
    let m2 = mgr.clone();
    let panicked = thread::spawn(move || {
        m2.transaction(|tx| -> dbmux::Result<()> {
            tx.execute("INSERT INTO t VALUES (3)", params![])?;
            panic!("boom");
        })
    })
    .join();
    assert!(panicked.is_err());
    let rows = mgr.query("SELECT x FROM t ORDER BY x", params![]).unwrap();
    let xs: Vec<i64> = rows.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(xs, vec![1]);
    // a user error type works too, as long as it converts from dbmux::Error
    #[derive(Debug)]
    enum AppError {
        Db(dbmux::Error),
        Rule,
    }
    impl From<dbmux::Error> for AppError {
        fn from(e: dbmux::Error) -> Self {
            AppError::Db(e)
        }
    }
    let r: Result<(), AppError> = mgr.transaction(|tx| {
        tx.execute("INSERT INTO t VALUES (4)", params![])?;
        Err(AppError::Rule)
    });
    assert!(matches!(r, Err(AppError::Rule)));
    let r: Result<(), AppError> = mgr.transaction(|tx| {
        tx.execute("INSERT INTO nope VALUES (4)", params![])?;
        Ok(())
    });
    assert!(matches!(r, Err(AppError::Db(ref e)) if e.code() == ErrorCode::Sql));
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        1
    );
}

#[test]
fn begin_commit_and_rollback_follow_one_rule() {
    let mgr = Manager::from_url(":memory:").unwrap();
    let mut c = mgr.get().unwrap();
    c.execute_batch(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);
         CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
    )
    .unwrap();
    // out of order: misuse, with a message
    let e = c.commit().unwrap_err();
    assert_eq!(e.code(), ErrorCode::Misuse);
    assert!(e.message().contains("without an open transaction"), "{e}");
    assert_eq!(c.rollback().unwrap_err().code(), ErrorCode::Misuse);
    c.begin().unwrap();
    assert!(c.in_transaction());
    assert_eq!(c.begin().unwrap_err().code(), ErrorCode::Misuse);
    c.execute("INSERT INTO parent VALUES (1)", params![])
        .unwrap();
    c.commit().unwrap();
    assert!(!c.in_transaction());
    c.begin().unwrap();
    c.execute("INSERT INTO parent VALUES (2)", params![])
        .unwrap();
    c.rollback().unwrap();
    // a COMMIT refused by a deferred constraint is that constraint (not
    // CommitUnknown: the connection is fine), and nothing is left open
    c.begin().unwrap();
    c.execute("INSERT INTO child VALUES (42)", params![])
        .unwrap();
    let e = c.commit().unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint, "{e}");
    assert!(!c.in_transaction());
    let e = c
        .transaction(|tx| tx.execute("INSERT INTO child VALUES (43)", params![]))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint, "{e}");
    assert_eq!(
        c.query_scalar::<i64>("SELECT count(*) FROM child", params![])
            .unwrap(),
        0
    );
    assert_eq!(
        c.query_scalar::<i64>("SELECT count(*) FROM parent", params![])
            .unwrap(),
        1,
        "the committed row stays, the rolled-back one is gone"
    );
}

#[test]
fn a_statement_that_changes_no_rows_reports_zero() {
    let mgr = Manager::from_url(":memory:").unwrap();
    let mut c = mgr.get().unwrap();
    c.execute("CREATE TABLE t (x INTEGER)", params![]).unwrap();
    assert_eq!(
        c.execute("INSERT INTO t VALUES (1), (2), (3)", params![])
            .unwrap(),
        3
    );
    // SQLite's changes() would still say 3 after each of these
    assert_eq!(c.execute("CREATE TABLE u (y)", params![]).unwrap(), 0);
    assert_eq!(c.execute("CREATE INDEX ix ON t (x)", params![]).unwrap(), 0);
    assert_eq!(c.execute("DROP TABLE u", params![]).unwrap(), 0);
    assert_eq!(
        c.query("CREATE TABLE v (z)", params![])
            .unwrap()
            .rows_affected(),
        0
    );
    assert_eq!(
        c.execute("UPDATE t SET x = x + 1 WHERE x > 1", params![])
            .unwrap(),
        2
    );
    assert_eq!(
        c.execute("DELETE FROM t WHERE x > 100", params![]).unwrap(),
        0
    );
    assert_eq!(c.execute("DELETE FROM t", params![]).unwrap(), 3);
}

#[test]
fn query_row_stops_at_the_first_row() {
    let mgr = Manager::from_url(":memory:").unwrap();
    // the second row would fail (abs() of the smallest integer overflows):
    // query_row never steps that far, query does
    let sql = "SELECT 1 AS x UNION ALL SELECT abs(-9223372036854775808)";
    let row = mgr.query_row(sql, params![]).unwrap();
    assert_eq!(row.get::<i64>(0).unwrap(), 1);
    let e = mgr.query(sql, params![]).unwrap_err();
    assert!(e.message().contains("integer overflow"), "{e}");
    assert_eq!(
        mgr.query_row("SELECT 1 WHERE 0", params![])
            .unwrap_err()
            .code(),
        ErrorCode::NoRows
    );
}

#[test]
fn files_can_be_deleted_and_reopened_after_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let mgr = Manager::from_url(&file_url(&dir, "s.db")).unwrap();
    mgr.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    let held = mgr.get().unwrap();
    drop(held);
    assert!(dir.path().join("s.db-wal").exists());
    mgr.shutdown();
    // every connection closed: SQLite checkpointed and removed the WAL and SHM files
    assert!(!dir.path().join("s.db-wal").exists());
    assert!(!dir.path().join("s.db-shm").exists());
    assert_eq!(
        mgr.debug_info().connections_opened,
        mgr.debug_info().connections_closed
    );
    // using the manager now is a clear error
    let e = mgr.get().unwrap_err();
    assert_eq!(e.code(), ErrorCode::ManagerClosed);
    assert!(e.to_string().contains("shut down"), "{e}");
    assert!(!mgr.debug_info().engine_initialized);
    mgr.shutdown(); // twice is harmless
                    // a new manager on the same path sees the data
    let again = Manager::from_url(&file_url(&dir, "s.db")).unwrap();
    assert_eq!(
        again
            .query_scalar::<i64>("SELECT x FROM t", params![])
            .unwrap(),
        1
    );
    again.shutdown();
    std::fs::remove_file(&path).unwrap();
    assert!(!path.exists());
}

#[test]
fn checkout_timeout_is_bounded_and_explains_the_pool() {
    let timeout = Duration::from_millis(500);
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .pool_size(1)
            .max_overflow(0)
            .pool_timeout(timeout)
            .build()
            .unwrap(),
    )
    .unwrap();
    let held = mgr.get().unwrap();
    let start = Instant::now();
    let e = mgr.get().unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited >= timeout.mul_f64(0.8) && waited <= timeout.mul_f64(1.2),
        "waited {waited:?} for a {timeout:?} timeout"
    );
    assert_eq!(e.code(), ErrorCode::PoolTimeout);
    let msg = e.to_string();
    for needle in [
        "timed out after 0.5",
        "pool_size=1",
        "max_overflow=0",
        "in use=1",
        "idle=0",
        "overflow=0",
        "DB_POOL_TIMEOUT",
    ] {
        assert!(msg.contains(needle), "{msg:?} lacks {needle:?}");
    }
    let p = e.pool_status().expect("snapshot attached");
    assert_eq!((p.pool_size, p.checked_out, p.checked_in), (1, 1, 0));
    assert_eq!(mgr.debug_info().checkout_timeouts, 1);
    drop(held);
    mgr.get().unwrap(); // free again
}

#[test]
fn connect_failure_reports_the_cause_not_just_a_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(format!(
                "sqlite:///{}/no/such/dir/x.db",
                dir.path().display()
            ))
            .pool_timeout(Duration::from_millis(400))
            .build()
            .unwrap(),
    )
    .unwrap();
    let e = mgr.get().unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConnectFailed);
    assert!(
        e.to_string().contains("unable to open database file"),
        "{e}"
    );
    assert!(e.to_string().contains("does the directory exist"), "{e}");
    assert!(mgr.debug_info().connection_failures >= 1);
    assert!(mgr
        .debug_info()
        .last_connection_error
        .unwrap()
        .contains("x.db"));
}

#[test]
fn overflow_connections_are_closed_when_returned_to_a_full_pool() {
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .pool_size(2)
            .max_overflow(3)
            .build()
            .unwrap(),
    )
    .unwrap();
    let held: Vec<_> = (0..5).map(|_| mgr.get().unwrap()).collect();
    let s = mgr.pool_status();
    assert_eq!((s.checked_out, s.overflow), (5, 3));
    drop(held);
    let s = mgr.pool_status();
    assert_eq!(
        (s.checked_in, s.checked_out, s.overflow),
        (2, 0, 0),
        "{s:?}"
    );
    let d = mgr.debug_info();
    assert_eq!((d.connections_opened, d.connections_closed), (5, 3));
}

#[test]
fn pre_ping_runs_only_after_the_idle_window() {
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .pool_size(1)
            .max_overflow(0)
            .pre_ping_window(Duration::from_millis(100))
            .build()
            .unwrap(),
    )
    .unwrap();
    drop(mgr.get().unwrap());
    drop(mgr.get().unwrap()); // just returned: no ping
    assert_eq!(mgr.debug_info().pre_pings, 0);
    thread::sleep(Duration::from_millis(150));
    drop(mgr.get().unwrap()); // idle past the window: pinged
    assert_eq!(mgr.debug_info().pre_pings, 1);
}

#[test]
fn a_connection_moves_between_threads() {
    let mgr = Manager::from_url(":memory:").unwrap();
    let mut c = mgr.get().unwrap();
    c.execute("CREATE TABLE t (x)", params![]).unwrap();
    let c = thread::spawn(move || {
        c.execute("INSERT INTO t VALUES (?)", params!["from another thread"])
            .unwrap();
        c
    })
    .join()
    .unwrap();
    drop(c);
    assert_eq!(
        mgr.query_scalar::<String>("SELECT x FROM t", params![])
            .unwrap(),
        "from another thread"
    );
}

#[test]
fn values_round_trip_with_columns_and_declared_types() {
    let mgr = Manager::from_url(":memory:").unwrap();
    mgr.execute(
        "CREATE TABLE v (i INTEGER, r REAL, t TEXT, b BLOB, n VARCHAR(10))",
        params![],
    )
    .unwrap();
    let mut c = mgr.get().unwrap();
    let changed = c
        .execute(
            "INSERT INTO v VALUES (?, ?, ?, ?, ?)",
            params![i64::MIN, 2.5, "héllo", vec![0u8, 255, 7], None::<String>],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(c.last_insert_id().unwrap(), 1);
    let rows = c.query("SELECT * FROM v", params![]).unwrap();
    let names: Vec<_> = rows.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["i", "r", "t", "b", "n"]);
    let types: Vec<_> = rows
        .columns()
        .iter()
        .map(|c| c.decl_type.as_deref())
        .collect();
    assert_eq!(
        types,
        [
            Some("INTEGER"),
            Some("REAL"),
            Some("TEXT"),
            Some("BLOB"),
            Some("VARCHAR(10)")
        ]
    );
    assert_eq!(
        rows.rows()[0].values(),
        &[
            Value::Integer(i64::MIN),
            Value::Real(2.5),
            Value::Text("héllo".into()),
            Value::Blob(vec![0, 255, 7]),
            Value::Null
        ]
    );
    // columns are known even without rows
    let empty = c.query("SELECT i, t FROM v WHERE 0", params![]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.columns()[1].decl_type.as_deref(), Some("TEXT"));
    // query on a non-query reports rows affected
    let r = c.query("UPDATE v SET r = r + 1", params![]).unwrap();
    assert_eq!(r.rows_affected(), 1);
    // query_row and query_scalar errors
    assert_eq!(
        c.query_row("SELECT * FROM v WHERE 0", params![])
            .unwrap_err()
            .code(),
        ErrorCode::NoRows
    );
    assert_eq!(
        c.query_scalar::<i64>("SELECT t FROM v", params![])
            .unwrap_err()
            .code(),
        ErrorCode::TypeMismatch
    );
    // wrong parameter count
    let e = c
        .execute("INSERT INTO v (i) VALUES (?)", params![1, 2])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidParameter);
    assert_eq!(
        e.to_string(),
        "the statement takes 1 parameter(s) but 2 were given"
    );
    // a syntax error
    let e = c.execute("SELEC 1", params![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Sql);
    assert!(e.to_string().contains("syntax error"), "{e}");
    // a native escape hatch
    let native = c.as_sqlite().unwrap();
    assert_eq!(
        native
            .query_row("SELECT count(*) FROM v", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        1
    );
}

/// A runaway query on a manager built from `config` is cancelled with
/// StatementTimeout naming `setting`, and the connection works afterwards.
fn assert_long_query_is_cancelled(config: dbmux::ConfigBuilder, setting: &str) {
    let mgr = Manager::new(config.url(":memory:").build().unwrap()).unwrap();
    let start = Instant::now();
    let e = mgr
        .query_scalar::<i64>(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
            params![],
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StatementTimeout);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(e.to_string().contains(setting), "{e}");
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT 41 + 1", params![]).unwrap(),
        42
    );
}

#[test]
fn statement_timeout_cancels_long_queries() {
    assert_long_query_is_cancelled(
        Config::builder().statement_timeout(Some(Duration::from_millis(200))),
        "statement_timeout",
    );
}

/// SQLite runs in-process, so DB_QUERY_TIMEOUT is enforced like the
/// statement timeout (the shorter of the two wins).
#[test]
fn query_timeout_cancels_long_queries_on_sqlite_too() {
    assert_long_query_is_cancelled(
        Config::builder()
            .statement_timeout(Some(Duration::from_secs(60)))
            .query_timeout(Some(Duration::from_millis(200))),
        "DB_QUERY_TIMEOUT",
    );
}

#[test]
fn creating_a_manager_does_not_touch_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let mgr = Manager::from_url(&file_url(&dir, "lazy.db")).unwrap();
    assert!(start.elapsed() < Duration::from_millis(500));
    assert!(
        !dir.path().join("lazy.db").exists(),
        "no file before first use"
    );
    assert_eq!(mgr.debug_info().connections_opened, 0);
    mgr.execute("CREATE TABLE t (x)", params![]).unwrap();
    assert!(dir.path().join("lazy.db").exists());
    // even an unopenable path gives a manager; the error comes on use
    let bad = Manager::from_url("sqlite:////nonexistent-dir/a/b.db").unwrap();
    assert_eq!(bad.debug_info().connections_opened, 0);
}

#[test]
fn managers_and_connections_cross_threads() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<Manager>();
    send_sync::<dbmux::Error>();
    send::<dbmux::Connection>();
}

#[test]
fn dollar_placeholders_keep_their_positions_on_sqlite() {
    let mgr = Manager::from_url(":memory:").unwrap();
    let r = mgr
        .query("SELECT $2 || $1 || $2, '$1', ? IS NULL", params!["b", "a"])
        .unwrap_err();
    assert_eq!(
        r.code(),
        ErrorCode::InvalidParameter,
        "mixing styles is refused: {r}"
    );
    let r = mgr
        .query("SELECT $2 || $1 || $2 AS s, '$1' AS lit", params!["b", "a"])
        .unwrap();
    assert_eq!(r.rows()[0].get::<String>("s").unwrap(), "aba");
    assert_eq!(r.rows()[0].get::<String>("lit").unwrap(), "$1");
    // ? inside literals and comments is not a placeholder on SQLite either
    let v: String = mgr
        .query_scalar("SELECT '?' || ? -- ?", params!["x"])
        .unwrap();
    assert_eq!(v, "?x");
}

#[test]
fn query_into_streams_columns_and_values() {
    #[derive(Default)]
    struct Collect {
        cols: Vec<String>,
        rows: Vec<Vec<Value>>,
        cur: Vec<Value>,
    }
    impl dbmux::RowSink for Collect {
        fn columns(&mut self, c: &[dbmux::Column]) {
            self.cols = c.iter().map(|c| c.name.clone()).collect();
        }
        fn value(&mut self, v: dbmux::ValueRef<'_>) {
            self.cur.push(match v {
                dbmux::ValueRef::Null => Value::Null,
                dbmux::ValueRef::Integer(i) => Value::Integer(i),
                dbmux::ValueRef::Real(r) => Value::Real(r),
                dbmux::ValueRef::Text(t) => Value::Text(t.to_string()),
                dbmux::ValueRef::Blob(b) => Value::Blob(b.to_vec()),
            });
        }
        fn end_row(&mut self) {
            self.rows.push(std::mem::take(&mut self.cur));
        }
    }
    let mgr = Manager::from_url(":memory:").unwrap();
    let mut c = mgr.get().unwrap();
    let mut sink = Collect::default();
    assert_eq!(
        c.query_into("CREATE TABLE t (a, b)", params![], &mut sink)
            .unwrap(),
        0
    );
    let mut sink = Collect::default();
    assert_eq!(
        c.query_into(
            "INSERT INTO t VALUES (1, 'x'), (2, NULL)",
            params![],
            &mut sink
        )
        .unwrap(),
        2
    );
    let mut sink = Collect::default();
    c.query_into(
        "SELECT a, b FROM t WHERE a >= ? ORDER BY a",
        params![1],
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.cols, ["a", "b"]);
    assert_eq!(
        sink.rows,
        vec![
            vec![Value::Integer(1), Value::Text("x".into())],
            vec![Value::Integer(2), Value::Null]
        ]
    );
}

/// `get_read()` on SQLite: the same database opened read-only. Reads see
/// committed data; a write fails with ReadOnly and says to use get(); the
/// read pool is sized apart from the write pool.
#[test]
fn get_read_gives_engine_enforced_read_only_connections() {
    let dir = tempfile::tempdir().unwrap();
    for url in [file_url(&dir, "reads.db"), "sqlite::memory:".to_string()] {
        let mgr = Manager::new(
            Config::builder()
                .url(&url)
                .pool_size(2)
                .read_pool_size(3)
                .max_overflow(0)
                .build()
                .unwrap(),
        )
        .unwrap();
        // a reader first, on a file that does not exist yet: the write pool creates it
        assert_eq!(
            mgr.get_read()
                .unwrap()
                .query_scalar::<i64>("SELECT 1", params![])
                .unwrap(),
            1
        );
        mgr.execute("CREATE TABLE t (x INTEGER)", params![])
            .unwrap();
        mgr.execute("INSERT INTO t VALUES (7)", params![]).unwrap();
        let readers: Vec<_> = (0..3).map(|_| mgr.get_read().unwrap()).collect();
        for mut r in readers {
            assert!(r.is_read_only());
            assert_eq!(
                r.query_scalar::<i64>("SELECT x FROM t", params![]).unwrap(),
                7
            );
            let e = r
                .execute("INSERT INTO t VALUES (8)", params![])
                .unwrap_err();
            assert_eq!(e.code(), ErrorCode::ReadOnly, "{url}: {e}");
            assert!(
                e.to_string().contains("use get()") || e.to_string().contains("with get()"),
                "{e}"
            );
            // a read transaction takes no write lock
            r.begin().unwrap();
            assert_eq!(
                r.query_scalar::<i64>("SELECT count(*) FROM t", params![])
                    .unwrap(),
                1
            );
            r.rollback().unwrap();
            // DDL, turning query_only off: still refused by the engine
            for sql in [
                "CREATE TABLE u (y INTEGER)",
                "DROP TABLE t",
                "PRAGMA query_only=0; INSERT INTO t VALUES (9)",
            ] {
                let e = r.execute_batch(sql).unwrap_err();
                assert_eq!(e.code(), ErrorCode::ReadOnly, "{url}: {sql}: {e}");
            }
            r.execute_batch("PRAGMA query_only=1").unwrap();
        }
        if url.starts_with("sqlite:///") {
            // ATTACH another file, then write to it: refused too
            let other = dir.path().join("other.db");
            rusqlite::Connection::open(&other)
                .unwrap()
                .execute_batch("CREATE TABLE IF NOT EXISTS o (z INTEGER)")
                .unwrap();
            let mut r = mgr.get_read().unwrap();
            let attached = r.execute_batch(&format!(
                "ATTACH DATABASE '{}' AS other; INSERT INTO other.o VALUES (1)",
                other.display()
            ));
            let e = attached.unwrap_err();
            assert_eq!(e.code(), ErrorCode::ReadOnly, "{e}");
            let _ = r.execute_batch("DETACH DATABASE other");
        }
        // the write pool is untouched by the readers
        assert!(!mgr.get().unwrap().is_read_only());
        assert_eq!(
            mgr.query_scalar::<i64>("SELECT count(*) FROM t", params![])
                .unwrap(),
            1
        );
        mgr.shutdown();
    }
}
