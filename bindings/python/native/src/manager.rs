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
    #[pyo3(signature = (url=None, *, pool_size=None, max_overflow=None, pool_timeout=None,
                        pool_recycle=None, pool_pre_ping=None, pool_name=None, _global=false))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        url: Option<String>,
        pool_size: Option<u32>,
        max_overflow: Option<u32>,
        pool_timeout: Option<f64>,
        pool_recycle: Option<f64>,
        pool_pre_ping: Option<bool>,
        pool_name: Option<String>,
        _global: bool,
    ) -> PyResult<Manager> {
        let seconds = |what: &str, s: f64| {
            std::time::Duration::try_from_secs_f64(s).map_err(|_| {
                status_error(
                    py,
                    crate::errors::INVALID_CONFIG,
                    &format!("{what} must be a number of seconds >= 0, not {s}"),
                )
            })
        };
        let timeout = pool_timeout
            .map(|s| seconds("pool_timeout", s))
            .transpose()?;
        // SQLAlchemy's pool_recycle=-1: never
        let recycle = match pool_recycle {
            None => None,
            Some(s) if s < 0.0 => Some(None),
            Some(s) => Some(Some(seconds("pool_recycle", s)?)),
        };
        let tuned = pool_size.is_some()
            || max_overflow.is_some()
            || timeout.is_some()
            || recycle.is_some()
            || pool_pre_ping.is_some()
            || pool_name.is_some();
        if _global && tuned {
            return Err(status_error(
                py,
                crate::errors::INVALID_CONFIG,
                "the process-wide manager takes its pool settings from the environment \
                 (DB_POOL_SIZE, ...); build a Manager(url, pool_size=...) to set them in code",
            ));
        }
        let mgr = py
            .detach(|| {
                if _global {
                    return dbmux::global();
                }
                let mut b = dbmux::Config::builder();
                if let Some(u) = url {
                    b = b.url(u);
                }
                b = b.with_env();
                if let Some(n) = pool_size {
                    b = b.pool_size(n);
                }
                if let Some(n) = max_overflow {
                    b = b.max_overflow(n);
                }
                if let Some(d) = timeout {
                    b = b.pool_timeout(d);
                }
                if let Some(d) = recycle {
                    b = b.pool_recycle(d);
                }
                if let Some(on) = pool_pre_ping {
                    b = b.pool_pre_ping(on);
                }
                if let Some(name) = pool_name {
                    b = b.pool_name(name);
                }
                b.build().and_then(dbmux::Manager::new)
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

    /// Checks a connection out of the pool (waits up to pool_timeout).
    ///
    /// `readonly=True`: a connection for reads (Rust's `get_read`), from the
    /// read pool (DB_READ_POOL_SIZE); the database refuses writes through it
    /// (OperationalError, code read_only). With several PostgreSQL hosts it
    /// is on a standby where one qualifies. `after=token` (a
    /// `Connection.write_token`) gives a reader that has that write: a
    /// standby that replayed it, else the primary after DB_READ_AFTER_WAIT;
    /// it implies `readonly=True`.
    ///
    /// `raw=True` returns values as the database gives them: no conversion
    /// of declared DATE/TIMESTAMP/NUMERIC/BOOLEAN columns (for SQLAlchemy,
    /// whose types convert). `paramstyle="numeric_dollar"` sends the SQL
    /// to PostgreSQL as written: `$1, $2, ...` are the placeholders and `?`
    /// stays an operator (jsonb's `?`, `?|`, `?&`); the default "qmark"
    /// takes `?` (or `$n`) and rewrites as the database needs.
    #[pyo3(signature = (readonly=false, after=None, *, raw=false, paramstyle="qmark"))]
    fn connect<'py>(
        slf: &Bound<'py, Self>,
        readonly: bool,
        after: Option<&Bound<'py, PyAny>>,
        raw: bool,
        paramstyle: &str,
    ) -> PyResult<Bound<'py, crate::connection::Connection>> {
        let py = slf.py();
        let c = crate::connection::Connection::open(py, slf, readonly, after, raw, paramstyle)?;
        Bound::new(py, c)
    }

    /// Closes every connection of the pool before returning (checked-out
    /// ones when they are released); later calls do nothing.
    fn close(&self, py: Python<'_>) {
        let m = crate::connection::lock(&self.inner).take();
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

    /// The Prometheus text (0.0.4), or with `openmetrics` OpenMetrics 1.0.
    #[pyo3(signature = (openmetrics=false))]
    fn metrics(&self, py: Python<'_>, openmetrics: bool) -> PyResult<String> {
        let m = self.get(py)?;
        Ok(py.detach(|| {
            if openmetrics {
                m.metrics_openmetrics()
            } else {
                m.metrics_text()
            }
        }))
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
                            *crate::connection::lock(&raised) = Some(e);
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
        if let Some(e) = crate::connection::lock(&raised).take() {
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
