-- 0003_silver_dead_letters: records of the derived topics that the
-- silver-writer could not turn into a silver row. Nothing is dropped
-- silently: each such record is kept here, raw, with a reason code, written
-- in the same database transaction as the rows of its batch (the Kafka offsets
-- are committed after that transaction), so it lands here exactly once.
--
-- The Kafka position is the primary key: a batch re-delivered after a crash
-- inserts nothing new (ON CONFLICT DO NOTHING). The column names follow the
-- lineage columns of the other silver tables (and avoid the reserved word
-- OFFSET). How to inspect and replay them: docs/operations.md.

CREATE TABLE silver.dead_letters (
  source_topic      text        NOT NULL,
  source_partition  integer     NOT NULL,
  source_offset     bigint      NOT NULL,
  -- The silver table the record was meant for (silver.bids, silver.transactions ...).
  target_table      text        NOT NULL,
  -- not_json | not_object | invalid_field | db_rejected
  reason            text        NOT NULL,
  -- Human-readable: which field, the parser's or PostgreSQL's message.
  detail            text,
  -- The SQLSTATE when PostgreSQL refused the row (reason db_rejected).
  sqlstate          text,
  -- The record's key (UTF-8) and value (the exact bytes; NULL for a tombstone).
  key               text,
  value             bytea,
  -- The Kafka record timestamp.
  record_timestamp  timestamptz,
  recorded_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_recorded_at_idx ON silver.dead_letters (recorded_at);
CREATE INDEX dead_letters_reason_idx ON silver.dead_letters (target_table, reason);
