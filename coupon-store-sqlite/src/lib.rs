//! # coupon-store-sqlite
//!
//! The embedded SQLite store for [`coupon_core`]: one file, migrated on open, safe under any
//! number of threads and processes.
//!
//! - **WAL** journal with `synchronous = NORMAL`: readers never block the writer, and a commit
//!   survives a process crash (an OS crash may lose the last commits, never corrupt the file).
//!   A thread of the store checkpoints the log every 50 ms, so commits do not wait for it.
//! - **Write transactions take the write lock up front** (`BEGIN IMMEDIATE`), so a
//!   read-then-write transaction never fails half-way on a lock upgrade, and every operation is
//!   serializable: one writer at a time per database, across processes.
//! - **Busy timeout** (5 s by default): a writer waits for the lock; if it is still busy the
//!   error is a retryable `conflict`, which the service retries a few times.
//! - **Foreign keys on**, codes unique in the whole store (the code is the table's key), and
//!   indexes that keep every single-code operation independent of the number of codes: random
//!   assignment seeks a random `slot` in an index of available codes.
//! - **Migrations** embedded in the binary and applied on open in one transaction; the schema
//!   version is recorded, and a database from a newer version is refused.
//!
//! ```
//! use coupon_core::{BookSettings, Coupons};
//! use coupon_store_sqlite::SqliteStore;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let coupons = Coupons::new(SqliteStore::open(dir.path().join("coupons.db"))?);
//! let book = coupons.create_book(&BookSettings::new("Autumn"))?;
//! assert_eq!(coupons.books()?.len(), 1);
//! # let _ = book;
//! # Ok::<(), coupon_core::Error>(())
//! ```

mod apikeys;
mod checkpoint;
mod error;
mod migrate;
mod tx;

use std::path::{Path, PathBuf};
use std::time::Duration;

use coupon_core::store::{Access, CouponStore, StoreTx};
use coupon_core::{Error, Result};
use r2d2::ManageConnection;
use r2d2_sqlite::SqliteConnectionManager;

pub use migrate::SCHEMA_VERSION;
pub use r2d2;
pub use rusqlite;

use crate::error::classify;

/// The settings of every connection: durable commits without an `fsync` each (WAL with
/// `synchronous = NORMAL`), foreign keys enforced, a checkpoint by the committing connection
/// only once the log holds 20,000 pages (80 MiB; below that a store checkpoints the log on a
/// thread of its own every 50 ms, so that commits do not wait for it), and an 8 MiB page cache
/// rather than 2 MiB.
///
/// The cache: the bundled SQLite is built with `SQLITE_ENABLE_MEMORY_MANAGEMENT`, so all the
/// connections of a process share one page budget, the sum of their cache sizes. A connection
/// that has taken over most of that budget (after a burst of writes, each new page taken
/// from the least recently used) leaves another one, whose cache a change by the first has
/// emptied, freeing each page as soon as it releases it: every transaction of the second then
/// reads all its pages again. With 2 MiB per connection, two connections taking turns at
/// redeems for 3 seconds each did so for whole turns (17 reads per redeem instead of 0.1,
/// 40 µs of CPU instead of 25); with 8 MiB, not once.
pub const CONNECTION_PRAGMAS: &str = "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
     PRAGMA wal_autocheckpoint = 20000; PRAGMA cache_size = -8192;";

/// How a store opens its database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The most connections the pool opens (they are opened on demand). Default 4.
    pub pool_size: u32,
    /// How long a writer waits for the database lock before `conflict`. Default 5 s.
    pub busy_timeout: Duration,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            pool_size: 4,
            busy_timeout: Duration::from_secs(5),
        }
    }
}

/// A coupon store in an SQLite database file (or in memory).
pub struct SqliteStore {
    /// Stopped before the pool closes, so that the pool's last connection, closing, finds the
    /// log checkpointed and removes it.
    _checkpointer: Option<checkpoint::Checkpointer>,
    pool: r2d2::Pool<SqliteConnectionManager>,
    location: String,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` with default options and brings its
    /// schema up to date.
    ///
    /// # Errors
    /// `backend` when the path is a directory, its directory does not exist, the file is not an
    /// SQLite database, cannot be written, or was made by a newer version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        SqliteStore::open_with(path, SqliteOptions::default())
    }

    /// Opens the database at `path` with `options`.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self> {
        let path = path.as_ref();
        let location = path.display().to_string();
        check_path(path)?;
        let manager = SqliteConnectionManager::file(path);
        SqliteStore::build(manager, options, location, false)
    }

    /// A private database in memory, gone when the store is dropped (one connection).
    ///
    /// # Errors
    /// `backend` if SQLite cannot allocate it.
    pub fn memory() -> Result<Self> {
        let options = SqliteOptions {
            pool_size: 1,
            ..SqliteOptions::default()
        };
        SqliteStore::build(
            SqliteConnectionManager::memory(),
            options,
            ":memory:".into(),
            true,
        )
    }

    fn build(
        manager: SqliteConnectionManager,
        options: SqliteOptions,
        location: String,
        in_memory: bool,
    ) -> Result<Self> {
        let busy = options.busy_timeout;
        let manager = manager.with_init(move |conn| {
            conn.busy_timeout(busy)?;
            // Room for every statement of the store, so none is prepared twice.
            conn.set_prepared_statement_cache_capacity(64);
            // The answer is the mode now in force ("wal", or "memory" in memory).
            let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
            conn.execute_batch(CONNECTION_PRAGMAS)
        });
        let mut builder = r2d2::Pool::builder()
            .max_size(options.pool_size.max(1))
            .min_idle(Some(0))
            // A connection to a file does not go stale as a network one does.
            .test_on_check_out(false)
            .connection_timeout(Duration::from_secs(30));
        if in_memory {
            // The one connection *is* the database: never let the pool close it.
            builder = builder.idle_timeout(None).max_lifetime(None);
        }
        let now = chrono::Utc::now().timestamp_micros();
        if in_memory {
            // The database lives in the pool's one connection: migrate that one.
            let pool = builder.build_unchecked(manager);
            let store = SqliteStore {
                _checkpointer: None,
                pool,
                location,
            };
            let mut conn = store.connection()?;
            migrate::migrate(&mut conn, now)?;
            drop(conn);
            return Ok(store);
        }
        // A first connection outside the pool, so that a file that cannot be opened fails at
        // once with SQLite's reason instead of after the pool's connection timeout.
        let located = |e: Error| located(&location, e);
        let mut conn = manager.connect().map_err(|e| located(classify(e)))?;
        migrate::migrate(&mut conn, now).map_err(located)?;
        // That connection then checkpoints the log.
        let checkpointer = checkpoint::Checkpointer::start(conn).map_err(|e| {
            located(Error::with_source(
                coupon_core::ErrorKind::Backend,
                format!("cannot start the checkpoint thread: {e}"),
                e,
            ))
        })?;
        Ok(SqliteStore {
            _checkpointer: Some(checkpointer),
            pool: builder.build_unchecked(manager),
            location,
        })
    }

    /// Where the database is (its path, or `:memory:`).
    pub fn location(&self) -> &str {
        &self.location
    }

    fn connection(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>> {
        self.pool
            .get()
            .map_err(|e| located(&self.location, error::pool(e)))
    }
}

/// Adds the database's location to a backend error's message.
fn located(location: &str, err: Error) -> Error {
    if err.kind() != coupon_core::ErrorKind::Backend {
        return err;
    }
    let message = format!("{} ({location})", err.message());
    Error::with_source(err.kind(), message, err)
}

/// Refuses paths SQLite would fail on with an unhelpful message.
fn check_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        return Err(Error::new(
            coupon_core::ErrorKind::Backend,
            format!(
                "cannot open the SQLite database {}: it is a directory",
                path.display()
            ),
        ));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    if !parent.is_dir() {
        return Err(Error::new(
            coupon_core::ErrorKind::Backend,
            format!(
                "cannot open the SQLite database {}: directory {} does not exist",
                path.display(),
                parent.display()
            ),
        ));
    }
    Ok(())
}

impl CouponStore for SqliteStore {
    fn transaction<T>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
    ) -> Result<T> {
        let conn = self.connection()?;
        let tx = tx::Transaction::begin(&conn, access)
            .map_err(|e| located(&self.location, classify(e)))?;
        let value = f(&mut tx::SqliteTx::new(&conn))?;
        tx.commit()
            .map_err(|e| located(&self.location, classify(e)))?;
        Ok(value)
    }
}
