-- Writers no longer take turns on the event counter, and the first steps of an operation take
-- one round trip each.
--
-- Events go to an outbox first. A writing transaction inserts its events into pending_events,
-- numbered by an identity (a sequence: nothing is locked until commit). Reading the log first
-- publishes them: coupon_publish_events() locks the one row of event_counter, then moves every
-- committed pending event into events, in the order of n, with the next consecutive seq. So seq
-- stays strictly increasing and without gaps, only committed events ever get one, and an event
-- that commits after a reader's cursor is published above it: a follower misses nothing.
-- An operation that waited for another's row lock (or began after it committed) appends its
-- events after that one committed: its n is larger, and it is published after it.
-- The identity must keep CACHE 1: cached blocks would number events out of the order they were
-- appended in.

CREATE TABLE pending_events (
    n       BIGINT      GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL,
    kind    TEXT        NOT NULL,
    book_id BIGINT      NOT NULL,
    code    TEXT,
    user_id TEXT,
    data    JSON        NOT NULL
);

-- Moves the committed pending events into the log and returns how many it moved. Each statement
-- of a PL/pgSQL function takes a fresh snapshot: the move, after the counter's lock is granted,
-- sees everything committed until then, including what the previous holder moved.
CREATE FUNCTION coupon_publish_events() RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    last_seq BIGINT;
    moved    BIGINT;
BEGIN
    IF NOT EXISTS (SELECT FROM pending_events) THEN
        RETURN 0;
    END IF;
    SELECT last INTO last_seq FROM event_counter FOR UPDATE;
    WITH taken AS (DELETE FROM pending_events RETURNING *)
    INSERT INTO events (seq, at, kind, book_id, code, user_id, data)
    SELECT last_seq + row_number() OVER (ORDER BY taken.n), taken.at, taken.kind,
           taken.book_id, taken.code, taken.user_id, taken.data
    FROM taken;
    GET DIAGNOSTICS moved = ROW_COUNT;
    IF moved > 0 THEN
        UPDATE event_counter SET last = last_seq + moved;
    END IF;
    RETURN moved;
END
$$;

-- What every operation on a code does first in a write transaction, in one call: lock the
-- code's row, then take its book's lock shared (the advisory lock that a change of the book's
-- settings takes exclusively), then read the book. The book is read by a statement of its own,
-- whose snapshot is taken once the lock is granted: it sees a change of settings it waited for
-- (one SQL statement would read with a snapshot from before the wait). No row when the code
-- does not exist (and then no book lock is taken).
CREATE FUNCTION coupon_lock_code(wanted TEXT, OUT c codes, OUT b books) RETURNS SETOF RECORD
LANGUAGE plpgsql AS $$
BEGIN
    SELECT * INTO c FROM codes WHERE codes.code = wanted FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1651470187,
        hashtext(current_schema() || '/' || c.book_id::text));
    SELECT * INTO b FROM books WHERE books.id = c.book_id;
    RETURN NEXT;
END
$$;

-- The book's lock shared, then the book, read by a statement of its own (as above).
CREATE FUNCTION coupon_share_book(wanted BIGINT) RETURNS SETOF books
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(1651470187,
        hashtext(current_schema() || '/' || wanted::text));
    RETURN QUERY SELECT * FROM books WHERE books.id = wanted;
END
$$;

-- Locks the (book, user) row of book_users, inserting it at the user's first time, then counts
-- the user's non-void codes of the book in a statement of its own: it sees everything committed
-- by the transactions that held the row before. A concurrent first insert of the same pair makes
-- the insert wait for it, then do nothing.
CREATE FUNCTION coupon_hold(wanted_book BIGINT, wanted_user TEXT) RETURNS BIGINT
LANGUAGE plpgsql AS $$
DECLARE
    held BIGINT;
BEGIN
    PERFORM FROM book_users
        WHERE book_users.book_id = wanted_book AND book_users.user_id = wanted_user FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO book_users (book_id, user_id) VALUES (wanted_book, wanted_user)
            ON CONFLICT (book_id, user_id) DO NOTHING;
        PERFORM FROM book_users
            WHERE book_users.book_id = wanted_book AND book_users.user_id = wanted_user
            FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'the holder row of book % was lost', wanted_book;
        END IF;
    END IF;
    SELECT count(*) INTO held FROM codes
        WHERE codes.owner = wanted_user AND codes.book_id = wanted_book
          AND codes.voided_at IS NULL;
    RETURN held;
END
$$;
