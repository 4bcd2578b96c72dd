//! Fault tests against the throwaway PostgreSQL server: backends killed,
//! the server stopped and restarted under load. They control the server
//! (pg_ctl as the `postgres` user), so they live in their own test binary
//! and run one at a time. All traffic stays on loopback; every loop is
//! bounded in count and time.
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager, RetryPolicy};

static SERIAL: Mutex<()> = Mutex::new(());

use common::{control as server, Control as Server};

trait FaultManager {
    fn manager(&self, app: &str, retry: RetryPolicy, pool_timeout: Duration) -> Manager;
}

impl FaultManager for Server {
    fn manager(&self, app: &str, retry: RetryPolicy, pool_timeout: Duration) -> Manager {
        Manager::new(
            Config::builder()
                .url(format!(
                    "{}?sslmode=disable&application_name={app}",
                    self.url
                ))
                .pool_size(4)
                .max_overflow(4)
                .pool_timeout(pool_timeout)
                .retry(retry)
                .build()
                .unwrap(),
        )
        .unwrap()
    }
}

/// The same manager works again within 20 s, without any call from the test.
fn assert_recovers(mgr: &Manager) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        match mgr.query_scalar::<i64>("SELECT 41 + 1", params![]) {
            Ok(v) => {
                last = Some(v);
                break;
            }
            Err(e) => {
                eprintln!("still recovering: {e}");
                thread::sleep(Duration::from_millis(200));
            }
        }
    }
    assert_eq!(last, Some(42));
}

fn unique(name: &str) -> String {
    format!("{name}_{}", std::process::id())
}

/// Fault test 2: every pooled connection's backend is terminated; the next
/// uses see no error (the broken connections are discarded and the work is
/// retried on fresh ones), and the invalidated counter moves.
#[test]
fn terminated_backends_are_replaced_without_errors() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let app = unique("faults_term");
    let mgr = pg.manager(
        &app,
        RetryPolicy::new(5, Duration::from_millis(20), Duration::from_millis(200)),
        Duration::from_secs(10),
    );
    // open four connections and leave them idle in the pool
    let held: Vec<_> = (0..4).map(|_| mgr.get().unwrap()).collect();
    drop(held);
    let admin = pg.manager(
        "faults_admin",
        RetryPolicy::default(),
        Duration::from_secs(10),
    );
    let killed: i64 = admin
        .query_scalar(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?",
            params![app.clone()],
        )
        .unwrap();
    assert_eq!(killed, 4);
    // pg_terminate_backend only signals: wait until the backends are gone
    // (they sent their FATAL and closed), as after a server restart
    let t = std::time::Instant::now();
    while admin
        .query_scalar::<i64>(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
            params![app.clone()],
        )
        .unwrap()
        > 0
    {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "backends still alive"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut errors = 0;
    for i in 0..20i64 {
        match mgr.with_retry(|c| c.query_scalar::<i64>("SELECT ?::int8 + 1", params![i])) {
            Ok(v) => assert_eq!(v, i + 1),
            Err(e) => {
                errors += 1;
                eprintln!("error: {e}");
            }
        }
    }
    assert_eq!(errors, 0);
    let d = mgr.debug_info();
    // the four dead sessions are seen on their sockets at checkout (the
    // server's FATAL is there), so no statement fails and nothing is retried
    assert_eq!(d.pool_invalidated, 4, "{d:?}");
    assert_eq!(d.retries, 0, "{d:?}");
    mgr.shutdown();
    admin.shutdown();
}

/// `try_get` hands out an idle connection at once and nothing else: `None`
/// while nothing is idle (it never opens one), for an idle connection whose
/// backend is gone (left in the pool for `get`, which discards and replaces
/// it), and after shutdown.
#[test]
fn try_get_takes_only_an_idle_connection_that_needs_no_round_trip() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let app = unique("faults_try");
    let mgr = pg.manager(&app, RetryPolicy::default(), Duration::from_secs(10));
    let open = |s: dbmux::pool::PoolStatus| (s.checked_in, s.checked_out);
    assert!(mgr.try_get().is_none(), "nothing was idle yet");
    assert_eq!(
        open(mgr.pool_status()),
        (0, 0),
        "try_get opened a connection"
    );
    drop(mgr.get().unwrap());
    {
        let mut c = mgr.try_get().expect("an idle connection");
        assert_eq!(open(mgr.pool_status()), (0, 1));
        assert_eq!(
            c.query_scalar::<i64>("SELECT 40 + 2", params![]).unwrap(),
            42
        );
        assert!(
            mgr.try_get().is_none(),
            "the only connection is checked out"
        );
    }
    assert_eq!(open(mgr.pool_status()), (1, 0));

    let admin = pg.manager(
        "faults_try_admin",
        RetryPolicy::default(),
        Duration::from_secs(10),
    );
    let gone = |admin: &Manager| {
        admin
            .query_scalar::<i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = ?",
                params![app.clone()],
            )
            .unwrap()
            == 0
    };
    admin
        .query_scalar::<i64>(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = ?",
            params![app.clone()],
        )
        .unwrap();
    let t = Instant::now();
    while !gone(&admin) {
        assert!(t.elapsed() < Duration::from_secs(10), "backend still alive");
        thread::sleep(Duration::from_millis(10));
    }
    assert!(
        mgr.try_get().is_none(),
        "the idle connection's server closed it"
    );
    assert_eq!(open(mgr.pool_status()), (1, 0), "try_get changed the pool");
    let invalidated = mgr.debug_info().pool_invalidated;
    let mut c = mgr.get().unwrap();
    assert_eq!(c.query_scalar::<i64>("SELECT 7", params![]).unwrap(), 7);
    drop(c);
    assert_eq!(mgr.debug_info().pool_invalidated, invalidated + 1);
    assert!(mgr.try_get().is_some(), "the new connection is idle now");
    mgr.shutdown();
    assert!(mgr.try_get().is_none(), "after shutdown");
    admin.shutdown();
}

/// A connection whose backend was terminated fails with ConnectFailed, and
/// a second call on it fails at once without touching the socket again; it
/// is discarded on return.
#[test]
fn a_failed_connection_is_not_used_again() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let mgr = pg.manager(
        &unique("faults_dead"),
        RetryPolicy::new(1, Duration::ZERO, Duration::ZERO),
        Duration::from_secs(10),
    );
    let mut conn = mgr.get().unwrap();
    let pid: i64 = conn
        .query_scalar("SELECT pg_backend_pid()", params![])
        .unwrap();
    let killed: bool = mgr
        .query_scalar("SELECT pg_terminate_backend(?::int4)", params![pid])
        .unwrap();
    assert!(killed);
    let first = conn.query_scalar::<i64>("SELECT 1", params![]).unwrap_err();
    assert_eq!(first.code(), ErrorCode::ConnectFailed, "{first}");
    let start = Instant::now();
    let second = conn.query_scalar::<i64>("SELECT 1", params![]).unwrap_err();
    assert_eq!(second.code(), ErrorCode::ConnectFailed, "{second}");
    assert!(
        second
            .to_string()
            .contains("failed or stopped answering earlier"),
        "{second}"
    );
    assert!(start.elapsed() < Duration::from_millis(100));
    let before = mgr.debug_info().pool_invalidated;
    drop(conn);
    assert!(mgr.debug_info().pool_invalidated > before);
    assert_eq!(mgr.query_scalar::<i64>("SELECT 2", params![]).unwrap(), 2);
    mgr.shutdown();
}

/// Fault test 3: with the server stopped, a checkout fails within
/// pool_timeout and names the real cause; once it is back the same manager works.
#[test]
fn a_stopped_server_fails_fast_with_the_cause_and_recovers() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let mgr = pg.manager(
        &unique("faults_stop"),
        RetryPolicy::new(1, Duration::ZERO, Duration::ZERO),
        Duration::from_millis(1500),
    );
    assert_eq!(mgr.query_scalar::<i64>("SELECT 1", params![]).unwrap(), 1);
    pg.pg_ctl(&["stop", "-m", "fast"]);
    // the idle pooled connection was closed by the shutdown: using it fails
    // with a connection-class error, which discards it (and its peers)
    let first = mgr.query_scalar::<i64>("SELECT 1", params![]);
    // now a checkout needs a new connection, which the stopped server refuses
    let start = Instant::now();
    let r = mgr.get();
    let waited = start.elapsed();
    pg.pg_ctl(&["start"]);
    let first = first.expect_err("the server was stopped");
    assert_eq!(first.code(), ErrorCode::ConnectFailed, "{first}");
    let e = r.expect_err("a checkout succeeded against a stopped server");
    assert!(
        waited < Duration::from_millis(1500 * 12 / 10),
        "waited {waited:?}"
    );
    assert_eq!(e.code(), ErrorCode::ConnectFailed, "{e}");
    assert!(
        e.to_string().to_lowercase().contains("connection refused"),
        "{e}"
    );
    // the same manager recovers by itself once the server is back
    assert_recovers(&mgr);
    mgr.shutdown();
}

/// Fault test 1: `pg_ctl restart -m fast` while 8 threads insert with retry
/// on. No operation fails for the caller, and every acknowledged insert is in
/// the table afterwards. A COMMIT cut by the restart is reported as
/// CommitUnknown; the writer then checks and re-inserts if needed, as a
/// caller of dbmux is expected to.
#[test]
fn a_restart_under_load_loses_no_acknowledged_insert() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let table = unique("faults_restart");
    let mgr = pg.manager(
        &unique("faults_load"),
        RetryPolicy::new(30, Duration::from_millis(50), Duration::from_millis(500)),
        Duration::from_secs(10),
    );
    mgr.execute_batch(&format!(
        "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id BIGINT PRIMARY KEY)"
    ))
    .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let unknown = Arc::new(Mutex::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let writers: Vec<_> = (0..8i64)
        .map(|t| {
            let (mgr, acked, unknown, failures, table) = (
                mgr.clone(),
                acked.clone(),
                unknown.clone(),
                failures.clone(),
                table.clone(),
            );
            thread::spawn(move || {
                for n in 0..150i64 {
                    if Instant::now() > deadline {
                        break;
                    }
                    let id = t * 1_000_000 + n;
                    let insert = format!("INSERT INTO {table} VALUES (?)");
                    let mut r = mgr.transaction_with_retry(|tx| tx.execute(&insert, params![id]));
                    if let Err(e) = &r {
                        if e.code() == ErrorCode::CommitUnknown {
                            *unknown.lock().unwrap() += 1;
                            let check = format!("SELECT count(*) FROM {table} WHERE id = ?");
                            r = match mgr.with_retry(|c| c.query_scalar::<i64>(&check, params![id]))
                            {
                                Ok(1) => Ok(1),
                                Ok(_) => mgr
                                    .transaction_with_retry(|tx| tx.execute(&insert, params![id])),
                                Err(e) => Err(e),
                            };
                        }
                    }
                    match r {
                        Ok(_) => acked.lock().unwrap().push(id),
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                    thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    pg.pg_ctl(&["restart", "-m", "fast"]);
    for w in writers {
        w.join().unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} operations failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let acked = acked.lock().unwrap().clone();
    assert_eq!(acked.len(), 8 * 150);
    let in_table: i64 = mgr
        .query_scalar(&format!("SELECT count(*) FROM {table}"), params![])
        .unwrap();
    assert_eq!(
        in_table,
        acked.len() as i64,
        "every acknowledged insert is there, and nothing else"
    );
    let d = mgr.debug_info();
    // the restart happened under the writers: sessions died and connects
    // were refused while the server was down
    assert!(
        d.pool_invalidated >= 1 && d.connection_failures >= 1,
        "the restart was seen: {d:?}"
    );
    eprintln!(
        "restart: {} retries, {} commits with unknown outcome",
        d.retries,
        unknown.lock().unwrap()
    );
    mgr.execute_batch(&format!("DROP TABLE {table}")).unwrap();
    mgr.shutdown();
}

/// Fault test 8: with a URL carrying a unique password, trigger the error
/// paths (wrong password, refused port, bad TLS root, certificate mismatch,
/// a bad certificate file, SQL errors, timeouts) and capture every log line,
/// error message, Debug output and JSON: the password appears zero times.
#[test]
fn a_unique_password_never_appears_on_any_error_path() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    common::logs::capture();
    let secret = format!("Uniq-{}-Pw", std::process::id());
    let port = std::env::var("DBMUX_TEST_PG_PORT").unwrap();
    let certs = std::env::var("DBMUX_TEST_PG_CERTS").unwrap();
    let mut seen = String::new();
    let urls = [
        format!("postgresql://dbmux:{secret}@127.0.0.1:{port}/dbmux_test"), // wrong password
        format!("postgresql://dbmux:{secret}@127.0.0.1:1/dbmux_test"),      // refused
        format!("postgresql://dbmux:{secret}@127.0.0.1:{port}/dbmux_test?sslmode=verify-full&sslrootcert={certs}/wrong-ca.crt"),
        format!("postgresql://dbmux:{secret}@127.0.0.1:{port}/dbmux_test?sslmode=verify-full&sslrootcert={certs}/ca.crt"),
        format!("postgresql://dbmux:{secret}@127.0.0.1:{port}/dbmux_test?sslmode=require&sslrootcert=/no/such/ca.pem"),
        format!("host=127.0.0.1 port={port} dbname=dbmux_test user=dbmux password='{secret}' sslmode=verify-ca"),
        format!("postgresql://dbmux:{secret}@127.0.0.1:{port}/dbmux_test?bogus=1"),
    ];
    for url in &urls {
        let cfg = Config::builder()
            .url(url.clone())
            .pool_timeout(Duration::from_millis(700))
            .echo(true)
            .build();
        seen += &format!("{cfg:?}\n");
        let Ok(cfg) = cfg else { continue };
        seen += &format!("{cfg} {}\n", cfg.redacted_url());
        match Manager::new(cfg) {
            Ok(m) => {
                seen += &format!("{m:?}\n");
                match m.get() {
                    Ok(mut c) => {
                        let e = c.execute("SELEC 1", params![]).unwrap_err();
                        seen += &format!("{e} {e:?}\n");
                    }
                    Err(e) => seen += &format!("{e} {e:?} {:?}\n", std::error::Error::source(&e)),
                }
                seen += &m.check_health().to_json();
                seen += &m.debug_info().to_json();
                m.shutdown();
            }
            Err(e) => seen += &format!("{e} {e:?}\n"),
        }
    }
    // a working manager with the real password, and SQL-level errors
    let good = pg.manager(
        "faults_secret",
        RetryPolicy::default(),
        Duration::from_secs(5),
    );
    let e = good.execute("SELECT 1/0", params![]).unwrap_err();
    seen += &format!("{e} {e:?}\n");
    good.shutdown();
    seen += &common::logs::lines().join("\n");
    assert!(
        seen.contains("***"),
        "the redaction marker is expected somewhere"
    );
    assert!(
        seen.contains("password authentication failed"),
        "the wrong password was tried"
    );
    assert_eq!(
        seen.matches(&secret).count(),
        0,
        "the password leaked:\n{seen}"
    );
}

/// Sends SIGSTOP to a server process and SIGCONT when dropped, so that a
/// failing assertion never leaves the test server frozen.
struct Frozen(u32);

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {sig} {pid} failed");
}

impl Frozen {
    fn stop(pid: u32) -> Frozen {
        signal(pid, "-STOP");
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal(self.0, "-CONT");
    }
}

/// Fault test 4a: the backend serving a query is frozen (SIGSTOP), so it
/// cannot run its own statement_timeout. The caller gets StatementTimeout
/// after DB_QUERY_TIMEOUT instead of hanging; the connection is discarded;
/// the rest of the pool keeps working meanwhile and after SIGCONT.
#[test]
fn a_frozen_backend_times_out_on_the_client_and_is_discarded() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let query_timeout = Duration::from_secs(1);
    let mgr = Manager::new(
        Config::builder()
            .url(format!("{}?sslmode=require", pg.url))
            .pool_size(2)
            .max_overflow(0)
            .query_timeout(Some(query_timeout))
            .connect_timeout(Duration::from_secs(5))
            .pool_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut conn = mgr.get().unwrap();
    let pid: i64 = conn
        .query_scalar("SELECT pg_backend_pid()", params![])
        .unwrap();
    let before = mgr.debug_info().pool_invalidated;
    // a query that takes 300 ms; its backend is frozen 100 ms in
    let worker = thread::spawn(move || {
        let start = Instant::now();
        let r = conn.query_scalar::<i64>("SELECT 7 FROM pg_sleep(0.3)", params![]);
        (r, start.elapsed(), conn)
    });
    thread::sleep(Duration::from_millis(100));
    let frozen = Frozen::stop(pid as u32);
    let (r, waited, conn) = worker.join().unwrap();
    let e = r.expect_err("a frozen backend answered");
    eprintln!("frozen backend: {e}");
    assert_eq!(e.code(), ErrorCode::StatementTimeout, "{e}");
    assert!(e.to_string().contains("DB_QUERY_TIMEOUT"), "{e}");
    assert!(
        waited >= query_timeout && waited < query_timeout + Duration::from_millis(1500),
        "waited {waited:?}"
    );
    // the connection is not reused: a second call fails at once
    let mut conn = conn;
    let start = Instant::now();
    let again = conn.query_scalar::<i64>("SELECT 1", params![]);
    assert!(again.is_err() && start.elapsed() < Duration::from_millis(200));
    drop(conn);
    let d = mgr.debug_info();
    assert_eq!(d.pool_invalidated, before + 1, "{d:?}");
    // while the backend is still frozen, the pool serves from a new one
    let other: i64 = mgr
        .query_scalar("SELECT pg_backend_pid()", params![])
        .unwrap();
    assert_ne!(other, pid);
    drop(frozen);
    for i in 0..10i64 {
        assert_eq!(
            mgr.query_scalar::<i64>("SELECT ?::int8 * 2", params![i])
                .unwrap(),
            i * 2
        );
    }
    mgr.shutdown();
}

/// Fault test 4b: the postmaster is frozen during a connect. TCP still
/// connects (the kernel completes the handshake), but the TLS negotiation
/// and startup never get an answer; the connect timeout covers them, so the
/// checkout fails within pool_timeout naming the timeout, and the same
/// manager connects once the postmaster runs again.
#[test]
fn a_frozen_postmaster_fails_the_connect_within_the_limit_and_recovers() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(pg) = server() else { return };
    let pid_file = std::fs::read_to_string(format!("{}/postmaster.pid", pg.data)).unwrap();
    let postmaster: u32 = pid_file.lines().next().unwrap().trim().parse().unwrap();
    let pool_timeout = Duration::from_secs(3);
    let mgr = Manager::new(
        Config::builder()
            .url(format!("{}?sslmode=require", pg.url))
            .pool_size(2)
            .max_overflow(0)
            .connect_timeout(Duration::from_millis(800))
            .pool_timeout(pool_timeout)
            .build()
            .unwrap(),
    )
    .unwrap();
    let frozen = Frozen::stop(postmaster);
    let start = Instant::now();
    let r = mgr.get();
    let waited = start.elapsed();
    drop(frozen);
    let e = r.expect_err("a checkout succeeded against a frozen postmaster");
    eprintln!("frozen postmaster: {e}");
    assert!(
        waited < pool_timeout + Duration::from_millis(1500),
        "waited {waited:?}"
    );
    assert_eq!(e.code(), ErrorCode::ConnectFailed, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("timed out after 800ms") && text.contains("TLS and authentication"),
        "{text}"
    );
    assert_recovers(&mgr);
    let d = mgr.debug_info();
    assert!(d.connection_failures >= 1, "{d:?}");
    assert!(
        d.last_connection_error
            .as_deref()
            .is_some_and(|m| m.contains("timed out")),
        "{d:?}"
    );
    mgr.shutdown();
}
