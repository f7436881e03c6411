import { describe, expect, it } from "vitest";
import type { KafkaRecord } from "../kafka/transport.ts";
import { prepare, statementRows, statementsFor, TABLES } from "./rows.ts";

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
