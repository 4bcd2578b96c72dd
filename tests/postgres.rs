//! PostgreSQL against real servers started by scripts/with-test-postgres.sh:
//! every sslmode, client certificates, statement timeouts, application
//! names, pool limits, reset on return, typed binding and result mapping.
//!
//! Without the servers these tests skip with a message locally, and fail in
//! CI (CI=true).
#![cfg(feature = "postgres")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager, Value};

use common::pg;

/// Connects once; returns Ok(encrypted) or the error.
fn try_connect(url: &str) -> dbmux::Result<bool> {
    common::try_connect(url, Duration::from_millis(1500))
}

// Every sslmode with every root is tests/pg_tls.rs (it changes HOME, so it
// runs in a process of its own).

#[test]
fn values_that_cannot_be_read_or_bound_are_classified_by_where_they_fail() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    // a result value dbmux cannot decode: TypeMismatch, the cause said once
    for e in [
        mgr.query("SELECT point(1, 2) AS p", params![]).unwrap_err(),
        mgr.query_scalar::<String>("SELECT point(1, 2)", params![])
            .unwrap_err(),
    ] {
        assert_eq!(e.code(), ErrorCode::TypeMismatch, "{e}");
        let m = e.message();
        assert_eq!(
            m.matches("cannot read PostgreSQL type point").count(),
            1,
            "{m}"
        );
        assert!(m.contains("col::text"), "the message says what to do: {m}");
    }
    // a parameter that cannot be sent for its type: InvalidParameter
    let e = mgr
        .query("SELECT $1::int4", &[Value::Blob(vec![1, 2])])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidParameter, "{e}");
    assert!(e.message().contains("cannot bind a blob"), "{e}");
    // the session is fine afterwards
    assert_eq!(mgr.query_scalar::<i64>("SELECT 1", params![]).unwrap(), 1);
    mgr.shutdown();
}

#[test]
fn allow_falls_back_to_tls_when_the_server_insists() {
    let Some(pg) = pg() else { return };
    // pg_hba.conf rejects role sslonly without TLS
    let allow = pg.url("sslonly", "127.0.0.1", &pg.port, "sslmode=allow");
    assert!(try_connect(&allow).unwrap(), "allow retried with TLS");
    let disable = pg.url("sslonly", "127.0.0.1", &pg.port, "sslmode=disable");
    let e = try_connect(&disable).unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthFailed);
    assert!(e.to_string().contains("pg_hba.conf"), "{e}");
}

#[test]
fn client_certificate_required_by_pg_hba() {
    let Some(pg) = pg() else { return };
    let with_cert = format!(
        "postgresql://certuser@localhost:{}/dbmux_test?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        pg.port,
        pg.cert("ca.crt"),
        pg.cert("client.crt"),
        pg.cert("client.key")
    );
    let mgr = pg.manager(&with_cert).unwrap();
    assert_eq!(
        mgr.query_scalar::<String>("SELECT current_user::text", params![])
            .unwrap(),
        "certuser"
    );
    mgr.shutdown();
    let without = format!(
        "postgresql://certuser@localhost:{}/dbmux_test?sslmode=require",
        pg.port
    );
    let e = try_connect(&without).unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthFailed);
    assert!(e.to_string().contains("certificate"), "{e}");
    // a missing key file is a configuration error naming the file
    let bad = format!("{with_cert}x");
    let e = pg.manager(&bad).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(e.to_string().contains("client.keyx"), "{e}");
}

#[test]
fn statement_timeout_cancels_pg_sleep() {
    let Some(pg) = pg() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(pg.main())
            .statement_timeout(Some(Duration::from_millis(300)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let start = Instant::now();
    let e = mgr.execute("SELECT pg_sleep(5)", params![]).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(e.code(), ErrorCode::StatementTimeout, "{e}");
    assert!(e.to_string().contains("57014"), "{e}");
    // the same connection still works
    assert_eq!(mgr.query_scalar::<i64>("SELECT 1", params![]).unwrap(), 1);
    // and options from the URL work too
    let mgr = pg
        .manager(&format!(
            "{}?options=-c%20statement_timeout%3D250",
            pg.main()
        ))
        .unwrap();
    assert_eq!(
        mgr.execute("SELECT pg_sleep(3)", params![])
            .unwrap_err()
            .code(),
        ErrorCode::StatementTimeout
    );
}

#[test]
fn application_name_is_visible_in_pg_stat_activity() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    let name: String = mgr
        .query_scalar(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            params![],
        )
        .unwrap();
    assert_eq!(name, "dbmux");
    let worker = Manager::new(
        Config::builder()
            .url(pg.main())
            .worker_id("gw3")
            .build()
            .unwrap(),
    )
    .unwrap();
    let name: String = worker
        .query_scalar(
            "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            params![],
        )
        .unwrap();
    assert_eq!(name, format!("dbmux_gw3_{}", std::process::id()));
    let explicit = pg
        .manager(&format!("{}?application_name=billing", pg.main()))
        .unwrap();
    let name: String = explicit
        .query_scalar("SELECT current_setting('application_name')", params![])
        .unwrap();
    assert_eq!(name, "billing");
}

#[test]
fn thirty_two_threads_never_exceed_pool_size_plus_overflow() {
    let Some(pg) = pg() else { return };
    let app = format!("dbmux_cap_{}", std::process::id());
    let mgr = Manager::new(
        Config::builder()
            .url(format!("{}?application_name={app}", pg.main()))
            .pool_size(3)
            .max_overflow(2)
            .pool_timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
    )
    .unwrap();
    let monitor = pg.manager(&pg.main()).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let max_seen = Arc::new(AtomicI64::new(0));
    let watcher = {
        let (stop, max_seen, app) = (stop.clone(), max_seen.clone(), app.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let n: i64 = monitor
                    .query_scalar(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
                        params![app.clone()],
                    )
                    .unwrap();
                max_seen.fetch_max(n, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let workers: Vec<_> = (0..32)
        .map(|i| {
            let mgr = mgr.clone();
            thread::spawn(move || {
                for j in 0..10 {
                    let v: i64 = mgr
                        .query_scalar(
                            "SELECT ?::int8 + 0 FROM pg_sleep(0.005)",
                            params![i * 100 + j],
                        )
                        .unwrap();
                    assert_eq!(v, i * 100 + j);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    watcher.join().unwrap();
    let seen = max_seen.load(Ordering::Relaxed);
    assert!(
        (1..=5).contains(&seen),
        "saw {seen} connections for a pool of 3 + 2"
    );
    let d = mgr.debug_info();
    assert!(d.connections_opened <= 5 + d.connections_closed, "{d:?}");
    assert_eq!(d.session_creation_count, 320);
}

#[test]
fn an_open_transaction_is_rolled_back_on_return() {
    let Some(pg) = pg() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(pg.main())
            .pool_size(1)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let table = format!("reset_{}", std::process::id());
    mgr.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int)"
    ))
    .unwrap();
    {
        let mut c = mgr.get().unwrap();
        c.execute_batch("BEGIN").unwrap();
        c.execute(&format!("INSERT INTO {table} VALUES (?)"), params![1])
            .unwrap();
        assert!(c.in_transaction());
    }
    let mut c = mgr.get().unwrap();
    assert!(!c.in_transaction());
    assert_eq!(
        c.query_scalar::<i64>(&format!("SELECT count(*) FROM {table}"), params![])
            .unwrap(),
        0
    );
    // the transaction API too: Err rolls back, Ok commits
    drop(c);
    let r: dbmux::Result<()> = mgr.transaction(|tx| {
        tx.execute(&format!("INSERT INTO {table} VALUES (?)"), params![2])?;
        Err(tx.execute("SELEC", params![]).unwrap_err())
    });
    assert!(r.is_err());
    mgr.transaction(|tx| tx.execute(&format!("INSERT INTO {table} VALUES (?)"), params![3]))
        .unwrap();
    let xs = mgr
        .query(&format!("SELECT x FROM {table}"), params![])
        .unwrap();
    assert_eq!(xs.len(), 1);
    assert_eq!(xs.rows()[0].get::<i64>(0).unwrap(), 3);
    assert_eq!(mgr.debug_info().resets_on_return, 1);
    mgr.execute_batch(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn placeholders_and_typed_binding() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    let mut c = mgr.get().unwrap();
    // ? rewritten to $n; a ? in literals, identifiers, comments and dollar quotes stays
    let r = c
        .query(
            "SELECT ? AS a, '?' AS \"b?\", $$?$$ AS c /* ? */, ?::int4 + 1 AS d -- ?\n",
            params!["x", 41],
        )
        .unwrap();
    assert_eq!(
        r.rows()[0].values(),
        &[
            Value::Text("x".into()),
            Value::Text("?".into()),
            Value::Text("?".into()),
            Value::Integer(42)
        ]
    );
    assert_eq!(r.columns()[1].name, "b?");
    assert_eq!(r.columns()[3].decl_type.as_deref(), Some("int4"));
    // $n keeps its meaning: $2 before $1, a number used twice
    let r = c
        .query("SELECT $2::text || $1::text || $2::text", params!["b", "a"])
        .unwrap();
    assert_eq!(r.rows()[0].get::<String>(0).unwrap(), "aba");
    // an i64 binds to int2/int4/int8/numeric/float parameters as the server inferred them
    assert_eq!(
        c.query_scalar::<i64>("SELECT $1::int2 + 1", params![1])
            .unwrap(),
        2
    );
    assert_eq!(
        c.query_scalar::<f64>("SELECT ?::float8 / 2", params![3])
            .unwrap(),
        1.5
    );
    assert_eq!(
        c.query_scalar::<String>("SELECT ?::numeric * 2", params![5])
            .unwrap(),
        "10"
    );
    // out of range for int4: a clear data error, not a panic
    let e = c
        .query_scalar::<i64>("SELECT $1::int4", params![i64::MAX])
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::TypeMismatch, "{e}");
    assert!(e.to_string().contains("out of range"), "{e}");
    // wrong parameter count
    let e = c.query("SELECT ?, ?", params![1]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidParameter);
    assert_eq!(
        e.to_string(),
        "the statement takes 2 parameter(s) but 1 were given"
    );
    // mixing styles
    assert_eq!(
        c.query("SELECT ?, $1", params![1]).unwrap_err().code(),
        ErrorCode::InvalidParameter
    );
    // a syntax error
    let e = c.execute("SELEC 1", params![]).unwrap_err();
    assert_eq!(e.code(), ErrorCode::Sql);
    assert!(e.to_string().contains("42601"), "{e}");
}

#[test]
fn every_type_round_trips_without_losing_precision() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    let table = format!("types_{}", std::process::id());
    mgr.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table};
         CREATE TABLE {table} (
           i2 int2, i4 int4, i8 int8, f4 float4, f8 float8, n numeric, b bool, t text,
           v varchar(20), by bytea, j json, jb jsonb, u uuid, d date, ts timestamp,
           tz timestamptz, e text)"
    ))
    .unwrap();
    let inserted = mgr
        .execute(
            &format!(
                "INSERT INTO {table} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            params![
                -32768,
                2147483647,
                i64::MIN,
                1.5,
                0.1,
                "12345678901234567890.123456789012345678901",
                true,
                "héllo ✓",
                "short",
                vec![0u8, 1, 254, 255],
                "{\"a\": [1, 2]}",
                "{\"b\": null}",
                "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                "2024-02-29",
                "2024-02-29 12:34:56.789012",
                "2024-02-29T12:34:56.5+02:00",
                None::<String>
            ],
        )
        .unwrap();
    assert_eq!(inserted, 1);
    let rows = mgr
        .query(&format!("SELECT * FROM {table}"), params![])
        .unwrap();
    let types: Vec<_> = rows
        .columns()
        .iter()
        .map(|c| c.decl_type.clone().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "int2",
            "int4",
            "int8",
            "float4",
            "float8",
            "numeric",
            "bool",
            "text",
            "varchar",
            "bytea",
            "json",
            "jsonb",
            "uuid",
            "date",
            "timestamp",
            "timestamptz",
            "text"
        ]
    );
    assert_eq!(
        rows.rows()[0].values(),
        &[
            Value::Integer(-32768),
            Value::Integer(2147483647),
            Value::Integer(i64::MIN),
            Value::Real(1.5),
            Value::Real(0.1),
            Value::Text("12345678901234567890.123456789012345678901".into()),
            Value::Integer(1),
            Value::Text("héllo ✓".into()),
            Value::Text("short".into()),
            Value::Blob(vec![0, 1, 254, 255]),
            Value::Text("{\"a\": [1, 2]}".into()),
            Value::Text("{\"b\": null}".into()),
            Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into()),
            Value::Text("2024-02-29".into()),
            Value::Text("2024-02-29T12:34:56.789012".into()),
            Value::Text("2024-02-29T10:34:56.5+00:00".into()),
            Value::Null,
        ]
    );
    // NaN and infinities, negative and tiny numerics
    let r = mgr
        .query("SELECT 'NaN'::numeric, '-0.000001'::numeric, 'infinity'::timestamp, '-infinity'::float8", params![])
        .unwrap();
    assert_eq!(
        r.rows()[0].values(),
        &[
            Value::Text("NaN".into()),
            Value::Text("-0.000001".into()),
            Value::Text("infinity".into()),
            Value::Real(f64::NEG_INFINITY)
        ]
    );
    // an unsupported type says how to read it
    let e = mgr.query("SELECT '(1,2)'::point", params![]).unwrap_err();
    assert!(e.to_string().contains("::text"), "{e}");
    assert_eq!(
        mgr.query_scalar::<String>("SELECT ('(1,2)'::point)::text", params![])
            .unwrap(),
        "(1,2)"
    );
    // interval: an ISO 8601 duration
    assert_eq!(
        mgr.query_scalar::<String>("SELECT interval '1 day'", params![])
            .unwrap(),
        "P1D"
    );
    // last_insert_id through lastval()
    let mut c = mgr.get().unwrap();
    c.execute_batch(&format!("CREATE TEMP TABLE ids_{table} (id serial, x int)"))
        .unwrap();
    c.execute(
        &format!("INSERT INTO ids_{table} (x) VALUES (?)"),
        params![7],
    )
    .unwrap();
    c.execute(
        &format!("INSERT INTO ids_{table} (x) VALUES (?)"),
        params![8],
    )
    .unwrap();
    assert_eq!(c.last_insert_id().unwrap(), 2);
    drop(c);
    mgr.execute_batch(&format!("DROP TABLE {table}")).unwrap();
}

#[test]
fn health_reports_version_tls_and_address_without_password() {
    let Some(pg) = pg() else { return };
    let mgr = pg
        .manager(&format!(
            "{}?sslmode=verify-full&sslrootcert={}",
            pg.main(),
            pg.cert("ca.crt")
        ))
        .unwrap();
    let h = mgr.check_health();
    assert!(h.is_healthy(), "{h:?}");
    assert_eq!(h.database_type, Some(dbmux::url::Backend::Postgres));
    assert!(
        h.version.as_deref().unwrap().starts_with("PostgreSQL 15"),
        "{h:?}"
    );
    assert_eq!(h.tls, Some(true));
    assert_eq!(h.sqlite_version, None, "no SQLite is involved");
    let json = h.to_json();
    assert!(
        json.contains(&format!("dbmux:***@localhost:{}", pg.port)),
        "{json}"
    );
    assert!(!json.contains(&pg.password));
    assert!(!mgr.debug_info().to_json().contains(&pg.password));
    let plain = pg
        .manager(&pg.url("dbmux", "127.0.0.1", &pg.plain_port, ""))
        .unwrap();
    assert_eq!(plain.check_health().tls, Some(false));
    // a wrong password: unhealthy, says why, no password
    let bad = pg
        .manager(
            &pg.url("dbmux", "127.0.0.1", &pg.port, "")
                .replace(&pg.password, "wrong-pw-123"),
        )
        .unwrap();
    let h = bad.check_health();
    assert_eq!(h.error_code.map(|c| c.name()), Some("auth_failed"), "{h:?}");
    assert!(
        h.message.contains("password authentication failed"),
        "{}",
        h.message
    );
    assert!(!h.to_json().contains("wrong-pw-123"));
}

#[test]
fn works_when_called_from_inside_a_tokio_runtime() {
    let Some(pg) = pg() else { return };
    let url = pg.main();
    // as a Tauri command would: a current-thread runtime calling the sync API
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let n = rt.block_on(async move {
        let mgr = Manager::from_url(&url).unwrap();
        let n: i64 = mgr.query_scalar("SELECT ?::int8 * 2", params![21]).unwrap();
        mgr.transaction(|tx| tx.execute("SELECT 1", params![]))
            .unwrap();
        let h = mgr.check_health();
        assert!(h.is_healthy(), "{h:?}");
        // the native session too: block_on polls on this thread, no runtime nested
        let mut conn = mgr.get().unwrap();
        let pg = conn.as_postgres().unwrap();
        let rows = pg
            .block_on(pg.client().query("SELECT 2::int4", &[]))
            .unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 2);
        drop(conn);
        mgr.shutdown();
        n
    });
    assert_eq!(n, 42);
}

/// Rows reach a sink as they arrive (on the caller's thread) or after the
/// whole result (inside a tokio runtime): either way every row arrives, a
/// read stopped early or failing halfway leaves nothing behind on the
/// session, and the next statement reads its own result.
fn rows_arrive_whole_and_the_session_stays_clean(mgr: &Manager) {
    struct FirstThree(Vec<i64>);
    impl dbmux::RowSink for FirstThree {
        fn columns(&mut self, columns: &[dbmux::Column]) {
            assert_eq!(columns[0].name, "g");
        }
        fn value(&mut self, v: dbmux::ValueRef<'_>) {
            if let dbmux::ValueRef::Integer(i) = v {
                self.0.push(i);
            }
        }
        fn end_row(&mut self) {}
        fn wants_more(&self) -> bool {
            self.0.len() < 3
        }
    }
    let mut c = mgr.get().unwrap();
    let rows = c
        .query(
            "SELECT g::int8 AS g FROM generate_series(1, 50000) g",
            params![],
        )
        .unwrap();
    assert_eq!(rows.len(), 50_000);
    let sum: i64 = rows.iter().map(|r| r.get::<i64>(0).unwrap()).sum();
    assert_eq!(sum, 50_000 * 50_001 / 2);
    // stopped after three rows of 100,000: the rest never reaches the next
    // statement
    let mut first = FirstThree(Vec::new());
    c.query_into(
        "SELECT g::int8 AS g FROM generate_series(1, 100000) g",
        params![],
        &mut first,
    )
    .unwrap();
    assert_eq!(first.0, vec![1, 2, 3]);
    assert_eq!(
        c.query_row("SELECT 'next'::text", params![])
            .unwrap()
            .get::<String>(0)
            .unwrap(),
        "next"
    );
    // a failure at row 5,000 of 10,000: the statement's error, then a
    // session that works
    let e = c
        .query(
            "SELECT 1 / (5000 - g) FROM generate_series(1, 10000) g",
            params![],
        )
        .unwrap_err();
    assert_eq!(e.sqlstate().as_deref(), Some("22012"), "{e}");
    assert!(e.message().contains("division by zero"), "{e}");
    assert_eq!(
        c.query_scalar::<i64>("SELECT 7::int8", params![]).unwrap(),
        7
    );
}

#[test]
fn rows_stream_to_the_caller_and_an_early_stop_or_a_failure_halfway_leaves_no_trace() {
    let Some(pg) = pg() else { return };
    let mgr = Manager::from_url(&pg.main()).unwrap();
    rows_arrive_whole_and_the_session_stays_clean(&mgr);
    // inside a runtime (a Tauri command): the same streaming path, on that thread
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async { rows_arrive_whole_and_the_session_stays_clean(&mgr) });
    mgr.shutdown();
}

/// The native tokio-postgres session: calls dbmux does not wrap, classified
/// errors, and the query timeout applied to them as well.
#[test]
fn the_native_session_runs_tokio_postgres_calls_with_the_query_timeout() {
    let Some(pg) = pg() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(pg.main())
            .query_timeout(Some(Duration::from_millis(300)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut conn = mgr.get().unwrap();
    let native = conn.as_postgres().expect("a PostgreSQL connection");
    let rows = native
        .block_on(native.client().query("SELECT $1::int4 + 1", &[&41i32]))
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 42);
    let e = native
        .block_on(native.client().batch_execute("SELEC 1"))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Sql, "{e}");
    assert!(e.to_string().contains("42601"), "{e}");
    // pg_sleep outlasts the client-side deadline: the call gives up, and
    // the connection is discarded rather than returned
    let start = Instant::now();
    let e = native
        .block_on(native.client().batch_execute("SELECT pg_sleep(5)"))
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StatementTimeout, "{e}");
    assert!(start.elapsed() < Duration::from_secs(3));
    let before = mgr.debug_info().pool_invalidated;
    drop(conn);
    assert_eq!(mgr.debug_info().pool_invalidated, before + 1);
    assert_eq!(mgr.query_scalar::<i64>("SELECT 1", params![]).unwrap(), 1);
    mgr.shutdown();
}

#[test]
fn arrays_intervals_and_catalog_types_read_as_postgresql_writes_them() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    let mut c = mgr.get().unwrap();
    let rows = c
        .query(
            "SELECT ARRAY[1, NULL, 3]::int4[] AS a, ARRAY['x', 'y z', '', 'a\"b', NULL]::text[] AS t, \
             ARRAY[[true, false], [false, true]] AS m, '{}'::int8[] AS e, \
             '1 year 2 mons 3 days 04:05:06.5'::interval AS i, '0 0 1'::int2vector AS v, \
             ''::\"char\" AS ch",
            &[],
        )
        .unwrap();
    let r = &rows.rows()[0];
    assert_eq!(r.get::<String>("a").unwrap(), "{1,NULL,3}");
    assert_eq!(r.get::<String>("t").unwrap(), r#"{x,"y z","","a\"b",NULL}"#);
    assert_eq!(r.get::<String>("m").unwrap(), "{{t,f},{f,t}}");
    assert_eq!(r.get::<String>("e").unwrap(), "{}");
    assert_eq!(r.get::<String>("i").unwrap(), "P1Y2M3DT4H5M6.5S");
    assert_eq!(r.get::<String>("v").unwrap(), "0 0 1");
    assert_eq!(r.get::<String>("ch").unwrap(), "");
    // the same text PostgreSQL's own output gives for the arrays
    let text: String = c
        .query_scalar(
            "SELECT ARRAY['x', 'y z', '', 'a\"b', NULL]::text[]::text",
            &[],
        )
        .unwrap();
    assert_eq!(text, r#"{x,"y z","","a\"b",NULL}"#);
    // the type OIDs come with the columns
    let oids: Vec<Option<u32>> = rows.columns().iter().map(|c| c.type_oid).collect();
    assert_eq!(oids[0], Some(1007)); // int4[]
    assert_eq!(oids[4], Some(1186)); // interval
}

#[test]
fn verbatim_sql_keeps_the_jsonb_question_mark_and_resets_on_return() {
    let Some(pg) = pg() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(pg.main())
            .pool_size(1)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut c = mgr.get().unwrap();
    assert!(c.is_first_checkout());
    c.set_verbatim_sql(true);
    let has: bool = c
        .query_scalar(
            "SELECT $1::jsonb ? 'a'",
            &[Value::Text(r#"{"a": 1}"#.into())],
        )
        .map(|v: i64| v != 0)
        .unwrap();
    assert!(has);
    drop(c);
    // the next checkout is the same connection, rewriting again
    let mut c = mgr.get().unwrap();
    assert!(!c.is_first_checkout());
    assert_eq!(
        c.query_scalar::<i64>("SELECT ? + 1", params![41]).unwrap(),
        42
    );
    // a discarded connection is not pooled again
    c.discard();
    drop(c);
    assert!(mgr.get().unwrap().is_first_checkout());
}

#[test]
fn ddl_on_one_connection_makes_the_others_prepare_again() {
    let Some(pg) = pg() else { return };
    let mgr = pg.manager(&pg.main()).unwrap();
    let table = format!("epoch_{}", std::process::id());
    let mut a = mgr.get().unwrap();
    let mut b = mgr.get().unwrap();
    a.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int4)"
    ))
    .unwrap();
    a.execute(&format!("INSERT INTO {table} VALUES (1)"), &[])
        .unwrap();
    let sql = format!("SELECT * FROM {table}");
    assert_eq!(b.query(&sql, &[]).unwrap().rows().len(), 1); // prepared, cached
    a.execute(&format!("ALTER TABLE {table} ADD COLUMN y text"), &[])
        .unwrap();
    // the cached plan would fail with "cached plan must not change result type"
    let rows = b.query(&sql, &[]).unwrap();
    assert_eq!(rows.columns().len(), 2);
    a.execute(&format!("DROP TABLE {table}"), &[]).unwrap();
}
