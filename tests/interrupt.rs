//! `Connection::interrupter`: a statement interrupted from another thread
//! fails at once with `Cancelled`, on a real SQLite file and on the
//! throwaway PostgreSQL server, and the connection goes on working.

mod common;

use std::time::{Duration, Instant};

use dbmux::{params, ErrorCode, Manager};

fn interrupted_at_once(mgr: &Manager, long: &str) {
    let mut conn = mgr.get().unwrap();
    let stop = conn.interrupter().expect("an interrupter");
    let started = Instant::now();
    let stopper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        stop.interrupt();
    });
    let e = conn
        .query_scalar::<i64>(long, params![])
        .expect_err("the statement should have been interrupted");
    let took = started.elapsed();
    stopper.join().unwrap();
    assert_eq!(e.code(), ErrorCode::Cancelled, "{e}");
    assert!(e.to_string().contains("interrupted"), "{e}");
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // the connection works on, and a real timeout is still a timeout
    assert_eq!(conn.query_scalar::<i64>("SELECT 7", params![]).unwrap(), 7);
    // an interrupt with nothing running changes nothing later
    conn.interrupter().unwrap().interrupt();
    std::thread::sleep(Duration::from_millis(50));
    let _ = conn.query_scalar::<i64>("SELECT 8", params![]);
    assert_eq!(conn.query_scalar::<i64>("SELECT 9", params![]).unwrap(), 9);
}

#[test]
fn a_sqlite_statement_is_interrupted_from_another_thread() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::from_url(&format!("sqlite:///{}/i.db", dir.path().display())).unwrap();
    interrupted_at_once(
        &mgr,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000000) \
         SELECT count(*) FROM c",
    );
    mgr.shutdown();
}

#[test]
fn a_postgresql_statement_is_cancelled_from_another_thread() {
    let Some(pg) = common::pg() else { return };
    // over TLS: the cancel request makes its own TLS connection
    let mgr = pg
        .manager(&format!("{}?sslmode=require", pg.main()))
        .unwrap();
    interrupted_at_once(&mgr, "SELECT 1 FROM pg_sleep(30)");
    mgr.shutdown();
}
