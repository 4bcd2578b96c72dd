//! The health report and debug info of a manager, filled from its config,
//! the pool's snapshot and the counters.

use std::sync::atomic::Ordering::Relaxed;

use super::backend::BackendPool;
use super::{Manager, MANAGERS_CREATED};
use crate::exposition::{Family, Kind};
use crate::health::{DebugInfo, HealthReport, HealthStatus};
use crate::platform::Instant;
use crate::pool::core::Gauges;
use crate::pool::{CloseReason, Count, Timing};

// ---------------------------------------------------- health and debug info --

fn thread_number() -> u64 {
    // `ThreadId::as_u64` is unstable; its Debug form is `ThreadId(N)`.
    let s = format!("{:?}", std::thread::current().id());
    s.trim_start_matches("ThreadId(")
        .trim_end_matches(')')
        .parse()
        .unwrap_or(0)
}

/// The SQLite library's version for a SQLite manager.
fn sqlite_library_version(backend: crate::url::Backend) -> Option<String> {
    #[cfg(feature = "sqlite")]
    if backend == crate::url::Backend::Sqlite {
        return Some(crate::sqlite_version().to_string());
    }
    let _ = backend;
    None
}

pub(super) fn health_check(mgr: &Manager) -> HealthReport {
    let c = mgr.config();
    let start = Instant::now();
    let timeout = c.pool_timeout().min(c.connect_timeout());
    let result = mgr
        .get_timeout(timeout)
        .and_then(|mut conn| Ok((conn.server_version()?, conn.is_encrypted())));
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    mgr.probe_hosts();
    let (status, version, tls, message, error_code) = match result {
        Ok((v, tls)) => (
            HealthStatus::Healthy,
            Some(v),
            tls,
            "database is reachable".to_string(),
            None,
        ),
        Err(e) => (
            HealthStatus::Unhealthy,
            None,
            None,
            e.to_string(),
            Some(e.code()),
        ),
    };
    HealthReport {
        status,
        database_type: Some(c.backend()),
        version,
        sqlite_version: sqlite_library_version(c.backend()),
        timestamp: crate::health::timestamp_now(),
        latency_ms,
        message,
        database: c.redacted_url(),
        tls,
        error_code,
        pool_status: mgr.pool_status(),
        hosts: mgr.hosts(),
    }
}

pub(super) fn debug_snapshot(mgr: &Manager) -> DebugInfo {
    let c = mgr.config();
    let s = &mgr.inner.shared.stats;
    let pool = mgr.pool_status();
    let gauges = pool_gauges(mgr);
    let (wait, hold) = (s.timing(Timing::Acquire), s.timing(Timing::Hold));
    let (connect, statement) = (s.timing(Timing::Connect), s.timing(Timing::Statement));
    DebugInfo {
        worker_id: c.worker_id().to_string(),
        process_id: crate::platform::process_id(),
        thread_id: thread_number(),
        backend: c.backend(),
        url: c.redacted_url(),
        profile: c.profile(),
        engine_creation_count: MANAGERS_CREATED.load(Relaxed),
        session_creation_count: s.get(Count::Checkouts),
        connection_failures: s.connect_errors_total(),
        last_connection_error: s.last_error(),
        engine_initialized: !mgr.is_closed(),
        pool_size: pool.pool_size,
        pool_max_overflow: pool.max_overflow,
        pool_checked_out: pool.checked_out,
        pool_checked_in: pool.checked_in,
        pool_overflow: pool.overflow,
        // discarded as broken or no longer to be used
        pool_invalidated: s.closed_count(CloseReason::Broken)
            + s.closed_count(CloseReason::Invalidated),
        pool_recycled: s.closed_count(CloseReason::Recycled),
        checkout_timeouts: s.get(Count::Timeouts),
        total_wait_ms: wait.snapshot().sum_seconds * 1000.0,
        max_wait_ms: wait.max_ms(),
        wait_p50_ms: wait.quantile_ms(0.5),
        wait_p99_ms: wait.quantile_ms(0.99),
        hold_p50_ms: hold.quantile_ms(0.5),
        hold_p99_ms: hold.quantile_ms(0.99),
        threads_waiting: gauges.iter().map(|(_, g)| u64::from(g.waiting)).sum(),
        connects_in_flight: gauges.iter().map(|(_, g)| u64::from(g.connecting)).sum(),
        connect_last_ms: s.connect_last_us.load(Relaxed) as f64 / 1000.0,
        connect_p50_ms: connect.quantile_ms(0.5),
        connect_p99_ms: connect.quantile_ms(0.99),
        connect_max_ms: connect.max_ms(),
        statement_p50_ms: statement.quantile_ms(0.5),
        statement_p99_ms: statement.quantile_ms(0.99),
        statement_max_ms: statement.max_ms(),
        histograms: s.histograms(),
        connections_opened: s.get(Count::Opened),
        connections_closed: s.get(Count::Closed),
        resets_on_return: s.get(Count::Resets),
        pre_pings: s.get(Count::PrePings),
        retries: s.get(Count::Retries),
        read_after_standby: s.get(Count::ReadAfterStandby),
        read_after_primary: s.get(Count::ReadAfterPrimary),
        read_lag_avoided: s.get(Count::ReadLagAvoided),
        long_held: mgr
            .inner
            .shared
            .leaks
            .as_ref()
            .map(|d| d.long_held())
            .unwrap_or_default(),
        leak_warnings: s.get(Count::LeakWarnings),
        sqlite: mgr.sqlite_info(),
    }
}

// ------------------------------------------------------------------ metrics --

/// The labels every sample of a manager carries: its pool name and backend.
pub(super) fn common_labels(mgr: &Manager) -> Vec<(&'static str, String)> {
    let c = mgr.config();
    vec![
        ("pool", c.pool_name().to_string()),
        ("backend", c.backend().name().to_string()),
    ]
}

/// The counter family of `counts` (named by [`Count::family`], as the
/// `metrics` facade names them too), a sample per count with its label.
fn counted(s: &crate::pool::Stats, help: &'static str, counts: &[Count]) -> Family {
    let name = counts.first().and_then(|c| c.family()).map_or("", |f| f.0);
    counts
        .iter()
        .fold(Family::new(Kind::Counter, name, help), |f, c| {
            let label = c.family().and_then(|f| f.1);
            let labels = label
                .map(|(k, v)| vec![(k, v.to_string())])
                .unwrap_or_default();
            f.number(labels, s.get(*c) as f64)
        })
}

/// The gauges of each pool of the manager (none after shutdown).
fn pool_gauges(mgr: &Manager) -> Vec<(&'static str, Gauges)> {
    mgr.read_pool()
        .as_ref()
        .map(BackendPool::gauges)
        .unwrap_or_default()
}

/// Every metric family of a manager, read now (see the README's "Metrics").
pub(super) fn metric_families(mgr: &Manager) -> Vec<Family> {
    let s = &mgr.inner.shared.stats;
    let c = mgr.config();
    let gauges = pool_gauges(mgr);
    let per_pool = |kind, name, help, f: &dyn Fn(&Gauges) -> u32| {
        gauges
            .iter()
            .fold(Family::new(kind, name, help), |fam, (access, g)| {
                fam.number(vec![("access", access.to_string())], f(g))
            })
    };
    let mut connections = Family::new(
        Kind::Gauge,
        "dbmux_connections",
        "Open connections by pool (access) and state: idle in the pool, or in use.",
    );
    for (access, g) in &gauges {
        for (state, n) in [("idle", g.idle), ("in_use", g.open.saturating_sub(g.idle))] {
            connections = connections.number(
                vec![("access", access.to_string()), ("state", state.to_string())],
                n,
            );
        }
    }
    let counter = |help, c: Count| counted(s, help, &[c]);
    let histogram = |help, t: Timing| {
        Family::new(Kind::Histogram, t.family(), help).histogram(vec![], s.timing(t).snapshot())
    };
    let mut closed = Family::new(
        Kind::Counter,
        "dbmux_connections_closed",
        "Connections the pool closed, by reason: recycled (pool_recycle), broken (failed), \
         invalidated (opened before a server failure or role change), overflow (returned to a \
         full pool), shutdown.",
    );
    for why in crate::pool::CloseReason::ALL {
        closed = closed.number(
            vec![("reason", why.as_str().to_string())],
            s.closed_count(why) as f64,
        );
    }
    let connect_errors = s.connect_errors().into_iter().fold(
        Family::new(
            Kind::Counter,
            "dbmux_connect_errors",
            "Failed connection attempts, by dbmux error code (auth_failed, connect_failed, ...).",
        ),
        |f, (code, n)| f.number(vec![("code", code.name().to_string())], n as f64),
    );
    let mut families = vec![
        Family::new(
            Kind::Gauge,
            "dbmux_manager_open",
            "1 while the manager serves checkouts, 0 after shutdown.",
        )
        .number(vec![], u8::from(!mgr.is_closed())),
        connections,
        per_pool(
            Kind::Gauge,
            "dbmux_pool_size",
            "Idle connections the pool keeps (pool_size; DB_READ_POOL_SIZE for reads).",
            &|g| g.keep_idle,
        ),
        per_pool(
            Kind::Gauge,
            "dbmux_pool_max_connections",
            "Connections the pool may open: its pool_size plus max_overflow.",
            &|g| g.max_size,
        ),
        per_pool(
            Kind::Gauge,
            "dbmux_checkouts_waiting",
            "Checkouts waiting in line for a connection now.",
            &|g| g.waiting,
        ),
        per_pool(
            Kind::Gauge,
            "dbmux_connects_in_flight",
            "Connection attempts in flight now (or waiting to retry).",
            &|g| g.connecting,
        ),
        counter("Checkouts served.", Count::Checkouts),
        counter(
            "Checkouts that gave up after pool_timeout.",
            Count::Timeouts,
        ),
        counter("Connections opened.", Count::Opened),
        closed,
        connect_errors,
        counter(
            "Retries of with_retry and transaction_with_retry after a transient error.",
            Count::Retries,
        ),
        counter(
            "Round trips that checked an idle connection on checkout.",
            Count::PrePings,
        ),
        counter(
            "Connections returned inside a transaction and rolled back.",
            Count::Resets,
        ),
        counter(
            "Connections held longer than DB_LEAK_DETECTION_THRESHOLD_MS.",
            Count::LeakWarnings,
        ),
        histogram(
            "How long checkouts waited for a connection (served and timed out).",
            Timing::Acquire,
        ),
        histogram(
            "How long connections stayed checked out, checkout to return.",
            Timing::Hold,
        ),
        histogram(
            "How long connection attempts took (failed ones too).",
            Timing::Connect,
        ),
        histogram(
            "How long statements took, rows read included.",
            Timing::Statement,
        ),
    ];
    if c.backend() == crate::url::Backend::Postgres {
        families.extend(postgres_families(mgr));
    }
    if c.backend() == crate::url::Backend::Sqlite {
        families.extend(sqlite_families(mgr));
    }
    families
}

/// PostgreSQL: reads after writes, and each host with its role.
fn postgres_families(mgr: &Manager) -> Vec<Family> {
    let s = &mgr.inner.shared.stats;
    let mut families = host_families(mgr);
    families.extend([
        counted(
            s,
            "get_read_after checkouts, by what served them: a standby that had replayed the \
             write, or the primary.",
            &[Count::ReadAfterStandby, Count::ReadAfterPrimary],
        ),
        counted(
            s,
            "Read checkouts that left a standby out for lagging more than DB_READ_MAX_LAG.",
            &[Count::ReadLagAvoided],
        ),
    ]);
    families
}

/// PostgreSQL: each host's state and replay lag, as the manager last saw
/// them.
pub(super) fn host_families(mgr: &Manager) -> Vec<Family> {
    let hosts = mgr.hosts();
    let host_labels = |h: &crate::health::HostHealth| {
        let role = match h.role {
            crate::health::HostRole::Primary => "primary",
            crate::health::HostRole::Standby => "standby",
            crate::health::HostRole::Unknown => "unknown",
        };
        vec![
            ("host", format!("{}:{}", h.host, h.port)),
            ("role", role.to_string()),
        ]
    };
    let mut up = Family::new(
        Kind::Gauge,
        "dbmux_host_up",
        "1 when the last connection attempt to the host succeeded, else 0 (down, fenced or not \
         tried yet).",
    );
    let mut lag = Family::new(
        Kind::Gauge,
        "dbmux_host_replay_lag_bytes",
        "A standby's replay lag in bytes of WAL, as last measured.",
    );
    for h in &hosts {
        up = up.number(
            host_labels(h),
            u8::from(h.state == crate::health::HostState::Up),
        );
        if let Some(b) = h.replay_lag_bytes {
            lag = lag.number(host_labels(h), b as f64);
        }
    }
    vec![up, lag]
}

/// SQLite: the writer lane, the WAL and its controller's reader gate.
pub(super) fn sqlite_families(mgr: &Manager) -> Vec<Family> {
    let info = mgr.sqlite_info();
    let i = info.as_ref();
    let gauge = |name, help, v: f64| Family::new(Kind::Gauge, name, help).number(vec![], v);
    let counter =
        |name, help, v: u64| Family::new(Kind::Counter, name, help).number(vec![], v as f64);
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    let lane = mgr.sqlite_lane();
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    let (lane_waits, gate_waits) = (
        lane.as_ref().map(|l| l.waits.snapshot()),
        lane.as_ref().map(|l| l.wal.gate_waits.snapshot()),
    );
    #[cfg(not(all(feature = "sqlite", not(target_arch = "wasm32"))))]
    let (lane_waits, gate_waits) = (None, None);
    let empty = || crate::pool::histogram::Histogram::default().snapshot();
    vec![
        gauge(
            "dbmux_sqlite_wal_bytes",
            "The size of the database's -wal file now.",
            i.and_then(|i| i.wal_bytes).unwrap_or(0) as f64,
        ),
        gauge(
            "dbmux_sqlite_wal_frames",
            "Frames in the WAL after this process's last commit.",
            i.map_or(0, |i| i.wal_frames) as f64,
        ),
        gauge(
            "dbmux_sqlite_lane_waiting",
            "Writers waiting for the database's writer lane now.",
            i.map_or(0, |i| i.lane_waiting) as f64,
        ),
        gauge(
            "dbmux_sqlite_oldest_read_transaction_seconds",
            "The age of the oldest read transaction open on a reader (0: none).",
            i.and_then(|i| i.oldest_read_tx_ms).unwrap_or(0.0) / 1000.0,
        ),
        counter(
            "dbmux_sqlite_checkpoints",
            "Checkpoints of the WAL controller that copied the whole WAL.",
            i.map_or(0, |i| i.checkpoints),
        ),
        counter(
            "dbmux_sqlite_checkpoints_blocked",
            "Reader gate closures that could not empty the WAL (a read outlasted the gate).",
            i.map_or(0, |i| i.checkpoints_blocked),
        ),
        counter(
            "dbmux_sqlite_reader_gate_closures",
            "Times the reader gate closed because the WAL grew past DB_SQLITE_WAL_SOFT_LIMIT.",
            i.map_or(0, |i| i.gate_closures),
        ),
        counter(
            "dbmux_sqlite_long_read_transactions",
            "Read transactions logged for lasting longer than DB_SQLITE_MAX_READ_TX.",
            i.map_or(0, |i| i.long_read_tx_warnings),
        ),
        Family::new(
            Kind::Histogram,
            crate::pool::SQLITE_LANE_WAIT,
            "How long writers waited for the database's writer lane (every manager of the \
             process on the file).",
        )
        .histogram(vec![], lane_waits.unwrap_or_else(empty)),
        Family::new(
            Kind::Histogram,
            crate::pool::SQLITE_GATE_WAIT,
            "How long read transactions waited at the closed reader gate.",
        )
        .histogram(vec![], gate_waits.unwrap_or_else(empty)),
    ]
}
