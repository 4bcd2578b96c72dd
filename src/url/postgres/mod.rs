#![doc = include_str!("README.md")]

use std::fmt;

mod syntax;

use syntax::{invalid, parse_int, parse_keyvalue, parse_port, parse_uri};

use crate::error::Result;

/// libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// Plaintext first; TLS if the server insists.
    Allow,
    /// TLS without verification; plaintext if the TLS attempt fails (the default).
    Prefer,
    /// TLS without verification, unless a root certificate is given: then the
    /// chain is verified (as libpq does).
    Require,
    /// TLS, chain verified, host name not checked.
    VerifyCa,
    /// TLS, chain and host name verified.
    VerifyFull,
}

impl SslMode {
    /// libpq's name for the mode.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(v: &str) -> Result<SslMode> {
        Ok(match v {
            "disable" => SslMode::Disable,
            "allow" => SslMode::Allow,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => {
                return Err(invalid(format!(
                    "invalid sslmode value: \"{v}\"; allowed: disable, allow, prefer, require, \
                     verify-ca, verify-full"
                )))
            }
        })
    }
}

/// libpq's `target_session_attrs`: which of the listed servers qualifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum TargetSessionAttrs {
    /// Any server.
    Any,
    /// A session that accepts writes by default: not a standby, and
    /// `default_transaction_read_only` off.
    ReadWrite,
    /// A session that is read-only by default: a standby, or
    /// `default_transaction_read_only` on.
    ReadOnly,
    /// A server that is not in recovery (`in_hot_standby` off).
    Primary,
    /// A server in recovery (`in_hot_standby` on).
    Standby,
    /// A standby if one of the hosts is, else any server (two passes).
    PreferStandby,
}

impl TargetSessionAttrs {
    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }

    /// Whether a server in this state qualifies (`standby`: in recovery;
    /// `read_only`: `default_transaction_read_only` on).
    pub fn accepts(self, standby: bool, read_only: bool) -> bool {
        match self {
            TargetSessionAttrs::Any | TargetSessionAttrs::PreferStandby => true,
            TargetSessionAttrs::ReadWrite => !standby && !read_only,
            TargetSessionAttrs::ReadOnly => standby || read_only,
            TargetSessionAttrs::Primary => !standby,
            TargetSessionAttrs::Standby => standby,
        }
    }
}

/// libpq 16's `load_balance_hosts`: the order in which hosts are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum LoadBalanceHosts {
    /// In the order given.
    Disable,
    /// In a random order, drawn anew for each connection.
    Random,
}

impl LoadBalanceHosts {
    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadBalanceHosts::Disable => "disable",
            LoadBalanceHosts::Random => "random",
        }
    }
}

/// Normalised PostgreSQL connection settings, with libpq's keyword names.
/// `Display` and `Debug` show `***` for the password.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PgSettings {
    /// Host names, IP addresses or unix-socket directories, in order.
    pub host: Vec<String>,
    /// `hostaddr` values (numeric addresses), if given.
    pub hostaddr: Vec<String>,
    /// One port per host (a single given port applies to every host).
    pub port: Vec<u16>,
    /// Database name.
    pub dbname: String,
    /// User name.
    pub user: String,
    /// The password; serialised as `***`.
    #[serde(serialize_with = "ser_password")]
    pub password: Option<String>,
    /// TLS mode.
    pub sslmode: SslMode,
    /// Root certificate file, or `system`.
    pub sslrootcert: Option<String>,
    /// Client certificate file.
    pub sslcert: Option<String>,
    /// Client key file.
    pub sslkey: Option<String>,
    /// `application_name` (dbmux sets a default when absent).
    pub application_name: Option<String>,
    /// Seconds; `None` means wait indefinitely (libpq: 0 or absent).
    pub connect_timeout: Option<u64>,
    /// Command-line options sent to the server, e.g. `-c statement_timeout=5s`.
    pub options: Option<String>,
    /// Which server of several to accept.
    pub target_session_attrs: TargetSessionAttrs,
    /// The order in which the hosts are tried.
    pub load_balance_hosts: LoadBalanceHosts,
    /// TCP keepalives on (libpq's default) or off.
    pub keepalives: bool,
    /// Seconds of idleness before a keepalive probe.
    pub keepalives_idle: Option<u64>,
}

fn ser_password<S: serde::Serializer>(p: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match p {
        Some(_) => s.serialize_str("***"),
        None => s.serialize_none(),
    }
}

impl fmt::Debug for PgSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("dbname", &self.dbname)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("sslmode", &self.sslmode)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PgSettings {
    /// A redacted URL: `postgresql://user:***@host:port,.../dbname?sslmode=...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "postgresql://{}", self.user)?;
        if self.password.is_some() {
            f.write_str(":***")?;
        }
        f.write_str("@")?;
        for (i, h) in self.host.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if h.starts_with('/') {
                write!(f, "{}", h.replace('/', "%2F"))?;
            } else if h.contains(':') {
                write!(f, "[{h}]")?;
            } else {
                f.write_str(h)?;
            }
            if let Some(p) = self.port.get(i) {
                write!(f, ":{p}")?;
            }
        }
        write!(f, "/{}?sslmode={}", self.dbname, self.sslmode.as_str())
    }
}

impl PgSettings {
    /// The settings as JSON with libpq's keyword names and value formats
    /// (`host` and `port` comma-separated); the password as `***`.
    pub fn describe(&self) -> serde_json::Value {
        let join = |v: &[String]| v.join(",");
        serde_json::json!({
            "backend": "postgresql",
            "host": join(&self.host),
            "hostaddr": if self.hostaddr.is_empty() { None } else { Some(join(&self.hostaddr)) },
            "port": self.port.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
            "dbname": self.dbname,
            "user": self.user,
            "password": self.password.as_ref().map(|_| "***"),
            "sslmode": self.sslmode.as_str(),
            "sslrootcert": self.sslrootcert,
            "sslcert": self.sslcert,
            "sslkey": self.sslkey,
            "application_name": self.application_name,
            "connect_timeout": self.connect_timeout,
            "options": self.options,
            "target_session_attrs": self.target_session_attrs.as_str(),
            "load_balance_hosts": self.load_balance_hosts.as_str(),
            "keepalives": if self.keepalives { 1 } else { 0 },
            "keepalives_idle": self.keepalives_idle,
        })
    }
}

/// libpq's default unix-socket directory on Debian-family systems.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Parses a PostgreSQL URI or key/value string, with libpq's environment
/// fallbacks read from the process environment.
///
/// # Errors
/// [`ErrorCode::InvalidUrl`](crate::ErrorCode::InvalidUrl) where libpq would reject the string, with its
/// message (never the password).
pub fn parse_postgres(s: &str) -> Result<PgSettings> {
    parse_postgres_with_env(s, |k| std::env::var(k).ok())
}

/// [`parse_postgres`] with the environment read through `env`.
///
/// # Errors
/// As [`parse_postgres`].
pub fn parse_postgres_with_env(
    s: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PgSettings> {
    if s.contains('\0') {
        return Err(invalid("the connection string contains a NUL byte"));
    }
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let pairs = if lower.starts_with("postgres") && t.contains("://") {
        parse_uri(t)?
    } else if lower.starts_with("postgres") && !t.contains('=') {
        return Err(invalid(
            "a PostgreSQL URI must start with postgresql:// or postgres:// (two slashes)",
        ));
    } else {
        parse_keyvalue(t)?
    };
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    // explicit value, else the libpq environment variable (an empty value counts as unset)
    let val = |k: &str, envvar: Option<&str>| -> Option<String> {
        get(k).or_else(|| envvar.and_then(&env).filter(|v| !v.is_empty()))
    };

    let host_s = val("host", Some("PGHOST"));
    let mut host: Vec<String> = match &host_s {
        Some(h) if !h.is_empty() => h.split(',').map(|x| x.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    let hostaddr: Vec<String> = match get("hostaddr") {
        Some(h) if !h.is_empty() => h.split(',').map(|x| x.trim().to_string()).collect(),
        _ => Vec::new(),
    };
    if host.is_empty() {
        host = if hostaddr.is_empty() {
            vec![DEFAULT_SOCKET_DIR.to_string()]
        } else {
            hostaddr.clone()
        };
    }
    if host.iter().any(|h| h.is_empty()) {
        // libpq: an empty entry means the default
        for h in host.iter_mut().filter(|h| h.is_empty()) {
            *h = DEFAULT_SOCKET_DIR.to_string();
        }
    }
    if !hostaddr.is_empty() && hostaddr.len() != host.len() {
        return Err(invalid(format!(
            "could not match {} host names to {} hostaddr values",
            host.len(),
            hostaddr.len()
        )));
    }
    for a in &hostaddr {
        if a.parse::<std::net::IpAddr>().is_err() {
            return Err(invalid(format!(
                "could not parse network address \"{a}\" (hostaddr must be a numeric IP address)"
            )));
        }
    }
    let port_s = val("port", Some("PGPORT")).unwrap_or_default();
    let given: Vec<&str> = if port_s.is_empty() {
        Vec::new()
    } else {
        port_s.split(',').collect()
    };
    let port: Vec<u16> = match given.len() {
        0 => vec![5432; host.len()],
        1 => vec![
            if given[0].is_empty() {
                5432
            } else {
                parse_port(given[0])?
            };
            host.len()
        ],
        n if n == host.len() => given
            .iter()
            .map(|p| {
                if p.is_empty() {
                    Ok(5432)
                } else {
                    parse_port(p)
                }
            })
            .collect::<Result<_>>()?,
        n => {
            return Err(invalid(format!(
                "could not match {n} port numbers to {} hosts",
                host.len()
            )))
        }
    };
    // libpq's default user is the OS user; $USER / $LOGNAME stand for it here
    let user = val("user", Some("PGUSER"))
        .or_else(|| env("USER"))
        .or_else(|| env("LOGNAME"))
        .unwrap_or_else(|| "postgres".to_string());
    let dbname = val("dbname", Some("PGDATABASE")).unwrap_or_else(|| user.clone());
    let password = val("password", Some("PGPASSWORD"));
    let sslmode = match val("sslmode", Some("PGSSLMODE")) {
        Some(m) => SslMode::parse(&m)?,
        None => SslMode::Prefer,
    };
    let sslrootcert = val("sslrootcert", Some("PGSSLROOTCERT"));
    let application_name =
        val("application_name", Some("PGAPPNAME")).or_else(|| get("fallback_application_name"));
    let connect_timeout = match val("connect_timeout", Some("PGCONNECT_TIMEOUT")) {
        Some(v) => match parse_int("connect_timeout", &v)? {
            n if n <= 0 => None,
            1 => Some(2), // libpq: the minimum is 2 seconds
            n => Some(n as u64),
        },
        None => None,
    };
    let target_session_attrs =
        match val("target_session_attrs", Some("PGTARGETSESSIONATTRS")).as_deref() {
            None | Some("any") => TargetSessionAttrs::Any,
            Some("read-write") => TargetSessionAttrs::ReadWrite,
            Some("read-only") => TargetSessionAttrs::ReadOnly,
            Some("primary") => TargetSessionAttrs::Primary,
            Some("standby") => TargetSessionAttrs::Standby,
            Some("prefer-standby") => TargetSessionAttrs::PreferStandby,
            Some(other) => {
                return Err(invalid(format!(
                    "invalid target_session_attrs value: \"{other}\"; allowed: any, read-write, \
                 read-only, primary, standby, prefer-standby"
                )))
            }
        };
    let load_balance_hosts = match val("load_balance_hosts", Some("PGLOADBALANCEHOSTS")).as_deref()
    {
        None | Some("disable") => LoadBalanceHosts::Disable,
        Some("random") => LoadBalanceHosts::Random,
        Some(other) => {
            return Err(invalid(format!(
                "invalid load_balance_hosts value: \"{other}\"; allowed: disable, random"
            )))
        }
    };
    let keepalives = match get("keepalives") {
        Some(v) => parse_int("keepalives", &v)? != 0,
        None => true,
    };
    let keepalives_idle = match get("keepalives_idle") {
        Some(v) => match parse_int("keepalives_idle", &v)? {
            n if n < 0 => {
                return Err(invalid(format!(
                    "invalid integer value \"{v}\" for connection option \"keepalives_idle\""
                )))
            }
            n => Some(n as u64),
        },
        None => None,
    };
    if let Some(enc) = get("client_encoding") {
        if !matches!(
            enc.to_ascii_uppercase().as_str(),
            "UTF8" | "UTF-8" | "UNICODE"
        ) {
            return Err(invalid(format!(
                "client_encoding \"{enc}\" is not supported: dbmux always talks UTF8"
            )));
        }
    }
    Ok(PgSettings {
        host,
        hostaddr,
        port,
        dbname,
        user,
        password,
        sslmode,
        sslrootcert,
        sslcert: get("sslcert"),
        sslkey: get("sslkey"),
        application_name,
        connect_timeout,
        options: get("options"),
        target_session_attrs,
        load_balance_hosts,
        keepalives,
        keepalives_idle,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<PgSettings> {
        parse_postgres_with_env(s, |_| None)
    }

    #[test]
    fn keyvalue_quoting_and_escapes() {
        let s = p(r"host=h dbname='my db' user=a\ b password='it\'s' port = 5433").unwrap();
        assert_eq!(s.dbname, "my db");
        assert_eq!(s.user, "a b");
        assert_eq!(s.password.as_deref(), Some("it's"));
        assert_eq!(s.port, vec![5433]);
    }

    #[test]
    fn uri_query_replaces_port() {
        let s = p("postgresql://u@h:5000/db?port=6000").unwrap();
        assert_eq!(s.port, vec![6000]);
        assert_eq!(s.host, vec!["h"]);
    }
}
