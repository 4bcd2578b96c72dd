//! The environment variables dbmux reads: one table ([`ENV_VARS`]) drives
//! reading the environment and `.env` files, and the table in the module docs (`src/config/README.md`).

use super::layer::Layer;
use super::parse::{
    parse_bool, parse_count, parse_duration, parse_ms_duration, parse_optional_duration,
};
use super::Profile;
use crate::error::{Error, ErrorCode, Result};

/// One environment variable dbmux reads: its name, default and meaning
/// (the module docs' table is made from these), and how its value becomes a
/// setting. [`ENV_VARS`] is the one list: the environment, `.env` files and
/// the documentation all go through it.
#[derive(Clone, Copy)]
pub struct EnvVar {
    /// The variable's name.
    pub name: &'static str,
    /// Its default, in words.
    pub default: &'static str,
    /// What it sets.
    pub doc: &'static str,
    /// Parses the (trimmed, non-empty) value into the layer; the second
    /// argument is the name to put in an error message.
    apply: fn(&mut Layer, &str, &str) -> Result<()>,
}

impl std::fmt::Debug for EnvVar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvVar")
            .field("name", &self.name)
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// Every environment variable dbmux reads, in the order it reads them.
pub static ENV_VARS: &[EnvVar] = &[
    EnvVar {
        name: "DATABASE_URL",
        default: "`sqlite:///dbmux.db`",
        doc: "the database URL (forms: [`dbmux::url`](crate::url))",
        apply: |l, _, v| {
            l.url = Some(v.to_string());
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_SIZE",
        default: "5 (profile)",
        doc: "connections kept open in the pool (0–10000)",
        apply: |l, n, v| {
            l.pool_size = Some(parse_count(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_READ_POOL_SIZE",
        default: "`DB_POOL_SIZE`",
        doc: "connections kept open in the read pool of `get_read()` (0–10000), beside the \
              pool for writes; `max_overflow` applies to it too",
        apply: |l, n, v| {
            l.read_pool_size = Some(parse_count(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_MAX_OVERFLOW",
        default: "10 (profile)",
        doc: "extra connections opened under load, closed when returned to a full pool \
              (0–10000; `pool_size + max_overflow >= 1`)",
        apply: |l, n, v| {
            l.max_overflow = Some(parse_count(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_TIMEOUT",
        default: "30 s",
        doc: "how long a checkout waits before failing (must be > 0)",
        apply: |l, n, v| {
            l.pool_timeout = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_RECYCLE",
        default: "1800 s",
        doc: "maximum connection lifetime; `0` or `-1` = never recycle",
        apply: |l, n, v| {
            l.pool_recycle = Some(parse_optional_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_PRE_PING",
        default: "true",
        doc: "validate a connection on checkout when it sat idle longer than the window",
        apply: |l, n, v| {
            l.pool_pre_ping = Some(parse_bool(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_PRE_PING_WINDOW",
        default: "500 ms",
        doc: "that idle window (HikariCP's value)",
        apply: |l, n, v| {
            l.pre_ping_window = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_ECHO",
        default: "false",
        doc: "log every statement's SQL and duration (never its parameters)",
        apply: |l, n, v| {
            l.echo = Some(parse_bool(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_STATEMENT_TIMEOUT",
        default: "0 (none)",
        doc: "cancel statements that run longer than this (enforced by the server on PostgreSQL)",
        apply: |l, n, v| {
            l.statement_timeout = Some(parse_optional_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_QUERY_TIMEOUT",
        default: "0 (none)",
        doc: "client side: stop waiting for the server's answer after this, with \
              `StatementTimeout`, and discard the connection; holds when the server itself \
              hangs. On SQLite it acts as a statement timeout",
        apply: |l, n, v| {
            l.query_timeout = Some(parse_optional_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_CONNECT_TIMEOUT",
        default: "10 s",
        doc: "limit for opening a server connection (PostgreSQL); also bounds how long a \
              health check waits for a pooled connection",
        apply: |l, n, v| {
            l.connect_timeout = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_HEALTH_CHECK_INTERVAL",
        default: "30 s",
        doc: "how long `health()` reuses its last result; `0` = always fresh",
        apply: |l, n, v| {
            l.health_check_interval = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_PROFILE",
        default: "*(none)*",
        doc: "`development`, `production` or `test`",
        apply: |l, n, v| {
            l.profile = Some(Profile::parse(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "APP_ENV",
        default: "*(none)*",
        doc: "the profile, when `DB_PROFILE` is not set",
        apply: |l, n, v| {
            if l.profile.is_none() {
                l.profile = Some(Profile::parse(n, v)?);
            }
            Ok(())
        },
    },
    EnvVar {
        name: "DB_POOL_NAME",
        default: "the redacted URL",
        doc: "the `pool` label of every metric (`Manager::metrics_text`); 1-200 characters, \
              no control characters",
        apply: |l, _, v| {
            l.pool_name = Some(v.to_string());
            Ok(())
        },
    },
    EnvVar {
        name: "DB_METRICS_HISTOGRAMS",
        default: "`true`",
        doc: "record the duration histograms (acquire wait, hold, connect, statement); `false` \
              leaves them empty (counters and gauges stay)",
        apply: |l, n, v| {
            l.metrics_histograms = Some(super::parse::parse_bool(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "PYTEST_XDIST_WORKER",
        default: "`main`",
        doc: "the worker id shown in debug info and in PostgreSQL's `application_name`",
        apply: |l, _, v| {
            l.worker_id = Some(v.to_string());
            Ok(())
        },
    },
    EnvVar {
        name: "DBMUX_WORKER_ID",
        default: "`main`",
        doc: "the worker id, when `PYTEST_XDIST_WORKER` is not set",
        apply: |l, _, v| {
            if l.worker_id.is_none() {
                l.worker_id = Some(v.to_string());
            }
            Ok(())
        },
    },
    EnvVar {
        name: "DB_RETRY_ATTEMPTS",
        default: "3",
        doc: "tries in all of `with_retry`, the first included (1–100)",
        apply: |l, n, v| {
            let tries = parse_count(n, v)?;
            if !(1..=100).contains(&tries) {
                return Err(Error::config(n, v, "must be from 1 to 100"));
            }
            l.retry_attempts = Some(tries);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_RETRY_BASE_DELAY_MS",
        default: "50 ms",
        doc: "first backoff ceiling of `with_retry` (a bare number is milliseconds)",
        apply: |l, n, v| {
            l.retry_base_delay = Some(parse_ms_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_RETRY_MAX_DELAY_MS",
        default: "2000 ms",
        doc: "largest backoff ceiling of `with_retry` (a bare number is milliseconds)",
        apply: |l, n, v| {
            l.retry_max_delay = Some(parse_ms_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_LEAK_DETECTION_THRESHOLD_MS",
        default: "0 (off)",
        doc: "warn once about a connection held longer than this (a bare number is \
              milliseconds)",
        apply: |l, n, v| {
            let d = parse_ms_duration(n, v)?;
            l.leak_threshold = Some((!d.is_zero()).then_some(d));
            Ok(())
        },
    },
    EnvVar {
        name: "DB_HOST_RECHECK",
        default: "10 s",
        doc: "with several PostgreSQL hosts: how long a host that failed is skipped (while \
              another can serve) before one connection attempt tries it again",
        apply: |l, n, v| {
            l.host_recheck = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_READ_MAX_LAG",
        default: "0 (no limit)",
        doc: "`get_read()` leaves out standbys that lag more than this: bytes of WAL \
              (`16MB`, `65536`) or a replay delay (`500ms`, `2s`); `0` = no limit",
        apply: |l, n, v| {
            l.read_max_lag = Some(super::ReadMaxLag::parse(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_SQLITE_MAX_READ_TX",
        default: "30 s",
        doc: "SQLite: a read transaction on a reader open longer than this is logged once at \
              WARN, with where its connection was checked out (it keeps the WAL from being \
              checkpointed); `0` = never",
        apply: |l, n, v| {
            l.sqlite_max_read_tx = Some(parse_optional_duration(n, v)?);
            Ok(())
        },
    },
    EnvVar {
        name: "DB_SQLITE_WAL_SOFT_LIMIT",
        default: "16 MiB",
        doc: "SQLite: when the WAL grows past this despite dbmux's background checkpoints, \
              new read transactions wait briefly (at most 245 ms) while a checkpoint resets \
              it (`64MB`, `16MiB`, bytes); `0` = no WAL controller (SQLite checkpoints on \
              commit)",
        apply: |l, n, v| {
            const ALLOWED: &str = "must be a size in bytes (16777216, 16MB, 64MiB), or 0 to \
                                   turn the WAL controller off";
            l.sqlite_wal_soft_limit = Some(
                super::parse::parse_bytes(n, v, ALLOWED)?
                    .ok_or_else(|| crate::error::Error::config(n, v, ALLOWED))?,
            );
            Ok(())
        },
    },
    EnvVar {
        name: "DB_READ_AFTER_WAIT",
        default: "50 ms",
        doc: "how long `get_read_after(token)` waits for a standby to replay the token's \
              write before it reads on the primary (a bare number is seconds)",
        apply: |l, n, v| {
            l.read_after_wait = Some(parse_duration(n, v)?);
            Ok(())
        },
    },
];

/// The module docs' table of [`ENV_VARS`] (variable, default, meaning), as
/// Markdown; a test keeps `src/config/README.md` equal to it.
pub fn env_vars_markdown() -> String {
    let mut t = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for v in ENV_VARS {
        t.push_str(&format!("| `{}` | {} | {} |\n", v.name, v.default, v.doc));
    }
    t
}

/// Reads the settings of one environment-like source. `suffix` is appended
/// to the variable name in error messages (e.g. " (from .env)").
pub(super) fn read_layer(get: impl Fn(&str) -> Option<String>, suffix: &str) -> Result<Layer> {
    let var = |name: &str| -> Result<Option<String>> {
        match get(name) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("{name}{suffix} is set but empty; unset it or give it a value"),
            )),
            Some(v) => Ok(Some(v.trim().to_string())),
        }
    };
    let mut l = Layer::default();
    for v in ENV_VARS {
        if let Some(value) = var(v.name)? {
            (v.apply)(&mut l, &format!("{}{suffix}", v.name), &value)?;
        }
    }
    Ok(l)
}

/// A process environment variable; wasm32 has no environment.
pub(super) fn process_env(name: &str) -> Option<String> {
    if cfg!(target_arch = "wasm32") {
        return None;
    }
    std::env::var(name).ok()
}

/// Reads a `.env` file: `None` when it does not exist.
pub(super) fn read_dotenv(path: &std::path::Path) -> Result<Option<Vec<(String, String)>>> {
    let iter = match dotenvy::from_path_iter(path) {
        Ok(it) => it,
        Err(e) if e.not_found() => return Ok(None),
        Err(e) => {
            return Err(Error::new(
                ErrorCode::InvalidConfig,
                format!("could not read {}: {e}", path.display()),
            ))
        }
    };
    let mut vars = Vec::new();
    for item in iter {
        let (k, v) = item.map_err(|e| {
            Error::new(
                ErrorCode::InvalidConfig,
                format!("could not parse {}: {}", path.display(), dotenv_error(&e)),
            )
        })?;
        vars.push((k, v));
    }
    Ok(Some(vars))
}

/// dotenvy's parse errors quote the offending line, which may hold a
/// password: keep only the position.
fn dotenv_error(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, idx) => {
            format!("syntax error at character {idx} of a line; fix or remove that line")
        }
        other => other.to_string(),
    }
}
