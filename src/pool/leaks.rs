//! Leak detection: connections held longer than
//! `DB_LEAK_DETECTION_THRESHOLD_MS` are logged once at WARN, with the
//! backtrace of their checkout, and listed in debug info. A thread watches
//! the held connections; on wasm32, which has no threads, they are checked at
//! each checkout and each `debug_info()` instead.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::platform::{Backtrace, Instant};

struct Held {
    since: Instant,
    thread: String,
    backtrace: Backtrace,
    warned: bool,
}

/// The connections checked out of one manager (only when detection is on).
pub(crate) struct LeakDetector {
    threshold: Duration,
    next: AtomicU64,
    held: Mutex<HashMap<u64, Held>>,
    /// The manager's counters (`Count::LeakWarnings`).
    stats: Arc<super::Stats>,
    /// The redacted URL, for the warning.
    label: String,
}

/// A connection held too long, as listed in debug info.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct LongHeld {
    /// How long it has been checked out, in milliseconds.
    pub age_ms: f64,
    /// The thread that checked it out.
    pub thread: String,
}

impl LeakDetector {
    /// A detector, and the thread that watches it while the detector lives.
    pub fn start(
        threshold: Duration,
        label: String,
        stats: Arc<super::Stats>,
    ) -> Arc<LeakDetector> {
        let d = Arc::new(LeakDetector {
            threshold,
            next: AtomicU64::new(1),
            held: Mutex::new(HashMap::new()),
            stats,
            label,
        });
        #[cfg(not(target_arch = "wasm32"))]
        d.watch();
        d
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn watch(self: &Arc<Self>) {
        let threshold = self.threshold;
        let weak: std::sync::Weak<LeakDetector> = Arc::downgrade(self);
        let tick = (threshold / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
        let _ = std::thread::Builder::new()
            .name("dbmux-leaks".into())
            .spawn(move || loop {
                std::thread::sleep(tick);
                match weak.upgrade() {
                    Some(d) => d.scan(),
                    None => return,
                }
            });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a checkout; the backtrace is captured here.
    pub fn checkout(&self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        self.scan();
        let id = self.next.fetch_add(1, Relaxed);
        let held = Held {
            since: Instant::now(),
            thread: std::thread::current()
                .name()
                .map(str::to_string)
                .unwrap_or_else(|| format!("{:?}", std::thread::current().id())),
            backtrace: Backtrace::force_capture(),
            warned: false,
        };
        self.lock().insert(id, held);
        id
    }

    /// The connection went back to the pool.
    pub fn checkin(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn scan(&self) {
        let label = &self.label;
        let mut held = self.lock();
        for h in held.values_mut() {
            let age = h.since.elapsed();
            if !h.warned && age >= self.threshold {
                h.warned = true;
                self.stats.add(super::Count::LeakWarnings);
                log::warn!(
                    target: "dbmux::leak",
                    "a connection to {label} has been held for {:.0} ms by thread {} \
                     (leak detection threshold {} ms); it was checked out here:\n{}",
                    age.as_secs_f64() * 1000.0,
                    h.thread,
                    self.threshold.as_millis(),
                    h.backtrace
                );
            }
        }
    }

    /// Connections held longer than the threshold, oldest first.
    pub fn long_held(&self) -> Vec<LongHeld> {
        #[cfg(target_arch = "wasm32")]
        self.scan();
        let mut out: Vec<LongHeld> = self
            .lock()
            .values()
            .filter(|h| h.since.elapsed() >= self.threshold)
            .map(|h| LongHeld {
                age_ms: h.since.elapsed().as_secs_f64() * 1000.0,
                thread: h.thread.clone(),
            })
            .collect();
        out.sort_by(|a, b| b.age_ms.total_cmp(&a.age_ms));
        out
    }
}
