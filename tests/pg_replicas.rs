//! Choosing hosts on a primary with a streaming standby
//! (scripts/with-test-replicas.sh): every `target_session_attrs` mode, both
//! host orders, with both servers up, the standby down and the primary fenced
//! (`default_transaction_read_only=on`), compared cell by cell with the host
//! psql (libpq) chooses for the same string; and `load_balance_hosts=random`.
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;
use std::time::Duration;

use dbmux::{params, Config, Manager};

/// The tests stop and fence servers: one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Replicas {
    primary: String,
    standby: String,
    async_standby: String,
    password: String,
    bin: String,
    base: String,
}

fn replicas() -> Option<Replicas> {
    let [primary, standby, async_standby, password, bin, base] = common::pg_env([
        "DBMUX_TEST_REPL_PRIMARY_PORT",
        "DBMUX_TEST_REPL_STANDBY_PORT",
        "DBMUX_TEST_REPL_ASYNC_PORT",
        "DBMUX_TEST_REPL_PASSWORD",
        "DBMUX_TEST_REPL_BIN",
        "DBMUX_TEST_REPL_BASE",
    ])?;
    Some(Replicas {
        primary,
        standby,
        async_standby,
        password,
        bin,
        base,
    })
}

impl Replicas {
    fn url(&self, ports: &[&str], query: &str) -> String {
        let hosts: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
        format!(
            "postgresql://dbmux:{}@{}/dbmux_test?sslmode=disable&{query}",
            self.password,
            hosts.join(",")
        )
    }

    fn pg_ctl(&self, node: &str, args: &[&str]) {
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", self.bin))
            .args(["-D", &format!("{}/{node}", self.base), "-w", "-t", "60"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {node} {args:?} failed");
    }

    /// The port psql (libpq) ends up on for `url`, or None when it fails.
    fn psql_port(&self, url: &str) -> Option<String> {
        let out = Command::new(format!("{}/psql", self.bin))
            .args([url, "-tAc", "SELECT inet_server_port()"])
            .env("PGCONNECT_TIMEOUT", "3")
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The port dbmux ends up on for `url`, or None when it fails.
    fn dbmux_port(&self, url: &str) -> Option<String> {
        let mgr = Manager::new(
            Config::builder()
                .url(url)
                .pool_timeout(Duration::from_millis(600))
                .connect_timeout(Duration::from_secs(3))
                .build()
                .unwrap(),
        )
        .unwrap();
        let port = mgr
            .query_scalar::<i64>("SELECT inet_server_port()", params![])
            .ok()
            .map(|p| p.to_string());
        mgr.shutdown();
        port
    }

    /// Runs each statement on the primary, one at a time.
    fn admin(&self, statements: &[&str]) {
        let mgr = Manager::from_url(&self.url(&[&self.primary], "")).unwrap();
        for sql in statements {
            mgr.execute(sql, params![]).unwrap();
        }
        mgr.shutdown();
    }
}

const MODES: [&str; 6] = [
    "any",
    "read-write",
    "read-only",
    "primary",
    "standby",
    "prefer-standby",
];

#[test]
fn every_target_session_attrs_mode_chooses_the_host_psql_chooses() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let name = |port: &Option<String>| match port.as_deref() {
        Some(p) if p == r.primary => "primary",
        Some(p) if p == r.standby => "standby",
        Some(_) => "another server",
        None => "no server (an error)",
    };
    let mut cells = 0;
    let mut wrong = Vec::new();
    for state in ["both up", "standby down", "primary fenced"] {
        match state {
            "standby down" => r.pg_ctl("s1", &["stop", "-m", "fast"]),
            "primary fenced" => r.admin(&[
                "ALTER SYSTEM SET default_transaction_read_only = on",
                "SELECT pg_reload_conf()",
            ]),
            _ => {}
        }
        for mode in MODES {
            for order in [[&r.primary, &r.standby], [&r.standby, &r.primary]] {
                let url = r.url(
                    &[order[0].as_str(), order[1].as_str()],
                    &format!("target_session_attrs={mode}"),
                );
                let (ours, libpq) = (r.dbmux_port(&url), r.psql_port(&url));
                cells += 1;
                if ours != libpq {
                    wrong.push(format!(
                        "{state}, target_session_attrs={mode}, {} first: dbmux chose {}, psql {}",
                        name(&Some(order[0].clone())),
                        name(&ours),
                        name(&libpq)
                    ));
                }
            }
        }
        match state {
            "standby down" => r.pg_ctl("s1", &["start"]),
            "primary fenced" => r.admin(&[
                "ALTER SYSTEM RESET default_transaction_read_only",
                "SELECT pg_reload_conf()",
            ]),
            _ => {}
        }
    }
    assert_eq!(cells, 36);
    assert!(
        wrong.is_empty(),
        "{} of 36 cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn random_load_balancing_spreads_new_connections() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    // one manager whose connections expire at once: every checkout opens a
    // new connection, in a fresh random host order
    let mgr = Manager::new(
        Config::builder()
            .url(r.url(&[&r.primary, &r.standby], "load_balance_hosts=random"))
            .pool_recycle(Some(Duration::from_millis(1)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let (mut primary, mut standby) = (0, 0);
    for _ in 0..1000 {
        let port = mgr
            .query_scalar::<i64>("SELECT inet_server_port()", params![])
            .unwrap()
            .to_string();
        std::thread::sleep(Duration::from_millis(2));
        match port {
            p if p == r.primary => primary += 1,
            p if p == r.standby => standby += 1,
            other => panic!("connected to port {other}"),
        }
    }
    let d = mgr.debug_info();
    mgr.shutdown();
    assert!(d.connections_opened >= 1000, "{d:?}");
    // within ±10 % of an even split. (With 300 connections, a fair coin
    // leaves that band 8 % of the time; with 1000, 0.2 %.)
    assert!(
        (450..=550).contains(&primary),
        "primary {primary}, standby {standby}"
    );
    // random order, but standby only: never the primary
    let only = r.url(
        &[&r.primary, &r.standby],
        "load_balance_hosts=random&target_session_attrs=standby",
    );
    for _ in 0..20 {
        assert_eq!(r.dbmux_port(&only).as_deref(), Some(r.standby.as_str()));
    }
}

/// `get_read()`: on a standby when one qualifies, else on the primary; in
/// both cases the server refuses writes (ReadOnly, saying to use get()),
/// while get() still reaches the primary for writes.
#[test]
fn get_read_prefers_a_standby_and_refuses_writes() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let port_of = |c: &mut dbmux::Connection| {
        c.query_scalar::<i64>("SELECT inet_server_port()", params![])
            .unwrap()
            .to_string()
    };
    for (hosts, reads_on) in [
        (
            vec![r.primary.as_str(), r.standby.as_str()],
            r.standby.as_str(),
        ),
        (
            vec![r.standby.as_str(), r.primary.as_str()],
            r.standby.as_str(),
        ),
        (vec![r.primary.as_str()], r.primary.as_str()),
    ] {
        let mgr = Manager::new(
            Config::builder()
                .url(r.url(&hosts, "target_session_attrs=read-write"))
                .build()
                .unwrap(),
        )
        .unwrap();
        let mut w = mgr.get().unwrap();
        assert_eq!(
            port_of(&mut w),
            r.primary,
            "{hosts:?}: writes on the primary"
        );
        w.execute("CREATE TABLE IF NOT EXISTS reads_t (x INT)", params![])
            .unwrap();
        drop(w);
        let mut rd = mgr.get_read().unwrap();
        assert!(rd.is_read_only());
        assert_eq!(port_of(&mut rd), reads_on, "{hosts:?}: reads");
        let e = rd
            .execute("INSERT INTO reads_t VALUES (1)", params![])
            .unwrap_err();
        assert_eq!(e.code(), dbmux::ErrorCode::ReadOnly, "{hosts:?}: {e}");
        assert!(e.to_string().contains("with get()"), "{e}");
        mgr.shutdown();
    }
}

/// Runs `sql` on one node (as the superuser, one connection).
fn on_node(r: &Replicas, port: &str, sql: &str) {
    let mgr = Manager::from_url(&r.url(&[port], "")).unwrap();
    mgr.execute_batch(sql).unwrap();
    mgr.shutdown();
}

/// A manager on the primary and the asynchronous standby whose commits wait
/// for no standby (the standby must catch up on its own), with table `ryw`.
fn ryw_manager(r: &Replicas) -> Manager {
    let mgr = Manager::new(
        Config::builder()
            .url(r.url(
                &[&r.primary, &r.async_standby],
                "target_session_attrs=read-write&options=-c%20synchronous_commit%3Dlocal",
            ))
            .pool_size(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute_batch("DROP TABLE IF EXISTS ryw; CREATE TABLE ryw (id BIGINT PRIMARY KEY)")
        .unwrap();
    mgr
}

/// `n` write-then-read pairs from id `from`: each inserts a row, takes the
/// write token (through its string form), and reads the row with
/// `get_read_after`; returns how many reads did not see their write.
fn ryw_pairs(mgr: &Manager, from: i64, n: i64) -> usize {
    let mut violations = 0;
    for id in from..from + n {
        let mut w = mgr.get().unwrap();
        assert_eq!(w.write_token().unwrap(), None, "no write yet");
        w.execute("INSERT INTO ryw VALUES (?)", params![id])
            .unwrap();
        let token = w.write_token().unwrap().expect("a token after a write");
        drop(w);
        let token: dbmux::WriteToken = token.to_string().parse().unwrap();
        let mut rd = mgr.get_read_after(&token).unwrap();
        let seen: i64 = rd
            .query_scalar("SELECT count(*) FROM ryw WHERE id = ?", params![id])
            .unwrap();
        if seen != 1 {
            violations += 1;
        }
    }
    violations
}

/// Read-your-writes against the asynchronous standby: every read after a
/// write token sees the write; most are served by the standby while replay
/// keeps up; with replay paused they fall back to the primary after
/// DB_READ_AFTER_WAIT, still seeing every write.
#[test]
fn reads_after_a_write_token_always_see_the_write() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let mgr = ryw_manager(&r);
    let pairs = |from: i64, n: i64| ryw_pairs(&mgr, from, n);
    let before = mgr.debug_info();
    assert_eq!(pairs(0, 2000), 0, "read-your-writes violations");
    let d = mgr.debug_info();
    let standby = d.read_after_standby - before.read_after_standby;
    let primary = d.read_after_primary - before.read_after_primary;
    assert_eq!(standby + primary, 2000);
    println!("read-your-writes: {standby} of 2000 reads on the standby");
    assert!(
        standby >= 1800,
        "only {standby} of 2000 reads on the standby"
    );

    // replay paused: reads wait DB_READ_AFTER_WAIT, then go to the primary
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_pause()");
    let start = std::time::Instant::now();
    let violations = pairs(10_000, 20);
    let took = start.elapsed();
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_resume()");
    assert_eq!(violations, 0);
    let d2 = mgr.debug_info();
    assert_eq!(d2.read_after_primary - d.read_after_primary, 20);
    // each waited about 50 ms, not the pool timeout
    assert!(took >= Duration::from_millis(20 * 45), "{took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    mgr.execute_batch("DROP TABLE ryw").unwrap();
    mgr.shutdown();
}

/// DB_READ_MAX_LAG: a standby whose replay is paused while writes go on is
/// left out, and reads go to the primary; once it caught up it serves again.
#[test]
fn a_standby_lagging_more_than_read_max_lag_is_left_out() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(r.url(
                &[&r.primary, &r.async_standby],
                "options=-c%20synchronous_commit%3Dlocal",
            ))
            .read_max_lag(Some(dbmux::ReadMaxLag::Bytes(64 * 1024)))
            .host_recheck(Duration::from_millis(500))
            .build()
            .unwrap(),
    )
    .unwrap();
    let read_port = || {
        let mut c = mgr.get_read().unwrap();
        c.query_scalar::<i64>("SELECT inet_server_port()", params![])
            .unwrap()
            .to_string()
    };
    assert_eq!(read_port(), r.async_standby);
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_pause()");
    // 1 MB of WAL the standby receives but does not replay
    mgr.execute_batch(
        "DROP TABLE IF EXISTS lag_t; CREATE TABLE lag_t AS SELECT g, repeat('x', 100) AS pad \
         FROM generate_series(1, 10000) g",
    )
    .unwrap();
    let _token = mgr.get().unwrap(); // the write pool has seen the primary's position
    std::thread::sleep(Duration::from_millis(300));
    let ports: Vec<String> = (0..5).map(|_| read_port()).collect();
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_resume()");
    assert!(ports.iter().all(|p| *p == r.primary), "{ports:?}");
    assert!(mgr.debug_info().read_lag_avoided >= 1);
    let hosts = mgr.check_health().hosts;
    assert!(hosts[1].replay_lag_bytes.is_some(), "{hosts:?}");
    // caught up, and past the second it is left out: the standby again
    std::thread::sleep(Duration::from_millis(1300));
    assert_eq!(read_port(), r.async_standby);
    mgr.execute_batch("DROP TABLE lag_t").unwrap();
    mgr.shutdown();
}

/// With `any` and the standby first, writes land on the standby and fail
/// with 25006: that drops the standby's connections for writes, and the next
/// write finds the primary. A pooled connection to a server that became
/// read-only is replaced on checkout, after the pre-ping shows it.
#[test]
fn a_write_refused_as_read_only_sends_writes_to_the_primary() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let mgr = Manager::new(
        Config::builder()
            .url(r.url(&[&r.standby, &r.primary], "target_session_attrs=any"))
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("SELECT 1", params![]).unwrap();
    let e = mgr
        .execute("CREATE TABLE IF NOT EXISTS evict_t (x INT)", params![])
        .unwrap_err();
    assert_eq!(e.code(), dbmux::ErrorCode::ReadOnly, "{e}");
    assert!(e.to_string().contains("look for the primary"), "{e}");
    mgr.execute("CREATE TABLE IF NOT EXISTS evict_t (x INT)", params![])
        .unwrap();
    let mut c = mgr.get().unwrap();
    assert_eq!(
        c.query_scalar::<i64>("SELECT inet_server_port()", params![])
            .unwrap()
            .to_string(),
        r.primary
    );
    drop(c);
    mgr.execute("DROP TABLE evict_t", params![]).unwrap();
    mgr.shutdown();

    // read-write: the primary turns read-only while a connection sits idle
    let mgr = Manager::new(
        Config::builder()
            .url(r.url(&[&r.primary, &r.standby], "target_session_attrs=read-write"))
            .pool_timeout(Duration::from_millis(800))
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("SELECT 1", params![]).unwrap();
    r.admin(&[
        "ALTER SYSTEM SET default_transaction_read_only = on",
        "SELECT pg_reload_conf()",
    ]);
    std::thread::sleep(Duration::from_millis(700)); // past the pre-ping window
    let e = mgr.get().map(|_| ()).unwrap_err();
    r.admin(&[
        "SET default_transaction_read_only = off",
        "ALTER SYSTEM RESET default_transaction_read_only",
        "SELECT pg_reload_conf()",
    ]);
    let m = e.to_string();
    assert!(m.contains("read-only") && m.contains("read-write"), "{m}");
    assert!(mgr.debug_info().pool_invalidated >= 1);
    mgr.shutdown();
}

/// The measurement behind scripts/measure-scaling.sh: read-your-writes over
/// 10,000 pairs (violations, share served by the standby), 200 more with
/// replay paused, and read throughput of 8 threads with reads spread over
/// both standbys against all reads on the primary (alternating 3 s rounds,
/// medians).
#[test]
#[ignore = "a measurement: scripts/measure-scaling.sh"]
fn measure_read_your_writes_and_read_throughput() {
    println!(); // after the test harness's own line
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let Some(r) = replicas() else { return };
    let mgr = ryw_manager(&r);
    let start = std::time::Instant::now();
    let violations = ryw_pairs(&mgr, 0, 10_000);
    let d = mgr.debug_info();
    println!(
        "read-your-writes: {violations} violations in 10000 pairs (target 0); {} served by the \
         standby ({:.1} %, target >= 90 %), {} by the primary; {:.0} pairs/s",
        d.read_after_standby,
        d.read_after_standby as f64 / 100.0,
        d.read_after_primary,
        10_000.0 / start.elapsed().as_secs_f64()
    );
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_pause()");
    let paused = ryw_pairs(&mgr, 100_000, 200);
    on_node(&r, &r.async_standby, "SELECT pg_wal_replay_resume()");
    let d2 = mgr.debug_info();
    println!(
        "read-your-writes, replay paused: {paused} violations in 200 pairs; {} served by the primary",
        d2.read_after_primary - d.read_after_primary
    );
    mgr.execute_batch("DROP TABLE ryw").unwrap();
    mgr.shutdown();
    assert_eq!(violations + paused, 0);

    // read throughput: reads spread over the standbys vs all on the primary
    let spread = r.url(&[&r.primary, &r.standby, &r.async_standby], "");
    let primary_only = r.url(&[&r.primary], "");
    Manager::from_url(&primary_only)
        .unwrap()
        .execute_batch(
            "DROP TABLE IF EXISTS rt; CREATE TABLE rt AS SELECT g AS id, md5(g::text) AS v \
             FROM generate_series(1, 10000) g; CREATE INDEX ON rt (id)",
        )
        .unwrap();
    std::thread::sleep(Duration::from_millis(500)); // replicated
    let run = |url: &str| -> f64 {
        let mgr = Manager::new(
            Config::builder()
                .url(url)
                .read_pool_size(8)
                .build()
                .unwrap(),
        )
        .unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handles: Vec<_> = (0..8)
            .map(|t| {
                let (mgr, stop) = (mgr.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let mut c = mgr.get_read().unwrap();
                        let _: i64 = c
                            .query_scalar(
                                "SELECT count(*) FROM rt WHERE id BETWEEN ? AND ? + 200",
                                params![(n as i64 * 37 + t) % 9800, (n as i64 * 37 + t) % 9800],
                            )
                            .unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(3));
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        mgr.shutdown();
        total as f64 / 3.0
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        a.push(run(&spread));
        b.push(run(&primary_only));
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (ma, mb) = (median(&mut a), median(&mut b));
    println!(
        "read throughput, 8 threads: {ma:.0} reads/s spread over 2 standbys, {mb:.0} reads/s all \
         on the primary: {:.2}x (medians of 3 alternating 3 s rounds; one machine, so the servers \
         share its cores)",
        ma / mb
    );
    Manager::from_url(&primary_only)
        .unwrap()
        .execute_batch("DROP TABLE rt")
        .unwrap();
}
