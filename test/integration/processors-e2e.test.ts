import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateDataset } from "../generate/dataset.ts";
import {
  assertPipelineResult,
  type Env,
  expectedOutcome,
  type Running,
  setupEnv,
  startBidProcessor,
  startBronze,
  startSilverWriter,
  transport,
} from "./processors-harness.ts";
import { sendDataset } from "./processors-scenario.ts";

describe("stream processors end to end", () => {
  let env: Env;
  const running: Running[] = [];
  beforeAll(async () => {
    env = await setupEnv("e2e");
  });
  afterAll(async () => {
    for (const r of running) await r.close().catch(() => undefined);
    await env?.cleanup();
  });

  it("generator -> Kafka -> bid-processor -> silver-writer + bronze-archiver: every record decided once, prices and winners as computed independently", async () => {
    const ds = generateDataset({ seed: 7, auctions: 20, bids: 1200, rate: 400, startMs: Date.now() + 3_000 });
    const exp = expectedOutcome(ds);
    // The dataset exercises every rule.
    for (const r of ["malformed", "duplicate", "currency_mismatch", "below_minimum", "auction_closed"])
      expect(exp.byReason[r] ?? 0, r).toBeGreaterThan(0);
    running.push(await startBidProcessor(env), await startSilverWriter(env), await startBronze(env));
    await sendDataset(env, ds, transport());
    await assertPipelineResult(env, ds, exp);
  });
});
