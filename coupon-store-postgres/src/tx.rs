//! The storage primitives in SQL: [`PgTx`] implements [`StoreTx`] on one transaction.
//!
//! # Locks
//!
//! Write transactions run at READ COMMITTED and take explicit row locks, so every statement
//! after a lock sees what the previous holder committed:
//!
//! - [`StoreTx::code`] locks the code's row (`FOR UPDATE`): everything done to one code is
//!   serialized. In the same call (the function `coupon_lock_code`) it then takes the code's
//!   book's lock shared and reads the book, as [`StoreTx::book`] does: every operation on a code
//!   goes on to read its book.
//! - [`StoreTx::held_codes`] locks the (book, user) row of `book_users` (`FOR UPDATE`, after
//!   inserting it if it is the user's first time), then counts, in one call (`coupon_hold`):
//!   two first assignments of one user queue on that row although no code row of the user exists
//!   yet.
//! - [`StoreTx::claim_random`] takes the first available code at or after a random `slot`
//!   (wrapping around) in the partial index `codes_available`, `FOR UPDATE SKIP LOCKED`:
//!   concurrent claims take different codes without waiting for each other.
//! - [`StoreTx::book`] takes the book's lock in *shared* mode before reading it: a
//!   transaction-scoped advisory lock keyed by the schema and the book id
//!   (`pg_advisory_xact_lock_shared`), taken and followed by the read in one call
//!   (`coupon_share_book`). No other transaction can change the book's settings while an
//!   operation relies on them, yet operations on one book run side by side — an exclusive lock
//!   would queue every assignment of a campaign behind the others and behind any import. As no
//!   other transaction can change it until this one ends, a book read under its lock is
//!   remembered, and read again from the transaction's memory.
//!   [`StoreTx::update_book`] takes the same lock in exclusive mode before its `UPDATE`: it waits
//!   for the operations in flight, and the operations that arrive meanwhile queue behind it, so a
//!   change of settings is not starved by a busy campaign (Postgres queues advisory locks fairly,
//!   which row share locks are not). It waits at most [`BOOK_UPDATE_WAIT`] (a retryable
//!   `conflict` then), so that a change tried during a long import does not hold up the book's
//!   operations for long. Two changes of one book that meet holding the shared lock are an
//!   upgrade deadlock, which Postgres detects at once; the service retries the loser.
//! - In each of these calls, the read that follows a lock is a statement of its own (PL/pgSQL
//!   takes a fresh snapshot for each statement of a function): it sees what the previous
//!   holder committed. One SQL statement that took a lock and read would read with a snapshot
//!   from before it waited.
//! - [`StoreTx::append_event`] takes no lock: the event goes into the outbox `pending_events`,
//!   numbered by an identity. Reading the log ([`StoreTx::events`]) first publishes the
//!   committed pending events (`coupon_publish_events`): under the row lock of the one-row
//!   `event_counter`, it moves them into `events` in the order of their numbers, with the next
//!   consecutive `seq`. So `seq` is strictly increasing without gaps, only committed events
//!   have one, and an event that commits after a reader's cursor is published above it: a
//!   follower never misses one. An operation appends its events last, after its locks, so one
//!   that waited for another's lock, or began after it committed, is numbered and published
//!   after it. Only publishers take the counter's lock, and only for their own short
//!   transaction: writers do not take turns.
//!
//! Locks are always taken code → book (shared) → (book, user) (a random claim takes the book
//! and the (book, user) row first, but never waits for a code), so operations do not deadlock
//! each other; should Postgres still report a deadlock, a serialization failure or a lock
//! timeout, the error is a retryable `conflict`.
//!
//! Read transactions are `REPEATABLE READ READ ONLY`: every statement of one sees the same
//! snapshot (an export's pages, a book and its statistics), and they never take row locks.
//!
//! # Round trips
//!
//! A transaction begins on the server with its first statement. The writes whose result nothing
//! waits for — [`StoreTx::save_code`], [`StoreTx::record_redemption`],
//! [`StoreTx::append_event`], [`StoreTx::save_assignment_key`] — are deferred: kept as
//! `EXECUTE` statements (prepared once per connection with SQL `PREPARE`, their values written
//! as literals by [`crate::literal`]) and sent in one message with `COMMIT`, or, when another
//! statement comes first, in one message before it. A redeem of an assigned code is three round
//! trips: `START TRANSACTION`, the code with its book, and its three writes with `COMMIT`. An
//! error of a deferred write surfaces at that later round trip and fails the transaction as it
//! would have at once.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::time::Duration;

use coupon_core::apikey::{ApiKey, ApiKeyId, Role, StoredApiKey};
use coupon_core::store::{CodeFate, StoreTx, Tally};
use coupon_core::{
    Book, BookId, BookSettings, CodeRecord, Error, ErrorKind, Event, EventKind, Lock, NewEvent,
    Redemption, Result, Timestamp,
};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};

use crate::error::{self, classify, out_of_range};
use crate::literal::{push_execute, Lit};

/// One transaction of a [`PostgresStore`](crate::PostgresStore) on one pooled connection, with
/// the connection's prepared statements.
///
/// The transaction begins on the server with its first statement (so that a read of the event
/// log can publish pending events before its snapshot is taken), and it keeps the writes whose
/// result nothing waits for (see [`PgTx::defer`]) until the next statement or the commit.
/// Dropped without [`PgTx::commit`], it is rolled back.
pub(crate) struct PgTx<'c> {
    client: &'c mut Client,
    statements: &'c mut HashMap<&'static str, Statement>,
    /// The deferred writes prepared (SQL `PREPARE`) on this connection.
    prepared: &'c mut HashSet<&'static str>,
    /// Whether this is a write transaction (row locks are taken only in those).
    write: bool,
    /// Whether the transaction has begun on the server and not ended yet.
    begun: bool,
    /// Deferred writes: `EXECUTE …;` statements not sent yet.
    deferred: String,
    /// The books this write transaction holds the shared lock of, as it read them.
    books: Vec<Book>,
    /// Whether the staging table of bulk inserts exists in this transaction.
    staging: bool,
    /// Whether a staged batch of this transaction met a stored code: its later batches go
    /// straight to the careful insert (see [`StoreTx::add_codes`]).
    careful: bool,
    /// The `lock_timeout` for taking a book's lock exclusively, when shorter than the session's.
    book_update_wait: Option<&'c str>,
}

/// The longest a change of a book's settings waits for its exclusive lock. Operations that
/// arrive meanwhile queue behind it, so it must not wait long behind a long import.
pub(crate) const BOOK_UPDATE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Batches up to this size are inserted from arrays in one statement; larger ones are copied
/// (`COPY … FROM STDIN`) into a staging table first.
pub(crate) const COPY_THRESHOLD: usize = 64;

macro_rules! book_select {
    ($tail:literal) => {
        concat!(
            "SELECT id, name, description, valid_from, valid_until, max_redemptions_per_user, \
             max_codes_per_user, code_pattern, lock_ttl_seconds, created_at, updated_at \
             FROM books ",
            $tail
        )
    };
}

macro_rules! code_select {
    ($tail:literal) => {
        concat!(
            "SELECT code, book_id, owner, assigned_at, redemptions, lock_token, \
             lock_expires_at, voided_at FROM codes ",
            $tail
        )
    };
}

const INSERT_BOOK: &str = "INSERT INTO books (name, description, valid_from, valid_until, \
     max_redemptions_per_user, max_codes_per_user, code_pattern, lock_ttl_seconds, created_at, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id";
const BOOK: &str = book_select!("WHERE id = $1");
/// The book's lock, shared, then the book: what every write transaction does before it relies on
/// a book's settings.
const SHARE_BOOK: &str = "SELECT id, name, description, valid_from, valid_until, \
     max_redemptions_per_user, max_codes_per_user, code_pattern, lock_ttl_seconds, created_at, \
     updated_at FROM coupon_share_book($1)";
/// The book's lock, exclusive: taken to change the book's settings.
const LOCK_BOOK: &str = "SELECT pg_advisory_xact_lock($1, \
     hashtext(current_schema() || '/' || $2::bigint::text))";
const SET_LOCAL_LOCK_TIMEOUT: &str = "SELECT set_config('lock_timeout', $1, true)";
/// The first key of the books' advisory locks ("book").
const BOOK_LOCK_CLASS: i32 = 0x626f_6f6b;
const BOOKS: &str = book_select!("ORDER BY id");
const UPDATE_BOOK: &str = "UPDATE books SET name = $2, description = $3, valid_from = $4, \
     valid_until = $5, max_redemptions_per_user = $6, max_codes_per_user = $7, \
     code_pattern = $8, lock_ttl_seconds = $9, updated_at = $10 WHERE id = $1";
const TALLY: &str = "SELECT count(*), count(voided_at), \
     count(*) FILTER (WHERE owner IS NULL AND voided_at IS NULL), count(owner), \
     count(*) FILTER (WHERE voided_at IS NULL AND owner IS NOT NULL AND redemptions >= $2), \
     count(*) FILTER (WHERE voided_at IS NULL AND owner IS NOT NULL AND redemptions < $2 \
                      AND lock_expires_at > $3), \
     count(DISTINCT owner), coalesce(sum(redemptions), 0)::bigint \
     FROM codes WHERE book_id = $1";
const CODE: &str = code_select!("WHERE code = $1");
/// The code's row locked, its book's lock shared, and the book, in one call (columns: the code
/// as [`code_select!`], then the book as [`book_select!`]; no row for an unknown code).
const LOCK_CODE: &str = "SELECT (c).code, (c).book_id, (c).owner, (c).assigned_at, \
     (c).redemptions, (c).lock_token, (c).lock_expires_at, (c).voided_at, \
     (b).id, (b).name, (b).description, (b).valid_from, (b).valid_until, \
     (b).max_redemptions_per_user, (b).max_codes_per_user, (b).code_pattern, \
     (b).lock_ttl_seconds, (b).created_at, (b).updated_at \
     FROM coupon_lock_code($1)";
/// The (book, user) row locked (inserted first at the user's first time), then the count.
const HOLD: &str = "SELECT coupon_hold($1, $2)";
const HELD: &str = "SELECT count(*) FROM codes \
     WHERE owner = $2 AND book_id = $1 AND voided_at IS NULL";
/// The random claim: the first available code at or after a slot, skipping locked ones. Its plan
/// is an index scan of `codes_available` that stops at the first row it can lock.
pub(crate) const CLAIM_RANDOM: &str = code_select!(
    "WHERE book_id = $1 AND owner IS NULL AND voided_at IS NULL AND slot >= $2 \
     ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED"
);
const INSERT_CODES: &str = "INSERT INTO codes (code, book_id, slot, created_at) \
     SELECT c, $3, s, $4 FROM unnest($1::text[], $2::bigint[]) AS batch (c, s) \
     ORDER BY c COLLATE \"C\" \
     ON CONFLICT (code) DO NOTHING RETURNING code";
const CREATE_STAGING: &str = "CREATE TEMPORARY TABLE coupon_staging \
     (code text COLLATE \"C\" NOT NULL, slot bigint NOT NULL) ON COMMIT DROP";
const CLEAR_STAGING: &str = "TRUNCATE pg_temp.coupon_staging";
const COPY_STAGING: &str = "COPY pg_temp.coupon_staging (code, slot) FROM STDIN";
/// The optimistic insert of a staged batch: every code new, or a `unique_violation`.
const INSERT_STAGED_NEW: &str = "INSERT INTO codes (code, book_id, slot, created_at) \
     SELECT code, $1, slot, $2 FROM pg_temp.coupon_staging ORDER BY code";
/// The careful insert of a staged batch: skips the codes already stored, returns the others.
const INSERT_STAGED: &str = "INSERT INTO codes (code, book_id, slot, created_at) \
     SELECT code, $1, slot, $2 FROM pg_temp.coupon_staging ORDER BY code \
     ON CONFLICT (code) DO NOTHING RETURNING code";
const SAVEPOINT: &str = "SAVEPOINT coupon_batch";
const RELEASE: &str = "RELEASE SAVEPOINT coupon_batch";
const ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT coupon_batch; RELEASE SAVEPOINT coupon_batch";
const BOOKS_OF_CODES: &str = "SELECT code, book_id FROM codes WHERE code = ANY($1::text[])";
const CODE_COUNT: &str = "SELECT count(*) FROM codes";
const CODES_AFTER: &str = code_select!("WHERE code > $1 ORDER BY code LIMIT $2");
const BOOK_CODES_AFTER: &str =
    code_select!("WHERE book_id = $1 AND code > $2 ORDER BY code LIMIT $3");
const USER_CODES: &str = code_select!("WHERE owner = $1");
const USER_BOOK_CODES: &str = code_select!("WHERE owner = $1 AND book_id = $2");
const ASSIGNMENT_KEY: &str =
    "SELECT code FROM assignment_keys WHERE book_id = $1 AND user_id = $2 AND key = $3";
const REDEMPTION: &str = "SELECT code, user_id, order_id, context, redeemed_at, redemptions, \
     remaining FROM redemptions WHERE code = $1 AND order_id = $2";
/// Moves the committed pending events into the log (see migration 0003).
const PUBLISH_EVENTS: &str = "SELECT coupon_publish_events()";
const EVENTS: &str = "SELECT seq, at, kind, book_id, code, user_id, data FROM events \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

/// A write whose result nothing waits for: sent later as `EXECUTE name(…)` of a statement
/// prepared on the connection, with the commit or before the next statement.
struct Deferred {
    name: &'static str,
    prepare: &'static str,
}

const SAVE_CODE: Deferred = Deferred {
    name: "coupon_save_code",
    prepare: "PREPARE coupon_save_code \
         (text, text, timestamptz, bigint, text, timestamptz, timestamptz) AS \
         UPDATE codes SET owner = $2, assigned_at = $3, redemptions = $4, lock_token = $5, \
         lock_expires_at = $6, voided_at = $7 WHERE code = $1",
};
const SAVE_ASSIGNMENT_KEY: Deferred = Deferred {
    name: "coupon_save_assignment_key",
    prepare: "PREPARE coupon_save_assignment_key (bigint, text, text, text) AS \
         INSERT INTO assignment_keys (book_id, user_id, key, code) VALUES ($1, $2, $3, $4)",
};
const INSERT_REDEMPTION: Deferred = Deferred {
    name: "coupon_insert_redemption",
    prepare: "PREPARE coupon_insert_redemption \
         (text, text, text, json, timestamptz, bigint, bigint) AS \
         INSERT INTO redemptions (code, user_id, order_id, context, redeemed_at, redemptions, \
         remaining) VALUES ($1, $2, $3, $4, $5, $6, $7)",
};
/// An event into the outbox, numbered by its identity (see migration 0003).
const APPEND_EVENT: Deferred = Deferred {
    name: "coupon_append_event",
    prepare: "PREPARE coupon_append_event (timestamptz, text, bigint, text, text, json) AS \
         INSERT INTO pending_events (at, kind, book_id, code, user_id, data) \
         VALUES ($1, $2, $3, $4, $5, $6)",
};

/// Deferred writes are sent at once when their text grows past this (bytes), so that a large
/// operation (voiding many codes) does not build one huge message.
const DEFERRED_LIMIT: usize = 256 * 1024;

const BEGIN_WRITE: &str = "START TRANSACTION ISOLATION LEVEL READ COMMITTED";
const BEGIN_READ: &str = "START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY";

type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

pub(crate) fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T> {
    row.try_get(idx).map_err(classify)
}

/// A stored count or limit as the `u32` the library uses.
fn u32_of(row: &Row, idx: usize, what: &str) -> Result<u32> {
    let value: i64 = get(row, idx)?;
    u32::try_from(value).map_err(|_| out_of_range(what, value))
}

/// A stored count as `u64`.
fn u64_of(row: &Row, idx: usize, what: &str) -> Result<u64> {
    let value: i64 = get(row, idx)?;
    u64::try_from(value).map_err(|_| out_of_range(what, value))
}

fn book_row(row: &Row) -> Result<Book> {
    book_at(row, 0)
}

/// The book in the columns of `row` from `at` on, in the order of [`book_select!`].
fn book_at(row: &Row, at: usize) -> Result<Book> {
    let max_codes: Option<i64> = get(row, at + 6)?;
    let ttl: i64 = get(row, at + 8)?;
    Ok(Book {
        id: get(row, at)?,
        settings: BookSettings {
            name: get(row, at + 1)?,
            description: get(row, at + 2)?,
            valid_from: get(row, at + 3)?,
            valid_until: get(row, at + 4)?,
            max_redemptions_per_user: u32_of(row, at + 5, "max_redemptions_per_user")?,
            max_codes_per_user: max_codes
                .map(|v| u32::try_from(v).map_err(|_| out_of_range("max_codes_per_user", v)))
                .transpose()?,
            code_pattern: get(row, at + 7)?,
            lock_ttl: Duration::from_secs(
                u64::try_from(ttl).map_err(|_| out_of_range("lock_ttl_seconds", ttl))?,
            ),
        },
        created_at: get(row, at + 9)?,
        updated_at: get(row, at + 10)?,
    })
}

fn code_row(row: &Row) -> Result<CodeRecord> {
    let token: Option<String> = get(row, 5)?;
    let expires: Option<Timestamp> = get(row, 6)?;
    Ok(CodeRecord {
        code: get(row, 0)?,
        book_id: get(row, 1)?,
        owner: get(row, 2)?,
        assigned_at: get(row, 3)?,
        redemptions: u32_of(row, 4, "redemptions")?,
        lock: match (token, expires) {
            (Some(token), Some(expires_at)) => Some(Lock { token, expires_at }),
            _ => None,
        },
        voided_at: get(row, 7)?,
    })
}

/// A code as a field of `COPY … FROM STDIN` text format (normalized codes need no escaping, but
/// the store does not rely on it).
fn copy_field(out: &mut Vec<u8>, text: &str) {
    for b in text.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

impl<'c> PgTx<'c> {
    /// A transaction on `client`, not begun on the server yet.
    pub(crate) fn new(
        client: &'c mut Client,
        statements: &'c mut HashMap<&'static str, Statement>,
        prepared: &'c mut HashSet<&'static str>,
        write: bool,
        book_update_wait: Option<&'c str>,
    ) -> Self {
        PgTx {
            client,
            statements,
            prepared,
            write,
            begun: false,
            deferred: String::new(),
            books: vec![],
            staging: false,
            careful: false,
            book_update_wait,
        }
    }

    /// Commits: sends the deferred writes and `COMMIT` in one message. A transaction that never
    /// began has nothing to commit.
    ///
    /// # Errors
    /// The first deferred write's or the commit's error; the transaction is then rolled back.
    pub(crate) fn commit(&mut self) -> Result<()> {
        if !self.begun && self.deferred.is_empty() {
            return Ok(());
        }
        self.begin()?;
        let mut text = std::mem::take(&mut self.deferred);
        text.push_str("COMMIT");
        self.client.batch_execute(&text).map_err(classify)?;
        self.begun = false;
        Ok(())
    }

    /// Begins the transaction on the server, if it has not begun yet.
    fn begin(&mut self) -> Result<()> {
        if !self.begun {
            let begin = if self.write { BEGIN_WRITE } else { BEGIN_READ };
            self.client.batch_execute(begin).map_err(error::begin)?;
            self.begun = true;
        }
        Ok(())
    }

    /// Makes the transaction ready for a statement: begun, and the deferred writes sent.
    fn ready(&mut self) -> Result<()> {
        self.begin()?;
        if !self.deferred.is_empty() {
            let text = std::mem::take(&mut self.deferred);
            self.client.batch_execute(&text).map_err(classify)?;
        }
        Ok(())
    }

    /// Queues the write `what` with `args`, to be sent with the commit or before the next
    /// statement. Its errors (none is expected from these writes) surface then, and fail the
    /// transaction as they would have here.
    fn defer(&mut self, what: &Deferred, args: &[Lit<'_>]) -> Result<()> {
        if !self.prepared.contains(what.name) {
            // Once per connection, as a statement of its own: it succeeds whole or not at all.
            self.ready()?;
            self.client.batch_execute(what.prepare).map_err(classify)?;
            self.prepared.insert(what.name);
        }
        push_execute(&mut self.deferred, what.name, args)?;
        if self.deferred.len() > DEFERRED_LIMIT {
            self.ready()?;
        }
        Ok(())
    }

    /// The prepared statement for `sql`, prepared once per connection.
    fn statement(&mut self, sql: &'static str) -> Result<Statement> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).map_err(classify)?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) fn query(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<Row>> {
        self.ready()?;
        let statement = self.statement(sql)?;
        self.client.query(&statement, params).map_err(classify)
    }

    pub(crate) fn query_opt(
        &mut self,
        sql: &'static str,
        params: Params<'_>,
    ) -> Result<Option<Row>> {
        self.ready()?;
        let statement = self.statement(sql)?;
        self.client.query_opt(&statement, params).map_err(classify)
    }

    pub(crate) fn query_one(&mut self, sql: &'static str, params: Params<'_>) -> Result<Row> {
        self.ready()?;
        let statement = self.statement(sql)?;
        self.client.query_one(&statement, params).map_err(classify)
    }

    pub(crate) fn execute(&mut self, sql: &'static str, params: Params<'_>) -> Result<u64> {
        self.ready()?;
        let statement = self.statement(sql)?;
        self.client.execute(&statement, params).map_err(classify)
    }

    /// The book `id` as this write transaction read it under its shared lock, if it did.
    fn held_book(&self, id: BookId) -> Option<&Book> {
        self.books.iter().find(|b| b.id == id)
    }

    /// Remembers `book` as read under its lock (replacing an earlier read of it).
    fn hold_book(&mut self, book: Book) {
        self.books.retain(|b| b.id != book.id);
        self.books.push(book);
    }

    fn codes(&mut self, sql: &'static str, params: Params<'_>) -> Result<Vec<CodeRecord>> {
        self.query(sql, params)?.iter().map(code_row).collect()
    }

    /// Copies one batch into the staging table (`COPY … FROM STDIN`), created at the first batch
    /// of the transaction and emptied at the next ones. Statements on the staging table are not
    /// cached: the table is new in each transaction.
    fn stage(&mut self, codes: &[String], slots: &[i64]) -> Result<()> {
        self.ready()?;
        if self.staging {
            self.client.batch_execute(CLEAR_STAGING).map_err(classify)?;
        } else {
            self.client
                .batch_execute(CREATE_STAGING)
                .map_err(classify)?;
            self.staging = true;
        }
        let mut data = Vec::with_capacity(codes.len() * 32);
        for (code, slot) in codes.iter().zip(slots) {
            copy_field(&mut data, code);
            data.push(b'\t');
            data.extend_from_slice(slot.to_string().as_bytes());
            data.push(b'\n');
        }
        let mut writer = self.client.copy_in(COPY_STAGING).map_err(classify)?;
        if let Err(e) = writer.write_all(&data) {
            return Err(Error::backend(
                "cannot send codes to the Postgres database",
                e,
            ));
        }
        writer.finish().map_err(classify)?;
        Ok(())
    }

    /// Inserts the staged batch of `count` codes with a plain `INSERT` under a savepoint: `true`
    /// when it did (every code was new), `false` when a code was already stored
    /// (`unique_violation`: the batch is undone, the staging table keeps it, and the rest of the
    /// transaction is careful). Any other error is the transaction's.
    fn insert_staged_new(&mut self, book: BookId, now: Timestamp, count: usize) -> Result<bool> {
        self.ready()?;
        self.client.batch_execute(SAVEPOINT).map_err(classify)?;
        match self.client.execute(INSERT_STAGED_NEW, &[&book, &now]) {
            Ok(inserted) => {
                self.client.batch_execute(RELEASE).map_err(classify)?;
                if usize::try_from(inserted).ok() != Some(count) {
                    return Err(Error::new(
                        ErrorKind::Backend,
                        format!("the Postgres database inserted {inserted} of {count} codes"),
                    ));
                }
                Ok(true)
            }
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                self.client.batch_execute(ROLLBACK_TO).map_err(classify)?;
                self.careful = true;
                Ok(false)
            }
            Err(e) => Err(classify(e)),
        }
    }

    /// The fate of each of `codes`, in order, given the `inserted` ones (rows of `code`): the
    /// others are looked up to tell this book's from another's.
    fn fates(&mut self, book: BookId, codes: &[String], inserted: &[Row]) -> Result<Vec<CodeFate>> {
        let inserted: HashSet<String> = inserted
            .iter()
            .map(|row| get(row, 0))
            .collect::<Result<_>>()?;
        let rest: Vec<&str> = codes
            .iter()
            .filter(|c| !inserted.contains(c.as_str()))
            .map(String::as_str)
            .collect();
        let mut owners: HashMap<String, BookId> = HashMap::with_capacity(rest.len());
        if !rest.is_empty() {
            for row in self.query(BOOKS_OF_CODES, &[&rest])? {
                owners.insert(get(&row, 0)?, get(&row, 1)?);
            }
        }
        codes
            .iter()
            .map(|code| {
                if inserted.contains(code.as_str()) {
                    return Ok(CodeFate::Inserted);
                }
                match owners.get(code.as_str()) {
                    Some(&owner) if owner == book => Ok(CodeFate::InBook),
                    Some(&owner) => Ok(CodeFate::InOtherBook(owner)),
                    None => Err(Error::new(
                        ErrorKind::Backend,
                        format!("code {code} was neither inserted nor found"),
                    )),
                }
            })
            .collect()
    }
}

impl Drop for PgTx<'_> {
    /// Rolls back a transaction that began and was not committed (an error, or a panic). The
    /// outcome is ignored: a connection that cannot say ROLLBACK is closed, and the pool drops
    /// it.
    fn drop(&mut self) {
        if self.begun {
            let _ = self.client.batch_execute("ROLLBACK");
        }
    }
}

impl StoreTx for PgTx<'_> {
    fn insert_book(&mut self, s: &BookSettings, now: Timestamp) -> Result<Book> {
        let row = self.query_one(
            INSERT_BOOK,
            &[
                &s.name,
                &s.description,
                &s.valid_from,
                &s.valid_until,
                &i64::from(s.max_redemptions_per_user),
                &s.max_codes_per_user.map(i64::from),
                &s.code_pattern,
                &i64::try_from(s.lock_ttl.as_secs()).unwrap_or(i64::MAX),
                &now,
            ],
        )?;
        Ok(Book {
            id: get(&row, 0)?,
            settings: s.clone(),
            created_at: now,
            updated_at: now,
        })
    }

    fn book(&mut self, id: BookId) -> Result<Option<Book>> {
        if !self.write {
            return self
                .query_opt(BOOK, &[&id])?
                .as_ref()
                .map(book_row)
                .transpose();
        }
        // Under the book's shared lock, held to the end of the transaction, no other
        // transaction can change the book: a book read once is the book until then.
        if let Some(book) = self.held_book(id) {
            return Ok(Some(book.clone()));
        }
        // The lock first, then the read, in a statement of its own (inside the function):
        // its snapshot, taken when it starts, sees the last committed change. Not one
        // statement for both: its snapshot would be taken before it waited for the lock, and
        // miss the change it waited for.
        let book = self
            .query_opt(SHARE_BOOK, &[&id])?
            .as_ref()
            .map(book_row)
            .transpose()?;
        if let Some(book) = &book {
            self.hold_book(book.clone());
        }
        Ok(book)
    }

    fn books(&mut self) -> Result<Vec<Book>> {
        self.query(BOOKS, &[])?.iter().map(book_row).collect()
    }

    fn update_book(&mut self, b: &Book) -> Result<()> {
        if let Some(wait) = self.book_update_wait {
            self.execute(SET_LOCAL_LOCK_TIMEOUT, &[&wait])?;
        }
        self.execute(LOCK_BOOK, &[&BOOK_LOCK_CLASS, &b.id])?;
        let s = &b.settings;
        self.execute(
            UPDATE_BOOK,
            &[
                &b.id,
                &s.name,
                &s.description,
                &s.valid_from,
                &s.valid_until,
                &i64::from(s.max_redemptions_per_user),
                &s.max_codes_per_user.map(i64::from),
                &s.code_pattern,
                &i64::try_from(s.lock_ttl.as_secs()).unwrap_or(i64::MAX),
                &b.updated_at,
            ],
        )?;
        self.hold_book(b.clone());
        Ok(())
    }

    fn tally(&mut self, book: BookId, max_redemptions: u32, now: Timestamp) -> Result<Tally> {
        let row = self.query_one(TALLY, &[&book, &i64::from(max_redemptions), &now])?;
        Ok(Tally {
            codes: u64_of(&row, 0, "codes")?,
            void: u64_of(&row, 1, "void")?,
            unowned: u64_of(&row, 2, "unowned")?,
            owned: u64_of(&row, 3, "owned")?,
            used_up: u64_of(&row, 4, "used_up")?,
            locked: u64_of(&row, 5, "locked")?,
            users: u64_of(&row, 6, "users")?,
            redemptions: u64_of(&row, 7, "redemptions")?,
        })
    }

    /// In a write transaction, also takes the shared lock of the code's book and reads the
    /// book, in the same call: every operation on a code goes on to read its book, which
    /// [`StoreTx::book`] then answers without a round trip.
    fn code(&mut self, code: &str) -> Result<Option<CodeRecord>> {
        if !self.write {
            return self
                .query_opt(CODE, &[&code])?
                .as_ref()
                .map(code_row)
                .transpose();
        }
        let Some(row) = self.query_opt(LOCK_CODE, &[&code])? else {
            return Ok(None);
        };
        let record = code_row(&row)?;
        let book_id: Option<BookId> = get(&row, 8)?;
        if book_id.is_some() {
            self.hold_book(book_at(&row, 8)?);
        }
        Ok(Some(record))
    }

    /// Deferred: sent with the commit or before the next statement.
    fn save_code(&mut self, c: &CodeRecord) -> Result<()> {
        self.defer(
            &SAVE_CODE,
            &[
                Lit::Text(&c.code),
                Lit::opt_text(c.owner.as_deref()),
                Lit::opt_time(c.assigned_at),
                Lit::Int(i64::from(c.redemptions)),
                Lit::opt_text(c.lock.as_ref().map(|l| l.token.as_str())),
                Lit::opt_time(c.lock.as_ref().map(|l| l.expires_at)),
                Lit::opt_time(c.voided_at),
            ],
        )
    }

    fn held_codes(&mut self, book: BookId, user: &str) -> Result<u32> {
        // In a write transaction, one call locks the (book, user) row (creating it at the
        // user's first time), then counts in a statement of its own: at READ COMMITTED it sees
        // everything committed by the transactions that held the row before this one.
        let sql = if self.write { HOLD } else { HELD };
        let row = self.query_one(sql, &[&book, &user])?;
        let held: i64 = get(&row, 0)?;
        Ok(u32::try_from(held).unwrap_or(u32::MAX))
    }

    fn claim_random(&mut self, book: BookId) -> Result<Option<CodeRecord>> {
        let start: i64 = rand::random();
        if let Some(found) = self.codes(CLAIM_RANDOM, &[&book, &start])?.pop() {
            return Ok(Some(found));
        }
        // Past the last available slot: wrap around to the first.
        Ok(self.codes(CLAIM_RANDOM, &[&book, &i64::MIN])?.pop())
    }

    /// Small batches are inserted from arrays, skipping the codes already stored
    /// (`ON CONFLICT DO NOTHING RETURNING code`). Larger ones are staged and inserted
    /// optimistically, with a plain `INSERT` under a savepoint: every code counts as inserted,
    /// without the speculative insertion of `ON CONFLICT` or sending the codes back. A batch
    /// that meets a stored code is rolled back to the savepoint and inserted carefully from the
    /// staging table, like the small ones, and so is every later batch of the transaction (an
    /// import that meets stored codes is likely to meet more: each batch would fail once).
    fn add_codes(
        &mut self,
        book: BookId,
        codes: &[String],
        now: Timestamp,
    ) -> Result<Vec<CodeFate>> {
        if codes.is_empty() {
            return Ok(vec![]);
        }
        let slots: Vec<i64> = codes.iter().map(|_| rand::random()).collect();
        let inserted = if codes.len() <= COPY_THRESHOLD {
            self.query(INSERT_CODES, &[&codes, &slots, &book, &now])?
        } else {
            self.stage(codes, &slots)?;
            if !self.careful && self.insert_staged_new(book, now, codes.len())? {
                return Ok(vec![CodeFate::Inserted; codes.len()]);
            }
            self.ready()?;
            self.client
                .query(INSERT_STAGED, &[&book, &now])
                .map_err(classify)?
        };
        self.fates(book, codes, &inserted)
    }

    fn code_count(&mut self) -> Result<u64> {
        let row = self.query_one(CODE_COUNT, &[])?;
        u64_of(&row, 0, "code count")
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
            Some(book) => self.codes(BOOK_CODES_AFTER, &[&book, &after, &limit]),
            None => self.codes(CODES_AFTER, &[&after, &limit]),
        }
    }

    fn user_codes(&mut self, user: &str, book: Option<BookId>) -> Result<Vec<CodeRecord>> {
        match book {
            Some(book) => self.codes(USER_BOOK_CODES, &[&user, &book]),
            None => self.codes(USER_CODES, &[&user]),
        }
    }

    fn assignment_key(&mut self, book: BookId, user: &str, key: &str) -> Result<Option<String>> {
        self.query_opt(ASSIGNMENT_KEY, &[&book, &user, &key])?
            .map(|row| get(&row, 0))
            .transpose()
    }

    fn save_assignment_key(
        &mut self,
        book: BookId,
        user: &str,
        key: &str,
        code: &str,
    ) -> Result<()> {
        self.defer(
            &SAVE_ASSIGNMENT_KEY,
            &[
                Lit::Int(book),
                Lit::Text(user),
                Lit::Text(key),
                Lit::Text(code),
            ],
        )
    }

    fn redemption(&mut self, code: &str, order_id: &str) -> Result<Option<Redemption>> {
        let Some(row) = self.query_opt(REDEMPTION, &[&code, &order_id])? else {
            return Ok(None);
        };
        Ok(Some(Redemption {
            code: get(&row, 0)?,
            user_id: get(&row, 1)?,
            order_id: get(&row, 2)?,
            context: get(&row, 3)?,
            redeemed_at: get(&row, 4)?,
            redemptions: u32_of(&row, 5, "redemptions")?,
            remaining: u32_of(&row, 6, "remaining")?,
        }))
    }

    /// Deferred, both rows: sent with the commit or before the next statement.
    fn record_redemption(&mut self, x: &Redemption, event: &NewEvent) -> Result<()> {
        self.defer(
            &INSERT_REDEMPTION,
            &[
                Lit::Text(&x.code),
                Lit::Text(&x.user_id),
                Lit::opt_text(x.order_id.as_deref()),
                Lit::opt_json(x.context.as_ref()),
                Lit::Time(x.redeemed_at),
                Lit::Int(i64::from(x.redemptions)),
                Lit::Int(i64::from(x.remaining)),
            ],
        )?;
        self.append_event(event, x.redeemed_at)
    }

    /// Deferred, into the outbox: the event gets its `seq` when a reader of the log publishes
    /// it after this transaction commits.
    fn append_event(&mut self, e: &NewEvent, at: Timestamp) -> Result<()> {
        self.defer(
            &APPEND_EVENT,
            &[
                Lit::Time(at),
                Lit::Text(e.kind.as_str()),
                Lit::Int(e.book_id),
                Lit::opt_text(e.code.as_deref()),
                Lit::opt_text(e.user_id.as_deref()),
                Lit::Json(&e.data),
            ],
        )
    }

    /// Publishes the committed pending events first. In a read transaction that has not read
    /// yet, that is done in a transaction of its own before this one begins, so that this
    /// one's snapshot, taken by its first statement, sees them; a session that may not write
    /// reads what was published.
    fn events(&mut self, after: i64, limit: usize) -> Result<Vec<Event>> {
        if self.begun {
            if self.write {
                self.query_one(PUBLISH_EVENTS, &[])?;
            }
        } else {
            let statement = self.statement(PUBLISH_EVENTS)?;
            match self.client.query_one(&statement, &[]) {
                Ok(_) => {}
                // A read-only session (a standby, `default_transaction_read_only`) cannot
                // publish: it reads what was published.
                Err(e) if e.code() == Some(&SqlState::READ_ONLY_SQL_TRANSACTION) => {}
                Err(e) => return Err(error::begin(e)),
            }
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.query(EVENTS, &[&after, &limit])?
            .iter()
            .map(|row| {
                let kind: String = get(row, 2)?;
                Ok(Event {
                    seq: get(row, 0)?,
                    at: get(row, 1)?,
                    kind: EventKind::from_name(&kind).ok_or_else(|| {
                        Error::new(
                            ErrorKind::Backend,
                            format!("the event log holds an unknown event kind {kind:?}"),
                        )
                    })?,
                    book_id: get(row, 3)?,
                    code: get(row, 4)?,
                    user_id: get(row, 5)?,
                    data: get(row, 6)?,
                })
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
        self.insert_key(name, role, hash, now)
    }

    fn api_keys(&mut self) -> Result<Vec<StoredApiKey>> {
        self.keys()
    }

    fn revoke_api_key(&mut self, id: ApiKeyId, now: Timestamp) -> Result<Option<ApiKey>> {
        self.revoke_key(id, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_fields_are_escaped() {
        let mut out = vec![];
        copy_field(&mut out, "A-1\t\\\n\r");
        assert_eq!(out, b"A-1\\t\\\\\\n\\r");
    }
}
