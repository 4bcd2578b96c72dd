//! The `dbmux` binary: exit codes (pg_isready's for `health`), table output,
//! JSON output.

use std::process::{Command, Output};

fn dbmux(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dbmux"));
    cmd.args(args).current_dir(dir);
    for (k, _) in std::env::vars() {
        if k == "DATABASE_URL" || k.starts_with("DB_") || k == "APP_ENV" {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn health_exit_codes_follow_pg_isready() {
    let dir = tempfile::tempdir().unwrap();
    // the embedded default, no configuration at all
    let out = dbmux(dir.path(), &["health", "--json"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "healthy");
    assert!(v["database"].as_str().unwrap().ends_with("/dbmux.db"));
    assert!(dir.path().join("dbmux.db").exists());

    // no response: a database that cannot be opened
    let out = dbmux(
        dir.path(),
        &["health", "--url", "sqlite:////nonexistent-dir/x/y.db"],
        &[("DB_POOL_TIMEOUT", "0.3")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).starts_with("unhealthy"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains("unable to open database file"));

    // invalid parameters: a bad URL, a bad setting, a bad option
    let out = dbmux(dir.path(), &["health", "--url", "mysql://u:pw@h/db"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("unsupported database URL scheme 'mysql:'"));
    let out = dbmux(dir.path(), &["health"], &[("DB_POOL_SIZE", "x")]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("DB_POOL_SIZE = 'x'"));
    let out = dbmux(dir.path(), &["health", "--bogus"], &[]);
    assert_eq!(out.status.code(), Some(3));
    let out = dbmux(dir.path(), &["frobnicate"], &[]);
    assert_eq!(out.status.code(), Some(3));
    // an unreachable PostgreSQL server (loopback port 1): no response, and no password shown
    let out = dbmux(
        dir.path(),
        &["health", "--url", "postgres://u:TopSecret1@127.0.0.1:1/db"],
        &[("DB_POOL_TIMEOUT", "0.5")],
    );
    assert_eq!(
        out.status.code(),
        Some(if cfg!(feature = "postgres") { 2 } else { 3 })
    );
    assert!(!text(&out.stdout).contains("TopSecret1"));
    assert!(!text(&out.stderr).contains("TopSecret1"));
}

#[test]
fn sql_prints_a_table_and_binds_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}/cli.db", dir.path().display());
    let run = |args: &[&str]| {
        let mut a = vec!["sql", "--url", url.as_str()];
        a.extend_from_slice(args);
        dbmux(dir.path(), &a, &[])
    };
    let out = run(&["CREATE TABLE t (id INTEGER, name TEXT, score REAL)"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0 row(s) affected\n");
    let out = run(&[
        "INSERT INTO t VALUES (?, ?, ?), (?, ?, ?)",
        "1",
        "ann",
        "9.5",
        "2",
        "bob",
        "NULL",
    ]);
    assert_eq!(text(&out.stdout), "2 row(s) affected\n");
    let out = run(&[
        "SELECT id, name, score FROM t WHERE id >= ? ORDER BY id",
        "1",
    ]);
    assert_eq!(
        text(&out.stdout),
        "id | name | score\n---+------+------\n1  | ann  | 9.5\n2  | bob  | NULL\n(2 rows)\n"
    );
    // typed binding: '1' bound as an integer matches, as text would not
    let out = run(&[
        "SELECT typeof(?), typeof(?), typeof(?), typeof(?)",
        "7",
        "7.5",
        "x",
        "NULL",
    ]);
    assert!(
        text(&out.stdout).contains("integer   | real      | text      | null\n"),
        "{}",
        text(&out.stdout)
    );
    // a SQL error exits 1 with the message
    let out = run(&["SELECT * FROM missing"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no such table: missing"));
    // JSON output
    let out = dbmux(
        dir.path(),
        &[
            "sql",
            "--json",
            "--url",
            &url,
            "SELECT count(*) AS n FROM t",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["rows"][0]["n"], 2);
}

#[test]
fn info_prints_debug_json() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbmux(
        dir.path(),
        &["info", "--json"],
        &[("DB_PROFILE", "production")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["pool_size"], 10);
    assert_eq!(v["pool_max_overflow"], 20);
    assert_eq!(v["profile"], "production");
    let out = dbmux(dir.path(), &["info"], &[]);
    assert!(text(&out.stdout).contains("engine_initialized"));
    let out = dbmux(dir.path(), &["--version"], &[]);
    assert_eq!(
        text(&out.stdout),
        format!("dbmux {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn metrics_prints_the_prometheus_text_after_one_check() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbmux(dir.path(), &["metrics"], &[("DB_POOL_NAME", "cli-test")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("# TYPE dbmux_checkouts_total counter\n"), "{t}");
    // the health check's checkout, and its connection
    assert!(
        t.contains("dbmux_checkouts_total{pool=\"cli-test\",backend=\"sqlite\"} 1\n"),
        "{t}"
    );
    assert!(t.contains("dbmux_connect_seconds_count{pool=\"cli-test\",backend=\"sqlite\"} 1\n"));
    assert!(!t.contains("# EOF"));
    let out = dbmux(dir.path(), &["metrics", "--openmetrics"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let t = text(&out.stdout);
    assert!(
        t.contains("# TYPE dbmux_checkouts counter\n") && t.ends_with("# EOF\n"),
        "{t}"
    );
    // no response: the metrics still print (the failed attempt counted), exit 2
    let out = dbmux(
        dir.path(),
        &[
            "metrics",
            "--url",
            "postgresql://app:Cli-Secret-Pw@127.0.0.1:1/db",
        ],
        &[("DB_POOL_TIMEOUT", "0.3"), ("DB_CONNECT_TIMEOUT", "0.3")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.contains("dbmux_connect_errors_total{"), "{t}");
    assert!(t.contains("code=\"connect_failed\"}"), "{t}");
    assert!(!t.contains("Cli-Secret-Pw") && !text(&out.stderr).contains("Cli-Secret-Pw"));
    // bad arguments
    let out = dbmux(dir.path(), &["metrics", "--json"], &[]);
    assert_eq!(out.status.code(), Some(3));
    let out = dbmux(dir.path(), &["info", "--openmetrics"], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("--openmetrics is an option of metrics"));
}

#[test]
fn parse_url_shows_how_a_url_is_understood() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbmux(
        dir.path(),
        &["parse-url", "postgresql+psycopg://app:Hidden-Pw@db1:5432,db2:5433/app?sslmode=verify-full&options=-c%20statement_timeout%3D5s", "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("Hidden-Pw"));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "postgresql");
    assert_eq!(v["host"], "db1,db2");
    assert_eq!(v["port"], "5432,5433");
    assert_eq!(v["dbname"], "app");
    assert_eq!(v["user"], "app");
    assert_eq!(v["password"], "***");
    assert_eq!(v["sslmode"], "verify-full");
    assert_eq!(v["options"], "-c statement_timeout=5s");

    let out = dbmux(
        dir.path(),
        &[
            "parse-url",
            "sqlite:///rel/app.db?mode=ro&busy_timeout=250",
            "--json",
        ],
        &[],
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(
        v["path"],
        dir.path()
            .canonicalize()
            .unwrap()
            .join("rel/app.db")
            .display()
            .to_string()
    );
    assert_eq!(v["mode"], "ro");
    assert_eq!(v["busy_timeout"], 250);
    assert_eq!(
        v["journal_mode"],
        serde_json::Value::Null,
        "no WAL switch on a read-only file"
    );

    for bad in [
        "postgresql://h/db?bogus=1",
        "mysql://x",
        "",
        "postgresql://h:99999/db",
    ] {
        let out = dbmux(dir.path(), &["parse-url", bad], &[]);
        assert_eq!(out.status.code(), Some(3), "{bad:?}");
        assert!(!text(&out.stderr).is_empty());
    }
}

/// `dbmux health` on a multi-host URL shows every host with its role and
/// state (the replicated set of scripts/with-test-replicas.sh, and a closed
/// port), in text and in JSON.
#[cfg(feature = "postgres")]
#[test]
fn health_shows_every_host_with_its_role() {
    let Ok(primary) = std::env::var("DBMUX_TEST_REPL_PRIMARY_PORT") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI: the replicated set is missing (scripts/with-test-replicas.sh)"
        );
        eprintln!("skipped: no replicated set (run under scripts/with-test-replicas.sh)");
        return;
    };
    let standby = std::env::var("DBMUX_TEST_REPL_STANDBY_PORT").unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!(
        "postgresql://dbmux@127.0.0.1:{primary},127.0.0.1:{standby},127.0.0.1:{closed}/dbmux_test?sslmode=disable"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dbmux(dir.path(), &["health", "--url", &url], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let lines = text(&out.stdout);
    assert!(
        lines.contains(&format!("127.0.0.1:{primary} primary up timeline=")),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("127.0.0.1:{standby} standby up replay_lag=")),
        "{lines}"
    );
    assert!(
        lines.contains(&format!("127.0.0.1:{closed} unknown down (")),
        "{lines}"
    );
    let out = dbmux(dir.path(), &["health", "--json", "--url", &url], &[]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let hosts = v["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 3);
    assert_eq!(hosts[0]["role"], "primary");
    assert_eq!(hosts[1]["role"], "standby");
    assert_eq!(hosts[2]["state"], "down");
    assert!(hosts[2]["last_error"].as_str().unwrap().contains("refused"));
}

/// `dbmux backup` and `dbmux restore` on a real file.
#[cfg(feature = "sqlite")]
#[test]
fn backup_and_restore_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("app.db");
    let url = format!("sqlite:///{}", db.display());
    let out = dbmux(
        dir.path(),
        &["sql", "--url", &url, "CREATE TABLE t (x INTEGER)"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    dbmux(
        dir.path(),
        &["sql", "--url", &url, "INSERT INTO t VALUES (?)", "41"],
        &[],
    );
    let copy = dir.path().join("copy.db");
    let copy_s = copy.display().to_string();
    let out = dbmux(
        dir.path(),
        &["backup", "--url", &url, &copy_s, "--json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["path"], copy_s.as_str());
    assert!(v["bytes"].as_u64().unwrap() > 0);
    // again without --overwrite: refused (exit 3), with it: done
    let out = dbmux(dir.path(), &["backup", "--url", &url, &copy_s], &[]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("overwrite"));
    let out = dbmux(
        dir.path(),
        &["backup", "--url", &url, &copy_s, "--overwrite", "--compact"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("compacted"));
    // change the database, then restore the copy
    dbmux(dir.path(), &["sql", "--url", &url, "DELETE FROM t"], &[]);
    let out = dbmux(dir.path(), &["restore", "--url", &url, &copy_s], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = dbmux(dir.path(), &["sql", "--url", &url, "SELECT x FROM t"], &[]);
    assert!(text(&out.stdout).contains("41"), "{}", text(&out.stdout));
    // a bad source: exit 3, nothing changed
    let out = dbmux(
        dir.path(),
        &["restore", "--url", &url, "/nonexistent/x.db"],
        &[],
    );
    assert_eq!(out.status.code(), Some(3));
    let out = dbmux(dir.path(), &["health", "--compact"], &[]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn every_command_has_help_and_usage_errors_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let out = dbmux(dir.path(), &["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    let commands = [
        "health",
        "info",
        "metrics",
        "sql",
        "parse-url",
        "backup",
        "restore",
        "migrate",
        "copy",
        "completions",
    ];
    for c in commands {
        assert!(help.contains(&format!("  {c} ")), "{c} in:\n{help}");
        let out = dbmux(dir.path(), &[c, "--help"], &[]);
        assert_eq!(out.status.code(), Some(0), "{c} --help");
        let h = text(&out.stdout);
        assert!(h.contains(&format!("Usage: dbmux {c}")), "{c}:\n{h}");
    }
    let sql = text(&dbmux(dir.path(), &["sql", "--help"], &[]).stdout);
    assert!(sql.contains("--url <URL>") && sql.contains("the word NULL binds as NULL"));
    let out = dbmux(dir.path(), &["--version"], &[]);
    assert_eq!(
        text(&out.stdout).trim(),
        format!("dbmux {}", dbmux::VERSION)
    );
    // usage errors: 3, with what was wrong
    for (args, says) in [
        (&[][..], "Usage: dbmux <COMMAND>"),
        (&["bogus"][..], "unrecognized subcommand 'bogus'"),
        (&["health", "--bogus"][..], "unexpected argument '--bogus'"),
        (&["backup"][..], "<DEST>"),
        (
            &["health", "--compact"][..],
            "--compact is an option of backup",
        ),
        (&["completions", "tcsh"][..], "tcsh"),
    ] {
        let out = dbmux(dir.path(), args, &[]);
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(
            text(&out.stderr).contains(says),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn completions_cover_every_command_in_each_shell() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = dbmux(dir.path(), &["completions", shell], &[]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = text(&out.stdout);
        for word in ["parse-url", "migrate", "openmetrics", "allow-out-of-order"] {
            assert!(script.contains(word), "{shell} lacks {word}");
        }
    }
    // the bash script is valid bash
    let bash = dbmux(dir.path(), &["completions", "bash"], &[]).stdout;
    let path = dir.path().join("dbmux.bash");
    std::fs::write(&path, bash).unwrap();
    let check = Command::new("bash").arg("-n").arg(&path).status().unwrap();
    assert!(check.success());
}

#[test]
fn log_lines_follow_dbmux_log_then_rust_log() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["health", "--url", "sqlite::memory:"];
    let quiet = dbmux(dir.path(), &args, &[]);
    assert_eq!(text(&quiet.stderr), "", "warn by default: nothing to say");
    let info = dbmux(dir.path(), &args, &[("DBMUX_LOG", "info")]);
    assert!(
        text(&info.stderr).contains("shut down"),
        "{}",
        text(&info.stderr)
    );
    let rust = dbmux(dir.path(), &args, &[("RUST_LOG", "info")]);
    assert!(text(&rust.stderr).contains("shut down"));
    // DBMUX_LOG wins over RUST_LOG; env_logger's per-module filters work
    let both = dbmux(
        dir.path(),
        &args,
        &[("DBMUX_LOG", "error"), ("RUST_LOG", "info")],
    );
    assert_eq!(text(&both.stderr), "");
    let filtered = dbmux(dir.path(), &args, &[("DBMUX_LOG", "dbmux::pool=info")]);
    assert!(!text(&filtered.stderr).contains("shut down"));
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["completions", "zsh"][..],
        &["parse-url", "sqlite::memory:"][..],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dbmux"))
            .args(args)
            .current_dir(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader goes away, as `| head -0` does
        let out = child.wait_with_output().unwrap();
        let err = text(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            assert!(
                out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
                "{args:?}: {:?}",
                out.status
            );
        }
    }
}
