//! # coupon-store-postgres
//!
//! The Postgres store for [`coupon_core`]: any number of processes and hosts can share one
//! database, and every operation stays atomic and serializable per code and per (book, user).
//!
//! - **Row locks, not big locks:** write transactions run at READ COMMITTED and lock exactly
//!   the rows they decide on — the code (`SELECT … FOR UPDATE`) and the (book, user) pair that
//!   the per-user cap counts — and hold the book's lock in shared mode (an advisory lock), so
//!   operations on one book run side by side while a change of its settings waits for them.
//!   Read transactions are `REPEATABLE READ READ ONLY` snapshots.
//! - **Random assignment without scans:** each code has a random `slot`; a claim takes the first
//!   available code at or after a random slot in a partial index of available codes,
//!   `FOR UPDATE SKIP LOCKED`, so concurrent claims never wait for each other and the cost does
//!   not grow with the number of codes.
//! - **Bulk import with `COPY`:** large batches are copied into a temporary staging table and
//!   inserted with one plain `INSERT … SELECT` under a savepoint; from the first batch that meets
//!   a stored code on, with `ON CONFLICT DO NOTHING`. All inside the import's one transaction.
//! - **An event log through an outbox:** a writing transaction inserts its events into a
//!   pending table, numbered by a sequence, without taking any lock, so writers never take
//!   turns; reading the log first publishes the committed ones, in order, with consecutive
//!   `seq` under a one-row counter's lock. `seq` has no gaps, holds only committed events, and
//!   a reader following the log never misses a late commit; an operation that waited for
//!   another's lock is published after it.
//! - **Few round trips:** a transaction begins with its first statement; locking a code, its
//!   book's lock and reading the book are one call (a PL/pgSQL function), and the writes whose
//!   result nothing waits for (the code, the redemption, the events) are sent with `COMMIT` in
//!   one message. A redeem is three round trips.
//! - **Contention is retryable:** serialization failures, deadlocks and lock timeouts are
//!   `conflict` errors, which the service retries a few times.
//! - **Migrations** embedded in the binary and applied on open, under an advisory lock, so many
//!   processes can start at once on an empty database; a schema from a newer version is refused.
//! - **A small pool** (4 connections by default, opened on demand) so that dozens of processes
//!   do not exhaust the server's `max_connections`.
//!
//! ```no_run
//! use coupon_core::{BookSettings, Coupons};
//! use coupon_store_postgres::{PostgresOptions, PostgresStore};
//!
//! let store = PostgresStore::open_with(
//!     "postgres://coupon@db.internal/shop",
//!     PostgresOptions { schema: Some("coupons".into()), ..PostgresOptions::default() },
//! )?;
//! let coupons = Coupons::new(store);
//! let book = coupons.create_book(&BookSettings::new("Autumn"))?;
//! # let _ = book;
//! # Ok::<(), coupon_core::Error>(())
//! ```
//!
//! # Connection URLs
//!
//! `postgres://` and `postgresql://` URLs and `key=value` connection strings are read by the
//! [`postgres`] driver (libpq's forms: `postgres://user:password@host:port/database?options`).
//! One more query parameter is understood and removed before connecting: `schema=NAME`, the
//! schema holding the tables (created when missing; it becomes the connection's only
//! `search_path` entry). Without it, tables live in the first schema of the server's
//! `search_path` (usually `public`). A URL without a host connects to `localhost`. TLS is not
//! supported by this build: connect over a trusted network or a local socket.
//!
//! Connections keep session state (search path, `lock_timeout`, prepared statements): behind a
//! connection pooler such as PgBouncer, use session pooling.

mod apikeys;
mod error;
mod literal;
mod migrate;
mod tx;

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use coupon_core::store::{Access, CouponStore, StoreTx};
use coupon_core::{Error, ErrorKind, Result};
use postgres::config::Host;
use postgres::{NoTls, Statement};
use r2d2::ManageConnection;
use r2d2_postgres::PostgresConnectionManager;

pub use migrate::SCHEMA_VERSION;
pub use postgres;
pub use r2d2;

/// How a store connects to its database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// The most connections the pool opens (they are opened on demand). Default 4.
    pub pool_size: u32,
    /// The schema holding the tables, created when missing. `None` (the default) takes the URL's
    /// `schema` parameter or, without one, the first schema of the server's `search_path`.
    pub schema: Option<String>,
    /// How long a statement waits for a row lock before the transaction fails with a retryable
    /// `conflict` (Postgres `lock_timeout`; zero waits without limit). Default 5 s.
    pub lock_timeout: Duration,
    /// How long opening a connection may take, unless the URL says (`connect_timeout`).
    /// Default 10 s.
    pub connect_timeout: Duration,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            pool_size: 4,
            schema: None,
            lock_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// A coupon store in a Postgres database.
pub struct PostgresStore {
    pool: r2d2::Pool<Manager>,
    location: String,
    /// The lock timeout of a change of a book's settings, when shorter than `lock_timeout`.
    book_update_wait: Option<String>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` with default options and brings its schema up to date.
    ///
    /// # Errors
    /// `invalid_input` for a URL that cannot be read; `backend` when the server cannot be
    /// reached, the database or role does not exist, the login is refused, or the schema was
    /// made by a newer version. Messages name the server and database, never the password.
    pub fn open(url: &str) -> Result<Self> {
        PostgresStore::open_with(url, PostgresOptions::default())
    }

    /// Connects to the database at `url` with `options`.
    ///
    /// One connection is opened (and the schema migrated on it) before this returns, so a
    /// server that cannot be used fails here, at once; it becomes the pool's first connection.
    ///
    /// # Errors
    /// As [`PostgresStore::open`].
    pub fn open_with(url: &str, options: PostgresOptions) -> Result<Self> {
        let target = Target::parse(url, &options)?;
        let location = target.location.clone();
        let manager = Manager {
            inner: PostgresConnectionManager::new(target.config, NoTls),
            search_path: target.schema.as_deref().map(migrate::quote_ident),
            lock_timeout: format!("{}ms", options.lock_timeout.as_millis()),
            spare: Mutex::new(None),
        };
        let mut conn = manager
            .connect()
            .map_err(|e| error::connect(&location, e))?;
        migrate::migrate(&mut conn.client, target.schema.as_deref())
            .map_err(|e| located(&location, e))?;
        *manager.spare.lock().unwrap_or_else(|e| e.into_inner()) = Some(conn);
        let pool = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(0))
            // A dead connection fails its transaction's BEGIN, which is retried on another.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(30))
            .build_unchecked(manager);
        let unlimited = options.lock_timeout.is_zero();
        let book_update_wait = (unlimited || options.lock_timeout > tx::BOOK_UPDATE_WAIT)
            .then(|| format!("{}ms", tx::BOOK_UPDATE_WAIT.as_millis()));
        Ok(PostgresStore {
            pool,
            location,
            book_update_wait,
        })
    }

    /// Where the database is: `postgres://user@host:port/database` (and `?schema=NAME`), without
    /// the password.
    pub fn location(&self) -> &str {
        &self.location
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<Manager>> {
        self.pool.get().map_err(|e| error::pool(&self.location, e))
    }
}

/// Adds the database's location to a backend error's message.
fn located(location: &str, err: Error) -> Error {
    if err.kind() != ErrorKind::Backend {
        return err;
    }
    let message = format!("{} ({location})", err.message());
    Error::with_source(err.kind(), message, err)
}

impl CouponStore for PostgresStore {
    fn transaction<T>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
    ) -> Result<T> {
        let mut conn = self.connection()?;
        let Conn {
            client,
            statements,
            prepared,
        } = &mut *conn;
        // Begun on the server by its first statement; rolled back when dropped uncommitted.
        let mut stx = tx::PgTx::new(
            client,
            statements,
            prepared,
            access == Access::Write,
            self.book_update_wait.as_deref(),
        );
        let value = f(&mut stx).map_err(|e| located(&self.location, e))?;
        stx.commit().map_err(|e| located(&self.location, e))?;
        Ok(value)
    }
}

/// A pooled connection: the client and its prepared statements.
pub(crate) struct Conn {
    client: postgres::Client,
    /// Statements prepared by the driver, by their SQL.
    statements: HashMap<&'static str, Statement>,
    /// Statements prepared with SQL `PREPARE` (the deferred writes), by name.
    prepared: HashSet<&'static str>,
}

/// Opens connections and sets up their session (search path, lock timeout).
struct Manager {
    inner: PostgresConnectionManager<NoTls>,
    /// The quoted schema to put alone on the search path, if one was chosen.
    search_path: Option<String>,
    lock_timeout: String,
    /// The connection `open` checked the server with, handed out first.
    spare: Mutex<Option<Conn>>,
}

impl ManageConnection for Manager {
    type Connection = Conn;
    type Error = postgres::Error;

    fn connect(&self) -> std::result::Result<Conn, postgres::Error> {
        if let Some(conn) = self.spare.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Ok(conn);
        }
        let mut client = self.inner.connect()?;
        // standard_conforming_strings: the deferred writes' literals rely on it (see
        // `literal`); it is the server's default, but a server or role may say otherwise.
        client.execute(
            "SELECT set_config('lock_timeout', $1, false), \
             set_config('search_path', coalesce($2, current_setting('search_path')), false), \
             set_config('standard_conforming_strings', 'on', false)",
            &[&self.lock_timeout, &self.search_path],
        )?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
            prepared: HashSet::new(),
        })
    }

    fn is_valid(&self, conn: &mut Conn) -> std::result::Result<(), postgres::Error> {
        self.inner.is_valid(&mut conn.client)
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.client.is_closed()
    }
}

/// A parsed URL: the driver's configuration, the schema and a description without secrets.
struct Target {
    config: postgres::Config,
    schema: Option<String>,
    location: String,
}

impl Target {
    fn parse(url: &str, options: &PostgresOptions) -> Result<Target> {
        let (url, url_schema) = take_schema(url)?;
        let mut config = postgres::Config::from_str(&url).map_err(|e| {
            Error::with_source(
                ErrorKind::InvalidInput,
                format!(
                    "the Postgres URL cannot be read ({}); use postgres://user@host:port/database",
                    error::chain(&e)
                ),
                e,
            )
        })?;
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host("localhost");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        if config.get_application_name().is_none() {
            config.application_name("coupon");
        }
        let schema = options.schema.clone().or(url_schema);
        if let Some(name) = &schema {
            check_schema(name)?;
        }
        let location = describe(&config, schema.as_deref());
        Ok(Target {
            config,
            schema,
            location,
        })
    }
}

/// `postgres://user@host:port/database[?schema=NAME]`: what the config points at, without the
/// password.
fn describe(config: &postgres::Config, schema: Option<&str>) -> String {
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(ToString::to_string)
            .collect()
    } else {
        config
            .get_hosts()
            .iter()
            .map(|h| match h {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    };
    let ports = config.get_ports();
    let hosts: Vec<String> = hosts
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let database = config.get_dbname().or(config.get_user()).unwrap_or("");
    let mut text = format!("postgres://{user}{}/{database}", hosts.join(","));
    if let Some(schema) = schema {
        text.push_str(&format!("?schema={schema}"));
    }
    text
}

/// Removes the `schema` query parameter from a URL and returns it, decoded.
fn take_schema(url: &str) -> Result<(String, Option<String>)> {
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return Ok((url.to_owned(), None));
    };
    let mut schema = None;
    let mut kept = vec![];
    for pair in query.split('&') {
        match pair.split_once('=') {
            Some(("schema", value)) => schema = Some(percent_decode(value)?),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, schema))
}

fn percent_decode(text: &str) -> Result<String> {
    let bad = || {
        Error::invalid_input("the schema in the Postgres URL is not valid percent-encoded UTF-8")
    };
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3).ok_or_else(bad)?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A schema name Postgres accepts: 1–63 bytes, no NUL.
fn check_schema(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 63 || name.contains('\0') {
        return Err(Error::invalid_input(format!(
            "schema name {name:?} is not valid; use 1 to 63 bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
