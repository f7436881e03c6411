import { afterEach, describe, expect, it } from "vitest";
import { HELD_META_MAX_BYTES } from "../../processors/bid-processor/held-meta.ts";
import { lampAuction, lampBid } from "../lamp-auction.ts";
import {
  type Env,
  type Running,
  readTopic,
  setupEnv,
  startBidProcessor,
  transport,
  until,
} from "./processors-harness.ts";

/**
 * Bids for auctions the processor has not seen are held, and their offsets
 * recorded in the committed offset's metadata, which Kafka limits to 4 KiB.
 * A backlog of held bids scattered between decided ones must neither crash
 * the consumer nor lose a bid: the oldest are rejected early.
 */
describe("bid-processor hold of bids for unknown auctions", () => {
  let env: Env | undefined;
  const running: Running[] = [];
  afterEach(async () => {
    for (const r of running.splice(0)) await r.close().catch(() => undefined);
    await env?.cleanup();
    env = undefined;
  });

  it("a scattered backlog of held bids larger than the offset metadata limit: every bid decided once", async () => {
    env = await setupEnv("held", 1);
    const e = env;
    const now = Date.now();
    const iso = (ms: number) => new Date(ms).toISOString();
    const producer = await transport("held-test").producer();
    await producer.send([
      {
        topic: e.topics.auctions.name,
        messages: [
          {
            key: "known",
            value: JSON.stringify(
              lampAuction("known", now - 60_000, now + 3_600_000, { soft_close_seconds: 10 }),
            ),
          },
        ],
      },
    ]);
    // Known and unknown auctions alternate: the held offsets are every other one.
    const n = 6_000;
    const bids = Array.from({ length: n }, (_, i) => {
      const known = i % 2 === 0;
      return {
        key: known ? "known" : `ghost-${i}`,
        value: JSON.stringify(
          lampBid({
            bid_id: `b-${i}`,
            auction_id: known ? "known" : `ghost-${i}`,
            bidder_id: `u-${i % 7}`,
            amount: 100 + i,
            placed_at: iso(now),
            received_at: iso(now),
          }),
        ),
      };
    });
    await producer.send([{ topic: e.topics.bids.name, messages: bids }]);
    await producer.close();

    running.push(await startBidProcessor(e));
    const decided = async () => {
      const acc = await readTopic(e, e.topics["bids.accepted"].name);
      const rej = await readTopic(e, e.topics["bids.rejected"].name);
      return { acc, rej };
    };
    await until("every bid decided", async () => {
      const { acc, rej } = await decided();
      return acc.length + rej.length >= n;
    });
    const { acc, rej } = await decided();
    const ids = [...acc, ...rej].map(
      (r) => (JSON.parse(r.value?.toString() ?? "{}") as { bid_id: string }).bid_id,
    );
    expect(ids.length).toBe(n);
    expect(new Set(ids).size).toBe(n);
    const reasons: Record<string, number> = {};
    const early: string[] = [];
    for (const r of rej) {
      const v = JSON.parse(r.value?.toString() ?? "{}") as {
        reason: string;
        detail: string;
        auction_id: string;
      };
      reasons[v.reason] = (reasons[v.reason] ?? 0) + 1;
      expect(v.auction_id.startsWith("ghost-")).toBe(true);
      if (v.detail.includes("too many bids held")) early.push(v.auction_id);
    }
    expect(reasons).toEqual({ auction_not_found: n / 2 });
    expect(acc.length).toBe(n / 2);
    // Some were rejected early to make room (the hold did not fit), the rest expired.
    expect(early.length).toBeGreaterThan(0);
    expect(early.length).toBeLessThan(n / 2);
    // The committed offset reached the end of the partition and its metadata fits.
    await until("offset committed to the end", async () => {
      const [c] = await e.admin.groupOffsets(`${e.name}.bid-processor`, e.topics.bids.name);
      return c?.offset === n && (c.metadata ?? "").length <= HELD_META_MAX_BYTES;
    });
  }, 180_000);
});
