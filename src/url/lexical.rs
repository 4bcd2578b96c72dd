//! The words of a connection string: URL schemes and libpq's keywords (a
//! leaf of the URL parsers).

/// libpq connection keywords; a string starting with `keyword=` is a libpq
/// key/value connection string.
pub(super) const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "requiressl",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
    "channel_binding",
];

/// True for a keyword libpq knows (dbmux may still not support it).
pub(crate) fn is_libpq_keyword(k: &str) -> bool {
    LIBPQ_KEYWORDS.contains(&k)
}

/// Splits `scheme:rest` when `s` starts with a URL scheme (RFC 3986 letters,
/// digits, `+`, `-`, `.`). A single letter followed by `:\` or `:/` is a
/// Windows drive, not a scheme. The scheme is returned lowercase.
pub(super) fn split_scheme(s: &str) -> Option<(String, &str)> {
    let colon = s.find(':')?;
    let scheme = &s[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    {
        return None;
    }
    if scheme.len() == 1 {
        return None; // C:\path or C:/path
    }
    Some((scheme.to_ascii_lowercase(), &s[colon + 1..]))
}
