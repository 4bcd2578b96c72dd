//! dbmux against plain r2d2_sqlite / rusqlite, measured in the same run.
//!
//! `cargo bench --bench pool` prints, for each comparison, the median of
//! each side and the median of the per-round ratios (rounds alternate A and
//! B, and alternate which goes first, so drift of a noisy machine hits both
//! sides alike):
//!
//! 1. checkout + return through `Manager::get` vs a plain r2d2_sqlite pool
//!    (target: ratio <= 1.10, no more than 10 % slower);
//! 2. `SELECT ?` through a dbmux connection vs a raw rusqlite cached
//!    statement on one connection (target: ratio <= 1.10);
//! 3. 4 writer threads running read-then-write transactions with dbmux's
//!    defaults vs plain r2d2_sqlite defaults: commits/s and failures
//!    (target: >= 20x the commits/s, 0 failures);
//! 4. the readiness check a checkout runs on an idle PostgreSQL socket (one
//!    non-blocking peek), on a loopback TCP connection (target: < 1 µs);
//! 5. fairness: 32 threads on a pool of 4, each checking out, running a
//!    short query, holding the connection 1 ms (a server round trip) and
//!    returning, for 30 s; dbmux and r2d2_sqlite side by side: the spread of
//!    the per-thread counts (target: within ±10 % of the mean) and the
//!    p99.9 wait over the mean hold time (target: <= 8x);
//! 6. what the metrics' histograms cost: checkout + return and `SELECT ?`
//!    with them (the default) vs with `DB_METRICS_HISTOGRAMS=false`, the
//!    counters and gauges being there in both (target: ratio <= 1.05).
//!
//! `DBMUX_BENCH_QUICK=1` shortens every phase (for a smoke run);
//! `DBMUX_BENCH_FAIR_SECS` sets the length of each side of the fairness run;
//! `DBMUX_BENCH_ONLY=1,2,6` runs only those of sections 1, 2 and 6.

mod common;
use common::verdict;

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use dbmux::{params, Manager};
use r2d2_sqlite::SqliteConnectionManager;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn quick() -> bool {
    std::env::var("DBMUX_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// ns per call of `f`, over `iters` calls.
fn time<F: FnMut(u64)>(iters: u64, f: &mut F) -> f64 {
    let s = Instant::now();
    for i in 0..iters {
        f(i);
    }
    s.elapsed().as_nanos() as f64 / iters as f64
}

/// Runs `a` and `b` alternately for `rounds` rounds of `iters` iterations;
/// returns (median ns/op of a, median ns/op of b, median ratio a/b).
fn compare(
    rounds: usize,
    iters: u64,
    mut a: impl FnMut(u64),
    mut b: impl FnMut(u64),
) -> (f64, f64, f64) {
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    // warm-up
    for i in 0..iters / 10 {
        a(i);
        b(i);
    }
    for round in 0..rounds {
        // alternate which side goes first, so neither always runs on a warmer cache
        let (na, nb) = if round % 2 == 0 {
            let na = time(iters, &mut a);
            (na, time(iters, &mut b))
        } else {
            let nb = time(iters, &mut b);
            (time(iters, &mut a), nb)
        };
        ta.push(na);
        tb.push(nb);
        ratios.push(na / nb);
    }
    (median(&mut ta), median(&mut tb), median(&mut ratios))
}

fn checkout_bench(dir: &Path, rounds: usize, iters: u64) {
    let mgr = Manager::from_url(&format!("sqlite:///{}/checkout.db", dir.display())).unwrap();
    let plain =
        r2d2::Pool::new(SqliteConnectionManager::file(dir.join("checkout_plain.db"))).unwrap();
    drop(mgr.get().unwrap());
    let (a, b, r) = compare(
        rounds,
        iters,
        |_| drop(black_box(mgr.get().unwrap())),
        |_| drop(black_box(plain.get().unwrap())),
    );
    println!(
        "1. checkout+return        dbmux {a:>8.0} ns/op   r2d2_sqlite {b:>8.0} ns/op   ratio {r:.2}x  (target <= 1.10x: {})",
        verdict(r <= 1.10)
    );
    mgr.shutdown();
}

fn select_bench(dir: &Path, rounds: usize, iters: u64) {
    let mgr = Manager::from_url(&format!("sqlite:///{}/select.db", dir.display())).unwrap();
    let mut conn = mgr.get().unwrap();
    let raw = rusqlite::Connection::open(dir.join("select_raw.db")).unwrap();
    let (a, b, r) = compare(
        rounds,
        iters,
        |i| {
            let v: i64 = conn.query_scalar("SELECT ?", params![i as i64]).unwrap();
            black_box(v);
        },
        |i| {
            let mut stmt = raw.prepare_cached("SELECT ?").unwrap();
            let v: i64 = stmt.query_row([i as i64], |r| r.get(0)).unwrap();
            black_box(v);
        },
    );
    println!(
        "2. SELECT ? on one conn   dbmux {a:>8.0} ns/op   rusqlite    {b:>8.0} ns/op   ratio {r:.2}x  (target <= 1.10x: {})",
        verdict(r <= 1.10)
    );
    drop(conn);
    mgr.shutdown();
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS acct (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL);
                      INSERT OR IGNORE INTO acct VALUES (1, 0);
                      CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);";

/// Runs `work` on 4 threads for `dur`; returns (commits, failures).
fn run_writers(dur: Duration, work: impl Fn() -> bool + Send + Sync + 'static) -> (u64, u64) {
    let work = Arc::new(work);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (work, stop, commits, failures) = (
                work.clone(),
                stop.clone(),
                commits.clone(),
                failures.clone(),
            );
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if work() {
                        commits.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    thread::sleep(dur);
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().unwrap();
    }
    (
        commits.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    )
}

fn writers_bench(dir: &Path, rounds: usize, dur: Duration) {
    let mgr = Manager::from_url(&format!("sqlite:///{}/writers.db", dir.display())).unwrap();
    mgr.execute_batch(SCHEMA).unwrap();
    let plain =
        r2d2::Pool::new(SqliteConnectionManager::file(dir.join("writers_plain.db"))).unwrap();
    plain.get().unwrap().execute_batch(SCHEMA).unwrap();

    let (mut rate_a, mut rate_b, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut fail_a, mut fail_b) = (0, 0);
    for _ in 0..rounds {
        let m = mgr.clone();
        let (ca, fa) = run_writers(dur, move || {
            m.transaction(|tx| {
                let bal: i64 =
                    tx.query_scalar("SELECT balance FROM acct WHERE id = 1", params![])?;
                tx.execute("UPDATE acct SET balance = ? WHERE id = 1", params![bal + 1])?;
                tx.execute("INSERT INTO ledger (amount) VALUES (?)", params![1])?;
                Ok::<_, dbmux::Error>(())
            })
            .is_ok()
        });
        let p = plain.clone();
        let (cb, fb) = run_writers(dur, move || {
            let Ok(mut c) = p.get() else { return false };
            let r = (|| -> rusqlite::Result<()> {
                let tx = c.transaction()?;
                let bal: i64 =
                    tx.query_row("SELECT balance FROM acct WHERE id = 1", [], |r| r.get(0))?;
                tx.execute("UPDATE acct SET balance = ? WHERE id = 1", [bal + 1])?;
                tx.execute("INSERT INTO ledger (amount) VALUES (?)", [1])?;
                tx.commit()
            })();
            r.is_ok()
        });
        let (ra, rb) = (ca as f64 / dur.as_secs_f64(), cb as f64 / dur.as_secs_f64());
        rate_a.push(ra);
        rate_b.push(rb);
        ratios.push(ra / rb.max(1e-9));
        fail_a += fa;
        fail_b += fb;
    }
    // the dbmux side must also be exact: every commit counted once
    let bal: i64 = mgr
        .query_scalar("SELECT balance FROM acct", params![])
        .unwrap();
    let rows: i64 = mgr
        .query_scalar("SELECT count(*) FROM ledger", params![])
        .unwrap();
    assert_eq!(bal, rows, "lost update on the dbmux side");
    let (a, b, r) = (
        median(&mut rate_a),
        median(&mut rate_b),
        median(&mut ratios),
    );
    println!(
        "3. 4 writers, read-then-write tx   dbmux {a:>8.0} commits/s, {fail_a} failures   r2d2_sqlite defaults {b:>8.0} commits/s, {fail_b} failures   ratio {r:.1}x  (target >= 20x and 0 failures: {})",
        verdict(r >= 20.0 && fail_a == 0)
    );
    mgr.shutdown();
}

#[cfg(all(unix, feature = "postgres"))]
fn readiness_bench(rounds: usize, iters: u64) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _server = listener.accept().unwrap();
    client.set_nonblocking(true).unwrap();
    let fd = std::os::fd::AsFd::as_fd(&client)
        .try_clone_to_owned()
        .unwrap();
    let mut per_round = Vec::new();
    for _ in 0..rounds {
        per_round.push(time(iters, &mut |_| {
            assert!(black_box(dbmux::bench_hooks::socket_is_quiet(&fd)));
        }));
    }
    let ns = median(&mut per_round);
    println!(
        "4. readiness check (peek) {ns:>8.0} ns/op on an idle loopback TCP socket  (target < 1000 ns: {})",
        verdict(ns < 1000.0)
    );
}

/// Per-thread counts and waits of 32 threads on a pool of 4 for `dur`.
fn fairness_run(
    dur: Duration,
    get: impl Fn() -> Box<dyn FnOnce()> + Send + Sync + 'static,
) -> (Vec<u64>, Vec<Duration>, Duration) {
    let get = Arc::new(get);
    let start = Arc::new(std::sync::Barrier::new(32));
    let workers: Vec<_> = (0..32)
        .map(|_| {
            let (get, start) = (get.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let end = Instant::now() + dur;
                let (mut n, mut waits, mut held) = (0u64, Vec::new(), Duration::ZERO);
                while Instant::now() < end {
                    let t0 = Instant::now();
                    let release = get();
                    let t1 = Instant::now();
                    thread::sleep(Duration::from_millis(1));
                    release();
                    waits.push(t1 - t0);
                    held += t1.elapsed();
                    n += 1;
                }
                (n, waits, held)
            })
        })
        .collect();
    let (mut counts, mut waits, mut held) = (Vec::new(), Vec::new(), Duration::ZERO);
    for w in workers {
        let (n, ws, h) = w.join().unwrap();
        counts.push(n);
        waits.extend(ws);
        held += h;
    }
    let mean_hold = held / counts.iter().sum::<u64>().max(1) as u32;
    (counts, waits, mean_hold)
}

fn fairness_report(
    name: &str,
    (counts, mut waits, hold): (Vec<u64>, Vec<Duration>, Duration),
) -> (f64, f64) {
    let mean = counts.iter().sum::<u64>() as f64 / counts.len() as f64;
    let spread = counts
        .iter()
        .map(|&c| (c as f64 / mean - 1.0).abs())
        .fold(0.0, f64::max);
    waits.sort();
    let p999 = waits[(waits.len() * 999 / 1000).min(waits.len() - 1)];
    let ratio = p999.as_secs_f64() / hold.as_secs_f64();
    let mean_wait = waits.iter().sum::<Duration>().as_secs_f64() / waits.len() as f64;
    println!(
        "   {name:<12} {mean:>7.0} checkouts/thread (min {}, max {}, spread ±{:.1} %), p99.9 wait {:.2} ms, mean hold {:.3} ms, p99.9/hold {ratio:.1}x (mean wait/hold {:.1}x; 7x is the floor: 28 others ahead, 4 at a time)",
        counts.iter().min().unwrap(),
        counts.iter().max().unwrap(),
        spread * 100.0,
        p999.as_secs_f64() * 1000.0,
        hold.as_secs_f64() * 1000.0,
        mean_wait / hold.as_secs_f64()
    );
    (spread, ratio)
}

fn fairness_bench(dir: &Path, dur: Duration) {
    println!("5. fairness: 32 threads, pool of 4, short query + 1 ms hold, {dur:?} each");
    let url = format!("sqlite:///{}/fair.db", dir.display());
    let mgr = Manager::new(
        dbmux::Config::builder()
            .url(&url)
            .pool_size(4)
            .max_overflow(0)
            .build()
            .unwrap(),
    )
    .unwrap();
    let m = mgr.clone();
    let (spread, ratio) = fairness_report(
        "dbmux",
        fairness_run(dur, move || {
            let mut c = m.get().unwrap();
            c.query_scalar::<i64>("SELECT 1", params![]).unwrap();
            Box::new(move || drop(c))
        }),
    );
    // the yardstick: a bare FIFO ticket semaphore of 4 slots (no connections,
    // no checks), what any first-come-first-served pool could at best do here
    let fifo = Arc::new((
        std::sync::Mutex::new((0u64, 4u64)),
        std::sync::Condvar::new(),
    ));
    let db = rusqlite::Connection::open(dir.join("fair_fifo.db")).unwrap();
    let db = Arc::new(std::sync::Mutex::new(db));
    let (_, ideal) = fairness_report(
        "bare FIFO",
        fairness_run(dur, move || {
            let (lock, cv) = &*fifo;
            let mut g = lock.lock().unwrap();
            let me = g.0;
            g.0 += 1;
            while me >= g.1 {
                g = cv.wait(g).unwrap();
            }
            drop(g);
            db.lock()
                .unwrap()
                .query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .unwrap();
            let fifo = fifo.clone();
            Box::new(move || {
                fifo.0.lock().unwrap().1 += 1;
                fifo.1.notify_all();
            })
        }),
    );
    let plain = r2d2::Pool::builder()
        .max_size(4)
        .build(SqliteConnectionManager::file(dir.join("fair_plain.db")))
        .unwrap();
    fairness_report(
        "r2d2_sqlite",
        fairness_run(dur, move || {
            let c = plain.get().unwrap();
            c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).unwrap();
            Box::new(move || drop(c))
        }),
    );
    println!(
        "   dbmux: spread ±{:.1} % (target <= 10 %: {}), p99.9 wait {ratio:.1}x the mean hold (target <= 8x: {}; the bare FIFO yardstick: {ideal:.1}x)",
        spread * 100.0,
        verdict(spread <= 0.10),
        verdict(ratio <= 8.0)
    );
    mgr.shutdown();
}

/// A manager on `name` in `dir`, recording histograms or not.
fn with_histograms(dir: &Path, name: &str, on: bool) -> Manager {
    let config = dbmux::Config::builder()
        .url(format!("sqlite:///{}/{name}", dir.display()))
        .metrics_histograms(on)
        .build()
        .unwrap();
    Manager::new(config).unwrap()
}

fn histograms_bench(dir: &Path, rounds: usize, iters: u64) {
    let on = with_histograms(dir, "hist_on.db", true);
    let off = with_histograms(dir, "hist_off.db", false);
    drop(on.get().unwrap());
    drop(off.get().unwrap());
    let (a, b, r) = compare(
        rounds,
        iters,
        |_| drop(black_box(on.get().unwrap())),
        |_| drop(black_box(off.get().unwrap())),
    );
    println!(
        "6. histograms: checkout+return  on {a:>8.0} ns/op   off {b:>8.0} ns/op   ratio {r:.3}x  (target <= 1.05x: {})",
        verdict(r <= 1.05)
    );
    let (mut con, mut coff) = (on.get().unwrap(), off.get().unwrap());
    let (a, b, r) = compare(
        rounds,
        iters,
        |i| {
            let v: i64 = con.query_scalar("SELECT ?", params![i as i64]).unwrap();
            black_box(v);
        },
        |i| {
            let v: i64 = coff.query_scalar("SELECT ?", params![i as i64]).unwrap();
            black_box(v);
        },
    );
    println!(
        "   histograms: SELECT ?         on {a:>8.0} ns/op   off {b:>8.0} ns/op   ratio {r:.3}x  (target <= 1.05x: {})",
        verdict(r <= 1.05)
    );
    drop((con, coff));
    let m = on.metrics_text();
    assert!(
        m.contains("dbmux_statement_seconds_count{"),
        "the histograms recorded"
    );
    on.shutdown();
    off.shutdown();
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing else we need.
    let dir = tempfile::tempdir().unwrap();
    let q = quick();
    let (rounds, iters) = if q { (3, 2_000) } else { (31, 50_000) };
    let wdur = if q {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(2)
    };
    println!(
        "dbmux {} vs plain r2d2_sqlite/rusqlite (SQLite {}), medians of {rounds} alternating rounds",
        dbmux::VERSION,
        rusqlite::version()
    );
    // DBMUX_BENCH_ONLY=6 (a comma list) runs only those sections
    let only = std::env::var("DBMUX_BENCH_ONLY").ok();
    let run = |n: &str| match only.as_deref() {
        Some(o) => o.split(',').any(|x| x == n),
        None => true,
    };
    if run("1") {
        checkout_bench(dir.path(), rounds, iters);
    }
    if run("2") {
        select_bench(dir.path(), rounds, iters);
    }
    if run("6") {
        histograms_bench(dir.path(), rounds, iters);
    }
    if only.is_some() {
        return;
    }
    writers_bench(dir.path(), if q { 1 } else { 3 }, wdur);
    #[cfg(all(unix, feature = "postgres"))]
    readiness_bench(rounds, iters * 4);
    #[cfg(not(all(unix, feature = "postgres")))]
    println!("4. readiness check: skipped (a PostgreSQL socket's; run with --features postgres)");
    fairness_bench(
        dir.path(),
        match std::env::var("DBMUX_BENCH_FAIR_SECS") {
            Ok(v) => Duration::from_secs_f64(v.parse().expect("DBMUX_BENCH_FAIR_SECS: seconds")),
            Err(_) if q => Duration::from_millis(500),
            Err(_) => Duration::from_secs(30),
        },
    );
}
