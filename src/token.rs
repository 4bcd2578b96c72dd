//! [`WriteToken`]: where a committed write is, so that a later read can ask
//! for a replica that has it (read-your-writes).

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, ErrorCode};

/// The position of a committed write: on PostgreSQL the primary's WAL
/// position after the commit and its timeline; on SQLite a trivial token
/// (every reader of the one file sees every commit).
///
/// Get one from [`Connection::write_token`](crate::Connection::write_token)
/// after a committed write, and pass it to
/// [`Manager::get_read_after`](crate::Manager::get_read_after) to read on a
/// standby that has replayed it. It prints as a short string (`pg:2:0/3000148`,
/// `sqlite`) and parses back, so it can travel in a cookie, a header or a
/// job's payload.
///
/// ```
/// let t: dbmux::WriteToken = "pg:2:16/B374D848".parse()?;
/// assert_eq!(t.to_string(), "pg:2:16/B374D848");
/// assert!("pg:2:nonsense".parse::<dbmux::WriteToken>().is_err());
/// # Ok::<(), dbmux::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WriteToken(Kind);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Sqlite,
    Postgres { timeline: u32, lsn: u64 },
}

impl WriteToken {
    /// The token of a SQLite write.
    pub(crate) fn sqlite() -> WriteToken {
        WriteToken(Kind::Sqlite)
    }

    /// The token of a PostgreSQL write at `lsn` on `timeline`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn postgres(timeline: u32, lsn: u64) -> WriteToken {
        WriteToken(Kind::Postgres { timeline, lsn })
    }

    /// The WAL position, for a PostgreSQL token.
    pub fn lsn(&self) -> Option<u64> {
        match self.0 {
            Kind::Postgres { lsn, .. } => Some(lsn),
            Kind::Sqlite => None,
        }
    }

    /// The timeline of the primary that took the write, for a PostgreSQL
    /// token.
    pub fn timeline(&self) -> Option<u32> {
        match self.0 {
            Kind::Postgres { timeline, .. } => Some(timeline),
            Kind::Sqlite => None,
        }
    }

    /// The backend the token is from.
    pub fn backend(&self) -> crate::url::Backend {
        match self.0 {
            Kind::Sqlite => crate::url::Backend::Sqlite,
            Kind::Postgres { .. } => crate::url::Backend::Postgres,
        }
    }
}

impl fmt::Display for WriteToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Kind::Sqlite => f.write_str("sqlite"),
            Kind::Postgres { timeline, lsn } => {
                write!(f, "pg:{timeline}:{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
            }
        }
    }
}

impl FromStr for WriteToken {
    type Err = Error;

    fn from_str(s: &str) -> Result<WriteToken, Error> {
        let bad = || {
            Error::new(
                ErrorCode::InvalidParameter,
                format!(
                    "{:?} is not a write token: expected `sqlite` or `pg:TIMELINE:LSN` (as \
                     Connection::write_token prints it, e.g. pg:1:0/3000148)",
                    s.chars().take(64).collect::<String>()
                ),
            )
        };
        let t = s.trim();
        if t == "sqlite" {
            return Ok(WriteToken::sqlite());
        }
        let rest = t.strip_prefix("pg:").ok_or_else(bad)?;
        let (tl, lsn) = rest.split_once(':').ok_or_else(bad)?;
        let timeline = tl.parse::<u32>().map_err(|_| bad())?;
        let (hi, lo) = lsn.split_once('/').ok_or_else(bad)?;
        let hi = u32::from_str_radix(hi, 16).map_err(|_| bad())?;
        let lo = u32::from_str_radix(lo, 16).map_err(|_| bad())?;
        Ok(WriteToken(Kind::Postgres {
            timeline,
            lsn: (u64::from(hi) << 32) | u64::from(lo),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        for s in ["sqlite", "pg:1:0/3000148", "pg:7:FFFFFFFF/FFFFFFFF"] {
            assert_eq!(s.parse::<WriteToken>().unwrap().to_string(), s);
        }
        let t: WriteToken = "pg:3:1/0".parse().unwrap();
        assert_eq!((t.timeline(), t.lsn()), (Some(3), Some(1 << 32)));
        for bad in [
            "",
            "pg",
            "pg:1",
            "pg:x:0/1",
            "pg:1:01",
            "pg:1:0/zz",
            "mysql",
        ] {
            let e = bad.parse::<WriteToken>().unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidParameter, "{bad}");
            assert!(e.to_string().contains("pg:TIMELINE:LSN"), "{e}");
        }
    }
}
