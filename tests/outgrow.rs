//! The README's story, end to end: `examples/outgrow.rs` on a SQLite file,
//! `dbmux migrate` and `dbmux copy` to a fresh database on the throwaway
//! PostgreSQL server, then the same example there: nothing pending, every
//! row read back, and it goes on writing.

mod common;

use std::path::PathBuf;
use std::process::Command;

use dbmux::params;

/// The example's binary: `cargo test` builds it beside the CLI; when only
/// this test was asked for (`cargo test --test outgrow`), it is built here,
/// in a target directory of its own (the test's is locked meanwhile).
fn example() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_dbmux"));
    let exe = bin.parent().unwrap().join("examples").join("outgrow");
    if exe.exists() {
        return exe;
    }
    let own = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("outgrow-example");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args([
            "build",
            "--quiet",
            "--features",
            "cli",
            "--example",
            "outgrow",
        ])
        .arg("--target-dir")
        .arg(&own)
        .status()
        .unwrap();
    assert!(status.success(), "cargo build --example outgrow failed");
    own.join("debug").join("examples").join("outgrow")
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn an_app_moves_from_its_sqlite_file_to_postgresql_with_the_same_code() {
    let Some(pg) = common::pg() else { return };
    let name = format!("outgrow_{}", std::process::id());
    let pg_url = pg.fresh_database(&name);
    let dir = tempfile::tempdir().unwrap();
    let lite_url = format!("sqlite:///{}/shop.db", dir.path().display());
    let app = |url: &str, more: &str| {
        run(Command::new(example())
            .arg(more)
            .env("DATABASE_URL", url)
            .current_dir(dir.path()))
    };

    // day one: a SQLite file
    let out = app(&lite_url, "200");
    assert!(
        out.contains("4 migration(s) applied now, 0 before"),
        "{out}"
    );
    assert!(
        out.contains("read back 0 orders") && out.contains("wrote 200 orders; 200 in total"),
        "{out}"
    );
    let out = app(&lite_url, "40");
    assert!(
        out.contains("0 migration(s) applied now, 4 before"),
        "{out}"
    );
    assert!(
        out.contains("read back 200 orders, all intact") && out.contains("240 in total"),
        "{out}"
    );

    // the move: the same migrations make the schema, dbmux copy the data
    let cli = env!("CARGO_BIN_EXE_dbmux");
    let out = run(Command::new(cli).args([
        "migrate",
        "--url",
        &pg_url,
        "--dir",
        "examples/outgrow/migrations",
    ]));
    assert!(out.contains("4 applied now, 0 before"), "{out}");
    let out = run(Command::new(cli).args(["copy", "--from", &lite_url, "--to", &pg_url]));
    assert!(out.contains("copied 247 rows"), "{out}");

    // day two: the same code on PostgreSQL
    let out = app(&pg_url, "60");
    assert!(out.contains("postgresql://"), "{out}");
    assert!(
        out.contains("0 migration(s) applied now, 4 before"),
        "{out}"
    );
    assert!(out.contains("read back 240 orders, all intact"), "{out}");
    assert!(out.contains("wrote 60 orders; 300 in total"), "{out}");
    let out = app(&pg_url, "0");
    assert!(out.contains("read back 300 orders, all intact"), "{out}");
    assert!(!out.contains(&pg.password), "no password in the output");
    let admin = pg.manager(&pg.main()).unwrap();
    admin
        .execute(
            &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            params![],
        )
        .unwrap();
    admin.shutdown();
}
