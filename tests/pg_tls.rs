//! TLS with libpq's exact sslmode rules, against the real servers of
//! scripts/with-test-postgres.sh: every sslmode with the right root, a wrong
//! root and none, against a server that requires TLS, one where it is
//! optional and one without it; and libpq's default files in
//! `~/.postgresql` (root.crt, postgresql.crt, postgresql.key).
//!
//! The expected table is what psql 15 answers for the same cases. The test
//! changes HOME, so it is alone in this file (its own process).
#![cfg(feature = "tls")]

mod common;

use std::time::Duration;

use dbmux::{params, ErrorCode, Manager};

use common::pg;

/// Connects once: Ok(encrypted, as pg_stat_ssl says) or the error.
fn try_connect(url: &str) -> dbmux::Result<bool> {
    common::try_connect(url, Duration::from_millis(1000))
}

/// `t`: connects with TLS, `f`: connects without, `x`: refused.
fn outcome(r: &dbmux::Result<bool>) -> char {
    match r {
        Ok(true) => 't',
        Ok(false) => 'f',
        Err(_) => 'x',
    }
}

#[test]
fn every_sslmode_follows_libpq_with_right_wrong_and_no_root() {
    let Some(pg) = pg() else { return };
    let home = tempfile::tempdir().unwrap();
    // a HOME without ~/.postgresql: "no root" really means none
    std::env::set_var("HOME", home.path());
    let right = format!("{}/ca.crt", pg.certs);
    let wrong = format!("{}/wrong-ca.crt", pg.certs);
    // (server, role, port) and, per sslmode, the outcome with the right
    // root, a wrong root and none, as psql 15 gives it
    let servers = [
        ("TLS required", "sslonly", pg.port.as_str()),
        ("TLS optional", "dbmux", pg.port.as_str()),
        ("no TLS", "dbmux", pg.plain_port.as_str()),
    ];
    let expected: [[&str; 6]; 3] = [
        // disable allow prefer require verify-ca verify-full
        ["xxx", "txt", "txt", "txt", "txx", "txx"],
        ["fff", "fff", "tft", "txt", "txx", "txx"],
        ["fff", "fff", "fff", "xxx", "xxx", "xxx"],
    ];
    let modes = [
        "disable",
        "allow",
        "prefer",
        "require",
        "verify-ca",
        "verify-full",
    ];
    let mut failures = Vec::new();
    for (s, (server, role, port)) in servers.iter().enumerate() {
        for (m, mode) in modes.iter().enumerate() {
            let want: Vec<char> = expected[s][m].chars().collect();
            for (r, root) in [Some(&right), Some(&wrong), None].into_iter().enumerate() {
                let mut url = format!(
                    "postgresql://{role}:{}@localhost:{port}/dbmux_test?sslmode={mode}",
                    pg.password
                );
                if let Some(root) = root {
                    url.push_str(&format!("&sslrootcert={root}"));
                }
                let got = try_connect(&url);
                if let Err(e) = &got {
                    assert!(!e.to_string().contains(&pg.password), "password in {e}");
                }
                if outcome(&got) != want[r] {
                    failures.push(format!(
                        "{server}, sslmode={mode}, root {}: expected {}, got {got:?}",
                        ["right", "wrong", "none"][r],
                        want[r]
                    ));
                }
            }
        }
    }
    // verify-full checks the host name: the certificate names localhost only
    let ip = format!(
        "postgresql://dbmux:{}@127.0.0.1:{}/dbmux_test?sslmode=verify-full&sslrootcert={right}",
        pg.password, pg.port
    );
    if outcome(&try_connect(&ip)) != 'x' {
        failures.push("verify-full accepted 127.0.0.1 for a certificate of localhost".into());
    }
    let ip = ip.replace("verify-full", "verify-ca");
    if outcome(&try_connect(&ip)) != 't' {
        failures.push("verify-ca refused 127.0.0.1 (it does not check names)".into());
    }
    // a root file named but missing: only the verify modes care
    let missing = format!(
        "postgresql://dbmux:{}@localhost:{}/dbmux_test?sslmode=require&sslrootcert=/no/such/ca.pem",
        pg.password, pg.port
    );
    if outcome(&try_connect(&missing)) != 't' {
        failures.push("require with a missing root file should connect unverified".into());
    }
    let e = try_connect(&missing.replace("require", "verify-ca")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(
        e.to_string().contains("/no/such/ca.pem\" does not exist"),
        "{e}"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));

    // libpq's default files in ~/.postgresql
    let dot = home.path().join(".postgresql");
    std::fs::create_dir(&dot).unwrap();
    let url = |role: &str, host: &str, mode: &str| {
        format!(
            "postgresql://{role}:{}@{host}:{}/dbmux_test?sslmode={mode}",
            pg.password, pg.port
        )
    };
    std::fs::copy(&wrong, dot.join("root.crt")).unwrap();
    // a wrong default root: prefer and allow verify too, and fall back to
    // plaintext where the server allows it; require refuses
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "localhost", "prefer"))),
        'f'
    );
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "localhost", "allow"))),
        'f'
    );
    assert_eq!(
        outcome(&try_connect(&url("sslonly", "localhost", "prefer"))),
        'x'
    );
    let e = try_connect(&url("dbmux", "localhost", "require")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TlsFailed);
    assert_eq!(
        e.to_string().matches("certificate verify failed").count(),
        1,
        "the cause is told once: {e}"
    );
    std::fs::copy(&right, dot.join("root.crt")).unwrap();
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "localhost", "require"))),
        't'
    );
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "localhost", "verify-full"))),
        't'
    );
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "127.0.0.1", "verify-full"))),
        'x'
    );
    // the default client certificate and key
    assert_eq!(
        outcome(&try_connect(&url("certuser", "localhost", "require"))),
        'x'
    );
    std::fs::copy(
        format!("{}/client.crt", pg.certs),
        dot.join("postgresql.crt"),
    )
    .unwrap();
    std::fs::copy(
        format!("{}/client.key", pg.certs),
        dot.join("postgresql.key"),
    )
    .unwrap();
    let mgr = Manager::from_url(&url("certuser", "localhost", "verify-full")).unwrap();
    assert_eq!(
        mgr.query_scalar::<String>("SELECT current_user::text", params![])
            .unwrap(),
        "certuser"
    );
    mgr.shutdown();
    // a certificate without its key: require refuses to start, prefer goes on without TLS
    std::fs::remove_file(dot.join("postgresql.key")).unwrap();
    let e = try_connect(&url("dbmux", "localhost", "require")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(
        e.to_string()
            .contains("certificate present, but not private key file"),
        "{e}"
    );
    assert_eq!(
        outcome(&try_connect(&url("dbmux", "localhost", "prefer"))),
        'f'
    );
}
