//! The log bridge: dbmux's `log` records to a C callback.

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::RwLock;

use super::*;

// ---------------------------------------------------------------- logging --

/// A log callback: `level` is 1 error, 2 warn, 3 info, 4 debug, 5 trace;
/// `target` and `message` are NUL-terminated and valid only during the call.
#[allow(non_camel_case_types)]
pub type dbmux_log_fn = Option<
    unsafe extern "C" fn(
        level: i32,
        target: *const c_char,
        message: *const c_char,
        user_data: *mut c_void,
    ),
>;

struct Callback {
    f: unsafe extern "C" fn(i32, *const c_char, *const c_char, *mut c_void),
    user_data: *mut c_void,
}
// The host promises (in the header) that the callback and user_data may be
// used from any thread.
unsafe impl Send for Callback {}
unsafe impl Sync for Callback {}

static CALLBACK: RwLock<Option<Callback>> = RwLock::new(None);

struct Bridge;

impl log::Log for Bridge {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        dbmux::logging::is_dbmux(m.target())
    }
    fn log(&self, r: &log::Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let guard = CALLBACK.read().unwrap_or_else(|e| e.into_inner());
        if let Some(cb) = guard.as_ref() {
            let target = CString::new(r.target()).unwrap_or_default();
            let msg = CString::new(r.args().to_string().replace('\0', " ")).unwrap_or_default();
            // A panic must not unwind into the host's callback frames and back.
            let _ = catch_unwind(AssertUnwindSafe(|| unsafe {
                (cb.f)(
                    r.level() as i32,
                    target.as_ptr(),
                    msg.as_ptr(),
                    cb.user_data,
                )
            }));
        }
    }
    fn flush(&self) {}
}

/// Routes dbmux's log lines (level, target, message) to `f`, with
/// `user_data` passed back. NULL `f` stops logging. `f` may be called from
/// any thread, also concurrently. DBMUX_MISUSE when another logger owns the
/// process's `log` facade.
#[no_mangle]
pub unsafe extern "C" fn dbmux_set_log_callback(
    f: dbmux_log_fn,
    user_data: *mut c_void,
) -> dbmux_status {
    guard(|| {
        if !dbmux::logging::install(&Bridge) {
            return Err(misuse(
                "another logger is installed in this process; dbmux cannot route its log lines",
            ));
        }
        *CALLBACK.write().unwrap_or_else(|e| e.into_inner()) = f.map(|f| Callback { f, user_data });
        Ok(())
    })
}
