//! The SQLite writer lane on real files: writers of one process take turns
//! in order instead of meeting SQLite's busy handler, so even a 1 ms
//! `busy_timeout` gives no BUSY; a writer that waits past pool_timeout is
//! told who holds the lane; a panic inside a transaction releases it; the
//! lane is per file and shared by the managers of a process.
#![cfg(feature = "sqlite")]

mod common;

use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dbmux::{params, Config, ErrorCode, Manager};

fn manager(url: &str, pool_timeout: Duration) -> Manager {
    Manager::new(
        Config::builder()
            .url(url)
            .pool_size(8)
            .pool_timeout(pool_timeout)
            .build()
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn writers_take_turns_without_busy_even_with_a_1_ms_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/lane.db?busy_timeout=1", dir.path().display());
    // two managers on the same file: one lane
    let (a, b) = (
        manager(&url, Duration::from_secs(10)),
        manager(&url, Duration::from_secs(10)),
    );
    a.execute("CREATE TABLE t (th INTEGER, i INTEGER)", params![])
        .unwrap();
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|th| {
            let mgr = if th % 2 == 0 { a.clone() } else { b.clone() };
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                for i in 0..50 {
                    if i % 2 == 0 {
                        // a transaction holding the lock for a millisecond
                        mgr.transaction(|tx| -> dbmux::Result<()> {
                            tx.execute("INSERT INTO t VALUES (?, ?)", params![th, i])?;
                            std::thread::sleep(Duration::from_millis(1));
                            Ok(())
                        })?;
                    } else {
                        // an autocommit write: SQLite reports it as writing
                        mgr.execute("INSERT INTO t VALUES (?, ?)", params![th, i])?;
                    }
                }
                Ok::<(), dbmux::Error>(())
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap().expect("no BUSY behind the lane");
    }
    let n: i64 = a.query_scalar("SELECT count(*) FROM t", params![]).unwrap();
    assert_eq!(n, 400);
    a.shutdown();
    b.shutdown();
}

#[test]
fn a_writer_that_waits_past_pool_timeout_is_told_who_holds_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/held.db", dir.path().display());
    let mgr = manager(&url, Duration::from_millis(300));
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    let holder = std::thread::Builder::new()
        .name("long-writer".into())
        .spawn({
            let mgr = mgr.clone();
            move || {
                let mut c = mgr.get().unwrap();
                c.begin().unwrap();
                c.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
                std::thread::sleep(Duration::from_millis(800));
                c.commit().unwrap();
            }
        })
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    let e = mgr
        .execute("INSERT INTO t VALUES (2)", params![])
        .unwrap_err();
    let waited = start.elapsed();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    assert!(e.is_transient());
    let m = e.to_string();
    assert!(m.contains("writer lane") && m.contains("held for"), "{m}");
    assert!(m.contains("long-writer"), "{m}");
    assert!(m.contains("DB_LEAK_DETECTION_THRESHOLD_MS"), "{m}");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // reads do not wait for the lane
    let n: i64 = mgr
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(n, 0);
    holder.join().unwrap();
    // with leak detection on, the message shows where the holder began
    let traced = Manager::new(
        Config::builder()
            .url(&url)
            .pool_timeout(Duration::from_millis(200))
            .leak_detection_threshold(Some(Duration::from_secs(60)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let mut c = traced.get().unwrap();
    c.begin().unwrap();
    let e = traced
        .execute("INSERT INTO t VALUES (3)", params![])
        .unwrap_err();
    assert!(e.to_string().contains("whose transaction began at"), "{e}");
    drop(c);
    mgr.shutdown();
    traced.shutdown();
}

#[test]
fn a_panic_inside_a_transaction_releases_the_lane() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/panic.db", dir.path().display());
    let mgr = manager(&url, Duration::from_secs(2));
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    let m = mgr.clone();
    let r = std::thread::spawn(move || {
        m.transaction(|tx| -> dbmux::Result<()> {
            tx.execute("INSERT INTO t VALUES (1)", params![])?;
            panic!("boom inside a transaction");
        })
    })
    .join();
    assert!(r.is_err(), "the panic propagates");
    let start = Instant::now();
    mgr.execute("INSERT INTO t VALUES (2)", params![]).unwrap();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "the lane was free"
    );
    let n: i64 = mgr
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(n, 1, "the panicking transaction was rolled back");
    // and a connection returned with an open transaction releases it too
    let mut c = mgr.get().unwrap();
    c.begin().unwrap();
    c.execute("INSERT INTO t VALUES (3)", params![]).unwrap();
    drop(c);
    mgr.execute("INSERT INTO t VALUES (4)", params![]).unwrap();
    let info = mgr.debug_info();
    let lane = info.sqlite.expect("a sqlite section");
    assert_eq!(lane.lane_waiting, 0);
    assert!(lane.lane_waits >= 4, "{lane:?}");
    mgr.shutdown();
}

/// A reader's read transaction open longer than DB_SQLITE_MAX_READ_TX is
/// logged once, with where its connection was checked out, and debug info
/// shows the oldest one's age until it ends.
#[test]
fn a_long_read_transaction_is_logged_once_with_where_it_was_checked_out() {
    common::logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}/rtx.db", dir.path().display()))
            .sqlite_max_read_tx(Some(Duration::from_millis(100)))
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    let line = line!() + 1;
    let mut r = mgr.get_read().unwrap();
    r.begin().unwrap();
    let _: i64 = r.query_scalar("SELECT count(*) FROM t", params![]).unwrap();
    std::thread::sleep(Duration::from_millis(150));
    let s = mgr.debug_info().sqlite.unwrap();
    assert!(s.oldest_read_tx_ms.unwrap() >= 150.0, "{s:?}");
    assert_eq!(s.long_read_tx_warnings, 1);
    assert_eq!(
        mgr.debug_info().sqlite.unwrap().long_read_tx_warnings,
        1,
        "once"
    );
    let warned: Vec<String> = common::logs::lines()
        .into_iter()
        .filter(|l| l.contains("DB_SQLITE_MAX_READ_TX"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains(&format!("tests/sqlite_lane.rs:{line}")),
        "{warned:?}"
    );
    r.commit().unwrap();
    assert_eq!(mgr.debug_info().sqlite.unwrap().oldest_read_tx_ms, None);
    // a short one is not reported
    let mut r = mgr.get_read().unwrap();
    r.begin().unwrap();
    r.rollback().unwrap();
    drop(r);
    assert_eq!(mgr.debug_info().sqlite.unwrap().long_read_tx_warnings, 1);
    mgr.shutdown();
}

/// The writers of one process for `secs`: 4 threads, each transaction
/// inserting a row and holding the lock 0.5 ms. Returns (commits, BUSY
/// errors, p99 wait in µs, max wait in µs).
fn write_for(path: &str, secs: f64, tag: i64) -> (u64, u64, u64, u64) {
    let mgr = manager(&format!("sqlite:///{path}"), Duration::from_secs(30));
    mgr.execute(
        "CREATE TABLE IF NOT EXISTS w (tag INTEGER, th INTEGER, i INTEGER)",
        params![],
    )
    .unwrap();
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..4)
        .map(|th| {
            let mgr = mgr.clone();
            std::thread::spawn(move || {
                let (mut n, mut busy, mut waits) = (0u64, 0u64, Vec::new());
                while Instant::now() < until {
                    let t = Instant::now();
                    let r = mgr.transaction(|tx| -> dbmux::Result<()> {
                        tx.execute("INSERT INTO w VALUES (?, ?, ?)", params![tag, th, n as i64])?;
                        std::thread::sleep(Duration::from_micros(500));
                        Ok(())
                    });
                    // the wait: the whole transaction less its hold
                    waits.push(t.elapsed().saturating_sub(Duration::from_micros(500)));
                    match r {
                        Ok(()) => n += 1,
                        Err(e) if e.code() == ErrorCode::Busy => busy += 1,
                        Err(e) => panic!("{e}"),
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                (n, busy, waits)
            })
        })
        .collect();
    let (mut n, mut busy, mut waits) = (0, 0, Vec::new());
    for h in handles {
        let (a, b, w) = h.join().unwrap();
        n += a;
        busy += b;
        waits.extend(w);
    }
    waits.sort();
    let p99 = waits[(waits.len() * 99 / 100).min(waits.len() - 1)];
    let max = *waits.last().unwrap();
    mgr.shutdown();
    (n, busy, p99.as_micros() as u64, max.as_micros() as u64)
}

/// The second process of `two_processes_write_one_file` (run by it).
#[test]
#[ignore = "run by two_processes_write_one_file as a second process"]
fn second_process_writer() {
    let Ok(path) = std::env::var("DBMUX_TEST_SECOND_PROCESS_DB") else {
        return;
    };
    let (n, busy, p99, max) = write_for(&path, 3.0, 2);
    println!("second-process: {n} {busy} {p99} {max}");
}

/// Two processes, each with 4 writers on one file: each process's lane
/// leaves SQLite's lock free between turns, and the other's busy handler
/// looks for it every 200 µs, so both write, and neither waits long (before
/// the turns, one process starved: p99 wait 1 ms in one, 1.8 s in the other).
#[test]
fn two_processes_write_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db").display().to_string();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process_writer",
            "--ignored",
            "--nocapture",
        ])
        .env("DBMUX_TEST_SECOND_PROCESS_DB", &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (n, busy, p99, max) = write_for(&path, 3.0, 1);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("second-process: "))
        .unwrap_or_else(|| panic!("the second process printed no figures:\n{text}"));
    let f: Vec<u64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
    let (n2, busy2, p99_2, max2) = (f[0], f[1], f[2], f[3]);
    println!(
        "this process: {n} commits, {busy} BUSY, wait p99 {p99} µs, max {max} µs; the other: \
         {n2} commits, {busy2} BUSY, wait p99 {p99_2} µs, max {max2} µs"
    );
    assert_eq!((busy, busy2), (0, 0), "no BUSY surfaced in either process");
    assert!(n > 100 && n2 > 100, "both processes wrote: {n} and {n2}");
    // close to equal shares (each offered the same load)
    assert!(
        n.min(n2) * 2 >= n.max(n2),
        "one process wrote {n}, the other {n2}"
    );
    let db = manager(&format!("sqlite:///{path}"), Duration::from_secs(5));
    let rows: i64 = db
        .query_scalar("SELECT count(*) FROM w", params![])
        .unwrap();
    assert_eq!(rows as u64, n + n2, "every commit is there");
    assert!(
        p99 <= 50_000 && p99_2 <= 50_000,
        "p99 write wait {p99} µs and {p99_2} µs (target <= 50 ms)"
    );
}

#[test]
fn a_writer_waits_busy_timeout_for_another_connections_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    let mgr = manager(
        &format!("sqlite:///{}?busy_timeout=300", path.display()),
        Duration::from_secs(10),
    );
    mgr.execute("CREATE TABLE t (x INTEGER)", params![])
        .unwrap();
    // a connection outside dbmux (as another process would) holds the lock
    let other = dbmux::sqlite::rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let t = Instant::now();
    let e = mgr
        .execute("INSERT INTO t VALUES (1)", params![])
        .unwrap_err();
    let waited = t.elapsed();
    assert_eq!(e.code(), ErrorCode::Busy, "{e}");
    assert!(
        waited >= Duration::from_millis(280) && waited < Duration::from_secs(2),
        "waited {waited:?} for a busy_timeout of 300 ms"
    );
    // once it is released, the write goes through at once
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        other.execute_batch("COMMIT").unwrap();
    });
    let t = Instant::now();
    mgr.execute("INSERT INTO t VALUES (2)", params![]).unwrap();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    releaser.join().unwrap();
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        1
    );
}
