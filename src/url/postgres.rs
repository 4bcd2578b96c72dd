#![doc = include_str!("postgres.md")]

use std::fmt;

use crate::error::{Error, ErrorCode, Result};

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

/// libpq's `target_session_attrs` (the values tokio-postgres can honour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSessionAttrs {
    /// Any server.
    Any,
    /// A server that accepts writes (a primary).
    ReadWrite,
    /// A server in read-only mode (a standby).
    ReadOnly,
}

impl TargetSessionAttrs {
    /// libpq's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
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
            "keepalives": if self.keepalives { 1 } else { 0 },
            "keepalives_idle": self.keepalives_idle,
        })
    }
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidUrl, msg)
}

/// Keywords dbmux accepts, in key/value strings and as URI query parameters.
const SUPPORTED: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "application_name",
    "fallback_application_name",
    "connect_timeout",
    "options",
    "target_session_attrs",
    "keepalives",
    "keepalives_idle",
    "client_encoding",
];

/// Raw keyword/value pairs in the order given (later ones win, as in libpq).
type Pairs = Vec<(String, String)>;

fn set(pairs: &mut Pairs, key: &str, value: String) -> Result<()> {
    if !SUPPORTED.contains(&key) {
        if crate::url::lexical::is_libpq_keyword(key) {
            return Err(invalid(format!(
                "the libpq connection option \"{key}\" is not supported by dbmux; \
                 supported: {}",
                SUPPORTED.join(", ")
            )));
        }
        return Err(invalid(format!(
            "invalid connection option \"{key}\"; supported: {}",
            SUPPORTED.join(", ")
        )));
    }
    pairs.retain(|(k, _)| k != key);
    pairs.push((key.to_string(), value));
    Ok(())
}

/// Parses a libpq key/value string: `key = value` pairs separated by
/// whitespace; values may be single-quoted; `\` escapes the next character.
fn parse_keyvalue(s: &str) -> Result<Pairs> {
    let mut pairs = Pairs::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let n = chars.len();
    loop {
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n {
            break;
        }
        let start = i;
        while i < n && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= n || chars[i] != '=' {
            return Err(invalid(format!(
                "missing \"=\" after \"{}\" in connection info string",
                crate::url::redact::redact(&key)
            )));
        }
        i += 1; // '='
        while i < n && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < n && chars[i] == '\'' {
            i += 1;
            loop {
                if i >= n {
                    return Err(invalid(
                        "unterminated quoted string in connection info string",
                    ));
                }
                match chars[i] {
                    '\\' if i + 1 < n => {
                        value.push(chars[i + 1]);
                        i += 2;
                    }
                    '\'' => {
                        i += 1;
                        break;
                    }
                    c => {
                        value.push(c);
                        i += 1;
                    }
                }
            }
        } else {
            while i < n && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < n {
                    value.push(chars[i + 1]);
                    i += 2;
                } else {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        set(&mut pairs, &key, value)?;
    }
    Ok(pairs)
}

/// libpq's percent-decoding: a bad escape and `%00` are errors, worded as libpq words them.
fn decode(s: &str) -> Result<String> {
    use crate::url::percent::{decode_percent, PercentError};
    decode_percent(s).map_err(|e| {
        invalid(match e {
            PercentError::Nul => "forbidden value %00 in percent-encoded value",
            PercentError::BadEscape => {
                "invalid percent-encoded token: a '%' must be followed by two hex digits \
                 (write %25 for a literal '%')"
            }
            PercentError::NotUtf8 => "a percent-encoded value is not valid UTF-8",
        })
    })
}

/// Parses a `postgres[ql][+driver]://` URI.
fn parse_uri(s: &str) -> Result<Pairs> {
    let rest = s
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| invalid("a PostgreSQL URI must start with postgresql:// or postgres://"))?;
    let mut pairs = Pairs::new();
    let (main, query) = match rest.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (rest, None),
    };
    // userinfo ends at the last '@' before the path
    let path_start = main.find('/').unwrap_or(main.len());
    let (userinfo, hostpart_and_path) = match main[..path_start].rfind('@') {
        Some(at) => (Some(&main[..at]), &main[at + 1..]),
        None => (None, main),
    };
    if let Some(ui) = userinfo {
        let (u, p) = match ui.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (ui, None),
        };
        if !u.is_empty() {
            set(&mut pairs, "user", decode(u)?)?;
        }
        if let Some(p) = p {
            set(&mut pairs, "password", decode(p)?)?;
        }
    }
    let (hostspec, path) = match hostpart_and_path.find('/') {
        Some(i) => (&hostpart_and_path[..i], Some(&hostpart_and_path[i + 1..])),
        None => (hostpart_and_path, None),
    };
    if !hostspec.is_empty() {
        let mut hosts = Vec::new();
        let mut ports = Vec::new();
        for item in split_hosts(hostspec)? {
            let (h, p) = split_host_port(item)?;
            hosts.push(decode(h)?);
            ports.push(match p {
                Some(p) => decode(p)?,
                None => String::new(),
            });
        }
        set(&mut pairs, "host", hosts.join(","))?;
        if ports.iter().any(|p| !p.is_empty()) {
            set(&mut pairs, "port", ports.join(","))?;
        }
    }
    if let Some(db) = path {
        if !db.is_empty() {
            set(&mut pairs, "dbname", decode(db)?)?;
        }
    }
    if let Some(q) = query {
        for kv in q.split('&').filter(|kv| !kv.is_empty()) {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                invalid(format!(
                    "missing key/value separator \"=\" in URI query parameter: \"{}\"",
                    crate::url::redact::redact(kv)
                ))
            })?;
            let k = decode(k)?;
            let v = decode(v)?;
            // JDBC-style ssl=true, which libpq also accepts
            if k == "ssl" {
                if v == "true" {
                    set(&mut pairs, "sslmode", "require".into())?;
                    continue;
                }
                return Err(invalid(format!(
                    "invalid URI query parameter value: ssl=\"{v}\" (only ssl=true is accepted)"
                )));
            }
            set(&mut pairs, &k, v)?;
        }
    }
    Ok(pairs)
}

/// Splits `h1:p1,[::1]:p2,h3` at commas outside brackets.
fn split_hosts(spec: &str) -> Result<Vec<&str>> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, c) in spec.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(invalid(format!(
            "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"{spec}\""
        )));
    }
    out.push(&spec[start..]);
    Ok(out)
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(item: &str) -> Result<(&str, Option<&str>)> {
    if let Some(rest) = item.strip_prefix('[') {
        let close = rest
            .find(']')
            .ok_or_else(|| invalid("missing \"]\" after an IPv6 host address in the URI"))?;
        let host = &rest[..close];
        if host.is_empty() {
            return Err(invalid("IPv6 host address may not be empty in URI"));
        }
        let after = &rest[close + 1..];
        return match after.strip_prefix(':') {
            Some(p) => Ok((host, Some(p))),
            None if after.is_empty() => Ok((host, None)),
            None => Err(invalid(format!(
                "unexpected character \"{}\" after an IPv6 host address in URI",
                after.chars().next().unwrap_or_default()
            ))),
        };
    }
    Ok(match item.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (item, None),
    })
}

fn parse_port(p: &str) -> Result<u16> {
    match p.trim().parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(invalid(format!(
            "invalid port number: \"{p}\" (expected 1 to 65535)"
        ))),
    }
}

fn parse_int(key: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| {
        invalid(format!(
            "invalid integer value \"{v}\" for connection option \"{key}\""
        ))
    })
}

/// libpq's default unix-socket directory on Debian-family systems.
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Parses a PostgreSQL URI or key/value string, with libpq's environment
/// fallbacks read from the process environment.
///
/// # Errors
/// [`ErrorCode::InvalidUrl`] where libpq would reject the string, with its
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
    let target_session_attrs = match get("target_session_attrs").as_deref() {
        None | Some("any") => TargetSessionAttrs::Any,
        Some("read-write") | Some("primary") => TargetSessionAttrs::ReadWrite,
        Some("read-only") | Some("standby") => TargetSessionAttrs::ReadOnly,
        Some("prefer-standby") => {
            return Err(invalid(
                "target_session_attrs=prefer-standby is not supported by dbmux; use any, \
                 read-write, read-only, primary or standby",
            ))
        }
        Some(other) => {
            return Err(invalid(format!(
                "invalid target_session_attrs value: \"{other}\"; allowed: any, read-write, \
                 read-only, primary, standby"
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
