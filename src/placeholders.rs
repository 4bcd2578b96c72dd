//! Placeholder rewriting: `?` to `$n` for PostgreSQL, `$n` to `?n` for
//! SQLite, so that both styles mean the same on both backends.
//!
//! A `?` or `$n` inside a string literal (`'...'`, `E'...'`), a quoted
//! identifier (`"..."`), a `--` comment, a nested `/* */` comment or a
//! dollar-quoted body (`$tag$...$tag$`) is not a placeholder. On
//! PostgreSQL `??` stands for a literal `?` (for the jsonb `?` operators).

use std::borrow::Cow;

use crate::error::{Error, ErrorCode, Result};

/// Which target style to produce.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// `$1, $2, ...` (PostgreSQL).
    Dollar,
    /// `?1, ?2, ...` for `$n` input; plain `?` stays (SQLite).
    Question,
}

fn mixed() -> Error {
    Error::new(
        ErrorCode::InvalidParameter,
        "the SQL mixes ? and $n placeholders; use one style per statement",
    )
}

/// Rewrites `sql` for `target`. Returns the input unchanged (borrowed) when
/// there is nothing to rewrite.
#[inline]
pub(crate) fn rewrite(sql: &str, target: Target) -> Result<Cow<'_, str>> {
    // Fast path (every SQLite statement): nothing that could need rewriting.
    let needs = match target {
        Target::Dollar => sql.as_bytes().contains(&b'?'),
        // SQLite has no `?` operator, so `??` needs no rewriting there
        Target::Question => sql.as_bytes().contains(&b'$'),
    };
    if !needs {
        return Ok(Cow::Borrowed(sql));
    }
    rewrite_slow(sql, target)
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// When a string literal (`'...'`, `E'...'`), a quoted identifier
/// (`"..."`), a `--` comment, a nested `/* */` comment or a dollar-quoted
/// body (`$tag$...$tag$`) starts at byte `i`, the index just past it (the
/// end of `sql` when it is unterminated: the server will complain).
/// `None` when `i` starts none of them. Used by the placeholder rewriter and
/// the statement splitter, so that both agree on what is quoted.
pub(crate) fn skip_quoted(sql: &str, i: usize) -> Option<usize> {
    let b = sql.as_bytes();
    let n = b.len();
    match b[i] {
        b'\'' => {
            // E'...' strings allow backslash escapes
            let escapes =
                i > 0 && (b[i - 1] == b'E' || b[i - 1] == b'e') && (i < 2 || !is_ident(b[i - 2]));
            let mut i = i + 1;
            while i < n {
                if escapes && b[i] == b'\\' {
                    i += 2;
                    continue;
                }
                if b[i] == b'\'' {
                    if i + 1 < n && b[i + 1] == b'\'' {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            Some((i + 1).min(n))
        }
        b'"' => {
            let mut i = i + 1;
            while i < n {
                if b[i] == b'"' {
                    if i + 1 < n && b[i + 1] == b'"' {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            Some((i + 1).min(n))
        }
        b'-' if i + 1 < n && b[i + 1] == b'-' => {
            let mut i = i;
            while i < n && b[i] != b'\n' {
                i += 1;
            }
            Some(i)
        }
        b'/' if i + 1 < n && b[i + 1] == b'*' => {
            let mut depth = 1;
            let mut i = i + 2;
            while i < n && depth > 0 {
                if b[i] == b'/' && i + 1 < n && b[i + 1] == b'*' {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && i + 1 < n && b[i + 1] == b'/' {
                    depth -= 1;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            Some(i)
        }
        // `$` inside an identifier (a$b) or a `$n` placeholder quotes nothing
        b'$' if i > 0 && is_ident(b[i - 1]) => None,
        b'$' => {
            let mut k = i + 1;
            while k < n && is_ident(b[k]) {
                k += 1;
            }
            if k < n && b[k] == b'$' && (k == i + 1 || !b[i + 1].is_ascii_digit()) {
                let tag = &sql[i..=k];
                Some(match sql[k + 1..].find(tag) {
                    Some(end) => k + 1 + end + tag.len(),
                    None => n,
                })
            } else {
                None
            }
        }
        _ => None,
    }
}

/// Splits a script into its statements at the semicolons outside quotes,
/// comments and dollar-quoted bodies (PostgreSQL's lexical rules): each
/// statement with its byte offset in `sql`, without the `;`. Pieces that
/// hold only whitespace and comments are left out.
pub(crate) fn split_statements(sql: &str) -> Vec<(usize, &str)> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let (mut i, mut start, mut code) = (0, 0, false);
    while i < b.len() {
        if let Some(j) = skip_quoted(sql, i) {
            // a comment alone does not make a statement; a literal does
            code |= !matches!(b[i], b'-' | b'/');
            i = j;
            continue;
        }
        if b[i] == b';' {
            if code {
                out.push((start, &sql[start..i]));
            }
            (start, code) = (i + 1, false);
        } else if !b[i].is_ascii_whitespace() {
            code = true;
        }
        i += 1;
    }
    if code {
        out.push((start, &sql[start..]));
    }
    out
}

/// The length of the whitespace and comments `sql` starts with.
pub(crate) fn leading_trivia(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_whitespace() {
            i += 1;
        } else if matches!(b[i], b'-' | b'/') {
            match skip_quoted(sql, i) {
                Some(j) => i = j,
                None => break,
            }
        } else {
            break;
        }
    }
    i
}

fn rewrite_slow(sql: &str, target: Target) -> Result<Cow<'_, str>> {
    let b = sql.as_bytes();
    let n = b.len();
    let mut out = String::with_capacity(n + 8);
    let mut i = 0;
    let mut last = 0; // start of the not-yet-copied part
    let mut questions = 0u32;
    let mut dollars = false;
    while i < n {
        let c = b[i];
        match c {
            b'$' if i > 0 && is_ident(b[i - 1]) => i += 1, // part of an identifier like a$b
            b'$' if i + 1 < n && b[i + 1].is_ascii_digit() => {
                // a $n placeholder
                let mut j = i + 1;
                while j < n && b[j].is_ascii_digit() {
                    j += 1;
                }
                dollars = true;
                if questions > 0 {
                    return Err(mixed());
                }
                if target == Target::Question {
                    out.push_str(&sql[last..i]);
                    out.push('?');
                    out.push_str(&sql[i + 1..j]);
                    last = j;
                }
                i = j;
            }
            b'?' => {
                if i + 1 < n && b[i + 1] == b'?' {
                    // ?? is a literal ?
                    out.push_str(&sql[last..i]);
                    out.push('?');
                    i += 2;
                    last = i;
                    continue;
                }
                if dollars {
                    return Err(mixed());
                }
                questions += 1;
                if target == Target::Dollar {
                    out.push_str(&sql[last..i]);
                    out.push('$');
                    out.push_str(&questions.to_string());
                    last = i + 1;
                }
                i += 1;
            }
            _ => i = skip_quoted(sql, i).unwrap_or(i + 1),
        }
    }
    if last == 0 {
        return Ok(Cow::Borrowed(sql));
    }
    out.push_str(&sql[last.min(n)..]);
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> String {
        rewrite(s, Target::Dollar).unwrap().into_owned()
    }
    fn lite(s: &str) -> String {
        rewrite(s, Target::Question).unwrap().into_owned()
    }

    #[test]
    fn question_marks_become_numbered() {
        assert_eq!(pg("SELECT ?, ?"), "SELECT $1, $2");
        assert_eq!(
            pg("INSERT INTO t VALUES (?,?,?)"),
            "INSERT INTO t VALUES ($1,$2,$3)"
        );
        assert_eq!(pg("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn quoted_and_commented_question_marks_stay() {
        let cases = [
            ("SELECT '?', ?", "SELECT '?', $1"),
            ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', $1"),
            ("SELECT E'\\'?', ?", "SELECT E'\\'?', $1"),
            (
                "SELECT \"a?\" FROM t WHERE x = ?",
                "SELECT \"a?\" FROM t WHERE x = $1",
            ),
            ("SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"),
            (
                "SELECT /* a /* nested? */ still? */ ?",
                "SELECT /* a /* nested? */ still? */ $1",
            ),
            ("SELECT $$what?$$, ?", "SELECT $$what?$$, $1"),
            (
                "SELECT $fn$ ? $x$ ? $fn$, ?",
                "SELECT $fn$ ? $x$ ? $fn$, $1",
            ),
            (
                "SELECT '{\"a\":1}'::jsonb ?? 'a', ?",
                "SELECT '{\"a\":1}'::jsonb ? 'a', $1",
            ),
        ];
        for (i, o) in cases {
            assert_eq!(pg(i), o, "{i}");
        }
    }

    #[test]
    fn dollar_numbers_keep_their_positions() {
        assert_eq!(pg("SELECT $2, $1, $1"), "SELECT $2, $1, $1");
        assert_eq!(lite("SELECT $2, $1, $1"), "SELECT ?2, ?1, ?1");
        assert_eq!(lite("SELECT '$1', $1"), "SELECT '$1', ?1");
        assert_eq!(lite("SELECT ?, ?"), "SELECT ?, ?");
        assert_eq!(lite("SELECT a$1 FROM t"), "SELECT a$1 FROM t");
        assert!(rewrite("SELECT ?, $1", Target::Dollar).is_err());
        assert!(rewrite("SELECT $1, ?", Target::Question).is_err());
    }

    #[test]
    fn statements_split_at_semicolons_outside_quotes() {
        let sql = "CREATE TABLE a (x text DEFAULT ';');\n-- a comment; still\n\
                   CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\n\
                   /* only; a comment */;\nINSERT INTO \"we;ird\" VALUES (E'\\';')";
        let parts: Vec<&str> = split_statements(sql).iter().map(|p| p.1.trim()).collect();
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0], "CREATE TABLE a (x text DEFAULT ';')");
        assert!(
            parts[1].starts_with("-- a comment; still\nCREATE FUNCTION"),
            "{}",
            parts[1]
        );
        assert!(parts[1].ends_with("LANGUAGE sql"), "{}", parts[1]);
        assert_eq!(parts[2], "INSERT INTO \"we;ird\" VALUES (E'\\';')");
        let (off, _) = split_statements(sql)[2];
        assert!(sql[off..].trim_start().starts_with("INSERT"));
        assert!(split_statements("  -- nothing\n; ;").is_empty());
        assert_eq!(leading_trivia("  /* a */ -- b\n x"), 16);
        assert_eq!(leading_trivia("-x"), 0);
    }
}
