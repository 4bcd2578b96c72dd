//! A `log` logger that keeps every line, for tests that assert on what dbmux
//! logs. Lines read `LEVEL target message`.

use std::sync::Mutex;

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(format!("{} {} {}", r.level(), r.target(), r.args()));
    }
    fn flush(&self) {}
}

/// Installs the capturing logger (once per process) at every level, and
/// forgets the lines kept so far.
pub fn capture() {
    let _ = log::set_logger(&Capture);
    log::set_max_level(log::LevelFilter::Trace);
    clear();
}

/// Forgets the lines kept so far.
pub fn clear() {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The lines logged since the last [`capture`] or [`clear`].
pub fn lines() -> Vec<String> {
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clone()
}
