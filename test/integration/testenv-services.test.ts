import { randomUUID } from "node:crypto";
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from "@aws-sdk/client-s3";
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { kafkaUuid } from "../env/services.ts";

// Proof that the test environment's services are real: each test talks to
// one of them through the client the product uses, with unique names.
const cfg = readConnectionConfig();
const suffix = randomUUID().slice(0, 8);

describe("Kafka cluster ids", () => {
  it("are Kafka UUIDs (16 bytes, base64url) that never start with '-' (the storage tool would read an option)", () => {
    for (let i = 0; i < 5_000; i++) {
      const id = kafkaUuid();
      expect(id.startsWith("-")).toBe(false);
      expect(Buffer.from(id, "base64url")).toHaveLength(16);
      expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
  });
});

describe("PostgreSQL", () => {
  const pool = new pg.Pool({ connectionString: requireEnv(cfg, "databaseUrl", "DATABASE_URL"), max: 2 });
  afterAll(() => pool.end());

  it("creates a table, writes and reads rows", async () => {
    const table = `testenv_${suffix}`;
    await pool.query(
      `CREATE TABLE ${table} (id bigint PRIMARY KEY, amount bigint NOT NULL, at timestamptz NOT NULL)`,
    );
    await pool.query(`INSERT INTO ${table} VALUES ($1, $2, $3), ($4, $5, $6)`, [
      1,
      12_345,
      "2026-11-22T10:00:00Z",
      2,
      99,
      "2026-11-22T11:00:00Z",
    ]);
    const r = await pool.query<{ n: string; total: string; v: string }>(
      `SELECT count(*) AS n, sum(amount) AS total, version() AS v FROM ${table}`,
    );
    expect(r.rows[0]).toMatchObject({ n: "2", total: "12444" });
    expect(r.rows[0]!.v).toMatch(/^PostgreSQL (1[5-9]|[2-9]\d)/);
    await pool.query(`DROP TABLE ${table}`);
  });
});

describe("S3", () => {
  const s3 = new S3Client({
    endpoint: requireEnv(cfg, "s3Endpoint", "S3_ENDPOINT"),
    region: cfg.s3Region,
    forcePathStyle: true,
    credentials: {
      accessKeyId: requireEnv(cfg, "awsAccessKeyId", "AWS_ACCESS_KEY_ID"),
      secretAccessKey: requireEnv(cfg, "awsSecretAccessKey", "AWS_SECRET_ACCESS_KEY"),
    },
  });
  const Bucket = requireEnv(cfg, "s3Bucket", "S3_BUCKET");
  afterAll(() => s3.destroy());

  it("puts, lists, gets and deletes an object", async () => {
    const Key = `testenv/${suffix}/hello.ndjson`;
    const body = `{"bid_id":"b-${suffix}","amount":1500}\n`;
    await s3.send(new PutObjectCommand({ Bucket, Key, Body: body, ContentType: "application/x-ndjson" }));
    const listed = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `testenv/${suffix}/` }));
    expect(listed.Contents?.map((o) => o.Key)).toEqual([Key]);
    const got = await s3.send(new GetObjectCommand({ Bucket, Key }));
    expect(await got.Body?.transformToString()).toBe(body);
    await s3.send(new DeleteObjectCommand({ Bucket, Key }));
    const after = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: `testenv/${suffix}/` }));
    expect(after.KeyCount ?? 0).toBe(0);
  });
});

describe("kube-apiserver", () => {
  const kc = new KubeConfig();
  kc.loadFromFile(requireEnv(cfg, "kubeconfig", "KUBECONFIG"));
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const namespace = `testenv-${suffix}`;
  afterAll(async () => {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  const topic = (name: string, partitions: number) => ({
    apiVersion: "kafka.strimzi.io/v1",
    kind: "KafkaTopic",
    metadata: { name, namespace, labels: { "strimzi.io/cluster": "gavel" } },
    spec: { partitions, replicas: 1, config: { "retention.ms": "604800000" } },
  });

  it("creates a namespace and a Strimzi KafkaTopic and reads it back", async () => {
    await core.createNamespace({ body: { metadata: { name: namespace } } });
    await custom.createNamespacedCustomObject({
      group: "kafka.strimzi.io",
      version: "v1",
      namespace,
      plural: "kafkatopics",
      body: topic("bids", 6),
    });
    const got = (await custom.getNamespacedCustomObject({
      group: "kafka.strimzi.io",
      version: "v1",
      namespace,
      plural: "kafkatopics",
      name: "bids",
    })) as { spec: { partitions: number }; metadata: { labels: Record<string, string> } };
    expect(got.spec.partitions).toBe(6);
    expect(got.metadata.labels["strimzi.io/cluster"]).toBe("gavel");
  });

  it("rejects an invalid KafkaTopic (partitions: 0) with the schema's message", async () => {
    const err = await custom
      .createNamespacedCustomObject({
        group: "kafka.strimzi.io",
        version: "v1",
        namespace,
        plural: "kafkatopics",
        body: topic("bad", 0),
      })
      .then(
        () => undefined,
        (e: unknown) => e as { code?: number; body?: string },
      );
    expect(err?.code).toBe(422);
    expect(String(err?.body)).toMatch(/spec\.partitions.*should be greater than or equal to 1/);
  });
});

describe("Prometheus", () => {
  it("answers a PromQL query about its own scrape target", async () => {
    const base = requireEnv(cfg, "prometheusUrl", "PROMETHEUS_URL");
    // The first scrape happens within one interval (2 s) of start-up.
    let result: Array<{ metric: Record<string, string>; value: [number, string] }> = [];
    for (let i = 0; i < 30 && result.length === 0; i++) {
      const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent('up{job="prometheus"}')}`);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { status: string; data: { result: typeof result } };
      expect(body.status).toBe("success");
      result = body.data.result;
      if (result.length === 0) await new Promise((r) => setTimeout(r, 1000));
    }
    expect(result).toHaveLength(1);
    expect(result[0]!.value[1]).toBe("1");
  });
});
