/**
 * The silver-writer on the embedded backends (in-memory Kafka, PGlite):
 * every record lands either in its table or in silver.dead_letters, with a
 * reason, in the batch's transaction; a row PostgreSQL refuses is isolated
 * instead of blocking the partition. The same on real Kafka and PostgreSQL:
 * test/integration/silver-dead-letters.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuctionPipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import { createLogger } from "../../lib/log.ts";
import { PglitePool } from "../../test/dev/pglite.ts";
import { embeddedPipeline, memoryTransportWithTopics } from "../../test/embedded-pipeline.ts";
import { migrate } from "../db/migrate.ts";
import type { MemoryTransport } from "../kafka/memory.ts";
import { Registry } from "../runtime/metrics.ts";
import { SilverWriter } from "./writer.ts";

const logger = createLogger("silver-writer-test", "silent");

async function until(what: string, cond: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const tx = (auction: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    schema: "gavel.transaction/v1",
    auction_id: auction,
    winner_id: "u1",
    final_price: 1500,
    currency: "EUR",
    reserve_met: true,
    closed_at: "2026-11-22T10:00:00Z",
    bid_count: 4,
    ...over,
  });

describe("SilverWriter dead letters (embedded Kafka + PGlite)", { timeout: 180_000 }, () => {
  let db: PglitePool;
  let transport: MemoryTransport;
  let pipeline: AuctionPipeline;
  let topics: ReturnType<typeof topicNames>;

  beforeAll(async () => {
    db = await PglitePool.open();
    await migrate(db.asPgPool(), { logger });
    pipeline = embeddedPipeline("swdl", 2);
    transport = await memoryTransportWithTopics(pipeline, logger);
    topics = topicNames(pipeline);
  }, 180_000);
  afterAll(async () => {
    await db?.end();
  });

  const writer = (groupId: string, metrics = new Registry()) =>
    new SilverWriter({ transport, pool: db.asPgPool(), pipeline, topics, logger, metrics, groupId });

  it("dead-letters decoder and database refusals once, writes the good rows, and re-delivery adds nothing", async () => {
    const producer = await transport.producer();
    const t = topics.transactions.name;
    const f = topics["fraud-alerts"].name;
    await producer.send([
      {
        topic: t,
        messages: [
          { key: "a1", value: tx("a1") },
          { key: "a2", value: "{truncated" },
          { key: "a3", value: '"a string"' },
          { key: "a4", value: tx("a4", { closed_at: "not a time" }) },
          // bid_count is an integer column: PostgreSQL refuses 3e9 (SQLSTATE 22003).
          { key: "a5", value: tx("a5", { bid_count: 3_000_000_000 }) },
          { key: "a6", value: tx("a6") },
        ],
      },
      {
        topic: f,
        messages: [
          // jsonb cannot hold \u0000 (SQLSTATE 22P05): only this alert is refused.
          {
            key: "a1",
            value: JSON.stringify({
              bid_id: "b1",
              auction_id: "a1",
              bidder_id: "u1",
              score: 0.9,
              signals: [{ name: "velo\u0000city", contribution: 0.9 }],
              created_at: "2026-11-22T10:00:00Z",
            }),
          },
          {
            key: "a1",
            value: JSON.stringify({
              bid_id: "b2",
              auction_id: "a1",
              bidder_id: "u1",
              score: 0.5,
              signals: [{ name: "velocity", contribution: 0.5 }],
              created_at: "2026-11-22T10:00:00Z",
            }),
          },
        ],
      },
    ]);
    await producer.close();

    const metrics = new Registry();
    const w = writer("swdl.silver-writer", metrics);
    await w.start();
    const count = async (sql: string) => Number((await db.query<{ n: string }>(sql)).rows[0]?.n);
    await until("the batches to be written", async () => {
      const letters = await count("SELECT count(*) AS n FROM silver.dead_letters");
      const txs = await count("SELECT count(*) AS n FROM silver.transactions");
      const alerts = await count("SELECT count(*) AS n FROM silver.fraud_alerts");
      return letters >= 5 && txs >= 2 && alerts >= 1;
    });
    await w.close();
    expect(w.failure()).toBeUndefined();

    const { rows } = await db.query<{
      source_topic: string;
      key: string;
      target_table: string;
      reason: string;
      detail: string;
      sqlstate: string | null;
      value: Uint8Array;
    }>(
      "SELECT source_topic, key, target_table, reason, detail, sqlstate, value FROM silver.dead_letters ORDER BY source_topic, key",
    );
    expect(rows.map((r) => [r.source_topic, r.key, r.target_table, r.reason, r.sqlstate])).toEqual([
      [f, "a1", "silver.fraud_alerts", "db_rejected", "22P05"],
      [t, "a2", "silver.transactions", "not_json", null],
      [t, "a3", "silver.transactions", "not_object", null],
      [t, "a4", "silver.transactions", "invalid_field", null],
      [t, "a5", "silver.transactions", "db_rejected", "22003"],
    ]);
    expect(rows.find((r) => r.key === "a4")?.detail).toBe("closed_at is missing or invalid");
    expect(rows.find((r) => r.key === "a5")?.detail).toMatch(/^22003: .*out of range for type integer/);
    // The exact bytes of the record, for inspection and replay.
    expect(Buffer.from(rows.find((r) => r.key === "a2")!.value).toString()).toBe("{truncated");
    const txs = await db.query<{ auction_id: string }>(
      "SELECT auction_id FROM silver.transactions ORDER BY 1",
    );
    expect(txs.rows.map((r) => r.auction_id)).toEqual(["a1", "a6"]);
    const alerts = await db.query<{ bid_id: string }>("SELECT bid_id FROM silver.fraud_alerts");
    expect(alerts.rows.map((r) => r.bid_id)).toEqual(["b2"]);

    const c = metrics.counter("silver_writer_unusable_records_total", "");
    expect(c.get({ topic: t, reason: "not_json" })).toBe(1);
    expect(c.get({ topic: t, reason: "not_object" })).toBe(1);
    expect(c.get({ topic: t, reason: "invalid_field" })).toBe(1);
    expect(c.get({ topic: t, reason: "db_rejected" })).toBe(1);
    expect(c.get({ topic: f, reason: "db_rejected" })).toBe(1);
    expect(metrics.counter("silver_writer_records_total", "").get({ topic: t })).toBe(6);

    // Every record again (a new group reads from the beginning, as after a crash before the offset commit).
    const again = writer("swdl.silver-writer-replay");
    await again.start();
    await until("the re-delivered batches", async () => {
      const m = (await db.query<{ n: string }>("SELECT count(*) AS n FROM silver.dead_letters")).rows[0];
      return Number(m?.n) === 5 && (await transport.admin()) !== undefined && again.ready().ok;
    });
    const admin = await transport.admin();
    await until("the replay group to commit everything", async () => {
      const done = await Promise.all(
        [t, f].map(async (topic) => {
          const ends = await admin.topicOffsets(topic);
          const got = await admin.groupOffsets("swdl.silver-writer-replay", topic);
          return ends.every(
            (e) => e.high === 0 || (got.find((g) => g.partition === e.partition)?.offset ?? -1) >= e.high,
          );
        }),
      );
      return done.every(Boolean);
    });
    await admin.close();
    await again.close();
    expect(await count("SELECT count(*) AS n FROM silver.dead_letters")).toBe(5);
    expect(await count("SELECT count(*) AS n FROM silver.transactions")).toBe(2);
    expect(await count("SELECT count(*) AS n FROM silver.fraud_alerts")).toBe(1);
  });
});
