//! The pool's queue without a server: first come first served, the counters
//! of the line, permanent SQLite errors told at once, and the rate limit of
//! connect-error warnings (against a TCP port nobody listens on).
#![cfg(feature = "sqlite")]

mod common;

use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager};

/// The tests of this file run one at a time: the fairness test measures
/// waits of a few milliseconds, which the other tests' threads (on a
/// 2-core machine) would stretch.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn file_url(dir: &tempfile::TempDir, name: &str) -> String {
    format!("sqlite:///{}", dir.path().join(name).display())
}

/// 32 threads on a pool of 4 for 3 s: each checks out, runs a short query
/// (and holds the connection 0.5 ms, as a round trip to a server would) and
/// returns. Served in order, no thread starves: every count is within ±30 %
/// of the mean, and hardly any checkout is overtaken — served after one that
/// asked more than 2 ms later. Under 1 % of checkouts are on a quiet machine
/// and on one with both cores busy (0.04-0.6 %); r2d2 lets newcomers barge
/// and shows 33-42 % on the same measure. The bound is 5 %.
///
/// Order rather than the tail of the wait: a stall of the machine (another
/// VM's burst) stretches every wait at once and pushed the p99.9 over any
/// bound close to the FIFO's 7-8 x the hold, failing CI three times, but a
/// stall does not reorder the line. The benchmark measures the tail.
#[test]
fn waiters_are_served_first_come_first_served() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(file_url(&dir, "fair.db"))
            .pool_size(4)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    let overtaken = fairness_run(&mgr);
    assert!(
        overtaken <= 0.05,
        "{:.1} % of checkouts were served after one that asked 2 ms later",
        overtaken * 100.0
    );
    let d = mgr.debug_info();
    assert!(d.wait_p99_ms > 0.0 && d.hold_p50_ms > 0.0, "{d:?}");
    assert!(
        d.wait_p50_ms <= d.wait_p99_ms && d.wait_p99_ms <= d.max_wait_ms,
        "{d:?}"
    );
    assert_eq!(d.threads_waiting, 0);
    assert_eq!(d.connections_opened, 4, "{d:?}");
    mgr.shutdown();
}

/// One 3 s run of [`waiters_are_served_first_come_first_served`]: asserts
/// the counts are fair and returns the share of checkouts overtaken.
fn fairness_run(mgr: &Manager) -> f64 {
    let threads = 32;
    let start = Arc::new(Barrier::new(threads));
    let stop_at = Instant::now() + Duration::from_secs(3);
    // (asked, served) of every checkout
    let checkouts = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (mgr, start, checkouts) = (mgr.clone(), start.clone(), checkouts.clone());
            thread::spawn(move || {
                start.wait();
                let mut mine = Vec::new();
                while Instant::now() < stop_at {
                    let asked = Instant::now();
                    let mut c = mgr.get().unwrap();
                    let served = Instant::now();
                    c.query_scalar::<i64>("SELECT count(*) FROM t", params![])
                        .unwrap();
                    thread::sleep(Duration::from_micros(500));
                    drop(c);
                    mine.push((asked, served));
                }
                let n = mine.len() as u64;
                checkouts.lock().unwrap().extend(mine);
                n
            })
        })
        .collect();
    let counts: Vec<u64> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let mean = counts.iter().sum::<u64>() as f64 / threads as f64;
    let (lo, hi) = (
        *counts.iter().min().unwrap() as f64,
        *counts.iter().max().unwrap() as f64,
    );
    let mut checkouts = checkouts.lock().unwrap().clone();
    // in the order served: overtaken if one served earlier asked 2 ms later
    checkouts.sort_by_key(|&(_, served)| served);
    let slack = Duration::from_millis(2);
    let mut latest_asked = checkouts[0].0;
    let mut overtaken = 0usize;
    for &(asked, _) in &checkouts {
        if latest_asked > asked + slack {
            overtaken += 1;
        }
        latest_asked = latest_asked.max(asked);
    }
    let share = overtaken as f64 / checkouts.len() as f64;
    let mut waits: Vec<Duration> = checkouts.iter().map(|&(a, s)| s - a).collect();
    waits.sort();
    eprintln!(
        "fairness: {threads} threads, mean {mean:.0} checkouts, min {lo}, max {hi} \
         ({:+.1} %..{:+.1} %), overtaken {:.2} %, p99.9 wait {:?}",
        (lo / mean - 1.0) * 100.0,
        (hi / mean - 1.0) * 100.0,
        share * 100.0,
        waits[waits.len() * 999 / 1000],
    );
    assert!(lo >= mean * 0.7 && hi <= mean * 1.3, "{counts:?}");
    share
}

/// The line's counters move while threads wait, in the JSON too.
#[test]
fn waiting_threads_are_counted() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(file_url(&dir, "count.db"))
            .pool_size(1)
            .max_overflow(0)
            .pool_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    let held = mgr.get().unwrap();
    let waiters = common::spawn_checkouts(&mgr, 3);
    let t = Instant::now();
    while mgr.debug_info().threads_waiting < 3 {
        assert!(t.elapsed() < Duration::from_secs(5));
        thread::sleep(Duration::from_millis(2));
    }
    let json: serde_json::Value = serde_json::from_str(&mgr.debug_info().to_json()).unwrap();
    assert_eq!(json["threads_waiting"], 3);
    assert_eq!(json["connects_in_flight"], 0);
    assert!(json["connect_last_ms"].as_f64().unwrap() > 0.0, "{json}");
    drop(held);
    for w in waiters {
        w.join().unwrap().unwrap();
    }
    assert_eq!(mgr.debug_info().threads_waiting, 0);
    mgr.shutdown();
}

/// A checkout waiting in line fails with ManagerClosed when the manager shuts
/// down, at once.
#[test]
fn shutdown_ends_the_wait() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(file_url(&dir, "close.db"))
            .pool_size(1)
            .max_overflow(0)
            .pool_timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
    )
    .unwrap();
    let held = mgr.get().unwrap();
    let waiter = {
        let mgr = mgr.clone();
        thread::spawn(move || {
            let t = Instant::now();
            (mgr.get().map(drop), t.elapsed())
        })
    };
    while mgr.debug_info().threads_waiting < 1 {
        thread::sleep(Duration::from_millis(2));
    }
    mgr.shutdown();
    let (r, waited) = waiter.join().unwrap();
    assert_eq!(r.unwrap_err().code(), ErrorCode::ManagerClosed);
    assert!(waited < Duration::from_secs(2), "{waited:?}");
    drop(held);
}

/// SQLite's permanent causes, with pool_timeout 30 s: told within 2 s to
/// every waiting checkout, with their codes.
#[test]
fn permanent_sqlite_errors_are_told_at_once() {
    let _serial = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("garbage.db"),
        vec![b'x'; 8192], // not a database
    )
    .unwrap();
    let cases = [
        (
            "a file that is not a database",
            file_url(&dir, "garbage.db"),
            ErrorCode::Io,
            "not a database",
        ),
        (
            "a missing file with mode=rw",
            format!("{}?mode=rw", file_url(&dir, "missing.db")),
            ErrorCode::DatabaseNotFound,
            "does not exist",
        ),
        (
            "a directory where the file cannot be created",
            format!("sqlite:///{}/no/such/dir/x.db", dir.path().display()),
            ErrorCode::ConnectFailed,
            "unable to open database file",
        ),
    ];
    for (what, url, code, cause) in cases {
        let mgr = Manager::new(
            Config::builder()
                .url(&url)
                .pool_timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        )
        .unwrap();
        let t = Instant::now();
        let waiters = common::spawn_checkouts(&mgr, 4);
        for w in waiters {
            let e = w.join().unwrap().expect_err(what);
            assert_eq!(e.code(), code, "{what}: {e}");
            assert!(e.to_string().contains(cause), "{what}: {e}");
            assert!(!e.is_transient(), "{what}");
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "{what}: {:?}",
            t.elapsed()
        );
        mgr.shutdown();
    }
    // nothing was created or changed
    assert!(!dir.path().join("missing.db").exists());
    assert_eq!(
        std::fs::read(dir.path().join("garbage.db")).unwrap().len(),
        8192
    );
}

/// A refused port: attempts repeat while the checkout waits, but the WARN
/// is logged once per distinct error per 10 s, then with the repeat count.
#[test]
#[cfg(feature = "postgres")]
fn connect_warnings_are_rate_limited() {
    let _serial = one_at_a_time();
    common::logs::capture();
    let port = common::closed_port(); // connects are refused
    let mgr = Manager::new(
        Config::builder()
            .url(format!(
                "postgresql://u:secret-pw-77@127.0.0.1:{port}/db?sslmode=disable"
            ))
            .pool_timeout(Duration::from_millis(10_600))
            .build()
            .unwrap(),
    )
    .unwrap();
    let t = Instant::now();
    let e = mgr.get().unwrap_err();
    assert!(t.elapsed() >= Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(e.code(), ErrorCode::ConnectFailed, "{e}");
    let d = mgr.debug_info();
    let warns: Vec<String> = common::logs::lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN dbmux::pool could not open a connection"))
        .filter(|l| l.contains(&port.to_string()))
        .collect();
    assert!(d.connection_failures >= 20, "{d:?}");
    assert_eq!(warns.len(), 2, "{warns:#?}");
    assert!(!warns[0].contains("more time"), "{}", warns[0]);
    assert!(
        warns[1].contains("more time(s) in the last 10 s"),
        "{}",
        warns[1]
    );
    assert!(warns.iter().all(|w| !w.contains("secret-pw-77")));
    mgr.shutdown();
}

/// No stampede: 16 checkouts waiting on a refused port share at most 2
/// connection attempts at a time, retried with backoff, not 16 each.
#[test]
#[cfg(feature = "postgres")]
fn waiters_share_at_most_two_connection_attempts() {
    let _serial = one_at_a_time();
    let port = common::closed_port(); // connects are refused
    let mgr = Manager::new(
        Config::builder()
            .url(format!(
                "postgresql://u@127.0.0.1:{port}/db?sslmode=disable"
            ))
            .pool_timeout(Duration::from_millis(1500))
            .build()
            .unwrap(),
    )
    .unwrap();
    let waiters = common::spawn_checkouts(&mgr, 16);
    let (mut most, mut waiting_seen) = (0, 0);
    let t = Instant::now();
    while t.elapsed() < Duration::from_millis(1300) {
        let d = mgr.debug_info();
        most = most.max(d.connects_in_flight);
        waiting_seen = waiting_seen.max(d.threads_waiting);
        thread::sleep(Duration::from_millis(1));
    }
    for w in waiters {
        let e = w.join().unwrap().unwrap_err();
        assert_eq!(e.code(), ErrorCode::ConnectFailed, "{e}");
        assert!(e.to_string().contains("Connection refused"), "{e}");
    }
    let d = mgr.debug_info();
    assert!((1..=2).contains(&most), "{most} attempts in flight at once");
    assert_eq!(waiting_seen, 16);
    // two retry loops over 1.5 s with backoff from 25 ms up to 400 ms
    assert!(
        (2..=30).contains(&d.connection_failures),
        "{} attempts",
        d.connection_failures
    );
    mgr.shutdown();
}
