import { describe, expect, it } from "vitest";
import { type AuctionEvent, type BidEvent, SCHEMA } from "../../api/events/types.ts";
import { AuctionBook, type BidOutcome } from "./auction.ts";

const T0 = Date.parse("2026-11-22T10:00:00Z");
const iso = (offsetS: number) => new Date(T0 + offsetS * 1000).toISOString();

function auction(over: Partial<AuctionEvent> = {}): AuctionEvent {
  return {
    schema: SCHEMA.auction,
    auction_id: "a-1",
    item_id: "i-1",
    seller_id: "seller",
    title: "Camera",
    category: "electronics",
    currency: "USD",
    start_price: 1000,
    min_increment: 100,
    starts_at: iso(0),
    ends_at: iso(600),
    ...over,
  };
}

let seq = 0;
function bid(over: Partial<BidEvent> = {}): BidEvent {
  seq += 1;
  return {
    schema: SCHEMA.bid,
    bid_id: `b-${seq}`,
    auction_id: "a-1",
    bidder_id: "alice",
    amount: 1000,
    currency: "USD",
    placed_at: iso(60),
    received_at: iso(60),
    source: "api",
    ...over,
  };
}

function reason(o: BidOutcome): string {
  return o.kind === "rejected" ? o.reason : o.kind;
}

describe("AuctionBook validation order", () => {
  it("accepts a first bid at the start price and leads the auction", () => {
    const book = new AuctionBook();
    const created = book.applyAuction(auction());
    expect(created.kind).toBe("created");
    const o = book.applyBid(bid(), T0);
    expect(o.kind).toBe("accepted");
    if (o.kind !== "accepted") return;
    expect(o.accepted).toMatchObject({ bid_seq: 1, amount: 1000, extended: false, ends_at: iso(600) });
    expect(o.price).toMatchObject({
      version: 2,
      status: "open",
      current_price: 1000,
      leader_id: "alice",
      bid_count: 1,
    });
  });

  it("rejects each rule with its reason, first failing rule wins", () => {
    const book = new AuctionBook({ pendingMaxBids: 0 });
    book.applyAuction(auction({ soft_close_seconds: 0 }));
    const first = bid({ amount: 1000 });
    expect(reason(book.applyBid(first, T0))).toBe("accepted");
    // duplicate beats everything else, even a would-be currency mismatch
    expect(reason(book.applyBid({ ...first, currency: "EUR" }, T0))).toBe("duplicate");
    expect(reason(book.applyBid(bid({ auction_id: "nope" }), T0))).toBe("auction_not_found");
    // currency_mismatch before self_bid
    expect(reason(book.applyBid(bid({ currency: "EUR", bidder_id: "seller" }), T0))).toBe(
      "currency_mismatch",
    );
    // self_bid before not_started
    expect(reason(book.applyBid(bid({ bidder_id: "seller", placed_at: iso(-10) }), T0))).toBe("self_bid");
    expect(reason(book.applyBid(bid({ placed_at: iso(-10) }), T0))).toBe("not_started");
    // auction_closed (placed at/after the end) before below_minimum
    expect(reason(book.applyBid(bid({ placed_at: iso(600), amount: 1 }), T0))).toBe("auction_closed");
    expect(reason(book.applyBid(bid({ amount: 1099 }), T0))).toBe("below_minimum");
    expect(reason(book.applyBid(bid({ amount: 1100 }), T0, 0.9, 0.8))).toBe("fraud_quarantine");
    expect(reason(book.applyBid(bid({ amount: 1100 }), T0, 0.79, 0.8))).toBe("accepted");
  });

  it("below_minimum: the first bid against start_price, later ones against current + increment", () => {
    const book = new AuctionBook();
    book.applyAuction(auction());
    const o = book.applyBid(bid({ amount: 999 }), T0);
    expect(o).toMatchObject({ reason: "below_minimum", detail: "amount 999 is below the start price 1000" });
    book.applyBid(bid({ amount: 1500 }), T0);
    const o2 = book.applyBid(bid({ amount: 1550, bidder_id: "bob" }), T0);
    expect(o2).toMatchObject({
      reason: "below_minimum",
      detail: "amount 1550 is below current price 1500 + min increment 100 = 1600",
    });
    expect(reason(book.applyBid(bid({ amount: 1600, bidder_id: "bob" }), T0))).toBe("accepted");
  });

  it("quarantine is at or over the threshold and computes the score lazily after the other rules", () => {
    const book = new AuctionBook();
    book.applyAuction(auction());
    let calls = 0;
    const score = () => {
      calls += 1;
      return 0.8;
    };
    expect(reason(book.applyBid(bid({ amount: 5 }), T0, score, 0.8))).toBe("below_minimum");
    expect(calls).toBe(0);
    const o = book.applyBid(bid(), T0, score, 0.8);
    expect(o).toMatchObject({ kind: "rejected", reason: "fraud_quarantine", fraudScore: 0.8 });
    expect(calls).toBe(1);
  });

  it("forgets the oldest bid ids beyond the bound", () => {
    const book = new AuctionBook({ maxSeenBidIds: 3 });
    book.applyAuction(auction());
    const bids = [1, 2, 3, 4].map((i) => bid({ amount: 1000 + i * 100 }));
    for (const b of bids) expect(reason(book.applyBid(b, T0))).toBe("accepted");
    expect(reason(book.applyBid(bids[3]!, T0))).toBe("duplicate");
    // b1 was forgotten: judged again (and now too low)
    expect(reason(book.applyBid(bids[0]!, T0))).toBe("below_minimum");
  });
});

describe("anti-sniping", () => {
  it("extends the effective end by the soft-close window for a bid inside it", () => {
    const book = new AuctionBook({ closeGraceMs: 0 });
    book.applyAuction(auction({ soft_close_seconds: 30 }));
    const early = book.applyBid(bid({ placed_at: iso(500) }), T0);
    expect(early.kind === "accepted" && early.accepted.extended).toBe(false);
    const late = book.applyBid(bid({ placed_at: iso(590), amount: 1100, bidder_id: "bob" }), T0);
    expect(late.kind).toBe("accepted");
    if (late.kind !== "accepted") return;
    expect(late.accepted.extended).toBe(true);
    expect(late.accepted.ends_at).toBe(iso(630));
    expect(late.price.ends_at).toBe(iso(630));
    // A bid after the original end but before the extended end is valid...
    const later = book.applyBid(bid({ placed_at: iso(620), amount: 1200 }), T0);
    expect(later.kind === "accepted" && later.accepted.ends_at).toBe(iso(660));
    // ...and the auction does not close at the original end.
    expect(book.closeDue(T0 + 600_000)).toEqual([]);
    expect(book.closeDue(T0 + 659_999)).toEqual([]);
    const closed = book.closeDue(T0 + 660_000);
    expect(closed).toHaveLength(1);
    expect(closed[0]!.transaction).toMatchObject({
      closed_at: iso(660),
      final_price: 1200,
      winner_id: "alice",
    });
  });

  it("uses the book's default window when the auction has none, and none when it is 0", () => {
    const book = new AuctionBook({ defaultSoftCloseSeconds: 60 });
    book.applyAuction(auction());
    book.applyAuction(auction({ auction_id: "a-2", soft_close_seconds: 0 }));
    const a = book.applyBid(bid({ placed_at: iso(599) }), T0);
    expect(a.kind === "accepted" && a.accepted.ends_at).toBe(iso(660));
    const b = book.applyBid(bid({ auction_id: "a-2", placed_at: iso(599) }), T0);
    expect(b.kind === "accepted" && b.accepted.extended).toBe(false);
  });

  it("a bid placed exactly at the effective end is too late", () => {
    const book = new AuctionBook();
    book.applyAuction(auction({ soft_close_seconds: 30 }));
    expect(reason(book.applyBid(bid({ placed_at: iso(600) }), T0))).toBe("auction_closed");
  });
});

describe("closing", () => {
  it("closes exactly once after end + grace, with winner, reserve and counts", () => {
    const book = new AuctionBook({ closeGraceMs: 2000 });
    book.applyAuction(auction({ reserve_price: 1500 }));
    book.applyBid(bid({ amount: 1200, bidder_id: "bob", placed_at: iso(10) }), T0);
    book.applyBid(bid({ amount: 1600, bidder_id: "carol", placed_at: iso(20) }), T0);
    expect(book.nextCloseAtMs()).toBe(T0 + 602_000);
    expect(book.closeDue(T0 + 601_999)).toEqual([]);
    const closed = book.closeDue(T0 + 602_000);
    expect(closed).toHaveLength(1);
    expect(closed[0]!.transaction).toEqual({
      schema: SCHEMA.transaction,
      auction_id: "a-1",
      winner_id: "carol",
      high_bidder_id: "carol",
      final_price: 1600,
      reserve_met: true,
      closed_at: iso(600),
      seller_id: "seller",
      category: "electronics",
      currency: "USD",
      start_price: 1000,
      bid_count: 2,
      starts_at: iso(0),
      first_bid_at: iso(10),
    });
    expect(closed[0]!.price).toMatchObject({ status: "closed", version: 4 });
    // never again: not on a later tick, not after a re-delivered auction record
    expect(book.closeDue(T0 + 10_000_000)).toEqual([]);
    expect(book.applyAuction(auction({ reserve_price: 1500 })).kind).toBe("ignored_closed");
    expect(book.applyAuction(auction({ ends_at: iso(9999) })).kind).toBe("ignored_closed");
    expect(book.closeDue(T0 + 20_000_000)).toEqual([]);
    // late bids (placed before the end, arriving after the close) are auction_closed
    expect(book.applyBid(bid({ amount: 5000, placed_at: iso(599) }), T0 + 700_000)).toMatchObject({
      reason: "auction_closed",
    });
    expect(book.nextCloseAtMs()).toBeUndefined();
  });

  it("reserve not met: no winner, the high bid is still reported", () => {
    const book = new AuctionBook({ closeGraceMs: 0 });
    book.applyAuction(auction({ reserve_price: 5000 }));
    book.applyBid(bid({ amount: 1200 }), T0);
    const [c] = book.closeDue(T0 + 600_000);
    expect(c!.transaction).toMatchObject({
      winner_id: null,
      high_bidder_id: "alice",
      final_price: 1200,
      reserve_met: false,
    });
  });

  it("no bids: no winner, no price, reserve not met", () => {
    const book = new AuctionBook({ closeGraceMs: 0 });
    book.applyAuction(auction());
    const [c] = book.closeDue(T0 + 600_000);
    expect(c!.transaction).toMatchObject({
      winner_id: null,
      final_price: null,
      reserve_met: false,
      bid_count: 0,
    });
  });

  it("closes many auctions in end order and skips stale heap entries", () => {
    const book = new AuctionBook({ closeGraceMs: 0 });
    for (let i = 0; i < 50; i++)
      book.applyAuction(auction({ auction_id: `x-${i}`, ends_at: iso(1000 - i * 10) }));
    // move one auction's end later with an update: it must close at the new end only
    book.applyAuction(auction({ auction_id: "x-49", ends_at: iso(5000) }));
    const first = book.closeDue(T0 + 1000_000);
    expect(first.map((c) => c.transaction.auction_id)).toEqual(
      Array.from({ length: 49 }, (_, i) => `x-${48 - i}`),
    );
    expect(book.closeDue(T0 + 4_999_999)).toEqual([]);
    expect(book.closeDue(T0 + 5_000_000).map((c) => c.transaction.auction_id)).toEqual(["x-49"]);
  });

  it("re-delivered identical auction records do not bump the version", () => {
    const book = new AuctionBook();
    book.applyAuction(auction());
    expect(book.applyAuction(auction()).kind).toBe("unchanged");
    const u = book.applyAuction(auction({ title: "Better camera" }));
    expect(u.kind === "updated" && u.price.version).toBe(2);
  });
});

describe("pending hold", () => {
  it("holds a bid that arrives before its auction and releases it in order", () => {
    const book = new AuctionBook();
    const b1 = bid({ auction_id: "late", amount: 1000 });
    const b2 = bid({ auction_id: "late", amount: 1100, bidder_id: "bob" });
    expect(book.applyBid(b1, T0, 0, 1.01, "ref-1").kind).toBe("pending");
    expect(book.applyBid(b2, T0, 0, 1.01, "ref-2").kind).toBe("pending");
    expect(reason(book.applyBid(b1, T0))).toBe("duplicate");
    expect(book.pendingSize).toBe(2);
    expect(book.heldRefs()).toEqual(["ref-1", "ref-2"]);
    const r = book.applyAuction(auction({ auction_id: "late" }));
    expect(r.released.map((h) => h.bid.bid_id)).toEqual([b1.bid_id, b2.bid_id]);
    expect(book.pendingSize).toBe(0);
    for (const h of r.released) expect(reason(book.applyBid(h.bid, T0))).toBe("accepted");
  });

  it("expires held bids after the hold time (then auction_not_found) and bounds their number", () => {
    const book = new AuctionBook({ pendingMaxBids: 2, pendingMaxAgeMs: 5000 });
    expect(book.applyBid(bid({ auction_id: "x" }), T0).kind).toBe("pending");
    expect(book.applyBid(bid({ auction_id: "y" }), T0 + 3000).kind).toBe("pending");
    expect(book.applyBid(bid({ auction_id: "z" }), T0 + 3000)).toMatchObject({ reason: "auction_not_found" });
    expect(book.expirePending(T0 + 4999)).toEqual([]);
    expect(book.expirePending(T0 + 5000).map((h) => h.bid.auction_id)).toEqual(["x"]);
    expect(book.pendingSize).toBe(1);
    expect(book.expirePending(T0 + 8000).map((h) => h.bid.auction_id)).toEqual(["y"]);
    expect(book.pendingSize).toBe(0);
  });

  it("evicts the oldest held bids on demand, skipping released ones", () => {
    const book = new AuctionBook({ pendingMaxAgeMs: 60_000 });
    for (const id of ["a", "b", "c", "d"]) book.applyBid(bid({ auction_id: id }), T0, 0, 1.01, `ref-${id}`);
    book.applyAuction(auction({ auction_id: "a" }));
    expect(book.evictOldestPending(2).map((h) => h.bid.auction_id)).toEqual(["b", "c"]);
    expect(book.heldRefs()).toEqual(["ref-d"]);
    expect(book.evictOldestPending(5).map((h) => h.bid.auction_id)).toEqual(["d"]);
    expect(book.pendingSize).toBe(0);
    expect(book.evictOldestPending(1)).toEqual([]);
  });
});

describe("snapshot and restore", () => {
  it("a restored book continues exactly where the original left off", () => {
    const a = new AuctionBook({ closeGraceMs: 0 });
    a.applyAuction(auction({ soft_close_seconds: 30 }));
    const b1 = bid({ amount: 1000, placed_at: iso(100) });
    a.applyBid(b1, T0);
    const o = a.applyBid(bid({ amount: 1300, bidder_id: "bob", placed_at: iso(590) }), T0);
    expect(o.kind).toBe("accepted");
    const state = o.kind === "accepted" ? o.price.state : undefined;
    expect(state).toBeDefined();

    const b = new AuctionBook({ closeGraceMs: 0 });
    // restore from JSON (as read back from the prices topic)
    expect(b.restore(JSON.parse(JSON.stringify(state)))).toBe(true);
    expect(b.openCount).toBe(1);
    expect(b.view("a-1")).toEqual(a.view("a-1"));
    expect(reason(b.applyBid(b1, T0))).toBe("duplicate");
    expect(reason(b.applyBid(bid({ amount: 1350 }), T0))).toBe("below_minimum");
    expect(b.closeDue(T0 + 629_999)).toEqual([]);
    expect(b.closeDue(T0 + 630_000)[0]!.transaction).toMatchObject({ winner_id: "bob", final_price: 1300 });
  });

  it("ignores older snapshots and restores closed auctions as closed", () => {
    const a = new AuctionBook({ closeGraceMs: 0 });
    const created = a.applyAuction(auction());
    const v1 = created.kind === "created" ? created.price.state! : undefined;
    const acc = a.applyBid(bid(), T0);
    const v2 = acc.kind === "accepted" ? acc.price.state! : undefined;
    const [closed] = a.closeDue(T0 + 600_000);
    const v3 = closed!.price.state!;

    const b = new AuctionBook({ closeGraceMs: 0 });
    expect(b.restore(v3)).toBe(true);
    expect(b.restore(v2!)).toBe(false);
    expect(b.restore(v1!)).toBe(false);
    expect(b.status("a-1")).toBe("closed");
    expect(b.snapshot()).toEqual([v3]);
    expect(b.closeDue(T0 + 10_000_000)).toEqual([]);
    expect(b.applyAuction(auction()).kind).toBe("ignored_closed");
  });

  it("evicts closed auctions after the retention, keeping a tombstone (bounded memory, still closed)", () => {
    const book = new AuctionBook({ closeGraceMs: 0, closedRetentionMs: 60_000, maxTombstones: 2 });
    for (const id of ["t1", "t2", "t3"]) book.applyAuction(auction({ auction_id: id }));
    const b = bid({ auction_id: "t1" });
    book.applyBid(b, T0);
    expect(book.openCount).toBe(3);
    expect(book.closeDue(T0 + 600_000)).toHaveLength(3);
    expect(book.openCount).toBe(0);
    // within the retention: full state, duplicates recognised
    expect(reason(book.applyBid(b, T0 + 601_000))).toBe("duplicate");
    expect(book.closeDue(T0 + 659_999)).toEqual([]);
    expect(book.size).toBe(3);
    const snap = book.snapshotOf("t2")!;
    book.closeDue(T0 + 660_000);
    expect(book.size).toBe(0);
    // tombstones: t1 was forgotten (bound 2), t2/t3 stay closed
    expect(book.status("t1")).toBeUndefined();
    expect(book.status("t2")).toBe("closed");
    expect(book.applyAuction(auction({ auction_id: "t3" })).kind).toBe("ignored_closed");
    expect(book.applyBid(bid({ auction_id: "t2" }), T0 + 700_000)).toMatchObject({
      reason: "auction_closed",
      detail: expect.stringMatching(/closed at 2026-11-22T10:10:00.000Z/),
    });
    // a snapshot cannot resurrect a tombstoned auction
    expect(book.restore({ ...snap, status: "open", version: 99 })).toBe(false);
  });

  it("drops auctions of revoked partitions", () => {
    const book = new AuctionBook();
    book.applyAuction(auction({ auction_id: "keep" }));
    book.applyAuction(auction({ auction_id: "drop" }));
    book.applyBid(bid({ auction_id: "drop-later" }), T0);
    expect(book.openCount).toBe(2);
    book.retain((id) => id === "keep");
    expect(book.size).toBe(1);
    expect(book.openCount).toBe(1);
    expect(book.pendingSize).toBe(0);
  });
});
