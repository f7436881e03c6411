/**
 * Outcomes are a function of the log (issue #13): the same records give the
 * same winners, prices, rejection reasons and fraud scores whatever order the
 * two input topics of a partition are fetched in, and after a rebuild from
 * the committed outputs. The runtime's clock rules are modelled as in
 * bid-processor/processor.ts: the bids topic drives closing, the auctions
 * topic's own clock gates hold expiry.
 */
import { describe, expect, it } from "vitest";
import { type Dataset, generateDataset } from "../../test/generate/dataset.ts";
import { add, diffOutcomes, type Json, type Outcomes, outcomeLine } from "../../test/outcome-lines.ts";
import { decodeModel, FraudModels } from "../fraud/model.ts";
import { buildModel } from "../fraud/train.ts";
import { type BidCoreOptions, BidProcessorCore, type Decision, type OutputRecord } from "./bid-core.ts";
import { DEFAULT_FRAUD_CONFIG } from "./fraud.ts";

const OPTS: BidCoreOptions = {
  // Quarantine and alerts on: scores decide outcomes here, so a scorer whose
  // history differs after a rebuild changes them.
  fraud: { ...DEFAULT_FRAUD_CONFIG, quarantineThreshold: 0.45, alertThreshold: 0.2 },
  book: { pendingMaxAgeMs: 10_000 },
};
/**
 * Scores without effect on outcomes (no quarantine), and every bid id
 * remembered: a bid held while its auction record was not read is checked
 * against the copies held with it, a decided one against the auction's
 * last 256 ids, so which check applies (and, past 256 ids, the answer) can
 * depend on the read order when bids are read ahead without the gate.
 */
const NO_QUARANTINE: BidCoreOptions = {
  fraud: { ...OPTS.fraud, quarantineThreshold: 1.01 },
  book: { ...OPTS.book, maxSeenBidIds: 100_000 },
};

interface Rec {
  readonly topic: "bids" | "auctions";
  readonly ts: number;
  readonly raw: string;
  /** Position in its topic (offset). */
  readonly offset: number;
}

/**
 * The dataset's records as logged: auctions at the start, some late (after
 * their first bid), and some updated while they run (a later end and a
 * larger increment, logged half-way), so bids logged before an update and
 * after it are judged by different terms.
 */
function logOf(ds: Dataset, updates = true): { bids: Rec[]; auctions: Rec[] } {
  const bids = ds.bids.map((b, i) => ({ topic: "bids" as const, ts: b.sendAtMs, raw: b.raw, offset: i }));
  const auctions = ds.auctions
    .flatMap((a, i) => {
      const first = ds.bids.find((b) => b.key === a.auction_id)?.sendAtMs ?? ds.startMs;
      // Every 5th auction 3 s late (its early bids are held), every 7th 15 s late (beyond the hold).
      const ts = i % 5 === 0 ? first + 3_000 : i % 7 === 0 ? first + 15_000 : ds.startMs - 1_000;
      const recs = [{ ts, raw: JSON.stringify(a) }];
      if (updates && i % 3 === 1) {
        const starts = Date.parse(a.starts_at);
        const ends = Date.parse(a.ends_at);
        const update = {
          ...a,
          ends_at: new Date(ends + 20_000).toISOString(),
          min_increment: a.min_increment * 3,
        };
        recs.push({ ts: Math.max(ts + 1, Math.round((starts + ends) / 2)), raw: JSON.stringify(update) });
      }
      return recs;
    })
    .sort((x, y) => x.ts - y.ts)
    .map((a, i) => ({ topic: "auctions" as const, ts: a.ts, raw: a.raw, offset: i }));
  return { bids, auctions };
}

class Run {
  readonly core: BidProcessorCore;
  readonly out: OutputRecord[] = [];
  clock = 0;
  constructor(ds: Dataset, opts: BidCoreOptions = OPTS) {
    this.core = new BidProcessorCore(opts);
    for (const u of ds.users) this.core.onUser(JSON.stringify(u));
    this.core.auctionsClockMs = 0;
  }
  /** One record, as the runtime's batch loop handles it. */
  feed(r: Rec, ref?: unknown): void {
    const c = this.core;
    if (r.topic === "bids") {
      if (r.ts > this.clock) {
        this.clock = r.ts;
        this.out.push(...c.tick(this.clock));
      }
      this.out.push(...c.onBid(r.raw, this.clock, ref).outputs);
    } else {
      if (r.ts > c.auctionsClockMs) {
        c.auctionsClockMs = r.ts;
        this.out.push(...c.tick(this.clock));
      }
      this.out.push(...c.onAuction(r.raw, r.ts, ref).outputs);
    }
  }
  /** Both topics read to their end, and time passes. */
  finish(endMs: number): void {
    this.clock = Math.max(this.clock, endMs);
    this.core.auctionsClockMs = Math.max(this.core.auctionsClockMs, endMs);
    this.out.push(...this.core.tick(this.clock));
  }
}

function lines(out: readonly OutputRecord[], scores = true): Outcomes {
  const o: Outcomes = new Map();
  for (const r of out) add(o, outcomeLine(r.topic, r.value as Json, scores));
  return o;
}

/** Merged in log-time order (auctions first on a tie): the reference. */
function inLogOrder(log: { bids: Rec[]; auctions: Rec[] }): Rec[] {
  return [...log.auctions, ...log.bids].sort((a, b) => a.ts - b.ts || (a.topic === "auctions" ? -1 : 1));
}

/**
 * Each topic in order, interleaved in random chunks like independent
 * fetches. `gated`: as the runtime does on a backlog, a bids chunk stops at
 * the first bid logged after the last auction record read (while auction
 * records remain).
 */
function fetchOrder(log: { bids: Rec[]; auctions: Rec[] }, seed: number, gated = true): Rec[] {
  let x = seed;
  const rnd = () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
  const out: Rec[] = [];
  let i = 0;
  let j = 0;
  while (i < log.bids.length || j < log.auctions.length) {
    if (j < log.auctions.length && (i >= log.bids.length || rnd() < 0.3)) {
      const n = 1 + Math.floor(rnd() * 5);
      out.push(...log.auctions.slice(j, j + n));
      j += n;
    } else {
      const n = 1 + Math.floor(rnd() * 400);
      const auctionsClock = j > 0 ? (log.auctions[j - 1]?.ts ?? 0) : 0;
      for (let k = 0; k < n && i < log.bids.length; k++, i++) {
        if (gated && j < log.auctions.length && (log.bids[i]?.ts ?? 0) > auctionsClock) break;
        out.push(log.bids[i]!);
      }
    }
  }
  return out;
}

const ds = generateDataset({
  seed: 7,
  auctions: 40,
  bids: 4000,
  rate: 400,
  startMs: Date.parse("2026-12-01T10:00:00Z"),
});
const log = logOf(ds);
const END = ds.startMs + ds.durationMs + 3_600_000;

function reference(opts: BidCoreOptions = OPTS, scores = true, of = log): Outcomes {
  const run = new Run(ds, opts);
  for (const r of inLogOrder(of)) run.feed(r);
  run.finish(END);
  return lines(run.out, scores);
}

/**
 * A fraud model trained on another dataset (as `gavel fraud train` trains
 * it, on the features the stream logged), active from half-way through the
 * log: bids before it are scored by the rules alone, bids after by rules +
 * model, and which is which must not depend on fetch order or rebuilds.
 */
function withModel(): BidCoreOptions {
  const other = generateDataset({ seed: 8, auctions: 40, bids: 4000, rate: 400, startMs: ds.startMs });
  const run = new Run(other);
  for (const r of inLogOrder(logOf(other))) run.feed(r);
  run.finish(END);
  const rows = run.out
    .map((o) => (o.value as { fraud_features?: number[] }).fraud_features)
    .filter((f): f is number[] => f !== undefined);
  // half-way through the bids' send schedule (bids / rate)
  const trainedAt = new Date(ds.startMs + 5_000);
  const model = buildModel(rows, {
    trainingDays: 1,
    minRows: 1,
    trees: 50,
    sampleSize: 128,
    contamination: 0.05,
    activationDelaySeconds: 0,
    pipeline: "test/determinism",
    trainedAt,
    window: { from: new Date(trainedAt.getTime() - 86_400_000), to: trainedAt },
    rows: rows.length,
  });
  const d = decodeModel(JSON.stringify(model));
  if (!d.ok) throw new Error(d.detail);
  const models = new FraudModels();
  models.add(d.value);
  return { ...OPTS, scorer: { models } };
}

describe.each([
  ["rules", OPTS],
  ["rules + anomaly model", withModel()],
] as const)("outcomes are a function of the log (%s)", { timeout: 120_000 }, (name, opts) => {
  const want = reference(opts);

  it("the reference decides every bid and closes every auction, with holds, late auctions and quarantines", () => {
    const all = [...want.keys()].join("\n");
    if (name !== "rules") {
      // the model did change scores: not the same outcomes as the rules alone
      expect(diffOutcomes(reference(OPTS), want).length).toBeGreaterThan(0);
    }
    expect(all).toMatch(/ auction_not_found /);
    expect(all).toMatch(/ fraud_quarantine /);
    expect(all).toMatch(/ extended=true/);
    const bidLines = [...want].filter(([l]) => l.startsWith("bid ")).reduce((n, [, m]) => n + m, 0);
    expect(bidLines).toBe(ds.bids.length);
    expect([...want.keys()].filter((l) => l.startsWith("auction ")).length).toBe(ds.auctions.length);
  });

  it("auctions read ahead, and bids read as the runtime reads a backlog, decide the same, scores included", () => {
    const orders: Rec[][] = [
      [...log.auctions, ...log.bids],
      ...[1, 2, 3, 4, 5].map((s) => fetchOrder(log, s)),
    ];
    for (const order of orders) {
      const run = new Run(ds, opts);
      for (const r of order) run.feed(r);
      run.finish(END);
      expect(diffOutcomes(want, lines(run.out))).toEqual([]);
    }
  });

  it("bids read ahead of late auction records (live, not gated): same reasons, winners, prices and closes", () => {
    // Held bids are then decided when their auction record is read: the
    // rules use log times, so each decision is the same, but the fraud
    // scorer may observe them in another order (docs/events.md "Time").
    // Without auction updates: an update read after bids logged after it
    // (live, within the backlog gate's 5 s) takes effect when it is read.
    const plain = logOf(ds, false);
    const want = reference(NO_QUARANTINE, false, plain);
    for (const order of [
      [...plain.bids, ...plain.auctions],
      ...[6, 7, 8].map((s) => fetchOrder(plain, s, false)),
    ]) {
      const run = new Run(ds, NO_QUARANTINE);
      for (const r of order) run.feed(r);
      run.finish(END);
      expect(diffOutcomes(want, lines(run.out, false))).toEqual([]);
    }
  });

  it("a rebuild from the committed outputs at any point decides the rest as without it, scores included", () => {
    const order = fetchOrder(log, 9);
    for (const cut of [0.1, 0.35, 0.6, 0.85].map((f) => Math.floor(order.length * f))) {
      const first = new Run(ds, opts);
      const refs = new Map<unknown, Rec>();
      for (const r of order.slice(0, cut)) {
        const ref = { offset: r.offset };
        if (r.topic === "bids") refs.set(ref, r);
        first.feed(r, ref);
      }
      // What a rebuild reads back: the latest price update per auction, and
      // the decisions (in-book bids and transactions) in decision order.
      const latest = new Map<string, string>();
      const decisions: Decision[] = [];
      first.out.forEach((o, seq) => {
        const v = o.value as Json;
        if (o.topic === "prices") latest.set(o.key, JSON.stringify(v));
        else if (o.topic === "transactions")
          decisions.push({ kind: "transaction", seq, raw: JSON.stringify(v) });
        else if (o.inBook && (o.topic === "bidsAccepted" || o.topic === "bidsRejected"))
          decisions.push({
            kind: o.topic === "bidsAccepted" ? "accepted" : "rejected",
            seq,
            bid: {
              bid_id: String(v.bid_id),
              auction_id: String(v.auction_id),
              bidder_id: String(v.bidder_id),
              amount: Number(v.amount),
              placed_at: String(v.placed_at),
            },
          });
      });
      const held = new Set(first.core.heldRefs().map((r) => (r as { offset: number }).offset));
      const queued = new Set(first.core.queuedRefs().map((r) => (r as { offset: number }).offset));
      const second = new Run(ds, opts);
      second.core.rebuild([...latest.values()], decisions);
      // The runtime resumes at the oldest held bid (committed offset + held
      // metadata) and at the committed auctions offset; records decided
      // before are skipped but move the clocks, as in processor.ts.
      const oldestHeld = Math.min(...held, Number.POSITIVE_INFINITY);
      const done = order.slice(0, cut);
      const lastBid = Math.max(-1, ...done.filter((r) => r.topic === "bids").map((r) => r.offset));
      const lastAuction = Math.max(-1, ...done.filter((r) => r.topic === "auctions").map((r) => r.offset));
      const replayBids = log.bids.filter((r) => r.offset >= Math.min(oldestHeld, lastBid + 1));
      const rest = order.slice(cut);
      // Held bids and waiting auction updates are in the committed offsets'
      // metadata: read again (the runtime's backlog gate keeps the two topics
      // in log-time order), the records between them skipped.
      const replay = inLogOrder({
        bids: replayBids.filter((b) => b.offset <= lastBid),
        auctions: log.auctions.filter((a) => a.offset <= lastAuction && a.offset >= Math.min(...queued)),
      });
      for (const r of replay) {
        if ((r.topic === "bids" ? held : queued).has(r.offset)) second.feed(r);
        else if (r.topic === "bids" && r.ts > second.clock) {
          second.clock = r.ts;
          second.out.push(...second.core.tick(second.clock));
        } else if (r.topic === "auctions" && r.ts > second.core.auctionsClockMs) {
          second.core.auctionsClockMs = r.ts;
          second.out.push(...second.core.tick(second.clock));
        }
      }
      for (const r of rest) if (r.topic === "bids" || r.offset > lastAuction) second.feed(r);
      second.finish(END);
      expect(
        diffOutcomes(want, lines([...first.out, ...second.out])),
        `rebuild after ${cut} records`,
      ).toEqual([]);
    }
  });
});
