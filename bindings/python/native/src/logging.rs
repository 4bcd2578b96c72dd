//! dbmux's log lines (Rust's `log` records) into Python `logging`, under
//! the `dbmux` logger (`dbmux.sqlite`, `dbmux.pool`, ...).

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

static SINK: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        dbmux::logging::is_dbmux(m.target())
    }

    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let level = match r.level() {
            log::Level::Error => 40,
            log::Level::Warn => 30,
            log::Level::Info => 20,
            _ => 10,
        };
        let target = r.target().to_string();
        let message = r.args().to_string();
        // from any thread; never while the interpreter is going away
        if unsafe { pyo3::ffi::Py_IsInitialized() } == 0 {
            return;
        }
        Python::attach(|py| {
            if let Some(sink) = SINK.get(py) {
                if let Err(e) = sink.bind(py).call1((level, target, message)) {
                    e.print(py);
                }
            }
        });
    }

    fn flush(&self) {}
}

/// Routes dbmux's log lines to `sink(level, target, message)` (the package
/// passes its `logging` adapter). False when another logger owns Rust's
/// log facade in this process.
#[pyfunction]
pub(crate) fn install_log_bridge(py: Python<'_>, sink: Py<PyAny>) -> bool {
    let _ = SINK.set(py, sink);
    dbmux::logging::install(&Bridge)
}
