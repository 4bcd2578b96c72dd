//! SQLite's WAL under overlapping readers, and online backups under a
//! writer, with dbmux's WAL controller against the uncontrolled WAL
//! (`DB_SQLITE_WAL_SOFT_LIMIT=0`: SQLite checkpoints on commit), measured
//! in the same run.
//!
//! 1. Two readers holding overlapping 200 ms read transactions, one writer
//!    replacing 4 KiB rows, paced at 1,300 commits/s and then at full speed:
//!    the largest `-wal` file (target <= 32 MiB), the writer's longest
//!    commit (target <= 50 ms), the longest wait of a reader at the gate
//!    (target <= 250 ms), the writer's rate (paced: target 1,300/s).
//! 2. A 40 MiB database, a writer at 500 commits/s, 20 backups one after
//!    the other: each passes `integrity_check` and holds every row committed
//!    before it started (target 20 of 20), takes <= 1.5x the idle backup's
//!    median, and the writer's longest commit during them <= 20 ms.
//!
//! `DBMUX_BENCH_WAL_SECS` sets the length of a round of 1 (default 60 s);
//! `DBMUX_BENCH_QUICK=1` makes it 3 s and runs 3 backups (a smoke run).

mod common;
use common::{ms, verdict};

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dbmux::sqlite::BackupOptions;
use dbmux::{params, Config, Manager};

const ROW: usize = 4096;
/// Rows the writer cycles through (the table stays about 40 MiB).
const ROWS: i64 = 10_000;
const SOFT_LIMIT: u64 = 16 << 20;

fn manager(path: &Path, controlled: bool) -> Manager {
    Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}", path.display()))
            .sqlite_wal_soft_limit(if controlled { SOFT_LIMIT } else { 0 })
            .build()
            .unwrap(),
    )
    .unwrap()
}

fn wal_len(path: &Path) -> u64 {
    let mut w = path.as_os_str().to_owned();
    w.push("-wal");
    std::fs::metadata(w).map_or(0, |m| m.len())
}

/// The writer: replaces a 4 KiB row per commit (at `rate` per second, or
/// as fast as it can), until `stop`; returns the longest commit and the
/// commits per second.
fn writer(
    db: &Manager,
    rate: Option<f64>,
    stop: &AtomicBool,
    committed: &AtomicU64,
) -> (Duration, f64) {
    let blob = vec![7u8; ROW];
    let start = Instant::now();
    let mut longest = Duration::ZERO;
    let mut n: i64 = 0;
    while !stop.load(Relaxed) {
        let t = Instant::now();
        db.transaction(|tx| {
            tx.execute(
                "REPLACE INTO t (id, b) VALUES (?, ?)",
                params![n % ROWS, blob.clone()],
            )?;
            tx.execute("INSERT INTO seq (n) VALUES (?)", params![n])
        })
        .unwrap();
        longest = longest.max(t.elapsed());
        n += 1;
        committed.store(n as u64, Relaxed);
        if let Some(r) = rate {
            let next = start + Duration::from_secs_f64(n as f64 / r);
            if let Some(d) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(d);
            }
        }
    }
    (longest, n as f64 / start.elapsed().as_secs_f64())
}

fn schema(db: &Manager) {
    db.execute_batch(
        "CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, b BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS seq (n INTEGER PRIMARY KEY);",
    )
    .unwrap();
}

struct WalRound {
    wal_max: u64,
    longest_commit: Duration,
    gate_wait_max: Duration,
    rate: f64,
    gate_closures: u64,
    checkpoints: u64,
    blocked: u64,
}

/// 1: two readers with overlapping 200 ms read transactions and a writer.
fn wal_round(path: &Path, controlled: bool, rate: Option<f64>, secs: f64) -> WalRound {
    let db = manager(path, controlled);
    schema(&db);
    let stop = AtomicBool::new(false);
    let committed = AtomicU64::new(0);
    let wal_max = AtomicU64::new(0);
    let gate_wait = Mutex::new(Duration::ZERO);
    let (longest, rate) = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Relaxed) {
                wal_max.fetch_max(wal_len(path), Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        for r in 0..2u64 {
            let (db, stop, gate_wait) = (&db, &stop, &gate_wait);
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100 * r));
                while !stop.load(Relaxed) {
                    let mut c = db.get_read().unwrap();
                    let t = Instant::now();
                    c.execute_batch("BEGIN").unwrap();
                    c.query_scalar::<Option<i64>>("SELECT max(n) FROM seq", params![])
                        .unwrap();
                    let waited = t.elapsed();
                    let mut g = gate_wait.lock().unwrap();
                    *g = (*g).max(waited);
                    drop(g);
                    std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
                    c.execute_batch("COMMIT").unwrap();
                }
            });
        }
        let w = s.spawn(|| writer(&db, rate, &stop, &committed));
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Relaxed);
        w.join().unwrap()
    });
    let info = db.debug_info().sqlite.unwrap();
    db.shutdown();
    let gate_wait_max = *gate_wait.lock().unwrap();
    WalRound {
        wal_max: wal_max.load(Relaxed),
        longest_commit: longest,
        gate_wait_max,
        rate,
        gate_closures: info.gate_closures,
        checkpoints: info.checkpoints,
        blocked: info.checkpoints_blocked,
    }
}

fn fresh(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    for ext in ["", "-wal", "-shm"] {
        let mut f = p.as_os_str().to_owned();
        f.push(ext);
        let _ = std::fs::remove_file(f);
    }
    p
}

fn wal_bench(dir: &Path, secs: f64) {
    println!(
        "1. WAL: 2 readers with overlapping 200 ms read transactions, a writer replacing 4 KiB \
         rows, {secs} s each (full speed: at most 10 s)"
    );
    for (label, rate) in [("1,300 commits/s", Some(1300.0)), ("full speed", None)] {
        // at full speed the uncontrolled WAL grows by GBs a minute, and
        // freeing them loads the disk for the next run: at most 10 s
        let secs = if rate.is_some() { secs } else { secs.min(10.0) };
        let on = wal_round(&fresh(dir, "wal-on.db"), true, rate, secs);
        let off = wal_round(&fresh(dir, "wal-off.db"), false, rate, secs);
        for (name, r) in [("dbmux", &on), ("uncontrolled", &off)] {
            println!(
                "   {label:<16} {name:<13} WAL max {:7.1} MiB, longest commit {:6.1} ms, \
                 longest gate wait {:6.1} ms, {:6.0} commits/s, gate closures {} ({} could not \
                 reset the WAL), full checkpoints {}",
                r.wal_max as f64 / (1 << 20) as f64,
                ms(r.longest_commit),
                ms(r.gate_wait_max),
                r.rate,
                r.gate_closures,
                r.blocked,
                r.checkpoints
            );
        }
        let keeps_rate = on.rate >= 0.95 * off.rate;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        if rate.is_none() {
            // the targets are for the paced writer: at full speed a 200 ms
            // read transaction pins more WAL than the limit
            println!(
                "   {label} (reported): dbmux WAL max {:.1} MiB against {:.1} MiB uncontrolled \
                 ({:.2}x), longest commit {:.1} ms, gate wait {:.1} ms, rate {:.2}x the \
                 uncontrolled",
                mib(on.wal_max),
                mib(off.wal_max),
                on.wal_max as f64 / off.wal_max.max(1) as f64,
                ms(on.longest_commit),
                ms(on.gate_wait_max),
                on.rate / off.rate.max(1.0)
            );
            continue;
        }
        println!(
            "   {label}: dbmux WAL max {:.1} MiB (target <= 32 MiB: {}; uncontrolled: {:.1} MiB, \
             {:.2}x), longest commit {:.1} ms (target <= 50 ms: {}), gate wait {:.1} ms \
             (target <= 250 ms: {}), rate {:.0}/s, {:.2}x the uncontrolled ({})",
            mib(on.wal_max),
            verdict(on.wal_max <= 32 << 20),
            mib(off.wal_max),
            on.wal_max as f64 / off.wal_max.max(1) as f64,
            ms(on.longest_commit),
            verdict(on.longest_commit <= Duration::from_millis(50)),
            ms(on.gate_wait_max),
            verdict(on.gate_wait_max <= Duration::from_millis(250)),
            on.rate,
            on.rate / off.rate.max(1.0),
            if keeps_rate {
                "keeps its rate: meets target"
            } else {
                "MISSES target: the writer slowed"
            }
        );
    }
}

/// 2: backups of a 40 MiB database under a writer at 500 commits/s.
fn backup_bench(dir: &Path, backups: usize) {
    let path = fresh(dir, "backup-src.db");
    let db = manager(&path, true);
    schema(&db);
    let blob = vec![3u8; ROW];
    db.transaction(|tx| {
        for id in 0..ROWS {
            tx.execute(
                "INSERT INTO t (id, b) VALUES (?, ?)",
                params![id, blob.clone()],
            )?;
        }
        Ok::<_, dbmux::Error>(())
    })
    .unwrap();
    let size = std::fs::metadata(&path).unwrap().len() + wal_len(&path);
    let dest = dir.join("backup.db");
    let backup = || {
        let t = Instant::now();
        db.backup_to(&dest, BackupOptions::new().overwrite(true))
            .unwrap();
        t.elapsed()
    };
    let mut idle: Vec<Duration> = (0..3).map(|_| backup()).collect();
    idle.sort();
    let idle = idle[1];
    println!(
        "2. backups of a {:.0} MiB database: idle backup median {:.1} ms",
        size as f64 / (1 << 20) as f64,
        ms(idle)
    );
    let stop = AtomicBool::new(false);
    let committed = AtomicU64::new(0);
    let (times, good, longest) = std::thread::scope(|s| {
        let w = s.spawn(|| writer(&db, Some(500.0), &stop, &committed));
        std::thread::sleep(Duration::from_millis(200));
        let mut times = Vec::new();
        let mut good = 0;
        for _ in 0..backups {
            let before = committed.load(Relaxed) as i64;
            times.push(backup());
            let copy = dbmux::sqlite::rusqlite::Connection::open(&dest).unwrap();
            let ok: String = copy
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .unwrap();
            let last: i64 = copy
                .query_row("SELECT coalesce(max(n), -1) FROM seq", [], |r| r.get(0))
                .unwrap();
            if ok == "ok" && last + 1 >= before {
                good += 1;
            }
        }
        stop.store(true, Relaxed);
        (times, good, w.join().unwrap().0)
    });
    let slowest = times.iter().copied().max().unwrap();
    let mut sorted = times.clone();
    sorted.sort();
    println!(
        "   under a writer at 500 commits/s: {good} of {backups} backups sound and complete \
         (target all: {}), backup median {:.1} ms, slowest {:.1} ms = {:.2}x idle (target <= \
         1.5x: {}), writer's longest commit {:.1} ms (target <= 20 ms: {})",
        verdict(good == backups),
        ms(sorted[sorted.len() / 2]),
        ms(slowest),
        slowest.as_secs_f64() / idle.as_secs_f64(),
        verdict(slowest.as_secs_f64() <= 1.5 * idle.as_secs_f64()),
        ms(longest),
        verdict(longest <= Duration::from_millis(20))
    );
    db.shutdown();
}

fn main() {
    let quick = std::env::var("DBMUX_BENCH_QUICK").is_ok_and(|v| v == "1");
    let secs = match std::env::var("DBMUX_BENCH_WAL_SECS") {
        Ok(v) => v.parse().expect("DBMUX_BENCH_WAL_SECS: seconds"),
        Err(_) if quick => 3.0,
        Err(_) => 60.0,
    };
    let dir = tempfile::tempdir().unwrap();
    println!(
        "SQLite {}, WAL controller (soft limit {} MiB) against the uncontrolled WAL, same run",
        dbmux::sqlite_version(),
        SOFT_LIMIT >> 20
    );
    wal_bench(dir.path(), secs);
    backup_bench(dir.path(), if quick { 3 } else { 20 });
}
