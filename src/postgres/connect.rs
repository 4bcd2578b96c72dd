//! Connecting to PostgreSQL: one config per host, libpq's sslmode order of
//! attempts, the connect deadline, and the classification of what failed
//! (a retry may help, or it cannot), for the pool's opener.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::config::SslMode as WireSslMode;
use tokio_postgres::NoTls;

use super::client::{PgClient, Waited};
use super::errors::classify;
use super::hosts::{parse_lsn, Admission, Hosts, Seen};
use super::socket::Endpoint;
#[cfg(feature = "tls")]
use super::tls::tls_connector;
use super::{PgConn, PgSettings, SslMode, TargetSessionAttrs};
use crate::error::{Error, ErrorCode, Result};
use crate::pool::core::Open;
use crate::pool::CheckSettings;
use crate::url::postgres::LoadBalanceHosts;

/// The TLS side of connections: native-tls over dbmux's socket.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct TlsMaker(native_tls::TlsConnector);

#[cfg(feature = "tls")]
impl super::client::MakeTls for TlsMaker {
    type Connect = postgres_native_tls::TlsConnector;

    fn make(
        &self,
        domain: &str,
    ) -> std::result::Result<Self::Connect, Box<dyn std::error::Error + Send + Sync>> {
        Ok(postgres_native_tls::TlsConnector::new(
            self.0.clone(),
            domain,
        ))
    }
}

/// A TLS connector that notes whether the server agreed to TLS: tokio-postgres
/// starts the handshake only after the server answered `S` to SSLRequest, so
/// an attempt that failed without it tells "the server refused TLS" apart
/// from every other failure, by structure.
#[cfg(feature = "tls")]
#[derive(Clone)]
pub(crate) struct Watched<T> {
    inner: T,
    started: Arc<AtomicBool>,
}

#[cfg(feature = "tls")]
impl<T: super::client::MakeTls> super::client::MakeTls for Watched<T> {
    type Connect = Watched<T::Connect>;

    fn make(
        &self,
        domain: &str,
    ) -> std::result::Result<Self::Connect, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Watched {
            inner: self.inner.make(domain)?,
            started: self.started.clone(),
        })
    }
}

#[cfg(feature = "tls")]
impl<S, T: tokio_postgres::tls::TlsConnect<S>> tokio_postgres::tls::TlsConnect<S> for Watched<T> {
    type Stream = T::Stream;
    type Error = T::Error;
    type Future = T::Future;

    fn connect(self, stream: S) -> T::Future {
        self.started.store(true, Relaxed);
        self.inner.connect(stream)
    }
}

/// The pool's connection manager: the settings of each host to try, and the
/// TLS connector when the sslmode may need one.
pub(crate) struct PgManager {
    sslmode: SslMode,
    /// Whether the settings carry a password (to tell "none given").
    has_password: bool,
    /// Which servers are acceptable (libpq's `target_session_attrs`).
    session_attrs: TargetSessionAttrs,
    /// The order in which hosts are tried (libpq's `load_balance_hosts`).
    load_balance: LoadBalanceHosts,
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
    /// What the manager knows of each host, shared by its pools.
    known: Arc<Hosts>,
    /// The pool for writes: fenced hosts and hosts that refused a write are
    /// avoided.
    for_writes: bool,
    /// Herd control: the earliest instant the next paced attempt may start.
    next_paced: std::sync::Mutex<Instant>,
}

impl std::fmt::Debug for PgManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgManager")
            .field("server", &self.display)
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

/// How long after a host's connections were dropped new ones are paced.
const PACED_FOR: Duration = Duration::from_secs(2);

/// The pace: at most one new connection per pool per this, while paced
/// (100 per second: a pool of 25 is full again within a quarter second).
const PACE: Duration = Duration::from_millis(10);

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

/// The hosts of `s` as `(name, port)`, in order, for [`Hosts`].
pub(crate) fn host_names(s: &PgSettings) -> Vec<(String, u16)> {
    (0..s.host.len().max(s.hostaddr.len()).max(1))
        .map(|i| {
            let name = s
                .host
                .get(i)
                .or(s.hostaddr.get(i))
                .cloned()
                .unwrap_or_else(|| super::DEFAULT_SOCKET_DIR.to_string());
            let port = s.port.get(i).or(s.port.first()).copied().unwrap_or(5432);
            (name, port)
        })
        .collect()
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
    c
}

impl PgManager {
    /// The opener of one pool: `known` is shared by the manager's pools;
    /// `for_writes` for the pool of `get()`.
    pub fn new(
        s: &PgSettings,
        session: &SessionSettings,
        settings: Arc<CheckSettings>,
        known: Arc<Hosts>,
        for_writes: bool,
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
                     the `tls` Cargo feature (`cargo add dbmux --features tls`)",
                    s.sslmode.as_str()
                ),
            ));
        }
        #[cfg(feature = "tls")]
        let tls = match s.sslmode {
            SslMode::Disable => None,
            mode => match tls_connector(s) {
                Ok(c) => Some(TlsMaker(c)),
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
            session_attrs: s.target_session_attrs,
            load_balance: s.load_balance_hosts,
            has_password: s.password.is_some(),
            hosts: host_configs(s, session),
            #[cfg(feature = "tls")]
            tls,
            connect_timeout: connect_timeout(s, session),
            query_timeout: session.query_timeout,
            settings,
            display: s.to_string(),
            known,
            for_writes,
            next_paced: std::sync::Mutex::new(Instant::now()),
        })
    }

    /// Herd control: for [`PACED_FOR`] after a host's connections were
    /// dropped (a failover, a restart), this pool's new connections start at
    /// most one per [`PACE`], each at a random point of its slot, so that
    /// the pools of many processes do not all reconnect to the new primary
    /// at once (and overrun its `max_connections`).
    fn pace(&self) {
        if self.known.since_eviction().map_or(true, |d| d >= PACED_FOR) {
            return;
        }
        let slot = {
            let mut next = self.next_paced.lock().unwrap_or_else(|p| p.into_inner());
            let slot = (*next).max(Instant::now());
            *next = slot + PACE;
            slot
        };
        let at = slot + PACE.mul_f64(crate::pool::retry::random_unit());
        let wait = at.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }

    /// One attempt on one host, plaintext or TLS (`wire` is Prefer or
    /// Require), within the connect deadline; classified where it fails.
    fn attempt(&self, host: &tokio_postgres::Config, wire: WireSslMode) -> Result<PgClient> {
        let (deadline, timeout) = (self.connect_timeout, self.query_timeout);
        let started = Arc::new(AtomicBool::new(false));
        let r = self.attempt_with(host, wire, &started, deadline, timeout);
        r.map_err(|w| match w {
            Waited::TimedOut(d) => connect_timed_out(d),
            w => {
                let e = w.into_error("connecting");
                // Asked for TLS, the server answered without starting it, and
                // nothing else failed: the server refused TLS.
                if wire == WireSslMode::Require
                    && !started.load(Relaxed)
                    && e.code() == ErrorCode::Sql
                    && e.sqlstate().is_none()
                {
                    Error::new(
                        ErrorCode::TlsFailed,
                        format!(
                            "the server does not accept TLS, but sslmode={} requires it: \
                             enable ssl on the server, or use sslmode=prefer ({e})",
                            self.sslmode.as_str()
                        ),
                    )
                    .with_source(e)
                } else if e.code() == ErrorCode::Sql && e.sqlstate().is_none() && !self.has_password
                {
                    // the server asked for a password during authentication,
                    // and there is none to send (libpq: "no password supplied")
                    Error::new(
                        ErrorCode::AuthFailed,
                        "the server asks for a password, but none was given: put it in the URL \
                         (user:password@host), in PGPASSWORD, or use a method that needs none",
                    )
                    .with_source(e)
                } else {
                    e
                }
            }
        })
    }

    fn attempt_with(
        &self,
        host: &tokio_postgres::Config,
        wire: WireSslMode,
        started: &Arc<AtomicBool>,
        deadline: Duration,
        timeout: Option<Duration>,
    ) -> std::result::Result<PgClient, Waited> {
        let endpoint = Endpoint::of(host);
        #[cfg(feature = "tls")]
        if wire != WireSslMode::Disable {
            if let Some(tls) = &self.tls {
                let mut c = host.clone();
                c.ssl_mode(wire);
                let tls = Watched {
                    inner: tls.clone(),
                    started: started.clone(),
                };
                return PgClient::connect(&endpoint, &c, tls, deadline, timeout);
            }
        }
        #[cfg(not(feature = "tls"))]
        let _ = (wire, started);
        let mut c = host.clone();
        c.ssl_mode(WireSslMode::Disable);
        PgClient::connect(&endpoint, &c, NoTls, deadline, timeout)
    }

    /// libpq's `target_session_attrs`: a server that does not qualify is
    /// skipped (the next host is tried). The server's state comes from what
    /// it reports itself at startup (`in_hot_standby`,
    /// `default_transaction_read_only`, PostgreSQL 14+); older servers are
    /// asked.
    fn check_session_attrs(&self, c: PgClient, want: TargetSessionAttrs) -> Result<PgClient> {
        if want == TargetSessionAttrs::Any || want == TargetSessionAttrs::PreferStandby {
            return Ok(c);
        }
        let (standby, read_only) = server_state(&c, self.connect_timeout).map_err(|w| match w {
            Waited::TimedOut(d) => connect_timed_out(d),
            w => w.into_error("connecting"),
        })?;
        if want.accepts(standby, read_only) {
            return Ok(c);
        }
        let what = match (standby, want) {
            (true, _) => "the server is a standby (in recovery)",
            (false, TargetSessionAttrs::Standby) => "the server is a primary (not in recovery)",
            (false, _) => "the server is read-only (default_transaction_read_only=on)",
        };
        Err(Error::new(
            ErrorCode::ConnectFailed,
            format!("{what}, but target_session_attrs={}", want.as_str()),
        ))
    }

    /// Whether this build and sslmode can negotiate TLS at all.
    fn can_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        return self.tls.is_some();
        #[cfg(not(feature = "tls"))]
        false
    }

    /// Opens a client on the first host that qualifies, following libpq's
    /// sslmode rules on each: hosts in the order given (or shuffled for
    /// `load_balance_hosts=random`); `prefer-standby` makes a second pass
    /// accepting any server when no standby qualified. A host that failed
    /// lately is skipped while another may serve, and tried last (by one
    /// attempt at a time) when none did. Returns the client and its host.
    fn open_client(&self) -> Result<(PgClient, usize, Seen)> {
        let mut order: Vec<usize> = (0..self.hosts.len()).collect();
        if self.load_balance == LoadBalanceHosts::Random {
            // Fisher-Yates with the pool's jitter generator
            for i in (1..order.len()).rev() {
                let j = (crate::pool::retry::random_unit() * (i + 1) as f64) as usize;
                order.swap(i, j.min(i));
            }
        }
        let passes: &[TargetSessionAttrs] = match self.session_attrs {
            TargetSessionAttrs::PreferStandby => {
                &[TargetSessionAttrs::Standby, TargetSessionAttrs::Any]
            }
            _ => std::slice::from_ref(&self.session_attrs),
        };
        let mut last = None;
        let mut why: Vec<(usize, String)> = Vec::new();
        for last_resort in [false, true] {
            if last_resort && !order.iter().any(|&i| self.known.is_skipped(i)) {
                break;
            }
            for &want in passes {
                for &i in &order {
                    let probe = match self.known.admit(i, last_resort, self.for_writes) {
                        Admission::Try(probe) => probe,
                        Admission::Skip => continue,
                    };
                    if last_resort && probe.is_none() {
                        continue; // tried in the first pass
                    }
                    match self.try_host(i, want) {
                        Ok(found) => return Ok(found),
                        Err(e) => {
                            if !why.iter().any(|(h, _)| *h == i) {
                                why.push((i, e.to_string()));
                            }
                            last = Some(e);
                        }
                    }
                    drop(probe);
                }
            }
        }
        let last = last.unwrap_or_else(|| self.all_skipped());
        if why.len() < 2 {
            return Err(last);
        }
        // several hosts, each with its own reason
        let each: Vec<String> = why
            .iter()
            .map(|(i, e)| format!("{}: {e}", self.known.name(*i)))
            .collect();
        Err(Error::new(
            last.code(),
            format!("no host could be used ({})", each.join("; ")),
        )
        .caused_by(last))
    }

    /// With several hosts: connects to each (at once, each within the
    /// connect timeout) to note its role, timeline and position, or why it
    /// failed; for health checks.
    pub(crate) fn probe_hosts(&self) {
        if self.hosts.len() < 2 {
            return;
        }
        std::thread::scope(|s| {
            for i in 0..self.hosts.len() {
                s.spawn(move || match self.connect_host(&self.hosts[i]) {
                    Ok(c) => {
                        if let Ok(seen) = self.seen(&c) {
                            let _ = self.known.connected(i, seen);
                        }
                    }
                    Err(e) => self.known.failed(i, &e),
                });
            }
        });
    }

    /// One host: connect, note what it is, check it qualifies.
    fn try_host(&self, i: usize, want: TargetSessionAttrs) -> Result<(PgClient, usize, Seen)> {
        let c = match self.connect_host(&self.hosts[i]) {
            Ok(c) => c,
            Err(e) => {
                self.known.failed(i, &e);
                return Err(e);
            }
        };
        let seen = self.seen(&c)?;
        self.known.connected(i, seen)?;
        if let Some(why) = self.avoid(i) {
            return Err(why);
        }
        let c = self.check_session_attrs(c, want)?;
        Ok((c, i, seen))
    }

    /// A reason not to use host `i` for this pool now (reads avoid a standby
    /// that lags too much).
    fn avoid(&self, i: usize) -> Option<Error> {
        if !self.for_writes && self.hosts.len() > 1 && self.known.is_lagging(i) {
            return Some(Error::new(
                ErrorCode::ConnectFailed,
                format!(
                    "{} lags behind the primary by more than DB_READ_MAX_LAG",
                    self.known.name(i)
                ),
            ));
        }
        None
    }

    /// The error when every host was skipped (each failed lately, and
    /// another attempt is trying it again now).
    fn all_skipped(&self) -> Error {
        let hosts: Vec<String> = self
            .known
            .snapshot()
            .into_iter()
            .map(|h| match h.last_error {
                Some(e) => format!("{}:{}: {e}", h.host, h.port),
                None => format!("{}:{}: being tried", h.host, h.port),
            })
            .collect();
        Error::new(
            ErrorCode::ConnectFailed,
            format!(
                "every host failed lately and is being tried again by another attempt ({})",
                hosts.join("; ")
            ),
        )
    }

    /// What the server is: standby or primary (from ParameterStatus where
    /// the server reports it), and with several hosts its timeline and WAL
    /// position (for fencing and read-your-writes), asked in one query.
    fn seen(&self, c: &PgClient) -> Result<Seen> {
        let standby = c.parameter("in_hot_standby").map(|v| v == "on");
        if self.hosts.len() == 1 {
            return Ok(Seen {
                standby: standby.unwrap_or(false),
                ..Seen::default()
            });
        }
        const ASK: &str = "SELECT r.rec::text, CASE WHEN r.rec THEN NULL ELSE \
             substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END, \
             (CASE WHEN r.rec THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END)::text \
             FROM (SELECT pg_is_in_recovery() AS rec) r";
        let rows = c
            .wait_for(Some(self.connect_timeout), c.client().simple_query(ASK))
            .map_err(|w| match w {
                Waited::TimedOut(d) => connect_timed_out(d),
                w => w.into_error("connecting"),
            });
        let row = match rows {
            Ok(rows) => rows.into_iter().find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some((
                    r.get(0) == Some("true"),
                    r.get(1).and_then(|t| u32::from_str_radix(t, 16).ok()),
                    r.get(2).and_then(parse_lsn),
                )),
                _ => None,
            }),
            // a server that speaks the protocol but lacks these functions
            Err(e) if e.code() != ErrorCode::ConnectFailed => None,
            Err(e) => return Err(e),
        };
        Ok(match row {
            Some((rec, timeline, lsn)) => Seen {
                standby: rec,
                timeline,
                lsn,
            },
            None => Seen {
                standby: standby.unwrap_or(false),
                ..Seen::default()
            },
        })
    }

    /// Connects to one host with libpq's sslmode order of attempts.
    fn connect_host(&self, host: &tokio_postgres::Config) -> Result<PgClient> {
        let (plain, prefer, require) = (
            WireSslMode::Disable,
            WireSslMode::Prefer,
            WireSslMode::Require,
        );
        match self.sslmode {
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
        }
    }
}

/// Whether the server is a standby and whether its sessions are read-only by
/// default: from ParameterStatus where the server reports them (14+), else
/// asked.
pub(crate) fn server_state(
    c: &PgClient,
    limit: Duration,
) -> std::result::Result<(bool, bool), Waited> {
    let on = |v: Option<String>| v.map(|v| v == "on");
    if let (Some(standby), Some(read_only)) = (
        on(c.parameter("in_hot_standby")),
        on(c.parameter("default_transaction_read_only")),
    ) {
        return Ok((standby, read_only));
    }
    let rows = c.wait_for(
        Some(limit),
        c.client().simple_query(
            "SELECT pg_is_in_recovery()::text, current_setting('default_transaction_read_only')",
        ),
    )?;
    let row = rows.iter().find_map(|m| match m {
        tokio_postgres::SimpleQueryMessage::Row(r) => {
            Some((r.get(0) == Some("true"), r.get(1) == Some("on")))
        }
        _ => None,
    });
    Ok(row.unwrap_or((false, false)))
}

/// A connection attempt that ran out of time (transient: retried).
fn connect_timed_out(d: Duration) -> Error {
    Error::new(
        ErrorCode::ConnectFailed,
        format!(
            "timed out after {} (DB_CONNECT_TIMEOUT or connect_timeout) before the server \
             finished the connection, TLS and authentication included; the server may be hung \
             or overloaded",
            humantime::format_duration(d)
        ),
    )
}

impl PgManager {
    /// The limit of dbmux's own round trips (pre-ping, rollback on return):
    /// the query timeout, else the connect timeout, so that a hung server
    /// never hangs the pool.
    fn ping_limit(&self) -> Option<Duration> {
        Some(self.query_timeout.unwrap_or(self.connect_timeout))
    }
}

impl Open for PgManager {
    type Conn = PgConn;

    fn open(&self) -> Result<PgConn> {
        let open_err = |inner: Error| {
            Error::new(
                inner.code(),
                format!("could not connect to {}: {inner}", self.display),
            )
            .caused_by(inner)
        };
        self.pace();
        let (client, host, seen) = self.open_client().map_err(open_err)?;
        let tls = client
            .wait_for(
                Some(self.connect_timeout),
                client.client().query_one(
                    "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                ),
            )
            .map_err(|w| match w {
                Waited::TimedOut(d) => open_err(connect_timed_out(d)),
                w => open_err(w.into_error("connecting")),
            })?
            .try_get::<_, bool>(0)
            .map_err(|e| open_err(classify(e)))?;
        let now = Instant::now();
        Ok(PgConn {
            client: Some(client),
            born: now,
            used: false,
            verbatim: false,
            epoch: 0,
            ddl_in_tx: false,
            idle_since: now,
            tls,
            in_tx: false,
            statements: HashMap::new(),
            last: None,
            stats: self.settings.stats.clone(),
            ping_limit: self.ping_limit(),
            host,
            known: self.known.clone(),
            want: self.session_attrs,
            standby: seen.standby,
            for_writes: self.for_writes,
            fallback: !self.for_writes
                && self.session_attrs == TargetSessionAttrs::PreferStandby
                && !seen.standby
                && self.hosts.len() > 1,
        })
    }
}
