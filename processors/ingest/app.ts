/**
 * The ingest HTTP API: bids, auctions and users in, Kafka records out, on the
 * processor's server (`/healthz`, `/readyz`, `/metrics`). Its parts: the
 * OpenAPI document (openapi.ts), error bodies (errors.ts), authentication
 * (auth-hook.ts), the routes per resource (bid-routes.ts, record-routes.ts)
 * and the publishing of their records (publish.ts).
 */
import { DEFAULT_MAX_FUTURE_SKEW_MS } from "../../api/events/decode.ts";
import type { Logger } from "../../lib/log.ts";
import type { Registry } from "../runtime/metrics.ts";
import { type App, createServer, type HealthState } from "../runtime/server.ts";
import type { ApiKey, Scope } from "./auth.ts";
import { requireScope } from "./auth-hook.ts";
import type { BatchingProducer } from "./batcher.ts";
import { bidRoutes } from "./bid-routes.ts";
import { mapFastifyErrors } from "./errors.ts";
import { registerOpenApi } from "./openapi.ts";
import { type Publish, publisher } from "./publish.ts";
import { auctionRoute, userRoute } from "./record-routes.ts";

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

/** What the routes share: settings, the clock, the auth hook per scope, publishing. */
export interface RouteContext {
  readonly topics: IngestTopics;
  readonly limits: Required<IngestLimits>;
  readonly now: () => number;
  readonly requireScope: (scope: Scope) => ReturnType<typeof requireScope>;
  readonly publish: Publish;
}

function resolveLimits(l: IngestLimits = {}): Required<IngestLimits> {
  return {
    maxRecordBytes: l.maxRecordBytes ?? 64 * 1024,
    maxBatchBytes: l.maxBatchBytes ?? 4 * 1024 * 1024,
    maxBatchItems: l.maxBatchItems ?? 1000,
    retryAfterSeconds: l.retryAfterSeconds ?? 1,
    maxFutureSkewMs: l.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS,
  };
}

/** Requests and their latency (the broker ack included), by route and status. */
function countRequests(app: App, metrics: Registry): void {
  const requests = metrics.counter("ingest_requests_total", "HTTP requests by route and status.");
  const latency = metrics.histogram("ingest_request_seconds", "Request latency including the broker ack.");
  app.addHook("onResponse", async (req, reply) => {
    requests.inc({ route: req.routeOptions.url ?? "unknown", status: String(reply.statusCode) });
    latency.observe({ route: req.routeOptions.url ?? "unknown" }, reply.elapsedTime / 1000);
  });
}

/**
 * The ingest HTTP API. Validation is the event contract's decoders' (one
 * source of truth with the stream path, precise messages): fastify's own
 * validator is switched off and a JSON body reaches the route as bytes, so
 * each record is parsed and checked once.
 */
export async function buildIngestApp(deps: IngestDeps): Promise<App> {
  const limits = resolveLimits(deps.limits);
  const app = createServer({
    logger: deps.logger,
    metrics: deps.metrics,
    health: deps.health,
    bodyLimit: limits.maxBatchBytes,
  });
  countRequests(app, deps.metrics);
  await registerOpenApi(app);
  app.setValidatorCompiler(() => () => true);
  app.removeContentTypeParser(["application/json"]);
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
  mapFastifyErrors(app);

  const ctx: RouteContext = {
    topics: deps.topics,
    limits,
    now: deps.now ?? Date.now,
    requireScope: (scope) => requireScope(deps.keys, scope),
    publish: publisher({ ...deps, retryAfterSeconds: limits.retryAfterSeconds }),
  };
  bidRoutes(app, ctx);
  auctionRoute(app, ctx);
  userRoute(app, ctx);
  return app;
}
