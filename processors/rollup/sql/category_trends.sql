-- gold.category_trends: activity per category on `day` (one row for every
-- category with any auction started, closed, bid on or rejected bid that day).
--
-- Definitions
--   auctions_started            = auctions whose starts_at is on `day`.
--   auctions_closed             = auctions whose transaction closed on `day`.
--   bids                        = accepted bids placed on `day`.
--   unique_bidders              = distinct bidders of those bids.
--   active_auctions             = distinct auctions that received those bids.
--   rejections                  = bid records rejected on `day` (any reason)
--                                 for an auction of the category.
--   avg_bids_per_active_auction = bids / active_auctions.
WITH day_bids AS (
  SELECT b.*, coalesce(a.category, 'unknown') AS category
  FROM bids b
  CROSS JOIN params p
  LEFT JOIN auctions a USING (auction_id)
  WHERE b.placed_at >= p.day_start AND b.placed_at < p.day_end
),
started AS (
  SELECT a.category, count(*) AS n FROM auctions a, params p
  WHERE a.starts_at >= p.day_start AND a.starts_at < p.day_end GROUP BY a.category
),
closed AS (
  SELECT coalesce(a.category, 'unknown') AS category, count(*) AS n
  FROM transactions t LEFT JOIN auctions a USING (auction_id) GROUP BY 1
),
bidding AS (
  SELECT category, count(*) AS bids, count(DISTINCT bidder_id) AS unique_bidders,
    count(DISTINCT auction_id) AS active_auctions
  FROM day_bids GROUP BY category
),
rejected AS (
  SELECT category, count(*) AS n FROM rejections WHERE category IS NOT NULL GROUP BY category
),
categories AS (
  SELECT category FROM started UNION SELECT category FROM closed
  UNION SELECT category FROM bidding UNION SELECT category FROM rejected
)
SELECT
  p.day,
  c.category,
  coalesce(s.n, 0) AS auctions_started,
  coalesce(cl.n, 0) AS auctions_closed,
  coalesce(b.bids, 0) AS bids,
  coalesce(b.unique_bidders, 0) AS unique_bidders,
  coalesce(b.active_auctions, 0) AS active_auctions,
  coalesce(r.n, 0) AS rejections,
  CAST(b.bids / nullif(b.active_auctions, 0) AS DECIMAL(18, 4)) AS avg_bids_per_active_auction
FROM categories c
CROSS JOIN params p
LEFT JOIN started s USING (category)
LEFT JOIN closed cl USING (category)
LEFT JOIN bidding b USING (category)
LEFT JOIN rejected r USING (category)
ORDER BY c.category
