import { describe, expect, it } from "vitest";
import type { KafkaRecord } from "../kafka/transport.ts";
import { prepare, rowOf, type SilverKind, statementRows, statementsFor, TABLES, time } from "./rows.ts";

const rec = (offset: number, value: unknown, topic = "p.x"): KafkaRecord => ({
  topic,
  partition: 0,
  offset,
  key: null,
  value: Buffer.from(typeof value === "string" ? value : JSON.stringify(value)),
  timestamp: Date.parse("2026-11-22T10:00:00Z"),
});

describe("silver rows", () => {
  it("keeps the newest price update per auction and fences by version in SQL", () => {
    const base = {
      auction_id: "a1",
      bid_count: 1,
      ends_at: "2026-11-22T11:00:00Z",
      status: "open",
      currency: "USD",
    };
    const p = prepare("prices", [
      rec(0, { ...base, version: 3, current_price: 300 }),
      rec(1, { ...base, version: 2, current_price: 200 }),
    ]);
    expect(p.rows).toBe(1);
    expect(p.statements).toHaveLength(1);
    expect(p.statements[0]?.text).toContain("WHERE excluded.version > silver.auction_state.version");
    const flat = statementRows(p.statements[0]!).flat();
    expect(flat).toContain(300);
    expect(flat).not.toContain(200);
  });

  it("sanitises dead-letter records: fractional amounts, bad currencies and dates become null, NUL bytes go", () => {
    const p = prepare("rejections", [
      rec(7, {
        reason: "malformed",
        detail: "amount: fractional",
        amount: 10.5,
        currency: "dollars",
        placed_at: "yesterday",
        bid_id: "b\u0000x",
        raw: '{"amount":10.5}',
      }),
    ]);
    expect(p.unusable).toEqual([]);
    const v = statementRows(p.statements[0]!)[0] ?? [];
    expect(v.slice(0, 8)).toEqual(["bx", null, null, "malformed", "amount: fractional", null, null, null]);
    expect(v.slice(-3)).toEqual(["p.x", 0, 7]);
    expect(p.statements[0]?.text).toContain("ON CONFLICT ON CONSTRAINT bid_rejections_source_uq DO NOTHING");
  });

  it("reports records that cannot become rows instead of failing the batch", () => {
    const p = prepare("bids", [rec(0, "not json"), rec(1, { bid_id: "b1" }), rec(2, [1])]);
    expect(p.rows).toBe(0);
    expect(p.unusable.map((u) => u.reason)).toEqual([
      expect.stringMatching(/^not JSON/),
      "auction_id is missing or invalid",
      "not a JSON object",
    ]);
    // What the writer observes after the commit: every decoded object, no second parse.
    expect(p.decoded).toEqual([{ bid_id: "b1" }]);
  });

  it("writes large batches set-based in chunks (one array per column) and dedupes bids by bid_id", () => {
    const bids = Array.from({ length: 25_000 }, (_, i) =>
      rec(i, {
        bid_id: `b${i % 24_000}`,
        auction_id: "a",
        bidder_id: "u",
        amount: 100 + i,
        currency: "USD",
        placed_at: "2026-11-22T10:00:00Z",
        received_at: "2026-11-22T10:00:00Z",
        fraud_score: 0.1,
        source: "api",
      }),
    );
    const p = prepare("bids", bids);
    expect(p.rows).toBe(24_000);
    expect(p.statements.map((s) => s.rowCount)).toEqual([10_000, 10_000, 4_000]);
    for (const s of p.statements) {
      // One parameter per column, whatever the rows; the same text for every chunk.
      expect(s.values).toHaveLength(TABLES.bids.columns.length);
      expect(s.text).toBe(p.statements[0]?.text);
    }
    const ids = p.statements.flatMap((s) => statementRows(s).map((r) => r[0]));
    expect(new Set(ids).size).toBe(24_000);
  });

  it("knows the SQL type of every column it writes (the unnest arrays are typed)", () => {
    for (const kind of Object.keys(TABLES) as (keyof typeof TABLES)[])
      expect(() => statementsFor(kind, []), kind).not.toThrow();
  });
});

/** One conforming event of each table's contract schema (api/events/types.ts). */
const T = "2026-11-22T10:00:00.000Z";
const EVENTS: Record<SilverKind, Record<string, unknown>> = {
  auctions: {
    schema: "gavel.auction/v1",
    auction_id: "Ölfass-1",
    item_id: "名前-item",
    seller_id: "d*elmer",
    title: "Oak barrel",
    category: "home",
    currency: "EUR",
    start_price: 1000,
    reserve_price: 5000,
    min_increment: 100,
    starts_at: "2026-11-22T09:00:00Z",
    ends_at: "2026-11-22T11:00:00+01:00",
    soft_close_seconds: 30,
  },
  users: { schema: "gavel.user/v1", user_id: "Jürgen", created_at: T, country: "DE", rating: 4.5 },
  bids: {
    schema: "gavel.bid-accepted/v1",
    bid_id: "b 1",
    auction_id: "a/1",
    bidder_id: "🦊",
    amount: Number.MAX_SAFE_INTEGER,
    currency: "JPY",
    placed_at: T,
    received_at: T,
    source: "pos",
    fraud_score: 1,
    fraud_features: [0.5, 1e-7, 3],
    bid_seq: 2,
    ends_at: T,
    extended: false,
  },
  rejections: {
    schema: "gavel.bid-rejected/v1",
    rejection_id: "0123456789abcdef0123456789abcdef",
    reason: "below_minimum",
    detail: "amount 10 is below the start price 1000",
    bid_id: "b-1",
    auction_id: "a-1",
    bidder_id: "u-1",
    amount: 10,
    currency: "USD",
    placed_at: T,
    received_at: T,
    fraud_score: 0,
  },
  prices: {
    schema: "gavel.price-update/v1",
    auction_id: "a-1",
    version: 3,
    status: "closed",
    current_price: 1200,
    leader_id: "u-2",
    bid_count: 2,
    currency: "USD",
    ends_at: T,
    updated_at: T,
  },
  transactions: {
    schema: "gavel.transaction/v1",
    auction_id: "a-1",
    winner_id: null,
    high_bidder_id: "u-2",
    final_price: 1200,
    reserve_met: false,
    closed_at: T,
    seller_id: "u-1",
    category: "home",
    currency: "USD",
    start_price: 1000,
    bid_count: 2,
    starts_at: T,
    first_bid_at: null,
  },
  fraudAlerts: {
    schema: "gavel.fraud-alert/v1",
    bid_id: "b-1",
    auction_id: "a-1",
    bidder_id: "u-2",
    score: 0.9,
    quarantined: true,
    signals: [{ name: "velocity", strength: 1, weight: 0.3, contribution: 0.3, detail: "20 bids in 60 s" }],
    created_at: T,
  },
};

/** Values a producer could put in any field: where one still conforms, both readings must agree. */
const ODD: unknown[] = [
  undefined,
  null,
  "",
  0,
  -1,
  1.5,
  2 ** 60,
  true,
  [],
  {},
  "x\u0000y",
  " a",
  "x".repeat(129),
  "2026-02-30T10:00:00Z",
  "2026-11-22t10:00:00.123456789z",
  "0000-01-01T00:00:00Z",
  "usd",
  "ABC",
  "fax",
];

describe("silver rows from the event contract", () => {
  it("a conforming event gets the same row (or the same refusal) whether its trusted columns are taken as they are or read again", () => {
    for (const kind of Object.keys(EVENTS) as SilverKind[]) {
      const spec = TABLES[kind];
      const base = EVENTS[kind];
      expect(spec.conforms(base), kind).toBe(true);
      let conforming = 0;
      for (const field of Object.keys(base))
        for (const odd of ODD) {
          const v = { ...base, [field]: odd };
          if (odd === undefined) delete v[field];
          if (!spec.conforms(v)) continue;
          conforming++;
          const r = rec(0, v);
          expect(rowOf(spec, v, r, true), `${kind}.${field} = ${JSON.stringify(odd)}`).toEqual(
            rowOf(spec, v, r, false),
          );
        }
      expect(conforming, kind).toBeGreaterThan(Object.keys(base).length);
    }
  });

  it("reads a record the contract refuses tolerantly, as silver always has (no schema, fields it does not store missing)", () => {
    const { schema: _schema, bid_seq: _seq, ends_at: _end, extended: _ext, ...loose } = EVENTS.bids;
    expect(TABLES.bids.conforms(loose)).toBe(false);
    const p = prepare("bids", [rec(0, EVENTS.bids), rec(1, { ...loose, bid_id: "b 2" })]);
    expect(p.unusable).toEqual([]);
    const [a, b] = statementRows(p.statements[0]!);
    // The same row but for the id, the schema version (unknown without `schema`) and the offset.
    expect(b?.slice(1, -4)).toEqual(a?.slice(1, -4));
    expect([a?.at(-4), b?.at(-4)]).toEqual([1, null]);
  });
});

describe("silver instants", () => {
  /** The full parse, as silver has always read an instant. */
  const YEAR_MS = 365 * 24 * 3600 * 1000;
  const parsed = (v: string) => {
    const ms = Date.parse(v);
    return Number.isNaN(ms) || ms < -1970 * YEAR_MS || ms > 8000 * YEAR_MS
      ? null
      : new Date(ms).toISOString();
  };

  it("reads canonical UTC text as the full parse does: roll-overs, leap days, 24:00, the range", () => {
    expect(time("2026-11-22T10:00:00.000Z")).toBe("2026-11-22T10:00:00.000Z");
    expect(time("2026-02-30T10:00:00.000Z")).toBe("2026-03-02T10:00:00.000Z");
    expect(time("2024-02-29T10:00:00.000Z")).toBe("2024-02-29T10:00:00.000Z");
    expect(time("1900-02-29T00:00:00.000Z")).toBe("1900-03-01T00:00:00.000Z");
    expect(time("2026-11-22T24:00:00.000Z")).toBe("2026-11-23T00:00:00.000Z");
    expect(time("2026-11-22T23:60:00.000Z")).toBeNull();
    expect(time("0001-01-01T00:00:00.000Z")).toBeNull();
    expect(time("9999-12-31T23:59:59.999Z")).toBeNull();
    expect(time("2026-11-22T11:00:00+01:00")).toBe("2026-11-22T10:00:00.000Z");
    const odd = ["0000", "0099", "0100", "1582", "1970", "2000", "2100", "9964", "9965"].flatMap((y) =>
      ["01-01T00:00:00.000Z", "02-28T23:59:59.999Z", "02-29T12:00:00.000Z", "04-31T00:00:00.000Z"].map(
        (rest) => `${y}-${rest}`,
      ),
    );
    for (const v of odd) expect(time(v), v).toBe(parsed(v));
    let seed = 11;
    for (let i = 0; i < 20_000; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      const v = new Date(((seed / 2 ** 32) * 2 - 1) * 8100 * YEAR_MS).toISOString();
      expect(time(v), v).toBe(parsed(v));
    }
  });
});
