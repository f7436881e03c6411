import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeBid } from "../../api/events/decode.ts";
import { allTopics, parsePipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { runIngest } from "../../processors/ingest/main.ts";
import { KafkajsTransport } from "../../processors/kafka/kafkajs.ts";
import { readToEnd } from "../../processors/kafka/read.ts";
import { applyTopics } from "../../processors/kafka/topics.ts";
import type { Admin, KafkaRecord } from "../../processors/kafka/transport.ts";
import { processorConfigFrom } from "../../processors/runtime/config.ts";
import { type BidLabel, bidLabels, generateDataset } from "../generate/dataset.ts";
import { sendToHttp, sendToKafka } from "../generate/sinks.ts";

const logger = createLogger("generate-test", "warn");
const brokers = requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS");
const transport = new KafkajsTransport({ brokers, clientId: "generate-test", logger });

function pipeline(name: string) {
  return parsePipeline({
    apiVersion: "gavel.dev/v1alpha1",
    kind: "AuctionPipeline",
    metadata: { name },
    spec: {
      kafka: { clusterName: "test", bootstrapServers: brokers },
      topics: { partitions: 3, replicas: 1 },
      storage: {
        postgres: { secretRef: { name: "pg" } },
        s3: { bucket: "gavel", credentialsSecretRef: { name: "s3" } },
      },
    },
  });
}

async function readAll(admin: Admin, topic: string): Promise<KafkaRecord[]> {
  const out: KafkaRecord[] = [];
  await readToEnd({ transport, admin, topic, groupPrefix: "generate-test", onRecord: (r) => out.push(r) });
  return out;
}

describe("gavel generate sinks", () => {
  const sfx = randomUUID().slice(0, 8);
  let admin: Admin;
  const created: string[] = [];
  beforeAll(async () => {
    admin = await transport.admin();
  });
  afterAll(async () => {
    await admin.deleteTopics(created).catch(() => undefined);
    await admin.close();
  });

  async function topicsFor(name: string) {
    const p = pipeline(name);
    const specs = allTopics(p).map((t) => ({
      name: t.name,
      partitions: t.partitions,
      replicationFactor: t.replicas,
      configs: t.config,
    }));
    await applyTopics(admin, specs);
    created.push(...specs.map((s) => s.name));
    return p;
  }

  it("kafka: every record lands once, keyed by auction_id, with its scheduled timestamp", async () => {
    const p = await topicsFor(`gen-k-${sfx}`);
    const t = topicNames(p);
    const ds = generateDataset({ seed: 11, auctions: 8, bids: 400, startMs: Date.now(), prefix: `k${sfx}` });
    const producer = await transport.producer();
    let progressed = 0;
    try {
      const r = await sendToKafka(
        producer,
        { auctions: t.auctions.name, users: t.users.name, bids: t.bids.name },
        ds,
        { unpaced: true, batchSize: 97, progress: (n) => (progressed = n) },
      );
      expect(r).toMatchObject({ sent: 400, failed: 0 });
    } finally {
      await producer.close();
    }
    expect(progressed).toBe(400);
    const bids = await readAll(admin, t.bids.name);
    expect(bids).toHaveLength(400);
    const byRaw = new Map(ds.bids.map((b) => [b.raw, b]));
    const seen = new Set<string>();
    for (const r of bids) {
      const raw = r.value!.toString("utf8");
      const g = byRaw.get(raw);
      expect(g, raw).toBeDefined();
      expect(r.key).toBe(g!.key);
      expect(r.timestamp).toBe(g!.sendAtMs);
      seen.add(raw);
    }
    expect(seen.size).toBe(400);
    // one auction lives on one partition
    const partOf = new Map<string, number>();
    for (const r of bids) {
      const prev = partOf.get(r.key!);
      if (prev !== undefined) expect(r.partition).toBe(prev);
      partOf.set(r.key!, r.partition);
    }
    expect((await readAll(admin, t.auctions.name)).map((r) => r.key).sort()).toEqual(
      ds.auctions.map((a) => a.auction_id).sort(),
    );
    expect(await readAll(admin, t.users.name)).toHaveLength(ds.users.length);
  });

  it("gavel generate --to kafka: the CLI sends exactly --bids records and prints a summary", async () => {
    const name = `gen-c-${sfx}`;
    const p = await topicsFor(name);
    const file = join(tmpdir(), `${name}.json`);
    const labelsFile = join(tmpdir(), `${name}.labels.ndjson`);
    // Kafka refuses timestamps more than an hour ahead of the broker's clock: start now.
    const startMs = Math.floor(Date.now() / 1000) * 1000;
    writeFileSync(file, JSON.stringify(p));
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        "bin/gavel",
        "generate",
        "-f",
        file,
        "--auctions",
        "5",
        "--bids",
        "250",
        "--rate",
        "0",
        "--seed",
        "4",
        "--to",
        "kafka",
        "--start",
        String(startMs),
        "--labels",
        labelsFile,
      ],
      { env: process.env, timeout: 120_000 },
    );
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!);
    expect(summary).toMatchObject({
      seed: 4,
      to: "kafka",
      auctions: 5,
      bids: 250,
      sent: 250,
      failed: 0,
      prefix: "g4",
    });
    expect(summary.start).toBe(new Date(startMs).toISOString());
    const records = await readAll(admin, topicNames(p).bids.name);
    expect(records).toHaveLength(250);
    // reproducible: the same seed and start give the same records
    const ds = generateDataset({
      seed: 4,
      auctions: 5,
      bids: 250,
      startMs,
      rate: 0,
    });
    expect(records.map((r) => r.value!.toString()).sort()).toEqual(ds.bids.map((b) => b.raw).sort());
    // --labels: the ground truth of each well-formed record, the same as the dataset's
    const labels = readFileSync(labelsFile, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as BidLabel);
    expect(labels).toEqual(bidLabels(ds));
    expect(labels.length).toBe(ds.bids.filter((b) => !b.malformed).length);
  });

  it("http: well-formed bids reach the bids topic through ingest, malformed ones get 400 and nothing is produced", async () => {
    const p = await topicsFor(`gen-h-${sfx}`);
    const t = topicNames(p);
    const key = `gen-test-key-${sfx}`;
    const env = {
      ...process.env,
      GAVEL_HTTP_PORT: "0",
      GAVEL_HTTP_HOST: "127.0.0.1",
      GAVEL_API_KEYS: key,
    };
    const ingest = await runIngest(processorConfigFrom(p, env), env);
    try {
      const ds = generateDataset({
        seed: 12,
        auctions: 6,
        bids: 300,
        startMs: Date.now(),
        prefix: `h${sfx}`,
      });
      // a wrong key is refused before anything is sent
      await expect(
        sendToHttp({ url: ingest.url, apiKey: "wrong-key-123", retries: 0 }, ds, { unpaced: true }),
      ).rejects.toThrow(/401/);
      const r = await sendToHttp({ url: ingest.url, apiKey: key }, ds, { unpaced: true, batchSize: 50 });
      const malformed = ds.bids.filter((b) => b.malformed).map((b) => b.index);
      expect(malformed.length).toBeGreaterThan(0);
      expect(r.rejectedAtIngest).toEqual(malformed);
      expect(r.sent).toBe(300 - malformed.length);
      expect(r.failed).toBe(0);
      const bids = await readAll(admin, t.bids.name);
      expect(bids).toHaveLength(r.sent);
      const ids = bids.map((rec) => {
        const d = decodeBid(rec.value!);
        expect(d.ok).toBe(true);
        return d.ok ? d.value.bid_id : "";
      });
      const expected = ds.bids.filter((b) => !b.malformed).map((b) => b.bid!.bid_id);
      expect(ids.sort()).toEqual(expected.sort());
    } finally {
      await ingest.close();
    }
  });
});
