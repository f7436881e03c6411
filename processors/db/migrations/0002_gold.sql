-- 0002_gold: the gold layer (daily aggregates for dashboards), written by
-- `gavel rollup` (processors/rollup). Each table is replaced per `day` in one
-- transaction, so a reader never sees half a day. `day` is the calendar day in
-- the pipeline's time zone. The business definitions live in the SQL that
-- computes each table: processors/rollup/sql/*.sql, and in docs/gold.md.
-- Money is in minor units of `currency`; sums are numeric so they cannot
-- overflow.

CREATE SCHEMA IF NOT EXISTS gold;

CREATE TABLE gold.daily_revenue (
  day               date          NOT NULL,
  category          text          NOT NULL,
  currency          char(3)       NOT NULL,
  gmv               numeric(38,0) NOT NULL,
  transactions      bigint        NOT NULL,
  avg_final_price   numeric(24,2),
  auctions_closed   bigint        NOT NULL,
  PRIMARY KEY (day, category, currency)
);

CREATE TABLE gold.auction_performance (
  day                          date          NOT NULL,
  category                     text          NOT NULL,
  auctions_closed              bigint        NOT NULL,
  successful_auctions          bigint        NOT NULL,
  success_rate                 numeric(9,6),
  avg_bids_per_auction         numeric(18,4),
  avg_price_increase_pct       numeric(18,4),
  median_time_to_first_bid_s   numeric(18,3),
  PRIMARY KEY (day, category)
);

CREATE TABLE gold.bidder_analytics (
  day                date          NOT NULL,
  bidder_id          text          NOT NULL,
  bids               bigint        NOT NULL,
  auctions_entered   bigint        NOT NULL,
  auctions_closed_entered bigint   NOT NULL,
  wins               bigint        NOT NULL,
  win_rate           numeric(9,6),
  segment            text          NOT NULL,
  country            text,
  new_user           boolean,
  PRIMARY KEY (day, bidder_id)
);

CREATE TABLE gold.fraud_summary (
  day                date          PRIMARY KEY,
  alerts             bigint        NOT NULL,
  quarantined        bigint        NOT NULL,
  top_signal         text,
  avg_score          numeric(9,6),
  bidders_flagged    bigint        NOT NULL,
  auctions_affected  bigint        NOT NULL
);

CREATE TABLE gold.category_trends (
  day                date          NOT NULL,
  category           text          NOT NULL,
  auctions_started   bigint        NOT NULL,
  auctions_closed    bigint        NOT NULL,
  bids               bigint        NOT NULL,
  unique_bidders     bigint        NOT NULL,
  active_auctions    bigint        NOT NULL,
  rejections         bigint        NOT NULL,
  avg_bids_per_active_auction numeric(18,4),
  PRIMARY KEY (day, category)
);

-- One row per rollup attempt (success or failure), for operators and the
-- AuctionPipeline status.
CREATE TABLE gold.rollup_runs (
  run_id        bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  day           date         NOT NULL,
  started_at    timestamptz  NOT NULL,
  finished_at   timestamptz,
  -- running | succeeded | partial | failed | skipped
  status        text         NOT NULL,
  partial       boolean      NOT NULL DEFAULT false,
  open_auctions bigint       NOT NULL DEFAULT 0,
  rows          jsonb        NOT NULL DEFAULT '{}'::jsonb,
  checks        jsonb        NOT NULL DEFAULT '[]'::jsonb,
  duration_ms   bigint,
  error         text,
  time_zone     text
);
CREATE INDEX rollup_runs_day_idx ON gold.rollup_runs (day, started_at DESC);
