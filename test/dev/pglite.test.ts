import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { migrate } from "../../processors/db/migrate.ts";
import { GOLD_TABLES } from "../../processors/rollup/gold.ts";
import { rollupDay } from "../../processors/rollup/rollup.ts";
import { folderObjectStore, goldLakeOn } from "../../processors/storage/objects.ts";
import { DAY, EXPECTED, fixture, goldRows } from "../rollup-fixture.ts";
import { PglitePool } from "./pglite.ts";

const logger = createLogger("pglite-test", "silent");

// PGlite boots PostgreSQL in WebAssembly: seconds on an idle machine, more on a busy one.
describe("PglitePool: the pg.Pool subset on embedded PostgreSQL", { timeout: 180_000 }, () => {
  let db: PglitePool;
  let dir: string;

  beforeAll(async () => {
    db = await PglitePool.open();
    dir = await mkdtemp(join(tmpdir(), "gavel-pglite-"));
  }, 180_000);
  afterAll(async () => {
    await db?.end();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs the migrations (twice: the second finds nothing to do)", async () => {
    const first = await migrate(db.asPgPool(), { logger });
    expect(first.applied.length).toBeGreaterThan(0);
    expect((await migrate(db.asPgPool(), { logger })).applied).toEqual([]);
    const { rows } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema IN ('silver', 'gold')",
    );
    expect(Number(rows[0]!.n)).toBeGreaterThanOrEqual(10);
  });

  it("returns values like node-postgres (int8 and numeric as text, timestamptz as Date, jsonb parsed)", async () => {
    const { rows, rowCount } = await db.query<{ a: string; b: string; c: Date; d: unknown }>(
      "SELECT $1::bigint AS a, $2::numeric AS b, $3::timestamptz AS c, $4::jsonb AS d",
      [9007199254740993n, "12.50", new Date("2026-03-10T12:00:00Z"), JSON.stringify({ x: [1] })],
    );
    expect(rowCount).toBe(1);
    expect(rows[0]).toEqual({
      a: "9007199254740993",
      b: "12.50",
      c: new Date("2026-03-10T12:00:00Z"),
      d: { x: [1] },
    });
  });

  it("keeps a client's transaction apart from other clients' statements", async () => {
    await db.query("CREATE TABLE iso (v int)");
    const a = await db.connect();
    await a.query("BEGIN");
    await a.query("INSERT INTO iso VALUES (1)");
    let bDone = false;
    const b = db.query("INSERT INTO iso VALUES (2)").then(() => {
      bDone = true;
    });
    await new Promise((r) => setTimeout(r, 50));
    expect(bDone).toBe(false); // waits for a's transaction
    await a.query("ROLLBACK");
    a.release();
    await b;
    expect((await db.query<{ v: number }>("SELECT v FROM iso")).rows).toEqual([{ v: 2 }]);
    // A client released inside a transaction: rolled back, the connection is free again.
    const c = await db.connect();
    await c.query("BEGIN");
    await c.query("INSERT INTO iso VALUES (3)");
    c.release();
    expect((await db.query<{ n: string }>("SELECT count(*) AS n FROM iso")).rows[0]!.n).toBe("1");
  });

  it("rolls up the hand-checked silver fixture to the expected gold, with Parquet in a folder", async () => {
    const f = fixture();
    for (const [table, rows] of [
      ["silver.auctions", f.auctions],
      ["silver.users", f.users],
      ["silver.bids", f.bids],
      ["silver.transactions", f.transactions],
      ["silver.fraud_alerts", f.fraud_alerts],
      ["silver.bid_rejections", f.bid_rejections],
    ] as const) {
      for (const row of rows as readonly object[]) {
        const e = Object.entries(row).map(([k, v]) => [
          k,
          v !== null && typeof v === "object" ? JSON.stringify(v) : v,
        ]);
        await db.query(
          `INSERT INTO ${table} (${e.map(([k]) => k).join(", ")}) VALUES (${e.map((_, i) => `$${i + 1}`).join(", ")})`,
          e.map(([, v]) => v),
        );
      }
    }
    const store = folderObjectStore(dir);
    const r = await rollupDay(
      {
        pool: db.asPgPool(),
        logger,
        lake: goldLakeOn(store, "dev/"),
        now: () => new Date("2026-03-11T00:20:00Z"),
      },
      { day: DAY, timeZone: "UTC" },
    );
    expect(r.status).toBe("succeeded");
    for (const t of GOLD_TABLES) expect(await goldRows(db, t), t).toEqual(EXPECTED[t]);
    const keys = (await store.list("dev/gold/")).map((o) => o.key);
    expect(keys).toEqual(GOLD_TABLES.map((t) => `dev/gold/${t}/day=${DAY}/part-0.parquet`).sort());
    // Idempotent re-run on the same embedded database.
    expect(
      (
        await rollupDay(
          { pool: db.asPgPool(), logger, now: () => new Date("2026-03-11T00:20:00Z") },
          { day: DAY, timeZone: "UTC" },
        )
      ).status,
    ).toBe("succeeded");
    const runs = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM gold.rollup_runs WHERE status = 'succeeded'",
    );
    expect(runs.rows[0]!.n).toBe("2");
  });
});
