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
import { type AuctionEvent, type BidEvent, SCHEMA, type UserEvent } from "../../api/events/types.ts";
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
const DEFAULT_FRACTIONS: Readonly<Record<SpecialKind, number>> = {
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

/**
 * What every stage reads. The stages below draw from the one random stream
 * in a fixed order (users, auctions, popularity, fraud actors, intents,
 * amounts, records, duplicates): that order is what makes a seed give the
 * same bytes, so a stage must not draw where an earlier one did not.
 */
interface Setup {
  readonly rng: Rng;
  /** The schedule's start (epoch ms). */
  readonly t0: number;
  readonly spanMs: number;
  readonly prefix: string;
  readonly lateDelayMs: number;
}

export function generateDataset(opts: GenerateOptions): Dataset {
  const s = setupOf(opts);
  const counts = kindCounts(opts.bids, { ...DEFAULT_FRACTIONS, ...opts.fractions });
  const nUsers = opts.users ?? Math.max(10, Math.ceil(opts.auctions * 1.5), Math.ceil(opts.bids / 4));
  const users = ordinaryUsers(s, nUsers);
  const nSellers = Math.max(1, Math.floor(nUsers * 0.2));
  const sellers = users.slice(0, nSellers);
  const bidders = users.length > nSellers ? users.slice(nSellers) : users;
  const auctions = generateAuctions(s, opts, counts, sellers);
  const market = new Market(s, auctions, bidders);
  const actors = fraudActors(s, counts, nUsers, users, market);

  // loop bounds are fixed here: fallbacks move counts between kinds
  const want = { ...counts };
  const intents = new IntentPlanner(s, market, counts).plan(want, actors);
  assignAmounts(s.rng, intents, auctions);
  const drafts = draftRecords(s, intents, auctions);
  addDuplicates(s, market, drafts, want.duplicate, counts, intents.length);
  intents.length = 0;
  const bids = toGeneratedBids(drafts, opts.lean === true);
  drafts.length = 0; // release the parsed bids when `lean`
  const last = bids.length > 0 ? bids[bids.length - 1]!.sendAtMs : s.t0;
  return {
    seed: opts.seed,
    startMs: s.t0,
    durationMs: Math.max(0, last - s.t0),
    users,
    auctions,
    bids,
    counts,
    actors,
  };
}

/** Validates the options and fills in their defaults; the random stream starts here. */
function setupOf(opts: GenerateOptions): Setup {
  if (!Number.isInteger(opts.auctions) || opts.auctions < 1)
    throw new RangeError("auctions must be an integer >= 1");
  if (!Number.isInteger(opts.bids) || opts.bids < 0) throw new RangeError("bids must be an integer >= 0");
  const rate = opts.rate && opts.rate > 0 ? opts.rate : 1000;
  return {
    rng: new Rng(opts.seed),
    t0: opts.startMs,
    spanMs: Math.max(5_000, Math.round((opts.bids / rate) * 1000)),
    prefix: opts.prefix ?? `g${opts.seed}`,
    lateDelayMs: opts.lateDelayMs ?? 10_000,
  };
}

/** How many records of each kind: the special kinds by share, the rest normal (all normal when the shares add up to more than every record). */
function kindCounts(bids: number, fractions: Partial<Record<SpecialKind, number>>): Record<BidKind, number> {
  const counts = Object.fromEntries(BID_KINDS.map((k) => [k, 0])) as Record<BidKind, number>;
  let special = 0;
  for (const k of Object.keys(DEFAULT_FRACTIONS) as SpecialKind[]) {
    counts[k] = Math.floor(bids * Math.max(0, fractions[k] ?? 0));
    special += counts[k];
  }
  if (special > bids) {
    for (const k of Object.keys(DEFAULT_FRACTIONS) as SpecialKind[]) counts[k] = 0;
    special = 0;
  }
  counts.normal = bids - special;
  return counts;
}

const COUNTRY_WEIGHTS = COUNTRIES.map(([c, , w]) => [c, w] as const);

/** A user with a random rating (drawn after the caller's draws for the arguments). */
function newUser(rng: Rng, id: string, createdMs: number, country: string): UserEvent {
  return {
    schema: SCHEMA.user,
    user_id: id,
    created_at: iso(createdMs),
    country,
    rating: Math.round(rng.uniform(3, 5) * 10) / 10,
  };
}

/** The marketplace's own users: mostly accounts months or years old, a few young ones. */
function ordinaryUsers(s: Setup, n: number): UserEvent[] {
  const { rng } = s;
  const users: UserEvent[] = [];
  for (let i = 0; i < n; i++) {
    const young = rng.chance(0.08);
    const age = young ? rng.uniform(0.1, 6) * DAY : rng.uniform(30, 1500) * DAY;
    users.push(newUser(rng, userId(s.prefix, i), Math.round(s.t0 - age), rng.weighted(COUNTRY_WEIGHTS)));
  }
  return users;
}

/**
 * The auctions, most started before the schedule and ending within it; with
 * `not_started` bids, the last 5 % start during the schedule.
 */
function generateAuctions(
  s: Setup,
  opts: GenerateOptions,
  counts: Readonly<Record<BidKind, number>>,
  sellers: readonly UserEvent[],
): AuctionEvent[] {
  const { rng, t0, spanMs, prefix } = s;
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
  return auctions;
}

/** Which auction a bid goes to, when, and by whom: the auctions (by index) as bidders see them. */
class Market {
  readonly startOf: readonly number[];
  readonly endOf: readonly number[];
  /** The auctions bids go to: those started by the first tenth of the schedule (all, when none is). */
  readonly pool: readonly number[];
  /** The pool in popularity order, and the running sum of its weights. */
  private readonly order: number[];
  private readonly cumulative: number[] = [];
  private readonly total: number;
  private readonly s: Setup;
  readonly auctions: readonly AuctionEvent[];
  private readonly bidders: readonly UserEvent[];

  constructor(s: Setup, auctions: readonly AuctionEvent[], bidders: readonly UserEvent[]) {
    this.s = s;
    this.auctions = auctions;
    this.bidders = bidders;
    const { t0, spanMs } = s;
    this.startOf = auctions.map((a) => Date.parse(a.starts_at));
    this.endOf = auctions.map((a) => Date.parse(a.ends_at));
    const current = auctions.map((_, i) => i).filter((i) => this.startOf[i]! <= t0 + spanMs * 0.1);
    this.pool = current.length > 0 ? current : auctions.map((_, i) => i);
    // Popularity: a few auctions draw most bids (Zipf-like), sampled by binary search.
    const order = [...this.pool];
    for (let i = order.length - 1; i > 0; i--) {
      const j = s.rng.int(0, i);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
    this.order = order;
    let acc = 0;
    for (let r = 0; r < order.length; r++) {
      acc += 1 / (r + 1) ** 0.8;
      this.cumulative.push(acc);
    }
    this.total = acc;
  }

  /** An auction of the pool, by popularity. */
  popular(): number {
    const x = this.s.rng.next() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return this.order[lo]!;
  }

  /** Bid time within the auction's life, denser towards the end (bursts near the close). */
  lifeTime(a: number): number {
    const { t0, spanMs } = this.s;
    const from = Math.max(this.startOf[a]!, t0);
    const to = this.endOf[a]! - 50;
    if (to <= from) return from;
    const u = 1 - (1 - this.s.rng.next()) ** 2.5;
    return Math.round(from + (Math.max(from, Math.min(to, t0 + spanMs)) - from) * u);
  }

  /** Client latency: placed_at to received_at. */
  latency(): number {
    return this.s.rng.int(5, 150);
  }

  /** A bidder other than the auction's seller (a guest after five tries). */
  bidderFor(a: number): string {
    for (let k = 0; k < 5; k++) {
      const b = this.s.rng.pick(this.bidders).user_id;
      if (b !== this.auctions[a]!.seller_id) return b;
    }
    return `${this.s.prefix}-u-guest`;
  }
}

type Actors = Dataset["actors"];

/**
 * Shill rings (three young accounts bidding up one seller's auctions), made
 * when there are shill or burst bids, and velocity bots (one per 20 velocity
 * bids); they are added to `users`.
 */
function fraudActors(
  s: Setup,
  counts: Readonly<Record<BidKind, number>>,
  nUsers: number,
  users: UserEvent[],
  market: Market,
): Actors {
  const { rng, t0, prefix } = s;
  const rings: { members: string[]; sellerId: string }[] = [];
  const needRings = counts.shill + counts.burst > 0;
  const nRings = needRings ? Math.max(1, Math.min(5, Math.ceil(nUsers / 200))) : 0;
  const join = (u: UserEvent): string => {
    users.push(u);
    return u.user_id;
  };
  for (let r = 0; r < nRings; r++) {
    const country = rng.weighted(COUNTRY_WEIGHTS);
    const base = t0 - rng.uniform(1, 3) * DAY;
    const members = [1, 2, 3].map((m) =>
      join(
        newUser(rng, `${prefix}-ring${r + 1}-${m}`, Math.round(base + rng.uniform(0, 30) * 60_000), country),
      ),
    );
    rings.push({ members, sellerId: market.auctions[rng.pick(market.pool)]!.seller_id });
  }
  const nBots = counts.velocity > 0 ? Math.max(1, Math.ceil(counts.velocity / 20)) : 0;
  const bots: string[] = [];
  for (let b = 0; b < nBots; b++) {
    bots.push(join(newUser(rng, `${prefix}-bot-${b + 1}`, Math.round(t0 - rng.uniform(0.1, 2) * DAY), "US")));
  }
  return { rings, bots };
}

/**
 * Plans every bid record: kind, auction, bidder and times. A kind that finds
 * no suitable auction still yields its record, as a normal bid (and moves
 * one from its count to `normal`).
 */
class IntentPlanner {
  private readonly intents: Intent[] = [];
  private readonly ownCache = new Map<string, number[]>();
  private readonly s: Setup;
  private readonly market: Market;
  /** Moved from a kind to `normal` on each fallback. */
  private readonly counts: Record<BidKind, number>;

  constructor(s: Setup, market: Market, counts: Record<BidKind, number>) {
    this.s = s;
    this.market = market;
    this.counts = counts;
  }

  /** All intents, kind by kind in this order (the order the random stream is drawn in). */
  plan(want: Readonly<Record<BidKind, number>>, actors: Actors): Intent[] {
    const m = this.market;
    this.each(want.normal, (a) => this.add("normal", a, m.bidderFor(a), m.lifeTime(a)));
    this.snipes(want.snipe);
    this.velocity(want.velocity, actors.bots);
    this.shill(want.shill, actors.rings);
    this.bursts(want.burst, actors.rings);
    this.late(want.late);
    this.each(want.wrong_currency, (a) => this.add("wrong_currency", a, m.bidderFor(a), m.lifeTime(a)));
    this.each(want.self_bid, (a) => this.add("self_bid", a, m.auctions[a]!.seller_id, m.lifeTime(a)));
    this.notStarted(want.not_started);
    this.unknownAuctions(want.unknown_auction);
    this.each(want.malformed, (a) => this.add("malformed", a, m.bidderFor(a), m.lifeTime(a)));
    return this.intents;
  }

  /** `n` intents on popular auctions. */
  private each(n: number, plan: (a: number) => void): void {
    for (let i = 0; i < n; i++) plan(this.market.popular());
  }

  private add(kind: BidKind, a: number, bidder: string, placedMs: number, sendAtMs?: number): void {
    this.intents.push({
      kind,
      auction: a,
      bidder,
      placedMs,
      sendAtMs: sendAtMs ?? placedMs + this.market.latency(),
    });
  }

  /** No suitable auction: still produce a record (counted), as a normal bid. */
  private fallback(kind: BidKind): void {
    const m = this.market;
    const a = m.popular();
    this.counts[kind] -= 1;
    this.counts.normal += 1;
    this.add("normal", a, m.bidderFor(a), m.lifeTime(a));
  }

  /** The earliest a bid on `a` can be placed within the schedule. */
  private opensAt(a: number): number {
    return Math.max(this.market.startOf[a]!, this.s.t0);
  }

  /** Bids in the last seconds before the close. */
  private snipes(n: number): void {
    const { rng } = this.s;
    for (let i = 0; i < n; i++) {
      const a = this.market.popular();
      const placed = this.market.endOf[a]! - rng.int(200, 3000);
      if (placed <= this.opensAt(a)) this.fallback("snipe");
      else this.add("snipe", a, this.market.bidderFor(a), placed);
    }
  }

  /** Each bot fires ~20 bids within 30 s (less on short schedules) on auctions open at that moment. */
  private velocity(n: number, bots: readonly string[]): void {
    const { rng, t0, spanMs } = this.s;
    const m = this.market;
    const burstMs = Math.min(30_000, spanMs * 0.3);
    for (let i = 0; i < n; ) {
      const bot = bots[Math.floor(i / 20) % bots.length]!;
      const burstStart = t0 + Math.round(rng.uniform(0, 0.7) * spanMs);
      const k0 = Math.min(20, n - i);
      for (let k = 0; k < k0; k++, i++) {
        const t = burstStart + Math.round((k * burstMs) / 20) + rng.int(0, 100);
        const open = (a: number) => m.startOf[a]! <= t && m.endOf[a]! > t + 200;
        let a = m.popular();
        for (let tries = 0; tries < 20 && !open(a); tries++) a = m.popular();
        if (!open(a) || m.auctions[a]!.seller_id === bot) this.fallback("velocity");
        else this.add("velocity", a, bot, t);
      }
    }
  }

  /** The pool's auctions of a seller that stay open at least a second within the schedule. */
  private sellerAuctions(sellerId: string): number[] {
    const m = this.market;
    let own = this.ownCache.get(sellerId);
    if (!own) {
      own = m.pool.filter(
        (a) => m.auctions[a]!.seller_id === sellerId && m.endOf[a]! > this.opensAt(a) + 1000,
      );
      this.ownCache.set(sellerId, own);
    }
    return own;
  }

  /** Ring members bidding on their seller's auctions. */
  private shill(n: number, rings: Actors["rings"]): void {
    const { rng } = this.s;
    for (let i = 0; i < n; i++) {
      const ring = rings[i % rings.length]!;
      const own = this.sellerAuctions(ring.sellerId);
      if (own.length === 0) {
        this.fallback("shill");
        continue;
      }
      const a = rng.pick(own);
      this.add("shill", a, rng.pick(ring.members), this.market.lifeTime(a));
    }
  }

  /** Ring members taking turns in the last seconds (their seller's auctions, else popular ones). */
  private bursts(n: number, rings: Actors["rings"]): void {
    const { rng } = this.s;
    for (let i = 0; i < n; i++) {
      const ring = rings[i % rings.length]!;
      const own = this.sellerAuctions(ring.sellerId);
      const a = own.length > 0 ? rng.pick(own) : this.market.popular();
      const placed = this.market.endOf[a]! - rng.int(300, 8000);
      if (placed <= this.opensAt(a)) this.fallback("burst");
      else this.add("burst", a, ring.members[i % 3]!, placed);
    }
  }

  /** Placed before a hard close, received `lateDelayMs` after it. */
  private late(n: number): void {
    const { rng, t0, spanMs, lateDelayMs } = this.s;
    const m = this.market;
    const noSoft = m.pool.filter(
      (a) => m.auctions[a]!.soft_close_seconds == null && m.endOf[a]! < t0 + spanMs * 2,
    );
    for (let i = 0; i < n; i++) {
      if (noSoft.length === 0) {
        this.fallback("late");
        continue;
      }
      const a = rng.pick(noSoft);
      const placed = Math.max(t0, m.endOf[a]! - rng.int(500, 20_000));
      this.add("late", a, m.bidderFor(a), placed, m.endOf[a]! + lateDelayMs + rng.int(0, 2000));
    }
  }

  /** Bids on auctions that start during the schedule, placed before they start. */
  private notStarted(n: number): void {
    const { rng, t0 } = this.s;
    const m = this.market;
    const future = m.auctions.map((_, i) => i).filter((i) => m.startOf[i]! > t0 + 1000);
    for (let i = 0; i < n; i++) {
      if (future.length === 0) {
        this.fallback("not_started");
        continue;
      }
      const a = rng.pick(future);
      this.add("not_started", a, m.bidderFor(a), Math.round(rng.uniform(t0, m.startOf[a]! - 500)));
    }
  }

  /** Bids shaped like one on a popular auction, naming an auction id nobody created. */
  private unknownAuctions(n: number): void {
    const m = this.market;
    for (let i = 0; i < n; i++) {
      const a = m.popular();
      const t = m.lifeTime(a);
      this.intents.push({
        kind: "unknown_auction",
        auction: a,
        bidder: m.bidderFor(a),
        placedMs: t,
        sendAtMs: t + m.latency(),
        auctionId: `${this.s.prefix}-a-missing-${i + 1}`,
      });
    }
  }
}

/** The kinds whose amount moves an auction's price path up. */
const ADVANCING: readonly BidKind[] = ["normal", "snipe", "velocity", "shill", "burst"];

/** Amounts: per auction in time order along a rising price path. */
function assignAmounts(rng: Rng, intents: readonly Intent[], auctions: readonly AuctionEvent[]): void {
  const byAuction = new Map<number, Intent[]>();
  for (const it of intents) {
    const l = byAuction.get(it.auction);
    if (l) l.push(it);
    else byAuction.set(it.auction, [it]);
  }
  for (const [a, list] of byAuction) {
    list.sort((x, y) => x.placedMs - y.placedMs);
    pricePath(rng, auctions[a]!, list);
  }
}

/** One auction's intents (in time order): each advancing bid raises the level by 1-4 increments. */
function pricePath(rng: Rng, auc: AuctionEvent, list: readonly Intent[]): void {
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
    if (ADVANCING.includes(it.kind)) level = it.amount;
  }
}

/** A record before it is put in send order (`seq` breaks ties in the order it was made). */
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
type Malformation = (typeof MALFORMATIONS)[number];

/** Appends a well-formed record of `bid`, keyed by its auction. */
function pushBid(drafts: Draft[], sendAtMs: number, kind: BidKind, bid: BidEvent): void {
  drafts.push({
    sendAtMs,
    key: bid.auction_id,
    raw: JSON.stringify(bid),
    kind,
    malformed: false,
    bid,
    seq: drafts.length,
  });
}

/** One record per intent, in intent order (bid ids count up in it); malformed intents get a broken record. */
function draftRecords(s: Setup, intents: readonly Intent[], auctions: readonly AuctionEvent[]): Draft[] {
  const { rng } = s;
  const drafts: Draft[] = [];
  let bidSeq = 0;
  for (const it of intents) {
    bidSeq += 1;
    const auc = auctions[it.auction]!;
    let currency = auc.currency;
    if (it.kind === "wrong_currency") currency = auc.currency === "USD" ? "EUR" : "USD";
    const bid: BidEvent = {
      schema: SCHEMA.bid,
      bid_id: `${s.prefix}-b-${bidSeq}`,
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
      pushBid(drafts, it.sendAtMs, it.kind, bid);
      continue;
    }
    const m = MALFORMATIONS[rng.int(0, MALFORMATIONS.length - 1)]!;
    drafts.push({
      sendAtMs: it.sendAtMs,
      key: auc.auction_id,
      raw: malformedRaw(m, bid, it),
      kind: "malformed",
      malformed: true,
      malformation: m,
      seq: drafts.length,
    });
  }
  return drafts;
}

/** The record value of `bid` broken as `m` says (no random draws: the malformation is chosen by the caller). */
function malformedRaw(m: Malformation, bid: BidEvent, it: Intent): string {
  const broken: Record<string, unknown> = { ...bid };
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
      return text.slice(0, Math.ceil(text.length * 0.6));
    }
    case "auction_id_not_a_string":
      broken.auction_id = it.auction + 1;
      break;
    case "not_an_object":
      return JSON.stringify([bid.bid_id, bid.amount]);
  }
  return JSON.stringify(broken);
}

/**
 * Duplicates: a well-formed earlier normal record sent again (same bid_id
 * and content, new received_at). With no normal record to repeat, a fresh
 * normal bid instead (counted as normal), its id after the last one drafted.
 */
function addDuplicates(
  s: Setup,
  market: Market,
  drafts: Draft[],
  n: number,
  counts: Record<BidKind, number>,
  lastSeq: number,
): void {
  const { rng, prefix } = s;
  let bidSeq = lastSeq;
  const originals = drafts.filter((d) => d.kind === "normal" && d.bid);
  for (let i = 0; i < n; i++) {
    if (originals.length === 0) {
      counts.duplicate -= 1;
      counts.normal += 1;
      const a = market.popular();
      const t = market.lifeTime(a);
      bidSeq += 1;
      const auc = market.auctions[a]!;
      pushBid(drafts, t + 10, "normal", {
        schema: SCHEMA.bid,
        bid_id: `${prefix}-b-${bidSeq}`,
        auction_id: auc.auction_id,
        bidder_id: market.bidderFor(a),
        amount: auc.start_price,
        currency: auc.currency,
        placed_at: iso(t),
        received_at: iso(t + 10),
        source: "api",
      });
      continue;
    }
    const o = rng.pick(originals);
    const sendAtMs = o.sendAtMs + rng.int(50, 3000);
    pushBid(drafts, sendAtMs, "duplicate", { ...o.bid!, received_at: iso(sendAtMs) });
  }
}

/** The drafts in send order, as the dataset's records (`lean` leaves out the parsed bids). */
function toGeneratedBids(drafts: Draft[], lean: boolean): GeneratedBid[] {
  drafts.sort((x, y) => x.sendAtMs - y.sendAtMs || x.seq - y.seq);
  return drafts.map((d, index) => {
    const g: { -readonly [K in keyof GeneratedBid]: GeneratedBid[K] } = {
      index,
      sendAtMs: d.sendAtMs,
      key: d.key,
      raw: d.raw,
      kind: d.kind,
      malformed: d.malformed,
    };
    if (d.malformation) g.malformation = d.malformation;
    if (d.bid && !lean) g.bid = d.bid;
    return g;
  });
}
