#![doc = include_str!("README.md")]

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod env;
mod parse;

pub use env::{env_vars_markdown, EnvVar, ENV_VARS};
use env::{process_env, read_dotenv, read_layer};

use crate::error::{Error, Result};
use crate::url::sqlite::SqliteOptions;
use crate::url::{parse_url, SqliteLocation, Target};

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
    /// [`ErrorCode::InvalidConfig`](crate::ErrorCode::InvalidConfig) naming the allowed values.
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

/// One layer of settings (code, environment, `.env`): `None` = not set here.
#[derive(Debug, Clone, Default)]
struct Layer {
    url: Option<String>,
    pool_size: Option<u32>,
    max_overflow: Option<u32>,
    pool_timeout: Option<Duration>,
    pool_recycle: Option<Option<Duration>>,
    pool_pre_ping: Option<bool>,
    pre_ping_window: Option<Duration>,
    echo: Option<bool>,
    statement_timeout: Option<Option<Duration>>,
    query_timeout: Option<Option<Duration>>,
    connect_timeout: Option<Duration>,
    health_check_interval: Option<Duration>,
    profile: Option<Profile>,
    worker_id: Option<String>,
    retry_attempts: Option<u32>,
    retry_base_delay: Option<Duration>,
    retry_max_delay: Option<Duration>,
    leak_threshold: Option<Option<Duration>>,
}

macro_rules! first_set {
    ($layers:expr, $field:ident) => {
        $layers.iter().find_map(|l| l.$field.clone())
    };
}

type Lookup = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Builds a [`Config`]. Settings made here win over the environment.
///
/// ```
/// let config = dbmux::Config::builder()
///     .url("sqlite::memory:")
///     .pool_size(2)
///     .max_overflow(0)
///     .build()?;
/// assert_eq!(config.pool_size(), 2);
/// # Ok::<(), dbmux::Error>(())
/// ```
#[derive(Clone, Default)]
pub struct ConfigBuilder {
    code: Layer,
    sqlite: SqliteOptions,
    use_env: bool,
    lookup: Option<Lookup>,
    dotenv: Option<PathBuf>,
}

impl fmt::Debug for ConfigBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigBuilder")
            .field("url", &self.code.url.as_deref().map(crate::url::redact))
            .field("use_env", &self.use_env)
            .finish_non_exhaustive()
    }
}

impl ConfigBuilder {
    /// The database URL. Defaults to `DATABASE_URL`, else `sqlite:///dbmux.db`.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.code.url = Some(url.into());
        self
    }

    /// Connections kept open in the pool (SQLAlchemy's `pool_size`).
    /// Defaults to the profile's value, else 5.
    pub fn pool_size(mut self, n: u32) -> Self {
        self.code.pool_size = Some(n);
        self
    }

    /// Extra connections opened under load and closed again when they are
    /// returned to a full pool (SQLAlchemy's `max_overflow`).
    /// Defaults to the profile's value, else 10.
    pub fn max_overflow(mut self, n: u32) -> Self {
        self.code.max_overflow = Some(n);
        self
    }

    /// How long a checkout waits for a connection. Defaults to 30 s. Must be positive.
    pub fn pool_timeout(mut self, d: Duration) -> Self {
        self.code.pool_timeout = Some(d);
        self
    }

    /// Maximum lifetime of a connection; older ones are closed on checkout or
    /// by the reaper. `None` disables recycling. Defaults to 30 minutes.
    pub fn pool_recycle(mut self, d: Option<Duration>) -> Self {
        self.code.pool_recycle = Some(d);
        self
    }

    /// Validate a connection on checkout when it has been idle longer than
    /// [`pre_ping_window`](Self::pre_ping_window). Defaults to true.
    pub fn pool_pre_ping(mut self, on: bool) -> Self {
        self.code.pool_pre_ping = Some(on);
        self
    }

    /// Idle time after which a checkout pings the connection first.
    /// Defaults to 500 ms (HikariCP's value).
    pub fn pre_ping_window(mut self, d: Duration) -> Self {
        self.code.pre_ping_window = Some(d);
        self
    }

    /// Log every statement's SQL text and duration (never its parameters).
    /// Defaults to false.
    pub fn echo(mut self, on: bool) -> Self {
        self.code.echo = Some(on);
        self
    }

    /// Cancel statements that run longer than this. `None` (the default) means no limit.
    pub fn statement_timeout(mut self, d: Option<Duration>) -> Self {
        self.code.statement_timeout = Some(d);
        self
    }

    /// How long dbmux waits for the server's answer to one call before it
    /// gives up and discards the connection ([`ErrorCode::StatementTimeout`](crate::ErrorCode::StatementTimeout)).
    /// Unlike [`ConfigBuilder::statement_timeout`], which the server
    /// enforces, this holds when the server itself hangs. `None` (the
    /// default) means no limit; dbmux's own pings and rollbacks are always
    /// bounded (by this, else by the connect timeout). On SQLite, which runs
    /// in-process, it acts as a statement timeout.
    pub fn query_timeout(mut self, d: Option<Duration>) -> Self {
        self.code.query_timeout = Some(d);
        self
    }

    /// How long opening one connection may take. Defaults to 10 s.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.code.connect_timeout = Some(d);
        self
    }

    /// How long a `health()` result is reused. Defaults to 30 s; zero disables caching.
    pub fn health_check_interval(mut self, d: Duration) -> Self {
        self.code.health_check_interval = Some(d);
        self
    }

    /// The profile whose pool sizes fill in what nothing else sets.
    pub fn profile(mut self, p: Profile) -> Self {
        self.code.profile = Some(p);
        self
    }

    /// The worker id reported in debug info. Defaults to `PYTEST_XDIST_WORKER`
    /// or `DBMUX_WORKER_ID` (with [`with_env`](Self::with_env)), else `main`.
    pub fn worker_id(mut self, id: impl Into<String>) -> Self {
        self.code.worker_id = Some(id.into());
        self
    }

    /// The retry policy of `with_retry` / `transaction_with_retry`.
    /// Defaults to 3 attempts, 50 ms base delay, 2 s maximum delay.
    pub fn retry(mut self, p: crate::pool::retry::RetryPolicy) -> Self {
        self.code.retry_attempts = Some(p.attempts);
        self.code.retry_base_delay = Some(p.base_delay);
        self.code.retry_max_delay = Some(p.max_delay);
        self
    }

    /// Log (once, at WARN, with the checkout's backtrace) connections held
    /// longer than this, and list them in debug info. `None` (the default)
    /// turns leak detection off; no backtrace is captured then.
    pub fn leak_detection_threshold(mut self, d: Option<Duration>) -> Self {
        self.code.leak_threshold = Some(d);
        self
    }

    /// SQLite options and pragmas that override the URL's query parameters.
    pub fn sqlite_options(mut self, o: SqliteOptions) -> Self {
        self.sqlite = o;
        self
    }

    /// `PRAGMA busy_timeout` for SQLite connections. Defaults to 5 s.
    pub fn busy_timeout(mut self, d: Duration) -> Self {
        self.sqlite.busy_timeout = Some(d);
        self
    }

    /// `PRAGMA journal_mode` for SQLite. Defaults to WAL for writable files.
    pub fn journal_mode(mut self, j: crate::url::sqlite::JournalMode) -> Self {
        self.sqlite.journal_mode = Some(j);
        self
    }

    /// `PRAGMA synchronous` for SQLite. Defaults to NORMAL.
    pub fn synchronous(mut self, s: crate::url::sqlite::Synchronous) -> Self {
        self.sqlite.synchronous = Some(s);
        self
    }

    /// `PRAGMA foreign_keys` for SQLite. Defaults to on.
    pub fn foreign_keys(mut self, on: bool) -> Self {
        self.sqlite.foreign_keys = Some(on);
        self
    }

    /// Also read the environment variables (and a `.env` file in the current
    /// directory) for every setting not made in code.
    pub fn with_env(mut self) -> Self {
        self.use_env = true;
        self
    }

    /// Read environment-style settings through `lookup` instead of the
    /// process environment (implies [`with_env`](Self::with_env)). Useful in
    /// tests and for applications that keep settings elsewhere. No `.env`
    /// file is read unless [`dotenv_file`](Self::dotenv_file) names one.
    pub fn with_env_lookup<F>(mut self, lookup: F) -> Self
    where
        F: Fn(&str) -> Option<String> + Send + Sync + 'static,
    {
        self.use_env = true;
        self.lookup = Some(Arc::new(lookup));
        self
    }

    /// Read the `.env` layer from this file instead of `./.env`.
    pub fn dotenv_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.dotenv = Some(path.into());
        self
    }

    /// Merges the layers (code, environment, `.env`, profile, defaults) and
    /// validates the result.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidConfig`](crate::ErrorCode::InvalidConfig) naming the setting, the bad value and what
    /// is allowed; [`ErrorCode::InvalidUrl`](crate::ErrorCode::InvalidUrl) for a URL that cannot be parsed.
    pub fn build(self) -> Result<Config> {
        let mut layers = vec![self.code.clone()];
        if self.use_env {
            let env_layer = match &self.lookup {
                Some(f) => read_layer(|k| f(k), "")?,
                None => read_layer(process_env, "")?,
            };
            layers.push(env_layer);
            // A custom lookup replaces the process environment, so the
            // current directory's .env is only read when asked for.
            let dotenv = match (&self.dotenv, &self.lookup) {
                (Some(p), _) => Some(p.clone()),
                (None, None) if cfg!(not(target_arch = "wasm32")) => Some(PathBuf::from(".env")),
                (None, None) => None,
                (None, Some(_)) => None,
            };
            if let Some(vars) = dotenv.as_deref().map(read_dotenv).transpose()?.flatten() {
                let lookup = |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                layers.push(read_layer(lookup, " (from .env)")?);
            }
        }
        let profile = first_set!(layers, profile);
        let (profile_pool, profile_overflow) = if cfg!(target_arch = "wasm32") {
            // the wasm32 holder keeps one connection (see holder.rs)
            (1, 0)
        } else {
            profile.map(Profile::pool_sizes).unwrap_or((5, 10))
        };

        let url_given = first_set!(layers, url);
        let url_text = url_given.clone().unwrap_or_else(|| DEFAULT_URL.to_string());
        let mut target = parse_url(&url_text)?;
        if let Target::Sqlite(t) = &mut target {
            t.options = t.options.overlay(&self.sqlite);
            if let SqliteLocation::File(p) = &t.location {
                t.location = SqliteLocation::File(crate::url::absolute(p));
            }
        }

        let config = Config {
            target,
            url_from_default: url_given.is_none(),
            pool_size: first_set!(layers, pool_size).unwrap_or(profile_pool),
            max_overflow: first_set!(layers, max_overflow).unwrap_or(profile_overflow),
            pool_timeout: first_set!(layers, pool_timeout).unwrap_or(Duration::from_secs(30)),
            pool_recycle: first_set!(layers, pool_recycle)
                .unwrap_or(Some(Duration::from_secs(1800))),
            pool_pre_ping: first_set!(layers, pool_pre_ping).unwrap_or(true),
            pre_ping_window: first_set!(layers, pre_ping_window)
                .unwrap_or(Duration::from_millis(500)),
            echo: first_set!(layers, echo).unwrap_or(false),
            statement_timeout: first_set!(layers, statement_timeout).unwrap_or(None),
            query_timeout: first_set!(layers, query_timeout).unwrap_or(None),
            connect_timeout: first_set!(layers, connect_timeout).unwrap_or(Duration::from_secs(10)),
            health_check_interval: first_set!(layers, health_check_interval)
                .unwrap_or(Duration::from_secs(30)),
            profile,
            worker_id: first_set!(layers, worker_id).unwrap_or_else(|| "main".to_string()),
            leak_threshold: first_set!(layers, leak_threshold).unwrap_or(None),
            retry: {
                let d = crate::pool::retry::RetryPolicy::default();
                crate::pool::retry::RetryPolicy::new(
                    first_set!(layers, retry_attempts).unwrap_or(d.attempts),
                    first_set!(layers, retry_base_delay).unwrap_or(d.base_delay),
                    first_set!(layers, retry_max_delay).unwrap_or(d.max_delay),
                )
            },
        };
        config.validate()?;
        Ok(config)
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
    /// [`ErrorCode::InvalidUrl`](crate::ErrorCode::InvalidUrl) when the URL cannot be parsed.
    pub fn from_url(url: &str) -> Result<Config> {
        Config::builder().url(url).build()
    }

    /// A config from the environment variables, then `./.env`, then the
    /// profile, then the defaults. Without `DATABASE_URL` this is the
    /// embedded default, `sqlite:///dbmux.db`.
    ///
    /// # Errors
    /// [`ErrorCode::InvalidConfig`](crate::ErrorCode::InvalidConfig) naming the variable and the bad value.
    pub fn from_env() -> Result<Config> {
        Config::builder().with_env().build()
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

    /// Connections kept open.
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

    /// The retry policy of `with_retry` / `transaction_with_retry`.
    pub fn retry(&self) -> crate::pool::retry::RetryPolicy {
        self.retry
    }

    /// The worker id for debug info (`main` unless set).
    pub fn worker_id(&self) -> &str {
        &self.worker_id
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
        use std::sync::Mutex;
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
        assert_eq!(listed.len(), 20);
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
