import { describe, expect, it } from "vitest";
import { rejectionId } from "../../api/events/dead-letter.ts";
import { decodeAuction, decodeBid, decodeUser } from "../../api/events/decode.ts";
import type { BidRejected } from "../../api/events/types.ts";
import { BidProcessorCore, type OutputRecord } from "../../processors/domain/bid-core.ts";
import { DEFAULT_FRAUD_CONFIG } from "../../processors/domain/fraud.ts";
import { BID_KINDS, bidLabels, FRAUD_BID_KINDS, generateDataset } from "./dataset.ts";
import { Rng } from "./random.ts";

const START = Date.parse("2026-11-22T12:00:00Z");

describe("Rng", () => {
  it("is reproducible per seed and roughly uniform", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(xs);
    expect(new Rng(43).next()).not.toBe(xs[0]);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.55);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const r = new Rng(1);
    for (let i = 0; i < 200; i++) {
      const n = r.int(3, 5);
      expect(n >= 3 && n <= 5 && Number.isInteger(n)).toBe(true);
    }
  });
});

describe("generateDataset", () => {
  const opts = { seed: 7, auctions: 40, bids: 3000, startMs: START, rate: 500 };

  it("labels every well-formed bid record with its kind, fraud for bots, shill rings and bursts", () => {
    const full = generateDataset(opts);
    const labels = bidLabels(full);
    expect(labels).toHaveLength(full.bids.filter((b) => !b.malformed).length);
    // the same labels from a lean dataset (parsed from the raw records)
    expect(bidLabels(generateDataset({ ...opts, lean: true }))).toEqual(labels);
    const fraud = labels.filter((l) => l.fraud);
    expect(new Set(fraud.map((l) => l.kind))).toEqual(FRAUD_BID_KINDS);
    expect(fraud.length).toBe(full.counts.velocity + full.counts.shill + full.counts.burst);
    for (const [i, l] of labels.slice(0, 50).entries()) {
      const b = full.bids.filter((x) => !x.malformed)[i]!;
      expect(l).toMatchObject({ bid_id: b.bid?.bid_id, received_at: b.bid?.received_at, kind: b.kind });
    }
  });

  it("is deterministic for a seed and differs across seeds", () => {
    const a = generateDataset(opts);
    expect(JSON.stringify(generateDataset(opts))).toBe(JSON.stringify(a));
    expect(JSON.stringify(generateDataset({ ...opts, seed: 8 }))).not.toBe(JSON.stringify(a));
  });

  it("produces exactly --bids records, in send order, with valid auctions and users", () => {
    const ds = generateDataset(opts);
    expect(ds.bids).toHaveLength(3000);
    expect(Object.values(ds.counts).reduce((s, n) => s + n, 0)).toBe(3000);
    for (const k of BID_KINDS) expect(ds.bids.filter((b) => b.kind === k).length, k).toBe(ds.counts[k]);
    for (let i = 1; i < ds.bids.length; i++)
      expect(ds.bids[i]!.sendAtMs).toBeGreaterThanOrEqual(ds.bids[i - 1]!.sendAtMs);
    expect(ds.bids.map((b) => b.index)).toEqual(ds.bids.map((_, i) => i));
    expect(ds.auctions).toHaveLength(40);
    for (const a of ds.auctions) expect(decodeAuction(JSON.stringify(a)).ok, a.auction_id).toBe(true);
    for (const u of ds.users) expect(decodeUser(JSON.stringify(u)).ok, u.user_id).toBe(true);
    // every kind shows up at this size
    for (const k of BID_KINDS) expect(ds.counts[k], k).toBeGreaterThan(0);
    // schedule ~ bids / rate
    expect(ds.durationMs).toBeGreaterThan(4000);
    expect(ds.durationMs).toBeLessThan(40_000);
  });

  it("names some users like real marketplaces do (opaque ids): they sell, bid and decode", () => {
    const ds = generateDataset(opts);
    const regular = ds.users.filter((u) => !/^g7-(ring\d+|bot)-\d+$/.test(u.user_id));
    for (const [k, u] of regular.entries())
      expect(u.user_id.startsWith("g7-u-"), u.user_id).toBe(k % 10 !== 3);
    const named = regular.filter((_, k) => k % 10 === 3);
    expect(named.slice(0, 3).map((u) => u.user_id)).toEqual([
      "g7-d*elmer-4",
      "g7-*champaign bubbles*-14",
      "g7-Jürgen Müller-24",
    ]);
    const ids = new Set(named.map((u) => u.user_id));
    expect(ds.auctions.some((a) => ids.has(a.seller_id))).toBe(true);
    const bidsByNamed = ds.bids.filter((b) => b.bid && ids.has(b.bid.bidder_id));
    expect(bidsByNamed.length).toBeGreaterThan(0);
    for (const b of bidsByNamed) if (!b.malformed) expect(decodeBid(b.raw).ok).toBe(true);
  });

  it("marks malformed records truthfully: exactly those fail to decode", () => {
    const ds = generateDataset(opts);
    for (const b of ds.bids) {
      const d = decodeBid(b.raw);
      expect(d.ok, `${b.kind} ${b.malformation ?? ""} ${b.raw}`).toBe(!b.malformed);
      if (d.ok) expect(d.value).toEqual(b.bid);
    }
    const kinds = new Set(ds.bids.filter((b) => b.malformed).map((b) => b.malformation));
    expect(kinds.size).toBeGreaterThan(6);
    // every record is distinct (distinct dead-letter ids), duplicates included
    expect(new Set(ds.bids.map((b) => b.raw)).size).toBe(ds.bids.length);
  });

  it("duplicates reuse an earlier bid_id; other bid ids are unique", () => {
    const ds = generateDataset(opts);
    const first = new Map<string, number>();
    for (const b of ds.bids) {
      if (!b.bid) continue;
      if (b.kind === "duplicate") expect(first.has(b.bid.bid_id)).toBe(true);
      else {
        expect(first.has(b.bid.bid_id)).toBe(false);
        first.set(b.bid.bid_id, b.index);
      }
    }
  });

  it("each kind leads to the outcome it was made for when run through the bid-processor core", () => {
    const ds = generateDataset(opts);
    const core = new BidProcessorCore({
      // fraud scoring on, quarantine off: this test checks the rule kinds
      fraud: { ...DEFAULT_FRAUD_CONFIG, quarantineThreshold: 1.01, alertThreshold: 1.01 },
      book: { closeGraceMs: 2000, pendingMaxAgeMs: 30_000 },
    });
    for (const u of ds.users) core.onUser(JSON.stringify(u));
    for (const a of ds.auctions) core.onAuction(JSON.stringify(a), START);
    const outcome = new Map<string, string>();
    const collect = (outs: OutputRecord[]) => {
      for (const o of outs) {
        if (o.topic === "bidsAccepted") {
          const v = o.value as { bid_id: string; received_at: string };
          outcome.set(`${v.bid_id}@${v.received_at}`, "accepted");
        } else if (o.topic === "bidsRejected") {
          const v = o.value as BidRejected;
          outcome.set(v.rejection_id, v.reason);
        }
      }
    };
    for (const b of ds.bids) collect(core.onBid(b.raw, b.sendAtMs).outputs);
    collect(core.tick(ds.startMs + ds.durationMs + 60_000));
    const byKind = new Map<string, Map<string, number>>();
    let decided = 0;
    for (const b of ds.bids) {
      const accepted = b.bid && outcome.get(`${b.bid.bid_id}@${b.bid.received_at}`) === "accepted";
      const r = accepted ? "accepted" : outcome.get(rejectionId(b.raw));
      expect(r, `${b.kind} ${b.raw}`).toBeDefined();
      decided += 1;
      const m = byKind.get(b.kind) ?? new Map<string, number>();
      m.set(r!, (m.get(r!) ?? 0) + 1);
      byKind.set(b.kind, m);
    }
    expect(decided).toBe(ds.bids.length);
    const only = (kind: string, reason: string) =>
      expect(Object.fromEntries(byKind.get(kind)!), kind).toEqual({
        [reason]: ds.counts[kind as keyof typeof ds.counts],
      });
    only("malformed", "malformed");
    only("duplicate", "duplicate");
    only("wrong_currency", "currency_mismatch");
    only("unknown_auction", "auction_not_found");
    only("self_bid", "self_bid");
    only("not_started", "not_started");
    only("late", "auction_closed");
    // most ordinary bids are accepted; some are deliberately too low
    const normal = byKind.get("normal")!;
    expect((normal.get("accepted") ?? 0) / ds.counts.normal).toBeGreaterThan(0.5);
    expect(normal.get("below_minimum") ?? 0).toBeGreaterThan(0);
    // snipers extend auctions with a soft close
    const snipes = byKind.get("snipe")!;
    expect(snipes.get("accepted") ?? 0).toBeGreaterThan(0);
  });
});
