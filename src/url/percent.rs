//! `%XX` decoding, the one decoder behind both URL parsers (a leaf).

use crate::error::{Error, ErrorCode, Result};

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidUrl, msg)
}

/// Why a percent-encoded string could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PercentError {
    /// `%00`: a NUL byte.
    Nul,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

/// Decodes `%XX` escapes (the one decoder behind both URL parsers, which
/// word the errors their own way).
pub(crate) fn decode_percent(s: &str) -> std::result::Result<String, PercentError> {
    if !s.contains('%') {
        return Ok(s.to_string());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16).ok()
            });
            match hex {
                Some(0) => return Err(PercentError::Nul),
                Some(b) => out.push(b),
                None => return Err(PercentError::BadEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| PercentError::NotUtf8)
}

/// Decodes `%XX` escapes in the `what` part of a SQLite URL. A `%` not
/// followed by two hex digits, or an escape that decodes to NUL or to
/// invalid UTF-8, is an error.
pub(crate) fn percent_decode(s: &str, what: &str) -> Result<String> {
    decode_percent(s).map_err(|e| {
        invalid(match e {
            PercentError::Nul => format!("the {what} contains %00 (a NUL byte)"),
            PercentError::BadEscape => format!(
                "bad percent escape in the {what}: '%' must be followed by two hex digits \
                 (write %25 for a literal '%')"
            ),
            PercentError::NotUtf8 => format!("the {what} decodes to invalid UTF-8"),
        })
    })
}
