//! Embedded schema migrations, applied when a store opens.
//!
//! The schema version is the number of migrations in [`MIGRATIONS`], recorded in SQLite's
//! `user_version`; each applied migration is also recorded with a checksum of its text in
//! `schema_migrations`. Opening a database made by a newer version, or one whose applied
//! migrations differ from ours, is refused. Everything happens in one `BEGIN IMMEDIATE`
//! transaction, so processes opening the same file at once apply each migration once.

use coupon_core::{Error, Result};
use rusqlite::{Connection, TransactionBehavior};

use crate::error::classify;

/// The migrations, in order. Append only: never edit or reorder an applied one.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_init", include_str!("../migrations/0001_init.sql")),
    (
        "0002_lean_redeem_writes",
        include_str!("../migrations/0002_lean_redeem_writes.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// FNV-1a of a migration's text: a stable checksum that needs no dependency.
pub(crate) fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Which migrations to apply to a database at `version` whose recorded migrations are
/// `applied` (version, checksum): the indexes into [`MIGRATIONS`], or why it is refused.
pub(crate) fn plan(version: i64, applied: &[(i64, String)]) -> Result<std::ops::Range<usize>> {
    if version > SCHEMA_VERSION {
        return Err(Error::new(
            coupon_core::ErrorKind::Backend,
            format!(
                "the database has schema version {version}, newer than the {SCHEMA_VERSION} this program knows; use a newer coupon"
            ),
        ));
    }
    for (v, sum) in applied {
        let known = usize::try_from(*v - 1).ok().and_then(|i| MIGRATIONS.get(i));
        match known {
            Some((_, sql)) if checksum(sql) == *sum => {}
            Some((name, _)) => {
                return Err(Error::new(
                    coupon_core::ErrorKind::Backend,
                    format!("migration {name} applied to this database differs from this program's; refusing to continue"),
                ))
            }
            None => {
                return Err(Error::new(
                    coupon_core::ErrorKind::Backend,
                    format!("the database records an unknown migration {v}; use a newer coupon"),
                ))
            }
        }
    }
    Ok(version as usize..MIGRATIONS.len())
}

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
    for i in plan(version, &applied)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::ErrorKind;

    #[test]
    fn fresh_database_gets_every_migration() {
        assert_eq!(plan(0, &[]).unwrap(), 0..MIGRATIONS.len());
    }

    #[test]
    fn current_database_gets_none() {
        let applied: Vec<_> = MIGRATIONS
            .iter()
            .enumerate()
            .map(|(i, (_, sql))| (i as i64 + 1, checksum(sql)))
            .collect();
        assert!(plan(SCHEMA_VERSION, &applied).unwrap().is_empty());
    }

    #[test]
    fn newer_or_changed_databases_are_refused() {
        let err = plan(SCHEMA_VERSION + 1, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("newer"));
        let err = plan(1, &[(1, "0".repeat(16))]).unwrap_err();
        assert!(err.message().contains("differs"));
        let err = plan(1, &[(99, "x".into())]).unwrap_err();
        assert!(err.message().contains("unknown migration"));
    }

    #[test]
    fn checksum_is_stable() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_ne!(checksum("a"), checksum("b"));
    }
}
