import { describe, expect, it } from "vitest";
import type { KafkaRecord } from "../kafka/transport.ts";
import { dataErrorCode, deadLetterStatements, fromUnusable, UNUSABLE_REASONS } from "./dead-letters.ts";
import { prepare, statementRows, statementsFor } from "./rows.ts";

const rec = (offset: number, value: string | null, key: string | null = "a1"): KafkaRecord => ({
  topic: "p.transactions",
  partition: 2,
  offset,
  key,
  value: value === null ? null : Buffer.from(value),
  timestamp: Date.parse("2026-11-22T10:00:00Z"),
});

const tx = (over: Record<string, unknown> = {}) =>
  JSON.stringify({
    auction_id: "a1",
    winner_id: "u1",
    final_price: 1200,
    currency: "USD",
    reserve_met: true,
    closed_at: "2026-11-22T10:00:00Z",
    bid_count: 3,
    ...over,
  });

describe("unusable records get a reason code", () => {
  it("classifies not JSON, not an object, a missing field and fractional money", () => {
    const p = prepare("transactions", [
      rec(0, "{not json"),
      rec(1, "[1,2]"),
      rec(2, tx({ closed_at: undefined })),
      rec(3, tx({ auction_id: "a2", final_price: 12.5 })),
      rec(4, tx({ auction_id: "a3" })),
      rec(5, null), // a tombstone is not a record to write
    ]);
    expect(p.unusable.map((u) => [u.record.offset, u.code])).toEqual([
      [0, "not_json"],
      [1, "not_object"],
      [2, "invalid_field"],
    ]);
    expect(p.unusable[2]?.reason).toBe("closed_at is missing or invalid");
    // final_price is optional in silver.transactions: a fractional one becomes NULL, never a float.
    expect(p.entries.map((e) => e.record.offset)).toEqual([3, 4]);
    expect(statementRows(p.statements[0]!).flat()).not.toContain(12.5);
    for (const u of p.unusable) expect(UNUSABLE_REASONS).toContain(u.code);
  });

  it("keeps each row's record, so a refused row can be isolated and rewritten alone", () => {
    const p = prepare("transactions", [rec(7, tx()), rec(8, tx({ auction_id: "a2" }))]);
    expect(p.entries.map((e) => e.record.offset)).toEqual([7, 8]);
    const one = statementsFor("transactions", p.entries.slice(1));
    expect(one).toHaveLength(1);
    const rows = statementRows(one[0]!);
    expect(rows.flat()).toContain("a2");
    expect(rows.flat()).not.toContain("a1");
    expect(one[0]?.text).toMatch(
      /^INSERT INTO silver\.transactions \([^)]*\) SELECT .* FROM unnest\(.*\) ON CONFLICT/,
    );
  });

  it("money must be whole minor units: a fractional bid amount is invalid_field", () => {
    const bid = {
      bid_id: "b1",
      auction_id: "a1",
      bidder_id: "u1",
      amount: 100.5,
      currency: "USD",
      placed_at: "2026-11-22T10:00:00Z",
      received_at: "2026-11-22T10:00:00Z",
    };
    const p = prepare("bids", [rec(0, JSON.stringify(bid))]);
    expect(p.unusable.map((u) => [u.code, u.reason])).toEqual([
      ["invalid_field", "amount is missing or invalid"],
    ]);
  });
});

describe("silver.dead_letters rows", () => {
  it("one parameterised insert, idempotent by Kafka position, raw bytes kept, NUL bytes out of text", () => {
    const raw = Buffer.from([0x7b, 0x00, 0xff, 0x22]);
    const r: KafkaRecord = { ...rec(42, null, "k\u0000ey"), value: raw };
    const [s, ...more] = deadLetterStatements([
      fromUnusable("silver.transactions", { record: r, code: "not_json", reason: "not JSON: \u0000bad" }),
      {
        record: rec(43, tx()),
        table: "silver.transactions",
        reason: "db_rejected",
        detail: "22003: out of range",
        sqlstate: "22003",
      },
    ]);
    expect(more).toEqual([]);
    expect(s?.text).toMatch(
      /^INSERT INTO silver\.dead_letters \(source_topic, source_partition, source_offset,/,
    );
    expect(s?.text).toContain("ON CONFLICT (source_topic, source_partition, source_offset) DO NOTHING");
    expect(s?.text).not.toContain("bad");
    expect(s?.values.slice(0, 10)).toEqual([
      "p.transactions",
      2,
      42,
      "silver.transactions",
      "not_json",
      "not JSON: bad",
      null,
      "key",
      raw,
      "2026-11-22T10:00:00.000Z",
    ]);
    expect(s?.values.slice(10, 17)).toEqual([
      "p.transactions",
      2,
      43,
      "silver.transactions",
      "db_rejected",
      "22003: out of range",
      "22003",
    ]);
  });

  it("chunks many dead letters under PostgreSQL's parameter limit", () => {
    const letters = Array.from({ length: 7_000 }, (_, i) =>
      fromUnusable("silver.bids", { record: rec(i, "x"), code: "not_json", reason: "not JSON" }),
    );
    const ss = deadLetterStatements(letters);
    expect(ss.length).toBe(2);
    for (const s of ss) expect(s.values.length).toBeLessThanOrEqual(60_000);
    expect(ss.reduce((n, s) => n + s.values.length, 0)).toBe(70_000);
  });

  it("only SQLSTATE classes 22 and 23 are the data's fault", () => {
    expect(dataErrorCode({ code: "22003" })).toBe("22003");
    expect(dataErrorCode({ code: "22P05" })).toBe("22P05");
    expect(dataErrorCode({ code: "23505" })).toBe("23505");
    for (const code of ["08006", "40001", "57P01", "53300", "42P01", "ECONNRESET", undefined])
      expect(dataErrorCode({ code })).toBeUndefined();
    expect(dataErrorCode(new Error("x"))).toBeUndefined();
    expect(dataErrorCode(null)).toBeUndefined();
  });
});
