//! Helpers shared by the integration tests: the throwaway PostgreSQL
//! servers of scripts/with-test-postgres.sh, and log capture.

#[allow(dead_code)] // not every test file asserts on log lines
pub mod logs;

use std::time::Duration;

use dbmux::{params, Config, Manager};

/// The values of the `DBMUX_TEST_PG_*` variables `names`, in order. When one
/// is missing the servers are not running: a visible skip locally (`None`),
/// a failure in CI (`CI=true`).
#[allow(dead_code)] // not every test file needs the servers
pub fn pg_env<const N: usize>(names: [&str; N]) -> Option<[String; N]> {
    let values: Vec<String> = names.iter().filter_map(|n| std::env::var(n).ok()).collect();
    let msg = match <[String; N]>::try_from(values) {
        Ok(all) if cfg!(feature = "postgres") => return Some(all),
        Ok(_) => {
            "dbmux is built without its `postgres` feature (not a default one): run \
             the tests with --features cli (scripts/test.sh does)"
        }
        Err(_) => {
            "PostgreSQL test servers are not running: run the tests through \
             scripts/with-test-postgres.sh (scripts/test.sh does)"
        }
    };
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    None
}

/// The two throwaway servers of scripts/with-test-postgres.sh: the TLS one
/// (`port`) and the plain one (`plain_port`), the test password and the
/// directory of the certificates made at test time.
#[allow(dead_code)] // not every test file uses every field
pub struct Pg {
    pub port: String,
    pub plain_port: String,
    pub password: String,
    pub certs: String,
}

#[allow(dead_code)]
/// The servers, or `None` (a visible skip locally, a failure in CI).
pub fn pg() -> Option<Pg> {
    let [port, plain_port, password, certs] = pg_env([
        "DBMUX_TEST_PG_PORT",
        "DBMUX_TEST_PG_PLAIN_PORT",
        "DBMUX_TEST_PG_PASSWORD",
        "DBMUX_TEST_PG_CERTS",
    ])?;
    Some(Pg {
        port,
        plain_port,
        password,
        certs,
    })
}

#[allow(dead_code)] // not every test file uses every helper
impl Pg {
    /// A URL for `user` at `host:port` with the query `query`.
    pub fn url(&self, user: &str, host: &str, port: &str, query: &str) -> String {
        format!(
            "postgresql://{user}:{}@{host}:{port}/dbmux_test{}{query}",
            self.password,
            if query.is_empty() { "" } else { "?" }
        )
    }
    /// The main test database on the TLS server, as `dbmux`.
    pub fn main(&self) -> String {
        self.url("dbmux", "localhost", &self.port, "")
    }
    /// A manager with short pool and connect timeouts.
    pub fn manager(&self, url: &str) -> dbmux::Result<Manager> {
        Manager::new(
            Config::builder()
                .url(url)
                .pool_timeout(Duration::from_secs(5))
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        )
    }
    /// A new, empty database `name` on the TLS server (dropped first if a
    /// run before left it), and its URL as `dbmux`.
    pub fn fresh_database(&self, name: &str) -> String {
        let admin = self.manager(&self.main()).unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            admin.execute(&sql, params![]).unwrap();
        }
        admin.shutdown();
        self.main().replace("/dbmux_test", &format!("/{name}"))
    }
    /// A file of the certificate directory.
    pub fn cert(&self, name: &str) -> String {
        format!("{}/{name}", self.certs)
    }
}

/// Connects once with `url` (checkouts wait at most `pool_timeout`):
/// `Ok(encrypted)` as the server's `pg_stat_ssl` says, checked against the
/// client's own answer, or the error.
#[allow(dead_code)]
pub fn try_connect(url: &str, pool_timeout: Duration) -> dbmux::Result<bool> {
    let mgr = Manager::new(
        Config::builder()
            .url(url)
            .pool_timeout(pool_timeout)
            .connect_timeout(Duration::from_secs(3))
            .build()?,
    )?;
    let mut c = mgr.get()?;
    let server_says: bool = c.query_scalar(
        "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        params![],
    )?;
    assert_eq!(
        c.is_encrypted(),
        Some(server_says),
        "client and pg_stat_ssl disagree"
    );
    drop(c);
    mgr.shutdown();
    Ok(server_says)
}

/// Control of the TLS server of scripts/with-test-postgres.sh: its URL and
/// `pg_ctl` as the `postgres` user (for tests that stop and restart it).
#[allow(dead_code)]
pub struct Control {
    pub url: String,
    pub bin: String,
    pub data: String,
}

/// The server's control, or `None` (a visible skip locally, a failure in CI).
#[allow(dead_code)]
pub fn control() -> Option<Control> {
    let [url, bin, data] = pg_env([
        "DBMUX_TEST_PG_URL",
        "DBMUX_TEST_PG_BIN",
        "DBMUX_TEST_PG_DATA",
    ])?;
    Some(Control { url, bin, data })
}

#[allow(dead_code)]
impl Control {
    /// Runs `pg_ctl -w ARGS` on the server (waits until it is done).
    pub fn pg_ctl(&self, args: &[&str]) {
        let status = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(format!("{}/pg_ctl", self.bin))
            .args(["-D", &self.data, "-w", "-t", "60"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {args:?} failed");
    }
}

/// `n` threads that each check a connection out of `mgr` (and return it at
/// once): the checkouts wait in line together.
#[allow(dead_code)]
pub fn spawn_checkouts(mgr: &Manager, n: usize) -> Vec<std::thread::JoinHandle<dbmux::Result<()>>> {
    (0..n)
        .map(|_| {
            let mgr = mgr.clone();
            std::thread::spawn(move || mgr.get().map(drop))
        })
        .collect()
}

/// A loopback TCP port nobody listens on: connects to it are refused.
#[allow(dead_code)]
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
