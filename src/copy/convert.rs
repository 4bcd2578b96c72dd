//! SQLite values to PostgreSQL's COPY text format, by the target column's
//! type: checked here, so that a value that does not fit is an error naming
//! its row and column instead of a server error in the middle of a stream.

use rusqlite::types::ValueRef;

/// What a target column takes, from its `pg_type.typname`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bool,
    /// An integer type with its range.
    Int(i64, i64),
    Float,
    Numeric,
    Text,
    Date,
    Time,
    Timestamp,
    TimestampTz,
    Bytea,
    Json,
    Uuid,
    /// Anything else (enums, inet, arrays, ...): text, parsed by the server.
    Other,
}

impl Kind {
    /// The kind of the PostgreSQL type named `typname`.
    pub(crate) fn of(typname: &str) -> Kind {
        match typname {
            "bool" => Kind::Bool,
            "int2" => Kind::Int(i16::MIN as i64, i16::MAX as i64),
            "int4" => Kind::Int(i32::MIN as i64, i32::MAX as i64),
            "int8" => Kind::Int(i64::MIN, i64::MAX),
            "float4" | "float8" => Kind::Float,
            "numeric" => Kind::Numeric,
            "text" | "varchar" | "bpchar" | "name" | "citext" => Kind::Text,
            "date" => Kind::Date,
            "time" | "timetz" => Kind::Time,
            "timestamp" => Kind::Timestamp,
            "timestamptz" => Kind::TimestampTz,
            "bytea" => Kind::Bytea,
            "json" | "jsonb" => Kind::Json,
            "uuid" => Kind::Uuid,
            _ => Kind::Other,
        }
    }
}

/// SQLite's name for a value's type, for messages.
pub(crate) fn sqlite_type(v: ValueRef<'_>) -> &'static str {
    match v {
        ValueRef::Null => "NULL",
        ValueRef::Integer(_) => "integer",
        ValueRef::Real(_) => "real",
        ValueRef::Text(_) => "text",
        ValueRef::Blob(_) => "blob",
    }
}

/// Appends `s` escaped for COPY's text format.
fn push_escaped(out: &mut Vec<u8>, s: &[u8]) {
    let mut last = 0;
    for (i, &b) in s.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            _ => continue,
        };
        out.extend_from_slice(&s[last..i]);
        out.extend_from_slice(esc);
        last = i + 1;
    }
    out.extend_from_slice(&s[last..]);
}

fn push_display(out: &mut Vec<u8>, v: impl std::fmt::Display) {
    use std::io::Write;
    let _ = write!(out, "{v}");
}

fn push_float(out: &mut Vec<u8>, f: f64) {
    if f.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if f.is_infinite() {
        out.extend_from_slice(if f > 0.0 { b"Infinity" } else { b"-Infinity" });
    } else {
        // the shortest text that reads back as the same double
        push_display(out, f);
    }
}

fn digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// `[+-]digits[.digits][e[+-]digits]` (or NaN): what numeric reads exactly.
fn signed(s: &str) -> &str {
    s.strip_prefix(['+', '-']).unwrap_or(s)
}

fn is_decimal(s: &str) -> bool {
    let s = s.trim();
    if s.eq_ignore_ascii_case("nan") {
        return true;
    }
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (signed(&s[..i]), Some(signed(&s[i + 1..]))),
        None => (signed(s), None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((a, b)) => {
            (a.is_empty() || digits(a.as_bytes()))
                && (b.is_empty() || digits(b.as_bytes()))
                && !(a.is_empty() && b.is_empty())
        }
        None => digits(mantissa.as_bytes()),
    };
    mantissa_ok && exp.map_or(true, |e| digits(e.as_bytes()))
}

/// `YYYY-MM-DD`.
fn is_iso_date(b: &[u8]) -> bool {
    b.len() == 10
        && digits(&b[0..4])
        && b[4] == b'-'
        && digits(&b[5..7])
        && b[7] == b'-'
        && digits(&b[8..10])
}

/// `HH:MM[:SS[.fraction]]`, then what follows (a zone, or nothing).
fn iso_time(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 5 || !digits(&b[0..2]) || b[2] != b':' || !digits(&b[3..5]) {
        return None;
    }
    let mut i = 5;
    if b.len() >= 8 && b[5] == b':' && digits(&b[6..8]) {
        i = 8;
        if b.get(8) == Some(&b'.') {
            i = 9;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == 9 {
                return None;
            }
        }
    }
    Some(&b[i..])
}

/// A zone suffix: `Z`, `±HH`, `±HHMM`, `±HH:MM` (with an optional space).
fn is_zone(z: &[u8]) -> bool {
    let z = z.strip_prefix(b" ").unwrap_or(z);
    if z == b"Z" || z == b"z" {
        return true;
    }
    let Some(rest) = z.strip_prefix(b"+").or_else(|| z.strip_prefix(b"-")) else {
        return false;
    };
    match rest.len() {
        2 => digits(rest),
        4 => digits(rest),
        5 => digits(&rest[..2]) && rest[2] == b':' && digits(&rest[3..]),
        _ => false,
    }
}

/// ISO 8601 date and time (`T` or a space between), its zone (possibly
/// empty) if it is one.
fn iso_timestamp(b: &[u8]) -> Option<&[u8]> {
    if b.len() < 16 || !is_iso_date(&b[..10]) || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    iso_time(&b[11..])
}

/// Why a value does not fit (the type it would need), for the error.
pub(crate) type Misfit = &'static str;

/// Appends `v` as the COPY text of a `kind` column, or says why it does
/// not fit.
pub(crate) fn push(out: &mut Vec<u8>, kind: Kind, v: ValueRef<'_>) -> Result<(), Misfit> {
    match (kind, v) {
        (_, ValueRef::Null) => out.extend_from_slice(b"\\N"),
        (Kind::Bool, ValueRef::Integer(0)) => out.push(b'f'),
        (Kind::Bool, ValueRef::Integer(1)) => out.push(b't'),
        (Kind::Bool, ValueRef::Text(t)) => match t.to_ascii_lowercase().as_slice() {
            b"t" | b"true" | b"1" => out.push(b't'),
            b"f" | b"false" | b"0" => out.push(b'f'),
            _ => return Err("0 or 1 (or the text true / false)"),
        },
        (Kind::Bool, _) => return Err("0 or 1 (or the text true / false)"),
        (Kind::Int(lo, hi), ValueRef::Integer(i)) if i >= lo && i <= hi => push_display(out, i),
        (Kind::Int(lo, hi), ValueRef::Real(f))
            if f.fract() == 0.0 && f >= lo as f64 && f <= hi as f64 =>
        {
            push_display(out, f as i64)
        }
        (Kind::Int(..), ValueRef::Integer(_) | ValueRef::Real(_)) => {
            return Err("an integer within the column type's range")
        }
        (Kind::Int(..), _) => return Err("an integer"),
        (Kind::Float, ValueRef::Integer(i)) => push_display(out, i),
        (Kind::Float, ValueRef::Real(f)) => push_float(out, f),
        (Kind::Float, _) => return Err("a number"),
        (Kind::Numeric, ValueRef::Integer(i)) => push_display(out, i),
        (Kind::Numeric, ValueRef::Real(f)) if f.is_finite() => push_display(out, f),
        (Kind::Numeric, ValueRef::Text(t)) if std::str::from_utf8(t).is_ok_and(is_decimal) => {
            out.extend_from_slice(t.trim_ascii())
        }
        (Kind::Numeric, _) => return Err("a number, or text holding a decimal number"),
        (Kind::Text | Kind::Other, ValueRef::Text(t)) => push_escaped(out, t),
        (Kind::Text, ValueRef::Integer(i)) => push_display(out, i),
        (Kind::Text, ValueRef::Real(f)) => push_float(out, f),
        (Kind::Text, ValueRef::Blob(_)) => return Err("text (a blob goes to bytea)"),
        (Kind::Other, _) => return Err("text that the column's type reads"),
        (Kind::Date, ValueRef::Text(t)) if is_iso_date(t) => out.extend_from_slice(t),
        (Kind::Date, _) => return Err("an ISO date as text (YYYY-MM-DD)"),
        (Kind::Time, ValueRef::Text(t))
            if iso_time(t).is_some_and(|z| z.is_empty() || is_zone(z)) =>
        {
            out.extend_from_slice(t)
        }
        (Kind::Time, _) => return Err("an ISO time as text (HH:MM[:SS[.fff]])"),
        (Kind::Timestamp, ValueRef::Text(t)) => match iso_timestamp(t) {
            Some([]) => out.extend_from_slice(t),
            // UTC written out: the same instant, kept as the wall time
            Some(b"Z" | b"z") => out.extend_from_slice(&t[..t.len() - 1]),
            Some(_) => {
                return Err(
                    "an ISO timestamp without a zone (the column is timestamp without \
                            time zone; make it timestamptz to keep the offset)",
                )
            }
            None => return Err("an ISO timestamp as text (YYYY-MM-DD HH:MM[:SS[.fff]])"),
        },
        (Kind::Timestamp, _) => {
            return Err("an ISO timestamp as text (YYYY-MM-DD HH:MM[:SS[.fff]])")
        }
        (Kind::TimestampTz, ValueRef::Text(t)) => match iso_timestamp(t) {
            // no zone: UTC, as SQLite's datetime('now') and CURRENT_TIMESTAMP write it
            Some([]) => {
                out.extend_from_slice(t);
                out.extend_from_slice(b"+00");
            }
            Some(z) if is_zone(z) => out.extend_from_slice(t),
            _ => return Err("an ISO timestamp as text (YYYY-MM-DD HH:MM[:SS[.fff]][zone])"),
        },
        (Kind::TimestampTz, _) => {
            return Err("an ISO timestamp as text (YYYY-MM-DD HH:MM[:SS[.fff]][zone])")
        }
        (Kind::Bytea, ValueRef::Blob(b) | ValueRef::Text(b)) => {
            // \x and hex; the backslash itself escaped for COPY
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.reserve(3 + 2 * b.len());
            out.extend_from_slice(b"\\\\x");
            for &x in b {
                out.push(HEX[(x >> 4) as usize]);
                out.push(HEX[(x & 15) as usize]);
            }
        }
        (Kind::Bytea, _) => return Err("a blob"),
        (Kind::Json, ValueRef::Text(t)) => {
            if serde_json::from_slice::<serde::de::IgnoredAny>(t).is_err() {
                return Err("text holding valid JSON");
            }
            push_escaped(out, t)
        }
        (Kind::Json, ValueRef::Integer(i)) => push_display(out, i),
        (Kind::Json, ValueRef::Real(f)) if f.is_finite() => push_display(out, f),
        (Kind::Json, _) => return Err("text holding valid JSON"),
        (Kind::Uuid, ValueRef::Text(t)) if is_uuid_text(t) => out.extend_from_slice(t),
        (Kind::Uuid, ValueRef::Blob(b)) if b.len() == 16 => {
            for (i, x) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    out.push(b'-');
                }
                push_display(out, format_args!("{x:02x}"));
            }
        }
        (Kind::Uuid, _) => return Err("a UUID as text, or a 16-byte blob"),
    }
    Ok(())
}

/// 32 hex digits, with or without the four dashes, optionally in braces.
fn is_uuid_text(t: &[u8]) -> bool {
    let t = t
        .strip_prefix(b"{")
        .and_then(|x| x.strip_suffix(b"}"))
        .unwrap_or(t);
    let hex = t.iter().filter(|b| b.is_ascii_hexdigit()).count();
    let dashes = t.iter().filter(|&&b| b == b'-').count();
    hex == 32
        && hex + dashes == t.len()
        && (dashes == 0 || (dashes == 4 && [8, 13, 18, 23].iter().all(|&i| t[i] == b'-')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(kind: Kind, v: ValueRef<'_>) -> Result<String, Misfit> {
        let mut out = Vec::new();
        push(&mut out, kind, v).map(|()| String::from_utf8(out).unwrap())
    }

    #[test]
    fn values_become_the_target_types_text() {
        use ValueRef::*;
        let ok = [
            (Kind::Bool, Integer(1), "t"),
            (Kind::Bool, Integer(0), "f"),
            (Kind::Bool, Text(b"FALSE"), "f"),
            (
                Kind::Int(i32::MIN as i64, i32::MAX as i64),
                Integer(-7),
                "-7",
            ),
            (Kind::Int(i64::MIN, i64::MAX), Real(3.0), "3"),
            (Kind::Float, Real(0.1), "0.1"),
            (Kind::Float, Real(f64::INFINITY), "Infinity"),
            (
                Kind::Numeric,
                Text(b"12345678901234567890.123456789"),
                "12345678901234567890.123456789",
            ),
            (Kind::Numeric, Real(2.5), "2.5"),
            (Kind::Numeric, Integer(i64::MAX), "9223372036854775807"),
            (Kind::Text, Text(b"a\tb\\c\nd"), "a\\tb\\\\c\\nd"),
            (Kind::Text, Integer(42), "42"),
            (Kind::Date, Text(b"2024-02-29"), "2024-02-29"),
            (Kind::Time, Text(b"13:45:00.5"), "13:45:00.5"),
            (
                Kind::Timestamp,
                Text(b"2024-02-29 13:45:00"),
                "2024-02-29 13:45:00",
            ),
            (
                Kind::Timestamp,
                Text(b"2024-02-29T13:45:00.123Z"),
                "2024-02-29T13:45:00.123",
            ),
            (
                Kind::TimestampTz,
                Text(b"2024-02-29 13:45:00"),
                "2024-02-29 13:45:00+00",
            ),
            (
                Kind::TimestampTz,
                Text(b"2024-02-29T13:45:00+02:00"),
                "2024-02-29T13:45:00+02:00",
            ),
            (Kind::Bytea, Blob(&[0, 1, 254, 255]), "\\\\x0001feff"),
            (
                Kind::Json,
                Text(b"{\"a\": [1, \"x\\ny\"]}"),
                "{\"a\": [1, \"x\\\\ny\"]}",
            ),
            (
                Kind::Uuid,
                Text(b"6f1c2a9e-0b7d-4e3a-9a51-1f2e3d4c5b6a"),
                "6f1c2a9e-0b7d-4e3a-9a51-1f2e3d4c5b6a",
            ),
            (
                Kind::Uuid,
                Blob(&[0x6f; 16]),
                "6f6f6f6f-6f6f-6f6f-6f6f-6f6f6f6f6f6f",
            ),
            (Kind::Other, Text(b"10.0.0.1"), "10.0.0.1"),
            (Kind::Int(0, 1), Null, "\\N"),
        ];
        for (kind, v, want) in ok {
            assert_eq!(text(kind, v).as_deref(), Ok(want), "{kind:?} {v:?}");
        }
        let bad = [
            (Kind::Int(i64::MIN, i64::MAX), Text(b"abc")),
            (Kind::Int(i16::MIN as i64, i16::MAX as i64), Integer(40_000)),
            (Kind::Int(i64::MIN, i64::MAX), Real(2.5)),
            (Kind::Bool, Integer(2)),
            (Kind::Numeric, Text(b"12,5")),
            (Kind::Date, Text(b"01/02/2024")),
            (Kind::Timestamp, Text(b"2024-02-29 13:45:00+02")),
            (Kind::TimestampTz, Integer(1_700_000_000)),
            (Kind::Json, Text(b"{not json")),
            (Kind::Uuid, Text(b"not-a-uuid")),
            (Kind::Text, Blob(b"x")),
            (Kind::Float, Text(b"1.5")),
        ];
        for (kind, v) in bad {
            assert!(text(kind, v).is_err(), "{kind:?} {v:?} should not fit");
        }
    }
}
