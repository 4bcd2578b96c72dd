//! Routing dbmux's log lines to a host's logger, for the bindings (the C
//! callback, Python's `logging`): one answer for which records are dbmux's
//! and how verbose the `log` facade is set.

/// The most verbose level dbmux logs at. The facade is capped here, so the
/// per-message `trace` records of the libraries dbmux drives (tokio-postgres
/// writes several per statement) stop at the facade's level check instead of
/// being built and handed to the bridge on every statement.
pub const MOST_VERBOSE: log::LevelFilter = log::LevelFilter::Debug;

/// True when `target` is one of dbmux's (`dbmux`, `dbmux::pool`, ...).
pub fn is_dbmux(target: &str) -> bool {
    target == "dbmux" || target.starts_with("dbmux::")
}

/// Installs `logger` as the process's `log` logger, once, and caps the
/// facade at [`MOST_VERBOSE`]. False when another logger already owns the
/// facade (the host's own, say); calling again returns the first answer.
pub fn install(logger: &'static dyn log::Log) -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let ok = log::set_logger(logger).is_ok();
        if ok {
            log::set_max_level(MOST_VERBOSE);
        }
        ok
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn dbmux_targets_and_only_those() {
        assert!(super::is_dbmux("dbmux"));
        assert!(super::is_dbmux("dbmux::pool"));
        assert!(!super::is_dbmux("dbmuxer"));
        assert!(!super::is_dbmux("tokio_postgres::connection"));
    }
}
