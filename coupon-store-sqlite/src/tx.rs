//! The storage primitives in SQL: [`SqliteTx`] implements [`StoreTx`] on one transaction.

use std::time::Duration;

use coupon_core::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use coupon_core::store::{Access, CodeFate, StoreTx, Tally};
use coupon_core::{
    Book, BookId, BookSettings, CodeRecord, Error, Event, EventKind, Lock, NewEvent, Redemption,
    Result, Timestamp,
};
use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::apikeys;
use crate::error::classify;

/// One transaction of an [`SqliteStore`](crate::SqliteStore): the connection it runs on, inside
/// a [`Transaction`]. Write transactions begin with `BEGIN IMMEDIATE`: they hold the database's
/// write lock from the start, which is how every row "lock" of [`StoreTx`] is honoured.
pub(crate) struct SqliteTx<'c> {
    pub(crate) tx: &'c Connection,
    /// The code last read by [`StoreTx::code`] or [`StoreTx::code_and_book`], as stored, until
    /// it is saved: [`StoreTx::save_code`] then knows which columns change without asking.
    /// Nothing else can change the row meanwhile (a write transaction holds the write lock).
    loaded: Option<CodeRecord>,
}

impl<'c> SqliteTx<'c> {
    /// The primitives on a connection inside a transaction.
    pub(crate) fn new(tx: &'c Connection) -> Self {
        SqliteTx { tx, loaded: None }
    }
}

/// An open transaction on a connection, rolled back when dropped before [`Transaction::commit`]
/// (an error or a panic of the operation). `BEGIN` and `COMMIT` run as cached prepared
/// statements: `rusqlite::Transaction` parses them anew on every transaction.
pub(crate) struct Transaction<'c> {
    conn: &'c Connection,
}

impl<'c> Transaction<'c> {
    /// Begins a transaction: `BEGIN IMMEDIATE` for [`Access::Write`], a deferred `BEGIN` (a
    /// snapshot taken at the first read) for [`Access::Read`].
    pub(crate) fn begin(conn: &'c Connection, access: Access) -> rusqlite::Result<Self> {
        let sql = match access {
            Access::Write => "BEGIN IMMEDIATE",
            Access::Read => "BEGIN",
        };
        conn.prepare_cached(sql)?.execute([])?;
        Ok(Transaction { conn })
    }

    /// Commits. On failure the transaction is rolled back (when SQLite has not done so).
    pub(crate) fn commit(self) -> rusqlite::Result<()> {
        self.conn.prepare_cached("COMMIT")?.execute([]).map(drop)
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.conn.is_autocommit() {
            // As rusqlite's own transaction does: nothing can be done about a failure here,
            // and SQLite rolls back a transaction left open when the connection closes.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// The columns of a book, in the order of [`book_row`]. (Macros rather than constants, so that
/// each statement is one constant string: nothing is formatted per call.)
macro_rules! book_columns {
    () => {
        book_columns!("")
    };
    ($table:literal) => {
        concat!(
            $table,
            "id, ",
            $table,
            "name, ",
            $table,
            "description, ",
            $table,
            "valid_from, ",
            $table,
            "valid_until, ",
            $table,
            "max_redemptions_per_user, ",
            $table,
            "max_codes_per_user, ",
            $table,
            "code_pattern, ",
            $table,
            "lock_ttl_seconds, ",
            $table,
            "created_at, ",
            $table,
            "updated_at"
        )
    };
}
/// The columns of a code, in the order of [`code_row`].
macro_rules! code_columns {
    () => {
        "code, book_id, owner, assigned_at, redemptions, lock_token, lock_expires_at, voided_at"
    };
}
const BOOK: &str = concat!("SELECT ", book_columns!(), " FROM books WHERE id = ?1");
const BOOKS: &str = concat!("SELECT ", book_columns!(), " FROM books ORDER BY id");
const CODE: &str = concat!("SELECT ", code_columns!(), " FROM codes WHERE code = ?1");
/// A code and its book in one statement: the code's columns, then the book's (`NULL` if the
/// book were missing).
const CODE_AND_BOOK: &str = concat!(
    "SELECT ",
    code_columns!(),
    ", ",
    book_columns!("books."),
    " FROM codes LEFT JOIN books ON books.id = codes.book_id WHERE code = ?1"
);
const CODES_OF_BOOK_AFTER: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM codes WHERE book_id = ?1 AND code > ?2 ORDER BY code LIMIT ?3"
);
const CODES_AFTER: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM codes WHERE code > ?1 ORDER BY code LIMIT ?2"
);
const USER_CODES_OF_BOOK: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM codes WHERE owner = ?1 AND book_id = ?2"
);
const USER_CODES: &str = concat!("SELECT ", code_columns!(), " FROM codes WHERE owner = ?1");

const INSERT_BOOK: &str = "INSERT INTO books (name, description, valid_from, valid_until, \
     max_redemptions_per_user, max_codes_per_user, code_pattern, lock_ttl_seconds, created_at, \
     updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)";
const UPDATE_BOOK: &str = "UPDATE books SET name = ?2, description = ?3, valid_from = ?4, \
     valid_until = ?5, max_redemptions_per_user = ?6, max_codes_per_user = ?7, \
     code_pattern = ?8, lock_ttl_seconds = ?9, updated_at = ?10 WHERE id = ?1";
const TALLY: &str = "SELECT count(*), count(voided_at), \
     total(owner IS NULL AND voided_at IS NULL), count(owner), \
     total(voided_at IS NULL AND owner IS NOT NULL AND redemptions >= ?2), \
     total(voided_at IS NULL AND owner IS NOT NULL AND redemptions < ?2 AND lock_expires_at > ?3), \
     count(DISTINCT owner), total(redemptions) \
     FROM codes WHERE book_id = ?1";
const SAVE_CODE: &str = "UPDATE codes SET owner = ?2, assigned_at = ?3, redemptions = ?4, \
     lock_token = ?5, lock_expires_at = ?6, voided_at = ?7 WHERE code = ?1";
/// [`SAVE_CODE`] for a code whose owner, assignment and void time stay as stored (a lock, an
/// unlock, a redeem): it sets no indexed column, so SQLite rewrites no index entry, and it
/// changes nothing (0 rows) when one of them differs.
const SAVE_CODE_STATE: &str = "UPDATE codes SET redemptions = ?4, lock_token = ?5, \
     lock_expires_at = ?6 WHERE code = ?1 AND owner IS ?2 AND assigned_at IS ?3 \
     AND voided_at IS ?7";
/// [`SAVE_CODE_STATE`] for a code read in this transaction, whose owner, assignment and void
/// time are known to stay as stored: no guard.
const SAVE_LOCK_AND_COUNT: &str =
    "UPDATE codes SET redemptions = ?2, lock_token = ?3, lock_expires_at = ?4 WHERE code = ?1";
/// The same when only the count changes (a redeem of a code without a live lock).
const SAVE_COUNT: &str = "UPDATE codes SET redemptions = ?2 WHERE code = ?1";
const HELD: &str = "SELECT count(*) FROM codes \
     WHERE owner = ?2 AND book_id = ?1 AND voided_at IS NULL";
/// The first available code of a book (`?1`) at or after a slot (`?2`), from the partial
/// index `codes_available`.
const CLAIM: &str = concat!(
    "SELECT ",
    code_columns!(),
    " FROM codes WHERE book_id = ?1 AND owner IS NULL AND voided_at IS NULL \
     AND slot >= ?2 ORDER BY slot LIMIT 1"
);
/// The lowest and highest slot of a book's available codes: two seeks in the index.
const SLOT_RANGE: &str = "SELECT \
     (SELECT slot FROM codes WHERE book_id = ?1 AND owner IS NULL AND voided_at IS NULL \
      ORDER BY slot LIMIT 1), \
     (SELECT slot FROM codes WHERE book_id = ?1 AND owner IS NULL AND voided_at IS NULL \
      ORDER BY slot DESC LIMIT 1)";
/// Inserts the codes of a JSON array (`?1`), distinct and in order, numbering their slots
/// from `?3 + 1`, and returns those that were new to the store.
const INSERT_CODES: &str = "INSERT INTO codes (code, book_id, slot, created_at) \
     SELECT value, ?2, ?3 + key + 1, ?4 FROM json_each(?1) WHERE true \
     ON CONFLICT (code) DO NOTHING RETURNING code";
const BOOK_OF_CODE: &str = "SELECT book_id FROM codes WHERE code = ?1";
const ASSIGNMENT_KEY: &str =
    "SELECT code FROM assignment_keys WHERE book_id = ?1 AND user_id = ?2 AND key = ?3";
const SAVE_ASSIGNMENT_KEY: &str =
    "INSERT INTO assignment_keys (book_id, user_id, key, code) VALUES (?1, ?2, ?3, ?4)";
const REDEMPTION: &str = "SELECT code, user_id, order_id, context, redeemed_at, redemptions, \
     remaining FROM redemptions WHERE code = ?1 AND order_id = ?2";
/// A redemption is its `redeemed` event, with the order id and the uses left as columns (the
/// view `redemptions` reads them back).
const RECORD_REDEMPTION: &str = "INSERT INTO events (at, kind, book_id, code, user_id, data, \
     order_id, remaining) VALUES (?1, 'redeemed', ?2, ?3, ?4, ?5, ?6, ?7)";
const APPEND_EVENT: &str = "INSERT INTO events (at, kind, book_id, code, user_id, data) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const EVENTS: &str = "SELECT seq, at, kind, book_id, code, user_id, data FROM events \
     WHERE seq > ?1 ORDER BY seq LIMIT ?2";

/// Microseconds since the epoch: how times are stored.
pub(crate) fn micros(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

pub(crate) fn time(micros: i64) -> rusqlite::Result<Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros)
        .ok_or(rusqlite::Error::IntegralValueOutOfRange(0, micros))
}

pub(crate) fn opt_time(micros: Option<i64>) -> rusqlite::Result<Option<Timestamp>> {
    micros.map(time).transpose()
}

fn book_row(r: &Row<'_>) -> rusqlite::Result<Book> {
    book_at(r, 0)
}

/// The book whose [`book_columns!`] start at column `at`.
fn book_at(r: &Row<'_>, at: usize) -> rusqlite::Result<Book> {
    Ok(Book {
        id: r.get(at)?,
        settings: BookSettings {
            name: r.get(at + 1)?,
            description: r.get(at + 2)?,
            valid_from: opt_time(r.get(at + 3)?)?,
            valid_until: opt_time(r.get(at + 4)?)?,
            max_redemptions_per_user: r.get(at + 5)?,
            max_codes_per_user: r.get(at + 6)?,
            code_pattern: r.get(at + 7)?,
            lock_ttl: Duration::from_secs(r.get::<_, i64>(at + 8)?.unsigned_abs()),
        },
        created_at: time(r.get(at + 9)?)?,
        updated_at: time(r.get(at + 10)?)?,
    })
}

/// The number of [`code_columns!`].
const CODE_COLUMN_COUNT: usize = 8;

fn code_row(r: &Row<'_>) -> rusqlite::Result<CodeRecord> {
    let token: Option<String> = r.get(5)?;
    let expires: Option<i64> = r.get(6)?;
    Ok(CodeRecord {
        code: r.get(0)?,
        book_id: r.get(1)?,
        owner: r.get(2)?,
        assigned_at: opt_time(r.get(3)?)?,
        redemptions: r.get(4)?,
        lock: match (token, expires) {
            (Some(token), Some(expires)) => Some(Lock {
                token,
                expires_at: time(expires)?,
            }),
            _ => None,
        },
        voided_at: opt_time(r.get(7)?)?,
    })
}

fn json_text(value: &serde_json::Value) -> String {
    // Straight into a buffer: `Display` (`to_string()`) goes through the formatting machinery.
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
}

fn json_value(text: &str) -> rusqlite::Result<serde_json::Value> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl SqliteTx<'_> {
    fn codes(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<CodeRecord>> {
        let mut stmt = self.tx.prepare_cached(sql).map_err(classify)?;
        let rows = stmt.query_map(params, code_row).map_err(classify)?;
        rows.collect::<rusqlite::Result<_>>().map_err(classify)
    }
}

impl StoreTx for SqliteTx<'_> {
    fn insert_book(&mut self, s: &BookSettings, now: Timestamp) -> Result<Book> {
        self.tx
            .prepare_cached(INSERT_BOOK)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    s.name,
                    s.description,
                    s.valid_from.map(micros),
                    s.valid_until.map(micros),
                    s.max_redemptions_per_user,
                    s.max_codes_per_user,
                    s.code_pattern,
                    s.lock_ttl.as_secs() as i64,
                    micros(now),
                ])
            })
            .map_err(classify)?;
        Ok(Book {
            id: self.tx.last_insert_rowid(),
            settings: s.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    fn book(&mut self, id: BookId) -> Result<Option<Book>> {
        self.tx
            .prepare_cached(BOOK)
            .and_then(|mut stmt| stmt.query_row([id], book_row).optional())
            .map_err(classify)
    }

    fn books(&mut self) -> Result<Vec<Book>> {
        let mut stmt = self.tx.prepare_cached(BOOKS).map_err(classify)?;
        let rows = stmt.query_map([], book_row).map_err(classify)?;
        rows.collect::<rusqlite::Result<_>>().map_err(classify)
    }

    fn update_book(&mut self, b: &Book) -> Result<()> {
        let s = &b.settings;
        self.tx
            .prepare_cached(UPDATE_BOOK)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    b.id,
                    s.name,
                    s.description,
                    s.valid_from.map(micros),
                    s.valid_until.map(micros),
                    s.max_redemptions_per_user,
                    s.max_codes_per_user,
                    s.code_pattern,
                    s.lock_ttl.as_secs() as i64,
                    micros(b.updated_at),
                ])
            })
            .map(drop)
            .map_err(classify)
    }

    fn tally(&mut self, book: BookId, max_redemptions: u32, now: Timestamp) -> Result<Tally> {
        self.tx
            .prepare_cached(TALLY)
            .and_then(|mut stmt| {
                stmt.query_row(params![book, max_redemptions, micros(now)], |r| {
                    // total() is a float; every value here is a count far below 2^53.
                    let n = |i| r.get::<_, f64>(i).map(|v| v as u64);
                    let count = |i| r.get::<_, i64>(i).map(i64::unsigned_abs);
                    Ok(Tally {
                        codes: count(0)?,
                        void: count(1)?,
                        unowned: n(2)?,
                        owned: count(3)?,
                        used_up: n(4)?,
                        locked: n(5)?,
                        users: count(6)?,
                        redemptions: n(7)?,
                    })
                })
            })
            .map_err(classify)
    }

    fn code(&mut self, code: &str) -> Result<Option<CodeRecord>> {
        let found = self
            .tx
            .prepare_cached(CODE)
            .and_then(|mut stmt| stmt.query_row([code], code_row).optional())
            .map_err(classify)?;
        self.loaded.clone_from(&found);
        Ok(found)
    }

    fn code_and_book(&mut self, code: &str) -> Result<Option<(CodeRecord, Option<Book>)>> {
        let found = self
            .tx
            .prepare_cached(CODE_AND_BOOK)
            .and_then(|mut stmt| {
                stmt.query_row([code], |r| {
                    let book = match r.get_ref(CODE_COLUMN_COUNT)? {
                        rusqlite::types::ValueRef::Null => None,
                        _ => Some(book_at(r, CODE_COLUMN_COUNT)?),
                    };
                    Ok((code_row(r)?, book))
                })
                .optional()
            })
            .map_err(classify)?;
        self.loaded = found.as_ref().map(|(code, _)| code.clone());
        Ok(found)
    }

    fn save_code(&mut self, c: &CodeRecord) -> Result<()> {
        // When this transaction read the code, only the columns that change are set (the
        // fewer values bound, the less work) and no guard is needed.
        let stored = self.loaded.take().filter(|l| l.code == c.code);
        if let Some(stored) = stored.filter(|l| {
            (&l.owner, l.assigned_at, l.voided_at) == (&c.owner, c.assigned_at, c.voided_at)
        }) {
            let saved = if stored.lock == c.lock {
                self.tx
                    .prepare_cached(SAVE_COUNT)
                    .and_then(|mut stmt| stmt.execute(params![c.code, c.redemptions]))
            } else {
                self.tx
                    .prepare_cached(SAVE_LOCK_AND_COUNT)
                    .and_then(|mut stmt| {
                        stmt.execute(params![
                            c.code,
                            c.redemptions,
                            c.lock.as_ref().map(|l| &l.token),
                            c.lock.as_ref().map(|l| micros(l.expires_at)),
                        ])
                    })
            };
            if saved.map_err(classify)? == 1 {
                return Ok(());
            }
        }
        let values = params![
            c.code,
            c.owner,
            c.assigned_at.map(micros),
            c.redemptions,
            c.lock.as_ref().map(|l| &l.token),
            c.lock.as_ref().map(|l| micros(l.expires_at)),
            c.voided_at.map(micros),
        ];
        let mut state = self.tx.prepare_cached(SAVE_CODE_STATE).map_err(classify)?;
        if state.execute(values).map_err(classify)? == 1 {
            return Ok(());
        }
        self.tx
            .prepare_cached(SAVE_CODE)
            .and_then(|mut stmt| stmt.execute(values))
            .map(drop)
            .map_err(classify)
    }

    fn held_codes(&mut self, book: BookId, user: &str) -> Result<u32> {
        self.tx
            .prepare_cached(HELD)
            .and_then(|mut stmt| stmt.query_row(params![book, user], |r| r.get(0)))
            .map_err(classify)
    }

    fn claim_random(&mut self, book: BookId) -> Result<Option<CodeRecord>> {
        let (low, high): (Option<i64>, Option<i64>) = self
            .tx
            .prepare_cached(SLOT_RANGE)
            .and_then(|mut stmt| stmt.query_row([book], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(classify)?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(None);
        };
        // Slots are numbered in insertion order, so a uniform point between the lowest and
        // the highest available slot picks a code at random (weighted by the gap before it,
        // which assignments open).
        let point = rand::random_range(low..=high);
        self.codes(CLAIM, params![book, point])
            .map(|mut found| found.pop())
    }

    fn add_codes(
        &mut self,
        book: BookId,
        codes: &[String],
        now: Timestamp,
    ) -> Result<Vec<CodeFate>> {
        if codes.is_empty() {
            return Ok(Vec::new());
        }
        // One statement for the whole batch, in code order (each page of the code indexes is
        // then touched once per batch rather than once per code). New codes take the slots
        // after the book's highest available one, so the index of available codes grows at
        // its end instead of at random places.
        let base: i64 = self
            .tx
            .prepare_cached(SLOT_RANGE)
            .and_then(|mut stmt| stmt.query_row([book], |r| r.get::<_, Option<i64>>(1)))
            .map_err(classify)?
            .unwrap_or(0);
        let mut sorted: Vec<&str> = codes.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let json = serde_json::Value::from(sorted).to_string();
        let mut inserted: Vec<String> = self
            .tx
            .prepare_cached(INSERT_CODES)
            .and_then(|mut stmt| {
                stmt.query_map(params![json, book, base, micros(now)], |r| r.get(0))?
                    .collect()
            })
            .map_err(classify)?;
        if inserted.len() == codes.len() {
            return Ok(vec![CodeFate::Inserted; codes.len()]);
        }
        // Some were in the store already: tell which, and where.
        inserted.sort_unstable();
        let mut lookup = self.tx.prepare_cached(BOOK_OF_CODE).map_err(classify)?;
        codes
            .iter()
            .map(|code| {
                if inserted.binary_search(code).is_ok() {
                    return Ok(CodeFate::Inserted);
                }
                let owner: BookId = lookup.query_row([code], |r| r.get(0))?;
                Ok(if owner == book {
                    CodeFate::InBook
                } else {
                    CodeFate::InOtherBook(owner)
                })
            })
            .collect::<rusqlite::Result<_>>()
            .map_err(classify)
    }

    fn code_count(&mut self) -> Result<u64> {
        self.tx
            .query_row("SELECT count(*) FROM codes", [], |r| r.get::<_, i64>(0))
            .map(i64::unsigned_abs)
            .map_err(classify)
    }

    fn codes_after(
        &mut self,
        book: Option<BookId>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CodeRecord>> {
        let after = after.unwrap_or("");
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        match book {
            Some(book) => self.codes(CODES_OF_BOOK_AFTER, params![book, after, limit]),
            None => self.codes(CODES_AFTER, params![after, limit]),
        }
    }

    fn user_codes(&mut self, user: &str, book: Option<BookId>) -> Result<Vec<CodeRecord>> {
        match book {
            Some(book) => self.codes(USER_CODES_OF_BOOK, params![user, book]),
            None => self.codes(USER_CODES, params![user]),
        }
    }

    fn assignment_key(&mut self, book: BookId, user: &str, key: &str) -> Result<Option<String>> {
        self.tx
            .prepare_cached(ASSIGNMENT_KEY)
            .and_then(|mut stmt| {
                stmt.query_row(params![book, user, key], |r| r.get(0))
                    .optional()
            })
            .map_err(classify)
    }

    fn save_assignment_key(
        &mut self,
        book: BookId,
        user: &str,
        key: &str,
        code: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(SAVE_ASSIGNMENT_KEY)
            .and_then(|mut stmt| stmt.execute(params![book, user, key, code]))
            .map(drop)
            .map_err(classify)
    }

    fn redemption(&mut self, code: &str, order_id: &str) -> Result<Option<Redemption>> {
        self.tx
            .prepare_cached(REDEMPTION)
            .and_then(|mut stmt| {
                stmt.query_row(params![code, order_id], |r| {
                    let context: Option<String> = r.get(3)?;
                    Ok(Redemption {
                        code: r.get(0)?,
                        user_id: r.get(1)?,
                        order_id: r.get(2)?,
                        context: context.as_deref().map(json_value).transpose()?,
                        redeemed_at: time(r.get(4)?)?,
                        redemptions: r.get(5)?,
                        remaining: r.get(6)?,
                    })
                })
                .optional()
            })
            .map_err(classify)
    }

    fn record_redemption(&mut self, x: &Redemption, event: &NewEvent) -> Result<()> {
        debug_assert_eq!(event.kind, EventKind::Redeemed);
        debug_assert_eq!(event.code.as_deref(), Some(x.code.as_str()));
        debug_assert_eq!(event.user_id.as_deref(), Some(x.user_id.as_str()));
        self.tx
            .prepare_cached(RECORD_REDEMPTION)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    micros(x.redeemed_at),
                    event.book_id,
                    x.code,
                    x.user_id,
                    json_text(&event.data),
                    x.order_id,
                    x.remaining,
                ])
            })
            .map(drop)
            .map_err(classify)
    }

    fn append_event(&mut self, e: &NewEvent, at: Timestamp) -> Result<()> {
        self.tx
            .prepare_cached(APPEND_EVENT)
            .and_then(|mut stmt| {
                stmt.execute(params![
                    micros(at),
                    e.kind.as_str(),
                    e.book_id,
                    e.code,
                    e.user_id,
                    json_text(&e.data),
                ])
            })
            .map(drop)
            .map_err(classify)
    }

    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<Event>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self.tx.prepare_cached(EVENTS).map_err(classify)?;
        let rows = stmt
            .query_map(params![after, limit], |r| {
                let kind: String = r.get(2)?;
                let data: String = r.get(6)?;
                Ok((
                    Event {
                        seq: r.get(0)?,
                        at: time(r.get(1)?)?,
                        kind: EventKind::BookCreated,
                        book_id: r.get(3)?,
                        code: r.get(4)?,
                        user_id: r.get(5)?,
                        data: json_value(&data)?,
                    },
                    kind,
                ))
            })
            .map_err(classify)?;
        rows.map(|row| {
            let (mut event, kind) = row.map_err(classify)?;
            event.kind = EventKind::from_name(&kind).ok_or_else(|| {
                Error::new(
                    coupon_core::ErrorKind::Backend,
                    format!("the event log holds an unknown event kind {kind:?}"),
                )
            })?;
            Ok(event)
        })
        .collect()
    }

    fn insert_api_key(
        &mut self,
        name: Option<&str>,
        role: Role,
        hash: &str,
        now: Timestamp,
    ) -> Result<ApiKey> {
        apikeys::insert(self.tx, name, role, hash, now)
    }

    fn api_keys(&mut self) -> Result<Vec<StoredApiKey>> {
        apikeys::all(self.tx)
    }

    fn revoke_api_key(&mut self, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>> {
        apikeys::revoke(self.tx, id, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random assignment costs a few seeks in the index of available codes, and a replayed
    /// redeem one seek in the index of order ids, whatever the number of rows: no scan, no
    /// sort.
    #[test]
    fn lookups_seek_their_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("coupons.db");
        drop(crate::SqliteStore::open(&path).unwrap());
        let conn = rusqlite::Connection::open(&path).unwrap();
        for (sql, index) in [
            (SLOT_RANGE.to_owned(), "codes_available"),
            (CLAIM.to_owned(), "codes_available"),
            (REDEMPTION.to_owned(), "events_by_order"),
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let ones = std::iter::repeat_n(1i64, stmt.parameter_count());
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(ones), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<std::result::Result<_, _>>()
                .unwrap();
            let plan = plan.join(" | ");
            assert!(plan.contains(&format!("INDEX {index}")), "{plan}");
            assert!(!plan.contains("SCAN codes"), "no scan: {plan}");
            assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
        }
    }
}

#[cfg(test)]
mod code_tests {
    use coupon_core::store::{Access, CouponStore, StoreTx};
    use coupon_core::testing::rows;
    use coupon_core::{BookSettings, Coupons, Lock};

    /// One statement reads what `code` and then `book` read; an unknown code is `None`.
    #[test]
    fn code_and_book_reads_what_code_and_book_read() {
        let coupons = Coupons::new(crate::SqliteStore::memory().unwrap());
        let book = coupons
            .create_book(&BookSettings {
                description: Some("both".into()),
                code_pattern: Some("A-[0-9]".into()),
                ..BookSettings::new("Joined")
            })
            .unwrap();
        coupons
            .import_codes(book.id, rows(&["A-1"]), false)
            .unwrap();
        coupons.lock("A-1", "u", None, None).unwrap();
        coupons
            .store()
            .transaction(Access::Write, |tx: &mut dyn StoreTx| {
                let separate = (tx.code("A-1")?.unwrap(), tx.book(book.id)?);
                let (record, joined) = tx.code_and_book("A-1")?.unwrap();
                assert!(record.lock.is_some() && record.owner.as_deref() == Some("u"));
                assert_eq!((record, joined), separate);
                assert!(tx.code_and_book("A-2")?.is_none());
                Ok(())
            })
            .unwrap();
    }

    /// Each way `save_code` can take stores exactly the record given: a code read in the
    /// transaction with only its count changed, with its lock changed, with its owner changed,
    /// and a code saved without being read first, or after another code was read.
    #[test]
    fn save_code_stores_the_record_whichever_statement_it_picks() {
        let coupons = Coupons::new(crate::SqliteStore::memory().unwrap());
        let book = coupons.create_book(&BookSettings::new("Saved")).unwrap();
        coupons
            .import_codes(book.id, rows(&["A-1", "A-2"]), false)
            .unwrap();
        coupons.assign_code("A-1", "u").unwrap();
        let now = coupons.now();
        coupons
            .store()
            .transaction(Access::Write, |tx: &mut dyn StoreTx| {
                // Only the count.
                let mut a = tx.code("A-1")?.unwrap();
                a.redemptions += 1;
                tx.save_code(&a)?;
                assert_eq!(tx.code("A-1")?.as_ref(), Some(&a));
                // The lock and the count.
                a.redemptions += 1;
                a.lock = Some(Lock {
                    token: "t".into(),
                    expires_at: now,
                });
                tx.save_code(&a)?;
                assert_eq!(tx.code_and_book("A-1")?.map(|(c, _)| c).as_ref(), Some(&a));
                // The owner.
                a.owner = Some("v".into());
                a.lock = None;
                tx.save_code(&a)?;
                // Saved again without being read again, then after another code was read.
                a.redemptions += 1;
                tx.save_code(&a)?;
                assert_eq!(tx.code("A-1")?.as_ref(), Some(&a));
                let mut b = tx.code("A-2")?.unwrap();
                a.redemptions += 1;
                tx.save_code(&a)?;
                b.owner = Some("u".into());
                b.assigned_at = Some(now);
                tx.save_code(&b)?;
                assert_eq!(tx.code("A-1")?.as_ref(), Some(&a));
                assert_eq!(tx.code("A-2")?.as_ref(), Some(&b));
                Ok(())
            })
            .unwrap();
    }
}
