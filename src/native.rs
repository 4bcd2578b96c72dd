//! The one interface a backend's pooled connection offers to
//! [`Connection`](crate::Connection): statements, transactions state, the
//! client-side statement timeout and what to do after a connection failure.
//! SQLite's and PostgreSQL's connections implement it; `Connection` reaches
//! them through one dispatch point (`Pooled::native`).

use std::sync::Arc;
use std::time::Duration;

use crate::error::Result;
use crate::pool::Shared;
use crate::value::{RowSink, Value};

/// Interrupts the statement running on one connection, from any thread:
/// SQLite's `sqlite3_interrupt`, a PostgreSQL cancel request (a second,
/// short connection to the server, as libpq's `PQcancel`). The interrupted
/// statement fails (SQLite `SQLITE_INTERRUPT`, PostgreSQL `57014`); when
/// nothing runs, nothing happens. From
/// [`Connection::interrupter`](crate::Connection::interrupter).
#[derive(Clone)]
pub struct Interrupter(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl Interrupter {
    /// Interrupts whatever statement the connection is running now. Does not
    /// wait for it to end; on PostgreSQL it returns once the server has the
    /// request (at most a few seconds, and without error if the server
    /// cannot be reached: the statement then simply runs on).
    pub fn interrupt(&self) {
        (self.0)()
    }
}

impl std::fmt::Debug for Interrupter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupter")
    }
}

/// Marks an interrupt as asked for, so that the statement's failure reads
/// as [`ErrorCode::Cancelled`](crate::ErrorCode::Cancelled) rather than a
/// timeout (both backends report an interrupt and a timeout alike).
pub(crate) fn asked(
    flag: &Arc<std::sync::atomic::AtomicBool>,
    f: impl Fn() + Send + Sync + 'static,
) -> Interrupter {
    let flag = flag.clone();
    Interrupter(Arc::new(move || {
        flag.store(true, std::sync::atomic::Ordering::Release);
        f()
    }))
}

pub(crate) trait NativeConn {
    /// What interrupts this connection's running statement from another
    /// thread (`None`: the backend cannot).
    fn interrupter(&mut self) -> Option<Interrupter> {
        None
    }
    /// Whether an [`Interrupter`] was used since the last call (and forgets it).
    fn take_interrupted(&mut self) -> bool {
        false
    }
    /// Which backend this is.
    fn backend(&self) -> crate::url::Backend;
    /// True for the first checkout of this connection since it was opened
    /// (later calls: false).
    fn take_first_checkout(&mut self) -> bool;
    /// Sends SQL to the server as written, without rewriting `?` to `$n`
    /// (PostgreSQL; SQLite always understands both styles).
    fn set_verbatim(&mut self, _on: bool) {}
    /// Never pool this connection again: it is closed when returned.
    fn discard(&mut self);
    /// Runs one statement; the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;
    /// Runs a script of statements without parameters.
    fn execute_batch(&mut self, sql: &str) -> Result<()>;
    /// Runs a statement and streams its result into `sink`.
    fn query_into(&mut self, sql: &str, params: &[Value], sink: &mut dyn RowSink) -> Result<u64>;
    /// The first column of the first row.
    fn query_value(&mut self, sql: &str, params: &[Value]) -> Result<Value>;
    /// The id of the last row inserted on this connection.
    fn last_insert_id(&mut self) -> Result<i64>;
    /// Whether the session is encrypted (`None`: not a network session).
    fn is_encrypted(&self) -> Option<bool>;
    /// True while a transaction is open.
    fn in_transaction(&self) -> bool;
    /// True when closing this connection waits on nothing but a write to
    /// its socket (a server connection), so that returning it outside a
    /// transaction never waits on the database. Embedded databases may do
    /// I/O when closed (SQLite checkpoints the WAL).
    fn closes_without_waiting(&self) -> bool {
        false
    }
    /// Arms the client-side statement timeout for the next call (backends
    /// whose server enforces it do nothing).
    fn arm(&self, _timeout: Option<Duration>) {}
    /// Disarms it.
    fn disarm(&self, _timeout: Option<Duration>) {}
    /// After a connection-class failure: never pool this connection again
    /// (and, on a server that may have restarted, invalidate the idle ones
    /// opened before now).
    fn after_connection_error(&mut self, shared: &Shared);
    /// After a write refused as read-only on a connection meant for writes:
    /// on a server that may have become a standby, drop the connection and
    /// the host's others, and say so (`None`: nothing to add).
    fn after_read_only_refusal(&mut self) -> Option<String> {
        None
    }
    /// Takes (`on`) or gives back the writer lane of its database, held
    /// across statements and transactions until given back (a restore, a
    /// migration run); backends without one do nothing.
    fn hold_lane(&mut self, _on: bool) -> Result<()> {
        Ok(())
    }
    /// The token of what this (write) connection committed: SQLite's is
    /// trivial (every reader of the file sees every commit).
    fn write_token(&mut self) -> Result<crate::WriteToken> {
        Ok(crate::WriteToken::sqlite())
    }
    /// Whether the server has replayed WAL up to `lsn` (a primary, or
    /// SQLite, always has).
    fn has_replayed(&mut self, _lsn: u64) -> Result<bool> {
        Ok(true)
    }
    /// A reason this reader's server lags more than `max` (`None`: it does
    /// not, or it is not a standby).
    fn lags_more_than(&mut self, _max: crate::config::ReadMaxLag) -> Result<Option<String>> {
        Ok(None)
    }
}
