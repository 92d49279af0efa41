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
    (
        "0004_redemptions_in_events",
        include_str!("../migrations/0004_redemptions_in_events.sql"),
    ),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Brings the database to [`SCHEMA_VERSION`].
pub(crate) fn migrate(conn: &mut Connection, now_micros: i64) -> Result<()> {
    migrate_with(conn, MIGRATIONS, now_micros)
}

/// Brings the database to the version of `migrations` (a prefix of [`MIGRATIONS`]).
fn migrate_with(conn: &mut Connection, migrations: &[(&str, &str)], now_micros: i64) -> Result<()> {
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
    for i in plan(migrations, version, &applied)? {
        let (name, sql) = migrations[i];
        tx.execute_batch(sql).map_err(classify)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![i as i64 + 1, name, checksum(sql), now_micros],
        )
        .map_err(classify)?;
    }
    tx.pragma_update(None, "user_version", migrations.len() as i64)
        .map_err(classify)?;
    tx.commit().map_err(classify)
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupon_core::{Coupons, RedeemRequest};

    /// Redemptions made before they were stored as their events are found after the
    /// migration: a repeated redeem replays the original receipt, the log is unchanged, and
    /// the `redemptions` view lists them.
    #[test]
    fn redemptions_survive_their_move_into_the_events() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        let mut conn = Connection::open(&path).unwrap();
        migrate_with(&mut conn, &MIGRATIONS[..3], 0).unwrap();
        conn.execute_batch(
            r#"INSERT INTO books (id, name, max_redemptions_per_user, lock_ttl_seconds,
                                  created_at, updated_at)
                   VALUES (1, 'Old', 3, 300, 0, 0);
               INSERT INTO codes (code, book_id, slot, owner, assigned_at, redemptions,
                                  created_at)
                   VALUES ('A-1', 1, 7, 'u', 1000000, 2, 0);
               INSERT INTO redemptions (code, user_id, order_id, context, redeemed_at,
                                        redemptions, remaining)
                   VALUES ('A-1', 'u', 'o-1', '{"shop":1}', 2000000, 1, 2),
                          ('A-1', 'u', NULL, NULL, 3000000, 2, 1);
               INSERT INTO events (at, kind, book_id, code, user_id, data) VALUES
                   (1000000, 'assigned', 1, 'A-1', 'u', '{}'),
                   (2000000, 'redeemed', 1, 'A-1', 'u',
                    '{"order_id":"o-1","context":{"shop":1},"redemptions":1}'),
                   (3000000, 'redeemed', 1, 'A-1', 'u',
                    '{"order_id":null,"context":null,"redemptions":2}');"#,
        )
        .unwrap();
        drop(conn);

        let coupons = Coupons::new(crate::SqliteStore::open(&path).unwrap());
        let before = coupons.events(0, 10).unwrap();
        let replay = RedeemRequest {
            order_id: Some("o-1".into()),
            ..RedeemRequest::default()
        };
        let receipt = coupons.redeem("A-1", "u", &replay).unwrap();
        assert!(receipt.replayed);
        assert_eq!((receipt.redemptions, receipt.remaining), (1, 2));
        assert_eq!(receipt.redeemed_at.timestamp_micros(), 2_000_000);
        assert_eq!(coupons.events(0, 10).unwrap(), before);
        let receipt = coupons
            .redeem("A-1", "u", &RedeemRequest::default())
            .unwrap();
        assert_eq!((receipt.redemptions, receipt.remaining), (3, 0));

        let conn = Connection::open(&path).unwrap();
        type Row = (i64, Option<String>, Option<String>, i64, i64, i64);
        let rows: Vec<Row> = conn
            .prepare(
                "SELECT id, order_id, context, redeemed_at, redemptions, remaining \
                 FROM redemptions ORDER BY id",
            )
            .unwrap()
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            })
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let at = receipt.redeemed_at.timestamp_micros();
        assert_eq!(
            rows,
            [
                (
                    2,
                    Some("o-1".into()),
                    Some(r#"{"shop":1}"#.into()),
                    2_000_000,
                    1,
                    2
                ),
                (3, None, None, 3_000_000, 2, 1),
                (4, None, None, at, 3, 0),
            ]
        );
    }
}
