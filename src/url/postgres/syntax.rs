//! The syntax of libpq connection strings: key/value pairs with quoting and
//! escapes, URIs with percent-decoding and host lists, into raw pairs.

use crate::error::{Error, ErrorCode, Result};

pub(super) fn invalid(msg: impl Into<String>) -> Error {
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
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "client_encoding",
];

/// Raw keyword/value pairs in the order given (later ones win, as in libpq).
pub(super) type Pairs = Vec<(String, String)>;

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
pub(super) fn parse_keyvalue(s: &str) -> Result<Pairs> {
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
pub(super) fn parse_uri(s: &str) -> Result<Pairs> {
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

pub(super) fn parse_port(p: &str) -> Result<u16> {
    match p.trim().parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(invalid(format!(
            "invalid port number: \"{p}\" (expected 1 to 65535)"
        ))),
    }
}

pub(super) fn parse_int(key: &str, v: &str) -> Result<i64> {
    v.trim().parse::<i64>().map_err(|_| {
        invalid(format!(
            "invalid integer value \"{v}\" for connection option \"{key}\""
        ))
    })
}
