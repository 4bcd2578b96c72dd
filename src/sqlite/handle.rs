//! A pooled connection's `rusqlite::Connection` and its prepared
//! statements.
//!
//! rusqlite's own cache (`prepare_cached`) costs about 100 ns per statement
//! on a hit (the SQL trimmed and hashed twice, a new `Arc<str>` key
//! allocated and the old one freed, a linked-hash-map node moved): more than
//! SQLite takes to run `SELECT ?`. The connection's statements are kept
//! here instead, in a short most-recently-used list compared by the SQL's
//! bytes, where a hit is a comparison and two moves (`cargo bench --bench
//! pool`, section 2).
//!
//! The statements borrow the connection they were prepared on, which lives
//! in its own allocation so that it stays where they point while the
//! handle moves (between the pool's threads, in and out of its queue).
//! Every statement is finalized before the connection is touched through
//! `&mut` (which could move it or swap it) and before it closes.

#![allow(unsafe_code)]

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use rusqlite::{Connection, PrepFlags, Statement};

/// How many statements a connection keeps prepared (rusqlite's default).
const CAPACITY: usize = 16;

/// A connection and its prepared statements, least recently used first.
pub(crate) struct Handle {
    /// Declared before `conn` and emptied in `drop` before it closes.
    statements: RefCell<Vec<(Box<str>, Statement<'static>)>>,
    /// Owned (`Box::leak` in [`Handle::new`], freed in `drop`).
    conn: NonNull<Connection>,
}

// SAFETY: the `Connection` is `Send`, and the statements only point into
// that connection, which moves with them as one value: no reference to it
// stays on the thread that sends the handle. `Handle` is not `Sync` (its
// `RefCell`), so two threads never use the connection at once.
unsafe impl Send for Handle {}

impl Handle {
    /// Takes ownership of an open connection.
    pub(crate) fn new(conn: Connection) -> Handle {
        Handle {
            statements: RefCell::new(Vec::with_capacity(CAPACITY)),
            conn: NonNull::from(Box::leak(Box::new(conn))),
        }
    }

    /// The statement for `sql`, prepared once and kept for the next call;
    /// it goes back to the list when the returned guard is dropped. A
    /// statement in use (the same SQL run again inside a row callback) is
    /// prepared afresh.
    #[inline]
    pub(crate) fn prepare_cached(&self, sql: &str) -> rusqlite::Result<Cached<'_>> {
        let found = {
            let mut list = self.statements.borrow_mut();
            // the most recent first: a loop running one statement finds it
            // at the first comparison
            list.iter()
                .rposition(|(k, _)| **k == *sql)
                .map(|i| list.remove(i))
        };
        let entry = match found {
            // (a `Statement<'static>` is a `Statement<'_>` of this borrow)
            Some(found) => found,
            None => {
                let s = (**self).prepare_with_flags(sql, PrepFlags::SQLITE_PREPARE_PERSISTENT)?;
                (Box::from(sql), s)
            }
        };
        Ok(Cached {
            entry: Some(entry),
            list: &self.statements,
        })
    }

    /// Finalizes every kept statement.
    fn flush(&mut self) {
        self.statements.get_mut().clear();
    }
}

/// SAFETY: the caller makes sure the statement is finalized before its
/// connection is closed, moved or reached through `&mut`.
#[inline(always)]
unsafe fn extend(s: Statement<'_>) -> Statement<'static> {
    std::mem::transmute::<Statement<'_>, Statement<'static>>(s)
}

impl Deref for Handle {
    type Target = Connection;
    #[inline]
    fn deref(&self) -> &Connection {
        // SAFETY: owned by the handle, freed only in its `drop`
        unsafe { self.conn.as_ref() }
    }
}

impl DerefMut for Handle {
    /// `&mut` (rusqlite's transactions, backups, `Connection::as_sqlite`)
    /// finalizes the kept statements first: nothing may point into a
    /// connection that is mutably borrowed.
    fn deref_mut(&mut self) -> &mut Connection {
        self.flush();
        // SAFETY: owned by the handle; no statement points into it now
        unsafe { self.conn.as_mut() }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.flush();
        // SAFETY: from `Box::leak` in `new`, freed once, here
        drop(unsafe { Box::from_raw(self.conn.as_ptr()) });
    }
}

/// A statement out of a [`Handle`]'s list, put back (most recent) when
/// dropped.
pub(crate) struct Cached<'h> {
    /// The SQL and its statement, taken out of the list until dropped.
    entry: Option<(Box<str>, Statement<'h>)>,
    list: &'h RefCell<Vec<(Box<str>, Statement<'static>)>>,
}

impl<'h> Deref for Cached<'h> {
    type Target = Statement<'h>;
    #[inline]
    fn deref(&self) -> &Statement<'h> {
        &self.entry.as_ref().expect("present until dropped").1
    }
}

impl DerefMut for Cached<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.entry.as_mut().expect("present until dropped").1
    }
}

impl Drop for Cached<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some((key, mut stmt)) = self.entry.take() else {
            return;
        };
        // a statement is reset when its rows are dropped; the values bound
        // to it are let go of here, as rusqlite's cache does
        stmt.clear_bindings();
        let mut list = self.list.borrow_mut();
        if list.len() >= CAPACITY {
            list.remove(0);
        }
        // SAFETY: the list belongs to the handle that owns the connection;
        // the handle empties it before the connection closes or is
        // borrowed mutably (it cannot be while this guard borrows it)
        list.push((key, unsafe { extend(stmt) }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_is_kept_reused_and_dropped_before_the_connection() {
        let h = Handle::new(Connection::open_in_memory().unwrap());
        for i in 0..3i64 {
            let mut s = h.prepare_cached("SELECT ?").unwrap();
            let v: i64 = s.query_row([i], |r| r.get(0)).unwrap();
            assert_eq!(v, i);
        }
        assert_eq!(h.statements.borrow().len(), 1);
        // the same SQL while in use: a second statement, both kept after
        {
            let mut a = h.prepare_cached("SELECT 1").unwrap();
            let mut b = h.prepare_cached("SELECT 1").unwrap();
            let x: i64 = a.query_row([], |r| r.get(0)).unwrap();
            let y: i64 = b.query_row([], |r| r.get(0)).unwrap();
            assert_eq!((x, y), (1, 1));
        }
        assert_eq!(h.statements.borrow().len(), 3);
        // the least recent goes first
        for i in 0..CAPACITY + 4 {
            let sql = format!("SELECT {i}");
            let _ = h.prepare_cached(&sql).unwrap();
        }
        let list = h.statements.borrow();
        assert_eq!(list.len(), CAPACITY);
        assert_eq!(&*list[CAPACITY - 1].0, format!("SELECT {}", CAPACITY + 3));
        assert_eq!(&*list[0].0, "SELECT 4");
    }

    #[test]
    fn mutable_access_and_a_move_to_another_thread_keep_it_working() {
        let mut h = Handle::new(Connection::open_in_memory().unwrap());
        h.execute_batch("CREATE TABLE t (x)").unwrap();
        drop(h.prepare_cached("INSERT INTO t VALUES (?)").unwrap());
        // a transaction takes &mut: the statements go first
        let tx = h.transaction().unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        tx.commit().unwrap();
        assert!(h.statements.borrow().is_empty());
        let h = std::thread::spawn(move || {
            h.prepare_cached("INSERT INTO t VALUES (?)")
                .unwrap()
                .execute([2])
                .unwrap();
            h
        })
        .join()
        .unwrap();
        let n: i64 = h
            .prepare_cached("SELECT count(*) FROM t")
            .unwrap()
            .query_row([], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
    }
}
