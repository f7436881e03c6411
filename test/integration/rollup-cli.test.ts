import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ListObjectsV2Command } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAST_ROLLUP_ANNOTATION } from "../../api/v1alpha1/types.ts";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { parseFraudModel, parseLastRollup } from "../../operator/controller/status.ts";
import { migrate } from "../../processors/db/migrate.ts";
import { GOLD_TABLES } from "../../processors/rollup/gold.ts";
import { s3ClientFromConfig } from "../../processors/rollup/lake.ts";
import { DAY, fixture } from "../rollup-fixture.ts";
import { createNamespace, custom, ensureCrd, G } from "./operator-support.ts";
import { createTestDatabase, deletePrefix, insertFixture, writePipelineFile } from "./rollup-helpers.ts";

/** `gavel rollup` as the CronJob runs it: a real process, a pipeline file, the annotation on the API server. */

const root = new URL("../../", import.meta.url).pathname;
const cfg = readConnectionConfig();
const bucket = requireEnv(cfg, "s3Bucket", "S3_BUCKET");
const prefix = `test-rollup-cli-${randomUUID().slice(0, 8)}/`;

function gavel(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      join(root, "node_modules/.bin/node"),
      [join(root, "bin/gavel"), ...args],
      { env: { ...process.env, ...env, LOG_LEVEL: "warn" }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe("gavel rollup (CLI)", () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  let pipelineFile: string;
  let namespace: string;
  const name = "rollup";

  beforeAll(async () => {
    db = await createTestDatabase();
    await migrate(db.pool);
    await insertFixture(db.pool, fixture());
    dir = await mkdtemp(join(tmpdir(), "gavel-rollup-cli-"));
    pipelineFile = await writePipelineFile(dir, name, {
      kafka: { clusterName: "test", bootstrapServers: "127.0.0.1:9092" },
      storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket, prefix } },
      rollup: { timeZone: "UTC" },
      fraud: { model: { minRows: 100 } },
    });
    await ensureCrd();
    namespace = await createNamespace("rollup-cli");
    await custom.createNamespacedCustomObject({
      ...G,
      namespace,
      body: {
        apiVersion: "gavel.dev/v1alpha1",
        kind: "AuctionPipeline",
        metadata: { name, namespace },
        spec: {
          kafka: { clusterName: "test", bootstrapServers: "127.0.0.1:9092" },
          storage: { postgres: { secretRef: { name: "pg" } }, s3: { bucket } },
        },
      },
    });
  });

  afterAll(async () => {
    const s3 = s3ClientFromConfig(cfg);
    await deletePrefix(s3, bucket, prefix);
    await rm(dir, { recursive: true, force: true });
    await db?.drop();
  });

  /** The annotation as written, and as the operator reads it into status.lastRollup. */
  async function annotation(): Promise<{
    raw: Record<string, unknown>;
    status: ReturnType<typeof parseLastRollup>;
  }> {
    const obj = (await custom.getNamespacedCustomObject({ ...G, namespace, name })) as {
      metadata: { annotations?: Record<string, string> };
    };
    return {
      raw: JSON.parse(obj.metadata.annotations?.[LAST_ROLLUP_ANNOTATION] ?? "{}"),
      status: parseLastRollup(obj.metadata.annotations),
    };
  }

  it("rolls up a day from the pipeline file, writes Parquet under its prefix and annotates the pipeline", async () => {
    const r = await gavel(
      ["rollup", "--date", DAY, "-f", pipelineFile, "--pipeline-ref", `${namespace}/${name}`],
      {
        DATABASE_URL: db.url,
      },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /^2026-03-10 succeeded .* daily_revenue=3 auction_performance=2 bidder_analytics=4 fraud_summary=1 category_trends=3/,
    );
    const listed = await s3ClientFromConfig(cfg).send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }),
    );
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(
      GOLD_TABLES.map((t) => `${prefix}gold/${t}/day=${DAY}/part-0.parquet`).sort(),
    );
    const a = await annotation();
    expect(a.raw).toMatchObject({ day: DAY, status: "succeeded" });
    expect(a.status).toMatchObject({ result: "Succeeded", days: [DAY], message: "ok" });
    expect(Number.isNaN(Date.parse(a.status?.time ?? ""))).toBe(false);
  });

  it("reports to the pod's own pipeline (POD_NAMESPACE/GAVEL_PIPELINE) with --backfill-days", async () => {
    const r = await gavel(["rollup", "--date", DAY, "--backfill-days", "1", "--no-parquet"], {
      DATABASE_URL: db.url,
      POD_NAMESPACE: namespace,
      GAVEL_PIPELINE: name,
    });
    expect(r.code).toBe(0);
    expect(
      r.stdout
        .split("\n")
        .filter(Boolean)
        .map((l) => l.split(" ").slice(0, 2).join(" ")),
    ).toEqual(["2026-03-09 succeeded", "2026-03-10 succeeded"]);
    expect((await annotation()).status).toMatchObject({ result: "Succeeded", days: ["2026-03-09", DAY] });
  });

  it("backfills with --from/--to and prints one line per day as JSON", async () => {
    const r = await gavel(
      ["rollup", "--from", "2026-03-09", "--to", "2026-03-10", "--no-parquet", "--json"],
      {
        DATABASE_URL: db.url,
      },
    );
    expect(r.code).toBe(0);
    const results = JSON.parse(r.stdout) as { day: string; status: string; objects: string[] }[];
    expect(results.map((x) => [x.day, x.status, x.objects.length])).toEqual([
      ["2026-03-09", "succeeded", 0],
      ["2026-03-10", "succeeded", 0],
    ]);
  });

  it("--train-fraud-model trains the fraud model after the rollup and records it on the pipeline", async () => {
    // Scored bids of the last days (outside the rolled-up day), with the features the stream logs.
    await db.pool.query(
      `INSERT INTO silver.bids (bid_id, auction_id, bidder_id, amount, currency, placed_at, received_at, fraud_features)
       SELECT 'cli-f-' || i, 'A1', 'U' || (i % 17), 1000 + i, 'EUR', now() - interval '2 hours', now() - interval '2 hours',
              ARRAY[1 + i % 4, (i % 13) / 20.0, (i % 7) / 5.0, (i % 9) / 3.0 - 1.5, 2 + (i % 11) / 3.0, 4 + (i % 5) / 4.0, 1 + i % 2, 0, 0]::float8[]
         FROM generate_series(1, 300) AS i`,
    );
    const r = await gavel(
      [
        "rollup",
        "--date",
        DAY,
        "-f",
        pipelineFile,
        "--pipeline-ref",
        `${namespace}/${name}`,
        "--train-fraud-model",
      ],
      { DATABASE_URL: db.url },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const line = r.stdout.split("\n").find((l) => l.startsWith("fraud model "));
    expect(line).toMatch(
      /^fraud model \d{8}T\d{6}Z-[0-9a-f]{8}: 300 scored bids \(300 sampled\), 100 trees, active from .* -> s3:\/\//,
    );
    const version = /^fraud model (\S+):/.exec(line ?? "")?.[1] ?? "";
    const listed = await s3ClientFromConfig(cfg).send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}models/fraud/` }),
    );
    expect((listed.Contents ?? []).map((o) => o.Key)).toEqual([`${prefix}models/fraud/${version}.json`]);
    const obj = (await custom.getNamespacedCustomObject({ ...G, namespace, name })) as {
      metadata: { annotations?: Record<string, string> };
    };
    expect(parseFraudModel(obj.metadata.annotations)).toMatchObject({
      version,
      object: `s3://${bucket}/${prefix}models/fraud/${version}.json`,
      rows: 300,
    });
    await db.pool.query("DELETE FROM silver.bids WHERE bid_id LIKE 'cli-f-%'");
  });

  it("exits 1 with the check report on bad silver data and records the failure on the pipeline", async () => {
    await db.pool.query(
      `INSERT INTO silver.bids (bid_id, auction_id, bidder_id, amount, currency, placed_at, received_at)
       VALUES ('cli-bad', 'A2', 'U3', 0, 'EUR', '2026-03-10T13:00:00Z', '2026-03-10T13:00:01Z')`,
    );
    try {
      const r = await gavel(
        ["rollup", "--date", DAY, "-f", pipelineFile, "--pipeline-ref", `${namespace}/${name}`],
        {
          DATABASE_URL: db.url,
        },
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toContain("rollup of 2026-03-10 FAILED; the previous gold of that day is unchanged.");
      expect(r.stderr).toContain("FAILED positive_amounts: 1 violation(s)");
      expect(r.stderr).toContain("bid cli-bad amount 0");
      const a = await annotation();
      expect(a.raw).toMatchObject({ day: DAY, status: "failed" });
      expect(a.status?.result).toBe("Failed");
      expect(a.status?.message).toContain(
        "2026-03-10 failed: data-quality checks failed: FAILED positive_amounts",
      );
    } finally {
      await db.pool.query("DELETE FROM silver.bids WHERE bid_id = 'cli-bad'");
    }
  });

  it("prints usage for bad flags", async () => {
    const r = await gavel(["rollup", "--from", "2026-03-10"], { DATABASE_URL: db.url });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--from and --to go together");
    expect(r.stderr).toContain("--help");
    const tz = await gavel(["rollup", "--time-zone", "Mars/Olympus"], { DATABASE_URL: db.url });
    expect(tz.code).toBe(2);
    expect(tz.stderr).toContain("unknown time zone");
  });
});
