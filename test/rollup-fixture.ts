/**
 * A small, hand-checked silver dataset for the rollup's tests (unit tests with
 * DuckDB alone, integration tests on PostgreSQL). The expected gold values in
 * EXPECTED were computed by hand from the definitions in processors/rollup/sql/*.sql; see the
 * comments next to each number.
 *
 * Day under test: 2026-03-10 (UTC).
 * A1 electronics EUR, started the day before, reserve 5000, sold to U1 for 6000.
 * A2 electronics EUR, no reserve, sold to U2 for 2600.
 * A3 art EUR, reserve 10000 not met (best bid 900 by U1).
 * A4 art EUR, no bids, closed without winner.
 * A5 books EUR, still running (ends the next day).
 * A6 art USD, sold to U4 (not a registered user) for 1500.
 */
export const DAY = "2026-03-10";

export interface AuctionRow {
  auction_id: string;
  item_id: string;
  seller_id: string;
  title: string;
  category: string;
  currency: string;
  start_price: number;
  reserve_price: number | null;
  min_increment: number;
  starts_at: string;
  ends_at: string;
}
export interface UserRow {
  user_id: string;
  created_at: string;
  country: string | null;
  rating: number | null;
}
export interface BidRow {
  bid_id: string;
  auction_id: string;
  bidder_id: string;
  amount: number;
  currency: string;
  placed_at: string;
  received_at: string;
  fraud_score: number | null;
}
export interface TransactionRow {
  auction_id: string;
  winner_id: string | null;
  final_price: number | null;
  currency: string;
  reserve_met: boolean;
  closed_at: string;
}
export interface FraudAlertRow {
  bid_id: string;
  auction_id: string;
  bidder_id: string;
  score: number;
  signals: unknown;
  created_at: string;
}
export interface RejectionRow {
  bid_id: string | null;
  auction_id: string | null;
  bidder_id: string | null;
  reason: string;
  detail: string | null;
  placed_at: string | null;
  received_at: string | null;
}

export interface SilverFixture {
  auctions: AuctionRow[];
  users: UserRow[];
  bids: BidRow[];
  transactions: TransactionRow[];
  fraud_alerts: FraudAlertRow[];
  bid_rejections: RejectionRow[];
}

const a = (
  id: string,
  category: string,
  currency: string,
  seller: string,
  start: number,
  reserve: number | null,
  starts: string,
  ends: string,
): AuctionRow => ({
  auction_id: id,
  item_id: `item-${id}`,
  seller_id: seller,
  title: `Lot ${id}`,
  category,
  currency,
  start_price: start,
  reserve_price: reserve,
  min_increment: 100,
  starts_at: starts,
  ends_at: ends,
});

const b = (
  id: string,
  auction: string,
  bidder: string,
  amount: number,
  at: string,
  currency = "EUR",
): BidRow => ({
  bid_id: id,
  auction_id: auction,
  bidder_id: bidder,
  amount,
  currency,
  placed_at: at,
  received_at: new Date(new Date(at).getTime() + 50).toISOString(),
  fraud_score: 0.1,
});

/** The dataset; `prefix` makes ids unique when several copies share a database. */
export function fixture(prefix = ""): SilverFixture {
  const p = (s: string) => `${prefix}${s}`;
  return {
    auctions: [
      a(p("A1"), "electronics", "EUR", p("S1"), 1000, 5000, "2026-03-09T10:00:00Z", "2026-03-10T12:00:00Z"),
      a(p("A2"), "electronics", "EUR", p("S2"), 2000, null, "2026-03-10T08:00:00Z", "2026-03-10T20:00:00Z"),
      a(p("A3"), "art", "EUR", p("S1"), 500, 10000, "2026-03-10T09:00:00Z", "2026-03-10T18:00:00Z"),
      a(p("A4"), "art", "EUR", p("S3"), 3000, null, "2026-03-10T10:00:00Z", "2026-03-10T22:00:00Z"),
      a(p("A5"), "books", "EUR", p("S2"), 700, null, "2026-03-10T11:00:00Z", "2026-03-11T11:00:00Z"),
      a(p("A6"), "art", "USD", p("S3"), 1000, null, "2026-03-10T06:00:00Z", "2026-03-10T23:00:00Z"),
    ],
    users: [
      { user_id: p("U1"), created_at: "2025-01-01T00:00:00Z", country: "DE", rating: 4.5 },
      { user_id: p("U2"), created_at: "2026-03-01T00:00:00Z", country: "FR", rating: 3 },
      { user_id: p("U3"), created_at: "2024-06-01T00:00:00Z", country: "US", rating: null },
    ],
    bids: [
      b(p("b1"), p("A1"), p("U1"), 1200, "2026-03-09T11:00:00Z"),
      b(p("b2"), p("A1"), p("U2"), 3000, "2026-03-10T09:00:00Z"),
      b(p("b3"), p("A1"), p("U1"), 6000, "2026-03-10T11:00:00Z"),
      b(p("b4"), p("A2"), p("U2"), 2000, "2026-03-10T08:30:00Z"),
      b(p("b5"), p("A2"), p("U3"), 2500, "2026-03-10T09:30:00Z"),
      b(p("b6"), p("A2"), p("U2"), 2600, "2026-03-10T19:00:00Z"),
      b(p("b7"), p("A3"), p("U3"), 600, "2026-03-10T09:10:00Z"),
      b(p("b8"), p("A3"), p("U1"), 900, "2026-03-10T10:00:00Z"),
      b(p("b9"), p("A5"), p("U3"), 700, "2026-03-10T12:00:00Z"),
      b(p("b10"), p("A6"), p("U4"), 1500, "2026-03-10T07:00:00Z", "USD"),
    ],
    transactions: [
      {
        auction_id: p("A1"),
        winner_id: p("U1"),
        final_price: 6000,
        currency: "EUR",
        reserve_met: true,
        closed_at: "2026-03-10T12:00:00Z",
      },
      {
        auction_id: p("A2"),
        winner_id: p("U2"),
        final_price: 2600,
        currency: "EUR",
        reserve_met: true,
        closed_at: "2026-03-10T20:00:00Z",
      },
      {
        auction_id: p("A3"),
        winner_id: p("U1"),
        final_price: 900,
        currency: "EUR",
        reserve_met: false,
        closed_at: "2026-03-10T18:00:00Z",
      },
      {
        auction_id: p("A4"),
        winner_id: null,
        final_price: null,
        currency: "EUR",
        reserve_met: false,
        closed_at: "2026-03-10T22:00:00Z",
      },
      {
        auction_id: p("A6"),
        winner_id: p("U4"),
        final_price: 1500,
        currency: "USD",
        reserve_met: true,
        closed_at: "2026-03-10T23:00:00Z",
      },
    ],
    fraud_alerts: [
      {
        bid_id: p("b5"),
        auction_id: p("A2"),
        bidder_id: p("U3"),
        score: 0.6,
        signals: { velocity: 0.4, new_account_high_bid: 0.2 },
        created_at: "2026-03-10T09:30:01Z",
      },
      {
        bid_id: p("b8"),
        auction_id: p("A3"),
        bidder_id: p("U1"),
        score: 0.5,
        signals: [
          { name: "velocity", contribution: 0.3 },
          { name: "shill", contribution: 0.2 },
        ],
        created_at: "2026-03-10T10:00:01Z",
      },
      {
        bid_id: p("bX"),
        auction_id: p("A2"),
        bidder_id: p("U5"),
        score: 0.95,
        signals: { shill: 0.9, velocity: 0.05 },
        created_at: "2026-03-10T15:00:01Z",
      },
    ],
    bid_rejections: [
      {
        bid_id: p("bX"),
        auction_id: p("A2"),
        bidder_id: p("U5"),
        reason: "fraud_quarantine",
        detail: "score 0.95",
        placed_at: "2026-03-10T15:00:00Z",
        received_at: "2026-03-10T15:00:00.050Z",
      },
      {
        bid_id: p("bY"),
        auction_id: p("A1"),
        bidder_id: p("U2"),
        reason: "below_minimum",
        detail: "below 6100",
        placed_at: "2026-03-10T11:30:00Z",
        received_at: "2026-03-10T11:30:00.050Z",
      },
      {
        bid_id: null,
        auction_id: null,
        bidder_id: null,
        reason: "malformed",
        detail: "not JSON",
        placed_at: null,
        received_at: "2026-03-10T10:00:00Z",
      },
    ],
  };
}

/** Gold for DAY, computed by hand (numbers as the SQL returns them, decimals as strings). */
export const EXPECTED = {
  daily_revenue: [
    // A3 (reserve not met) and A4 (no winner) closed but did not sell.
    { category: "art", currency: "EUR", gmv: 0, transactions: 0, avg_final_price: null, auctions_closed: 2 },
    {
      category: "art",
      currency: "USD",
      gmv: 1500,
      transactions: 1,
      avg_final_price: "1500.00",
      auctions_closed: 1,
    },
    // 6000 + 2600 = 8600 over 2 -> 4300
    {
      category: "electronics",
      currency: "EUR",
      gmv: 8600,
      transactions: 2,
      avg_final_price: "4300.00",
      auctions_closed: 2,
    },
  ],
  auction_performance: [
    // art: A3 (2 bids), A4 (0), A6 (1): 1 of 3 sold; +50% on A6; first bids after 600 s (A3) and 3600 s (A6).
    {
      category: "art",
      auctions_closed: 3,
      successful_auctions: 1,
      success_rate: "0.333333",
      avg_bids_per_auction: "1.0000",
      avg_price_increase_pct: "50.0000",
      median_time_to_first_bid_s: "2100.000",
    },
    // electronics: A1 (3 bids, +500%), A2 (3 bids, +30%); first bids 3600 s and 1800 s after the start.
    {
      category: "electronics",
      auctions_closed: 2,
      successful_auctions: 2,
      success_rate: "1.000000",
      avg_bids_per_auction: "3.0000",
      avg_price_increase_pct: "265.0000",
      median_time_to_first_bid_s: "2700.000",
    },
  ],
  bidder_analytics: [
    // U1: b3 (A1), b8 (A3) today; entered A1 and A3 which closed today; won A1, A3's reserve not met.
    {
      bidder_id: "U1",
      bids: 2,
      auctions_entered: 2,
      auctions_closed_entered: 2,
      wins: 1,
      win_rate: "0.500000",
      segment: "casual",
      country: "DE",
      new_user: false,
    },
    // U2: b2 (A1), b4 + b6 (A2); won A2; account 9 days old.
    {
      bidder_id: "U2",
      bids: 3,
      auctions_entered: 2,
      auctions_closed_entered: 2,
      wins: 1,
      win_rate: "0.500000",
      segment: "casual",
      country: "FR",
      new_user: true,
    },
    // U3: b5 (A2), b7 (A3), b9 (A5, still open); lost A2 and A3.
    {
      bidder_id: "U3",
      bids: 3,
      auctions_entered: 3,
      auctions_closed_entered: 2,
      wins: 0,
      win_rate: "0.000000",
      segment: "casual",
      country: "US",
      new_user: false,
    },
    // U4: b10 (A6), won it; not a registered user.
    {
      bidder_id: "U4",
      bids: 1,
      auctions_entered: 1,
      auctions_closed_entered: 1,
      wins: 1,
      win_rate: "1.000000",
      segment: "casual",
      country: null,
      new_user: null,
    },
  ],
  fraud_summary: [
    // velocity is in all 3 alerts, shill in 2; mean score (0.6 + 0.5 + 0.95) / 3.
    {
      alerts: 3,
      quarantined: 1,
      top_signal: "velocity",
      avg_score: "0.683333",
      bidders_flagged: 3,
      auctions_affected: 2,
    },
  ],
  category_trends: [
    {
      category: "art",
      auctions_started: 3,
      auctions_closed: 3,
      bids: 3,
      unique_bidders: 3,
      active_auctions: 2,
      rejections: 0,
      avg_bids_per_active_auction: "1.5000",
    },
    {
      category: "books",
      auctions_started: 1,
      auctions_closed: 0,
      bids: 1,
      unique_bidders: 1,
      active_auctions: 1,
      rejections: 0,
      avg_bids_per_active_auction: "1.0000",
    },
    // bX (quarantined, A2) and bY (below minimum, A1); the malformed record has no auction.
    {
      category: "electronics",
      auctions_started: 1,
      auctions_closed: 2,
      bids: 5,
      unique_bidders: 3,
      active_auctions: 2,
      rejections: 2,
      avg_bids_per_active_auction: "2.5000",
    },
  ],
} as const;

/**
 * Normalises a gold row read back from DuckDB (JSON) or PostgreSQL (pg):
 * integer strings (bigint, numeric(38,0)) become numbers, decimals with a
 * fraction stay strings, dates are dropped by the caller.
 */
export function normalizeRow(row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) {
    out[k] = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : typeof v === "bigint" ? Number(v) : v;
  }
  return out;
}

/** The order EXPECTED lists each gold table's rows in. */
const EXPECTED_ORDER: Readonly<Record<keyof typeof EXPECTED, string>> = {
  daily_revenue: "category, currency",
  auction_performance: "category",
  bidder_analytics: "bidder_id",
  fraud_summary: "day",
  category_trends: "category",
};

/** What goldRows reads through: node-postgres' `query(text, values)` (a pg.Pool, or the dev's embedded PglitePool). */
export interface Queryable {
  query(text: string, values: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

/** A gold table's rows of `day` in EXPECTED's order and form (without `day`, normalized). */
export async function goldRows(
  db: Queryable,
  table: keyof typeof EXPECTED,
  day = DAY,
): Promise<Record<string, unknown>[]> {
  const { rows } = await db.query(
    `SELECT * FROM gold.${table} WHERE day = $1 ORDER BY ${EXPECTED_ORDER[table]}`,
    [day],
  );
  return rows.map(({ day: _d, ...rest }) => normalizeRow(rest));
}

/** Silver GMV per currency of DAY: EUR 6000 + 2600, USD 1500. */
export const EXPECTED_GMV = { EUR: 8600n, USD: 1500n } as const;
