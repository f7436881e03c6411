import { describe, expect, it } from "vitest";
import { auction, bid, detailOf, NOW } from "../../test/event-fixtures.ts";
import {
  bidFromSubmission,
  decodeAuction,
  decodeBid,
  decodeBidSubmission,
  decodePriceUpdate,
  decodeUser,
  toIso,
} from "./decode.ts";
import { SCHEMA } from "./types.ts";

describe("decodeBid", () => {
  it("accepts a valid bid (string and Buffer) and normalises times to UTC", () => {
    const r = decodeBid(JSON.stringify(bid({ placed_at: "2026-11-22T11:59:59+02:00" })));
    expect(r.ok).toBe(true);
    if (r.ok) expect(r.value.placed_at).toBe("2026-11-22T09:59:59.000Z");
    expect(decodeBid(Buffer.from(JSON.stringify(bid()))).ok).toBe(true);
  });

  it("rejects invalid JSON and non-objects", () => {
    expect(detailOf(decodeBid("{not json"))).toMatch(/^record: not valid JSON/);
    expect(detailOf(decodeBid("[1,2]"))).toBe("record: must be a JSON object, got an array");
    expect(detailOf(decodeBid("null"))).toBe("record: must be a JSON object, got null");
  });

  it("rejects huge records", () => {
    expect(detailOf(decodeBid("x".repeat(1024 * 1024 + 1)))).toMatch(/more than 1048576/);
  });

  it("names the missing field", () => {
    const b = bid();
    delete b.bidder_id;
    expect(detailOf(decodeBid(JSON.stringify(b)))).toContain("bidder_id: is required");
  });

  it("rejects fractional cents, zero, negative, string and unsafe amounts", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 12.5 }))))).toBe(
      "amount: must be an integer number of minor units (cents); fractional minor units are not allowed, got 12.5",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 0 }))))).toBe(
      "amount: must be greater than 0, got 0",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: -100 }))))).toBe(
      "amount: must be greater than 0, got -100",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: "15.00" }))))).toBe(
      'amount: must be an integer number of minor units, got "15.00"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ amount: 2 ** 60 }))))).toMatch(/must be at most/);
  });

  it("rejects bad currencies: pattern and ISO 4217 membership", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "usd" }))))).toMatch(
      /^currency: must be an ISO 4217 code of 3 upper-case letters/,
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "DOLLARS" }))))).toMatch(/^currency:/);
    expect(detailOf(decodeBid(JSON.stringify(bid({ currency: "ABC" }))))).toBe(
      'currency: "ABC" is not an ISO 4217 currency code',
    );
  });

  it("rejects bad timestamps with the field path", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: "yesterday" }))))).toBe(
      'placed_at: must be an RFC 3339 date-time like 2026-01-02T03:04:05Z, got "yesterday"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: "2026-02-30T10:00:00Z" }))))).toMatch(
      /placed_at: "2026-02-30T10:00:00Z" is not a valid calendar date-time/,
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ placed_at: 1763805600000 }))))).toMatch(
      /^placed_at: must be/,
    );
  });

  it("rejects timestamps far in the future relative to received_at, with a configurable skew", () => {
    const future = bid({ placed_at: "2026-11-22T10:10:00Z" });
    expect(detailOf(decodeBid(JSON.stringify(future)))).toBe(
      "placed_at: 2026-11-22T10:10:00.000Z is 600s after received_at 2026-11-22T10:00:00.000Z; at most 300s of clock skew is allowed",
    );
    expect(decodeBid(JSON.stringify(future), { maxFutureSkewMs: 15 * 60_000 }).ok).toBe(true);
    // Slightly ahead (client clock) is fine.
    expect(decodeBid(JSON.stringify(bid({ placed_at: "2026-11-22T10:00:30Z" }))).ok).toBe(true);
  });

  it("rejects wrong types of ids and source, and unknown schema versions", () => {
    expect(detailOf(decodeBid(JSON.stringify(bid({ bid_id: 42 }))))).toBe(
      "bid_id: must be 1-128 printable characters without leading or trailing spaces; got 42, not a string",
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ auction_id: "" }))))).toMatch(/^auction_id:/);
    expect(detailOf(decodeBid(JSON.stringify(bid({ source: "fax" }))))).toBe(
      'source: must be one of api, pos, iot, batch, got "fax"',
    );
    expect(detailOf(decodeBid(JSON.stringify(bid({ schema: "gavel.bid/v9" }))))).toBe(
      'schema: must be "gavel.bid/v2" (or the previous "gavel.bid/v1"), got "gavel.bid/v9"',
    );
    const noSchema = bid();
    delete noSchema.schema;
    expect(detailOf(decodeBid(JSON.stringify(noSchema)))).toMatch(/got nothing/);
  });

  describe("schema evolution", () => {
    it("accepts the previous version (v1) and upgrades it", () => {
      const v1 = bid({ schema: SCHEMA.bidV1 });
      delete v1.source;
      delete v1.received_at;
      const r = decodeBid(JSON.stringify(v1), { nowMs: NOW });
      expect(r.ok).toBe(true);
      if (r.ok) {
        expect(r.value.schema).toBe(SCHEMA.bid);
        expect(r.value.source).toBe("api");
        expect(r.value.received_at).toBe("2026-11-22T10:00:00.000Z");
      }
    });

    it("still validates v1 fields", () => {
      const v1 = bid({ schema: SCHEMA.bidV1, amount: 1.5 });
      expect(detailOf(decodeBid(JSON.stringify(v1)))).toMatch(/^amount: must be an integer/);
    });

    it("accepts and keeps unknown additional fields (current and previous versions)", () => {
      const r = decodeBid(JSON.stringify(bid({ device: { kind: "kiosk" }, campaign: "x" })));
      expect(r.ok).toBe(true);
      if (r.ok) expect((r.value as unknown as Record<string, unknown>).campaign).toBe("x");
      expect(decodeBid(JSON.stringify(bid({ schema: SCHEMA.bidV1, future_field: 1 }))).ok).toBe(true);
      const a = decodeAuction(JSON.stringify({ ...auction(), shipping: "free" }));
      expect(a.ok).toBe(true);
    });

    it("a v2 bid without source is malformed (v2 made it required)", () => {
      const b = bid();
      delete b.source;
      expect(detailOf(decodeBid(JSON.stringify(b)))).toContain("source: is required");
    });
  });
});

describe("decodeAuction / decodeUser", () => {
  it("accepts a valid auction with optional fields absent or null", () => {
    expect(decodeAuction(JSON.stringify(auction())).ok).toBe(true);
    expect(decodeAuction(JSON.stringify(auction({ reserve_price: null, soft_close_seconds: null }))).ok).toBe(
      true,
    );
    expect(decodeAuction(JSON.stringify(auction({ reserve_price: 5000, soft_close_seconds: 30 }))).ok).toBe(
      true,
    );
  });

  it("checks cross-field rules", () => {
    expect(detailOf(decodeAuction(JSON.stringify(auction({ ends_at: "2026-11-22T08:00:00Z" }))))).toMatch(
      /^ends_at: .* must be after starts_at/,
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ reserve_price: 10 }))))).toBe(
      "reserve_price: 10 must be at least start_price 1000",
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ start_price: 10.5 }))))).toMatch(
      /^start_price: must be an integer number of minor units/,
    );
    expect(detailOf(decodeAuction(JSON.stringify(auction({ min_increment: 0 }))))).toMatch(
      /^min_increment: must be greater than 0/,
    );
  });

  it("validates users", () => {
    const u = {
      schema: SCHEMA.user,
      user_id: "u-1",
      created_at: "2026-01-01T00:00:00Z",
      country: "DE",
      rating: 4.5,
    };
    expect(decodeUser(JSON.stringify(u)).ok).toBe(true);
    expect(detailOf(decodeUser(JSON.stringify({ ...u, country: "Germany" })))).toMatch(/^country:/);
    expect(detailOf(decodeUser(JSON.stringify({ ...u, rating: 7 })))).toMatch(/^rating:/);
  });
});

describe("submissions and derived events", () => {
  it("decodes a client submission and builds the bid event", () => {
    const sub = {
      auction_id: "a-1",
      bidder_id: "u-2",
      amount: 100,
      currency: "EUR",
      placed_at: "2026-11-22T09:59:00Z",
    };
    const r = decodeBidSubmission(JSON.stringify(sub), { nowMs: NOW });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const b = bidFromSubmission(r.value, NOW, () => "gen-1");
    expect(b).toEqual({
      schema: SCHEMA.bid,
      bid_id: "gen-1",
      auction_id: "a-1",
      bidder_id: "u-2",
      amount: 100,
      currency: "EUR",
      placed_at: "2026-11-22T09:59:00.000Z",
      received_at: "2026-11-22T10:00:00.000Z",
      source: "api",
    });
    expect(decodeBid(JSON.stringify(b)).ok).toBe(true);
    expect(
      detailOf(
        decodeBidSubmission(JSON.stringify({ ...sub, placed_at: "2027-01-01T00:00:00Z" }), { nowMs: NOW }),
      ),
    ).toMatch(/in the future/);
  });

  it("decodes derived events with the generic decoder", () => {
    const p = {
      schema: SCHEMA.priceUpdate,
      auction_id: "a-1",
      version: 3,
      status: "open",
      current_price: 1200,
      leader_id: "u-2",
      bid_count: 2,
      currency: "USD",
      ends_at: "2026-11-22T11:00:00.000Z",
      updated_at: "2026-11-22T10:00:00.000Z",
    };
    expect(decodePriceUpdate(JSON.stringify(p)).ok).toBe(true);
    expect(detailOf(decodePriceUpdate(JSON.stringify({ ...p, version: 0 })))).toMatch(/^version:/);
  });
});

describe("toIso", () => {
  it("writes exactly what Date.prototype.toISOString writes", () => {
    const edges = [
      0,
      1,
      999,
      86_399_999,
      86_400_000,
      951_782_400_000, // 2000-02-29
      4_107_542_399_999, // 2100-02-28T23:59:59.999Z
      253_402_300_799_999, // the last four-digit-year instant
      253_402_300_800_000,
      -1,
      -62_198_755_200_000,
      1_796_650_700_415.7, // fractions are dropped
    ];
    // A fixed LCG: the same instants on every run, spread from 1970 to 9999.
    let x = 12_345;
    const random = Array.from({ length: 20_000 }, () => {
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      return Math.floor((x / 2_147_483_648) * 253_402_300_800_000);
    });
    // Alternating days, as a bid's placed_at and its auction's end do.
    const mixed = random.flatMap((ms) => [ms, ms + 86_400_000 * 3 + 17]);
    for (const ms of [...edges, ...mixed]) expect(toIso(ms), String(ms)).toBe(new Date(ms).toISOString());
    expect(() => toIso(Number.NaN)).toThrow(RangeError);
  });
});
