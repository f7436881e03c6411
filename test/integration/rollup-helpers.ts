import { randomUUID } from "node:crypto";
import pg from "pg";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import type { SilverFixture } from "../rollup-fixture.ts";

/**
 * A fresh database per test file (CREATE DATABASE gavel_test_<random>), so
 * the rollup and migration tests cannot see or disturb other tests' silver
 * and gold rows on the shared server.
 */
export async function createTestDatabase(): Promise<{
  pool: pg.Pool;
  url: string;
  drop: () => Promise<void>;
}> {
  const adminUrl = requireEnv(readConnectionConfig(), "databaseUrl", "DATABASE_URL");
  const name = `gavel_test_${randomUUID().replace(/-/g, "").slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const url = u.toString();
  const pool = new pg.Pool({ connectionString: url, max: 6 });
  // Idle connections are terminated by DROP DATABASE ... WITH (FORCE) at the end.
  pool.on("error", () => {});
  return {
    pool,
    url,
    drop: async () => {
      await pool.end();
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

async function insertRows(pool: pg.Pool, table: string, rows: readonly object[]): Promise<void> {
  for (const row of rows) {
    const entries = Object.entries(row).map(([k, v]) => [
      k,
      v !== null && typeof v === "object" ? JSON.stringify(v) : v,
    ]);
    await pool.query(
      `INSERT INTO ${table} (${entries.map(([k]) => k).join(", ")}) VALUES (${entries.map((_, i) => `$${i + 1}`).join(", ")})`,
      entries.map(([, v]) => v),
    );
  }
}

/** Writes a fixture into the silver tables. */
export async function insertFixture(pool: pg.Pool, f: SilverFixture): Promise<void> {
  await insertRows(pool, "silver.auctions", f.auctions);
  await insertRows(pool, "silver.users", f.users);
  await insertRows(pool, "silver.bids", f.bids);
  await insertRows(pool, "silver.transactions", f.transactions);
  await insertRows(pool, "silver.fraud_alerts", f.fraud_alerts);
  await insertRows(pool, "silver.bid_rejections", f.bid_rejections);
}
