import { describe, expect, it } from "vitest";
import type { Producer, TopicMessages } from "../../processors/kafka/transport.ts";
import { generateDataset } from "./dataset.ts";
import { sendToKafka } from "./sinks.ts";

/** Records what is sent and when (on a fake clock that only moves when the sink sleeps). */
function recorder(clock: { now: number }) {
  const sent: { at: number; batch: TopicMessages }[] = [];
  const producer: Producer = {
    async send(batches) {
      for (const b of batches) sent.push({ at: clock.now, batch: b });
    },
    async close() {},
  };
  return { producer, sent };
}

describe("sendToKafka", () => {
  const start = Date.parse("2026-11-22T12:00:00Z");
  const ds = generateDataset({ seed: 5, auctions: 10, bids: 500, startMs: start, rate: 100 });
  const topics = { auctions: "p.auctions", users: "p.users", bids: "p.bids" };

  it("sends users, auctions, then every bid in order, never before its time, keyed and timestamped", async () => {
    const clock = { now: start - 5000 };
    const { producer, sent } = recorder(clock);
    const r = await sendToKafka(producer, topics, ds, {
      now: () => clock.now,
      sleep: async (ms) => {
        clock.now += ms;
      },
    });
    expect(r).toMatchObject({ sent: 500, failed: 0, maxLagMs: 0 });
    expect(sent[0]!.batch.topic).toBe("p.users");
    const firstBid = sent.findIndex((s) => s.batch.topic === "p.bids");
    expect(sent.slice(0, firstBid).map((s) => s.batch.topic)).toContain("p.auctions");
    const msgs = sent.slice(firstBid).flatMap((s) => s.batch.messages.map((m) => ({ at: s.at, m })));
    expect(msgs.map(({ m }) => m.value)).toEqual(ds.bids.map((b) => b.raw));
    msgs.forEach(({ at, m }, i) => {
      const b = ds.bids[i]!;
      expect(at).toBeGreaterThanOrEqual(b.sendAtMs);
      expect(m.key).toBe(b.key);
      expect(m.timestamp).toBe(b.sendAtMs);
    });
  });

  it("unpaced sends in full batches without waiting", async () => {
    const clock = { now: start };
    const { producer, sent } = recorder(clock);
    let slept = 0;
    await sendToKafka(producer, topics, ds, {
      unpaced: true,
      batchSize: 200,
      now: () => clock.now,
      sleep: async () => {
        slept++;
      },
    });
    expect(slept).toBe(0);
    expect(sent.filter((s) => s.batch.topic === "p.bids").map((s) => s.batch.messages.length)).toEqual([
      200, 200, 100,
    ]);
  });
});

describe("lean datasets", () => {
  it("equal the full ones without the parsed bids", () => {
    const opts = { seed: 9, auctions: 5, bids: 200, startMs: Date.parse("2026-11-22T12:00:00Z") };
    const full = generateDataset(opts);
    const lean = generateDataset({ ...opts, lean: true });
    expect(lean.bids.every((b) => b.bid === undefined)).toBe(true);
    expect(lean.bids).toEqual(full.bids.map(({ bid: _bid, ...rest }) => rest));
  });
});
