//! The boundary every `extern "C"` function goes through: the panic guard,
//! the thread's last error message, and string helpers.

use std::cell::RefCell;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use super::*;

thread_local! {
    static LAST_ERROR: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn set_error(msg: impl Into<String>) {
    let msg = msg.into();
    LAST_ERROR.with(|e| *e.borrow_mut() = Some(msg));
}

pub(crate) fn fail(e: Error) -> dbmux_status {
    let status = status_of(e.code());
    set_error(e.to_string());
    status
}

pub(crate) fn misuse(msg: &str) -> dbmux_status {
    set_error(msg);
    dbmux_status::DBMUX_MISUSE
}

pub(crate) fn null_arg(name: &str) -> dbmux_status {
    misuse(&format!("{name} must not be NULL"))
}

/// What an `extern "C"` body returns: a status, or `Result<(), dbmux_status>`
/// so that the body can use `?` (with [`OrFail::or_fail`] on dbmux results
/// and the helpers below, which already set the last error).
pub(crate) trait IntoStatus {
    fn into_status(self) -> dbmux_status;
}

impl IntoStatus for dbmux_status {
    fn into_status(self) -> dbmux_status {
        self
    }
}

impl dbmux_status {
    /// `Ok` for DBMUX_OK, else the status as an error (for `?`).
    pub(crate) fn into_result(self) -> Result<(), dbmux_status> {
        match self {
            dbmux_status::DBMUX_OK => Ok(()),
            s => Err(s),
        }
    }
}

impl IntoStatus for Result<(), dbmux_status> {
    fn into_status(self) -> dbmux_status {
        match self {
            Ok(()) => dbmux_status::DBMUX_OK,
            Err(s) => s,
        }
    }
}

/// A dbmux result as a status-carrying result: the error becomes its status
/// and the thread's last error message.
pub(crate) trait OrFail<T> {
    fn or_fail(self) -> Result<T, dbmux_status>;
}

impl<T> OrFail<T> for dbmux::Result<T> {
    fn or_fail(self) -> Result<T, dbmux_status> {
        self.map_err(fail)
    }
}

/// Runs an `extern "C"` body: clears the thread's last error, catches panics.
pub(crate) fn guard<S: IntoStatus>(f: impl FnOnce() -> S) -> dbmux_status {
    LAST_ERROR.with(|e| *e.borrow_mut() = None);
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(s) => s.into_status(),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            set_error(format!("internal error (a panic was caught): {what}"));
            dbmux_status::DBMUX_INTERNAL
        }
    }
}

/// A checked output pointer: written with [`Out::put`], never read (the C
/// caller may hand in uninitialised memory).
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    /// Writes the value out.
    pub(crate) unsafe fn put(self, v: T) {
        self.0.write(v)
    }
}

/// Checks an output pointer: DBMUX_MISUSE naming it when NULL.
pub(crate) fn out_ptr<T>(p: *mut T, name: &str) -> Result<Out<T>, dbmux_status> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    Ok(Out(p))
}

/// Checks a handle: DBMUX_MISUSE naming it when NULL.
pub(crate) unsafe fn handle<'a, T>(p: *const T, name: &str) -> Result<&'a T, dbmux_status> {
    p.as_ref().ok_or_else(|| null_arg(name))
}

/// Checks a handle the call changes: DBMUX_MISUSE naming it when NULL.
pub(crate) unsafe fn handle_mut<'a, T>(p: *mut T, name: &str) -> Result<&'a mut T, dbmux_status> {
    p.as_mut().ok_or_else(|| null_arg(name))
}

/// Reads a NUL-terminated UTF-8 C string.
pub(crate) unsafe fn c_str<'a>(p: *const c_char, name: &str) -> Result<&'a str, dbmux_status> {
    if p.is_null() {
        return Err(null_arg(name));
    }
    CStr::from_ptr(p).to_str().map_err(|e| {
        set_error(format!(
            "{name} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ));
        dbmux_status::DBMUX_INVALID_PARAMETER
    })
}

/// Converts C parameter values.
pub(crate) fn to_c_string(s: String) -> *mut c_char {
    // Interior NULs cannot occur in dbmux's JSON or messages; replace defensively.
    CString::new(s.replace('\0', "\u{FFFD}"))
        .map(CString::into_raw)
        .unwrap_or(ptr::null_mut())
}

// ---------------------------------------------------------------- strings --

/// Frees a string returned by dbmux (`dbmux_last_error_message`,
/// `dbmux_health_json`, `dbmux_debug_info_json`, `dbmux_manager_metrics`).
/// NULL is accepted and ignored.
/// Any thread.
#[no_mangle]
pub unsafe extern "C" fn dbmux_string_free(s: *mut c_char) {
    if !s.is_null() {
        let _ = catch_unwind(|| drop(CString::from_raw(s)));
    }
}

/// The last error message of the calling thread, or NULL when the last call
/// on this thread succeeded. The caller owns the string: free it with
/// `dbmux_string_free`. Messages never contain passwords.
#[no_mangle]
pub extern "C" fn dbmux_last_error_message() -> *mut c_char {
    catch_unwind(|| LAST_ERROR.with(|e| e.borrow().clone()))
        .ok()
        .flatten()
        .map(to_c_string)
        .unwrap_or(ptr::null_mut())
}
