//! The connection holder used instead of r2d2 on wasm32, where there are no
//! threads: r2d2 opens connections on worker threads and waits on condition
//! variables, neither of which exists in a browser tab or in Node.
//!
//! It offers the part of r2d2's API that dbmux uses (`Pool`, `Builder`,
//! `PooledConnection`, `ManageConnection`, the event and error hooks), so
//! the rest of dbmux is the same code on every target. Differences:
//! - it keeps at most one connection: wasm code runs on one thread, and the
//!   VFSs of `sqlite-wasm-rs` do no locking between connections;
//! - connections are opened on the calling thread, when first needed;
//! - a checkout while the connection is checked out fails at once (nothing
//!   else could return it while the caller waits).

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Opens and checks connections (r2d2's trait of the same name).
pub trait ManageConnection: Send + Sync + 'static {
    /// The connection type.
    type Connection: Send + 'static;
    /// The error type.
    type Error: fmt::Display + fmt::Debug + Send + 'static;
    /// Opens a new connection.
    fn connect(&self) -> Result<Self::Connection, Self::Error>;
    /// Checks a connection before it is handed out.
    fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error>;
    /// Whether a returned connection must be closed instead of kept.
    fn has_broken(&self, conn: &mut Self::Connection) -> bool;
}

/// Event types passed to [`HandleEvent`].
pub mod event {
    use std::time::Duration;

    /// A connection was opened.
    pub struct AcquireEvent;
    /// A connection was checked out after waiting `duration`.
    pub struct CheckoutEvent(pub(crate) Duration);
    impl CheckoutEvent {
        /// How long the checkout waited.
        pub fn duration(&self) -> Duration {
            self.0
        }
    }
    /// A checkout gave up after `timeout`.
    pub struct TimeoutEvent(pub(crate) Duration);
    impl TimeoutEvent {
        /// How long the checkout waited.
        pub fn timeout(&self) -> Duration {
            self.0
        }
    }
    /// A connection was returned.
    pub struct CheckinEvent;
}

/// Receives pool events (r2d2's trait of the same name).
pub trait HandleEvent: fmt::Debug + Send + Sync + 'static {
    /// A connection was opened.
    fn handle_acquire(&self, _: event::AcquireEvent) {}
    /// A connection was checked out.
    fn handle_checkout(&self, _: event::CheckoutEvent) {}
    /// A checkout failed.
    fn handle_timeout(&self, _: event::TimeoutEvent) {}
    /// A connection was returned.
    fn handle_checkin(&self, _: event::CheckinEvent) {}
}

/// Receives connection errors (r2d2's trait of the same name).
pub trait HandleError<E>: fmt::Debug + Send + Sync + 'static {
    /// One error of `connect` or `is_valid`.
    fn handle_error(&self, error: E);
}

/// The pool's size now.
#[derive(Debug, Clone, Copy)]
pub struct State {
    /// Connections open, idle or checked out.
    pub connections: u32,
    /// Connections idle in the pool.
    pub idle_connections: u32,
}

/// A failed checkout; its text follows r2d2's ("timed out waiting for
/// connection[: cause]").
#[derive(Debug)]
pub struct Error(Option<String>);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timed out waiting for connection")?;
        match &self.0 {
            Some(cause) => write!(f, ": {cause}"),
            None => Ok(()),
        }
    }
}

/// Where the one connection is.
enum Slot<C> {
    /// None is open.
    Empty,
    /// Open and idle in the holder.
    Idle(C),
    /// Open and checked out (or being opened).
    Out,
}

struct Shared<M: ManageConnection> {
    manager: M,
    slot: Mutex<Slot<M::Connection>>,
    test_on_check_out: bool,
    events: Box<dyn HandleEvent>,
    errors: Box<dyn HandleError<M::Error>>,
}

/// Holds at most one connection of `M`.
pub struct Pool<M: ManageConnection>(Arc<Shared<M>>);

impl<M: ManageConnection> Clone for Pool<M> {
    fn clone(&self) -> Self {
        Pool(self.0.clone())
    }
}

#[derive(Debug)]
struct NoEvents;
impl HandleEvent for NoEvents {}

#[derive(Debug)]
struct LogErrors;
impl<E: fmt::Debug> HandleError<E> for LogErrors {
    fn handle_error(&self, error: E) {
        log::warn!(target: "dbmux::pool", "{error:?}");
    }
}

/// Configures a [`Pool`]; the r2d2 settings that need threads or timers
/// are accepted and ignored.
pub struct Builder<M: ManageConnection> {
    test_on_check_out: bool,
    events: Box<dyn HandleEvent>,
    errors: Box<dyn HandleError<M::Error>>,
}

impl<M: ManageConnection> Builder<M> {
    /// Ignored: the holder keeps one connection.
    pub fn max_size(self, _: u32) -> Self {
        self
    }
    /// Ignored: connections are opened when first needed.
    pub fn min_idle(self, _: Option<u32>) -> Self {
        self
    }
    /// Ignored: a checkout never waits.
    pub fn connection_timeout(self, _: Duration) -> Self {
        self
    }
    /// Ignored: `ManageConnection::is_valid` checks the lifetime.
    pub fn max_lifetime(self, _: Option<Duration>) -> Self {
        self
    }
    /// Ignored: there is no timer.
    pub fn idle_timeout(self, _: Option<Duration>) -> Self {
        self
    }
    /// Whether to call `is_valid` on checkout.
    pub fn test_on_check_out(mut self, on: bool) -> Self {
        self.test_on_check_out = on;
        self
    }
    /// The event hooks.
    pub fn event_handler(mut self, h: Box<dyn HandleEvent>) -> Self {
        self.events = h;
        self
    }
    /// The error hooks.
    pub fn error_handler(mut self, h: Box<dyn HandleError<M::Error>>) -> Self {
        self.errors = h;
        self
    }
    /// The pool; opens nothing.
    pub fn build_unchecked(self, manager: M) -> Pool<M> {
        Pool(Arc::new(Shared {
            manager,
            slot: Mutex::new(Slot::Empty),
            test_on_check_out: self.test_on_check_out,
            events: self.events,
            errors: self.errors,
        }))
    }
}

impl<M: ManageConnection> Pool<M> {
    /// A builder with r2d2's defaults.
    pub fn builder() -> Builder<M> {
        Builder {
            test_on_check_out: true,
            events: Box::new(NoEvents),
            errors: Box::new(LogErrors),
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Slot<M::Connection>> {
        self.0.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection, opened if needed. Fails at once when it is checked
    /// out (`timeout` is not waited: no other code could return it).
    pub fn get_timeout(&self, _timeout: Duration) -> Result<PooledConnection<M>, Error> {
        let s = &self.0;
        let previous = std::mem::replace(&mut *self.slot(), Slot::Out);
        match previous {
            Slot::Out => {
                s.events.handle_timeout(event::TimeoutEvent(Duration::ZERO));
                return Err(Error(None));
            }
            Slot::Idle(mut c) => match s.test_on_check_out.then(|| s.manager.is_valid(&mut c)) {
                Some(Err(e)) => {
                    drop(c);
                    s.errors.handle_error(e);
                }
                _ => {
                    s.events
                        .handle_checkout(event::CheckoutEvent(Duration::ZERO));
                    return Ok(self.lend(c));
                }
            },
            Slot::Empty => {}
        }
        match s.manager.connect() {
            Ok(c) => {
                s.events.handle_acquire(event::AcquireEvent);
                s.events
                    .handle_checkout(event::CheckoutEvent(Duration::ZERO));
                Ok(self.lend(c))
            }
            Err(e) => {
                *self.slot() = Slot::Empty;
                let cause = e.to_string();
                s.errors.handle_error(e);
                s.events.handle_timeout(event::TimeoutEvent(Duration::ZERO));
                Err(Error(Some(cause)))
            }
        }
    }

    fn lend(&self, c: M::Connection) -> PooledConnection<M> {
        PooledConnection {
            pool: self.clone(),
            conn: Some(c),
        }
    }

    /// How many connections are open and idle.
    pub fn state(&self) -> State {
        let slot = self.slot();
        State {
            connections: u32::from(!matches!(*slot, Slot::Empty)),
            idle_connections: u32::from(matches!(*slot, Slot::Idle(_))),
        }
    }
}

/// A checked-out connection; returned to its pool when dropped.
pub struct PooledConnection<M: ManageConnection> {
    pool: Pool<M>,
    conn: Option<M::Connection>,
}

impl<M: ManageConnection> Deref for PooledConnection<M> {
    type Target = M::Connection;
    fn deref(&self) -> &M::Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl<M: ManageConnection> DerefMut for PooledConnection<M> {
    fn deref_mut(&mut self) -> &mut M::Connection {
        self.conn.as_mut().expect("present until drop")
    }
}

impl<M: ManageConnection> Drop for PooledConnection<M> {
    fn drop(&mut self) {
        let Some(mut c) = self.conn.take() else {
            return;
        };
        let s = &self.pool.0;
        s.events.handle_checkin(event::CheckinEvent);
        if s.manager.has_broken(&mut c) {
            *self.pool.slot() = Slot::Empty;
            drop(c);
        } else {
            *self.pool.slot() = Slot::Idle(c);
        }
    }
}
