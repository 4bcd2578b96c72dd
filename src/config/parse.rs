//! Value parsers for settings: counts, booleans, durations, sizes. Their errors
//! name the setting, the value and what is allowed.

use std::time::Duration;

use super::MAX_POOL;
use crate::error::{Error, Result};

pub(super) fn parse_count(setting: &str, v: &str) -> Result<u32> {
    match v.parse::<i64>() {
        Ok(n) if (0..=MAX_POOL as i64).contains(&n) => Ok(n as u32),
        Ok(n) if n < 0 => Err(Error::config(
            setting,
            v,
            "must be a whole number from 0 to 10000 (dbmux has no 'unlimited'; give a number)",
        )),
        _ => Err(Error::config(
            setting,
            v,
            "must be a whole number from 0 to 10000",
        )),
    }
}

/// Parses a boolean setting: true/false, 1/0, yes/no, on/off.
pub(super) fn parse_bool(setting: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(
            setting,
            v,
            "must be true/false, 1/0, yes/no or on/off",
        )),
    }
}

/// Parses a duration: a bare number is seconds (`30`, `0.5`); otherwise a
/// number with a unit (`500ms`, `5s`, `2m`, `1h`).
pub(super) fn parse_duration(setting: &str, v: &str) -> Result<Duration> {
    const ALLOWED: &str = "must be a duration: seconds as a number (30, 0.5) or with a unit \
                           (500ms, 5s, 2m, 1h)";
    let t = v.trim();
    if let Ok(secs) = t.parse::<f64>() {
        if secs.is_finite() && (0.0..=1e9).contains(&secs) {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(Error::config(setting, v, ALLOWED));
    }
    humantime::parse_duration(t).map_err(|_| Error::config(setting, v, ALLOWED))
}

/// A duration whose variable is named in milliseconds (`..._MS`): a bare
/// number is milliseconds (`250`, `0.5`); with a unit it is read as every
/// other duration (`2s`, `500ms`).
pub(super) fn parse_ms_duration(setting: &str, v: &str) -> Result<Duration> {
    match v.trim().parse::<f64>() {
        Ok(ms) if ms.is_finite() && (0.0..=1e12).contains(&ms) => {
            Ok(Duration::from_secs_f64(ms / 1000.0))
        }
        Ok(_) => Err(Error::config(
            setting,
            v,
            "must be a duration: milliseconds as a number (250) or with a unit (2s, 500ms)",
        )),
        Err(_) => parse_duration(setting, v).map_err(|_| {
            Error::config(
                setting,
                v,
                "must be a duration: milliseconds as a number (250) or with a unit (2s, 500ms)",
            )
        }),
    }
}

/// Like [`parse_duration`], but `0` and `-1` mean "off".
pub(super) fn parse_optional_duration(setting: &str, v: &str) -> Result<Option<Duration>> {
    if v.trim() == "-1" {
        return Ok(None);
    }
    let d = parse_duration(setting, v)?;
    Ok(if d.is_zero() { None } else { Some(d) })
}

/// A size in bytes, as a number or with a unit (`65536`, `64kB`, `16MB`,
/// `1GB`: 1024-based, as PostgreSQL's; `KiB`, `MiB`, `GiB` too). `None`
/// when `v` is not written that way (the caller may try another reading);
/// an overflow is an error with `allowed`.
pub(super) fn parse_bytes(setting: &str, v: &str, allowed: &str) -> Result<Option<u64>> {
    let t = v.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "kB" | "KB" | "KiB" => 1 << 10,
        "MB" | "MiB" => 1 << 20,
        "GB" | "GiB" => 1 << 30,
        _ => return Ok(None),
    };
    let Ok(n) = num.parse::<u64>() else {
        return Ok(None);
    };
    n.checked_mul(scale)
        .map(Some)
        .ok_or_else(|| Error::config(setting, v, allowed))
}
