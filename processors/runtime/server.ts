import type { IncomingMessage, ServerResponse } from "node:http";
import type {} from "@fastify/swagger";
import Fastify, {
  type FastifyInstance,
  type FastifyServerOptions,
  LogController,
  type RawServerDefault,
} from "fastify";
import type { Logger } from "../../lib/log.ts";
import { traceHttpServer } from "../../lib/telemetry.ts";
import type { Registry } from "./metrics.ts";

/** The server type (fastify with our pino logger). */
export type App = FastifyInstance<RawServerDefault, IncomingMessage, ServerResponse, Logger>;

function makeApp(logger: Logger, bodyLimit: number): App {
  return Fastify({
    loggerInstance: logger,
    // No per-request log lines (the top-level option is deprecated in fastify 5.12).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    return503OnClosing: true,
  });
}

export interface HealthState {
  /** Alive: false only when the process should be restarted. */
  live(): boolean;
  /** Ready: connected and serving (consumers: partitions assigned and state rebuilt). */
  ready(): { ok: boolean; reason?: string };
}

/**
 * The common HTTP server of every processor: `/healthz` (liveness), `/readyz`
 * (readiness with a reason) and `/metrics` (Prometheus text). Ingest adds its
 * API routes to the same instance.
 */
export function createServer(
  opts: { logger: Logger; metrics: Registry; health: HealthState } & Pick<FastifyServerOptions, "bodyLimit">,
): App {
  const app = makeApp(opts.logger, opts.bodyLimit ?? 1_048_576);
  traceHttpServer(app);
  app.get("/healthz", { schema: { hide: true } }, async (_req, reply) => {
    if (!opts.health.live()) return reply.code(503).send({ status: "dead" });
    return { status: "ok" };
  });
  app.get("/readyz", { schema: { hide: true } }, async (_req, reply) => {
    const r = opts.health.ready();
    if (!r.ok) return reply.code(503).send({ status: "not ready", reason: r.reason ?? "starting" });
    return { status: "ready" };
  });
  app.get("/metrics", { schema: { hide: true } }, async (_req, reply) => {
    return reply.type("text/plain; version=0.0.4; charset=utf-8").send(await opts.metrics.render());
  });
  return app;
}
