import { randomUUID } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from "@aws-sdk/client-s3";
import pg from "pg";
import { stringify } from "yaml";
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

/** Writes `<dir>/pipeline.yaml`, the AuctionPipeline `name` with `spec`, as a user would for `-f`; returns its path. */
export async function writePipelineFile(
  dir: string,
  name: string,
  spec: Record<string, unknown>,
): Promise<string> {
  const file = join(dir, "pipeline.yaml");
  await writeFile(
    file,
    stringify({ apiVersion: "gavel.dev/v1alpha1", kind: "AuctionPipeline", metadata: { name }, spec }),
  );
  return file;
}

/** Deletes what a test wrote under `prefix` in the shared bucket (up to 1000 objects, more than any test writes). */
export async function deletePrefix(s3: S3Client, bucket: string, prefix: string): Promise<void> {
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
  const keys = (listed.Contents ?? []).map((o) => ({ Key: o.Key! }));
  if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
}
