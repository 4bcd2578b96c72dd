//! PostgreSQL connection strings read the way libpq reads them: at least 40
//! valid and invalid cases, environment fallbacks, and redaction.

use std::collections::HashMap;

use dbmux::url::postgres::parse_postgres_with_env;
use dbmux::url::postgres::PgSettings;
use dbmux::url::postgres::SslMode;
use dbmux::url::postgres::{LoadBalanceHosts, TargetSessionAttrs};
use dbmux::ErrorCode;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| m.get(k).cloned()
}

fn ok(s: &str) -> PgSettings {
    parse_postgres_with_env(s, env(&[("USER", "osuser")])).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

type Check = fn(&PgSettings) -> bool;

#[test]
fn valid_strings_parse_to_libpq_values() {
    let cases: Vec<(&str, Check)> = vec![
        ("postgresql://u:p@h:5433/db", |s| {
            s.host == ["h"]
                && s.port == [5433]
                && s.user == "u"
                && s.password.as_deref() == Some("p")
                && s.dbname == "db"
        }),
        ("postgres://h/db", |s| {
            s.host == ["h"] && s.port == [5432] && s.dbname == "db"
        }),
        ("postgresql+asyncpg://u@h/db", |s| {
            s.user == "u" && s.host == ["h"]
        }),
        ("postgresql+psycopg://u@h:6543/db", |s| s.port == [6543]),
        ("postgresql+psycopg2://h", |s| s.host == ["h"]),
        ("postgresql://", |s| {
            s.host == [dbmux::url::postgres::DEFAULT_SOCKET_DIR]
                && s.port == [5432]
                && s.user == "osuser"
                && s.dbname == "osuser"
        }),
        ("postgresql://localhost", |s| s.host == ["localhost"]),
        ("postgresql://u%40corp:p%3Aw%2Fd@h/d%20b", |s| {
            s.user == "u@corp" && s.password.as_deref() == Some("p:w/d") && s.dbname == "d b"
        }),
        ("postgresql://[::1]:5433/db", |s| {
            s.host == ["::1"] && s.port == [5433]
        }),
        ("postgresql://[2001:db8::7]/db", |s| {
            s.host == ["2001:db8::7"] && s.port == [5432]
        }),
        ("postgresql://%2Fvar%2Flib%2Fpostgresql/db", |s| {
            s.host == ["/var/lib/postgresql"]
        }),
        ("postgresql:///db?host=/tmp/sock", |s| {
            s.host == ["/tmp/sock"] && s.dbname == "db"
        }),
        ("postgresql://h1:5432,h2:5433/db", |s| {
            s.host == ["h1", "h2"] && s.port == [5432, 5433]
        }),
        ("postgresql://h1,h2:5433/db", |s| {
            s.host == ["h1", "h2"] && s.port == [5432, 5433]
        }),
        ("postgresql://h1,[::1]:7/db", |s| {
            s.host == ["h1", "::1"] && s.port == [5432, 7]
        }),
        ("postgresql://u@h:5432/db?port=6000", |s| s.port == [6000]),
        ("postgresql://u@h/db?host=other", |s| s.host == ["other"]),
        (
            "postgresql://h/db?sslmode=verify-full&sslrootcert=/ca.pem",
            |s| s.sslmode == SslMode::VerifyFull && s.sslrootcert.as_deref() == Some("/ca.pem"),
        ),
        (
            "postgresql://h/db?sslmode=require&sslcert=/c.pem&sslkey=/k.pem",
            |s| {
                s.sslmode == SslMode::Require
                    && s.sslcert.as_deref() == Some("/c.pem")
                    && s.sslkey.as_deref() == Some("/k.pem")
            },
        ),
        ("postgresql://h/db?ssl=true", |s| {
            s.sslmode == SslMode::Require
        }),
        ("postgresql://h/db?sslrootcert=system", |s| {
            s.sslrootcert.as_deref() == Some("system")
        }),
        ("postgresql://h/db?application_name=my%20app", |s| {
            s.application_name.as_deref() == Some("my app")
        }),
        ("postgresql://h/db?connect_timeout=10", |s| {
            s.connect_timeout == Some(10)
        }),
        ("postgresql://h/db?connect_timeout=1", |s| {
            s.connect_timeout == Some(2)
        }),
        ("postgresql://h/db?connect_timeout=0", |s| {
            s.connect_timeout.is_none()
        }),
        (
            "postgresql://h/db?options=-c%20statement_timeout%3D5s",
            |s| s.options.as_deref() == Some("-c statement_timeout=5s"),
        ),
        (
            "postgresql://h1,h2/db?target_session_attrs=read-write",
            |s| s.target_session_attrs == TargetSessionAttrs::ReadWrite,
        ),
        ("postgresql://h/db?target_session_attrs=standby", |s| {
            s.target_session_attrs == TargetSessionAttrs::Standby
        }),
        ("postgresql://h/db?target_session_attrs=primary", |s| {
            s.target_session_attrs == TargetSessionAttrs::Primary
        }),
        ("postgresql://h/db?target_session_attrs=read-only", |s| {
            s.target_session_attrs == TargetSessionAttrs::ReadOnly
        }),
        (
            "postgresql://h1,h2/db?target_session_attrs=prefer-standby",
            |s| s.target_session_attrs == TargetSessionAttrs::PreferStandby,
        ),
        ("postgresql://h1,h2/db?load_balance_hosts=random", |s| {
            s.load_balance_hosts == LoadBalanceHosts::Random
        }),
        ("postgresql://h1,h2/db", |s| {
            s.load_balance_hosts == LoadBalanceHosts::Disable
        }),
        ("postgresql://h/db?keepalives=0", |s| !s.keepalives),
        ("postgresql://h/db?keepalives_idle=30", |s| {
            s.keepalives && s.keepalives_idle == Some(30)
        }),
        ("postgresql://h/db", |s| {
            s.sslmode == SslMode::Prefer
                && s.keepalives
                && s.target_session_attrs == TargetSessionAttrs::Any
        }),
        ("host=h dbname=d user=u", |s| {
            s.host == ["h"] && s.dbname == "d" && s.user == "u"
        }),
        ("host = h   port= 5433 dbname =d", |s| {
            s.port == [5433] && s.dbname == "d"
        }),
        ("host=h dbname='my db' password='it\\'s'", |s| {
            s.dbname == "my db" && s.password.as_deref() == Some("it's")
        }),
        ("host=h dbname=a\\ b", |s| s.dbname == "a b"),
        ("host=h password=''", |s| s.password.as_deref() == Some("")),
        ("host=a,b port=1,2", |s| {
            s.host == ["a", "b"] && s.port == [1, 2]
        }),
        ("host=a,b port=7", |s| s.port == [7, 7]),
        ("host=/tmp dbname=x", |s| s.host == ["/tmp"]),
        ("hostaddr=127.0.0.1 dbname=x", |s| {
            s.host == ["127.0.0.1"] && s.hostaddr == ["127.0.0.1"]
        }),
        ("host=h port=1 port=2", |s| s.port == [2]),
        ("host=h options='-c search_path=app'", |s| {
            s.options.as_deref() == Some("-c search_path=app")
        }),
        ("host=h sslmode=disable", |s| s.sslmode == SslMode::Disable),
        ("host=h sslmode=allow", |s| s.sslmode == SslMode::Allow),
        ("host=h sslmode=verify-ca", |s| {
            s.sslmode == SslMode::VerifyCa
        }),
        ("host=h client_encoding=UTF8", |s| s.host == ["h"]),
        ("host=h fallback_application_name=fb", |s| {
            s.application_name.as_deref() == Some("fb")
        }),
    ];
    assert!(cases.len() >= 40);
    for (input, check) in &cases {
        let s = ok(input);
        assert!(
            check(&s),
            "{input:?} parsed as {s:?} / {}",
            serde_json::to_string(&s).unwrap()
        );
    }
}

#[test]
fn invalid_strings_are_rejected_like_libpq() {
    let cases: &[(&str, &str)] = &[
        (
            "postgresql://h/db?bogus=1",
            "invalid connection option \"bogus\"",
        ),
        ("host=h bogus=1", "invalid connection option \"bogus\""),
        ("host=h gssencmode=disable", "not supported by dbmux"),
        ("host=h dbname", "missing \"=\" after \"dbname\""),
        ("host=h dbname='unterminated", "unterminated quoted string"),
        ("postgresql://h/d%zzb", "invalid percent-encoded token"),
        ("postgresql://h/d%2", "invalid percent-encoded token"),
        ("postgresql://h/db%00", "forbidden value %00"),
        ("postgresql://u:p%00w@h/db", "forbidden value %00"),
        (
            "postgresql://h:notaport/db",
            "invalid port number: \"notaport\"",
        ),
        ("postgresql://h:70000/db", "invalid port number"),
        ("host=h port=0", "invalid port number"),
        (
            "host=a,b,c port=1,2",
            "could not match 2 port numbers to 3 hosts",
        ),
        ("postgresql://[::1/db", "\"]\""),
        ("postgresql://[]:5432/db", "may not be empty"),
        // a multi-byte character right after "]" (found by fuzz_url)
        (
            "postgresql://[::1]ş:5432/db",
            "unexpected character \"ş\" after an IPv6 host address",
        ),
        (
            "postgresql://h/db?sslmode=sometimes",
            "invalid sslmode value: \"sometimes\"",
        ),
        (
            "postgresql://h/db?connect_timeout=soon",
            "invalid integer value \"soon\" for connection option \"connect_timeout\"",
        ),
        (
            "postgresql://h/db?keepalives=yes",
            "invalid integer value \"yes\"",
        ),
        (
            "postgresql://h/db?target_session_attrs=whatever",
            "invalid target_session_attrs value",
        ),
        (
            "postgresql://h/db?load_balance_hosts=sometimes",
            "invalid load_balance_hosts value",
        ),
        ("postgresql://h/db?ssl=false", "ssl=\"false\""),
        ("postgresql://h/db?sslmode", "missing key/value separator"),
        ("host=h client_encoding=LATIN1", "always talks UTF8"),
        ("hostaddr=not-an-ip", "could not parse network address"),
        ("host=h\0", "NUL byte"),
        ("postgres:/h/db", "two slashes"),
    ];
    for (input, needle) in cases {
        let e = parse_postgres_with_env(input, env(&[])).expect_err(input);
        assert_eq!(e.code(), ErrorCode::InvalidUrl, "{input:?}");
        assert!(
            e.to_string().contains(needle),
            "{input:?}: {:?} lacks {needle:?}",
            e.to_string()
        );
    }
}

#[test]
fn environment_fallbacks_as_libpq_has_them() {
    let e = env(&[
        ("PGHOST", "envhost"),
        ("PGPORT", "6000"),
        ("PGUSER", "envuser"),
        ("PGPASSWORD", "envpw"),
        ("PGDATABASE", "envdb"),
        ("PGSSLMODE", "require"),
        ("PGSSLROOTCERT", "/etc/ca.pem"),
        ("PGAPPNAME", "envapp"),
        ("PGCONNECT_TIMEOUT", "7"),
    ]);
    let s = parse_postgres_with_env("postgresql://", &e).unwrap();
    assert_eq!(s.host, ["envhost"]);
    assert_eq!(s.port, [6000]);
    assert_eq!((s.user.as_str(), s.dbname.as_str()), ("envuser", "envdb"));
    assert_eq!(s.password.as_deref(), Some("envpw"));
    assert_eq!(s.sslmode, SslMode::Require);
    assert_eq!(s.sslrootcert.as_deref(), Some("/etc/ca.pem"));
    assert_eq!(s.application_name.as_deref(), Some("envapp"));
    assert_eq!(s.connect_timeout, Some(7));
    // the string wins over the environment
    let s = parse_postgres_with_env("postgresql://u@h:1/d?sslmode=disable", &e).unwrap();
    assert_eq!(
        (
            s.host[0].as_str(),
            s.port[0],
            s.user.as_str(),
            s.dbname.as_str()
        ),
        ("h", 1, "u", "d")
    );
    assert_eq!(s.sslmode, SslMode::Disable);
    assert_eq!(s.password.as_deref(), Some("envpw"));
    // a bad environment value is an error too
    let e =
        parse_postgres_with_env("postgresql://h/db", env(&[("PGSSLMODE", "maybe")])).unwrap_err();
    assert!(e.to_string().contains("invalid sslmode value: \"maybe\""));
}

#[test]
fn settings_never_show_the_password() {
    let s = ok("postgresql://app:Sup3r-S3cret@db:5433/app?sslmode=require");
    let shown = format!("{s} {s:?} {}", serde_json::to_string(&s).unwrap());
    assert!(!shown.contains("Sup3r-S3cret"), "{shown}");
    assert!(
        shown.contains("postgresql://app:***@db:5433/app?sslmode=require"),
        "{shown}"
    );
    assert!(shown.contains("\"password\":\"***\""), "{shown}");
}
