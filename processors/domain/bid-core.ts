/**
 * The bid-processor's pure transform: records in, records out. It wires the
 * decoders, the `AuctionBook` and the `FraudScorer` in the contract's order;
 * the runtime (processors/bid-processor/) only moves bytes between Kafka and
 * this class, and decides what to commit. No I/O, no clock.
 */
import { bidRejection } from "../../api/events/dead-letter.ts";
import {
  type DecodeOptions,
  decodeAuction,
  decodeBid,
  decodePriceUpdate,
  decodeTransaction,
  decodeUser,
} from "../../api/events/decode.ts";
import type { AuctionEvent, BidEvent } from "../../api/events/types.ts";
import {
  AuctionBook,
  type AuctionBookOptions,
  type AuctionView,
  type BidOutcome,
  type HeldBid,
} from "./auction.ts";
import {
  type FraudAssessment,
  type FraudConfig,
  FraudScorer,
  type FraudScorerOptions,
  fraudAlert,
} from "./fraud.ts";

/** Logical output topics (the keys of api/v1alpha1 LOGICAL_TOPICS). */
export type OutputTopic = "bidsAccepted" | "bidsRejected" | "prices" | "fraudAlerts" | "transactions";

export interface OutputRecord {
  readonly topic: OutputTopic;
  /** Kafka key: always the auction_id (or "" when a malformed record had none). */
  readonly key: string;
  readonly value: object;
  /**
   * An accepted or rejected bid that reached its auction's book: its id was
   * remembered for duplicates and the fraud scorer observed it. A rebuild
   * replays exactly these, in decision order (`replayDecision`).
   */
  readonly inBook?: boolean;
}

/**
 * An earlier decision of a partition, as a rebuild reads it back from the
 * output topics: a bid that reached its auction's book, or a closed auction.
 * `seq` orders them as they were decided.
 */
export type Decision =
  | { readonly kind: "accepted" | "rejected"; readonly seq: number; readonly bid: DecidedBid }
  | { readonly kind: "transaction"; readonly seq: number; readonly raw: Buffer | string };

/** The fields of a decided bid that a rebuild replays into the book and the fraud scorer. */
export interface DecidedBid {
  readonly bid_id: string;
  readonly auction_id: string;
  readonly bidder_id: string;
  readonly amount: number;
  readonly placed_at: string;
}

export interface BidCoreOptions {
  readonly fraud: FraudConfig;
  readonly book?: AuctionBookOptions;
  readonly scorer?: FraudScorerOptions;
  /** maxFutureSkewMs for bids (placed_at vs received_at). */
  readonly decode?: Pick<DecodeOptions, "maxFutureSkewMs">;
}

export type InputResult =
  | { readonly ok: true; readonly outputs: OutputRecord[]; readonly held?: boolean }
  /** A non-bid record that could not be used (malformed auction/user/price): log and count it. */
  | { readonly ok: false; readonly detail: string; readonly outputs: OutputRecord[] };

/**
 * Keeps one price update per auction: the last. The prices topic is
 * compacted (its contract is each auction's latest state), and the outputs
 * of one batch are committed in one transaction, so an earlier price of the
 * same auction in the same batch would be superseded before anyone could
 * read a consistent view without it. At high rates a batch holds many bids
 * per auction; writing each of their price updates (the largest record, with
 * the auction's snapshot) was most of the bid-processor's output bytes.
 * Every other output is kept, in order.
 */
export function latestPricePerAuction(outputs: readonly OutputRecord[]): OutputRecord[] {
  const last = new Map<string, number>();
  outputs.forEach((o, i) => {
    if (o.topic === "prices") last.set(o.key, i);
  });
  if (last.size === outputs.filter((o) => o.topic === "prices").length) return [...outputs];
  return outputs.filter((o, i) => o.topic !== "prices" || last.get(o.key) === i);
}

export class BidProcessorCore {
  readonly book: AuctionBook;
  readonly scorer: FraudScorer;
  private readonly opts: BidCoreOptions;
  /**
   * How far the auctions topic has been read, in log time: a held bid is
   * given up (auction_not_found) only once every auction record logged
   * within its hold time has been read. A runtime that reads both topics
   * sets it; without it the bids' clock alone decides, as in a merged replay.
   */
  auctionsClockMs = Number.POSITIVE_INFINITY;
  /** The bids' clock as last passed to `onBid`/`tick`. */
  private clockMs = Number.NEGATIVE_INFINITY;
  /**
   * Updates of known auctions read before the bids' clock reached their log
   * time (the auctions topic was fetched ahead of the bids), by log time:
   * applied when the clock gets there (`tick`), so bids logged before an
   * update are judged by the auction as it was then.
   */
  private queued: QueuedUpdate[] = [];

  constructor(opts: BidCoreOptions) {
    this.opts = opts;
    this.book = new AuctionBook(opts.book);
    this.scorer = new FraudScorer(opts.fraud, opts.scorer);
  }

  /**
   * An auction record (auctions topic), `logMs` its Kafka timestamp.
   * Releases the bids held for it; each is judged as of its own arrival.
   */
  onAuction(raw: Buffer | string, logMs: number, ref?: unknown): InputResult {
    const d = decodeAuction(raw);
    if (!d.ok) return { ok: false, detail: d.detail, outputs: [] };
    if (logMs > this.clockMs && (this.book.status(d.value.auction_id) === "open" || this.isQueued(d.value))) {
      // An update read ahead of the bids: in log order the bids logged
      // before it saw the auction as it was. Applied by `tick`.
      const q: QueuedUpdate = { auction: d.value, logMs, ref };
      let i = this.queued.length;
      while (i > 0 && (this.queued[i - 1] as QueuedUpdate).logMs > logMs) i--;
      this.queued.splice(i, 0, q);
      return { ok: true, outputs: [], held: true };
    }
    return { ok: true, outputs: this.applyAuction(d.value, logMs) };
  }

  private isQueued(a: AuctionEvent): boolean {
    return this.queued.length > 0 && this.queued.some((q) => q.auction.auction_id === a.auction_id);
  }

  private applyAuction(a: AuctionEvent, logMs: number): OutputRecord[] {
    const r = this.book.applyAuction(a, logMs);
    const outputs: OutputRecord[] = [];
    if (r.kind === "created" || r.kind === "updated") {
      outputs.push({ topic: "prices", key: a.auction_id, value: r.price });
    }
    // Read before the bids' clock reached this record: the held bids are
    // deferred by the book until it does, as in log order. Read after (the
    // bids were fetched ahead): decided now, in arrival order.
    const late = this.clockMs >= logMs;
    for (const h of r.released) outputs.push(...this.decide(h.bid, rawOf(h), h.heldAtMs, refOf(h), late));
    return outputs;
  }

  /** The refs (as passed to `onAuction`) of auction updates waiting for the bids' clock: not to be committed past. */
  queuedRefs(): unknown[] {
    return this.queued.map((q) => q.ref);
  }

  /** Log time of the first update waiting for the bids' clock, or undefined. */
  nextQueuedAtMs(): number | undefined {
    return this.queued[0]?.logMs;
  }

  /**
   * Applies the `n` oldest waiting updates now, whatever the clock: a
   * runtime out of room to record them makes room this way (the update then
   * takes effect early, as when it was read).
   */
  flushQueued(n: number): OutputRecord[] {
    const out: OutputRecord[] = [];
    for (const q of this.queued.splice(0, n)) out.push(...this.applyAuction(q.auction, q.logMs));
    return out;
  }

  /** A user record (users topic): feeds fraud signals only. */
  onUser(raw: Buffer | string): InputResult {
    const d = decodeUser(raw);
    if (!d.ok) return { ok: false, detail: d.detail, outputs: [] };
    this.scorer.applyUser(d.value);
    return { ok: true, outputs: [] };
  }

  /**
   * A record of the compacted prices topic, read on partition assignment to
   * rebuild state. Returns ok:false for a record without a usable `state`.
   */
  onPriceSnapshot(raw: Buffer | string): InputResult {
    const d = decodePriceUpdate(raw);
    if (!d.ok) return { ok: false, detail: d.detail, outputs: [] };
    if (!d.value.state) return { ok: false, detail: "price update has no state snapshot", outputs: [] };
    this.book.restore(d.value.state);
    return { ok: true, outputs: [] };
  }

  /**
   * Rebuilds a fresh core: the auctions from their latest price updates (the
   * compacted prices topic), then the partition's earlier decisions in
   * decision order, so the bid ids each auction remembers for duplicates
   * (with the same bounded forgetting) and the fraud scorer's history
   * (velocity, shill pairs and wins, category statistics) end as they were
   * before the rebuild: later bids are decided and scored as without it.
   */
  rebuild(
    snapshots: Iterable<Buffer | string>,
    decisions: readonly Decision[],
  ): { readonly restored: number; readonly unusable: number } {
    let restored = 0;
    let unusable = 0;
    for (const raw of snapshots) {
      if (this.onPriceSnapshot(raw).ok) restored++;
      else unusable++;
    }
    const seen = new Map<string, string[]>();
    for (const d of [...decisions].sort((a, b) => a.seq - b.seq)) {
      if (d.kind === "transaction") {
        // A transaction (own output, read back) feeds the shill signal's wins;
        // one that does not decode adds none.
        const t = decodeTransaction(d.raw);
        if (t.ok) this.scorer.applyTransaction(t.value);
        continue;
      }
      const ids = seen.get(d.bid.auction_id) ?? [];
      ids.push(d.bid.bid_id);
      seen.set(d.bid.auction_id, ids);
      this.replayDecision(d.bid, d.kind === "accepted");
    }
    for (const [auctionId, ids] of seen) this.book.replaySeen(auctionId, ids);
    return { restored, unusable };
  }

  /**
   * Rebuild: a bid this partition decided before (an `inBook` output), in
   * decision order. The fraud scorer observes it again, as when it was
   * decided; the auction must have been restored first. Returns false when
   * the auction is unknown.
   */
  replayDecision(bid: DecidedBid, accepted: boolean): boolean {
    const v = this.book.view(bid.auction_id);
    if (!v) return false;
    // observe() reads only these fields of the bid.
    this.scorer.observe(bid as BidEvent, v, accepted);
    return true;
  }

  /**
   * A bid record. Every input ends as exactly one accepted or rejected record,
   * now or (when held for its auction) later from `onAuction` or `tick`.
   * `ref` identifies the input for the caller while it is held.
   *
   * `nowMs` is the partition's processing-time watermark: the record's Kafka
   * timestamp (ingest time), or the wall clock when the partition is caught
   * up. Outputs may start with closes that became due at `nowMs`.
   */
  onBid(raw: Buffer | string, nowMs: number, ref?: unknown): InputResult {
    // Time first: auctions whose end + grace is before this record's time
    // close before it is judged, so the outcome depends on the record order
    // and times only, never on how records were grouped into batches.
    const outputs = this.tick(nowMs);
    const d = decodeBid(raw, { nowMs, maxFutureSkewMs: this.opts.decode?.maxFutureSkewMs });
    if (!d.ok) {
      const rej = bidRejection(raw, "malformed", d.detail);
      outputs.push({ topic: "bidsRejected", key: rej.auction_id ?? "", value: rej });
      return { ok: true, outputs };
    }
    const decided = this.decide(d.value, raw, nowMs, ref);
    outputs.push(...decided);
    return { ok: true, outputs, held: decided.length === 0 };
  }

  /**
   * Time passes: closes due auctions (exactly once each) and rejects held
   * bids whose auction never came. Call it before each batch and on a timer.
   */
  tick(nowMs: number): OutputRecord[] {
    this.clockMs = Math.max(this.clockMs, nowMs);
    const outputs: OutputRecord[] = [];
    // Updates read ahead, in log order with the bids released before them
    // (a bid released at the same time as an update was released by a
    // record logged before it).
    while (this.queued.length > 0 && (this.queued[0] as QueuedUpdate).logMs <= nowMs) {
      const q = this.queued.shift() as QueuedUpdate;
      for (const h of this.book.releaseDue(q.logMs))
        outputs.push(...this.decide(h.bid, rawOf(h), h.heldAtMs, refOf(h), true));
      outputs.push(...this.applyAuction(q.auction, q.logMs));
    }
    // Bids logged before their (already read) auction record, in log order.
    for (const h of this.book.releaseDue(nowMs))
      outputs.push(...this.decide(h.bid, rawOf(h), h.heldAtMs, refOf(h), true));
    for (const h of this.book.expirePending(Math.min(nowMs, this.auctionsClockMs))) {
      const rej = bidRejection(
        rawOf(h),
        "auction_not_found",
        `auction ${h.bid.auction_id} is unknown (held ${Math.round((nowMs - h.heldAtMs) / 1000)}s waiting for it)`,
        h.bid,
      );
      outputs.push({ topic: "bidsRejected", key: h.bid.auction_id, value: rej });
    }
    for (const c of this.book.closeDue(nowMs)) {
      this.scorer.applyTransaction(c.transaction);
      outputs.push({ topic: "transactions", key: c.transaction.auction_id, value: c.transaction });
      outputs.push({ topic: "prices", key: c.price.auction_id, value: c.price });
    }
    return outputs;
  }

  /**
   * Rejects the `n` oldest held bids now, auction_not_found, because the
   * runtime has no room left to remember more held bids (see
   * `bid-processor/held-meta.ts`).
   */
  evictHeld(n: number, nowMs: number, why: string): OutputRecord[] {
    return this.book.evictOldestPending(n).map((h) => ({
      topic: "bidsRejected" as const,
      key: h.bid.auction_id,
      value: bidRejection(
        rawOf(h),
        "auction_not_found",
        `auction ${h.bid.auction_id} is unknown (held ${Math.round((nowMs - h.heldAtMs) / 1000)}s waiting for it; ${why})`,
        h.bid,
      ),
    }));
  }

  /**
   * The refs (as passed to `onBid`) of bids still held for their auction: a
   * runtime must not commit an input offset past the oldest of them.
   */
  heldRefs(): unknown[] {
    return this.book.heldRefs().map((r) => (r as { ref?: unknown } | undefined)?.ref);
  }

  /** Held bids' refs with their arrival (the clock passed to `onBid`), which a restart must restore. */
  heldArrivals(): { readonly ref: unknown; readonly arrivedAtMs: number }[] {
    return this.book.held().map((h) => ({ ref: refOf(h), arrivedAtMs: h.heldAtMs }));
  }

  private decide(
    bid: BidEvent,
    raw: Buffer | string,
    nowMs: number,
    ref?: unknown,
    released = false,
  ): OutputRecord[] {
    let assessment: FraudAssessment | undefined;
    let view: AuctionView | undefined;
    const outcome: BidOutcome = this.book.applyBid(
      bid,
      nowMs,
      (v) => {
        view = v;
        assessment = this.scorer.score(bid, v, nowMs);
        return assessment.score;
      },
      this.opts.fraud.quarantineThreshold,
      { raw, ref },
      released,
    );
    if (outcome.kind === "pending") return [];
    const out: OutputRecord[] = [];
    const key = bid.auction_id;
    // Observe every non-duplicate bid that reached its auction (velocity and
    // shill count attempts, not only accepted bids).
    let inBook = false;
    if (
      outcome.kind === "accepted" ||
      (outcome.kind === "rejected" &&
        outcome.reason !== "duplicate" &&
        outcome.reason !== "auction_not_found")
    ) {
      const v = view ?? this.book.view(key);
      if (v) {
        this.scorer.observe(bid, v, outcome.kind === "accepted");
        inBook = true;
      }
    }
    if (assessment?.alert) out.push({ topic: "fraudAlerts", key, value: fraudAlert(bid, assessment) });
    if (outcome.kind === "accepted") {
      // The features the bid was scored on, for training (docs/fraud.md).
      if (assessment) outcome.accepted.fraud_features = assessment.features;
      out.push({ topic: "bidsAccepted", key, value: outcome.accepted, inBook });
      out.push({ topic: "prices", key, value: outcome.price });
    } else {
      out.push({
        topic: "bidsRejected",
        key,
        value: bidRejection(
          raw,
          outcome.reason,
          outcome.detail,
          bid,
          outcome.fraudScore,
          outcome.reason === "fraud_quarantine" ? assessment?.features : undefined,
        ),
        inBook,
      });
    }
    return out;
  }
}

/** An auction update waiting for the bids' clock (`BidProcessorCore.onAuction`). */
interface QueuedUpdate {
  readonly auction: AuctionEvent;
  readonly logMs: number;
  readonly ref: unknown;
}

/** The caller's ref of a held bid (the book keeps `{ raw, ref }`). */
function refOf(h: HeldBid): unknown {
  return (h.ref as { ref?: unknown } | undefined)?.ref;
}

function rawOf(h: HeldBid): Buffer | string {
  const r = h.ref as { raw?: Buffer | string } | undefined;
  return r?.raw ?? JSON.stringify(h.bid);
}
