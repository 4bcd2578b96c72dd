//! Running a migration script on SQLite: statement by statement (so that
//! an error names its line), with the guard that refuses a DROP TABLE or a
//! table RENAME which foreign-key actions would turn into deleted or
//! changed child rows.

use rusqlite::fallible_iterator::FallibleIterator;

use crate::error::{Error, ErrorCode};
use crate::placeholders::leading_trivia;

/// The first `n` tokens of a statement, skipping whitespace and comments:
/// words and quoted names (unquoted), and single punctuation characters.
fn tokens(sql: &str, n: usize) -> Vec<String> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() && out.len() < n {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            i = sql[i + 2..].find("*/").map_or(b.len(), |j| i + 2 + j + 2);
        } else if let Some(close) = match c {
            b'"' => Some(b'"'),
            b'`' => Some(b'`'),
            b'[' => Some(b']'),
            b'\'' => Some(b'\''),
            _ => None,
        } {
            let mut j = i + 1;
            let mut name = Vec::new();
            while j < b.len() {
                if b[j] == close {
                    if close != b']' && b.get(j + 1) == Some(&close) {
                        name.push(close);
                        j += 2;
                        continue;
                    }
                    break;
                }
                name.push(b[j]);
                j += 1;
            }
            out.push(String::from_utf8_lossy(&name).into_owned());
            i = j + 1;
        } else if c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80 {
            let j = (i..b.len())
                .find(|&j| !(b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80))
                .unwrap_or(b.len());
            out.push(sql[i..j].to_string());
            i = j;
        } else {
            out.push((c as char).to_string());
            i += 1;
        }
    }
    out
}

/// The table a statement drops (`DROP TABLE`) or renames (`ALTER TABLE
/// ... RENAME TO`), if it does either.
fn dropped_or_renamed(sql: &str) -> Option<(&'static str, String)> {
    let t = tokens(sql, 8);
    let up: Vec<String> = t.iter().map(|s| s.to_ascii_uppercase()).collect();
    let is = |i: usize, w: &str| up.get(i).is_some_and(|s| s == w);
    // [schema .] name at i: the name and the index after it
    let name_at = |i: usize| -> Option<(String, usize)> {
        if is(i + 1, ".") {
            t.get(i + 2).map(|n| (n.clone(), i + 3))
        } else {
            t.get(i).map(|n| (n.clone(), i + 1))
        }
    };
    if is(0, "DROP") && is(1, "TABLE") {
        let at = if is(2, "IF") && is(3, "EXISTS") { 4 } else { 2 };
        return name_at(at).map(|(n, _)| ("DROP TABLE", n));
    }
    if is(0, "ALTER") && is(1, "TABLE") {
        let (name, next) = name_at(2)?;
        if is(next, "RENAME") && is(next + 1, "TO") {
            return Some(("ALTER TABLE ... RENAME TO", name));
        }
    }
    None
}

/// The foreign keys of other tables that reference `table` with an ON
/// DELETE action that changes child rows: `child(column) ON DELETE action`.
fn acting_children(c: &rusqlite::Connection, table: &str) -> rusqlite::Result<Vec<String>> {
    let mut s = c.prepare(
        "SELECT m.name, f.\"from\", f.on_delete FROM sqlite_schema m \
         JOIN pragma_foreign_key_list(m.name) f \
         WHERE m.type = 'table' AND f.\"table\" = ?1 COLLATE NOCASE \
           AND m.name <> ?1 COLLATE NOCASE \
           AND f.on_delete IN ('CASCADE', 'SET NULL', 'SET DEFAULT') \
         ORDER BY m.name",
    )?;
    let rows = s.query_map([table], |r| {
        Ok(format!(
            "{}({}) ON DELETE {}",
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?
        ))
    })?;
    rows.collect()
}

/// Whether foreign keys are enforced on `c`.
pub(super) fn foreign_keys_on(c: &rusqlite::Connection) -> rusqlite::Result<bool> {
    c.query_row("PRAGMA foreign_keys", [], |r| r.get::<_, i64>(0))
        .map(|v| v != 0)
}

/// The rows that violate a foreign key (`PRAGMA foreign_key_check`), a
/// few of them described, and how many there are.
pub(super) fn foreign_key_violations(
    c: &rusqlite::Connection,
) -> rusqlite::Result<(usize, Vec<String>)> {
    let mut s = c.prepare("PRAGMA foreign_key_check")?;
    let mut rows = s.query([])?;
    let (mut n, mut some) = (0, Vec::new());
    while let Some(r) = rows.next()? {
        n += 1;
        if some.len() < 5 {
            let rowid: Option<i64> = r.get(1)?;
            some.push(format!(
                "{} rowid {} references a missing row of {}",
                r.get::<_, String>(0)?,
                rowid.map_or("?".into(), |v| v.to_string()),
                r.get::<_, String>(2)?
            ));
        }
    }
    Ok((n, some))
}

/// Runs `sql` on `c` one statement at a time. With `guard` (foreign keys
/// on and no `-- dbmux:foreign-keys=off`), a statement that drops or
/// renames a table referenced by an ON DELETE CASCADE / SET NULL / SET
/// DEFAULT key is refused before it runs. An error comes with the byte
/// offset in `sql` where its statement starts (or where SQLite points).
pub(super) fn run_script(
    c: &rusqlite::Connection,
    sql: &str,
    guard: bool,
) -> Result<(), (usize, Error)> {
    let mut batch = rusqlite::Batch::new(c, sql);
    let mut cursor = 0;
    loop {
        let stmt = match batch.next() {
            Ok(Some(s)) => s,
            Ok(None) => return Ok(()),
            Err(e) => {
                // the statement that failed to prepare starts here (bundled
                // SQLite points at the token itself: SqlInputError)
                let at = cursor + leading_trivia(&sql[cursor..]);
                #[cfg(feature = "bundled")]
                let at = match &e {
                    rusqlite::Error::SqlInputError { offset, .. } if *offset >= 0 => {
                        cursor + *offset as usize
                    }
                    _ => at,
                };
                return Err((at.min(sql.len()), e.into()));
            }
        };
        // the statement's text is the script from the end of the last one
        let text = stmt.expanded_sql().unwrap_or_default();
        let start = if sql[cursor..].starts_with(&text) {
            cursor
        } else {
            sql[cursor..]
                .find(text.trim())
                .map_or(cursor, |i| cursor + i)
        };
        let at = start + leading_trivia(&sql[start..]);
        cursor = (start + text.len()).min(sql.len());
        if guard {
            if let Some((what, table)) = dropped_or_renamed(&text) {
                let children = acting_children(c, &table).map_err(|e| (at, e.into()))?;
                if !children.is_empty() {
                    return Err((
                        at,
                        Error::new(
                            ErrorCode::Migration,
                            format!(
                                "{what} {table} with foreign keys on would delete or change \
                                 the rows of {} (SQLite applies the ON DELETE actions of a \
                                 dropped table's children). For a table \
                                 rebuild, make the migration's first line \
                                 '-- dbmux:foreign-keys=off': dbmux then turns foreign keys \
                                 off before BEGIN and checks PRAGMA foreign_key_check before \
                                 COMMIT",
                                children.join(", ")
                            ),
                        ),
                    ));
                }
            }
        }
        let mut stmt = stmt;
        let mut rows = stmt.raw_query();
        loop {
            match rows.next() {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => return Err((at, e.into())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_and_table_renames_are_recognised() {
        let cases = [
            ("DROP TABLE parent", Some("parent")),
            ("  -- x\n drop table if exists \"Par ent\"", Some("Par ent")),
            ("DROP TABLE main.[parent]", Some("parent")),
            ("ALTER TABLE parent RENAME TO old_parent", Some("parent")),
            ("ALTER TABLE `parent` RENAME COLUMN a TO b", None),
            ("ALTER TABLE parent RENAME a TO b", None),
            ("ALTER TABLE parent ADD COLUMN x", None),
            ("DROP INDEX parent", None),
            ("CREATE TABLE t (x)", None),
        ];
        for (sql, want) in cases {
            assert_eq!(
                dropped_or_renamed(sql).map(|(_, t)| t),
                want.map(String::from),
                "{sql}"
            );
        }
    }

    #[test]
    fn errors_point_at_their_statement() {
        let c = rusqlite::Connection::open_in_memory().unwrap();
        let sql = "CREATE TABLE a (x);\n-- two\nINSERT INTO a VALUES (1);\n\nINSERT INTO nope VALUES (2);\nSELECT 1;";
        let (at, e) = run_script(&c, sql, false).unwrap_err();
        assert!(sql[at..].starts_with("INSERT INTO nope"), "{at}: {e}");
        let sql = "CREATE TABLE b (x);\n  SELEC 1;";
        let (at, _) = run_script(&c, sql, false).unwrap_err();
        assert!(sql[at..].starts_with("SELEC"), "{at}");
    }
}
