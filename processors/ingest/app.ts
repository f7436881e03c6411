import { randomUUID } from "node:crypto";
import swagger from "@fastify/swagger";
import { context, trace } from "@opentelemetry/api";
import { type TSchema, Type } from "@sinclair/typebox";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "../../lib/log.ts";
import { SpanKind, SpanStatusCode, traceHeaders, tracer } from "../../lib/telemetry.ts";
import {
  AuctionEventSchema,
  type BidEvent,
  BidSubmissionSchema,
  bidFromSubmission,
  decodeAuction,
  decodeBidSubmission,
  decodeUser,
  ID_MAX_CHARS,
  quoteId,
  SCHEMA,
  UserEventSchema,
} from "../domain/events.ts";
import type { OutMessage } from "../kafka/transport.ts";
import { pipelineMetrics } from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { type App, createServer, type HealthState } from "../runtime/server.ts";
import { type ApiKey, authenticate, type Scope } from "./auth.ts";
import { BackpressureError, type BatchingProducer } from "./batcher.ts";

export interface IngestTopics {
  readonly bids: string;
  readonly auctions: string;
  readonly users: string;
}

export interface IngestLimits {
  /** Largest body of a single-record request, bytes. Default 64 KiB. */
  readonly maxRecordBytes?: number;
  /** Largest body of POST /v1/bids:batch, bytes. Default 4 MiB. */
  readonly maxBatchBytes?: number;
  /** Most bids in one batch request. Default 1000. */
  readonly maxBatchItems?: number;
  /** Retry-After seconds when shedding load. Default 1. */
  readonly retryAfterSeconds?: number;
  /** Allowed clock skew of placed_at into the future. Default 5 minutes. */
  readonly maxFutureSkewMs?: number;
}

export interface IngestDeps {
  readonly producer: BatchingProducer;
  readonly topics: IngestTopics;
  /** "disabled" turns authentication off (local development only). */
  readonly keys: readonly ApiKey[] | "disabled";
  readonly logger: Logger;
  readonly metrics: Registry;
  readonly health: HealthState;
  readonly limits?: IngestLimits;
  /** Clock, injectable for tests. */
  readonly now?: () => number;
}

interface ErrorBody {
  error: string;
  message: string;
  details?: { index?: number; message: string }[];
}

const ErrorSchema = Type.Object({
  error: Type.String({
    description:
      "Machine-readable code: bad_request, unauthorized, forbidden, payload_too_large, overloaded, unavailable",
  }),
  message: Type.String({ description: "What is wrong and how to fix it" }),
  details: Type.Optional(
    Type.Array(Type.Object({ index: Type.Optional(Type.Integer()), message: Type.String() }), {
      description: "One entry per invalid record (batch: with its index)",
    }),
  ),
});

/** TypeBox schemas carry `$id`s; inline copies without them keep the OpenAPI document self-contained. */
function inline(schema: TSchema): TSchema {
  const { $id: _id, ...rest } = schema;
  return rest as TSchema;
}

/** The id rule, for the API description (docs/events.md#identifiers). */
const ID_RULE = `Ids (auction_id, bid_id, bidder_id, item_id, seller_id, user_id) are opaque text: 1-${ID_MAX_CHARS} printable Unicode characters (code points; e.g. "d*elmer", "Jürgen", "名前"), no control characters (U+0000-U+001F, U+007F-U+009F), no U+2028/U+2029, no bidirectional controls (U+202A-U+202E, U+2066-U+2069), no lone surrogates, no leading or trailing white space. They are kept exactly as sent (no trimming, no Unicode normalisation); send JSON as UTF-8.`;

const BidAcceptedResponse = Type.Object({
  bid_id: Type.String({ description: "The bid's id (assigned when the request had none)" }),
  received_at: Type.String({ description: "When ingest received the bid (RFC 3339)" }),
});

/**
 * The ingest HTTP API. Validation is done by the domain decoders (one source
 * of truth with the stream path, precise messages); fastify's own validator
 * is switched off and the TypeBox schemas only document the API.
 */
export async function buildIngestApp(deps: IngestDeps): Promise<App> {
  const limits = {
    maxRecordBytes: deps.limits?.maxRecordBytes ?? 64 * 1024,
    maxBatchBytes: deps.limits?.maxBatchBytes ?? 4 * 1024 * 1024,
    maxBatchItems: deps.limits?.maxBatchItems ?? 1000,
    retryAfterSeconds: deps.limits?.retryAfterSeconds ?? 1,
    maxFutureSkewMs: deps.limits?.maxFutureSkewMs ?? 5 * 60_000,
  };
  const now = deps.now ?? Date.now;
  const app = createServer({
    logger: deps.logger,
    metrics: deps.metrics,
    health: deps.health,
    bodyLimit: limits.maxBatchBytes,
  });
  const requests = deps.metrics.counter("ingest_requests_total", "HTTP requests by route and status.");
  const produced = deps.metrics.counter(
    "ingest_records_total",
    "Records acknowledged by the broker, by topic.",
  );
  const latency = deps.metrics.histogram(
    "ingest_request_seconds",
    "Request latency including the broker ack.",
  );
  const inflight = deps.metrics.gauge("ingest_inflight_records", "Records waiting for the broker ack.");
  const business = pipelineMetrics(deps.metrics);
  const bidSources = new WeakMap<object, string>();

  await app.register(swagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "Gavel ingest API",
        version: "1.0.0",
        description: `Accepts bids, auctions and users and writes them to the pipeline's Kafka topics. A 202 means the broker acknowledged the record (acks=all); business rules (unknown auction, currency, duplicates, minimum) are checked downstream and rejected bids land in the dead-letter topic. ${ID_RULE}`,
      },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
  });
  app.setValidatorCompiler(() => () => true);
  app.removeContentTypeParser(["application/json"]);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: { statusCode?: number; code?: string; message: string }, req, reply) => {
    const status = err.statusCode ?? 500;
    const code =
      status === 413
        ? "payload_too_large"
        : status === 415
          ? "unsupported_media_type"
          : status === 400
            ? "bad_request"
            : status === 503
              ? "unavailable"
              : "internal";
    if (status >= 500) req.log.error({ err }, "request failed");
    const body: ErrorBody = { error: code, message: err.message };
    return reply.code(status).send(body);
  });
  app.addHook("onResponse", async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? "unknown", status: String(reply.statusCode) });
    latency.observe({ route: req.routeOptions.url ?? "unknown" }, reply.elapsedTime / 1000);
  });

  const fail = (
    reply: FastifyReply,
    status: number,
    error: string,
    message: string,
    details?: ErrorBody["details"],
  ) => reply.code(status).send(details ? { error, message, details } : { error, message });

  function guard(req: FastifyRequest, reply: FastifyReply, scope: Scope): boolean {
    if (deps.keys === "disabled") return true;
    const r = authenticate(deps.keys, req.headers, scope);
    if (r.ok) return true;
    void fail(reply, r.status, r.status === 401 ? "unauthorized" : "forbidden", r.message);
    return false;
  }

  async function produce(
    reply: FastifyReply,
    records: { topic: string; message: OutMessage }[],
    ok: () => unknown,
  ): Promise<unknown> {
    // A PRODUCER span per request (messaging semantic conventions); its context
    // travels in every record's headers, so each bid's trace continues downstream.
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
        const source = bidSources.get(r);
        if (source !== undefined) business.bidsReceived.inc({ source });
      }
      return reply.code(202).send(ok());
    } catch (err) {
      if (err instanceof BackpressureError) {
        reply.header("retry-after", String(limits.retryAfterSeconds));
        return fail(reply, 503, "overloaded", `${err.message}; retry after ${limits.retryAfterSeconds}s`);
      }
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      deps.logger.error({ err }, "produce failed");
      reply.header("retry-after", String(limits.retryAfterSeconds));
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
  }

  const bidRecord = (bid: BidEvent) => {
    const r = {
      topic: deps.topics.bids,
      message: { key: bid.auction_id, value: JSON.stringify(bid) },
    };
    bidSources.set(r, bid.source);
    return r;
  };
  const responses = (ok: TSchema) => ({
    202: ok,
    400: ErrorSchema,
    401: ErrorSchema,
    403: ErrorSchema,
    413: ErrorSchema,
    503: ErrorSchema,
  });

  app.post(
    "/v1/bids",
    {
      bodyLimit: limits.maxRecordBytes,
      schema: {
        summary: "Submit one bid",
        description:
          "Validates the bid (schema, ids, integer minor units > 0, ISO 4217 currency, placed_at not in the future beyond the allowed skew), assigns bid_id when absent and received_at, and answers 202 once the broker acknowledged it. A 400 names the field, what is wrong and how to fix it (e.g. `bidder_id: ... got a control character U+0009 (tab) at position 3`).",
        body: inline(BidSubmissionSchema),
        response: responses(BidAcceptedResponse),
      },
    },
    async (req, reply) => {
      if (!guard(req, reply, "bids")) return reply;
      const receivedAt = now();
      const d = decodeBidSubmission(req.body as Buffer, {
        nowMs: receivedAt,
        maxFutureSkewMs: limits.maxFutureSkewMs,
      });
      if (!d.ok) return fail(reply, 400, "bad_request", d.detail);
      const bid = bidFromSubmission(d.value, receivedAt, randomUUID);
      return produce(reply, [bidRecord(bid)], () => ({ bid_id: bid.bid_id, received_at: bid.received_at }));
    },
  );

  // "::" is fastify's escape for a literal colon (a single ":" starts a path parameter).
  app.post(
    "/v1/bids::batch",
    {
      bodyLimit: limits.maxBatchBytes,
      schema: {
        summary: "Submit many bids",
        description: `Up to ${limits.maxBatchItems} bids as {"bids": [...]}. All or nothing: when any bid is invalid the answer is 400 with one detail per invalid bid (by index) and nothing is produced.`,
        body: Type.Object({
          bids: Type.Array(inline(BidSubmissionSchema), { maxItems: limits.maxBatchItems }),
        }),
        response: responses(Type.Object({ accepted: Type.Integer(), bids: Type.Array(BidAcceptedResponse) })),
      },
    },
    async (req, reply) => {
      if (!guard(req, reply, "bids")) return reply;
      const receivedAt = now();
      let parsed: unknown;
      try {
        parsed = JSON.parse((req.body as Buffer).toString("utf8"));
      } catch (err) {
        return fail(reply, 400, "bad_request", `body: not valid JSON (${(err as Error).message})`);
      }
      const items = Array.isArray(parsed) ? parsed : (parsed as { bids?: unknown } | null)?.bids;
      if (!Array.isArray(items))
        return fail(reply, 400, "bad_request", 'body: must be {"bids": [...]} or an array of bids');
      if (items.length === 0) return fail(reply, 400, "bad_request", "bids: must hold at least one bid");
      if (items.length > limits.maxBatchItems)
        return fail(
          reply,
          413,
          "payload_too_large",
          `bids: ${items.length} bids, at most ${limits.maxBatchItems} per request`,
        );
      const details: { index: number; message: string }[] = [];
      const bids: BidEvent[] = [];
      const seen = new Map<string, number>();
      items.forEach((item, index) => {
        const d = decodeBidSubmission(item, { nowMs: receivedAt, maxFutureSkewMs: limits.maxFutureSkewMs });
        if (!d.ok) {
          details.push({ index, message: d.detail });
          return;
        }
        if (d.value.bid_id !== undefined) {
          const first = seen.get(d.value.bid_id);
          if (first !== undefined) {
            details.push({
              index,
              message: `bid_id: ${quoteId(d.value.bid_id)} already used by bid ${first} of this batch`,
            });
            return;
          }
          seen.set(d.value.bid_id, index);
        }
        bids.push(bidFromSubmission(d.value, receivedAt, randomUUID));
      });
      if (details.length > 0) {
        return fail(
          reply,
          400,
          "bad_request",
          `${details.length} of ${items.length} bids are invalid; nothing was accepted`,
          details.slice(0, 100),
        );
      }
      return produce(reply, bids.map(bidRecord), () => ({
        accepted: bids.length,
        bids: bids.map((b) => ({ bid_id: b.bid_id, received_at: b.received_at })),
      }));
    },
  );

  const withSchema = (body: unknown, schema: string): unknown => {
    if (Buffer.isBuffer(body)) {
      try {
        body = JSON.parse(body.toString("utf8"));
      } catch (err) {
        return { __invalid: `record: not valid JSON (${(err as Error).message})` };
      }
    }
    if (body !== null && typeof body === "object" && !Array.isArray(body) && !("schema" in body))
      return { schema, ...body };
    return body;
  };

  app.post(
    "/v1/auctions",
    {
      bodyLimit: limits.maxRecordBytes,
      schema: {
        summary: "Create or update an auction",
        description: "The `schema` field may be omitted (the current version is assumed).",
        body: inline(AuctionEventSchema),
        response: responses(Type.Object({ auction_id: Type.String() })),
      },
    },
    async (req, reply) => {
      if (!guard(req, reply, "auctions")) return reply;
      const body = withSchema(req.body, SCHEMA.auction) as { __invalid?: string };
      if (body?.__invalid) return fail(reply, 400, "bad_request", body.__invalid);
      const d = decodeAuction(body);
      if (!d.ok) return fail(reply, 400, "bad_request", d.detail);
      const a = d.value;
      return produce(
        reply,
        [{ topic: deps.topics.auctions, message: { key: a.auction_id, value: JSON.stringify(a) } }],
        () => ({ auction_id: a.auction_id }),
      );
    },
  );

  app.post(
    "/v1/users",
    {
      bodyLimit: limits.maxRecordBytes,
      schema: {
        summary: "Create or update a user",
        description: "The `schema` field may be omitted (the current version is assumed).",
        body: inline(UserEventSchema),
        response: responses(Type.Object({ user_id: Type.String() })),
      },
    },
    async (req, reply) => {
      if (!guard(req, reply, "users")) return reply;
      const body = withSchema(req.body, SCHEMA.user) as { __invalid?: string };
      if (body?.__invalid) return fail(reply, 400, "bad_request", body.__invalid);
      const d = decodeUser(body);
      if (!d.ok) return fail(reply, 400, "bad_request", d.detail);
      const u = d.value;
      return produce(
        reply,
        [{ topic: deps.topics.users, message: { key: u.user_id, value: JSON.stringify(u) } }],
        () => ({ user_id: u.user_id }),
      );
    },
  );

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  return app;
}
