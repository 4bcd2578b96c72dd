//! The WAL state of one database file in this process, shared by its
//! connections: the commits they report through SQLite's WAL hook, the
//! reader gate, and the controller's counters. The thread that acts on them
//! is in [`super::checkpointer`]. Together they keep the WAL bounded while
//! readers overlap, off the commit path:
//!
//! - Every writable connection reports each commit through SQLite's WAL
//!   hook (which also turns SQLite's own checkpoint-on-commit off for it).
//! - A background thread, with a connection of its own, runs a `PASSIVE`
//!   checkpoint after every [`PASSIVE_EVERY`] frames written.
//! - When the WAL still grows past the soft limit (`DB_SQLITE_WAL_SOFT_LIMIT`,
//!   because read transactions overlap so that no checkpoint ever finds a
//!   moment without one), it closes the reader gate: new read transactions
//!   wait (at most [`GATE_MAX`]) while the current ones finish; a passive
//!   checkpoint copies the WAL into the database; under the writer lane a
//!   `RESTART` checkpoint copies the last frames, so that the next commit
//!   writes the WAL from its beginning again (the file stops growing); the
//!   gate reopens. The writer waits only for that last step. (`TRUNCATE`
//!   there, which also shrinks the file, made the writer's longest commit
//!   3x longer at 1,300 commits/s: the file is regrown on each append.)
//! - After a second without a commit the WAL is truncated.
//! - `PRAGMA optimize=0x10002` (bounded by `analysis_limit` and a deadline)
//!   runs when the thread first opens the file, hourly, and when the last
//!   manager on the file closes.
//!
//! The thread lives while a manager uses the file, and the last manager's
//! close waits for it, so its connection (read-write) closes last and no
//! `-wal`/`-shm` file is left behind.

use std::cell::Cell;
use std::ffi::c_int;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{AcqRel, Acquire, Relaxed, Release},
};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::platform::Instant;
use crate::pool::histogram::Histogram;

/// Frames written since the last checkpoint that start a passive one
/// (SQLite's own `wal_autocheckpoint` default).
pub(super) const PASSIVE_EVERY: u64 = 1000;
/// The longest the reader gate stays closed.
pub(crate) const GATE_MAX: Duration = Duration::from_millis(230);
/// A reader waits at most this long at the gate (its closing, plus slack).
const GATE_WAIT_MAX: Duration = Duration::from_millis(245);

/// The WAL state of one database file (kept beside its writer lane).
#[derive(Default)]
pub(crate) struct Wal {
    /// Frames in the WAL after the last commit of this process.
    pub(super) frames: AtomicU64,
    pub(super) last_frames: AtomicU64,
    /// Frames written since the last checkpoint began.
    pub(super) pending: AtomicU64,
    pub(super) commits: AtomicU64,
    /// The soft limit in frames (0 until the thread knows the page size).
    pub(super) limit_frames: AtomicU64,
    /// The thread has been told there is work (cleared when it looks).
    pub(super) nudged: AtomicBool,
    /// The reader gate is closed.
    closed: AtomicBool,
    gate: Mutex<()>,
    gate_cv: Condvar,
    /// How long read transactions waited at the closed gate.
    pub(crate) gate_waits: Histogram,
    /// Feature `metrics`: the same waits, to each manager's facade.
    #[cfg(feature = "metrics")]
    pub(crate) gate_waits_facade: crate::pool::facade::Fanout,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) checkpoints_blocked: AtomicU64,
    pub(crate) gate_closures: AtomicU64,
    pub(super) run: Mutex<Runner>,
    pub(super) run_cv: Condvar,
}

/// The reader gate, held closed ([`Wal::hold_gate`]).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))]
pub(crate) struct GateHeld<'a> {
    wal: &'a Wal,
}

impl Drop for GateHeld<'_> {
    fn drop(&mut self) {
        self.wal.open_gate();
    }
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("frames", &self.frames())
            .field("gate_closed", &self.gate_closed())
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
pub(super) struct Runner {
    pub(super) users: u32,
    /// Bumped to stop the current thread.
    pub(super) generation: u64,
    pub(super) thread: Option<JoinHandle<()>>,
}

thread_local! {
    /// The WAL's frames after the last commit on this thread (set by the
    /// WAL hook, taken when the committing connection gives the lane back).
    static COMMITTED: Cell<Option<u64>> = const { Cell::new(None) };
}

/// The WAL hook: SQLite calls it on the committing thread, after the
/// commit, with the frames now in the WAL.
fn on_commit(_wal: &rusqlite::hooks::Wal, frames: c_int) -> rusqlite::Result<()> {
    COMMITTED.set(Some(frames.max(0) as u64));
    Ok(())
}

/// Has `conn` report its commits (and so turns SQLite's checkpoint on
/// commit off for it): see [`Wal::after_write`].
pub(crate) fn install_hook(conn: &rusqlite::Connection) {
    conn.wal_hook(Some(on_commit));
}

impl Wal {
    pub(super) fn run(&self) -> MutexGuard<'_, Runner> {
        self.run.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After a write on this thread ended (the lane is given back): reports
    /// the commit the WAL hook saw, if any.
    #[inline]
    pub(crate) fn after_write(&self) {
        if let Some(frames) = COMMITTED.take() {
            self.committed(frames);
        }
    }

    /// A commit left `frames` frames in the WAL.
    fn committed(&self, frames: u64) {
        let last = self.last_frames.swap(frames, Relaxed);
        // fewer frames than before: the WAL was restarted from its beginning
        let added = if frames >= last {
            frames - last
        } else {
            frames
        };
        let pending = self.pending.fetch_add(added, Relaxed) + added;
        self.frames.store(frames, Relaxed);
        self.commits.fetch_add(1, Relaxed);
        let limit = self.limit_frames.load(Relaxed);
        if (pending >= PASSIVE_EVERY || (limit > 0 && frames >= limit))
            && !self.nudged.swap(true, AcqRel)
        {
            let _r = self.run();
            self.run_cv.notify_all();
        }
    }

    /// Frames in the WAL after the last commit seen.
    pub(crate) fn frames(&self) -> u64 {
        self.frames.load(Relaxed)
    }

    /// Whether the reader gate is closed now.
    #[inline]
    pub(crate) fn gate_closed(&self) -> bool {
        self.closed.load(Acquire)
    }

    /// Before a new read transaction: waits while the gate is closed (it
    /// reopens within [`GATE_MAX`]; after [`GATE_WAIT_MAX`] the read goes on).
    #[cold]
    pub(crate) fn pass_gate(&self) {
        let start = Instant::now();
        let until = start + GATE_WAIT_MAX;
        let mut g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        while self.closed.load(Acquire) {
            let now = Instant::now();
            if now >= until {
                break;
            }
            g = self
                .gate_cv
                .wait_timeout(g, until - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(g);
        let waited = start.elapsed();
        self.gate_waits.record(waited);
        #[cfg(feature = "metrics")]
        self.gate_waits_facade.record(waited);
    }

    /// Closes the gate until the guard is dropped (a restore: new read
    /// transactions wait, at most [`GATE_WAIT_MAX`] each, for the new
    /// contents).
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    pub(crate) fn hold_gate(&self) -> GateHeld<'_> {
        self.close_gate();
        GateHeld { wal: self }
    }

    pub(super) fn close_gate(&self) {
        self.gate_closures.fetch_add(1, Relaxed);
        self.closed.store(true, Release);
    }

    pub(super) fn open_gate(&self) {
        let _g = self.gate.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(false, Release);
        self.gate_cv.notify_all();
    }

    /// The WAL was emptied.
    pub(super) fn reset(&self) {
        self.frames.store(0, Relaxed);
        self.last_frames.store(0, Relaxed);
        self.pending.store(0, Relaxed);
    }
}
