/**
 * The same `gavel dev --once` with the test environment's variables set: it
 * must run on real Kafka, PostgreSQL and S3 instead of the embedded
 * stand-ins. A unique pipeline name (topics, S3 prefix) and a fresh database
 * keep the run apart from other tests.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { KafkajsTransport } from "../../processors/kafka/kafkajs.ts";
import { s3ClientFromConfig } from "../../processors/rollup/lake.ts";
import type { DevSummary } from "../dev/summary.ts";
import { runGavelDev } from "./dev-helpers.ts";
import { createTestDatabase, deletePrefix, writePipelineFile } from "./rollup-helpers.ts";

describe("gavel dev --once on the real services of the test environment", () => {
  const cfg = readConnectionConfig();
  const name = `devtest-${randomUUID().slice(0, 8)}`;
  const bucket = requireEnv(cfg, "s3Bucket", "S3_BUCKET");
  const s3 = s3ClientFromConfig(cfg);
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let dir: string | undefined;

  afterAll(async () => {
    await deletePrefix(s3, bucket, `${name}/`);
    const t = new KafkajsTransport({
      brokers: requireEnv(cfg, "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS"),
      clientId: "dev-test-cleanup",
      logger: createLogger("dev-test", "error"),
    });
    const admin = await t.admin();
    const have = await admin.describeTopics(
      [
        "bids",
        "bids.accepted",
        "bids.rejected",
        "prices",
        "transactions",
        "fraud-alerts",
        "auctions",
        "users",
      ].map((s) => `${name}.${s}`),
    );
    await admin.deleteTopics([...have.keys()]).catch(() => undefined);
    await admin.close();
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("writes silver and gold to PostgreSQL, bronze and gold to S3, with the same accounting", {
    timeout: 400_000,
  }, async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), "gavel-dev-services-"));
    const pipelineFile = await writePipelineFile(dir, name, {
      kafka: { clusterName: "testenv", bootstrapServers: cfg.kafkaBootstrapServers },
      topics: { partitions: 4, replicas: 1 },
      storage: {
        postgres: { secretRef: { name: "unused" } },
        s3: { bucket, credentialsSecretRef: { name: "unused" } },
      },
    });
    const r = await runGavelDev(
      [
        "-f",
        pipelineFile,
        "--once",
        "--auctions",
        "30",
        "--bids",
        "1000",
        "--seed",
        "11",
        "--port",
        "0",
        "--data-dir",
        dir,
      ],
      { ...process.env, DATABASE_URL: db.url },
    );
    expect(r.code, `stderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-3000)}`).toBe(0);
    expect(r.stderr).toContain("log:      Kafka at");
    expect(r.stderr).toContain("database: PostgreSQL at");
    expect(r.stderr).toContain(`objects:  S3 s3://${bucket}/`);

    const s = JSON.parse(await readFile(join(dir, "summary.json"), "utf8")) as DevSummary;
    expect(s.bids.generated).toBe(1000);
    expect(s.bids.unaccounted).toBe(0);
    expect(s.auctions.closed).toBe(30);
    // With real services, ids get a run suffix (they outlive the run).
    expect(s.prefix).toMatch(/^g11r[0-9a-f]{6}$/);

    // The data is in the real database...
    const p = `${s.prefix}-%`;
    const q = async (sql: string) => Number((await db!.pool.query<{ n: string }>(sql, [p])).rows[0]!.n);
    expect(await q("SELECT count(*) AS n FROM silver.bids WHERE bid_id LIKE $1")).toBe(s.bids.accepted);
    expect(await q("SELECT count(*) AS n FROM silver.transactions WHERE auction_id LIKE $1")).toBe(30);
    expect(
      await q(
        "SELECT count(*) AS n FROM silver.bid_rejections WHERE bid_id LIKE $1 OR auction_id LIKE $1 OR (bid_id IS NULL AND auction_id IS NULL)",
      ),
    ).toBe(s.bids.rejected);
    const gold = await db.pool.query<{ n: string }>(
      "SELECT count(*) AS n FROM gold.rollup_runs WHERE status = 'succeeded'",
    );
    expect(Number(gold.rows[0]!.n)).toBe(s.gold.length);
    expect(s.gold.every((g) => g.status === "succeeded")).toBe(true);

    // ... and in S3: bronze objects and one Parquet file per gold table and day.
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${name}/` }));
    const keys = (listed.Contents ?? []).map((o) => o.Key!);
    expect(keys.some((k) => k.startsWith(`${name}/bronze/topic=${name}.bids/`))).toBe(true);
    expect(keys.filter((k) => k.startsWith(`${name}/gold/`) && k.endsWith(".parquet"))).toHaveLength(
      5 * s.gold.length,
    );
  });
});
