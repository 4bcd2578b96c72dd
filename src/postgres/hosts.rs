//! What a manager knows about each host of its PostgreSQL URL, shared by its
//! pools: the role each server reported, whether the last attempt failed
//! (and with what), the timeline of primaries (to fence an old primary that
//! came back after a failover), a standby's replay position, and which
//! connections must not be used again.
//!
//! With several hosts, a host that failed is skipped for `DB_HOST_RECHECK`
//! while another host can serve, and then tried by one connection attempt at
//! a time; when no other host qualifies it is tried at once (one attempt at
//! a time), so that a restarted server is found as quickly as with one host.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode};
use crate::health::{HostHealth, HostRole, HostState};

/// A WAL position (`pg_lsn`), as a number.
pub(crate) type Lsn = u64;

/// Parses PostgreSQL's text form of a `pg_lsn` (`16/B374D848`).
pub(crate) fn parse_lsn(s: &str) -> Option<Lsn> {
    let (hi, lo) = s.trim().split_once('/')?;
    let hi = u32::from_str_radix(hi, 16).ok()?;
    let lo = u32::from_str_radix(lo, 16).ok()?;
    Some((u64::from(hi) << 32) | u64::from(lo))
}

/// What was last seen of one host.
#[derive(Default)]
struct Known {
    /// `Some(true)`: a standby; `Some(false)`: a primary.
    standby: Option<bool>,
    /// The last attempt failed at the connection level.
    down: bool,
    last_error: Option<String>,
    checked: Option<Instant>,
    /// A connection attempt is trying this (down) host now.
    probing: bool,
    timeline: Option<u32>,
    /// Why the host is never used (an old primary on a lower timeline).
    fenced: Option<String>,
    /// A standby's replay position and its lag, as last measured.
    replay_lsn: Option<Lsn>,
    /// A standby's lag (bytes, replay delay) as last measured, and when.
    lag: Option<(u64, Duration, Instant)>,
    /// Reads are not sent here before this instant (it lagged too much).
    lagging_until: Option<Instant>,
    /// Writes are not sent here before this instant (it refused one as
    /// read-only).
    no_writes_until: Option<Instant>,
    /// Connections to this host opened before this instant are not used
    /// again (the server restarted, or it became read-only).
    stale_before: Option<Instant>,
}

struct Entry {
    name: String,
    port: u16,
    known: Mutex<Known>,
}

/// The hosts of one manager (see the module docs).
pub(crate) struct Hosts {
    entries: Vec<Entry>,
    recheck: Duration,
    /// The highest timeline seen on a primary.
    max_timeline: AtomicU32,
    /// The highest WAL position seen on a primary.
    primary_lsn: AtomicU64,
    /// When a host's connections were last dropped (it failed, or refused
    /// a write): new connections are paced for a while after.
    evicted_at: Mutex<Option<Instant>>,
    /// Bumped when DDL runs (and commits) through any connection of the
    /// manager: statements prepared before it are prepared again, instead
    /// of failing with "cached plan must not change result type".
    schema_epoch: AtomicU64,
}

/// Whether a connection attempt may try a host now.
pub(crate) enum Admission<'a> {
    /// Yes; the guard (for a host that was down) lets other attempts skip it
    /// until this one is done.
    Try(Option<Probe<'a>>),
    /// Not in this pass: it failed less than `DB_HOST_RECHECK` ago, or
    /// another attempt is trying it now, or it is fenced.
    Skip,
}

/// Marks a down host as being tried by one attempt.
pub(crate) struct Probe<'a> {
    entry: &'a Entry,
}

impl Drop for Probe<'_> {
    fn drop(&mut self) {
        lock(&self.entry.known).probing = false;
    }
}

fn lock(m: &Mutex<Known>) -> MutexGuard<'_, Known> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A host as a checkout sees it: see [`Hosts::standing`].
pub(crate) struct Standing {
    pub stale: bool,
    pub fenced: Option<String>,
    pub lagging: bool,
}

/// What a successful connection found on the server.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Seen {
    pub standby: bool,
    pub timeline: Option<u32>,
    /// The primary's insert position, or the standby's replay position.
    pub lsn: Option<Lsn>,
}

impl Hosts {
    /// The hosts of a URL: `(name, port)` in the URL's order.
    pub(crate) fn new(hosts: Vec<(String, u16)>, recheck: Duration) -> Hosts {
        Hosts {
            entries: hosts
                .into_iter()
                .map(|(name, port)| Entry {
                    name,
                    port,
                    known: Mutex::new(Known::default()),
                })
                .collect(),
            recheck,
            max_timeline: AtomicU32::new(0),
            primary_lsn: AtomicU64::new(0),
            evicted_at: Mutex::new(None),
            schema_epoch: AtomicU64::new(0),
        }
    }

    /// See [`Hosts::schema_changed`].
    pub(crate) fn schema_epoch(&self) -> u64 {
        self.schema_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// DDL ran: every connection prepares its statements again.
    pub(crate) fn schema_changed(&self) {
        self.schema_epoch
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// `DB_HOST_RECHECK`.
    pub(crate) fn recheck(&self) -> Duration {
        self.recheck
    }

    /// How many hosts the URL names.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// `host:port` of host `i`, for messages.
    pub(crate) fn name(&self, i: usize) -> String {
        let e = &self.entries[i];
        format!("{}:{}", e.name, e.port)
    }

    /// Whether an attempt may try host `i` now. `last_resort`: no host that
    /// is up qualified, so a down host is tried before its recheck time (by
    /// one attempt at a time). With one host, it is always tried.
    pub(crate) fn admit(&self, i: usize, last_resort: bool, for_writes: bool) -> Admission<'_> {
        let e = &self.entries[i];
        if self.entries.len() == 1 {
            return Admission::Try(None);
        }
        let mut k = lock(&e.known);
        let no_writes = for_writes && k.no_writes_until.is_some_and(|t| Instant::now() < t);
        if (k.fenced.is_some() || no_writes) && !last_resort {
            return Admission::Skip;
        }
        if !k.down {
            return Admission::Try(None);
        }
        let due = k.checked.map_or(true, |t| t.elapsed() >= self.recheck);
        if k.probing || !(due || last_resort) {
            return Admission::Skip;
        }
        k.probing = true;
        Admission::Try(Some(Probe { entry: e }))
    }

    /// Whether host `i` is skipped in the first pass (so that a last-resort
    /// pass is worth making).
    pub(crate) fn is_skipped(&self, i: usize) -> bool {
        let k = lock(&self.entries[i].known);
        (k.down || k.fenced.is_some()) && !k.probing
    }

    /// Host `i` took a connection: notes its role, timeline and position.
    /// `Err` when it is a primary on an older timeline than one already
    /// seen (an old primary restarted after a failover): it is fenced.
    pub(crate) fn connected(&self, i: usize, seen: Seen) -> Result<(), Error> {
        let e = &self.entries[i];
        let mut k = lock(&e.known);
        k.standby = Some(seen.standby);
        k.down = false;
        k.last_error = None;
        k.checked = Some(Instant::now());
        if seen.standby {
            // an old primary rebuilt as a standby follows the new timeline
            k.fenced = None;
            if let Some(l) = seen.lsn {
                self.note_replay(&mut k, l);
            }
            return Ok(());
        }
        k.replay_lsn = None;
        if let Some(l) = seen.lsn {
            self.primary_lsn.fetch_max(l, Relaxed);
        }
        let Some(tl) = seen.timeline else {
            return Ok(());
        };
        k.timeline = Some(tl);
        let max = self.max_timeline.fetch_max(tl, Relaxed).max(tl);
        if tl < max {
            let why = format!(
                "{}:{} is a primary on timeline {tl}, but a primary on timeline {max} was seen: \
                 it is an old primary that came back after a failover (its data may have \
                 diverged), so dbmux never uses it; rebuild it as a standby (pg_rewind or \
                 pg_basebackup)",
                e.name, e.port
            );
            k.fenced = Some(why.clone());
            log::error!(target: "dbmux::postgres", "{why}");
            return Err(Error::new(ErrorCode::ConnectFailed, why));
        }
        k.fenced = None;
        Ok(())
    }

    /// An attempt on host `i` failed with `e`. A connection-level failure
    /// (refused, timed out, reset) marks the host down.
    pub(crate) fn failed(&self, i: usize, e: &Error) {
        let mut k = lock(&self.entries[i].known);
        if e.code() == ErrorCode::ConnectFailed && e.is_transient() {
            k.down = true;
        }
        k.last_error = Some(e.to_string());
        k.checked = Some(Instant::now());
    }

    /// Host `i` refused a write as read-only: connections to it opened
    /// before now are not used again, and the pool for writes avoids it for
    /// `DB_HOST_RECHECK` while another host can serve.
    pub(crate) fn refused_write(&self, i: usize) {
        let mut k = lock(&self.entries[i].known);
        let now = Instant::now();
        k.stale_before = Some(now);
        k.no_writes_until = Some(now + self.recheck);
        drop(k);
        self.note_eviction();
    }

    fn note_eviction(&self) {
        *self.evicted_at.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }

    /// How long ago a host's connections were last dropped.
    pub(crate) fn since_eviction(&self) -> Option<Duration> {
        self.evicted_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map(|t| t.elapsed())
    }

    /// Connections to host `i` opened before now are not used again.
    pub(crate) fn evict(&self, i: usize) {
        lock(&self.entries[i].known).stale_before = Some(Instant::now());
        self.note_eviction();
    }

    /// What a checkout asks of host `i` for a connection opened at `born`,
    /// under one lock: is the connection stale, is the host fenced (why),
    /// and does it lag (`now` is the checkout's instant).
    pub(crate) fn standing(&self, i: usize, born: Instant, now: Instant) -> Standing {
        let k = lock(&self.entries[i].known);
        Standing {
            stale: k.stale_before.is_some_and(|t| born <= t),
            fenced: k.fenced.clone(),
            lagging: k.lagging_until.is_some_and(|t| now < t),
        }
    }

    /// The highest WAL position seen on a primary (0 when none yet).
    pub(crate) fn primary_lsn(&self) -> Lsn {
        self.primary_lsn.load(Relaxed)
    }

    /// A primary's WAL position seen now (a write token, a health check).
    pub(crate) fn note_primary_lsn(&self, lsn: Lsn) {
        self.primary_lsn.fetch_max(lsn, Relaxed);
    }

    fn note_replay(&self, k: &mut Known, replay: Lsn) {
        k.replay_lsn = Some(k.replay_lsn.map_or(replay, |r| r.max(replay)));
    }

    /// Standby `i` has replayed up to `replay` (and `received` WAL): its lag
    /// is what the newest WAL seen anywhere is ahead of it.
    pub(crate) fn note_standby(&self, i: usize, received: Option<Lsn>, replay: Lsn) {
        if let Some(r) = received {
            // a standby has at least received what its primary wrote
            self.primary_lsn.fetch_max(r, Relaxed);
        }
        let mut k = lock(&self.entries[i].known);
        self.note_replay(&mut k, replay);
    }

    /// The replay position last measured on standby `i`.
    pub(crate) fn replay_lsn(&self, i: usize) -> Option<Lsn> {
        lock(&self.entries[i].known).replay_lsn
    }

    /// Standby `i`'s lag (bytes, replay delay) if measured less than `reuse` ago.
    pub(crate) fn recent_lag(&self, i: usize, reuse: Duration) -> Option<(u64, Duration)> {
        lock(&self.entries[i].known)
            .lag
            .filter(|(_, _, at)| at.elapsed() < reuse)
            .map(|(b, d, _)| (b, d))
    }

    /// Notes standby `i`'s lag as measured now.
    pub(crate) fn note_lag(&self, i: usize, bytes: u64, delay: Duration) {
        lock(&self.entries[i].known).lag = Some((bytes, delay, Instant::now()));
    }

    /// Reads are not sent to host `i` for `d` (it lags too much).
    pub(crate) fn set_lagging(&self, i: usize, d: Duration) {
        lock(&self.entries[i].known).lagging_until = Some(Instant::now() + d);
    }

    /// Whether reads avoid host `i` now.
    pub(crate) fn is_lagging(&self, i: usize) -> bool {
        lock(&self.entries[i].known)
            .lagging_until
            .is_some_and(|t| Instant::now() < t)
    }

    /// Every host as health reports it.
    pub(crate) fn snapshot(&self) -> Vec<HostHealth> {
        let primary = self.primary_lsn.load(Relaxed);
        self.entries
            .iter()
            .map(|e| {
                let k = lock(&e.known);
                let state = if k.fenced.is_some() {
                    HostState::Fenced
                } else if k.down {
                    HostState::Down
                } else if k.checked.is_some() {
                    HostState::Up
                } else {
                    HostState::Unchecked
                };
                HostHealth {
                    host: e.name.clone(),
                    port: e.port,
                    role: match k.standby {
                        Some(true) => HostRole::Standby,
                        Some(false) => HostRole::Primary,
                        None => HostRole::Unknown,
                    },
                    state,
                    last_error: k.fenced.clone().or_else(|| k.last_error.clone()),
                    checked_ms_ago: k.checked.map(|t| t.elapsed().as_millis() as u64),
                    timeline: k.timeline,
                    replay_lag_bytes: match (k.standby, k.replay_lsn) {
                        (Some(true), Some(r)) => Some(primary.saturating_sub(r)),
                        _ => None,
                    },
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_are_parsed_from_their_text_form() {
        assert_eq!(parse_lsn("16/B374D848"), Some(0x16_B374_D848));
        assert_eq!(parse_lsn("0/0"), Some(0));
        assert_eq!(parse_lsn("nonsense"), None);
        assert_eq!(parse_lsn("1/"), None);
    }

    fn two() -> Hosts {
        Hosts::new(
            vec![("a".into(), 5432), ("b".into(), 5433)],
            Duration::from_millis(200),
        )
    }

    fn refused() -> Error {
        Error::new(ErrorCode::ConnectFailed, "connection refused")
    }

    #[test]
    fn a_failed_host_is_skipped_until_its_recheck_then_probed_once() {
        let h = two();
        h.failed(0, &refused());
        assert!(matches!(h.admit(0, false, true), Admission::Skip));
        assert!(h.is_skipped(0));
        // as a last resort it is tried, by one attempt at a time
        let probe = h.admit(0, true, true);
        assert!(matches!(probe, Admission::Try(Some(_))));
        assert!(matches!(h.admit(0, true, true), Admission::Skip));
        drop(probe);
        std::thread::sleep(Duration::from_millis(220));
        let again = h.admit(0, false, true);
        assert!(matches!(again, Admission::Try(Some(_))));
        drop(again);
        h.connected(0, Seen::default()).unwrap();
        assert!(matches!(h.admit(0, false, true), Admission::Try(None)));
        let s = h.snapshot();
        assert_eq!((s[0].role, s[0].state), (HostRole::Primary, HostState::Up));
        assert_eq!(
            (s[1].role, s[1].state),
            (HostRole::Unknown, HostState::Unchecked)
        );
    }

    #[test]
    fn a_primary_on_an_older_timeline_is_fenced() {
        let h = two();
        let primary = |tl| Seen {
            standby: false,
            timeline: Some(tl),
            lsn: None,
        };
        h.connected(1, primary(2)).unwrap();
        let e = h.connected(0, primary(1)).unwrap_err();
        assert!(e.to_string().contains("timeline 1"), "{e}");
        assert!(e.to_string().contains("timeline 2"), "{e}");
        assert!(h
            .standing(0, Instant::now(), Instant::now())
            .fenced
            .is_some());
        assert_eq!(h.snapshot()[0].state, HostState::Fenced);
        assert!(matches!(h.admit(0, false, true), Admission::Skip));
        // rebuilt as a standby of the new primary, it is used again
        let standby = Seen {
            standby: true,
            timeline: None,
            lsn: None,
        };
        h.connected(0, standby).unwrap();
        assert!(h
            .standing(0, Instant::now(), Instant::now())
            .fenced
            .is_none());
        assert!(matches!(h.admit(0, false, true), Admission::Try(None)));
    }

    #[test]
    fn one_host_is_always_tried() {
        let h = Hosts::new(vec![("a".into(), 5432)], Duration::from_secs(10));
        h.failed(0, &refused());
        assert!(matches!(h.admit(0, false, true), Admission::Try(None)));
    }
}
