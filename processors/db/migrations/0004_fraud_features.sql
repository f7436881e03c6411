-- 0004_fraud_features: the fraud model's features of each scored bid, as
-- the bid-processor computed them (the `fraud_features` field of the
-- accepted and rejected records; processors/fraud/model.ts FEATURES gives
-- their order and meaning). `gavel fraud train` trains the anomaly model on
-- these values, so it is trained on exactly what the stream applies it to
-- (docs/fraud.md). NULL for bids that were not scored (rejected before
-- scoring, or written before this version).

ALTER TABLE silver.bids ADD COLUMN fraud_features double precision[];
ALTER TABLE silver.bid_rejections ADD COLUMN fraud_features double precision[];
