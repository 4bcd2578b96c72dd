//! What differs between native targets and wasm32-unknown-unknown, where
//! `std::time::Instant::now()`, `SystemTime::now()`, `std::process::id()`
//! and `std::thread::sleep` panic: clocks come from `web-time` (the
//! JavaScript clocks) there, and there is no process id and no sleeping.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::time::{Instant, SystemTime};
#[cfg(target_arch = "wasm32")]
pub(crate) use web_time::{Instant, SystemTime};

/// The process id (0 on wasm32, which has none).
pub(crate) fn process_id() -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return std::process::id();
    #[cfg(target_arch = "wasm32")]
    0
}

/// Waits `d` (a retry backoff). On wasm32 the one thread must not block, so
/// the retry follows at once.
pub(crate) fn sleep(d: std::time::Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(d);
    #[cfg(target_arch = "wasm32")]
    let _ = d;
}

/// The stack of a checkout, for the leak and lane warnings. std cannot walk
/// the stack on wasm32 (its text would be "unsupported backtrace"), so there
/// nothing is captured, and the code that prints one (the symbol demangler,
/// about 17 KB) stays out of the module.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use std::backtrace::Backtrace;

/// See the native [`Backtrace`]: nothing to capture on wasm32.
#[cfg(target_arch = "wasm32")]
pub(crate) struct Backtrace;

#[cfg(target_arch = "wasm32")]
impl Backtrace {
    /// As std's: here, nothing.
    pub(crate) fn force_capture() -> Backtrace {
        Backtrace
    }
}

#[cfg(target_arch = "wasm32")]
impl std::fmt::Display for Backtrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("(no backtrace on wasm32)")
    }
}
