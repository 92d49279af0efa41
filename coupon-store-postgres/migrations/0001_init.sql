-- Books, codes, per-user holders, idempotency keys, redemptions and the event log.
-- Times are timestamptz (microsecond precision, the precision the library keeps).
-- Codes, owners and keys are compared byte-wise (COLLATE "C"): code order is the same on every
-- server whatever its locale, and equal to the order of the other stores.

CREATE TABLE books (
    id                       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                     TEXT        NOT NULL,
    description              TEXT,
    valid_from               TIMESTAMPTZ,
    valid_until              TIMESTAMPTZ,
    max_redemptions_per_user BIGINT      NOT NULL CHECK (max_redemptions_per_user >= 1),
    max_codes_per_user       BIGINT      CHECK (max_codes_per_user >= 1),
    code_pattern             TEXT,
    lock_ttl_seconds         BIGINT      NOT NULL,
    created_at               TIMESTAMPTZ NOT NULL,
    updated_at               TIMESTAMPTZ NOT NULL
);

-- One row per code; the code itself is the key, so it is unique in the whole store.
CREATE TABLE codes (
    code            TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    book_id         BIGINT           NOT NULL REFERENCES books (id),
    -- A random number fixed at insertion: random assignment seeks to a random slot in the
    -- index of available codes instead of scanning or sorting.
    slot            BIGINT           NOT NULL,
    owner           TEXT COLLATE "C",
    assigned_at     TIMESTAMPTZ,
    redemptions     BIGINT           NOT NULL DEFAULT 0,
    lock_token      TEXT,
    lock_expires_at TIMESTAMPTZ,
    voided_at       TIMESTAMPTZ,
    created_at      TIMESTAMPTZ      NOT NULL
);

-- Export and statistics of one book.
CREATE INDEX codes_by_book ON codes (book_id, code);
-- Random assignment: only available codes are in it.
CREATE INDEX codes_available ON codes (book_id, slot)
    WHERE owner IS NULL AND voided_at IS NULL;
-- A user's codes, and the per-user cap.
CREATE INDEX codes_by_owner ON codes (owner, book_id) WHERE owner IS NOT NULL;

-- One row per (book, user) that ever asked for a code of the book: the row that is locked
-- (SELECT … FOR UPDATE) to serialize everything that counts the user's codes against the
-- per-user cap, including two first assignments at once, when no code row of the user exists.
CREATE TABLE book_users (
    book_id BIGINT           NOT NULL REFERENCES books (id),
    user_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (book_id, user_id)
);

CREATE TABLE assignment_keys (
    book_id BIGINT           NOT NULL REFERENCES books (id),
    user_id TEXT COLLATE "C" NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    code    TEXT COLLATE "C" NOT NULL REFERENCES codes (code),
    PRIMARY KEY (book_id, user_id, key)
);

CREATE TABLE redemptions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        TEXT COLLATE "C" NOT NULL REFERENCES codes (code),
    user_id     TEXT             NOT NULL,
    order_id    TEXT COLLATE "C",
    -- json, not jsonb: the caller's document is kept exactly as written.
    context     JSON,
    redeemed_at TIMESTAMPTZ      NOT NULL,
    redemptions BIGINT           NOT NULL,
    remaining   BIGINT           NOT NULL,
    UNIQUE (code, order_id)
);

-- The event log. `seq` is not a sequence: it comes from event_counter, whose one row each
-- appending transaction locks until it commits, so seq is given in commit order without gaps
-- and a reader following the log never skips an event that commits later with a smaller seq.
CREATE TABLE events (
    seq     BIGINT      NOT NULL PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL,
    kind    TEXT        NOT NULL,
    book_id BIGINT      NOT NULL,
    code    TEXT,
    user_id TEXT,
    data    JSON        NOT NULL
);

CREATE TABLE event_counter (
    only_row BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    last     BIGINT  NOT NULL
);
INSERT INTO event_counter (last) VALUES (0);
