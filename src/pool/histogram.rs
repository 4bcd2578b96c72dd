//! A lock-free histogram of durations: log-spaced buckets (four per
//! doubling, so a quantile is within 19 % of the true value) from 1 µs to
//! about 12 days, counted with relaxed atomics. Recording costs a few
//! nanoseconds; quantiles are read from the buckets.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Sub-buckets per doubling.
const SUB: u32 = 4;
/// Doublings covered (2^40 µs is about 12.7 days).
const OCTAVES: u32 = 40;
const BUCKETS: usize = (SUB * OCTAVES) as usize + 1;

/// Durations recorded so far.
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS],
    total: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            total: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("count", &self.count())
            .field("p50_ms", &self.quantile_ms(0.5))
            .field("max_ms", &self.max_ms())
            .finish()
    }
}

/// The bucket of `us` microseconds: 0 for < 1 µs, then `SUB` per doubling.
#[inline]
fn bucket(us: u64) -> usize {
    if us == 0 {
        return 0;
    }
    let octave = 63 - us.leading_zeros(); // floor(log2(us))
                                          // the next two bits below the leading one pick the sub-bucket
    let frac = if octave >= 2 {
        ((us >> (octave - 2)) & 0b11) as u32
    } else {
        ((us << (2 - octave)) & 0b11) as u32
    };
    ((octave * SUB + frac + 1) as usize).min(BUCKETS - 1)
}

/// The largest value (µs) a bucket holds, as reported for a quantile.
fn upper_us(b: usize) -> f64 {
    if b == 0 {
        return 1.0;
    }
    let i = (b - 1) as u32;
    let (octave, frac) = (i / SUB, i % SUB);
    2f64.powi(octave as i32) * (1.0 + f64::from(frac + 1) / f64::from(SUB))
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub(crate) fn record(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[bucket(us)].fetch_add(1, Relaxed);
        self.total.fetch_add(1, Relaxed);
        if us > self.max_us.load(Relaxed) {
            self.max_us.fetch_max(us, Relaxed);
        }
    }

    /// How many durations were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.total.load(Relaxed)
    }

    /// The longest duration recorded, in milliseconds (0 when none).
    pub(crate) fn max_ms(&self) -> f64 {
        self.max_us.load(Relaxed) as f64 / 1000.0
    }

    /// The `q` quantile (0..=1) in milliseconds: the upper bound of the
    /// bucket it falls in, never above the maximum seen; 0 when empty.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        let total = self.count();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                return (upper_us(b) / 1000.0).min(self.max_ms());
            }
        }
        self.max_ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket_of_the_truth() {
        let h = Histogram::default();
        for us in 1..=10_000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 10_000);
        for (q, truth_ms) in [(0.5, 5.0), (0.99, 9.9), (0.999, 9.99)] {
            let got = h.quantile_ms(q);
            assert!(
                got >= truth_ms && got <= truth_ms * 1.25,
                "q{q}: {got} ms for {truth_ms} ms"
            );
        }
        assert_eq!(h.max_ms(), 10.0);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn buckets_grow_monotonically() {
        let mut last = 0;
        for us in [0u64, 1, 2, 3, 4, 5, 7, 8, 100, 1_000, 1 << 20, u64::MAX] {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            assert!(us == u64::MAX || upper_us(b) >= us as f64, "{us} in {b}");
            last = b;
        }
    }
}
