//! [`Coupons`]: every operation of SPEC §5, once, on top of any [`CouponStore`].

use std::collections::hash_map::{Entry, HashMap};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::json;

use crate::clock::to_micros;
use crate::input::{validate_context, validate_key, validate_lock_ttl, MAX_KEY_LEN};
use crate::rules::{self, redeem::RedeemRequest};
use crate::store::{Access, CouponStore, StoreTx};
use crate::{
    normalize_code, validate_user_id, Book, BookDetails, BookId, BookPatch, BookSettings,
    BookStats, Clock, CodeRecord, CodeState, Coupon, Error, ErrorKind, Event, EventKind, ExportRow,
    LockGrant, NewEvent, Receipt, Result, SystemClock, Timestamp,
};

/// How many times an operation is tried when the store reports a conflict.
pub const MAX_ATTEMPTS: u32 = 8;
/// The most events one call of [`Coupons::events`] returns.
pub const MAX_EVENTS_PAGE: usize = 10_000;

/// The coupon service over a store `S`: every operation validates its input, then runs in one
/// transaction that locks and loads what it needs, applies the rule, persists the change and
/// appends its events. Conflicts are retried up to [`MAX_ATTEMPTS`] times.
///
/// `Coupons` is `Sync`: share one (e.g. in an `Arc`) between threads.
///
/// ```
/// use coupon_core::{BookSettings, Coupons, MemoryStore, RedeemRequest};
///
/// let coupons = Coupons::new(MemoryStore::new());
/// let book = coupons.create_book(&BookSettings {
///     code_pattern: Some("WELCOME-[A-Z0-9]{6}".into()),
///     ..BookSettings::new("Welcome offer")
/// })?;
/// coupons.generate_codes(book.id, 100, false)?;
///
/// let coupon = coupons.assign_random(book.id, "user-42", None)?;
/// let lock = coupons.lock(&coupon.code, "user-42", None, None)?;
/// let receipt = coupons.redeem(&coupon.code, "user-42", &RedeemRequest {
///     lock_token: Some(lock.token),
///     order_id: Some("order-1".into()),
///     ..RedeemRequest::default()
/// })?;
/// assert_eq!(receipt.remaining, 0);
///
/// let err = coupons.redeem(&coupon.code, "user-42", &RedeemRequest::default()).unwrap_err();
/// assert_eq!(err.kind(), coupon_core::ErrorKind::Exhausted);
/// # Ok::<(), coupon_core::Error>(())
/// ```
pub struct Coupons<S> {
    store: S,
    clock: Arc<dyn Clock>,
}

impl<S: CouponStore> Coupons<S> {
    /// The service over `store`, on the system clock.
    pub fn new(store: S) -> Self {
        Coupons::with_clock(store, Arc::new(SystemClock))
    }

    /// The service over `store`, reading the time from `clock`.
    pub fn with_clock(store: S, clock: Arc<dyn Clock>) -> Self {
        Coupons { store, clock }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The current time, as operations see it (whole microseconds).
    pub fn now(&self) -> Timestamp {
        to_micros(self.clock.now())
    }

    /// Runs `f` in a write transaction, trying again on conflict.
    pub(crate) fn write<T>(
        &self,
        f: impl FnMut(&mut dyn StoreTx, Timestamp) -> Result<T>,
    ) -> Result<T> {
        self.retrying(Access::Write, f)
    }

    /// Runs `f` in a read transaction, trying again on conflict.
    pub(crate) fn read<T>(
        &self,
        f: impl FnMut(&mut dyn StoreTx, Timestamp) -> Result<T>,
    ) -> Result<T> {
        self.retrying(Access::Read, f)
    }

    /// Runs `f` in a transaction, up to [`MAX_ATTEMPTS`] times while the store reports a
    /// conflict, sleeping a growing, jittered few milliseconds in between. Each attempt reads the
    /// clock anew.
    fn retrying<T>(
        &self,
        access: Access,
        mut f: impl FnMut(&mut dyn StoreTx, Timestamp) -> Result<T>,
    ) -> Result<T> {
        let mut attempt = 1;
        loop {
            let now = self.now();
            match self.store.transaction(access, |tx| f(tx, now)) {
                Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                    let jitter = rand::rng().random_range(1..=5u64);
                    std::thread::sleep(Duration::from_millis(jitter * u64::from(attempt)));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Creates a book.
    ///
    /// # Errors
    /// `invalid_input` / `invalid_pattern` for bad settings (see [`BookSettings::validated`]).
    pub fn create_book(&self, settings: &BookSettings) -> Result<Book> {
        let settings = settings.clone().validated()?;
        self.write(|tx, now| {
            let book = tx.insert_book(&settings, now)?;
            append(
                tx,
                now,
                vec![NewEvent::book(
                    EventKind::BookCreated,
                    book.id,
                    json!({ "name": book.settings.name }),
                )],
            )?;
            Ok(book)
        })
    }

    /// Changes a book's settings; `updated_at` moves. Lowering a limit never takes away what
    /// users already hold.
    ///
    /// # Errors
    /// `invalid_input` / `invalid_pattern` when the result is not valid, `not_found`.
    pub fn update_book(&self, id: BookId, patch: &BookPatch) -> Result<Book> {
        if let Some(Some(p)) = &patch.code_pattern {
            crate::Pattern::parse(p)?;
        }
        self.write(|tx, now| {
            let mut book = load_book(tx, id)?;
            let settings = patch.apply(&book.settings).validated()?;
            if settings == book.settings {
                return Ok(book);
            }
            let changed = changed_fields(&book.settings, &settings);
            book.settings = settings;
            book.updated_at = now;
            tx.update_book(&book)?;
            append(
                tx,
                now,
                vec![NewEvent::book(
                    EventKind::BookUpdated,
                    id,
                    json!({ "fields": changed }),
                )],
            )?;
            Ok(book)
        })
    }

    /// A book with its live statistics.
    ///
    /// # Errors
    /// `not_found`.
    pub fn book(&self, id: BookId) -> Result<BookDetails> {
        self.read(|tx, now| {
            let book = load_book(tx, id)?;
            let t = tx.tally(id, book.settings.max_redemptions_per_user, now)?;
            let stats = BookStats {
                codes: t.codes,
                available: t.unowned,
                assigned: t.owned,
                locked: if book.is_expired(now) { 0 } else { t.locked },
                redeemed: t.used_up,
                void: t.void,
                users: t.users,
                redemptions: t.redemptions,
            };
            Ok(BookDetails { book, stats })
        })
    }

    /// Every book, by id.
    pub fn books(&self) -> Result<Vec<Book>> {
        self.read(|tx, _| tx.books())
    }

    /// A code as its holder sees it (or as an admin does, for an available one).
    ///
    /// # Errors
    /// `invalid_input` for a string that cannot be a code, `not_found`.
    pub fn coupon(&self, code: &str) -> Result<Coupon> {
        let code = normalize_code(code)?;
        self.read(|tx, now| {
            let (record, book) = load_code_and_book(tx, &code)?;
            Ok(Coupon::new(&book, &record, now))
        })
    }

    /// Gives `user` one available code of the book, chosen at random. With an idempotency `key`,
    /// repeating the call returns the same code.
    ///
    /// # Errors
    /// `not_found`, `expired`, `limit_reached`, `sold_out` (and `invalid_input`).
    pub fn assign_random(&self, book: BookId, user: &str, key: Option<&str>) -> Result<Coupon> {
        validate_user_id(user)?;
        if let Some(key) = key {
            validate_key("idempotency key", key, MAX_KEY_LEN)?;
        }
        self.write(|tx, now| {
            let book = load_book(tx, book)?;
            let held = tx.held_codes(book.id, user)?;
            if let Some(key) = key {
                if let Some(code) = tx.assignment_key(book.id, user, key)? {
                    return Ok(Coupon::new(&book, &load_code(tx, &code)?, now));
                }
            }
            rules::assign::check_random(&book, user, held, now)?;
            let Some(mut record) = tx.claim_random(book.id)? else {
                return Err(Error::new(
                    ErrorKind::SoldOut,
                    format!("book {} has no available code left", book.id),
                ));
            };
            let mut events = vec![];
            rules::assign::take(&mut record, user, now, "random", &mut events);
            tx.save_code(&record)?;
            if let Some(key) = key {
                tx.save_assignment_key(book.id, user, key, &record.code)?;
            }
            append(tx, now, events)?;
            Ok(Coupon::new(&book, &record, now))
        })
    }

    /// Assigns the code `code` to `user`; a code the user already holds is returned as it is.
    ///
    /// # Errors
    /// `not_found`, `not_owner`, `void`, `expired`, `limit_reached` (and `invalid_input`).
    pub fn assign_code(&self, code: &str, user: &str) -> Result<Coupon> {
        let code = normalize_code(code)?;
        validate_user_id(user)?;
        self.change_code(&code, |tx, book, record, now, events| {
            rules::assign::assign_code(book, record, user, now, held(tx, book, user), events)
        })
        .map(|(coupon, ())| coupon)
    }

    /// Locks `code` for `user`'s checkout for `ttl` (the book's lock TTL when `None`). An
    /// available code is assigned to the user by the lock. Presenting the `token` of the live
    /// lock extends it.
    ///
    /// # Errors
    /// `not_found`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`,
    /// `not_yet_valid`, `expired`, `limit_reached` (and `invalid_input`).
    pub fn lock(
        &self,
        code: &str,
        user: &str,
        ttl: Option<Duration>,
        token: Option<&str>,
    ) -> Result<LockGrant> {
        let code = normalize_code(code)?;
        validate_user_id(user)?;
        if let Some(ttl) = ttl {
            validate_lock_ttl("lock ttl", ttl)?;
        }
        if let Some(token) = token {
            validate_key("lock token", token, MAX_KEY_LEN)?;
        }
        self.change_code(&code, |tx, book, record, now, events| {
            let ttl = ttl.unwrap_or(book.settings.lock_ttl);
            rules::lock::lock(
                book,
                record,
                user,
                ttl,
                token,
                now,
                new_token,
                held(tx, book, user),
                events,
            )
        })
        .map(|(_, grant)| grant)
    }

    /// Releases the live lock of `code` early. Without a live lock it succeeds and changes nothing.
    ///
    /// # Errors
    /// `not_found`, `bad_lock_token` (and `invalid_input`).
    pub fn unlock(&self, code: &str, token: &str) -> Result<()> {
        let code = normalize_code(code)?;
        validate_key("lock token", token, MAX_KEY_LEN)?;
        self.change_code(&code, |_, _, record, now, events| {
            rules::lock::unlock(record, token, now, events)
        })
        .map(|_| ())
    }

    /// Redeems `code` once for `user`. Repeating a redeem with the same `order_id` returns the
    /// original receipt (`replayed: true`) and counts nothing.
    ///
    /// # Errors
    /// `not_found`, `not_owner`, `locked`, `bad_lock_token`, `exhausted`, `void`,
    /// `not_yet_valid`, `expired`, `limit_reached` (and `invalid_input`).
    pub fn redeem(&self, code: &str, user: &str, request: &RedeemRequest) -> Result<Receipt> {
        let code = normalize_code(code)?;
        validate_user_id(user)?;
        if let Some(order) = &request.order_id {
            validate_key("order id", order, MAX_KEY_LEN)?;
        }
        if let Some(token) = &request.lock_token {
            validate_key("lock token", token, MAX_KEY_LEN)?;
        }
        if let Some(context) = &request.context {
            validate_context(context)?;
        }
        self.write(|tx, now| {
            let (mut record, book) = load_code_and_book(tx, &code)?;
            if let Some(order) = &request.order_id {
                if let Some(previous) = tx.redemption(&code, order)? {
                    return rules::redeem::replay(&previous, user);
                }
            }
            #[cfg(debug_assertions)]
            let before = record.clone();
            let mut events = vec![];
            let (redemption, redeemed) = rules::redeem::redeem(
                &book,
                &mut record,
                user,
                request,
                now,
                held(tx, &book, user),
                &mut events,
            )?;
            #[cfg(debug_assertions)]
            debug_assert_ne!(record, before, "a redeem always changes the code");
            tx.save_code(&record)?;
            append(tx, now, events)?;
            tx.record_redemption(&redemption, &redeemed)?;
            Ok(Receipt::from(redemption))
        })
    }

    /// Voids `code`: it can never be assigned or redeemed again; its history is kept. Voiding a
    /// void code changes nothing.
    ///
    /// # Errors
    /// `not_found` (and `invalid_input`).
    pub fn void_code(&self, code: &str) -> Result<Coupon> {
        let mut voided = self.void_codes(&[code])?;
        voided
            .pop()
            .ok_or_else(|| Error::new(ErrorKind::Backend, "voiding returned no code"))
    }

    /// Voids every code of `codes` in one transaction, all or nothing: if one is unknown (or
    /// not a valid code), none is voided. Returns them in the order given.
    ///
    /// # Errors
    /// `not_found` naming the first unknown code (and `invalid_input`).
    ///
    /// ```
    /// use coupon_core::{testing::rows, BookSettings, CodeState, Coupons, ErrorKind, MemoryStore};
    /// let coupons = Coupons::new(MemoryStore::new());
    /// let book = coupons.create_book(&BookSettings::new("Spring"))?;
    /// coupons.import_codes(book.id, rows(&["A-1", "A-2"]), false)?;
    /// let err = coupons.void_codes(&["A-1", "A-9"]).unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// assert_eq!(coupons.coupon("A-1")?.state, CodeState::Available); // nothing voided
    /// let voided = coupons.void_codes(&["a-2", "A-1"])?;
    /// assert_eq!((voided[0].code.as_str(), voided[1].state), ("A-2", CodeState::Void));
    /// # Ok::<(), coupon_core::Error>(())
    /// ```
    pub fn void_codes(&self, codes: &[impl AsRef<str>]) -> Result<Vec<Coupon>> {
        let codes = codes
            .iter()
            .map(|code| normalize_code(code.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        // Locked in code order, so that two voids of overlapping codes cannot deadlock.
        let mut order: Vec<usize> = (0..codes.len()).collect();
        order.sort_by(|&a, &b| codes[a].cmp(&codes[b]));
        self.write(|tx, now| {
            let mut voided = vec![None; codes.len()];
            let mut events = vec![];
            for &i in &order {
                let (mut record, book) = load_code_and_book(tx, &codes[i])?;
                if record.voided_at.is_none() {
                    record.voided_at = Some(now);
                    record.lock = None;
                    tx.save_code(&record)?;
                    events.push(NewEvent::code(
                        EventKind::Voided,
                        record.book_id,
                        &record.code,
                        record.owner.as_deref(),
                        json!({}),
                    ));
                }
                voided[i] = Some(Coupon::new(&book, &record, now));
            }
            append(tx, now, events)?;
            Ok(voided.into_iter().flatten().collect())
        })
    }

    /// Every code `user` holds, void ones included, optionally of one book and in one state,
    /// ordered by book, then assignment time, then code.
    ///
    /// # Errors
    /// `not_found` for an unknown book (an unknown user has an empty list), `invalid_input`.
    pub fn user_coupons(
        &self,
        user: &str,
        book: Option<BookId>,
        state: Option<CodeState>,
    ) -> Result<Vec<Coupon>> {
        validate_user_id(user)?;
        self.read(|tx, now| {
            let mut books: HashMap<BookId, Book> = HashMap::new();
            if let Some(id) = book {
                books.insert(id, load_book(tx, id)?);
            }
            let mut coupons = vec![];
            for record in tx.user_codes(user, book)? {
                let book = match books.entry(record.book_id) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => e.insert(load_book(tx, record.book_id)?),
                };
                let coupon = Coupon::new(book, &record, now);
                if state.is_none_or(|s| s == coupon.state) {
                    coupons.push(coupon);
                }
            }
            coupons.sort_by(|a, b| {
                (a.book_id, a.assigned_at, &a.code).cmp(&(b.book_id, b.assigned_at, &b.code))
            });
            Ok(coupons)
        })
    }

    /// Up to `limit` (at most [`MAX_EVENTS_PAGE`]) events after the cursor `after`, in order.
    ///
    /// # Errors
    /// `invalid_input` for a negative cursor or a limit of 0 or above the maximum.
    pub fn events(&self, after: i64, limit: usize) -> Result<Vec<Event>> {
        if after < 0 {
            return Err(Error::invalid_input(format!(
                "event cursor {after} is negative; use 0 to read from the start"
            )));
        }
        if limit == 0 || limit > MAX_EVENTS_PAGE {
            return Err(Error::invalid_input(format!(
                "event limit {limit} is out of range; use 1 to {MAX_EVENTS_PAGE}"
            )));
        }
        self.read(|tx, _| tx.events(after, limit))
    }

    /// Checks that the store answers, with the cheapest read it has: a lookup of a book by a
    /// key no book has. It changes nothing (reading the event log could, in a store that
    /// publishes events when they are read).
    ///
    /// # Errors
    /// `backend` (or `conflict`) when it does not.
    pub fn ping(&self) -> Result<()> {
        self.read(|tx, _| tx.book(0).map(drop))
    }

    /// Streams every code of a book (optionally only those in `state`) to `sink`, in code order,
    /// and returns how many rows were written. The rows are read in one transaction, so they are
    /// a consistent snapshot; the sink's errors stop the export.
    ///
    /// # Errors
    /// `not_found`, or the sink's error.
    pub fn export(
        &self,
        book: BookId,
        state: Option<CodeState>,
        mut sink: impl FnMut(&ExportRow) -> Result<()>,
    ) -> Result<u64> {
        const PAGE: usize = 10_000;
        let now = self.now();
        self.store.transaction(Access::Read, |tx| {
            let book = load_book(tx, book)?;
            let mut rows = 0;
            let mut after: Option<String> = None;
            loop {
                let page = tx.codes_after(Some(book.id), after.as_deref(), PAGE)?;
                for record in &page {
                    let row = ExportRow {
                        code: record.code.clone(),
                        state: record.state(&book, now),
                        assigned_to: record.owner.clone(),
                        redemptions: record.redemptions,
                    };
                    if state.is_none_or(|s| s == row.state) {
                        sink(&row)?;
                        rows += 1;
                    }
                }
                match page.last() {
                    Some(last) if page.len() == PAGE => after = Some(last.code.clone()),
                    _ => return Ok(rows),
                }
            }
        })
    }

    /// Loads, locks and changes one code with `change`, saving it and its events when it changed.
    fn change_code<T>(
        &self,
        code: &str,
        mut change: impl FnMut(
            &mut dyn StoreTx,
            &Book,
            &mut CodeRecord,
            Timestamp,
            &mut Vec<NewEvent>,
        ) -> Result<T>,
    ) -> Result<(Coupon, T)> {
        self.write(|tx, now| {
            let (mut record, book) = load_code_and_book(tx, code)?;
            let before = record.clone();
            let mut events = vec![];
            let value = change(tx, &book, &mut record, now, &mut events)?;
            if record != before {
                tx.save_code(&record)?;
            }
            append(tx, now, events)?;
            Ok((Coupon::new(&book, &record, now), value))
        })
    }
}

/// The `held` callback of the rules: asks the store, which locks the (book, user) pair.
fn held<'a>(
    tx: &'a mut dyn StoreTx,
    book: &'a Book,
    user: &'a str,
) -> impl FnOnce() -> Result<u32> + 'a {
    move || tx.held_codes(book.id, user)
}

pub(crate) fn load_book(tx: &mut dyn StoreTx, id: BookId) -> Result<Book> {
    tx.book(id)?.ok_or_else(|| no_book(id))
}

fn load_code(tx: &mut dyn StoreTx, code: &str) -> Result<CodeRecord> {
    tx.code(code)?.ok_or_else(|| no_code(code))
}

/// The code and its book, locked (one read where the store can).
fn load_code_and_book(tx: &mut dyn StoreTx, code: &str) -> Result<(CodeRecord, Book)> {
    let (record, book) = tx.code_and_book(code)?.ok_or_else(|| no_code(code))?;
    let book = book.ok_or_else(|| no_book(record.book_id))?;
    Ok((record, book))
}

fn no_code(code: &str) -> Error {
    Error::not_found(format!("code {code} does not exist"))
}

fn no_book(id: BookId) -> Error {
    Error::not_found(format!("book {id} does not exist"))
}

pub(crate) fn append(tx: &mut dyn StoreTx, now: Timestamp, events: Vec<NewEvent>) -> Result<()> {
    for event in events {
        tx.append_event(&event, now)?;
    }
    Ok(())
}

/// A new lock token: 160 random bits from the thread's CSPRNG, as 40 hex digits.
fn new_token() -> String {
    let bytes: [u8; 20] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn changed_fields(old: &BookSettings, new: &BookSettings) -> Vec<&'static str> {
    let mut fields = vec![];
    let mut check = |name, changed: bool| {
        if changed {
            fields.push(name);
        }
    };
    check("name", old.name != new.name);
    check("description", old.description != new.description);
    check("valid_from", old.valid_from != new.valid_from);
    check("valid_until", old.valid_until != new.valid_until);
    check(
        "max_redemptions_per_user",
        old.max_redemptions_per_user != new.max_redemptions_per_user,
    );
    check(
        "max_codes_per_user",
        old.max_codes_per_user != new.max_codes_per_user,
    );
    check("code_pattern", old.code_pattern != new.code_pattern);
    check("lock_ttl_seconds", old.lock_ttl != new.lock_ttl);
    fields
}
