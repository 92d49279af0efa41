-- A redemption is stored once: as its `redeemed` event, which already holds its code, user,
-- time, order id, context and count. The event row gains the two columns a replayed redeem
-- needs besides: the order id, for its unique index, and the uses that were left. A redeem
-- then commits two pages (the code's and the log's last), not three.
--
-- `redemptions` becomes a view with the columns of the table it replaces.

ALTER TABLE events ADD COLUMN order_id TEXT;
ALTER TABLE events ADD COLUMN remaining INTEGER;

-- A code's count only grows, so (code, count) names one redemption and its event.
UPDATE events
SET order_id = r.order_id, remaining = r.remaining
FROM redemptions AS r
WHERE events.kind = 'redeemed'
  AND r.code = events.code
  AND r.redemptions = events.data ->> '$.redemptions';

DROP TABLE redemptions;

CREATE UNIQUE INDEX events_by_order ON events (code, order_id) WHERE order_id IS NOT NULL;

CREATE VIEW redemptions (id, code, user_id, order_id, context, redeemed_at, redemptions,
                         remaining) AS
    SELECT seq, code, user_id, order_id, nullif(data -> '$.context', 'null'), at,
           data ->> '$.redemptions', remaining
    FROM events
    WHERE kind = 'redeemed';
