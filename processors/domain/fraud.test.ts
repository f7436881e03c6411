import { describe, expect, it } from "vitest";
import { type AuctionEvent, type BidEvent, SCHEMA } from "../../api/events/types.ts";
import { FEATURE_NAMES } from "../fraud/model.ts";
import type { AuctionView } from "./auction.ts";
import { DEFAULT_FRAUD_CONFIG, type FraudConfig, FraudScorer, fraudAlert, Lru } from "./fraud.ts";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const iso = (offsetS: number) => new Date(T0 + offsetS * 1000).toISOString();
const DAY = 86_400;

function view(over: Partial<AuctionEvent> = {}, state: Partial<AuctionView> = {}): AuctionView {
  return {
    auction: {
      schema: SCHEMA.auction,
      auction_id: "a-1",
      item_id: "i",
      seller_id: "seller",
      title: "t",
      category: "toys",
      currency: "USD",
      start_price: 1000,
      min_increment: 100,
      starts_at: iso(-3600),
      ends_at: iso(3600),
      ...over,
    },
    currentPrice: null,
    leaderId: null,
    bidCount: 0,
    effectiveEndMs: T0 + 3_600_000,
    ...state,
  };
}

let n = 0;
function bid(over: Partial<BidEvent> = {}): BidEvent {
  n += 1;
  return {
    schema: SCHEMA.bid,
    bid_id: `b-${n}`,
    auction_id: "a-1",
    bidder_id: "alice",
    amount: 1000,
    currency: "USD",
    placed_at: iso(0),
    received_at: iso(0),
    source: "api",
    ...over,
  };
}

function user(id: string, createdOffsetS: number, country = "DE") {
  return { schema: SCHEMA.user, user_id: id, created_at: iso(createdOffsetS), country, rating: 4 } as const;
}

/** Only one signal weighted: the score is that signal's strength. */
function only(name: keyof FraudConfig["weights"]): FraudConfig {
  const weights = {
    velocity: 0,
    newAccountHighBid: 0,
    shillPattern: 0,
    amountOutlier: 0,
    lastSecondBurst: 0,
    anomaly: 0,
  };
  return { quarantineThreshold: 0.8, alertThreshold: 0.5, weights: { ...weights, [name]: 1 } };
}

describe("FraudScorer signals", () => {
  it("a normal bid scores 0 with no signals", () => {
    const s = new FraudScorer();
    s.applyUser(user("alice", -400 * DAY));
    const a = s.score(bid(), view());
    expect(a).toMatchObject({ score: 0, signals: [], alert: false, quarantine: false });
    expect(a.model).toBeUndefined();
    // one bid in the window, at the start price, 400 days old, first bid on the seller, no linked bidders
    expect(a.features).toHaveLength(FEATURE_NAMES.length);
    expect(a.features[0]).toBe(1);
    expect(a.features[5]).toBeCloseTo(Math.log1p(400), 3);
    expect(a.features.slice(6)).toEqual([1, 0, 0]);
  });

  it("velocity: grows past the normal count inside the window, ignores old bids", () => {
    const s = new FraudScorer(only("velocity"));
    const v = view();
    for (let i = 0; i < 9; i++) s.observe(bid({ placed_at: iso(i) }), v, false);
    // 10th bid within 60 s: (10 - 5) / (15 - 5) = 0.5
    const a = s.score(bid({ placed_at: iso(10) }), v);
    expect(a.score).toBe(0.5);
    expect(a.signals[0]).toMatchObject({ name: "velocity", strength: 0.5, weight: 1, contribution: 0.5 });
    expect(a.signals[0]!.detail).toBe("10 bids by alice within 60s (normal <= 5)");
    expect(a.alert).toBe(true);
    // two minutes later the window is empty again
    expect(s.score(bid({ placed_at: iso(200) }), v).score).toBe(0);
    // other bidders are not affected
    expect(s.score(bid({ bidder_id: "bob", placed_at: iso(10) }), v).score).toBe(0);
  });

  it("newAccountHighBid: young account and a bid far above the start price", () => {
    const s = new FraudScorer(only("newAccountHighBid"));
    s.applyUser(user("newbie", 0));
    s.applyUser(user("veteran", -30 * DAY));
    const v = view();
    const high = s.score(bid({ bidder_id: "newbie", amount: 5000 }), v);
    expect(high.score).toBe(1);
    // same amount from an old account: nothing
    expect(s.score(bid({ bidder_id: "veteran", amount: 5000 }), v).score).toBe(0);
    // new account at the start price: nothing
    expect(s.score(bid({ bidder_id: "newbie", amount: 1000 }), v).score).toBe(0);
    // half-way old account (3.5 days) and a 5x bid: 0.5
    s.applyUser(user("mid", -3.5 * DAY));
    expect(s.score(bid({ bidder_id: "mid", amount: 5000 }), v).score).toBe(0.5);
    // unknown user: no signal
    expect(s.score(bid({ bidder_id: "ghost", amount: 5000 }), v).signals).toEqual([]);
  });

  it("shillPattern: many auctions of one seller, rarely won", () => {
    const s = new FraudScorer(only("shillPattern"));
    for (let i = 0; i < 5; i++)
      s.observe(bid({ bidder_id: "shill", auction_id: `s-${i}` }), view({ auction_id: `s-${i}` }), true);
    const v = view({ auction_id: "s-9" });
    const a = s.score(bid({ bidder_id: "shill", auction_id: "s-9" }), v);
    // 6 auctions: many = (6 - 3 + 1) / 3 -> 1; no wins -> 1
    expect(a.score).toBe(1);
    expect(a.signals[0]!.detail).toBe("bid on 6 auctions of seller seller, won 0 (0%)");
    // a bidder who wins often on that seller is not a shill
    const w = new FraudScorer(only("shillPattern"));
    for (let i = 0; i < 5; i++) {
      w.observe(bid({ bidder_id: "fan", auction_id: `s-${i}` }), view({ auction_id: `s-${i}` }), true);
      w.applyTransaction({
        schema: SCHEMA.transaction,
        auction_id: `s-${i}`,
        winner_id: "fan",
        high_bidder_id: "fan",
        final_price: 1000,
        reserve_met: true,
        closed_at: iso(0),
        seller_id: "seller",
        category: "toys",
        currency: "USD",
        start_price: 1000,
        bid_count: 1,
        starts_at: iso(-10),
        first_bid_at: iso(-5),
      });
    }
    expect(w.score(bid({ bidder_id: "fan", auction_id: "s-9" }), v).score).toBe(0);
    // only two auctions of the seller: below the minimum, no signal
    const few = new FraudScorer(only("shillPattern"));
    few.observe(bid({ bidder_id: "x", auction_id: "s-1" }), view({ auction_id: "s-1" }), false);
    expect(few.score(bid({ bidder_id: "x", auction_id: "s-2" }), view({ auction_id: "s-2" })).score).toBe(0);
  });

  it("amountOutlier: against the auction's current price", () => {
    const s = new FraudScorer(only("amountOutlier"));
    const v = view({}, { currentPrice: 2000, bidCount: 3 });
    expect(s.score(bid({ amount: 4000 }), v).score).toBe(0); // 2x: normal
    const a = s.score(bid({ amount: 7000 }), v); // 3.5x: (3.5 - 2) / 3 = 0.5
    expect(a.score).toBe(0.5);
    expect(a.signals[0]!.detail).toBe("amount is 3.50x the current price");
    expect(s.score(bid({ amount: 100_000 }), v).score).toBe(1);
  });

  it("amountOutlier: against the category distribution once it has enough samples", () => {
    const s = new FraudScorer(only("amountOutlier"));
    // category prices around 1000..1300 (log-normal-ish), 40 samples
    for (let i = 0; i < 40; i++) {
      const amount = 1000 + ((i * 37) % 300);
      s.observe(
        bid({ bidder_id: `u${i}`, amount, auction_id: `c-${i}` }),
        view({ auction_id: `c-${i}` }),
        true,
      );
    }
    // a fresh auction with a tiny start price: vs the auction 1.5x (normal), vs the category far out
    const v = view({ auction_id: "new", start_price: 100_000 }, {});
    const a = s.score(bid({ auction_id: "new", amount: 150_000 }), v);
    expect(a.score).toBe(1);
    expect(a.signals[0]!.detail).toMatch(/standard deviations from the toys category/);
    // rejected bids do not teach the distribution
    const before = s.score(bid({ amount: 1200 }), view({ auction_id: "q" })).score;
    expect(before).toBe(0);
  });

  it("lastSecondBurst: linked accounts bidding in the last seconds", () => {
    const s = new FraudScorer(only("lastSecondBurst"));
    // a ring: same country, accounts created within minutes
    s.applyUser(user("ring1", -10 * DAY, "NL"));
    s.applyUser(user("ring2", -10 * DAY + 600, "NL"));
    s.applyUser(user("ring3", -10 * DAY + 1200, "NL"));
    s.applyUser(user("stranger", -10 * DAY + 300, "FR"));
    const v = view({}, { effectiveEndMs: T0 + 10_000, currentPrice: 1000 });
    s.observe(bid({ bidder_id: "ring1", placed_at: iso(5) }), v, true);
    s.observe(bid({ bidder_id: "stranger", placed_at: iso(6) }), v, true);
    const one = s.score(bid({ bidder_id: "ring3", placed_at: iso(7) }), v);
    expect(one.score).toBe(0.5);
    s.observe(bid({ bidder_id: "ring2", placed_at: iso(7) }), v, true);
    const two = s.score(bid({ bidder_id: "ring3", placed_at: iso(8) }), v);
    expect(two.score).toBe(1);
    expect(two.signals[0]!.detail).toBe("2 linked bidders bid in the last 10s (2.0s before the end)");
    // outside the last seconds: nothing
    const early = view({}, { effectiveEndMs: T0 + 3_600_000 });
    expect(s.score(bid({ bidder_id: "ring3", placed_at: iso(8) }), early).score).toBe(0);
    // the stranger is not linked to the ring
    expect(s.score(bid({ bidder_id: "stranger", placed_at: iso(9) }), v).score).toBe(0);
  });

  it("combines weighted signals, caps at 1, orders by contribution and flags thresholds", () => {
    const s = new FraudScorer(DEFAULT_FRAUD_CONFIG);
    s.applyUser(user("newbie", 0));
    const v = view({}, { currentPrice: 1000, bidCount: 1 });
    for (let i = 0; i < 20; i++) s.observe(bid({ bidder_id: "newbie", placed_at: iso(i) }), v, false);
    const a = s.score(bid({ bidder_id: "newbie", amount: 10_000, placed_at: iso(21) }), v);
    // velocity 0.3 + amountOutlier 0.2 + newAccountHighBid ~0.2 (21 s old, not quite 0 days) = ~0.7
    expect(a.signals.map((x) => x.name)).toEqual(["velocity", "amountOutlier", "newAccountHighBid"]);
    expect(a.score).toBeCloseTo(0.7, 4);
    expect(a.score).toBeLessThan(0.7);
    expect(a.alert).toBe(true);
    expect(a.quarantine).toBe(false);
    const heavy = new FraudScorer({
      ...DEFAULT_FRAUD_CONFIG,
      weights: { ...DEFAULT_FRAUD_CONFIG.weights, velocity: 1 },
    });
    for (let i = 0; i < 20; i++) heavy.observe(bid({ bidder_id: "bot", placed_at: iso(i) }), v, false);
    const h = heavy.score(bid({ bidder_id: "bot", amount: 10_000, placed_at: iso(21) }), v);
    expect(h.score).toBe(1);
    expect(h.quarantine).toBe(true);
    const alert = fraudAlert(bid({ bidder_id: "bot" }), h);
    expect(alert).toMatchObject({ schema: SCHEMA.fraudAlert, quarantined: true, score: 1 });
    const sum = h.signals.reduce((t, x) => t + x.contribution, 0);
    expect(sum).toBeGreaterThan(1);
  });

  it("keeps memory bounded", () => {
    const s = new FraudScorer(DEFAULT_FRAUD_CONFIG, {
      maxBidders: 10,
      maxUsers: 10,
      maxPairs: 10,
      maxAuctions: 10,
    });
    for (let i = 0; i < 1000; i++) {
      s.applyUser(user(`u${i}`, 0));
      s.observe(
        bid({ bidder_id: `u${i}`, auction_id: `a${i}` }),
        view({ auction_id: `a${i}`, seller_id: `s${i}` }),
        true,
      );
    }
    const internals = s as unknown as Record<string, Lru<string, unknown>>;
    for (const k of ["users", "bidTimes", "pairs", "recent"])
      expect(internals[k]!.size).toBeLessThanOrEqual(10);
    const lru = new Lru<string, number>(4);
    lru.set("a", 1);
    lru.set("b", 2);
    lru.set("c", 3); // a, b move to the old generation
    lru.get("a"); // promoted: recently used
    lru.set("d", 4); // young full (c, a): c, a become old, b is dropped
    lru.set("e", 5);
    expect(lru.peek("b")).toBeUndefined();
    expect(lru.peek("a")).toBe(1);
    expect(lru.size).toBeLessThanOrEqual(4);
    for (let i = 0; i < 100; i++) lru.set(`k${i}`, i);
    expect(lru.size).toBeLessThanOrEqual(4);
    expect(lru.peek("k99")).toBe(99);
  });
});
