//! Managers: open, close, the global one, health and debug JSON.

use std::ffi::c_char;
use std::sync::Mutex;

use super::*;

/// A connection manager (a pool). Opaque.
#[allow(non_camel_case_types)]
pub struct dbmux_manager {
    pub(crate) mgr: Manager,
    /// The global manager's handle: not freed by `dbmux_manager_close`.
    pub(crate) global: bool,
}

// --------------------------------------------------------------- managers --

/// Opens a manager for `url`, or for `DATABASE_URL` (then `./.env`, then the
/// embedded default `./dbmux.db`) when `url` is NULL. In both cases the pool
/// settings come from the `DB_*` environment variables (`DB_POOL_SIZE`,
/// `DB_POOL_TIMEOUT`, ...) and their defaults. Does not connect. On success `*out`
/// owns the manager: close it with `dbmux_manager_close`. A manager may be
/// used from any thread at once.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_open(
    url: *const c_char,
    out: *mut *mut dbmux_manager,
) -> dbmux_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let mgr = if url.is_null() {
            Manager::from_env()
        } else {
            let url = c_str(url, "url")?;
            dbmux::Config::builder()
                .url(url)
                .with_env()
                .build()
                .and_then(Manager::new)
        }
        .or_fail()?;
        out.put(Box::into_raw(Box::new(dbmux_manager {
            mgr,
            global: false,
        })));
        Ok(())
    })
}

/// Closes every connection of the manager (those still checked out close
/// when released) and frees it. NULL is accepted. The global manager's
/// handle is not freed (use `dbmux_global_shutdown`).
/// Thread: Any thread, once no other thread uses the manager.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_close(mgr: *mut dbmux_manager) {
    let _ = guard(|| {
        if mgr.is_null() || (*mgr).global {
            return dbmux_status::DBMUX_OK;
        }
        let m = Box::from_raw(mgr);
        m.mgr.shutdown();
        dbmux_status::DBMUX_OK
    });
}

/// The global handle, kept alive until `dbmux_global_shutdown`.
static GLOBAL: Mutex<Option<Box<dbmux_manager>>> = Mutex::new(None);

/// The process-wide manager, created from the environment on first use.
/// `*out` is borrowed: do not close it; it stays valid until
/// `dbmux_global_shutdown`. Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_global(out: *mut *mut dbmux_manager) -> dbmux_status {
    guard(|| {
        let out = out_ptr(out, "out")?;
        let mut slot = GLOBAL.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = slot.as_mut() {
            if !h.mgr.is_closed() {
                out.put(&mut **h as *mut dbmux_manager);
                return Ok(());
            }
        }
        let mgr = dbmux::global().or_fail()?;
        let h = slot.insert(Box::new(dbmux_manager { mgr, global: true }));
        out.put(&mut **h as *mut dbmux_manager);
        Ok(())
    })
}

/// Shuts the global manager down and invalidates handles from
/// `dbmux_global`; the next `dbmux_global` builds a fresh one.
/// Thread: Any thread, once no other thread uses the global handle.
#[no_mangle]
pub extern "C" fn dbmux_global_shutdown() {
    let _ = guard(|| {
        dbmux::shutdown();
        GLOBAL.lock().unwrap_or_else(|e| e.into_inner()).take();
        dbmux_status::DBMUX_OK
    });
}

/// The manager's health report as JSON (the same object as Rust's
/// `HealthReport`), cached for DB_HEALTH_CHECK_INTERVAL. `*out` is owned by
/// the caller: free it with `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_health_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, |m| m.health().to_json())
}

/// The manager's debug info as JSON (Rust's `DebugInfo`). `*out` is owned
/// by the caller: free it with `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_debug_info_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, |m| m.debug_info().to_json())
}

/// The manager's metrics in the Prometheus text exposition format 0.0.4
/// (Rust's `Manager::metrics_text`: gauges, counters and histograms, every
/// sample labelled with `pool` and `backend`; serve it with
/// `Content-Type: text/plain; version=0.0.4`). Never touches the database.
/// `*out` is owned by the caller: free it with `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_metrics(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, Manager::metrics_text)
}

/// The same metrics in OpenMetrics 1.0 (`Manager::metrics_openmetrics`;
/// `Content-Type: application/openmetrics-text; version=1.0.0;
/// charset=utf-8`). `*out` is owned by the caller: free it with
/// `dbmux_string_free`.
/// Thread: Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_manager_metrics_openmetrics(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
) -> dbmux_status {
    manager_json(mgr, out, Manager::metrics_openmetrics)
}

/// Checks the pointers and hands `json(manager)` (any text) to the caller as a C string.
pub(crate) unsafe fn manager_json(
    mgr: *const dbmux_manager,
    out: *mut *mut c_char,
    json: impl FnOnce(&Manager) -> String,
) -> dbmux_status {
    guard(|| {
        let mgr = handle(mgr, "mgr")?;
        let out = out_ptr(out, "out")?;
        out.put(to_c_string(json(&mgr.mgr)));
        Ok(())
    })
}
