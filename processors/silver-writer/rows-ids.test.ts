import { describe, expect, it } from "vitest";
import type { KafkaRecord } from "../kafka/transport.ts";
import { prepare, statementRows } from "./rows.ts";

const rec = (offset: number, value: unknown, topic = "p.x"): KafkaRecord => ({
  topic,
  partition: 0,
  offset,
  key: null,
  value: Buffer.from(JSON.stringify(value), "utf8"),
  timestamp: Date.parse("2026-11-22T10:00:00Z"),
});

const accepted = (over: Record<string, unknown> = {}) => ({
  schema: "gavel.bid-accepted/v1",
  bid_id: "b-1",
  auction_id: "a-1",
  bidder_id: "u-1",
  amount: 1500,
  currency: "EUR",
  placed_at: "2026-11-22T09:59:59.000Z",
  received_at: "2026-11-22T10:00:00.000Z",
  source: "api",
  fraud_score: 0,
  ...over,
});

describe("silver rows: opaque ids", () => {
  it("passes Unicode ids through exactly, as parameters (never in the SQL text)", () => {
    const ids = {
      bid_id: "'; DROP TABLE silver.bids; --",
      auction_id: "名前の競売 $1",
      bidder_id: "*champaign bubbles* 🦊 Jürgen",
    };
    const p = prepare("bids", [rec(0, accepted(ids))]);
    expect(p.unusable).toEqual([]);
    const st = p.statements[0]!;
    expect(statementRows(st)[0]?.slice(0, 3)).toEqual([ids.bid_id, ids.auction_id, ids.bidder_id]);
    for (const v of Object.values(ids)) expect(st.text).not.toContain(v);
    expect(st.text).toMatch(
      /^INSERT INTO silver\.bids \([a-z_, ]+\) SELECT .* FROM unnest\(\$1::text\[\], \$2::text\[\], /,
    );
  });

  it("dead-letters a record whose id breaks the rule instead of storing it altered", () => {
    const p = prepare("bids", [
      rec(0, accepted({ bid_id: "b-1", bidder_id: "a\u0000b" })),
      rec(1, accepted({ bid_id: "b-2", auction_id: " a-1" })),
      rec(2, accepted({ bid_id: "x".repeat(129) })),
      rec(3, accepted({ bid_id: "b-4", bidder_id: "d*elmer" })),
    ]);
    expect(p.unusable.map((u) => [u.record.offset, u.code, u.reason])).toEqual([
      [0, "invalid_field", "bidder_id is missing or invalid"],
      [1, "invalid_field", "auction_id is missing or invalid"],
      [2, "invalid_field", "bid_id is missing or invalid"],
    ]);
    expect(p.rows).toBe(1);
    const users = prepare("users", [
      rec(0, { user_id: "名前", created_at: "2026-01-01T00:00:00Z", country: "JP", rating: 5 }),
      rec(1, { user_id: "u\n1", created_at: "2026-01-01T00:00:00Z", country: "JP", rating: 5 }),
    ]);
    expect(users.rows).toBe(1);
    expect(users.unusable.map((u) => u.reason)).toEqual(["user_id is missing or invalid"]);
  });

  it("keeps whatever ids a dead-letter record carries (it is the record of what arrived)", () => {
    const p = prepare("rejections", [
      rec(0, { reason: "malformed", detail: "bidder_id: ...", bid_id: " b 1 ", bidder_id: "d\telmer" }),
    ]);
    expect(p.unusable).toEqual([]);
    expect(statementRows(p.statements[0]!)[0]?.slice(0, 3)).toEqual([" b 1 ", null, "d\telmer"]);
  });
});
