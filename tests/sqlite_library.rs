//! The SQLite library dbmux runs on: with a second SQLite library loaded
//! in the process, the first open logs one WARN naming both.
//!
//! This file is its own process on purpose: the check runs once per
//! process, at the first SQLite open.

mod common;

use common::logs;
use dbmux::Manager;

/// Loads the system libsqlite3 next to the copy compiled into this test
/// binary (the `bundled` feature, on by default), as a Python app does when
/// it imports `sqlite3` beside a bundled libdbmux.
#[cfg(all(target_os = "linux", feature = "bundled"))]
#[test]
fn a_second_sqlite_library_in_the_process_is_warned_about_once() {
    logs::capture();
    // SAFETY: dlopen with a valid name; the handle stays open for the test.
    let handle = unsafe {
        libc::dlopen(
            c"libsqlite3.so.0".as_ptr(),
            libc::RTLD_NOW | libc::RTLD_LOCAL,
        )
    };
    if handle.is_null() {
        let msg = "the system libsqlite3.so.0 is not installed (apt-get install libsqlite3-0)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:///{}", dir.path().join("two.db").display());
    let mgr = Manager::from_url(&url).unwrap();
    mgr.execute("CREATE TABLE t(x)", &[]).unwrap();
    let warns: Vec<String> = logs::lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN dbmux::sqlite"))
        .collect();
    assert_eq!(warns.len(), 1, "one warning expected: {warns:#?}");
    let w = &warns[0];
    eprintln!("{w}");
    let exe = std::env::current_exe().unwrap();
    for part in [
        "more than one SQLite library is loaded in this process".to_string(),
        format!(
            "dbmux runs on SQLite {} in {}",
            dbmux::sqlite_version(),
            exe.display()
        ),
        "libsqlite3.so.0 (SQLite 3.".to_string(),
        "link a single SQLite".to_string(),
    ] {
        assert!(w.contains(&part), "missing {part:?} in {w}");
    }

    // Once per process: a second manager and more opens say nothing more.
    logs::clear();
    let again =
        Manager::from_url(&format!("sqlite:///{}", dir.path().join("b.db").display())).unwrap();
    again.execute("CREATE TABLE u(x)", &[]).unwrap();
    assert_eq!(
        mgr.query_scalar::<i64>("SELECT count(*) FROM t", &[])
            .unwrap(),
        0
    );
    let more: Vec<String> = logs::lines()
        .into_iter()
        .filter(|l| l.starts_with("WARN"))
        .collect();
    assert!(more.is_empty(), "{more:#?}");
}
