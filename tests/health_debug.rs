//! Health and debug info: real checks, the JSON field names people migrating
//! from the seed projects rely on, caching, and unreachable databases.

use std::time::Duration;

use dbmux::{params, Config, Manager};

fn keys(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn health_json_has_the_seed_field_names_and_real_values() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::from_url(&format!("sqlite:///{}/h.db", dir.path().display())).unwrap();
    let h = mgr.check_health();
    assert!(h.is_healthy(), "{h:?}");
    let json = h.to_json();
    for k in [
        "status",
        "database_type",
        "version",
        "sqlite_version",
        "timestamp",
        "latency_ms",
        "message",
        "pool_status",
    ] {
        assert!(
            keys(&json).contains(&k.to_string()),
            "{k} missing from {json}"
        );
    }
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["status"], "healthy");
    assert_eq!(v["database_type"], "sqlite");
    assert_eq!(v["version"], dbmux::sqlite::rusqlite::version());
    // the library dbmux runs on, and the database's own answer, agree
    assert_eq!(v["sqlite_version"], dbmux::sqlite_version());
    assert!(v["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(v["timestamp"].as_str().unwrap().ends_with('Z'));
    let mut pool_keys: Vec<_> = v["pool_status"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    pool_keys.sort();
    assert_eq!(
        pool_keys,
        [
            "checked_in",
            "checked_out",
            "max_overflow",
            "overflow",
            "pool_size"
        ]
    );
    assert_eq!(v["pool_status"]["pool_size"], 5);
    assert_eq!(v["pool_status"]["checked_in"], 1);
}

#[test]
fn health_is_cached_for_the_interval_and_can_be_forced() {
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .health_check_interval(Duration::from_secs(60))
            .build()
            .unwrap(),
    )
    .unwrap();
    let a = mgr.health();
    let checkouts = mgr.debug_info().session_creation_count;
    std::thread::sleep(Duration::from_millis(5));
    let b = mgr.health();
    assert_eq!(
        a.timestamp, b.timestamp,
        "second call within the interval is cached"
    );
    assert_eq!(
        mgr.debug_info().session_creation_count,
        checkouts,
        "no new query ran"
    );
    let c = mgr.check_health();
    assert_ne!(a.timestamp, c.timestamp);
    assert_eq!(
        mgr.debug_info().session_creation_count,
        checkouts + 1,
        "a real query ran"
    );

    let nocache = Manager::new(
        Config::builder()
            .url(":memory:")
            .health_check_interval(Duration::ZERO)
            .build()
            .unwrap(),
    )
    .unwrap();
    nocache.health();
    nocache.health();
    assert_eq!(nocache.debug_info().session_creation_count, 2);
}

#[test]
fn unreachable_database_is_unhealthy_with_a_message_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(format!(
                "sqlite:///{}/missing/dir/x.db",
                dir.path().display()
            ))
            .pool_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
    .unwrap();
    let h = mgr.check_health();
    assert_eq!(h.status, dbmux::health::HealthStatus::Unhealthy);
    assert_eq!(h.version, None);
    // the library is known even when the file cannot be opened
    assert_eq!(h.sqlite_version.as_deref(), Some(dbmux::sqlite_version()));
    assert_eq!(h.error_code.map(|c| c.name()), Some("connect_failed"));
    assert!(
        h.message.contains("unable to open database file"),
        "{}",
        h.message
    );
    // after shutdown: unhealthy, says so
    mgr.shutdown();
    let h = mgr.check_health();
    assert_eq!(h.error_code.map(|c| c.name()), Some("manager_closed"));
}

#[test]
fn debug_info_has_the_seed_names_and_counters_move() {
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .pool_size(2)
            .max_overflow(1)
            .worker_id("gw7")
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (x)", params![]).unwrap();
    let held: Vec<_> = (0..3).map(|_| mgr.get().unwrap()).collect();
    let d = mgr.debug_info();
    assert_eq!((d.pool_checked_out, d.pool_overflow), (3, 1));
    drop(held);
    let d = mgr.debug_info();
    let json = d.to_json();
    let expected = [
        "worker_id",
        "process_id",
        "thread_id",
        "engine_creation_count",
        "session_creation_count",
        "connection_failures",
        "engine_initialized",
        "pool_size",
        "pool_checked_out",
        "pool_checked_in",
        "pool_overflow",
        "pool_invalidated",
        "checkout_timeouts",
        "total_wait_ms",
        "max_wait_ms",
        "connections_opened",
        "connections_closed",
        "backend",
        "url",
    ];
    for k in expected {
        assert!(
            keys(&json).contains(&k.to_string()),
            "{k} missing from {json}"
        );
    }
    assert_eq!(d.worker_id, "gw7");
    assert_eq!(d.process_id, std::process::id());
    assert!(d.engine_creation_count >= 1);
    assert_eq!(d.session_creation_count, 4);
    assert_eq!(d.connections_opened, 3);
    assert_eq!(
        d.connections_closed, 1,
        "the overflow connection was closed on return"
    );
    assert_eq!(
        (d.pool_checked_in, d.pool_checked_out, d.pool_overflow),
        (2, 0, 0)
    );
    assert!(d.engine_initialized);
    assert_eq!(d.backend, dbmux::url::Backend::Sqlite);
    assert_eq!(d.url, "sqlite::memory:");
    assert_eq!(d.connection_failures, 0);
}

#[test]
fn worker_id_comes_from_the_environment() {
    let c = Config::builder()
        .url(":memory:")
        .with_env_lookup(|k| (k == "PYTEST_XDIST_WORKER").then(|| "gw2".to_string()))
        .build()
        .unwrap();
    assert_eq!(Manager::new(c).unwrap().debug_info().worker_id, "gw2");
}
