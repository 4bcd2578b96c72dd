//! The checks the pool runs on a connection, written once for every
//! backend: recycling, pre-ping and the backend's own health on checkout;
//! broken connections and reset on return.

use super::{CheckSettings, ConnError, Count};
use crate::platform::Instant;

/// The lifetime of a connection born at `born` under `pool_recycle`: the
/// setting ±10 %, fixed per connection (drawn from its birth instant), so
/// that connections opened together (after a restart, at start-up) do not all
/// expire, and reconnect, together.
fn lifetime(recycle: std::time::Duration, born: Instant) -> std::time::Duration {
    use std::hash::BuildHasher;
    static KEYS: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let unit =
        (KEYS.get_or_init(Default::default).hash_one(born) >> 11) as f64 / (1u64 << 53) as f64;
    recycle.mul_f64(0.9 + 0.2 * unit)
}

/// Whether a connection born at `born` outlived its [`lifetime`] at `now`.
/// Until 90 % of `pool_recycle` no connection has, so the usual checkout
/// skips the hash.
#[inline]
pub(crate) fn expired(recycle: std::time::Duration, born: Instant, now: Instant) -> bool {
    let age = now.duration_since(born);
    age >= recycle.mul_f64(0.9) && age >= lifetime(recycle, born)
}

/// What an idle connection's socket holds, seen without a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// Nothing to read: the usual case, the connection is as it was left.
    Quiet,
    /// Unread bytes: a FATAL before the server closes it, or a notice.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Readable,
    /// The server closed the connection (or the socket failed).
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Closed,
}

/// What the checks need from a backend's pooled connection.
pub(crate) trait Checked {
    /// When the connection was opened.
    fn born(&self) -> Instant;
    /// When it was last returned to the pool.
    fn idle_since(&self) -> Instant;
    /// Notes that it is being returned now.
    fn set_idle_since(&mut self, now: Instant);
    /// A backend's own reason to refuse it on checkout (the server went away
    /// after it was opened, ...). Defaults to none.
    fn refused(&self, _now: Instant) -> Option<ConnError> {
        None
    }
    /// A look at the connection without a round trip (a server connection's
    /// socket); embedded databases are always [`Readiness::Quiet`].
    fn readiness(&self) -> Readiness {
        Readiness::Quiet
    }
    /// One round trip that proves the connection works.
    fn ping(&mut self) -> Result<(), ConnError>;
    /// It failed in a way that makes it unusable: discard, do not pool.
    fn is_broken(&self) -> bool;
    /// Whether a transaction is still open.
    fn transaction_open(&self) -> bool;
    /// Rolls an open transaction back; false when that failed.
    fn roll_back(&mut self) -> bool;
}

impl CheckSettings {
    /// On checkout: `Err` discards the connection.
    pub(crate) fn validate<C: Checked>(&self, c: &mut C, now: Instant) -> Result<(), ConnError> {
        if self.recycle.is_some_and(|r| expired(r, c.born(), now)) {
            return Err(ConnError::Expired);
        }
        if let Some(refusal) = c.refused(now) {
            return Err(refusal);
        }
        // Inside the pre-ping window too: a server that closed the session
        // (a restart) left a FATAL or EOF on the socket.
        match c.readiness() {
            Readiness::Quiet => {}
            Readiness::Closed => {
                return Err(ConnError::PingFailed(crate::Error::new(
                    crate::ErrorCode::ConnectFailed,
                    "the server closed the connection while it was idle",
                )))
            }
            Readiness::Readable => {
                self.stats.add(Count::PrePings);
                c.ping()?;
                // what the server sent may say it changed role
                return c.refused(now).map_or(Ok(()), Err);
            }
        }
        if self.pre_ping && now.duration_since(c.idle_since()) >= self.pre_ping_window {
            self.stats.add(Count::PrePings);
            c.ping()?;
            return c.refused(now).map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Whether [`validate`](Self::validate) at `now` would pass without a
    /// round trip or a close: not expired, not refused, not due for a
    /// pre-ping, and its socket quiet (looked at last: a system call).
    pub(crate) fn pass_at_once<C: Checked>(&self, c: &C, now: Instant) -> bool {
        !self.recycle.is_some_and(|r| expired(r, c.born(), now))
            && c.refused(now).is_none()
            && !(self.pre_ping && now.duration_since(c.idle_since()) >= self.pre_ping_window)
            && c.readiness() == Readiness::Quiet
    }

    /// On return: false discards the connection (it is broken, or an open
    /// transaction could not be rolled back).
    pub(crate) fn on_return<C: Checked>(&self, c: &mut C, now: Instant) -> bool {
        let s = &self.stats;
        c.set_idle_since(now);
        if c.is_broken() {
            return false;
        }
        if c.transaction_open() {
            // Reset on return: nobody else may inherit an open transaction.
            s.add(Count::Resets);
            if !c.roll_back() {
                return false;
            }
        }
        true
    }

    /// Counts the close of a connection refused on checkout, by its
    /// reason, and logs it.
    pub(crate) fn note_refusal(&self, e: &ConnError) {
        self.stats.closed_for(e.close_reason(), 1);
        match e {
            ConnError::Expired => {
                log::debug!(target: "dbmux::pool", "{e}");
            }
            ConnError::PingFailed(err) | ConnError::Invalidated(err) => {
                log::info!(
                    target: "dbmux::pool",
                    "discarding a pooled connection that no longer works: {err}"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn recycle_ages_are_spread_over_plus_minus_ten_percent() {
        let recycle = Duration::from_secs(1800);
        let start = Instant::now();
        // connections opened within the same millisecond
        let ages: Vec<Duration> = (0..200)
            .map(|i| lifetime(recycle, start + Duration::from_micros(i)))
            .collect();
        assert!(ages
            .iter()
            .all(|a| *a >= recycle.mul_f64(0.9) && *a <= recycle.mul_f64(1.1)));
        let (lo, hi) = (ages.iter().min().unwrap(), ages.iter().max().unwrap());
        assert!(*hi - *lo > recycle.mul_f64(0.15), "spread {:?}", *hi - *lo);
        // fixed per connection
        assert_eq!(lifetime(recycle, start), lifetime(recycle, start));
    }
}
