-- gold.auction_performance: how the auctions that closed on `day` performed,
-- per category.
--
-- Definitions
--   auctions_closed            = auctions whose transaction (closing) has
--                                closed_at on `day`.
--   successful_auctions        = closed auctions with a winner and the reserve
--                                met (see daily_revenue.sql).
--   success_rate               = successful_auctions / auctions_closed (0..1).
--   avg_bids_per_auction       = accepted bids (silver.bids, any day) per
--                                closed auction, auctions without bids count 0.
--   avg_price_increase_pct     = over successful auctions with start_price > 0:
--                                avg(100 * (final_price - start_price) / start_price).
--   median_time_to_first_bid_s = over closed auctions with at least one
--                                accepted bid: median seconds from starts_at to
--                                the earliest placed_at.
WITH bid_stats AS (
  SELECT auction_id, count(*) AS bid_count, min(placed_at) AS first_bid_at FROM bids GROUP BY auction_id
),
per_auction AS (
  SELECT
    t.auction_id,
    coalesce(a.category, 'unknown') AS category,
    (t.winner_id IS NOT NULL AND t.reserve_met) AS successful,
    t.final_price,
    a.start_price,
    a.starts_at,
    coalesce(s.bid_count, 0) AS bid_count,
    s.first_bid_at
  FROM transactions t
  LEFT JOIN auctions a USING (auction_id)
  LEFT JOIN bid_stats s USING (auction_id)
)
SELECT
  p.day,
  category,
  count(*) AS auctions_closed,
  count(*) FILTER (WHERE successful) AS successful_auctions,
  CAST(count(*) FILTER (WHERE successful) / count(*) AS DECIMAL(9, 6)) AS success_rate,
  CAST(avg(bid_count) AS DECIMAL(18, 4)) AS avg_bids_per_auction,
  CAST(avg(100.0 * (final_price - start_price) / start_price)
         FILTER (WHERE successful AND start_price > 0) AS DECIMAL(18, 4)) AS avg_price_increase_pct,
  CAST(median(epoch(first_bid_at - starts_at)) FILTER (WHERE first_bid_at IS NOT NULL) AS DECIMAL(18, 3))
    AS median_time_to_first_bid_s
FROM per_auction
CROSS JOIN params p
GROUP BY p.day, category
ORDER BY category
