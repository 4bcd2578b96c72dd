//! Helpers shared by the benchmarks' reports.
#![allow(dead_code)] // each benchmark uses some of them

use std::time::Duration;

/// How a figure reads against its target.
pub fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets target"
    } else {
        "MISSES target"
    }
}

/// A duration in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
