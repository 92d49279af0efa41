//! Embedded schema migrations, applied when a store opens.
//!
//! The schema version is the number of migrations in [`MIGRATIONS`], recorded in SQLite's
//! `user_version`; each applied migration is also recorded with a checksum of its text in
//! `schema_migrations`. Opening a database made by a newer version, or one whose applied
//! migrations differ from ours, is refused. Everything happens in one `BEGIN IMMEDIATE`
//! transaction, so processes opening the same file at once apply each migration once.

use coupon_core::migrations::{checksum, plan};
use coupon_core::Result;
use rusqlite::{Connection, TransactionBehavior};

use crate::error::classify;

/// The migrations, in order. Append only: never edit or reorder an applied one.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_lean_redeem_writes",
        include_str!("../migrations/0002_lean_redeem_writes.sql"),
    ),
    (
        "0003_api_keys",
        include_str!("../migrations/0003_api_keys.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, now_micros: i64) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(classify)?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(classify)?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    INTEGER PRIMARY KEY,
             name       TEXT    NOT NULL,
             checksum   TEXT    NOT NULL,
             applied_at INTEGER NOT NULL
         )",
    )
    .map_err(classify)?;
    let applied: Vec<(i64, String)> = {
        let mut stmt = tx
            .prepare("SELECT version, checksum FROM schema_migrations ORDER BY version")
            .map_err(classify)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(classify)?;
        rows.collect::<rusqlite::Result<_>>().map_err(classify)?
    };
    for i in plan(MIGRATIONS, version, &applied)? {
        let (name, sql) = MIGRATIONS[i];
        tx.execute_batch(sql).map_err(classify)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i as i64 + 1, name, checksum(sql), now_micros],
        )
        .map_err(classify)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(classify)?;
    tx.commit().map_err(classify)
}
