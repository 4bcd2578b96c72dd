//! The `dbmux` command: health checks, debug info and one-off SQL.
//!
//! Exit codes follow pg_isready for `health`: 0 healthy, 2 no response,
//! 3 invalid parameters (bad URL, bad setting, bad arguments). Other
//! commands exit 0 on success, 1 when the database reports an error and 3
//! for invalid parameters.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};
use dbmux::{Config, ErrorCode, Manager, Rows, Value};

/// What a usage error ends with.
const USAGE: &str = "see `dbmux --help`, or `dbmux COMMAND --help`";

/// The help's closing lines.
const AFTER_HELP: &str = "\
Without --url the environment is used (DATABASE_URL, DB_* variables, ./.env),
and without DATABASE_URL the embedded default sqlite:///dbmux.db.
Log lines go to stderr; set DBMUX_LOG (or RUST_LOG) to error, warn (the
default), info, debug or trace, or to env_logger filters such as
dbmux::pool=debug.
Exit codes: 0 success (health: healthy), 1 the database reported an error,
2 no response (health, metrics), 3 invalid parameters.";

/// dbmux: health checks, debug info, metrics, one-off SQL, backups,
/// migrations and the copy from SQLite to PostgreSQL.
#[derive(Parser)]
#[command(name = "dbmux", version = dbmux::VERSION, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `--url`, which every command but `copy` and `parse-url` takes.
#[derive(clap::Args)]
struct UrlArg {
    /// The database URL (default: DATABASE_URL, else sqlite:///dbmux.db)
    #[arg(long, value_name = "URL")]
    url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Check the database (exit 0 healthy, 2 no response, 3 bad parameters)
    Health {
        #[command(flatten)]
        url: UrlArg,
        /// Print the health report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show configuration, pool state and counters
    Info {
        #[command(flatten)]
        url: UrlArg,
        /// Print the debug info as JSON
        #[arg(long)]
        json: bool,
    },
    /// Check the database once, then print this process's metrics in the
    /// Prometheus text format (exit as health)
    Metrics {
        #[command(flatten)]
        url: UrlArg,
        /// OpenMetrics 1.0 instead of the Prometheus text format
        #[arg(long)]
        openmetrics: bool,
    },
    /// Run one statement with ? parameters and print the result as a table
    #[command(
        after_help = "A parameter that is an integer or a decimal number binds as a \
        number, the word NULL binds as NULL, anything else as text."
    )]
    Sql {
        #[command(flatten)]
        url: UrlArg,
        /// Print the rows as JSON
        #[arg(long)]
        json: bool,
        /// The statement
        sql: String,
        /// Its parameters, in order
        #[arg(allow_hyphen_values = true)]
        params: Vec<String>,
    },
    /// Show how a URL is understood (exit 3 if it is invalid)
    ParseUrl {
        /// The URL
        url: String,
        /// Print it as JSON
        #[arg(long)]
        json: bool,
    },
    /// Copy the live SQLite database to DEST, atomically
    Backup {
        #[command(flatten)]
        url: UrlArg,
        /// The file to write
        dest: String,
        /// Compact the copy (VACUUM INTO)
        #[arg(long)]
        compact: bool,
        /// Replace DEST if it exists
        #[arg(long)]
        overwrite: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Replace the SQLite database's contents with SRC
    Restore {
        #[command(flatten)]
        url: UrlArg,
        /// The backup to restore
        src: String,
    },
    /// Apply the migrations of DIR (up, the default), show where each
    /// stands (status), print the SQL up would run (plan), or fail unless
    /// the database is at the files' state (verify)
    Migrate {
        #[command(flatten)]
        url: UrlArg,
        /// The directory of the V<version>__<name>.sql files
        #[arg(long, value_name = "DIR")]
        dir: Option<String>,
        /// Apply migrations older than the newest applied one
        #[arg(long)]
        allow_out_of_order: bool,
        /// Print the result as JSON
        #[arg(long)]
        json: bool,
        /// status, plan, up or verify
        #[arg(value_name = "ACTION")]
        action: Vec<String>,
    },
    /// Copy every table's rows from SQLite into PostgreSQL (schema made by
    /// the same migrations), in one transaction
    Copy {
        /// The SQLite database
        #[arg(long, value_name = "SQLITE_URL")]
        from: Option<String>,
        /// The PostgreSQL database
        #[arg(long, value_name = "POSTGRES_URL")]
        to: Option<String>,
        /// Only these tables (comma-separated)
        #[arg(long, value_name = "a,b")]
        tables: Option<String>,
        /// Empty the target tables first
        #[arg(long)]
        truncate: bool,
        /// Print the report as JSON
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    #[command(
        after_help = "bash: dbmux completions bash > ~/.local/share/bash-completion/completions/dbmux\n\
        zsh:  dbmux completions zsh > ~/.zfunc/_dbmux\n\
        fish: dbmux completions fish > ~/.config/fish/completions/dbmux.fish"
    )]
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// Exit status for bad arguments, URLs or settings (pg_isready's 3).
const EXIT_INVALID: u8 = 3;
/// Exit status when the database does not answer (pg_isready's 2).
const EXIT_NO_RESPONSE: u8 = 2;
/// Exit status when the database reports an error.
const EXIT_SQL_ERROR: u8 = 1;

/// Log lines to stderr through env_logger: `DBMUX_LOG`, else `RUST_LOG`
/// (a level or env_logger's filters), else `warn`.
fn init_logging() {
    let filter = std::env::var("DBMUX_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "warn".to_string());
    let _ = env_logger::Builder::new()
        .parse_filters(&filter)
        .format_timestamp(None)
        .target(env_logger::Target::Stderr)
        .try_init();
}

struct Args {
    command: String,
    url: Option<String>,
    json: bool,
    /// `backup`'s flags.
    compact: bool,
    overwrite: bool,
    /// `migrate`'s.
    dir: Option<String>,
    allow_out_of_order: bool,
    /// `copy`'s.
    from: Option<String>,
    to: Option<String>,
    tables: Option<String>,
    truncate: bool,
    /// `metrics`'.
    openmetrics: bool,
    /// `completions`'.
    shell: Option<clap_complete::Shell>,
    rest: Vec<String>,
}

/// The options that belong to one command, and that command: an option
/// given to another command says whose it is.
const COMMAND_OPTIONS: &[(&str, &str)] = &[
    ("--compact", "backup"),
    ("--overwrite", "backup"),
    ("--dir", "migrate"),
    ("--allow-out-of-order", "migrate"),
    ("--from", "copy"),
    ("--to", "copy"),
    ("--tables", "copy"),
    ("--truncate", "copy"),
    ("--openmetrics", "metrics"),
];

/// The arguments, parsed by clap into [`Command`], as the commands read them.
fn parse_args(argv: Vec<String>) -> Result<Args, clap::Error> {
    let mut args = Args {
        command: String::new(),
        url: None,
        json: false,
        compact: false,
        overwrite: false,
        dir: None,
        allow_out_of_order: false,
        from: None,
        to: None,
        tables: None,
        truncate: false,
        openmetrics: false,
        shell: None,
        rest: Vec::new(),
    };
    let cli = Cli::try_parse_from(std::iter::once("dbmux".to_string()).chain(argv))?;
    match cli.command {
        Command::Health { url, json } => {
            (args.command, args.url, args.json) = ("health".into(), url.url, json);
        }
        Command::Info { url, json } => {
            (args.command, args.url, args.json) = ("info".into(), url.url, json);
        }
        Command::Metrics { url, openmetrics } => {
            (args.command, args.url, args.openmetrics) = ("metrics".into(), url.url, openmetrics);
        }
        Command::Sql {
            url,
            json,
            sql,
            params,
        } => {
            (args.command, args.url, args.json) = ("sql".into(), url.url, json);
            args.rest = std::iter::once(sql).chain(params).collect();
        }
        Command::ParseUrl { url, json } => {
            (args.command, args.json, args.rest) = ("parse-url".into(), json, vec![url]);
        }
        Command::Backup {
            url,
            dest,
            compact,
            overwrite,
            json,
        } => {
            (args.command, args.url, args.json) = ("backup".into(), url.url, json);
            (args.compact, args.overwrite, args.rest) = (compact, overwrite, vec![dest]);
        }
        Command::Restore { url, src } => {
            (args.command, args.url, args.rest) = ("restore".into(), url.url, vec![src]);
        }
        Command::Migrate {
            url,
            dir,
            allow_out_of_order,
            json,
            action,
        } => {
            (args.command, args.url, args.json) = ("migrate".into(), url.url, json);
            (args.dir, args.allow_out_of_order, args.rest) = (dir, allow_out_of_order, action);
        }
        Command::Copy {
            from,
            to,
            tables,
            truncate,
            json,
        } => {
            (args.command, args.json) = ("copy".into(), json);
            (args.from, args.to, args.tables, args.truncate) = (from, to, tables, truncate);
        }
        Command::Completions { shell } => {
            (args.command, args.shell) = ("completions".into(), Some(shell));
        }
    }
    Ok(args)
}

/// An option of one command given to another: whose it is.
fn misplaced_option(argv: &[String]) -> Option<String> {
    let command = argv.first()?;
    for a in argv.iter().skip(1).take_while(|a| *a != "--") {
        let name = a.split_once('=').map_or(a.as_str(), |(k, _)| k);
        if let Some((o, owner)) = COMMAND_OPTIONS.iter().find(|(o, _)| *o == name) {
            if owner != command {
                return Some(format!("{o} is an option of {owner}"));
            }
        }
    }
    None
}

fn manager(url: &Option<String>) -> Result<Manager, dbmux::Error> {
    let mut b = Config::builder().with_env();
    if let Some(u) = url {
        b = b.url(u.clone());
    }
    Manager::new(b.build()?)
}

fn is_invalid(e: &dbmux::Error) -> bool {
    matches!(
        e.code(),
        ErrorCode::InvalidUrl | ErrorCode::InvalidConfig | ErrorCode::FeatureDisabled
    )
}

fn fail(e: &dbmux::Error) -> ExitCode {
    eprintln!("dbmux: {e}");
    ExitCode::from(if is_invalid(e) {
        EXIT_INVALID
    } else {
        EXIT_SQL_ERROR
    })
}

fn main() -> ExitCode {
    // Rust ignores SIGPIPE, so a print to a closed pipe (`dbmux metrics |
    // head -1`) would panic; a command-line tool ends quietly instead, as
    // cat and grep do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal at start-up,
    // before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    init_logging();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if let Some(msg) = misplaced_option(&argv) {
        eprintln!("dbmux: {msg}; {USAGE}");
        return ExitCode::from(EXIT_INVALID);
    }
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(e) => {
            use clap::error::ErrorKind;
            // --help and --version print to stdout and succeed; a usage
            // error exits 3, as every bad parameter does
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => EXIT_INVALID,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match args.command.as_str() {
        "health" => health(&args),
        "info" => info(&args),
        "metrics" => metrics(&args),
        "sql" => sql(&args),
        "parse-url" => parse_url(&args),
        "backup" => backup(&args),
        "restore" => restore(&args),
        "migrate" => migrate(&args),
        "copy" => copy(&args),
        "completions" => completions(&args),
        other => unreachable!("clap knows no command {other}"),
    }
}

/// `dbmux completions SHELL`: the completion script of every command and
/// option, from the same definitions as the help.
fn completions(args: &Args) -> ExitCode {
    let shell = args.shell.expect("clap parsed the shell");
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "dbmux", &mut std::io::stdout());
    ExitCode::SUCCESS
}

fn health(args: &Args) -> ExitCode {
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("dbmux: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let report = mgr.check_health();
    if args.json {
        println!("{}", report.to_json());
    } else {
        println!(
            "{}: {} {} ({:.1} ms) {}",
            report.status,
            report.database_type.map_or("unknown", |b| b.name()),
            report.database,
            report.latency_ms,
            report.version.as_deref().unwrap_or("")
        );
        if !report.is_healthy() {
            println!("{}", report.message);
        }
        if report.hosts.len() > 1 {
            for h in &report.hosts {
                let role = serde_json::to_value(h.role).unwrap_or_default();
                let state = serde_json::to_value(h.state).unwrap_or_default();
                let mut line = format!(
                    "  {}:{} {} {}",
                    h.host,
                    h.port,
                    role.as_str().unwrap_or("?"),
                    state.as_str().unwrap_or("?")
                );
                if let Some(tl) = h.timeline {
                    line.push_str(&format!(" timeline={tl}"));
                }
                if let Some(lag) = h.replay_lag_bytes {
                    line.push_str(&format!(" replay_lag={lag}B"));
                }
                if let Some(e) = &h.last_error {
                    line.push_str(&format!(" ({e})"));
                }
                println!("{line}");
            }
        }
    }
    mgr.shutdown();
    if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_NO_RESPONSE)
    }
}

fn parse_url(args: &Args) -> ExitCode {
    let [url] = args.rest.as_slice() else {
        eprintln!("dbmux: parse-url takes exactly one URL\n{USAGE}");
        return ExitCode::from(EXIT_INVALID);
    };
    let target = match dbmux::url::parse_url(url) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dbmux: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let mut described = target.describe();
    if let (dbmux::url::Target::Sqlite(t), Some(map)) = (&target, described.as_object_mut()) {
        // resolve a relative path against the current directory, as a manager would
        if let dbmux::url::SqliteLocation::File(p) = &t.location {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            map.insert("path".into(), abs.display().to_string().into());
        }
    }
    if args.json {
        println!("{described}");
    } else if let Some(map) = described.as_object() {
        for (k, v) in map {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => println!("{k:<22} {s}"),
                other => println!("{k:<22} {other}"),
            }
        }
    }
    ExitCode::SUCCESS
}

fn info(args: &Args) -> ExitCode {
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let info = mgr.debug_info();
    if args.json {
        println!("{}", info.to_json());
    } else {
        let value = serde_json::to_value(&info).unwrap_or_default();
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                println!("{k:<24} {v}");
            }
        }
    }
    mgr.shutdown();
    ExitCode::SUCCESS
}

/// `dbmux metrics`: one health check (a checkout and a query), then the
/// metrics of this process's manager, for a node_exporter textfile collector
/// or a look at what a scrape of the app would show.
fn metrics(args: &Args) -> ExitCode {
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let report = mgr.check_health();
    let text = if args.openmetrics {
        mgr.metrics_openmetrics()
    } else {
        mgr.metrics_text()
    };
    print!("{text}");
    mgr.shutdown();
    if report.is_healthy() {
        ExitCode::SUCCESS
    } else {
        eprintln!("dbmux: {}", report.message);
        ExitCode::from(EXIT_NO_RESPONSE)
    }
}

fn param(s: &str) -> Value {
    if s == "NULL" {
        return Value::Null;
    }
    if let Ok(i) = s.parse::<i64>() {
        return Value::Integer(i);
    }
    match s.parse::<f64>() {
        // "inf" and "nan" parse as floats but are meant as text
        Ok(f) if f.is_finite() && s.bytes().any(|b| b.is_ascii_digit()) => Value::Real(f),
        _ => Value::Text(s.to_string()),
    }
}

fn sql(args: &Args) -> ExitCode {
    let Some((sql, params)) = args.rest.split_first() else {
        eprintln!("dbmux: sql needs the SQL text\n{USAGE}");
        return ExitCode::from(EXIT_INVALID);
    };
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let params: Vec<Value> = params.iter().map(|p| param(p)).collect();
    let result = mgr.get().and_then(|mut c| c.query(sql, &params));
    let code = match result {
        Ok(rows) => {
            if args.json {
                println!("{}", rows_json(&rows));
            } else {
                print_table(&rows);
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(&e),
    };
    mgr.shutdown();
    code
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        other => other.to_string(),
    }
}

fn print_table(rows: &Rows) {
    let out = std::io::stdout();
    let mut out = out.lock();
    if rows.columns().is_empty() {
        let _ = writeln!(out, "{} row(s) affected", rows.rows_affected());
        return;
    }
    let names: Vec<&str> = rows.columns().iter().map(|c| c.name.as_str()).collect();
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.values().iter().map(cell).collect())
        .collect();
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for r in &cells {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |vals: Vec<&str>| -> String {
        vals.iter()
            .zip(&widths)
            .map(|(v, w)| format!("{v:<w$}"))
            .collect::<Vec<_>>()
            .join(" | ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(names.clone()));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("-+-")
    );
    for r in &cells {
        let _ = writeln!(out, "{}", line(r.iter().map(String::as_str).collect()));
    }
    let _ = writeln!(
        out,
        "({} row{})",
        cells.len(),
        if cells.len() == 1 { "" } else { "s" }
    );
}

fn rows_json(rows: &Rows) -> String {
    let to_json = |v: &Value| match v {
        Value::Null => serde_json::Value::Null,
        Value::Integer(i) => serde_json::json!(i),
        Value::Real(r) => serde_json::json!(r),
        Value::Text(s) => serde_json::json!(s),
        Value::Blob(b) => {
            serde_json::json!(b.iter().map(|x| format!("{x:02x}")).collect::<String>())
        }
    };
    let data: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let mut m = serde_json::Map::new();
            for (c, v) in r.columns().iter().zip(r.values()) {
                m.insert(c.name.clone(), to_json(v));
            }
            serde_json::Value::Object(m)
        })
        .collect();
    serde_json::json!({
        "columns": rows.columns(),
        "rows": data,
        "rows_affected": rows.rows_affected(),
    })
    .to_string()
}

#[cfg(not(feature = "sqlite"))]
fn backup(_: &Args) -> ExitCode {
    eprintln!("dbmux: this build has no SQLite backend (the `sqlite` feature)");
    ExitCode::from(EXIT_INVALID)
}

#[cfg(not(feature = "sqlite"))]
fn restore(args: &Args) -> ExitCode {
    backup(args)
}

/// A maintenance command on one file argument (`what` names it in the
/// usage error): runs `f` on a manager and prints what it returns. A bad
/// argument, or a PostgreSQL URL, exits 3.
#[cfg(feature = "sqlite")]
fn on_file(
    args: &Args,
    what: &str,
    f: impl FnOnce(&Manager, &str) -> dbmux::Result<String>,
) -> ExitCode {
    let [file] = args.rest.as_slice() else {
        eprintln!("dbmux: {what}\n{USAGE}");
        return ExitCode::from(EXIT_INVALID);
    };
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let r = f(&mgr, file);
    mgr.shutdown();
    match r {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) if e.code() == ErrorCode::InvalidParameter || e.code() == ErrorCode::Misuse => {
            eprintln!("dbmux: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => fail(&e),
    }
}

#[cfg(feature = "sqlite")]
fn backup(args: &Args) -> ExitCode {
    on_file(
        args,
        "backup takes exactly one destination file",
        |mgr, dest| {
            let opts = dbmux::sqlite::BackupOptions::new()
                .compact(args.compact)
                .overwrite(args.overwrite);
            let report = mgr.backup_to(dest, opts)?;
            Ok(if args.json {
                report.to_json()
            } else {
                format!(
                    "backed up {} to {} ({} bytes, {} pages{}) in {:.0} ms",
                    mgr.config().redacted_url(),
                    report.path,
                    report.bytes,
                    report.pages,
                    if report.compact { ", compacted" } else { "" },
                    report.duration_ms
                )
            })
        },
    )
}

#[cfg(feature = "sqlite")]
fn restore(args: &Args) -> ExitCode {
    on_file(args, "restore takes exactly one source file", |mgr, src| {
        mgr.restore_from(src)?;
        Ok(format!(
            "restored {} from {src}",
            mgr.config().redacted_url()
        ))
    })
}

/// Exit status when migrations and the database disagree, or `verify`
/// finds the database behind.
const EXIT_MIGRATION: u8 = 1;

fn migrate(args: &Args) -> ExitCode {
    use dbmux::migrate::{MigrateOptions, Migrations};
    let action = match args.rest.as_slice() {
        [] => "up",
        [a] if ["status", "plan", "up", "verify"].contains(&a.as_str()) => a.as_str(),
        _ => {
            eprintln!("dbmux: migrate takes one of status, plan, up, verify\n{USAGE}");
            return ExitCode::from(EXIT_INVALID);
        }
    };
    let Some(dir) = &args.dir else {
        eprintln!("dbmux: migrate needs --dir DIR, the directory of the V<version>__<name>.sql files\n{USAGE}");
        return ExitCode::from(EXIT_INVALID);
    };
    let migrations = match Migrations::from_dir(dir) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("dbmux: {e}");
            return ExitCode::from(if e.code() == ErrorCode::Io {
                EXIT_INVALID
            } else {
                EXIT_MIGRATION
            });
        }
    };
    let mgr = match manager(&args.url) {
        Ok(m) => m,
        Err(e) => return fail(&e),
    };
    let code = match action {
        "up" => {
            let opts = MigrateOptions::new().allow_out_of_order(args.allow_out_of_order);
            mgr.migrate_with(&migrations, &opts).map(|r| {
                if args.json {
                    println!("{}", r.to_json());
                } else {
                    for a in &r.applied {
                        println!("applied {} ({:.0} ms)", a.file, a.duration_ms);
                    }
                    println!(
                        "{}: {} applied now, {} before ({:.0} ms)",
                        r.database,
                        r.applied.len(),
                        r.already_applied,
                        r.duration_ms
                    );
                }
                ExitCode::SUCCESS
            })
        }
        "plan" => mgr.migration_plan(&migrations).map(|plan| {
            if args.json {
                let items: Vec<serde_json::Value> = plan
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "version": m.version, "name": m.name, "file": m.file,
                            "checksum": m.checksum, "no_transaction": m.no_transaction,
                            "foreign_keys_off": m.foreign_keys_off, "sql": m.sql,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(items));
            } else if plan.is_empty() {
                println!("-- nothing to apply on {}", mgr.config().redacted_url());
            } else {
                let backend = mgr.config().backend().name();
                for m in &plan {
                    println!("-- {} ({backend})", m.file);
                    println!("{}\n", m.sql.trim_end());
                }
            }
            ExitCode::SUCCESS
        }),
        _ => mgr.migration_status(&migrations).map(|st| {
            if args.json {
                println!("{}", st.to_json());
            } else {
                for v in &st.versions {
                    let state = serde_json::to_value(v.state).unwrap_or_default();
                    println!(
                        "V{:04}  {:<12} {:<40} {}",
                        v.version,
                        state.as_str().unwrap_or("?"),
                        v.file.as_deref().unwrap_or(&v.name),
                        v.applied_at.as_deref().unwrap_or("")
                    );
                }
                println!(
                    "{}: {} applied, {} pending",
                    st.database, st.applied, st.pending
                );
                for p in &st.problems {
                    println!("problem: {p}");
                }
            }
            if action == "verify" {
                if let Err(e) = st.verify() {
                    eprintln!("dbmux: {e}");
                    return ExitCode::from(EXIT_MIGRATION);
                }
            }
            ExitCode::SUCCESS
        }),
    };
    mgr.shutdown();
    code.unwrap_or_else(|e| fail(&e))
}

#[cfg(not(all(feature = "sqlite", feature = "postgres")))]
fn copy(_: &Args) -> ExitCode {
    eprintln!("dbmux: copy needs both backends (the `sqlite` and `postgres` features)");
    ExitCode::from(EXIT_INVALID)
}

#[cfg(all(feature = "sqlite", feature = "postgres"))]
fn copy(args: &Args) -> ExitCode {
    let (Some(from), Some(to)) = (&args.from, &args.to) else {
        eprintln!("dbmux: copy needs --from SQLITE_URL and --to POSTGRES_URL\n{USAGE}");
        return ExitCode::from(EXIT_INVALID);
    };
    let (src, dst) = match (manager(&Some(from.clone())), manager(&Some(to.clone()))) {
        (Ok(s), Ok(d)) => (s, d),
        (Err(e), _) | (_, Err(e)) => return fail(&e),
    };
    let mut report_progress = |p: &dbmux::copy::CopyProgress| {
        eprintln!(
            "copy: {} {}/{} rows ({:.0} rows/s)",
            p.table, p.rows, p.total, p.rows_per_second
        );
    };
    let mut opts = dbmux::copy::CopyOptions::new()
        .truncate(args.truncate)
        .progress(&mut report_progress);
    if let Some(t) = &args.tables {
        opts = opts.tables(t.split(',').map(str::trim).filter(|t| !t.is_empty()));
    }
    let r = src.copy_to(&dst, opts);
    src.shutdown();
    dst.shutdown();
    match r {
        Ok(report) => {
            if args.json {
                println!("{}", report.to_json());
            } else {
                for t in &report.tables {
                    println!(
                        "{:<30} {:>10} rows (PostgreSQL counts {}) in {:.0} ms",
                        t.table, t.rows, t.target_rows, t.duration_ms
                    );
                }
                for s in &report.sequences {
                    println!("sequence {s}");
                }
                println!(
                    "copied {} rows from {} to {} in {:.1} s ({:.0} rows/s)",
                    report.rows,
                    report.source,
                    report.target,
                    report.duration_ms / 1000.0,
                    report.rows_per_second
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) if e.code() == ErrorCode::Misuse => {
            eprintln!("dbmux: {e}");
            ExitCode::from(EXIT_INVALID)
        }
        Err(e) => fail(&e),
    }
}
