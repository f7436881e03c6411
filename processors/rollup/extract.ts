import { createReadStream, createWriteStream } from "node:fs";
import { pipeline } from "node:stream/promises";
import type pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";

/**
 * Moving data between PostgreSQL and DuckDB without DuckDB extensions
 * (postgres_scanner/httpfs are not available offline): silver rows leave
 * PostgreSQL through `COPY (query) TO STDOUT (FORMAT csv)` into local files,
 * which DuckDB reads with `read_csv` and explicit column types; gold rows go
 * back with `COPY ... FROM STDIN`. CSV keeps the rows out of JavaScript
 * entirely, which is what makes a million bids a few seconds.
 *
 * Times are converted to UTC wall-clock `timestamp` on the PostgreSQL side, so
 * DuckDB works in naive UTC timestamps and the day bounds in `params` are the
 * same instants.
 */

/** Instants of a day as SQL literals (already quoted) plus their ISO form. */
export interface DayBounds {
  readonly day: string;
  /** ISO instant of local midnight starting the day. */
  readonly start: string;
  /** ISO instant of the next local midnight. */
  readonly end: string;
}

/**
 * A set of keys handed from DuckDB back to PostgreSQL as a temporary table
 * `table(id text)` (dropped at commit), so later extracts can filter on it
 * instead of scanning silver.bids again.
 */
export interface KeyTable {
  readonly table: string;
  /** DuckDB query returning one column of distinct, non-null keys. */
  readonly duckSql: string;
}

/** One silver extract: the DuckDB table it becomes and the PostgreSQL query that fills it. */
export interface SilverExtract {
  readonly table: string;
  /** DuckDB column names and types, in the query's column order. */
  readonly columns: readonly (readonly [string, string])[];
  readonly query: (b: DayBounds) => string;
  /** Key tables built from this extract once it is loaded, for the extracts after it. */
  readonly keys?: readonly KeyTable[];
}

const lit = (iso: string) => `'${iso.replace(/'/g, "''")}'::timestamptz`;
const utc = (col: string) => `(${col} AT TIME ZONE 'UTC')`;
const inDay = (col: string, b: DayBounds) => `(${col} >= ${lit(b.start)} AND ${col} < ${lit(b.end)})`;
const closedIds = (b: DayBounds) =>
  `SELECT auction_id FROM silver.transactions WHERE ${inDay("closed_at", b)}`;

/**
 * What a day needs from silver:
 * - transactions: the auctions that closed on the day;
 * - bids: accepted bids placed on the day, plus every bid of an auction that
 *   closed on the day (bid counts and time to first bid span days);
 * - auctions: those closed, bid on (the auctions of the extracted bids,
 *   passed back as a key table), or started on the day;
 * - users: the bidders of the extracted bids (key table);
 * - fraud_alerts / fraud_signals / rejections: created or received on the day.
 */
export const SILVER_EXTRACTS: readonly SilverExtract[] = [
  {
    table: "transactions",
    columns: [
      ["auction_id", "VARCHAR"],
      ["winner_id", "VARCHAR"],
      ["final_price", "BIGINT"],
      ["currency", "VARCHAR"],
      ["reserve_met", "BOOLEAN"],
      ["closed_at", "TIMESTAMP"],
    ],
    query: (b) =>
      `SELECT auction_id, winner_id, final_price, currency, reserve_met, ${utc("closed_at")}
       FROM silver.transactions WHERE ${inDay("closed_at", b)}`,
  },
  {
    table: "bids",
    columns: [
      ["bid_id", "VARCHAR"],
      ["auction_id", "VARCHAR"],
      ["bidder_id", "VARCHAR"],
      ["amount", "BIGINT"],
      ["currency", "VARCHAR"],
      ["placed_at", "TIMESTAMP"],
      ["received_at", "TIMESTAMP"],
    ],
    query: (b) =>
      `SELECT bid_id, auction_id, bidder_id, amount, currency, ${utc("placed_at")}, ${utc("received_at")}
       FROM silver.bids WHERE ${inDay("placed_at", b)} OR auction_id IN (${closedIds(b)})`,
    keys: [
      {
        table: "rollup_bid_auctions",
        duckSql: "SELECT DISTINCT auction_id FROM bids WHERE auction_id IS NOT NULL",
      },
      { table: "rollup_bidders", duckSql: "SELECT DISTINCT bidder_id FROM bids WHERE bidder_id IS NOT NULL" },
    ],
  },
  {
    table: "auctions",
    columns: [
      ["auction_id", "VARCHAR"],
      ["item_id", "VARCHAR"],
      ["seller_id", "VARCHAR"],
      ["category", "VARCHAR"],
      ["currency", "VARCHAR"],
      ["start_price", "BIGINT"],
      ["reserve_price", "BIGINT"],
      ["min_increment", "BIGINT"],
      ["starts_at", "TIMESTAMP"],
      ["ends_at", "TIMESTAMP"],
    ],
    query: (b) =>
      `SELECT auction_id, item_id, seller_id, category, currency, start_price, reserve_price, min_increment,
              ${utc("starts_at")}, ${utc("ends_at")}
       FROM silver.auctions
       WHERE auction_id IN (${closedIds(b)})
          OR auction_id IN (SELECT id FROM rollup_bid_auctions)
          OR ${inDay("starts_at", b)}`,
  },
  {
    table: "users",
    columns: [
      ["user_id", "VARCHAR"],
      ["created_at", "TIMESTAMP"],
      ["country", "VARCHAR"],
      ["rating", "DOUBLE"],
    ],
    query: () =>
      `SELECT user_id, ${utc("created_at")}, country, rating FROM silver.users
       WHERE user_id IN (SELECT id FROM rollup_bidders)`,
  },
  {
    table: "fraud_alerts",
    columns: [
      ["bid_id", "VARCHAR"],
      ["auction_id", "VARCHAR"],
      ["bidder_id", "VARCHAR"],
      ["score", "DOUBLE"],
      ["created_at", "TIMESTAMP"],
    ],
    query: (b) =>
      `SELECT bid_id, auction_id, bidder_id, score, ${utc("created_at")}
       FROM silver.fraud_alerts WHERE ${inDay("created_at", b)}`,
  },
  {
    // signals is free-form JSON from the bid-processor: an object
    // {name: contribution | {contribution}} or an array of names or
    // {name|signal, contribution|weight} objects. Flattened here so DuckDB
    // needs no JSON handling.
    table: "fraud_signals",
    columns: [
      ["bid_id", "VARCHAR"],
      ["signal", "VARCHAR"],
      ["contribution", "DOUBLE"],
    ],
    query: (b) =>
      `SELECT f.bid_id, s.signal, s.contribution
       FROM silver.fraud_alerts f
       CROSS JOIN LATERAL (
         SELECT o.key AS signal,
                CASE WHEN jsonb_typeof(o.value) = 'number' THEN (o.value #>> '{}')::float8
                     WHEN jsonb_typeof(o.value -> 'contribution') = 'number' THEN (o.value ->> 'contribution')::float8
                END AS contribution
         FROM jsonb_each(CASE WHEN jsonb_typeof(f.signals) = 'object' THEN f.signals ELSE '{}'::jsonb END) o
         UNION ALL
         SELECT coalesce(CASE WHEN jsonb_typeof(e) = 'string' THEN e #>> '{}' END, e ->> 'name', e ->> 'signal'),
                CASE WHEN jsonb_typeof(e -> 'contribution') = 'number' THEN (e ->> 'contribution')::float8
                     WHEN jsonb_typeof(e -> 'weight') = 'number' THEN (e ->> 'weight')::float8
                END
         FROM jsonb_array_elements(CASE WHEN jsonb_typeof(f.signals) = 'array' THEN f.signals ELSE '[]'::jsonb END) e
       ) s
       WHERE ${inDay("f.created_at", b)} AND s.signal IS NOT NULL`,
  },
  {
    table: "rejections",
    columns: [
      ["bid_id", "VARCHAR"],
      ["auction_id", "VARCHAR"],
      ["bidder_id", "VARCHAR"],
      ["reason", "VARCHAR"],
      ["amount", "BIGINT"],
      ["currency", "VARCHAR"],
      ["placed_at", "TIMESTAMP"],
      ["received_at", "TIMESTAMP"],
      ["category", "VARCHAR"],
    ],
    query: (b) =>
      `SELECT r.bid_id, r.auction_id, r.bidder_id, r.reason, r.amount, r.currency,
              ${utc("r.placed_at")}, ${utc("r.received_at")}, a.category
       FROM silver.bid_rejections r LEFT JOIN silver.auctions a ON a.auction_id = r.auction_id
       WHERE ${inDay("coalesce(r.received_at, r.rejected_at)", b)}`,
  },
];

/**
 * Auctions whose effective end (auction_state.ends_at after anti-sniping,
 * else the scheduled ends_at) falls on the day but that have no transaction
 * yet: while there are any, the day's gold is incomplete (partial).
 */
export function openAuctionsQuery(b: DayBounds): string {
  const end = "coalesce(s.ends_at, a.ends_at)";
  return `SELECT count(*)::bigint AS n FROM silver.auctions a
          LEFT JOIN silver.auction_state s USING (auction_id)
          WHERE ${inDay(end, b)}
            AND NOT EXISTS (SELECT 1 FROM silver.transactions t WHERE t.auction_id = a.auction_id)`;
}

/**
 * GMV of the day straight from silver, independent of DuckDB: the reference
 * the gold totals must reconcile with. Currency as daily_revenue.sql keys it.
 */
export function silverGmvQuery(b: DayBounds): string {
  return `SELECT coalesce(t.currency, a.currency, 'XXX') AS currency,
                 sum(t.final_price)::text AS gmv, count(*)::bigint AS transactions
          FROM silver.transactions t LEFT JOIN silver.auctions a USING (auction_id)
          WHERE ${inDay("t.closed_at", b)} AND t.reserve_met AND t.winner_id IS NOT NULL
          GROUP BY 1 ORDER BY 1`;
}

/** DuckDB statement loading a PostgreSQL CSV export into an existing table. */
export function duckLoadSql(e: SilverExtract, file: string): string {
  const cols = e.columns.map(([n, t]) => `'${n}': '${t}'`).join(", ");
  return `INSERT INTO ${e.table} SELECT * FROM read_csv('${file.replace(/'/g, "''")}', header = false, auto_detect = false,
    columns = {${cols}}, delim = ',', quote = '"', escape = '"', allow_quoted_nulls = false)`;
}

export function duckCreateSql(e: SilverExtract): string {
  return `CREATE TABLE ${e.table} (${e.columns.map(([n, t]) => `${n} ${t}`).join(", ")})`;
}

/**
 * A client that moves CSV itself instead of through COPY protocol streams
 * (the embedded PGlite adapter of `gavel dev`, test/dev/pglite.ts,
 * has no pg-copy-streams wire). Same CSV files, same SQL.
 */
export interface CsvCopyClient {
  copyOutCsv(sql: string, file: string): Promise<void>;
  copyInCsv(table: string, columns: readonly string[], file: string): Promise<number>;
}

function csvCopy(client: unknown): CsvCopyClient | undefined {
  const c = client as Partial<CsvCopyClient>;
  return typeof c.copyOutCsv === "function" && typeof c.copyInCsv === "function"
    ? (c as CsvCopyClient)
    : undefined;
}

/** Creates the temporary key table in PostgreSQL (inside the transaction) and fills it from a CSV with a header. */
export async function loadKeyTable(client: pg.PoolClient, k: KeyTable, file: string): Promise<number> {
  await client.query(`CREATE TEMP TABLE ${k.table} (id text PRIMARY KEY) ON COMMIT DROP`);
  const n = await copyIn(client, k.table, ["id"], file);
  await client.query(`ANALYZE ${k.table}`);
  return n;
}

/** Streams `COPY (sql) TO STDOUT` as CSV into a file. */
export async function copyOut(client: pg.PoolClient, sql: string, file: string): Promise<void> {
  const own = csvCopy(client);
  if (own) return own.copyOutCsv(sql, file);
  const src = client.query(copyTo(`COPY (${sql}) TO STDOUT WITH (FORMAT csv)`));
  await pipeline(src, createWriteStream(file));
}

/** Streams a CSV file with a header into `COPY table (columns) FROM STDIN`; returns the row count. */
export async function copyIn(
  client: pg.PoolClient,
  table: string,
  columns: readonly string[],
  file: string,
): Promise<number> {
  const own = csvCopy(client);
  if (own) return own.copyInCsv(table, columns, file);
  const sink = client.query(
    copyFrom(
      `COPY ${table} (${columns.map((c) => `"${c}"`).join(", ")}) FROM STDIN WITH (FORMAT csv, HEADER true)`,
    ),
  );
  await pipeline(createReadStream(file), sink);
  return Number(sink.rowCount ?? 0);
}
