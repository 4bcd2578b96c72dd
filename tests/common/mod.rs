//! Helpers shared by the integration tests: the throwaway PostgreSQL
//! servers of scripts/with-test-postgres.sh, and log capture.

#[allow(dead_code)] // not every test file asserts on log lines
pub mod logs;

/// The values of the `DBMUX_TEST_PG_*` variables `names`, in order. When one
/// is missing the servers are not running: a visible skip locally (`None`),
/// a failure in CI (`CI=true`).
#[allow(dead_code)] // not every test file needs the servers
pub fn pg_env<const N: usize>(names: [&str; N]) -> Option<[String; N]> {
    let values: Vec<String> = names.iter().filter_map(|n| std::env::var(n).ok()).collect();
    if let Ok(all) = <[String; N]>::try_from(values) {
        return Some(all);
    }
    let msg = "PostgreSQL test servers are not running: run the tests through \
               scripts/with-test-postgres.sh (scripts/test.sh does)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}
