//! The conformance suite: behaviour tests of every rule and error kind, thread races and a
//! model-based property test, written once against [`CouponStore`] and run on every store.
//!
//! Instantiate it in a store's test crate with [`store_tests!`](crate::store_tests), giving an
//! expression that makes a fresh store for each test (or `None` to skip with a notice, e.g. when
//! no database is configured):
//!
//! ```
//! mod memory {
//!     coupon_core::store_tests!(|| Some(coupon_core::MemoryStore::new().into()));
//! }
//! ```
//!
//! Every case is its own `#[test]`, named `<operation>_<condition>`. Cases use a [`FixedClock`]
//! starting at [`START`], so nothing sleeps. This module is for store authors and is not part of
//! the stable API.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used)]

pub mod apikeys;
pub mod books;
pub mod codes;
pub mod model;
pub mod operations;
pub mod races;

use std::sync::Arc;

use crate::store::CouponStore;
use crate::{BookId, BookSettings, Coupons, FixedClock, ImportRow, Timestamp};

/// Where the clock of every case starts: 2030-01-01T00:00:00Z.
pub fn start() -> Timestamp {
    chrono::DateTime::from_timestamp(1_893_456_000, 0).unwrap_or_default()
}

/// Same as [`start`], as text.
pub const START: &str = "2030-01-01T00:00:00Z";

/// A fresh store for one test, and what to do after it (drop a schema, delete a file, …).
pub struct Fixture<S> {
    store: S,
    teardown: Option<Box<dyn FnOnce() + Send>>,
}

impl<S> Fixture<S> {
    /// A store that needs no clean-up.
    pub fn new(store: S) -> Self {
        Fixture {
            store,
            teardown: None,
        }
    }

    /// A store with a clean-up that runs after the test, after the store was dropped, even when
    /// the test failed.
    pub fn with_teardown(store: S, teardown: impl FnOnce() + Send + 'static) -> Self {
        Fixture {
            store,
            teardown: Some(Box::new(teardown)),
        }
    }
}

impl<S> From<S> for Fixture<S> {
    fn from(store: S) -> Self {
        Fixture::new(store)
    }
}

struct Teardown(Option<Box<dyn FnOnce() + Send>>);

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

/// What a case works with: the service over a fresh store, on a fixed clock.
pub struct Ctx<S> {
    /// The service.
    pub coupons: Coupons<S>,
    /// Its clock, standing at [`start`] when the case begins.
    pub clock: Arc<FixedClock>,
}

impl<S: CouponStore> Ctx<S> {
    /// The service over `store` on a fixed clock at [`start`].
    pub fn new(store: S) -> Self {
        let clock = Arc::new(FixedClock::new(start()));
        Ctx {
            coupons: Coupons::with_clock(store, clock.clone()),
            clock,
        }
    }

    /// Creates a book from `settings`.
    pub fn book(&self, settings: BookSettings) -> BookId {
        self.coupons
            .create_book(&settings)
            .expect("create a test book")
            .id
    }

    /// Imports `codes` into `book`, expecting every one to be added.
    pub fn add(&self, book: BookId, codes: &[&str]) {
        let report = self
            .coupons
            .import_codes(book, rows(codes), false)
            .expect("import test codes");
        assert_eq!(
            report.inserted,
            codes.len() as u64,
            "test codes must be new"
        );
    }

    /// Creates a book from `settings` holding `codes`.
    pub fn book_with(&self, settings: BookSettings, codes: &[&str]) -> BookId {
        let id = self.book(settings);
        self.add(id, codes);
        id
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance(&self, secs: u64) {
        self.clock.advance(std::time::Duration::from_secs(secs));
    }
}

/// Import rows numbered from line 1.
pub fn rows(codes: &[&str]) -> Vec<ImportRow> {
    codes
        .iter()
        .enumerate()
        .map(|(i, c)| ImportRow::new(i as u64 + 1, *c))
        .collect()
}

/// Runs one case on a fresh store from `setup`; `None` skips it with a notice on stderr.
pub fn run<S: CouponStore>(
    name: &str,
    setup: impl FnOnce() -> Option<Fixture<S>>,
    case: fn(&Ctx<S>),
) {
    let Some(fixture) = setup() else {
        eprintln!("skipped {name}: no store configured for this backend");
        return;
    };
    let _teardown = Teardown(fixture.teardown);
    let ctx = Ctx::new(fixture.store);
    case(&ctx);
}

/// Instantiates the whole conformance suite for a store: one `#[test]` per case.
///
/// `$setup` is an expression of type `impl Fn() -> Option<Fixture<S>>` called once per test
/// (and once per generated case of the property test).
#[macro_export]
macro_rules! store_tests {
    ($setup:expr) => {
        $crate::store_tests!(@cases $setup;
            books::create_book_returns_it_with_defaults,
            books::create_book_refuses_bad_settings,
            books::update_book_changes_fields_and_updated_at,
            books::update_book_unknown_is_not_found,
            books::book_stats_count_every_state,
            books::book_list_is_ordered_by_id,
            codes::import_normalizes_and_counts_duplicates,
            codes::import_is_idempotent,
            codes::import_all_or_nothing_on_bad_rows,
            codes::import_skip_invalid_adds_valid_rows,
            codes::import_code_of_other_book_is_refused,
            codes::import_unknown_book_is_not_found,
            codes::generate_adds_exactly_count_matching_codes,
            codes::generate_without_pattern_is_invalid_input,
            codes::generate_refuses_more_than_free_space,
            codes::generate_fills_the_last_codes_of_a_dense_space,
            codes::generate_guessability_guard,
            codes::generate_skips_codes_taken_by_other_books,
            codes::void_blocks_assign_and_redeem,
            codes::void_codes_is_all_or_nothing,
            codes::export_streams_rows_with_state,
            // operations:: and races:: cases below
            operations::assign_random_gives_an_available_code,
            operations::assign_random_spreads_over_the_book,
            operations::assign_random_before_valid_from_is_allowed,
            operations::assign_random_after_valid_until_is_expired,
            operations::assign_random_at_cap_is_limit_reached,
            operations::assign_random_void_codes_do_not_count_toward_cap,
            operations::assign_random_sold_out_when_none_left,
            operations::assign_random_skips_owned_and_locked_codes,
            operations::assign_random_idempotency_key_returns_same_code,
            operations::assign_random_unknown_book_is_not_found,
            operations::assign_random_invalid_user_is_invalid_input,
            operations::assign_code_assigns_it,
            operations::assign_code_same_user_is_idempotent,
            operations::assign_code_other_users_is_not_owner,
            operations::assign_code_void_is_void,
            operations::assign_code_at_cap_is_limit_reached,
            operations::assign_code_after_valid_until_is_expired,
            operations::assign_code_lookup_normalizes,
            operations::assign_code_bad_code_is_invalid_input,
            operations::assign_code_unknown_is_not_found,
            operations::assign_code_checks_in_order,
            operations::lock_returns_token_and_expiry,
            operations::lock_available_code_assigns_it,
            operations::lock_is_visible_in_coupon,
            operations::lock_live_lock_without_token_is_locked,
            operations::lock_with_its_token_extends_it,
            operations::lock_wrong_token_is_bad_lock_token,
            operations::lock_other_users_code_is_not_owner,
            operations::lock_exhausted_code_is_exhausted,
            operations::lock_void_code_is_void,
            operations::lock_before_valid_from_is_not_yet_valid,
            operations::lock_after_valid_until_is_expired,
            operations::lock_at_cap_is_limit_reached,
            operations::lock_ttl_out_of_range_is_invalid_input,
            operations::lock_unknown_code_is_not_found,
            operations::unlock_releases_a_live_lock,
            operations::unlock_wrong_token_is_bad_lock_token,
            operations::unlock_without_live_lock_changes_nothing,
            operations::unlock_unknown_code_is_not_found,
            operations::redeem_returns_receipt,
            operations::redeem_up_to_max_then_exhausted,
            operations::redeem_live_lock_needs_its_token,
            operations::redeem_without_live_lock_ignores_token,
            operations::redeem_available_code_assigns_it,
            operations::redeem_refused_at_cap_leaves_no_trace,
            operations::redeem_other_users_code_is_not_owner,
            operations::redeem_void_code_is_void,
            operations::redeem_before_valid_from_is_not_yet_valid,
            operations::redeem_after_valid_until_is_expired,
            operations::redeem_same_order_id_is_replayed,
            operations::redeem_replay_after_exhausted_and_without_token,
            operations::redeem_same_order_id_other_user_is_not_owner,
            operations::redeem_event_keeps_order_and_context,
            operations::redeem_oversize_context_is_invalid_input,
            operations::redeem_unknown_code_is_not_found,
            operations::redeem_checks_in_order,
            operations::user_coupons_lists_every_code_held,
            operations::user_coupons_include_void_codes,
            operations::user_coupons_filter_by_book_and_state,
            operations::user_coupons_unknown_book_is_not_found,
            operations::user_coupons_unknown_user_is_empty,
            operations::user_coupons_show_expired_and_redeemed,
            operations::events_record_every_change_in_order,
            operations::events_page_with_after_and_limit,
            operations::events_failed_operations_append_nothing,
            operations::events_lock_released_by_redeem_or_expiry_adds_no_unlocked,
            operations::events_bad_cursor_or_limit_is_invalid_input,
            races::assign_code_race_has_one_winner,
            races::assign_random_race_hands_out_distinct_codes,
            races::assign_random_race_same_user_respects_cap,
            races::assign_code_race_same_user_respects_cap,
            races::redeem_race_single_use_once,
            races::redeem_race_same_order_id_counts_once,
            races::lock_race_with_redeem_has_one_owner,
            races::assign_random_race_same_key_gives_one_code,
            apikeys::api_key_create_lists_it_with_its_hash,
            apikeys::api_key_revoke_keeps_it_listed,
        );
    };
    (@cases $setup:expr; $($module:ident :: $case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::testing::run(stringify!($case), $setup, $crate::testing::$module::$case);
            }
        )*
        #[test]
        fn model_agrees_with_store() {
            $crate::testing::model::check($setup);
        }
    };
}
