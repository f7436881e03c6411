-- gold.daily_revenue: revenue of the auctions that closed on `day`, per
-- category and currency (amounts of different currencies are never added).
--
-- Definitions
--   successful auction  = a transaction with a winner (winner_id not null)
--                         whose reserve was met (reserve_met); an auction
--                         without reserve has reserve_met = true.
--   gmv                 = sum(final_price) of the day's successful
--                         transactions, in minor units of `currency`.
--   transactions        = number of successful transactions.
--   avg_final_price     = gmv / transactions (2 decimals, minor units).
--   auctions_closed     = every auction that closed on `day` (sold or not).
-- The day of a transaction is the day of its closed_at in the rollup time zone.
-- An auction missing from silver.auctions counts under category 'unknown'
-- (and fails the keys_resolve check).
SELECT
  p.day,
  coalesce(a.category, 'unknown') AS category,
  coalesce(t.currency, a.currency, 'XXX') AS currency,
  CAST(coalesce(sum(t.final_price) FILTER (WHERE t.winner_id IS NOT NULL AND t.reserve_met), 0) AS DECIMAL(38, 0)) AS gmv,
  count(*) FILTER (WHERE t.winner_id IS NOT NULL AND t.reserve_met) AS transactions,
  CAST(avg(t.final_price) FILTER (WHERE t.winner_id IS NOT NULL AND t.reserve_met) AS DECIMAL(24, 2)) AS avg_final_price,
  count(*) AS auctions_closed
FROM transactions t
LEFT JOIN auctions a USING (auction_id)
CROSS JOIN params p
GROUP BY p.day, 2, 3
ORDER BY 2, 3
