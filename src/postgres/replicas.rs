//! What read-your-writes and bounded staleness ask of a PostgreSQL
//! connection: the primary's WAL position after a write (the write token),
//! whether a standby has replayed a position, and how far it lags.

use std::time::Duration;

use super::hosts::parse_lsn;
use super::PgConn;
use crate::config::ReadMaxLag;
use crate::error::{Error, ErrorCode, Result};
use crate::token::WriteToken;

/// How long a measured lag is reused before a read asks again.
const LAG_REUSE: Duration = Duration::from_millis(100);

/// How long reads avoid a standby found lagging more than `DB_READ_MAX_LAG`.
pub(crate) const LAGGING_FOR: Duration = Duration::from_secs(1);

impl PgConn {
    /// One row of text columns from a simple query, within the ping limit.
    fn text_row(&mut self, sql: &str) -> Result<Vec<Option<String>>> {
        let client = self.client();
        let rows = client.call(
            "asking the server for its WAL position",
            client.client().simple_query(sql),
        )?;
        rows.into_iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .ok_or_else(|| Error::new(ErrorCode::Sql, format!("no row from {sql}")))
    }

    /// Whether the server is a standby now, as it last reported
    /// (`in_hot_standby`), else as it was when opened.
    pub(crate) fn is_standby_now(&self) -> bool {
        self.client()
            .parameter("in_hot_standby")
            .map_or(self.standby, |v| v == "on")
    }

    /// The token of what was committed on this (primary) connection: the
    /// WAL insert position now, which is past the commit, and the timeline.
    pub(crate) fn write_token(&mut self) -> Result<WriteToken> {
        let row = self.text_row(
            "SELECT pg_current_wal_insert_lsn()::text, \
             substr(pg_walfile_name(pg_current_wal_insert_lsn()), 1, 8)",
        )?;
        let lsn = row
            .first()
            .cloned()
            .flatten()
            .as_deref()
            .and_then(parse_lsn);
        let timeline = row
            .get(1)
            .cloned()
            .flatten()
            .and_then(|t| u32::from_str_radix(&t, 16).ok());
        match (lsn, timeline) {
            (Some(lsn), Some(tl)) => {
                self.known.note_primary_lsn(lsn);
                Ok(WriteToken::postgres(tl, lsn))
            }
            _ => Err(Error::new(
                ErrorCode::Sql,
                "the server did not report its WAL position (pg_current_wal_insert_lsn)",
            )),
        }
    }

    /// Whether this connection's server has everything up to `lsn`: a
    /// primary has; a standby has once it replayed it (known from an earlier
    /// look, else asked now).
    pub(crate) fn has_replayed(&mut self, lsn: u64) -> Result<bool> {
        if !self.is_standby_now() {
            return Ok(true);
        }
        if self.known.replay_lsn(self.host).is_some_and(|r| r >= lsn) {
            return Ok(true);
        }
        let (replay, _) = self.measure()?;
        Ok(replay >= lsn)
    }

    /// Whether this connection's server is a standby lagging more than
    /// `max`: WAL not replayed yet (what the newest position seen on the
    /// primary or received by the standby is ahead of its replay), or the
    /// replay delay (`now() - pg_last_xact_replay_timestamp()` while WAL
    /// waits to be replayed). Measured at most every 100 ms per host.
    pub(crate) fn lags_more_than(&mut self, max: ReadMaxLag) -> Result<Option<String>> {
        if !self.is_standby_now() {
            return Ok(None);
        }
        let (bytes, delay) = match self.known.recent_lag(self.host, LAG_REUSE) {
            Some(lag) => lag,
            None => self.measure()?.1,
        };
        let over = match max {
            ReadMaxLag::Bytes(b) => bytes > b,
            ReadMaxLag::Delay(d) => delay > d,
        };
        Ok(over.then(|| {
            format!(
                "{} lags {bytes} bytes ({:.0} ms) behind the primary, more than DB_READ_MAX_LAG \
                 ({max})",
                self.known.name(self.host),
                delay.as_secs_f64() * 1000.0
            )
        }))
    }

    /// Asks the standby how far it has replayed and how far it lags (bytes,
    /// replay delay), and notes both for the host.
    fn measure(&mut self) -> Result<(u64, (u64, Duration))> {
        let row = self.text_row(
            "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text, \
             CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
             ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) \
             END::float8::text",
        )?;
        let lsn = |i: usize| row.get(i).cloned().flatten().as_deref().and_then(parse_lsn);
        let replay = lsn(1).unwrap_or(0);
        self.known.note_standby(self.host, lsn(0), replay);
        let delay = row
            .get(2)
            .cloned()
            .flatten()
            .and_then(|d| d.parse::<f64>().ok())
            .filter(|d| d.is_finite() && *d >= 0.0)
            .unwrap_or(0.0);
        let lag = (
            self.known.primary_lsn().saturating_sub(replay),
            Duration::from_secs_f64(delay),
        );
        self.known.note_lag(self.host, lag.0, lag.1);
        Ok((replay, lag))
    }
}
