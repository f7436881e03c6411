-- 0001_silver: the silver layer (cleaned, deduplicated, queryable state of the stream).
--
-- Contract: table and column names below are part of the data contract
-- (docs/domain.md, "Names that are part of the contract"); more columns are
-- welcome, renames are not. Money is bigint minor units next to an ISO 4217
-- currency; times are timestamptz (UTC instants).
--
-- Deliberately NO foreign keys and NO CHECK constraints on business values:
-- the silver-writer consumes several topics whose records arrive in any order
-- (a bid can be written before its auction row), and a constraint violation
-- would fail a whole batch and block a partition. Anomalies are detected by
-- the data-quality checks of every gold rollup instead (processors/rollup).
--
-- Lineage columns (source_topic, source_partition, source_offset) are
-- optional and let a redelivered record be recognised.

CREATE SCHEMA IF NOT EXISTS silver;

-- An item put up for sale (compacted topic <pipeline>.auctions, key auction_id).
CREATE TABLE silver.auctions (
  auction_id          text        PRIMARY KEY,
  item_id             text        NOT NULL,
  seller_id           text        NOT NULL,
  title               text        NOT NULL DEFAULT '',
  category            text        NOT NULL,
  currency            char(3)     NOT NULL,
  start_price         bigint      NOT NULL,
  reserve_price       bigint,
  min_increment       bigint      NOT NULL,
  starts_at           timestamptz NOT NULL,
  ends_at             timestamptz NOT NULL,
  soft_close_seconds  integer,
  schema_version      integer,
  source_topic        text,
  source_partition    integer,
  source_offset       bigint,
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auctions_ends_at_idx ON silver.auctions (ends_at);
CREATE INDEX auctions_starts_at_idx ON silver.auctions (starts_at);
CREATE INDEX auctions_seller_idx ON silver.auctions (seller_id);
CREATE INDEX auctions_category_idx ON silver.auctions (category);

-- A registered user (compacted topic <pipeline>.users, key user_id).
CREATE TABLE silver.users (
  user_id           text        PRIMARY KEY,
  created_at        timestamptz NOT NULL,
  country           text,
  rating            double precision,
  schema_version    integer,
  source_topic      text,
  source_partition  integer,
  source_offset     bigint,
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Accepted bids only (topic <pipeline>.bids.accepted); bid_id is unique, so a
-- redelivered bid is an ON CONFLICT DO NOTHING.
CREATE TABLE silver.bids (
  bid_id            text        PRIMARY KEY,
  auction_id        text        NOT NULL,
  bidder_id         text        NOT NULL,
  amount            bigint      NOT NULL,
  currency          char(3)     NOT NULL,
  placed_at         timestamptz NOT NULL,
  received_at       timestamptz NOT NULL,
  -- Fraud score 0..1 given by the bid-processor (below the quarantine threshold).
  fraud_score       double precision,
  -- api | pos | iot | batch
  source            text,
  trace_id          text,
  accepted_at       timestamptz,
  schema_version    integer,
  source_topic      text,
  source_partition  integer,
  source_offset     bigint,
  written_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bids_placed_at_idx ON silver.bids (placed_at);
CREATE INDEX bids_auction_idx ON silver.bids (auction_id, amount DESC);
CREATE INDEX bids_bidder_idx ON silver.bids (bidder_id);

-- Every record the pipeline could not accept, with its reason code (the
-- dead-letter topic <pipeline>.bids.rejected). A malformed record may lack
-- any of the ids, so they are nullable; `payload` keeps the raw record.
-- A surrogate key because one bid_id can be rejected several times (client
-- retries -> duplicate); redelivery of the same Kafka record is recognised by
-- its (topic, partition, offset).
CREATE TABLE silver.bid_rejections (
  rejection_id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  bid_id            text,
  auction_id        text,
  bidder_id         text,
  -- malformed | duplicate | auction_not_found | currency_mismatch | self_bid |
  -- not_started | auction_closed | below_minimum | fraud_quarantine | ...
  reason            text        NOT NULL,
  detail            text,
  amount            bigint,
  currency          char(3),
  placed_at         timestamptz,
  received_at       timestamptz,
  rejected_at       timestamptz NOT NULL DEFAULT now(),
  fraud_score       double precision,
  source            text,
  trace_id          text,
  payload           text,
  source_topic      text,
  source_partition  integer,
  source_offset     bigint,
  written_at        timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT bid_rejections_source_uq UNIQUE (source_topic, source_partition, source_offset)
);
CREATE INDEX bid_rejections_received_at_idx ON silver.bid_rejections (received_at);
CREATE INDEX bid_rejections_rejected_at_idx ON silver.bid_rejections (rejected_at);
CREATE INDEX bid_rejections_reason_idx ON silver.bid_rejections (reason);
CREATE INDEX bid_rejections_bid_idx ON silver.bid_rejections (bid_id);

-- Current state of each auction (compacted topic <pipeline>.prices).
-- `version` fences writes: an upsert only applies when its version is greater
-- than the stored one (WHERE silver.auction_state.version < EXCLUDED.version),
-- so a zombie consumer cannot overwrite newer state.
CREATE TABLE silver.auction_state (
  auction_id        text        PRIMARY KEY,
  current_price     bigint,
  leader_id         text,
  bid_count         integer     NOT NULL DEFAULT 0,
  -- Effective end (after anti-sniping extensions).
  ends_at           timestamptz NOT NULL,
  -- open | closed
  status            text        NOT NULL DEFAULT 'open',
  version           bigint      NOT NULL DEFAULT 0,
  currency          char(3),
  closed_at         timestamptz,
  updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX auction_state_status_ends_idx ON silver.auction_state (status, ends_at);

-- The closing of an auction: exactly one row per auction (topic
-- <pipeline>.transactions). winner_id is null when there was no bid;
-- reserve_met is false when the best bid did not reach the reserve.
CREATE TABLE silver.transactions (
  auction_id        text        PRIMARY KEY,
  winner_id         text,
  final_price       bigint,
  currency          char(3),
  reserve_met       boolean     NOT NULL,
  closed_at         timestamptz NOT NULL,
  winning_bid_id    text,
  bid_count         integer,
  source_topic      text,
  source_partition  integer,
  source_offset     bigint,
  written_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transactions_closed_at_idx ON silver.transactions (closed_at);

-- A fraud alert for one bid (topic <pipeline>.fraud-alerts); signals is a JSON
-- object of named signal -> contribution, so a score is explainable.
CREATE TABLE silver.fraud_alerts (
  bid_id            text        PRIMARY KEY,
  auction_id        text        NOT NULL,
  bidder_id         text        NOT NULL,
  score             double precision NOT NULL,
  signals           jsonb       NOT NULL DEFAULT '{}'::jsonb,
  created_at        timestamptz NOT NULL,
  -- True when the score reached the quarantine threshold (the bid was rejected).
  quarantined       boolean,
  source_topic      text,
  source_partition  integer,
  source_offset     bigint,
  written_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX fraud_alerts_created_at_idx ON silver.fraud_alerts (created_at);
