-- gold.bidder_analytics: one row per bidder active on `day`: who placed an
-- accepted bid that day, or took part in an auction that closed that day.
--
-- Definitions
--   bids                    = accepted bids placed on `day`.
--   auctions_entered        = distinct auctions the bidder bid on, on `day`.
--   auctions_closed_entered = auctions that closed on `day` in which the bidder
--                             placed at least one accepted bid (any day).
--   wins                    = of those, the successful auctions (winner and
--                             reserve met) the bidder won.
--   win_rate                = wins / auctions_closed_entered (0..1; null when
--                             no auction the bidder entered closed that day).
--   segment (activity on `day`):
--     'power'   at least 20 bids or at least 10 auctions entered
--     'regular' at least 5 bids
--     'casual'  1 to 4 bids
--     'passive' no bid that day (only an auction they entered closed)
--   new_user                = the account (silver.users.created_at) is less
--                             than 30 days old at the end of `day`.
WITH day_bids AS (
  SELECT b.* FROM bids b, params p WHERE b.placed_at >= p.day_start AND b.placed_at < p.day_end
),
activity AS (
  SELECT bidder_id, count(*) AS bids, count(DISTINCT auction_id) AS auctions_entered
  FROM day_bids GROUP BY bidder_id
),
closed_entered AS (
  SELECT DISTINCT b.bidder_id, t.auction_id,
    (t.winner_id = b.bidder_id AND t.reserve_met) AS won
  FROM transactions t JOIN bids b USING (auction_id)
),
outcome AS (
  SELECT bidder_id, count(*) AS auctions_closed_entered, count(*) FILTER (WHERE won) AS wins
  FROM closed_entered GROUP BY bidder_id
),
bidders AS (
  SELECT bidder_id FROM activity UNION SELECT bidder_id FROM outcome
)
SELECT
  p.day,
  x.bidder_id,
  coalesce(ac.bids, 0) AS bids,
  coalesce(ac.auctions_entered, 0) AS auctions_entered,
  coalesce(o.auctions_closed_entered, 0) AS auctions_closed_entered,
  coalesce(o.wins, 0) AS wins,
  CAST(o.wins / nullif(o.auctions_closed_entered, 0) AS DECIMAL(9, 6)) AS win_rate,
  CASE
    WHEN coalesce(ac.bids, 0) >= 20 OR coalesce(ac.auctions_entered, 0) >= 10 THEN 'power'
    WHEN coalesce(ac.bids, 0) >= 5 THEN 'regular'
    WHEN coalesce(ac.bids, 0) >= 1 THEN 'casual'
    ELSE 'passive'
  END AS segment,
  u.country,
  CASE WHEN u.created_at IS NULL THEN NULL ELSE u.created_at > p.day_end - INTERVAL 30 DAY END AS new_user
FROM bidders x
CROSS JOIN params p
LEFT JOIN activity ac USING (bidder_id)
LEFT JOIN outcome o USING (bidder_id)
LEFT JOIN users u ON u.user_id = x.bidder_id
ORDER BY x.bidder_id
