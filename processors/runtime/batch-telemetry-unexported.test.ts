import { trace } from "@opentelemetry/api";
import { describe, expect, it } from "vitest";
import { spansExported, startTracing } from "../../lib/telemetry.ts";
import type { KafkaRecord } from "../kafka/transport.ts";
import { instrumentBatches } from "./batch-telemetry.ts";
import { Registry } from "./metrics.ts";

// A process that exports no spans (no OTLP endpoint, no span processor): its
// own module state, so a file of its own (vitest isolates files).
startTracing("test", { env: {} });

const ctx = {
  isRunning: () => true,
  heartbeat: async () => undefined,
  markProcessed: () => undefined,
  isStale: () => false,
};

describe("instrumentBatches without a span exporter", () => {
  it("makes no per-record spans: each record's context is the one in its headers, passed through", async () => {
    expect(spansExported()).toBe(false);
    const traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const r: KafkaRecord = {
      topic: "p.bids",
      partition: 0,
      offset: 1,
      key: "a1",
      value: Buffer.from("{}"),
      timestamp: 0,
      headers: { traceparent },
    };
    let inside: { spanId?: string; headers?: Record<string, string> } = {};
    const h = instrumentBatches(
      {
        eachBatch: async (_b, _ctx, traced) => {
          inside = {
            spanId: trace.getSpanContext(traced.context(0))?.spanId,
            headers: traced.headers(0),
          };
        },
      },
      { metrics: new Registry("gavel_", { env: {} }), processor: "bid-processor" },
    );
    await h.eachBatch({ topic: "p.bids", partition: 0, records: [r], highWatermark: 2 }, ctx);
    // The producer's span is the parent of what this record causes (no span of ours in between).
    expect(inside.spanId).toBe("b7ad6b7169203331");
    expect(inside.headers?.traceparent).toBe(traceparent);
  });
});
