/**
 * `generateDataset`: a realistic, reproducible synthetic workload (pure: no
 * I/O, no clock). The same options give byte-identical records, so a test can
 * regenerate the data a `gavel generate` run sent and compute the expected
 * outcome independently.
 *
 * Timeline: bids are scheduled over `bids / rate` seconds from `startMs`
 * (the wall-clock time the sink starts sending); each record has the time it
 * should be sent (`sendAtMs`, also its `received_at` and Kafka timestamp),
 * and `placed_at` a little earlier (client latency). Auctions and users are
 * sent first. Every bid record is counted in `--bids`, malformed included.
 */
import { type AuctionEvent, type BidEvent, SCHEMA, type UserEvent } from "../../processors/domain/events.ts";
import { Rng } from "./random.ts";

export const BID_KINDS = [
  "normal",
  "snipe",
  "velocity",
  "shill",
  "burst",
  "malformed",
  "late",
  "duplicate",
  "wrong_currency",
  "unknown_auction",
  "self_bid",
  "not_started",
] as const;
/** Why a bid record was generated; the processor's outcome is computed independently by tests. */
export type BidKind = (typeof BID_KINDS)[number];
/** The kinds that are fraud: the labels of `gavel generate --labels` and of docs/fraud.md's figures. */
export const FRAUD_BID_KINDS: ReadonlySet<BidKind> = new Set(["velocity", "shill", "burst"]);

/** One line of `gavel generate --labels`: what the generator made a well-formed bid record as. */
export interface BidLabel {
  readonly bid_id: string;
  readonly auction_id: string;
  readonly bidder_id: string;
  readonly received_at: string;
  readonly kind: BidKind;
  readonly fraud: boolean;
}

/**
 * The labels of a dataset's well-formed bid records, in send order
 * (malformed records have no usable bid_id and are not labelled). A
 * duplicate record repeats its original's bid_id with a later received_at.
 */
export function bidLabels(ds: Dataset): BidLabel[] {
  const out: BidLabel[] = [];
  for (const b of ds.bids) {
    if (b.malformed) continue;
    const v = (b.bid ?? JSON.parse(b.raw)) as {
      bid_id: string;
      auction_id: string;
      bidder_id: string;
      received_at: string;
    };
    out.push({
      bid_id: v.bid_id,
      auction_id: v.auction_id,
      bidder_id: v.bidder_id,
      received_at: v.received_at,
      kind: b.kind,
      fraud: FRAUD_BID_KINDS.has(b.kind),
    });
  }
  return out;
}
export type SpecialKind = Exclude<BidKind, "normal">;

/** Default share of each special kind among all bid records. */
export const DEFAULT_FRACTIONS: Readonly<Record<SpecialKind, number>> = {
  snipe: 0.05,
  velocity: 0.02,
  shill: 0.02,
  burst: 0.005,
  malformed: 0.02,
  late: 0.01,
  duplicate: 0.01,
  wrong_currency: 0.005,
  unknown_auction: 0.005,
  self_bid: 0.003,
  not_started: 0.005,
};

export interface GenerateOptions {
  readonly seed: number;
  /** Number of auctions. */
  readonly auctions: number;
  /** Number of bid records, malformed ones included. */
  readonly bids: number;
  /** Wall-clock time (epoch ms) of the schedule's start. */
  readonly startMs: number;
  /** Bids per second of the schedule. Default 1000. */
  readonly rate?: number;
  /**
   * Number of ordinary users (fraud rings and bots are added). Default
   * max(10, 1.5 x auctions, bids / 4): ordinary bidders place a few bids
   * each, so bid velocity singles out the bots.
   */
  readonly users?: number;
  /** Prefix of every id, so runs do not collide. Default `g<seed>`. */
  readonly prefix?: string;
  /** Share of each special kind (0..1). */
  readonly fractions?: Partial<Record<SpecialKind, number>>;
  /** Late records are sent this long after their auction's end. Default 10 s. */
  readonly lateDelayMs?: number;
  /** Share of auctions that end long after the schedule (stay open). Default 0. */
  readonly openFraction?: number;
  /** Leave out the parsed `bid` of each record (less memory for large runs; `raw` is kept). */
  readonly lean?: boolean;
}

export interface GeneratedBid {
  /** Position in send order (0-based). */
  readonly index: number;
  /** When to send it; also its received_at and Kafka record timestamp. */
  readonly sendAtMs: number;
  /** Kafka key: the auction_id the record targets. */
  readonly key: string;
  /** The exact record value for the bids topic (JSON, or deliberately broken text). */
  readonly raw: string;
  readonly kind: BidKind;
  /** True when the record is deliberately malformed (schema/JSON/value errors). */
  readonly malformed: boolean;
  /** What is wrong with a malformed record. */
  readonly malformation?: string;
  /** The well-formed bid as a processor decodes it (absent when malformed, or with `lean`). */
  readonly bid?: BidEvent;
}

export interface Dataset {
  readonly seed: number;
  readonly startMs: number;
  /** Schedule length (the last bid's sendAtMs - startMs). */
  readonly durationMs: number;
  readonly users: readonly UserEvent[];
  readonly auctions: readonly AuctionEvent[];
  readonly bids: readonly GeneratedBid[];
  /** Bid records per kind. */
  readonly counts: Readonly<Record<BidKind, number>>;
  /** Fraud actors, for tests and demos. */
  readonly actors: {
    readonly rings: readonly { readonly members: readonly string[]; readonly sellerId: string }[];
    readonly bots: readonly string[];
  };
}

interface Category {
  readonly name: string;
  /** Start price range in USD cents. */
  readonly min: number;
  readonly max: number;
  readonly weight: number;
}

const CATEGORIES: readonly Category[] = [
  { name: "electronics", min: 2_000, max: 200_000, weight: 20 },
  { name: "fashion", min: 1_000, max: 50_000, weight: 15 },
  { name: "collectibles", min: 500, max: 500_000, weight: 12 },
  { name: "home", min: 1_000, max: 80_000, weight: 12 },
  { name: "sports", min: 1_000, max: 100_000, weight: 10 },
  { name: "toys", min: 500, max: 20_000, weight: 8 },
  { name: "books", min: 100, max: 5_000, weight: 8 },
  { name: "jewelry", min: 5_000, max: 1_000_000, weight: 6 },
  { name: "art", min: 5_000, max: 2_000_000, weight: 5 },
  { name: "vehicles", min: 200_000, max: 5_000_000, weight: 4 },
];

const ITEMS: Readonly<Record<string, readonly string[]>> = {
  electronics: ["Camera", "Laptop", "Headphones", "Drone", "Synthesizer", "Smartphone"],
  fashion: ["Leather jacket", "Sneakers", "Handbag", "Silk scarf", "Wool coat"],
  collectibles: ["Trading card", "Vintage stamp set", "Coin", "Signed poster", "Comic book"],
  home: ["Espresso machine", "Armchair", "Rug", "Desk lamp", "Cast iron pan"],
  sports: ["Road bike", "Tennis racket", "Ski set", "Golf clubs", "Climbing rope"],
  toys: ["Model train", "Building set", "Board game", "Plush bear", "Puzzle"],
  books: ["First edition", "Atlas", "Cookbook", "Poetry collection", "Novel"],
  jewelry: ["Watch", "Ring", "Necklace", "Bracelet", "Earrings"],
  art: ["Oil painting", "Print", "Sculpture", "Photograph", "Drawing"],
  vehicles: ["Classic car", "Motorcycle", "Scooter", "Camper van"],
};
const ADJECTIVES = ["Vintage", "Mint", "Rare", "Used", "Refurbished", "Boxed", "Limited", "Classic"];

/** Country -> [currency, weight, factor from USD cents to the currency's minor units]. */
const COUNTRIES: readonly (readonly [string, string, number, number])[] = [
  ["US", "USD", 30, 1],
  ["GB", "GBP", 12, 0.79],
  ["DE", "EUR", 14, 0.92],
  ["FR", "EUR", 10, 0.92],
  ["NL", "EUR", 5, 0.92],
  ["IT", "EUR", 6, 0.92],
  ["ES", "EUR", 6, 0.92],
  ["JP", "JPY", 8, 1.5],
  ["CA", "CAD", 5, 1.36],
  ["AU", "AUD", 4, 1.52],
];
const CURRENCY_OF = new Map(COUNTRIES.map(([c, cur, , f]) => [c, { currency: cur, factor: f }]));

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** Rounds a price to a "nice" number of minor units. */
function nice(minor: number): number {
  const step = minor >= 100_000 ? 1000 : minor >= 10_000 ? 100 : minor >= 1000 ? 10 : 1;
  return Math.max(step, Math.round(minor / step) * step);
}

function increment(start: number): number {
  const target = start * 0.02;
  for (const s of [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000]) {
    if (s >= target) return s;
  }
  return 100_000;
}

/** A bid planned before amounts are assigned. */
interface Intent {
  kind: BidKind;
  auction: number;
  bidder: string;
  placedMs: number;
  sendAtMs: number;
  amount?: number;
  currency?: string;
  auctionId?: string;
}

/**
 * Names like real marketplaces have (`*`, spaces inside, accents, CJK,
 * emoji): ids are opaque text (docs/events.md#identifiers), and every run
 * that uses the generator exercises them. No `'`: the dev summary prints
 * shell commands with ids in single quotes.
 */
const NAMES = ["d*elmer", "*champaign bubbles*", "Jürgen Müller", "名前", "🦊 fox", "Ölfass & Söhne"];

/** User i's id: every 10th (i % 10 === 3) carries a name, chosen by index, not by the random stream, so the rest of a seed's dataset stays the same. */
function userId(prefix: string, i: number): string {
  if (i % 10 !== 3) return `${prefix}-u-${i + 1}`;
  return `${prefix}-${NAMES[Math.floor(i / 10) % NAMES.length]}-${i + 1}`;
}

export function generateDataset(opts: GenerateOptions): Dataset {
  const { seed, startMs: t0 } = opts;
  if (!Number.isInteger(opts.auctions) || opts.auctions < 1)
    throw new RangeError("auctions must be an integer >= 1");
  if (!Number.isInteger(opts.bids) || opts.bids < 0) throw new RangeError("bids must be an integer >= 0");
  const rate = opts.rate && opts.rate > 0 ? opts.rate : 1000;
  const prefix = opts.prefix ?? `g${seed}`;
  const lateDelayMs = opts.lateDelayMs ?? 10_000;
  const rng = new Rng(seed);
  const spanMs = Math.max(5_000, Math.round((opts.bids / rate) * 1000));
  const fractions = { ...DEFAULT_FRACTIONS, ...opts.fractions };

  // --- how many of each kind
  const counts = Object.fromEntries(BID_KINDS.map((k) => [k, 0])) as Record<BidKind, number>;
  let special = 0;
  for (const k of Object.keys(DEFAULT_FRACTIONS) as SpecialKind[]) {
    counts[k] = Math.floor(opts.bids * Math.max(0, fractions[k] ?? 0));
    special += counts[k];
  }
  if (special > opts.bids) {
    for (const k of Object.keys(DEFAULT_FRACTIONS) as SpecialKind[]) counts[k] = 0;
    special = 0;
  }
  counts.normal = opts.bids - special;

  // --- users
  const nUsers = opts.users ?? Math.max(10, Math.ceil(opts.auctions * 1.5), Math.ceil(opts.bids / 4));
  const users: UserEvent[] = [];
  const countryWeights = COUNTRIES.map(([c, , w]) => [c, w] as const);
  const newUser = (id: string, createdMs: number, country: string): UserEvent => {
    const u: UserEvent = {
      schema: SCHEMA.user,
      user_id: id,
      created_at: iso(createdMs),
      country,
      rating: Math.round(rng.uniform(3, 5) * 10) / 10,
    };
    users.push(u);
    return u;
  };
  for (let i = 0; i < nUsers; i++) {
    const young = rng.chance(0.08);
    const age = young ? rng.uniform(0.1, 6) * DAY : rng.uniform(30, 1500) * DAY;
    newUser(userId(prefix, i), Math.round(t0 - age), rng.weighted(countryWeights));
  }
  const nSellers = Math.max(1, Math.floor(nUsers * 0.2));
  const sellers = users.slice(0, nSellers);
  const bidders = users.length > nSellers ? users.slice(nSellers) : users;

  // --- auctions
  const auctions: AuctionEvent[] = [];
  const futureStart = counts.not_started > 0 && opts.auctions >= 2;
  const nFuture = futureStart ? Math.max(1, Math.ceil(opts.auctions * 0.05)) : 0;
  const categoryWeights = CATEGORIES.map((c) => [c, c.weight] as const);
  for (let i = 0; i < opts.auctions; i++) {
    const seller = rng.pick(sellers);
    const cat = rng.weighted(categoryWeights);
    const { currency, factor } = CURRENCY_OF.get(seller.country)!;
    const start = nice(rng.logUniform(cat.min, cat.max) * factor);
    const future = i >= opts.auctions - nFuture;
    const startsMs = future
      ? t0 + Math.round(rng.uniform(0.2, 0.4) * spanMs)
      : t0 - Math.round(rng.uniform(0, 120)) * 1000;
    const open = !future && rng.chance(opts.openFraction ?? 0);
    let endsMs = open ? t0 + spanMs + DAY : t0 + Math.round(rng.uniform(0.4, 1) * spanMs);
    if (endsMs < startsMs + 2000) endsMs = startsMs + 2000 + Math.round(rng.uniform(0, 0.3) * spanMs);
    const soft = rng.chance(0.6) ? rng.pick([5, 10]) : null;
    const item = rng.pick(ITEMS[cat.name]!);
    const a: AuctionEvent = {
      schema: SCHEMA.auction,
      auction_id: `${prefix}-a-${i + 1}`,
      item_id: `${prefix}-i-${i + 1}`,
      seller_id: seller.user_id,
      title: `${rng.pick(ADJECTIVES)} ${item.toLowerCase()}`,
      category: cat.name,
      currency,
      start_price: start,
      min_increment: increment(start),
      starts_at: iso(startsMs),
      ends_at: iso(endsMs),
    };
    if (rng.chance(0.3)) a.reserve_price = nice(start * rng.uniform(1.5, 4));
    if (soft !== null) a.soft_close_seconds = soft;
    auctions.push(a);
  }
  const startOf = auctions.map((a) => Date.parse(a.starts_at));
  const endOf = auctions.map((a) => Date.parse(a.ends_at));
  const current = auctions.map((_, i) => i).filter((i) => startOf[i]! <= t0 + spanMs * 0.1);
  const pool = current.length > 0 ? current : auctions.map((_, i) => i);

  // Popularity: a few auctions draw most bids (Zipf-like), sampled by binary search.
  const order = [...pool];
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const cumulative: number[] = [];
  let acc = 0;
  for (let r = 0; r < order.length; r++) {
    acc += 1 / (r + 1) ** 0.8;
    cumulative.push(acc);
  }
  const popular = (): number => {
    const x = rng.next() * acc;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return order[lo]!;
  };
  /** Bid time within the auction's life, denser towards the end (bursts near the close). */
  const lifeTime = (a: number): number => {
    const from = Math.max(startOf[a]!, t0);
    const to = endOf[a]! - 50;
    if (to <= from) return from;
    const u = 1 - (1 - rng.next()) ** 2.5;
    return Math.round(from + (Math.max(from, Math.min(to, t0 + spanMs)) - from) * u);
  };
  const latency = () => rng.int(5, 150);
  const bidderFor = (a: number): string => {
    for (let k = 0; k < 5; k++) {
      const b = rng.pick(bidders).user_id;
      if (b !== auctions[a]!.seller_id) return b;
    }
    return `${prefix}-u-guest`;
  };

  // --- fraud actors
  const rings: { members: string[]; sellerId: string }[] = [];
  const needRings = counts.shill + counts.burst > 0;
  const nRings = needRings ? Math.max(1, Math.min(5, Math.ceil(nUsers / 200))) : 0;
  for (let r = 0; r < nRings; r++) {
    const country = rng.weighted(countryWeights);
    const base = t0 - rng.uniform(1, 3) * DAY;
    const members = [1, 2, 3].map(
      (m) =>
        newUser(`${prefix}-ring${r + 1}-${m}`, Math.round(base + rng.uniform(0, 30) * 60_000), country)
          .user_id,
    );
    rings.push({ members, sellerId: auctions[rng.pick(pool)]!.seller_id });
  }
  const nBots = counts.velocity > 0 ? Math.max(1, Math.ceil(counts.velocity / 20)) : 0;
  const bots: string[] = [];
  for (let b = 0; b < nBots; b++) {
    bots.push(newUser(`${prefix}-bot-${b + 1}`, Math.round(t0 - rng.uniform(0.1, 2) * DAY), "US").user_id);
  }

  // --- intents (loop bounds are fixed here: fallbacks move counts between kinds)
  const want = { ...counts };
  const intents: Intent[] = [];
  const add = (kind: BidKind, a: number, bidder: string, placedMs: number, sendAtMs?: number) => {
    intents.push({ kind, auction: a, bidder, placedMs, sendAtMs: sendAtMs ?? placedMs + latency() });
  };
  for (let i = 0; i < want.normal; i++) {
    const a = popular();
    add("normal", a, bidderFor(a), lifeTime(a));
  }
  const fallback = (kind: BidKind): void => {
    // no suitable auction: still produce a record (counted), as a normal bid
    const a = popular();
    counts[kind] -= 1;
    counts.normal += 1;
    add("normal", a, bidderFor(a), lifeTime(a));
  };
  for (let i = 0; i < want.snipe; i++) {
    const a = popular();
    const placed = endOf[a]! - rng.int(200, 3000);
    if (placed <= Math.max(startOf[a]!, t0)) fallback("snipe");
    else add("snipe", a, bidderFor(a), placed);
  }
  // velocity: each bot fires ~20 bids within 30 s (less on short schedules) on auctions open at that moment
  const burstMs = Math.min(30_000, spanMs * 0.3);
  for (let i = 0; i < want.velocity; ) {
    const bot = bots[Math.floor(i / 20) % bots.length]!;
    const burstStart = t0 + Math.round(rng.uniform(0, 0.7) * spanMs);
    const n = Math.min(20, want.velocity - i);
    for (let k = 0; k < n; k++, i++) {
      const t = burstStart + Math.round((k * burstMs) / 20) + rng.int(0, 100);
      const open = (a: number) => startOf[a]! <= t && endOf[a]! > t + 200;
      let a = popular();
      for (let tries = 0; tries < 20 && !open(a); tries++) a = popular();
      if (!open(a) || auctions[a]!.seller_id === bot) fallback("velocity");
      else add("velocity", a, bot, t);
    }
  }
  const ownCache = new Map<string, number[]>();
  const sellerAuctions = (sellerId: string): number[] => {
    let own = ownCache.get(sellerId);
    if (!own) {
      own = pool.filter(
        (a) => auctions[a]!.seller_id === sellerId && endOf[a]! > Math.max(startOf[a]!, t0) + 1000,
      );
      ownCache.set(sellerId, own);
    }
    return own;
  };
  for (let i = 0; i < want.shill; i++) {
    const ring = rings[i % rings.length]!;
    const own = sellerAuctions(ring.sellerId);
    if (own.length === 0) {
      fallback("shill");
      continue;
    }
    const a = rng.pick(own);
    add("shill", a, rng.pick(ring.members), lifeTime(a));
  }
  for (let i = 0; i < want.burst; i++) {
    const ring = rings[i % rings.length]!;
    const own = sellerAuctions(ring.sellerId);
    const a = own.length > 0 ? rng.pick(own) : popular();
    const placed = endOf[a]! - rng.int(300, 8000);
    if (placed <= Math.max(startOf[a]!, t0)) fallback("burst");
    else add("burst", a, ring.members[i % 3]!, placed);
  }
  const noSoft = pool.filter((a) => auctions[a]!.soft_close_seconds == null && endOf[a]! < t0 + spanMs * 2);
  for (let i = 0; i < want.late; i++) {
    if (noSoft.length === 0) {
      fallback("late");
      continue;
    }
    const a = rng.pick(noSoft);
    const placed = Math.max(t0, endOf[a]! - rng.int(500, 20_000));
    add("late", a, bidderFor(a), placed, endOf[a]! + lateDelayMs + rng.int(0, 2000));
  }
  for (let i = 0; i < want.wrong_currency; i++) {
    const a = popular();
    add("wrong_currency", a, bidderFor(a), lifeTime(a));
  }
  for (let i = 0; i < want.self_bid; i++) {
    const a = popular();
    add("self_bid", a, auctions[a]!.seller_id, lifeTime(a));
  }
  const future = auctions.map((_, i) => i).filter((i) => startOf[i]! > t0 + 1000);
  for (let i = 0; i < want.not_started; i++) {
    if (future.length === 0) {
      fallback("not_started");
      continue;
    }
    const a = rng.pick(future);
    add("not_started", a, bidderFor(a), Math.round(rng.uniform(t0, startOf[a]! - 500)));
  }
  for (let i = 0; i < want.unknown_auction; i++) {
    const a = popular();
    const t = lifeTime(a);
    intents.push({
      kind: "unknown_auction",
      auction: a,
      bidder: bidderFor(a),
      placedMs: t,
      sendAtMs: t + latency(),
      auctionId: `${prefix}-a-missing-${i + 1}`,
    });
  }
  for (let i = 0; i < want.malformed; i++) {
    const a = popular();
    add("malformed", a, bidderFor(a), lifeTime(a));
  }

  // --- amounts: per auction in time order along a rising price path
  const byAuction = new Map<number, Intent[]>();
  for (const it of intents) {
    const l = byAuction.get(it.auction);
    if (l) l.push(it);
    else byAuction.set(it.auction, [it]);
  }
  for (const [a, list] of byAuction) {
    const auc = auctions[a]!;
    list.sort((x, y) => x.placedMs - y.placedMs);
    let level = 0;
    for (const it of list) {
      const inc = auc.min_increment;
      const next = level === 0 ? nice(auc.start_price * rng.uniform(1, 1.15)) : level + inc * rng.int(1, 4);
      if (it.kind === "late") {
        it.amount = next + inc * 10;
        continue;
      }
      if (it.kind === "normal" && level > 0 && rng.chance(0.08)) {
        it.amount = level + Math.floor(inc / 2) || level; // below current + increment: below_minimum
        continue;
      }
      it.amount = Math.max(next, auc.start_price);
      // bots sometimes jump far above the price (amount outlier on top of velocity)
      if (it.kind === "velocity" && rng.chance(0.25))
        it.amount = nice(Math.max(next, auc.start_price) * rng.uniform(3, 5));
      const advances = ["normal", "snipe", "velocity", "shill", "burst"].includes(it.kind);
      if (advances) level = it.amount;
    }
  }

  // --- records
  interface Draft {
    sendAtMs: number;
    key: string;
    raw: string;
    kind: BidKind;
    malformed: boolean;
    malformation?: string;
    bid?: BidEvent;
    seq: number;
  }
  const drafts: Draft[] = [];
  let bidSeq = 0;
  const MALFORMATIONS = [
    "fractional_cents",
    "negative_amount",
    "zero_amount",
    "amount_as_string",
    "lowercase_currency",
    "unknown_currency",
    "missing_bidder_id",
    "future_placed_at",
    "invalid_placed_at",
    "invalid_json",
    "auction_id_not_a_string",
    "not_an_object",
  ] as const;
  for (const it of intents) {
    bidSeq += 1;
    const auc = auctions[it.auction]!;
    let currency = auc.currency;
    if (it.kind === "wrong_currency") currency = auc.currency === "USD" ? "EUR" : "USD";
    const bid: BidEvent = {
      schema: SCHEMA.bid,
      bid_id: `${prefix}-b-${bidSeq}`,
      auction_id: it.auctionId ?? auc.auction_id,
      bidder_id: it.bidder,
      amount: it.amount ?? auc.start_price,
      currency,
      placed_at: iso(it.placedMs),
      received_at: iso(it.sendAtMs),
      source: rng.weighted([
        ["api", 80],
        ["pos", 8],
        ["iot", 7],
        ["batch", 5],
      ] as const),
    };
    if (it.kind !== "malformed") {
      drafts.push({
        sendAtMs: it.sendAtMs,
        key: bid.auction_id,
        raw: JSON.stringify(bid),
        kind: it.kind,
        malformed: false,
        bid,
        seq: drafts.length,
      });
      continue;
    }
    const m = MALFORMATIONS[rng.int(0, MALFORMATIONS.length - 1)]!;
    const broken: Record<string, unknown> = { ...bid };
    let raw: string | undefined;
    switch (m) {
      case "fractional_cents":
        broken.amount = bid.amount + 0.5;
        break;
      case "negative_amount":
        broken.amount = -bid.amount;
        break;
      case "zero_amount":
        broken.amount = 0;
        break;
      case "amount_as_string":
        broken.amount = (bid.amount / 100).toFixed(2);
        break;
      case "lowercase_currency":
        broken.currency = bid.currency.toLowerCase();
        break;
      case "unknown_currency":
        broken.currency = "ZZQ";
        break;
      case "missing_bidder_id":
        delete broken.bidder_id;
        break;
      case "future_placed_at":
        broken.placed_at = iso(it.sendAtMs + 2 * DAY);
        break;
      case "invalid_placed_at":
        broken.placed_at = "not-a-date";
        break;
      case "invalid_json": {
        const text = JSON.stringify(bid);
        raw = text.slice(0, Math.ceil(text.length * 0.6));
        break;
      }
      case "auction_id_not_a_string":
        broken.auction_id = it.auction + 1;
        break;
      case "not_an_object":
        raw = JSON.stringify([bid.bid_id, bid.amount]);
        break;
    }
    drafts.push({
      sendAtMs: it.sendAtMs,
      key: auc.auction_id,
      raw: raw ?? JSON.stringify(broken),
      kind: "malformed",
      malformed: true,
      malformation: m,
      seq: drafts.length,
    });
  }
  // duplicates: a well-formed earlier record sent again (same bid_id and content, new received_at)
  const originals = drafts.filter((d) => d.kind === "normal" && d.bid);
  for (let i = 0; i < want.duplicate; i++) {
    if (originals.length === 0) {
      counts.duplicate -= 1;
      counts.normal += 1;
      const a = popular();
      const t = lifeTime(a);
      bidSeq += 1;
      const bid: BidEvent = {
        schema: SCHEMA.bid,
        bid_id: `${prefix}-b-${bidSeq}`,
        auction_id: auctions[a]!.auction_id,
        bidder_id: bidderFor(a),
        amount: auctions[a]!.start_price,
        currency: auctions[a]!.currency,
        placed_at: iso(t),
        received_at: iso(t + 10),
        source: "api",
      };
      drafts.push({
        sendAtMs: t + 10,
        key: bid.auction_id,
        raw: JSON.stringify(bid),
        kind: "normal",
        malformed: false,
        bid,
        seq: drafts.length,
      });
      continue;
    }
    const o = rng.pick(originals);
    const sendAtMs = o.sendAtMs + rng.int(50, 3000);
    const bid: BidEvent = { ...o.bid!, received_at: iso(sendAtMs) };
    drafts.push({
      sendAtMs,
      key: bid.auction_id,
      raw: JSON.stringify(bid),
      kind: "duplicate",
      malformed: false,
      bid,
      seq: drafts.length,
    });
  }

  intents.length = 0;
  drafts.sort((x, y) => x.sendAtMs - y.sendAtMs || x.seq - y.seq);
  const bids: GeneratedBid[] = drafts.map((d, index) => {
    const g: { -readonly [K in keyof GeneratedBid]: GeneratedBid[K] } = {
      index,
      sendAtMs: d.sendAtMs,
      key: d.key,
      raw: d.raw,
      kind: d.kind,
      malformed: d.malformed,
    };
    if (d.malformation) g.malformation = d.malformation;
    if (d.bid && !opts.lean) g.bid = d.bid;
    return g;
  });
  drafts.length = 0; // release the parsed bids when `lean`
  const last = bids.length > 0 ? bids[bids.length - 1]!.sendAtMs : t0;
  return {
    seed,
    startMs: t0,
    durationMs: Math.max(0, last - t0),
    users,
    auctions,
    bids,
    counts,
    actors: { rings, bots },
  };
}
