import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../lib/log.ts";
import { startTracing } from "../../lib/telemetry.ts";
import type { Producer, TopicMessages } from "../kafka/transport.ts";
import { Registry } from "../runtime/metrics.ts";
import { buildIngestApp } from "./app.ts";
import { BatchingProducer } from "./batcher.ts";

const spans = new InMemorySpanExporter();
startTracing("ingest-test", { env: {}, processors: [new SimpleSpanProcessor({ exporter: spans })] });

class RecordingProducer implements Producer {
  sent: TopicMessages[] = [];
  async send(batches: readonly TopicMessages[]): Promise<void> {
    this.sent.push(...batches);
  }
  async close(): Promise<void> {}
}

describe("ingest tracing and business metrics", () => {
  it("continues the client's trace: SERVER span -> PRODUCER span -> traceparent in every record; counts bids by source", async () => {
    const producer = new RecordingProducer();
    const metrics = new Registry("gavel_", { env: {} });
    const app = await buildIngestApp({
      producer: new BatchingProducer(producer, { lingerMs: 0 }),
      topics: { bids: "p.bids", auctions: "p.auctions", users: "p.users" },
      keys: "disabled",
      logger: createLogger("test", "silent"),
      metrics,
      health: { live: () => true, ready: () => ({ ok: true }) },
    });
    const client = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    const bid = {
      auction_id: "a-1",
      bidder_id: "u-1",
      amount: 1050,
      currency: "USD",
      placed_at: new Date().toISOString(),
    };
    const r = await app.inject({
      method: "POST",
      url: "/v1/bids:batch",
      headers: { traceparent: client },
      payload: { bids: [bid, { ...bid, source: "pos" }] },
    });
    expect(r.statusCode).toBe(202);
    await app.close();

    const finished = spans.getFinishedSpans();
    const server = finished.find((s) => s.kind === 1);
    const send = finished.find((s) => s.kind === 3);
    expect(server?.spanContext().traceId).toBe("0af7651916cd43dd8448eb211c80319c");
    expect(server?.parentSpanContext?.spanId).toBe("b7ad6b7169203331");
    expect(send?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(send?.attributes).toMatchObject({
      "messaging.system": "kafka",
      "messaging.destination.name": "p.bids",
      "messaging.batch.message_count": 2,
    });
    const headers = producer.sent.flatMap((b) => b.messages.map((m) => m.headers?.traceparent));
    expect(headers).toEqual([
      `00-0af7651916cd43dd8448eb211c80319c-${send?.spanContext().spanId}-01`,
      `00-0af7651916cd43dd8448eb211c80319c-${send?.spanContext().spanId}-01`,
    ]);
    const text = await metrics.render();
    expect(text).toContain('gavel_bids_received_total{source="api"} 1');
    expect(text).toContain('gavel_bids_received_total{source="pos"} 1');
  });
});
