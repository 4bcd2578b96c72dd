//! The WAL controller's thread: one per database file in this process,
//! while a manager uses the file (see [`super::wal`] for what it keeps).

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::OpenFlags;

use super::lane::Lane;
use super::open::OpenSpec;
use super::wal::{Wal, GATE_MAX, PASSIVE_EVERY};
use super::{CheckpointMode, CheckpointReport};
use crate::platform::Instant;

/// After a closure that could not reset the WAL (a read transaction
/// outlasted it), the gate stays open at least this long: enough for the
/// waiting readers to begin, short enough that the WAL grows little more
/// before the next try (at 250 ms, two closures in a row that could not
/// reset it took the WAL to 34.6 MiB at 1,300 commits/s).
const GATE_BACKOFF: Duration = Duration::from_millis(100);
/// With the readers gone, passive checkpoints go on until one has fewer
/// new frames than this to copy; the rest is copied under the lane.
const CATCH_UP: u64 = 256;
/// Without a commit for this long, the WAL is truncated.
const IDLE: Duration = Duration::from_secs(1);
/// How often the thread looks for idleness (and stops) without a nudge.
const TICK: Duration = Duration::from_millis(250);
/// How often `PRAGMA optimize` runs while the file is in use.
const OPTIMIZE_EVERY: Duration = Duration::from_secs(3600);
/// The time bound of one `PRAGMA optimize`.
const OPTIMIZE_LIMIT: Duration = Duration::from_millis(500);
/// The last step holds the writer for about as long as a passive
/// checkpoint's copy and fsync take: it is taken only after one that took
/// at most this long (when the disk is slow, the closure gives up instead,
/// at most [`SLOW_GIVE_UPS`] times in a row, so the WAL stays bounded).
const QUICK_PASS: Duration = Duration::from_millis(15);
const SLOW_GIVE_UPS: u32 = 2;

/// A manager's use of a file's WAL controller: the first starts its
/// thread; dropping the last stops it and waits for it.
pub(crate) struct WalUser {
    lane: Arc<Lane>,
}

impl std::fmt::Debug for WalUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WalUser")
    }
}

/// Starts (or joins) the WAL controller of `lane`'s file, opened as `spec`
/// says, with a soft limit of `soft_limit` bytes.
pub(crate) fn start(lane: &Arc<Lane>, spec: &OpenSpec, soft_limit: u64) -> WalUser {
    let mut r = lane.wal.run();
    r.users += 1;
    if r.thread.is_none() {
        let (l, spec, generation) = (lane.clone(), spec.clone(), r.generation);
        r.thread = std::thread::Builder::new()
            .name("dbmux-wal".into())
            .spawn(move || Checkpointer::new(l, spec, soft_limit, generation).run())
            .map_err(|e| {
                log::warn!(
                    target: "dbmux::sqlite",
                    "could not start the WAL checkpointer thread ({e}); the WAL is checkpointed \
                     on commit instead"
                )
            })
            .ok();
    }
    WalUser { lane: lane.clone() }
}

impl WalUser {
    /// Whether the controller's thread runs (the hook is installed then).
    pub(crate) fn running(&self) -> bool {
        self.lane.wal.run().thread.is_some()
    }
}

impl Drop for WalUser {
    fn drop(&mut self) {
        let wal = &self.lane.wal;
        let thread = {
            let mut r = wal.run();
            r.users -= 1;
            if r.users > 0 {
                return;
            }
            r.generation += 1;
            wal.run_cv.notify_all();
            r.thread.take()
        };
        if let Some(t) = thread {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// The controller's thread and its connection.
struct Checkpointer {
    lane: Arc<Lane>,
    spec: OpenSpec,
    soft_limit: u64,
    generation: u64,
    conn: Option<rusqlite::Connection>,
    seen_commits: u64,
    last_commit: Instant,
    /// Nothing written since the WAL was last emptied.
    empty: bool,
    gate_after: Instant,
    optimized: Option<Instant>,
    /// Gate closures in a row that left the WAL as it was because the disk
    /// was slow (see [`QUICK_PASS`]).
    slow_in_row: u32,
}

impl Checkpointer {
    fn new(lane: Arc<Lane>, spec: OpenSpec, soft_limit: u64, generation: u64) -> Checkpointer {
        let now = Instant::now();
        Checkpointer {
            lane,
            spec,
            soft_limit,
            generation,
            conn: None,
            seen_commits: 0,
            last_commit: now,
            empty: true,
            gate_after: now,
            optimized: None,
            slow_in_row: 0,
        }
    }

    fn wal(&self) -> &Wal {
        &self.lane.wal
    }

    /// Waits for a nudge or a tick; false once it is told to stop.
    fn wait(&self) -> bool {
        let wal = self.wal();
        let mut r = wal.run();
        if r.generation != self.generation {
            return false;
        }
        let in_backoff = Instant::now() < self.gate_after;
        if !wal.nudged.load(Acquire) || in_backoff {
            r = wal
                .run_cv
                .wait_timeout(r, TICK)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        r.generation == self.generation
    }

    fn run(mut self) {
        while self.wait() {
            self.step();
        }
        // the last manager closed: optimize (if anything was written), then
        // close (last, read-write)
        if self.conn.is_none() && self.wal().commits.load(Relaxed) > 0 {
            self.conn = self.open();
        }
        if self.conn.is_some() {
            self.optimize();
        }
        drop(self.conn.take());
    }

    fn step(&mut self) {
        let now = Instant::now();
        let commits = self.wal().commits.load(Relaxed);
        if commits != self.seen_commits {
            self.seen_commits = commits;
            self.last_commit = now;
            self.empty = false;
        }
        if self.empty && self.conn.is_none() {
            return; // nothing written through this process yet
        }
        if self.conn.is_none() {
            self.conn = self.open();
            if self.conn.is_none() {
                return;
            }
        }
        if !self.optimized.is_some_and(|t| t.elapsed() < OPTIMIZE_EVERY) {
            self.optimize();
        }
        let wal = self.wal();
        let limit = wal.limit_frames.load(Relaxed);
        if now >= self.gate_after {
            wal.nudged.store(false, Release);
        }
        if limit > 0 && wal.frames() >= limit && now >= self.gate_after {
            if self.gate_cycle() {
                self.empty = true;
            } else {
                self.gate_after = Instant::now() + GATE_BACKOFF;
                // commits need not nudge during the backoff
                self.wal().nudged.store(true, Release);
            }
        } else if wal.pending.load(Relaxed) >= PASSIVE_EVERY {
            wal.pending.store(0, Relaxed);
            self.checkpoint(CheckpointMode::Passive);
        } else if !self.empty && self.last_commit.elapsed() >= IDLE {
            // idle: empty the WAL (under the lane; never waiting on readers)
            if let Ok(held) = self.lane.acquire(Duration::from_millis(10), false) {
                if self
                    .checkpoint(CheckpointMode::Truncate)
                    .is_some_and(|r| !r.busy)
                {
                    self.wal().reset();
                    self.empty = true;
                }
                drop(held);
            }
        }
    }

    /// Opens the thread's connection (the file exists once a writer opened
    /// it) and learns the page size.
    fn open(&self) -> Option<rusqlite::Connection> {
        let flags = (self.spec.flags & !OpenFlags::SQLITE_OPEN_CREATE)
            | OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = rusqlite::Connection::open_with_flags(&self.spec.uri, flags).ok()?;
        // it never waits for a lock: it tries again later
        conn.busy_timeout(Duration::ZERO).ok()?;
        conn.execute_batch(&format!(
            "PRAGMA synchronous={}",
            self.spec.pragmas.synchronous.as_str()
        ))
        .ok()?;
        let page: u64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))
            .ok()?
            .max(512) as u64;
        // a frame is a page plus its 24-byte header
        self.wal()
            .limit_frames
            .store((self.soft_limit / (page + 24)).max(1), Relaxed);
        Some(conn)
    }

    /// Runs a checkpoint on the thread's connection, counting the ones
    /// that copied the whole WAL.
    fn checkpoint(&self, mode: CheckpointMode) -> Option<CheckpointReport> {
        let r = mode.run(self.conn.as_ref()?).ok()?;
        if r.complete() {
            self.wal().checkpoints.fetch_add(1, Relaxed);
        }
        Some(r)
    }

    /// Closes the gate, lets the current read transactions finish while
    /// passive checkpoints copy the WAL, restarts it under the writer lane,
    /// and reopens the gate. False when a read transaction outlasted
    /// [`GATE_MAX`] (the WAL stays as it is).
    fn gate_cycle(&mut self) -> bool {
        let wal = &self.lane.wal;
        let start = Instant::now();
        wal.close_gate();
        // passive checkpoints until the readers from before the gate are
        // gone (the whole WAL copied) and the writer's frames since the last
        // one are few, so that the last step under the lane is short
        let mut copied = false;
        let mut last_log = None;
        let mut last_pass = Duration::MAX;
        while start.elapsed() + Duration::from_millis(2) < GATE_MAX {
            let t = Instant::now();
            let r = self.checkpoint(CheckpointMode::Passive);
            last_pass = t.elapsed();
            match r {
                Some(r) if r.wal_frames == r.checkpointed_frames => {
                    copied = true;
                    let log = r.wal_frames;
                    if last_log.is_some_and(|l: i64| log - l < CATCH_UP as i64) {
                        break;
                    }
                    last_log = Some(log);
                }
                None => break,
                // a read transaction from before the gate is still open
                _ => std::thread::sleep(Duration::from_millis(1)),
            }
        }
        let mut emptied = false;
        let quick = last_pass <= QUICK_PASS || self.slow_in_row >= SLOW_GIVE_UPS;
        if copied && !quick {
            self.slow_in_row += 1;
        }
        if copied && quick {
            self.slow_in_row = 0;
            let left = GATE_MAX.saturating_sub(start.elapsed());
            if let Ok(held) = self.lane.acquire(left.max(Duration::from_millis(5)), false) {
                emptied = self
                    .checkpoint(CheckpointMode::Restart)
                    .is_some_and(|r| !r.busy);
                if emptied {
                    wal.reset();
                }
                drop(held);
            }
        }
        wal.open_gate();
        if !emptied {
            wal.checkpoints_blocked.fetch_add(1, Relaxed);
            log::debug!(
                target: "dbmux::sqlite",
                "the WAL of {} is past its soft limit, but a read transaction outlasted the \
                 reader gate ({} ms), or the disk was slow; trying again in {} ms",
                self.spec.lane_key(),
                GATE_MAX.as_millis(),
                GATE_BACKOFF.as_millis()
            );
        }
        emptied
    }

    /// `PRAGMA optimize=0x10002` (every table, not only those this
    /// connection queried, which are none), bounded by `analysis_limit` and
    /// [`OPTIMIZE_LIMIT`], under the writer lane (it may write statistics).
    fn optimize(&mut self) {
        self.optimized = Some(Instant::now());
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let Ok(held) = self.lane.acquire(OPTIMIZE_LIMIT, false) else {
            return;
        };
        let deadline = Instant::now() + OPTIMIZE_LIMIT;
        let _ = conn.progress_handler(1000, Some(move || Instant::now() >= deadline));
        if let Err(e) = conn.execute_batch("PRAGMA analysis_limit=400; PRAGMA optimize=0x10002") {
            log::debug!(target: "dbmux::sqlite", "PRAGMA optimize did not finish: {e}");
        }
        let _ = conn.progress_handler(0, None::<fn() -> bool>);
        drop(held);
    }
}
