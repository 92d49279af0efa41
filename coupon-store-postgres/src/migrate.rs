//! Embedded schema migrations, applied when a store opens.
//!
//! The schema version is the number of migrations in [`MIGRATIONS`]; each applied migration is
//! recorded with a checksum of its text in `schema_migrations`, and the highest recorded version
//! is the schema's version. Opening a schema made by a newer version, or one whose applied
//! migrations differ from ours, is refused.
//!
//! Everything happens in one transaction that first takes a transaction-scoped advisory lock
//! keyed by the schema's name (`pg_advisory_xact_lock`): processes opening the same empty schema
//! at once queue on it, the first creates the schema and its tables, and the others find them
//! created when their turn comes. DDL is transactional in Postgres, so a migration that fails
//! leaves nothing behind.

use coupon_core::migrations::{checksum, plan};
use coupon_core::{Error, ErrorKind, Result};
use postgres::Client;

use crate::error::classify;

/// The migrations, in order. Append only: never edit or reorder an applied one.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_api_keys",
        include_str!("../migrations/0002_api_keys.sql"),
    ),
    (
        "0003_event_outbox",
        include_str!("../migrations/0003_event_outbox.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// The first key of the advisory lock migrations take ("coup"); the second is a hash of the
/// schema's name, so stores in different schemas of one database migrate independently.
const LOCK_CLASS: i32 = 0x636f_7570;

/// How long a migration waits for the advisory lock or for a table in use.
const MIGRATION_LOCK_TIMEOUT: &str = "60s";

/// `name` quoted as an SQL identifier.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Brings the schema to [`SCHEMA_VERSION`]: `schema` (created when missing) or, without one,
/// the first schema of the connection's search path.
pub(crate) fn migrate(client: &mut Client, schema: Option<&str>) -> Result<()> {
    let mut tx = client.transaction().map_err(classify)?;
    tx.execute(
        "SELECT set_config('lock_timeout', $1, true)",
        &[&MIGRATION_LOCK_TIMEOUT],
    )
    .map_err(classify)?;
    let target: Option<String> = match schema {
        Some(name) => Some(name.to_owned()),
        None => tx
            .query_one("SELECT current_schema()", &[])
            .and_then(|row| row.try_get(0))
            .map_err(classify)?,
    };
    let Some(target) = target else {
        return Err(Error::new(
            ErrorKind::Backend,
            "the connection's search_path names no existing schema to create the tables in; \
             give a schema (e.g. ?schema=coupons in the URL)",
        ));
    };
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&LOCK_CLASS, &target],
    )
    .map_err(classify)?;
    if let Some(name) = schema {
        let exists: bool = tx
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                &[&name],
            )
            .and_then(|row| row.try_get(0))
            .map_err(classify)?;
        if !exists {
            tx.batch_execute(&format!("CREATE SCHEMA {}", quote_ident(name)))
                .map_err(classify)?;
        }
    }
    let recorded: bool = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relname = 'schema_migrations')",
            &[],
        )
        .and_then(|row| row.try_get(0))
        .map_err(classify)?;
    if !recorded {
        tx.batch_execute(
            "CREATE TABLE schema_migrations (
                 version    BIGINT      PRIMARY KEY,
                 name       TEXT        NOT NULL,
                 checksum   TEXT        NOT NULL,
                 applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
             )",
        )
        .map_err(classify)?;
    }
    let applied: Vec<(i64, String)> = tx
        .query(
            "SELECT version, checksum FROM schema_migrations ORDER BY version",
            &[],
        )
        .map_err(classify)?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<std::result::Result<_, postgres::Error>>()
        .map_err(classify)?;
    let version = applied.last().map_or(0, |(v, _)| *v);
    for i in plan(MIGRATIONS, version, &applied)? {
        let (name, sql) = MIGRATIONS[i];
        tx.batch_execute(sql).map_err(classify)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&(i as i64 + 1), &name, &checksum(sql)],
        )
        .map_err(classify)?;
    }
    tx.commit().map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("coupons"), "\"coupons\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
