//! [`Store`]: the store a command runs on, SQLite or Postgres, chosen by the database URL.

use coupon_core::store::{Access, CouponStore, StoreTx};
use coupon_core::Result;
use coupon_store_postgres::PostgresStore;
use coupon_store_sqlite::SqliteStore;

/// One of the stores the CLI can open; every transaction goes to the one it holds.
#[derive(Debug)]
pub enum Store {
    /// An SQLite file (or a private in-memory database).
    Sqlite(SqliteStore),
    /// A Postgres database.
    Postgres(PostgresStore),
}

impl CouponStore for Store {
    fn transaction<T>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
    ) -> Result<T> {
        match self {
            Store::Sqlite(store) => store.transaction(access, f),
            Store::Postgres(store) => store.transaction(access, f),
        }
    }
}
