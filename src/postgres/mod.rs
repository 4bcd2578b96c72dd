#![doc = include_str!("README.md")]

pub(crate) mod client;
mod errors;
pub(crate) mod hosts;
pub(crate) mod socket;
pub(crate) mod values;

pub use crate::url::postgres::{
    parse_postgres, parse_postgres_with_env, LoadBalanceHosts, PgSettings, SslMode,
    TargetSessionAttrs, DEFAULT_SOCKET_DIR,
};
pub use client::PgClient;
/// The tokio-postgres crate dbmux is built on.
pub use tokio_postgres;

mod connect;
mod replicas;
mod statements;
#[cfg(feature = "tls")]
mod tls;

pub(crate) use connect::{host_names, PgManager, SessionSettings};

/// The settings of the read pool: sessions read-only by default
/// (`default_transaction_read_only=on`, so the server refuses writes), and
/// with several hosts a standby where one qualifies, in a random order so
/// that reads spread over the standbys (`prefer-standby`,
/// `load_balance_hosts=random`), unless the URL already asks for standbys
/// or read-only servers; a requirement of writes (`read-write`, `primary`)
/// does not apply to reads.
pub(crate) fn read_settings(s: &PgSettings) -> PgSettings {
    let mut r = s.clone();
    let ro = "-c default_transaction_read_only=on";
    r.options = Some(match &s.options {
        Some(o) => format!("{o} {ro}"),
        None => ro.to_string(),
    });
    let keep = matches!(
        s.target_session_attrs,
        TargetSessionAttrs::Standby | TargetSessionAttrs::ReadOnly
    );
    if s.host.len().max(s.hostaddr.len()) > 1 {
        r.load_balance_hosts = LoadBalanceHosts::Random;
        if !keep {
            r.target_session_attrs = TargetSessionAttrs::PreferStandby;
        }
    } else if !keep {
        // one server: whatever it is, reads go there (a read-write
        // requirement is for the write pool)
        r.target_session_attrs = TargetSessionAttrs::Any;
    }
    r
}

/// The settings of the pool that reads on the primary when no standby can
/// serve a read (`get_read_after`, `DB_READ_MAX_LAG`): read-only sessions on
/// a server that is not in recovery, hosts in the URL's order.
pub(crate) fn primary_read_settings(s: &PgSettings) -> PgSettings {
    let mut r = read_settings(s);
    r.load_balance_hosts = LoadBalanceHosts::Disable;
    r.target_session_attrs = if s.host.len().max(s.hostaddr.len()) > 1 {
        TargetSessionAttrs::Primary
    } else {
        // one server: it is the only one there is
        TargetSessionAttrs::Any
    };
    r
}

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};
use crate::pool::checks::Checked;
use crate::pool::{ConnError, Stats};
use crate::value::Value;
use statements::{execute, execute_batch, last_insert_id, query_into, query_value};

/// A pooled PostgreSQL connection.
pub(crate) struct PgConn {
    /// `None` only while being dropped.
    client: Option<PgClient>,
    born: Instant,
    /// Checked out at least once since it was opened.
    pub(crate) used: bool,
    /// The schema epoch its statement cache was filled in (see
    /// `Hosts::schema_changed`).
    pub(crate) epoch: u64,
    /// DDL ran in the open transaction (its COMMIT changes the schema).
    pub(crate) ddl_in_tx: bool,
    /// SQL goes to the server as written (no `?` to `$n`): see
    /// [`crate::Connection::set_verbatim_sql`].
    pub(crate) verbatim: bool,
    idle_since: Instant,
    /// Whether the session is encrypted, as `pg_stat_ssl` reports it.
    pub tls: bool,
    /// Set when dbmux (or the user's SQL) opened a transaction.
    pub in_tx: bool,
    statements: HashMap<String, statements::Prepared>,
    /// The statement prepared last, checked before the map (a loop repeats one).
    last: Option<(String, statements::Prepared)>,
    stats: Arc<Stats>,
    /// The limit of dbmux's own round trips on it (pre-ping, rollback on
    /// return): see [`PgManager::ping_limit`].
    ping_limit: Option<Duration>,
    /// Which host of the URL it is connected to, in `known`.
    pub host: usize,
    pub known: Arc<hosts::Hosts>,
    /// The servers its pool accepts (`target_session_attrs`).
    want: TargetSessionAttrs,
    /// Whether the server was a standby when it was opened.
    pub standby: bool,
    /// A connection of the pool for writes.
    for_writes: bool,
    /// A reader that landed on the primary because no standby served: it is
    /// replaced after `DB_HOST_RECHECK`, so that reads go back to standbys.
    fallback: bool,
}

impl PgConn {
    pub fn client(&self) -> &PgClient {
        self.client.as_ref().expect("client present until drop")
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.stats.add(crate::pool::Count::Closed);
        drop(self.client.take());
    }
}

impl PgConn {
    /// Whether the server changed role since the connection was opened, so
    /// that its pool would no longer choose it, as the server reported in
    /// ParameterStatus (PostgreSQL 14+: `in_hot_standby` after a promotion,
    /// `default_transaction_read_only` after a reload).
    fn role_changed(&self) -> Option<String> {
        if self.want == TargetSessionAttrs::Any {
            return None;
        }
        let c = self.client();
        let on = |name| c.parameter(name).map(|v| v == "on");
        let standby = on("in_hot_standby")?;
        let read_only = on("default_transaction_read_only").unwrap_or(false);
        if standby != self.standby && self.want == TargetSessionAttrs::PreferStandby {
            // a promoted standby: prefer another standby again
            return (!standby).then(|| {
                format!(
                    "{} was promoted; reads look for a standby again",
                    self.known.name(self.host)
                )
            });
        }
        if self.want.accepts(standby, read_only) {
            return None;
        }
        Some(format!(
            "{} is now {}, but target_session_attrs={}",
            self.known.name(self.host),
            if standby {
                "a standby"
            } else if read_only {
                "read-only"
            } else {
                "a primary"
            },
            self.want.as_str()
        ))
    }
}

impl Checked for PgConn {
    fn born(&self) -> Instant {
        self.born
    }

    fn idle_since(&self) -> Instant {
        self.idle_since
    }

    fn set_idle_since(&mut self, now: Instant) {
        self.idle_since = now;
    }

    fn refused(&self, now: Instant) -> Option<ConnError> {
        let host = self.known.standing(self.host, self.born, now);
        if self.client().is_dead() {
            return Some(ConnError::PingFailed(Error::new(
                ErrorCode::ConnectFailed,
                "the server closed the connection",
            )));
        }
        let reason = if host.stale {
            "opened before the server failed or refused a write; replaced by a new connection"
                .to_string()
        } else if let Some(why) = self.role_changed() {
            why
        } else if let Some(why) = host.fenced {
            why
        } else if self.fallback && now.duration_since(self.born) >= self.known.recheck() {
            "a read on the primary while no standby could serve; trying the standbys again"
                .to_string()
        } else if !self.for_writes && host.lagging {
            format!(
                "{} lags more than DB_READ_MAX_LAG; reads go elsewhere for a while",
                self.known.name(self.host)
            )
        } else {
            return None;
        };
        Some(ConnError::Invalidated(Error::new(
            ErrorCode::ConnectFailed,
            reason,
        )))
    }

    #[inline]
    fn readiness(&self) -> crate::pool::checks::Readiness {
        self.client().readiness()
    }

    fn ping(&mut self) -> std::result::Result<(), ConnError> {
        let client = self.client();
        client
            .wait_for(self.ping_limit, client.client().simple_query("SELECT 1"))
            .map(|_| ())
            .map_err(|w| ConnError::PingFailed(w.into_error("pinging before checkout")))
    }

    fn is_broken(&self) -> bool {
        self.client().is_dead()
    }

    fn transaction_open(&self) -> bool {
        self.in_tx
    }

    fn roll_back(&mut self) -> bool {
        let client = self.client();
        let rollback = client.client().batch_execute("ROLLBACK");
        if client.wait_for(self.ping_limit, rollback).is_err() {
            return false;
        }
        self.in_tx = false;
        true
    }
}

impl crate::native::NativeConn for PgConn {
    fn backend(&self) -> crate::url::Backend {
        crate::url::Backend::Postgres
    }

    fn take_first_checkout(&mut self) -> bool {
        !std::mem::replace(&mut self.used, true)
    }

    fn set_verbatim(&mut self, on: bool) {
        self.verbatim = on;
    }

    fn discard(&mut self) {
        self.client().mark_dead();
    }

    fn interrupter(&mut self) -> Option<crate::native::Interrupter> {
        Some(self.client().interrupter())
    }

    fn take_interrupted(&mut self) -> bool {
        self.client()
            .interrupted()
            .swap(false, std::sync::atomic::Ordering::AcqRel)
    }

    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        execute(self, sql, params)
    }

    fn execute_batch(&mut self, sql: &str) -> Result<()> {
        execute_batch(self, sql)
    }

    fn query_into(
        &mut self,
        sql: &str,
        params: &[Value],
        sink: &mut dyn crate::value::RowSink,
    ) -> Result<u64> {
        query_into(self, sql, params, sink)
    }

    fn query_value(&mut self, sql: &str, params: &[Value]) -> Result<Value> {
        query_value(self, sql, params)
    }

    fn last_insert_id(&mut self) -> Result<i64> {
        last_insert_id(self)
    }

    fn is_encrypted(&self) -> Option<bool> {
        Some(self.tls)
    }

    fn in_transaction(&self) -> bool {
        self.in_tx
    }

    fn closes_without_waiting(&self) -> bool {
        true
    }

    // statement_timeout is enforced by the server, DB_QUERY_TIMEOUT by PgClient

    fn after_connection_error(&mut self, _shared: &crate::pool::Shared) {
        self.client().mark_dead();
        self.known.failed(
            self.host,
            &Error::new(ErrorCode::ConnectFailed, "the connection was lost"),
        );
        self.known.evict(self.host);
    }

    fn write_token(&mut self) -> Result<crate::WriteToken> {
        PgConn::write_token(self)
    }

    fn has_replayed(&mut self, lsn: u64) -> Result<bool> {
        PgConn::has_replayed(self, lsn)
    }

    fn lags_more_than(&mut self, max: crate::config::ReadMaxLag) -> Result<Option<String>> {
        let over = PgConn::lags_more_than(self, max)?;
        if over.is_some() {
            self.known.set_lagging(self.host, replicas::LAGGING_FOR);
        }
        Ok(over)
    }

    fn after_read_only_refusal(&mut self) -> Option<String> {
        if !self.for_writes {
            return None;
        }
        // the server is a standby or read-only now: find the primary again
        self.client().mark_dead();
        self.known.refused_write(self.host);
        Some(format!(
            "{} refused a write as read-only (it is a standby, or its sessions are read-only \
             now); dbmux dropped its connections to it, and new ones look for the primary again",
            self.known.name(self.host)
        ))
    }
}
