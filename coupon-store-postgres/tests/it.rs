//! The conformance suite on Postgres, each test in a schema of its own (created by the store,
//! dropped after the test), and what only Postgres has: connections, migrations under an
//! advisory lock, lock timeouts, COPY, the event outbox and the deferred writes.
//!
//! The server is `COUPON_TEST_POSTGRES_URL` (e.g. `postgres://postgres@127.0.0.1:5432/postgres`);
//! without it every test is skipped with a notice.
#![allow(clippy::unwrap_used)] // test helpers: a failed step should panic with its location

use std::sync::atomic::{AtomicU64, Ordering};

use coupon_core::testing::Fixture;
use coupon_store_postgres::postgres::{self, NoTls};
use coupon_store_postgres::{PostgresOptions, PostgresStore};

/// The test server's URL, if one is configured.
fn server() -> Option<String> {
    std::env::var("COUPON_TEST_POSTGRES_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// A schema name no other test (of this or another process) uses.
fn unique_schema(tag: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "coupon_test_{tag}_{}_{}_{:06x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed),
        rand::random::<u32>() & 0xff_ffff
    )
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn drop_schema(url: &str, schema: &str) {
    match postgres::Client::connect(url, NoTls).and_then(|mut c| {
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(schema)))
    }) {
        Ok(()) => {}
        Err(e) => eprintln!("could not drop test schema {schema}: {e}"),
    }
}

fn options(schema: &str) -> PostgresOptions {
    PostgresOptions {
        schema: Some(schema.to_owned()),
        pool_size: 8,
        ..PostgresOptions::default()
    }
}

fn pg_store() -> Option<Fixture<PostgresStore>> {
    let url = server()?;
    let schema = unique_schema("suite");
    let store = match PostgresStore::open_with(&url, options(&schema)) {
        Ok(store) => store,
        Err(e) => {
            drop_schema(&url, &schema);
            panic!("open a fresh schema: {e}");
        }
    };
    Some(Fixture::with_teardown(store, move || {
        drop_schema(&url, &schema)
    }))
}

mod postgres_suite {
    coupon_core::store_tests!(super::pg_store);
}

/// What only Postgres has.
mod postgres_only {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Barrier};
    use std::time::Duration;

    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

    use coupon_core::{
        BookId, BookSettings, Coupons, ErrorKind, EventKind, ImportRow, NewEvent, RedeemRequest,
        Redemption, MAX_EVENTS_PAGE,
    };
    use coupon_store_postgres::postgres::{self, NoTls};
    use coupon_store_postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};

    use super::{drop_schema, options, quoted, server, unique_schema};

    /// A fresh schema dropped at the end of the test, even when it fails.
    struct Schema {
        url: String,
        name: String,
    }

    impl Schema {
        fn new(tag: &str) -> Option<Schema> {
            let Some(url) = server() else {
                eprintln!("skipped: COUPON_TEST_POSTGRES_URL is not set");
                return None;
            };
            Some(Schema {
                url,
                name: unique_schema(tag),
            })
        }

        fn open(&self) -> PostgresStore {
            PostgresStore::open_with(&self.url, options(&self.name)).unwrap()
        }

        /// A plain client whose search path is the schema.
        fn client(&self) -> postgres::Client {
            let mut client = postgres::Client::connect(&self.url, NoTls).unwrap();
            client
                .batch_execute(&format!("SET search_path TO {}", quoted(&self.name)))
                .unwrap();
            client
        }

        fn count(&self, sql: &str) -> i64 {
            self.client().query_one(sql, &[]).unwrap().get(0)
        }
    }

    impl Drop for Schema {
        fn drop(&mut self) {
            drop_schema(&self.url, &self.name);
        }
    }

    /// host:port of the test server, and its user.
    fn server_parts(url: &str) -> (String, u16, String) {
        let config: postgres::Config = url.parse().unwrap();
        let host = match config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let user = config.get_user().unwrap_or("postgres").to_owned();
        (host, port, user)
    }

    fn open_err(url: &str) -> coupon_core::Error {
        PostgresStore::open(url).expect_err("must be refused")
    }

    fn rows(codes: impl IntoIterator<Item = String>) -> Vec<ImportRow> {
        codes
            .into_iter()
            .enumerate()
            .map(|(i, c)| ImportRow::new(i as u64 + 1, c))
            .collect()
    }

    #[test]
    fn unreachable_server_is_a_backend_error_naming_it_without_the_password() {
        let started = std::time::Instant::now();
        let err = open_err("postgres://ada:hunter2@127.0.0.1:1/shop");
        assert_eq!(err.kind(), ErrorKind::Backend);
        let message = err.message();
        assert!(message.contains("127.0.0.1:1"), "{message}");
        assert!(message.contains("shop"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
        assert!(!format!("{err:?}").contains("hunter2"));
        assert!(started.elapsed() < Duration::from_secs(5), "fails fast");
    }

    #[test]
    fn missing_database_is_a_backend_error_naming_it() {
        let Some(url) = server() else { return };
        let (host, port, user) = server_parts(&url);
        let err = open_err(&format!(
            "postgres://{user}:hunter2@{host}:{port}/coupon_no_such_database"
        ));
        assert_eq!(err.kind(), ErrorKind::Backend);
        let message = err.message();
        assert!(message.contains("coupon_no_such_database"), "{message}");
        assert!(message.contains("does not exist"), "{message}");
        assert!(message.contains(&format!("{host}:{port}")), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn unknown_role_is_a_backend_error_naming_server_and_database() {
        let Some(url) = server() else { return };
        let (host, port, _) = server_parts(&url);
        let err = open_err(&format!(
            "postgres://coupon_no_such_role:hunter2@{host}:{port}/postgres"
        ));
        assert_eq!(err.kind(), ErrorKind::Backend);
        let message = err.message();
        assert!(message.contains("refused the login"), "{message}");
        assert!(message.contains("coupon_no_such_role"), "{message}");
        assert!(
            message.contains(&format!("{host}:{port}/postgres")),
            "{message}"
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn ten_stores_opening_an_empty_schema_at_once_migrate_it_once() {
        const N: usize = 10;
        let Some(schema) = Schema::new("migrate") else {
            return;
        };
        let barrier = Barrier::new(N);
        let opened: Vec<_> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..N)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        PostgresStore::open_with(&schema.url, options(&schema.name))
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for store in &opened {
            if let Err(e) = store {
                panic!("every opening succeeds: {e}");
            }
        }
        assert_eq!(
            schema.count("SELECT count(*) FROM schema_migrations"),
            SCHEMA_VERSION
        );
        assert_eq!(schema.count("SELECT count(*) FROM event_counter"), 1);
        // And they all work on the same tables.
        let stores: Vec<_> = opened.into_iter().map(Result::unwrap).collect();
        for (i, store) in stores.into_iter().enumerate() {
            Coupons::new(store)
                .create_book(&BookSettings::new(format!("book {i}")))
                .unwrap();
        }
        assert_eq!(schema.count("SELECT count(*) FROM books"), N as i64);
    }

    #[test]
    fn reopening_keeps_data_and_applies_migrations_once() {
        let Some(schema) = Schema::new("reopen") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        coupons.create_book(&BookSettings::new("kept")).unwrap();
        drop(coupons);
        let coupons = Coupons::new(schema.open());
        assert_eq!(coupons.books().unwrap()[0].settings.name, "kept");
        assert_eq!(
            schema.count("SELECT count(*) FROM schema_migrations"),
            SCHEMA_VERSION
        );
    }

    #[test]
    fn schema_from_the_url_is_used_and_named_in_the_location() {
        let Some(schema) = Schema::new("url") else {
            return;
        };
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        let store =
            PostgresStore::open(&format!("{}{sep}schema={}", schema.url, schema.name)).unwrap();
        assert!(
            store
                .location()
                .ends_with(&format!("?schema={}", schema.name)),
            "{}",
            store.location()
        );
        Coupons::new(store)
            .create_book(&BookSettings::new("here"))
            .unwrap();
        assert_eq!(schema.count("SELECT count(*) FROM books"), 1);
    }

    #[test]
    fn open_refuses_a_newer_schema() {
        let Some(schema) = Schema::new("newer") else {
            return;
        };
        drop(schema.open());
        schema
            .client()
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, 'future', '0')",
                &[&(SCHEMA_VERSION + 1)],
            )
            .unwrap();
        let err = PostgresStore::open_with(&schema.url, options(&schema.name)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend);
        assert!(err.message().contains("newer"), "{}", err.message());
    }

    #[test]
    fn a_row_locked_past_the_lock_timeout_is_a_conflict() {
        let Some(schema) = Schema::new("locked") else {
            return;
        };
        let store = PostgresStore::open_with(
            &schema.url,
            PostgresOptions {
                lock_timeout: Duration::from_millis(50),
                ..options(&schema.name)
            },
        )
        .unwrap();
        let coupons = Coupons::new(store);
        let book = coupons.create_book(&BookSettings::new("B")).unwrap().id;
        coupons
            .import_codes(book, rows(["HELD-1".to_owned()]), false)
            .unwrap();
        let mut blocker = schema.client();
        let mut tx = blocker.transaction().unwrap();
        tx.execute("SELECT 1 FROM codes WHERE code = 'HELD-1' FOR UPDATE", &[])
            .unwrap();
        let err = coupons.assign_code("HELD-1", "ada").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        assert!(err.is_retryable());
        assert!(!err.message().contains("SELECT"), "{}", err.message());
        tx.rollback().unwrap();
        coupons.assign_code("HELD-1", "ada").unwrap();
    }

    #[test]
    fn a_connection_killed_between_transactions_is_replaced() {
        let Some(schema) = Schema::new("killed") else {
            return;
        };
        let app = schema.name.clone();
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        let url = format!("{}{sep}application_name={app}", schema.url);
        let store = PostgresStore::open_with(&url, options(&schema.name)).unwrap();
        let coupons = Coupons::new(store);
        coupons.create_book(&BookSettings::new("before")).unwrap();
        let killed: i64 = schema
            .client()
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .unwrap()
            .get(0);
        assert!(killed >= 1);
        std::thread::sleep(Duration::from_millis(100));
        coupons.create_book(&BookSettings::new("after")).unwrap();
        assert_eq!(coupons.books().unwrap().len(), 2);
    }

    #[test]
    fn bulk_import_copies_and_reports_every_fate() {
        let Some(schema) = Schema::new("copy") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let mine = coupons.create_book(&BookSettings::new("mine")).unwrap().id;
        let theirs = coupons
            .create_book(&BookSettings::new("theirs"))
            .unwrap()
            .id;
        let code = |i: u32| format!("BULK-{i:06}");
        // 100 codes already here, 50 in another book.
        coupons
            .import_codes(mine, rows((0..100).map(code)), false)
            .unwrap();
        coupons
            .import_codes(theirs, rows((100..150).map(code)), false)
            .unwrap();
        // 25,000 rows in three batches: new codes, duplicates of mine, codes of theirs, repeats.
        let input: Vec<String> = (0..25_000)
            .map(|i| code(i % 24_990))
            .map(|c| c.to_lowercase())
            .collect();
        let err = coupons
            .import_codes(mine, rows(input.clone()), false)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert_eq!(
            coupons.book(mine).unwrap().stats.codes,
            100,
            "nothing written"
        );
        let report = coupons.import_codes(mine, rows(input), true).unwrap();
        assert_eq!(report.invalid_total, 50);
        assert!(report.invalid[0].reason.contains(&format!("book {theirs}")));
        assert_eq!(report.inserted, 24_990 - 150);
        assert_eq!(report.duplicates, 100 + 10);
        let stats = coupons.book(mine).unwrap().stats;
        assert_eq!(stats.codes, 24_990 - 50);
        assert_eq!(stats.available, 24_990 - 50);
        assert_eq!(coupons.book(theirs).unwrap().stats.codes, 50);
        // Exported in code order, byte-wise.
        let mut exported = vec![];
        coupons
            .export(mine, None, |row| {
                exported.push(row.code.clone());
                Ok(())
            })
            .unwrap();
        let mut sorted = exported.clone();
        sorted.sort();
        assert_eq!(exported, sorted);
        assert_eq!(exported.len() as u64, stats.codes);
    }

    /// An import whose first batch of 100,000 codes is all new (inserted optimistically) and
    /// whose later batches meet codes of the book, of another book, and of its own first batch:
    /// the fates stay exact, and a refused import writes nothing.
    #[test]
    fn import_whose_later_batches_meet_stored_codes_reports_exact_fates() {
        let Some(schema) = Schema::new("late") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let mine = coupons.create_book(&BookSettings::new("mine")).unwrap().id;
        let theirs = coupons
            .create_book(&BookSettings::new("theirs"))
            .unwrap()
            .id;
        let code = |i: u32| format!("LATE-{i:06}");
        let in_mine: Vec<u32> = (150_000..150_010).chain([202_000]).collect();
        let in_theirs: Vec<u32> = (150_010..150_015).chain([202_001]).collect();
        coupons
            .import_codes(mine, rows(in_mine.iter().map(|&i| code(i))), false)
            .unwrap();
        coupons
            .import_codes(theirs, rows(in_theirs.iter().map(|&i| code(i))), false)
            .unwrap();
        // Batch 1: codes 0..100,000, all new. Batch 2: code 5 again, then 100,000..199,999,
        // meeting 10 codes of mine and 5 of theirs. Batch 3: 199,999..205,000, meeting 1 and 1.
        let input: Vec<String> = (0..100_000)
            .chain([5])
            .chain(100_000..205_000)
            .map(code)
            .collect();
        let line = |i: u32| u64::from(if i < 100_000 { i + 1 } else { i + 2 });
        let events = coupons.events(0, MAX_EVENTS_PAGE).unwrap().len();

        let err = coupons
            .import_codes(mine, rows(input.clone()), false)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        let first = format!("line {}", line(in_theirs[0]));
        assert!(err.message().contains(&first), "{}", err.message());
        assert_eq!(
            coupons.book(mine).unwrap().stats.codes,
            11,
            "nothing written"
        );
        assert_eq!(coupons.book(theirs).unwrap().stats.codes, 6);
        assert_eq!(schema.count("SELECT count(*) FROM codes"), 17);
        assert_eq!(coupons.events(0, MAX_EVENTS_PAGE).unwrap().len(), events);

        let report = coupons.import_codes(mine, rows(input), true).unwrap();
        assert_eq!(report.inserted, 205_000 - 17);
        assert_eq!(report.duplicates, 11 + 1);
        assert_eq!(report.invalid_total, 6);
        let refused: Vec<u64> = report.invalid.iter().map(|row| row.line).collect();
        let expected: Vec<u64> = in_theirs.iter().map(|&i| line(i)).collect();
        assert_eq!(refused, expected);
        for row in &report.invalid {
            assert!(row.reason.contains(&format!("book {theirs}")), "{row:?}");
        }
        assert_eq!(coupons.book(mine).unwrap().stats.codes, 205_000 - 6);
        assert_eq!(coupons.book(theirs).unwrap().stats.codes, 6);
        let books: Vec<(String, i64)> = schema
            .client()
            .query(
                "SELECT code, book_id FROM codes WHERE code = ANY($1) ORDER BY code",
                &[&vec![code(5), code(150_000), code(150_010), code(202_001)]],
            )
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        assert_eq!(
            books,
            [
                (code(5), mine),
                (code(150_000), mine),
                (code(150_010), theirs),
                (code(202_001), theirs)
            ]
        );
    }

    #[test]
    fn generate_many_codes_in_batches() {
        let Some(schema) = Schema::new("generate") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons
            .create_book(&BookSettings {
                code_pattern: Some("GEN-[A-Z0-9]{10}".into()),
                ..BookSettings::new("generated")
            })
            .unwrap()
            .id;
        let report = coupons.generate_codes(book, 25_000, false).unwrap();
        assert_eq!(report.generated, 25_000);
        assert_eq!(coupons.book(book).unwrap().stats.available, 25_000);
        let coupon = coupons.assign_random(book, "ada", None).unwrap();
        assert!(coupon.code.starts_with("GEN-"));
    }

    /// Operations share the book's lock and run side by side; changes of the book's settings
    /// wait for them and for each other (two changes that met on the share lock are a deadlock
    /// that Postgres breaks and the service retries): all succeed, nothing is lost.
    #[test]
    fn concurrent_book_updates_and_assignments_all_succeed() {
        use coupon_core::BookPatch;
        let Some(schema) = Schema::new("updates") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons.create_book(&BookSettings::new("v0")).unwrap().id;
        coupons
            .import_codes(book, rows((0..40).map(|i| format!("UPD-{i:02}"))), false)
            .unwrap();
        let barrier = Barrier::new(6);
        std::thread::scope(|s| {
            for t in 0..3 {
                let (coupons, barrier) = (&coupons, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let patch = BookPatch {
                        name: Some(format!("v{}", t + 1)),
                        ..BookPatch::default()
                    };
                    coupons.update_book(book, &patch).unwrap();
                });
            }
            for t in 0..3 {
                let (coupons, barrier) = (&coupons, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..5 {
                        coupons
                            .assign_random(book, &format!("user-{t}-{i}"), None)
                            .unwrap();
                    }
                });
            }
        });
        let details = coupons.book(book).unwrap();
        assert_eq!(details.stats.assigned, 15);
        let updates = coupons
            .events(0, MAX_EVENTS_PAGE)
            .unwrap()
            .into_iter()
            .filter(|e| e.kind == coupon_core::EventKind::BookUpdated)
            .count();
        assert_eq!(updates, 3);
    }

    /// A change of settings while a long transaction (an import) holds the book: the change is a
    /// retryable `conflict`, operations on the book go on, and the change succeeds afterwards.
    #[test]
    fn book_update_during_a_long_transaction_is_a_conflict_not_a_stall() {
        use coupon_core::store::{Access, CouponStore};
        use coupon_core::BookPatch;
        let Some(schema) = Schema::new("longtx") else {
            return;
        };
        let store = PostgresStore::open_with(
            &schema.url,
            PostgresOptions {
                lock_timeout: Duration::from_millis(100),
                ..options(&schema.name)
            },
        )
        .unwrap();
        let coupons = Coupons::new(store);
        let book = coupons.create_book(&BookSettings::new("busy")).unwrap().id;
        coupons
            .import_codes(book, rows((0..10).map(|i| format!("LONG-{i}"))), false)
            .unwrap();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|s| {
            let coupons = &coupons;
            s.spawn(move || {
                coupons
                    .store()
                    .transaction(Access::Write, |tx| {
                        tx.book(book)?;
                        held_tx.send(()).unwrap();
                        release_rx.recv().unwrap();
                        Ok(())
                    })
                    .unwrap();
            });
            held_rx.recv().unwrap();
            let patch = BookPatch {
                name: Some("renamed".into()),
                ..BookPatch::default()
            };
            let err = coupons.update_book(book, &patch).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
            coupons.assign_random(book, "ada", None).unwrap();
            release_tx.send(()).unwrap();
        });
        let patch = BookPatch {
            name: Some("renamed".into()),
            ..BookPatch::default()
        };
        coupons.update_book(book, &patch).unwrap();
        assert_eq!(coupons.book(book).unwrap().book.settings.name, "renamed");
    }

    /// A write transaction reads a book in a statement of its own once it holds the book's
    /// shared lock: when it had to wait for a change of the book's settings, it reads the
    /// changed book. (Taking the lock and reading the row in one statement would read with a
    /// snapshot from before the wait: the settings the change replaced.)
    #[test]
    fn a_book_read_that_waited_for_a_change_of_settings_sees_the_change() {
        use coupon_core::store::{Access, CouponStore};
        let Some(schema) = Schema::new("waited") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons
            .create_book(&BookSettings::new("before"))
            .unwrap()
            .id;
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let read =
            std::thread::scope(|s| {
                let store = coupons.store();
                // A change of the book's settings, held open before its commit.
                s.spawn(move || {
                    store
                        .transaction(Access::Write, |tx| {
                            let mut changed = tx.book(book)?.unwrap();
                            changed.settings.name = "after".into();
                            tx.update_book(&changed)?;
                            held_tx.send(()).unwrap();
                            release_rx.recv().unwrap();
                            Ok(())
                        })
                        .unwrap();
                });
                held_rx.recv().unwrap();
                let reader = s.spawn(move || {
                    store
                        .transaction(Access::Write, |tx| tx.book(book))
                        .unwrap()
                        .unwrap()
                });
                // The reader waits for the book's lock; then the change commits.
                let mut client = schema.client();
                let started = std::time::Instant::now();
                while client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                     AND objid = hashtext(current_schema() || '/' || $1::bigint::text)::oid",
                    &[&book],
                )
                .unwrap()
                .get::<_, i64>(0)
                == 0
            {
                assert!(started.elapsed() < Duration::from_secs(10), "the reader waits");
                std::thread::sleep(Duration::from_millis(10));
            }
                release_tx.send(()).unwrap();
                reader.join().unwrap()
            });
        assert_eq!(read.settings.name, "after");
    }

    /// An operation on a code takes the code's row lock, then its book's shared lock and reads
    /// the book, in one call: when it had to wait for a change of the book's settings, it
    /// applies the changed settings (here the book expired meanwhile, and the assignment is
    /// refused).
    #[test]
    fn an_operation_on_a_code_that_waited_for_a_change_of_settings_sees_the_change() {
        use coupon_core::store::{Access, CouponStore};
        let Some(schema) = Schema::new("codewait") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons.create_book(&BookSettings::new("open")).unwrap().id;
        coupons
            .import_codes(book, rows(["WAIT-1".to_owned()]), false)
            .unwrap();
        let (held_tx, held_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
        let result =
            std::thread::scope(|s| {
                let (store, coupons) = (coupons.store(), &coupons);
                // The book expires, in a change held open before its commit.
                s.spawn(move || {
                    store
                        .transaction(Access::Write, |tx| {
                            let mut changed = tx.book(book)?.unwrap();
                            changed.settings.valid_until =
                                Some(chrono::Utc::now() - chrono::Duration::hours(1));
                            tx.update_book(&changed)?;
                            held_tx.send(()).unwrap();
                            release_rx.recv().unwrap();
                            Ok(())
                        })
                        .unwrap();
                });
                held_rx.recv().unwrap();
                let assign = s.spawn(move || coupons.assign_code("WAIT-1", "ada"));
                // The assignment waits for the book's lock; then the change commits.
                let mut client = schema.client();
                let started = std::time::Instant::now();
                while client
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
                     AND objid = hashtext(current_schema() || '/' || $1::bigint::text)::oid",
                    &[&book],
                )
                .unwrap()
                .get::<_, i64>(0)
                == 0
            {
                assert!(started.elapsed() < Duration::from_secs(10), "the assignment waits");
                std::thread::sleep(Duration::from_millis(10));
            }
                release_tx.send(()).unwrap();
                assign.join().unwrap()
            });
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Expired);
        assert_eq!(coupons.coupon("WAIT-1").unwrap().user_id, None);
    }

    /// Writers on 6 threads while a reader follows the log: the reader sees every `seq` once, in
    /// order, with no gap — an event that commits later never appears behind the cursor.
    #[test]
    fn events_are_read_in_commit_order_without_gaps() {
        const WRITERS: usize = 6;
        const EACH: usize = 25;
        let Some(schema) = Schema::new("events") else {
            return;
        };
        let coupons = Arc::new(Coupons::new(schema.open()));
        let done = std::sync::atomic::AtomicUsize::new(0);
        let seen = std::thread::scope(|s| {
            for w in 0..WRITERS {
                let (coupons, done) = (&coupons, &done);
                s.spawn(move || {
                    for i in 0..EACH {
                        coupons
                            .create_book(&BookSettings::new(format!("w{w}-{i}")))
                            .unwrap();
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            let reader = s.spawn(|| {
                let mut cursor = 0;
                let mut seen = vec![];
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst) == WRITERS;
                    let page = coupons.events(cursor, MAX_EVENTS_PAGE).unwrap();
                    for event in &page {
                        assert_eq!(event.seq, cursor + 1, "no gap after {cursor}");
                        cursor = event.seq;
                        seen.push(event.seq);
                    }
                    if finished && page.is_empty() {
                        return seen;
                    }
                }
            });
            reader.join().unwrap()
        });
        assert_eq!(seen.len(), WRITERS * EACH);
        let distinct: BTreeSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), seen.len());
    }

    /// A book of `codes` codes `DEP-1`…, each assigned to its user `u-1`…, redeemable a million
    /// times.
    fn assigned_book(coupons: &Coupons<PostgresStore>, codes: usize) -> BookId {
        let book = coupons
            .create_book(&BookSettings {
                max_redemptions_per_user: 1_000_000,
                ..BookSettings::new("dependent")
            })
            .unwrap()
            .id;
        coupons
            .import_codes(book, rows((1..=codes).map(|i| format!("DEP-{i}"))), false)
            .unwrap();
        for i in 1..=codes {
            coupons
                .assign_code(&format!("DEP-{i}"), &format!("u-{i}"))
                .unwrap();
        }
        book
    }

    /// Writers on 6 threads redeem the same 3 codes over and over while two followers read the
    /// log after their cursors (each publishing, so publishers meet too). Each follower sees
    /// every event once, with no gap in `seq`, and what it read is the whole log; each code's
    /// `redeemed` events carry its counts 1, 2, 3, … in `seq` order: a redeem that waited for
    /// another's lock on the code is published after it.
    #[test]
    fn events_of_operations_on_one_code_are_published_in_the_order_they_happened() {
        const WRITERS: usize = 6;
        const EACH: usize = 30;
        const CODES: usize = 3;
        let Some(schema) = Schema::new("ordered") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        assigned_book(&coupons, CODES);
        let start = coupons.events(0, MAX_EVENTS_PAGE).unwrap().len() as i64;
        let done = AtomicUsize::new(0);
        let barrier = Barrier::new(WRITERS + 2);
        let seen = std::thread::scope(|s| {
            for w in 0..WRITERS {
                let (coupons, done, barrier) = (&coupons, &done, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    for i in 0..EACH {
                        let n = (w + i) % CODES + 1;
                        coupons
                            .redeem(
                                &format!("DEP-{n}"),
                                &format!("u-{n}"),
                                &RedeemRequest::default(),
                            )
                            .unwrap();
                    }
                    done.fetch_add(1, AtomicOrdering::SeqCst);
                });
            }
            let followers: Vec<_> = (0..2)
                .map(|_| {
                    let (coupons, done, barrier) = (&coupons, &done, &barrier);
                    s.spawn(move || {
                        barrier.wait();
                        let mut cursor = start;
                        let mut seen = vec![];
                        loop {
                            let finished = done.load(AtomicOrdering::SeqCst) == WRITERS;
                            let page = coupons.events(cursor, 50).unwrap();
                            for event in &page {
                                assert_eq!(event.seq, cursor + 1, "no gap after {cursor}");
                                cursor = event.seq;
                            }
                            let empty = page.is_empty();
                            seen.extend(page);
                            if finished && empty {
                                return seen;
                            }
                        }
                    })
                })
                .collect();
            followers
                .into_iter()
                .map(|f| f.join().unwrap())
                .collect::<Vec<_>>()
        });
        let log = coupons.events(start, MAX_EVENTS_PAGE).unwrap();
        assert_eq!(log.len(), WRITERS * EACH);
        for seen in &seen {
            assert_eq!(seen, &log, "each follower read the whole log");
        }
        let mut counts = std::collections::HashMap::new();
        for event in &log {
            assert_eq!(event.kind, EventKind::Redeemed);
            let count = counts.entry(event.code.clone().unwrap()).or_insert(0u64);
            *count += 1;
            assert_eq!(event.data["redemptions"], *count, "{event:?}");
        }
    }

    /// An event numbered before another but committed after it (a writer still in flight when
    /// a reader publishes) is not published until it commits, and then gets the next `seq`:
    /// a follower whose cursor has passed the other one still reads it.
    #[test]
    fn an_event_committed_late_is_published_after_the_cursor() {
        let Some(schema) = Schema::new("late") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons.create_book(&BookSettings::new("first")).unwrap().id;
        let cursor = coupons.events(0, 10).unwrap().last().unwrap().seq;
        let mut slow = schema.client();
        let mut tx = slow.transaction().unwrap();
        tx.execute(
            "INSERT INTO pending_events (at, kind, book_id, data) \
             VALUES (now(), 'book_updated', $1, '{\"fields\": [\"name\"]}')",
            &[&book],
        )
        .unwrap();
        coupons.create_book(&BookSettings::new("second")).unwrap();
        let page = coupons.events(cursor, 10).unwrap();
        assert_eq!(page.len(), 1, "{page:?}");
        assert_eq!(
            (page[0].seq, page[0].kind),
            (cursor + 1, EventKind::BookCreated)
        );
        let cursor = page[0].seq;
        assert!(coupons.events(cursor, 10).unwrap().is_empty());
        tx.commit().unwrap();
        let page = coupons.events(cursor, 10).unwrap();
        assert_eq!(page.len(), 1, "{page:?}");
        assert_eq!(
            (page[0].seq, page[0].kind, page[0].book_id),
            (cursor + 1, EventKind::BookUpdated, book)
        );
        assert_eq!(schema.count("SELECT count(*) FROM pending_events"), 0);
    }

    /// A session that may not write (a standby, or here `default_transaction_read_only`) cannot
    /// publish pending events: it reads the log as published, without an error.
    #[test]
    fn a_read_only_session_reads_the_published_log() {
        let Some(schema) = Schema::new("readonly") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        coupons
            .create_book(&BookSettings::new("published"))
            .unwrap();
        assert_eq!(coupons.events(0, 10).unwrap().len(), 1);
        coupons.create_book(&BookSettings::new("pending")).unwrap();
        let sep = if schema.url.contains('?') { '&' } else { '?' };
        let url = format!(
            "{}{sep}options=-c%20default_transaction_read_only%3Don",
            schema.url
        );
        let reader = Coupons::new(PostgresStore::open_with(&url, options(&schema.name)).unwrap());
        let events = reader.events(0, 10).unwrap();
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].data["name"], "published");
        assert_eq!(coupons.events(0, 10).unwrap().len(), 2);
    }

    /// A deferred write that fails (here a second redemption with the same order id) fails the
    /// commit it was sent with: the transaction's other writes and its event are rolled back,
    /// and the connection (the pool's only one) serves the next transaction.
    #[test]
    fn a_deferred_write_that_fails_fails_the_commit_and_leaves_nothing() {
        use coupon_core::store::{Access, CouponStore};
        let Some(schema) = Schema::new("deferred") else {
            return;
        };
        let store = PostgresStore::open_with(
            &schema.url,
            PostgresOptions {
                pool_size: 1,
                ..options(&schema.name)
            },
        )
        .unwrap();
        let coupons = Coupons::new(store);
        assigned_book(&coupons, 1);
        let events = coupons.events(0, MAX_EVENTS_PAGE).unwrap().len();
        let now = coupons.now();
        let err = coupons
            .store()
            .transaction(Access::Write, |tx| {
                let mut code = tx.code("DEP-1")?.unwrap();
                code.redemptions += 1;
                tx.save_code(&code)?;
                let redemption = Redemption {
                    code: "DEP-1".into(),
                    user_id: "u-1".into(),
                    order_id: Some("order-1".into()),
                    context: None,
                    redeemed_at: now,
                    redemptions: 1,
                    remaining: 999_999,
                };
                let event = NewEvent::code(
                    EventKind::Redeemed,
                    code.book_id,
                    "DEP-1",
                    Some("u-1"),
                    serde_json::json!({}),
                );
                tx.record_redemption(&redemption, &event)?;
                tx.record_redemption(&redemption, &event)?;
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        assert!(!err.message().contains("INSERT"), "{}", err.message());
        assert_eq!(coupons.coupon("DEP-1").unwrap().redemptions, 0);
        assert_eq!(schema.count("SELECT count(*) FROM redemptions"), 0);
        assert_eq!(coupons.events(0, MAX_EVENTS_PAGE).unwrap().len(), events);
        let receipt = coupons
            .redeem(
                "DEP-1",
                "u-1",
                &RedeemRequest {
                    order_id: Some("order-1".into()),
                    ..RedeemRequest::default()
                },
            )
            .unwrap();
        assert_eq!((receipt.redemptions, receipt.replayed), (1, false));
    }

    /// Deferred writes carry their values as SQL literals: quotes, backslashes, non-ASCII text
    /// and JSON come back exactly as given.
    #[test]
    fn deferred_writes_keep_text_and_json_exactly() {
        let Some(schema) = Schema::new("literals") else {
            return;
        };
        let coupons = Coupons::new(schema.open());
        let book = coupons
            .create_book(&BookSettings::new("quotes"))
            .unwrap()
            .id;
        coupons
            .import_codes(book, rows(["Q-1".to_owned()]), false)
            .unwrap();
        let user = r"o'brien\'; --";
        let order = r"order 'x' \n $$ %s";
        let context = serde_json::json!({
            "note": "it's a \"quoted\" back\\slash, é€ 😀, tab\tnew\nline",
            "nul": "a\u{0}b",
            "n": [1, 2.5, null, true],
        });
        let request = RedeemRequest {
            order_id: Some(order.into()),
            context: Some(context.clone()),
            ..RedeemRequest::default()
        };
        let receipt = coupons.redeem("Q-1", user, &request).unwrap();
        assert_eq!(receipt.user_id, user);
        assert_eq!(receipt.order_id.as_deref(), Some(order));
        let again = coupons.redeem("Q-1", user, &request).unwrap();
        assert!(again.replayed);
        assert_eq!(again.redeemed_at, receipt.redeemed_at);
        let coupon = coupons.coupon("Q-1").unwrap();
        assert_eq!(coupon.assigned_at, Some(receipt.redeemed_at));
        let redeemed = coupons
            .events(0, MAX_EVENTS_PAGE)
            .unwrap()
            .into_iter()
            .find(|e| e.kind == EventKind::Redeemed)
            .unwrap();
        assert_eq!(redeemed.user_id.as_deref(), Some(user));
        assert_eq!(redeemed.at, receipt.redeemed_at);
        assert_eq!(redeemed.data["order_id"], order);
        assert_eq!(redeemed.data["context"], context);
        let stored: String = schema
            .client()
            .query_one("SELECT context::text FROM redemptions", &[])
            .unwrap()
            .get(0);
        assert_eq!(stored, context.to_string());
    }
}
