//! Feature `metrics`: a recorder installed before the manager sees the same
//! counters, gauges and histogram counts as `metrics_text` shows, the
//! SQLite file's and the PostgreSQL hosts' figures included.
//! (`scripts/with-test-postgres.sh cargo test --features metrics --test metrics_facade`)

#![cfg(feature = "metrics")]

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dbmux::{params, Config, ErrorCode, Manager};
use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};

/// One metric of the test recorder.
#[derive(Default)]
struct Cell {
    count: AtomicU64,
    gauge: Mutex<f64>,
    observed: Mutex<Vec<f64>>,
}

impl CounterFn for Cell {
    fn increment(&self, n: u64) {
        self.count.fetch_add(n, Relaxed);
    }
    fn absolute(&self, n: u64) {
        self.count.store(n, Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, v: f64) {
        *self.gauge.lock().unwrap() += v;
    }
    fn decrement(&self, v: f64) {
        *self.gauge.lock().unwrap() -= v;
    }
    fn set(&self, v: f64) {
        *self.gauge.lock().unwrap() = v;
    }
}

impl HistogramFn for Cell {
    fn record(&self, v: f64) {
        self.observed.lock().unwrap().push(v);
    }
}

/// A recorder that keeps every metric by `name{label="value",...}` (labels
/// in the order given, as the text writes them).
#[derive(Default)]
struct TestRecorder {
    cells: Mutex<BTreeMap<String, Arc<Cell>>>,
}

impl TestRecorder {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}=\"{}\"", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.cells.lock().unwrap().entry(name).or_default().clone()
    }
    fn get(&self, name: &str) -> Option<Arc<Cell>> {
        self.cells.lock().unwrap().get(name).cloned()
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.cell(key))
    }
}

/// The families sampled once a second (the SQLite file's and the hosts'):
/// compared after [`SAMPLED`] has passed.
const SAMPLED_FAMILIES: &[&str] = &[
    "dbmux_sqlite_wal_bytes",
    "dbmux_sqlite_wal_frames",
    "dbmux_sqlite_lane_waiting",
    "dbmux_sqlite_oldest_read_transaction_seconds",
    "dbmux_sqlite_checkpoints_total",
    "dbmux_sqlite_checkpoints_blocked_total",
    "dbmux_sqlite_reader_gate_closures_total",
    "dbmux_sqlite_long_read_transactions_total",
    "dbmux_host_up",
    "dbmux_host_replay_lag_bytes",
];

/// Long enough for the facade's sampler (once a second) to have run.
const SAMPLED: Duration = Duration::from_millis(2500);

/// Every family of the text: the facade reports each.
const FAMILIES: &[&str] = &[
    "dbmux_manager_open",
    "dbmux_connections",
    "dbmux_pool_size",
    "dbmux_pool_max_connections",
    "dbmux_checkouts_waiting",
    "dbmux_connects_in_flight",
    "dbmux_checkouts_total",
    "dbmux_checkout_timeouts_total",
    "dbmux_connections_opened_total",
    "dbmux_connections_closed_total",
    "dbmux_connect_errors_total",
    "dbmux_retries_total",
    "dbmux_pre_pings_total",
    "dbmux_resets_on_return_total",
    "dbmux_leak_warnings_total",
    "dbmux_acquire_seconds",
    "dbmux_hold_seconds",
    "dbmux_connect_seconds",
    "dbmux_statement_seconds",
    "dbmux_sqlite_lane_wait_seconds",
    "dbmux_sqlite_reader_gate_wait_seconds",
    "dbmux_read_after_total",
    "dbmux_read_lag_avoided_total",
];

/// Every sample of `text` in `FAMILIES` and `SAMPLED_FAMILIES`, but those
/// in `skip`, must be what the recorder holds: a counter's or gauge's
/// value, a histogram's count and sum. Every family of the text must be in
/// one of the lists. Returns how many samples were compared.
fn compare(text: &str, rec: &TestRecorder, skip: &[&str]) -> usize {
    let mut compared = 0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let value: f64 = value.parse().unwrap();
        let name = series.split('{').next().unwrap();
        if name.ends_with("_bucket") {
            continue;
        }
        let (family, part) = match name
            .strip_suffix("_count")
            .map(|f| (f, "count"))
            .or_else(|| name.strip_suffix("_sum").map(|f| (f, "sum")))
        {
            Some((f, p)) if f.ends_with("_seconds") => (f, p),
            _ => (name, "value"),
        };
        let is_sampled = SAMPLED_FAMILIES.contains(&family);
        assert!(
            is_sampled || FAMILIES.contains(&family),
            "{family} is in the text but the test does not know it"
        );
        if skip.contains(&family) {
            continue;
        }
        let key = series.replacen(name, family, 1);
        let cell = rec.get(&key);
        let seen = match (part, &cell) {
            ("count", Some(c)) => c.observed.lock().unwrap().len() as f64,
            ("sum", Some(c)) => c.observed.lock().unwrap().iter().sum(),
            (_, Some(c)) if family.ends_with("_total") => c.count.load(Relaxed) as f64,
            (_, Some(c)) => *c.gauge.lock().unwrap(),
            (_, None) => 0.0, // never registered: nothing happened
        };
        // the text counts whole microseconds, the facade the exact seconds
        let slack = if part == "sum" {
            1e-3 + value * 1e-3
        } else {
            0.0
        };
        assert!(
            (seen - value).abs() <= slack,
            "{key} ({part}): the text says {value}, the recorder {seen}"
        );
        compared += 1;
    }
    compared
}

/// The recorder of the process (installed once, shared by the tests).
fn recorder() -> Arc<TestRecorder> {
    static REC: OnceLock<Arc<TestRecorder>> = OnceLock::new();
    REC.get_or_init(|| {
        let rec = Arc::new(TestRecorder::default());
        metrics::set_global_recorder(RecorderRef(rec.clone())).unwrap();
        rec
    })
    .clone()
}

#[test]
fn a_recorder_sees_the_numbers_of_the_text() {
    let rec = recorder();
    let dir = tempfile::tempdir().unwrap();
    let db = Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}/f.db", dir.path().display()))
            .pool_size(1)
            .max_overflow(1)
            .pool_timeout(Duration::from_millis(200))
            .pool_name("facade")
            .build()
            .unwrap(),
    )
    .unwrap();
    db.execute("CREATE TABLE t (x INTEGER)", params![]).unwrap();
    for i in 0..20 {
        db.execute("INSERT INTO t VALUES (?)", params![i]).unwrap();
    }
    let a = db.get().unwrap();
    let mut b = db.get().unwrap();
    assert_eq!(db.get().unwrap_err().code(), ErrorCode::PoolTimeout);
    b.discard();
    drop((a, b));
    let (a, b) = (db.get().unwrap(), db.get().unwrap());
    drop((a, b));
    // a connect error on a second manager, by its code
    let bad = Manager::new(
        Config::builder()
            .url(format!(
                "sqlite:///{}/no/such/dir/x.db",
                dir.path().display()
            ))
            .pool_timeout(Duration::from_millis(200))
            .pool_name("facade-bad")
            .build()
            .unwrap(),
    )
    .unwrap();
    assert!(bad.get().is_err());

    // the pool's figures are fed at each event: equal at once
    let text = db.metrics_text();
    let compared = compare(&text, &rec, SAMPLED_FAMILIES);
    assert!(compared >= 30, "only {compared} samples compared:\n{text}");
    assert!(compare(&bad.metrics_text(), &rec, SAMPLED_FAMILIES) >= 30);
    // the file's, once the sampler has run
    std::thread::sleep(SAMPLED);
    let text = db.metrics_text();
    let compared = compare(&text, &rec, &[]);
    assert!(compared >= 45, "only {compared} samples compared:\n{text}");
    // spot checks, so that an empty recorder cannot pass
    let labels = "{pool=\"facade\",backend=\"sqlite\"}";
    let checkouts = rec.get(&format!("dbmux_checkouts_total{labels}")).unwrap();
    assert_eq!(checkouts.count.load(Relaxed), 1 + 20 + 2 + 2);
    let closed = rec
        .get("dbmux_connections_closed_total{pool=\"facade\",backend=\"sqlite\",reason=\"broken\"}")
        .unwrap();
    assert_eq!(closed.count.load(Relaxed), 1);
    let errors = rec
        .get("dbmux_connect_errors_total{pool=\"facade-bad\",backend=\"sqlite\",code=\"connect_failed\"}")
        .unwrap();
    assert!(errors.count.load(Relaxed) >= 1);
    // every write (21) took the file's writer lane
    let lane = rec
        .get(&format!("dbmux_sqlite_lane_wait_seconds{labels}"))
        .unwrap();
    assert!(lane.observed.lock().unwrap().len() >= 21);
    // the sampler registered the file's counters (the controller may or may
    // not have checkpointed yet: the comparison above checks the value)
    assert!(rec
        .get(&format!("dbmux_sqlite_checkpoints_total{labels}"))
        .is_some());
    db.shutdown();
    let open = rec.get(&format!("dbmux_manager_open{labels}")).unwrap();
    assert_eq!(*open.gauge.lock().unwrap(), 0.0);
    // after shutdown the text reads the file's figures as 0; the facade
    // keeps the last ones
    let file = [SAMPLED_FAMILIES, &["dbmux_sqlite_lane_wait_seconds"]].concat();
    assert!(compare(&db.metrics_text(), &rec, &file) >= 15);
}

#[test]
fn the_hosts_of_a_postgres_manager_reach_the_recorder() {
    let rec = recorder();
    let Some(pg) = common::pg() else { return };
    let db = Manager::new(
        Config::builder()
            .url(pg.main())
            .pool_timeout(Duration::from_secs(5))
            .pool_name("facade-pg")
            .build()
            .unwrap(),
    )
    .unwrap();
    let v: i64 = db.query_scalar("SELECT 41 + 1", params![]).unwrap();
    assert_eq!(v, 42);
    std::thread::sleep(SAMPLED);
    let text = db.metrics_text();
    assert!(compare(&text, &rec, &[]) >= 30, "{text}");
    let up = rec
        .get(&format!(
            "dbmux_host_up{{pool=\"facade-pg\",backend=\"postgresql\",host=\"localhost:{}\",role=\"primary\"}}",
            pg.port
        ))
        .expect("the host's gauge");
    assert_eq!(*up.gauge.lock().unwrap(), 1.0);
    let statements = rec
        .get("dbmux_statement_seconds{pool=\"facade-pg\",backend=\"postgresql\"}")
        .unwrap();
    assert_eq!(statements.observed.lock().unwrap().len(), 1);
    db.shutdown();
}

/// The recorder, shared with the test.
struct RecorderRef(Arc<TestRecorder>);

impl Recorder for RecorderRef {
    fn describe_counter(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_counter(k, u, d)
    }
    fn describe_gauge(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_gauge(k, u, d)
    }
    fn describe_histogram(&self, k: KeyName, u: Option<Unit>, d: SharedString) {
        self.0.describe_histogram(k, u, d)
    }
    fn register_counter(&self, key: &Key, m: &Metadata<'_>) -> Counter {
        self.0.register_counter(key, m)
    }
    fn register_gauge(&self, key: &Key, m: &Metadata<'_>) -> Gauge {
        self.0.register_gauge(key, m)
    }
    fn register_histogram(&self, key: &Key, m: &Metadata<'_>) -> Histogram {
        self.0.register_histogram(key, m)
    }
}
