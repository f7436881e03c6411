import type { DuckDBConnection } from "@duckdb/node-api";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  DAY,
  EXPECTED,
  EXPECTED_GMV,
  fixture,
  normalizeRow,
  type SilverFixture,
} from "../../test/rollup-fixture.ts";
import { failedChecks, formatCheckReport, runChecks } from "./checks.ts";
import { SILVER_EXTRACTS } from "./extract.ts";
import { closeDuck, computeGold, GOLD_TABLES, goldGmv, openDuck, setParams } from "./gold.ts";

/**
 * The gold SQL and the checks on DuckDB alone: the fixture is loaded as the
 * extract of DAY would be (the extract queries themselves are covered by the
 * integration tests on PostgreSQL).
 */

function sqlValue(v: unknown, type: string): string {
  if (v === null || v === undefined) return "NULL";
  if (type === "TIMESTAMP")
    return `TIMESTAMP '${new Date(String(v)).toISOString().replace("T", " ").replace("Z", "")}'`;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return `'${String(v).replace(/'/g, "''")}'`;
}

function flattenSignals(signals: unknown): [string, number | null][] {
  if (Array.isArray(signals)) {
    return signals.map((e) =>
      typeof e === "string"
        ? [e, null]
        : [String(e.name ?? e.signal), typeof e.contribution === "number" ? e.contribution : null],
    );
  }
  return Object.entries(signals as Record<string, number>).map(([k, v]) => [
    k,
    typeof v === "number" ? v : null,
  ]);
}

async function load(conn: DuckDBConnection, f: SilverFixture): Promise<void> {
  const category = new Map(f.auctions.map((a) => [a.auction_id, a.category]));
  const rows: Record<string, readonly object[]> = {
    transactions: f.transactions,
    bids: f.bids,
    auctions: f.auctions,
    users: f.users,
    fraud_alerts: f.fraud_alerts,
    fraud_signals: f.fraud_alerts.flatMap((a) =>
      flattenSignals(a.signals).map(([signal, contribution]) => ({ bid_id: a.bid_id, signal, contribution })),
    ),
    rejections: f.bid_rejections.map((r) => ({
      ...r,
      category: r.auction_id ? category.get(r.auction_id) : null,
    })),
  };
  for (const e of SILVER_EXTRACTS) {
    for (const r of rows[e.table] ?? []) {
      await conn.run(
        `INSERT INTO ${e.table} VALUES (${e.columns.map(([n, t]) => sqlValue((r as Record<string, unknown>)[n], t)).join(", ")})`,
      );
    }
  }
}

async function table(conn: DuckDBConnection, name: string): Promise<Record<string, unknown>[]> {
  const r = await conn.runAndReadAll(`SELECT * EXCLUDE (day) FROM g_${name}`);
  return (r.getRowObjectsJson() as Record<string, unknown>[]).map(normalizeRow);
}

describe("gold SQL on the hand-checked dataset", () => {
  let duck: Awaited<ReturnType<typeof openDuck>>;
  beforeEach(async () => {
    duck = await openDuck(1);
    await setParams(duck.conn, {
      day: DAY,
      start: `${DAY}T00:00:00Z`,
      end: "2026-03-11T00:00:00Z",
      runAt: new Date("2026-03-11T00:15:00Z"),
    });
  });
  afterEach(() => closeDuck(duck));

  it("computes every gold table as defined", async () => {
    await load(duck.conn, fixture());
    const rows = await computeGold(duck.conn);
    expect(Object.keys(rows)).toEqual([...GOLD_TABLES]);
    for (const t of GOLD_TABLES) {
      expect.soft(await table(duck.conn, t), t).toEqual(EXPECTED[t]);
    }
    const gmv = await goldGmv(duck.conn);
    expect(Object.fromEntries([...gmv].map(([c, v]) => [c, v.gmv]))).toEqual(EXPECTED_GMV);
  });

  it("passes the checks, warning about the unregistered bidder", async () => {
    await load(duck.conn, fixture());
    const res = await runChecks(duck.conn);
    expect(failedChecks(res)).toEqual([]);
    const warn = res.find((r) => r.name === "bidders_known");
    expect(warn).toMatchObject({
      passed: false,
      violations: 1,
      samples: ["bidder U4 is not in silver.users"],
    });
  });

  it("fails positive_amounts, valid_timestamps, keys_resolve, duplicates and currency with a clear report", async () => {
    const f = fixture();
    f.bids.push(
      { ...f.bids[1]!, bid_id: "neg", amount: -5 },
      {
        ...f.bids[1]!,
        bid_id: "future",
        placed_at: "2027-01-01T00:00:00Z",
        received_at: "2027-01-01T00:00:00Z",
      },
      { ...f.bids[1]!, bid_id: "orphan", auction_id: "nope" },
      { ...f.bids[1]!, bid_id: "usd", currency: "USD" },
      { ...f.bids[2]! },
    );
    await load(duck.conn, f);
    const res = await runChecks(duck.conn);
    const failed = failedChecks(res).map((r) => [r.name, r.violations]);
    expect(failed).toEqual([
      ["positive_amounts", 1],
      ["valid_timestamps", 1],
      ["keys_resolve", 1],
      ["no_duplicate_bid_id", 1],
      ["currency_consistent", 1],
    ]);
    const report = formatCheckReport(res);
    expect(report).toContain("FAILED positive_amounts: 1 violation(s)");
    expect(report).toContain("bid neg amount -5");
    expect(report).toContain("bid orphan -> unknown auction nope");
    expect(report).toContain("bid b3 appears 2 times");
  });

  it("writes one fraud_summary row and no other rows for an empty day", async () => {
    const rows = await computeGold(duck.conn);
    expect(rows).toEqual({
      daily_revenue: 0,
      auction_performance: 0,
      bidder_analytics: 0,
      fraud_summary: 1,
      category_trends: 0,
    });
    expect(await table(duck.conn, "fraud_summary")).toEqual([
      {
        alerts: 0,
        quarantined: 0,
        top_signal: null,
        avg_score: null,
        bidders_flagged: 0,
        auctions_affected: 0,
      },
    ]);
  });
});
