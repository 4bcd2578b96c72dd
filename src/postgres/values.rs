//! Values to and from PostgreSQL.
//!
//! Parameters are sent in PostgreSQL's *text* format (except bytea), so the
//! server converts them to whatever type it inferred for the parameter: an
//! `Integer` binds to `int2`/`int4`/`int8`/`numeric`, a `Text` to `date`,
//! `timestamptz`, `uuid`, `json`, an enum, ... exactly as a literal would.
//! Results arrive in binary and are decoded here without losing precision:
//! `numeric` stays exact as text, timestamps become ISO 8601 text.

use std::error::Error as StdError;
use std::fmt::Write as _;

use tokio_postgres::types::Format;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type};

use crate::value::{hex, Value, ValueRef};

type BoxError = Box<dyn StdError + Sync + Send>;

/// A parameter value that cannot be sent for its parameter's type. Its own
/// type, so that the error is told apart by structure
/// ([`ErrorCode::InvalidParameter`](crate::ErrorCode::InvalidParameter)).
#[derive(Debug)]
pub(crate) struct BindError(String);

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for BindError {}

fn bind_error(msg: impl Into<String>) -> BoxError {
    Box::new(BindError(msg.into()))
}

fn float_text(r: f64) -> String {
    if r.is_nan() {
        "NaN".into()
    } else if r.is_infinite() {
        if r > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        // Rust prints the shortest text that reads back to the same f64
        format!("{r:?}")
    }
}

impl ToSql for Value {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        let bytea = *ty == Type::BYTEA;
        match self {
            Value::Null => return Ok(IsNull::Yes),
            Value::Blob(b) if bytea => out.extend_from_slice(b),
            Value::Text(s) if bytea => out.extend_from_slice(s.as_bytes()),
            // an untyped parameter (`SELECT $1::bytea FROM (VALUES ($1))`)
            // that the server inferred as text: bytea's hex text, which
            // the cast reads back as the same bytes
            Value::Blob(b) if *ty == Type::TEXT || *ty == Type::UNKNOWN => {
                out.extend_from_slice(b"\\x");
                out.extend_from_slice(hex(b).as_bytes());
            }
            Value::Blob(_) => {
                return Err(bind_error(format!(
                    "cannot bind a blob to a parameter of type {}",
                    ty.name()
                )))
            }
            Value::Integer(_) | Value::Real(_) if bytea => {
                return Err(bind_error("cannot bind a number to a bytea parameter"))
            }
            Value::Integer(i) => {
                let _ = write!(out, "{i}");
            }
            Value::Real(r) => out.extend_from_slice(float_text(*r).as_bytes()),
            Value::Text(s) => {
                if s.contains('\0') {
                    return Err(bind_error("PostgreSQL text cannot contain NUL bytes"));
                }
                out.extend_from_slice(s.as_bytes())
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, ty: &Type) -> Format {
        if *ty == Type::BYTEA {
            Format::Binary
        } else {
            Format::Text
        }
    }

    tokio_postgres::types::to_sql_checked!();
}

/// A result cell decoded from PostgreSQL's binary format.
pub(crate) struct PgValue(pub Value);

fn be_i16(b: &[u8], at: usize) -> Result<i16, BoxError> {
    Ok(i16::from_be_bytes(
        b.get(at..at + 2).ok_or("truncated value")?.try_into()?,
    ))
}

fn fixed<const N: usize>(raw: &[u8]) -> Result<[u8; N], BoxError> {
    raw.try_into()
        .map_err(|_| format!("expected {N} bytes, got {}", raw.len()).into())
}

/// `numeric` in binary (base-10000 digits) to exact decimal text.
pub(crate) fn numeric_text(raw: &[u8]) -> Result<String, BoxError> {
    let ndigits = be_i16(raw, 0)? as usize;
    let weight = be_i16(raw, 2)? as i32;
    let sign = be_i16(raw, 4)? as u16;
    let dscale = be_i16(raw, 6)?.max(0) as usize;
    match sign {
        0xC000 => return Ok("NaN".into()),
        0xD000 => return Ok("Infinity".into()),
        0xF000 => return Ok("-Infinity".into()),
        _ => {}
    }
    let digit = |i: i32| -> Result<i16, BoxError> {
        if i < 0 || i as usize >= ndigits {
            Ok(0)
        } else {
            be_i16(raw, 8 + 2 * i as usize)
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    } else {
        for i in 0..=weight {
            let d = digit(i)?;
            if i == 0 {
                let _ = write!(s, "{d}");
            } else {
                let _ = write!(s, "{d:04}");
            }
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut i = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(i)?);
            i += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Ok(s)
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days between 1970-01-01 and PostgreSQL's epoch 2000-01-01.
const PG_EPOCH_DAYS: i64 = 10_957;

fn date_text(days_since_2000: i64) -> String {
    let (y, m, d) = civil_from_days(days_since_2000 + PG_EPOCH_DAYS);
    if y <= 0 {
        format!("{:04}-{m:02}-{d:02} BC", 1 - y)
    } else {
        format!("{y:04}-{m:02}-{d:02}")
    }
}

fn time_text(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (h, mi, s) = (secs / 3600, (secs / 60) % 60, secs % 60);
    let mut t = format!("{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:06}");
        t.push('.');
        t.push_str(f.trim_end_matches('0'));
    }
    t
}

/// `interval` as an ISO 8601 duration, as PostgreSQL's `IntervalStyle =
/// iso_8601` writes it: `P1Y2M3DT4H5M6.5S`, each field with its own sign
/// (`P-1DT2H`), `PT0S` for zero.
pub(crate) fn interval_text(months: i32, days: i32, micros: i64) -> String {
    let mut t = String::from("P");
    let (y, mo) = (months / 12, months % 12);
    for (n, unit) in [
        (i64::from(y), 'Y'),
        (i64::from(mo), 'M'),
        (i64::from(days), 'D'),
    ] {
        if n != 0 {
            let _ = write!(t, "{n}{unit}");
        }
    }
    if micros != 0 {
        t.push('T');
        let (h, rest) = (micros / 3_600_000_000, micros % 3_600_000_000);
        let (mi, rest) = (rest / 60_000_000, rest % 60_000_000);
        if h != 0 {
            let _ = write!(t, "{h}H");
        }
        if mi != 0 {
            let _ = write!(t, "{mi}M");
        }
        if rest != 0 {
            let (s, frac) = (rest / 1_000_000, (rest % 1_000_000).abs());
            let sign = if rest < 0 && s == 0 { "-" } else { "" };
            let _ = write!(t, "{sign}{s}");
            if frac != 0 {
                let f = format!("{frac:06}");
                let _ = write!(t, ".{}", f.trim_end_matches('0'));
            }
            t.push('S');
        }
    }
    if t == "P" {
        t.push_str("T0S");
    }
    t
}

/// `timestamp` (µs since 2000-01-01) to ISO 8601 `YYYY-MM-DDTHH:MM:SS[.ffffff]`.
pub(crate) fn timestamp_text(micros: i64) -> String {
    match micros {
        i64::MAX => "infinity".into(),
        i64::MIN => "-infinity".into(),
        _ => {
            let days = micros.div_euclid(86_400_000_000);
            let rest = micros.rem_euclid(86_400_000_000);
            format!("{}T{}", date_text(days), time_text(rest))
        }
    }
}

fn uuid_text(b: [u8; 16]) -> String {
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// An array in PostgreSQL's text form (`{1,2,NULL}`, `{{a,"b c"}}`), as
/// `col::text` would give it; `int2vector` and `oidvector` as their
/// space-separated text (`sep = " "`, no braces).
fn array_text(ty: &Type, raw: &[u8], sep: &str, braces: bool) -> Result<String, BoxError> {
    let member = match ty.kind() {
        Kind::Array(m) => m.clone(),
        _ if *ty == Type::OID_VECTOR => Type::OID,
        _ => Type::INT2,
    };
    let int = |at: usize| -> Result<i32, BoxError> {
        Ok(i32::from_be_bytes(
            raw.get(at..at + 4).ok_or("truncated array")?.try_into()?,
        ))
    };
    let ndim = usize::try_from(int(0)?).map_err(|_| "bad array dimensions")?;
    let mut dims = Vec::with_capacity(ndim);
    for d in 0..ndim {
        dims.push(usize::try_from(int(12 + d * 8)?).map_err(|_| "bad array dimension")?);
    }
    let mut at = 12 + ndim * 8;
    let mut elems = Vec::new();
    let total: usize = if ndim == 0 { 0 } else { dims.iter().product() };
    for _ in 0..total {
        let len = int(at)?;
        at += 4;
        if len < 0 {
            elems.push("NULL".to_string());
            continue;
        }
        let len = len as usize;
        let bytes = raw.get(at..at + len).ok_or("truncated array element")?;
        at += len;
        let v = cell(&member, bytes)?.into_value();
        elems.push(match v {
            Value::Null => "NULL".into(),
            Value::Integer(i) if member == Type::BOOL => if i != 0 { "t" } else { "f" }.into(),
            Value::Integer(i) => i.to_string(),
            Value::Real(r) => float_text(r),
            Value::Text(t) if braces => quote_element(&t),
            Value::Text(t) => t,
            Value::Blob(b) => quote_element(&format!("\\x{}", hex(&b))),
        });
    }
    if !braces {
        return Ok(elems.join(sep));
    }
    if ndim == 0 {
        return Ok("{}".into());
    }
    // nest the flat elements by the dimensions, innermost last
    fn nest(elems: &[String], dims: &[usize], sep: &str) -> String {
        if dims.len() == 1 {
            return format!("{{{}}}", elems.join(sep));
        }
        let step = elems.len() / dims[0].max(1);
        let parts: Vec<String> = elems
            .chunks(step.max(1))
            .map(|c| nest(c, &dims[1..], sep))
            .collect();
        format!("{{{}}}", parts.join(sep))
    }
    Ok(nest(&elems, &dims, sep))
}

/// An array element as PostgreSQL writes it: quoted (with `\\` and `\"`
/// escaped) when empty, `NULL`-like, or holding a delimiter, brace, quote,
/// backslash or space.
fn quote_element(t: &str) -> String {
    let needs = t.is_empty()
        || t.eq_ignore_ascii_case("NULL")
        || t.chars()
            .any(|c| matches!(c, '{' | '}' | ',' | '"' | '\\') || c.is_whitespace());
    if !needs {
        return t.to_string();
    }
    let mut q = String::with_capacity(t.len() + 2);
    q.push('"');
    for c in t.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// A result cell borrowed from the row buffer where the wire format is the
/// value itself (text, bytea), decoded otherwise.
pub(crate) enum Cell<'a> {
    Ref(ValueRef<'a>),
    Owned(Value),
}

impl Cell<'_> {
    fn into_value(self) -> Value {
        match self {
            Cell::Ref(v) => v.into(),
            Cell::Owned(v) => v,
        }
    }
}

/// Decodes one cell: the single table of PostgreSQL types dbmux reads.
fn cell<'a>(ty: &Type, raw: &'a [u8]) -> Result<Cell<'a>, BoxError> {
    let text = |raw: &'a [u8]| -> Result<Cell<'a>, BoxError> {
        Ok(Cell::Ref(ValueRef::Text(std::str::from_utf8(raw)?)))
    };
    let owned = |v: Value| Ok(Cell::Owned(v));
    match *ty {
        Type::BOOL => owned(Value::Integer(i64::from(
            raw.first().copied().unwrap_or(0) != 0,
        ))),
        Type::INT2 => owned(Value::Integer(i16::from_be_bytes(fixed(raw)?).into())),
        Type::INT4 => owned(Value::Integer(i32::from_be_bytes(fixed(raw)?).into())),
        Type::INT8 => owned(Value::Integer(i64::from_be_bytes(fixed(raw)?))),
        Type::OID => owned(Value::Integer(u32::from_be_bytes(fixed(raw)?).into())),
        Type::FLOAT4 => owned(Value::Real(f32::from_be_bytes(fixed(raw)?).into())),
        Type::FLOAT8 => owned(Value::Real(f64::from_be_bytes(fixed(raw)?))),
        Type::NUMERIC => owned(Value::Text(numeric_text(raw)?)),
        Type::TEXT
        | Type::VARCHAR
        | Type::BPCHAR
        | Type::NAME
        | Type::UNKNOWN
        | Type::JSON
        | Type::XML => text(raw),
        // "char": a NUL byte is the empty value (as its text output)
        Type::CHAR if raw == [0] => text(&[]),
        Type::CHAR => text(raw),
        Type::JSONB => match raw.split_first() {
            Some((1, rest)) => text(rest),
            _ => Err("unsupported jsonb version".into()),
        },
        Type::BYTEA => Ok(Cell::Ref(ValueRef::Blob(raw))),
        Type::UUID => owned(Value::Text(uuid_text(fixed(raw)?))),
        Type::DATE => owned(Value::Text(match i32::from_be_bytes(fixed(raw)?) {
            i32::MAX => "infinity".into(),
            i32::MIN => "-infinity".into(),
            d => date_text(d.into()),
        })),
        Type::TIME => owned(Value::Text(time_text(i64::from_be_bytes(fixed(raw)?)))),
        Type::INTERVAL => {
            let b: [u8; 16] = fixed(raw)?;
            let micros = i64::from_be_bytes(b[..8].try_into()?);
            let days = i32::from_be_bytes(b[8..12].try_into()?);
            let months = i32::from_be_bytes(b[12..].try_into()?);
            owned(Value::Text(interval_text(months, days, micros)))
        }
        Type::TIMESTAMP => owned(Value::Text(timestamp_text(i64::from_be_bytes(fixed(raw)?)))),
        Type::TIMESTAMPTZ => {
            let t = timestamp_text(i64::from_be_bytes(fixed(raw)?));
            owned(Value::Text(if t.ends_with("infinity") {
                t
            } else {
                t + "+00:00"
            }))
        }
        Type::INT2_VECTOR | Type::OID_VECTOR => {
            owned(Value::Text(array_text(ty, raw, " ", false)?))
        }
        _ => match ty.kind() {
            Kind::Array(_) => owned(Value::Text(array_text(ty, raw, ",", true)?)),
            Kind::Enum(_) => text(raw),
            Kind::Domain(inner) => cell(inner, raw),
            _ if ty.name() == "citext" => text(raw),
            _ => Err(format!(
                "dbmux cannot read PostgreSQL type {}; cast the column to text in the \
                 query (e.g. col::text)",
                ty.name()
            )
            .into()),
        },
    }
}

impl<'a> FromSql<'a> for Cell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        cell(ty, raw)
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(Cell::Ref(ValueRef::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl<'a> FromSql<'a> for PgValue {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        cell(ty, raw).map(|c| PgValue(c.into_value()))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgValue(Value::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(ndigits: i16, weight: i16, sign: u16, dscale: i16, digits: &[i16]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [ndigits, weight, sign as i16, dscale] {
            v.extend_from_slice(&x.to_be_bytes());
        }
        for d in digits {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v
    }

    #[test]
    fn intervals_read_as_iso_8601_durations() {
        assert_eq!(interval_text(0, 0, 0), "PT0S");
        assert_eq!(
            interval_text(14, 3, ((4 * 60 + 5) * 60 + 6) * 1_000_000 + 500_000),
            "P1Y2M3DT4H5M6.5S"
        );
        assert_eq!(interval_text(0, -1, 2 * 3_600_000_000), "P-1DT2H");
        assert_eq!(interval_text(0, 0, -1_500_000), "PT-1.5S");
        assert_eq!(interval_text(0, 0, -500_000), "PT-0.5S");
        assert_eq!(interval_text(-1, 0, 0), "P-1M");
    }

    #[test]
    fn numeric_is_exact() {
        // 12345.6789 = [1, 2345, 6789], weight 1, dscale 4
        assert_eq!(
            numeric_text(&numeric(3, 1, 0, 4, &[1, 2345, 6789])).unwrap(),
            "12345.6789"
        );
        // -0.00012 = [1, 2000] weight -1? 0.0001 2 -> digits [1,2000] weight -1, dscale 5
        assert_eq!(
            numeric_text(&numeric(2, -1, 0x4000, 5, &[1, 2000])).unwrap(),
            "-0.00012"
        );
        // 100000000 = [1, 0, 0] weight 2 dscale 0, stored as [1] with weight 2
        assert_eq!(
            numeric_text(&numeric(1, 2, 0, 0, &[1])).unwrap(),
            "100000000"
        );
        assert_eq!(numeric_text(&numeric(0, 0, 0, 2, &[])).unwrap(), "0.00");
        assert_eq!(numeric_text(&numeric(0, 0, 0xC000, 0, &[])).unwrap(), "NaN");
    }

    #[test]
    fn timestamps_are_iso() {
        assert_eq!(timestamp_text(0), "2000-01-01T00:00:00");
        assert_eq!(timestamp_text(-1), "1999-12-31T23:59:59.999999");
        // 2024-02-29 12:34:56.5
        let days = 8825i64; // 2024-02-29 - 2000-01-01
        let us = days * 86_400_000_000 + (12 * 3600 + 34 * 60 + 56) * 1_000_000 + 500_000;
        assert_eq!(timestamp_text(us), "2024-02-29T12:34:56.5");
        assert_eq!(date_text(-730_119), "0001-01-01");
        assert_eq!(
            uuid_text([0xab; 16]),
            "abababab-abab-abab-abab-abababababab"
        );
    }
}
