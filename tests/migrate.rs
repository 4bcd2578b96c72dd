//! Migrations on real SQLite files and the throwaway PostgreSQL server:
//! exactly-once under concurrent starts, checksums across line endings,
//! atomic failure, the dirty no-transaction case, SQLite table rebuilds with
//! foreign keys, modified / missing / out-of-order detection, variants.

mod common;

use std::path::{Path, PathBuf};
#[cfg(feature = "cli")]
use std::process::Command;

use dbmux::migrate::{MigrateOptions, Migrations, State};
use dbmux::{params, ErrorCode, Manager};

/// A database to migrate: a SQLite file in a fresh directory, or a fresh
/// PostgreSQL database on the test server.
struct Db {
    url: String,
    backend: &'static str,
    _dir: tempfile::TempDir,
}

impl Db {
    fn manager(&self) -> Manager {
        Manager::from_url(&self.url).unwrap()
    }
    /// A fresh migrations directory inside this database's temp dir.
    fn dir(&self, name: &str) -> PathBuf {
        let d = self._dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}

fn sqlite_db() -> Db {
    let dir = tempfile::tempdir().unwrap();
    Db {
        url: format!("sqlite:///{}/app.db", dir.path().display()),
        backend: "sqlite",
        _dir: dir,
    }
}

/// A new, empty database on the TLS test server (`None`: a visible skip
/// locally, a failure in CI).
fn pg_db(name: &str) -> Option<Db> {
    let pg = common::pg()?;
    Some(Db {
        url: pg.fresh_database(&format!("mig_{name}_{}", std::process::id())),
        backend: "postgresql",
        _dir: tempfile::tempdir().unwrap(),
    })
}

/// The SQLite database and, when the servers run, a PostgreSQL one.
fn dbs(name: &str) -> Vec<Db> {
    let mut v = vec![sqlite_db()];
    v.extend(pg_db(name));
    v
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

fn count(mgr: &Manager, sql: &str) -> i64 {
    mgr.query_scalar(sql, params![]).unwrap()
}

fn table_exists(mgr: &Manager, table: &str) -> bool {
    let sql = match mgr.config().backend() {
        dbmux::url::Backend::Sqlite => {
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?"
        }
        _ => "SELECT count(*) FROM information_schema.tables WHERE table_name = ?",
    };
    mgr.query_scalar::<i64>(sql, params![table]).unwrap() > 0
}

#[test]
#[cfg(feature = "cli")] // runs the dbmux binary
fn eight_processes_started_at_once_apply_each_migration_once() {
    for db in dbs("concurrent") {
        let dir = db.dir("m");
        // each migration records that it ran, and takes a while, so that
        // the processes overlap
        let slow = match db.backend {
            "sqlite" => {
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) \
                         INSERT INTO filler SELECT x FROM c;"
            }
            _ => "SELECT pg_sleep(0.05);",
        };
        let mut files = vec![(
            "V0001__runs.sql".to_string(),
            "CREATE TABLE runs (version INTEGER NOT NULL);\nCREATE TABLE filler (x INTEGER);\nINSERT INTO runs VALUES (1);\n".to_string(),
        )];
        for v in 2..=6 {
            files.push((
                format!("V{v:04}__step.sql"),
                format!("{slow}\nINSERT INTO runs VALUES ({v});\n"),
            ));
        }
        for (n, t) in &files {
            std::fs::write(dir.join(n), t).unwrap();
        }
        let procs: Vec<std::process::Child> = (0..8)
            .map(|_| {
                Command::new(env!("CARGO_BIN_EXE_dbmux"))
                    .args(["migrate", "--url", &db.url, "--dir"])
                    .arg(&dir)
                    .args(["up", "--json"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let mut applied_total = 0;
        let mut waited = 0;
        for p in procs {
            let out = p.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{}: {stderr}", db.backend);
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            applied_total += report["applied"].as_array().unwrap().len();
            if report["lock_wait_ms"].as_f64().unwrap() > 0.0 {
                waited += 1;
            }
        }
        assert_eq!(applied_total, 6, "{}", db.backend);
        assert!(
            waited >= 1,
            "{}: no process waited for the lock",
            db.backend
        );
        let mgr = db.manager();
        let rows = mgr
            .query(
                "SELECT version, count(*) FROM runs GROUP BY version ORDER BY version",
                params![],
            )
            .unwrap();
        let per: Vec<(i64, i64)> = rows
            .iter()
            .map(|r| (r.get(0).unwrap(), r.get(1).unwrap()))
            .collect();
        assert_eq!(
            per,
            (1..=6).map(|v| (v, 1)).collect::<Vec<_>>(),
            "{}",
            db.backend
        );
        assert_eq!(count(&mgr, "SELECT count(*) FROM _dbmux_migrations"), 6);
        mgr.shutdown();
    }
}

#[test]
fn crlf_lf_and_a_bom_share_a_checksum() {
    for db in dbs("endings") {
        let dir = db.dir("m");
        let text = "CREATE TABLE t (x TEXT DEFAULT 'a;b');\nINSERT INTO t VALUES ('one');\n";
        write(&dir, &[("V0001__t.sql", text)]);
        let mgr = db.manager();
        assert_eq!(
            mgr.migrate(&Migrations::from_dir(&dir).unwrap())
                .unwrap()
                .applied
                .len(),
            1
        );
        // the same file checked out on Windows, saved by an editor with a BOM
        let windows = format!("\u{feff}{}\r\n\r\n", text.replace('\n', "\r\n"));
        write(&dir, &[("V0001__t.sql", &windows)]);
        let m = Migrations::from_dir(&dir).unwrap();
        let st = mgr.migration_status(&m).unwrap();
        assert_eq!(st.versions[0].state, State::Applied, "{}", db.backend);
        st.verify().unwrap();
        // but one character inside a string literal is a modification
        write(&dir, &[("V0001__t.sql", &text.replace("'one'", "'One'"))]);
        let m = Migrations::from_dir(&dir).unwrap();
        let st = mgr.migration_status(&m).unwrap();
        assert_eq!(st.versions[0].state, State::Modified);
        mgr.shutdown();
    }
}

#[test]
fn a_failure_at_statement_3_of_5_leaves_schema_and_ledger_unchanged() {
    for db in dbs("atomic") {
        let dir = db.dir("m");
        write(
            &dir,
            &[
                ("V0001__base.sql", "CREATE TABLE base (x INTEGER);"),
                (
                    "V0002__five.sql",
                    "CREATE TABLE one (x INTEGER);\nINSERT INTO base VALUES (1);\n\
                     INSERT INTO no_such_table VALUES (1);\nCREATE TABLE four (x INTEGER);\n\
                     CREATE TABLE five (x INTEGER);\n",
                ),
            ],
        );
        let mgr = db.manager();
        let m = Migrations::from_dir(&dir).unwrap();
        let e = mgr.migrate(&m).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Sql, "{}: {e}", db.backend);
        let msg = e.to_string();
        assert!(msg.contains("V0002__five.sql: line 3:"), "{msg}");
        assert!(msg.contains("no_such_table"), "{msg}");
        assert!(
            msg.contains("rolled back: nothing of it was applied"),
            "{msg}"
        );
        assert!(!msg.contains(
            common::pg()
                .map(|p| p.password)
                .unwrap_or("\u{0}".into())
                .as_str()
        ));
        // V0001 stays; nothing of V0002: no table, no row, no ledger entry
        assert!(table_exists(&mgr, "base"));
        assert!(!table_exists(&mgr, "one"));
        assert_eq!(count(&mgr, "SELECT count(*) FROM base"), 0);
        assert_eq!(count(&mgr, "SELECT count(*) FROM _dbmux_migrations"), 1);
        let st = mgr.migration_status(&m).unwrap();
        assert_eq!(st.versions[1].state, State::Pending);
        // fixed, it runs
        write(
            &dir,
            &[("V0002__five.sql", "CREATE TABLE one (x INTEGER);")],
        );
        let r = mgr.migrate(&Migrations::from_dir(&dir).unwrap()).unwrap();
        assert_eq!((r.applied.len(), r.already_applied), (1, 1));
        mgr.shutdown();
    }
}

#[test]
fn a_failed_no_transaction_migration_leaves_the_ledger_dirty_and_the_next_run_refuses() {
    for db in dbs("dirty") {
        let dir = db.dir("m");
        let index = match db.backend {
            "sqlite" => "CREATE INDEX t_x ON t (x);",
            _ => "CREATE INDEX CONCURRENTLY t_x ON t (x);",
        };
        write(
            &dir,
            &[
                ("V0001__t.sql", "CREATE TABLE t (x INTEGER);"),
                (
                    "V0002__index.sql",
                    &format!("-- dbmux:no-transaction\n{index}\nSELECT * FROM missing_table;\n"),
                ),
            ],
        );
        let mgr = db.manager();
        let m = Migrations::from_dir(&dir).unwrap();
        let e = mgr.migrate(&m).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("V0002__index.sql: line 3:"),
            "{}: {msg}",
            db.backend
        );
        assert!(msg.contains("dirty"), "{msg}");
        // what ran before the failure stays; the ledger says it failed
        let st = mgr.migration_status(&m).unwrap();
        assert_eq!(st.versions[1].state, State::Dirty);
        assert!(!st.problems.is_empty());
        let e = mgr.migrate(&m).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Migration);
        let msg = e.to_string();
        assert!(
            msg.contains("V0002 (V0002__index.sql)")
                && msg.contains("DELETE FROM _dbmux_migrations WHERE version = 2"),
            "{msg}"
        );
        // repaired by hand as the message says: the fixed migration runs
        mgr.execute("DROP INDEX t_x", params![]).unwrap();
        mgr.execute("DELETE FROM _dbmux_migrations WHERE version = 2", params![])
            .unwrap();
        write(
            &dir,
            &[(
                "V0002__index.sql",
                &format!("-- dbmux:no-transaction\n{index}\n"),
            )],
        );
        let r = mgr.migrate(&Migrations::from_dir(&dir).unwrap()).unwrap();
        assert_eq!(r.applied.len(), 1);
        assert!(mgr
            .migration_status(&Migrations::from_dir(&dir).unwrap())
            .unwrap()
            .is_current());
        mgr.shutdown();
    }
}

/// The SQLite rebuild procedure: new table, copy, drop, rename.
const REBUILD: &str =
    "CREATE TABLE parent_new (id INTEGER PRIMARY KEY, name TEXT NOT NULL DEFAULT '');
INSERT INTO parent_new (id) SELECT id FROM parent;
DROP TABLE parent;
ALTER TABLE parent_new RENAME TO parent;
";

#[test]
fn a_sqlite_table_rebuild_keeps_1000_children_and_is_refused_without_the_header() {
    let db = sqlite_db();
    let dir = db.dir("m");
    write(
        &dir,
        &[
            (
                "V0001__tables.sql",
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
                 CREATE TABLE child (id INTEGER PRIMARY KEY, \
                 parent_id INTEGER NOT NULL REFERENCES parent (id) ON DELETE CASCADE);\n",
            ),
            (
                "V0002__rows.sql",
                "INSERT INTO parent (id) VALUES (1), (2);\n\
                 WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) \
                 INSERT INTO child (id, parent_id) SELECT x, 1 + x % 2 FROM c;\n",
            ),
            ("V0003__rebuild_parent.sql", REBUILD),
        ],
    );
    let mgr = db.manager();
    assert_eq!(count(&mgr, "PRAGMA foreign_keys"), 1);
    let e = mgr
        .migrate(&Migrations::from_dir(&dir).unwrap())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Migration);
    let msg = e.to_string();
    assert!(
        msg.contains("V0003__rebuild_parent.sql: line 3: DROP TABLE parent"),
        "{msg}"
    );
    assert!(msg.contains("child(parent_id) ON DELETE CASCADE"), "{msg}");
    assert!(msg.contains("-- dbmux:foreign-keys=off"), "{msg}");
    assert_eq!(count(&mgr, "SELECT count(*) FROM child"), 1000);
    assert!(!table_exists(&mgr, "parent_new"));
    // with the header: the rebuild runs, every child survives, keys are on again
    write(
        &dir,
        &[(
            "V0003__rebuild_parent.sql",
            &format!("-- dbmux:foreign-keys=off\n{REBUILD}"),
        )],
    );
    let r = mgr.migrate(&Migrations::from_dir(&dir).unwrap()).unwrap();
    assert_eq!(r.applied.len(), 1);
    assert_eq!(count(&mgr, "SELECT count(*) FROM child"), 1000);
    assert_eq!(
        count(&mgr, "SELECT count(*) FROM parent WHERE name = ''"),
        2
    );
    assert_eq!(
        count(&mgr, "SELECT count(*) FROM pragma_foreign_key_check"),
        0
    );
    for _ in 0..4 {
        // every pooled connection has foreign keys on again
        assert_eq!(count(&mgr, "PRAGMA foreign_keys"), 1);
    }
    let e = mgr
        .execute(
            "INSERT INTO child (id, parent_id) VALUES (5000, 99)",
            params![],
        )
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint);
    mgr.shutdown();
}

#[test]
fn a_rebuild_that_orphans_children_is_rolled_back_by_the_foreign_key_check() {
    let db = sqlite_db();
    let dir = db.dir("m");
    write(
        &dir,
        &[
            (
                "V0001__tables.sql",
                "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n\
                 CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER REFERENCES parent (id) ON DELETE CASCADE);\n\
                 INSERT INTO parent VALUES (1), (2);\nINSERT INTO child VALUES (1, 1), (2, 2);\n",
            ),
            (
                "V0002__lossy_rebuild.sql",
                "-- dbmux:foreign-keys=off\nCREATE TABLE parent_new (id INTEGER PRIMARY KEY);\n\
                 INSERT INTO parent_new SELECT id FROM parent WHERE id = 1;\nDROP TABLE parent;\n\
                 ALTER TABLE parent_new RENAME TO parent;\n",
            ),
        ],
    );
    let mgr = db.manager();
    let e = mgr
        .migrate(&Migrations::from_dir(&dir).unwrap())
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Constraint);
    let msg = e.to_string();
    assert!(msg.contains("foreign_key_check found 1 row(s)"), "{msg}");
    assert!(msg.contains("child rowid 2"), "{msg}");
    assert_eq!(count(&mgr, "SELECT count(*) FROM parent"), 2);
    assert_eq!(count(&mgr, "SELECT count(*) FROM _dbmux_migrations"), 1);
    assert_eq!(count(&mgr, "PRAGMA foreign_keys"), 1);
    mgr.shutdown();
}

#[test]
fn modified_missing_and_out_of_order_versions_are_named_and_stop_up() {
    for db in dbs("drift") {
        let dir = db.dir("m");
        write(
            &dir,
            &[
                ("V0001__a.sql", "CREATE TABLE a (x INTEGER);"),
                ("V0002__b.sql", "CREATE TABLE b (x INTEGER);"),
                ("V0004__d.sql", "CREATE TABLE d (x INTEGER);"),
            ],
        );
        let mgr = db.manager();
        mgr.migrate(&Migrations::from_dir(&dir).unwrap()).unwrap();
        // a branch merged V0003 below the highest applied version
        write(&dir, &[("V0003__c.sql", "CREATE TABLE c (x INTEGER);")]);
        let m = Migrations::from_dir(&dir).unwrap();
        let st = mgr.migration_status(&m).unwrap();
        assert_eq!(st.versions[2].state, State::OutOfOrder);
        let e = mgr.migrate(&m).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Migration);
        assert!(
            e.to_string().contains(
                "V0003 (V0003__c.sql) is pending but below the highest applied version V0004"
            ),
            "{e}"
        );
        assert!(!table_exists(&mgr, "c"));
        let r = mgr
            .migrate_with(&m, &MigrateOptions::new().allow_out_of_order(true))
            .unwrap();
        assert_eq!(r.applied[0].file, "V0003__c.sql");
        assert!(table_exists(&mgr, "c"));
        // an applied file edited, another deleted: both named, nothing runs
        write(
            &dir,
            &[("V0002__b.sql", "CREATE TABLE b (x INTEGER, y INTEGER);")],
        );
        std::fs::remove_file(dir.join("V0004__d.sql")).unwrap();
        write(&dir, &[("V0005__e.sql", "CREATE TABLE e (x INTEGER);")]);
        let m = Migrations::from_dir(&dir).unwrap();
        let st = mgr.migration_status(&m).unwrap();
        let states: Vec<State> = st.versions.iter().map(|v| v.state).collect();
        assert_eq!(
            states,
            [
                State::Applied,
                State::Modified,
                State::Applied,
                State::Missing,
                State::Pending
            ]
        );
        assert_eq!((st.applied, st.pending), (2, 1));
        let e = mgr.migrate(&m).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Migration);
        let msg = e.to_string();
        assert!(
            msg.contains("V0002 (V0002__b.sql) was applied with checksum"),
            "{msg}"
        );
        assert!(
            msg.contains("(modified)")
                && msg.contains("V0004 (d) was applied but its file is gone (missing)"),
            "{msg}"
        );
        assert!(!table_exists(&mgr, "e"));
        assert_eq!(st.verify().unwrap_err().code(), ErrorCode::Migration);
        mgr.shutdown();
    }
}

#[test]
fn backend_variants_replace_the_plain_file_and_embedded_files_work() {
    let m = dbmux::embed_migrations!("tests/migrations").unwrap();
    assert_eq!(m.len(), 2);
    for db in dbs("variants") {
        let mgr = db.manager();
        let r = mgr.migrate(&m).unwrap();
        let files: Vec<&str> = r.applied.iter().map(|a| a.file.as_str()).collect();
        let body: String = mgr
            .query_scalar("SELECT body FROM notes WHERE id = 1", params![])
            .unwrap();
        match db.backend {
            "sqlite" => {
                assert_eq!(files, ["V0001__create_notes.sql", "V0002__seed.sqlite.sql"]);
                assert_eq!(body, "from the sqlite variant");
            }
            _ => {
                assert_eq!(
                    files,
                    ["V0001__create_notes.sql", "V0002__seed.postgres.sql"]
                );
                assert_eq!(body, "from the postgres variant");
            }
        }
        // the same set read from the directory at run time: nothing pending
        let from_dir = Migrations::from_dir("tests/migrations").unwrap();
        assert!(mgr.migration_status(&from_dir).unwrap().is_current());
        assert!(mgr.migration_plan(&from_dir).unwrap().is_empty());
        mgr.shutdown();
    }
}

#[test]
#[cfg(feature = "cli")] // runs the dbmux binary
fn the_cli_prints_status_plan_and_verify_with_exit_codes() {
    let db = sqlite_db();
    let dir = db.dir("m");
    write(
        &dir,
        &[
            ("V0001__a.sql", "CREATE TABLE a (x INTEGER);"),
            ("V0002__b.postgres.sql", "CREATE TABLE b (x BIGSERIAL);"),
            (
                "V0002__b.sqlite.sql",
                "CREATE TABLE b (x INTEGER PRIMARY KEY);",
            ),
        ],
    );
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_dbmux"))
            .args(["migrate", "--url", &db.url, "--dir"])
            .arg(&dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, _) = run(&["plan"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("-- V0002__b.sqlite.sql (sqlite)\nCREATE TABLE b (x INTEGER PRIMARY KEY);"),
        "{out}"
    );
    assert!(!out.contains("BIGSERIAL"));
    let (code, _, err) = run(&["verify"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("2 pending: V0001__a.sql, V0002__b.sqlite.sql"),
        "{err}"
    );
    let (code, out, _) = run(&[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("applied V0001__a.sql") && out.contains("2 applied now, 0 before"),
        "{out}"
    );
    let (code, out, _) = run(&["verify", "--json"]);
    assert_eq!(code, 0);
    let st: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["applied"], 2);
    assert_eq!(st["versions"][1]["state"], "applied");
    // a version merged below the highest applied one: refused, then allowed
    write(&dir, &[("V0000__zero.sql", "SELECT 1;")]);
    let (code, _, err) = run(&[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("migration file"), "{err}");
    std::fs::remove_file(dir.join("V0000__zero.sql")).unwrap();
    write(&dir, &[("V0005__c.sql", "CREATE TABLE c (x INTEGER);")]);
    assert_eq!(run(&["up"]).0, 0);
    write(
        &dir,
        &[("V0004__late.sql", "CREATE TABLE late (x INTEGER);")],
    );
    write(&dir, &[("V0006__d.sql", "CREATE TABLE d (x INTEGER);")]);
    let (code, out, err) = run(&["status"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("V0004  out_of_order") && out.contains("V0006  pending"),
        "{out}"
    );
    assert!(
        out.contains("problem: V0004 (V0004__late.sql) is pending but below"),
        "{out}"
    );
    let (code, _, err) = run(&["up"]);
    assert_eq!(code, 1);
    assert!(err.contains("--allow-out-of-order"), "{err}");
    let (code, out, err) = run(&["up", "--allow-out-of-order"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("applied V0004__late.sql") && out.contains("applied V0006__d.sql"),
        "{out}"
    );
    let (code, _, err) = run(&["sideways"]);
    assert_eq!(code, 3);
    assert!(err.contains("status, plan, up, verify"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_dbmux"))
        .args(["migrate", "--url", &db.url, "--dir", "/no/such/dir"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("cannot read the migrations directory /no/such/dir"));
}
