//! `Manager`: one dbmux manager (a pool) for one URL.

use std::sync::Mutex;

use pyo3::prelude::*;

use crate::errors::{status_error, OrRaise, MANAGER_CLOSED};

/// A dbmux connection manager (a pool) for one URL; `None` reads the
/// environment (`DATABASE_URL`, `DB_POOL_SIZE`, ...), as in Rust.
#[pyclass(subclass, frozen, module = "dbmux._dbmux")]
pub struct Manager {
    inner: Mutex<Option<dbmux::Manager>>,
    /// The process-wide manager: `close` lets go of it without shutting it down.
    global: bool,
}

impl Manager {
    /// The live manager, or the closed error.
    pub(crate) fn get(&self, py: Python<'_>) -> PyResult<dbmux::Manager> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| status_error(py, MANAGER_CLOSED, "the manager is closed"))
    }
}

#[pymethods]
impl Manager {
    #[new]
    #[pyo3(signature = (url=None, *, _global=false))]
    fn new(py: Python<'_>, url: Option<String>, _global: bool) -> PyResult<Manager> {
        let mgr = py
            .detach(|| {
                if _global {
                    dbmux::global()
                } else if let Some(u) = url {
                    dbmux::Config::builder()
                        .url(u)
                        .with_env()
                        .build()
                        .and_then(dbmux::Manager::new)
                } else {
                    dbmux::Manager::from_env()
                }
            })
            .or_raise(py)?;
        Ok(Manager {
            inner: Mutex::new(Some(mgr)),
            global: _global,
        })
    }

    /// `sqlite` or `postgresql`.
    #[getter]
    fn backend(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.get(py)?.config().backend().name())
    }

    /// True after `close()`.
    #[getter]
    fn closed(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Closes every connection of the pool before returning (checked-out
    /// ones when they are released); later calls do nothing.
    fn close(&self, py: Python<'_>) {
        let m = self.inner.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let (Some(m), false) = (m, self.global) {
            py.detach(|| m.shutdown());
        }
    }

    fn _health_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.get(py)?;
        Ok(py.detach(|| m.health().to_json()))
    }

    fn _debug_info_json(&self, py: Python<'_>) -> PyResult<String> {
        let m = self.get(py)?;
        Ok(py.detach(|| m.debug_info().to_json()))
    }

    fn _migrate(&self, py: Python<'_>, dir: std::path::PathBuf) -> PyResult<String> {
        let m = self.get(py)?;
        py.detach(|| {
            dbmux::migrate::Migrations::from_dir(&dir)
                .and_then(|ms| m.migrate(&ms))
                .map(|r| r.to_json())
        })
        .or_raise(py)
    }

    fn _migration_status(&self, py: Python<'_>, dir: std::path::PathBuf) -> PyResult<String> {
        let m = self.get(py)?;
        py.detach(|| {
            dbmux::migrate::Migrations::from_dir(&dir)
                .and_then(|ms| m.migration_status(&ms))
                .map(|r| r.to_json())
        })
        .or_raise(py)
    }

    /// The online backup; `progress(done, total)` may return False to
    /// cancel. The report as JSON.
    #[cfg(feature = "sqlite")]
    #[pyo3(signature = (dest, compact=false, overwrite=false, progress=None))]
    fn _backup(
        &self,
        py: Python<'_>,
        dest: std::path::PathBuf,
        compact: bool,
        overwrite: bool,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<String> {
        let m = self.get(py)?;
        let raised: Mutex<Option<PyErr>> = Mutex::new(None);
        let r = py.detach(|| {
            let mut call = |p: dbmux::sqlite::BackupProgress| match &progress {
                None => true,
                Some(f) => {
                    Python::attach(|py| match f.bind(py).call1((p.pages_done, p.pages_total)) {
                        Ok(v) => !v.is(pyo3::types::PyBool::new(py, false)),
                        Err(e) => {
                            *raised.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
                            false
                        }
                    })
                }
            };
            let opts = dbmux::sqlite::BackupOptions::new()
                .compact(compact)
                .overwrite(overwrite)
                .progress(&mut call);
            m.backup_to(&dest, opts).map(|r| r.to_json())
        });
        if let Some(e) = raised.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(e);
        }
        r.or_raise(py)
    }

    #[cfg(feature = "sqlite")]
    fn _restore(&self, py: Python<'_>, src: std::path::PathBuf) -> PyResult<()> {
        let m = self.get(py)?;
        py.detach(|| m.restore_from(&src)).or_raise(py)
    }
}
