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
