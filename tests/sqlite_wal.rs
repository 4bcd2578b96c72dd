//! The WAL controller on real files: with readers whose read transactions
//! overlap, the WAL stays near its soft limit (it grows without bound when
//! the controller is off, measured in the same test); readers wait at the
//! gate only briefly; an idle WAL is truncated; `PRAGMA optimize` runs;
//! debug info counts it all.
#![cfg(feature = "sqlite")]

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dbmux::{params, Config, Manager};

fn manager(path: &Path, soft_limit: u64) -> Manager {
    Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}", path.display()))
            .sqlite_wal_soft_limit(soft_limit)
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

struct Run {
    wal_max: u64,
    gate_wait_max: Duration,
    longest_commit: Duration,
    commits: u64,
    reads: u64,
}

/// Two readers holding overlapping 200 ms read transactions, and a writer
/// adding 4 KiB rows at about 400 commits/s, for `secs`.
fn overlapping_readers(db: &Manager, path: &Path, secs: f64) -> Run {
    db.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
        .unwrap();
    let stop = AtomicBool::new(false);
    let (wal_max, reads) = (AtomicU64::new(0), AtomicU64::new(0));
    let gate_wait = Mutex::new(Duration::ZERO);
    let (longest, commits) = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Relaxed) {
                wal_max.fetch_max(wal_len(path), Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        for r in 0..2u64 {
            let (stop, gate_wait, reads) = (&stop, &gate_wait, &reads);
            s.spawn(move || {
                std::thread::sleep(Duration::from_millis(100 * r));
                while !stop.load(Relaxed) {
                    let mut c = db.get_read().unwrap();
                    let t = Instant::now();
                    c.execute_batch("BEGIN").unwrap();
                    c.query_scalar::<Option<i64>>("SELECT max(id) FROM t", params![])
                        .unwrap();
                    let waited = t.elapsed();
                    {
                        let mut g = gate_wait.lock().unwrap();
                        *g = (*g).max(waited);
                    }
                    std::thread::sleep(Duration::from_millis(200).saturating_sub(t.elapsed()));
                    c.execute_batch("COMMIT").unwrap();
                    reads.fetch_add(1, Relaxed);
                }
            });
        }
        let w = s.spawn(|| {
            let blob = vec![5u8; 4096];
            let start = Instant::now();
            let (mut n, mut longest) = (0u64, Duration::ZERO);
            while start.elapsed().as_secs_f64() < secs {
                let t = Instant::now();
                db.execute("INSERT INTO t (b) VALUES (?)", params![blob.clone()])
                    .unwrap();
                longest = longest.max(t.elapsed());
                n += 1;
                let next = start + Duration::from_secs_f64(n as f64 / 400.0);
                if let Some(d) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(d);
                }
            }
            (longest, n)
        });
        let r = w.join().unwrap();
        stop.store(true, Relaxed);
        r
    });
    let rows: i64 = db
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(rows as u64, commits, "every row written is there");
    let gate_wait_max = *gate_wait.lock().unwrap();
    Run {
        wal_max: wal_max.load(Relaxed),
        gate_wait_max,
        longest_commit: longest,
        commits,
        reads: reads.load(Relaxed),
    }
}

#[test]
fn the_wal_stays_near_its_soft_limit_while_read_transactions_overlap() {
    const LIMIT: u64 = 2 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (on_path, off_path) = (dir.path().join("on.db"), dir.path().join("off.db"));
    let on_db = manager(&on_path, LIMIT);
    let on = overlapping_readers(&on_db, &on_path, 4.0);
    let info = on_db.debug_info().sqlite.unwrap();
    on_db.shutdown();
    // the same load with SQLite's own checkpoints on commit
    let off_db = manager(&off_path, 0);
    let off = overlapping_readers(&off_db, &off_path, 4.0);
    let off_info = off_db.debug_info().sqlite.unwrap();
    off_db.shutdown();
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "controlled: WAL max {:.1} MiB, gate wait max {:?}, longest commit {:?}, {} commits, \
         {} reads; uncontrolled: WAL max {:.1} MiB, {} commits; {info:?}",
        mib(on.wal_max),
        on.gate_wait_max,
        on.longest_commit,
        on.commits,
        on.reads,
        mib(off.wal_max),
        off.commits
    );
    assert!(info.wal_controlled && !off_info.wal_controlled);
    assert!(info.gate_closures >= 1, "{info:?}");
    assert!(info.checkpoints >= 1, "{info:?}");
    assert!(
        on.wal_max <= 4 * LIMIT,
        "the WAL reached {:.1} MiB with a soft limit of {:.0} MiB",
        mib(on.wal_max),
        mib(LIMIT)
    );
    assert!(
        off.wal_max >= 2 * on.wal_max,
        "without the controller the WAL grows: {:.1} MiB against {:.1} MiB",
        mib(off.wal_max),
        mib(on.wal_max)
    );
    // honest slack for a loaded machine: the gate closes for at most 230 ms
    assert!(
        on.gate_wait_max <= Duration::from_millis(400),
        "{:?}",
        on.gate_wait_max
    );
    assert!(info.gate_wait_max_ms <= 260.0, "{info:?}");
    assert!(info.gate_waits >= 1, "{info:?}");
    assert!(
        on.longest_commit <= Duration::from_millis(250),
        "{:?}",
        on.longest_commit
    );
    // the writer kept its pace, and readers kept reading
    assert!(on.commits as f64 >= 0.9 * off.commits as f64);
    assert!(on.reads >= 20, "{} reads", on.reads);
}

#[test]
fn an_idle_wal_is_truncated_and_shutdown_leaves_no_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idle.db");
    let db = manager(&path, 16 << 20);
    db.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    for i in 0..200 {
        db.execute("INSERT INTO t VALUES (?)", params![i]).unwrap();
    }
    assert!(wal_len(&path) > 0);
    let start = Instant::now();
    while wal_len(&path) > 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = start.elapsed();
    assert_eq!(wal_len(&path), 0, "the idle WAL was not truncated");
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    assert_eq!(db.debug_info().sqlite.unwrap().wal_frames, 0);
    assert_eq!(
        db.query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        200
    );
    db.shutdown();
    for ext in ["-wal", "-shm"] {
        let mut f = path.as_os_str().to_owned();
        f.push(ext);
        assert!(!Path::new(&f).exists(), "{ext} left behind");
    }
}

#[test]
fn optimize_runs_when_the_file_is_first_used_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opt.db");
    let db = manager(&path, 16 << 20);
    db.execute_batch("CREATE TABLE t (x INTEGER, y TEXT); CREATE INDEX t_x ON t (x);")
        .unwrap();
    db.transaction(|tx| {
        for i in 0..2000 {
            tx.execute("INSERT INTO t VALUES (?, ?)", params![i % 50, "y"])?;
        }
        Ok::<_, dbmux::Error>(())
    })
    .unwrap();
    db.shutdown();
    let raw = dbmux::sqlite::rusqlite::Connection::open(&path).unwrap();
    let stats: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stats, 1, "PRAGMA optimize gathered no statistics");
    let t: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 't'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(t >= 1, "no statistics for t");
}

#[test]
fn optimize_runs_when_a_file_with_data_is_first_opened() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("first.db");
    {
        let raw = dbmux::sqlite::rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(
            "CREATE TABLE t (x INTEGER); CREATE INDEX t_x ON t (x);
             WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 1999)
             INSERT INTO t SELECT i % 50 FROM n;",
        )
        .unwrap();
    }
    let stat1 = |raw: &dbmux::sqlite::rusqlite::Connection| -> i64 {
        raw.query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_stat1'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    let raw = dbmux::sqlite::rusqlite::Connection::open(&path).unwrap();
    assert_eq!(stat1(&raw), 0);
    let db = manager(&path, 16 << 20);
    db.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
    // the controller's thread opens the file within a tick or two
    let start = Instant::now();
    while stat1(&raw) == 0 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        stat1(&raw),
        1,
        "no PRAGMA optimize while the manager is open"
    );
    db.shutdown();
}

#[test]
fn the_controller_is_off_with_a_zero_soft_limit_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let db = manager(&dir.path().join("off.db"), 0);
    db.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    assert!(!db.debug_info().sqlite.unwrap().wal_controlled);
    let mem = Manager::from_url("sqlite::memory:").unwrap();
    mem.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
    assert!(!mem.debug_info().sqlite.unwrap().wal_controlled);
    let on = manager(&dir.path().join("on.db"), 1 << 20);
    assert!(on.debug_info().sqlite.unwrap().wal_controlled);
}
