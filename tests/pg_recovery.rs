//! Acquisition against the throwaway PostgreSQL servers: back within a
//! second of a restart under 8 and 32 threads, a permanent connect error
//! told at once to every waiter, transient ones waited out, and the first
//! query after a fast restart never failing. These tests restart the server,
//! so they run one at a time, in their own test binary.
#![cfg(feature = "postgres")]

mod common;

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A manager with dbmux's defaults (pool_size 5, max_overflow 10,
/// pool_timeout 30 s) except the URL.
fn defaults(url: &str) -> Manager {
    Manager::new(Config::builder().url(url).build().unwrap()).unwrap()
}

/// The moment the restarted server accepts a session again, as an
/// independent client (the sync `postgres` crate) sees it, polled every 5 ms.
fn wait_until_ready(url: &str) -> Instant {
    let plain = format!("{url}?sslmode=disable");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut c) = postgres::Client::connect(&plain, postgres::NoTls) {
            if c.simple_query("SELECT 1").is_ok() {
                return Instant::now();
            }
        }
        assert!(Instant::now() < deadline, "the server did not come back");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Restarts the server (`pg_ctl restart -m fast`) while `threads` threads
/// run `SELECT 1` through one manager with default settings; returns how
/// long after the server was ready again (a) a new checkout in this thread
/// and (b) the slowest worker thread were served.
fn restart_under(ctl: &common::Control, threads: usize) -> (Duration, Duration) {
    let mgr = defaults(&format!("{}?application_name=recovery_{threads}", ctl.url));
    let stop = Arc::new(AtomicBool::new(false));
    // the time of each worker's last success
    let served: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..threads).map(|_| Mutex::new(None)).collect());
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let (mgr, stop, served) = (mgr.clone(), stop.clone(), served.clone());
            thread::spawn(move || {
                while !stop.load(Relaxed) {
                    if let Ok(1) = mgr.query_scalar::<i64>("SELECT 1", params![]) {
                        *served[i].lock().unwrap() = Some(Instant::now());
                    }
                    thread::sleep(Duration::from_millis(1));
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(300));
    let probe = {
        let url = ctl.url.clone();
        thread::spawn(move || {
            // wait for the shutdown to begin, then for the server to be back
            thread::sleep(Duration::from_millis(50));
            wait_until_ready(&url)
        })
    };
    ctl.pg_ctl(&["restart", "-m", "fast"]);
    let ready = probe.join().unwrap();
    let main = {
        let start = Instant::now().max(ready);
        mgr.query_scalar::<i64>("SELECT 1", params![])
            .expect("a new checkout after the restart");
        Instant::now().duration_since(start) + start.duration_since(ready)
    };
    // every worker is served again after `ready`
    let limit = Instant::now() + Duration::from_secs(30);
    let slowest = loop {
        let after: Vec<Option<Instant>> = served
            .iter()
            .map(|s| s.lock().unwrap().filter(|t| *t > ready))
            .collect();
        if after.iter().all(Option::is_some) {
            break after
                .into_iter()
                .map(|t| t.unwrap().duration_since(ready))
                .max()
                .unwrap();
        }
        assert!(
            Instant::now() < limit,
            "some threads were never served again"
        );
        thread::sleep(Duration::from_millis(5));
    };
    stop.store(true, Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let d = mgr.debug_info();
    eprintln!(
        "{threads} threads: new checkout {:?}, slowest thread {:?} after ready; {} failed \
         connects, {} invalidated",
        main, slowest, d.connection_failures, d.pool_invalidated
    );
    mgr.shutdown();
    (main, slowest)
}

#[test]
fn a_restart_under_8_and_32_threads_is_served_again_within_2_s() {
    let _g = serial();
    let Some(ctl) = common::control() else { return };
    for threads in [8, 32] {
        let (main, slowest) = restart_under(&ctl, threads);
        assert!(
            main < Duration::from_secs(2),
            "{threads} threads: main {main:?}"
        );
        assert!(
            slowest < Duration::from_secs(2),
            "{threads} threads: slowest {slowest:?}"
        );
    }
}

#[test]
fn the_first_query_after_a_fast_restart_succeeds() {
    let _g = serial();
    let Some(ctl) = common::control() else { return };
    let mgr = defaults(&ctl.url);
    let mut errors = Vec::new();
    for round in 0..20 {
        // a connection used just now: inside the pre-ping bypass window
        assert_eq!(mgr.query_scalar::<i64>("SELECT 1", params![]).unwrap(), 1);
        ctl.pg_ctl(&["restart", "-m", "fast"]);
        if let Err(e) = mgr.query_scalar::<i64>("SELECT ?::int8", params![round]) {
            errors.push(format!("round {round}: {e}"));
        }
    }
    assert!(errors.is_empty(), "{errors:#?}");
    let d = mgr.debug_info();
    assert!(d.pool_invalidated >= 20, "{d:?}");
    mgr.shutdown();
}

/// Each permanent cause, with pool_timeout 30 s: 8 threads waiting at once
/// all get the error within 2 s, with its code and the cause told once.
#[test]
fn permanent_connect_errors_end_every_waiting_checkout_at_once() {
    let _g = serial();
    let Some(pg) = common::pg() else { return };
    let url = |user: &str, port: &str, db: &str, query: &str| {
        format!(
            "postgresql://{user}:{}@localhost:{port}/{db}?{query}",
            pg.password
        )
    };
    let cases = [
        (
            "a wrong password",
            url("dbmux", &pg.port, "dbmux_test", "").replace(&pg.password, "not-the-pw"),
            ErrorCode::AuthFailed,
            "password authentication failed",
        ),
        (
            // with password authentication the server does not say whether
            // the role exists (it answers as for a wrong password)
            "a role that does not exist",
            url("nosuchuser", &pg.port, "dbmux_test", ""),
            ErrorCode::AuthFailed,
            "authentication failed for user \"nosuchuser\"",
        ),
        (
            "no password where the server asks for one",
            format!("postgresql://nosuchuser@localhost:{}/dbmux_test", pg.port),
            ErrorCode::AuthFailed,
            "asks for a password, but none was given",
        ),
        (
            "a database that does not exist",
            url("dbmux", &pg.port, "nosuchdb", ""),
            ErrorCode::DatabaseNotFound,
            "database \"nosuchdb\" does not exist",
        ),
        (
            "a wrong sslrootcert",
            url(
                "dbmux",
                &pg.port,
                "dbmux_test",
                &format!("sslmode=verify-ca&sslrootcert={}", pg.cert("wrong-ca.crt")),
            ),
            ErrorCode::TlsFailed,
            "certificate verify failed",
        ),
        (
            "TLS refused where sslmode=require",
            url("dbmux", &pg.plain_port, "dbmux_test", "sslmode=require"),
            ErrorCode::TlsFailed,
            "does not accept TLS",
        ),
        (
            "a host name that does not resolve",
            format!(
                "postgresql://dbmux:{}@nosuchhost.invalid:{}/dbmux_test",
                pg.password, pg.port
            ),
            ErrorCode::ConnectFailed,
            "could not translate host name",
        ),
    ];
    for (what, url, code, cause) in cases {
        let mgr = defaults(&url);
        let start = Instant::now();
        let waiters = common::spawn_checkouts(&mgr, 8);
        for w in waiters {
            let e = w.join().unwrap().expect_err(what);
            assert_eq!(e.code(), code, "{what}: {e}");
            assert_eq!(e.to_string().matches(cause).count(), 1, "{what}: {e}");
            assert!(!e.to_string().contains(&pg.password), "{what}: {e}");
        }
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "{what}: {took:?}");
        assert!(!e_is_transient(&mgr), "{what}");
        eprintln!("{what}: all 8 checkouts failed in {took:?}");
        mgr.shutdown();
    }
}

fn e_is_transient(mgr: &Manager) -> bool {
    mgr.get().map(drop).unwrap_err().is_transient()
}

/// A stopped server refuses connections: a checkout waits (it is not told
/// at once), and succeeds when the server is back inside pool_timeout.
#[test]
fn a_refused_connection_is_retried_until_the_server_is_back() {
    let _g = serial();
    let Some(ctl) = common::control() else { return };
    let mgr = defaults(&ctl.url);
    ctl.pg_ctl(&["stop", "-m", "fast"]);
    let waiter = {
        let mgr = mgr.clone();
        thread::spawn(move || {
            let start = Instant::now();
            let r = mgr.query_scalar::<i64>("SELECT 7", params![]);
            (r, start.elapsed())
        })
    };
    thread::sleep(Duration::from_millis(1500));
    ctl.pg_ctl(&["start"]);
    let (r, waited) = waiter.join().unwrap();
    assert_eq!(r.unwrap(), 7);
    assert!(waited >= Duration::from_millis(1400), "{waited:?}");
    let d = mgr.debug_info();
    assert!(d.connection_failures >= 2, "{d:?}");
    assert!(
        d.last_connection_error
            .as_deref()
            .unwrap_or("")
            .contains("Connection refused"),
        "{d:?}"
    );
    mgr.shutdown();
}

/// Too many connections (53300, here a role's CONNECTION LIMIT) is
/// transient: the checkout waits, and is served once a session is freed.
#[test]
fn too_many_connections_is_waited_out() {
    let _g = serial();
    let Some(pg) = common::pg() else { return };
    let admin = defaults(&pg.main());
    admin
        .execute_batch(&format!(
            "DROP ROLE IF EXISTS limited; CREATE ROLE limited LOGIN PASSWORD '{}' \
             CONNECTION LIMIT 1",
            pg.password
        ))
        .unwrap();
    let url = pg.url("limited", "localhost", &pg.port, "");
    let first = defaults(&url);
    let held = first.get().unwrap();
    let second = defaults(&url);
    let waiter = {
        let second = second.clone();
        thread::spawn(move || {
            let start = Instant::now();
            (
                second.query_scalar::<i64>("SELECT 8", params![]),
                start.elapsed(),
            )
        })
    };
    thread::sleep(Duration::from_millis(1000));
    drop(held);
    first.shutdown(); // closes the one session the role may have
    let (r, waited) = waiter.join().unwrap();
    assert_eq!(r.unwrap(), 8);
    assert!(waited >= Duration::from_millis(900), "{waited:?}");
    let d = second.debug_info();
    assert!(
        d.last_connection_error
            .as_deref()
            .unwrap_or("")
            .contains("53300"),
        "{d:?}"
    );
    second.shutdown();
    admin.execute_batch("DROP ROLE limited").ok();
    admin.shutdown();
}

/// The measurement behind the 0.5 s promise: 20 restarts under 8 and under
/// 32 threads; prints p50 and max of the time from "the server is ready" to
/// "every thread and a new checkout are served". Run by
/// `scripts/measure-recovery.sh`, which fails when the max misses 0.5 s.
#[test]
#[ignore = "a measurement (40 restarts): scripts/measure-recovery.sh runs it"]
fn measure_recovery_over_20_restarts() {
    let _g = serial();
    let Some(ctl) = common::control() else { return };
    let rounds: usize = std::env::var("DBMUX_RECOVERY_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut worst = Duration::ZERO;
    for threads in [8, 32] {
        let mut all: Vec<Duration> = (0..rounds)
            .map(|_| {
                let (main, slowest) = restart_under(&ctl, threads);
                main.max(slowest)
            })
            .collect();
        all.sort();
        let (p50, max) = (all[all.len() / 2], *all.last().unwrap());
        worst = worst.max(max);
        println!(
            "recovery, {threads} threads, {rounds} restarts: p50 {:.1} ms, max {:.1} ms (target 500 ms: {})",
            p50.as_secs_f64() * 1000.0,
            max.as_secs_f64() * 1000.0,
            if max < Duration::from_millis(500) { "meets target" } else { "MISSES target" }
        );
    }
    assert!(
        worst < Duration::from_millis(500),
        "worst recovery {worst:?}"
    );
}
