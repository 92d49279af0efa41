//! # coupon-core
//!
//! The storage-agnostic heart of the coupon service: books of coupon codes that are handed to
//! users, locked during checkout and redeemed exactly once (or up to a limit), under any
//! concurrency.
//!
//! - [`Coupons`] runs every operation once, over any [`CouponStore`](store::CouponStore):
//!   validate → transaction → lock and load → [rule](rules) → persist → event → commit.
//! - [`rules`] holds the business rules as plain functions over loaded state and `now`.
//! - [`Pattern`] parses code patterns (a finite regular-expression subset), counts their space
//!   exactly and samples it uniformly; [`Coupons::generate_codes`] uses it.
//! - [`MemoryStore`] is the in-memory reference store.
//! - [`Error`] carries one stable [`ErrorKind`] per failure.
//!
//! ```
//! use coupon_core::{BookSettings, Coupons, ErrorKind, MemoryStore};
//!
//! let coupons = Coupons::new(MemoryStore::new());
//! let book = coupons.create_book(&BookSettings {
//!     max_codes_per_user: Some(1),
//!     ..BookSettings::new("Launch")
//! })?;
//! let rows = ["LAUNCH-1", "LAUNCH-2"].iter().enumerate()
//!     .map(|(i, c)| coupon_core::ImportRow::new(i as u64 + 1, *c));
//! coupons.import_codes(book.id, rows, false)?;
//!
//! coupons.assign_code("launch-1", "ada")?;
//! let err = coupons.assign_code("LAUNCH-2", "ada").unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::LimitReached);
//! # Ok::<(), coupon_core::Error>(())
//! ```
//!
//! ## Features
//!
//! | feature   | default | what it adds |
//! |-----------|---------|--------------|
//! | `testing` | no      | [`testing`]: the conformance suite every store runs, and [`store_tests!`] |
//! | `openapi` | no      | `utoipa::ToSchema` on the types the HTTP API answers with ([`Book`], [`Coupon`], [`Event`] …) |

pub mod apikey;
mod book;
mod clock;
mod code;
mod coupons;
mod error;
mod event;
pub mod generate;
mod import;
mod input;
mod memory;
pub mod migrations;
pub mod pattern;
mod redemption;
mod report;
pub mod rules;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use book::{
    Book, BookDetails, BookId, BookPatch, BookSettings, BookStats, DEFAULT_LOCK_TTL,
    MAX_DESCRIPTION_LEN, MAX_NAME_LEN,
};
pub use clock::{Clock, FixedClock, SystemClock, Timestamp};
pub use code::{CodeRecord, CodeState, Coupon, ExportRow, Lock, LockGrant};
pub use coupons::{Coupons, MAX_ATTEMPTS, MAX_EVENTS_PAGE};
pub use error::{BoxError, Error, ErrorKind, Result};
pub use event::{Event, EventKind, NewEvent};
pub use import::{ImportRow, IMPORT_BATCH};
pub use input::{
    normalize_code, validate_lock_ttl, validate_user_id, MAX_CODE_LEN, MAX_CONTEXT_BYTES,
    MAX_KEY_LEN, MAX_LOCK_TTL, MAX_USER_ID_LEN, MIN_LOCK_TTL,
};
pub use memory::MemoryStore;
pub use pattern::Pattern;
pub use redemption::{Receipt, Redemption};
pub use report::{GenerateReport, ImportReport, InvalidRow, MAX_LISTED_INVALID};
pub use rules::redeem::RedeemRequest;
