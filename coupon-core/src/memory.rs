//! [`MemoryStore`]: the in-memory reference store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use rand::Rng;

use crate::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use crate::store::{Access, CodeFate, CouponStore, StoreTx, Tally};
use crate::{
    Book, BookId, BookSettings, CodeRecord, Event, NewEvent, Redemption, Result, Timestamp,
};

/// A store that keeps everything in memory behind one `Mutex`: transactions run one at a time
/// and a failed one is rolled back completely.
///
/// It is the reference the conformance suite runs on, and a way to unit-test code that embeds
/// the library without a database. Nothing survives the process.
///
/// ```
/// use coupon_core::{BookSettings, Coupons, MemoryStore};
/// let coupons = Coupons::new(MemoryStore::new());
/// let book = coupons.create_book(&BookSettings::new("Test book"))?;
/// assert_eq!(coupons.book(book.id)?.stats.codes, 0);
/// # Ok::<(), coupon_core::Error>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A transaction that panicked was rolled back by its guard, so the state is sound.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CouponStore for MemoryStore {
    fn transaction<T>(
        &self,
        _access: Access,
        f: impl FnOnce(&mut dyn StoreTx) -> Result<T>,
    ) -> Result<T> {
        let mut tx = MemoryTx {
            state: self.lock(),
            undo: Vec::new(),
        };
        let result = f(&mut tx);
        if result.is_ok() {
            tx.undo.clear();
        }
        result
    }
}

#[derive(Debug, Default)]
struct State {
    books: BTreeMap<BookId, Book>,
    codes: BTreeMap<String, CodeRecord>,
    /// Available codes of each book, for O(1) random picks.
    available: HashMap<BookId, Pool>,
    /// Codes of each owner.
    owned: HashMap<String, BTreeSet<String>>,
    keys: HashMap<(BookId, String, String), String>,
    redemptions: HashMap<(String, String), Redemption>,
    events: Vec<Event>,
    api_keys: Vec<StoredApiKey>,
}

/// A set with O(1) insert, remove and random pick.
#[derive(Debug, Default)]
struct Pool {
    items: Vec<String>,
    index: HashMap<String, usize>,
}

impl Pool {
    fn insert(&mut self, code: &str) {
        if !self.index.contains_key(code) {
            self.index.insert(code.to_owned(), self.items.len());
            self.items.push(code.to_owned());
        }
    }

    fn remove(&mut self, code: &str) {
        if let Some(i) = self.index.remove(code) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.index.insert(moved.clone(), i);
            }
        }
    }

    fn pick(&self) -> Option<&String> {
        if self.items.is_empty() {
            return None;
        }
        self.items
            .get(rand::rng().random_range(0..self.items.len()))
    }
}

impl State {
    /// Replaces (or removes) a code, keeping the indexes right; returns what was there.
    fn put_code(&mut self, code: &str, new: Option<CodeRecord>) -> Option<CodeRecord> {
        let old = match new.clone() {
            Some(record) => self.codes.insert(code.to_owned(), record),
            None => self.codes.remove(code),
        };
        if let Some(old) = &old {
            self.unindex(old);
        }
        if let Some(new) = &new {
            if new.owner.is_none() && new.voided_at.is_none() {
                self.available.entry(new.book_id).or_default().insert(code);
            }
            if let Some(owner) = &new.owner {
                self.owned
                    .entry(owner.clone())
                    .or_default()
                    .insert(code.to_owned());
            }
        }
        old
    }

    fn unindex(&mut self, record: &CodeRecord) {
        if let Some(pool) = self.available.get_mut(&record.book_id) {
            pool.remove(&record.code);
        }
        if let Some(owner) = &record.owner {
            if let Some(set) = self.owned.get_mut(owner) {
                set.remove(&record.code);
                if set.is_empty() {
                    self.owned.remove(owner);
                }
            }
        }
    }
}

/// How to take back one change.
enum Undo {
    Book(BookId, Option<Book>),
    Code(String, Option<CodeRecord>),
    Key((BookId, String, String)),
    Redemption((String, String)),
    Event,
    ApiKey(usize, Option<ApiKey>),
}

struct MemoryTx<'a> {
    state: MutexGuard<'a, State>,
    undo: Vec<Undo>,
}

impl Drop for MemoryTx<'_> {
    fn drop(&mut self) {
        while let Some(undo) = self.undo.pop() {
            let state = &mut *self.state;
            match undo {
                Undo::Book(id, Some(book)) => {
                    state.books.insert(id, book);
                }
                Undo::Book(id, None) => {
                    state.books.remove(&id);
                }
                Undo::Code(code, old) => {
                    state.put_code(&code, old);
                }
                Undo::Key(key) => {
                    state.keys.remove(&key);
                }
                Undo::Redemption(key) => {
                    state.redemptions.remove(&key);
                }
                Undo::Event => {
                    state.events.pop();
                }
                Undo::ApiKey(i, Some(key)) => {
                    state.api_keys[i].key = key;
                }
                Undo::ApiKey(_, None) => {
                    state.api_keys.pop();
                }
            }
        }
    }
}

impl MemoryTx<'_> {
    fn put_code(&mut self, record: CodeRecord) {
        let code = record.code.clone();
        let old = self.state.put_code(&code, Some(record));
        self.undo.push(Undo::Code(code, old));
    }
}

impl StoreTx for MemoryTx<'_> {
    fn insert_book(&mut self, settings: &BookSettings, now: Timestamp) -> Result<Book> {
        let id = self
            .state
            .books
            .keys()
            .next_back()
            .map_or(1, |last| last + 1);
        let book = Book {
            id,
            settings: settings.clone(),
            created_at: now,
            updated_at: now,
        };
        self.state.books.insert(id, book.clone());
        self.undo.push(Undo::Book(id, None));
        Ok(book)
    }

    fn book(&mut self, id: BookId) -> Result<Option<Book>> {
        Ok(self.state.books.get(&id).cloned())
    }

    fn books(&mut self) -> Result<Vec<Book>> {
        Ok(self.state.books.values().cloned().collect())
    }

    fn update_book(&mut self, book: &Book) -> Result<()> {
        let old = self.state.books.insert(book.id, book.clone());
        self.undo.push(Undo::Book(book.id, old));
        Ok(())
    }

    fn tally(&mut self, book: BookId, max_redemptions: u32, now: Timestamp) -> Result<Tally> {
        let mut t = Tally::default();
        let mut users = BTreeSet::new();
        for c in self.state.codes.values().filter(|c| c.book_id == book) {
            t.codes += 1;
            t.redemptions += u64::from(c.redemptions);
            if c.voided_at.is_some() {
                t.void += 1;
            }
            match &c.owner {
                None if c.voided_at.is_none() => t.unowned += 1,
                None => {}
                Some(owner) => {
                    t.owned += 1;
                    users.insert(owner.as_str());
                    if c.voided_at.is_none() {
                        if c.redemptions >= max_redemptions {
                            t.used_up += 1;
                        } else if c.live_lock(now).is_some() {
                            t.locked += 1;
                        }
                    }
                }
            }
        }
        t.users = users.len() as u64;
        Ok(t)
    }

    fn code(&mut self, code: &str) -> Result<Option<CodeRecord>> {
        Ok(self.state.codes.get(code).cloned())
    }

    fn save_code(&mut self, code: &CodeRecord) -> Result<()> {
        self.put_code(code.clone());
        Ok(())
    }

    fn held_codes(&mut self, book: BookId, user: &str) -> Result<u32> {
        let state = &self.state;
        let held = state.owned.get(user).map_or(0, |codes| {
            codes
                .iter()
                .filter_map(|code| state.codes.get(code))
                .filter(|c| c.book_id == book && c.voided_at.is_none())
                .count()
        });
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    fn claim_random(&mut self, book: BookId) -> Result<Option<CodeRecord>> {
        let state = &self.state;
        Ok(state
            .available
            .get(&book)
            .and_then(Pool::pick)
            .and_then(|code| state.codes.get(code))
            .cloned())
    }

    fn add_codes(
        &mut self,
        book: BookId,
        codes: &[String],
        _now: Timestamp,
    ) -> Result<Vec<CodeFate>> {
        let mut fates = Vec::with_capacity(codes.len());
        for code in codes {
            let fate = match self.state.codes.get(code) {
                Some(c) if c.book_id == book => CodeFate::InBook,
                Some(c) => CodeFate::InOtherBook(c.book_id),
                None => {
                    self.put_code(CodeRecord::new(code.clone(), book));
                    CodeFate::Inserted
                }
            };
            fates.push(fate);
        }
        Ok(fates)
    }

    fn code_count(&mut self) -> Result<u64> {
        Ok(self.state.codes.len() as u64)
    }

    fn codes_after(
        &mut self,
        book: Option<BookId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CodeRecord>> {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        Ok(self
            .state
            .codes
            .range((start, Bound::Unbounded))
            .map(|(_, c)| c)
            .filter(|c| book.is_none_or(|b| c.book_id == b))
            .take(limit)
            .cloned()
            .collect())
    }

    fn user_codes(&mut self, user: &str, book: Option<BookId>) -> Result<Vec<CodeRecord>> {
        let state = &self.state;
        Ok(state
            .owned
            .get(user)
            .into_iter()
            .flatten()
            .filter_map(|code| state.codes.get(code))
            .filter(|c| book.is_none_or(|b| c.book_id == b))
            .cloned()
            .collect())
    }

    fn assignment_key(&mut self, book: BookId, user: &str, key: &str) -> Result<Option<String>> {
        Ok(self
            .state
            .keys
            .get(&(book, user.to_owned(), key.to_owned()))
            .cloned())
    }

    fn save_assignment_key(
        &mut self,
        book: BookId,
        user: &str,
        key: &str,
        code: &str,
    ) -> Result<()> {
        let k = (book, user.to_owned(), key.to_owned());
        if self.state.keys.insert(k.clone(), code.to_owned()).is_none() {
            self.undo.push(Undo::Key(k));
        }
        Ok(())
    }

    fn redemption(&mut self, code: &str, order_id: &str) -> Result<Option<Redemption>> {
        Ok(self
            .state
            .redemptions
            .get(&(code.to_owned(), order_id.to_owned()))
            .cloned())
    }

    fn record_redemption(&mut self, redemption: &Redemption, event: &NewEvent) -> Result<()> {
        // Only redemptions with an order id can be looked up; the others live in the events.
        if let Some(order) = &redemption.order_id {
            let k = (redemption.code.clone(), order.clone());
            self.state.redemptions.insert(k.clone(), redemption.clone());
            self.undo.push(Undo::Redemption(k));
        }
        self.append_event(event, redemption.redeemed_at)
    }

    fn append_event(&mut self, event: &NewEvent, at: Timestamp) -> Result<()> {
        let seq = self.state.events.last().map_or(1, |e| e.seq + 1);
        self.state
            .events
            .push(Event::from_new(seq, at, event.clone()));
        self.undo.push(Undo::Event);
        Ok(())
    }

    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let start = self.state.events.partition_point(|e| e.seq <= after);
        Ok(self.state.events[start..]
            .iter()
            .take(limit)
            .cloned()
            .collect())
    }

    fn insert_api_key(
        &mut self,
        name: Option<&str>,
        role: Role,
        hash: &str,
        now: Timestamp,
    ) -> Result<ApiKey> {
        let key = ApiKey {
            id: self.state.api_keys.last().map_or(1, |k| k.key.id + 1),
            name: name.map(str::to_owned),
            role,
            created_at: now,
            revoked_at: None,
        };
        self.state.api_keys.push(StoredApiKey {
            key: key.clone(),
            hash: hash.to_owned(),
        });
        self.undo
            .push(Undo::ApiKey(self.state.api_keys.len() - 1, None));
        Ok(key)
    }

    fn api_keys(&mut self) -> Result<Vec<StoredApiKey>> {
        Ok(self.state.api_keys.clone())
    }

    fn revoke_api_key(&mut self, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>> {
        let Some(i) = self.state.api_keys.iter().position(|k| k.key.id == id) else {
            return Ok(None);
        };
        let key = &mut self.state.api_keys[i].key;
        if key.revoked_at.is_none() {
            let old = key.clone();
            key.revoked_at = Some(now);
            let key = key.clone();
            self.undo.push(Undo::ApiKey(i, Some(old)));
            return Ok(Some(key));
        }
        Ok(Some(key.clone()))
    }
}
