//! Helpers shared by the integration tests that need the throwaway
//! PostgreSQL servers of scripts/with-test-postgres.sh.

/// The values of the `DBMUX_TEST_PG_*` variables `names`, in order. When one
/// is missing the servers are not running: a visible skip locally (`None`),
/// a failure in CI (`CI=true`).
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
