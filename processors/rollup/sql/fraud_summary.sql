-- gold.fraud_summary: one row per `day`, also when nothing happened.
--
-- Definitions
--   alerts            = fraud alerts created on `day` (silver.fraud_alerts).
--   quarantined       = bid records rejected on `day` with reason
--                       'fraud_quarantine' (score at or over the pipeline's
--                       quarantine threshold).
--   top_signal        = the named signal present (contribution > 0, or listed)
--                       in the most alerts of the day; ties go to the larger
--                       summed contribution, then the name. Null without alerts.
--   avg_score         = mean alert score (0..1).
--   bidders_flagged   = distinct bidders with an alert.
--   auctions_affected = distinct auctions with an alert.
WITH sig AS (
  SELECT s.signal, count(DISTINCT s.bid_id) AS n, sum(coalesce(s.contribution, 0)) AS weight
  FROM fraud_signals s
  JOIN fraud_alerts f USING (bid_id)
  WHERE s.contribution IS NULL OR s.contribution > 0
  GROUP BY s.signal
)
SELECT
  p.day,
  (SELECT count(*) FROM fraud_alerts) AS alerts,
  (SELECT count(*) FROM rejections WHERE reason = 'fraud_quarantine') AS quarantined,
  (SELECT signal FROM sig ORDER BY n DESC, weight DESC, signal LIMIT 1) AS top_signal,
  (SELECT CAST(avg(score) AS DECIMAL(9, 6)) FROM fraud_alerts) AS avg_score,
  (SELECT count(DISTINCT bidder_id) FROM fraud_alerts) AS bidders_flagged,
  (SELECT count(DISTINCT auction_id) FROM fraud_alerts) AS auctions_affected
FROM params p
