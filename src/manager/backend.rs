//! The manager's one dispatch point between the backends: building the
//! backend's pool for a target, and checking out of it.

use std::sync::Arc;
#[cfg(feature = "sqlite")]
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;
use crate::connection::Connection;
use crate::error::Result;
use crate::pool::core::{Pool, Refused, State};
use crate::pool::{Shared, Stats};
use crate::url::Target;

/// The pool of one backend.
pub(crate) enum BackendPool {
    #[cfg(feature = "sqlite")]
    Sqlite {
        pool: Pool<crate::sqlite::SqliteManager>,
        /// Read-only connections to the same database (`get_read`).
        read: Pool<crate::sqlite::SqliteManager>,
        /// Keeps an in-memory database alive until shutdown.
        _keeper: Option<Box<Mutex<rusqlite::Connection>>>,
        /// The database's writer lane (none on wasm32).
        lane: Option<Arc<crate::sqlite::lane::Lane>>,
        /// The database file (none in memory), and its journal mode.
        file: Option<std::path::PathBuf>,
        journal_mode: Option<&'static str>,
        /// This manager's use of the file's WAL controller (given up at
        /// close, after the pools: the last one waits for its thread).
        wal: Mutex<Option<crate::sqlite::checkpointer::WalUser>>,
    },
    #[cfg(feature = "postgres")]
    Postgres {
        pool: Pool<crate::postgres::PgManager>,
        /// Read-only sessions, on a standby where one qualifies (`get_read`).
        read: Pool<crate::postgres::PgManager>,
        /// Read-only sessions on the primary, for reads that no standby can
        /// serve (`get_read_after`, `DB_READ_MAX_LAG`).
        primary_read: Pool<crate::postgres::PgManager>,
        /// What the manager knows of each host, shared by the three pools.
        known: Arc<crate::postgres::hosts::Hosts>,
    },
    /// Keeps the enum matchable in a build without any backend.
    #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
    #[allow(dead_code)]
    None(std::convert::Infallible),
}

/// A clone of the backend's pool handle, to wait on without holding the
/// manager's lock (so that a shutdown never waits for a checkout).
pub(super) enum PoolHandle {
    #[cfg(feature = "sqlite")]
    Sqlite(Pool<crate::sqlite::SqliteManager>, bool),
    #[cfg(feature = "postgres")]
    Postgres(Pool<crate::postgres::PgManager>, bool),
}

// The manager's one dispatch point between the backends.
impl BackendPool {
    /// A handle on the pool for writes, or (`read`) the one for reads.
    pub(super) fn handle(&self, read: bool) -> PoolHandle {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite { pool, read: r, .. } => {
                PoolHandle::Sqlite(if read { r } else { pool }.clone(), read)
            }
            #[cfg(feature = "postgres")]
            BackendPool::Postgres { pool, read: r, .. } => {
                PoolHandle::Postgres(if read { r } else { pool }.clone(), read)
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            BackendPool::None(n) => match *n {},
        }
    }

    /// PostgreSQL with several hosts: the pool of read-only sessions on the
    /// primary, for reads no standby can serve.
    #[cfg(not(target_arch = "wasm32"))]
    pub(super) fn primary_reads(&self) -> Option<PoolHandle> {
        match self {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres {
                primary_read,
                known,
                ..
            } if known.len() > 1 => Some(PoolHandle::Postgres(primary_read.clone(), true)),
            _ => None,
        }
    }

    /// Closes the pool: idle connections close now, waiting checkouts fail
    /// with `ManagerClosed`.
    pub(super) fn close(&self) {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite {
                pool, read, wal, ..
            } => {
                read.close();
                pool.close();
                drop(wal.lock().unwrap_or_else(|p| p.into_inner()).take());
            }
            #[cfg(feature = "postgres")]
            BackendPool::Postgres {
                pool,
                read,
                primary_read,
                ..
            } => {
                primary_read.close();
                read.close();
                pool.close();
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            BackendPool::None(n) => match *n {},
        }
    }

    /// PostgreSQL with several hosts: connects to each to learn its role and
    /// lag (health checks).
    #[cfg_attr(not(feature = "sqlite"), allow(irrefutable_let_patterns))]
    pub(super) fn probe_hosts(&self) {
        #[cfg(feature = "postgres")]
        if let BackendPool::Postgres { pool, .. } = self {
            pool.opener().probe_hosts();
        }
    }

    /// SQLite: the database's writer lane (and WAL controller).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    pub(super) fn sqlite_lane(&self) -> Option<Arc<crate::sqlite::lane::Lane>> {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite { lane, .. } => lane.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// SQLite: the database file (`None` in memory and for PostgreSQL).
    #[cfg(all(feature = "sqlite", not(target_arch = "wasm32")))]
    pub(super) fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite { file, .. } => file.clone(),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// SQLite: the `sqlite` section of debug info.
    pub(super) fn sqlite_info(&self) -> Option<crate::health::SqliteInfo> {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite {
                lane,
                file,
                journal_mode,
                wal,
                ..
            } => {
                let wal_bytes = file.as_ref().and_then(|f| {
                    let mut w = f.clone().into_os_string();
                    w.push("-wal");
                    std::fs::metadata(w).ok().map(|m| m.len())
                });
                let waits = lane.as_ref().map(|l| &l.waits);
                let counter = |f: fn(&crate::sqlite::wal::Wal) -> &std::sync::atomic::AtomicU64| {
                    lane.as_ref()
                        .map_or(0, |l| f(&l.wal).load(std::sync::atomic::Ordering::Relaxed))
                };
                Some(crate::health::SqliteInfo {
                    journal_mode: journal_mode.map(str::to_string),
                    wal_bytes,
                    lane_waiting: lane.as_ref().map_or(0, |l| l.depth() as u64),
                    lane_waits: waits.map_or(0, |w| w.count()),
                    lane_wait_p50_ms: waits.map_or(0.0, |w| w.quantile_ms(0.5)),
                    lane_wait_p99_ms: waits.map_or(0.0, |w| w.quantile_ms(0.99)),
                    lane_wait_max_ms: waits.map_or(0.0, |w| w.max_ms()),
                    oldest_read_tx_ms: None,
                    long_read_tx_warnings: 0,
                    wal_controlled: wal.lock().unwrap_or_else(|p| p.into_inner()).is_some(),
                    wal_frames: lane.as_ref().map_or(0, |l| l.wal.frames()),
                    checkpoints: counter(|w| &w.checkpoints),
                    checkpoints_blocked: counter(|w| &w.checkpoints_blocked),
                    gate_closures: counter(|w| &w.gate_closures),
                    gate_waits: lane.as_ref().map_or(0, |l| l.wal.gate_waits.count()),
                    gate_wait_max_ms: lane.as_ref().map_or(0.0, |l| l.wal.gate_waits.max_ms()),
                })
            }
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// PostgreSQL: every host with what the manager knows of it.
    pub(super) fn hosts(&self) -> Vec<crate::health::HostHealth> {
        match self {
            #[cfg(feature = "postgres")]
            BackendPool::Postgres { known, .. } => known.snapshot(),
            #[allow(unreachable_patterns)]
            _ => Vec::new(),
        }
    }

    /// The gauges of each pool, by its `access` label: `write` (`get`),
    /// `read` (`get_read`), and with several PostgreSQL hosts
    /// `primary_read` (reads no standby could serve).
    pub(super) fn gauges(&self) -> Vec<(&'static str, crate::pool::core::Gauges)> {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite { pool, read, .. } => {
                vec![("write", pool.gauges()), ("read", read.gauges())]
            }
            #[cfg(feature = "postgres")]
            BackendPool::Postgres {
                pool,
                read,
                primary_read,
                known,
            } => {
                let mut v = vec![("write", pool.gauges()), ("read", read.gauges())];
                if known.len() > 1 {
                    v.push(("primary_read", primary_read.gauges()));
                }
                v
            }
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            BackendPool::None(n) => match *n {},
        }
    }

    /// The pool's size now.
    pub(super) fn state(&self) -> State {
        match self {
            #[cfg(feature = "sqlite")]
            BackendPool::Sqlite { pool, .. } => pool.state(),
            #[cfg(feature = "postgres")]
            BackendPool::Postgres { pool, .. } => pool.state(),
            #[cfg(not(any(feature = "sqlite", feature = "postgres")))]
            BackendPool::None(n) => match *n {},
        }
    }
}

impl PoolHandle {
    /// A connection at once, when one is idle and passes the checks
    /// without a round trip (see `Pool::try_get`).
    pub(super) fn try_checkout(
        self,
        start: crate::platform::Instant,
        shared: &Arc<Shared>,
    ) -> Option<Connection> {
        match self {
            #[cfg(feature = "sqlite")]
            PoolHandle::Sqlite(pool, read) => pool
                .try_get(start)
                .map(|c| Connection::sqlite(c, shared.clone(), read)),
            #[cfg(feature = "postgres")]
            PoolHandle::Postgres(pool, read) => pool
                .try_get(start)
                .map(|c| Connection::postgres(c, shared.clone(), read)),
        }
    }

    /// Waits up to `timeout` from `start` in line for a connection.
    pub(super) fn checkout(
        self,
        start: crate::platform::Instant,
        timeout: Duration,
        shared: &Arc<Shared>,
    ) -> std::result::Result<Connection, Refused> {
        match self {
            #[cfg(feature = "sqlite")]
            PoolHandle::Sqlite(pool, read) => pool
                .get_timeout(start, timeout)
                .map(|c| Connection::sqlite(c, shared.clone(), read)),
            #[cfg(feature = "postgres")]
            PoolHandle::Postgres(pool, read) => pool
                .get_timeout(start, timeout)
                .map(|c| Connection::postgres(c, shared.clone(), read)),
        }
    }
}

/// Builds the pool of `config`'s backend (nothing is opened yet, except the
/// keeper of an in-memory SQLite database).
pub(super) fn build_pool(config: &Config, stats: &Arc<Stats>) -> Result<BackendPool> {
    match config.target() {
        #[cfg(feature = "sqlite")]
        Target::Sqlite(t) => {
            use crate::sqlite::{open_keeper, open_spec, SqliteManager};
            crate::sqlite::library::check_library()?;
            let spec = open_spec(t);
            let keeper = if spec.memory {
                Some(Box::new(Mutex::new(open_keeper(&spec)?)))
            } else {
                None
            };
            // one set of checks (and counters) for both pools of the manager
            let checks = crate::pool::CheckSettings::new(config, stats);
            // one writer lane (and WAL controller) per database in the
            // process (not on wasm32, where a manager has one connection)
            let lane = (!cfg!(target_arch = "wasm32"))
                .then(|| crate::sqlite::lane::Lane::of(&spec.lane_key()));
            #[cfg(feature = "metrics")]
            if let Some(l) = &lane {
                l.waits_facade
                    .add(&stats.facade, crate::pool::SQLITE_LANE_WAIT);
                l.wal
                    .gate_waits_facade
                    .add(&stats.facade, crate::pool::SQLITE_GATE_WAIT);
            }
            let wal = lane.as_ref().and_then(|l| {
                let controlled = spec.path.is_some()
                    && spec.pragmas.journal_mode == Some(crate::sqlite::JournalMode::Wal)
                    && spec
                        .flags
                        .contains(rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
                    && config.sqlite_wal_soft_limit() > 0;
                controlled
                    .then(|| {
                        crate::sqlite::checkpointer::start(l, &spec, config.sqlite_wal_soft_limit())
                    })
                    .filter(|u| u.running())
            });
            let settings = |writes: bool| {
                lane.as_ref().map(|l| crate::sqlite::LaneSettings {
                    lane: l.clone(),
                    timeout: config.pool_timeout(),
                    trace: config.leak_detection_threshold().is_some(),
                    writes,
                    wal_hook: wal.is_some(),
                })
            };
            let manager =
                SqliteManager::new(&spec, t.display_path(), checks.clone(), settings(true));
            let pool = new_pool(config, "write", config.pool_size(), manager, checks.clone());
            let reader = SqliteManager::new(
                &spec.read_only(),
                t.display_path(),
                checks.clone(),
                settings(false),
            );
            let read = new_pool(config, "read", config.read_pool_size(), reader, checks);
            Ok(BackendPool::Sqlite {
                pool,
                read,
                _keeper: keeper,
                lane,
                file: spec.path.clone(),
                journal_mode: spec.pragmas.journal_mode.map(|j| j.as_str()),
                wal: Mutex::new(wal),
            })
        }
        #[cfg(not(feature = "sqlite"))]
        Target::Sqlite(_) => Err(crate::Error::new(
            crate::ErrorCode::FeatureDisabled,
            "this build of dbmux has no SQLite backend; enable the `sqlite` Cargo feature \
             (it is on by default)",
        )),
        #[cfg(feature = "postgres")]
        Target::Postgres(p) => {
            use crate::postgres::{PgManager, SessionSettings};
            let session = SessionSettings {
                statement_timeout: config.statement_timeout(),
                connect_timeout: config.connect_timeout(),
                query_timeout: config.query_timeout(),
                application_name: application_name(config.worker_id()),
            };
            use crate::postgres::hosts::Hosts;
            // one set of checks (and counters), and one view of the hosts,
            // for every pool of the manager
            let checks = crate::pool::CheckSettings::new(config, stats);
            let known = Arc::new(Hosts::new(
                crate::postgres::host_names(p.settings()),
                config.host_recheck(),
            ));
            let opener = |s: &crate::postgres::PgSettings, for_writes| {
                PgManager::new(s, &session, checks.clone(), known.clone(), for_writes)
            };
            let pool = new_pool(
                config,
                "write",
                config.pool_size(),
                opener(p.settings(), true)?,
                checks.clone(),
            );
            let reads = crate::postgres::read_settings(p.settings());
            let read = new_pool(
                config,
                "read",
                config.read_pool_size(),
                opener(&reads, false)?,
                checks.clone(),
            );
            let on_primary = crate::postgres::primary_read_settings(p.settings());
            let primary_read = Pool::new(
                "primary_read",
                opener(&on_primary, false)?,
                config.read_pool_size() + config.max_overflow(),
                1,
                checks,
            );
            Ok(BackendPool::Postgres {
                pool,
                read,
                primary_read,
                known,
            })
        }
        #[cfg(not(feature = "postgres"))]
        Target::Postgres(p) => Err(crate::Error::new(
            crate::ErrorCode::FeatureDisabled,
            format!(
                "{p} is a PostgreSQL URL, but this build of dbmux has no PostgreSQL backend; \
                 it needs the `postgres` Cargo feature, which is not a default one (`cargo \
                 add dbmux --features tls` for PostgreSQL with TLS, `--features postgres` \
                 without)"
            ),
        )),
    }
}

/// `dbmux`, or `dbmux_<worker>_<pid>` when a worker id is set, so that
/// parallel test workers can be told apart in `pg_stat_activity`.
#[cfg(feature = "postgres")]
pub(crate) fn application_name(worker_id: &str) -> String {
    if worker_id == "main" || worker_id.is_empty() {
        "dbmux".to_string()
    } else {
        format!("dbmux_{worker_id}_{}", crate::platform::process_id())
    }
}

/// A pool of `pool_size + max_overflow` connections that keeps `pool_size`
/// idle (`pool_size` is the write or the read pool's).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn new_pool<O: crate::pool::core::Open>(
    config: &Config,
    access: &'static str,
    pool_size: u32,
    opener: O,
    checks: Arc<crate::pool::CheckSettings>,
) -> Pool<O> {
    Pool::new(
        access,
        opener,
        pool_size + config.max_overflow(),
        pool_size,
        checks,
    )
}
