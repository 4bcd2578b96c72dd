//! The C ABI of dbmux. See `bindings/c/README.md` for the conventions and
//! `bindings/c/dbmux.h` (generated from these files by cbindgen) for the API.
//!
//! Every `extern "C"` function body runs inside [`guard`], which catches
//! panics (a panic escaping `extern "C"` would abort the host) and records
//! the last error message for the calling thread.
#![allow(clippy::missing_safety_doc)] // the safety rules are in the header comments

// Laid out as rustls-ffi is: the boundary, then one file per concept.
mod boundary; // panic guard, last error, strings
mod connection; // dbmux_conn_*: checkout, transactions, statements
mod logging; // dbmux_set_log_callback
mod maintenance; // dbmux_backup, dbmux_restore (SQLite)
mod manager; // dbmux_manager_*, dbmux_global*, health and debug JSON
mod migrate; // dbmux_migrate_dir, dbmux_migration_status
mod result; // dbmux_result_*
mod status; // dbmux_status, dbmux_status_name
mod values; // dbmux_value and its checked type tag
mod version; // versions and features

pub use boundary::*;
pub use connection::*;
pub use logging::*;
pub use maintenance::*;
pub use manager::*;
pub use migrate::*;
pub use result::*;
pub use status::*;
pub use values::*;
pub use version::*;

// The names every module uses.
pub(crate) use dbmux::{Connection, Error, ErrorCode, Manager, Rows, Value};

#[cfg(test)]
mod tests;
