import { describe, expect, it } from "vitest";
import { restart } from "../env/testenv.ts";
import { type Dataset, generateDataset } from "../generate/dataset.ts";
import { expectOracleOutcomes } from "./outcomes.ts";
import {
  assertPipelineResult,
  type Env,
  expectedOutcome,
  readTopic,
  silverCounts,
  transport,
  until,
} from "./processors-harness.ts";
import { scenario, sendDataset, sleepUntil } from "./processors-scenario.ts";

function dataset(seed: number): Dataset {
  return generateDataset({ seed, auctions: 20, bids: 1500, rate: 300, startMs: Date.now() + 3_000 });
}

/** Until the silver-writer has written 100 bid records: the stream is flowing. */
async function silverWriting(e: Env): Promise<void> {
  await until("silver-writer to write", async () => {
    const c = await silverCounts(e);
    return c.bids + c.rejections > 100;
  });
}

function send(env: Env, ds: Dataset): Promise<void> {
  // A generous retry budget: the Kafka restart test keeps sending through the outage.
  return sendDataset(env, ds, transport("processors-test-generator", 25));
}

describe("stream processors under faults", () => {
  const sc = scenario();

  /** Sends `ds` while `during` runs its faults, then checks the result against the dataset and the log's replay. */
  async function expectExact(e: Env, ds: Dataset, during: () => Promise<void>): Promise<void> {
    const exp = expectedOutcome(ds);
    const sending = send(e, ds);
    await during();
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }

  it("kill -9 of the bid-processor mid-stream, twice, and restart: nothing lost, nothing doubled", async () => {
    const e = await sc.setup("kill-bp");
    const ds = dataset(11);
    await sc.start(e, "silver-writer", "bronze-archiver");
    let bp = sc.spawn(e, "bid-processor");
    await expectExact(e, ds, async () => {
      for (const fraction of [0.3, 0.6]) {
        await sleepUntil(ds.startMs + ds.durationMs * fraction);
        const before = await silverCounts(e);
        bp = await sc.respawn(e, bp, "bid-processor", 500);
        // The kill happened while records were flowing.
        expect(before.bids + before.rejections).toBeLessThan(ds.bids.length);
      }
    });
  }, 300_000);

  it("two bid-processor replicas with forced rebalances (join, then leave mid-stream)", async () => {
    const e = await sc.setup("rebalance");
    const ds = dataset(12);
    await sc.start(e, "silver-writer", "bronze-archiver");
    const [first] = await sc.start(e, "bid-processor:bp-1");
    await expectExact(e, ds, async () => {
      await sleepUntil(ds.startMs + ds.durationMs * 0.25);
      await sc.start(e, "bid-processor:bp-2");
      await sleepUntil(ds.startMs + ds.durationMs * 0.6);
      await sc.stop(first);
    });
  }, 300_000);

  it("kill -9 of the silver-writer mid-stream and restart: silver still has every record exactly once", async () => {
    const e = await sc.setup("kill-sw");
    const ds = dataset(13);
    await sc.start(e, "bid-processor", "bronze-archiver");
    const sw = sc.spawn(e, "silver-writer");
    await expectExact(e, ds, async () => {
      await silverWriting(e);
      await sc.respawn(e, sw, "silver-writer", 500);
    });
  }, 300_000);

  it("kill -9 of the bronze-archiver mid-stream and restart: every record in bronze exactly once", async () => {
    const e = await sc.setup("kill-br");
    const ds = dataset(14);
    await sc.start(e, "bid-processor", "silver-writer");
    let br = sc.spawn(e, "bronze-archiver");
    await expectExact(e, ds, async () => {
      for (const fraction of [0.3, 0.7]) {
        await sleepUntil(ds.startMs + ds.durationMs * fraction);
        br = await sc.respawn(e, br, "bronze-archiver");
      }
    });
  }, 300_000);

  it("PostgreSQL restart mid-stream: the silver-writer retries and silver ends complete and exact", async () => {
    const e = await sc.setup("pg-restart");
    const ds = dataset(15);
    await sc.start(e, "bid-processor", "silver-writer", "bronze-archiver");
    await expectExact(e, ds, async () => {
      await silverWriting(e);
      await restart("postgres", { downMs: 3_000 });
    });
  }, 300_000);

  // It restarts the shared broker; integration files run one at a time
  // (vitest.config.ts), so no other test sees the outage.
  it("Kafka broker restart mid-stream: every processor recovers and the result is exact", async () => {
    const e = await sc.setup("kafka-restart");
    const ds = dataset(16);
    const exp = expectedOutcome(ds);
    await sc.start(e, "bid-processor", "silver-writer", "bronze-archiver");
    const sending = send(e, ds);
    await sleepUntil(ds.startMs + ds.durationMs * 0.4);
    await restart("kafka", { downMs: 2_000 });
    await sending;
    await until(
      "silver complete",
      async () => {
        const c = await silverCounts(e);
        return c.bids + c.rejections >= ds.bids.length;
      },
      60_000,
    ).catch(async (err) => {
      const bids = await readTopic(e, e.topics.bids.name);
      const acc = await readTopic(e, e.topics["bids.accepted"].name);
      const rej = await readTopic(e, e.topics["bids.rejected"].name);
      process.stderr.write(
        `DIAG bids topic ${bids.length} accepted ${acc.length} rejected ${rej.length} of ${ds.bids.length}\n`,
      );
      const inSilver = new Set(
        (
          await e.pool.query<{ bid_id: string }>(
            "SELECT bid_id FROM silver.bids UNION ALL SELECT bid_id FROM silver.bid_rejections WHERE bid_id IS NOT NULL",
          )
        ).rows.map((r) => r.bid_id),
      );
      const decided = new Set(
        [...acc, ...rej].map((r) => (JSON.parse(r.value?.toString() ?? "{}") as { bid_id?: string }).bid_id),
      );
      for (const b of ds.bids) {
        const id = b.bid?.bid_id;
        if (id && !inSilver.has(id))
          process.stderr.write(
            `DIAG missing ${b.index} ${b.kind} ${id} decided=${decided.has(id)} sendAt=${b.sendAtMs - ds.startMs}\n`,
          );
      }
      throw err;
    });
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 400_000);
});
