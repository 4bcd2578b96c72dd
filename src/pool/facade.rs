//! Feature `metrics`: the counters, gauges and histograms of
//! `metrics_text` reported through the `metrics` crate's facade too, with
//! the same names and labels, to whatever recorder the application
//! installed (metrics-exporter-prometheus, StatsD, OpenTelemetry, ...).
//!
//! Handles are registered when a manager is built, so install the recorder
//! before (as the `metrics` crate asks of every library). Counters and
//! histograms are fed as the events happen; a pool's gauges are set each
//! time its state changes. Histograms are fed in seconds.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Label};

use super::counts::{CloseReason, Count, Timing};

/// The facade handles of one manager.
pub(crate) struct Handles {
    /// `pool` and `backend`.
    labels: Vec<Label>,
    /// Alive while the manager is: what a [`Fanout`] checks.
    alive: Arc<()>,
    counts: Vec<Option<Counter>>,
    closed: Vec<Counter>,
    timings: Vec<Histogram>,
    open: Gauge,
}

impl std::fmt::Debug for Handles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handles").finish_non_exhaustive()
    }
}

fn with<V: AsRef<str>>(labels: &[Label], more: &[(&'static str, V)]) -> Vec<Label> {
    let mut v = labels.to_vec();
    v.extend(
        more.iter()
            .map(|(k, val)| Label::new(*k, val.as_ref().to_string())),
    );
    v
}

impl Handles {
    /// Registers the handles of a manager built from `config`.
    pub(crate) fn new(config: &crate::Config) -> Handles {
        let labels = vec![
            Label::new("pool", config.pool_name().to_string()),
            Label::new("backend", config.backend().name()),
        ];
        let counts = Count::ALL
            .iter()
            .map(|c| {
                c.family().map(|(name, extra)| {
                    let l = with(&labels, extra.as_slice());
                    metrics::counter!(format!("{name}_total"), l)
                })
            })
            .collect();
        let closed = CloseReason::ALL
            .iter()
            .map(|why| {
                let l = with(&labels, &[("reason", why.as_str())]);
                metrics::counter!("dbmux_connections_closed_total", l)
            })
            .collect();
        let timings = Timing::ALL
            .iter()
            .map(|t| metrics::histogram!(t.family(), labels.clone()))
            .collect();
        let open = metrics::gauge!("dbmux_manager_open", labels.clone());
        open.set(1.0);
        Handles {
            labels,
            alive: Arc::new(()),
            counts,
            closed,
            timings,
            open,
        }
    }

    /// `n` more of a counter.
    #[inline]
    pub(crate) fn count(&self, c: Count, n: u64) {
        if let Some(h) = &self.counts[c as usize] {
            h.increment(n);
        }
    }

    /// `n` connections closed for `why`.
    pub(crate) fn closed(&self, why: CloseReason, n: u64) {
        self.closed[why as usize].increment(n);
    }

    /// A duration of a histogram.
    #[inline]
    pub(crate) fn time(&self, t: Timing, d: Duration) {
        self.timings[t as usize].record(d.as_secs_f64());
    }

    /// `n` durations of `d` each.
    pub(crate) fn time_n(&self, t: Timing, d: Duration, n: u64) {
        self.timings[t as usize].record_many(d.as_secs_f64(), n as usize);
    }

    /// A failed connection attempt (registered at the first of each code).
    pub(crate) fn connect_error(&self, code: crate::ErrorCode) {
        let l = with(&self.labels, &[("code", code.name())]);
        metrics::counter!("dbmux_connect_errors_total", l).increment(1);
    }

    /// The manager's `pool` and `backend` labels followed by `more`.
    pub(crate) fn labels(&self, more: &[(&'static str, String)]) -> Vec<Label> {
        with(&self.labels, more)
    }

    /// The manager was shut down.
    pub(crate) fn shut_down(&self) {
        self.open.set(0.0);
    }

    /// The gauges of one pool of the manager (`access`: `write`, `read`,
    /// `primary_read`), with its limits set.
    pub(crate) fn pool(&self, access: &'static str, max_size: u32, keep_idle: u32) -> PoolGauges {
        let l = |more: &[(&'static str, &str)]| {
            with(&self.labels, &[&[("access", access)], more].concat())
        };
        metrics::gauge!("dbmux_pool_size", l(&[])).set(f64::from(keep_idle));
        metrics::gauge!("dbmux_pool_max_connections", l(&[])).set(f64::from(max_size));
        PoolGauges {
            idle: metrics::gauge!("dbmux_connections", l(&[("state", "idle")])),
            in_use: metrics::gauge!("dbmux_connections", l(&[("state", "in_use")])),
            waiting: metrics::gauge!("dbmux_checkouts_waiting", l(&[])),
            connecting: metrics::gauge!("dbmux_connects_in_flight", l(&[])),
        }
    }
}

/// The facade gauges of one pool.
pub(crate) struct PoolGauges {
    idle: Gauge,
    in_use: Gauge,
    waiting: Gauge,
    connecting: Gauge,
}

impl PoolGauges {
    /// Sets them to the pool's state.
    #[inline]
    pub(crate) fn set(&self, open: u32, idle: u32, waiting: usize, connecting: u32) {
        self.idle.set(f64::from(idle));
        self.in_use.set(f64::from(open.saturating_sub(idle)));
        self.waiting.set(waiting as f64);
        self.connecting.set(f64::from(connecting));
    }
}

/// A histogram of the process's state of one SQLite file (its writer lane's
/// waits, its reader gate's): every manager on the file registers its
/// handle, and each event goes to the handles of the managers still alive,
/// as the text of each of them shows the file's histogram.
#[derive(Default)]
pub(crate) struct Fanout {
    to: Mutex<Vec<(Weak<()>, Histogram)>>,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").finish_non_exhaustive()
    }
}

impl Fanout {
    /// Feeds the histogram `name` of the manager of `h` from now on.
    pub(crate) fn add(&self, h: &Handles, name: &'static str) {
        let handle = metrics::histogram!(name, h.labels.clone());
        let mut to = self.to.lock().unwrap_or_else(|p| p.into_inner());
        to.retain(|(alive, _)| alive.strong_count() > 0);
        to.push((Arc::downgrade(&h.alive), handle));
    }

    /// One duration, to every manager on the file.
    pub(crate) fn record(&self, d: Duration) {
        let to = self.to.lock().unwrap_or_else(|p| p.into_inner());
        for (alive, h) in to.iter() {
            if alive.strong_count() > 0 {
                h.record(d.as_secs_f64());
            }
        }
    }
}
