/**
 * Explainable fraud scoring: each bid gets a score in [0, 1] that is the sum
 * of named signals' contributions (weight x strength, capped at 1), so an
 * analyst can see *why* a bid was flagged. Weights and thresholds come from
 * the pipeline's `spec.fraud`. Memory is bounded: every per-key table is an
 * LRU with a maximum size.
 *
 * Signals (names are the `spec.fraud.weights` keys):
 * - velocity: the bidder placed many bids in a short (event-time) window.
 * - newAccountHighBid: a young account bids far above the start price.
 * - shillPattern: the bidder keeps bidding on one seller's auctions and
 *   rarely wins them (price pumping for the seller).
 * - amountOutlier: the amount is far above the auction's current price, or
 *   far from the category's log-normal distribution of accepted amounts.
 * - lastSecondBurst: in the last seconds before the effective end, other
 *   bidders linked to this one (same country, accounts created close
 *   together) bid on the same auction.
 * - anomaly: the trained Isolation Forest (processors/fraud/model.ts) finds
 *   the bid's features unusual; only when a model is active for the bid.
 *
 * Every scored bid also gets its feature vector (FEATURES), logged with the
 * bid so the gold job trains the model on what the stream computed.
 */

import type {
  BidEvent,
  FraudAlert,
  FraudSignal,
  FraudSignalName,
  Transaction,
  UserEvent,
} from "../../api/events/types.ts";
import { FRAUD_SIGNALS, SCHEMA } from "../../api/events/types.ts";
import { anomalyOf, type FraudModels, roundFeature } from "../fraud/model.ts";
import type { AuctionView } from "./auction.ts";

/** The subset of `spec.fraud` the scorer needs (matches api/v1alpha1 FraudSpec). */
export interface FraudConfig {
  readonly quarantineThreshold: number;
  readonly alertThreshold: number;
  readonly weights: Readonly<Record<FraudSignalName, number>>;
}

/** The defaults of `spec.fraud`. */
export const DEFAULT_FRAUD_CONFIG: FraudConfig = {
  quarantineThreshold: 0.8,
  alertThreshold: 0.5,
  weights: {
    velocity: 0.3,
    newAccountHighBid: 0.2,
    shillPattern: 0.2,
    amountOutlier: 0.2,
    lastSecondBurst: 0.1,
    anomaly: 0.3,
  },
};

/** Tuning of the signals; the defaults are documented in docs/events.md. */
export interface FraudScorerOptions {
  /** Event-time window for velocity. Default 60 s. */
  readonly velocityWindowMs?: number;
  /** Bids in the window that are still normal. Default 5. */
  readonly velocityNormal?: number;
  /** Bids in the window at which the signal is at full strength. Default 15. */
  readonly velocityMax?: number;
  /** An account younger than this (at placed_at) is new. Default 7 days. */
  readonly newAccountAgeMs?: number;
  /** amount / start_price at which a new account's bid counts as fully high. Default 5. */
  readonly highBidFactor?: number;
  /** Distinct auctions of one seller a bidder must enter before the shill signal starts. Default 3. */
  readonly shillMinAuctions?: number;
  /** Win rate on that seller's auctions at or above which the shill signal is 0. Default 0.2. */
  readonly shillMaxWinRate?: number;
  /** amount / current price below which an amount is normal. Default 2. */
  readonly outlierRatioNormal?: number;
  /** amount / current price at which the outlier signal is at full strength. Default 5. */
  readonly outlierRatioMax?: number;
  /** |z| of ln(amount) in the category at which the category outlier starts (full at +2). Default 3. */
  readonly outlierZ?: number;
  /** Accepted amounts needed in a category before its distribution is used. Default 30. */
  readonly outlierMinSamples?: number;
  /** The "last seconds": window before the effective end for bursts. Default 10 s. */
  readonly burstWindowMs?: number;
  /** Distinct linked other bidders in the window for full strength. Default 2. */
  readonly burstLinkedMax?: number;
  /** Accounts created within this interval of each other (and same country) are linked. Default 1 h. */
  readonly linkCreatedWithinMs?: number;
  /** Bounds of the LRU tables. */
  readonly maxUsers?: number;
  readonly maxBidders?: number;
  readonly maxPairs?: number;
  readonly maxAuctions?: number;
  readonly maxCategories?: number;
  /** Trained anomaly models (shared by a process's scorers); none: the rules alone. */
  readonly models?: FraudModels;
}

const D = {
  velocityWindowMs: 60_000,
  velocityNormal: 5,
  velocityMax: 15,
  newAccountAgeMs: 7 * 86_400_000,
  highBidFactor: 5,
  shillMinAuctions: 3,
  shillMaxWinRate: 0.2,
  outlierRatioNormal: 2,
  outlierRatioMax: 5,
  outlierZ: 3,
  outlierMinSamples: 30,
  burstWindowMs: 10_000,
  burstLinkedMax: 2,
  linkCreatedWithinMs: 3_600_000,
  maxUsers: 500_000,
  maxBidders: 200_000,
  maxPairs: 200_000,
  maxAuctions: 200_000,
  maxCategories: 10_000,
} satisfies Required<Omit<FraudScorerOptions, "models">>;

export interface FraudAssessment {
  /** min(1, sum of contributions), rounded to 6 decimals. */
  readonly score: number;
  /** Signals with a contribution > 0, largest first. */
  readonly signals: FraudSignal[];
  readonly alert: boolean;
  readonly quarantine: boolean;
  /** The bid's features (FEATURES order, rounded), logged as `fraud_features`. */
  readonly features: number[];
  /** Version of the model that scored the bid, if one was active. */
  readonly model?: string;
}

/**
 * A Map with a size bound that forgets keys not used recently: two
 * generations of at most max/2 entries each; a hit in the old generation is
 * promoted, and when the young one is full the old one is dropped whole.
 * No per-access deletes (cheaper than a strict LRU), at most `max` entries.
 */
export class Lru<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private readonly half: number;
  constructor(max: number) {
    this.half = Math.max(1, Math.floor(max / 2));
  }
  get size(): number {
    return this.young.size + this.old.size;
  }
  /** Reads and marks as recently used. */
  get(k: K): V | undefined {
    const v = this.young.get(k);
    if (v !== undefined) return v;
    const o = this.old.get(k);
    if (o !== undefined) {
      this.old.delete(k);
      this.insert(k, o);
    }
    return o;
  }
  /** Reads without changing recency. */
  peek(k: K): V | undefined {
    return this.young.get(k) ?? this.old.get(k);
  }
  set(k: K, v: V): void {
    if (this.young.has(k)) {
      this.young.set(k, v);
      return;
    }
    this.old.delete(k);
    this.insert(k, v);
  }
  private insert(k: K, v: V): void {
    if (this.young.size >= this.half) {
      this.old = this.young;
      this.young = new Map();
    }
    this.young.set(k, v);
  }
}

const clamp01 = (x: number) => (x <= 0 || Number.isNaN(x) ? 0 : Math.min(x, 1));
const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

interface UserInfo {
  createdMs: number;
  country: string;
}
interface PairInfo {
  auctions: string[];
  wins: number;
}
interface CategoryStats {
  n: number;
  mean: number;
  m2: number;
}
interface RecentBid {
  bidderId: string;
  placedMs: number;
}

/** Per-bidder timestamps kept for velocity (a little more than velocityMax). */
const MAX_PAIR_AUCTIONS = 64;
const MAX_RECENT_PER_AUCTION = 32;

export class FraudScorer {
  private readonly cfg: FraudConfig;
  private readonly o: Required<Omit<FraudScorerOptions, "models">>;
  private readonly models: FraudModels | undefined;
  private readonly users: Lru<string, UserInfo>;
  private readonly bidTimes: Lru<string, number[]>;
  private readonly pairs: Lru<string, PairInfo>;
  private readonly recent: Lru<string, RecentBid[]>;
  private readonly categories: Lru<string, CategoryStats>;

  constructor(cfg: FraudConfig = DEFAULT_FRAUD_CONFIG, opts: FraudScorerOptions = {}) {
    this.cfg = cfg;
    const { models, ...tuning } = opts;
    this.models = models;
    this.o = { ...D, ...Object.fromEntries(Object.entries(tuning).filter(([, v]) => v !== undefined)) };
    this.users = new Lru(this.o.maxUsers);
    this.bidTimes = new Lru(this.o.maxBidders);
    this.pairs = new Lru(this.o.maxPairs);
    this.recent = new Lru(this.o.maxAuctions);
    this.categories = new Lru(this.o.maxCategories);
  }

  get config(): FraudConfig {
    return this.cfg;
  }

  /** Users feed the new-account and linked-bidder signals (the users topic, read by every replica). */
  applyUser(u: UserEvent): void {
    this.users.set(u.user_id, { createdMs: Date.parse(u.created_at), country: u.country });
  }

  /** Closed auctions feed the shill signal's win rate. */
  applyTransaction(t: Transaction): void {
    if (!t.winner_id) return;
    const key = `${t.winner_id}\u0000${t.seller_id}`;
    const p = this.pairs.get(key) ?? { auctions: [], wins: 0 };
    p.wins += 1;
    if (!p.auctions.includes(t.auction_id)) p.auctions.push(t.auction_id);
    this.pairs.set(key, p);
  }

  /**
   * Scores a bid against what was observed before it (does not change
   * state; call `observe` afterwards). `atMs` is the bid's arrival (its
   * partition clock): it picks the active model. Default: placed_at.
   */
  score(bid: BidEvent, view: AuctionView, atMs?: number): FraudAssessment {
    const placed = Date.parse(bid.placed_at);
    const w = this.cfg.weights;
    const raw: Array<{ name: FraudSignalName; strength: number; detail: string }> = [];

    // velocity: this bid plus the bidder's earlier bids inside the window.
    const times = this.bidTimes.peek(bid.bidder_id) ?? [];
    let inWindow = 1;
    for (const t of times) if (t <= placed && placed - t < this.o.velocityWindowMs) inWindow++;
    raw.push({
      name: "velocity",
      strength: clamp01((inWindow - this.o.velocityNormal) / (this.o.velocityMax - this.o.velocityNormal)),
      detail: `${inWindow} bids by ${bid.bidder_id} within ${this.o.velocityWindowMs / 1000}s (normal <= ${this.o.velocityNormal})`,
    });

    // newAccountHighBid
    const user = this.users.peek(bid.bidder_id);
    let ageFeature = -1;
    if (user) {
      const ageMs = Math.max(0, placed - user.createdMs);
      ageFeature = Math.log1p(ageMs / 86_400_000);
      const youth = clamp01(1 - ageMs / this.o.newAccountAgeMs);
      const ratio = bid.amount / view.auction.start_price;
      const high = clamp01(Math.log(Math.max(ratio, 1)) / Math.log(this.o.highBidFactor));
      raw.push({
        name: "newAccountHighBid",
        strength: youth * high,
        detail: `account ${(ageMs / 86_400_000).toFixed(1)} days old bids ${ratio.toFixed(2)}x the start price`,
      });
    }

    // shillPattern
    const pair = this.pairs.peek(`${bid.bidder_id}\u0000${view.auction.seller_id}`);
    let sellerAuctions = 1;
    let sellerWinRate = 0;
    if (pair) {
      const n = pair.auctions.length + (pair.auctions.includes(bid.auction_id) ? 0 : 1);
      const winRate = pair.wins / n;
      sellerAuctions = n;
      sellerWinRate = winRate;
      const many = clamp01((n - this.o.shillMinAuctions + 1) / this.o.shillMinAuctions);
      const loses = clamp01(1 - winRate / this.o.shillMaxWinRate);
      raw.push({
        name: "shillPattern",
        strength: many * loses,
        detail: `bid on ${n} auctions of seller ${view.auction.seller_id}, won ${pair.wins} (${(winRate * 100).toFixed(0)}%)`,
      });
    }

    // amountOutlier: against the auction, and against the category distribution.
    const ref = Math.max(view.currentPrice ?? view.auction.start_price, 1);
    const ratio = bid.amount / ref;
    const sAuction = clamp01(
      (ratio - this.o.outlierRatioNormal) / (this.o.outlierRatioMax - this.o.outlierRatioNormal),
    );
    let sCategory = 0;
    let z = 0;
    const cat = this.categories.peek(`${view.auction.category}\u0000${view.auction.currency}`);
    if (cat && cat.n >= this.o.outlierMinSamples) {
      const sd = Math.sqrt(cat.m2 / (cat.n - 1));
      if (sd > 0) {
        z = (Math.log(bid.amount) - cat.mean) / sd;
        sCategory = clamp01((Math.abs(z) - this.o.outlierZ) / 2);
      }
    }
    raw.push({
      name: "amountOutlier",
      strength: Math.max(sAuction, sCategory),
      detail:
        sCategory > sAuction
          ? `amount is ${z.toFixed(1)} standard deviations from the ${view.auction.category} category (log scale)`
          : `amount is ${ratio.toFixed(2)}x the ${view.currentPrice === null ? "start" : "current"} price`,
    });

    // lastSecondBurst: linked bidders bidding in the last seconds of this auction.
    const toEnd = view.effectiveEndMs - placed;
    let linkedCount = 0;
    if (toEnd >= 0 && toEnd <= this.o.burstWindowMs && user) {
      const linked = new Set<string>();
      for (const r of this.recent.peek(bid.auction_id) ?? []) {
        if (r.bidderId === bid.bidder_id) continue;
        if (view.effectiveEndMs - r.placedMs > this.o.burstWindowMs) continue;
        const other = this.users.peek(r.bidderId);
        if (
          other &&
          other.country === user.country &&
          Math.abs(other.createdMs - user.createdMs) <= this.o.linkCreatedWithinMs
        ) {
          linked.add(r.bidderId);
        }
      }
      linkedCount = linked.size;
      raw.push({
        name: "lastSecondBurst",
        strength: clamp01(linked.size / this.o.burstLinkedMax),
        detail: `${linked.size} linked bidders bid in the last ${this.o.burstWindowMs / 1000}s (${(toEnd / 1000).toFixed(1)}s before the end)`,
      });
    }

    const features = [
      inWindow,
      Math.log(ratio),
      Math.log(Math.max(bid.amount, 1) / Math.max(view.auction.start_price, 1)),
      z,
      Math.log1p(Math.max(0, toEnd) / 1000),
      ageFeature,
      sellerAuctions,
      sellerWinRate,
      linkedCount,
    ].map(roundFeature);
    const model = this.models?.at(atMs ?? placed);
    if (model) {
      const a = anomalyOf(model, features);
      raw.push({
        name: "anomaly",
        strength: a.strength,
        detail: `isolation score ${a.score.toFixed(3)} (model ${model.model.version}: normal below ${model.model.calibration.low.toFixed(3)})`,
      });
    }

    const signals: FraudSignal[] = [];
    let total = 0;
    for (const r of raw) {
      const weight = w[r.name] ?? 0;
      const contribution = round6(weight * r.strength);
      if (contribution <= 0) continue;
      total += contribution;
      signals.push({ name: r.name, strength: round6(r.strength), weight, contribution, detail: r.detail });
    }
    signals.sort(
      (a, b) =>
        b.contribution - a.contribution || FRAUD_SIGNALS.indexOf(a.name) - FRAUD_SIGNALS.indexOf(b.name),
    );
    const score = round6(Math.min(1, total));
    return {
      score,
      signals,
      alert: score >= this.cfg.alertThreshold && signals.length > 0,
      quarantine: score >= this.cfg.quarantineThreshold && signals.length > 0,
      features,
      ...(model ? { model: model.model.version } : {}),
    };
  }

  /**
   * Records a bid that reached an auction (accepted or not; duplicates and
   * malformed records are not observed). Category statistics learn from
   * accepted amounts only, so rejected outliers do not shift them.
   */
  observe(bid: BidEvent, view: AuctionView, accepted: boolean): void {
    const placed = Date.parse(bid.placed_at);
    const times = this.bidTimes.get(bid.bidder_id) ?? [];
    times.push(placed);
    if (times.length > this.o.velocityMax + 1) times.splice(0, times.length - (this.o.velocityMax + 1));
    this.bidTimes.set(bid.bidder_id, times);

    const key = `${bid.bidder_id}\u0000${view.auction.seller_id}`;
    const pair = this.pairs.get(key) ?? { auctions: [], wins: 0 };
    if (!pair.auctions.includes(bid.auction_id)) {
      pair.auctions.push(bid.auction_id);
      if (pair.auctions.length > MAX_PAIR_AUCTIONS) pair.auctions.shift();
    }
    this.pairs.set(key, pair);

    const rec = this.recent.get(bid.auction_id) ?? [];
    rec.push({ bidderId: bid.bidder_id, placedMs: placed });
    if (rec.length > MAX_RECENT_PER_AUCTION) rec.shift();
    this.recent.set(bid.auction_id, rec);

    if (accepted) {
      const ck = `${view.auction.category}\u0000${view.auction.currency}`;
      const c = this.categories.get(ck) ?? { n: 0, mean: 0, m2: 0 };
      const x = Math.log(bid.amount);
      c.n += 1;
      const d = x - c.mean;
      c.mean += d / c.n;
      c.m2 += d * (x - c.mean);
      this.categories.set(ck, c);
    }
  }
}

/** The fraud-alert event for an assessed bid. */
export function fraudAlert(bid: BidEvent, a: FraudAssessment): FraudAlert {
  return {
    schema: SCHEMA.fraudAlert,
    bid_id: bid.bid_id,
    auction_id: bid.auction_id,
    bidder_id: bid.bidder_id,
    score: a.score,
    quarantined: a.quarantine,
    signals: a.signals,
    created_at: bid.placed_at,
  };
}
