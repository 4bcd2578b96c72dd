//! `dbmux copy` against pgloader, in the same run, with alternating rounds:
//! one SQLite file of 1,000,000 rows in 5 columns (integer, text, real, a
//! timestamp as text, a 16-byte blob) loaded into an empty copy of the
//! schema on the throwaway PostgreSQL server (the plain one, so that TLS
//! costs neither side anything), both timed as whole processes and checked
//! by counting the rows. Target: dbmux's rows per second ≥ 1.0x pgloader's.
//!
//! Then migrations: with 1,000 applied, `status` and `verify` (the CLI, as
//! a whole process, and `Manager::migration_status` alone) on SQLite and
//! PostgreSQL. Target: ≤ 100 ms.
//!
//! Needs the test servers and pgloader (`apt-get install pgloader`): run it
//! as `scripts/with-test-postgres.sh cargo bench --features cli --bench copy`.
//! `DBMUX_BENCH_COPY_ROWS` sets the row count; `DBMUX_BENCH_QUICK=1` makes
//! it a smoke run (50,000 rows, one round each, 200 migrations).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{ms, verdict};
use dbmux::migrate::Migrations;
use dbmux::{params, Manager};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/with-test-postgres.sh cargo bench --features cli --bench copy")
    })
}

/// Runs a command to completion; its wall time. Fails loudly.
fn timed(cmd: &mut Command) -> Duration {
    let start = Instant::now();
    let out = cmd.output().expect("the command starts");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    took
}

fn make_source(path: &Path, rows: i64) {
    let _ = std::fs::remove_file(path);
    let lite = Manager::from_url(&format!("sqlite:///{}", path.display())).unwrap();
    lite.execute_batch(
        "CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, \
         at TEXT, payload BLOB)",
    )
    .unwrap();
    lite.execute(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) \
         INSERT INTO events SELECT i, 'name-' || i || ' with some text', i * 0.25, \
         strftime('%Y-%m-%d %H:%M:%f', 1700000000 + i, 'unixepoch'), randomblob(16) FROM c",
        params![rows],
    )
    .unwrap();
    lite.shutdown();
}

const PG_EVENTS: &str = "CREATE TABLE events (id BIGINT PRIMARY KEY, name TEXT NOT NULL, \
                         score DOUBLE PRECISION, at TIMESTAMP, payload BYTEA)";

fn main() {
    let quick = std::env::var("DBMUX_BENCH_QUICK").is_ok_and(|v| v == "1");
    let rows: i64 = std::env::var("DBMUX_BENCH_COPY_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 50_000 } else { 1_000_000 });
    let rounds = if quick { 1 } else { 3 };
    let port = env("DBMUX_TEST_PG_PLAIN_PORT");
    let password = env("DBMUX_TEST_PG_PASSWORD");
    let pgloader = which("pgloader").unwrap_or_else(|| {
        panic!("pgloader is not installed (apt-get install -y pgloader; scripts/test.sh does)")
    });
    let url =
        |db: &str| format!("postgresql://dbmux:{password}@127.0.0.1:{port}/{db}?sslmode=disable");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-copy");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("events.db");
    let t = Instant::now();
    make_source(&src, rows);
    println!(
        "copy: {rows} rows x 5 columns in {} ({:.0} MiB), made in {:.1} s",
        src.display(),
        std::fs::metadata(&src).unwrap().len() as f64 / 1048576.0,
        t.elapsed().as_secs_f64()
    );
    let admin = Manager::from_url(&url("dbmux_test")).unwrap();
    for db in ["bench_pgloader", "bench_dbmux"] {
        admin_db(&url("dbmux_test"), db);
        let m = Manager::from_url(&url(db)).unwrap();
        m.execute(PG_EVENTS, params![]).unwrap();
        m.shutdown();
    }
    let load = dir.join("load.pgloader");
    std::fs::write(
        &load,
        format!(
            "LOAD DATABASE\n  FROM sqlite://{}\n  INTO {}\n  WITH data only, truncate, create no \
             tables, create no indexes, reset no sequences;\n",
            src.display(),
            url("bench_pgloader")
        ),
    )
    .unwrap();
    let count = |db: &str| -> i64 {
        let m = Manager::from_url(&url(db)).unwrap();
        let n = m
            .query_scalar("SELECT count(*) FROM events", params![])
            .unwrap();
        m.shutdown();
        n
    };
    let (mut theirs, mut ours) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        // alternate which goes first
        let mut runs: [(&str, &mut Vec<f64>); 2] =
            [("pgloader", &mut theirs), ("dbmux", &mut ours)];
        if round % 2 == 1 {
            runs.reverse();
        }
        for (who, out) in runs {
            let took = if who == "pgloader" {
                timed(Command::new(&pgloader).arg(&load))
            } else {
                timed(Command::new(env!("CARGO_BIN_EXE_dbmux")).args([
                    "copy",
                    "--from",
                    &format!("sqlite:///{}", src.display()),
                    "--to",
                    &url("bench_dbmux"),
                    "--truncate",
                ]))
            };
            let db = if who == "pgloader" {
                "bench_pgloader"
            } else {
                "bench_dbmux"
            };
            assert_eq!(count(db), rows, "{who} loaded every row");
            let rate = rows as f64 / took.as_secs_f64();
            println!(
                "copy: round {round} {who:<8} {:>8.0} ms  {rate:>9.0} rows/s",
                ms(took)
            );
            out.push(rate);
        }
    }
    let (t_med, o_med) = (median(&mut theirs), median(&mut ours));
    let ratio = o_med / t_med;
    println!(
        "copy: median rows/s over {rounds} round(s): dbmux {o_med:.0}, pgloader {t_med:.0}: \
         {ratio:.2}x (target >= 1.0x: {})",
        verdict(ratio >= 1.0)
    );
    for db in ["bench_pgloader", "bench_dbmux"] {
        admin
            .execute(&format!("DROP DATABASE IF EXISTS {db}"), params![])
            .unwrap();
    }
    admin.shutdown();

    // migrations: 1,000 applied, then status and verify
    let n = if quick { 200 } else { 1000 };
    let mdir = dir.join("migrations");
    let _ = std::fs::remove_dir_all(&mdir);
    std::fs::create_dir_all(&mdir).unwrap();
    for v in 1..=n {
        std::fs::write(
            mdir.join(format!("V{v:04}__step_{v}.sql")),
            format!("CREATE TABLE t{v} (id INTEGER PRIMARY KEY, note TEXT);\n"),
        )
        .unwrap();
    }
    let lite_db = dir.join("migrated.db");
    let _ = std::fs::remove_file(&lite_db);
    admin_db(&url("dbmux_test"), "bench_migrate");
    for target in [
        format!("sqlite:///{}", lite_db.display()),
        url("bench_migrate"),
    ] {
        let backend = target.split(':').next().unwrap_or("").to_string();
        let mgr = Manager::from_url(&target).unwrap();
        let t = Instant::now();
        let r = mgr.migrate(&Migrations::from_dir(&mdir).unwrap()).unwrap();
        assert_eq!(r.applied.len(), n);
        println!(
            "migrate: {backend}: {n} migrations applied in {:.0} ms",
            ms(t.elapsed())
        );
        let mut api = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let st = mgr
                .migration_status(&Migrations::from_dir(&mdir).unwrap())
                .unwrap();
            api.push(ms(t.elapsed()));
            assert!(st.is_current() && st.applied == n);
        }
        mgr.shutdown();
        let (mut status, mut verify) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            for (action, out) in [("status", &mut status), ("verify", &mut verify)] {
                out.push(ms(timed(
                    Command::new(env!("CARGO_BIN_EXE_dbmux"))
                        .args(["migrate", "--url", &target, "--dir"])
                        .arg(&mdir)
                        .arg(action),
                )));
            }
        }
        let (a, s, v) = (median(&mut api), median(&mut status), median(&mut verify));
        println!(
            "migrate: {backend}: {n} applied: migration_status {a:.1} ms; CLI status {s:.1} ms, \
             verify {v:.1} ms, whole process (target <= 100 ms: {})",
            verdict(s <= 100.0 && v <= 100.0)
        );
    }
    let admin = Manager::from_url(&url("dbmux_test")).unwrap();
    admin
        .execute("DROP DATABASE IF EXISTS bench_migrate", params![])
        .unwrap();
    admin.shutdown();
}

fn admin_db(admin_url: &str, db: &str) {
    let admin = Manager::from_url(admin_url).unwrap();
    admin
        .execute(&format!("DROP DATABASE IF EXISTS {db}"), params![])
        .unwrap();
    admin
        .execute(&format!("CREATE DATABASE {db}"), params![])
        .unwrap();
    admin.shutdown();
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
    })
}
