//! The conformance suite on SQLite: each test in its own temporary database file.

use coupon_core::testing::Fixture;
use coupon_store_sqlite::SqliteStore;

fn temp_store() -> Option<Fixture<SqliteStore>> {
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(dir.path().join("coupons.db")).expect("open a fresh database");
    Some(Fixture::with_teardown(store, move || drop(dir)))
}

mod sqlite {
    coupon_core::store_tests!(super::temp_store);
}

/// What only SQLite has: files, migrations, locks, query plans.
mod sqlite_only {
    use std::time::Duration;

    use coupon_core::{BookSettings, Coupons, ErrorKind};
    use coupon_store_sqlite::{rusqlite, SqliteOptions, SqliteStore, SCHEMA_VERSION};

    fn open_err(path: &std::path::Path) -> coupon_core::Error {
        SqliteStore::open(path).expect_err("must be refused")
    }

    #[test]
    fn open_refuses_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_err(dir.path());
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("directory"), "{}", err.message());
    }

    #[test]
    fn open_refuses_a_missing_directory() {
        let dir = tempfile::tempdir().unwrap();
        let err = open_err(&dir.path().join("missing").join("coupons.db"));
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(
            err.message().contains("does not exist"),
            "{}",
            err.message()
        );
        assert!(
            !dir.path().join("missing").exists(),
            "directories are not created"
        );
    }

    #[test]
    fn open_refuses_a_file_that_is_not_a_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.db");
        std::fs::write(&path, vec![0x5a; 8192]).unwrap();
        let err = open_err(&path);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(
            err.message().contains("not an SQLite database"),
            "{}",
            err.message()
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            vec![0x5a; 8192],
            "left untouched"
        );
    }

    #[test]
    fn open_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coupons.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let err = open_err(&path);
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("newer"), "{}", err.message());
    }

    #[test]
    fn reopening_keeps_data_and_applies_migrations_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coupons.db");
        let coupons = Coupons::new(SqliteStore::open(&path).unwrap());
        coupons.create_book(&BookSettings::new("kept")).unwrap();
        drop(coupons);
        let coupons = Coupons::new(SqliteStore::open(&path).unwrap());
        assert_eq!(coupons.books().unwrap()[0].settings.name, "kept");
        let conn = rusqlite::Connection::open(&path).unwrap();
        let applied: i64 = conn
            .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(applied, SCHEMA_VERSION);
    }

    /// A commit reaches the database file itself within moments, copied there by the store's
    /// checkpoint thread while the store stays open (the log holds far fewer pages than the
    /// writers' own checkpoint waits for); and the log is removed once the store is dropped.
    #[test]
    fn the_log_is_checkpointed_in_the_background() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coupons.db");
        let coupons = Coupons::new(SqliteStore::open(&path).unwrap());
        coupons.create_book(&BookSettings::new("copied")).unwrap();
        let copy = dir.path().join("copy.db");
        let books_in_copy = || -> rusqlite::Result<i64> {
            std::fs::copy(&path, &copy).expect("copy the database file alone");
            rusqlite::Connection::open(&copy)?
                .query_row("SELECT count(*) FROM books", [], |r| r.get(0))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut books = books_in_copy();
        while books.as_ref().ok() != Some(&1) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            books = books_in_copy();
        }
        assert_eq!(
            books.ok(),
            Some(1),
            "the database file alone holds the book"
        );
        drop(coupons);
        assert!(!dir.path().join("coupons.db-wal").exists());
    }

    /// An operation that fails, or panics, leaves nothing behind, and its connection goes back
    /// to the pool usable (one connection, so the next operation gets the same one).
    #[test]
    fn a_failed_or_panicking_transaction_is_rolled_back() {
        use coupon_core::store::{Access, CouponStore};
        use std::panic::{catch_unwind, AssertUnwindSafe};

        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            pool_size: 1,
            ..SqliteOptions::default()
        };
        let store = SqliteStore::open_with(dir.path().join("coupons.db"), options).unwrap();
        let now = chrono::Utc::now();
        let err = store
            .transaction(Access::Write, |tx| {
                tx.insert_book(&BookSettings::new("failed"), now)?;
                Err::<(), _>(coupon_core::Error::invalid_input("refused"))
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            store.transaction(Access::Write, |tx| -> coupon_core::Result<()> {
                tx.insert_book(&BookSettings::new("panicked"), now)?;
                panic!("the operation panics")
            })
        }));
        assert!(panicked.is_err());
        let coupons = Coupons::new(store);
        assert!(coupons.books().unwrap().is_empty());
        coupons.create_book(&BookSettings::new("kept")).unwrap();
        let names: Vec<String> = coupons
            .books()
            .unwrap()
            .into_iter()
            .map(|b| b.settings.name)
            .collect();
        assert_eq!(names, ["kept"]);
    }

    #[test]
    fn busy_database_is_a_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coupons.db");
        let options = SqliteOptions {
            busy_timeout: Duration::from_millis(50),
            ..SqliteOptions::default()
        };
        let coupons = Coupons::new(SqliteStore::open_with(&path, options).unwrap());
        let blocker = rusqlite::Connection::open(&path).unwrap();
        blocker.execute_batch("BEGIN EXCLUSIVE").unwrap();
        let err = coupons
            .create_book(&BookSettings::new("blocked"))
            .expect_err("the database is locked");
        assert_eq!(err.kind(), ErrorKind::Conflict);
        assert!(err.is_retryable());
        blocker.execute_batch("ROLLBACK").unwrap();
        coupons
            .create_book(&BookSettings::new("free again"))
            .unwrap();
    }
}
