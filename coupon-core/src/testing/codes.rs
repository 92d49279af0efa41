//! Cases for codes entering and leaving books: import, generate, void, export.

use std::collections::HashSet;

use super::{rows, Ctx};
use crate::store::CouponStore;
use crate::{
    BookSettings, CodeState, ErrorKind, EventKind, ExportRow, ImportRow, Pattern, RedeemRequest,
};

fn codes_of<S: CouponStore>(t: &Ctx<S>, book: crate::BookId) -> Vec<ExportRow> {
    let mut out = vec![];
    t.coupons
        .export(book, None, |row| {
            out.push(row.clone());
            Ok(())
        })
        .expect("export");
    out
}

fn pattern_book<S: CouponStore>(t: &Ctx<S>, pattern: &str) -> crate::BookId {
    t.book(BookSettings {
        code_pattern: Some(pattern.into()),
        ..BookSettings::new("generated")
    })
}

/// Imported codes are normalized; repeats in the input and codes already in the book are duplicates.
pub fn import_normalizes_and_counts_duplicates<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings::new("b"));
    let report = t
        .coupons
        .import_codes(id, rows(&[" summer-1 ", "SUMMER-2", "Summer-1"]), false)
        .expect("import");
    assert_eq!(
        (report.inserted, report.duplicates, report.invalid_total),
        (2, 1, 0)
    );
    assert_eq!(t.coupons.coupon("summer-1").expect("show").code, "SUMMER-1");
    let events = t.coupons.events(0, 10).expect("events");
    let added = events.last().expect("event");
    assert_eq!(added.kind, EventKind::CodesAdded);
    assert_eq!(added.data["count"], 2);
    assert_eq!(added.data["source"], "import");
}

/// Importing the same rows again adds nothing, reports every row a duplicate and logs nothing.
pub fn import_is_idempotent<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings::new("b"));
    let codes: Vec<String> = (0..25_000).map(|i| format!("CODE-{i}")).collect();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let first = t
        .coupons
        .import_codes(id, rows(&refs), false)
        .expect("import");
    assert_eq!(first.inserted, 25_000);
    let events = t.coupons.events(0, 100).expect("events").len();
    let again = t
        .coupons
        .import_codes(id, rows(&refs), false)
        .expect("import");
    assert_eq!((again.inserted, again.duplicates), (0, 25_000));
    assert_eq!(t.coupons.events(0, 100).expect("events").len(), events);
    assert_eq!(t.coupons.book(id).expect("show").stats.codes, 25_000);
}

/// With a bad row and no `skip_invalid`, nothing is written and the error is `invalid_input`.
pub fn import_all_or_nothing_on_bad_rows<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings::new("b"));
    let mut input = rows(&["GOOD-1", "bad code", "GOOD-2"]);
    input.push(ImportRow {
        line: 4,
        text: Err("invalid UTF-8".into()),
    });
    let err = t.coupons.import_codes(id, input, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.message().contains("line 2"), "{}", err.message());
    assert_eq!(t.coupons.book(id).expect("show").stats.codes, 0);
    assert_eq!(
        t.coupons.coupon("GOOD-1").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        t.coupons.events(0, 10).expect("events").len(),
        1,
        "only book_created"
    );
}

/// With `skip_invalid` the valid rows are added and the others reported with their lines.
pub fn import_skip_invalid_adds_valid_rows<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings::new("b"));
    let long = "X".repeat(65);
    let report = t
        .coupons
        .import_codes(id, rows(&["GOOD-1", "bad code", &long, "GOOD-2"]), true)
        .expect("import");
    assert_eq!((report.inserted, report.invalid_total), (2, 2));
    let lines: Vec<u64> = report.invalid.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3]);
    assert_eq!(report.invalid[0].code, "bad code");
    assert_eq!(t.coupons.book(id).expect("show").stats.codes, 2);
}

/// A code of another book is a refused row naming that book; it stays in its book.
pub fn import_code_of_other_book_is_refused<S: CouponStore>(t: &Ctx<S>) {
    let first = t.book_with(BookSettings::new("first"), &["SHARED"]);
    let second = t.book(BookSettings::new("second"));
    let err = t
        .coupons
        .import_codes(second, rows(&["NEW", "shared"]), false)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(t.coupons.book(second).expect("show").stats.codes, 0);
    let report = t
        .coupons
        .import_codes(second, rows(&["NEW", "shared"]), true)
        .expect("import");
    assert_eq!(report.inserted, 1);
    assert_eq!(report.invalid[0].line, 2);
    assert!(report.invalid[0].reason.contains(&first.to_string()));
    assert_eq!(t.coupons.coupon("SHARED").expect("show").book_id, first);
}

/// Importing into a book that does not exist is `not_found`.
pub fn import_unknown_book_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    let err = t.coupons.import_codes(99, rows(&["A"]), false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

/// Generate adds exactly `count` distinct codes of the pattern and reports space and probability.
pub fn generate_adds_exactly_count_matching_codes<S: CouponStore>(t: &Ctx<S>) {
    let id = pattern_book(t, "GEN-[A-HJ-NP-Z2-9]{8}");
    let report = t
        .coupons
        .generate_codes(id, 20_500, false)
        .expect("generate");
    assert_eq!(report.generated, 20_500);
    assert_eq!(report.space, "1099511627776");
    assert!((report.guess_probability - 20_500.0 / 1_099_511_627_776.0).abs() < 1e-15);
    let pattern = Pattern::parse("GEN-[A-HJ-NP-Z2-9]{8}").expect("pattern");
    let codes = codes_of(t, id);
    assert_eq!(codes.len(), 20_500);
    assert!(codes.iter().all(|r| pattern.contains(&r.code)));
    assert!(codes.iter().all(|r| r.state == CodeState::Available));
    let added = t
        .coupons
        .events(0, 10)
        .expect("events")
        .pop()
        .expect("event");
    assert_eq!(added.kind, EventKind::CodesAdded);
    assert_eq!(added.data["source"], "generate");
    assert_eq!(added.data["count"], 20_500);
    assert_eq!(
        t.coupons.generate_codes(id, 0, false).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        t.coupons.generate_codes(999, 1, false).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

/// A book without a pattern cannot generate.
pub fn generate_without_pattern_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings::new("b"));
    let err = t.coupons.generate_codes(id, 1, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

/// More codes than the free part of the space is `infeasible`, before anything is written.
pub fn generate_refuses_more_than_free_space<S: CouponStore>(t: &Ctx<S>) {
    let id = pattern_book(t, "[0-9]{3}");
    t.coupons.generate_codes(id, 990, true).expect("generate");
    let err = t.coupons.generate_codes(id, 11, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Infeasible);
    assert!(err.message().contains("990"), "{}", err.message());
    assert_eq!(t.coupons.book(id).expect("show").stats.codes, 990);
    t.coupons
        .generate_codes(id, 10, true)
        .expect("the last ten fit");
    let codes: HashSet<String> = codes_of(t, id).into_iter().map(|r| r.code).collect();
    assert_eq!(codes.len(), 1000);
    // Counts whose double does not fit 64 bits are refused as well.
    for count in [u64::MAX / 2 + 1, u64::MAX] {
        let err = t.coupons.generate_codes(id, count, true).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Infeasible, "{count}");
    }
}

/// Filling the last codes of a nearly full space finishes, with exactly the free codes.
pub fn generate_fills_the_last_codes_of_a_dense_space<S: CouponStore>(t: &Ctx<S>) {
    let id = pattern_book(t, "[0-9]{4}");
    t.coupons.generate_codes(id, 9_900, true).expect("generate");
    t.coupons
        .generate_codes(id, 100, true)
        .expect("the last 1%");
    let codes: HashSet<String> = codes_of(t, id).into_iter().map(|r| r.code).collect();
    let all: HashSet<String> = (0..10_000).map(|i| format!("{i:04}")).collect();
    assert_eq!(codes, all);
    assert_eq!(
        t.coupons.generate_codes(id, 1, true).unwrap_err().kind(),
        ErrorKind::Infeasible
    );
}

/// Without `allow_guessable`, a book filling more than 1/1000 of its space is `infeasible`.
pub fn generate_guessability_guard<S: CouponStore>(t: &Ctx<S>) {
    let id = pattern_book(t, "[0-9]{5}");
    t.coupons
        .generate_codes(id, 100, false)
        .expect("exactly 1/1000");
    let err = t.coupons.generate_codes(id, 1, false).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Infeasible);
    assert_eq!(t.coupons.book(id).expect("show").stats.codes, 100);
    let report = t.coupons.generate_codes(id, 1, true).expect("allowed");
    assert!((report.guess_probability - 101.0 / 100_000.0).abs() < 1e-12);
}

/// Generation never creates a code that exists in another book.
pub fn generate_skips_codes_taken_by_other_books<S: CouponStore>(t: &Ctx<S>) {
    let taken: Vec<String> = (0..60).map(|i| format!("{i:02}")).collect();
    let refs: Vec<&str> = taken.iter().map(String::as_str).collect();
    let other = t.book_with(BookSettings::new("other"), &refs);
    let id = pattern_book(t, "[0-9]{2}");
    let err = t.coupons.generate_codes(id, 41, true).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Infeasible);
    t.coupons.generate_codes(id, 40, true).expect("the free 40");
    let mine: HashSet<String> = codes_of(t, id).into_iter().map(|r| r.code).collect();
    let expected: HashSet<String> = (60..100).map(|i| format!("{i:02}")).collect();
    assert_eq!(mine, expected);
    assert_eq!(t.coupons.book(other).expect("show").stats.codes, 60);
}

/// Voiding several codes is all or nothing: an unknown one voids none and logs nothing.
pub fn void_codes_is_all_or_nothing<S: CouponStore>(t: &Ctx<S>) {
    let c = &t.coupons;
    let book = t.book_with(BookSettings::new("Voids"), &["W1", "W2", "W3"]);
    let before = c.events(0, 100).expect("events").len();
    let err = c.void_codes(&["W1", "W2", "NOPE"]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.message().contains("NOPE"), "{}", err.message());
    assert_eq!(c.coupon("W1").expect("show").state, CodeState::Available);
    assert_eq!(c.events(0, 100).expect("events").len(), before);
    let voided = c.void_codes(&["w3", "W1"]).expect("void two");
    let codes: Vec<&str> = voided.iter().map(|v| v.code.as_str()).collect();
    assert_eq!(codes, ["W3", "W1"]);
    assert!(voided.iter().all(|v| v.state == CodeState::Void));
    assert_eq!(c.book(book).expect("book").stats.void, 2);
    assert_eq!(c.events(0, 100).expect("events").len(), before + 2);
}

/// A void code keeps its history but can no longer be assigned, locked or redeemed.
pub fn void_blocks_assign_and_redeem<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(BookSettings::new("b"), &["V1", "V2"]);
    let c = &t.coupons;
    c.assign_code("V1", "ann").expect("assign");
    let voided = c.void_code("v1").expect("void");
    assert_eq!(voided.state, CodeState::Void);
    assert_eq!(voided.user_id.as_deref(), Some("ann"), "history kept");
    for err in [
        c.assign_code("V1", "ann").unwrap_err(),
        c.lock("V1", "ann", None, None).unwrap_err(),
        c.redeem("V1", "ann", &RedeemRequest::default())
            .unwrap_err(),
    ] {
        assert_eq!(err.kind(), ErrorKind::Void);
    }
    let events = c.events(0, 100).expect("events").len();
    c.void_code("V1").expect("again");
    assert_eq!(
        c.events(0, 100).expect("events").len(),
        events,
        "nothing new"
    );
    c.void_code("V2").expect("void an available code");
    assert_eq!(
        c.assign_random(voided.book_id, "bob", None)
            .unwrap_err()
            .kind(),
        ErrorKind::SoldOut
    );
    assert_eq!(c.void_code("NOPE").unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        c.void_code("no pe").unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

/// Export lists every code of the book in code order with state, owner and redemptions.
pub fn export_streams_rows_with_state<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book_with(BookSettings::new("b"), &["E3", "E1", "E2"]);
    t.book_with(BookSettings::new("other"), &["E0"]);
    t.coupons
        .redeem("E2", "ann", &RedeemRequest::default())
        .expect("redeem");
    let rows = codes_of(t, id);
    let summary: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r.code.as_str(),
                r.state,
                r.assigned_to.as_deref(),
                r.redemptions,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("E1", CodeState::Available, None, 0),
            ("E2", CodeState::Redeemed, Some("ann"), 1),
            ("E3", CodeState::Available, None, 0),
        ]
    );
    let mut redeemed = vec![];
    let n = t
        .coupons
        .export(id, Some(CodeState::Redeemed), |r| {
            redeemed.push(r.code.clone());
            Ok(())
        })
        .expect("export");
    assert_eq!((n, redeemed), (1, vec!["E2".to_owned()]));
    let err = t.coupons.export(77, None, |_| Ok(())).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}
