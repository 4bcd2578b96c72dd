//! Log lines (connect check, echo) and the rule that no password appears in
//! any Display, Debug, error, log line, health or debug JSON.

mod common;

use std::sync::Mutex;
use std::time::Duration;

use dbmux::{params, Config, ConfigBuilder, Manager};

static SERIAL: Mutex<()> = Mutex::new(());

fn capture() -> std::sync::MutexGuard<'static, ()> {
    let g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    common::logs::capture();
    g
}

fn lines() -> Vec<String> {
    common::logs::lines()
}

#[test]
fn connect_check_logs_one_info_line_with_backend_path_and_sizes() {
    let _g = capture();
    let dir = tempfile::tempdir().unwrap();
    let mgr = Manager::new(
        Config::builder()
            .url(format!("sqlite:///{}/cc.db", dir.path().display()))
            .pool_size(3)
            .max_overflow(2)
            .build()
            .unwrap(),
    )
    .unwrap();
    let version = mgr.connect_check().unwrap();
    assert_eq!(version, dbmux::sqlite::rusqlite::version());
    let info: Vec<_> = lines()
        .into_iter()
        .filter(|l| l.starts_with("INFO dbmux ") && l.contains("connected"))
        .collect();
    assert_eq!(info.len(), 1, "{info:?}");
    let l = &info[0];
    assert!(l.contains("backend=sqlite"), "{l}");
    assert!(
        l.contains(&format!("{}/cc.db", dir.path().display())),
        "{l}"
    );
    assert!(
        l.contains("pool_size=3") && l.contains("max_overflow=2"),
        "{l}"
    );
}

#[test]
fn echo_logs_sql_and_duration_but_never_parameters() {
    let _g = capture();
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .echo(true)
            .build()
            .unwrap(),
    )
    .unwrap();
    mgr.execute("CREATE TABLE t (secret TEXT)", params![])
        .unwrap();
    mgr.execute("INSERT INTO t VALUES (?)", params!["param-value-XYZ"])
        .unwrap();
    let sql: Vec<_> = lines()
        .into_iter()
        .filter(|l| l.contains("dbmux::sql"))
        .collect();
    assert!(
        sql.iter()
            .any(|l| l.contains("INSERT INTO t VALUES (?)") && l.contains(" ms]")),
        "{sql:?}"
    );
    assert!(!lines().iter().any(|l| l.contains("param-value-XYZ")));

    // echo off: no SQL lines
    common::logs::clear();
    let quiet = Manager::from_url(":memory:").unwrap();
    quiet.execute("SELECT 1", params![]).unwrap();
    assert!(!lines().iter().any(|l| l.contains("dbmux::sql")));
}

#[test]
fn a_password_never_appears_anywhere() {
    let _g = capture();
    const SECRET: &str = "Pw-9f3c1e-unique";
    let urls = [
        format!("postgresql://app:{SECRET}@127.0.0.1:1/app"),
        format!("postgres+asyncpg://app:{SECRET}@127.0.0.1:1/app?sslmode=require"),
        format!("postgres://127.0.0.1:1/app?password={SECRET}&sslmode=disable"),
        format!("host=127.0.0.1 port=1 password={SECRET} dbname=app"),
        format!("host=127.0.0.1 port=1 password='{SECRET}' dbname=app"),
        format!("postgres:/app:{SECRET}@127.0.0.1:1/app"),
        format!("app:{SECRET}@127.0.0.1:1/app"),
        format!("mysql://app:{SECRET}@127.0.0.1:1/app"),
        format!("sqlite://app:{SECRET}@/x.db"),
    ];
    let mut seen = String::new();
    for url in &urls {
        match dbmux::url::parse_url(url) {
            Ok(t) => seen += &format!("{t} {t:?}\n"),
            Err(e) => seen += &format!("{e} {e:?}\n"),
        }
        // port 1 on loopback: refused at once, nothing leaves the machine
        match Config::builder()
            .url(url.clone())
            .pool_timeout(Duration::from_millis(300))
            .build()
        {
            Ok(c) => {
                seen += &format!("{c} {c:?} {}\n", c.redacted_url());
                match Manager::new(c) {
                    Ok(m) => {
                        seen += &format!(
                            "{m:?} {} {}\n",
                            m.check_health().to_json(),
                            m.debug_info().to_json()
                        );
                    }
                    Err(e) => seen += &format!("{e} {e:?} {:?}\n", std::error::Error::source(&e)),
                }
            }
            Err(e) => seen += &format!("{e} {e:?}\n"),
        }
        let b: ConfigBuilder = Config::builder().url(url.clone());
        seen += &format!("{b:?}\n");
        seen += &dbmux::url::redact(url);
        let env_url = url.clone();
        let from_env = Config::builder()
            .with_env_lookup(move |k| (k == "DATABASE_URL").then(|| env_url.clone()))
            .pool_timeout(Duration::from_millis(100))
            .build();
        seen += &format!("{from_env:?}\n");
    }
    seen += &lines().join("\n");
    assert!(seen.contains("***"), "redaction marker expected:\n{seen}");
    assert_eq!(
        seen.matches(SECRET).count(),
        0,
        "the password leaked:\n{seen}"
    );
}

#[test]
fn leaked_connections_are_reported_once_with_the_checkout_backtrace() {
    let _g = capture();
    let mgr = Manager::new(
        Config::builder()
            .url(":memory:")
            .leak_detection_threshold(Some(Duration::from_millis(100)))
            .build()
            .unwrap(),
    )
    .unwrap();
    let quick = mgr.get().unwrap();
    drop(quick); // returned at once: never reported
    let held = mgr.get().unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let d = mgr.debug_info();
    assert_eq!(d.long_held.len(), 1, "{d:?}");
    assert!(d.long_held[0].age_ms >= 300.0, "{d:?}");
    assert_eq!(d.leak_warnings, 1, "logged once, not once per scan");
    let warns: Vec<_> = lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN dbmux::leak"))
        .collect();
    assert_eq!(warns.len(), 1, "{warns:?}");
    assert!(warns[0].contains("has been held for"), "{}", warns[0]);
    assert!(
        warns[0].contains("leaked_connections_are_reported_once_with_the_checkout_backtrace"),
        "the backtrace names the code that checked the connection out: {}",
        warns[0]
    );
    drop(held);
    assert!(mgr.debug_info().long_held.is_empty());
    // off by default: nothing tracked
    let plain = Manager::from_url(":memory:").unwrap();
    let c = plain.get().unwrap();
    std::thread::sleep(Duration::from_millis(50));
    assert!(plain.debug_info().long_held.is_empty());
    drop(c);
}
