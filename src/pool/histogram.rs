//! A lock-free histogram of durations, counted in whole microseconds with
//! relaxed atomics. Each decade from 1 µs to 10^13 µs (about 115 days) is
//! cut into 72 buckets, one eighth of the decade's start wide (10-11.25 µs,
//! 11.25-12.5 µs, ..., 90-100 µs), so that a quantile read from the buckets
//! is within 12.5 % of the true value. Every bucket holds the durations up
//! to and including its upper bound, as a Prometheus bucket does, and the
//! exported buckets ([`EXPORTED_US`]: 10 µs, 25 µs, 50 µs, ... 60 s) are
//! upper bounds of these buckets: the exported counts are exact, and the
//! quantiles in debug info come from the same counts. Recording costs a few
//! nanoseconds: a bucket, the sum, and the maximum when it grew.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets per decade (steps of 1/8 of the decade's start, from 1 to 10).
const PER_DECADE: usize = 72;
/// Decades covered above 1 µs.
const DECADES: usize = 13;
/// The `≤ 1 µs` bucket, the decades, and one for anything longer.
const BUCKETS: usize = 1 + DECADES * PER_DECADE + 1;

const POW10: [u64; DECADES + 1] = {
    let mut p = [1u64; DECADES + 1];
    let mut i = 1;
    while i <= DECADES {
        p[i] = p[i - 1] * 10;
        i += 1;
    }
    p
};

/// The upper bounds (µs) of the buckets exported to Prometheus, besides
/// `+Inf`: 10 µs to 10 s in steps of 1, 2.5 and 5, then 30 s and 60 s.
pub(crate) const EXPORTED_US: [u64; 21] = [
    10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000,
    500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

/// Durations recorded so far.
pub(crate) struct Histogram {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
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

/// `ceil(x / 10^d)` with a constant divisor per decade (a multiplication).
#[inline]
fn ceil_div_pow10(x: u64, d: usize) -> u64 {
    macro_rules! by {
        ($($d:literal),*) => {
            match d {
                $($d => x.div_ceil(POW10[$d]),)*
                _ => x.div_ceil(POW10[DECADES]),
            }
        };
    }
    by!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}

/// The bucket of `us` microseconds: the one whose upper bound is the
/// smallest at or above it.
#[inline]
fn bucket(us: u64) -> usize {
    if us <= 1 {
        return 0;
    }
    // the decade d with 10^d < us <= 10^(d+1)
    let mut d = 0;
    while d < DECADES && us > POW10[d + 1] {
        d += 1;
    }
    if d == DECADES {
        return BUCKETS - 1;
    }
    // in eighths of 10^d: 8 < j + 8 <= 80
    let j = ceil_div_pow10(us * 8, d) - 8;
    1 + d * PER_DECADE + (j as usize - 1)
}

/// A bucket's upper bound in µs (`+Inf` for the last).
fn upper_us(b: usize) -> f64 {
    if b == 0 {
        return 1.0;
    }
    if b >= BUCKETS - 1 {
        return f64::INFINITY;
    }
    let i = b - 1;
    let (d, j) = (i / PER_DECADE, (i % PER_DECADE) as u64 + 1);
    POW10[d] as f64 * (8 + j) as f64 / 8.0
}

/// A histogram read at one moment, for the Prometheus text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramSnapshot {
    /// Durations at or below each of [`EXPORTED_US`] (cumulative).
    pub cumulative: [u64; EXPORTED_US.len()],
    /// Every duration recorded (the `+Inf` bucket).
    pub count: u64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
}

/// A duration in whole microseconds, capped where `8 * us` still fits.
#[inline]
fn micros(d: Duration) -> u64 {
    match d.as_secs() {
        0 => u64::from(d.subsec_micros()),
        s if s < u64::MAX / 8_000_000 => s * 1_000_000 + u64::from(d.subsec_micros()),
        _ => u64::MAX / 8,
    }
}

impl Histogram {
    /// Records one duration.
    #[inline]
    pub(crate) fn record(&self, d: Duration) {
        let us = micros(d);
        self.counts[bucket(us)].fetch_add(1, Relaxed);
        // under a microsecond (an idle connection handed out): nothing to add
        if us > 0 {
            self.sum_us.fetch_add(us, Relaxed);
        }
        if us > self.max_us.load(Relaxed) {
            self.max_us.fetch_max(us, Relaxed);
        }
    }

    /// Records `n` durations of `d` each (statements counted in the bucket
    /// of the last one timed: see `Connection`'s statement timing).
    #[inline]
    pub(crate) fn record_n(&self, d: Duration, n: u64) {
        let us = micros(d);
        self.counts[bucket(us)].fetch_add(n, Relaxed);
        self.sum_us.fetch_add(us.saturating_mul(n), Relaxed);
    }

    /// How many durations were recorded.
    pub(crate) fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The longest duration recorded, in milliseconds (0 when none).
    pub(crate) fn max_ms(&self) -> f64 {
        self.max_us.load(Relaxed) as f64 / 1000.0
    }

    /// The counts of the exported buckets, the count and the sum.
    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let mut cumulative = [0; EXPORTED_US.len()];
        let (mut seen, mut b) = (0, 0);
        for (i, le) in EXPORTED_US.iter().enumerate() {
            let last = bucket(*le);
            while b <= last {
                seen += counts[b];
                b += 1;
            }
            cumulative[i] = seen;
        }
        HistogramSnapshot {
            cumulative,
            count: counts.iter().sum(),
            sum_seconds: self.sum_us.load(Relaxed) as f64 / 1e6,
        }
    }

    /// The `q` quantile (0..=1) in milliseconds: the upper bound of the
    /// bucket it falls in, never above the maximum seen; 0 when empty.
    pub(crate) fn quantile_ms(&self, q: f64) -> f64 {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in counts.iter().enumerate() {
            seen += c;
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
                got >= truth_ms && got <= truth_ms * 1.125,
                "q{q}: {got} ms for {truth_ms} ms"
            );
        }
        assert_eq!(h.max_ms(), 10.0);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
    }

    #[test]
    fn each_bucket_holds_up_to_its_upper_bound() {
        let mut last = 0;
        for us in [
            0u64,
            1,
            2,
            3,
            9,
            10,
            11,
            12,
            100,
            101,
            999,
            1_000,
            1_001,
            2_500,
            2_501,
            1 << 20,
            u64::MAX / 8,
        ] {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            assert!(upper_us(b) >= us as f64, "{us} in {b} (<= {})", upper_us(b));
            assert!(b == 0 || upper_us(b - 1) < us as f64, "{us} belongs lower");
            last = b;
        }
        // every exported bound is a bucket's own upper bound
        for le in EXPORTED_US {
            assert_eq!(upper_us(bucket(le)), le as f64, "{le}");
        }
    }

    #[test]
    fn exported_buckets_count_at_or_below_their_bound() {
        let h = Histogram::default();
        for us in [5, 10, 11, 25, 26, 999, 1_000, 1_001, 70_000_000] {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot();
        assert_eq!(s.count, 9);
        // le=10 µs: 5, 10; le=25: +11, 25; le=50: +26; le=1 ms: +999, 1000
        assert_eq!(&s.cumulative[..7], &[2, 4, 5, 5, 5, 5, 7]);
        assert_eq!(s.cumulative[7], 8, "1001 µs is at or below 2.5 ms");
        assert_eq!(
            s.cumulative[EXPORTED_US.len() - 1],
            8,
            "70 s is only in +Inf"
        );
        assert!(
            (s.sum_seconds - 70.003077).abs() < 1e-9,
            "{}",
            s.sum_seconds
        );
    }
}
