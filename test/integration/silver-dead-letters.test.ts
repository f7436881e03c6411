/**
 * Nothing dropped silently by the silver-writer (issue #13), on the real
 * Kafka and PostgreSQL of the test environment: malformed records produced
 * straight into the derived topics land once each in silver.dead_letters with
 * their reason code, rows PostgreSQL refuses are isolated (the rest of their
 * batch is written, the process keeps running), the metric counts them, and
 * re-delivering every batch adds nothing.
 */
import type { ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { Registry } from "../../processors/runtime/metrics.ts";
import { SilverWriter } from "../../processors/silver-writer/writer.ts";
import {
  type Env,
  logger,
  readTopic,
  setupEnv,
  spawnProcessor,
  transport,
  until,
} from "./processors-harness.ts";

function kill9(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => resolve(typeof a === "object" && a ? a.port : 0));
    });
  });
}

const T0 = "2026-11-22T10:00:00.000Z";
const bid = (id: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    schema: "gavel.bid-accepted/v1",
    bid_id: id,
    auction_id: "a1",
    bidder_id: "u1",
    amount: 1000,
    currency: "EUR",
    placed_at: T0,
    received_at: T0,
    fraud_score: 0.1,
    source: "api",
    ...over,
  });
const tx = (auction: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    auction_id: auction,
    winner_id: "u1",
    final_price: 2500,
    currency: "EUR",
    reserve_met: true,
    closed_at: T0,
    bid_count: 3,
    ...over,
  });
const alert = (bidId: string, signal: string) =>
  JSON.stringify({
    bid_id: bidId,
    auction_id: "a1",
    bidder_id: "u1",
    score: 0.8,
    signals: [{ name: signal, contribution: 0.8 }],
    created_at: T0,
  });

/** Bytes that are neither UTF-8 nor JSON: the dead letter must keep them exactly. */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x01]);

const count = async (env: Env, sql: string): Promise<number> =>
  Number((await env.pool.query<{ n: string }>(sql)).rows[0]?.n);

describe("silver-writer dead letters on real Kafka and PostgreSQL", () => {
  let env: Env | undefined;
  let child: ChildProcess | undefined;
  afterEach(async () => {
    if (child) await kill9(child);
    child = undefined;
    await env?.cleanup();
    env = undefined;
  });

  it("every unusable record lands once in silver.dead_letters with its reason; the good ones in their tables", async () => {
    env = await setupEnv("sw-dead-letters", 2);
    const e = env;
    const topic = {
      bids: e.topics["bids.accepted"].name,
      rejections: e.topics["bids.rejected"].name,
      tx: e.topics.transactions.name,
      alerts: e.topics["fraud-alerts"].name,
    };
    // Unique keys, so each dead letter is recognised by (topic, key).
    const expected: [string, string, string, string | null][] = [
      [topic.bids, "k-not-json", "not_json", null],
      [topic.bids, "k-binary", "not_json", null],
      [topic.bids, "k-array", "not_object", null],
      [topic.bids, "k-fraction", "invalid_field", null],
      [topic.bids, "k-no-bidder", "invalid_field", null],
      [topic.rejections, "k-no-reason", "invalid_field", null],
      // PostgreSQL refuses these rows (integer out of range; \u0000 in jsonb): isolated, not the batch.
      [topic.tx, "k-tx-overflow", "db_rejected", "22003"],
      [topic.alerts, "k-alert-nul", "db_rejected", "22P05"],
    ];
    const producer = await transport("sw-dead-letters-producer").producer();
    await producer.send([
      {
        topic: topic.bids,
        messages: [
          { key: "k-good-1", value: bid("b1") },
          { key: "k-not-json", value: '{"bid_id": "b2", "amount": 10' },
          { key: "k-binary", value: BINARY },
          { key: "k-array", value: "[1, 2, 3]" },
          { key: "k-fraction", value: bid("b4", { amount: 10.5 }) },
          { key: "k-no-bidder", value: bid("b5", { bidder_id: undefined }) },
          { key: "k-good-2", value: bid("b6") },
        ],
      },
      {
        topic: topic.rejections,
        messages: [
          {
            key: "k-rej-good",
            value: JSON.stringify({ bid_id: "r1", reason: "below_minimum", detail: "x" }),
          },
          { key: "k-no-reason", value: JSON.stringify({ bid_id: "r2", detail: "no reason code" }) },
        ],
      },
      {
        topic: topic.tx,
        // One key, so one partition and one batch: the bad row sits between two good ones.
        messages: [
          { key: "k-tx", value: tx("a1") },
          { key: "k-tx-overflow", value: tx("a2", { bid_count: 3_000_000_000 }) },
          { key: "k-tx", value: tx("a3") },
        ].map((m) => ({ ...m, partition: 0 })),
      },
      {
        topic: topic.alerts,
        messages: [
          { key: "k-alert-nul", value: alert("b1", "velo\u0000city"), partition: 1 },
          { key: "k-alert", value: alert("b6", "velocity"), partition: 1 },
        ],
      },
    ]);
    await producer.close();

    // The production entry point (`gavel processor silver-writer`), its /metrics on a known port.
    const port = await freePort();
    child = spawnProcessor(
      { ...e, childEnv: { ...e.childEnv, GAVEL_HTTP_PORT: String(port), GAVEL_HTTP_HOST: "127.0.0.1" } },
      "silver-writer",
    );
    await until("silver and silver.dead_letters to hold every record", async () => {
      const letters = await count(e, "SELECT count(*) AS n FROM silver.dead_letters").catch(() => 0);
      const bids = await count(e, "SELECT count(*) AS n FROM silver.bids");
      const txs = await count(e, "SELECT count(*) AS n FROM silver.transactions");
      const alerts = await count(e, "SELECT count(*) AS n FROM silver.fraud_alerts");
      const rej = await count(e, "SELECT count(*) AS n FROM silver.bid_rejections");
      return letters >= expected.length && bids >= 2 && txs >= 2 && alerts >= 1 && rej >= 1;
    });

    const check = async () => {
      const { rows } = await e.pool.query<{
        source_topic: string;
        source_partition: number;
        source_offset: string;
        key: string;
        reason: string;
        sqlstate: string | null;
        target_table: string;
        detail: string;
      }>(
        "SELECT source_topic, source_partition, source_offset, key, reason, sqlstate, target_table, detail FROM silver.dead_letters",
      );
      const got = rows
        .map((r) => [r.source_topic, r.key, r.reason, r.sqlstate] as const)
        .sort((a, b) => `${a[0]}/${a[1]}`.localeCompare(`${b[0]}/${b[1]}`));
      expect(got).toEqual([...expected].sort((a, b) => `${a[0]}/${a[1]}`.localeCompare(`${b[0]}/${b[1]}`)));
      // Each at its true Kafka position.
      for (const t of Object.values(topic)) {
        const records = await readTopic(e, t);
        for (const r of rows.filter((x) => x.source_topic === t)) {
          const src = records.find((x) => x.key === r.key);
          expect([r.source_partition, Number(r.source_offset)], r.key).toEqual([src?.partition, src?.offset]);
        }
      }
      expect(rows.find((r) => r.key === "k-fraction")?.detail).toBe("amount is missing or invalid");
      expect(rows.find((r) => r.key === "k-fraction")?.target_table).toBe("silver.bids");
      expect(rows.find((r) => r.key === "k-no-bidder")?.detail).toBe("bidder_id is missing or invalid");
      expect(rows.find((r) => r.key === "k-tx-overflow")?.detail).toMatch(/^22003: .*out of range/);
      // The raw bytes, exactly.
      const raw = await e.pool.query<{ value: Buffer }>(
        "SELECT value FROM silver.dead_letters WHERE key = 'k-binary'",
      );
      expect(Buffer.compare(raw.rows[0]!.value, BINARY)).toBe(0);

      const ids = async (sql: string) =>
        (await e.pool.query<{ id: string }>(sql)).rows.map((r) => r.id).sort();
      expect(await ids("SELECT bid_id AS id FROM silver.bids")).toEqual(["b1", "b6"]);
      expect(await ids("SELECT auction_id AS id FROM silver.transactions")).toEqual(["a1", "a3"]);
      expect(await ids("SELECT bid_id AS id FROM silver.fraud_alerts")).toEqual(["b6"]);
      expect(await ids("SELECT bid_id AS id FROM silver.bid_rejections")).toEqual(["r1"]);
    };
    await check();

    // Counted, by topic and reason; the writer is still running (no crash loop).
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const metric = (t: string, reason: string) => {
      const line = metrics
        .split("\n")
        .find(
          (l) =>
            l.startsWith("gavel_silver_writer_unusable_records_total{") &&
            l.includes(`topic="${t}"`) &&
            l.includes(`reason="${reason}"`),
        );
      return line ? Number(line.split(" ").at(-1)) : 0;
    };
    expect(metric(topic.bids, "not_json")).toBe(2);
    expect(metric(topic.bids, "not_object")).toBe(1);
    expect(metric(topic.bids, "invalid_field")).toBe(2);
    expect(metric(topic.rejections, "invalid_field")).toBe(1);
    expect(metric(topic.tx, "db_rejected")).toBe(1);
    expect(metric(topic.alerts, "db_rejected")).toBe(1);
    expect(child.exitCode).toBeNull();
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(ready.status).toBe(200);

    // Crash, then every batch delivered again (a fresh group reads from the
    // beginning: what a crash between the database commit and the offset
    // commit re-delivers): nothing is added.
    await kill9(child);
    child = undefined;
    const replayGroup = `${e.name}.silver-writer-replay`;
    const registry = new Registry();
    const w = new SilverWriter({
      transport: transport("sw-dead-letters-replay"),
      pool: e.pool,
      pipeline: e.pipeline,
      topics: e.topics,
      logger,
      metrics: registry,
      groupId: replayGroup,
    });
    await w.start();
    try {
      await until("the replay to commit every partition", async () => {
        for (const t of Object.values(topic)) {
          const ends = await e.admin.topicOffsets(t);
          const got = await e.admin.groupOffsets(replayGroup, t);
          for (const end of ends)
            if (end.high > 0 && (got.find((g) => g.partition === end.partition)?.offset ?? -1) < end.high)
              return false;
        }
        return true;
      });
    } finally {
      await w.close();
    }
    expect(w.failure()).toBeUndefined();
    await check();
  }, 240_000);
});
