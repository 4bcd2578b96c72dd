//! Migration files: their names, backend variants, header directives and
//! checksums. Pure data: nothing here touches a database.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorCode, Result};
use crate::url::Backend;

/// One migration as it applies to one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The version (`V0003` is 3).
    pub version: u64,
    /// The name after `__`, without the extension (`create_users`).
    pub name: String,
    /// The file it comes from (`V0003__create_users.sqlite.sql`).
    pub file: String,
    /// The SQL as written in the file.
    pub sql: String,
    /// SHA-256 of the normalised text, as lowercase hex (see
    /// [`checksum`]).
    pub checksum: String,
    /// `-- dbmux:no-transaction`: runs outside a transaction.
    pub no_transaction: bool,
    /// `-- dbmux:foreign-keys=off`: on SQLite, runs with foreign keys off
    /// and checks them before COMMIT.
    pub foreign_keys_off: bool,
}

/// A version's files: the plain one and the per-backend variants.
#[derive(Debug, Clone, Default)]
struct Files {
    name: String,
    plain: Option<Migration>,
    sqlite: Option<Migration>,
    postgres: Option<Migration>,
}

/// A set of migrations: a directory read at run time
/// ([`Migrations::from_dir`]) or files compiled into the binary
/// ([`embed_migrations!`](crate::embed_migrations)).
///
/// A file is `V<version>__<name>.sql`, or `V<version>__<name>.sqlite.sql` /
/// `V<version>__<name>.postgres.sql` for a backend's own variant, which
/// replaces the plain file on that backend. A version may exist only as
/// variants, one per backend. Files whose names do not end in `.sql` are
/// ignored; a `.sql` file with another name is an error.
#[derive(Debug, Clone)]
pub struct Migrations {
    versions: BTreeMap<u64, Files>,
    /// Where they came from, for messages (`migrations/`, `embedded`).
    origin: String,
}

/// The SHA-256 of a migration's text, as lowercase hex, over the text
/// normalised so that a checkout on another operating system changes
/// nothing: a leading byte-order mark is dropped, CRLF and lone CR become
/// LF, and whitespace at the very end is ignored. Any other change (one
/// character inside a string literal) changes the checksum.
pub fn checksum(sql: &str) -> String {
    let text = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    let mut h = Sha256::new();
    let mut rest = text.trim_end().as_bytes();
    while let Some(i) = rest.iter().position(|&b| b == b'\r') {
        h.update(&rest[..i]);
        h.update(b"\n");
        rest = &rest[i + 1..];
        if rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
    }
    h.update(rest);
    crate::value::hex(&h.finalize())
}

fn bad_file(origin: &str, file: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::Migration,
        format!("migration file {origin}{file}: {why}"),
    )
}

/// The header directives of a script: the `-- dbmux:...` lines among the
/// comment lines it starts with.
fn directives(origin: &str, file: &str, sql: &str) -> Result<(bool, bool)> {
    let (mut no_tx, mut fk_off) = (false, false);
    let text = sql.strip_prefix('\u{feff}').unwrap_or(sql);
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let Some(comment) = line.strip_prefix("--") else {
            break;
        };
        let Some(d) = comment.trim_start().strip_prefix("dbmux:") else {
            continue;
        };
        match d.trim() {
            "no-transaction" => no_tx = true,
            "foreign-keys=off" => fk_off = true,
            other => {
                return Err(bad_file(
                    origin,
                    file,
                    format!(
                        "unknown directive '-- dbmux:{other}'; the directives are \
                         '-- dbmux:no-transaction' and '-- dbmux:foreign-keys=off'"
                    ),
                ))
            }
        }
    }
    Ok((no_tx, fk_off))
}

/// Which backend a file is for, from its name: `(version, name, backend)`.
fn parse_name(origin: &str, file: &str) -> Result<(u64, String, Option<Backend>)> {
    let expected = "name it V<version>__<name>.sql (or .sqlite.sql / .postgres.sql for one \
                    backend's variant), for example V0001__create_users.sql";
    let stem = file
        .strip_suffix(".sql")
        .ok_or_else(|| bad_file(origin, file, expected))?;
    let (stem, backend) = if let Some(s) = stem.strip_suffix(".sqlite") {
        (s, Some(Backend::Sqlite))
    } else if let Some(s) = stem.strip_suffix(".postgres") {
        (s, Some(Backend::Postgres))
    } else {
        (stem, None)
    };
    let rest = stem
        .strip_prefix('V')
        .ok_or_else(|| bad_file(origin, file, expected))?;
    let (digits, name) = rest
        .split_once("__")
        .ok_or_else(|| bad_file(origin, file, expected))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return Err(bad_file(origin, file, expected));
    }
    if name.contains('.') {
        return Err(bad_file(
            origin,
            file,
            "the name has a '.'; the only variants are .sqlite.sql and .postgres.sql",
        ));
    }
    let version: u64 = digits
        .parse()
        .ok()
        .filter(|&v| v > 0 && v <= i64::MAX as u64)
        .ok_or_else(|| bad_file(origin, file, "the version must be between 1 and 2^63-1"))?;
    Ok((version, name.to_string(), backend))
}

impl Migrations {
    /// Reads the migration files of `dir` (not its subdirectories).
    ///
    /// # Errors
    /// [`ErrorCode::Io`] when the directory cannot be read;
    /// [`ErrorCode::Migration`] for a malformed file name or directive, two
    /// files for one version and backend, or a version whose files have
    /// different names.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> Result<Migrations> {
        let dir = dir.as_ref();
        let io = |e: std::io::Error| {
            Error::new(
                ErrorCode::Io,
                format!(
                    "cannot read the migrations directory {}: {e}; pass the directory that \
                     holds the V<version>__<name>.sql files",
                    dir.display()
                ),
            )
        };
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".sql") || !entry.file_type().map_err(io)?.is_file() {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).map_err(|e| {
                Error::new(
                    ErrorCode::Io,
                    format!("cannot read the migration {}: {e}", entry.path().display()),
                )
            })?;
            files.push((name, text));
        }
        let mut origin = dir.display().to_string();
        if !origin.ends_with('/') {
            origin.push('/');
        }
        Migrations::build(origin, files)
    }

    /// Migrations from `(file name, contents)` pairs, as
    /// [`embed_migrations!`](crate::embed_migrations) gives them; the same
    /// rules as [`Migrations::from_dir`].
    ///
    /// # Errors
    /// As [`Migrations::from_dir`].
    pub fn from_files<N, T>(files: impl IntoIterator<Item = (N, T)>) -> Result<Migrations>
    where
        N: Into<String>,
        T: Into<String>,
    {
        let files = files
            .into_iter()
            .map(|(n, t)| (n.into(), t.into()))
            .collect();
        Migrations::build(String::new(), files)
    }

    fn build(origin: String, files: Vec<(String, String)>) -> Result<Migrations> {
        let mut versions: BTreeMap<u64, Files> = BTreeMap::new();
        for (file, sql) in files {
            if !file.ends_with(".sql") {
                continue;
            }
            let (version, name, backend) = parse_name(&origin, &file)?;
            let (no_transaction, foreign_keys_off) = directives(&origin, &file, &sql)?;
            let m = Migration {
                version,
                name: name.clone(),
                checksum: checksum(&sql),
                file: file.clone(),
                sql,
                no_transaction,
                foreign_keys_off,
            };
            let entry = versions.entry(version).or_default();
            if entry.name.is_empty() {
                entry.name = name.clone();
            } else if entry.name != name {
                let other = [&entry.plain, &entry.sqlite, &entry.postgres]
                    .into_iter()
                    .flatten()
                    .map(|m| m.file.clone())
                    .next()
                    .unwrap_or_default();
                return Err(bad_file(
                    &origin,
                    &file,
                    format!(
                        "version {version} is also {other}; one version has one name (its \
                         variants end in .sqlite.sql / .postgres.sql)"
                    ),
                ));
            }
            let slot = match backend {
                None => &mut entry.plain,
                Some(Backend::Sqlite) => &mut entry.sqlite,
                Some(Backend::Postgres) => &mut entry.postgres,
            };
            if let Some(first) = slot {
                return Err(bad_file(
                    &origin,
                    &file,
                    format!("version {version} already has the file {}", first.file),
                ));
            }
            *slot = Some(m);
        }
        for (v, f) in &versions {
            if f.plain.is_none() && (f.sqlite.is_none() || f.postgres.is_none()) {
                let (have, missing) = if f.sqlite.is_some() {
                    (&f.sqlite, "postgres")
                } else {
                    (&f.postgres, "sqlite")
                };
                let file = have.as_ref().map(|m| m.file.as_str()).unwrap_or_default();
                return Err(bad_file(
                    &origin,
                    file,
                    format!(
                        "version {v} has no plain file and no {missing} variant, so the \
                         {missing} history would lack it; add V{v:04}__{}.{missing}.sql (it \
                         may hold only a comment) or a plain V{v:04}__{}.sql",
                        f.name, f.name
                    ),
                ));
            }
        }
        Ok(Migrations { versions, origin })
    }

    /// The migrations for `backend`, in version order: each version's
    /// variant for that backend, else its plain file.
    pub fn for_backend(&self, backend: Backend) -> Vec<&Migration> {
        self.versions
            .values()
            .filter_map(|f| {
                let variant = match backend {
                    Backend::Sqlite => &f.sqlite,
                    Backend::Postgres => &f.postgres,
                };
                variant.as_ref().or(f.plain.as_ref())
            })
            .collect()
    }

    /// How many versions there are.
    pub fn len(&self) -> usize {
        self.versions.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    /// Where they were read from (a directory with a trailing `/`, or empty
    /// for embedded files), for messages.
    pub fn origin(&self) -> &str {
        &self.origin
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_and_a_bom_do_not_change_the_checksum() {
        let lf = "CREATE TABLE t (x TEXT DEFAULT 'a b');\nINSERT INTO t VALUES ('x');\n";
        let crlf = lf.replace('\n', "\r\n");
        let cr = lf.replace('\n', "\r");
        let bom = format!("\u{feff}{crlf}   \r\n\t\n");
        let c = checksum(lf);
        assert_eq!(c.len(), 64);
        assert_eq!(checksum(&crlf), c);
        assert_eq!(checksum(&cr), c);
        assert_eq!(checksum(&bom), c);
        assert_eq!(checksum(lf.trim_end()), c);
        // one character inside a string literal does change it
        assert_ne!(checksum(&lf.replace("'a b'", "'a  b'")), c);
        assert_ne!(checksum(&lf.replace("'x'", "'X'")), c);
        // SHA-256 of the normalised text, as sha256sum prints it
        assert_eq!(
            checksum("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn names_variants_and_directives() {
        let m = Migrations::from_files([
            ("V0001__create.sql", "CREATE TABLE a (x int);"),
            (
                "V0002__idx.sqlite.sql",
                "-- dbmux:no-transaction\nCREATE INDEX i ON a (x);",
            ),
            (
                "V0002__idx.postgres.sql",
                "CREATE INDEX CONCURRENTLY i ON a (x);",
            ),
            (
                "V0003__rebuild.sql",
                "-- why\n-- dbmux:foreign-keys=off\nSELECT 1;",
            ),
            ("V0003__rebuild.postgres.sql", "SELECT 2;"),
            ("README.md", "not a migration"),
        ])
        .unwrap();
        assert_eq!(m.len(), 3);
        let lite: Vec<_> = m.for_backend(Backend::Sqlite);
        let pg: Vec<_> = m.for_backend(Backend::Postgres);
        assert_eq!(lite[1].file, "V0002__idx.sqlite.sql");
        assert!(lite[1].no_transaction && !pg[1].no_transaction);
        assert_eq!(lite[2].file, "V0003__rebuild.sql");
        assert!(lite[2].foreign_keys_off);
        assert_eq!(pg[2].file, "V0003__rebuild.postgres.sql");
        assert_eq!(pg[0].file, lite[0].file);
    }

    #[test]
    fn malformed_sets_are_errors_that_say_what_to_do() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("0001_x.sql", "")], "name it V<version>__<name>.sql"),
            (&[("V1_x.sql", "")], "name it V<version>__<name>.sql"),
            (&[("V0__x.sql", "")], "between 1 and 2^63-1"),
            (&[("V1__a.b.sql", "")], "has a '.'"),
            (
                &[("V1__a.sql", ""), ("V01__a.sql", "")],
                "already has the file",
            ),
            (
                &[("V1__a.sql", ""), ("V1__b.postgres.sql", "")],
                "one version has one name",
            ),
            (&[("V2__a.sqlite.sql", "")], "add V0002__a.postgres.sql"),
            (
                &[("V1__a.sql", "-- dbmux:no-transactions\n")],
                "unknown directive",
            ),
        ];
        for (files, msg) in cases {
            let e = Migrations::from_files(files.iter().copied()).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Migration, "{files:?}");
            assert!(e.to_string().contains(msg), "{files:?}: {e}");
        }
    }
}
