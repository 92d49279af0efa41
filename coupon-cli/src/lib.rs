//! # coupon-cli
//!
//! The `coupon` command (SPEC §8): books, codes, assignment, locks, redemptions and the event
//! log on an SQLite or Postgres database, from the shell. `main` only calls [`run`].
//!
//! Every command's flags are validated into a typed [`cli::Request`] before the database is
//! opened; failures map to the exit statuses of [`exit`].

pub mod cli;
pub mod csv_input;
pub mod exit;
pub mod output;
pub mod store;

use std::error::Error as StdError;
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use coupon_core::{Coupons, Error, ErrorKind, ExportRow};
use coupon_store_postgres::{PostgresOptions, PostgresStore};
use coupon_store_sqlite::{SqliteOptions, SqliteStore};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::cli::{Cli, Request};
use crate::output::Output;
use crate::store::Store;

/// A failure of a command: a library error, or an I/O error of the command itself.
#[derive(Debug)]
pub enum CliError {
    /// From the library (or a validation of the command line).
    Core(Error),
    /// Reading or writing a file or a standard stream.
    Io(io::Error),
}

impl CliError {
    /// The machine-readable kind shown in JSON errors.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Core(e) => e.kind().as_str(),
            CliError::Io(_) => "io",
        }
    }

    /// The process exit status.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Core(e) => exit::code(e.kind()),
            CliError::Io(_) => exit::FAILURE,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Core(e) => e.fmt(f),
            CliError::Io(e) => e.fmt(f),
        }
    }
}

impl StdError for CliError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            CliError::Core(e) => Some(e),
            CliError::Io(e) => Some(e),
        }
    }
}

impl From<Error> for CliError {
    fn from(e: Error) -> Self {
        CliError::Core(e)
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        CliError::Io(e)
    }
}

/// Parses `args` (the program name first), runs the command and returns the exit status.
/// Errors are written to stderr (as JSON with `--json`); a closed stdout ends quietly with 0.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are "errors" printed to stdout; a closed pipe is ignored.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let json = cli.json;
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e, json);
            ExitCode::from(e.exit_code())
        }
    }
}

fn report(error: &CliError, json: bool) {
    let mut stderr = io::stderr().lock();
    let _ = if json {
        writeln!(
            stderr,
            "{}",
            json!({ "error": { "kind": error.kind(), "message": error.to_string() } })
        )
    } else {
        writeln!(stderr, "error: {error}")
    };
}

/// Validates the command, opens the database and runs the command.
///
/// # Errors
/// The command's failure.
pub fn execute(cli: Cli) -> Result<(), CliError> {
    let request = cli.command.validate()?;
    let database = Database::parse(&cli.database.database_url)?;
    if let Request::Serve(config) = request {
        let coupons = Coupons::new(database.open_with_pool(SERVE_POOL_SIZE)?);
        return coupon_server::serve(coupons, config).map_err(|e| {
            CliError::Io(match e {
                coupon_server::ServeError::Io(e) => e,
                other => io::Error::other(other.to_string()),
            })
        });
    }
    let coupons = Coupons::new(database.open()?);
    let mut out = Output::new(io::stdout().lock(), cli.json);
    perform(&coupons, request, &mut out)
}

/// Where the database is, from its URL.
#[derive(Clone, PartialEq, Eq)]
pub enum Database {
    /// A private in-memory database.
    Memory,
    /// An SQLite file.
    File(PathBuf),
    /// A Postgres database: its `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Memory => f.write_str("Memory"),
            Database::File(path) => f.debug_tuple("File").field(path).finish(),
            // The URL may hold a password.
            Database::Postgres(_) => f.write_str("Postgres(..)"),
        }
    }
}

impl Database {
    /// Reads a database URL: `postgres://…` or `postgresql://…` (Postgres), `sqlite://PATH`,
    /// `sqlite:///abs/path`, `sqlite::memory:` or a plain path (SQLite).
    ///
    /// # Errors
    /// `invalid_input` for an empty path.
    pub fn parse(url: &str) -> Result<Database, Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_owned()));
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        if path == ":memory:" {
            return Ok(Database::Memory);
        }
        if path.is_empty() {
            return Err(Error::invalid_input(format!(
                "database URL {url:?} has no path; use e.g. sqlite://coupons.db"
            )));
        }
        Ok(Database::File(PathBuf::from(path)))
    }

    /// Opens (creating and migrating) the database, with a pool of at most 2 connections: one
    /// command needs no more.
    ///
    /// # Errors
    /// `backend`; `invalid_input` for a Postgres URL that cannot be read.
    pub fn open(&self) -> Result<Store, Error> {
        self.open_with_pool(2)
    }

    /// Opens (creating and migrating) the database, with a pool of at most `pool_size`
    /// connections, opened on demand (an in-memory database has one).
    ///
    /// # Errors
    /// As [`open`](Database::open).
    pub fn open_with_pool(&self, pool_size: u32) -> Result<Store, Error> {
        match self {
            Database::Memory => SqliteStore::memory().map(Store::Sqlite),
            Database::File(path) => SqliteStore::open_with(
                path,
                SqliteOptions {
                    pool_size,
                    ..SqliteOptions::default()
                },
            )
            .map(Store::Sqlite),
            Database::Postgres(url) => PostgresStore::open_with(
                url,
                PostgresOptions {
                    pool_size,
                    ..PostgresOptions::default()
                },
            )
            .map(Store::Postgres),
        }
    }
}

/// The connections `coupon serve` may open: requests beyond it wait for one.
pub const SERVE_POOL_SIZE: u32 = 16;

const BOOK_COLUMNS: &[&str] = &[
    "id",
    "name",
    "valid_from",
    "valid_until",
    "max_redemptions_per_user",
    "max_codes_per_user",
    "code_pattern",
    "lock_ttl_seconds",
];
const COUPON_COLUMNS: &[&str] = &[
    "code",
    "book_id",
    "book_name",
    "user_id",
    "state",
    "redemptions",
    "remaining",
    "assigned_at",
    "valid_until",
    "locked_until",
];
const API_KEY_COLUMNS: &[&str] = &["id", "name", "role", "created_at", "revoked_at"];
const EVENT_COLUMNS: &[&str] = &["seq", "at", "kind", "book_id", "code", "user_id", "data"];

fn perform<W: Write>(
    coupons: &Coupons<Store>,
    request: Request,
    out: &mut Output<W>,
) -> Result<(), CliError> {
    match request {
        Request::CreateBook(settings) => out.record(&coupons.create_book(&settings)?)?,
        Request::ListBooks => out.table(&coupons.books()?, BOOK_COLUMNS)?,
        Request::ShowBook(id) => out.record(&coupons.book(id)?)?,
        Request::UpdateBook(id, patch) => out.record(&coupons.update_book(id, &patch)?)?,
        Request::Generate {
            book,
            count,
            allow_guessable,
        } => out.record(&coupons.generate_codes(book, count, allow_guessable)?)?,
        Request::Import {
            book,
            mut rows,
            skip_invalid,
            size,
        } => {
            let progress = import_progress(size);
            let mut read = 0u64;
            let rows = std::iter::from_fn(|| {
                let row = rows.next()?;
                read += 1;
                if read % 4096 == 0 {
                    match size {
                        Some(_) => progress.set_position(rows.bytes_read()),
                        None => progress.set_position(read),
                    }
                }
                Some(row)
            });
            let report = coupons.import_codes(book, rows, skip_invalid);
            progress.finish_and_clear();
            let report = report?;
            if out.is_json() {
                out.record(&report)?;
            } else {
                let w = out.writer();
                writeln!(
                    w,
                    "inserted: {}\nduplicates: {}\ninvalid: {}",
                    report.inserted, report.duplicates, report.invalid_total
                )?;
                for row in &report.invalid {
                    writeln!(w, "  line {}: {:?}: {}", row.line, row.code, row.reason)?;
                }
                w.flush()?;
            }
        }
        Request::Export {
            book,
            state,
            output,
        } => export(coupons, book, state, output, out)?,
        Request::Void(codes) => out.table(&coupons.void_codes(&codes)?, COUPON_COLUMNS)?,
        Request::AssignRandom { book, user, key } => {
            out.record(&coupons.assign_random(book, &user, key.as_deref())?)?;
        }
        Request::AssignCode { code, user } => out.record(&coupons.assign_code(&code, &user)?)?,
        Request::Lock {
            code,
            user,
            ttl,
            token,
        } => out.record(&coupons.lock(&code, &user, ttl, token.as_deref())?)?,
        Request::Unlock { code, token } => {
            coupons.unlock(&code, &token)?;
            out.message(
                &json!({ "code": code, "unlocked": true }),
                &format!("{code} unlocked"),
            )?;
        }
        Request::Redeem {
            code,
            user,
            request,
        } => out.record(&coupons.redeem(&code, &user, &request)?)?,
        Request::Show(code) => out.record(&coupons.coupon(&code)?)?,
        Request::UserCoupons { user, book, state } => {
            out.table(&coupons.user_coupons(&user, book, state)?, COUPON_COLUMNS)?;
        }
        Request::Events { after, limit } => {
            out.table(&coupons.events(after, limit)?, EVENT_COLUMNS)?;
        }
        Request::CreateApiKey { role, name } => {
            let created = coupons.create_api_key(role, name.as_deref())?;
            out.record(&created)?;
            if !out.is_json() {
                eprintln!("Keep the key now: only its hash is stored, it cannot be shown again.");
            }
        }
        Request::ListApiKeys => out.table(&coupons.api_keys()?, API_KEY_COLUMNS)?,
        Request::RevokeApiKey(id) => out.record(&coupons.revoke_api_key(id)?)?,
        Request::Serve(_) => unreachable!("served by execute"),
    }
    Ok(())
}

/// On stderr when it is a terminal (hidden otherwise): a bar over the bytes of a file, or a
/// count of the rows read from standard input.
fn import_progress(size: Option<u64>) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let (bar, template) = match size {
        Some(size) => (
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr()),
            "{bar:40} {binary_bytes}/{binary_total_bytes} read ({elapsed}, {eta} left)",
        ),
        None => (
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            "{spinner} {human_pos} rows read ({elapsed})",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

fn export<W: Write>(
    coupons: &Coupons<Store>,
    book: coupon_core::BookId,
    state: Option<coupon_core::CodeState>,
    output: Option<PathBuf>,
    out: &mut Output<W>,
) -> Result<(), CliError> {
    let Some(path) = output else {
        write_csv(coupons, book, state, out.writer())?;
        return Ok(());
    };
    coupons.book(book)?; // not_found before creating the file
    let file = File::create(&path).map_err(|e| {
        CliError::Io(io::Error::new(
            e.kind(),
            format!("cannot create {}: {e}", path.display()),
        ))
    })?;
    let mut file = BufWriter::new(file);
    let rows = write_csv(coupons, book, state, &mut file)?;
    file.flush()?;
    let shown = path.display().to_string();
    out.message(
        &json!({ "rows": rows, "output": shown }),
        &format!("{rows} row(s) written to {shown}"),
    )?;
    Ok(())
}

fn write_csv<W: Write>(
    coupons: &Coupons<Store>,
    book: coupon_core::BookId,
    state: Option<coupon_core::CodeState>,
    sink: W,
) -> Result<u64, CliError> {
    let mut writer = csv::Writer::from_writer(sink);
    let failed = |e: csv::Error| {
        Error::with_source(ErrorKind::Backend, "cannot write the export", csv_io(e))
    };
    writer
        .write_record(["code", "state", "assigned_to", "redemptions"])
        .map_err(failed)?;
    let rows = coupons.export(book, state, |row: &ExportRow| {
        writer
            .write_record([
                row.code.as_str(),
                row.state.as_str(),
                row.assigned_to.as_deref().unwrap_or(""),
                &row.redemptions.to_string(),
            ])
            .map_err(failed)
    })?;
    writer.flush()?;
    Ok(rows)
}

/// The I/O error inside a csv writer's error (so that a closed pipe is recognized).
fn csv_io(e: csv::Error) -> io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => io::Error::other(format!("{other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            Database::parse("sqlite://data/c.db").unwrap(),
            Database::File("data/c.db".into())
        );
        assert_eq!(
            Database::parse("sqlite:///abs/c.db").unwrap(),
            Database::File("/abs/c.db".into())
        );
        assert_eq!(
            Database::parse("sqlite::memory:").unwrap(),
            Database::Memory
        );
        assert_eq!(
            Database::parse("coupons.db").unwrap(),
            Database::File("coupons.db".into())
        );
        for url in ["postgres://u:secret@h/db", "postgresql://h/db?schema=s"] {
            assert_eq!(
                Database::parse(url).unwrap(),
                Database::Postgres(url.to_owned())
            );
        }
        let debug = format!("{:?}", Database::parse("postgres://u:secret@h/db").unwrap());
        assert!(!debug.contains("secret"), "{debug}");
    }
}
