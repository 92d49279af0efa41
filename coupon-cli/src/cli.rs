//! The command line: clap definitions, and their validation into typed [`Request`]s before any
//! store is opened.

use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use coupon_core::apikey::{validate_name, ApiKeyId, Role};
use coupon_core::{
    normalize_code, validate_lock_ttl, validate_user_id, BookId, BookPatch, BookSettings,
    CodeState, Error, Pattern, RedeemRequest, Timestamp,
};

use crate::csv_input::CsvRows;
use crate::exit;

/// `coupon`: coupon books, codes, locks and redemptions on an SQLite or Postgres database.
#[derive(Debug, Parser)]
#[command(name = "coupon", version, about, after_help = exit::HELP)]
pub struct Cli {
    /// Where the database is.
    #[command(flatten)]
    pub database: DatabaseOpts,
    /// Print exactly one JSON document on stdout (and errors as JSON on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Connection options.
#[derive(Debug, Args)]
pub struct DatabaseOpts {
    /// Database URL: postgres://USER@HOST:PORT/DATABASE (add ?schema=NAME for a schema other than
    /// the server's default), sqlite://PATH, sqlite:///abs/path, sqlite::memory: or a plain file
    /// path. Tables (and an SQLite file or a Postgres schema) are created and migrated on first
    /// use; a missing parent directory is an error.
    #[arg(
        long,
        global = true,
        env = "COUPON_DATABASE_URL",
        hide_env_values = true,
        default_value = "coupons.db"
    )]
    pub database_url: String,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, show and update books.
    #[command(subcommand)]
    Book(BookCommand),
    /// Generate, import, export and void codes.
    #[command(subcommand)]
    Codes(CodesCommand),
    /// Assign a random code of BOOK to a user, or a specific code with --code.
    Assign {
        /// The book to draw a random code from.
        #[arg(required_unless_present = "code", conflicts_with = "code")]
        book: Option<BookId>,
        /// Assign this code instead of a random one.
        #[arg(long)]
        code: Option<String>,
        /// The user receiving the code.
        #[arg(long)]
        user: String,
        /// Repeating a random assign with the same key returns the same code.
        #[arg(long, conflicts_with = "code")]
        idempotency_key: Option<String>,
    },
    /// Lock a code for a user's checkout (assigning it if it is available).
    Lock {
        /// The code.
        code: String,
        /// The user.
        #[arg(long)]
        user: String,
        /// How long the lock lasts (e.g. 90s, 5m, 2h; 1s to 24h). Default: the book's lock TTL.
        #[arg(long)]
        ttl: Option<String>,
        /// The token of the live lock, to extend it.
        #[arg(long)]
        token: Option<String>,
    },
    /// Release a live lock early.
    Unlock {
        /// The code.
        code: String,
        /// The lock's token.
        #[arg(long)]
        token: String,
    },
    /// Redeem a code once for a user.
    Redeem {
        /// The code.
        code: String,
        /// The user holding the code.
        #[arg(long)]
        user: String,
        /// The live lock's token (needed when the code is locked).
        #[arg(long)]
        token: Option<String>,
        /// The order id: repeating a redeem with the same order id replays the receipt.
        #[arg(long)]
        order_id: Option<String>,
        /// Free context, as JSON.
        #[arg(long)]
        context: Option<String>,
    },
    /// Show one code.
    Show {
        /// The code.
        code: String,
    },
    /// A user's coupons.
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list and revoke the API keys of the HTTP service.
    #[command(subcommand)]
    Apikey(ApikeyCommand),
    /// Serve the HTTP API (SPEC §10) on this database until SIGTERM or Ctrl-C.
    #[command(long_about = SERVE_HELP)]
    Serve {
        /// The address to listen on; port 0 picks a free port (the log says which).
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Requests per second each API key may send, with a burst of as many; 0 turns the
        /// limit off.
        #[arg(long, default_value_t = 1000)]
        rate_limit: u32,
    },
    /// Read the event log.
    Events {
        /// Read events after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// How many events to read at most (1 to 10000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

/// The long help of `coupon serve`.
const SERVE_HELP: &str = "\
Serve the HTTP API (SPEC §10) on this database until SIGTERM or Ctrl-C.

Requests need an API key (coupon apikey create --role admin|client), sent as
Authorization: Bearer KEY; /health and /openapi.json are open. The OpenAPI 3.1 document of every
endpoint is served at /openapi.json.

Logs are JSON lines on stderr (RUST_LOG sets the level, default info). The first one gives the
address actually bound: {\"message\":\"listening\",\"address\":\"127.0.0.1:8080\",...}; then one
line per request with method, route, status, latency and key name.

On SIGTERM or Ctrl-C the server stops accepting, finishes the requests in flight and exits 0. It
exits 1 when the address cannot be bound or the database cannot be opened.";

/// `coupon book …`
#[derive(Debug, Subcommand)]
pub enum BookCommand {
    /// Create a book.
    Create {
        /// The book's name (1-255 characters).
        #[arg(long)]
        name: String,
        /// The other settings.
        #[command(flatten)]
        settings: BookFlags,
    },
    /// List every book.
    List,
    /// Show a book with its statistics.
    Show {
        /// The book id.
        book: BookId,
    },
    /// Change a book's settings.
    Update {
        /// The book id.
        book: BookId,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        /// The settings to change.
        #[command(flatten)]
        settings: BookFlags,
    },
}

/// The settings of a book, as flags. On update, an empty value clears an optional setting.
#[derive(Debug, Args)]
pub struct BookFlags {
    /// A description (up to 10,000 characters; empty clears it).
    #[arg(long)]
    pub description: Option<String>,
    /// Start of validity, RFC 3339 (e.g. 2026-01-01T00:00:00Z; empty clears it).
    #[arg(long)]
    pub valid_from: Option<String>,
    /// End of validity, RFC 3339 (empty clears it).
    #[arg(long)]
    pub valid_until: Option<String>,
    /// How many times the holder of a code may redeem it (at least 1; default 1).
    #[arg(long)]
    pub max_redemptions_per_user: Option<u32>,
    /// How many codes of the book one user may hold (at least 1, or `unlimited`, the default).
    #[arg(long)]
    pub max_codes_per_user: Option<String>,
    /// The pattern `codes generate` draws from, e.g. 'SUMMER-[A-Z0-9]{8}' (empty clears it).
    #[arg(long)]
    pub pattern: Option<String>,
    /// Default lock TTL (e.g. 90s, 5m, 2h; 1s to 24h; default 5m).
    #[arg(long)]
    pub lock_ttl: Option<String>,
}

/// `coupon codes …`
#[derive(Debug, Subcommand)]
pub enum CodesCommand {
    /// Generate new codes from the book's pattern.
    Generate {
        /// The book id.
        book: BookId,
        /// How many codes to generate (at least 1).
        #[arg(long)]
        count: u64,
        /// Allow a pattern whose codes are easy to guess (more than 1 in 1000 taken).
        #[arg(long)]
        allow_guessable: bool,
    },
    /// Import codes from a CSV file (one code per line, or a `code` column), all or nothing.
    Import {
        /// The book id.
        book: BookId,
        /// The CSV file, or `-` for standard input.
        file: String,
        /// Import the valid rows and report the others instead of refusing the whole file.
        #[arg(long)]
        skip_invalid: bool,
    },
    /// Export a book's codes as CSV: code,state,assigned_to,redemptions.
    Export {
        /// The book id.
        book: BookId,
        /// Only codes in this state (available, active, locked, redeemed, expired, void).
        #[arg(long)]
        state: Option<String>,
        /// Write to this file instead of standard output.
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Void codes: they can never be assigned or redeemed again. All or nothing: if one code
    /// is unknown, none is voided.
    Void {
        /// The codes.
        #[arg(required = true)]
        codes: Vec<String>,
    },
}

/// `coupon apikey …`
#[derive(Debug, Subcommand)]
pub enum ApikeyCommand {
    /// Create a key and print it once: only its hash is stored, so it cannot be shown again.
    Create {
        /// admin (manages books and codes, reads events) or client (assigns, locks, redeems,
        /// reads books and a user's coupons).
        #[arg(long)]
        role: String,
        /// A name for people and the request log (1-200 characters).
        #[arg(long)]
        name: Option<String>,
    },
    /// List every key (without the secret), revoked ones included.
    List,
    /// Revoke a key: a running server refuses it within 5 seconds.
    Revoke {
        /// The key's id.
        id: ApiKeyId,
    },
}

/// `coupon user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Every code a user holds.
    Coupons {
        /// The user.
        user: String,
        /// Only codes of this book.
        #[arg(long)]
        book: Option<BookId>,
        /// Only codes in this state.
        #[arg(long)]
        state: Option<String>,
    },
}

/// A command with validated, typed arguments.
pub enum Request {
    /// `book create`
    CreateBook(BookSettings),
    /// `book list`
    ListBooks,
    /// `book show`
    ShowBook(BookId),
    /// `book update`
    UpdateBook(BookId, BookPatch),
    /// `codes generate`
    Generate {
        /// The book.
        book: BookId,
        /// How many.
        count: u64,
        /// Skip the guessability guard.
        allow_guessable: bool,
    },
    /// `codes import`
    Import {
        /// The book.
        book: BookId,
        /// The rows.
        rows: CsvRows<Box<dyn Read>>,
        /// Import the valid rows only.
        skip_invalid: bool,
        /// The size of the input in bytes, when it is a file.
        size: Option<u64>,
    },
    /// `codes export`
    Export {
        /// The book.
        book: BookId,
        /// Only this state.
        state: Option<CodeState>,
        /// The output file.
        output: Option<PathBuf>,
    },
    /// `codes void`
    Void(Vec<String>),
    /// `assign BOOK`
    AssignRandom {
        /// The book.
        book: BookId,
        /// The user.
        user: String,
        /// The idempotency key.
        key: Option<String>,
    },
    /// `assign --code`
    AssignCode {
        /// The code.
        code: String,
        /// The user.
        user: String,
    },
    /// `lock`
    Lock {
        /// The code.
        code: String,
        /// The user.
        user: String,
        /// The TTL.
        ttl: Option<Duration>,
        /// The live lock's token.
        token: Option<String>,
    },
    /// `unlock`
    Unlock {
        /// The code.
        code: String,
        /// The token.
        token: String,
    },
    /// `redeem`
    Redeem {
        /// The code.
        code: String,
        /// The user.
        user: String,
        /// Token, order id and context.
        request: RedeemRequest,
    },
    /// `show`
    Show(String),
    /// `user coupons`
    UserCoupons {
        /// The user.
        user: String,
        /// Only this book.
        book: Option<BookId>,
        /// Only this state.
        state: Option<CodeState>,
    },
    /// `apikey create`
    CreateApiKey {
        /// The role.
        role: Role,
        /// The name.
        name: Option<String>,
    },
    /// `apikey list`
    ListApiKeys,
    /// `apikey revoke`
    RevokeApiKey(ApiKeyId),
    /// `serve`
    Serve(coupon_server::ServerConfig),
    /// `events`
    Events {
        /// After this sequence number.
        after: i64,
        /// At most this many.
        limit: usize,
    },
}

impl Command {
    /// Checks the arguments and turns them into a typed request. Nothing is opened but the
    /// import's input file.
    ///
    /// # Errors
    /// `invalid_input` (or `invalid_pattern`) for a value out of range or malformed.
    pub fn validate(self) -> Result<Request, Error> {
        Ok(match self {
            Command::Book(BookCommand::Create { name, settings }) => {
                let mut book = BookSettings::new(name);
                settings.apply_to_new(&mut book)?;
                Request::CreateBook(book.validated()?)
            }
            Command::Book(BookCommand::List) => Request::ListBooks,
            Command::Book(BookCommand::Show { book }) => Request::ShowBook(book),
            Command::Book(BookCommand::Update {
                book,
                name,
                settings,
            }) => {
                let patch = settings.patch(name)?;
                if patch.is_empty() {
                    return Err(Error::invalid_input(
                        "nothing to update; pass at least one setting such as --name or --lock-ttl",
                    ));
                }
                Request::UpdateBook(book, patch)
            }
            Command::Codes(CodesCommand::Generate {
                book,
                count,
                allow_guessable,
            }) => {
                if count == 0 {
                    return Err(Error::invalid_input(
                        "--count 0 is out of range; generate at least 1 code",
                    ));
                }
                Request::Generate {
                    book,
                    count,
                    allow_guessable,
                }
            }
            Command::Codes(CodesCommand::Import {
                book,
                file,
                skip_invalid,
            }) => {
                let (input, size): (Box<dyn Read>, _) = if file == "-" {
                    (Box::new(std::io::stdin()), None)
                } else {
                    let opened = File::open(&file)
                        .map_err(|e| Error::invalid_input(format!("cannot read {file}: {e}")))?;
                    let size = opened.metadata().ok().map(|m| m.len());
                    (Box::new(opened), size)
                };
                let rows = CsvRows::new(input).map_err(|e| {
                    let name = if file == "-" { "standard input" } else { &file };
                    Error::invalid_input(format!("{name}: {}", e.message()))
                })?;
                Request::Import {
                    book,
                    rows,
                    skip_invalid,
                    size,
                }
            }
            Command::Codes(CodesCommand::Export {
                book,
                state,
                output,
            }) => Request::Export {
                book,
                state: state.as_deref().map(str::parse).transpose()?,
                output,
            },
            Command::Codes(CodesCommand::Void { codes }) => Request::Void(
                codes
                    .iter()
                    .map(|c| normalize_code(c))
                    .collect::<Result<_, _>>()?,
            ),
            Command::Assign {
                book,
                code,
                user,
                idempotency_key,
            } => {
                validate_user_id(&user)?;
                match (book, code) {
                    (_, Some(code)) => Request::AssignCode {
                        code: normalize_code(&code)?,
                        user,
                    },
                    (Some(book), None) => Request::AssignRandom {
                        book,
                        user,
                        key: idempotency_key,
                    },
                    (None, None) => {
                        return Err(Error::invalid_input(
                            "give a BOOK for a random code, or --code CODE",
                        ))
                    }
                }
            }
            Command::Lock {
                code,
                user,
                ttl,
                token,
            } => {
                validate_user_id(&user)?;
                Request::Lock {
                    code: normalize_code(&code)?,
                    user,
                    ttl: ttl.as_deref().map(|t| parse_ttl("--ttl", t)).transpose()?,
                    token,
                }
            }
            Command::Unlock { code, token } => Request::Unlock {
                code: normalize_code(&code)?,
                token,
            },
            Command::Redeem {
                code,
                user,
                token,
                order_id,
                context,
            } => {
                validate_user_id(&user)?;
                let context = context
                    .map(|c| {
                        serde_json::from_str(&c).map_err(|e| {
                            Error::invalid_input(format!("--context is not valid JSON: {e}"))
                        })
                    })
                    .transpose()?;
                Request::Redeem {
                    code: normalize_code(&code)?,
                    user,
                    request: RedeemRequest {
                        lock_token: token,
                        order_id,
                        context,
                    },
                }
            }
            Command::Show { code } => Request::Show(normalize_code(&code)?),
            Command::User(UserCommand::Coupons { user, book, state }) => {
                validate_user_id(&user)?;
                Request::UserCoupons {
                    user,
                    book,
                    state: state.as_deref().map(str::parse).transpose()?,
                }
            }
            Command::Apikey(ApikeyCommand::Create { role, name }) => Request::CreateApiKey {
                role: role.parse()?,
                name: name.as_deref().map(validate_name).transpose()?,
            },
            Command::Apikey(ApikeyCommand::List) => Request::ListApiKeys,
            Command::Apikey(ApikeyCommand::Revoke { id }) => Request::RevokeApiKey(id),
            Command::Serve { bind, rate_limit } => Request::Serve(coupon_server::ServerConfig {
                bind,
                rate_limit,
                ..coupon_server::ServerConfig::default()
            }),
            Command::Events { after, limit } => {
                if after < 0 {
                    return Err(Error::invalid_input(format!(
                        "--after {after} is negative; use 0 to read from the start"
                    )));
                }
                if limit == 0 || limit > coupon_core::MAX_EVENTS_PAGE {
                    return Err(Error::invalid_input(format!(
                        "--limit {limit} is out of range; use 1 to {}",
                        coupon_core::MAX_EVENTS_PAGE
                    )));
                }
                Request::Events { after, limit }
            }
        })
    }
}

impl BookFlags {
    /// Sets the given flags on new settings.
    fn apply_to_new(self, book: &mut BookSettings) -> Result<(), Error> {
        let patch = self.patch(None)?;
        *book = patch.apply(book);
        Ok(())
    }

    /// The change the flags describe.
    fn patch(self, name: Option<String>) -> Result<BookPatch, Error> {
        if let Some(Some(pattern)) = self.pattern.as_deref().map(non_empty) {
            Pattern::parse(pattern)?;
        }
        Ok(BookPatch {
            name,
            description: self.description.map(|d| non_empty(&d).map(str::to_owned)),
            valid_from: self
                .valid_from
                .map(|t| parse_optional_time("--valid-from", &t))
                .transpose()?,
            valid_until: self
                .valid_until
                .map(|t| parse_optional_time("--valid-until", &t))
                .transpose()?,
            max_redemptions_per_user: self
                .max_redemptions_per_user
                .map(|n| at_least_one("--max-redemptions-per-user", n))
                .transpose()?,
            max_codes_per_user: self
                .max_codes_per_user
                .map(|n| parse_codes_cap(&n))
                .transpose()?,
            code_pattern: self.pattern.map(|p| non_empty(&p).map(str::to_owned)),
            lock_ttl: self
                .lock_ttl
                .map(|t| parse_ttl("--lock-ttl", &t))
                .transpose()?,
        })
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.trim().is_empty()).then_some(s)
}

fn at_least_one(flag: &str, n: u32) -> Result<u32, Error> {
    if n == 0 {
        return Err(Error::invalid_input(format!(
            "{flag} 0 is out of range; use at least 1"
        )));
    }
    Ok(n)
}

/// `unlimited` or a number ≥ 1.
fn parse_codes_cap(value: &str) -> Result<Option<u32>, Error> {
    if value.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let n = value.parse::<u32>().map_err(|_| {
        Error::invalid_input(format!(
            "--max-codes-per-user {value:?} is not a number; use 1 or more, or `unlimited`"
        ))
    })?;
    at_least_one("--max-codes-per-user", n).map(Some)
}

/// A duration like `90s`, `5m` or `2h`, between 1 s and 24 h.
pub fn parse_ttl(flag: &str, value: &str) -> Result<Duration, Error> {
    let ttl = humantime::parse_duration(value).map_err(|e| {
        Error::invalid_input(format!(
            "{flag} {value:?} is not a duration ({e}); use e.g. 90s, 5m or 2h"
        ))
    })?;
    validate_lock_ttl(flag, ttl)?;
    Ok(ttl)
}

/// An RFC 3339 time, or `None` for an empty value (clearing the setting).
fn parse_optional_time(flag: &str, value: &str) -> Result<Option<Timestamp>, Error> {
    if value.trim().is_empty() {
        return Ok(None);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| Some(t.with_timezone(&Utc)))
        .map_err(|e| {
            Error::invalid_input(format!(
                "{flag} {value:?} is not an RFC 3339 time ({e}); use e.g. 2026-01-31T23:59:59Z"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use coupon_core::ErrorKind;

    fn parse(args: &[&str]) -> Result<Request, Error> {
        let mut all = vec!["coupon"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap().command.validate()
    }

    fn kind(args: &[&str]) -> ErrorKind {
        parse(args).err().unwrap().kind()
    }

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_ttl("--ttl", "90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("--ttl", "5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_ttl("--ttl", "2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_ttl("--ttl", "25h").is_err());
        assert!(parse_ttl("--ttl", "soon").is_err());
        assert!(parse_ttl("--ttl", "0s").is_err());
    }

    #[test]
    fn out_of_range_values_are_invalid_input() {
        assert_eq!(
            kind(&["codes", "generate", "1", "--count", "0"]),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(&["lock", "A", "--user", "u", "--ttl", "25h"]),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(&["lock", "A", "--user", "u", "--ttl", "1500ms"]),
            ErrorKind::InvalidInput,
            "TTLs are whole seconds, checked before the database is opened"
        );
        assert_eq!(kind(&["events", "--limit", "0"]), ErrorKind::InvalidInput);
        assert_eq!(
            kind(&["book", "create", "--name", "x", "--valid-from", "tomorrow"]),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(&["book", "create", "--name", "x", "--max-codes-per-user", "0"]),
            ErrorKind::InvalidInput
        );
        assert_eq!(
            kind(&["redeem", "A", "--user", "u", "--context", "{nope"]),
            ErrorKind::InvalidInput
        );
        assert_eq!(kind(&["book", "update", "1"]), ErrorKind::InvalidInput);
        assert_eq!(kind(&["show", "two words"]), ErrorKind::InvalidInput);
    }

    #[test]
    fn book_flags_build_settings() {
        let Ok(Request::CreateBook(book)) = parse(&[
            "book",
            "create",
            "--name",
            "Summer",
            "--valid-until",
            "2030-01-01T00:00:00+01:00",
            "--max-codes-per-user",
            "2",
            "--pattern",
            "S-[0-9]{4}",
            "--lock-ttl",
            "90s",
        ]) else {
            panic!("not a create");
        };
        assert_eq!(book.max_codes_per_user, Some(2));
        assert_eq!(book.lock_ttl, Duration::from_secs(90));
        assert_eq!(
            book.valid_until.unwrap().to_rfc3339(),
            "2029-12-31T23:00:00+00:00"
        );
    }

    #[test]
    fn update_can_clear() {
        let Ok(Request::UpdateBook(1, patch)) = parse(&[
            "book",
            "update",
            "1",
            "--valid-until",
            "",
            "--max-codes-per-user",
            "unlimited",
        ]) else {
            panic!("not an update");
        };
        assert_eq!(patch.valid_until, Some(None));
        assert_eq!(patch.max_codes_per_user, Some(None));
    }

    #[test]
    fn serve_flags() {
        let Ok(Request::Serve(config)) = parse(&["serve"]) else {
            panic!("not a serve");
        };
        assert_eq!(config, coupon_server::ServerConfig::default());
        let Ok(Request::Serve(config)) =
            parse(&["serve", "--bind", "0.0.0.0:0", "--rate-limit", "0"])
        else {
            panic!("not a serve");
        };
        assert_eq!((config.bind.port(), config.rate_limit), (0, 0));
        assert!(Cli::try_parse_from(["coupon", "serve", "--bind", "localhost"]).is_err());
        assert!(Cli::try_parse_from(["coupon", "serve", "--rate-limit", "-1"]).is_err());
    }

    #[test]
    fn assign_needs_a_book_or_a_code() {
        let mut cmd = Cli::command();
        assert!(cmd
            .try_get_matches_from_mut(["coupon", "assign", "--user", "u"])
            .is_err());
        assert!(
            Cli::try_parse_from(["coupon", "assign", "1", "--code", "A", "--user", "u"]).is_err()
        );
        assert!(matches!(
            parse(&["assign", "--code", "a", "--user", "u"]),
            Ok(Request::AssignCode { code, .. }) if code == "A"
        ));
    }
}
