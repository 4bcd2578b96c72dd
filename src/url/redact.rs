//! Hiding passwords in URLs and libpq strings (a leaf).

use super::lexical::split_scheme;

/// Returns `url` with any password replaced by `***`.
///
/// Handles `scheme://user:password@host`, a `password=` query parameter and
/// a libpq `password=...` key/value pair (quoted or not). Everything else is
/// returned unchanged.
pub fn redact(url: &str) -> String {
    let mut out = url.to_string();
    // [scheme:][//]user:password@host...  (also without a scheme, so that a
    // mistyped URL still hides its password)
    let scheme_len = split_scheme(&out).map_or(0, |(scheme, _)| scheme.len() + 1);
    let slashes = out[scheme_len..].len() - out[scheme_len..].trim_start_matches('/').len();
    // `user:password@host` with no slashes also parses as scheme `user`: then
    // the whole string is the candidate authority.
    let mut starts = vec![scheme_len + slashes];
    if scheme_len > 0 && slashes == 0 {
        starts.push(0);
    }
    for body in starts {
        let end = out[body..].find('?').map_or(out.len(), |i| body + i);
        if let Some(at) = out[body..end].rfind('@').map(|i| body + i) {
            if let Some(colon) = out[body..at].find(':').map(|i| body + i) {
                out.replace_range(colon + 1..at, "***");
                break;
            }
        }
    }
    // ?password=...&  and  password=... / password='...'
    let mut search_from = 0;
    while let Some(pos) = out[search_from..]
        .to_ascii_lowercase()
        .find("password")
        .map(|i| search_from + i)
    {
        let key_end = pos + "password".len();
        let preceded_ok = pos == 0
            || matches!(
                out.as_bytes()[pos - 1],
                b'?' | b'&' | b' ' | b'\t' | b'\n' | b'\r'
            );
        let rest = &out[key_end..];
        let eq = rest.len() - rest.trim_start().len();
        if preceded_ok && rest[eq..].starts_with('=') {
            let value_start = key_end + eq + 1;
            let ws = out[value_start..].len() - out[value_start..].trim_start().len();
            let vstart = value_start + ws;
            let vend = value_end(&out, vstart);
            out.replace_range(vstart..vend, "***");
            search_from = vstart + 3;
        } else {
            search_from = key_end;
        }
        if search_from >= out.len() {
            break;
        }
    }
    out
}

/// End of a `password=` value starting at `start`: a quoted libpq value
/// (with `\'` escapes), or up to `&` / whitespace.
fn value_end(s: &str, start: usize) -> usize {
    let bytes = s.as_bytes();
    if bytes.get(start) == Some(&b'\'') {
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'\'' => return i + 1,
                _ => i += 1,
            }
        }
        return bytes.len();
    }
    s[start..]
        .find(|c: char| c == '&' || c.is_whitespace())
        .map(|i| start + i)
        .unwrap_or(s.len())
}
