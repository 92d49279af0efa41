//! The storage primitives a backend provides: [`CouponStore`] and its transaction, [`StoreTx`].
//!
//! A backend decides nothing. [`Coupons`](crate::Coupons) runs every operation as
//! *transaction → lock and load → rule → persist → event → commit*, calling these primitives
//! inside one [`CouponStore::transaction`]. A backend's job is to make each primitive do exactly
//! what its documentation says, with the locks it names, and to classify its driver's errors:
//! transient contention (busy, serialization failure, deadlock) is
//! [`ErrorKind::Conflict`](crate::ErrorKind::Conflict), which the service retries a bounded
//! number of times; anything else is [`ErrorKind::Backend`](crate::ErrorKind::Backend) with the
//! driver's error as its source, and never a message containing SQL.
//!
//! # Writing a store
//!
//! The shortest correct store wraps [`MemoryStore`](crate::MemoryStore), as a decorator would;
//! a real one issues SQL in each method. Either way, run the conformance suite on it with
//! [`store_tests!`](crate::store_tests) (feature `testing`).
//!
//! ```
//! use coupon_core::store::{Access, CouponStore, StoreTx};
//! use coupon_core::{Coupons, MemoryStore, Result};
//! use std::sync::atomic::{AtomicU64, Ordering};
//!
//! /// Counts the write transactions of the store it wraps.
//! struct Counting {
//!     inner: MemoryStore,
//!     writes: AtomicU64,
//! }
//!
//! impl CouponStore for Counting {
//!     fn transaction<T>(
//!         &self,
//!         access: Access,
//!         f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
//!     ) -> Result<T> {
//!         if access == Access::Write {
//!             self.writes.fetch_add(1, Ordering::Relaxed);
//!         }
//!         self.inner.transaction(access, f)
//!     }
//! }
//!
//! let coupons = Coupons::new(Counting { inner: MemoryStore::new(), writes: AtomicU64::new(0) });
//! coupons.create_book(&coupon_core::BookSettings::new("Spring"))?;
//! assert_eq!(coupons.store().writes.load(Ordering::Relaxed), 1);
//! # Ok::<(), coupon_core::Error>(())
//! ```

use crate::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use crate::{
    Book, BookId, BookSettings, CodeRecord, Event, NewEvent, Redemption, Result, Timestamp,
};

/// Whether a transaction only reads or also writes.
///
/// Backends take the write lock up front for [`Access::Write`] (SQLite `BEGIN IMMEDIATE`), so a
/// read-then-write transaction never fails half-way on a lock upgrade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only.
    Read,
    /// Reads and writes.
    Write,
}

/// What became of one code given to [`StoreTx::add_codes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeFate {
    /// It was new to the store and now belongs to the book.
    Inserted,
    /// It was already in this book; nothing changed.
    InBook,
    /// It belongs to another book; nothing changed.
    InOtherBook(BookId),
}

/// Counts of a book's codes by stored facts, from which the service derives
/// [`BookStats`](crate::BookStats). Each count is a plain predicate on stored columns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// All codes of the book.
    pub codes: u64,
    /// Codes with `voided_at` set.
    pub void: u64,
    /// Codes not void and without an owner.
    pub unowned: u64,
    /// Codes with an owner (void or not).
    pub owned: u64,
    /// Codes not void, with an owner and `redemptions >= max_redemptions` (the argument).
    pub used_up: u64,
    /// Codes not void, with an owner, `redemptions < max_redemptions` and a lock expiring after `now`.
    pub locked: u64,
    /// Distinct owners.
    pub users: u64,
    /// Sum of `redemptions`.
    pub redemptions: u64,
}

/// A store of books, codes, redemptions and events that runs closures in transactions.
pub trait CouponStore: Send + Sync {
    /// Runs `f` in one transaction: commits when it returns `Ok`, rolls back when it returns
    /// `Err` (or panics), and returns its result.
    ///
    /// # Errors
    /// `f`'s error, or `conflict` / `backend` when the transaction cannot begin or commit.
    fn transaction<T>(
        &self,
        access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
    ) -> Result<T>;
}

/// The primitives available inside one transaction.
///
/// "Locks" means: no other transaction can change, lock or claim the row until this one ends
/// (Postgres `SELECT … FOR UPDATE`; SQLite holds the database write lock for the whole write
/// transaction, which covers it). Lookups of codes take normalized codes.
pub trait StoreTx {
    /// Stores a new book with `created_at = updated_at = now` and returns it with its id.
    fn insert_book(&mut self, settings: &BookSettings, now: Timestamp) -> Result<Book>;

    /// The book `id`, locked in a write transaction.
    fn book(&mut self, id: BookId) -> Result<Option<Book>>;

    /// Every book, by id.
    fn books(&mut self) -> Result<Vec<Book>>;

    /// Saves the settings and `updated_at` of an existing book.
    fn update_book(&mut self, book: &Book) -> Result<()>;

    /// Counts the codes of `book` (see [`Tally`] for each predicate).
    fn tally(&mut self, book: BookId, max_redemptions: u32, now: Timestamp) -> Result<Tally>;

    /// The code `code` (normalized), locked in a write transaction.
    fn code(&mut self, code: &str) -> Result<Option<CodeRecord>>;

    /// The code `code` (normalized) and the book it belongs to, each locked in a write
    /// transaction as by [`StoreTx::code`] and [`StoreTx::book`]. The default reads the code, then
    /// its book; a store may read both at once. `None` when there is no such code; the book is
    /// `None` only when the store has lost it.
    fn code_and_book(&mut self, code: &str) -> Result<Option<(CodeRecord, Option<Book>)>> {
        let Some(record) = self.code(code)? else {
            return Ok(None);
        };
        let book = self.book(record.book_id)?;
        Ok(Some((record, book)))
    }

    /// Saves the owner, assignment time, redemption count, lock and void time of an existing code.
    fn save_code(&mut self, code: &CodeRecord) -> Result<()>;

    /// Locks the (book, user) pair, so that no other transaction can assign a code of the book to
    /// the user until this one ends, and returns how many non-void codes of the book the user
    /// holds.
    fn held_codes(&mut self, book: BookId, user: &str) -> Result<u32>;

    /// One available code of `book` (no owner, not void) chosen at random, locked. Codes locked by
    /// other transactions are skipped, not waited for. The cost must not grow with the number of
    /// codes. `None` when there is none.
    fn claim_random(&mut self, book: BookId) -> Result<Option<CodeRecord>>;

    /// Adds the distinct `codes` (normalized) to `book` with `now` as their creation time, except
    /// those already in the store, and tells the fate of each, in order.
    fn add_codes(
        &mut self,
        book: BookId,
        codes: &[String],
        now: Timestamp,
    ) -> Result<Vec<CodeFate>>;

    /// The number of codes in the whole store.
    fn code_count(&mut self) -> Result<u64>;

    /// Up to `limit` codes in code order after `after` (all of the store, or of one book).
    fn codes_after(
        &mut self,
        book: Option<BookId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CodeRecord>>;

    /// Every code `user` holds (of one book, or of all), void ones included.
    fn user_codes(&mut self, user: &str, book: Option<BookId>) -> Result<Vec<CodeRecord>>;

    /// The code given to `user` by a random assignment of `book` with idempotency `key`.
    fn assignment_key(&mut self, book: BookId, user: &str, key: &str) -> Result<Option<String>>;

    /// Remembers that a random assignment of `book` with `key` gave `code` to `user`.
    fn save_assignment_key(
        &mut self,
        book: BookId,
        user: &str,
        key: &str,
        code: &str,
    ) -> Result<()>;

    /// The redemption of `code` with `order_id`.
    fn redemption(&mut self, code: &str, order_id: &str) -> Result<Option<Redemption>>;

    /// Stores a redemption and appends `event`, its `redeemed` event, at its `redeemed_at`, as
    /// [`StoreTx::append_event`] does. (`code`, `order_id`) is unique when `order_id` is set.
    /// The two may be one row: [`StoreTx::redemption`] must find what this stored.
    fn record_redemption(&mut self, redemption: &Redemption, event: &NewEvent) -> Result<()>;

    /// Appends an event at `at`. Once this transaction commits, the event is in the log with a
    /// `seq` greater than that of every event committed before it; a store may give it that
    /// `seq` only then (so none is returned here).
    fn append_event(&mut self, event: &NewEvent, at: Timestamp) -> Result<()>;

    /// Up to `limit` events with `seq > after`, in `seq` order.
    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<Event>>;

    /// Stores a new API key with `created_at = now`, not revoked, and returns it with its id.
    fn insert_api_key(
        &mut self,
        name: Option<&str>,
        role: Role,
        hash: &str,
        now: Timestamp,
    ) -> Result<ApiKey>;

    /// Every API key, revoked ones included, by id.
    fn api_keys(&mut self) -> Result<Vec<StoredApiKey>>;

    /// Sets `revoked_at = now` on the key `id` unless it is revoked already, and returns the key
    /// as it then is; `None` when there is no such key.
    fn revoke_api_key(&mut self, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>>;
}
