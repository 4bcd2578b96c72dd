//! The pool snapshot, with SQLAlchemy's names (a leaf: errors carry it).

use std::fmt;

/// A snapshot of a pool, with SQLAlchemy's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct PoolStatus {
    /// Connections the pool keeps open.
    pub pool_size: u32,
    /// Extra connections allowed under load.
    pub max_overflow: u32,
    /// Open connections sitting idle in the pool.
    pub checked_in: u32,
    /// Connections currently handed out.
    pub checked_out: u32,
    /// Open connections beyond `pool_size` (never negative, unlike SQLAlchemy's).
    pub overflow: u32,
}

impl PoolStatus {
    /// The status of a pool that was shut down: nothing open.
    pub(crate) fn closed(pool_size: u32, max_overflow: u32) -> PoolStatus {
        PoolStatus {
            pool_size,
            max_overflow,
            checked_in: 0,
            checked_out: 0,
            overflow: 0,
        }
    }

    pub(crate) fn from_state(pool_size: u32, max_overflow: u32, state: State) -> PoolStatus {
        PoolStatus {
            pool_size,
            max_overflow,
            checked_in: state.idle_connections,
            checked_out: state.connections.saturating_sub(state.idle_connections),
            overflow: state.connections.saturating_sub(pool_size),
        }
    }
}

impl fmt::Display for PoolStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pool_size={}, max_overflow={}, in use={}, idle={}, overflow={}",
            self.pool_size, self.max_overflow, self.checked_out, self.checked_in, self.overflow
        )
    }
}

/// The size of a pool now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    /// Connections open, idle or checked out.
    pub connections: u32,
    /// Connections idle in the pool.
    pub idle_connections: u32,
}
