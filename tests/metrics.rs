//! `Manager::metrics_text`: the counters, gauges and histograms move as a
//! scripted workload says they must, the debug info's quantiles come from the
//! same histograms, and no label holds a password. (The Python tests parse
//! the same text with prometheus_client's parsers.)

mod common;

use std::time::Duration;

use dbmux::{params, Config, ErrorCode, Manager};

/// The value of the sample `name{labels...}` (the labels after `pool` and
/// `backend`, as written), or a panic that shows the text.
fn sample(text: &str, name: &str, labels: &str) -> f64 {
    let prefix = format!("{name}{{");
    for line in text.lines().filter(|l| l.starts_with(&prefix)) {
        let (head, value) = line.rsplit_once(' ').unwrap();
        let own = head
            .splitn(3, ',')
            .nth(2)
            .map(|l| l.trim_end_matches('}'))
            .unwrap_or("");
        if own == labels {
            return value.parse().unwrap();
        }
    }
    panic!("no sample {name}{{..,{labels}}} in:\n{text}");
}

/// The upper bounds (seconds) of the exported buckets and their cumulative
/// counts, for histogram `name`.
fn buckets(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{");
    text.lines()
        .filter(|l| l.starts_with(&prefix))
        .map(|l| {
            let le = l.split("le=\"").nth(1).unwrap().split('"').next().unwrap();
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            (le, l.rsplit_once(' ').unwrap().1.parse().unwrap())
        })
        .collect()
}

/// The bucket bound (ms) within which the `q` quantile of `name` lies.
fn bucket_of_quantile(text: &str, name: &str, q: f64) -> (f64, f64) {
    let b = buckets(text, name);
    let total = b.last().unwrap().1;
    let rank = ((q * total as f64).ceil() as u64).max(1);
    let mut lower = 0.0;
    for (le, n) in b {
        if n >= rank {
            return (lower * 1000.0, le * 1000.0);
        }
        lower = le;
    }
    unreachable!()
}

#[test]
fn counters_and_histograms_follow_a_scripted_workload_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/m.db", dir.path().display());
    let db = Manager::new(
        Config::builder()
            .url(&url)
            .pool_size(1)
            .max_overflow(1)
            .pool_timeout(Duration::from_millis(200))
            .pool_recycle(Some(Duration::from_millis(300)))
            .pool_name("orders")
            .build()
            .unwrap(),
    )
    .unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", params![]).unwrap();
    // N checkouts with one statement each
    for i in 0..10 {
        db.execute("INSERT INTO t VALUES (?)", params![i]).unwrap();
    }
    // one forced timeout: both allowed connections are held
    let a = db.get().unwrap();
    let mut b = db.get().unwrap();
    let err = db.get().unwrap_err();
    assert_eq!(err.code(), ErrorCode::PoolTimeout);
    // one broken connection: discarded on return
    b.discard();
    drop(b);
    drop(a);
    // one overflow: two connections come back to a pool that keeps one
    let a = db.get().unwrap();
    let b = db.get().unwrap();
    drop(a);
    drop(b);
    // one recycle: the idle connection outlives pool_recycle (+10 %)
    std::thread::sleep(Duration::from_millis(400));
    let n: i64 = db
        .query_scalar("SELECT count(*) FROM t", params![])
        .unwrap();
    assert_eq!(n, 10);

    let text = db.metrics_text();
    // checkouts: 1 CREATE + 10 INSERT + a, b + a, b + the count = 16
    let checkouts = 16.0;
    assert_eq!(sample(&text, "dbmux_checkouts_total", ""), checkouts);
    assert_eq!(sample(&text, "dbmux_checkout_timeouts_total", ""), 1.0);
    // every checkout and the timeout waited; every checkout was returned
    assert_eq!(
        sample(&text, "dbmux_acquire_seconds_count", ""),
        checkouts + 1.0
    );
    assert_eq!(sample(&text, "dbmux_hold_seconds_count", ""), checkouts);
    // statements: CREATE, 10 INSERT, the count
    assert_eq!(sample(&text, "dbmux_statement_seconds_count", ""), 12.0);
    for (reason, n) in [
        ("broken", 1.0),
        ("overflow", 1.0),
        ("recycled", 1.0),
        ("invalidated", 0.0),
        ("shutdown", 0.0),
    ] {
        assert_eq!(
            sample(
                &text,
                "dbmux_connections_closed_total",
                &format!("reason=\"{reason}\"")
            ),
            n,
            "{reason}"
        );
    }
    // opened: the first, b, its replacement after the discard, the
    // overflow one... and the one after the recycle
    let opened = sample(&text, "dbmux_connections_opened_total", "");
    assert_eq!(opened, 4.0, "{text}");
    assert_eq!(sample(&text, "dbmux_connect_seconds_count", ""), opened);
    // one connection is open and idle in the write pool
    assert_eq!(
        sample(
            &text,
            "dbmux_connections",
            "access=\"write\",state=\"idle\""
        ),
        1.0
    );
    assert_eq!(
        sample(
            &text,
            "dbmux_connections",
            "access=\"write\",state=\"in_use\""
        ),
        0.0
    );
    assert_eq!(
        sample(&text, "dbmux_pool_max_connections", "access=\"write\""),
        2.0
    );
    assert!(
        text.contains("{pool=\"orders\",backend=\"sqlite\""),
        "{text}"
    );
    // the histogram's buckets are cumulative and end at the count
    let b = buckets(&text, "dbmux_hold_seconds");
    assert_eq!(b.len(), 22);
    assert!(b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
    assert_eq!(b.last().unwrap().1 as f64, checkouts);

    // debug info reads the same counters and histograms
    let info = db.debug_info();
    assert_eq!(info.session_creation_count as f64, checkouts);
    assert_eq!(info.checkout_timeouts, 1);
    for (name, p50, p99) in [
        ("dbmux_hold_seconds", info.hold_p50_ms, info.hold_p99_ms),
        ("dbmux_acquire_seconds", info.wait_p50_ms, info.wait_p99_ms),
        (
            "dbmux_statement_seconds",
            info.statement_p50_ms,
            info.statement_p99_ms,
        ),
    ] {
        for (q, v) in [(0.5, p50), (0.99, p99)] {
            let (lo, hi) = bucket_of_quantile(&text, name, q);
            assert!(
                v >= lo * 0.999 && v <= hi * 1.001,
                "{name} q{q}: debug info says {v} ms, the buckets {lo}..{hi} ms"
            );
        }
    }
    // the timeout waited about pool_timeout: the acquire sum shows it
    let sum = sample(&text, "dbmux_acquire_seconds_sum", "");
    assert!(sum >= 0.2, "{sum}");
    assert!((info.total_wait_ms - sum * 1000.0).abs() < 0.01);

    // OpenMetrics: the same samples, counters announced without _total
    let om = db.metrics_openmetrics();
    assert!(om.contains("# TYPE dbmux_checkouts counter\n"), "{om}");
    assert!(om.contains("# UNIT dbmux_hold_seconds seconds\n"), "{om}");
    assert!(om.ends_with("# EOF\n"));
    assert_eq!(sample(&om, "dbmux_checkouts_total", ""), checkouts);

    // after shutdown: the idle connection closed for shutdown
    db.shutdown();
    let text = db.metrics_text();
    assert_eq!(sample(&text, "dbmux_manager_open", ""), 0.0);
    assert_eq!(
        sample(
            &text,
            "dbmux_connections_closed_total",
            "reason=\"shutdown\""
        ),
        1.0
    );
}

#[test]
fn sqlite_families_report_the_lane_and_the_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = Manager::from_url(&format!("sqlite:///{}/w.db", dir.path().display())).unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", params![]).unwrap();
    for i in 0..5 {
        db.execute("INSERT INTO t VALUES (?)", params![i]).unwrap();
    }
    let text = db.metrics_text();
    // every write took the lane
    assert!(sample(&text, "dbmux_sqlite_lane_wait_seconds_count", "") >= 6.0);
    assert!(sample(&text, "dbmux_sqlite_wal_bytes", "") > 0.0);
    assert_eq!(sample(&text, "dbmux_sqlite_lane_waiting", ""), 0.0);
    assert!(text.contains("# TYPE dbmux_sqlite_reader_gate_wait_seconds histogram"));
    assert!(!text.contains("dbmux_host_up"), "no hosts on SQLite");
}

#[test]
fn histograms_can_be_turned_off_and_counters_stay() {
    let db = Manager::new(
        Config::builder()
            .url("sqlite::memory:")
            .metrics_histograms(false)
            .build()
            .unwrap(),
    )
    .unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", params![]).unwrap();
    let text = db.metrics_text();
    assert_eq!(sample(&text, "dbmux_checkouts_total", ""), 1.0);
    assert_eq!(sample(&text, "dbmux_statement_seconds_count", ""), 0.0);
    let info = db.debug_info();
    assert!(!info.histograms);
    assert_eq!(info.hold_p50_ms, 0.0);
}

#[test]
fn a_pool_name_is_checked_and_never_holds_the_password() {
    for bad in ["", "a\nb", &"x".repeat(201)] {
        let e = Config::builder()
            .url("sqlite::memory:")
            .pool_name(bad)
            .build()
            .unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
        assert!(e.message().contains("DB_POOL_NAME"), "{e}");
    }
    let e = Config::builder()
        .url("postgresql://app:Sup3rSecretPw@127.0.0.1:1/db")
        .pool_name("app-Sup3rSecretPw")
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(!e.message().contains("Sup3rSecretPw"), "{e}");
    let e = Config::builder()
        .with_env_lookup(|k| (k == "DB_POOL_NAME").then(|| "api".to_string()))
        .url("sqlite::memory:")
        .build()
        .unwrap();
    assert_eq!(e.pool_name(), "api");
}

#[test]
fn postgres_connect_errors_by_code_and_no_password_in_any_label() {
    let Some(pg) = common::pg() else { return };
    // a wrong password, unique so that it can be looked for
    let secret = format!("Wr0ng{}Pw", std::process::id());
    let url = pg
        .url("dbmux", "127.0.0.1", &pg.port, "")
        .replace(&pg.password, &secret);
    let db = Manager::new(
        Config::builder()
            .url(&url)
            .pool_timeout(Duration::from_secs(5))
            .build()
            .unwrap(),
    )
    .unwrap();
    for _ in 0..2 {
        assert_eq!(db.get().unwrap_err().code(), ErrorCode::AuthFailed);
    }
    let text = db.metrics_text();
    assert_eq!(
        sample(&text, "dbmux_connect_errors_total", "code=\"auth_failed\""),
        2.0
    );
    assert_eq!(sample(&text, "dbmux_connect_seconds_count", ""), 2.0);
    assert!(!text.contains(&secret), "{text}");
    assert!(!db.metrics_openmetrics().contains(&secret));
    db.shutdown();

    // a working manager: hosts with their role, read-after counters
    let good = pg.manager(&pg.main()).unwrap();
    let v: i64 = good.query_scalar("SELECT 41 + 1", params![]).unwrap();
    assert_eq!(v, 42);
    let text = good.metrics_text();
    assert!(!text.contains(&pg.password), "{text}");
    let host = format!("host=\"localhost:{}\",role=\"primary\"", pg.port);
    assert_eq!(sample(&text, "dbmux_host_up", &host), 1.0, "{text}");
    assert_eq!(
        sample(&text, "dbmux_read_after_total", "served_by=\"standby\""),
        0.0
    );
    assert_eq!(sample(&text, "dbmux_statement_seconds_count", ""), 1.0);
    assert!(!text.contains("dbmux_sqlite_"), "{text}");
}

#[test]
fn the_readme_lists_exactly_the_families_written() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("## Metrics")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let mut listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `dbmux_"))
        .map(|l| l.split('`').next().unwrap())
        .collect();
    listed.sort();
    let sqlite = Manager::from_url("sqlite::memory:").unwrap().metrics_text();
    // building a PostgreSQL manager connects to nothing, and neither do its metrics
    let pg = Manager::from_url("postgresql://app@127.0.0.1:1/db")
        .unwrap()
        .metrics_text();
    let mut written: Vec<String> = sqlite
        .lines()
        .chain(pg.lines())
        .filter_map(|l| l.strip_prefix("# TYPE dbmux_"))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect();
    written.sort();
    written.dedup();
    assert_eq!(
        listed, written,
        "README.md's Metrics table and metrics_text() differ"
    );
}
