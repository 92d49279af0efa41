//! Unit tests of URL handling, and of the query plan of random assignment (on a server, when
//! `COUPON_TEST_POSTGRES_URL` names one).

use super::*;

fn target(url: &str) -> Target {
    Target::parse(url, &PostgresOptions::default()).unwrap()
}

#[test]
fn schema_parameter_is_taken_out_of_the_url() {
    let (url, schema) = take_schema("postgres://u@h/db?schema=shop&connect_timeout=3").unwrap();
    assert_eq!(url, "postgres://u@h/db?connect_timeout=3");
    assert_eq!(schema.as_deref(), Some("shop"));
    let (url, schema) = take_schema("postgresql://h/db?schema=My%20Shop").unwrap();
    assert_eq!(url, "postgresql://h/db");
    assert_eq!(schema.as_deref(), Some("My Shop"));
    let (url, schema) = take_schema("host=h dbname=db").unwrap();
    assert_eq!((url.as_str(), schema), ("host=h dbname=db", None));
    assert!(take_schema("postgres://h/db?schema=%zz").is_err());
}

#[test]
fn location_names_server_and_database_but_not_the_password() {
    let t = target("postgres://ada:hunter2@db.example:6543/shop?schema=coupons");
    assert_eq!(
        t.location,
        "postgres://ada@db.example:6543/shop?schema=coupons"
    );
    assert_eq!(t.schema.as_deref(), Some("coupons"));
    assert_eq!(
        target("postgres:///shop").location,
        "postgres://localhost:5432/shop"
    );
}

#[test]
fn options_schema_wins_over_the_url() {
    let options = PostgresOptions {
        schema: Some("mine".into()),
        ..PostgresOptions::default()
    };
    let t = Target::parse("postgres://h/db?schema=theirs", &options).unwrap();
    assert_eq!(t.schema.as_deref(), Some("mine"));
}

#[test]
fn unreadable_urls_and_schemas_are_invalid_input_without_secrets() {
    let err = Target::parse(
        "postgres://ada:hunter2@h:notaport/db",
        &PostgresOptions::default(),
    )
    .err()
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.message().contains("hunter2"), "{}", err.message());
    let err = Target::parse("postgres://h/db?schema=", &PostgresOptions::default())
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// EXPLAIN of the random claim on a book of many codes, after ANALYZE: an index scan of the
/// partial index of available codes that stops at the first lockable row — no sort, no scan of
/// the table — with the values bound (custom plan) and as a prepared statement (generic plan).
#[test]
fn random_claim_is_an_index_scan_of_available_codes() {
    use coupon_core::{BookSettings, Coupons, ImportRow};

    let Some(url) = std::env::var("COUPON_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        eprintln!("skipped: COUPON_TEST_POSTGRES_URL is not set");
        return;
    };
    let schema = format!(
        "coupon_test_plan_{}_{:08x}",
        std::process::id(),
        rand::random::<u32>()
    );
    let result = std::panic::catch_unwind(|| {
        let store = PostgresStore::open_with(
            &url,
            PostgresOptions {
                schema: Some(schema.clone()),
                ..PostgresOptions::default()
            },
        )
        .unwrap();
        let coupons = Coupons::new(store);
        let mut books = vec![];
        for (name, n) in [("small", 50u64), ("big", 20_000), ("other", 5_000)] {
            let book = coupons.create_book(&BookSettings::new(name)).unwrap().id;
            let rows = (1..=n).map(|i| ImportRow::new(i, format!("{name}-{i:06}")));
            coupons.import_codes(book, rows, false).unwrap();
            books.push(book);
        }
        for i in 0..3 {
            coupons
                .assign_random(books[1], &format!("user-{i}"), None)
                .unwrap();
        }
        let mut client = postgres::Client::connect(&url, NoTls).unwrap();
        client
            .batch_execute(&format!(
                "SET search_path TO {}; ANALYZE codes;",
                migrate::quote_ident(&schema)
            ))
            .unwrap();
        let plan = |rows: Vec<postgres::Row>| {
            rows.iter()
                .map(|r| r.get::<_, String>(0))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let custom = plan(
            client
                .query(
                    &format!("EXPLAIN {}", tx::CLAIM_RANDOM),
                    &[&books[1], &0i64],
                )
                .unwrap(),
        );
        client
            .batch_execute(&format!(
                "SET plan_cache_mode = force_generic_plan; \
                 PREPARE claim (bigint, bigint) AS {};",
                tx::CLAIM_RANDOM
            ))
            .unwrap();
        let generic = plan(
            client
                .query(&format!("EXPLAIN EXECUTE claim ({}, 0)", books[1]), &[])
                .unwrap(),
        );
        for plan in [custom, generic] {
            assert!(plan.contains("Index Scan using codes_available"), "{plan}");
            assert!(plan.contains("LockRows"), "{plan}");
            assert!(plan.contains("Limit"), "{plan}");
            assert!(!plan.contains("Sort"), "no sort: {plan}");
            assert!(!plan.contains("Seq Scan"), "no table scan: {plan}");
        }
    });
    if let Ok(mut client) = postgres::Client::connect(&url, NoTls) {
        let _ = client.batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            migrate::quote_ident(&schema)
        ));
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
