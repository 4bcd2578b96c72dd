//! The process-wide manager. These tests share process state (the global
//! manager, environment variables), so each takes the same lock.

use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use dbmux::{params, Config, ErrorCode};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn sixty_four_threads_racing_on_first_use_create_exactly_one_manager() {
    let _g = serial();
    dbmux::shutdown();
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DATABASE_URL",
        format!("sqlite:///{}/race.db", dir.path().display()),
    );
    assert!(!dbmux::is_initialized());
    let created_before = dbmux::Manager::from_url(":memory:")
        .unwrap()
        .debug_info()
        .engine_creation_count;

    let barrier = Arc::new(Barrier::new(64));
    let handles: Vec<_> = (0..64)
        .map(|_| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                dbmux::global().unwrap()
            })
        })
        .collect();
    let managers: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let first = &managers[0];
    // exactly one manager was created by the race (the counter moved by one)
    assert_eq!(first.debug_info().engine_creation_count, created_before + 1);
    // and all 64 threads got that same manager (they share one pool)
    first.execute("CREATE TABLE t (x)", params![]).unwrap();
    for m in &managers {
        m.execute("INSERT INTO t VALUES (1)", params![]).unwrap();
    }
    assert_eq!(
        first
            .query_scalar::<i64>("SELECT count(*) FROM t", params![])
            .unwrap(),
        64
    );
    assert_eq!(first.debug_info().session_creation_count, 66);
    dbmux::shutdown();
    std::env::remove_var("DATABASE_URL");
}

#[test]
fn init_sets_the_global_once_and_shutdown_allows_a_fresh_one() {
    let _g = serial();
    dbmux::shutdown();
    let m = dbmux::init(Config::from_url(":memory:").unwrap()).unwrap();
    m.execute("CREATE TABLE t (x)", params![]).unwrap();
    assert!(dbmux::is_initialized());
    // global() returns the initialised manager: the table is there
    dbmux::global()
        .unwrap()
        .execute("INSERT INTO t VALUES (1)", params![])
        .unwrap();

    let e = dbmux::init(Config::from_url(":memory:").unwrap()).unwrap_err();
    assert_eq!(e.code(), ErrorCode::AlreadyInitialized);
    assert!(e.to_string().contains("dbmux::shutdown()"), "{e}");

    dbmux::shutdown();
    assert!(!dbmux::is_initialized());
    assert_eq!(m.get().unwrap_err().code(), ErrorCode::ManagerClosed);
    // the next global() builds a fresh manager (the "reconnect")
    let dir = tempfile::tempdir().unwrap();
    std::env::set_var(
        "DATABASE_URL",
        format!("sqlite:///{}/fresh.db", dir.path().display()),
    );
    let fresh = dbmux::global().unwrap();
    assert!(!fresh.is_closed());
    assert!(fresh.config().redacted_url().ends_with("fresh.db"));
    fresh.execute("CREATE TABLE u (y)", params![]).unwrap();
    dbmux::shutdown();
    std::env::remove_var("DATABASE_URL");
}

#[test]
fn a_bad_environment_gives_an_error_and_an_unhealthy_report_without_secrets() {
    let _g = serial();
    dbmux::shutdown();
    // port 1 on loopback: nothing listens, the refusal is immediate
    std::env::set_var(
        "DATABASE_URL",
        "postgresql://svc:Gl0bal-Secret@127.0.0.1:1/app",
    );
    std::env::set_var("DB_POOL_TIMEOUT", "0.5");
    let h = dbmux::health();
    assert!(!h.is_healthy());
    let json = h.to_json();
    assert!(json.contains("svc:***@127.0.0.1:1"), "{json}");
    assert!(!json.contains("Gl0bal-Secret"));
    #[cfg(feature = "postgres")]
    {
        assert_eq!(
            h.error_code.map(|c| c.name()),
            Some("connect_failed"),
            "{json}"
        );
        let d = dbmux::debug_info().unwrap();
        assert!(!d.to_json().contains("Gl0bal-Secret"));
        assert!(d.connection_failures >= 1);
    }
    #[cfg(not(feature = "postgres"))]
    {
        assert_eq!(h.error_code.map(|c| c.name()), Some("feature_disabled"));
        let e = dbmux::debug_info().unwrap_err();
        assert!(!format!("{e} {e:?}").contains("Gl0bal-Secret"));
    }
    dbmux::shutdown();
    std::env::remove_var("DB_POOL_TIMEOUT");

    std::env::set_var("DATABASE_URL", "sqlite::memory:");
    std::env::set_var("DB_POOL_SIZE", "many");
    let e = dbmux::global().unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(e.to_string().contains("DB_POOL_SIZE = 'many'"), "{e}");
    // a manager that could not be built: typed fields, today's JSON
    let h = dbmux::health();
    assert_eq!(h.status, dbmux::health::HealthStatus::Unhealthy);
    assert_eq!(h.database_type, None);
    assert_eq!(h.error_code, Some(ErrorCode::InvalidConfig));
    let v: serde_json::Value = serde_json::from_str(&h.to_json()).unwrap();
    assert_eq!(v["status"], "unhealthy");
    assert_eq!(v["database_type"], "unknown");
    assert_eq!(v["error_code"], "invalid_config");
    std::env::remove_var("DB_POOL_SIZE");
    std::env::remove_var("DATABASE_URL");
    assert!(!dbmux::is_initialized());
}
