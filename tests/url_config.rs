//! Table-driven URL and configuration cases: every URL form, every class of
//! bad input, the precedence of code, environment, .env, profile and defaults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use dbmux::config::Profile;
use dbmux::url::parse_url;
use dbmux::url::sqlite::CacheMode;
use dbmux::url::sqlite::JournalMode;
use dbmux::url::sqlite::OpenMode;
use dbmux::url::sqlite::Synchronous;
use dbmux::url::Backend;
use dbmux::url::SqliteLocation;
use dbmux::url::Target;
use dbmux::{Config, ErrorCode};

fn file(p: &str) -> Option<SqliteLocation> {
    Some(SqliteLocation::File(PathBuf::from(p)))
}
const MEM: Option<SqliteLocation> = Some(SqliteLocation::Memory);

/// (input, expected backend, expected SQLite location if SQLite)
#[test]
fn url_forms_are_recognised() {
    let cases: Vec<(&str, Backend, Option<SqliteLocation>)> = vec![
        (
            "sqlite:///rel/path.db",
            Backend::Sqlite,
            file("rel/path.db"),
        ),
        (
            "sqlite:////abs/path.db",
            Backend::Sqlite,
            file("/abs/path.db"),
        ),
        ("sqlite://", Backend::Sqlite, MEM),
        ("sqlite:///:memory:", Backend::Sqlite, MEM),
        ("sqlite::memory:", Backend::Sqlite, MEM),
        ("sqlite:rel.db", Backend::Sqlite, file("rel.db")),
        ("sqlite://rel.db", Backend::Sqlite, file("rel.db")),
        ("sqlite:/abs.db", Backend::Sqlite, file("/abs.db")),
        (
            "sqlite+aiosqlite:///app.db",
            Backend::Sqlite,
            file("app.db"),
        ),
        (
            "sqlite+pysqlite:////var/app.db",
            Backend::Sqlite,
            file("/var/app.db"),
        ),
        ("SQLITE:///upper.db", Backend::Sqlite, file("upper.db")),
        (
            "sqlite:///with%20space.db",
            Backend::Sqlite,
            file("with space.db"),
        ),
        ("file:app.db", Backend::Sqlite, file("app.db")),
        ("file:///abs/app.db", Backend::Sqlite, file("/abs/app.db")),
        (
            "file://localhost/abs/app.db",
            Backend::Sqlite,
            file("/abs/app.db"),
        ),
        ("file::memory:", Backend::Sqlite, MEM),
        ("file:data.db?mode=ro", Backend::Sqlite, file("data.db")),
        ("./app.db", Backend::Sqlite, file("./app.db")),
        ("/abs/app.db", Backend::Sqlite, file("/abs/app.db")),
        ("data.sqlite3", Backend::Sqlite, file("data.sqlite3")),
        ("data.sqlite", Backend::Sqlite, file("data.sqlite")),
        ("data.DB", Backend::Sqlite, file("data.DB")),
        (
            "dir/no_extension",
            Backend::Sqlite,
            file("dir/no_extension"),
        ),
        (":memory:", Backend::Sqlite, MEM),
        ("  ./padded.db \n", Backend::Sqlite, file("./padded.db")),
        ("postgres://u:p@localhost/db", Backend::Postgres, None),
        ("postgresql://localhost/db", Backend::Postgres, None),
        ("postgresql+asyncpg://u@h/db", Backend::Postgres, None),
        ("postgresql+psycopg://u@h:5433/db", Backend::Postgres, None),
        ("postgresql+psycopg2://h/db", Backend::Postgres, None),
        ("postgres+anything://h", Backend::Postgres, None),
        ("host=localhost dbname=app", Backend::Postgres, None),
        ("dbname=app user=me", Backend::Postgres, None),
        ("  host = /tmp port=5432", Backend::Postgres, None),
    ];
    for (input, backend, location) in cases {
        let t = parse_url(input).unwrap_or_else(|e| panic!("{input:?} rejected: {e}"));
        assert_eq!(t.backend(), backend, "{input:?}");
        if let (Target::Sqlite(s), Some(loc)) = (&t, location) {
            assert_eq!(s.location, loc, "{input:?}");
        }
    }
}

#[test]
fn sqlite_query_parameters() {
    let Target::Sqlite(t) = parse_url(
        "sqlite:///a.db?mode=ro&cache=shared&vfs=unix-dotfile&immutable=1&busy_timeout=250\
         &journal_mode=truncate&synchronous=full&foreign_keys=off",
    )
    .unwrap() else {
        panic!("not sqlite")
    };
    let o = &t.options;
    assert_eq!(o.mode, Some(OpenMode::Ro));
    assert_eq!(o.cache, Some(CacheMode::Shared));
    assert_eq!(o.vfs.as_deref(), Some("unix-dotfile"));
    assert!(o.immutable);
    assert_eq!(o.busy_timeout, Some(Duration::from_millis(250)));
    assert_eq!(o.journal_mode, Some(JournalMode::Truncate));
    assert_eq!(o.synchronous, Some(Synchronous::Full));
    assert_eq!(o.foreign_keys, Some(false));

    let Target::Sqlite(t) = parse_url("file:x.db?mode=rwc&synchronous=2").unwrap() else {
        panic!()
    };
    assert_eq!(t.options.mode, Some(OpenMode::Rwc));
    assert_eq!(t.options.synchronous, Some(Synchronous::Full));
}

/// Every class of bad input: (input, error code, text the message must contain).
#[test]
fn bad_urls_are_rejected_with_useful_messages() {
    let cases: &[(&str, ErrorCode, &str)] = &[
        ("", ErrorCode::InvalidUrl, "empty"),
        ("   ", ErrorCode::InvalidUrl, "empty"),
        ("\n\t", ErrorCode::InvalidUrl, "empty"),
        (
            "mysql://u:p@h/db",
            ErrorCode::InvalidUrl,
            "unsupported database URL scheme 'mysql:'",
        ),
        (
            "http://x",
            ErrorCode::InvalidUrl,
            "unsupported database URL scheme 'http:'",
        ),
        ("mssql+pyodbc://h", ErrorCode::InvalidUrl, "supported forms"),
        (
            "redis://localhost",
            ErrorCode::InvalidUrl,
            "supported forms",
        ),
        (
            "app",
            ErrorCode::InvalidUrl,
            "neither a URL nor a recognisable SQLite path",
        ),
        ("postgres", ErrorCode::InvalidUrl, "write ./postgres"),
        (
            "foo=bar",
            ErrorCode::InvalidUrl,
            "'foo' is not a libpq connection keyword",
        ),
        ("sqlite:///", ErrorCode::InvalidUrl, "names no file"),
        ("sqlite:///a.db?mode=rx", ErrorCode::InvalidUrl, "mode='rx'"),
        (
            "sqlite:///a.db?cache=big",
            ErrorCode::InvalidUrl,
            "cache='big'",
        ),
        (
            "sqlite:///a.db?busy_timeout=-1",
            ErrorCode::InvalidUrl,
            "busy_timeout",
        ),
        (
            "sqlite:///a.db?busy_timeout=soon",
            ErrorCode::InvalidUrl,
            "milliseconds",
        ),
        (
            "sqlite:///a.db?journal_mode=fast",
            ErrorCode::InvalidUrl,
            "wal, delete",
        ),
        (
            "sqlite:///a.db?synchronous=9",
            ErrorCode::InvalidUrl,
            "off, normal, full, extra",
        ),
        (
            "sqlite:///a.db?foreign_keys=maybe",
            ErrorCode::InvalidUrl,
            "on/off",
        ),
        (
            "sqlite:///a.db?immutable=2",
            ErrorCode::InvalidUrl,
            "immutable",
        ),
        ("sqlite:///a.db?vfs=", ErrorCode::InvalidUrl, "vfs"),
        (
            "sqlite:///a.db?timeout=5",
            ErrorCode::InvalidUrl,
            "unknown SQLite URL parameter 'timeout'",
        ),
        (
            "sqlite:///a.db?check_same_thread=false",
            ErrorCode::InvalidUrl,
            "supported parameters",
        ),
        ("sqlite:///a.db?mode", ErrorCode::InvalidUrl, "has no value"),
        (
            "sqlite:///a.db?mode=ro&mode=rw",
            ErrorCode::InvalidUrl,
            "given twice",
        ),
        (
            "sqlite:///a%zz.db",
            ErrorCode::InvalidUrl,
            "bad percent escape",
        ),
        (
            "sqlite:///a%2.db",
            ErrorCode::InvalidUrl,
            "bad percent escape",
        ),
        ("sqlite:///a%00.db", ErrorCode::InvalidUrl, "%00"),
        ("sqlite:///a.db\0", ErrorCode::InvalidUrl, "NUL"),
        (
            "sqlite://u:hunter2@/a.db",
            ErrorCode::InvalidUrl,
            "no user name or password",
        ),
        ("file://otherhost/a.db", ErrorCode::InvalidUrl, "local host"),
        ("file:", ErrorCode::InvalidUrl, "names no file"),
        (
            "file:a.db?bogus=1",
            ErrorCode::InvalidUrl,
            "unknown SQLite URL parameter",
        ),
    ];
    assert!(cases.len() >= 30);
    for (input, code, needle) in cases {
        let e = parse_url(input).expect_err(input);
        assert_eq!(e.code(), *code, "{input:?}: {e}");
        assert!(
            e.to_string().contains(needle),
            "{input:?}: message {:?} lacks {needle:?}",
            e.to_string()
        );
        assert!(
            !e.to_string().contains("hunter2"),
            "{input:?} leaked the password"
        );
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

#[test]
fn defaults_without_any_configuration() {
    let c = Config::builder().with_env_lookup(env(&[])).build().unwrap();
    assert!(c.is_default_url());
    let Target::Sqlite(t) = c.target() else {
        panic!()
    };
    assert_eq!(
        t.location,
        SqliteLocation::File(std::env::current_dir().unwrap().join("dbmux.db"))
    );
    assert_eq!((c.pool_size(), c.max_overflow()), (5, 10));
    assert_eq!(c.pool_timeout(), Duration::from_secs(30));
    assert_eq!(c.pool_recycle(), Some(Duration::from_secs(1800)));
    assert!(c.pool_pre_ping());
    assert_eq!(c.pre_ping_window(), Duration::from_millis(500));
    assert!(!c.echo());
    assert_eq!(c.statement_timeout(), None);
    assert_eq!(c.query_timeout(), None);
    assert_eq!(c.connect_timeout(), Duration::from_secs(10));
    assert_eq!(c.health_check_interval(), Duration::from_secs(30));
    assert_eq!(c.profile(), None);
    assert_eq!(c.worker_id(), "main");
}

#[test]
fn every_environment_variable_is_read() {
    let c = Config::builder()
        .with_env_lookup(env(&[
            ("DATABASE_URL", "sqlite::memory:"),
            ("DB_POOL_SIZE", "3"),
            ("DB_MAX_OVERFLOW", "4"),
            ("DB_POOL_TIMEOUT", "2.5"),
            ("DB_POOL_RECYCLE", "-1"),
            ("DB_POOL_PRE_PING", "false"),
            ("DB_POOL_PRE_PING_WINDOW", "2s"),
            ("DB_ECHO", "yes"),
            ("DB_STATEMENT_TIMEOUT", "750ms"),
            ("DB_QUERY_TIMEOUT", "3s"),
            ("DB_CONNECT_TIMEOUT", "4"),
            ("DB_HEALTH_CHECK_INTERVAL", "0"),
            ("DB_PROFILE", "production"),
            ("DBMUX_WORKER_ID", "gw3"),
            ("DB_HOST_RECHECK", "2s"),
            ("DB_READ_MAX_LAG", "16MB"),
            ("DB_READ_AFTER_WAIT", "80ms"),
            ("DB_SQLITE_MAX_READ_TX", "0"),
        ]))
        .build()
        .unwrap();
    assert_eq!(c.backend(), Backend::Sqlite);
    assert_eq!((c.pool_size(), c.max_overflow()), (3, 4));
    assert_eq!(c.pool_timeout(), Duration::from_millis(2500));
    assert_eq!(c.pool_recycle(), None);
    assert!(!c.pool_pre_ping());
    assert_eq!(c.pre_ping_window(), Duration::from_secs(2));
    assert!(c.echo());
    assert_eq!(c.statement_timeout(), Some(Duration::from_millis(750)));
    assert_eq!(c.query_timeout(), Some(Duration::from_secs(3)));
    assert_eq!(c.connect_timeout(), Duration::from_secs(4));
    assert_eq!(c.health_check_interval(), Duration::ZERO);
    assert_eq!(c.profile(), Some(Profile::Production));
    assert_eq!(c.worker_id(), "gw3");
    assert_eq!(c.host_recheck(), Duration::from_secs(2));
    assert_eq!(c.read_max_lag(), Some(dbmux::ReadMaxLag::Bytes(16 << 20)));
    assert_eq!(c.read_after_wait(), Duration::from_millis(80));
    assert_eq!(c.sqlite_max_read_tx(), None);
    assert_eq!(
        Config::builder().build().unwrap().sqlite_max_read_tx(),
        Some(Duration::from_secs(30))
    );
}

#[test]
fn read_max_lag_takes_bytes_or_a_delay() {
    let lag = |v: &'static str| {
        Config::builder()
            .with_env_lookup(env(&[("DB_READ_MAX_LAG", v)]))
            .build()
            .map(|c| c.read_max_lag())
    };
    use dbmux::ReadMaxLag::{Bytes, Delay};
    assert_eq!(lag("65536").unwrap(), Some(Bytes(65536)));
    assert_eq!(lag("64kB").unwrap(), Some(Bytes(64 << 10)));
    assert_eq!(lag("1GB").unwrap(), Some(Bytes(1 << 30)));
    assert_eq!(
        lag("500ms").unwrap(),
        Some(Delay(Duration::from_millis(500)))
    );
    assert_eq!(lag("2s").unwrap(), Some(Delay(Duration::from_secs(2))));
    assert_eq!(lag("0").unwrap(), None);
    // defaults: no limit, 50 ms wait, 10 s recheck
    let d = Config::builder().build().unwrap();
    assert_eq!(d.read_max_lag(), None);
    assert_eq!(d.read_after_wait(), Duration::from_millis(50));
    assert_eq!(d.host_recheck(), Duration::from_secs(10));
    for bad in ["lots", "-5", "10 parsecs", "99999999999GB"] {
        let e = lag(bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig, "{bad}");
        let m = e.to_string();
        assert!(m.contains("DB_READ_MAX_LAG") && m.contains("16MB"), "{m}");
    }
}

#[test]
fn the_wal_soft_limit_takes_bytes() {
    let limit = |v: &'static str| {
        Config::builder()
            .with_env_lookup(env(&[("DB_SQLITE_WAL_SOFT_LIMIT", v)]))
            .build()
            .map(|c| c.sqlite_wal_soft_limit())
    };
    assert_eq!(
        Config::builder().build().unwrap().sqlite_wal_soft_limit(),
        16 << 20
    );
    assert_eq!(limit("33554432").unwrap(), 32 << 20);
    assert_eq!(limit("64MB").unwrap(), 64 << 20);
    assert_eq!(limit("8MiB").unwrap(), 8 << 20);
    assert_eq!(limit("0").unwrap(), 0);
    for bad in ["big", "-1", "2s", "99999999999GB"] {
        let e = limit(bad).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidConfig, "{bad}");
        let m = e.to_string();
        assert!(
            m.contains("DB_SQLITE_WAL_SOFT_LIMIT") && m.contains("16MB") && m.contains(bad),
            "{m}"
        );
    }
}

#[test]
fn profiles_fill_in_and_explicit_settings_win() {
    let sizes = |pairs: &[(&str, &str)]| {
        let c = Config::builder()
            .with_env_lookup(env(pairs))
            .build()
            .unwrap();
        (c.pool_size(), c.max_overflow())
    };
    assert_eq!(sizes(&[("DB_PROFILE", "development")]), (5, 10));
    assert_eq!(sizes(&[("DB_PROFILE", "production")]), (10, 20));
    assert_eq!(sizes(&[("DB_PROFILE", "test")]), (1, 1));
    assert_eq!(sizes(&[("APP_ENV", "prod")]), (10, 20));
    // DB_PROFILE wins over APP_ENV
    assert_eq!(
        sizes(&[("DB_PROFILE", "test"), ("APP_ENV", "production")]),
        (1, 1)
    );
    // an explicit env setting wins over the profile
    assert_eq!(
        sizes(&[("DB_PROFILE", "production"), ("DB_POOL_SIZE", "2")]),
        (2, 20)
    );
    // code wins over env and profile
    let c = Config::builder()
        .pool_size(7)
        .with_env_lookup(env(&[("DB_PROFILE", "test"), ("DB_POOL_SIZE", "2")]))
        .build()
        .unwrap();
    assert_eq!((c.pool_size(), c.max_overflow()), (7, 1));
    // a profile set in code is overridden by explicit env values
    let c = Config::builder()
        .profile(Profile::Production)
        .with_env_lookup(env(&[("DB_MAX_OVERFLOW", "0")]))
        .build()
        .unwrap();
    assert_eq!((c.pool_size(), c.max_overflow()), (10, 0));
}

#[test]
fn dotenv_file_sits_between_environment_and_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(
        &path,
        "DATABASE_URL=sqlite:///from_dotenv.db\nDB_POOL_SIZE=8\nDB_MAX_OVERFLOW=9\nDB_PROFILE=test\n",
    )
    .unwrap();
    let c = Config::builder()
        .with_env_lookup(env(&[("DB_POOL_SIZE", "2")]))
        .dotenv_file(&path)
        .build()
        .unwrap();
    // env beats .env; .env beats profile
    assert_eq!((c.pool_size(), c.max_overflow()), (2, 9));
    assert_eq!(c.profile(), Some(Profile::Test));
    assert!(c.redacted_url().ends_with("from_dotenv.db"));

    std::fs::write(&path, "DB_POOL_SIZE=lots\n").unwrap();
    let e = Config::builder()
        .with_env_lookup(env(&[]))
        .dotenv_file(&path)
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    assert!(e.to_string().contains("DB_POOL_SIZE (from .env)"), "{e}");
}

/// Bad settings: (variables, text the message must contain). Each must fail
/// with InvalidConfig naming the setting and the bad value, never panic.
#[test]
fn bad_settings_are_rejected_before_reaching_r2d2() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("DB_POOL_SIZE", "0"), ("DB_MAX_OVERFLOW", "0")],
            "pool_size + max_overflow = '0 + 0'",
        ),
        (
            &[("DB_POOL_SIZE", "abc")],
            "invalid DB_POOL_SIZE = 'abc': must be a whole number",
        ),
        (&[("DB_POOL_SIZE", "-1")], "invalid DB_POOL_SIZE = '-1'"),
        (&[("DB_POOL_SIZE", "10001")], "from 0 to 10000"),
        (
            &[("DB_READ_POOL_SIZE", "lots")],
            "invalid DB_READ_POOL_SIZE = 'lots'",
        ),
        (&[("DB_MAX_OVERFLOW", "-1")], "no 'unlimited'"),
        (&[("DB_MAX_OVERFLOW", "1.5")], "DB_MAX_OVERFLOW = '1.5'"),
        (
            &[("DB_POOL_TIMEOUT", "0")],
            "pool_timeout (DB_POOL_TIMEOUT) = '0': must be positive",
        ),
        (
            &[("DB_POOL_TIMEOUT", "forever")],
            "DB_POOL_TIMEOUT = 'forever': must be a duration",
        ),
        (&[("DB_POOL_TIMEOUT", "-5")], "DB_POOL_TIMEOUT = '-5'"),
        (&[("DB_POOL_RECYCLE", "often")], "DB_POOL_RECYCLE = 'often'"),
        (
            &[("DB_POOL_PRE_PING", "maybe")],
            "DB_POOL_PRE_PING = 'maybe': must be true/false",
        ),
        (&[("DB_ECHO", "loud")], "DB_ECHO = 'loud'"),
        (
            &[("DB_STATEMENT_TIMEOUT", "x")],
            "DB_STATEMENT_TIMEOUT = 'x'",
        ),
        (&[("DB_QUERY_TIMEOUT", "soon")], "DB_QUERY_TIMEOUT = 'soon'"),
        (
            &[("DB_CONNECT_TIMEOUT", "0")],
            "connect_timeout (DB_CONNECT_TIMEOUT) = '0'",
        ),
        (
            &[("DB_HEALTH_CHECK_INTERVAL", "nope")],
            "DB_HEALTH_CHECK_INTERVAL = 'nope'",
        ),
        (
            &[("DB_PROFILE", "staging")],
            "DB_PROFILE = 'staging': allowed profiles are",
        ),
        (&[("APP_ENV", "qa")], "APP_ENV = 'qa'"),
        (&[("DB_POOL_SIZE", "")], "DB_POOL_SIZE is set but empty"),
        (&[("DATABASE_URL", "")], "DATABASE_URL is set but empty"),
    ];
    for (vars, needle) in cases {
        let e = Config::builder()
            .with_env_lookup(env(vars))
            .build()
            .expect_err(needle);
        assert_eq!(e.code(), ErrorCode::InvalidConfig, "{vars:?}: {e}");
        assert!(
            e.to_string().contains(needle),
            "{vars:?}: {:?} lacks {needle:?}",
            e.to_string()
        );
    }
    // the same checks apply to settings made in code
    let e = Config::builder()
        .url(":memory:")
        .pool_size(0)
        .max_overflow(0)
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidConfig);
    let e = Config::builder()
        .url(":memory:")
        .pool_timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("pool_timeout"), "{e}");
    let e = Config::builder()
        .url(":memory:")
        .pool_size(20_000)
        .build()
        .unwrap_err();
    assert!(e.to_string().contains("invalid pool_size = '20000'"), "{e}");
    // the read pool follows pool_size unless set
    let c = Config::builder()
        .url(":memory:")
        .pool_size(7)
        .build()
        .unwrap();
    assert_eq!(c.read_pool_size(), 7);
    let c = Config::builder()
        .url(":memory:")
        .pool_size(7)
        .read_pool_size(2)
        .build()
        .unwrap();
    assert_eq!(c.read_pool_size(), 2);
    // a bad URL from the environment is an InvalidUrl error naming the forms
    let e = Config::builder()
        .with_env_lookup(env(&[("DATABASE_URL", "mysql://x")]))
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidUrl);
    assert!(e.to_string().contains("supported forms"));
}

#[test]
fn code_overrides_url_pragmas() {
    let c = Config::builder()
        .url("sqlite:///x.db?busy_timeout=100&journal_mode=delete")
        .busy_timeout(Duration::from_millis(900))
        .build()
        .unwrap();
    let Target::Sqlite(t) = c.target() else {
        panic!()
    };
    assert_eq!(t.options.busy_timeout, Some(Duration::from_millis(900)));
    assert_eq!(t.options.journal_mode, Some(JournalMode::Delete));
}

#[test]
#[cfg(not(feature = "postgres"))]
fn postgres_url_without_the_feature_names_the_feature() {
    let e = dbmux::Manager::from_url("postgresql://app:s3cr3t-pw@db.internal/app").unwrap_err();
    assert_eq!(e.code(), ErrorCode::FeatureDisabled);
    assert!(e.to_string().contains("`postgres` Cargo feature"), "{e}");
    assert!(e.to_string().contains("app:***@db.internal"), "{e}");
    assert!(!e.to_string().contains("s3cr3t-pw"));
}
