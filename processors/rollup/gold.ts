import { readFile } from "node:fs/promises";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { duckCreateSql, SILVER_EXTRACTS } from "./extract.ts";

/** The gold tables, in write order; each is computed by `sql/<name>.sql`. */
export const GOLD_TABLES = [
  "daily_revenue",
  "auction_performance",
  "bidder_analytics",
  "fraud_summary",
  "category_trends",
] as const;
export type GoldTable = (typeof GOLD_TABLES)[number];

const SQL_DIR = new URL("./sql/", import.meta.url);

async function loadGoldSql(table: GoldTable): Promise<string> {
  return readFile(new URL(`${table}.sql`, SQL_DIR), "utf8");
}

/** `2026-11-21T00:00:00.000Z` -> a DuckDB TIMESTAMP literal in UTC wall-clock time. */
function duckTimestamp(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) throw new Error(`invalid instant ${iso}`);
  return `TIMESTAMP '${d.toISOString().replace("T", " ").replace("Z", "")}'`;
}

/**
 * An in-memory DuckDB with the (empty) extract tables. Close with `closeDuck`.
 * `tempDir` is where DuckDB spills when a day does not fit in memory (its
 * default, `.tmp` in the working directory, is read-only in the pods).
 */
export async function openDuck(
  threads = 2,
  tempDir?: string,
): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> {
  const instance = await DuckDBInstance.create(":memory:", {
    threads: String(threads),
    ...(tempDir ? { temp_directory: tempDir } : {}),
  });
  const conn = await instance.connect();
  for (const e of SILVER_EXTRACTS) await conn.run(duckCreateSql(e));
  return { instance, conn };
}

export function closeDuck(d: { instance: DuckDBInstance; conn: DuckDBConnection }): void {
  d.conn.closeSync();
  d.instance.closeSync();
}

/** The one-row `params` table the gold SQL and checks read: the day, its UTC bounds and the run time. */
export async function setParams(
  conn: DuckDBConnection,
  p: { day: string; start: string; end: string; runAt: Date },
): Promise<void> {
  await conn.run("DROP TABLE IF EXISTS params");
  await conn.run(
    `CREATE TABLE params AS SELECT DATE '${p.day}' AS day, ${duckTimestamp(p.start)} AS day_start,
       ${duckTimestamp(p.end)} AS day_end, ${duckTimestamp(p.runAt.toISOString())} AS run_at`,
  );
}

/** Computes every gold table into DuckDB tables `g_<name>`; returns rows per table. */
export async function computeGold(conn: DuckDBConnection): Promise<Record<GoldTable, number>> {
  const rows = {} as Record<GoldTable, number>;
  for (const t of GOLD_TABLES) {
    const sql = await loadGoldSql(t);
    await conn.run(`CREATE OR REPLACE TABLE g_${t} AS ${sql}`);
    const r = await conn.runAndReadAll(`SELECT count(*) AS n FROM g_${t}`);
    rows[t] = Number((r.getRowObjectsJS()[0] as { n: bigint }).n);
  }
  return rows;
}

/** Column names of a DuckDB table, in order (the gold SQL's SELECT list). */
export async function duckColumns(conn: DuckDBConnection, table: string): Promise<string[]> {
  const r = await conn.runAndReadAll(
    `SELECT column_name FROM information_schema.columns WHERE table_name = '${table}' ORDER BY ordinal_position`,
  );
  return r.getRowObjectsJS().map((x) => String(x.column_name));
}

/** GMV and successful transactions per currency of the computed gold, for reconciliation. */
export async function goldGmv(
  conn: DuckDBConnection,
): Promise<Map<string, { gmv: bigint; transactions: bigint }>> {
  const r = await conn.runAndReadAll(
    "SELECT currency, CAST(sum(gmv) AS VARCHAR) AS gmv, sum(transactions) AS n FROM g_daily_revenue GROUP BY currency",
  );
  const out = new Map<string, { gmv: bigint; transactions: bigint }>();
  for (const row of r.getRowObjectsJS()) {
    const n = BigInt(String(row.n ?? 0));
    if (n === 0n && String(row.gmv) === "0") continue;
    out.set(String(row.currency), { gmv: BigInt(String(row.gmv).split(".")[0] ?? "0"), transactions: n });
  }
  return out;
}
