// The README is the crate's front page. Its links point at the module docs'
// Markdown files; for rustdoc the same link labels are defined first (the first
// definition of a label wins), as the modules themselves.
#![doc = "[url]: crate::url\n[pgurl]: crate::url::postgres\n[config]: crate::config\n\
[pool]: crate::pool\n[health]: mod@crate::health\n[errors]: crate::ErrorCode\n\
[migrate]: crate::migrate"]
#![cfg_attr(
    all(feature = "sqlite", feature = "postgres", not(target_arch = "wasm32")),
    doc = "[copy]: crate::copy"
)]
#![cfg_attr(feature = "sqlite", doc = "[sqlite]: crate::sqlite")]
#![cfg_attr(
    feature = "postgres",
    doc = "[pg]: crate::postgres\n[scaling]: crate::postgres#scaling-out"
)]
#![doc = include_str!("../README.md")]
#![warn(missing_docs)]
// Unsafe code is denied everywhere but in `sqlite::copies` (Linux), which asks
// the dynamic loader which SQLite libraries the process has loaded,
// `postgres::socket`, and `sqlite::handle`, where a connection keeps the
// statements prepared on it (they borrow it: a self-referential pair).
#![deny(unsafe_code)]
// A build without any backend compiles (so features can be combined freely) but
// has nothing to run; its unused plumbing is expected.
#![cfg_attr(
    not(any(feature = "sqlite", feature = "postgres")),
    allow(unused, unreachable_code)
)]

#[cfg(all(target_arch = "wasm32", feature = "postgres"))]
compile_error!(
    "dbmux's PostgreSQL backend needs sockets and threads, which wasm32 lacks: build with \
     --no-default-features --features sqlite (or wasm)"
);

// Module map: the layers, leaves first. One line a module; the reference
// for each public module is the Markdown file beside it (its module docs).
//
// - `platform`      clocks and process facts that differ on wasm32 (leaf)
// - `error`         `Error`, `ErrorCode` (the one table of codes) (leaf)
// - `placeholders`  `?` <-> `$n` rewriting (leaf)
// - `value`         `Value`, `Row`, `Rows`, `RowSink` (leaf)
// - `url/`          every URL form, always compiled: dispatch (`mod.rs`),
//                   SQLite options (`sqlite.rs`), libpq strings
//                   (`postgres/`: settings, `syntax.rs`), percent-decoding,
//                   redaction
// - `config/`       `Config`; its builder (`builder.rs`), the table of
//                   environment variables and `.env` (`env.rs`), value parsers
// - `pool/`         dbmux's pool (`core.rs`: FIFO hand-off, bounded connect
//                   attempts, fail-fast), the checkout/return checks
//                   (`checks.rs`), counters and histograms, leaks, retry,
//                   the snapshot
// - `sqlite/`       the SQLite backend (feature `sqlite`): opening and pragmas
//                   (`open.rs`), statements, error mapping, the library
//                   checks (`library.rs`, `copies.rs`)
// - `postgres/`     the PostgreSQL backend (feature `postgres`): connecting
//                   (`connect.rs`), TLS (`tls.rs`), the blocking client with
//                   deadlines (`client.rs`), what the manager knows of each
//                   host (`hosts.rs`), write tokens and replica lag
//                   (`replicas.rs`), statements, values, errors
// - `native`        the trait each backend's pooled connection implements
// - `connection`    `Connection`, `Transaction`: the one place statements and
//                   transactions run, for every binding
// - `manager/`      `Manager`: checkout, health caching; the backend dispatch
//                   (`backend.rs`); health and debug reports (`reports.rs`)
// - `copy/`         `Manager::copy_to`: a SQLite database's rows into
//                   PostgreSQL through COPY, converted by the target's types
//                   (`convert.rs`) (features `sqlite` and `postgres`)
// - `migrate/`      migrations on both backends: the files (`source.rs`), the
//                   lock (`lock.rs`), the runner and ledger (`run.rs`), the
//                   SQLite statement stepper and foreign-key guard
//                   (`sqlite.rs`)
// - `token`         `WriteToken` (read-your-writes), always compiled
// - `health`        `HealthReport`, `DebugInfo`, `HostHealth` (plain data, JSON)
// - `logging`       which log records are dbmux's, the facade's cap (bindings)
// - `global`        the lazily built process-wide manager
// - `wasm`          the JavaScript `Database` class (feature `wasm`, wasm32;
//                   `wasm/opfs.rs`: the OPFS VFS of `openAsync`, feature `opfs`)
// The C ABI is the `dbmux-ffi` crate in `ffi/`; Python is `bindings/python/`.
pub mod config;
mod connection;
#[cfg(all(feature = "sqlite", feature = "postgres", not(target_arch = "wasm32")))]
pub mod copy;
mod error;
mod exposition;
mod global;
pub mod health;
pub mod logging;
mod manager;
pub mod migrate;
mod native;
mod placeholders;
mod platform;
pub mod pool;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;
mod token;
pub mod url;
mod value;
#[cfg(all(feature = "wasm", target_arch = "wasm32"))]
pub mod wasm;

// The everyday names live at the crate root; the rest in the public modules
// above, which match the folders (`dbmux::url`, `dbmux::config`,
// `dbmux::pool`, `dbmux::health`, `dbmux::sqlite`, `dbmux::postgres`).
pub use config::{Config, ConfigBuilder, ReadMaxLag};
pub use connection::{Connection, Transaction};
pub use error::{Error, ErrorCode, Result};
pub use global::{debug_info, global, health, init, is_initialized, metrics_text, shutdown};
pub use manager::Manager;
pub use native::Interrupter;
pub use pool::RetryPolicy;
#[cfg(feature = "sqlite")]
pub use sqlite::sqlite_version;
pub use token::WriteToken;
pub use value::{Column, ColumnIndex, FromValue, Row, RowSink, Rows, Value, ValueRef};

/// The tokio-postgres crate dbmux is built on, for use with
/// [`Connection::as_postgres`].
#[cfg(feature = "postgres")]
pub use tokio_postgres;

/// The rusqlite crate dbmux is built on, for use with [`Connection::as_sqlite`].
#[cfg(feature = "sqlite")]
pub use rusqlite;

/// Entry points for the fuzz targets in `fuzz/` (not a stable API).
#[doc(hidden)]
pub mod fuzzing {
    /// The placeholder rewriter: `?` to `$n` when `dollar`, else `$n` to `?n`.
    ///
    /// # Errors
    /// When the SQL mixes `?` and `$n`.
    pub fn rewrite_placeholders(sql: &str, dollar: bool) -> crate::Result<String> {
        use crate::placeholders::{rewrite, Target};
        let t = if dollar {
            Target::Dollar
        } else {
            Target::Question
        };
        rewrite(sql, t).map(|c| c.into_owned())
    }
}

/// Entry points for `benches/pool.rs` (not a stable API).
#[doc(hidden)]
#[cfg(all(feature = "postgres", unix))]
pub mod bench_hooks {
    /// The readiness check a checkout runs on an idle PostgreSQL
    /// connection's socket (a duplicate of `fd`): true when it is quiet.
    pub fn socket_is_quiet(fd: &std::os::fd::OwnedFd) -> bool {
        crate::postgres::socket::peek(socket2::SockRef::from(fd))
            == crate::pool::checks::Readiness::Quiet
    }
}

#[doc(hidden)]
pub use dbmux_macros::__embed_dir;

/// dbmux's version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// dbmux's version and the Cargo features it was built with, e.g.
/// `"dbmux 0.1.0 (sqlite, postgres, tls)"` (`bundled` when SQLite is
/// compiled in): what `dbmux_version()` in C and
/// `dbmux._dbmux.library_version()` in Python report.
pub fn version_with_features() -> String {
    let features: Vec<&str> = [
        ("sqlite", cfg!(feature = "sqlite")),
        ("bundled", cfg!(feature = "bundled")),
        ("postgres", cfg!(feature = "postgres")),
        ("tls", cfg!(feature = "tls")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    format!("dbmux {VERSION} ({})", features.join(", "))
}
