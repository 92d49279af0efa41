-- Books, codes, idempotency keys, redemptions and the event log.
-- Times are microseconds since the Unix epoch (UTC).

CREATE TABLE books (
    id                       INTEGER PRIMARY KEY,
    name                     TEXT    NOT NULL,
    description              TEXT,
    valid_from               INTEGER,
    valid_until              INTEGER,
    max_redemptions_per_user INTEGER NOT NULL CHECK (max_redemptions_per_user >= 1),
    max_codes_per_user       INTEGER CHECK (max_codes_per_user >= 1),
    code_pattern             TEXT,
    lock_ttl_seconds         INTEGER NOT NULL,
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);

-- One row per code; the code itself is the key, so it is unique in the whole store.
CREATE TABLE codes (
    code            TEXT    NOT NULL PRIMARY KEY,
    book_id         INTEGER NOT NULL REFERENCES books (id),
    -- A random number fixed at insertion: random assignment seeks to a random slot in the
    -- index of available codes instead of scanning or sorting.
    slot            INTEGER NOT NULL,
    owner           TEXT,
    assigned_at     INTEGER,
    redemptions     INTEGER NOT NULL DEFAULT 0,
    lock_token      TEXT,
    lock_expires_at INTEGER,
    voided_at       INTEGER,
    created_at      INTEGER NOT NULL
) WITHOUT ROWID;

-- Export and statistics of one book.
CREATE INDEX codes_by_book ON codes (book_id, code);
-- Random assignment: only available codes are in it.
CREATE INDEX codes_available ON codes (book_id, slot)
    WHERE owner IS NULL AND voided_at IS NULL;
-- A user's codes, and the per-user cap.
CREATE INDEX codes_by_owner ON codes (owner, book_id) WHERE owner IS NOT NULL;

CREATE TABLE assignment_keys (
    book_id INTEGER NOT NULL REFERENCES books (id),
    user_id TEXT    NOT NULL,
    key     TEXT    NOT NULL,
    code    TEXT    NOT NULL REFERENCES codes (code),
    PRIMARY KEY (book_id, user_id, key)
) WITHOUT ROWID;

CREATE TABLE redemptions (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL REFERENCES codes (code),
    user_id     TEXT    NOT NULL,
    order_id    TEXT,
    context     TEXT,
    redeemed_at INTEGER NOT NULL,
    redemptions INTEGER NOT NULL,
    remaining   INTEGER NOT NULL,
    UNIQUE (code, order_id)
);

CREATE TABLE events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    book_id INTEGER NOT NULL,
    code    TEXT,
    user_id TEXT,
    data    TEXT    NOT NULL
);
