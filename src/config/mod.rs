#![doc = include_str!("README.md")]

use std::fmt;
use std::time::Duration;

mod builder;
mod env;
mod layer;
mod parse;

pub use builder::ConfigBuilder;
pub use env::{env_vars_markdown, EnvVar, ENV_VARS};

use crate::error::{Error, ErrorCode, Result};
use crate::url::Target;

/// The URL used when neither code nor the environment gives one: a SQLite
/// file `dbmux.db` in the current directory.
pub const DEFAULT_URL: &str = "sqlite:///dbmux.db";

/// The largest `pool_size` and the largest `max_overflow` accepted.
pub const MAX_POOL: u32 = 10_000;

/// A named set of pool sizes, chosen with `DB_PROFILE` (or `APP_ENV`).
///
/// A profile only supplies defaults: any explicit setting wins over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// pool 5, overflow 10 (also accepted as `dev`).
    Development,
    /// pool 10, overflow 20 (also accepted as `prod`).
    Production,
    /// pool 1, overflow 1 (also accepted as `testing`).
    Test,
}

impl Profile {
    /// Parses a profile name, case-insensitively.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidConfig`] naming the allowed values.
    pub fn parse(setting: &str, s: &str) -> Result<Profile> {
        match s.trim().to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Profile::Development),
            "production" | "prod" => Ok(Profile::Production),
            "test" | "testing" => Ok(Profile::Test),
            _ => Err(Error::config(
                setting,
                s,
                "allowed profiles are development (dev), production (prod) and test (testing)",
            )),
        }
    }

    /// `(pool_size, max_overflow)` of this profile.
    pub fn pool_sizes(self) -> (u32, u32) {
        match self {
            Profile::Development => (5, 10),
            Profile::Production => (10, 20),
            Profile::Test => (1, 1),
        }
    }

    /// The profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Production => "production",
            Profile::Test => "test",
        }
    }
}

/// Validated dbmux settings: a [`Target`] plus pool and session settings.
///
/// Build one with [`Config::builder`], [`Config::from_url`] or
/// [`Config::from_env`]. `Display` and `Debug` never show a password.
#[derive(Clone, Debug)]
pub struct Config {
    target: Target,
    url_from_default: bool,
    pool_size: u32,
    read_pool_size: u32,
    max_overflow: u32,
    pool_timeout: Duration,
    pool_recycle: Option<Duration>,
    pool_pre_ping: bool,
    pre_ping_window: Duration,
    echo: bool,
    statement_timeout: Option<Duration>,
    query_timeout: Option<Duration>,
    connect_timeout: Duration,
    health_check_interval: Duration,
    profile: Option<Profile>,
    worker_id: String,
    retry: crate::pool::retry::RetryPolicy,
    leak_threshold: Option<Duration>,
    host_recheck: Duration,
    read_max_lag: Option<ReadMaxLag>,
    read_after_wait: Duration,
    sqlite_max_read_tx: Option<Duration>,
    sqlite_wal_soft_limit: u64,
    pool_name: String,
    metrics_histograms: bool,
}

/// How far behind the primary a standby may be for
/// [`Manager::get_read`](crate::Manager::get_read) to use it
/// (`DB_READ_MAX_LAG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMaxLag {
    /// WAL the standby has not replayed yet, in bytes.
    Bytes(u64),
    /// How long ago the standby replayed a transaction while WAL was waiting
    /// to be replayed (`now() - pg_last_xact_replay_timestamp()`; 0 when it
    /// has replayed everything it received).
    Delay(Duration),
}

impl ReadMaxLag {
    /// Parses `DB_READ_MAX_LAG`: bytes as a number or with a unit (`65536`,
    /// `64kB`, `16MB`, `1GB`, PostgreSQL's 1024-based units; `KiB`, `MiB`,
    /// `GiB` too), or a duration with a unit (`500ms`, `2s`); `0` = no limit.
    pub(crate) fn parse(setting: &str, v: &str) -> Result<Option<ReadMaxLag>> {
        const ALLOWED: &str = "must be bytes (65536, 64kB, 16MB, 1GB) or a duration with a unit \
                               (500ms, 2s), or 0 for no limit";
        match parse::parse_bytes(setting, v, ALLOWED)? {
            Some(0) => return Ok(None),
            Some(b) => return Ok(Some(ReadMaxLag::Bytes(b))),
            None => {}
        }
        let t = v.trim();
        match humantime::parse_duration(t) {
            Ok(d) if d.is_zero() => Ok(None),
            Ok(d) => Ok(Some(ReadMaxLag::Delay(d))),
            Err(_) => Err(Error::config(setting, v, ALLOWED)),
        }
    }
}

impl std::fmt::Display for ReadMaxLag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadMaxLag::Bytes(b) => write!(f, "{b} bytes"),
            ReadMaxLag::Delay(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Config {
    /// A builder that starts from the built-in defaults and ignores the environment
    /// (call [`ConfigBuilder::with_env`] to layer it in).
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// A config for `url` with default pool settings (the environment is not read).
    ///
    /// # Errors
    /// [`ErrorCode::InvalidUrl`] when the URL cannot be parsed.
    pub fn from_url(url: &str) -> Result<Config> {
        Config::builder().url(url).build()
    }

    /// A config from the environment variables, then `./.env`, then the
    /// profile, then the defaults. Without `DATABASE_URL` this is the
    /// embedded default, `sqlite:///dbmux.db`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidConfig`] naming the variable and the bad value.
    pub fn from_env() -> Result<Config> {
        Config::builder().with_env().build()
    }

    /// `DB_POOL_NAME` becomes a label value in every metric: it must be
    /// short, printable, and never hold the URL's password.
    fn validate_pool_name(&self) -> Result<()> {
        let name = &self.pool_name;
        let n = name.chars().count();
        if n == 0 || n > 200 || name.chars().any(char::is_control) {
            return Err(Error::config(
                "pool_name (DB_POOL_NAME)",
                name.escape_debug(),
                "must be 1 to 200 characters without control characters",
            ));
        }
        if let Target::Postgres(p) = &self.target {
            if let Some(pw) = p.settings().password.as_deref().filter(|p| !p.is_empty()) {
                if name.contains(pw) {
                    return Err(Error::new(
                        ErrorCode::InvalidConfig,
                        "invalid pool_name (DB_POOL_NAME): it contains the URL's password, and \
                         it is shown in every metric label; choose another name",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        if self.pool_size > MAX_POOL {
            return Err(Error::config(
                "pool_size",
                self.pool_size,
                "must be from 0 to 10000",
            ));
        }
        if self.max_overflow > MAX_POOL {
            return Err(Error::config(
                "max_overflow",
                self.max_overflow,
                "must be from 0 to 10000",
            ));
        }
        if self.pool_size + self.max_overflow == 0 {
            return Err(Error::config(
                "pool_size + max_overflow",
                "0 + 0",
                "at least one connection must be allowed; set pool_size (DB_POOL_SIZE) \
                 or max_overflow (DB_MAX_OVERFLOW) to 1 or more",
            ));
        }
        self.validate_pool_name()?;
        // checked after pool_size, which it defaults to
        if self.read_pool_size > MAX_POOL {
            return Err(Error::config(
                "read_pool_size",
                self.read_pool_size,
                &format!("must be between 0 and {MAX_POOL} (DB_READ_POOL_SIZE)"),
            ));
        }
        if self.pool_timeout.is_zero() {
            return Err(Error::config(
                "pool_timeout (DB_POOL_TIMEOUT)",
                "0",
                "must be positive, e.g. 30 or 500ms",
            ));
        }
        if self.connect_timeout.is_zero() {
            return Err(Error::config(
                "connect_timeout (DB_CONNECT_TIMEOUT)",
                "0",
                "must be positive, e.g. 10 or 500ms",
            ));
        }
        for (setting, limit) in [
            (
                "statement_timeout (DB_STATEMENT_TIMEOUT)",
                self.statement_timeout,
            ),
            ("query_timeout (DB_QUERY_TIMEOUT)", self.query_timeout),
        ] {
            if let Some(d) = limit.filter(|d| *d < Duration::from_millis(1)) {
                return Err(Error::config(
                    setting,
                    format!("{d:?}"),
                    "must be at least 1ms, or 0 for no limit",
                ));
            }
        }
        Ok(())
    }

    /// The parsed target (backend, file or server, options).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The backend the URL selects.
    pub fn backend(&self) -> crate::url::Backend {
        self.target.backend()
    }

    /// True when no URL was given and the embedded default is used.
    pub fn is_default_url(&self) -> bool {
        self.url_from_default
    }

    /// The URL with any password replaced by `***` (for SQLite, `sqlite:` and the
    /// absolute path).
    pub fn redacted_url(&self) -> String {
        self.target.to_string()
    }

    /// Connections kept open in the read pool of `get_read()` (`DB_READ_POOL_SIZE`).
    pub fn read_pool_size(&self) -> u32 {
        self.read_pool_size
    }

    /// Connections kept open in the pool.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// Extra connections allowed under load.
    pub fn max_overflow(&self) -> u32 {
        self.max_overflow
    }

    /// How long a checkout waits.
    pub fn pool_timeout(&self) -> Duration {
        self.pool_timeout
    }

    /// Maximum connection lifetime (`None` = never recycled).
    pub fn pool_recycle(&self) -> Option<Duration> {
        self.pool_recycle
    }

    /// Whether idle connections are validated on checkout.
    pub fn pool_pre_ping(&self) -> bool {
        self.pool_pre_ping
    }

    /// Idle time after which a checkout validates the connection.
    pub fn pre_ping_window(&self) -> Duration {
        self.pre_ping_window
    }

    /// Whether statements are logged.
    pub fn echo(&self) -> bool {
        self.echo
    }

    /// The statement timeout, if any.
    pub fn statement_timeout(&self) -> Option<Duration> {
        self.statement_timeout
    }

    /// The client-side query timeout, if any.
    pub fn query_timeout(&self) -> Option<Duration> {
        self.query_timeout
    }

    /// The limit SQLite enforces in-process: the shorter of the statement
    /// and the query timeouts.
    pub(crate) fn local_statement_timeout(&self) -> Option<Duration> {
        match (self.statement_timeout, self.query_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long health results are cached.
    pub fn health_check_interval(&self) -> Duration {
        self.health_check_interval
    }

    /// The profile in force, if any.
    pub fn profile(&self) -> Option<Profile> {
        self.profile
    }

    /// The leak detection threshold (`None` = off).
    pub fn leak_detection_threshold(&self) -> Option<Duration> {
        self.leak_threshold
    }

    /// How long a failed host of a multi-host URL is skipped (`DB_HOST_RECHECK`).
    pub fn host_recheck(&self) -> Duration {
        self.host_recheck
    }

    /// The most a standby may lag for reads (`DB_READ_MAX_LAG`); `None` = no limit.
    pub fn read_max_lag(&self) -> Option<ReadMaxLag> {
        self.read_max_lag
    }

    /// How long `get_read_after` waits for a standby (`DB_READ_AFTER_WAIT`).
    pub fn read_after_wait(&self) -> Duration {
        self.read_after_wait
    }

    /// SQLite: how long a reader's read transaction may stay open before it
    /// is logged (`DB_SQLITE_MAX_READ_TX`); `None` = never.
    pub fn sqlite_max_read_tx(&self) -> Option<Duration> {
        self.sqlite_max_read_tx
    }

    /// SQLite: the WAL size (bytes) past which the reader gate closes for a
    /// checkpoint (`DB_SQLITE_WAL_SOFT_LIMIT`); 0 = no WAL controller.
    pub fn sqlite_wal_soft_limit(&self) -> u64 {
        self.sqlite_wal_soft_limit
    }

    /// The retry policy of `with_retry` / `transaction_with_retry`.
    pub fn retry(&self) -> crate::pool::retry::RetryPolicy {
        self.retry
    }

    /// The worker id for debug info (`main` unless set).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The `pool` label of this manager's metrics (`DB_POOL_NAME`; by
    /// default the redacted URL, which holds no password).
    pub fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// Whether the duration histograms are recorded (`DB_METRICS_HISTOGRAMS`,
    /// on by default).
    pub fn metrics_histograms(&self) -> bool {
        self.metrics_histograms
    }
}

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (pool_size={}, max_overflow={}, pool_timeout={:?}",
            self.target, self.pool_size, self.max_overflow, self.pool_timeout
        )?;
        if let Some(p) = self.profile {
            write!(f, ", profile={}", p.name())?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::parse::{parse_duration, parse_optional_duration};
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn env_vars_lists_exactly_the_variables_that_are_read() {
        use std::collections::BTreeSet;
        use std::sync::{Arc, Mutex};
        let asked = Arc::new(Mutex::new(BTreeSet::new()));
        let seen = asked.clone();
        Config::builder()
            .with_env_lookup(move |k| {
                seen.lock().unwrap().insert(k.to_string());
                None
            })
            .build()
            .unwrap();
        let asked = asked.lock().unwrap().clone();
        let listed: BTreeSet<String> = ENV_VARS.iter().map(|v| v.name.to_string()).collect();
        assert_eq!(asked, listed);
        assert_eq!(listed.len(), 28);
        assert_eq!(listed.len(), ENV_VARS.len(), "a variable is listed twice");
    }

    #[test]
    fn the_documented_table_is_env_vars() {
        let page = include_str!("README.md");
        assert!(
            page.contains(&env_vars_markdown()),
            "src/config/README.md's variable table differs from ENV_VARS; paste dbmux::config::env_vars_markdown():\n{}",
            env_vars_markdown()
        );
    }

    #[test]
    fn ms_variables_take_every_duration_form() {
        let build = |k: &'static str, v: &'static str| {
            Config::builder()
                .with_env_lookup(move |name| (name == k).then(|| v.to_string()))
                .build()
        };
        let c = build("DB_RETRY_BASE_DELAY_MS", "250").unwrap();
        assert_eq!(c.retry().base_delay, Duration::from_millis(250));
        let c = build("DB_RETRY_BASE_DELAY_MS", "1s").unwrap();
        assert_eq!(c.retry().base_delay, Duration::from_secs(1));
        let c = build("DB_RETRY_MAX_DELAY_MS", "1500ms").unwrap();
        assert_eq!(c.retry().max_delay, Duration::from_millis(1500));
        let c = build("DB_LEAK_DETECTION_THRESHOLD_MS", "2s").unwrap();
        assert_eq!(c.leak_detection_threshold(), Some(Duration::from_secs(2)));
        let c = build("DB_LEAK_DETECTION_THRESHOLD_MS", "0").unwrap();
        assert_eq!(c.leak_detection_threshold(), None);
        let e = build("DB_RETRY_MAX_DELAY_MS", "soon").unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig);
        assert!(e.message().contains("DB_RETRY_MAX_DELAY_MS"), "{e}");
        assert!(e.message().contains("milliseconds as a number"), "{e}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("x", "30").unwrap(), Duration::from_secs(30));
        assert_eq!(
            parse_duration("x", "0.5").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            parse_duration("x", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("x", "2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("x", "-3").is_err());
        assert!(parse_duration("x", "soon").is_err());
        assert_eq!(parse_optional_duration("x", "-1").unwrap(), None);
        assert_eq!(parse_optional_duration("x", "0").unwrap(), None);
    }
}
