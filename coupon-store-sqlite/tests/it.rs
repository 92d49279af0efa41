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
