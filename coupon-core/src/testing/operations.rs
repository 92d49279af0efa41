//! Cases of the single-code operations of SPEC §5: assign (random and specific), lock, unlock,
//! redeem, a user's coupons and the event log, with every refusal kind and the order of checks.

use std::fmt::Debug;
use std::time::Duration;

use chrono::TimeDelta;
use serde_json::json;

use super::{start, Ctx};
use crate::store::CouponStore;
use crate::{
    BookId, BookPatch, BookSettings, CodeState, Coupon, ErrorKind, Event, EventKind, RedeemRequest,
    Result, Timestamp, MAX_CONTEXT_BYTES, MAX_EVENTS_PAGE,
};

/// The kind of the error `result` must be.
fn kind<T: Debug>(result: Result<T>) -> ErrorKind {
    match result {
        Ok(value) => panic!("expected an error, got Ok({value:?})"),
        Err(e) => e.kind(),
    }
}

/// The start of the case's clock plus `secs` seconds.
fn at(secs: i64) -> Timestamp {
    start() + TimeDelta::seconds(secs)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Every event of the (fresh) store.
fn events<S: CouponStore>(t: &Ctx<S>) -> Vec<Event> {
    t.coupons.events(0, MAX_EVENTS_PAGE).expect("read events")
}

/// The kinds of the events after `seq`.
fn kinds_after<S: CouponStore>(t: &Ctx<S>, seq: i64) -> Vec<EventKind> {
    t.coupons
        .events(seq, MAX_EVENTS_PAGE)
        .expect("read events")
        .iter()
        .map(|e| e.kind)
        .collect()
}

/// The seq of the last event (0 when there is none).
fn last_seq<S: CouponStore>(t: &Ctx<S>) -> i64 {
    events(t).last().map_or(0, |e| e.seq)
}

fn coupon<S: CouponStore>(t: &Ctx<S>, code: &str) -> Coupon {
    t.coupons.coupon(code).expect("show the code")
}

fn redeem_with(
    token: Option<&str>,
    order: Option<&str>,
    context: Option<serde_json::Value>,
) -> RedeemRequest {
    RedeemRequest {
        lock_token: token.map(str::to_owned),
        order_id: order.map(str::to_owned),
        context,
    }
}

fn plain() -> RedeemRequest {
    RedeemRequest::default()
}

fn settings(name: &str) -> BookSettings {
    BookSettings::new(name)
}

fn capped(name: &str, cap: u32) -> BookSettings {
    BookSettings {
        max_codes_per_user: Some(cap),
        ..BookSettings::new(name)
    }
}

fn window(name: &str, from: Option<i64>, until: Option<i64>) -> BookSettings {
    BookSettings {
        valid_from: from.map(at),
        valid_until: until.map(at),
        ..BookSettings::new(name)
    }
}

fn uses(name: &str, max_redemptions: u32) -> BookSettings {
    BookSettings {
        max_redemptions_per_user: max_redemptions,
        ..BookSettings::new(name)
    }
}

fn held<S: CouponStore>(t: &Ctx<S>, user: &str, book: BookId) -> Vec<Coupon> {
    t.coupons
        .user_coupons(user, Some(book), None)
        .expect("list the user's coupons")
}

// ---------------------------------------------------------------------------------------------
// assign random

/// Random assignment picks among all the available codes, not the first ones in some order:
/// 60 draws from 300 codes land in both halves of the code order (a fair pick puts fewer
/// than 12 in one half about once in a million runs).
pub fn assign_random_spreads_over_the_book<S: CouponStore>(t: &Ctx<S>) {
    let codes: Vec<String> = (0..300).map(|i| format!("SPREAD-{i:03}")).collect();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let book = t.book_with(settings("Spread"), &refs);
    let lower = (0..60)
        .map(|i| {
            t.coupons
                .assign_random(book, &format!("user-{i}"), None)
                .expect("assign")
                .code
        })
        .filter(|code| code.as_str() < "SPREAD-150")
        .count();
    assert!(
        (12..=48).contains(&lower),
        "{lower} of 60 random assignments fell in the lower half of the codes"
    );
}

/// Assign random gives one available code with its full coupon view, assigned now.
pub fn assign_random_gives_an_available_code<S: CouponStore>(t: &Ctx<S>) {
    let codes = ["RND-1", "RND-2", "RND-3"];
    let book = t.book_with(
        BookSettings {
            max_redemptions_per_user: 2,
            valid_until: Some(at(86_400)),
            ..settings("Spring")
        },
        &codes,
    );
    t.advance(7);
    let c = t
        .coupons
        .assign_random(book, "user-42", None)
        .expect("assign");
    assert!(
        codes.contains(&c.code.as_str()),
        "{} is not of the book",
        c.code
    );
    let expected = Coupon {
        code: c.code.clone(),
        book_id: book,
        book_name: "Spring".into(),
        user_id: Some("user-42".into()),
        state: CodeState::Active,
        redemptions: 0,
        remaining: 2,
        assigned_at: Some(at(7)),
        valid_until: Some(at(86_400)),
        locked_until: None,
    };
    assert_eq!(c, expected);
    assert_eq!(coupon(t, &c.code), expected, "the stored code agrees");
    let stats = t.coupons.book(book).expect("book").stats;
    assert_eq!(
        (stats.available, stats.assigned, stats.users),
        (2, 1, 1),
        "one code left the pool"
    );
}

/// Assign random is allowed before `valid_from` (only locking and redeeming wait for it).
pub fn assign_random_before_valid_from_is_allowed<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(window("Later", Some(3_600), Some(7_200)), &["LATER-1"]);
    let c = t
        .coupons
        .assign_random(book, "u1", None)
        .expect("assign before valid_from");
    assert_eq!(c.code, "LATER-1");
    assert_eq!(c.user_id.as_deref(), Some("u1"));
}

/// Assign random after the book's `valid_until` is `expired`, and hands nothing out.
pub fn assign_random_after_valid_until_is_expired<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(window("Short", None, Some(60)), &["SHORT-1", "SHORT-2"]);
    t.coupons
        .assign_random(book, "u1", None)
        .expect("assign while valid");
    t.advance(61);
    assert_eq!(
        kind(t.coupons.assign_random(book, "u2", None)),
        ErrorKind::Expired
    );
    assert_eq!(t.coupons.book(book).expect("book").stats.available, 1);
}

/// Assign random stops at `max_codes_per_user` (`limit_reached`); other users are not affected.
pub fn assign_random_at_cap_is_limit_reached<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(capped("Cap", 2), &["CAP-1", "CAP-2", "CAP-3", "CAP-4"]);
    let a = t.coupons.assign_random(book, "u1", None).expect("first");
    let b = t.coupons.assign_random(book, "u1", None).expect("second");
    assert_ne!(a.code, b.code);
    assert_eq!(
        kind(t.coupons.assign_random(book, "u1", None)),
        ErrorKind::LimitReached
    );
    assert_eq!(held(t, "u1", book).len(), 2);
    t.coupons
        .assign_random(book, "u2", None)
        .expect("another user has their own cap");
}

/// Void codes do not count toward `max_codes_per_user`.
pub fn assign_random_void_codes_do_not_count_toward_cap<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(capped("Cap", 1), &["VC-1", "VC-2", "VC-3"]);
    let first = t.coupons.assign_random(book, "u1", None).expect("first");
    assert_eq!(
        kind(t.coupons.assign_random(book, "u1", None)),
        ErrorKind::LimitReached
    );
    t.coupons.void_code(&first.code).expect("void");
    let second = t
        .coupons
        .assign_random(book, "u1", None)
        .expect("a void code frees the cap");
    assert_ne!(second.code, first.code);
    let mut states: Vec<_> = held(t, "u1", book).iter().map(|c| c.state).collect();
    states.sort_by_key(|s| s.as_str());
    assert_eq!(states, [CodeState::Active, CodeState::Void]);
}

/// Assign random with no available code left is `sold_out` (void codes are not available).
pub fn assign_random_sold_out_when_none_left<S: CouponStore>(t: &Ctx<S>) {
    let empty = t.book(settings("Empty"));
    assert_eq!(
        kind(t.coupons.assign_random(empty, "u1", None)),
        ErrorKind::SoldOut
    );
    let book = t.book_with(settings("Two"), &["SO-1", "SO-2", "SO-3"]);
    t.coupons.void_code("SO-3").expect("void");
    let a = t.coupons.assign_random(book, "u1", None).expect("first");
    let b = t.coupons.assign_random(book, "u2", None).expect("second");
    assert_ne!(a.code, b.code);
    assert_ne!(a.code, "SO-3");
    assert_ne!(b.code, "SO-3");
    assert_eq!(
        kind(t.coupons.assign_random(book, "u3", None)),
        ErrorKind::SoldOut
    );
}

/// Assign random never hands out a code owned by someone, locked or not.
pub fn assign_random_skips_owned_and_locked_codes<S: CouponStore>(t: &Ctx<S>) {
    let codes: Vec<String> = (0..20).map(|i| format!("SK-{i:02}")).collect();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    let book = t.book_with(settings("Skip"), &refs);
    // SK-00 stays free; the others are locked (which assigns) or assigned by other users.
    for (i, code) in refs.iter().enumerate().skip(1) {
        let user = format!("holder-{i}");
        if i % 2 == 0 {
            t.coupons.lock(code, &user, None, None).expect("lock");
        } else {
            t.coupons.assign_code(code, &user).expect("assign");
        }
    }
    let c = t
        .coupons
        .assign_random(book, "taker", None)
        .expect("assign");
    assert_eq!(c.code, "SK-00", "the only code not held by anyone");
    assert_eq!(
        kind(t.coupons.assign_random(book, "taker-2", None)),
        ErrorKind::SoldOut
    );
    // An expired lock leaves the code with its owner: still not handed out.
    t.advance(3_600);
    assert_eq!(
        kind(t.coupons.assign_random(book, "taker-3", None)),
        ErrorKind::SoldOut
    );
    assert_eq!(coupon(t, "SK-02").user_id.as_deref(), Some("holder-2"));
}

/// Assign random with an idempotency key returns the same code on repeat; another key or
/// another user gets another code.
pub fn assign_random_idempotency_key_returns_same_code<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(
        capped("Keys", 2),
        &["KEY-1", "KEY-2", "KEY-3", "KEY-4", "KEY-5"],
    );
    let first = t
        .coupons
        .assign_random(book, "u1", Some("k-1"))
        .expect("first");
    let seq = last_seq(t);
    t.advance(5);
    let again = t
        .coupons
        .assign_random(book, "u1", Some("k-1"))
        .expect("repeat");
    assert_eq!(again, first, "the repeat returns the same coupon");
    assert!(kinds_after(t, seq).is_empty(), "a repeat records nothing");
    assert_eq!(held(t, "u1", book).len(), 1);

    let other = t
        .coupons
        .assign_random(book, "u1", Some("k-2"))
        .expect("another key");
    assert_ne!(other.code, first.code);
    assert_eq!(held(t, "u1", book).len(), 2);
    // At the cap now: repeating a key still answers with its code.
    let repeat = t
        .coupons
        .assign_random(book, "u1", Some("k-1"))
        .expect("repeat at the cap");
    assert_eq!(repeat.code, first.code);
    assert_eq!(
        kind(t.coupons.assign_random(book, "u1", Some("k-3"))),
        ErrorKind::LimitReached
    );

    let theirs = t
        .coupons
        .assign_random(book, "u2", Some("k-1"))
        .expect("same key, other user");
    assert_ne!(theirs.code, first.code);
    assert_ne!(theirs.code, other.code);
    assert_eq!(theirs.user_id.as_deref(), Some("u2"));
}

/// Assign random on an unknown book is `not_found`.
pub fn assign_random_unknown_book_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Known"), &["KN-1"]);
    assert_eq!(
        kind(t.coupons.assign_random(book + 1000, "u1", None)),
        ErrorKind::NotFound
    );
}

/// Assign random refuses a bad user id or key as `invalid_input`, before looking up the book.
pub fn assign_random_invalid_user_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Users"), &["US-1"]);
    let long = "u".repeat(129);
    for bad in ["", " u1", "u1 ", "u\n1", "üser", long.as_str()] {
        assert_eq!(
            kind(t.coupons.assign_random(book, bad, None)),
            ErrorKind::InvalidInput,
            "user {bad:?}"
        );
        assert_eq!(
            kind(t.coupons.assign_random(book + 1000, bad, None)),
            ErrorKind::InvalidInput,
            "user {bad:?} on an unknown book: input is checked first"
        );
    }
    assert_eq!(
        kind(t.coupons.assign_random(book, "u1", Some(""))),
        ErrorKind::InvalidInput,
        "empty idempotency key"
    );
    assert_eq!(t.coupons.book(book).expect("book").stats.available, 1);
}

// ---------------------------------------------------------------------------------------------
// assign specific

/// Assign code gives that code to the user and records one `assigned` event.
pub fn assign_code_assigns_it<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Specific"), &["SP-1", "SP-2"]);
    let seq = last_seq(t);
    t.advance(3);
    let c = t.coupons.assign_code("SP-2", "u1").expect("assign");
    assert_eq!(c.code, "SP-2");
    assert_eq!(c.book_id, book);
    assert_eq!(c.user_id.as_deref(), Some("u1"));
    assert_eq!(c.state, CodeState::Active);
    assert_eq!(c.assigned_at, Some(at(3)));
    assert_eq!(coupon(t, "SP-2"), c);
    let new = t.coupons.events(seq, 10).expect("events");
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].kind, EventKind::Assigned);
    assert_eq!(new[0].code.as_deref(), Some("SP-2"));
    assert_eq!(new[0].user_id.as_deref(), Some("u1"));
    assert_eq!(new[0].book_id, book);
    assert_eq!(coupon(t, "SP-1").state, CodeState::Available);
}

/// Assign code of a code the user already holds returns it unchanged, with no new event.
pub fn assign_code_same_user_is_idempotent<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(capped("Again", 1), &["AG-1"]);
    let first = t.coupons.assign_code("AG-1", "u1").expect("assign");
    let seq = last_seq(t);
    t.advance(30);
    let again = t.coupons.assign_code("ag-1", "u1").expect("again");
    assert_eq!(again, first, "returned unchanged (assigned_at included)");
    assert!(kinds_after(t, seq).is_empty(), "no second assigned event");
}

/// Assign code of another user's code is `not_owner`, locked or not.
pub fn assign_code_other_users_is_not_owner<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Theirs"), &["TH-1", "TH-2"]);
    t.coupons.assign_code("TH-1", "u1").expect("assign");
    t.coupons.lock("TH-2", "u1", None, None).expect("lock");
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.assign_code("TH-1", "u2")),
        ErrorKind::NotOwner
    );
    assert_eq!(
        kind(t.coupons.assign_code("TH-2", "u2")),
        ErrorKind::NotOwner
    );
    assert_eq!(coupon(t, "TH-1").user_id.as_deref(), Some("u1"));
    assert_eq!(coupon(t, "TH-2").state, CodeState::Locked);
    assert!(kinds_after(t, seq).is_empty());
}

/// Assign code of a void code is `void`.
pub fn assign_code_void_is_void<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Void"), &["VO-1"]);
    t.coupons.void_code("VO-1").expect("void");
    assert_eq!(kind(t.coupons.assign_code("VO-1", "u1")), ErrorKind::Void);
    assert_eq!(coupon(t, "VO-1").user_id, None);
}

/// Assign code when the user holds `max_codes_per_user` codes of the book is `limit_reached`.
pub fn assign_code_at_cap_is_limit_reached<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(capped("Cap", 1), &["AC-1", "AC-2"]);
    t.coupons.assign_code("AC-1", "u1").expect("first");
    assert_eq!(
        kind(t.coupons.assign_code("AC-2", "u1")),
        ErrorKind::LimitReached
    );
    assert_eq!(coupon(t, "AC-2").state, CodeState::Available);
    assert_eq!(held(t, "u1", book).len(), 1);
    // Codes of another book do not count.
    t.book_with(capped("Other", 1), &["AC-OTHER"]);
    t.coupons
        .assign_code("AC-OTHER", "u1")
        .expect("the cap is per book");
}

/// Assign code after the book's `valid_until` is `expired`; before `valid_from` it is allowed.
pub fn assign_code_after_valid_until_is_expired<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(window("Window", Some(60), Some(120)), &["WI-1", "WI-2"]);
    t.coupons
        .assign_code("WI-1", "u1")
        .expect("before valid_from is allowed");
    t.advance(121);
    assert_eq!(
        kind(t.coupons.assign_code("WI-2", "u1")),
        ErrorKind::Expired
    );
    assert_eq!(coupon(t, "WI-2").state, CodeState::Available);
}

/// Code lookups normalize: `summer-ab12` (with spaces around) finds `SUMMER-AB12`.
pub fn assign_code_lookup_normalizes<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Summer"), &["SUMMER-AB12"]);
    let c = t
        .coupons
        .assign_code("  summer-ab12\t", "u1")
        .expect("assign");
    assert_eq!(c.code, "SUMMER-AB12");
    assert_eq!(coupon(t, "Summer-Ab12").user_id.as_deref(), Some("u1"));
}

/// Assign code of a string that cannot be a code is `invalid_input`, before `not_found`.
pub fn assign_code_bad_code_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Bad"), &["BAD-1"]);
    let long = "A".repeat(65);
    for bad in ["", "   ", "two words", "A;B", "ÄB", long.as_str()] {
        assert_eq!(
            kind(t.coupons.assign_code(bad, "u1")),
            ErrorKind::InvalidInput,
            "code {bad:?}"
        );
        assert_eq!(
            kind(t.coupons.coupon(bad)),
            ErrorKind::InvalidInput,
            "show {bad:?}"
        );
    }
    // A bad user on an unknown code: input validation comes first.
    assert_eq!(
        kind(t.coupons.assign_code("NOPE-1", " u1")),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(t.coupons.assign_code("BAD-1", "")),
        ErrorKind::InvalidInput
    );
}

/// Assign code of an unknown code is `not_found`.
pub fn assign_code_unknown_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Known"), &["KNOWN-1"]);
    assert_eq!(
        kind(t.coupons.assign_code("KNOWN-2", "u1")),
        ErrorKind::NotFound
    );
    assert_eq!(kind(t.coupons.coupon("KNOWN-2")), ErrorKind::NotFound);
}

/// Assign code checks ownership before the code's state, and the code's state before the book.
pub fn assign_code_checks_in_order<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(
        BookSettings {
            valid_until: Some(at(60)),
            max_codes_per_user: Some(1),
            ..settings("Order")
        },
        &["ORD-1", "ORD-2", "ORD-3"],
    );
    t.coupons.assign_code("ORD-1", "u1").expect("assign");
    t.coupons.void_code("ORD-1").expect("void");
    t.coupons.assign_code("ORD-3", "u2").expect("assign");
    t.coupons.void_code("ORD-2").expect("void");
    t.advance(61);
    // Other user's void code in an expired book: ownership first.
    assert_eq!(
        kind(t.coupons.assign_code("ORD-1", "u2")),
        ErrorKind::NotOwner
    );
    // Void code in an expired book, u2 at the cap: the code's state first.
    assert_eq!(kind(t.coupons.assign_code("ORD-2", "u2")), ErrorKind::Void);
}

// ---------------------------------------------------------------------------------------------
// lock

/// Lock returns the code, a fresh ≥128-bit token and `expires_at = now + ttl` (the book's
/// lock TTL by default).
pub fn lock_returns_token_and_expiry<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Default ttl"), &["LT-1", "LT-2"]);
    t.book_with(
        BookSettings {
            lock_ttl: secs(90),
            ..settings("Book ttl")
        },
        &["LT-3"],
    );
    t.advance(10);
    let a = t.coupons.lock("lt-1", "u1", None, None).expect("lock");
    assert_eq!(a.code, "LT-1");
    assert_eq!(a.expires_at, at(10 + 300), "default lock ttl is 5 minutes");
    let b = t
        .coupons
        .lock("LT-2", "u1", Some(secs(42)), None)
        .expect("lock");
    assert_eq!(b.expires_at, at(10 + 42), "given ttl");
    let c = t.coupons.lock("LT-3", "u1", None, None).expect("lock");
    assert_eq!(c.expires_at, at(10 + 90), "the book's lock ttl");
    for grant in [&a, &b, &c] {
        assert!(
            grant.token.len() >= 32 && grant.token.chars().all(|ch| ch.is_ascii_hexdigit()),
            "token must carry at least 128 bits as hex"
        );
    }
    assert_ne!(a.token, b.token);
    assert_ne!(a.token, c.token);
    assert_ne!(b.token, c.token);
    // After expiry, a new lock gets a new token.
    t.advance(301);
    let again = t.coupons.lock("LT-1", "u1", None, None).expect("relock");
    assert_ne!(again.token, a.token);
}

/// Lock of an available code assigns it (`assigned` then `locked`); when the lock lapses unused
/// the code stays assigned.
pub fn lock_available_code_assigns_it<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Lock assigns"), &["LA-1"]);
    let seq = last_seq(t);
    let grant = t
        .coupons
        .lock("LA-1", "u1", Some(secs(60)), None)
        .expect("lock");
    assert_eq!(
        kinds_after(t, seq),
        [EventKind::Assigned, EventKind::Locked]
    );
    let new = t.coupons.events(seq, 10).expect("events");
    assert!(new
        .iter()
        .all(|e| e.code.as_deref() == Some("LA-1") && e.user_id.as_deref() == Some("u1")));
    let c = coupon(t, "LA-1");
    assert_eq!(c.user_id.as_deref(), Some("u1"));
    assert_eq!(c.assigned_at, Some(start()));
    assert_eq!(c.state, CodeState::Locked);
    assert_eq!(c.locked_until, Some(grant.expires_at));
    t.advance(61);
    let c = coupon(t, "LA-1");
    assert_eq!(
        c.state,
        CodeState::Active,
        "the lapsed lock leaves it assigned"
    );
    assert_eq!(c.user_id.as_deref(), Some("u1"));
    assert_eq!(c.locked_until, None);
    assert_eq!(held(t, "u1", book).len(), 1);
}

/// Lock state shows in `coupon()` (state `locked`, `locked_until`) and in the book's stats.
pub fn lock_is_visible_in_coupon<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Visible"), &["LV-1"]);
    t.coupons.assign_code("LV-1", "u1").expect("assign");
    assert_eq!(coupon(t, "LV-1").state, CodeState::Active);
    let grant = t
        .coupons
        .lock("LV-1", "u1", Some(secs(120)), None)
        .expect("lock");
    let c = coupon(t, "LV-1");
    assert_eq!(c.state, CodeState::Locked);
    assert_eq!(c.locked_until, Some(at(120)));
    assert_eq!(grant.expires_at, at(120));
    assert_eq!(t.coupons.book(book).expect("book").stats.locked, 1);
    t.advance(119);
    assert_eq!(coupon(t, "LV-1").state, CodeState::Locked);
    t.advance(2);
    assert_eq!(coupon(t, "LV-1").state, CodeState::Active);
    assert_eq!(t.coupons.book(book).expect("book").stats.locked, 0);
}

/// Lock of a code under a live lock without its token is `locked`.
pub fn lock_live_lock_without_token_is_locked<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Held"), &["LL-1"]);
    let grant = t
        .coupons
        .lock("LL-1", "u1", Some(secs(60)), None)
        .expect("lock");
    let seq = last_seq(t);
    t.advance(30);
    assert_eq!(
        kind(t.coupons.lock("LL-1", "u1", None, None)),
        ErrorKind::Locked
    );
    assert_eq!(coupon(t, "LL-1").locked_until, Some(grant.expires_at));
    assert!(kinds_after(t, seq).is_empty());
}

/// Lock presenting the live lock's token extends it, returns the same token and logs `locked`.
pub fn lock_with_its_token_extends_it<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Extend"), &["LE-1"]);
    let first = t
        .coupons
        .lock("LE-1", "u1", Some(secs(60)), None)
        .expect("lock");
    let seq = last_seq(t);
    t.advance(30);
    let second = t
        .coupons
        .lock("LE-1", "u1", Some(secs(60)), Some(&first.token))
        .expect("extend");
    assert_eq!(second.token, first.token);
    assert_eq!(second.expires_at, at(90));
    assert_eq!(coupon(t, "LE-1").locked_until, Some(at(90)));
    assert_eq!(kinds_after(t, seq), [EventKind::Locked]);
    t.advance(45);
    assert_eq!(
        coupon(t, "LE-1").state,
        CodeState::Locked,
        "still locked past the first expiry"
    );
}

/// Lock presenting a token that is not the live lock's is `bad_lock_token`.
pub fn lock_wrong_token_is_bad_lock_token<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Wrong"), &["LW-1"]);
    let grant = t
        .coupons
        .lock("LW-1", "u1", Some(secs(60)), None)
        .expect("lock");
    let wrong = "0".repeat(40);
    assert_eq!(
        kind(t.coupons.lock("LW-1", "u1", Some(secs(600)), Some(&wrong))),
        ErrorKind::BadLockToken
    );
    assert_eq!(coupon(t, "LW-1").locked_until, Some(grant.expires_at));
}

/// Lock of another user's code is `not_owner`, whatever its lock.
pub fn lock_other_users_code_is_not_owner<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Theirs"), &["LO-1", "LO-2"]);
    t.coupons.assign_code("LO-1", "u1").expect("assign");
    let grant = t.coupons.lock("LO-2", "u1", None, None).expect("lock");
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.lock("LO-1", "u2", None, None)),
        ErrorKind::NotOwner
    );
    assert_eq!(
        kind(t.coupons.lock("LO-2", "u2", None, Some(&grant.token))),
        ErrorKind::NotOwner,
        "even with the lock's token"
    );
    assert!(kinds_after(t, seq).is_empty());
}

/// Lock of a code whose redemptions are used up is `exhausted`.
pub fn lock_exhausted_code_is_exhausted<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Used", 1), &["LX-1"]);
    t.coupons.redeem("LX-1", "u1", &plain()).expect("redeem");
    assert_eq!(
        kind(t.coupons.lock("LX-1", "u1", None, None)),
        ErrorKind::Exhausted
    );
    assert_eq!(coupon(t, "LX-1").state, CodeState::Redeemed);
}

/// Lock of a void code is `void`.
pub fn lock_void_code_is_void<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Void"), &["LVO-1", "LVO-2"]);
    t.coupons.assign_code("LVO-1", "u1").expect("assign");
    t.coupons.void_code("LVO-1").expect("void");
    t.coupons.void_code("LVO-2").expect("void");
    assert_eq!(
        kind(t.coupons.lock("LVO-1", "u1", None, None)),
        ErrorKind::Void
    );
    assert_eq!(
        kind(t.coupons.lock("LVO-2", "u1", None, None)),
        ErrorKind::Void
    );
    assert_eq!(coupon(t, "LVO-2").user_id, None);
}

/// Lock before the book's `valid_from` is `not_yet_valid`.
pub fn lock_before_valid_from_is_not_yet_valid<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(window("Soon", Some(60), None), &["LN-1", "LN-2"]);
    t.coupons.assign_code("LN-1", "u1").expect("assign");
    assert_eq!(
        kind(t.coupons.lock("LN-1", "u1", None, None)),
        ErrorKind::NotYetValid
    );
    assert_eq!(
        kind(t.coupons.lock("LN-2", "u1", None, None)),
        ErrorKind::NotYetValid
    );
    assert_eq!(
        coupon(t, "LN-2").state,
        CodeState::Available,
        "a refused lock assigns nothing"
    );
    t.advance(60);
    t.coupons
        .lock("LN-1", "u1", None, None)
        .expect("valid from valid_from on");
}

/// Lock after the book's `valid_until` is `expired`.
pub fn lock_after_valid_until_is_expired<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(window("Over", None, Some(60)), &["LEX-1", "LEX-2"]);
    t.coupons.assign_code("LEX-1", "u1").expect("assign");
    t.advance(61);
    assert_eq!(
        kind(t.coupons.lock("LEX-1", "u1", None, None)),
        ErrorKind::Expired
    );
    assert_eq!(
        kind(t.coupons.lock("LEX-2", "u1", None, None)),
        ErrorKind::Expired
    );
    assert_eq!(coupon(t, "LEX-2").state, CodeState::Available);
}

/// Lock of an available code is subject to the per-user cap (`limit_reached`, nothing kept).
pub fn lock_at_cap_is_limit_reached<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(capped("Cap", 1), &["LC-1", "LC-2"]);
    t.coupons.assign_code("LC-1", "u1").expect("assign");
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.lock("LC-2", "u1", None, None)),
        ErrorKind::LimitReached
    );
    assert_eq!(coupon(t, "LC-2").state, CodeState::Available);
    assert_eq!(coupon(t, "LC-2").user_id, None);
    assert!(kinds_after(t, seq).is_empty());
    assert_eq!(held(t, "u1", book).len(), 1);
    t.coupons
        .lock("LC-1", "u1", None, None)
        .expect("the code the user holds can be locked at the cap");
}

/// Lock with a ttl outside 1 s – 24 h is `invalid_input` (checked before the code exists).
pub fn lock_ttl_out_of_range_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Ttl"), &["TTL-1", "TTL-2"]);
    for ttl in [Duration::ZERO, secs(25 * 3_600), secs(24 * 3_600 + 1)] {
        assert_eq!(
            kind(t.coupons.lock("TTL-1", "u1", Some(ttl), None)),
            ErrorKind::InvalidInput,
            "ttl {ttl:?}"
        );
        assert_eq!(
            kind(t.coupons.lock("NOPE", "u1", Some(ttl), None)),
            ErrorKind::InvalidInput,
            "ttl {ttl:?} on an unknown code"
        );
    }
    assert_eq!(
        coupon(t, "TTL-1").state,
        CodeState::Available,
        "refused before anything changed"
    );
    let shortest = t
        .coupons
        .lock("TTL-1", "u1", Some(secs(1)), None)
        .expect("1s");
    assert_eq!(shortest.expires_at, at(1));
    let longest = t
        .coupons
        .lock("TTL-2", "u1", Some(secs(24 * 3_600)), None)
        .expect("24h");
    assert_eq!(longest.expires_at, at(24 * 3_600));
}

/// Lock of an unknown code is `not_found`; a bad code or user is `invalid_input`.
pub fn lock_unknown_code_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Known"), &["LK-1"]);
    assert_eq!(
        kind(t.coupons.lock("LK-2", "u1", None, None)),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(t.coupons.lock("LK 2", "u1", None, None)),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(t.coupons.lock("LK-2", "u1 ", None, None)),
        ErrorKind::InvalidInput
    );
}

// ---------------------------------------------------------------------------------------------
// unlock

/// Unlock with the live lock's token releases it (state back to `active`, one `unlocked`).
pub fn unlock_releases_a_live_lock<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Unlock"), &["UL-1"]);
    let grant = t.coupons.lock("UL-1", "u1", None, None).expect("lock");
    let seq = last_seq(t);
    t.coupons.unlock("ul-1", &grant.token).expect("unlock");
    assert_eq!(kinds_after(t, seq), [EventKind::Unlocked]);
    let c = coupon(t, "UL-1");
    assert_eq!(c.state, CodeState::Active);
    assert_eq!(c.locked_until, None);
    assert_eq!(
        c.user_id.as_deref(),
        Some("u1"),
        "unlocking keeps the owner"
    );
    t.coupons
        .redeem("UL-1", "u1", &plain())
        .expect("no token needed once unlocked");
}

/// Unlock with a wrong token is `bad_lock_token` and leaves the lock.
pub fn unlock_wrong_token_is_bad_lock_token<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Unlock"), &["UW-1"]);
    let grant = t.coupons.lock("UW-1", "u1", None, None).expect("lock");
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.unlock("UW-1", "not-the-token")),
        ErrorKind::BadLockToken
    );
    let c = coupon(t, "UW-1");
    assert_eq!(c.state, CodeState::Locked);
    assert_eq!(c.locked_until, Some(grant.expires_at));
    assert!(kinds_after(t, seq).is_empty());
}

/// Unlock without a live lock (never locked, expired, redeemed) succeeds and changes nothing.
pub fn unlock_without_live_lock_changes_nothing<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Nothing", 3), &["UN-1", "UN-2", "UN-3", "UN-4"]);
    t.coupons.assign_code("UN-1", "u1").expect("assign");
    let expired = t
        .coupons
        .lock("UN-2", "u1", Some(secs(10)), None)
        .expect("lock");
    let redeemed = t.coupons.lock("UN-3", "u1", None, None).expect("lock");
    t.coupons
        .redeem(
            "UN-3",
            "u1",
            &redeem_with(Some(&redeemed.token), None, None),
        )
        .expect("redeem");
    t.advance(11);
    let before: Vec<Coupon> = ["UN-1", "UN-2", "UN-3", "UN-4"]
        .iter()
        .map(|c| coupon(t, c))
        .collect();
    let seq = last_seq(t);
    t.coupons.unlock("UN-1", "any-token").expect("never locked");
    t.coupons
        .unlock("UN-2", &expired.token)
        .expect("expired lock, its token");
    t.coupons
        .unlock("UN-2", "other-token")
        .expect("expired lock, another token");
    t.coupons
        .unlock("UN-3", &redeemed.token)
        .expect("lock released by the redeem");
    t.coupons
        .unlock("UN-4", "any-token")
        .expect("available code");
    let after: Vec<Coupon> = ["UN-1", "UN-2", "UN-3", "UN-4"]
        .iter()
        .map(|c| coupon(t, c))
        .collect();
    assert_eq!(after, before);
    assert!(kinds_after(t, seq).is_empty(), "no event");
}

/// Unlock of an unknown code is `not_found`; a bad code or empty token is `invalid_input`.
pub fn unlock_unknown_code_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Known"), &["UK-1"]);
    assert_eq!(kind(t.coupons.unlock("UK-2", "tok")), ErrorKind::NotFound);
    assert_eq!(
        kind(t.coupons.unlock("UK/2", "tok")),
        ErrorKind::InvalidInput
    );
    assert_eq!(kind(t.coupons.unlock("UK-2", "")), ErrorKind::InvalidInput);
}

// ---------------------------------------------------------------------------------------------
// redeem

/// Redeem returns the receipt `{code, user_id, order_id, redeemed_at, redemptions, remaining,
/// replayed: false}`.
pub fn redeem_returns_receipt<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Receipt", 2), &["RR-1"]);
    t.coupons.assign_code("RR-1", "u1").expect("assign");
    t.advance(42);
    let r = t
        .coupons
        .redeem("rr-1", "u1", &redeem_with(None, Some("order-1"), None))
        .expect("redeem");
    assert_eq!(r.code, "RR-1");
    assert_eq!(r.user_id, "u1");
    assert_eq!(r.order_id.as_deref(), Some("order-1"));
    assert_eq!(r.redeemed_at, at(42));
    assert_eq!((r.redemptions, r.remaining), (1, 1));
    assert!(!r.replayed);
    let c = coupon(t, "RR-1");
    assert_eq!((c.redemptions, c.remaining), (1, 1));
    assert_eq!(c.state, CodeState::Active);
    let r = t.coupons.redeem("RR-1", "u1", &plain()).expect("redeem");
    assert_eq!(r.order_id, None);
    assert_eq!((r.redemptions, r.remaining), (2, 0));
}

/// Redeem with `max_redemptions_per_user` = 3 succeeds exactly 3 times, then `exhausted`
/// (state `redeemed`).
pub fn redeem_up_to_max_then_exhausted<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(uses("Three", 3), &["R3-1"]);
    t.coupons.assign_code("R3-1", "u1").expect("assign");
    for n in 1..=3 {
        let r = t.coupons.redeem("R3-1", "u1", &plain()).expect("redeem");
        assert_eq!((r.redemptions, r.remaining), (n, 3 - n));
    }
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.redeem("R3-1", "u1", &plain())),
        ErrorKind::Exhausted
    );
    assert!(kinds_after(t, seq).is_empty());
    let c = coupon(t, "R3-1");
    assert_eq!(c.state, CodeState::Redeemed);
    assert_eq!((c.redemptions, c.remaining), (3, 0));
    let stats = t.coupons.book(book).expect("book").stats;
    assert_eq!((stats.redeemed, stats.redemptions), (1, 3));
}

/// Redeem of a code under a live lock needs its token (`locked` without, `bad_lock_token` with
/// another); the redeem releases the lock.
pub fn redeem_live_lock_needs_its_token<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Locked", 3), &["RL-1"]);
    let grant = t.coupons.lock("RL-1", "u1", None, None).expect("lock");
    let seq = last_seq(t);
    assert_eq!(
        kind(t.coupons.redeem("RL-1", "u1", &plain())),
        ErrorKind::Locked
    );
    assert_eq!(
        kind(
            t.coupons
                .redeem("RL-1", "u1", &redeem_with(Some("wrong-token"), None, None))
        ),
        ErrorKind::BadLockToken
    );
    assert!(kinds_after(t, seq).is_empty());
    assert_eq!(coupon(t, "RL-1").redemptions, 0);
    let r = t
        .coupons
        .redeem("RL-1", "u1", &redeem_with(Some(&grant.token), None, None))
        .expect("redeem with the token");
    assert_eq!(r.redemptions, 1);
    let c = coupon(t, "RL-1");
    assert_eq!(c.state, CodeState::Active, "the redeem released the lock");
    assert_eq!(c.locked_until, None);
    t.coupons
        .redeem("RL-1", "u1", &plain())
        .expect("no lock any more");
    let next = t
        .coupons
        .lock("RL-1", "u1", None, None)
        .expect("a new lock without token");
    assert_ne!(next.token, grant.token);
}

/// Redeem without a live lock ignores a given token (never locked, or the lock lapsed).
pub fn redeem_without_live_lock_ignores_token<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Ignore", 5), &["RI-1", "RI-2"]);
    t.coupons.assign_code("RI-1", "u1").expect("assign");
    t.coupons
        .redeem("RI-1", "u1", &redeem_with(Some("whatever"), None, None))
        .expect("never locked");
    let grant = t
        .coupons
        .lock("RI-2", "u1", Some(secs(10)), None)
        .expect("lock");
    t.advance(11);
    t.coupons
        .redeem(
            "RI-2",
            "u1",
            &redeem_with(Some("stale-or-wrong"), None, None),
        )
        .expect("lapsed lock, wrong token");
    t.coupons
        .redeem("RI-2", "u1", &redeem_with(Some(&grant.token), None, None))
        .expect("lapsed lock, its token");
    t.coupons
        .redeem("RI-2", "u1", &plain())
        .expect("lapsed lock, no token");
    assert_eq!(coupon(t, "RI-2").redemptions, 3);
}

/// Redeem of an available code assigns it first (`assigned` then `redeemed`).
pub fn redeem_available_code_assigns_it<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Direct"), &["RA-1"]);
    let seq = last_seq(t);
    t.advance(5);
    let r = t.coupons.redeem("RA-1", "u1", &plain()).expect("redeem");
    assert_eq!(r.user_id, "u1");
    assert_eq!(
        kinds_after(t, seq),
        [EventKind::Assigned, EventKind::Redeemed]
    );
    let c = coupon(t, "RA-1");
    assert_eq!(c.user_id.as_deref(), Some("u1"));
    assert_eq!(c.assigned_at, Some(at(5)));
    assert_eq!(c.state, CodeState::Redeemed);
    assert_eq!(held(t, "u1", book).len(), 1);
}

/// Redeem of an available code refused at the cap (`limit_reached`) leaves no trace.
pub fn redeem_refused_at_cap_leaves_no_trace<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(capped("Rollback", 1), &["RB-1", "RB-2"]);
    t.coupons.assign_code("RB-1", "u1").expect("assign");
    let stats = t.coupons.book(book).expect("book").stats;
    let before = coupon(t, "RB-2");
    let seq = last_seq(t);
    assert_eq!(
        kind(
            t.coupons
                .redeem("RB-2", "u1", &redeem_with(None, Some("o-1"), None))
        ),
        ErrorKind::LimitReached
    );
    assert_eq!(coupon(t, "RB-2"), before);
    assert_eq!(before.state, CodeState::Available);
    assert_eq!(t.coupons.book(book).expect("book").stats, stats);
    assert!(kinds_after(t, seq).is_empty(), "no event");
    // The refused order id was not remembered: another user can use it on that code.
    let r = t
        .coupons
        .redeem("RB-2", "u2", &redeem_with(None, Some("o-1"), None))
        .expect("redeem");
    assert!(!r.replayed);
    assert_eq!(r.user_id, "u2");
}

/// Redeem of another user's code is `not_owner`.
pub fn redeem_other_users_code_is_not_owner<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Theirs"), &["RO-1", "RO-2"]);
    t.coupons.assign_code("RO-1", "u1").expect("assign");
    let grant = t.coupons.lock("RO-2", "u1", None, None).expect("lock");
    assert_eq!(
        kind(t.coupons.redeem("RO-1", "u2", &plain())),
        ErrorKind::NotOwner
    );
    assert_eq!(
        kind(
            t.coupons
                .redeem("RO-2", "u2", &redeem_with(Some(&grant.token), None, None))
        ),
        ErrorKind::NotOwner,
        "even with the lock's token"
    );
    assert_eq!(coupon(t, "RO-1").redemptions, 0);
    assert_eq!(coupon(t, "RO-2").redemptions, 0);
}

/// Redeem of a void code is `void`.
pub fn redeem_void_code_is_void<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Void", 2), &["RV-1", "RV-2"]);
    t.coupons.redeem("RV-1", "u1", &plain()).expect("redeem");
    t.coupons.void_code("RV-1").expect("void");
    t.coupons.void_code("RV-2").expect("void");
    assert_eq!(
        kind(t.coupons.redeem("RV-1", "u1", &plain())),
        ErrorKind::Void
    );
    assert_eq!(
        kind(t.coupons.redeem("RV-2", "u1", &plain())),
        ErrorKind::Void
    );
    assert_eq!(coupon(t, "RV-1").redemptions, 1);
    assert_eq!(coupon(t, "RV-2").user_id, None);
}

/// Redeem before the book's `valid_from` is `not_yet_valid`.
pub fn redeem_before_valid_from_is_not_yet_valid<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(window("Soon", Some(60), Some(120)), &["RN-1", "RN-2"]);
    t.coupons.assign_code("RN-1", "u1").expect("assign");
    assert_eq!(
        kind(t.coupons.redeem("RN-1", "u1", &plain())),
        ErrorKind::NotYetValid
    );
    assert_eq!(
        kind(t.coupons.redeem("RN-2", "u1", &plain())),
        ErrorKind::NotYetValid
    );
    assert_eq!(coupon(t, "RN-2").user_id, None);
    t.advance(60);
    t.coupons
        .redeem("RN-1", "u1", &plain())
        .expect("valid from valid_from on");
}

/// Redeem after the book's `valid_until` is `expired`.
pub fn redeem_after_valid_until_is_expired<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(window("Over", None, Some(60)), &["RX-1", "RX-2"]);
    t.coupons.assign_code("RX-1", "u1").expect("assign");
    t.advance(61);
    assert_eq!(
        kind(t.coupons.redeem("RX-1", "u1", &plain())),
        ErrorKind::Expired
    );
    assert_eq!(
        kind(t.coupons.redeem("RX-2", "u1", &plain())),
        ErrorKind::Expired
    );
    assert_eq!(coupon(t, "RX-1").state, CodeState::Expired);
    assert_eq!(coupon(t, "RX-2").state, CodeState::Available);
}

/// Redeem repeated with the same code and order id returns the original receipt
/// (`replayed: true`) and counts nothing.
pub fn redeem_same_order_id_is_replayed<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(uses("Replay", 3), &["RP-1"]);
    t.coupons.assign_code("RP-1", "u1").expect("assign");
    let order = redeem_with(None, Some("order-7"), Some(json!({"cart": 1})));
    let first = t.coupons.redeem("RP-1", "u1", &order).expect("redeem");
    assert!(!first.replayed);
    let seq = last_seq(t);
    t.advance(100);
    let again = t.coupons.redeem("RP-1", "u1", &order).expect("replay");
    assert!(again.replayed);
    assert_eq!(
        crate::Receipt {
            replayed: false,
            ..again
        },
        first,
        "the original receipt, redeemed_at included"
    );
    assert_eq!(coupon(t, "RP-1").redemptions, 1, "counted once");
    assert_eq!(t.coupons.book(book).expect("book").stats.redemptions, 1);
    assert!(kinds_after(t, seq).is_empty(), "a replay records nothing");
    let other = t
        .coupons
        .redeem("RP-1", "u1", &redeem_with(None, Some("order-8"), None))
        .expect("another order");
    assert!(!other.replayed);
    assert_eq!(other.redemptions, 2);
}

/// Redeem replay works after the code is exhausted and without the lock token.
pub fn redeem_replay_after_exhausted_and_without_token<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Replay", 2), &["RPX-1", "RPX-2"]);
    // Exhausted by now.
    t.coupons.assign_code("RPX-1", "u1").expect("assign");
    let first = t
        .coupons
        .redeem("RPX-1", "u1", &redeem_with(None, Some("o-1"), None))
        .expect("redeem");
    t.coupons
        .redeem("RPX-1", "u1", &redeem_with(None, Some("o-2"), None))
        .expect("redeem");
    assert_eq!(coupon(t, "RPX-1").state, CodeState::Redeemed);
    let again = t
        .coupons
        .redeem("RPX-1", "u1", &redeem_with(None, Some("o-1"), None))
        .expect("replay of an exhausted code");
    assert!(again.replayed);
    assert_eq!((again.redemptions, again.remaining), (1, 1));
    assert_eq!(again.redeemed_at, first.redeemed_at);
    assert_eq!(
        kind(
            t.coupons
                .redeem("RPX-1", "u1", &redeem_with(None, Some("o-3"), None))
        ),
        ErrorKind::Exhausted
    );
    // Locked with a token, redeemed, locked again: the replay needs no token.
    let grant = t.coupons.lock("RPX-2", "u1", None, None).expect("lock");
    let first = t
        .coupons
        .redeem(
            "RPX-2",
            "u1",
            &redeem_with(Some(&grant.token), Some("o-9"), None),
        )
        .expect("redeem");
    t.coupons
        .lock("RPX-2", "u1", None, None)
        .expect("lock again");
    let again = t
        .coupons
        .redeem("RPX-2", "u1", &redeem_with(None, Some("o-9"), None))
        .expect("replay without the token");
    assert!(again.replayed);
    assert_eq!(again.redemptions, first.redemptions);
    assert_eq!(coupon(t, "RPX-2").redemptions, 1);
    assert_eq!(coupon(t, "RPX-2").state, CodeState::Locked);
}

/// Redeem replaying another user's order id on the code is `not_owner`.
pub fn redeem_same_order_id_other_user_is_not_owner<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Replay", 2), &["RPO-1"]);
    t.coupons
        .redeem("RPO-1", "u1", &redeem_with(None, Some("o-1"), None))
        .expect("redeem");
    assert_eq!(
        kind(
            t.coupons
                .redeem("RPO-1", "u2", &redeem_with(None, Some("o-1"), None))
        ),
        ErrorKind::NotOwner
    );
    assert_eq!(coupon(t, "RPO-1").redemptions, 1);
}

/// Redeem logs `redeemed` with `{order_id, context, redemptions}`, the context kept as given.
pub fn redeem_event_keeps_order_and_context<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(uses("Context", 2), &["RC-1"]);
    t.coupons.assign_code("RC-1", "u1").expect("assign");
    let context = json!({
        "cart": {"items": [{"sku": "A-1", "qty": 2}], "total": 12.5},
        "note": "gift – ünïcode",
        "flags": [true, null, -3],
    });
    let seq = last_seq(t);
    t.advance(9);
    t.coupons
        .redeem(
            "RC-1",
            "u1",
            &redeem_with(None, Some("order-1"), Some(context.clone())),
        )
        .expect("redeem");
    let new = t.coupons.events(seq, 10).expect("events");
    assert_eq!(new.len(), 1);
    let e = &new[0];
    assert_eq!(e.kind, EventKind::Redeemed);
    assert_eq!(e.book_id, book);
    assert_eq!(e.code.as_deref(), Some("RC-1"));
    assert_eq!(e.user_id.as_deref(), Some("u1"));
    assert_eq!(e.at, at(9));
    assert_eq!(e.data["order_id"], json!("order-1"));
    assert_eq!(e.data["context"], context);
    assert_eq!(e.data["redemptions"], json!(1));
}

/// Redeem with a context over the size limit, or a bad order id, is `invalid_input`.
pub fn redeem_oversize_context_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Big"), &["RZ-1"]);
    t.coupons.assign_code("RZ-1", "u1").expect("assign");
    let seq = last_seq(t);
    let big = serde_json::Value::String("x".repeat(MAX_CONTEXT_BYTES));
    assert_eq!(
        kind(
            t.coupons
                .redeem("RZ-1", "u1", &redeem_with(None, None, Some(big.clone())))
        ),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        kind(
            t.coupons
                .redeem("NOPE-1", "u1", &redeem_with(None, None, Some(big)))
        ),
        ErrorKind::InvalidInput,
        "input is checked before existence"
    );
    assert_eq!(
        kind(
            t.coupons
                .redeem("RZ-1", "u1", &redeem_with(None, Some(""), None))
        ),
        ErrorKind::InvalidInput,
        "empty order id"
    );
    assert_eq!(
        kind(t.coupons.redeem("RZ-1", "", &plain())),
        ErrorKind::InvalidInput,
        "empty user"
    );
    assert_eq!(coupon(t, "RZ-1").redemptions, 0);
    assert!(kinds_after(t, seq).is_empty());
}

/// Redeem of an unknown code is `not_found`.
pub fn redeem_unknown_code_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(settings("Known"), &["RK-1"]);
    assert_eq!(
        kind(t.coupons.redeem("RK-2", "u1", &plain())),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(
            t.coupons
                .redeem("RK-2", "u1", &redeem_with(None, Some("o-1"), None))
        ),
        ErrorKind::NotFound
    );
}

/// Redeem checks ownership first, then the code's own state, then the validity window.
pub fn redeem_checks_in_order<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(
        BookSettings {
            valid_until: Some(at(60)),
            ..settings("Order")
        },
        &["RCO-1", "RCO-2", "RCO-3"],
    );
    t.coupons.assign_code("RCO-1", "u1").expect("assign");
    t.coupons.void_code("RCO-1").expect("void");
    t.coupons.assign_code("RCO-2", "u2").expect("assign");
    t.coupons.void_code("RCO-2").expect("void");
    t.coupons.redeem("RCO-3", "u2", &plain()).expect("redeem");
    t.advance(61);
    assert_eq!(
        kind(t.coupons.redeem("RCO-1", "u2", &plain())),
        ErrorKind::NotOwner,
        "another user's void code in an expired book"
    );
    assert_eq!(
        kind(t.coupons.redeem("RCO-2", "u2", &plain())),
        ErrorKind::Void,
        "own void code in an expired book"
    );
    assert_eq!(
        kind(t.coupons.redeem("RCO-3", "u2", &plain())),
        ErrorKind::Exhausted,
        "own used-up code in an expired book"
    );
    assert_eq!(coupon(t, "RCO-3").state, CodeState::Redeemed);
}

// ---------------------------------------------------------------------------------------------
// user coupons

/// User coupons lists every code the user holds, in every book, with all its fields.
pub fn user_coupons_lists_every_code_held<S: CouponStore>(t: &Ctx<S>) {
    let alpha = t.book_with(
        BookSettings {
            max_redemptions_per_user: 2,
            valid_until: Some(at(86_400)),
            ..settings("Alpha")
        },
        &["UA-1", "UA-2", "UA-3"],
    );
    let beta = t.book_with(settings("Beta"), &["UB-1", "UB-2"]);
    t.coupons.assign_code("UA-1", "u1").expect("assign");
    t.advance(10);
    let grant = t
        .coupons
        .lock("UA-2", "u1", Some(secs(60)), None)
        .expect("lock");
    t.advance(10);
    t.coupons.redeem("UB-1", "u1", &plain()).expect("redeem");
    t.coupons
        .assign_code("UB-2", "someone-else")
        .expect("assign");
    let mut list = t.coupons.user_coupons("u1", None, None).expect("list");
    list.sort_by(|a, b| a.code.cmp(&b.code));
    let expected = vec![
        Coupon {
            code: "UA-1".into(),
            book_id: alpha,
            book_name: "Alpha".into(),
            user_id: Some("u1".into()),
            state: CodeState::Active,
            redemptions: 0,
            remaining: 2,
            assigned_at: Some(at(0)),
            valid_until: Some(at(86_400)),
            locked_until: None,
        },
        Coupon {
            code: "UA-2".into(),
            book_id: alpha,
            book_name: "Alpha".into(),
            user_id: Some("u1".into()),
            state: CodeState::Locked,
            redemptions: 0,
            remaining: 2,
            assigned_at: Some(at(10)),
            valid_until: Some(at(86_400)),
            locked_until: Some(grant.expires_at),
        },
        Coupon {
            code: "UB-1".into(),
            book_id: beta,
            book_name: "Beta".into(),
            user_id: Some("u1".into()),
            state: CodeState::Redeemed,
            redemptions: 1,
            remaining: 0,
            assigned_at: Some(at(20)),
            valid_until: None,
            locked_until: None,
        },
    ];
    assert_eq!(list, expected);
}

/// User coupons include void codes, with state `void`.
pub fn user_coupons_include_void_codes<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Void"), &["UV-1", "UV-2"]);
    t.coupons.assign_code("UV-1", "u1").expect("assign");
    t.coupons.assign_code("UV-2", "u1").expect("assign");
    t.coupons.void_code("UV-1").expect("void");
    let mut list = held(t, "u1", book);
    list.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].code, "UV-1");
    assert_eq!(list[0].state, CodeState::Void);
    assert_eq!(list[0].user_id.as_deref(), Some("u1"));
    assert_eq!(list[1].state, CodeState::Active);
    let void = t
        .coupons
        .user_coupons("u1", None, Some(CodeState::Void))
        .expect("list");
    assert_eq!(void.len(), 1);
    assert_eq!(void[0].code, "UV-1");
}

/// User coupons filter by book and by state.
pub fn user_coupons_filter_by_book_and_state<S: CouponStore>(t: &Ctx<S>) {
    let a = t.book_with(settings("A"), &["UF-A1", "UF-A2"]);
    let b = t.book_with(settings("B"), &["UF-B1", "UF-B2"]);
    t.coupons.assign_code("UF-A1", "u1").expect("assign");
    t.coupons.lock("UF-A2", "u1", None, None).expect("lock");
    t.coupons.assign_code("UF-B1", "u1").expect("assign");
    t.coupons.redeem("UF-B2", "u1", &plain()).expect("redeem");
    let codes = |book: Option<BookId>, state: Option<CodeState>| {
        let mut codes: Vec<String> = t
            .coupons
            .user_coupons("u1", book, state)
            .expect("list")
            .into_iter()
            .map(|c| c.code)
            .collect();
        codes.sort();
        codes
    };
    assert_eq!(codes(None, None), ["UF-A1", "UF-A2", "UF-B1", "UF-B2"]);
    assert_eq!(codes(Some(a), None), ["UF-A1", "UF-A2"]);
    assert_eq!(codes(Some(b), None), ["UF-B1", "UF-B2"]);
    assert_eq!(codes(None, Some(CodeState::Active)), ["UF-A1", "UF-B1"]);
    assert_eq!(codes(None, Some(CodeState::Locked)), ["UF-A2"]);
    assert_eq!(codes(Some(b), Some(CodeState::Redeemed)), ["UF-B2"]);
    assert_eq!(
        codes(Some(a), Some(CodeState::Redeemed)),
        Vec::<String>::new()
    );
    assert_eq!(codes(None, Some(CodeState::Expired)), Vec::<String>::new());
}

/// User coupons of an unknown book is `not_found`; an unknown user has an empty list.
pub fn user_coupons_unknown_book_is_not_found<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Known"), &["UK-1"]);
    t.coupons.assign_code("UK-1", "u1").expect("assign");
    assert_eq!(
        kind(t.coupons.user_coupons("u1", Some(book + 1000), None)),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(t.coupons.user_coupons("nobody", Some(book + 1000), None)),
        ErrorKind::NotFound
    );
    assert_eq!(
        kind(t.coupons.user_coupons(" u1", None, None)),
        ErrorKind::InvalidInput
    );
}

/// User coupons of a user who holds nothing is an empty list.
pub fn user_coupons_unknown_user_is_empty<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Known"), &["UE-1"]);
    t.coupons.assign_code("UE-1", "u1").expect("assign");
    assert!(t
        .coupons
        .user_coupons("nobody", None, None)
        .expect("list")
        .is_empty());
    assert!(t
        .coupons
        .user_coupons("nobody", Some(book), None)
        .expect("list")
        .is_empty());
    assert!(
        t.coupons
            .user_coupons("U1", None, None)
            .expect("list")
            .is_empty(),
        "user ids are case-sensitive"
    );
}

/// User coupons show `expired` after `valid_until` for held codes not fully redeemed, and
/// `redeemed` for used-up ones.
pub fn user_coupons_show_expired_and_redeemed<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(
        BookSettings {
            max_redemptions_per_user: 2,
            valid_until: Some(at(3_600)),
            ..settings("Ends")
        },
        &["UX-1", "UX-2", "UX-3", "UX-4"],
    );
    t.coupons.assign_code("UX-1", "u1").expect("assign");
    t.coupons.redeem("UX-2", "u1", &plain()).expect("redeem");
    t.coupons.redeem("UX-2", "u1", &plain()).expect("redeem");
    t.coupons.redeem("UX-3", "u1", &plain()).expect("redeem");
    t.coupons
        .lock("UX-4", "u1", Some(secs(7_200)), None)
        .expect("lock");
    let states = || {
        let mut list: Vec<(String, CodeState, Option<Timestamp>)> = held(t, "u1", book)
            .into_iter()
            .map(|c| (c.code, c.state, c.locked_until))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        list
    };
    assert_eq!(
        states(),
        [
            ("UX-1".to_owned(), CodeState::Active, None),
            ("UX-2".to_owned(), CodeState::Redeemed, None),
            ("UX-3".to_owned(), CodeState::Active, None),
            ("UX-4".to_owned(), CodeState::Locked, Some(at(7_200))),
        ]
    );
    t.advance(3_601);
    assert_eq!(
        states(),
        [
            ("UX-1".to_owned(), CodeState::Expired, None),
            ("UX-2".to_owned(), CodeState::Redeemed, None),
            ("UX-3".to_owned(), CodeState::Expired, None),
            ("UX-4".to_owned(), CodeState::Expired, None),
        ]
    );
    assert_eq!(
        t.coupons
            .user_coupons("u1", Some(book), Some(CodeState::Expired))
            .expect("list")
            .len(),
        3
    );
}

// ---------------------------------------------------------------------------------------------
// events

/// Events: every state change appends exactly one event, in order, with strictly increasing seq.
pub fn events_record_every_change_in_order<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book(uses("Log", 2));
    t.advance(1);
    t.add(book, &["EV-1", "EV-2"]);
    t.advance(1);
    t.coupons.assign_code("EV-1", "u1").expect("assign");
    t.advance(1);
    let grant = t.coupons.lock("EV-1", "u1", None, None).expect("lock");
    t.advance(1);
    t.coupons
        .redeem(
            "EV-1",
            "u1",
            &redeem_with(Some(&grant.token), Some("o-1"), None),
        )
        .expect("redeem");
    t.advance(1);
    let grant = t.coupons.lock("EV-2", "u2", None, None).expect("lock");
    t.advance(1);
    t.coupons.unlock("EV-2", &grant.token).expect("unlock");
    t.advance(1);
    t.coupons.void_code("EV-2").expect("void");
    t.advance(1);
    t.coupons
        .update_book(
            book,
            &BookPatch {
                description: Some(Some("now described".into())),
                ..BookPatch::default()
            },
        )
        .expect("update");

    let log = events(t);
    let got: Vec<(EventKind, Option<&str>, Option<&str>, Timestamp)> = log
        .iter()
        .map(|e| (e.kind, e.code.as_deref(), e.user_id.as_deref(), e.at))
        .collect();
    use EventKind::*;
    assert_eq!(
        got,
        [
            (BookCreated, None, None, at(0)),
            (CodesAdded, None, None, at(1)),
            (Assigned, Some("EV-1"), Some("u1"), at(2)),
            (Locked, Some("EV-1"), Some("u1"), at(3)),
            (Redeemed, Some("EV-1"), Some("u1"), at(4)),
            (Assigned, Some("EV-2"), Some("u2"), at(5)),
            (Locked, Some("EV-2"), Some("u2"), at(5)),
            (Unlocked, Some("EV-2"), Some("u2"), at(6)),
            (Voided, Some("EV-2"), Some("u2"), at(7)),
            (BookUpdated, None, None, at(8)),
        ]
    );
    assert!(log.iter().all(|e| e.book_id == book));
    assert!(
        log.windows(2).all(|w| w[0].seq < w[1].seq),
        "seq strictly increases"
    );
    assert!(log[0].seq > 0, "seq starts after the cursor 0");
    assert_eq!(log[1].data["count"], json!(2));
    assert_eq!(log[1].data["source"], json!("import"));
    assert_eq!(log[4].data["order_id"], json!("o-1"));
    assert_eq!(log[4].data["redemptions"], json!(1));
}

/// Events are read after a cursor, at most `limit` at a time, without gaps or repeats.
pub fn events_page_with_after_and_limit<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(settings("Pages"), &["PG-1", "PG-2", "PG-3", "PG-4", "PG-5"]);
    for (i, code) in ["PG-1", "PG-2", "PG-3", "PG-4", "PG-5"].iter().enumerate() {
        t.coupons
            .assign_code(code, &format!("u{i}"))
            .expect("assign");
    }
    let all = events(t);
    assert_eq!(all.len(), 7, "book_created, codes_added and 5 assigned");
    let mut sizes = vec![];
    let mut cursor = 0;
    loop {
        let page = t.coupons.events(cursor, 3).expect("page");
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        sizes.push(page.len());
        assert!(sizes.len() < 10, "paging must end");
    }
    assert_eq!(sizes, [3, 3, 1]);
    let mut read = vec![];
    let mut cursor = 0;
    loop {
        let page = t.coupons.events(cursor, 2).expect("page");
        let Some(last) = page.last() else { break };
        cursor = last.seq;
        read.extend(page);
        assert!(read.len() <= all.len(), "paging must end");
    }
    assert_eq!(read, all, "paging reads every event once, in order");
    let after_third = t.coupons.events(all[2].seq, 100).expect("page");
    assert_eq!(after_third, all[3..].to_vec());
    assert!(t.coupons.events(all[6].seq, 100).expect("page").is_empty());
    assert_eq!(t.coupons.events(0, 1).expect("page"), all[..1].to_vec());
    assert_eq!(all[0].book_id, book);
}

/// Events: an operation that fails appends nothing.
pub fn events_failed_operations_append_nothing<S: CouponStore>(t: &Ctx<S>) {
    let book = t.book_with(
        BookSettings {
            max_codes_per_user: Some(1),
            max_redemptions_per_user: 1,
            ..settings("Failures")
        },
        &["FA-1", "FA-2", "FA-3"],
    );
    let other = t.book_with(window("Over", None, Some(10)), &["FA-X"]);
    t.coupons.assign_code("FA-1", "u1").expect("assign");
    let grant = t.coupons.lock("FA-2", "u2", None, None).expect("lock");
    t.coupons.redeem("FA-3", "u3", &plain()).expect("redeem");
    t.advance(11);
    let before = events(t);
    let refusals: Vec<(ErrorKind, ErrorKind)> = vec![
        (
            kind(t.coupons.assign_random(book, "u1", None)),
            ErrorKind::LimitReached,
        ),
        (
            kind(t.coupons.assign_random(book, "u9", None)),
            ErrorKind::SoldOut,
        ),
        (
            kind(t.coupons.assign_random(other, "u9", None)),
            ErrorKind::Expired,
        ),
        (
            kind(t.coupons.assign_random(book + 1000, "u9", None)),
            ErrorKind::NotFound,
        ),
        (
            kind(t.coupons.assign_code("FA-1", "u2")),
            ErrorKind::NotOwner,
        ),
        (
            kind(t.coupons.assign_code("FA-X", "u9")),
            ErrorKind::Expired,
        ),
        (
            kind(t.coupons.lock("FA-2", "u2", None, None)),
            ErrorKind::Locked,
        ),
        (
            kind(t.coupons.lock("FA-2", "u2", None, Some("bad-token"))),
            ErrorKind::BadLockToken,
        ),
        (
            kind(t.coupons.lock("FA-3", "u3", None, None)),
            ErrorKind::Exhausted,
        ),
        (
            kind(t.coupons.unlock("FA-2", "bad-token")),
            ErrorKind::BadLockToken,
        ),
        (
            kind(t.coupons.redeem("FA-2", "u2", &plain())),
            ErrorKind::Locked,
        ),
        (
            kind(t.coupons.redeem("FA-3", "u3", &plain())),
            ErrorKind::Exhausted,
        ),
        (
            kind(t.coupons.redeem("FA-1", "u3", &plain())),
            ErrorKind::NotOwner,
        ),
        (
            kind(t.coupons.redeem("FA-X", "u9", &plain())),
            ErrorKind::Expired,
        ),
        (
            kind(t.coupons.redeem("FA-9", "u9", &plain())),
            ErrorKind::NotFound,
        ),
        (
            kind(t.coupons.redeem("FA 9", "u9", &plain())),
            ErrorKind::InvalidInput,
        ),
    ];
    for (i, (got, want)) in refusals.iter().enumerate() {
        assert_eq!(got, want, "refusal #{i}");
    }
    assert_eq!(events(t), before, "failed operations append nothing");
    t.coupons.unlock("FA-2", &grant.token).expect("unlock");
    assert_eq!(events(t).len(), before.len() + 1);
}

/// Events: a lock released by a redeem or by expiry adds no `unlocked` event.
pub fn events_lock_released_by_redeem_or_expiry_adds_no_unlocked<S: CouponStore>(t: &Ctx<S>) {
    t.book_with(uses("Release", 3), &["ER-1"]);
    t.coupons.assign_code("ER-1", "u1").expect("assign");
    let seq = last_seq(t);
    let grant = t
        .coupons
        .lock("ER-1", "u1", Some(secs(60)), None)
        .expect("lock");
    t.coupons
        .redeem("ER-1", "u1", &redeem_with(Some(&grant.token), None, None))
        .expect("redeem");
    t.coupons
        .lock("ER-1", "u1", Some(secs(60)), None)
        .expect("lock");
    t.advance(61);
    assert_eq!(coupon(t, "ER-1").state, CodeState::Active);
    t.coupons
        .lock("ER-1", "u1", Some(secs(60)), None)
        .expect("lock after the lapse");
    t.advance(61);
    t.coupons.redeem("ER-1", "u1", &plain()).expect("redeem");
    assert_eq!(
        kinds_after(t, seq),
        [
            EventKind::Locked,
            EventKind::Redeemed,
            EventKind::Locked,
            EventKind::Locked,
            EventKind::Redeemed,
        ]
    );
}

/// Events with a negative cursor or a limit of 0 are `invalid_input`.
pub fn events_bad_cursor_or_limit_is_invalid_input<S: CouponStore>(t: &Ctx<S>) {
    t.book(settings("Any"));
    assert_eq!(kind(t.coupons.events(-1, 10)), ErrorKind::InvalidInput);
    assert_eq!(kind(t.coupons.events(0, 0)), ErrorKind::InvalidInput);
    assert_eq!(t.coupons.events(0, 10).expect("events").len(), 1);
}
