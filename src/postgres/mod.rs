#![doc = include_str!("README.md")]

pub(crate) mod client;
mod errors;
pub(crate) mod values;

pub use crate::url::postgres::{
    parse_postgres, parse_postgres_with_env, PgSettings, SslMode, TargetSessionAttrs,
    DEFAULT_SOCKET_DIR,
};
pub use client::PgClient;
/// The tokio-postgres crate dbmux is built on.
pub use tokio_postgres;

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::{NoTls, Statement};

use crate::error::{Error, ErrorCode, Result};
use crate::placeholders::{rewrite, Target};
use crate::pool::checks::Checked;
use crate::pool::{CheckSettings, ConnError, Stats};
use crate::postgres::client::Waited;
use crate::postgres::values::PgValue;
use crate::value::{Column, Value};
use errors::{classify, decode_error};

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

/// A pooled PostgreSQL connection.
pub(crate) struct PgConn {
    /// `None` only while being dropped.
    client: Option<PgClient>,
    born: Instant,
    idle_since: Instant,
    /// Whether the session is encrypted, as `pg_stat_ssl` reports it.
    pub tls: bool,
    /// Set when dbmux (or the user's SQL) opened a transaction.
    pub in_tx: bool,
    statements: HashMap<String, Statement>,
    /// The statement prepared last, checked before the map (a loop repeats one).
    last: Option<(String, Statement)>,
    stats: Arc<Stats>,
    /// The limit of dbmux's own round trips on it (pre-ping, rollback on
    /// return): see [`PgManager::ping_limit`].
    ping_limit: Option<Duration>,
}

impl PgConn {
    pub fn client(&self) -> &PgClient {
        self.client.as_ref().expect("client present until drop")
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        self.stats.closed.fetch_add(1, Relaxed);
        if let Some(c) = self.client.take() {
            // Dropping a client blocks on its runtime: never inside another.
            if tokio::runtime::Handle::try_current().is_ok() {
                std::thread::spawn(move || drop(c));
            } else {
                drop(c);
            }
        }
    }
}

#[cfg(feature = "tls")]
type TlsMaker = postgres_native_tls::MakeTlsConnector;

/// The pool's connection manager: the settings of each host to try, and the
/// TLS connector when the sslmode may need one.
pub(crate) struct PgManager {
    sslmode: SslMode,
    /// One config per host, tried in order, each with its own deadline.
    hosts: Vec<tokio_postgres::Config>,
    #[cfg(feature = "tls")]
    tls: Option<TlsMaker>,
    /// The deadline of one connection attempt, startup and TLS included.
    connect_timeout: Duration,
    /// The deadline of one call (`DB_QUERY_TIMEOUT`).
    query_timeout: Option<Duration>,
    settings: Arc<CheckSettings>,
    display: String,
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgManager")
            .field("server", &self.display)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// Session-level settings from dbmux's config.
pub(crate) struct SessionSettings {
    pub statement_timeout: Option<Duration>,
    pub connect_timeout: Duration,
    pub query_timeout: Option<Duration>,
    pub application_name: String,
}

/// The connect deadline: the URL's `connect_timeout`, else `DB_CONNECT_TIMEOUT`.
fn connect_timeout(s: &PgSettings, session: &SessionSettings) -> Duration {
    s.connect_timeout
        .map(Duration::from_secs)
        .unwrap_or(session.connect_timeout)
}

/// One config per host in `s` (with its port and hostaddr), in order.
fn host_configs(s: &PgSettings, session: &SessionSettings) -> Vec<tokio_postgres::Config> {
    let base = base_config(s, session);
    (0..s.host.len().max(1))
        .map(|i| {
            let mut c = base.clone();
            if let Some(h) = s.host.get(i) {
                c.host(h);
            }
            if let Some(ip) = s.hostaddr.get(i).and_then(|a| a.parse().ok()) {
                c.hostaddr(ip);
            }
            if let Some(p) = s.port.get(i).or(s.port.first()) {
                c.port(*p);
            }
            c
        })
        .collect()
}

fn base_config(s: &PgSettings, session: &SessionSettings) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.user(&s.user).dbname(&s.dbname);
    if let Some(p) = &s.password {
        c.password(p);
    }
    let app = s
        .application_name
        .clone()
        .unwrap_or_else(|| session.application_name.clone());
    c.application_name(&app);
    // DB_STATEMENT_TIMEOUT first, so that an explicit `options` in the URL
    // (later on the command line, so it wins) can still override it
    let mut options = match session.statement_timeout {
        Some(t) => format!("-c statement_timeout={}", t.as_millis()),
        None => String::new(),
    };
    if let Some(o) = &s.options {
        if !options.is_empty() {
            options.push(' ');
        }
        options.push_str(o);
    }
    if !options.is_empty() {
        c.options(&options);
    }
    c.connect_timeout(connect_timeout(s, session));
    c.keepalives(s.keepalives);
    if let Some(idle) = s.keepalives_idle {
        c.keepalives_idle(Duration::from_secs(idle.max(1)));
    }
    c.target_session_attrs(match s.target_session_attrs {
        TargetSessionAttrs::Any => tokio_postgres::config::TargetSessionAttrs::Any,
        TargetSessionAttrs::ReadWrite => tokio_postgres::config::TargetSessionAttrs::ReadWrite,
        TargetSessionAttrs::ReadOnly => tokio_postgres::config::TargetSessionAttrs::ReadOnly,
    });
    c
}

#[cfg(feature = "tls")]
fn tls_config_error(msg: String) -> Error {
    Error::new(ErrorCode::InvalidConfig, msg)
}

/// `~/.postgresql/<name>`, libpq's default place for TLS files.
#[cfg(feature = "tls")]
fn default_tls_file(name: &str) -> String {
    let home = std::env::var("HOME").unwrap_or_default();
    format!("{home}/.postgresql/{name}")
}

/// Builds the native-tls connector for `s.sslmode`, following libpq's rules:
///
/// - the root certificate file is `sslrootcert`, else `~/.postgresql/root.crt`;
///   whenever that file exists, every mode that tries TLS (allow, prefer,
///   require, verify-ca, verify-full) verifies the server's chain against it;
///   when it does not, verify-ca and verify-full fail and the other modes
///   accept any certificate; `sslrootcert=system` uses the system's roots;
/// - host names are checked only by verify-full;
/// - the client certificate is `sslcert`, else `~/.postgresql/postgresql.crt`,
///   with `sslkey`, else `~/.postgresql/postgresql.key`: used when the
///   certificate file exists, and an error when its key is missing.
///
/// # Errors
/// [`ErrorCode::InvalidConfig`] naming the file: a missing root for
/// verify-ca / verify-full, an unreadable or unparsable file, a client
/// certificate without its key.
#[cfg(feature = "tls")]
fn tls_connector(s: &PgSettings) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    let strict = matches!(s.sslmode, SslMode::VerifyCa | SslMode::VerifyFull);
    let root = s
        .sslrootcert
        .clone()
        .unwrap_or_else(|| default_tls_file("root.crt"));
    let verify = if root == "system" {
        true
    } else if std::path::Path::new(&root).exists() {
        let pem = std::fs::read(&root).map_err(|e| {
            tls_config_error(format!(
                "could not read root certificate file \"{root}\": {e}"
            ))
        })?;
        let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            tls_config_error(format!(
                "could not parse root certificate file \"{root}\": {e}"
            ))
        })?;
        if certs.is_empty() {
            return Err(tls_config_error(format!(
                "root certificate file \"{root}\" holds no PEM certificate"
            )));
        }
        b.disable_built_in_roots(true);
        for c in certs {
            b.add_root_certificate(c);
        }
        true
    } else if strict {
        return Err(tls_config_error(format!(
            "root certificate file \"{root}\" does not exist; either provide the file with \
             sslrootcert=<file>, use the system's trusted roots with sslrootcert=system, or \
             change sslmode to disable server certificate verification"
        )));
    } else {
        false
    };
    if verify {
        b.danger_accept_invalid_hostnames(s.sslmode != SslMode::VerifyFull);
    } else {
        b.danger_accept_invalid_certs(true);
        b.danger_accept_invalid_hostnames(true);
    }
    let cert = s
        .sslcert
        .clone()
        .unwrap_or_else(|| default_tls_file("postgresql.crt"));
    if std::path::Path::new(&cert).exists() {
        let key = s
            .sslkey
            .clone()
            .unwrap_or_else(|| default_tls_file("postgresql.key"));
        if !std::path::Path::new(&key).exists() {
            return Err(tls_config_error(format!(
                "certificate present, but not private key file \"{key}\"; give the client \
                 certificate's key with sslkey=<file>"
            )));
        }
        let read = |p: &str, what: &str| {
            std::fs::read(p)
                .map_err(|e| tls_config_error(format!("could not read {what} file \"{p}\": {e}")))
        };
        let id = native_tls::Identity::from_pkcs8(
            &read(&cert, "certificate")?,
            &read(&key, "private key")?,
        )
        .map_err(|e| {
            tls_config_error(format!(
                "could not load client certificate \"{cert}\" with key \"{key}\": {e}"
            ))
        })?;
        b.identity(id);
    }
    b.build()
        .map_err(|e| tls_config_error(format!("could not set up TLS: {e}")))
}

impl PgManager {
    pub fn new(
        s: &PgSettings,
        session: &SessionSettings,
        settings: Arc<CheckSettings>,
    ) -> Result<PgManager> {
        #[cfg(not(feature = "tls"))]
        if !matches!(
            s.sslmode,
            SslMode::Disable | SslMode::Allow | SslMode::Prefer
        ) {
            return Err(Error::new(
                ErrorCode::FeatureDisabled,
                format!(
                    "sslmode={} needs TLS, but this build of dbmux has no TLS support; enable \
                     the `tls` Cargo feature",
                    s.sslmode.as_str()
                ),
            ));
        }
        #[cfg(feature = "tls")]
        let tls = match s.sslmode {
            SslMode::Disable => None,
            mode => match tls_connector(s) {
                Ok(c) => Some(postgres_native_tls::MakeTlsConnector::new(c)),
                // libpq's allow and prefer go on without TLS when it cannot be set up
                Err(e) if matches!(mode, SslMode::Allow | SslMode::Prefer) => {
                    log::warn!(
                        target: "dbmux::postgres",
                        "TLS cannot be used for {s} ({e}); sslmode={} connects without it",
                        mode.as_str()
                    );
                    None
                }
                Err(e) => return Err(e),
            },
        };
        Ok(PgManager {
            sslmode: s.sslmode,
            hosts: host_configs(s, session),
            #[cfg(feature = "tls")]
            tls,
            connect_timeout: connect_timeout(s, session),
            query_timeout: session.query_timeout,
            settings,
            display: s.to_string(),
        })
    }

    /// One attempt on one host, plaintext or TLS (`wire` is Prefer or
    /// Require), within the connect deadline.
    fn attempt(
        &self,
        host: &tokio_postgres::Config,
        wire: WireSslMode,
    ) -> std::result::Result<PgClient, Waited> {
        let (deadline, timeout) = (self.connect_timeout, self.query_timeout);
        #[cfg(feature = "tls")]
        if wire != WireSslMode::Disable {
            if let Some(tls) = &self.tls {
                let mut c = host.clone();
                c.ssl_mode(wire);
                return PgClient::connect(&c, tls.clone(), deadline, timeout);
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = wire;
        let mut c = host.clone();
        c.ssl_mode(WireSslMode::Disable);
        PgClient::connect(&c, NoTls, deadline, timeout)
    }

    /// Whether this build and sslmode can negotiate TLS at all.
    fn can_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Opens a client on the first host that accepts, following libpq's
    /// sslmode rules on each.
    fn open(&self) -> std::result::Result<PgClient, Waited> {
        let (plain, prefer, require) = (
            WireSslMode::Disable,
            WireSslMode::Prefer,
            WireSslMode::Require,
        );
        let mut last = None;
        for host in &self.hosts {
            let r = match self.sslmode {
                _ if !self.can_tls() => self.attempt(host, plain),
                SslMode::Disable => self.attempt(host, plain),
                // plaintext first; TLS if the server refuses it
                SslMode::Allow => self
                    .attempt(host, plain)
                    .or_else(|_| self.attempt(host, require)),
                // TLS (or plaintext if the server has no TLS); plaintext if TLS fails
                SslMode::Prefer => self
                    .attempt(host, prefer)
                    .or_else(|_| self.attempt(host, plain)),
                _ => self.attempt(host, require),
            };
            match r {
                Ok(c) => return Ok(c),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one host"))
    }
}

impl PgManager {
    /// The limit of dbmux's own round trips (pre-ping, rollback on return):
    /// the query timeout, else the connect timeout, so that a hung server
    /// never hangs the pool.
    fn ping_limit(&self) -> Option<Duration> {
        Some(self.query_timeout.unwrap_or(self.connect_timeout))
    }
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = ConnError;

    fn connect(&self) -> std::result::Result<PgConn, ConnError> {
        let open_err = |inner: Error| {
            ConnError::Open(
                Error::new(
                    ErrorCode::ConnectFailed,
                    format!("could not connect to {}: {inner}", self.display),
                )
                .with_source(inner),
            )
        };
        let timed_out = |d: Duration| {
            Error::new(
                ErrorCode::ConnectFailed,
                format!(
                    "timed out after {} (DB_CONNECT_TIMEOUT or connect_timeout) before the \
                     server finished the connection, TLS and authentication included; the \
                     server may be hung or overloaded",
                    humantime::format_duration(d)
                ),
            )
        };
        let waited = |w: Waited| match w {
            Waited::TimedOut(d) => timed_out(d),
            w => w.into_error("connecting"),
        };
        let client = self.open().map_err(|w| open_err(waited(w)))?;
        let tls = client
            .wait_for(
                Some(self.connect_timeout),
                client.client().query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                ),
            )
            .map_err(|w| open_err(waited(w)))?
            .try_get::<_, bool>(0)
            .map_err(|e| open_err(classify(e)))?;
        let now = Instant::now();
        Ok(PgConn {
            client: Some(client),
            born: now,
            idle_since: now,
            tls,
            in_tx: false,
            statements: HashMap::new(),
            last: None,
            stats: self.settings.stats.clone(),
            ping_limit: self.ping_limit(),
        })
    }

    fn is_valid(&self, c: &mut PgConn) -> std::result::Result<(), ConnError> {
        self.settings.validate(c)
    }

    fn has_broken(&self, c: &mut PgConn) -> bool {
        self.settings.on_return(c)
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

    fn refused(&self, settings: &CheckSettings) -> Option<ConnError> {
        let reason = if settings.stats.is_stale(self.born) {
            "opened before the server failed; replaced by a new connection"
        } else if self.client().is_dead() {
            "the server closed the connection"
        } else {
            return None;
        };
        Some(ConnError::PingFailed(Error::new(
            ErrorCode::ConnectFailed,
            reason,
        )))
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

/// Notes transaction-control statements so that a connection returned with
/// an open transaction is rolled back.
fn track_tx(c: &mut PgConn, sql: &str) {
    let first: String = sql
        .trim_start()
        .chars()
        .take_while(|ch| ch.is_ascii_alphabetic())
        .collect::<String>()
        .to_ascii_uppercase();
    match first.as_str() {
        "BEGIN" | "START" => c.in_tx = true,
        "COMMIT" | "END" | "ABORT" => c.in_tx = false,
        "ROLLBACK" => {
            let rest = sql.trim_start()[8..].trim_start().to_ascii_uppercase();
            if !rest.starts_with("TO") {
                c.in_tx = false;
            }
        }
        "PREPARE" if sql.to_ascii_uppercase().contains("TRANSACTION") => c.in_tx = false,
        _ => {}
    }
}

fn prepared(c: &mut PgConn, sql: &str) -> Result<Statement> {
    if let Some((last_sql, s)) = &c.last {
        if last_sql == sql {
            return Ok(s.clone());
        }
    }
    if let Some(s) = c.statements.get(sql) {
        return Ok(s.clone());
    }
    let pg_sql = rewrite(sql, Target::Dollar)?;
    let stmt = c.client().call(
        "preparing a statement",
        c.client().client().prepare(&pg_sql),
    )?;
    if c.statements.len() >= STATEMENT_CACHE {
        c.statements.clear();
    }
    c.statements.insert(sql.to_string(), stmt.clone());
    c.last = Some((sql.to_string(), stmt.clone()));
    Ok(stmt)
}

fn check_count(stmt: &Statement, params: &[Value]) -> Result<()> {
    let expected = stmt.params().len();
    if expected != params.len() {
        return Err(Error::new(
            ErrorCode::InvalidParameter,
            format!(
                "the statement takes {expected} parameter(s) but {} were given",
                params.len()
            ),
        ));
    }
    Ok(())
}

fn refs(params: &[Value]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params
        .iter()
        .map(|p| p as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect()
}

fn columns(stmt: &Statement) -> Arc<[Column]> {
    stmt.columns()
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            decl_type: Some(c.type_().name().to_string()),
        })
        .collect()
}

pub(crate) fn execute(c: &mut PgConn, sql: &str, params: &[Value]) -> Result<u64> {
    track_tx(c, sql);
    let stmt = prepared(c, sql)?;
    check_count(&stmt, params)?;
    let p = refs(params);
    c.client()
        .call("executing", c.client().client().execute(&stmt, &p))
}

pub(crate) fn execute_batch(c: &mut PgConn, sql: &str) -> Result<()> {
    track_tx(c, sql);
    c.client()
        .call("executing", c.client().client().batch_execute(sql))
}

/// Runs a statement and streams its result into `sink`; returns the rows
/// changed (0 for a query).
pub(crate) fn query_into(
    c: &mut PgConn,
    sql: &str,
    params: &[Value],
    sink: &mut dyn crate::value::RowSink,
) -> Result<u64> {
    use crate::postgres::values::Cell;
    track_tx(c, sql);
    let stmt = prepared(c, sql)?;
    check_count(&stmt, params)?;
    let cols = columns(&stmt);
    sink.columns(&cols);
    let p = refs(params);
    let client = c.client().client();
    if cols.is_empty() {
        return c.client().call("executing", client.execute(&stmt, &p));
    }
    let rows = c.client().call("querying", client.query(&stmt, &p))?;
    let n = cols.len();
    for r in &rows {
        for i in 0..n {
            match r.try_get::<_, Cell<'_>>(i).map_err(decode_error)? {
                Cell::Ref(v) => sink.value(v),
                Cell::Owned(v) => sink.value(v.as_ref()),
            }
        }
        sink.end_row();
        if !sink.wants_more() {
            break;
        }
    }
    Ok(0)
}

pub(crate) fn query_value(c: &mut PgConn, sql: &str, params: &[Value]) -> Result<Value> {
    let stmt = prepared(c, sql)?;
    check_count(&stmt, params)?;
    let p = refs(params);
    let rows = c
        .client()
        .call("querying", c.client().client().query(&stmt, &p))?;
    match rows.first() {
        Some(r) if !r.is_empty() => r
            .try_get::<_, PgValue>(0)
            .map(|v| v.0)
            .map_err(decode_error),
        _ => Err(Error::new(ErrorCode::NoRows, "the query returned no rows")),
    }
}

pub(crate) fn last_insert_id(c: &mut PgConn) -> Result<i64> {
    // Inside a transaction a failing lastval() would abort it: guard it with
    // a savepoint so that the caller's transaction survives the error.
    let in_tx = c.in_tx;
    let client = c.client().client();
    let result = c.client().call("reading lastval()", async {
        if in_tx {
            client.batch_execute("SAVEPOINT dbmux_lastval").await?;
        }
        let r = client.query_one("SELECT lastval()", &[]).await;
        if in_tx {
            let undo = if r.is_ok() {
                "RELEASE SAVEPOINT dbmux_lastval"
            } else {
                "ROLLBACK TO SAVEPOINT dbmux_lastval; RELEASE SAVEPOINT dbmux_lastval"
            };
            client.batch_execute(undo).await?;
        }
        r
    });
    let row = result.map_err(|inner| {
        if inner.code() != ErrorCode::Sql {
            return inner;
        }
        Error::new(
            ErrorCode::Sql,
            format!(
                "no last insert id: {inner}; on PostgreSQL use INSERT ... RETURNING id, or \
                 insert into a table with a serial/identity column first"
            ),
        )
    })?;
    row.try_get::<_, i64>(0).map_err(decode_error)
}

impl crate::native::NativeConn for PgConn {
    fn backend(&self) -> crate::url::Backend {
        crate::url::Backend::Postgres
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

    // statement_timeout is enforced by the server, DB_QUERY_TIMEOUT by PgClient

    fn after_connection_error(&mut self, shared: &crate::pool::Shared) {
        self.client().mark_dead();
        shared.stats.invalidate_all_now();
    }
}
