//! SQLite under contention on one WAL file: dbmux's writer lane against
//! SQLite's own busy handler (rusqlite connections with the same
//! `busy_timeout`, `BEGIN IMMEDIATE`), measured in the same run, in
//! alternating rounds.
//!
//! 1. 16 threads x (BEGIN IMMEDIATE; INSERT; 1 ms hold; COMMIT): BUSY
//!    errors (target 0), each thread's commits against the mean (target
//!    within +-5 %), wait for the write lock p99.9 (target <= 32 ms) and max
//!    (target <= 50 ms).
//! 2. The same with 4 ms of work between transactions: commits per second,
//!    dbmux against the busy handler (target >= 1.2x).
//!
//! `DBMUX_BENCH_LANE_SECS` sets the length of a round (default 30 s for 1,
//! 10 s for 2); `DBMUX_BENCH_QUICK=1` makes both 2 s (a smoke run).

mod common;
use common::{ms, verdict};

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use dbmux::{params, Config, Manager};

const THREADS: usize = 16;
const HOLD: Duration = Duration::from_millis(1);

/// What one round measured.
struct Round {
    commits: Vec<u64>,
    busy: u64,
    waits: Vec<Duration>,
    secs: f64,
}

impl Round {
    fn total(&self) -> u64 {
        self.commits.iter().sum()
    }

    fn spread(&self) -> f64 {
        let mean = self.total() as f64 / self.commits.len() as f64;
        self.commits
            .iter()
            .map(|&c| (c as f64 - mean).abs() / mean)
            .fold(0.0, f64::max)
    }

    fn quantile(&mut self, q: f64) -> Duration {
        self.waits.sort();
        let i = ((self.waits.len() as f64 * q) as usize).min(self.waits.len() - 1);
        self.waits[i]
    }

    fn max(&self) -> Duration {
        self.waits.iter().copied().max().unwrap_or_default()
    }
}

fn file(dir: &tempfile::TempDir, name: &str) -> String {
    let p = dir.path().join(name);
    let _ = std::fs::remove_file(&p);
    let _ = std::fs::remove_file(p.with_extension("db-wal"));
    p.display().to_string()
}

/// Runs `body(thread) -> (commits, busy, waits)` on THREADS threads for `secs`.
fn run<F>(secs: f64, body: F) -> Round
where
    F: Fn(usize, &AtomicBool) -> (u64, u64, Vec<Duration>) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let stop = Arc::new(AtomicBool::new(false));
    let start = Arc::new(Barrier::new(THREADS + 1));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (body, stop, start) = (body.clone(), stop.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                body(t, &stop)
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Relaxed);
    let mut round = Round {
        commits: Vec::new(),
        busy: 0,
        waits: Vec::new(),
        secs: 0.0,
    };
    for h in handles {
        let (c, b, w) = h.join().unwrap();
        round.commits.push(c);
        round.busy += b;
        round.waits.extend(w);
    }
    round.secs = began.elapsed().as_secs_f64();
    round
}

/// dbmux: one manager, a connection per thread, `transaction`-style calls.
fn lane_round(path: &str, secs: f64, pause: Duration) -> Round {
    let mgr = Manager::new(
        Config::builder()
            .url(format!("sqlite:///{path}"))
            .pool_size(THREADS as u32)
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute_batch("CREATE TABLE IF NOT EXISTS t (th INTEGER, pad TEXT)")
        .unwrap();
    let m = mgr.clone();
    let round = run(secs, move |th, stop| {
        let mut conn = m.get().unwrap();
        let (mut commits, mut busy, mut waits) = (0, 0, Vec::new());
        while !stop.load(Relaxed) {
            let t0 = Instant::now();
            if let Err(e) = conn.begin() {
                assert_eq!(e.code(), dbmux::ErrorCode::Busy, "{e}");
                busy += 1;
                continue;
            }
            waits.push(t0.elapsed());
            conn.execute("INSERT INTO t VALUES (?, 'x')", params![th as i64])
                .unwrap();
            std::thread::sleep(HOLD);
            match conn.commit() {
                Ok(()) => commits += 1,
                Err(_) => busy += 1,
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        (commits, busy, waits)
    });
    mgr.shutdown();
    round
}

/// SQLite's busy handler: a rusqlite connection per thread, with dbmux's
/// pragmas (WAL, synchronous=NORMAL, busy_timeout=5000).
fn busy_handler_round(path: &str, secs: f64, pause: Duration) -> Round {
    let setup = rusqlite::Connection::open(path).unwrap();
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS t (th INTEGER, pad TEXT)",
        )
        .unwrap();
    drop(setup);
    let path = path.to_string();
    run(secs, move |th, stop| {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_secs(5)).unwrap();
        conn.execute_batch("PRAGMA synchronous=NORMAL").unwrap();
        let (mut commits, mut busy, mut waits) = (0, 0, Vec::new());
        while !stop.load(Relaxed) {
            let t0 = Instant::now();
            if conn.execute_batch("BEGIN IMMEDIATE").is_err() {
                busy += 1;
                continue;
            }
            waits.push(t0.elapsed());
            conn.execute("INSERT INTO t VALUES (?, 'x')", [th as i64])
                .unwrap();
            std::thread::sleep(HOLD);
            match conn.execute_batch("COMMIT") {
                Ok(()) => commits += 1,
                Err(_) => {
                    busy += 1;
                    let _ = conn.execute_batch("ROLLBACK");
                }
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
        (commits, busy, waits)
    })
}

fn main() {
    let quick = std::env::var("DBMUX_BENCH_QUICK").is_ok_and(|v| v == "1");
    let secs = std::env::var("DBMUX_BENCH_LANE_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok());
    let (fair_secs, tput_secs) = match (quick, secs) {
        (true, _) => (2.0, 2.0),
        (false, Some(s)) => (s, s),
        (false, None) => (30.0, 10.0),
    };
    let dir = tempfile::tempdir().unwrap();
    println!(
        "SQLite {}, one WAL file, {THREADS} threads, each holding the write lock {} ms per \
         transaction",
        dbmux::sqlite_version(),
        ms(HOLD)
    );

    // 1. fairness and waits
    let mut lane = lane_round(&file(&dir, "lane.db"), fair_secs, Duration::ZERO);
    let mut plain = busy_handler_round(&file(&dir, "plain.db"), fair_secs, Duration::ZERO);
    for (name, r) in [("dbmux lane", &mut lane), ("busy handler", &mut plain)] {
        r.waits.sort();
        let r = &*r;
        let q = |q: f64| r.waits[((r.waits.len() as f64 * q) as usize).min(r.waits.len() - 1)];
        println!(
            "1. {name:<13} {:6.0} commits/s, BUSY {:5}, commits/thread min {} max {} (spread \
             ±{:.1} %), wait p50 {:.2} ms p99.9 {:.2} ms max {:.2} ms",
            r.total() as f64 / r.secs,
            r.busy,
            r.commits.iter().min().unwrap(),
            r.commits.iter().max().unwrap(),
            r.spread() * 100.0,
            ms(q(0.5)),
            ms(q(0.999)),
            ms(r.max())
        );
    }
    let (p999, max) = (lane.quantile(0.999), lane.max());
    println!(
        "   dbmux: BUSY {} (target 0: {}), spread ±{:.1} % (target <= 5 %: {}), p99.9 {:.2} ms \
         (target <= 32 ms: {}), max {:.2} ms (target <= 50 ms: {})",
        lane.busy,
        verdict(lane.busy == 0),
        lane.spread() * 100.0,
        verdict(lane.spread() <= 0.05),
        ms(p999),
        verdict(p999 <= Duration::from_millis(32)),
        ms(max),
        verdict(max <= Duration::from_millis(50))
    );

    // 2. throughput with 4 ms of work between transactions, alternating rounds
    let pause = Duration::from_millis(4);
    let rounds = if quick { 1 } else { 3 };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let l = lane_round(&file(&dir, &format!("lane{i}.db")), tput_secs, pause);
        a.push(l.total() as f64 / l.secs);
        let p = busy_handler_round(&file(&dir, &format!("plain{i}.db")), tput_secs, pause);
        b.push(p.total() as f64 / p.secs);
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "2. 4 ms of work between transactions: dbmux lane {ma:.0} commits/s, busy handler \
         {mb:.0} commits/s: {:.2}x (target >= 1.2x: {}; medians of {rounds} alternating \
         rounds of {tput_secs} s)",
        ma / mb,
        verdict(ma / mb >= 1.2)
    );
}
