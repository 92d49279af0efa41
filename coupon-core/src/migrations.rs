//! What a store needs to apply embedded schema migrations: which ones a database still needs,
//! and the checksum that proves an applied one is unchanged.
//!
//! A store embeds its migrations as `(name, sql)` pairs, in order, append only. The schema
//! version is how many it has; a database records its version and the checksum of each
//! migration applied. [`plan`] refuses a database made by a newer version, or one whose applied
//! migrations differ from the store's.
//!
//! ```
//! use coupon_core::migrations::{checksum, plan};
//! const MIGRATIONS: &[(&str, &str)] = &[("0001_init", "CREATE TABLE t (x INTEGER);")];
//! assert_eq!(plan(MIGRATIONS, 0, &[])?, 0..1); // a fresh database gets the one migration
//! let applied = [(1, checksum(MIGRATIONS[0].1))];
//! assert!(plan(MIGRATIONS, 1, &applied)?.is_empty());
//! assert!(plan(MIGRATIONS, 2, &[]).is_err()); // made by a newer version
//! # Ok::<(), coupon_core::Error>(())
//! ```

use std::ops::Range;

use crate::{Error, ErrorKind, Result};

/// FNV-1a of a migration's text, in hex: a stable checksum that needs no dependency.
pub fn checksum(sql: &str) -> String {
    let hash = sql.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

/// Which of `migrations` to apply to a database at schema `version` whose applied migrations
/// are `applied` (version from 1, checksum): their indexes, or why the database is refused.
///
/// # Errors
/// `backend` when the database is newer than `migrations`, records an unknown migration, or
/// one whose text differs from ours.
pub fn plan(
    migrations: &[(&str, &str)],
    version: i64,
    applied: &[(i64, String)],
) -> Result<Range<usize>> {
    let known = migrations.len();
    if usize::try_from(version).is_ok_and(|v| v > known) {
        return Err(Error::new(
            ErrorKind::Backend,
            format!(
                "the database has schema version {version}, newer than the {known} this program knows; use a newer coupon"
            ),
        ));
    }
    for (v, sum) in applied {
        let migration = usize::try_from(*v - 1).ok().and_then(|i| migrations.get(i));
        match migration {
            Some((_, sql)) if checksum(sql) == *sum => {}
            Some((name, _)) => {
                return Err(Error::new(
                    ErrorKind::Backend,
                    format!("migration {name} applied to this database differs from this program's; refusing to continue"),
                ))
            }
            None => {
                return Err(Error::new(
                    ErrorKind::Backend,
                    format!("the database records an unknown migration {v}; use a newer coupon"),
                ))
            }
        }
    }
    Ok(usize::try_from(version).unwrap_or(0)..known)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIGRATIONS: &[(&str, &str)] = &[("0001_a", "CREATE TABLE a (x);"), ("0002_b", "B")];

    #[test]
    fn fresh_database_gets_every_migration() {
        assert_eq!(plan(MIGRATIONS, 0, &[]).unwrap(), 0..2);
    }

    #[test]
    fn current_database_gets_none_and_an_older_one_the_rest() {
        let applied: Vec<_> = MIGRATIONS
            .iter()
            .enumerate()
            .map(|(i, (_, sql))| (i as i64 + 1, checksum(sql)))
            .collect();
        assert!(plan(MIGRATIONS, 2, &applied).unwrap().is_empty());
        assert_eq!(plan(MIGRATIONS, 1, &applied[..1]).unwrap(), 1..2);
    }

    #[test]
    fn newer_or_changed_databases_are_refused() {
        let err = plan(MIGRATIONS, 3, &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("newer"));
        let err = plan(MIGRATIONS, 1, &[(1, "0".repeat(16))]).unwrap_err();
        assert!(err
            .message()
            .contains("0001_a applied to this database differs"));
        let err = plan(MIGRATIONS, 1, &[(99, "x".into())]).unwrap_err();
        assert!(err.message().contains("unknown migration 99"));
    }

    #[test]
    fn checksum_is_stable() {
        assert_eq!(checksum(""), "cbf29ce484222325");
        assert_ne!(checksum("a"), checksum("b"));
    }
}
