import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { GetObjectCommand, type S3Client } from "@aws-sdk/client-s3";
import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { migrate } from "../../processors/db/migrate.ts";
import { GOLD_TABLES, type GoldTable } from "../../processors/rollup/gold.ts";
import { goldObjectKey, s3ClientFromConfig, s3Lake } from "../../processors/rollup/lake.ts";
import { dayBounds, type RollupDeps, rollupDay, rollupRange } from "../../processors/rollup/rollup.ts";
import { DAY, EXPECTED, fixture, goldRows } from "../rollup-fixture.ts";
import { createTestDatabase, deletePrefix, insertFixture } from "./rollup-helpers.ts";

const cfg = readConnectionConfig();
const bucket = requireEnv(cfg, "s3Bucket", "S3_BUCKET");
const prefix = `test-rollup-${randomUUID().slice(0, 8)}/`;
const logger = createLogger("rollup-test", "warn");

describe("gold rollup on real PostgreSQL and S3", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let s3: S3Client;
  let deps: RollupDeps;
  // The run time: shortly after the day under test, so nothing is "in the future".
  const now = () => new Date("2026-03-11T00:20:00Z");

  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.pool);
    await insertFixture(db.pool, fixture());
    s3 = s3ClientFromConfig(cfg);
    deps = { pool: db.pool, logger, lake: s3Lake(s3, bucket, prefix), now };
  });
  afterAll(async () => {
    await deletePrefix(s3, bucket, prefix);
    await db?.drop();
  });

  const gold = (table: GoldTable, day = DAY) => goldRows(db.pool, table, day);

  async function expectExpectedGold(): Promise<void> {
    for (const t of GOLD_TABLES) expect(await gold(t), t).toEqual(EXPECTED[t]);
  }

  it("writes the hand-checked gold values, records the run and uploads Parquet", async () => {
    const r = await rollupDay(deps, { day: DAY, timeZone: "UTC" });
    expect(r.status).toBe("succeeded");
    expect(r.partial).toBe(false);
    expect(r.rows).toEqual({
      daily_revenue: 3,
      auction_performance: 2,
      bidder_analytics: 4,
      fraud_summary: 1,
      category_trends: 3,
    });
    // b1 was placed the day before, but its auction closed on DAY: it is read.
    expect(r.extracted).toMatchObject({
      bids: 10,
      transactions: 5,
      auctions: 6,
      users: 3,
      fraud_alerts: 3,
      rejections: 3,
    });
    await expectExpectedGold();

    const { rows: runs } = await db.pool.query(
      "SELECT status, partial, rows, checks, duration_ms, finished_at FROM gold.rollup_runs WHERE day = $1",
      [DAY],
    );
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({
      status: "succeeded",
      partial: false,
      rows: { daily_revenue: 3, bidder_analytics: 4 },
    });
    expect(runs[0].finished_at).toBeInstanceOf(Date);
    const checks = runs[0].checks as { name: string; passed: boolean }[];
    expect(checks.map((c) => c.name)).toEqual([
      "positive_amounts",
      "valid_timestamps",
      "keys_resolve",
      "no_duplicate_bid_id",
      "currency_consistent",
      "bidders_known",
      "gmv_reconciles",
    ]);
    expect(checks.filter((c) => !c.passed).map((c) => c.name)).toEqual(["bidders_known"]);
    expect(r.objects).toEqual(GOLD_TABLES.map((t) => goldObjectKey(prefix, t, DAY)));
  });

  it("writes Parquet that DuckDB reads back with the same totals", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gavel-gold-"));
    try {
      for (const t of GOLD_TABLES) {
        const key = goldObjectKey(prefix, t, DAY);
        expect(key).toBe(`${prefix}gold/${t}/day=${DAY}/part-0.parquet`);
        const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
        const file = join(dir, key);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, await obj.Body!.transformToByteArray());
      }
      const duck = await DuckDBInstance.create(":memory:");
      const c = await duck.connect();
      const glob = (t: string) =>
        `read_parquet('${dir}/${prefix}gold/${t}/*/*.parquet', hive_partitioning = true)`;
      const rev = await c.runAndReadAll(
        `SELECT CAST(day AS VARCHAR) AS day, currency, CAST(sum(gmv) AS VARCHAR) AS gmv, CAST(sum(transactions) AS INTEGER) AS n,
                typeof(any_value(gmv)) AS gmv_type
         FROM ${glob("daily_revenue")} GROUP BY ALL ORDER BY currency`,
      );
      expect(rev.getRowObjectsJS()).toEqual([
        { day: DAY, currency: "EUR", gmv: "8600", n: 2, gmv_type: "DECIMAL(38,0)" },
        { day: DAY, currency: "USD", gmv: "1500", n: 1, gmv_type: "DECIMAL(38,0)" },
      ]);
      const bidders = await c.runAndReadAll(
        `SELECT CAST(sum(bids) AS INTEGER) AS bids, CAST(sum(wins) AS INTEGER) AS wins FROM ${glob("bidder_analytics")}`,
      );
      expect(bidders.getRowObjectsJS()).toEqual([{ bids: 9, wins: 3 }]);
      c.closeSync();
      duck.closeSync();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("is idempotent: a re-run and two concurrent runs replace the day without duplicates", async () => {
    expect((await rollupDay(deps, { day: DAY, timeZone: "UTC" })).status).toBe("succeeded");
    await expectExpectedGold();
    const both = await Promise.all([
      rollupDay(deps, { day: DAY, timeZone: "UTC" }),
      rollupDay(deps, { day: DAY, timeZone: "UTC" }),
    ]);
    expect(both.map((r) => r.status)).toEqual(["succeeded", "succeeded"]);
    await expectExpectedGold();
  });

  it("fails loudly on a bad record and keeps the previous gold of the day", async () => {
    await db.pool.query(
      `INSERT INTO silver.bids (bid_id, auction_id, bidder_id, amount, currency, placed_at, received_at)
       VALUES ('bad-neg', 'A2', 'U3', -500, 'EUR', '2026-03-10T13:00:00Z', '2026-03-10T13:00:01Z'),
              ('bad-orphan', 'no-such-auction', 'U3', 500, 'EUR', '2026-03-10T13:00:00Z', '2026-03-10T13:00:01Z')`,
    );
    try {
      const r = await rollupDay(deps, { day: DAY, timeZone: "UTC" });
      expect(r.status).toBe("failed");
      expect(r.error).toContain("FAILED positive_amounts: 1 violation(s)");
      expect(r.error).toContain("bid bad-neg amount -500");
      expect(r.error).toContain("bid bad-orphan -> unknown auction no-such-auction");
      await expectExpectedGold();
      const { rows } = await db.pool.query(
        "SELECT status, checks, error FROM gold.rollup_runs WHERE run_id = $1",
        [r.runId],
      );
      expect(rows[0].status).toBe("failed");
      const failed = (rows[0].checks as { name: string; passed: boolean; severity: string }[])
        .filter((c) => !c.passed && c.severity === "error")
        .map((c) => c.name);
      expect(failed).toEqual(["positive_amounts", "keys_resolve"]);
    } finally {
      await db.pool.query("DELETE FROM silver.bids WHERE bid_id LIKE 'bad-%'");
    }
  });

  it("fails on a transaction whose auction is unknown, keeping the previous gold", async () => {
    // keys_resolve fails (unknown auction, winner without a bid): nothing is written.
    await db.pool.query(
      `INSERT INTO silver.transactions (auction_id, winner_id, final_price, currency, reserve_met, closed_at)
       VALUES ('ghost', 'U1', 999, 'EUR', true, '2026-03-10T21:00:00Z')`,
    );
    try {
      const r = await rollupDay(deps, { day: DAY, timeZone: "UTC" });
      expect(r.status).toBe("failed");
      expect(r.checks.find((c) => c.name === "keys_resolve")?.passed).toBe(false);
      await expectExpectedGold();
    } finally {
      await db.pool.query("DELETE FROM silver.transactions WHERE auction_id = 'ghost'");
    }
  });

  it("rolls the day back when the Parquet upload fails (a bucket that does not exist)", async () => {
    await db.pool.query("UPDATE silver.transactions SET final_price = 6001 WHERE auction_id = 'A1'");
    await db.pool.query("UPDATE silver.bids SET amount = 6001 WHERE bid_id = 'b3'");
    try {
      const broken = { ...deps, lake: s3Lake(s3, `no-such-bucket-${randomUUID().slice(0, 8)}`, prefix) };
      await expect(rollupDay(broken, { day: DAY, timeZone: "UTC" })).rejects.toThrow();
      await expectExpectedGold();
      const { rows } = await db.pool.query(
        "SELECT status, error FROM gold.rollup_runs WHERE day = $1 ORDER BY run_id DESC LIMIT 1",
        [DAY],
      );
      expect(rows[0].status).toBe("failed");
      expect(rows[0].error).toMatch(/bucket/i);
    } finally {
      await db.pool.query("UPDATE silver.transactions SET final_price = 6000 WHERE auction_id = 'A1'");
      await db.pool.query("UPDATE silver.bids SET amount = 6000 WHERE bid_id = 'b3'");
    }
  });

  it("marks a day with open auctions partial, or skips it with skipPartial", async () => {
    const day = "2026-04-02";
    const f = fixture("p-");
    // Move the whole fixture 23 days later and leave A4 without its closing.
    const shift = (s: string) => new Date(new Date(s).getTime() + 23 * 86_400_000).toISOString();
    for (const a of f.auctions)
      Object.assign(a, { starts_at: shift(a.starts_at), ends_at: shift(a.ends_at) });
    for (const b of f.bids)
      Object.assign(b, { placed_at: shift(b.placed_at), received_at: shift(b.received_at) });
    f.transactions = f.transactions
      .filter((t) => t.auction_id !== "p-A4")
      .map((t) => ({ ...t, closed_at: shift(t.closed_at) }));
    f.fraud_alerts = [];
    f.bid_rejections = [];
    await insertFixture(db.pool, f);
    const later = () => new Date("2026-04-03T00:20:00Z");

    const skipped = await rollupDay({ ...deps, now: later }, { day, timeZone: "UTC", skipPartial: true });
    expect(skipped).toMatchObject({ status: "skipped", partial: true, openAuctions: 1 });
    expect(await gold("daily_revenue", day)).toEqual([]);

    const partial = await rollupDay({ ...deps, now: later }, { day, timeZone: "UTC" });
    expect(partial).toMatchObject({ status: "partial", partial: true, openAuctions: 1 });
    // The day's revenue as in EXPECTED, but for A4, still open: art in EUR has one closed auction (A3).
    const [artEur, ...rest] = EXPECTED.daily_revenue;
    expect(await gold("daily_revenue", day)).toEqual([{ ...artEur, auctions_closed: 1 }, ...rest]);
    const { rows } = await db.pool.query(
      "SELECT status, partial, open_auctions FROM gold.rollup_runs WHERE day = $1 ORDER BY run_id",
      [day],
    );
    expect(rows).toEqual([
      { status: "skipped", partial: true, open_auctions: "1" },
      { status: "partial", partial: true, open_auctions: "1" },
    ]);

    // The auction closes; the next run completes the day.
    await db.pool.query(
      `INSERT INTO silver.transactions (auction_id, winner_id, final_price, currency, reserve_met, closed_at)
       VALUES ('p-A4', NULL, NULL, 'EUR', false, $1)`,
      [shift("2026-03-10T22:00:00Z")],
    );
    const done = await rollupDay({ ...deps, now: later }, { day, timeZone: "UTC" });
    expect(done).toMatchObject({ status: "succeeded", partial: false, openAuctions: 0 });
    expect((await gold("daily_revenue", day))[0]).toMatchObject({
      category: "art",
      currency: "EUR",
      auctions_closed: 2,
    });
  });

  it("backfills a range idempotently, one atomic replacement per day", async () => {
    const days = ["2026-03-09", "2026-03-10", "2026-03-11"];
    const seen: string[] = [];
    const first = await rollupRange(deps, {
      days,
      timeZone: "UTC",
      onDay: (r, i, n) => seen.push(`${i + 1}/${n} ${r.day}`),
    });
    expect(seen).toEqual(["1/3 2026-03-09", "2/3 2026-03-10", "3/3 2026-03-11"]);
    // A5 ends on 03-11 and has not closed: that day is partial.
    expect(first.map((r) => r.status)).toEqual(["succeeded", "succeeded", "partial"]);
    const count = async () =>
      (
        await db.pool.query<{ day: Date; n: string }>(
          "SELECT to_char(day, 'YYYY-MM-DD') AS day, count(*) AS n FROM gold.bidder_analytics WHERE day BETWEEN '2026-03-09' AND '2026-03-11' GROUP BY 1 ORDER BY 1",
        )
      ).rows;
    const before = await count();
    // 03-09: U1's bid b1 on A1; 03-10: 4 bidders; 03-11: nothing.
    expect(before).toEqual([
      { day: "2026-03-09", n: "1" },
      { day: "2026-03-10", n: "4" },
    ]);
    const second = await rollupRange(deps, { days, timeZone: "UTC" });
    expect(second.map((r) => r.status)).toEqual(["succeeded", "succeeded", "partial"]);
    expect(await count()).toEqual(before);
    await expectExpectedGold();
    // Every day has exactly one fraud_summary row.
    const fs = await db.pool.query(
      "SELECT count(*)::int AS n FROM gold.fraud_summary WHERE day BETWEEN '2026-03-09' AND '2026-03-11'",
    );
    expect(fs.rows[0].n).toBe(3);
  });

  it("bounds a day by the midnights of the time zone", async () => {
    expect(await dayBounds(db.pool, DAY, "America/New_York")).toEqual({
      day: DAY,
      start: "2026-03-10T04:00:00.000Z",
      end: "2026-03-11T04:00:00.000Z",
    });
    // Daylight saving starts in Berlin on 2026-03-29: a 23-hour day.
    expect(await dayBounds(db.pool, "2026-03-29", "Europe/Berlin")).toEqual({
      day: "2026-03-29",
      start: "2026-03-28T23:00:00.000Z",
      end: "2026-03-29T22:00:00.000Z",
    });
    // In New York, DAY starts at 04:00 UTC: b2..b10 placed after it stay; A6's close at 23:00 UTC too.
    const r = await rollupDay(deps, { day: DAY, timeZone: "America/New_York" });
    expect(r.status).toBe("succeeded");
    expect(r.rows.daily_revenue).toBe(3);
    // Back to UTC for the other tests' expectations.
    await rollupDay(deps, { day: DAY, timeZone: "UTC" });
    await expectExpectedGold();
  });
});
