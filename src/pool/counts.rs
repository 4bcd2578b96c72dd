//! What a manager counts and times (a leaf: the facade and the text both
//! name their families from here).

/// The histogram of a SQLite file's writer lane waits (the process's,
/// shared by the managers on the file).
pub(crate) const SQLITE_LANE_WAIT: &str = "dbmux_sqlite_lane_wait_seconds";
/// The histogram of a SQLite file's reader gate waits.
pub(crate) const SQLITE_GATE_WAIT: &str = "dbmux_sqlite_reader_gate_wait_seconds";

/// The counters of a manager: each a Prometheus counter of its own
/// (`metrics_text`), a figure of debug info, and (feature `metrics`) a
/// counter of the `metrics` facade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Count {
    /// Connections opened.
    Opened,
    /// Connections closed (every close, counted where the connection drops).
    Closed,
    /// Checkouts served.
    Checkouts,
    /// Checkouts that gave up after `pool_timeout`.
    Timeouts,
    /// Connections returned with an open transaction, rolled back.
    Resets,
    /// Pre-ping round trips on checkout.
    PrePings,
    /// Retries of `with_retry` / `transaction_with_retry`.
    Retries,
    /// `get_read_after` served by a standby that had replayed the write.
    ReadAfterStandby,
    /// `get_read_after` served by the primary.
    ReadAfterPrimary,
    /// Reads that left a standby out for lagging more than `DB_READ_MAX_LAG`.
    ReadLagAvoided,
    /// Connections held longer than the leak detection threshold.
    LeakWarnings,
}

impl Count {
    /// Every counter, in [`Count`] order.
    pub(crate) const ALL: [Count; 11] = [
        Count::Opened,
        Count::Closed,
        Count::Checkouts,
        Count::Timeouts,
        Count::Resets,
        Count::PrePings,
        Count::Retries,
        Count::ReadAfterStandby,
        Count::ReadAfterPrimary,
        Count::ReadLagAvoided,
        Count::LeakWarnings,
    ];
}

impl Count {
    /// The metric family it is counted in (without `_total`), and the one
    /// label that tells it apart there; `None` for the counter that only
    /// debug info shows.
    pub(crate) fn family(self) -> Option<(&'static str, Option<(&'static str, &'static str)>)> {
        Some(match self {
            Count::Opened => ("dbmux_connections_opened", None),
            Count::Checkouts => ("dbmux_checkouts", None),
            Count::Timeouts => ("dbmux_checkout_timeouts", None),
            Count::Retries => ("dbmux_retries", None),
            Count::PrePings => ("dbmux_pre_pings", None),
            Count::Resets => ("dbmux_resets_on_return", None),
            Count::LeakWarnings => ("dbmux_leak_warnings", None),
            Count::ReadAfterStandby => ("dbmux_read_after", Some(("served_by", "standby"))),
            Count::ReadAfterPrimary => ("dbmux_read_after", Some(("served_by", "primary"))),
            Count::ReadLagAvoided => ("dbmux_read_lag_avoided", None),
            // debug info's connections_closed (the pool's closes are
            // dbmux_connections_closed_total{reason})
            Count::Closed => return None,
        })
    }
}

/// Why the pool closed a connection (the `reason` label of
/// `dbmux_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum CloseReason {
    /// It reached `pool_recycle`.
    Recycled,
    /// It failed: an error of the connection class, a failed pre-ping or
    /// rollback, the server closed it.
    Broken,
    /// It still worked, but the pool would not use it again: opened before
    /// the server failed, the server changed role, a lagging standby.
    Invalidated,
    /// Returned while `pool_size` connections were already idle.
    Overflow,
    /// The manager was shut down.
    Shutdown,
}

impl CloseReason {
    /// Every reason, in order.
    pub(crate) const ALL: [CloseReason; 5] = [
        CloseReason::Recycled,
        CloseReason::Broken,
        CloseReason::Invalidated,
        CloseReason::Overflow,
        CloseReason::Shutdown,
    ];

    /// The label value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Recycled => "recycled",
            CloseReason::Broken => "broken",
            CloseReason::Invalidated => "invalidated",
            CloseReason::Overflow => "overflow",
            CloseReason::Shutdown => "shutdown",
        }
    }
}

/// The duration histograms of a manager.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Timing {
    /// How long checkouts wait (served and timed out).
    Acquire,
    /// How long connections stay checked out.
    Hold,
    /// How long connection attempts take (failed ones too).
    Connect,
    /// How long statements take, rows read included.
    Statement,
}

impl Timing {
    /// The histogram's metric family.
    pub(crate) fn family(self) -> &'static str {
        match self {
            Timing::Acquire => "dbmux_acquire_seconds",
            Timing::Hold => "dbmux_hold_seconds",
            Timing::Connect => "dbmux_connect_seconds",
            Timing::Statement => "dbmux_statement_seconds",
        }
    }

    /// Every histogram, in order.
    pub(crate) const ALL: [Timing; 4] = [
        Timing::Acquire,
        Timing::Hold,
        Timing::Connect,
        Timing::Statement,
    ];
}
