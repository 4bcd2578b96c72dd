//! dbmux's own pool: first come, first served, with a bounded number of
//! connection attempts and a fast answer when no attempt can succeed.
//!
//! Why not r2d2 (which holds connections in dbmux's first releases): r2d2
//! opens connections on its worker threads, retries a failed open with a
//! backoff of up to half the checkout timeout while counting the slot as
//! taken, lets a newcomer take a returned connection ahead of queued
//! waiters, and reports a permanent error (a wrong password) only when the
//! whole pool timeout has passed. Here:
//!
//! - **Hand-off in order.** Waiters queue; a returned or newly opened
//!   connection goes to the oldest waiter directly. A checkout takes an idle
//!   connection itself only when nobody is queued.
//! - **Bounded attempts.** At most [`MAX_CONNECTING`] connection attempts run
//!   at once, each on a short-lived thread of its own, and only while
//!   someone waits; a failed attempt holds no slot.
//! - **Transient errors are retried** (connection refused, the server
//!   starting up, too many connections, a timeout) with jittered backoff
//!   capped at [`RETRY_CAP`], while someone still waits, so a server that is
//!   back is used within a fraction of a second.
//! - **Permanent errors end the wait at once.** An error that a retry cannot
//!   fix ([`crate::Error::is_transient`] is false: a wrong password, a
//!   missing database, a failed TLS verification, an unknown host, a file
//!   that is not a database) is handed to every waiting checkout.
//!
//! On wasm32, which has no threads, a checkout opens the connection itself
//! and never waits: nothing could return a connection meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::checks::Checked;
pub(crate) use super::status::State;
use super::{CheckSettings, CloseReason, Stats};
use crate::error::Error;
use crate::platform::Instant;

/// Connection attempts in flight per pool, at most.
pub(crate) const MAX_CONNECTING: u32 = 2;
/// The first retry of a failed attempt waits about this long...
#[cfg(not(target_arch = "wasm32"))]
const RETRY_FIRST: Duration = Duration::from_millis(25);
/// ...doubling up to this (each wait is drawn from `[d/2, d]`).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) const RETRY_CAP: Duration = Duration::from_millis(400);
/// How often idle connections are checked for `pool_recycle`.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// Opens connections for a pool (a backend's connector).
pub(crate) trait Open: Send + Sync + 'static {
    /// The pooled connection.
    type Conn: Checked + Send + 'static;
    /// Opens one connection. The error's [`Error::is_transient`] says
    /// whether trying again may succeed.
    fn open(&self) -> Result<Self::Conn, Error>;
}

/// Why a checkout got no connection.
#[derive(Debug)]
pub(crate) enum Refused {
    /// Nothing became free within the timeout; the last connection error of
    /// the wait, if any.
    Timeout {
        state: State,
        last_error: Option<Error>,
    },
    /// Opening a connection failed in a way no retry can fix.
    Failed(Error),
    /// The pool was closed.
    Closed,
}

/// A pool's gauges at one moment (the metrics' `access` label tells the
/// pools of a manager apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Gauges {
    /// Connections open (idle or checked out).
    pub open: u32,
    /// Idle connections.
    pub idle: u32,
    /// Checkouts waiting in line.
    pub waiting: u32,
    /// Connection attempts in flight (or waiting to retry).
    pub connecting: u32,
    /// Connections it may open.
    pub max_size: u32,
    /// Idle connections it keeps.
    pub keep_idle: u32,
}

/// What a queued checkout is handed.
enum Served<C> {
    Conn(C),
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    Failed(Error),
    Closed,
}

/// One queued checkout. It sleeps on its own lock and condition variable,
/// so that waking it never waits for the pool's lock.
struct Waiter<C> {
    cv: Condvar,
    /// Filled by whoever serves it, while holding the pool's lock.
    outcome: Mutex<Option<Served<C>>>,
}

impl<C> Waiter<C> {
    /// Fills the outcome and wakes the waiter.
    fn give(&self, o: Served<C>) {
        self.fill(o);
        self.cv.notify_one();
    }

    /// Fills the outcome; the caller wakes the waiter (after releasing the
    /// pool's lock, so that the waiter does not wake into a held lock).
    fn fill(&self, o: Served<C>) {
        *self.outcome.lock().unwrap_or_else(|e| e.into_inner()) = Some(o);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn take(&self) -> Option<Served<C>> {
        self.outcome
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

struct Slots<C> {
    /// Idle connections; the most recently returned last (reused first).
    idle: Vec<C>,
    /// Connections that exist (idle or checked out).
    open: u32,
    /// Connection attempts in flight (or waiting to retry).
    connecting: u32,
    waiters: VecDeque<Arc<Waiter<C>>>,
    closed: bool,
    /// The last failure to open a connection, and when.
    last_error: Option<(Instant, Error)>,
    next_sweep: Instant,
}

struct Inner<O: Open> {
    opener: O,
    checks: Arc<CheckSettings>,
    max_size: u32,
    /// Idle connections kept; more returned ones are closed (`pool_size`).
    keep_idle: u32,
    slots: Mutex<Slots<Box<O::Conn>>>,
    /// Wakes attempt threads that wait to retry (on close).
    retry_cv: Condvar,
    /// The `metrics` facade's gauges of this pool.
    #[cfg(feature = "metrics")]
    gauges: crate::pool::facade::PoolGauges,
}

impl<O: Open> Inner<O> {
    fn lock(&self) -> MutexGuard<'_, Slots<Box<O::Conn>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> &Stats {
        &self.checks.stats
    }

    /// Feature `metrics`: sets the facade's gauges of this pool to `s`
    /// (called where the pool's state changed, under its lock).
    #[inline(always)]
    fn publish(&self, s: &Slots<Box<O::Conn>>) {
        #[cfg(feature = "metrics")]
        self.gauges
            .set(s.open, s.idle.len() as u32, s.waiters.len(), s.connecting);
        let _ = s;
    }

    /// Gives `c` to the oldest waiter (returned, to be woken once the lock
    /// is released), or keeps it idle.
    #[must_use]
    fn put(
        &self,
        s: &mut Slots<Box<O::Conn>>,
        c: Box<O::Conn>,
    ) -> Option<Arc<Waiter<Box<O::Conn>>>> {
        match s.waiters.pop_front() {
            Some(w) => {
                w.fill(Served::Conn(c));
                self.publish(s);
                Some(w)
            }
            None => {
                s.idle.push(c);
                self.publish(s);
                None
            }
        }
    }

    /// Starts connection attempts while waiters outnumber them, within the
    /// pool's size and [`MAX_CONNECTING`].
    fn start_attempts(self: &Arc<Self>, s: &mut Slots<Box<O::Conn>>) {
        while !s.closed
            && s.connecting < MAX_CONNECTING
            && (s.connecting as usize) < s.waiters.len()
            && s.open + s.connecting < self.max_size
        {
            s.connecting += 1;
            if !self.spawn_attempt() {
                s.connecting -= 1;
                break;
            }
        }
        self.publish(s);
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn spawn_attempt(self: &Arc<Self>) -> bool {
        let inner = self.clone();
        let spawned = std::thread::Builder::new()
            .name("dbmux-connect".into())
            .spawn(move || inner.attempts());
        if let Err(e) = spawned {
            log::warn!(target: "dbmux::pool", "could not start a thread to open a connection: {e}");
            return false;
        }
        true
    }

    #[cfg(target_arch = "wasm32")]
    fn spawn_attempt(self: &Arc<Self>) -> bool {
        false
    }

    /// One connection attempt, timed and counted.
    fn attempt(&self) -> Result<O::Conn, Error> {
        let start = Instant::now();
        let r = self.opener.open();
        let took = start.elapsed();
        let stats = self.stats();
        stats.time(super::Timing::Connect, took);
        stats
            .connect_last_us
            .store(took.as_micros() as u64, Relaxed);
        match &r {
            Ok(_) => {
                stats.add(super::Count::Opened);
            }
            Err(e) => stats.record_open_failure(e),
        }
        r
    }

    /// An attempt thread: opens connections while waiters need them,
    /// retrying transient failures with backoff.
    #[cfg(not(target_arch = "wasm32"))]
    fn attempts(self: Arc<Self>) {
        let mut delay = RETRY_FIRST;
        loop {
            let r = self.attempt();
            let mut s = self.lock();
            match r {
                Ok(c) => {
                    s.open += 1;
                    if s.closed {
                        self.leave_attempt(&mut s);
                        s.open -= 1;
                        drop(s);
                        self.stats().closed_for(CloseReason::Shutdown, 1);
                        drop(c);
                        return;
                    }
                    // boxed: moving it in and out of the pool moves a pointer
                    if let Some(w) = self.put(&mut s, Box::new(c)) {
                        w.cv.notify_one();
                    }
                    delay = RETRY_FIRST;
                    // keep this thread for the next waiter, if one needs it
                    let more = (s.connecting as usize) <= s.waiters.len()
                        && s.open + s.connecting <= self.max_size;
                    if !more {
                        self.leave_attempt(&mut s);
                        return;
                    }
                }
                Err(e) => {
                    s.last_error = Some((Instant::now(), e.clone()));
                    if !e.is_transient() {
                        // no retry can fix it: every waiter gets the error now
                        self.leave_attempt(&mut s);
                        for w in s.waiters.drain(..) {
                            w.give(Served::Failed(e.clone()));
                        }
                        self.publish(&s);
                        return;
                    }
                    if s.closed || s.waiters.is_empty() {
                        self.leave_attempt(&mut s);
                        return;
                    }
                    let wait = jitter(delay);
                    delay = (delay * 2).min(RETRY_CAP);
                    s = self
                        .retry_cv
                        .wait_timeout(s, wait)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    if s.closed || s.waiters.is_empty() {
                        self.leave_attempt(&mut s);
                        return;
                    }
                }
            }
        }
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn leave_attempt(&self, s: &mut Slots<Box<O::Conn>>) {
        s.connecting -= 1;
        self.publish(s);
    }

    /// Closes idle connections older than `pool_recycle` (at most once per
    /// [`SWEEP_EVERY`]); returns them to be dropped outside the lock.
    fn sweep(&self, s: &mut Slots<Box<O::Conn>>, now: Instant) -> Vec<Box<O::Conn>> {
        let Some(recycle) = self.checks.recycle else {
            return Vec::new();
        };
        if now < s.next_sweep {
            return Vec::new();
        }
        s.next_sweep = now + SWEEP_EVERY;
        let (expired, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut s.idle)
            .into_iter()
            .partition(|c| super::checks::expired(recycle, c.born(), now));
        s.idle = kept;
        s.open -= expired.len() as u32;
        self.stats()
            .closed_for(CloseReason::Recycled, expired.len() as u64);
        self.publish(s);
        expired
    }

    /// The checks on checkout at `now`; `None` when the connection was
    /// discarded.
    fn admit(&self, mut c: Box<O::Conn>, now: Instant) -> Option<Box<O::Conn>> {
        match self.checks.validate(&mut *c, now) {
            Ok(()) => Some(c),
            Err(e) => {
                self.checks.note_refusal(&e);
                let mut s = self.lock();
                s.open -= 1;
                self.publish(&s);
                drop(s);
                drop(c);
                None
            }
        }
    }
}

/// Full jitter within the upper half: a wait in `[d/2, d]`.
#[cfg(not(target_arch = "wasm32"))]
fn jitter(d: Duration) -> Duration {
    let half = d / 2;
    half + half.mul_f64(crate::pool::retry::random_unit())
}

/// A pool of connections made by `O`. Cheap to clone; every clone is the
/// same pool.
pub(crate) struct Pool<O: Open> {
    inner: Arc<Inner<O>>,
}

impl<O: Open> Clone for Pool<O> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<O: Open> std::fmt::Debug for Pool<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl<O: Open> Pool<O> {
    /// A pool of at most `max_size` connections that keeps up to `keep_idle`
    /// idle. Opens nothing yet.
    pub(crate) fn new(
        access: &'static str,
        opener: O,
        max_size: u32,
        keep_idle: u32,
        checks: Arc<CheckSettings>,
    ) -> Pool<O> {
        #[cfg(feature = "metrics")]
        let gauges = checks.stats.facade.pool(access, max_size.max(1), keep_idle);
        let _ = access;
        Pool {
            inner: Arc::new(Inner {
                opener,
                checks,
                max_size: max_size.max(1),
                keep_idle,
                slots: Mutex::new(Slots {
                    idle: Vec::new(),
                    open: 0,
                    connecting: 0,
                    waiters: VecDeque::new(),
                    closed: false,
                    last_error: None,
                    next_sweep: Instant::now() + SWEEP_EVERY,
                }),
                retry_cv: Condvar::new(),
                #[cfg(feature = "metrics")]
                gauges,
            }),
        }
    }

    /// What opens this pool's connections.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn opener(&self) -> &O {
        &self.inner.opener
    }

    /// The pool's size now.
    pub(crate) fn state(&self) -> State {
        let s = self.inner.lock();
        State {
            connections: s.open,
            idle_connections: s.idle.len() as u32,
        }
    }

    /// The pool's gauges now.
    pub(crate) fn gauges(&self) -> Gauges {
        let s = self.inner.lock();
        Gauges {
            open: s.open,
            idle: s.idle.len() as u32,
            waiting: s.waiters.len() as u32,
            connecting: s.connecting,
            max_size: self.inner.max_size,
            keep_idle: self.inner.keep_idle,
        }
    }

    /// Checks a connection out, waiting up to `timeout` (from `start`, the
    /// caller's clock reading: a checkout reads the clock twice, at its
    /// start and its end) in line.
    pub(crate) fn get_timeout(
        &self,
        start: Instant,
        timeout: Duration,
    ) -> Result<Pooled<O>, Refused> {
        let stats = self.inner.stats();
        let r = self.checkout(start, timeout);
        let end = Instant::now();
        let waited = end.saturating_duration_since(start);
        match &r {
            Ok(_) => stats.record_checkout(waited),
            Err(Refused::Timeout { .. }) => stats.record_timeout(waited),
            Err(_) => {}
        }
        r.map(|conn| Pooled {
            conn: Some(conn),
            pool: self.inner.clone(),
            since: end,
        })
    }

    /// A connection at once (from `start`, the caller's clock reading), when
    /// one is idle, nobody is queued for one and it passes the checkout
    /// checks without a round trip; else `None`, with the pool as it was.
    /// Waits for nothing but the pool's lock.
    pub(crate) fn try_get(&self, start: Instant) -> Option<Pooled<O>> {
        let inner = &self.inner;
        let mut s = inner.lock();
        let sweep_due = inner.checks.recycle.is_some() && start >= s.next_sweep;
        if s.closed || sweep_due || !s.waiters.is_empty() {
            return None;
        }
        let c = s.idle.pop()?;
        inner.publish(&s);
        drop(s);
        if inner.checks.pass_at_once(&*c, start) {
            let end = Instant::now();
            inner
                .stats()
                .record_checkout(end.saturating_duration_since(start));
            return Some(Pooled {
                conn: Some(c),
                pool: inner.clone(),
                since: end,
            });
        }
        // back as it was (a waiter that came meanwhile gets it): a blocking
        // checkout runs the checks that need the server
        let mut s = inner.lock();
        if s.closed {
            s.open -= 1;
            inner.publish(&s);
            drop(s);
            inner.stats().closed_for(CloseReason::Shutdown, 1);
            drop(c);
            return None;
        }
        let served = inner.put(&mut s, c);
        drop(s);
        if let Some(w) = served {
            w.cv.notify_one();
        }
        None
    }

    fn checkout(&self, start: Instant, timeout: Duration) -> Result<Box<O::Conn>, Refused> {
        let inner = &self.inner;
        // The fast path: nobody is queued and a connection is idle.
        loop {
            let mut s = inner.lock();
            if s.closed {
                return Err(Refused::Closed);
            }
            let expired = inner.sweep(&mut s, start);
            if !expired.is_empty() {
                drop(s);
                drop(expired);
                continue;
            }
            if !s.waiters.is_empty() {
                break;
            }
            match s.idle.pop() {
                Some(c) => {
                    inner.publish(&s);
                    drop(s);
                    if let Some(c) = inner.admit(c, start) {
                        return Ok(c);
                    }
                }
                None => break,
            }
        }
        self.wait_in_line(start, timeout)
    }

    #[cfg(not(target_arch = "wasm32"))]
    fn wait_in_line(&self, start: Instant, timeout: Duration) -> Result<Box<O::Conn>, Refused> {
        let inner = &self.inner;
        let deadline = start + timeout;
        let me = Arc::new(Waiter {
            cv: Condvar::new(),
            outcome: Mutex::new(None),
        });
        {
            let mut s = inner.lock();
            s.waiters.push_back(me.clone());
            inner.start_attempts(&mut s);
        }
        loop {
            // sleep on the waiter's own lock until served or the deadline
            let served = {
                let mut o = me.outcome.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(x) = o.take() {
                        break Some(x);
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        break None;
                    }
                    o = me
                        .cv
                        .wait_timeout(o, deadline - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            };
            let served = match served {
                Some(x) => x,
                None => {
                    // the deadline passed: leave the line, unless served meanwhile
                    let mut s = inner.lock();
                    match me.take() {
                        Some(x) => x,
                        None => {
                            self.leave_line(&mut s, &me);
                            let last_error = s
                                .last_error
                                .as_ref()
                                .filter(|(at, _)| *at >= start)
                                .map(|(_, e)| e.clone());
                            return Err(Refused::Timeout {
                                state: State {
                                    connections: s.open,
                                    idle_connections: s.idle.len() as u32,
                                },
                                last_error,
                            });
                        }
                    }
                }
            };
            match served {
                Served::Conn(c) => {
                    if let Some(c) = inner.admit(c, Instant::now()) {
                        return Ok(c);
                    }
                    // discarded on checkout: back to the head of the line
                    let mut s = inner.lock();
                    if s.closed {
                        return Err(Refused::Closed);
                    }
                    s.waiters.push_front(me.clone());
                    inner.start_attempts(&mut s);
                }
                Served::Failed(e) => return Err(Refused::Failed(e)),
                Served::Closed => return Err(Refused::Closed),
            }
        }
    }

    /// Removes `me` from the line (after a timeout or close).
    #[cfg(not(target_arch = "wasm32"))]
    fn leave_line(&self, s: &mut Slots<Box<O::Conn>>, me: &Arc<Waiter<Box<O::Conn>>>) {
        if let Some(i) = s.waiters.iter().position(|w| Arc::ptr_eq(w, me)) {
            s.waiters.remove(i);
        }
        self.inner.publish(s);
    }

    /// wasm32: one thread, so nothing can be returned while this call
    /// waits. Open a connection here if the pool has room, else refuse.
    #[cfg(target_arch = "wasm32")]
    fn wait_in_line(&self, _start: Instant, _timeout: Duration) -> Result<Box<O::Conn>, Refused> {
        let inner = &self.inner;
        let mut s = inner.lock();
        if s.open + s.connecting >= inner.max_size {
            return Err(Refused::Timeout {
                state: State {
                    connections: s.open,
                    idle_connections: s.idle.len() as u32,
                },
                last_error: None,
            });
        }
        s.connecting += 1;
        drop(s);
        let r = inner.attempt();
        let mut s = inner.lock();
        s.connecting -= 1;
        match r {
            Ok(c) => {
                s.open += 1;
                Ok(Box::new(c))
            }
            Err(e) => {
                s.last_error = Some((Instant::now(), e.clone()));
                if e.is_transient() {
                    Err(Refused::Timeout {
                        state: State {
                            connections: s.open,
                            idle_connections: s.idle.len() as u32,
                        },
                        last_error: Some(e),
                    })
                } else {
                    Err(Refused::Failed(e))
                }
            }
        }
    }

    /// Closes the pool: idle connections close now, waiters get
    /// [`Refused::Closed`], checked-out connections close when returned.
    pub(crate) fn close(&self) {
        let mut s = self.inner.lock();
        s.closed = true;
        let idle = std::mem::take(&mut s.idle);
        s.open -= idle.len() as u32;
        for w in s.waiters.drain(..) {
            w.give(Served::Closed);
        }
        self.inner.retry_cv.notify_all();
        self.inner.publish(&s);
        drop(s);
        self.inner
            .stats()
            .closed_for(CloseReason::Shutdown, idle.len() as u64);
        drop(idle);
    }
}

/// A connection checked out of a [`Pool`]; returned when dropped.
pub(crate) struct Pooled<O: Open> {
    conn: Option<Box<O::Conn>>,
    pool: Arc<Inner<O>>,
    since: Instant,
}

impl<O: Open> std::ops::Deref for Pooled<O> {
    type Target = O::Conn;
    #[inline]
    fn deref(&self) -> &O::Conn {
        self.conn.as_ref().expect("present until dropped")
    }
}

impl<O: Open> std::ops::DerefMut for Pooled<O> {
    #[inline]
    fn deref_mut(&mut self) -> &mut O::Conn {
        self.conn.as_mut().expect("present until dropped")
    }
}

impl<O: Open> Drop for Pooled<O> {
    fn drop(&mut self) {
        let Some(mut c) = self.conn.take() else {
            return;
        };
        let inner = &self.pool;
        let stats = inner.stats();
        let now = Instant::now();
        stats.record_checkin(now.saturating_duration_since(self.since));
        let keep = inner.checks.on_return(&mut *c, now);
        let mut s = inner.lock();
        if !keep || s.closed || (s.waiters.is_empty() && s.idle.len() as u32 >= inner.keep_idle) {
            // broken, closed, or an overflow connection returning to a full pool
            s.open -= 1;
            inner.start_attempts(&mut s); // publishes the pool's state
            let why = if !keep {
                CloseReason::Broken
            } else if s.closed {
                CloseReason::Shutdown
            } else {
                CloseReason::Overflow
            };
            drop(s);
            stats.closed_for(why, 1);
            drop(c);
            return;
        }
        let served = inner.put(&mut s, c);
        drop(s);
        if let Some(w) = served {
            w.cv.notify_one();
        }
    }
}
