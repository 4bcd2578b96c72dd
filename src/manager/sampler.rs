//! Feature `metrics`: the figures of `metrics_text` that are not events of
//! one manager, reported through the `metrics` facade by sampling them once
//! a [`EVERY`]: a SQLite file's WAL size and frames, its writer lane's line,
//! the oldest read transaction, the WAL controller's counters (the process's,
//! shared by the managers on the file), and each PostgreSQL host's state and
//! replay lag. One thread for the process (`dbmux-metrics`), running while a
//! manager is alive; it reads the same families the text renders.
//!
//! Counters go to the facade as absolute values (`Counter::absolute`, the
//! facade's way for counts kept elsewhere); histograms are not sampled (the
//! lane's and the gate's are fed at each wait, see `pool::facade::Fanout`).

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use super::reports::{host_families, sqlite_families};
use super::{Inner, Manager};
use crate::exposition::{Kind, Value};

/// How often the sampled figures are refreshed.
pub(crate) const EVERY: Duration = Duration::from_secs(1);

/// The managers sampled, and whether the thread runs.
#[derive(Default)]
struct Registry {
    managers: Vec<Entry>,
    running: bool,
}

/// Gauges a sample set: each family's name and the sample's own labels.
type Series = Vec<(&'static str, Vec<(&'static str, String)>)>;

/// One manager and the gauges it set last time (host gauges whose labels
/// are gone, a host that changed role, are set to 0).
struct Entry {
    inner: Weak<Inner>,
    last: Series,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        managers: Vec::new(),
        running: false,
    });
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Samples `inner`'s figures from now on (starting the thread if it is not
/// running). A no-op for managers with nothing to sample.
pub(super) fn register(inner: &Arc<Inner>) {
    let mut r = registry();
    r.managers.push(Entry {
        inner: Arc::downgrade(inner),
        last: Vec::new(),
    });
    if r.running {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("dbmux-metrics".into())
        .spawn(run);
    match spawned {
        Ok(_) => r.running = true,
        Err(e) => log::warn!(
            "dbmux: could not start the metrics sampler thread ({e}); the facade will not see \
             the SQLite WAL and PostgreSQL host figures (metrics_text still shows them)"
        ),
    }
}

fn run() {
    loop {
        std::thread::sleep(EVERY);
        // take the managers out, so that sampling never holds the registry
        let mut taken = {
            let mut r = registry();
            r.managers.retain(|e| e.inner.strong_count() > 0);
            if r.managers.is_empty() {
                r.running = false;
                return;
            }
            std::mem::take(&mut r.managers)
        };
        for e in &mut taken {
            if let Some(inner) = e.inner.upgrade() {
                sample(&Manager { inner }, &mut e.last);
            }
        }
        registry().managers.extend(taken);
    }
}

/// Sets the facade's gauges and counters of `mgr` to what its text shows.
fn sample(mgr: &Manager, last: &mut Series) {
    let facade = &mgr.inner.shared.stats.facade;
    let closed = mgr.is_closed();
    let families = match mgr.config().backend() {
        crate::url::Backend::Sqlite => sqlite_families(mgr),
        crate::url::Backend::Postgres => host_families(mgr),
    };
    let mut now = Vec::new();
    for f in families {
        for s in f.samples {
            let Value::Number(v) = s.value else {
                continue; // histograms are fed at each event
            };
            match f.kind {
                Kind::Gauge => {
                    metrics::gauge!(f.name, facade.labels(&s.labels)).set(v);
                    now.push((f.name, s.labels));
                }
                // after shutdown the text reads 0: the facade keeps the count
                Kind::Counter if !closed => {
                    let name = format!("{}_total", f.name);
                    metrics::counter!(name, facade.labels(&s.labels)).absolute(v as u64);
                }
                _ => {}
            }
        }
    }
    for (name, labels) in last.drain(..) {
        if !now.iter().any(|(n, l)| *n == name && *l == labels) {
            metrics::gauge!(name, facade.labels(&labels)).set(0.0);
        }
    }
    *last = now;
}
