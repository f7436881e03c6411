import { cp, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MIGRATIONS_DIR, MigrationError, migrate, migrationStatus } from "../../processors/db/migrate.ts";
import { createTestDatabase } from "./rollup-helpers.ts";

describe("migrate on real PostgreSQL", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  it("applies every migration exactly once when many processors start at the same time", async () => {
    const before = await migrationStatus(db.pool);
    expect(before.every((r) => r.state === "pending")).toBe(true);
    const results = await Promise.all(Array.from({ length: 5 }, () => migrate(db.pool)));
    const applied = results.flatMap((r) => r.applied.map((m) => m.version));
    expect(applied.sort()).toEqual(before.map((r) => r.version).sort());
    expect(new Set(results.map((r) => r.current)).size).toBe(1);
    const { rows } = await db.pool.query<{ n: string }>("SELECT count(*) AS n FROM public.gavel_migrations");
    expect(Number(rows[0]!.n)).toBe(before.length);
    expect((await migrationStatus(db.pool)).every((r) => r.state === "applied")).toBe(true);
    expect((await migrate(db.pool)).applied).toEqual([]);
  });

  it("creates the contract tables and columns of docs/domain.md", async () => {
    const contract: Record<string, string[]> = {
      "silver.auctions": [
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
      ],
      "silver.users": ["user_id", "created_at", "country", "rating"],
      "silver.bids": [
        "bid_id",
        "auction_id",
        "bidder_id",
        "amount",
        "currency",
        "placed_at",
        "received_at",
        "fraud_score",
      ],
      "silver.bid_rejections": [
        "bid_id",
        "auction_id",
        "bidder_id",
        "reason",
        "detail",
        "placed_at",
        "received_at",
      ],
      "silver.auction_state": [
        "auction_id",
        "current_price",
        "leader_id",
        "bid_count",
        "ends_at",
        "status",
        "version",
      ],
      "silver.transactions": ["auction_id", "winner_id", "final_price", "reserve_met", "closed_at"],
      "silver.fraud_alerts": ["bid_id", "auction_id", "bidder_id", "score", "signals", "created_at"],
      "gold.daily_revenue": ["day", "category", "gmv", "transactions", "avg_final_price"],
      "gold.auction_performance": [
        "day",
        "category",
        "auctions_closed",
        "success_rate",
        "avg_bids_per_auction",
        "avg_price_increase_pct",
        "median_time_to_first_bid_s",
      ],
      "gold.bidder_analytics": [
        "day",
        "bidder_id",
        "bids",
        "auctions_entered",
        "wins",
        "win_rate",
        "segment",
      ],
      "gold.fraud_summary": ["day", "alerts", "quarantined", "top_signal"],
      "gold.category_trends": ["day", "category"],
      "gold.rollup_runs": [
        "day",
        "started_at",
        "finished_at",
        "status",
        "rows",
        "duration_ms",
        "checks",
        "partial",
      ],
    };
    for (const [table, cols] of Object.entries(contract)) {
      const [schema, name] = table.split(".");
      const { rows } = await db.pool.query<{ column_name: string }>(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2",
        [schema, name],
      );
      const have = new Set(rows.map((r) => r.column_name));
      expect(
        cols.filter((c) => !have.has(c)),
        table,
      ).toEqual([]);
    }
    const pk = await db.pool.query<{ col: string }>(
      `SELECT a.attname AS col FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = 'silver.bids'::regclass AND i.indisprimary`,
    );
    expect(pk.rows.map((r) => r.col)).toEqual(["bid_id"]);
  });

  it("makes a redelivered rejection a no-op through its natural key", async () => {
    const insert = (pool: pg.Pool) =>
      pool.query(
        `INSERT INTO silver.bid_rejections (bid_id, reason, source_topic, source_partition, source_offset)
         VALUES ('r1', 'duplicate', 't.bids', 0, 42) ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING`,
      );
    await insert(db.pool);
    await insert(db.pool);
    const { rows } = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM silver.bid_rejections WHERE bid_id = 'r1'",
    );
    expect(Number(rows[0]!.n)).toBe(1);
  });

  it("keeps silver.dead_letters once per Kafka position, with the raw bytes", async () => {
    const pk = await db.pool.query<{ col: string }>(
      `SELECT a.attname AS col FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
       WHERE i.indrelid = 'silver.dead_letters'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)`,
    );
    expect(pk.rows.map((r) => r.col)).toEqual(["source_topic", "source_partition", "source_offset"]);
    const raw = Buffer.from([0xff, 0x00, 0x7b]);
    const insert = (reason: string) =>
      db.pool.query(
        `INSERT INTO silver.dead_letters (source_topic, source_partition, source_offset, target_table, reason, key, value)
         VALUES ('t.transactions', 1, 7, 'silver.transactions', $1, 'a1', $2)
         ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING`,
        [reason, raw],
      );
    await insert("not_json");
    await insert("invalid_field");
    const { rows } = await db.pool.query<{ reason: string; value: Buffer; recorded_at: Date }>(
      "SELECT reason, value, recorded_at FROM silver.dead_letters WHERE source_topic = 't.transactions'",
    );
    expect(rows.map((r) => r.reason)).toEqual(["not_json"]);
    expect(Buffer.compare(rows[0]!.value, raw)).toBe(0);
    expect(rows[0]!.recorded_at).toBeInstanceOf(Date);
  });

  it("refuses to run when an applied migration file was edited, and applies a new one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "gavel-mig-"));
    await cp(MIGRATIONS_DIR, dir, { recursive: true });
    await writeFile(join(dir, "9999_extra.sql"), "CREATE TABLE silver.migrate_test_extra (id int);");
    const res = await migrate(db.pool, { dir });
    expect(res.applied.map((m) => m.file)).toEqual(["9999_extra.sql"]);
    await writeFile(join(dir, "9999_extra.sql"), "CREATE TABLE silver.migrate_test_extra (id bigint);");
    await expect(migrate(db.pool, { dir })).rejects.toThrow(MigrationError);
    await expect(migrate(db.pool, { dir })).rejects.toThrow(/9999_extra.sql was edited after it was applied/);
    const st = await migrationStatus(db.pool, { dir });
    expect(st.find((r) => r.version === 9999)?.state).toBe("modified");
    // The shipped files do not know 9999: reported, not an error.
    expect((await migrationStatus(db.pool)).find((r) => r.version === 9999)?.state).toBe("unknown");
  });
});
