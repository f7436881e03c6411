import { writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadFile } from "../../processors/ingest/load.ts";
import { type RunningIngest, runIngest } from "../../processors/ingest/main.ts";
import { processorConfigFrom } from "../../processors/runtime/config.ts";
import { sendToHttp } from "../generate/sinks.ts";
import {
  type Env,
  type Running,
  readTopic,
  setupEnv,
  silverCounts,
  startBidProcessor,
  startSilverWriter,
  until,
} from "./processors-harness.ts";
import { datasetFor } from "./processors-scenario.ts";

const KEY = "integration-test-key";
const BIDS_ONLY = "integration-bids-only";

describe("ingest against real Kafka, downstream to silver", () => {
  let env: Env;
  let ingest: RunningIngest;
  const running: Running[] = [];
  const post = (
    path: string,
    body: string | object,
    key: string | null = KEY,
    headers: Record<string, string> = {},
  ) =>
    fetch(new URL(path, ingest.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const now = () => new Date().toISOString();
  const auctionId = () => `${env.name}-a1`;

  beforeAll(async () => {
    env = await setupEnv("ingest");
    const cfg = processorConfigFrom(env.pipeline, {
      ...process.env,
      GAVEL_HTTP_PORT: "0",
      GAVEL_HTTP_HOST: "127.0.0.1",
    });
    ingest = await runIngest(cfg, { GAVEL_API_KEYS: `${KEY},${BIDS_ONLY}=bids` });
  });
  afterAll(async () => {
    for (const r of running) await r.close().catch(() => undefined);
    await ingest?.close();
    await env?.cleanup();
  });

  it("refuses bad input with clear 4xx answers and produces nothing for it", async () => {
    const good = {
      auction_id: auctionId(),
      bidder_id: "u1",
      amount: 1000,
      currency: "USD",
      placed_at: now(),
    };
    const cases: [string, Promise<Response>, number, RegExp][] = [
      ["malformed JSON", post("/v1/bids", '{"auction_id":'), 400, /not valid JSON/],
      ["wrong type", post("/v1/bids", { ...good, amount: "1000" }), 400, /amount/],
      ["fractional cents", post("/v1/bids", { ...good, amount: 10.5 }), 400, /fractional/],
      ["negative amount", post("/v1/bids", { ...good, amount: -1 }), 400, /greater than 0/],
      [
        "far-future placed_at",
        post("/v1/bids", { ...good, placed_at: "2099-01-01T00:00:00Z" }),
        400,
        /future/,
      ],
      ["huge payload", post("/v1/bids", { ...good, pad: "x".repeat(200_000) }), 413, /./],
      ["no key", post("/v1/bids", good, null), 401, /missing API key/],
      ["wrong key", post("/v1/bids", good, "not-a-valid-key"), 401, /invalid API key/],
      ["missing scope", post("/v1/auctions", {}, BIDS_ONLY), 403, /may not write auctions/],
      [
        "duplicate ids in a batch",
        post("/v1/bids:batch", {
          bids: [
            { ...good, bid_id: "d1" },
            { ...good, bid_id: "d1" },
          ],
        }),
        400,
        /already used/,
      ],
    ];
    for (const [name, res, status, msg] of cases) {
      const r = await res;
      expect(r.status, name).toBe(status);
      expect(JSON.stringify(await r.json()), name).toMatch(msg);
    }
    expect(await readTopic(env, env.topics.bids.name)).toEqual([]);
  });

  it("accepts with 202 after the broker ack; business errors become reasoned dead-letter records downstream", async () => {
    running.push(await startBidProcessor(env), await startSilverWriter(env));
    const start = new Date(Date.now() - 60_000).toISOString();
    const end = new Date(Date.now() + 4_000).toISOString();
    const a = await post("/v1/auctions", {
      auction_id: auctionId(),
      item_id: "i1",
      seller_id: "seller",
      title: "Lamp",
      category: "home",
      currency: "USD",
      start_price: 1000,
      min_increment: 100,
      starts_at: start,
      ends_at: end,
    });
    expect(a.status).toBe(202);
    const bid = (o: Record<string, unknown>): Record<string, unknown> => ({
      auction_id: auctionId(),
      bidder_id: "u1",
      amount: 1000,
      currency: "USD",
      placed_at: now(),
      ...o,
    });
    const sent = [
      bid({ bid_id: `${env.name}-b1` }),
      bid({ bid_id: `${env.name}-b1`, amount: 5000 }), // duplicate id in a second request
      bid({ bid_id: `${env.name}-b2`, currency: "EUR", amount: 2000 }),
      bid({ bid_id: `${env.name}-b3`, auction_id: `${env.name}-nope` }),
      bid({ bid_id: `${env.name}-b4`, amount: 1050 }), // below current + increment
      bid({ bid_id: `${env.name}-b5`, bidder_id: "seller", amount: 3000 }),
      bid({ bid_id: `${env.name}-b6`, amount: 1100 }),
    ];
    for (const b of sent) {
      const r = await post("/v1/bids", b);
      expect(r.status).toBe(202);
      expect(((await r.json()) as { bid_id: string }).bid_id).toBe(b.bid_id);
    }
    await until(
      "every bid in silver and the auction closed",
      async () => {
        const c = await silverCounts(env);
        return c.bids + c.rejections >= sent.length && c.transactions >= 1;
      },
      60_000,
    );
    const rej = await env.pool.query<{ bid_id: string; reason: string }>(
      "SELECT bid_id, reason FROM silver.bid_rejections ORDER BY bid_id",
    );
    expect(rej.rows.map((r) => [r.bid_id.replace(`${env.name}-`, ""), r.reason])).toEqual([
      ["b1", "duplicate"],
      ["b2", "currency_mismatch"],
      ["b3", "auction_not_found"],
      ["b4", "below_minimum"],
      ["b5", "self_bid"],
    ]);
    const tx = await env.pool.query(
      "SELECT winner_id, final_price::int AS final_price FROM silver.transactions",
    );
    expect(tx.rows).toEqual([{ winner_id: "u1", final_price: 1100 }]);
  });

  it("generator --to http: every 202'd record ends in silver exactly once; 400s are the malformed records", async () => {
    const ds = datasetFor(env, "g", { seed: 21, auctions: 10, bids: 400, rate: 400 });
    const before = await silverCounts(env);
    const result = await sendToHttp({ url: ingest.url, apiKey: KEY }, ds);
    expect(result.failed).toBe(0);
    expect(result.sent + result.rejectedAtIngest.length).toBe(ds.bids.length);
    for (const i of result.rejectedAtIngest) expect(ds.bids[i]?.malformed, `record ${i}`).toBe(true);
    await until("silver to hold every accepted record", async () => {
      const c = await silverCounts(env);
      return (
        c.bids + c.rejections - before.bids - before.rejections >= result.sent &&
        c.transactions - before.transactions >= ds.auctions.length
      );
    });
    const c = await silverCounts(env);
    expect(c.bids + c.rejections - before.bids - before.rejections).toBe(result.sent);
    expect(c.transactions - before.transactions).toBe(ds.auctions.length);
  });

  it("gavel load posts CSV and NDJSON batch files", async () => {
    const dir = tmpdir();
    const csv = join(dir, `${env.name}.csv`);
    const t = now();
    writeFileSync(
      csv,
      `bid_id,auction_id,bidder_id,amount,currency,placed_at\n${env.name}-c1,${auctionId()},u7,900000,USD,${t}\n${env.name}-c2,${auctionId()},u7,10.5,USD,${t}\n`,
    );
    const nd = join(dir, `${env.name}.ndjson`);
    writeFileSync(
      nd,
      `${JSON.stringify({ bid_id: `${env.name}-n1`, auction_id: auctionId(), bidder_id: "u8", amount: 1, currency: "USD", placed_at: t })}\nnot json\n`,
    );
    const r1 = await loadFile(csv, { url: ingest.url, apiKey: KEY, batchSize: 10, source: "batch" });
    expect(r1).toEqual({ accepted: 1, rejected: 1, unparsable: 0, failed: 0 });
    const r2 = await loadFile(nd, { url: ingest.url, apiKey: KEY, batchSize: 10, source: "batch" });
    expect(r2).toEqual({ accepted: 1, rejected: 0, unparsable: 1, failed: 0 });
  });
});
