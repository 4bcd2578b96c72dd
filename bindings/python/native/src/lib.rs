//! `dbmux._dbmux`: the compiled core of the dbmux Python package. The
//! PEP 249 connection and cursor live here, so that `execute` and the
//! fetches are one call into Rust each, with the GIL released while the
//! database works; the Python modules around it add the exception classes,
//! the type objects and the module-level functions.

mod aio;
mod connection;
mod cursor;
mod errors;
mod logging;
mod manager;
mod values;

use pyo3::prelude::*;

/// The version of the SQLite library dbmux runs on (`None` without SQLite).
#[pyfunction]
fn sqlite_version() -> Option<String> {
    #[cfg(feature = "sqlite")]
    return Some(dbmux::sqlite_version().to_string());
    #[cfg(not(feature = "sqlite"))]
    None
}

/// `(number, name)` of every status code, from Rust's one table.
#[pyfunction]
fn status_names() -> Vec<(i32, &'static str)> {
    dbmux::ErrorCode::ALL
        .iter()
        .map(|c| (c.as_i32(), c.name()))
        .collect()
}

/// Shuts the process-wide manager down (`dbmux::shutdown`).
#[pyfunction]
fn global_shutdown(py: Python<'_>) {
    py.detach(dbmux::shutdown);
}

/// dbmux's version and the features it was built with
/// (`dbmux::version_with_features`).
#[pyfunction]
fn library_version() -> String {
    dbmux::version_with_features()
}

#[pymodule]
fn _dbmux(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<manager::Manager>()?;
    m.add_class::<connection::Connection>()?;
    m.add_class::<cursor::Cursor>()?;
    m.add_class::<aio::Workers>()?;
    m.add_class::<aio::Waker>()?;
    m.add_function(wrap_pyfunction!(sqlite_version, m)?)?;
    m.add_function(wrap_pyfunction!(status_names, m)?)?;
    m.add_function(wrap_pyfunction!(global_shutdown, m)?)?;
    m.add_function(wrap_pyfunction!(library_version, m)?)?;
    m.add_function(wrap_pyfunction!(logging::install_log_bridge, m)?)?;
    Ok(())
}
