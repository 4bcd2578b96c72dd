//! [`ConfigBuilder`]: settings from code, layered over the environment, a
//! `.env` file, the profile and the defaults.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::env::{process_env, read_dotenv, read_layer};
use super::layer::Layer;
use super::{Config, Profile, DEFAULT_URL};
use crate::error::Result;
use crate::url::sqlite::SqliteOptions;
use crate::url::{parse_url, SqliteLocation, Target};

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

    /// Connections kept open in the read pool of [`Manager::get_read`](crate::Manager::get_read)
    /// (`DB_READ_POOL_SIZE`); defaults to `pool_size`.
    pub fn read_pool_size(mut self, n: u32) -> Self {
        self.code.read_pool_size = Some(n);
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

    /// The `pool` label of this manager's metrics (`DB_POOL_NAME`).
    /// Defaults to the redacted URL.
    pub fn pool_name(mut self, name: impl Into<String>) -> Self {
        self.code.pool_name = Some(name.into());
        self
    }

    /// Whether to record the duration histograms of the metrics
    /// (`DB_METRICS_HISTOGRAMS`). On by default; off leaves them empty and
    /// keeps the counters and gauges.
    pub fn metrics_histograms(mut self, on: bool) -> Self {
        self.code.metrics_histograms = Some(on);
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

    /// With several PostgreSQL hosts: how long a host that failed is skipped
    /// while another can serve, before one connection attempt tries it again
    /// (`DB_HOST_RECHECK`). Defaults to 10 s.
    pub fn host_recheck(mut self, d: Duration) -> Self {
        self.code.host_recheck = Some(d);
        self
    }

    /// The most a standby may lag behind the primary for
    /// [`Manager::get_read`](crate::Manager::get_read) to read on it
    /// (`DB_READ_MAX_LAG`); `None` (the default) = no limit.
    pub fn read_max_lag(mut self, lag: Option<crate::config::ReadMaxLag>) -> Self {
        self.code.read_max_lag = Some(lag);
        self
    }

    /// How long [`Manager::get_read_after`](crate::Manager::get_read_after)
    /// waits for a standby to replay the token's write before it reads on
    /// the primary (`DB_READ_AFTER_WAIT`). Defaults to 50 ms.
    pub fn read_after_wait(mut self, d: Duration) -> Self {
        self.code.read_after_wait = Some(d);
        self
    }

    /// SQLite: log (once, at WARN, with where its connection was checked
    /// out) a reader's read transaction open longer than this, since it
    /// keeps the WAL from being checkpointed (`DB_SQLITE_MAX_READ_TX`).
    /// `None` turns it off. Defaults to 30 s.
    pub fn sqlite_max_read_tx(mut self, d: Option<Duration>) -> Self {
        self.code.sqlite_max_read_tx = Some(d);
        self
    }

    /// SQLite: the WAL size past which new read transactions wait briefly
    /// (at most 245 ms) while dbmux's checkpointer resets the WAL, in bytes
    /// (`DB_SQLITE_WAL_SOFT_LIMIT`). `0` turns dbmux's WAL controller off
    /// (SQLite then checkpoints on commit, as it does by default). Defaults
    /// to 16 MiB.
    pub fn sqlite_wal_soft_limit(mut self, bytes: u64) -> Self {
        self.code.sqlite_wal_soft_limit = Some(bytes);
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

        let pool_name = first_set!(layers, pool_name).unwrap_or_else(|| target.to_string());
        let config = Config {
            target,
            url_from_default: url_given.is_none(),
            pool_size: first_set!(layers, pool_size).unwrap_or(profile_pool),
            read_pool_size: first_set!(layers, read_pool_size)
                .unwrap_or_else(|| first_set!(layers, pool_size).unwrap_or(profile_pool)),
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
            host_recheck: first_set!(layers, host_recheck).unwrap_or(Duration::from_secs(10)),
            read_max_lag: first_set!(layers, read_max_lag).unwrap_or(None),
            read_after_wait: first_set!(layers, read_after_wait)
                .unwrap_or(Duration::from_millis(50)),
            sqlite_max_read_tx: first_set!(layers, sqlite_max_read_tx)
                .unwrap_or(Some(Duration::from_secs(30))),
            sqlite_wal_soft_limit: first_set!(layers, sqlite_wal_soft_limit).unwrap_or(16 << 20),
            pool_name,
            metrics_histograms: first_set!(layers, metrics_histograms).unwrap_or(true),
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
