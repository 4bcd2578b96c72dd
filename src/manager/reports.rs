//! The health report and debug info of a manager, filled from its config,
//! the pool's snapshot and the counters.

use std::sync::atomic::Ordering::Relaxed;

use super::{Manager, MANAGERS_CREATED};
use crate::health::{DebugInfo, HealthReport, HealthStatus};
use crate::platform::Instant;

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
    DebugInfo {
        worker_id: c.worker_id().to_string(),
        process_id: crate::platform::process_id(),
        thread_id: thread_number(),
        backend: c.backend(),
        url: c.redacted_url(),
        profile: c.profile(),
        engine_creation_count: MANAGERS_CREATED.load(Relaxed),
        session_creation_count: s.checkouts.load(Relaxed),
        connection_failures: s.failures.load(Relaxed),
        last_connection_error: s.last_error(),
        engine_initialized: !mgr.is_closed(),
        pool_size: pool.pool_size,
        pool_max_overflow: pool.max_overflow,
        pool_checked_out: pool.checked_out,
        pool_checked_in: pool.checked_in,
        pool_overflow: pool.overflow,
        pool_invalidated: s.invalidated.load(Relaxed),
        pool_recycled: s.recycled.load(Relaxed),
        checkout_timeouts: s.timeouts.load(Relaxed),
        total_wait_ms: s.wait_total_us.load(Relaxed) as f64 / 1000.0,
        max_wait_ms: s.wait_time.max_ms(),
        wait_p50_ms: s.wait_time.quantile_ms(0.5),
        wait_p99_ms: s.wait_time.quantile_ms(0.99),
        hold_p50_ms: s.hold_time.quantile_ms(0.5),
        hold_p99_ms: s.hold_time.quantile_ms(0.99),
        threads_waiting: s.waiting.load(Relaxed),
        connects_in_flight: s.connecting.load(Relaxed),
        connect_last_ms: s.connect_last_us.load(Relaxed) as f64 / 1000.0,
        connect_max_ms: s.connect_time.max_ms(),
        connections_opened: s.opened.load(Relaxed),
        connections_closed: s.closed.load(Relaxed),
        resets_on_return: s.resets.load(Relaxed),
        pre_pings: s.pre_pings.load(Relaxed),
        retries: s.retries.load(Relaxed),
        read_after_standby: s.read_after_standby.load(Relaxed),
        read_after_primary: s.read_after_primary.load(Relaxed),
        read_lag_avoided: s.read_lag_avoided.load(Relaxed),
        long_held: mgr
            .inner
            .shared
            .leaks
            .as_ref()
            .map(|d| d.long_held())
            .unwrap_or_default(),
        leak_warnings: mgr.inner.shared.leaks.as_ref().map_or(0, |d| d.warnings()),
        sqlite: mgr.sqlite_info(),
    }
}
