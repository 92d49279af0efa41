-- Fewer pages written by each redeem.
--
-- Events: `seq` is the rowid, one more than the largest; events are never deleted, so it
-- only grows, without AUTOINCREMENT's bookkeeping row being rewritten at every change.
-- Redemptions: (code, order_id) is unique only where there is an order id, so a redemption
-- without one does not touch that index.

CREATE TABLE events_next (
    seq     INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    kind    TEXT    NOT NULL,
    book_id INTEGER NOT NULL,
    code    TEXT,
    user_id TEXT,
    data    TEXT    NOT NULL
);
INSERT INTO events_next (seq, at, kind, book_id, code, user_id, data)
    SELECT seq, at, kind, book_id, code, user_id, data FROM events;
DROP TABLE events;
ALTER TABLE events_next RENAME TO events;

CREATE TABLE redemptions_next (
    id          INTEGER PRIMARY KEY,
    code        TEXT    NOT NULL REFERENCES codes (code),
    user_id     TEXT    NOT NULL,
    order_id    TEXT,
    context     TEXT,
    redeemed_at INTEGER NOT NULL,
    redemptions INTEGER NOT NULL,
    remaining   INTEGER NOT NULL
);
INSERT INTO redemptions_next (id, code, user_id, order_id, context, redeemed_at, redemptions,
                              remaining)
    SELECT id, code, user_id, order_id, context, redeemed_at, redemptions, remaining
    FROM redemptions;
DROP TABLE redemptions;
ALTER TABLE redemptions_next RENAME TO redemptions;
CREATE UNIQUE INDEX redemptions_by_order ON redemptions (code, order_id)
    WHERE order_id IS NOT NULL;
