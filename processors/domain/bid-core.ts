/**
 * The bid-processor's pure transform: records in, records out. It wires the
 * decoders, the `AuctionBook` and the `FraudScorer` in the contract's order;
 * the runtime (processors/bid-processor/) only moves bytes between Kafka and
 * this class, and decides what to commit. No I/O, no clock.
 */
import {
  AuctionBook,
  type AuctionBookOptions,
  type AuctionView,
  type BidOutcome,
  type HeldBid,
} from "./auction.ts";
import {
  type BidEvent,
  bidRejection,
  type DecodeOptions,
  decodeAuction,
  decodeBid,
  decodePriceUpdate,
  decodeTransaction,
  decodeUser,
} from "./events.ts";
import {
  type FraudAssessment,
  type FraudConfig,
  FraudScorer,
  type FraudScorerOptions,
  fraudAlert,
} from "./fraud.ts";

/** Logical output topics (the keys of operator/api/v1alpha1 LOGICAL_TOPICS). */
export type OutputTopic = "bidsAccepted" | "bidsRejected" | "prices" | "fraudAlerts" | "transactions";

export interface OutputRecord {
  readonly topic: OutputTopic;
  /** Kafka key: always the auction_id (or "" when a malformed record had none). */
  readonly key: string;
  readonly value: object;
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

  constructor(opts: BidCoreOptions) {
    this.opts = opts;
    this.book = new AuctionBook(opts.book);
    this.scorer = new FraudScorer(opts.fraud, opts.scorer);
  }

  /** An auction record (auctions topic). Releases bids held for it. */
  onAuction(raw: Buffer | string, nowMs: number): InputResult {
    const d = decodeAuction(raw);
    if (!d.ok) return { ok: false, detail: d.detail, outputs: [] };
    const r = this.book.applyAuction(d.value);
    const outputs: OutputRecord[] = [];
    if (r.kind === "created" || r.kind === "updated") {
      outputs.push({ topic: "prices", key: d.value.auction_id, value: r.price });
    }
    for (const h of r.released) outputs.push(...this.decide(h.bid, rawOf(h), nowMs));
    return { ok: true, outputs };
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

  /** A transaction record (own output, re-read on restore) feeds the shill signal's wins. */
  onTransaction(raw: Buffer | string): InputResult {
    const d = decodeTransaction(raw);
    if (!d.ok) return { ok: false, detail: d.detail, outputs: [] };
    this.scorer.applyTransaction(d.value);
    return { ok: true, outputs: [] };
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
    const outputs: OutputRecord[] = [];
    for (const h of this.book.expirePending(nowMs)) {
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

  private decide(bid: BidEvent, raw: Buffer | string, nowMs: number, ref?: unknown): OutputRecord[] {
    let assessment: FraudAssessment | undefined;
    let view: AuctionView | undefined;
    const outcome: BidOutcome = this.book.applyBid(
      bid,
      nowMs,
      (v) => {
        view = v;
        assessment = this.scorer.score(bid, v);
        return assessment.score;
      },
      this.opts.fraud.quarantineThreshold,
      { raw, ref },
    );
    if (outcome.kind === "pending") return [];
    const out: OutputRecord[] = [];
    const key = bid.auction_id;
    // Observe every non-duplicate bid that reached its auction (velocity and
    // shill count attempts, not only accepted bids).
    if (outcome.kind === "accepted" || (outcome.kind === "rejected" && outcome.reason !== "duplicate")) {
      const v = view ?? this.book.view(key);
      if (v) this.scorer.observe(bid, v, outcome.kind === "accepted");
    }
    if (assessment?.alert) out.push({ topic: "fraudAlerts", key, value: fraudAlert(bid, assessment) });
    if (outcome.kind === "accepted") {
      out.push({ topic: "bidsAccepted", key, value: outcome.accepted });
      out.push({ topic: "prices", key, value: outcome.price });
    } else {
      out.push({
        topic: "bidsRejected",
        key,
        value: bidRejection(raw, outcome.reason, outcome.detail, bid, outcome.fraudScore),
      });
    }
    return out;
  }
}

function rawOf(h: HeldBid): Buffer | string {
  const r = h.ref as { raw?: Buffer | string } | undefined;
  return r?.raw ?? JSON.stringify(h.bid);
}
