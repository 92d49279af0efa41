//! Cases for books: create, update, list, show with statistics.

use std::time::Duration;

use super::{start, Ctx};
use crate::store::CouponStore;
use crate::{BookPatch, BookSettings, BookStats, ErrorKind, EventKind, RedeemRequest};

/// A new book has the store's id, the defaults of SPEC §2 and both timestamps at now.
pub fn create_book_returns_it_with_defaults<S: CouponStore>(t: &Ctx<S>) {
    let book = t
        .coupons
        .create_book(&BookSettings::new("  Summer sale "))
        .expect("create");
    assert_eq!(
        book.settings.name, "Summer sale",
        "the name is stored trimmed"
    );
    assert_eq!(book.settings.max_redemptions_per_user, 1);
    assert_eq!(book.settings.max_codes_per_user, None);
    assert_eq!(book.settings.lock_ttl, Duration::from_secs(300));
    assert_eq!((book.created_at, book.updated_at), (start(), start()));
    let other = t
        .coupons
        .create_book(&BookSettings::new("Other"))
        .expect("create");
    assert_ne!(book.id, other.id);
    let shown = t.coupons.book(book.id).expect("show");
    assert_eq!(shown.book, book);
    assert_eq!(shown.stats, BookStats::default());
    let events = t.coupons.events(0, 10).expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].kind, EventKind::BookCreated);
    assert_eq!(events[0].book_id, book.id);
}

/// Bad settings are refused with their kind and create nothing.
pub fn create_book_refuses_bad_settings<S: CouponStore>(t: &Ctx<S>) {
    let cases = [
        (BookSettings::new(""), ErrorKind::InvalidInput),
        (
            BookSettings {
                max_redemptions_per_user: 0,
                ..BookSettings::new("b")
            },
            ErrorKind::InvalidInput,
        ),
        (
            BookSettings {
                valid_from: Some(start()),
                valid_until: Some(start()),
                ..BookSettings::new("b")
            },
            ErrorKind::InvalidInput,
        ),
        (
            BookSettings {
                code_pattern: Some("[a-z]{8}".into()),
                ..BookSettings::new("b")
            },
            ErrorKind::InvalidPattern,
        ),
        (
            BookSettings {
                lock_ttl: Duration::ZERO,
                ..BookSettings::new("b")
            },
            ErrorKind::InvalidInput,
        ),
    ];
    for (settings, kind) in cases {
        let err = t.coupons.create_book(&settings).expect_err("refused");
        assert_eq!(err.kind(), kind, "{settings:?}");
    }
    assert!(t.coupons.books().expect("list").is_empty());
    assert!(t.coupons.events(0, 10).expect("events").is_empty());
}

/// An update changes the given fields only, moves `updated_at` and logs `book_updated`.
pub fn update_book_changes_fields_and_updated_at<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book(BookSettings {
        description: Some("first".into()),
        max_codes_per_user: Some(2),
        ..BookSettings::new("b")
    });
    t.advance(60);
    let patch = BookPatch {
        name: Some("renamed".into()),
        description: Some(None),
        max_redemptions_per_user: Some(3),
        ..BookPatch::default()
    };
    let book = t.coupons.update_book(id, &patch).expect("update");
    assert_eq!(book.settings.name, "renamed");
    assert_eq!(book.settings.description, None);
    assert_eq!(book.settings.max_redemptions_per_user, 3);
    assert_eq!(book.settings.max_codes_per_user, Some(2));
    assert_eq!(book.created_at, start());
    assert_eq!(book.updated_at, t.coupons.now());
    assert_eq!(t.coupons.book(id).expect("show").book, book);
    let last = t
        .coupons
        .events(0, 10)
        .expect("events")
        .pop()
        .expect("event");
    assert_eq!(last.kind, EventKind::BookUpdated);

    let bad = BookPatch {
        valid_until: Some(Some(start())),
        valid_from: Some(Some(start())),
        ..BookPatch::default()
    };
    assert_eq!(
        t.coupons.update_book(id, &bad).unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(t.coupons.book(id).expect("show").book, book, "unchanged");
}

/// Updating a book that does not exist is `not_found`.
pub fn update_book_unknown_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    let err = t
        .coupons
        .update_book(
            404,
            &BookPatch {
                name: Some("x".into()),
                ..BookPatch::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(t.coupons.book(404).unwrap_err().kind(), ErrorKind::NotFound);
}

/// Statistics count codes by state: available, assigned, locked, redeemed, void, users, redemptions.
pub fn book_stats_count_every_state<S: CouponStore>(t: &Ctx<S>) {
    let id = t.book_with(
        BookSettings {
            max_redemptions_per_user: 2,
            ..BookSettings::new("b")
        },
        &["A1", "A2", "A3", "A4", "A5", "A6"],
    );
    let c = &t.coupons;
    c.assign_code("A1", "ann").expect("assign");
    c.lock("A2", "ann", None, None).expect("lock");
    c.redeem("A3", "bob", &RedeemRequest::default())
        .expect("redeem");
    c.redeem("A3", "bob", &RedeemRequest::default())
        .expect("redeem");
    c.redeem("A4", "bob", &RedeemRequest::default())
        .expect("redeem");
    c.void_code("A5").expect("void");
    let stats = c.book(id).expect("show").stats;
    assert_eq!(
        stats,
        BookStats {
            codes: 6,
            available: 1,
            assigned: 4,
            locked: 1,
            redeemed: 1,
            void: 1,
            users: 2,
            redemptions: 3,
        }
    );
    t.advance(301);
    assert_eq!(c.book(id).expect("show").stats.locked, 0, "the lock lapsed");
}

/// Books are listed by id.
pub fn book_list_is_ordered_by_id<S: CouponStore>(t: &Ctx<S>) {
    let ids: Vec<_> = ["one", "two", "three"]
        .into_iter()
        .map(|n| t.book(BookSettings::new(n)))
        .collect();
    let listed: Vec<_> = t
        .coupons
        .books()
        .expect("list")
        .into_iter()
        .map(|b| (b.id, b.settings.name))
        .collect();
    assert_eq!(
        listed,
        vec![
            (ids[0], "one".to_owned()),
            (ids[1], "two".to_owned()),
            (ids[2], "three".to_owned())
        ]
    );
}
