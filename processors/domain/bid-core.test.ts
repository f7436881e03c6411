import { describe, expect, it } from "vitest";
import { type BidRejected, type PriceUpdate, SCHEMA, type Transaction } from "../../api/events/types.ts";
import { lampAuction } from "../../test/lamp-auction.ts";
import { BidProcessorCore, latestPricePerAuction, type OutputRecord } from "./bid-core.ts";
import { DEFAULT_FRAUD_CONFIG } from "./fraud.ts";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const iso = (s: number) => new Date(T0 + s * 1000).toISOString();

const auctionRaw = (id: string, over: Record<string, unknown> = {}) =>
  JSON.stringify({
    ...lampAuction(id, T0, T0 + 60_000, { start_price: 500, min_increment: 50, soft_close_seconds: 10 }),
    ...over,
  });

let n = 0;
const bidRaw = (over: Record<string, unknown> = {}) => {
  n += 1;
  return JSON.stringify({
    schema: SCHEMA.bid,
    bid_id: `b-${n}`,
    auction_id: "a",
    bidder_id: "alice",
    amount: 500,
    currency: "EUR",
    placed_at: iso(5),
    received_at: iso(5),
    source: "api",
    ...over,
  });
};

const topics = (o: OutputRecord[]) => o.map((r) => r.topic);

describe("BidProcessorCore", () => {
  it("turns every bid record into exactly one accepted or rejected record", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { closeGraceMs: 1000 } });
    expect(topics(core.onAuction(auctionRaw("a"), T0).outputs)).toEqual(["prices"]);
    const ok = core.onBid(bidRaw(), T0 + 5000);
    expect(topics(ok.outputs)).toEqual(["bidsAccepted", "prices"]);
    expect(ok.outputs.every((o) => o.key === "a")).toBe(true);

    const bad = core.onBid('{"bid_id":"x1","auction_id":"a","amount":-1}', T0);
    expect(topics(bad.outputs)).toEqual(["bidsRejected"]);
    const rej = bad.outputs[0]!.value as BidRejected;
    expect(rej).toMatchObject({ reason: "malformed", bid_id: "x1", auction_id: "a" });
    expect(rej.raw).toBe('{"bid_id":"x1","auction_id":"a","amount":-1}');
    expect(bad.outputs[0]!.key).toBe("a");

    const garbage = core.onBid("\u0000\u0001", T0);
    expect(garbage.outputs[0]).toMatchObject({ topic: "bidsRejected", key: "" });

    const low = core.onBid(bidRaw({ amount: 520, bidder_id: "bob" }), T0);
    expect((low.outputs[0]!.value as BidRejected).reason).toBe("below_minimum");
  });

  it("holds bids for an unknown auction, then decides them when it arrives or expires them", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { pendingMaxAgeMs: 10_000 } });
    const held = core.onBid(bidRaw({ auction_id: "late" }), T0, { offset: "17" });
    expect(held).toMatchObject({ ok: true, held: true, outputs: [] });
    expect(core.heldRefs()).toEqual([{ offset: "17" }]);
    // Logged 1 s after the bid: the bid is decided when the bids' clock
    // reaches the auction record, as a replay in log order decides it.
    const out = core.onAuction(auctionRaw("late"), T0 + 1000).outputs;
    expect(topics(out)).toEqual(["prices"]);
    expect(core.heldRefs()).toEqual([{ offset: "17" }]);
    expect(core.tick(T0 + 999)).toEqual([]);
    expect(topics(core.tick(T0 + 1000))).toEqual(["bidsAccepted", "prices"]);
    expect(core.heldRefs()).toEqual([]);

    // Read after the bids' clock passed it (bids fetched ahead): decided at once.
    core.onBid(bidRaw({ auction_id: "later" }), T0 + 2000, { offset: "18" });
    core.tick(T0 + 5000);
    expect(topics(core.onAuction(auctionRaw("later"), T0 + 3000).outputs)).toEqual([
      "prices",
      "bidsAccepted",
      "prices",
    ]);

    core.onBid(bidRaw({ auction_id: "never" }), T0 + 5000);
    expect(core.tick(T0 + 14_999)).toEqual([]);
    const exp = core.tick(T0 + 15_000);
    expect(exp).toHaveLength(1);
    expect(exp[0]!.value as BidRejected).toMatchObject({ reason: "auction_not_found", auction_id: "never" });
  });

  it("rejects the oldest held bids when the runtime has no room to remember them", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { pendingMaxAgeMs: 10_000 } });
    core.onBid(bidRaw({ auction_id: "x1" }), T0, { offset: 1 });
    core.onBid(bidRaw({ auction_id: "x2" }), T0 + 2000, { offset: 2 });
    const out = core.evictHeld(1, T0 + 3000, "too many held bids");
    expect(out).toHaveLength(1);
    expect(out[0]!.value as BidRejected).toMatchObject({ reason: "auction_not_found", auction_id: "x1" });
    expect((out[0]!.value as BidRejected).detail).toBe(
      "auction x1 is unknown (held 3s waiting for it; too many held bids)",
    );
    expect(core.heldRefs()).toEqual([{ offset: 2 }]);
  });

  it("closes exactly once on tick and survives a restore from the prices topic", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { closeGraceMs: 1000 } });
    core.onAuction(auctionRaw("a"), T0);
    const lastPrices = new Map<string, string>();
    const collect = (outs: OutputRecord[]) => {
      for (const o of outs) if (o.topic === "prices") lastPrices.set(o.key, JSON.stringify(o.value));
    };
    collect(core.onBid(bidRaw({ amount: 600, placed_at: iso(10) }), T0).outputs);
    collect(core.onBid(bidRaw({ amount: 700, bidder_id: "bob", placed_at: iso(55) }), T0).outputs);
    // anti-sniping: end moved from 60 s to 70 s
    expect(core.tick(T0 + 61_000)).toEqual([]);

    // a new replica takes over from the compacted prices topic
    const replica = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { closeGraceMs: 1000 } });
    for (const raw of lastPrices.values()) expect(replica.onPriceSnapshot(raw).ok).toBe(true);
    // re-delivered auction record changes nothing
    expect(replica.onAuction(auctionRaw("a"), T0).outputs).toEqual([]);
    const closed = replica.tick(T0 + 71_000);
    expect(topics(closed)).toEqual(["transactions", "prices"]);
    expect(closed[0]!.value as Transaction).toMatchObject({
      winner_id: "bob",
      final_price: 700,
      closed_at: iso(70),
    });
    expect((closed[1]!.value as PriceUpdate).status).toBe("closed");
    expect(replica.tick(T0 + 999_000)).toEqual([]);
    const late = replica.onBid(bidRaw({ amount: 9999, placed_at: iso(69) }), T0 + 80_000);
    expect((late.outputs[0]!.value as BidRejected).reason).toBe("auction_closed");
  });

  it("emits fraud alerts and quarantines at the threshold", () => {
    const core = new BidProcessorCore({
      fraud: {
        quarantineThreshold: 0.6,
        alertThreshold: 0.3,
        weights: {
          velocity: 1,
          newAccountHighBid: 0,
          shillPattern: 0,
          amountOutlier: 0,
          lastSecondBurst: 0,
          anomaly: 0,
        },
      },
    });
    core.onAuction(auctionRaw("a", { ends_at: iso(3600) }), T0);
    const reasons: string[] = [];
    for (let i = 0; i < 14; i++) {
      const out = core.onBid(bidRaw({ amount: 500 + i * 50, placed_at: iso(1 + i) }), T0);
      reasons.push(
        out.outputs
          .map((o) => (o.topic === "bidsRejected" ? (o.value as BidRejected).reason : o.topic))
          .join(","),
      );
    }
    // bids 1..5 normal; 6.. raise velocity: 0.1 per bid over 5
    expect(reasons.slice(0, 5).every((r) => r === "bidsAccepted,prices")).toBe(true);
    expect(reasons[7]).toBe("fraudAlerts,bidsAccepted,prices"); // 8 bids: 0.3
    expect(reasons[10]).toBe("fraudAlerts,fraud_quarantine"); // 11 bids: 0.6
  });

  it("closes due auctions before judging a bid whose time is past end + grace", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { closeGraceMs: 2000 } });
    core.onAuction(auctionRaw("a", { soft_close_seconds: null }), T0);
    // in time: placed and received before the end
    expect(
      topics(core.onBid(bidRaw({ placed_at: iso(59), received_at: iso(59) }), T0 + 59_000).outputs),
    ).toEqual(["bidsAccepted", "prices"]);
    // late record: placed before the end but received after end + grace
    const late = core.onBid(bidRaw({ amount: 900, placed_at: iso(58), received_at: iso(63) }), T0 + 63_000);
    expect(topics(late.outputs)).toEqual(["transactions", "prices", "bidsRejected"]);
    expect((late.outputs[2]!.value as BidRejected).reason).toBe("auction_closed");
  });

  it("reports unusable non-bid records instead of throwing", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG });
    expect(core.onAuction("{}", T0)).toMatchObject({ ok: false });
    expect(core.onUser("nope")).toMatchObject({ ok: false });
    expect(core.onPriceSnapshot("{}")).toMatchObject({ ok: false });
  });
});

describe("latestPricePerAuction", () => {
  it("keeps each auction's last price update and every other output, in order", () => {
    const out = (topic: OutputRecord["topic"], key: string, v: number): OutputRecord => ({
      topic,
      key,
      value: { v },
    });
    const outputs = [
      out("bidsAccepted", "a", 1),
      out("prices", "a", 1),
      out("bidsAccepted", "b", 2),
      out("prices", "b", 2),
      out("bidsRejected", "a", 3),
      out("bidsAccepted", "a", 4),
      out("prices", "a", 4),
      out("transactions", "b", 5),
      out("prices", "b", 5),
    ];
    expect(
      latestPricePerAuction(outputs).map((o) => `${o.topic}:${o.key}:${(o.value as { v: number }).v}`),
    ).toEqual([
      "bidsAccepted:a:1",
      "bidsAccepted:b:2",
      "bidsRejected:a:3",
      "bidsAccepted:a:4",
      "prices:a:4",
      "transactions:b:5",
      "prices:b:5",
    ]);
    const once = [out("prices", "a", 1), out("bidsAccepted", "a", 1)];
    expect(latestPricePerAuction(once)).toEqual(once);
  });

  it("the last price update of a batch carries the state a rebuild needs", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG });
    const outputs: OutputRecord[] = [...core.onAuction(auctionRaw("a"), T0).outputs];
    for (const [i, amount] of [600, 700, 800].entries())
      outputs.push(...core.onBid(bidRaw({ amount, bidder_id: `u${i}` }), T0 + 5000).outputs);
    const prices = latestPricePerAuction(outputs).filter((o) => o.topic === "prices");
    expect(prices).toHaveLength(1);
    const p = prices[0]!.value as PriceUpdate;
    expect(p).toMatchObject({ current_price: 800, bid_count: 3 });
    const restored = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG });
    expect(restored.onPriceSnapshot(JSON.stringify(p)).ok).toBe(true);
    const next = restored.onBid(bidRaw({ amount: 820, bidder_id: "u9" }), T0 + 6000).outputs;
    expect((next.find((o) => o.topic === "bidsRejected")?.value as BidRejected | undefined)?.reason).toBe(
      "below_minimum",
    );
  });
});

describe("BidProcessorCore: auctions read ahead of their log time", () => {
  it("an auction whose record comes after its own close time does not hide the closes behind it", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { pendingMaxAgeMs: 10_000 } });
    const K = T0 + 120_000;
    // Logged at K although it ended at T0 + 10 s (read ahead of the bids' clock).
    core.onAuction(auctionRaw("late", { ends_at: iso(10) }), K);
    core.onAuction(auctionRaw("b", { ends_at: iso(30), soft_close_seconds: null }), T0);
    const closed = core.tick(T0 + 40_000).filter((o) => o.topic === "transactions");
    expect(closed.map((o) => o.key)).toEqual(["b"]);
    // What the runtime waits for next (its log-end check) is the late record's time, not a past close.
    expect(core.book.nextCloseAtMs()).toBe(K);
    expect(
      core
        .tick(K)
        .filter((o) => o.topic === "transactions")
        .map((o) => o.key),
    ).toEqual(["late"]);
  });

  it("bids deferred until their auction record's time can be evicted when the runtime has no room", () => {
    const core = new BidProcessorCore({ fraud: DEFAULT_FRAUD_CONFIG, book: { pendingMaxAgeMs: 10_000 } });
    core.onAuction(auctionRaw("a"), T0 + 5_000);
    expect(core.onBid(bidRaw(), T0 + 1_000, { offset: 1 })).toMatchObject({ held: true });
    expect(core.heldRefs()).toEqual([{ offset: 1 }]);
    const out = core.evictHeld(1, T0 + 2_000, "too many held bids");
    expect(out.map((o) => (o.value as BidRejected).reason)).toEqual(["auction_not_found"]);
    expect(core.heldRefs()).toEqual([]);
  });
});
