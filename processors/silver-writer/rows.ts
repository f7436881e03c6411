/**
 * Pure transforms from derived-topic records to silver rows and the
 * set-based upserts that write them. Shared by the stream writer;
 * unit-tested without a database.
 *
 * A record is decoded once, with the event contract (api/events/): parsed,
 * then checked by the compiled schema of its event. A conforming event (what
 * the pipeline's own processes write) becomes a row as it is: the columns the
 * contract already guarantees (ids, currencies, bounded amounts, enums,
 * scores) are taken without a second look, and only what PostgreSQL needs
 * beyond the contract is converted (instants to canonical UTC within years
 * 1..9999, NUL bytes out of free text, integers `bigint` holds, the feature
 * vector). Any other record (no or another `schema`, fields silver does not
 * store missing, values outside the contract) is read tolerantly, column by
 * column, as silver always has: what silver can store is written, a required
 * column it cannot fill dead-letters the record (`invalid_field`). So the
 * contract never refuses a row silver could write; `rows.test.ts` checks
 * that both readings give a conforming event the same row.
 */
import { Type } from "@sinclair/typebox";
import { eventCheck, toIso } from "../../api/events/decode.ts";
import { isId } from "../../api/events/ids.ts";
import {
  AuctionEventSchema,
  BidAcceptedSchema,
  BidRejectedSchema,
  FraudAlertSchema,
  PriceUpdateSchema,
  TransactionSchema,
  UserEventSchema,
} from "../../api/events/types.ts";
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
type Fields = Record<string, unknown>;

/** One column of a silver table and how a record fills it. */
interface Column {
  readonly name: string;
  /** Its SQL type (processors/db/migrations): the element type of its `unnest` array. */
  readonly sql: string;
  /** The value silver can store, or null (a record may carry anything). */
  readonly read: (v: Fields, r: KafkaRecord) => unknown;
  /** Without a value the record is unusable: `invalid_field`, "<name> is missing or invalid". */
  readonly required: boolean;
  /**
   * The contract's schema guarantees that `read` gives the field of a
   * conforming event unchanged, so such an event's value is taken as it is.
   */
  readonly trusted: boolean;
}

export interface TableSpec {
  readonly table: string;
  readonly columns: readonly string[];
  /** The ON CONFLICT clause (idempotence and fencing live here). */
  readonly conflict: string;
  /** The contract's compiled check of the table's event (a conforming record is read as it is). */
  readonly conforms: (v: unknown) => boolean;
  readonly cols: readonly Column[];
  /** Within one statement a key may appear once: the dedupe key. */
  key(v: Fields, r: KafkaRecord): string;
  /** Chooses between two records of the same key in one batch (true: b replaces a); else the last wins. */
  later?(a: Fields, b: Fields): boolean;
  /** `ON CONFLICT ... DO NOTHING`: the first record of a key in a batch wins, as in the table. */
  readonly firstWins: boolean;
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

function bool(v: unknown): boolean | null {
  return typeof v === "boolean" ? v : null;
}

/** The fraud model's feature vector (finite numbers, at most 64), or null. */
function features(v: unknown): number[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > 64) return null;
  for (const x of v) if (typeof x !== "number" || !Number.isFinite(x)) return null;
  return v as number[];
}

const YEAR_MS = 365 * 24 * 3600 * 1000;
const inRange = (ms: number) => ms >= -1970 * YEAR_MS && ms <= 8000 * YEAR_MS;

/** An instant PostgreSQL accepts (years 1..9999, RFC 3339), in canonical UTC, or null. */
export function time(v: unknown): string | null {
  if (typeof v !== "string" || v.length > 40) return null;
  const canonical = canonicalTime(v);
  if (canonical !== undefined) return canonical;
  const ms = Date.parse(v);
  return Number.isNaN(ms) || !inRange(ms) ? null : new Date(ms).toISOString();
}

const CANONICAL = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const digits2 = (s: string, i: number) => (s.charCodeAt(i) - 48) * 10 + s.charCodeAt(i + 1) - 48;

/**
 * `time(v)` for text already in canonical UTC (`2026-11-22T10:00:00.000Z`,
 * as every Gavel producer writes instants) whose fields name a real instant:
 * that text itself, or null out of range; undefined for anything else (then
 * parsed in full). Two instants per bid: parsing and formatting them was
 * the largest part of reading a bid (about 500 ns each, this 80 ns).
 */
function canonicalTime(v: string): string | null | undefined {
  if (v.length !== 24 || !CANONICAL.test(v)) return undefined;
  const year = digits2(v, 0) * 100 + digits2(v, 2);
  const month = digits2(v, 5);
  const day = digits2(v, 8);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const days = month === 2 && leap ? 29 : MONTH_DAYS[month - 1];
  // Years below 100 (Date.UTC reads them as 19xx), 24:00 and impossible dates take the full parse.
  if (year < 100 || days === undefined || day < 1 || day > days) return undefined;
  const h = digits2(v, 11);
  const m = digits2(v, 14);
  const sec = digits2(v, 17);
  if (h > 23 || m > 59 || sec > 59) return undefined;
  const ms = Date.UTC(year, month - 1, day, h, m, sec, (v.charCodeAt(20) - 48) * 100 + digits2(v, 21));
  return inRange(ms) ? v : null;
}

function currency(v: unknown): string | null {
  return typeof v === "string" && /^[A-Z]{3}$/.test(v) ? v : null;
}

/** A fraud alert's signals as `{name: contribution}` (jsonb), from whatever the record holds. */
function signals(v: unknown): string {
  const out: Record<string, number> = {};
  if (Array.isArray(v))
    for (const s of v as { name?: unknown; contribution?: unknown }[])
      if (typeof s?.name === "string" && typeof s.contribution === "number") out[s.name] = s.contribution;
  return JSON.stringify(out);
}

function schemaVersion(v: Fields): number | null {
  const m = typeof v.schema === "string" ? /\/v(\d+)$/.exec(v.schema) : null;
  return m ? Number(m[1]) : null;
}

/** How a field becomes a value silver can store (null when it cannot), and the SQL type of its column. */
interface Kind {
  readonly read: (x: unknown) => unknown;
  /** The element type of the column's `unnest` array; `char(3)` columns take text (an assignment cast). */
  readonly sql: string;
}
const ID: Kind = { read: id, sql: "text" };
const TEXT: Kind = { read: text, sql: "text" };
/** `text` cut to `max` characters. */
const upTo = (max: number): Kind => ({ read: (x) => text(x, max), sql: "text" });
const CURRENCY: Kind = { read: currency, sql: "text" };
const BIGINT: Kind = { read: int, sql: "bigint" };
const INTEGER: Kind = { read: int, sql: "integer" };
const DOUBLE: Kind = { read: num, sql: "double precision" };
const BOOLEAN: Kind = { read: bool, sql: "boolean" };
const INSTANT: Kind = { read: time, sql: "timestamptz" };
const FEATURES: Kind = { read: features, sql: "double precision[]" };

interface FieldOptions {
  /** A record without a usable value is dead-lettered. */
  readonly required?: boolean;
  /** The contract guarantees the kind's condition for this field (see `Column.trusted`). */
  readonly trusted?: boolean;
}

/** A column read from the record's field of the same name. */
function field(name: string, kind: Kind, o: FieldOptions = {}): Column {
  const read = kind.read;
  return {
    name,
    sql: kind.sql,
    read: (v) => read(v[name]),
    required: o.required ?? false,
    trusted: o.trusted ?? false,
  };
}

/** A column computed from the record (never taken as it is). */
function derived(name: string, sql: string, read: Column["read"]): Column {
  return { name, sql, read, required: false, trusted: false };
}

/** Required, and guaranteed by the contract: ids, currencies, amounts and enums of conforming events. */
const KEY = { required: true, trusted: true } as const;
const REQUIRED = { required: true } as const;
const TRUSTED = { trusted: true } as const;

/** Where the row came from: the record's Kafka position. */
const LINEAGE: readonly Column[] = [
  derived("source_topic", "text", (_v, r) => r.topic),
  derived("source_partition", "integer", (_v, r) => r.partition),
  derived("source_offset", "bigint", (_v, r) => r.offset),
];
const SCHEMA_VERSION = derived("schema_version", "integer", schemaVersion);

/** Compacted topics: the record with the higher offset is newer (same key -> same partition). */
const newerOffset = (target: string) =>
  `WHERE ${target}.source_offset IS NULL OR ${target}.source_partition IS DISTINCT FROM excluded.source_partition OR excluded.source_offset >= ${target}.source_offset`;

/** `ON CONFLICT (key) DO UPDATE` of every other column, `updated_at` too, when `where` holds. */
function updateOthers(key: string, cols: readonly Column[], where: string): string {
  const set = cols
    .filter((c) => c.name !== key)
    .map((c) => `${c.name} = excluded.${c.name}`)
    .join(", ");
  return `ON CONFLICT (${key}) DO UPDATE SET ${set}, updated_at = now() ${where}`;
}

interface TableDef {
  readonly table: string;
  readonly conflict: string | ((cols: readonly Column[]) => string);
  readonly schema: Parameters<typeof eventCheck>[0];
  readonly cols: readonly Column[];
  /** Ends with `schema_version` (the record's `schema` version) and/or the lineage columns. */
  readonly versioned?: boolean;
  readonly lineage?: boolean;
  readonly key: TableSpec["key"];
  readonly later?: TableSpec["later"];
}

function table(d: TableDef): TableSpec {
  const cols = [...d.cols, ...(d.versioned ? [SCHEMA_VERSION] : []), ...(d.lineage ? LINEAGE : [])];
  const conflict = typeof d.conflict === "string" ? d.conflict : d.conflict(cols);
  return {
    table: d.table,
    columns: cols.map((c) => c.name),
    conflict,
    conforms: eventCheck(d.schema),
    cols,
    key: d.key,
    ...(d.later ? { later: d.later } : {}),
    firstWins: conflict.includes("DO NOTHING"),
  };
}

/**
 * A compacted topic's table (auctions, users): one row per key, updated by a
 * later record; a record older (lower offset) than the row changes nothing.
 */
function latestByKey(name: string, key: string, schema: TableDef["schema"], cols: Column[]): TableSpec {
  return table({
    table: name,
    schema,
    conflict: (all) => updateOthers(key, all, newerOffset(name)),
    key: (v) => String(v[key]),
    cols,
    versioned: true,
    lineage: true,
  });
}

/** One row per key, never changed: a re-delivered record adds nothing (`ON CONFLICT DO NOTHING`). */
function firstByKey(
  name: string,
  key: string,
  schema: TableDef["schema"],
  cols: Column[],
  o: { readonly versioned?: boolean } = {},
): TableSpec {
  return table({
    table: name,
    schema,
    conflict: `ON CONFLICT (${key}) DO NOTHING`,
    key: (v) => String(v[key]),
    cols,
    versioned: o.versioned ?? false,
    lineage: true,
  });
}

export const TABLES: Record<SilverKind, TableSpec> = {
  auctions: latestByKey("silver.auctions", "auction_id", AuctionEventSchema, [
    field("auction_id", ID, KEY),
    field("item_id", ID, KEY),
    field("seller_id", ID, KEY),
    derived("title", "text", (v) => text(v.title) ?? ""),
    field("category", TEXT, REQUIRED),
    field("currency", CURRENCY, KEY),
    field("start_price", BIGINT, KEY),
    field("reserve_price", BIGINT, TRUSTED),
    field("min_increment", BIGINT, KEY),
    field("starts_at", INSTANT, REQUIRED),
    field("ends_at", INSTANT, REQUIRED),
    field("soft_close_seconds", INTEGER, TRUSTED),
  ]),
  users: latestByKey("silver.users", "user_id", UserEventSchema, [
    field("user_id", ID, KEY),
    field("created_at", INSTANT, REQUIRED),
    field("country", TEXT, TRUSTED),
    field("rating", DOUBLE, TRUSTED),
  ]),
  // bid_id is unique: a redelivered accepted bid changes nothing.
  bids: firstByKey(
    "silver.bids",
    "bid_id",
    BidAcceptedSchema,
    [
      field("bid_id", ID, KEY),
      field("auction_id", ID, KEY),
      field("bidder_id", ID, KEY),
      field("amount", BIGINT, KEY),
      field("currency", CURRENCY, KEY),
      field("placed_at", INSTANT, REQUIRED),
      field("received_at", INSTANT, REQUIRED),
      field("fraud_score", DOUBLE, TRUSTED),
      field("fraud_features", FEATURES),
      field("source", TEXT, TRUSTED),
      derived("accepted_at", "timestamptz", (_v, r) => toIso(r.timestamp)),
    ],
    { versioned: true },
  ),
  rejections: table({
    table: "silver.bid_rejections",
    // A dead letter records what arrived: its bid fields may hold anything
    // (nullable in the contract too), so they are always read tolerantly.
    schema: BidRejectedSchema,
    // One dead-letter record -> one row, recognised by where it sits in Kafka.
    conflict: "ON CONFLICT ON CONSTRAINT bid_rejections_source_uq DO NOTHING",
    key: (_v, r) => `${r.partition}/${r.offset}`,
    cols: [
      field("bid_id", upTo(500)),
      field("auction_id", upTo(500)),
      field("bidder_id", upTo(500)),
      field("reason", upTo(100), KEY),
      field("detail", TEXT),
      field("amount", BIGINT),
      field("currency", CURRENCY),
      field("placed_at", INSTANT),
      field("received_at", INSTANT),
      field("fraud_score", DOUBLE, TRUSTED),
      field("fraud_features", FEATURES),
      field("source", upTo(100)),
      derived("payload", "text", (v) => text(v.raw, 70_000)),
    ],
    lineage: true,
  }),
  prices: table({
    table: "silver.auction_state",
    // Without the state snapshot: silver stores none of it (it is for the
    // bid-processor's rebuild), and checking its up to 256 remembered bid
    // ids for every price update measured 13 % of this table's reading.
    schema: Type.Omit(PriceUpdateSchema, ["state"]),
    // Fenced: an older (or replayed) update never overwrites newer state.
    conflict: (cols) =>
      updateOthers("auction_id", cols, "WHERE excluded.version > silver.auction_state.version"),
    key: (v) => String(v.auction_id),
    later: (a, b) => Number(b.version) > Number(a.version),
    cols: [
      field("auction_id", ID, KEY),
      field("current_price", BIGINT),
      field("leader_id", TEXT),
      field("bid_count", INTEGER, REQUIRED),
      field("ends_at", INSTANT, REQUIRED),
      field("status", TEXT, KEY),
      field("version", BIGINT, REQUIRED),
      field("currency", CURRENCY, TRUSTED),
      derived("closed_at", "timestamptz", (v) => (v.status === "closed" ? time(v.updated_at) : null)),
    ],
  }),
  // Exactly one transaction per auction.
  transactions: firstByKey("silver.transactions", "auction_id", TransactionSchema, [
    field("auction_id", ID, KEY),
    field("winner_id", TEXT),
    field("final_price", BIGINT),
    field("currency", CURRENCY, TRUSTED),
    field("reserve_met", BOOLEAN, KEY),
    field("closed_at", INSTANT, REQUIRED),
    field("bid_count", INTEGER),
  ]),
  fraudAlerts: firstByKey("silver.fraud_alerts", "bid_id", FraudAlertSchema, [
    field("bid_id", ID, KEY),
    field("auction_id", ID, KEY),
    field("bidder_id", ID, KEY),
    field("score", DOUBLE, KEY),
    derived("signals", "jsonb", (v) => signals(v.signals)),
    field("created_at", INSTANT, REQUIRED),
    field("quarantined", BOOLEAN, TRUSTED),
  ]),
};

/**
 * The row of a record, or why it has none. `conforming`: the record passed
 * the contract's check, so trusted columns are taken as they are.
 */
export function rowOf(spec: TableSpec, v: Fields, r: KafkaRecord, conforming: boolean): Row | string {
  const cols = spec.cols;
  const row: unknown[] = new Array(cols.length);
  for (let i = 0; i < cols.length; i++) {
    const c = cols[i] as Column;
    const x = conforming && c.trusted ? (v[c.name] ?? null) : c.read(v, r);
    if (c.required && (x === null || x === undefined)) return `${c.name} is missing or invalid`;
    row[i] = x;
  }
  return row;
}

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
  /** Every record that decoded to a JSON object, in record order (duplicates and invalid ones included): what the writer observes after the commit. */
  readonly decoded: Readonly<Fields>[];
}

/**
 * Turns one batch of records of a topic into set-based upserts: each record
 * decoded once (JSON, then the contract's check, see the top of this file),
 * deduplicated per key (the first, last or newest record wins, as the
 * table's ON CONFLICT would, since it cannot touch a row twice in one
 * statement), see `statementsFor`.
 */
export function prepare(kind: SilverKind, records: readonly KafkaRecord[]): Prepared {
  const spec = TABLES[kind];
  const unusable: Unusable[] = [];
  const byKey = new Map<string, { v: Fields; entry: Entry }>();
  const decoded: Fields[] = [];
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
    const obj = v as Fields;
    decoded.push(obj);
    const row = rowOf(spec, obj, r, spec.conforms(obj));
    if (typeof row === "string") {
      unusable.push({ record: r, code: "invalid_field", reason: row });
      continue;
    }
    const key = spec.key(obj, r);
    const prev = byKey.get(key);
    if (prev && (spec.firstWins || (spec.later && !spec.later(prev.v, obj)))) continue;
    byKey.set(key, { v: obj, entry: { record: r, row } });
  }
  const entries = [...byKey.values()].map((x) => x.entry);
  return { statements: statementsFor(kind, entries), unusable, entries, rows: entries.length, decoded };
}

/** Rows per statement: bounds one statement's arrays (a batch is rarely larger). */
const CHUNK_ROWS = 10_000;

/** A PostgreSQL array literal of finite numbers (`{1,0.5}`), or null. */
function numberArrayLiteral(v: unknown): string | null {
  // join formats each number as String(x) does.
  return Array.isArray(v) ? `{${v.join(",")}}` : null;
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
  const types = spec.cols.map((c) => c.sql);
  const isArray = types.map((t) => t.endsWith("[]"));
  const text = `INSERT INTO ${spec.table} (${cols.join(", ")}) SELECT ${cols
    .map((c, j) => (isArray[j] ? `u.${c}::${types[j]}` : `u.${c}`))
    .join(", ")} FROM unnest(${cols
    .map((_, j) => `$${j + 1}::${isArray[j] ? "text" : types[j]}[]`)
    .join(", ")}) AS u(${cols.join(", ")}) ${spec.conflict}`;
  const statements: Statement[] = [];
  for (let i = 0; i < entries.length; i += CHUNK_ROWS) {
    const n = Math.min(CHUNK_ROWS, entries.length - i);
    // Column arrays filled row by row: one pass over the rows (per record on the hot path).
    const values: unknown[][] = cols.map(() => new Array(n));
    for (let k = 0; k < n; k++) {
      const row = (entries[i + k] as Entry).row;
      for (let j = 0; j < cols.length; j++)
        (values[j] as unknown[])[k] = isArray[j] ? numberArrayLiteral(row[j]) : (row[j] ?? null);
    }
    // Unnamed: a named (server-side prepared) statement measured no faster here
    // (77,700 vs 76,395 rows/s) and breaks behind a transaction-pooling PgBouncer.
    statements.push({ text, values, rowCount: n });
  }
  return statements;
}

/** The rows of a statement of `statementsFor`, back in row form (tests, diagnostics). */
export function statementRows(s: Statement): unknown[][] {
  const cols = s.values as unknown[][];
  return Array.from({ length: s.rowCount ?? 0 }, (_, i) => cols.map((c) => c[i]));
}
