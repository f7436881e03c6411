/**
 * Writing a request's records to Kafka and answering it: 202 once the broker
 * acknowledged every record (acks=all), 503 with Retry-After when ingest
 * sheds load or the broker did not answer. One PRODUCER span per request;
 * its context travels in every record's headers, so each bid's trace
 * continues downstream.
 */
import { context, trace } from "@opentelemetry/api";
import type { FastifyReply } from "fastify";
import type { Logger } from "../../lib/log.ts";
import { SpanKind, SpanStatusCode, traceHeaders, tracer } from "../../lib/telemetry.ts";
import type { OutMessage } from "../kafka/transport.ts";
import { pipelineMetrics } from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { BackpressureError, type BatchingProducer } from "./batcher.ts";
import { fail } from "./errors.ts";

export interface Outgoing {
  readonly topic: string;
  readonly message: OutMessage;
  /** A bid's `source`: counted in the bids-received metric once acknowledged. */
  readonly bidSource?: string;
}

/** Sends `records`, then answers 202 with `ok()`, or the error. */
export type Publish = (reply: FastifyReply, records: Outgoing[], ok: () => unknown) => Promise<unknown>;

export function publisher(deps: {
  readonly producer: BatchingProducer;
  readonly metrics: Registry;
  readonly logger: Logger;
  readonly retryAfterSeconds: number;
}): Publish {
  const produced = deps.metrics.counter(
    "ingest_records_total",
    "Records acknowledged by the broker, by topic.",
  );
  const inflight = deps.metrics.gauge("ingest_inflight_records", "Records waiting for the broker ack.");
  const business = pipelineMetrics(deps.metrics);
  const retryAfter = (reply: FastifyReply) => reply.header("retry-after", String(deps.retryAfterSeconds));

  return async (reply, records, ok) => {
    // A PRODUCER span per request (messaging semantic conventions).
    const span = tracer().startSpan(`send ${records[0]?.topic ?? ""}`, {
      kind: SpanKind.PRODUCER,
      attributes: {
        "messaging.system": "kafka",
        "messaging.operation.type": "send",
        "messaging.destination.name": records[0]?.topic ?? "",
        "messaging.batch.message_count": records.length,
      },
    });
    const headers = traceHeaders(trace.setSpan(context.active(), span));
    const traced = records.map((r) => ({ topic: r.topic, message: { ...r.message, headers } }));
    try {
      inflight.set({}, deps.producer.inFlight + records.length);
      await deps.producer.produce(traced);
      for (const r of records) {
        produced.inc({ topic: r.topic });
        if (r.bidSource !== undefined) business.bidsReceived.inc({ source: r.bidSource });
      }
      return reply.code(202).send(ok());
    } catch (err) {
      if (err instanceof BackpressureError) {
        retryAfter(reply);
        return fail(reply, 503, "overloaded", `${err.message}; retry after ${deps.retryAfterSeconds}s`);
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      deps.logger.error({ err }, "produce failed");
      retryAfter(reply);
      return fail(
        reply,
        503,
        "unavailable",
        "the broker did not acknowledge the records; nothing may be assumed written, retry with the same bid_id",
      );
    } finally {
      inflight.set({}, deps.producer.inFlight);
      span.end();
    }
  };
}
