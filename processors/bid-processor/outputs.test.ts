import type { Context } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import type { OutputRecord } from "../domain/bid-core.ts";
import type { BatchTrace } from "../runtime/batch-telemetry.ts";
import { encodeOutputs, IN_BOOK_HEADER, Outputs, SEQ_HEADER } from "./outputs.ts";

const topics = {
  bidsAccepted: "p.bids.accepted",
  bidsRejected: "p.bids.rejected",
  prices: "p.prices",
  fraudAlerts: "p.fraud-alerts",
  transactions: "p.transactions",
};

/** Record i's trace is `trace-i`. */
const trace: BatchTrace = {
  context: () => ({}) as Context,
  headers: (i) => ({ traceparent: `trace-${i}` }),
};

const out = (topic: OutputRecord["topic"], key: string, value: object, inBook?: boolean): OutputRecord => ({
  topic,
  key,
  value,
  ...(inBook ? { inBook } : {}),
});

describe("bid-processor outputs", () => {
  it("carry the trace of the record they derive from, keep the latest price per auction, and number decisions", () => {
    const o = new Outputs();
    // A close because time passed (no input record), then the outputs of records 0 and 2.
    o.push([out("transactions", "a0", { auction_id: "a0" })]);
    o.push([out("bidsAccepted", "a1", { bid_id: "b1" }, true), out("prices", "a1", { version: 1 })], 0);
    o.push([out("bidsRejected", "", { reason: "malformed" }), out("prices", "a1", { version: 2 })], 2);
    const { batches, seq } = encodeOutputs(o, { partition: 3, seq: 10, topics, trace });
    const byTopic = Object.fromEntries(batches.map((b) => [b.topic, b.messages]));
    expect(seq).toBe(13);
    expect(byTopic["p.transactions"]).toEqual([
      { key: "a0", value: '{"auction_id":"a0"}', partition: 3, headers: { [SEQ_HEADER]: "10" } },
    ]);
    expect(byTopic["p.bids.accepted"]?.[0]?.headers).toEqual({
      traceparent: "trace-0",
      [SEQ_HEADER]: "11",
      [IN_BOOK_HEADER]: "1",
    });
    expect(byTopic["p.bids.rejected"]?.[0]).toMatchObject({
      key: null,
      headers: { traceparent: "trace-2", [SEQ_HEADER]: "12" },
    });
    // Only the latest price of a1, with the trace of the record that set it.
    expect(byTopic["p.prices"]).toEqual([
      { key: "a1", value: '{"version":2}', partition: 3, headers: { traceparent: "trace-2" } },
    ]);
  });
});
