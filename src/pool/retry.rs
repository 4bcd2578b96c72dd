//! Classified retry with exponential backoff and full jitter.

use std::cell::Cell;
use std::time::Duration;

use crate::platform::SystemTime;

/// How often, and how patiently, transient failures are retried by
/// [`Manager::with_retry`](crate::Manager::with_retry) and
/// [`Manager::transaction_with_retry`](crate::Manager::transaction_with_retry).
///
/// Attempt `n` (counting from 0) waits a random time between zero and
/// `min(max_delay, base_delay * 2^n)` before the next try ("full jitter").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Total tries, the first included. Defaults to 3; 1 means no retry.
    pub attempts: u32,
    /// The first backoff ceiling. Defaults to 50 ms.
    pub base_delay: Duration,
    /// The largest backoff ceiling. Defaults to 2 s.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy with `attempts` tries and the default delays.
    pub fn new(attempts: u32, base_delay: Duration, max_delay: Duration) -> RetryPolicy {
        RetryPolicy {
            attempts: attempts.max(1),
            base_delay,
            max_delay: max_delay.max(base_delay),
        }
    }

    /// The backoff ceiling before try `attempt + 1` (0-based `attempt`).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(30)).unwrap_or(u32::MAX);
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// A random delay in `[0, ceiling(attempt)]` (full jitter).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = ceiling.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(random() % (nanos + 1))
    }
}

/// A seed that differs per thread and per process even when the clock reads
/// the same: std's `RandomState` keys come from the OS once per process and
/// move on with every use, and a counter tells the threads apart. Never 0
/// (xorshift's fixed point).
fn seed(now_nanos: u64) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    now_nanos.hash(&mut h);
    NEXT.fetch_add(1, Relaxed).hash(&mut h);
    std::thread::current().id().hash(&mut h);
    crate::platform::process_id().hash(&mut h);
    h.finish() | 1
}

/// A random number in `[0, 1)`, for jitter.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn random_unit() -> f64 {
    (random() >> 11) as f64 / (1u64 << 53) as f64
}

/// A small per-thread xorshift generator: jitter needs spread, not security.
fn random() -> u64 {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(seed(
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1),
        ));
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_thread_even_at_the_same_instant() {
        let seeds: std::collections::HashSet<u64> = (0..16)
            .map(|_| std::thread::spawn(|| seed(1_700_000_000)).join().unwrap())
            .collect();
        assert_eq!(seeds.len(), 16, "{seeds:?}");
        assert!(seeds.iter().all(|s| s & 1 == 1));
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_full_jitter() {
        let p = RetryPolicy::new(5, Duration::from_millis(10), Duration::from_millis(70));
        assert_eq!(p.ceiling(0), Duration::from_millis(10));
        assert_eq!(p.ceiling(1), Duration::from_millis(20));
        assert_eq!(p.ceiling(2), Duration::from_millis(40));
        assert_eq!(p.ceiling(3), Duration::from_millis(70));
        assert_eq!(p.ceiling(40), Duration::from_millis(70));
        let delays: Vec<_> = (0..200).map(|_| p.delay(2)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(40)));
        assert!(
            delays.iter().any(|d| *d < Duration::from_millis(20)),
            "jitter reaches low values"
        );
        assert!(
            delays.iter().any(|d| *d > Duration::from_millis(20)),
            "jitter reaches high values"
        );
        assert_eq!(
            RetryPolicy::new(0, Duration::ZERO, Duration::ZERO).attempts,
            1
        );
    }
}
