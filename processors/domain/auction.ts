/**
 * `AuctionBook`: the pure, per-partition state machine of the auctions a
 * bid-processor replica owns. Kafka keys every auction-scoped record by
 * auction_id, so exactly one book (one partition owner) decides each
 * auction's bids: simultaneous bids are serialised by the partition, not by a
 * lock. No I/O and no clock: callers pass `nowMs`.
 *
 * Clocks (docs/events.md "Time"): a bid's validity is decided by its event
 * time (`placed_at` against `starts_at` and the effective end); closing is
 * decided by processing time (`nowMs` passed to `closeDue`), after a grace
 * period so bids placed just before the end and still in flight are not cut.
 */
import { toIso } from "../../api/events/decode.ts";
import {
  type AuctionEvent,
  type AuctionState,
  type BidAccepted,
  type BidEvent,
  type PriceUpdate,
  type RejectReason,
  SCHEMA,
  type Transaction,
} from "../../api/events/types.ts";

export interface AuctionBookOptions {
  /** Bid ids remembered per auction to detect duplicates (oldest forgotten first). Default 256 (each costs ~250 bytes of heap with its place in the order). */
  readonly maxSeenBidIds?: number;
  /** Bid ids carried in a price update's `state` snapshot (restored after a rebalance). Default 16. */
  readonly snapshotSeenBidIds?: number;
  /** Bids held across all auctions while their auction record has not arrived. Default 10,000. */
  readonly pendingMaxBids?: number;
  /** How long (processing time) a bid is held before it is rejected auction_not_found. Default 30 s. */
  readonly pendingMaxAgeMs?: number;
  /** Processing-time delay after the effective end before the auction closes. Default 2 s. */
  readonly closeGraceMs?: number;
  /** Anti-sniping window for auctions without `soft_close_seconds`. Default 0 (none). */
  readonly defaultSoftCloseSeconds?: number;
  /** Add the restore snapshot (`state`) to every price update. Default true. */
  readonly includeState?: boolean;
  /**
   * How long (processing time) a closed auction keeps its full state, so
   * duplicates are still recognised; afterwards only a tombstone remains
   * (late bids are then rejected auction_closed without the duplicate
   * check). Default 10 minutes.
   */
  readonly closedRetentionMs?: number;
  /** Most tombstones of evicted closed auctions (oldest forgotten first). Default 1,000,000. */
  readonly maxTombstones?: number;
}

const DEFAULTS = {
  maxSeenBidIds: 256,
  snapshotSeenBidIds: 16,
  pendingMaxBids: 10_000,
  pendingMaxAgeMs: 30_000,
  closeGraceMs: 2_000,
  defaultSoftCloseSeconds: 0,
  includeState: true,
  closedRetentionMs: 600_000,
  maxTombstones: 1_000_000,
} satisfies Required<AuctionBookOptions>;

/** What the fraud scorer (and the caller) may know about an auction when a bid is decided. */
export interface AuctionView {
  readonly auction: AuctionEvent;
  readonly currentPrice: number | null;
  readonly leaderId: string | null;
  readonly bidCount: number;
  readonly effectiveEndMs: number;
}

/** A fraud score, or a function computing it once every other rule passed (scoring is not free). */
export type FraudInput = number | ((view: AuctionView) => number);

export type BidOutcome =
  | { readonly kind: "accepted"; readonly accepted: BidAccepted; readonly price: PriceUpdate }
  | {
      readonly kind: "rejected";
      readonly reason: Exclude<RejectReason, "malformed">;
      readonly detail: string;
      /** The fraud score when it was computed (fraud_quarantine). */
      readonly fraudScore?: number;
    }
  /** Held until the auction record arrives (see `applyAuction`/`expirePending`). */
  | { readonly kind: "pending" };

/** A bid held for its auction; `ref` is the caller's handle (e.g. topic-partition-offset). */
export interface HeldBid<R = unknown> {
  readonly bid: BidEvent;
  readonly ref: R;
  readonly heldAtMs: number;
}

export type AuctionApplied =
  | { readonly kind: "created" | "updated"; readonly price: PriceUpdate; readonly released: HeldBid[] }
  | { readonly kind: "unchanged" | "ignored_closed"; readonly released: HeldBid[] };

export interface ClosedAuction {
  readonly transaction: Transaction;
  readonly price: PriceUpdate;
}

interface Entry {
  auction: AuctionEvent;
  startsMs: number;
  endsMs: number;
  status: "open" | "closed";
  version: number;
  currentPrice: number | null;
  leaderId: string | null;
  leaderBidId: string | null;
  bidCount: number;
  extensionMs: number;
  firstBidAt: string | null;
  seen: Set<string>;
  /** Insertion order of `seen`, for bounded eviction. */
  seenOrder: string[];
  /** Processing time of the close (eviction), when closed. */
  closedAtMs?: number;
  /**
   * Log time of the auction record that created the entry. A bid logged more
   * than the hold time before it would have been rejected auction_not_found
   * had the records been read in log order, so it is, whatever the order in
   * which the two topics were fetched.
   */
  knownAtMs: number;
  /** Order in which the entry was created (ties of knownAtMs). */
  knownSeq: number;
}

interface DeferredBid extends HeldBid {
  readonly releaseAtMs: number;
  readonly order: number;
}

/** Min-heap of (endMs, auctionId); stale entries are skipped when popped. */
class EndHeap {
  private readonly a: Array<[number, string]> = [];
  get size(): number {
    return this.a.length;
  }
  push(end: number, id: string): void {
    const a = this.a;
    a.push([end, id]);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]![0] <= a[i]![0]) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  peek(): [number, string] | undefined {
    return this.a[0];
  }
  pop(): [number, string] | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && a[l]![0] < a[m]![0]) m = l;
        if (r < a.length && a[r]![0] < a[m]![0]) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}

function sameAuction(a: AuctionEvent, b: AuctionEvent): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof AuctionEvent>;
  for (const k of keys) if ((a[k] ?? null) !== (b[k] ?? null)) return false;
  return true;
}

function heldDuplicate(bid: BidEvent): BidOutcome {
  return {
    kind: "rejected",
    reason: "duplicate",
    detail: `bid_id ${bid.bid_id} is already held for this auction`,
  };
}

export class AuctionBook {
  private readonly opts: Required<AuctionBookOptions>;
  private readonly auctions = new Map<string, Entry>();
  private readonly ends = new EndHeap();
  /** Held bids by auction id, each list in arrival order. */
  private readonly pending = new Map<string, HeldBid[]>();
  /** Every held bid in arrival order (released ones are skipped when reached). */
  private heldQueue: HeldBid[] = [];
  private heldHead = 0;
  /** Closed auctions whose state was evicted: id -> effective end (ms). */
  private readonly tombstones = new Map<string, number>();
  /** Closed auctions in closing order, for eviction. */
  private closedQueue: string[] = [];
  private open = 0;
  private pendingCount = 0;
  /**
   * Bids whose auction is known but was logged after them (the auctions
   * topic was read ahead of the bids): in log order they were held until
   * the auction record, so they are decided when the bids' clock reaches
   * it (`releaseDue`), in the order a log-order replay decides them.
   */
  private deferred: DeferredBid[] = [];
  /** Smallest releaseAtMs in `deferred` (+Infinity when empty): releaseDue is called before every bid. */
  private deferredMin = Number.POSITIVE_INFINITY;
  /** Order in which auctions became known (ties of knownAtMs keep it). */
  private knownSeq = 0;
  /** Due auctions read ahead of their record's log time: id -> that time (`closeDue`). */
  private readonly closeAtRecord = new Map<string, number>();

  constructor(opts: AuctionBookOptions = {}) {
    this.opts = {
      ...DEFAULTS,
      ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)),
    };
  }

  /** Number of auctions held (open and closed). */
  get size(): number {
    return this.auctions.size;
  }

  /** Number of open auctions (for the auctions_open gauge; kept as a counter, O(1)). */
  get openCount(): number {
    return this.open;
  }

  get pendingSize(): number {
    return this.pendingCount;
  }

  has(auctionId: string): boolean {
    return this.auctions.has(auctionId);
  }

  view(auctionId: string): AuctionView | undefined {
    const e = this.auctions.get(auctionId);
    return e ? this.viewOf(e) : undefined;
  }

  status(auctionId: string): "open" | "closed" | undefined {
    if (this.tombstones.has(auctionId)) return "closed";
    return this.auctions.get(auctionId)?.status;
  }

  private viewOf(e: Entry): AuctionView {
    return {
      auction: e.auction,
      currentPrice: e.currentPrice,
      leaderId: e.leaderId,
      bidCount: e.bidCount,
      effectiveEndMs: e.endsMs + e.extensionMs,
    };
  }

  /**
   * Adds or updates an auction. Re-delivery of the same record changes
   * nothing (no version bump). A closed auction is never reopened. Returns
   * the bids that were held for it, in arrival order, for the caller to apply.
   */
  applyAuction(a: AuctionEvent, atMs = 0): AuctionApplied {
    const released = this.release(a.auction_id);
    if (this.tombstones.has(a.auction_id)) return { kind: "ignored_closed", released };
    const cur = this.auctions.get(a.auction_id);
    if (cur) {
      if (cur.status === "closed") return { kind: "ignored_closed", released };
      if (sameAuction(cur.auction, a)) return { kind: "unchanged", released };
      cur.auction = a;
      cur.startsMs = Date.parse(a.starts_at);
      cur.endsMs = Date.parse(a.ends_at);
      cur.version += 1;
      this.ends.push(cur.endsMs + cur.extensionMs, a.auction_id);
      return { kind: "updated", price: this.priceOf(cur, a.starts_at), released };
    }
    const e = this.entryOf({
      auction: a,
      status: "open",
      version: 1,
      current_price: null,
      leader_id: null,
      leader_bid_id: null,
      bid_count: 0,
      extension_ms: 0,
      first_bid_at: null,
      seen_bid_ids: [],
      known_at_ms: atMs,
    });
    this.auctions.set(a.auction_id, e);
    this.open += 1;
    this.ends.push(e.endsMs, a.auction_id);
    return { kind: "created", price: this.priceOf(e, a.starts_at), released };
  }

  /** The entry of a snapshot (a new auction is one with no bids), known from now on. */
  private entryOf(s: AuctionState): Entry {
    return {
      auction: s.auction,
      startsMs: Date.parse(s.auction.starts_at),
      endsMs: Date.parse(s.auction.ends_at),
      status: s.status,
      version: s.version,
      currentPrice: s.current_price,
      leaderId: s.leader_id,
      leaderBidId: s.leader_bid_id,
      bidCount: s.bid_count,
      extensionMs: s.extension_ms,
      firstBidAt: s.first_bid_at,
      seen: new Set(s.seen_bid_ids),
      seenOrder: [...s.seen_bid_ids],
      knownAtMs: s.known_at_ms ?? 0,
      knownSeq: this.knownSeq++,
    };
  }

  private release(auctionId: string): HeldBid[] {
    const held = this.pending.get(auctionId);
    if (!held) return [];
    this.pending.delete(auctionId);
    this.pendingCount -= held.length;
    return held;
  }

  /**
   * Decides one well-formed bid, checking the contract's rules in order
   * (duplicate, auction_not_found, currency_mismatch, self_bid, not_started,
   * auction_closed, below_minimum, fraud_quarantine). A bid for an unknown
   * auction is held (`pending`) while there is room; `expirePending` later
   * turns it into auction_not_found.
   *
   * `fraud` is the bid's score or a function computing it; `quarantineAt`
   * the threshold (score >= threshold rejects). `ref` is kept with a held bid.
   * `released`: the bid comes out of the deferral of `releaseDue`.
   */
  applyBid(
    bid: BidEvent,
    nowMs: number,
    fraud: FraudInput = 0,
    quarantineAt = 1.01,
    ref?: unknown,
    released = false,
  ): BidOutcome {
    const e = this.auctions.get(bid.auction_id);
    if (!e) return this.withoutAuction(bid, nowMs, ref);
    const early = this.beforeAuctionRecord(e, bid, nowMs, ref, released);
    if (early) return early;
    if (e.seen.has(bid.bid_id)) {
      return {
        kind: "rejected",
        reason: "duplicate",
        detail: `bid_id ${bid.bid_id} was already seen for this auction`,
      };
    }
    this.remember(e, bid.bid_id);
    const broken = this.brokenRule(e, bid, nowMs);
    if (broken) return broken;
    const score = typeof fraud === "function" ? fraud(this.viewOf(e)) : fraud;
    if (score >= quarantineAt) {
      return {
        kind: "rejected",
        reason: "fraud_quarantine",
        detail: `fraud score ${score.toFixed(3)} is at or above the quarantine threshold ${quarantineAt}`,
        fraudScore: score,
      };
    }
    return this.accept(e, bid, score);
  }

  /**
   * A bid whose auction the book does not hold: rejected when the auction
   * closed and was evicted (tombstone), else held for its record while the
   * hold has room.
   */
  private withoutAuction(bid: BidEvent, nowMs: number, ref: unknown): BidOutcome {
    const endMs = this.tombstones.get(bid.auction_id);
    if (endMs !== undefined) {
      return {
        kind: "rejected",
        reason: "auction_closed",
        detail: `the auction closed at ${toIso(endMs)} (bid placed_at ${bid.placed_at} arrived after closing)`,
      };
    }
    const held = this.pending.get(bid.auction_id);
    // A copy whose hold has run out in log time is no longer held, even if
    // its expiry waits for the auctions topic to be read that far.
    if (held?.some((h) => h.bid.bid_id === bid.bid_id && nowMs - h.heldAtMs < this.opts.pendingMaxAgeMs)) {
      return heldDuplicate(bid);
    }
    if (this.pendingCount < this.opts.pendingMaxBids && this.opts.pendingMaxAgeMs > 0) {
      const h: HeldBid = { bid, ref, heldAtMs: nowMs };
      if (held) held.push(h);
      else this.pending.set(bid.auction_id, [h]);
      this.heldQueue.push(h);
      this.pendingCount += 1;
      return { kind: "pending" };
    }
    return this.holdFull(bid);
  }

  /**
   * A bid logged before its (known) auction's record, read out of log order:
   * what a log-order replay did with it (expired in the hold, or held until
   * the bids' clock reaches the record), or undefined for a bid logged after
   * the record (or one `releaseDue` released).
   */
  private beforeAuctionRecord(
    e: Entry,
    bid: BidEvent,
    nowMs: number,
    ref: unknown,
    released: boolean,
  ): BidOutcome | undefined {
    if (e.knownAtMs - nowMs > this.opts.pendingMaxAgeMs) {
      // Read out of log order (the auctions topic was fetched ahead of the
      // bids): in log order this bid was held and expired before its auction
      // record was written.
      return {
        kind: "rejected",
        reason: "auction_not_found",
        detail: `auction ${bid.auction_id} was unknown when the bid arrived (its record came ${Math.round((e.knownAtMs - nowMs) / 1000)}s later, after the ${Math.round(this.opts.pendingMaxAgeMs / 1000)}s hold)`,
      };
    }
    if (released || e.knownAtMs <= nowMs) return undefined;
    // Logged before its auction record: held until the bids' clock reaches it.
    if (this.deferred.some((h) => h.bid.auction_id === bid.auction_id && h.bid.bid_id === bid.bid_id)) {
      return heldDuplicate(bid);
    }
    if (this.pendingCount < this.opts.pendingMaxBids) {
      this.deferred.push({ bid, ref, heldAtMs: nowMs, releaseAtMs: e.knownAtMs, order: e.knownSeq });
      this.deferredMin = Math.min(this.deferredMin, e.knownAtMs);
      this.pendingCount += 1;
      return { kind: "pending" };
    }
    return this.holdFull(bid);
  }

  /**
   * The auction's rules after the duplicate check, in contract order
   * (currency_mismatch, self_bid, not_started, auction_closed,
   * below_minimum): the first one the bid breaks, or undefined.
   */
  private brokenRule(e: Entry, bid: BidEvent, nowMs: number): BidOutcome | undefined {
    const a = e.auction;
    if (bid.currency !== a.currency) {
      return {
        kind: "rejected",
        reason: "currency_mismatch",
        detail: `bid currency ${bid.currency} differs from the auction's ${a.currency}`,
      };
    }
    if (bid.bidder_id === a.seller_id) {
      return { kind: "rejected", reason: "self_bid", detail: `bidder ${bid.bidder_id} is the seller` };
    }
    const placed = Date.parse(bid.placed_at);
    if (placed < e.startsMs) {
      return {
        kind: "rejected",
        reason: "not_started",
        detail: `placed_at ${bid.placed_at} is before starts_at ${a.starts_at}`,
      };
    }
    const endMs = e.endsMs + e.extensionMs;
    // `nowMs` is when the bid arrived (its partition clock): a bid held for
    // its auction and decided later is judged as of its arrival, so it gets
    // what it would have got had the auction record come first.
    if (e.status === "closed" || nowMs >= endMs + this.opts.closeGraceMs) {
      return {
        kind: "rejected",
        reason: "auction_closed",
        detail: `the auction closed at ${toIso(endMs)} (bid placed_at ${bid.placed_at} arrived after closing)`,
      };
    }
    if (placed >= endMs) {
      return {
        kind: "rejected",
        reason: "auction_closed",
        detail: `placed_at ${bid.placed_at} is at or after the effective end ${toIso(endMs)}`,
      };
    }
    const minimum = e.currentPrice === null ? a.start_price : e.currentPrice + a.min_increment;
    if (bid.amount < minimum) {
      return {
        kind: "rejected",
        reason: "below_minimum",
        detail:
          e.currentPrice === null
            ? `amount ${bid.amount} is below the start price ${a.start_price}`
            : `amount ${bid.amount} is below current price ${e.currentPrice} + min increment ${a.min_increment} = ${minimum}`,
      };
    }
    return undefined;
  }

  /** Accepts the bid: it leads. Anti-sniping extends the end when the bid lands in the soft-close window. */
  private accept(e: Entry, bid: BidEvent, score: number): BidOutcome {
    const a = e.auction;
    const placed = Date.parse(bid.placed_at);
    const endMs = e.endsMs + e.extensionMs;
    const softMs = (a.soft_close_seconds ?? this.opts.defaultSoftCloseSeconds) * 1000;
    const extended = softMs > 0 && endMs - placed <= softMs;
    if (extended) {
      e.extensionMs += softMs;
      this.ends.push(e.endsMs + e.extensionMs, a.auction_id);
    }
    e.currentPrice = bid.amount;
    e.leaderId = bid.bidder_id;
    e.leaderBidId = bid.bid_id;
    e.bidCount += 1;
    e.firstBidAt ??= bid.placed_at;
    e.version += 1;
    const newEnd = toIso(e.endsMs + e.extensionMs);
    const accepted: BidAccepted = {
      schema: SCHEMA.bidAccepted,
      bid_id: bid.bid_id,
      auction_id: bid.auction_id,
      bidder_id: bid.bidder_id,
      amount: bid.amount,
      currency: bid.currency,
      placed_at: bid.placed_at,
      received_at: bid.received_at,
      source: bid.source,
      fraud_score: score,
      bid_seq: e.bidCount,
      ends_at: newEnd,
      extended,
    };
    return { kind: "accepted", accepted, price: this.priceOf(e, bid.placed_at) };
  }

  private holdFull(bid: BidEvent): BidOutcome {
    return {
      kind: "rejected",
      reason: "auction_not_found",
      detail: `auction ${bid.auction_id} is unknown (hold buffer of ${this.opts.pendingMaxBids} bids is full)`,
    };
  }

  private remember(e: Entry, bidId: string): void {
    e.seen.add(bidId);
    e.seenOrder.push(bidId);
    const max = this.opts.maxSeenBidIds;
    if (e.seenOrder.length > max + (max >> 2)) {
      // Drop a quarter at once (amortised O(1)); memory stays under 1.25 x max.
      const drop = e.seenOrder.splice(0, e.seenOrder.length - max);
      for (const id of drop) e.seen.delete(id);
    }
  }

  /**
   * Held bids older than the hold time, removed from the hold (to be
   * rejected auction_not_found). Cost is proportional to what expires: the
   * hold is also kept as a queue in arrival order.
   */
  expirePending(nowMs: number): HeldBid[] {
    const out = this.takeOldestPending((h) => nowMs - h.heldAtMs >= this.opts.pendingMaxAgeMs);
    const q = this.heldQueue;
    // Compact: drop the consumed head and entries of released bids.
    if (this.heldHead > 1024 && this.heldHead * 2 > q.length) {
      this.heldQueue = q.slice(this.heldHead);
      this.heldHead = 0;
    } else if (q.length - this.heldHead > 2 * this.pendingCount + 1024) {
      const live = new Set<HeldBid>();
      for (const l of this.pending.values()) for (const h of l) live.add(h);
      this.heldQueue = q.slice(this.heldHead).filter((h) => live.has(h));
      this.heldHead = 0;
    }
    return out;
  }

  /**
   * Removes the `n` oldest held bids from the hold, whatever their age (to be
   * rejected auction_not_found): a runtime whose record of held bids has
   * run out of room makes room this way.
   */
  evictOldestPending(n: number): HeldBid[] {
    const out = this.takeOldestPending((_, taken) => taken < n);
    // Then bids deferred until their auction record's time, oldest first:
    // otherwise a runtime out of room to record them could never make room.
    if (out.length < n && this.deferred.length > 0) {
      this.deferred.sort((a, b) => a.heldAtMs - b.heldAtMs);
      const taken = this.deferred.splice(0, n - out.length);
      this.pendingCount -= taken.length;
      this.deferredMin = Math.min(Number.POSITIVE_INFINITY, ...this.deferred.map((h) => h.releaseAtMs));
      out.push(...taken);
    }
    return out;
  }

  /** Removes held bids in arrival order while `more(next, takenSoFar)` holds. */
  private takeOldestPending(more: (h: HeldBid, taken: number) => boolean): HeldBid[] {
    const out: HeldBid[] = [];
    const q = this.heldQueue;
    while (this.heldHead < q.length && more(q[this.heldHead]!, out.length)) {
      const h = q[this.heldHead]!;
      this.heldHead += 1;
      const list = this.pending.get(h.bid.auction_id);
      const i = list ? list.indexOf(h) : -1;
      if (!list || i < 0) continue; // released when its auction arrived
      list.splice(i, 1);
      if (list.length === 0) this.pending.delete(h.bid.auction_id);
      this.pendingCount -= 1;
      out.push(h);
    }
    return out;
  }

  /**
   * Deferred bids (logged before their known auction's record) whose auction
   * record's log time is at or before `nowMs`, in the order a log-order
   * replay releases them: by the auction record's time, then the order the
   * auctions became known, then arrival. Call before closing at `nowMs`.
   */
  releaseDue(nowMs: number): HeldBid[] {
    if (this.deferredMin > nowMs) return [];
    const due = this.deferred.filter((h) => h.releaseAtMs <= nowMs);
    this.deferred = this.deferred.filter((h) => h.releaseAtMs > nowMs);
    this.deferredMin = Math.min(Number.POSITIVE_INFINITY, ...this.deferred.map((h) => h.releaseAtMs));
    this.pendingCount -= due.length;
    // Stable sort: bids of one auction stay in arrival order.
    return due.sort((a, b) => a.releaseAtMs - b.releaseAtMs || a.order - b.order);
  }

  /** Arrival time of the oldest bid still held, or undefined when none is held. */
  oldestHeldAtMs(): number | undefined {
    const q = this.heldQueue;
    for (let i = this.heldHead; i < q.length; i++) {
      const h = q[i]!;
      if (this.pending.get(h.bid.auction_id)?.includes(h)) return h.heldAtMs;
    }
    return undefined;
  }

  /** Earliest log time at which `releaseDue` releases a deferred bid, or undefined. */
  nextReleaseAtMs(): number | undefined {
    return this.deferred.length === 0 ? undefined : this.deferredMin;
  }

  /** Processing-time delay after the effective end before an auction closes. */
  get closeGraceMs(): number {
    return this.opts.closeGraceMs;
  }

  /** Refs of all held bids (a runtime must not commit offsets past the oldest of them). */
  heldRefs(): unknown[] {
    return this.held().map((h) => h.ref);
  }

  /** All held bids: waiting for their auction record, or deferred until its log time. */
  held(): HeldBid[] {
    const out: HeldBid[] = [];
    for (const held of this.pending.values()) out.push(...held);
    out.push(...this.deferred);
    return out;
  }

  /** Earliest processing time at which `closeDue` will close something, or undefined. */
  nextCloseAtMs(): number | undefined {
    let next: number | undefined;
    for (const k of this.closeAtRecord.values()) if (next === undefined || k < next) next = k;
    for (;;) {
      const top = this.ends.peek();
      if (!top) return next;
      const e = this.auctions.get(top[1]);
      if (e && e.status === "open" && e.endsMs + e.extensionMs === top[0]) {
        const at = top[0] + this.opts.closeGraceMs;
        return next === undefined || at < next ? at : next;
      }
      this.ends.pop(); // stale (extended, updated or closed)
    }
  }

  /**
   * Closes every open auction whose effective end + grace is at or before
   * `nowMs`, each exactly once: the state flips to closed, so a second call
   * (or a re-delivered auction record) never emits a second transaction.
   * Winner = highest accepted bid (the leader), when the reserve is met.
   */
  closeDue(nowMs: number): ClosedAuction[] {
    const out: ClosedAuction[] = [];
    // Due auctions whose record was logged after their close time close when
    // the clock reaches the record (first: their end is the oldest).
    for (const [id, k] of [...this.closeAtRecord]) {
      if (k > nowMs) continue;
      this.closeAtRecord.delete(id);
      const e = this.auctions.get(id);
      if (e?.status === "open") out.push(this.close(e, nowMs));
    }
    for (;;) {
      const top = this.ends.peek();
      if (!top || top[0] + this.opts.closeGraceMs > nowMs) break;
      this.ends.pop();
      const e = this.auctions.get(top[1]);
      if (e?.status !== "open" || e.endsMs + e.extensionMs !== top[0]) continue;
      // Read ahead: the auction does not exist yet in log time; it closes
      // once the clock reaches its record (kept apart, so the heap's top
      // never hides the closes behind it).
      if (e.knownAtMs > nowMs) this.closeAtRecord.set(top[1], e.knownAtMs);
      else out.push(this.close(e, nowMs));
    }
    this.evictClosed(nowMs);
    return out;
  }

  /** Replaces closed auctions older than the retention by tombstones (bounded memory). */
  private evictClosed(nowMs: number): void {
    let i = 0;
    for (; i < this.closedQueue.length; i++) {
      const id = this.closedQueue[i]!;
      const e = this.auctions.get(id);
      if (e && e.status === "closed" && (e.closedAtMs ?? 0) + this.opts.closedRetentionMs > nowMs) break;
      if (e?.status === "closed") {
        this.auctions.delete(id);
        this.tombstones.set(id, e.endsMs + e.extensionMs);
        if (this.tombstones.size > this.opts.maxTombstones) {
          const oldest = this.tombstones.keys().next();
          if (!oldest.done) this.tombstones.delete(oldest.value);
        }
      }
    }
    if (i > 0) this.closedQueue = this.closedQueue.slice(i);
  }

  private close(e: Entry, nowMs: number): ClosedAuction {
    const a = e.auction;
    e.status = "closed";
    e.closedAtMs = nowMs;
    this.open -= 1;
    this.closedQueue.push(a.auction_id);
    e.version += 1;
    const closedAt = toIso(e.endsMs + e.extensionMs);
    const reserveMet =
      e.currentPrice !== null && (a.reserve_price == null || e.currentPrice >= a.reserve_price);
    const transaction: Transaction = {
      schema: SCHEMA.transaction,
      auction_id: a.auction_id,
      winner_id: reserveMet ? e.leaderId : null,
      high_bidder_id: e.leaderId,
      final_price: e.currentPrice,
      reserve_met: reserveMet,
      closed_at: closedAt,
      seller_id: a.seller_id,
      category: a.category,
      currency: a.currency,
      start_price: a.start_price,
      bid_count: e.bidCount,
      starts_at: a.starts_at,
      first_bid_at: e.firstBidAt,
    };
    return { transaction, price: this.priceOf(e, closedAt) };
  }

  private priceOf(e: Entry, updatedAt: string): PriceUpdate {
    const p: PriceUpdate = {
      schema: SCHEMA.priceUpdate,
      auction_id: e.auction.auction_id,
      version: e.version,
      status: e.status,
      current_price: e.currentPrice,
      leader_id: e.leaderId,
      bid_count: e.bidCount,
      currency: e.auction.currency,
      ends_at: toIso(e.endsMs + e.extensionMs),
      updated_at: updatedAt,
    };
    if (this.opts.includeState) p.state = this.snapshotEntry(e);
    return p;
  }

  private snapshotEntry(e: Entry): AuctionState {
    return {
      auction: e.auction,
      status: e.status,
      version: e.version,
      current_price: e.currentPrice,
      leader_id: e.leaderId,
      leader_bid_id: e.leaderBidId,
      bid_count: e.bidCount,
      extension_ms: e.extensionMs,
      first_bid_at: e.firstBidAt,
      seen_bid_ids: e.seenOrder.slice(-this.opts.snapshotSeenBidIds),
      known_at_ms: e.knownAtMs,
      ...(e.closedAtMs === undefined ? {} : { closed_at_ms: e.closedAtMs }),
    };
  }

  /** Snapshot of one auction (what a price update's `state` carries), or undefined. */
  snapshotOf(auctionId: string): AuctionState | undefined {
    const e = this.auctions.get(auctionId);
    return e ? this.snapshotEntry(e) : undefined;
  }

  /** Snapshots of every auction held. */
  snapshot(): AuctionState[] {
    return [...this.auctions.values()].map((e) => this.snapshotEntry(e));
  }

  /**
   * Rebuilds an auction from a snapshot (the `state` of its latest price
   * update on the compacted prices topic). A snapshot older than the state
   * already held (lower version) is ignored, so restore order does not matter.
   * Returns whether the snapshot was applied.
   */
  restore(s: AuctionState): boolean {
    const id = s.auction.auction_id;
    const cur = this.auctions.get(id);
    if (cur && cur.version >= s.version) return false;
    if (this.tombstones.has(id)) return false;
    if (cur?.status === "open") this.open -= 1;
    const e = this.entryOf(s);
    this.auctions.set(id, e);
    if (e.status === "open") {
      this.open += 1;
      this.ends.push(e.endsMs + e.extensionMs, id);
    } else {
      // Retained from the close, as before the rebuild (older snapshots: from the effective end).
      e.closedAtMs = s.closed_at_ms ?? e.endsMs + e.extensionMs;
      this.closedQueue.push(id);
    }
    return true;
  }

  /**
   * Replaces an auction's remembered bid ids by `ids`, remembered one by one
   * in decision order with the same bounded eviction as `applyBid`, so a
   * rebuilt book forgets exactly the ids the original had forgotten.
   */
  replaySeen(auctionId: string, ids: readonly string[]): void {
    const e = this.auctions.get(auctionId);
    if (!e) return;
    e.seen = new Set();
    e.seenOrder = [];
    for (const id of ids) if (!e.seen.has(id)) this.remember(e, id);
  }

  /** Drops every auction whose id `keep` rejects (partition revoked). Held bids for them are dropped too. */
  retain(keep: (auctionId: string) => boolean): void {
    for (const [id, e] of this.auctions) {
      if (keep(id)) continue;
      if (e.status === "open") this.open -= 1;
      this.auctions.delete(id);
    }
    for (const id of this.tombstones.keys()) if (!keep(id)) this.tombstones.delete(id);
    for (const id of [...this.pending.keys()]) if (!keep(id)) this.release(id);
  }
}
