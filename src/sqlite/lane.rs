//! The writer lane: in one process, the write transactions on one SQLite
//! file take turns first come, first served, in a queue dbmux owns, instead
//! of racing for SQLite's lock through its busy handler (which lets one
//! writer starve while another commits thousands of times, and gives up
//! after `busy_timeout`).
//!
//! A connection takes the lane before a statement that SQLite reports as
//! writing (`sqlite3_stmt_readonly`) or a `BEGIN IMMEDIATE`/`EXCLUSIVE`, and
//! gives it back once the connection is in autocommit mode again (the
//! statement or the transaction ended, a COMMIT, a ROLLBACK, the rollback on
//! return to the pool). Each wait has a deadline (`pool_timeout`).
//!
//! Writers in other processes still meet `busy_timeout`, through a busy
//! handler that looks for the lock every [`POLL`] (SQLite's own sleeps 1 to
//! 100 ms). Since the writers of one process hand SQLite's lock to each
//! other within microseconds, another process would hardly ever find it
//! free; so after [`TURN`] of writes back to back, the lane leaves the lock
//! free for [`GAP`] before the next writer of this process takes it. When
//! nobody else takes it in the gap, the turn doubles (up to [`TURN_MAX`]), so
//! a process alone loses at most about 0.1 % of its time; a writer that
//! finds the lock taken by another process brings the turn back to
//! [`TURN`].

use std::cell::Cell;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{
    AtomicBool,
    Ordering::{AcqRel, Acquire, Release},
};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::error::{Error, ErrorCode, Result};
use crate::platform::Instant;
use crate::pool::histogram::Histogram;

/// Who holds the lane, for the error of a writer that gave up.
#[derive(Debug)]
struct Holder {
    since: Instant,
    /// The holding thread (named only when an error needs it: taking the
    /// lane is on every write's path). `None` while being handed over.
    thread: Option<std::thread::Thread>,
    /// Where the holder's transaction began (with leak detection on).
    backtrace: Option<String>,
}

/// One waiting writer: woken with the lane already handed to it.
#[derive(Debug)]
struct Waiter {
    /// Set (under the state lock) when the lane is handed to it.
    granted: AtomicBool,
    /// Set when it is first in line: it spins briefly instead of sleeping,
    /// so that a hand-off between short transactions costs no wake-up.
    head: AtomicBool,
    sleep: Mutex<()>,
    cv: Condvar,
}

impl Waiter {
    fn wake(&self) {
        drop(self.sleep.lock().unwrap_or_else(|p| p.into_inner()));
        self.cv.notify_one();
    }
}

/// How long the first writer in line spins for the lane before it sleeps.
const SPIN: Duration = Duration::from_micros(100);
/// How often a writer that meets another process's lock looks again.
const POLL: Duration = Duration::from_micros(200);
/// Writes back to back before the lock is left free for other processes.
const TURN: Duration = Duration::from_millis(10);
/// The longest turn, while no other process takes the gaps.
const TURN_MAX: Duration = Duration::from_secs(1);
/// How long the lock is left free after a turn.
const GAP: Duration = Duration::from_millis(1);
/// A lane taken again within this of being freed continues the turn.
const TURN_JOIN: Duration = Duration::from_millis(1);

thread_local! {
    /// The busy handler's episode on this thread: when it began, the
    /// connection's `busy_timeout`, and whether it ran since the lane was
    /// taken (another process held the lock).
    static BUSY: Cell<(Option<Instant>, Duration, bool)> =
        const { Cell::new((None, Duration::from_secs(5), false)) };
}

/// Sets the `busy_timeout` the busy handler keeps to on this thread (the
/// connection's, before each of its statements).
#[inline]
pub(crate) fn set_busy_timeout(limit: Duration) {
    BUSY.with(|b| {
        let (start, old, seen) = b.get();
        if old != limit {
            b.set((start, limit, seen));
        }
    });
}

/// The busy handler of connections that write: waits up to `busy_timeout`
/// for another process's lock, looking every [`POLL`].
pub(crate) fn busy_handler(count: i32) -> bool {
    let (start, limit, _) = BUSY.get();
    let now = Instant::now();
    let start = match start {
        Some(s) if count > 0 => s,
        _ => now,
    };
    BUSY.set((Some(start), limit, true));
    if now.duration_since(start) >= limit {
        return false;
    }
    std::thread::sleep(POLL);
    true
}

/// Whether the busy handler ran on this thread since the last call.
fn busy_seen() -> bool {
    let (start, limit, seen) = BUSY.get();
    if seen {
        BUSY.set((start, limit, false));
    }
    seen
}

#[derive(Debug)]
struct State {
    held: Option<Holder>,
    queue: VecDeque<Arc<Waiter>>,
    /// When this process's current turn of back-to-back writes began.
    turn_since: Option<Instant>,
    /// When the lane was last freed (no writer waiting).
    freed_at: Option<Instant>,
    /// The current turn's length.
    turn: Duration,
    /// The holder is the first writer after a gap.
    after_gap: bool,
}

impl Default for State {
    fn default() -> State {
        State {
            held: None,
            queue: VecDeque::new(),
            turn_since: None,
            freed_at: None,
            turn: TURN,
            after_gap: false,
        }
    }
}

impl State {
    /// The lane was just taken: whether this process's turn is over, so the
    /// new holder leaves the lock free for [`GAP`] first.
    fn take_turn(&mut self, now: Instant) -> bool {
        let since = match (self.turn_since, self.freed_at) {
            // taken again at once, or handed over: the turn goes on
            (Some(t), Some(f)) if now.duration_since(f) < TURN_JOIN => t,
            (Some(t), None) => t,
            _ => now,
        };
        self.freed_at = None;
        if now.duration_since(since) >= self.turn {
            self.turn_since = Some(now + GAP);
            self.after_gap = true;
            true
        } else {
            self.turn_since = Some(since);
            false
        }
    }

    /// The holder gives the lane back; `seen`: it met another process's lock.
    fn end_turn(&mut self, seen: bool, now: Instant) {
        if seen {
            // another process writes: short turns, and ours begins now
            self.turn = TURN;
            self.turn_since = Some(now);
        } else if self.after_gap {
            // nobody took the gap
            self.turn = (self.turn * 2).min(TURN_MAX);
        }
        self.after_gap = false;
    }
}

/// The lane of one database file (or shared in-memory database).
#[derive(Debug)]
pub(crate) struct Lane {
    name: String,
    state: Mutex<State>,
    /// How long writers waited for the lane (served and timed out).
    pub(crate) waits: Histogram,
    /// Feature `metrics`: the same waits, to each manager's facade.
    #[cfg(feature = "metrics")]
    pub(crate) waits_facade: crate::pool::facade::Fanout,
    /// The file's WAL controller (inert until a manager starts it).
    pub(crate) wal: super::wal::Wal,
}

/// The lane, held: dropping it hands the lane to the next writer in line.
#[derive(Debug)]
pub(crate) struct Held {
    lane: Arc<Lane>,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.lane.release();
    }
}

fn lanes() -> MutexGuard<'static, HashMap<String, Weak<Lane>>> {
    static LANES: std::sync::OnceLock<Mutex<HashMap<String, Weak<Lane>>>> =
        std::sync::OnceLock::new();
    LANES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

impl Lane {
    /// The lane of the database `key` names (an absolute path, or an
    /// in-memory database's name): one per database in the process, shared
    /// by every manager on it.
    pub(crate) fn of(key: &str) -> Arc<Lane> {
        let mut all = lanes();
        if let Some(l) = all.get(key).and_then(Weak::upgrade) {
            return l;
        }
        all.retain(|_, w| w.strong_count() > 0);
        let l = Arc::new(Lane {
            name: key.to_string(),
            state: Mutex::new(State::default()),
            waits: Histogram::default(),
            #[cfg(feature = "metrics")]
            waits_facade: Default::default(),
            wal: Default::default(),
        });
        all.insert(key.to_string(), Arc::downgrade(&l));
        l
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A writer's wait for the lane (served or timed out).
    fn waited(&self, d: Duration) {
        self.waits.record(d);
        #[cfg(feature = "metrics")]
        self.waits_facade.record(d);
    }

    /// Writers waiting in line now.
    pub(crate) fn depth(&self) -> usize {
        self.lock().queue.len()
    }

    /// Takes the lane, waiting in line up to `timeout`. `trace`: note where
    /// (leak detection is on).
    pub(crate) fn acquire(self: &Arc<Lane>, timeout: Duration, trace: bool) -> Result<Held> {
        let start = Instant::now();
        let me = || Holder {
            since: Instant::now(),
            thread: Some(std::thread::current()),
            backtrace: trace.then(|| crate::platform::Backtrace::force_capture().to_string()),
        };
        let waiter = {
            let mut s = self.lock();
            if s.held.is_none() && s.queue.is_empty() {
                s.held = Some(me());
                let gap = s.take_turn(Instant::now());
                drop(s);
                self.waited(Duration::ZERO);
                return Ok(self.held(gap));
            }
            let w = Arc::new(Waiter {
                granted: AtomicBool::new(false),
                head: AtomicBool::new(s.queue.is_empty()),
                sleep: Mutex::new(()),
                cv: Condvar::new(),
            });
            s.queue.push_back(w.clone());
            w
        };
        let deadline = start + timeout;
        let got = |lane: &Arc<Lane>| {
            let gap = {
                let mut s = lane.lock();
                s.held = Some(me());
                s.take_turn(Instant::now())
            };
            lane.waited(start.elapsed());
            Ok(lane.held(gap))
        };
        loop {
            if waiter.granted.load(Acquire) {
                return got(self);
            }
            if waiter.head.load(Acquire) {
                // first in line: the lane is next; spin a little for it
                let spin_until = Instant::now() + SPIN;
                let mut i = 0u32;
                while Instant::now() < spin_until.min(deadline) {
                    if waiter.granted.load(Acquire) {
                        return got(self);
                    }
                    i += 1;
                    if i % 64 == 0 {
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let g = waiter.sleep.lock().unwrap_or_else(|p| p.into_inner());
            if waiter.granted.load(Acquire) {
                continue;
            }
            // woken when handed the lane, or when it becomes first in line
            let wait = (deadline - now).min(Duration::from_millis(50));
            drop(
                waiter
                    .cv
                    .wait_timeout(g, wait)
                    .unwrap_or_else(|p| p.into_inner()),
            );
        }
        // timed out: leave the line, unless the lane was handed over meanwhile
        let mut s = self.lock();
        if waiter.granted.load(Acquire) {
            drop(s);
            return got(self);
        }
        s.queue.retain(|w| !Arc::ptr_eq(w, &waiter));
        if let Some(next) = s.queue.front() {
            if !next.head.swap(true, AcqRel) {
                next.wake();
            }
        }
        let queued = s.queue.len();
        let holder = match &s.held {
            Some(h) => {
                let mut who = format!(
                    "held for {:.2} s by thread {}",
                    h.since.elapsed().as_secs_f64(),
                    match &h.thread {
                        Some(t) => t
                            .name()
                            .map_or_else(|| format!("{:?}", t.id()), str::to_string),
                        None => "(being handed over)".to_string(),
                    }
                );
                match &h.backtrace {
                    Some(bt) => who.push_str(&format!(", whose transaction began at:\n{bt}")),
                    None => who.push_str(
                        " (set DB_LEAK_DETECTION_THRESHOLD_MS to see where its transaction began)",
                    ),
                }
                who
            }
            None => "just released".to_string(),
        };
        drop(s);
        self.waited(start.elapsed());
        Err(Error::new(
            ErrorCode::Busy,
            format!(
                "waited {:.2} s (pool_timeout) for the writer lane of {} (dbmux lets one write \
                 transaction at a time through, in order; {queued} more waiting): it is \
                 {holder}; commit or roll back sooner, or raise pool_timeout (DB_POOL_TIMEOUT)",
                start.elapsed().as_secs_f64(),
                self.name
            ),
        ))
    }

    /// The lane, taken; `gap`: leave SQLite's lock free for other processes
    /// first (this process's turn is over).
    fn held(self: &Arc<Lane>, gap: bool) -> Held {
        // what the busy handler saw before now is not this writer's
        busy_seen();
        if gap {
            std::thread::sleep(GAP);
        }
        Held { lane: self.clone() }
    }

    /// Hands the lane to the first writer in line, or frees it.
    fn release(&self) {
        let seen = busy_seen();
        let mut s = self.lock();
        let now = Instant::now();
        s.end_turn(seen, now);
        match s.queue.pop_front() {
            Some(next) => {
                // held by `next` from now; it fills in who it is when it wakes
                s.held = Some(Holder {
                    since: Instant::now(),
                    thread: None,
                    backtrace: None,
                });
                // granted under the state lock (which a waiter that times
                // out takes too), so it cannot leave the line after being
                // handed the lane
                next.granted.store(true, Release);
                let after = s.queue.front().cloned();
                drop(s);
                next.wake();
                // the one after it is first in line now: let it spin
                if let Some(after) = after {
                    if !after.head.swap(true, AcqRel) {
                        after.wake();
                    }
                }
            }
            None => {
                s.held = None;
                s.freed_at = Some(now);
            }
        }
    }
}

/// What a statement passes through: on a connection that writes to a file
/// with a lane, a statement that writes takes the lane first (unless the
/// connection holds it already); a read that begins a read transaction
/// waits while the file's reader gate is closed.
pub(crate) struct WriteGate<'a> {
    pub conn: &'a rusqlite::Connection,
    /// The database's lane (and WAL controller).
    pub lane: Option<&'a Arc<Lane>>,
    /// The connection may write (readers never take the lane).
    pub writes: bool,
    pub held: &'a mut Option<Held>,
    pub timeout: Duration,
    pub trace: bool,
}

impl WriteGate<'_> {
    /// Whether this connection takes the lane at all, and does not hold it.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.writes && self.lane.is_some() && self.held.is_none()
    }

    /// Before a statement: takes the lane when `readonly()` says it writes;
    /// a read outside a transaction (a new read transaction) passes the
    /// reader gate.
    #[inline]
    pub(crate) fn before(&mut self, readonly: impl FnOnce() -> bool) -> Result<()> {
        let (Some(lane), None) = (self.lane, self.held.as_ref()) else {
            return Ok(());
        };
        if !readonly() {
            if self.writes {
                *self.held = Some(lane.acquire(self.timeout, self.trace)?);
            }
        } else if lane.wal.gate_closed() && self.conn.is_autocommit() {
            lane.wal.pass_gate();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_are_served_in_arrival_order_and_time_out_with_the_holder() {
        let lane = Lane::of("/tmp/dbmux-lane-unit-test.db");
        let first = lane.acquire(Duration::from_secs(1), false).unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for i in 0..4 {
            let (mine, order) = (lane.clone(), order.clone());
            handles.push(std::thread::spawn(move || {
                let held = mine.acquire(Duration::from_secs(5), false).unwrap();
                order.lock().unwrap().push(i);
                std::thread::sleep(Duration::from_millis(2));
                drop(held);
            }));
            // each is in line before the next arrives
            while lane.depth() < i + 1 {
                std::thread::yield_now();
            }
        }
        let e = lane.acquire(Duration::from_millis(50), false).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Busy);
        let m = e.to_string();
        assert!(m.contains("writer lane") && m.contains("held for"), "{m}");
        assert!(m.contains("4 more waiting"), "{m}");
        drop(first);
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(lane.depth(), 0);
        // the same file, the same lane
        assert!(Arc::ptr_eq(
            &lane,
            &Lane::of("/tmp/dbmux-lane-unit-test.db")
        ));
    }
}
