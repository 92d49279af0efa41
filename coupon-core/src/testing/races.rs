//! Concurrency cases of SPEC §5 ("the one rule that matters most"): threads started together on
//! one shared service, with exact counts of what succeeded and what was refused.
//!
//! A `conflict` error must never reach the caller here: the service retries it, so one that
//! surfaces after the retries fails the case.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Barrier;

use crate::store::CouponStore;
use crate::{BookSettings, CodeState, Coupon, ErrorKind, EventKind, RedeemRequest, Result};

use super::Ctx;

/// Runs `op(0..n)` on `n` threads that start together, and returns the results by thread index.
fn race<S, T, F>(t: &Ctx<S>, n: usize, op: F) -> Vec<Result<T>>
where
    S: CouponStore,
    T: Send,
    F: Fn(&crate::Coupons<S>, usize) -> Result<T> + Sync,
{
    let barrier = Barrier::new(n);
    let coupons = &t.coupons;
    let (barrier, op) = (&barrier, &op);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                s.spawn(move || {
                    barrier.wait();
                    op(coupons, i)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a racing thread panicked"))
            .collect()
    })
}

/// How many results succeeded (`None`) or failed with each kind; fails on any `conflict`.
fn tally<T>(results: &[Result<T>]) -> BTreeMap<Option<&'static str>, usize> {
    let mut counts = BTreeMap::new();
    for r in results {
        let key = match r {
            Ok(_) => None,
            Err(e) => {
                assert_ne!(
                    e.kind(),
                    ErrorKind::Conflict,
                    "a conflict surfaced after the service's retries: {e}"
                );
                Some(e.kind().as_str())
            }
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

fn expect_counts<T>(results: &[Result<T>], want: &[(Option<ErrorKind>, usize)]) {
    let want: BTreeMap<Option<&'static str>, usize> = want
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| (k.map(ErrorKind::as_str), *n))
        .collect();
    assert_eq!(tally(results), want, "outcomes (None = Ok)");
}

fn codes(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i:03}")).collect()
}

fn refs(codes: &[String]) -> Vec<&str> {
    codes.iter().map(String::as_str).collect()
}

fn events_of<S: CouponStore>(t: &Ctx<S>, kind: EventKind, code: Option<&str>) -> usize {
    t.coupons
        .events(0, crate::MAX_EVENTS_PAGE)
        .expect("read events")
        .iter()
        .filter(|e| e.kind == kind && (code.is_none() || e.code.as_deref() == code))
        .count()
}

/// Assign code raced by 16 users on one code: exactly one wins, 15 are `not_owner`.
pub fn assign_code_race_has_one_winner<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 16;
    t.book_with(BookSettings::new("One code"), &["SOLO-1"]);
    let results = race(t, N, |c, i| c.assign_code("SOLO-1", &format!("user-{i}")));
    expect_counts(&results, &[(None, 1), (Some(ErrorKind::NotOwner), N - 1)]);
    let (winner, won) = results
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.as_ref().ok().map(|c| (i, c)))
        .expect("one winner");
    let user = format!("user-{winner}");
    assert_eq!(won.user_id.as_deref(), Some(user.as_str()));
    let stored = t.coupons.coupon("SOLO-1").expect("show");
    assert_eq!(
        stored.user_id.as_deref(),
        Some(user.as_str()),
        "the winner owns it"
    );
    assert_eq!(events_of(t, EventKind::Assigned, Some("SOLO-1")), 1);
}

/// Assign random raced by 24 users for 8 codes: 8 distinct codes handed out, 16 `sold_out`.
pub fn assign_random_race_hands_out_distinct_codes<S: CouponStore>(t: &Ctx<S>) {
    const K: usize = 8;
    const N: usize = 24;
    let all = codes("DIST", K);
    let book = t.book_with(BookSettings::new("Few codes"), &refs(&all));
    let results = race(t, N, |c, i| {
        c.assign_random(book, &format!("user-{i}"), None)
    });
    expect_counts(&results, &[(None, K), (Some(ErrorKind::SoldOut), N - K)]);
    let mut given = BTreeSet::new();
    for (i, r) in results.iter().enumerate() {
        if let Ok(c) = r {
            assert_eq!(c.user_id.as_deref(), Some(format!("user-{i}").as_str()));
            let stored = t.coupons.coupon(&c.code).expect("show");
            assert_eq!(
                stored.user_id, c.user_id,
                "the stored owner is the one answered"
            );
            given.insert(c.code.clone());
        }
    }
    assert_eq!(given.len(), K, "every code handed out once");
    let stats = t.coupons.book(book).expect("book").stats;
    assert_eq!(stats.available, 0);
    assert_eq!(stats.assigned, K as u64);
    assert_eq!(stats.users, K as u64);
    assert_eq!(events_of(t, EventKind::Assigned, None), K);
}

/// Assign random raced by one user on 12 threads never exceeds `max_codes_per_user` = 2.
pub fn assign_random_race_same_user_respects_cap<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 12;
    let all = codes("CAPR", 50);
    let book = t.book_with(
        BookSettings {
            max_codes_per_user: Some(2),
            ..BookSettings::new("Capped")
        },
        &refs(&all),
    );
    let results = race(t, N, |c, _| c.assign_random(book, "greedy", None));
    expect_counts(
        &results,
        &[(None, 2), (Some(ErrorKind::LimitReached), N - 2)],
    );
    let ok: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.code.clone()))
        .collect();
    assert_eq!(ok.len(), 2, "two distinct codes");
    let held = t
        .coupons
        .user_coupons("greedy", Some(book), None)
        .expect("list");
    assert_eq!(held.len(), 2);
    let stats = t.coupons.book(book).expect("book").stats;
    assert_eq!((stats.assigned, stats.available), (2, 48));
}

/// Assign code of 12 different codes raced by one user never exceeds `max_codes_per_user` = 2.
pub fn assign_code_race_same_user_respects_cap<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 12;
    let all = codes("CAPS", N);
    let book = t.book_with(
        BookSettings {
            max_codes_per_user: Some(2),
            ..BookSettings::new("Capped")
        },
        &refs(&all),
    );
    let results = race(t, N, |c, i| c.assign_code(&all[i], "greedy"));
    expect_counts(
        &results,
        &[(None, 2), (Some(ErrorKind::LimitReached), N - 2)],
    );
    let held = t
        .coupons
        .user_coupons("greedy", Some(book), None)
        .expect("list");
    assert_eq!(held.len(), 2);
    let won: BTreeSet<&str> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.code.as_str()))
        .collect();
    let kept: BTreeSet<&str> = held.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(
        won, kept,
        "the user holds exactly the codes that were answered"
    );
    assert_eq!(t.coupons.book(book).expect("book").stats.available, 10);
}

/// Redeem of a single-use code raced 16 times by its owner: one use, 15 `exhausted`.
pub fn redeem_race_single_use_once<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 16;
    let book = t.book_with(BookSettings::new("Single use"), &["ONCE-1"]);
    t.coupons.assign_code("ONCE-1", "owner").expect("assign");
    let results = race(t, N, |c, _| {
        c.redeem("ONCE-1", "owner", &RedeemRequest::default())
    });
    expect_counts(&results, &[(None, 1), (Some(ErrorKind::Exhausted), N - 1)]);
    let stored = t.coupons.coupon("ONCE-1").expect("show");
    assert_eq!(stored.redemptions, 1);
    assert_eq!(stored.state, CodeState::Redeemed);
    assert_eq!(t.coupons.book(book).expect("book").stats.redemptions, 1);
    assert_eq!(events_of(t, EventKind::Redeemed, Some("ONCE-1")), 1);
}

/// Redeem with one order id raced 16 times: all succeed, one original and 15 replays, counted
/// once.
pub fn redeem_race_same_order_id_counts_once<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 16;
    let book = t.book_with(
        BookSettings {
            max_redemptions_per_user: 5,
            ..BookSettings::new("Replays")
        },
        &["ORDER-1"],
    );
    t.coupons.assign_code("ORDER-1", "owner").expect("assign");
    let request = RedeemRequest {
        order_id: Some("order-42".into()),
        ..RedeemRequest::default()
    };
    let results = race(t, N, |c, _| c.redeem("ORDER-1", "owner", &request));
    expect_counts(&results, &[(None, N)]);
    let receipts: Vec<_> = results.into_iter().filter_map(Result::ok).collect();
    let originals: Vec<_> = receipts.iter().filter(|r| !r.replayed).collect();
    assert_eq!(originals.len(), 1, "exactly one receipt is not a replay");
    let original = originals[0];
    assert_eq!((original.redemptions, original.remaining), (1, 4));
    for r in &receipts {
        assert_eq!(
            crate::Receipt {
                replayed: false,
                ..r.clone()
            },
            *original,
            "every replay is the original receipt"
        );
    }
    assert_eq!(t.coupons.coupon("ORDER-1").expect("show").redemptions, 1);
    let stats = t.coupons.book(book).expect("book").stats;
    assert_eq!(stats.redemptions, 1);
    assert_eq!(events_of(t, EventKind::Redeemed, Some("ORDER-1")), 1);
}

/// Lock and redeem raced by different users on an available code: exactly one of them gets it,
/// never a lock by one and a redeem by another (16 rounds of 2 lockers and 2 redeemers).
pub fn lock_race_with_redeem_has_one_owner<S: CouponStore>(t: &Ctx<S>) {
    const ROUNDS: usize = 16;
    const N: usize = 4;
    let all = codes("LVR", ROUNDS);
    t.book_with(BookSettings::new("Checkout"), &refs(&all));
    let users = ["locker-a", "redeemer-b", "locker-c", "redeemer-d"];
    for code in &all {
        let results: Vec<Result<Option<String>>> = race(t, N, |c, i| {
            if i % 2 == 0 {
                c.lock(code, users[i], None, None).map(|g| Some(g.token))
            } else {
                c.redeem(code, users[i], &RedeemRequest::default())
                    .map(|_| None)
            }
        });
        expect_counts(&results, &[(None, 1), (Some(ErrorKind::NotOwner), N - 1)]);
        let winner = results.iter().position(Result::is_ok).expect("one winner");
        let stored: Coupon = t.coupons.coupon(code).expect("show");
        assert_eq!(stored.user_id.as_deref(), Some(users[winner]), "{code}");
        if winner % 2 == 0 {
            assert_eq!(stored.state, CodeState::Locked, "{code}");
            assert_eq!(stored.redemptions, 0, "{code}: locked, not redeemed");
        } else {
            assert_eq!(stored.state, CodeState::Redeemed, "{code}");
            assert_eq!(stored.redemptions, 1, "{code}");
            assert_eq!(stored.locked_until, None, "{code}: redeemed, not locked");
        }
        assert_eq!(events_of(t, EventKind::Assigned, Some(code)), 1, "{code}");
    }
}

/// Assign random with one idempotency key raced by 8 threads of one user: one code for all.
pub fn assign_random_race_same_key_gives_one_code<S: CouponStore>(t: &Ctx<S>) {
    const N: usize = 8;
    let all = codes("IDEM", 20);
    let book = t.book_with(BookSettings::new("Keys"), &refs(&all));
    let results = race(t, N, |c, _| {
        c.assign_random(book, "buyer", Some("checkout-1"))
    });
    expect_counts(&results, &[(None, N)]);
    let given: BTreeSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|c| c.code.clone()))
        .collect();
    assert_eq!(given.len(), 1, "every call answered the same code");
    let held = t
        .coupons
        .user_coupons("buyer", Some(book), None)
        .expect("list");
    assert_eq!(held.len(), 1, "the user holds exactly one code");
    assert!(given.contains(&held[0].code));
    assert_eq!(events_of(t, EventKind::Assigned, None), 1);
}
