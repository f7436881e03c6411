import { spawn } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BENCH_DAY, generateSilver } from "../../bench/rollup.ts";
import { createLogger } from "../../lib/log.ts";
import { migrate } from "../../processors/db/migrate.ts";
import { dayNumber } from "../../processors/rollup/days.ts";
import { ROLLUP_LOCK_NS, rollupDay } from "../../processors/rollup/rollup.ts";
import { createTestDatabase } from "./rollup-helpers.ts";

/**
 * kill -9 of `gavel rollup` in the middle of a day: the previous gold of the
 * day stays, the advisory lock goes with the connection, the killed run is
 * visible as `running` without finished_at, and the next run completes.
 */

const root = new URL("../../", import.meta.url).pathname;
const logger = createLogger("rollup-crash-test", "warn");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("a rollup killed mid-run", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.pool);
    await generateSilver(db.pool, 150_000, 2_000, BENCH_DAY);
  });
  afterAll(async () => db?.drop());

  const lockHeld = async () => {
    const { rows } = await db.pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks
       WHERE locktype = 'advisory' AND classid = $1 AND objid = $2 AND objsubid = 2 AND granted
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [ROLLUP_LOCK_NS, dayNumber(BENCH_DAY)],
    );
    return rows[0]!.n > 0;
  };
  const gmv = async () =>
    (
      await db.pool.query<{ gmv: string }>(
        "SELECT sum(gmv)::text AS gmv FROM gold.daily_revenue WHERE day = $1",
        [BENCH_DAY],
      )
    ).rows[0]!.gmv;

  it("leaves the previous gold and lets the next run finish", async () => {
    const deps = { pool: db.pool, logger, now: () => new Date(`${BENCH_DAY}T23:59:59Z`) };
    expect((await rollupDay(deps, { day: BENCH_DAY, timeZone: "UTC" })).status).toBe("succeeded");
    const before = await gmv();
    // Silver changes: one more minor unit on one sale, so a completed new run would change GMV.
    await db.pool.query(
      "UPDATE silver.transactions SET final_price = final_price + 1 WHERE auction_id = 'a1'",
    );
    await db.pool.query(
      "UPDATE silver.bids SET amount = amount + 1 WHERE bid_id = (SELECT winning_bid_id FROM silver.transactions WHERE auction_id = 'a1')",
    );

    const child = spawn(
      join(root, "node_modules/.bin/node"),
      [join(root, "bin/gavel"), "rollup", "--date", BENCH_DAY, "--no-parquet"],
      { env: { ...process.env, DATABASE_URL: db.url, LOG_LEVEL: "warn" }, stdio: "ignore" },
    );
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on("exit", (code, signal) => resolve({ code, signal })),
    );
    const deadline = Date.now() + 90_000;
    while (!(await lockHeld())) {
      if (Date.now() > deadline) throw new Error("the rollup never took its lock");
      await sleep(20);
    }
    child.kill("SIGKILL");
    expect(await exited).toEqual({ code: null, signal: "SIGKILL" });

    // PostgreSQL ends the session and releases the lock with it.
    const released = Date.now() + 30_000;
    while (await lockHeld()) {
      if (Date.now() > released) throw new Error("the advisory lock outlived the killed rollup");
      await sleep(100);
    }
    expect(await gmv()).toBe(before);
    const { rows } = await db.pool.query(
      "SELECT status, finished_at FROM gold.rollup_runs WHERE day = $1 ORDER BY run_id",
      [BENCH_DAY],
    );
    expect(rows.map((r) => [r.status, r.finished_at])).toEqual([
      ["succeeded", expect.any(Date)],
      ["running", null],
    ]);

    expect((await rollupDay(deps, { day: BENCH_DAY, timeZone: "UTC" })).status).toBe("succeeded");
    expect(BigInt(await gmv())).toBe(BigInt(before) + 1n);
  });
});
