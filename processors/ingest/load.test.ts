import { describe, expect, it } from "vitest";
import { csvRecord, splitCsvLine } from "./load.ts";

describe("CSV parsing of batch files", () => {
  it("splits quoted cells and types the amount", () => {
    const header = splitCsvLine("bid_id,auction_id,bidder_id,amount,currency,placed_at");
    const cells = splitCsvLine('b1,"a,1",u1,1050,USD,2026-11-22T10:00:00Z');
    expect(csvRecord(header, cells)).toEqual({
      bid_id: "b1",
      auction_id: "a,1",
      bidder_id: "u1",
      amount: 1050,
      currency: "USD",
      placed_at: "2026-11-22T10:00:00Z",
    });
    expect(splitCsvLine('x,"say ""hi""",')).toEqual(["x", 'say "hi"', ""]);
    expect(csvRecord(["amount"], ["10.5"])).toEqual({ amount: 10.5 });
    expect(csvRecord(["amount", "bid_id"], ["ten", ""])).toEqual({ amount: "ten" });
  });

  it("keeps opaque ids exactly: Unicode, quotes, commas and inner spaces; no trimming", () => {
    const header = splitCsvLine("bid_id,auction_id,bidder_id,amount");
    const cells = splitCsvLine('"*champaign, bubbles*",名前の競売,"say ""Jürgen""",100');
    expect(csvRecord(header, cells)).toEqual({
      bid_id: "*champaign, bubbles*",
      auction_id: "名前の競売",
      bidder_id: 'say "Jürgen"',
      amount: 100,
    });
    // outer spaces reach ingest as sent, which refuses them with a clear message
    expect(csvRecord(["bidder_id"], splitCsvLine(" d*elmer "))).toEqual({ bidder_id: " d*elmer " });
  });
});
