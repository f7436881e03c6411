/**
 * Pure transforms from derived-topic records to silver rows and the
 * parameterised multi-row upserts that write them. Shared by the stream
 * writer; unit-tested without a database.
 */
import { isId } from "../domain/events.ts";
import type { KafkaRecord } from "../kafka/transport.ts";

/** Which silver table a topic feeds (logical topic keys of the pipeline). */
export type SilverKind =
  | "auctions"
  | "users"
  | "bids"
  | "rejections"
  | "prices"
  | "transactions"
  | "fraudAlerts";

export interface Statement {
  readonly text: string;
  readonly values: unknown[];
  /**
   * Rows the statement writes (set-based statements carry one array per
   * column). Not `rows`: that key of a node-postgres query config is a
   * cursor's fetch size, and with it a failing statement left the
   * connection waiting for ever.
   */
  readonly rowCount?: number;
}

type Row = readonly unknown[];

interface TableSpec {
  readonly table: string;
  readonly columns: readonly string[];
  /** The ON CONFLICT clause (idempotence and fencing live here). */
  readonly conflict: string;
  /** Builds the row, or a reason when the record is unusable. */
  row(v: Record<string, unknown>, r: KafkaRecord): Row | string;
  /** Within one statement a key may appear once: the dedupe key and whether a later record wins. */
  key(v: Record<string, unknown>, r: KafkaRecord): string;
  /** Chooses between two records of the same key in one batch (true: b replaces a). */
  later?(a: Record<string, unknown>, b: Record<string, unknown>): boolean;
}

/** Text without NUL bytes (PostgreSQL text cannot hold them), or null. */
function text(v: unknown, max = 10_000): string | null {
  if (typeof v !== "string") return null;
  return v.replaceAll("\u0000", "").slice(0, max);
}

/**
 * An id by the rule of the events (docs/events.md#identifiers), or null: a
 * record whose id breaks it is unusable (dead-lettered), never stored
 * altered (e.g. with a NUL removed, which could merge two ids). The
 * dead-letter table keeps its ids as `text`: they are whatever arrived.
 */
function id(v: unknown): string | null {
  return isId(v) ? v : null;
}

/** An integer that fits bigint exactly, or null (a dead-letter record may carry anything). */
function int(v: unknown): number | null {
  return typeof v === "number" && Number.isSafeInteger(v) ? v : null;
}

function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** The fraud model's feature vector (finite numbers, at most 64), or null. */
function features(v: unknown): number[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) return null;
  for (const x of v) if (typeof x !== "number" || !Number.isFinite(x)) return null;
  return v as number[];
}

const YEAR_MS = 365 * 24 * 3600 * 1000;
/** An instant PostgreSQL accepts (years 1..9999, RFC 3339), or null. */
function time(v: unknown): string | null {
  if (typeof v !== "string" || v.length > 40) return null;
  const ms = Date.parse(v);
  if (Number.isNaN(ms) || ms < -1970 * YEAR_MS || ms > 8000 * YEAR_MS) return null;
  return new Date(ms).toISOString();
}

function currency(v: unknown): string | null {
  return typeof v === "string" && /^[A-Z]{3}$/.test(v) ? v : null;
}

function schemaVersion(v: Record<string, unknown>): number | null {
  const m = typeof v.schema === "string" ? /\/v(\d+)$/.exec(v.schema) : null;
  return m ? Number(m[1]) : null;
}

const lineage = (r: KafkaRecord) => [r.topic, r.partition, r.offset] as const;
const LINEAGE = ["source_topic", "source_partition", "source_offset"] as const;

function required(row: unknown[], names: readonly string[], cols: readonly string[]): Row | string {
  for (const n of names) {
    const i = cols.indexOf(n);
    if (row[i] === null || row[i] === undefined) return `${n} is missing or invalid`;
  }
  return row;
}

/** Compacted topics: the record with the higher offset is newer (same key -> same partition). */
const newerOffset = (target: string) =>
  `WHERE ${target}.source_offset IS NULL OR ${target}.source_partition IS DISTINCT FROM excluded.source_partition OR excluded.source_offset >= ${target}.source_offset`;

function setAll(cols: readonly string[], except: readonly string[]): string {
  return cols
    .filter((c) => !except.includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(", ");
}

const AUCTION_COLS = [
  "auction_id",
  "item_id",
  "seller_id",
  "title",
  "category",
  "currency",
  "start_price",
  "reserve_price",
  "min_increment",
  "starts_at",
  "ends_at",
  "soft_close_seconds",
  "schema_version",
  ...LINEAGE,
] as const;

const USER_COLS = ["user_id", "created_at", "country", "rating", "schema_version", ...LINEAGE] as const;

const BID_COLS = [
  "bid_id",
  "auction_id",
  "bidder_id",
  "amount",
  "currency",
  "placed_at",
  "received_at",
  "fraud_score",
  "fraud_features",
  "source",
  "accepted_at",
  "schema_version",
  ...LINEAGE,
] as const;

const REJECTION_COLS = [
  "bid_id",
  "auction_id",
  "bidder_id",
  "reason",
  "detail",
  "amount",
  "currency",
  "placed_at",
  "received_at",
  "fraud_score",
  "fraud_features",
  "source",
  "payload",
  ...LINEAGE,
] as const;

const STATE_COLS = [
  "auction_id",
  "current_price",
  "leader_id",
  "bid_count",
  "ends_at",
  "status",
  "version",
  "currency",
  "closed_at",
] as const;

const TX_COLS = [
  "auction_id",
  "winner_id",
  "final_price",
  "currency",
  "reserve_met",
  "closed_at",
  "bid_count",
  ...LINEAGE,
] as const;

const ALERT_COLS = [
  "bid_id",
  "auction_id",
  "bidder_id",
  "score",
  "signals",
  "created_at",
  "quarantined",
  ...LINEAGE,
] as const;

export const TABLES: Record<SilverKind, TableSpec> = {
  auctions: {
    table: "silver.auctions",
    columns: AUCTION_COLS,
    conflict: `ON CONFLICT (auction_id) DO UPDATE SET ${setAll(AUCTION_COLS, ["auction_id"])}, updated_at = now() ${newerOffset("silver.auctions")}`,
    key: (v) => String(v.auction_id),
    row: (v, r) =>
      required(
        [
          id(v.auction_id),
          id(v.item_id),
          id(v.seller_id),
          text(v.title) ?? "",
          text(v.category),
          currency(v.currency),
          int(v.start_price),
          int(v.reserve_price),
          int(v.min_increment),
          time(v.starts_at),
          time(v.ends_at),
          int(v.soft_close_seconds),
          schemaVersion(v),
          ...lineage(r),
        ],
        [
          "auction_id",
          "item_id",
          "seller_id",
          "category",
          "currency",
          "start_price",
          "min_increment",
          "starts_at",
          "ends_at",
        ],
        AUCTION_COLS,
      ),
  },
  users: {
    table: "silver.users",
    columns: USER_COLS,
    conflict: `ON CONFLICT (user_id) DO UPDATE SET ${setAll(USER_COLS, ["user_id"])}, updated_at = now() ${newerOffset("silver.users")}`,
    key: (v) => String(v.user_id),
    row: (v, r) =>
      required(
        [id(v.user_id), time(v.created_at), text(v.country), num(v.rating), schemaVersion(v), ...lineage(r)],
        ["user_id", "created_at"],
        USER_COLS,
      ),
  },
  bids: {
    table: "silver.bids",
    columns: BID_COLS,
    // bid_id is unique: a redelivered accepted bid changes nothing.
    conflict: "ON CONFLICT (bid_id) DO NOTHING",
    key: (v) => String(v.bid_id),
    row: (v, r) =>
      required(
        [
          id(v.bid_id),
          id(v.auction_id),
          id(v.bidder_id),
          int(v.amount),
          currency(v.currency),
          time(v.placed_at),
          time(v.received_at),
          num(v.fraud_score),
          features(v.fraud_features),
          text(v.source),
          new Date(r.timestamp).toISOString(),
          schemaVersion(v),
          ...lineage(r),
        ],
        ["bid_id", "auction_id", "bidder_id", "amount", "currency", "placed_at", "received_at"],
        BID_COLS,
      ),
  },
  rejections: {
    table: "silver.bid_rejections",
    columns: REJECTION_COLS,
    // One dead-letter record -> one row, recognised by where it sits in Kafka.
    conflict: "ON CONFLICT ON CONSTRAINT bid_rejections_source_uq DO NOTHING",
    key: (_v, r) => `${r.partition}/${r.offset}`,
    row: (v, r) =>
      required(
        [
          text(v.bid_id, 500),
          text(v.auction_id, 500),
          text(v.bidder_id, 500),
          text(v.reason, 100),
          text(v.detail),
          int(v.amount),
          currency(v.currency),
          time(v.placed_at),
          time(v.received_at),
          num(v.fraud_score),
          features(v.fraud_features),
          text(v.source, 100),
          text(v.raw, 70_000),
          ...lineage(r),
        ],
        ["reason"],
        REJECTION_COLS,
      ),
  },
  prices: {
    table: "silver.auction_state",
    columns: STATE_COLS,
    // Fenced: an older (or replayed) update never overwrites newer state.
    conflict: `ON CONFLICT (auction_id) DO UPDATE SET ${setAll(STATE_COLS, ["auction_id"])}, updated_at = now() WHERE excluded.version > silver.auction_state.version`,
    key: (v) => String(v.auction_id),
    later: (a, b) => Number(b.version) > Number(a.version),
    row: (v) =>
      required(
        [
          id(v.auction_id),
          int(v.current_price),
          text(v.leader_id),
          int(v.bid_count),
          time(v.ends_at),
          text(v.status),
          int(v.version),
          currency(v.currency),
          v.status === "closed" ? time(v.updated_at) : null,
        ],
        ["auction_id", "bid_count", "ends_at", "status", "version"],
        STATE_COLS,
      ),
  },
  transactions: {
    table: "silver.transactions",
    columns: TX_COLS,
    // Exactly one transaction per auction.
    conflict: "ON CONFLICT (auction_id) DO NOTHING",
    key: (v) => String(v.auction_id),
    row: (v, r) =>
      required(
        [
          id(v.auction_id),
          text(v.winner_id),
          int(v.final_price),
          currency(v.currency),
          typeof v.reserve_met === "boolean" ? v.reserve_met : null,
          time(v.closed_at),
          int(v.bid_count),
          ...lineage(r),
        ],
        ["auction_id", "reserve_met", "closed_at"],
        TX_COLS,
      ),
  },
  fraudAlerts: {
    table: "silver.fraud_alerts",
    columns: ALERT_COLS,
    conflict: "ON CONFLICT (bid_id) DO NOTHING",
    key: (v) => String(v.bid_id),
    row: (v, r) => {
      const signals: Record<string, number> = {};
      if (Array.isArray(v.signals))
        for (const s of v.signals as { name?: unknown; contribution?: unknown }[])
          if (typeof s?.name === "string" && typeof s.contribution === "number")
            signals[s.name] = s.contribution;
      return required(
        [
          id(v.bid_id),
          id(v.auction_id),
          id(v.bidder_id),
          num(v.score),
          JSON.stringify(signals),
          time(v.created_at),
          typeof v.quarantined === "boolean" ? v.quarantined : null,
          ...lineage(r),
        ],
        ["bid_id", "auction_id", "bidder_id", "score", "created_at"],
        ALERT_COLS,
      );
    },
  },
};

/**
 * Why a record cannot become a silver row: a fixed set of codes (a metric
 * label and the `reason` of silver.dead_letters). not_json: the value does
 * not parse; not_object: JSON, but not an object; invalid_field: a required
 * field is missing or has a value silver cannot hold (fractional money, a bad
 * currency or instant ...); db_rejected: PostgreSQL refused the row for a
 * data reason (SQLSTATE class 22 or 23; found by the writer, not here).
 */
export type UnusableReason = "not_json" | "not_object" | "invalid_field" | "db_rejected";

export interface Unusable {
  readonly record: KafkaRecord;
  readonly code: UnusableReason;
  /** Human-readable detail (which field, the parser's message). */
  readonly reason: string;
}

/** A row to write with the record it came from (the writer isolates a refused row by it). */
export interface Entry {
  readonly record: KafkaRecord;
  readonly row: Row;
}

export interface Prepared {
  readonly statements: Statement[];
  /** Records that could not become rows, with why (dead-lettered with the batch, never blocking). */
  readonly unusable: Unusable[];
  /** The rows of `statements`, one per key, in order, with their records. */
  readonly entries: Entry[];
  readonly rows: number;
}

/**
 * Turns one batch of records of a topic into set-based upserts: decoded,
 * deduplicated per key (the last or newest record wins, since ON CONFLICT
 * cannot touch a row twice in one statement), see `statementsFor`.
 */
export function prepare(kind: SilverKind, records: readonly KafkaRecord[]): Prepared {
  const spec = TABLES[kind];
  const unusable: Unusable[] = [];
  const byKey = new Map<string, { v: Record<string, unknown>; entry: Entry }>();
  for (const r of records) {
    if (r.value === null) continue; // tombstone of a compacted topic: nothing to write
    let v: unknown;
    try {
      v = JSON.parse(r.value.toString("utf8"));
    } catch (err) {
      unusable.push({ record: r, code: "not_json", reason: `not JSON: ${(err as Error).message}` });
      continue;
    }
    if (v === null || typeof v !== "object" || Array.isArray(v)) {
      unusable.push({ record: r, code: "not_object", reason: "not a JSON object" });
      continue;
    }
    const obj = v as Record<string, unknown>;
    const row = spec.row(obj, r);
    if (typeof row === "string") {
      unusable.push({ record: r, code: "invalid_field", reason: row });
      continue;
    }
    const key = spec.key(obj, r);
    const prev = byKey.get(key);
    if (prev && spec.later && !spec.later(prev.v, obj)) continue;
    if (prev && kind !== "prices" && TABLES[kind].conflict.includes("DO NOTHING")) continue; // first one wins
    byKey.set(key, { v: obj, entry: { record: r, row } });
  }
  const entries = [...byKey.values()].map((x) => x.entry);
  return { statements: statementsFor(kind, entries), unusable, entries, rows: entries.length };
}

/**
 * The SQL type of every column the writer fills (processors/db/migrations):
 * the element type of its `unnest` array. `char(3)` columns take text (an
 * assignment cast). A column missing here is a programming error, found by
 * the unit test that builds each table's statement.
 */
const COLUMN_TYPES: Readonly<Record<string, string>> = {
  ...Object.fromEntries(
    [
      "auction_id",
      "item_id",
      "seller_id",
      "title",
      "category",
      "currency",
      "user_id",
      "country",
      "bid_id",
      "bidder_id",
      "source",
      "reason",
      "detail",
      "payload",
      "leader_id",
      "status",
      "winner_id",
      "source_topic",
    ].map((c) => [c, "text"]),
  ),
  ...Object.fromEntries(
    [
      "start_price",
      "reserve_price",
      "min_increment",
      "amount",
      "current_price",
      "version",
      "final_price",
      "source_offset",
    ].map((c) => [c, "bigint"]),
  ),
  ...Object.fromEntries(
    ["soft_close_seconds", "schema_version", "source_partition", "bid_count"].map((c) => [c, "integer"]),
  ),
  ...Object.fromEntries(
    ["starts_at", "ends_at", "created_at", "placed_at", "received_at", "accepted_at", "closed_at"].map(
      (c) => [c, "timestamptz"],
    ),
  ),
  ...Object.fromEntries(["rating", "fraud_score", "score"].map((c) => [c, "double precision"])),
  fraud_features: "double precision[]",
  signals: "jsonb",
  reserve_met: "boolean",
  quarantined: "boolean",
};

/** Rows per statement: bounds one statement's arrays (a batch is rarely larger). */
const CHUNK_ROWS = 10_000;

/** A PostgreSQL array literal of finite numbers (`{1,0.5}`), or null. */
function numberArrayLiteral(v: unknown): string | null {
  return Array.isArray(v) ? `{${v.map((x) => String(x)).join(",")}}` : null;
}

/**
 * Set-based upserts of `entries` into the kind's table: `INSERT ... SELECT
 * FROM unnest($1::type[], ...)`, one array parameter per column: a short
 * statement, the same text for every batch of a table, and a handful of
 * parameters to bind instead of one per value. Array-typed columns travel as text literals (unnest would
 * flatten an array of arrays) and are cast back in the SELECT. Measured 1.7x
 * the rows/s of multi-row VALUES for silver.bids (docs/benchmarks.md).
 */
export function statementsFor(kind: SilverKind, entries: readonly Entry[]): Statement[] {
  const spec = TABLES[kind];
  const cols = spec.columns;
  const types = cols.map((c) => {
    const t = COLUMN_TYPES[c];
    if (!t) throw new Error(`silver column ${spec.table}.${c} has no SQL type in COLUMN_TYPES`);
    return t;
  });
  const isArray = types.map((t) => t.endsWith("[]"));
  const text = `INSERT INTO ${spec.table} (${cols.join(", ")}) SELECT ${cols
    .map((c, j) => (isArray[j] ? `u.${c}::${types[j]}` : `u.${c}`))
    .join(", ")} FROM unnest(${cols
    .map((_, j) => `$${j + 1}::${isArray[j] ? "text" : types[j]}[]`)
    .join(", ")}) AS u(${cols.join(", ")}) ${spec.conflict}`;
  const statements: Statement[] = [];
  for (let i = 0; i < entries.length; i += CHUNK_ROWS) {
    const part = entries.slice(i, i + CHUNK_ROWS);
    const values = cols.map((_, j) =>
      part.map(({ row }) => (isArray[j] ? numberArrayLiteral(row[j]) : (row[j] ?? null))),
    );
    // Unnamed: a named (server-side prepared) statement measured no faster here
    // (77,700 vs 76,395 rows/s) and breaks behind a transaction-pooling PgBouncer.
    statements.push({ text, values, rowCount: part.length });
  }
  return statements;
}

/** The rows of a statement of `statementsFor`, back in row form (tests, diagnostics). */
export function statementRows(s: Statement): unknown[][] {
  const cols = s.values as unknown[][];
  return Array.from({ length: s.rowCount ?? 0 }, (_, i) => cols.map((c) => c[i]));
}
