import type { ChildProcess } from "node:child_process";
import { afterEach, describe, expect, it } from "vitest";
import { restart } from "../env/testenv.ts";
import { type Dataset, generateDataset } from "../generate/dataset.ts";
import { sendToKafka } from "../generate/sinks.ts";
import { expectOracleOutcomes } from "./outcomes.ts";
import {
  assertPipelineResult,
  type Env,
  expectedOutcome,
  kill9,
  type Running,
  readTopic,
  setupEnv,
  silverCounts,
  spawnProcessor,
  startBidProcessor,
  startBronze,
  startSilverWriter,
  transport,
  until,
} from "./processors-harness.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function dataset(seed: number): Dataset {
  return generateDataset({ seed, auctions: 20, bids: 1500, rate: 300, startMs: Date.now() + 3_000 });
}

async function send(env: Env, ds: Dataset): Promise<void> {
  // A generous retry budget: the Kafka restart test keeps sending through the outage.
  const producer = await transport("processors-test-generator", 25).producer();
  try {
    await sendToKafka(
      producer,
      { auctions: env.topics.auctions.name, users: env.topics.users.name, bids: env.topics.bids.name },
      ds,
    );
  } finally {
    await producer.close();
  }
}

describe("stream processors under faults", () => {
  let env: Env | undefined;
  const running: Running[] = [];
  const children: ChildProcess[] = [];
  afterEach(async () => {
    for (const c of children.splice(0)) await kill9(c);
    for (const r of running.splice(0)) await r.close().catch(() => undefined);
    await env?.cleanup();
    env = undefined;
  });

  it("kill -9 of the bid-processor mid-stream, twice, and restart: nothing lost, nothing doubled", async () => {
    env = await setupEnv("kill-bp");
    const e = env;
    const ds = dataset(11);
    const exp = expectedOutcome(ds);
    running.push(await startSilverWriter(e), await startBronze(e));
    let bp = spawnProcessor(e, "bid-processor");
    children.push(bp);
    const sending = send(e, ds);
    for (const fraction of [0.3, 0.6]) {
      const at = ds.startMs + ds.durationMs * fraction;
      await sleep(Math.max(0, at - Date.now()));
      const before = await silverCounts(e);
      await kill9(bp);
      await sleep(500);
      bp = spawnProcessor(e, "bid-processor");
      children.push(bp);
      // The kill happened while records were flowing.
      expect(before.bids + before.rejections).toBeLessThan(ds.bids.length);
    }
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 300_000);

  it("two bid-processor replicas with forced rebalances (join, then leave mid-stream)", async () => {
    env = await setupEnv("rebalance");
    const e = env;
    const ds = dataset(12);
    const exp = expectedOutcome(ds);
    running.push(await startSilverWriter(e), await startBronze(e));
    const first = await startBidProcessor(e, "bp-1");
    const sending = send(e, ds);
    await sleep(Math.max(0, ds.startMs + ds.durationMs * 0.25 - Date.now()));
    const second = await startBidProcessor(e, "bp-2");
    running.push(second);
    await sleep(Math.max(0, ds.startMs + ds.durationMs * 0.6 - Date.now()));
    await first.close();
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 300_000);

  it("kill -9 of the silver-writer mid-stream and restart: silver still has every record exactly once", async () => {
    env = await setupEnv("kill-sw");
    const e = env;
    const ds = dataset(13);
    const exp = expectedOutcome(ds);
    running.push(await startBidProcessor(e), await startBronze(e));
    let sw = spawnProcessor(e, "silver-writer");
    children.push(sw);
    const sending = send(e, ds);
    await until("silver-writer to write", async () => {
      const c = await silverCounts(e);
      return c.bids + c.rejections > 100;
    });
    await kill9(sw);
    await sleep(500);
    sw = spawnProcessor(e, "silver-writer");
    children.push(sw);
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 300_000);

  it("kill -9 of the bronze-archiver mid-stream and restart: every record in bronze exactly once", async () => {
    env = await setupEnv("kill-br");
    const e = env;
    const ds = dataset(14);
    const exp = expectedOutcome(ds);
    running.push(await startBidProcessor(e), await startSilverWriter(e));
    let br = spawnProcessor(e, "bronze-archiver");
    children.push(br);
    const sending = send(e, ds);
    for (const fraction of [0.3, 0.7]) {
      await sleep(Math.max(0, ds.startMs + ds.durationMs * fraction - Date.now()));
      await kill9(br);
      br = spawnProcessor(e, "bronze-archiver");
      children.push(br);
    }
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 300_000);

  it("PostgreSQL restart mid-stream: the silver-writer retries and silver ends complete and exact", async () => {
    env = await setupEnv("pg-restart");
    const e = env;
    const ds = dataset(15);
    const exp = expectedOutcome(ds);
    running.push(await startBidProcessor(e), await startSilverWriter(e), await startBronze(e));
    const sending = send(e, ds);
    await until("silver-writer to write", async () => {
      const c = await silverCounts(e);
      return c.bids + c.rejections > 100;
    });
    await restart("postgres", { downMs: 3_000 });
    await sending;
    await assertPipelineResult(e, ds, exp);
    await expectOracleOutcomes(e, ds.bids.length + ds.auctions.length);
  }, 300_000);

  // It restarts the shared broker; integration files run one at a time
  // (vitest.config.ts), so no other test sees the outage.
  it("Kafka broker restart mid-stream: every processor recovers and the result is exact", async () => {
    env = await setupEnv("kafka-restart");
    const e = env;
    const ds = dataset(16);
    const exp = expectedOutcome(ds);
    running.push(await startBidProcessor(e), await startSilverWriter(e), await startBronze(e));
    const sending = send(e, ds);
    await sleep(Math.max(0, ds.startMs + ds.durationMs * 0.4 - Date.now()));
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
