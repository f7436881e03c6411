/**
 * OpenTelemetry for every Gavel process: a tracer provider (W3C trace
 * context, async-local context, OTLP/HTTP export when the standard `OTEL_*`
 * variables name an endpoint, no exporter otherwise), helpers that carry the
 * trace context in Kafka record headers, and the OTel settings the metrics
 * registry (processors/runtime/metrics.ts) shares.
 *
 * The OpenTelemetry API is process-global by design (the context and the
 * active span are ambient); `startTracing` installs it once per process and
 * returns the same handle on later calls.
 */
import {
  type Context,
  context,
  type Link,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import {
  detectResources,
  envDetector,
  type Resource,
  resourceFromAttributes,
} from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  type SpanExporter,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from "@opentelemetry/sdk-trace";
import { ATTR_SERVICE_NAME } from "@opentelemetry/semantic-conventions";
import { ENV, envValue } from "../api/env.ts";

/** Instrumentation scope of every Gavel span and metric. */
export const SCOPE = "gavel";

/** What the environment asks of OpenTelemetry. */
export interface TelemetryConfig {
  readonly serviceName: string;
  /** Export spans over OTLP/HTTP (an endpoint is set and OTEL_TRACES_EXPORTER is not `none`). */
  readonly otlpTraces: boolean;
  /** Export metrics over OTLP/HTTP besides the Prometheus endpoint. */
  readonly otlpMetrics: boolean;
  /** Interval of OTLP metric export, ms (OTEL_METRIC_EXPORT_INTERVAL, default 60000). */
  readonly metricExportIntervalMs: number;
  readonly sampler: Sampler;
}

function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const name = envValue("otelSampler", env).trim().toLowerCase();
  const ratio = Number(envValue("otelSamplerArg", env));
  const r = Number.isFinite(ratio) ? Math.min(1, Math.max(0, ratio)) : 1;
  switch (name) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return new TraceIdRatioBasedSampler(r);
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(r) });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/**
 * A positive number of milliseconds from the environment, else the
 * documented default: a mistyped interval must not stop a process from
 * starting, so it is tolerated here, unlike a connection setting.
 */
function positiveMs(key: "otelMetricInterval" | "otelBspDelay", env: NodeJS.ProcessEnv): number {
  const n = Number(envValue(key, env));
  return Number.isFinite(n) && n > 0 ? n : Number(ENV[key].default);
}

/**
 * The standard `OTEL_*` variables (api/env.ts); empty counts as unset, as the
 * OpenTelemetry specification says.
 */
export function telemetryConfigFromEnv(
  defaultServiceName: string,
  env: NodeJS.ProcessEnv = process.env,
): TelemetryConfig {
  const disabled = envValue("otelSdkDisabled", env) === "true";
  const exporterOn = (v: string | undefined) => !disabled && (v ?? "otlp").split(",").includes("otlp");
  const endpoint = envValue("otlpEndpoint", env);
  return {
    serviceName: envValue("otelServiceName", env) ?? defaultServiceName,
    otlpTraces:
      exporterOn(envValue("otelTracesExporter", env)) && !!(endpoint || envValue("otlpTracesEndpoint", env)),
    otlpMetrics:
      exporterOn(envValue("otelMetricsExporter", env)) &&
      !!(endpoint || envValue("otlpMetricsEndpoint", env)),
    metricExportIntervalMs: positiveMs("otelMetricInterval", env),
    sampler: samplerFromEnv(env),
  };
}

/**
 * service.name plus OTEL_RESOURCE_ATTRIBUTES (read by the env detector from
 * the process environment); OTEL_SERVICE_NAME wins over both, as the
 * specification says.
 */
export function telemetryResource(cfg: Pick<TelemetryConfig, "serviceName">, env = process.env): Resource {
  const base = resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  return envValue("otelServiceName", env) !== undefined
    ? base.merge(resourceFromAttributes({ [ATTR_SERVICE_NAME]: cfg.serviceName }))
    : base;
}

export interface Tracing {
  readonly provider: TracerProvider;
  /** Flushes and stops export (call on shutdown). */
  shutdown(): Promise<void>;
}

let installed: Tracing | undefined;
let exporting = false;

/**
 * Whether finished spans go anywhere (an exporter or span processor was
 * installed). Without one, per-record spans are work nobody reads: the
 * consumers then carry each record's trace context from its headers instead
 * (trace ids still reach logs and produced headers).
 */
export function spansExported(): boolean {
  return exporting;
}

/**
 * Installs the global tracer provider, the async-local context manager and
 * the W3C trace-context + baggage propagators. Spans are always created (so
 * trace ids reach logs and Kafka headers); they are exported only when the
 * environment names an OTLP endpoint or `processors` are passed (tests pass an
 * in-memory exporter). Later calls return the first installation.
 */
export function startTracing(
  serviceName: string,
  opts: {
    env?: NodeJS.ProcessEnv;
    exporters?: readonly SpanExporter[];
    processors?: readonly SpanProcessor[];
  } = {},
): Tracing {
  if (installed) return installed;
  const cfg = telemetryConfigFromEnv(serviceName, opts.env);
  const spanProcessors: SpanProcessor[] = [...(opts.processors ?? [])];
  const delay = positiveMs("otelBspDelay", opts.env ?? process.env);
  const batch = (exporter: SpanExporter) => new BatchSpanProcessor({ exporter, scheduledDelayMillis: delay });
  for (const e of opts.exporters ?? []) spanProcessors.push(batch(e));
  if (cfg.otlpTraces) spanProcessors.push(batch(new OTLPTraceExporter()));
  exporting = spanProcessors.length > 0;
  const provider = new TracerProvider({
    resource: telemetryResource(cfg, opts.env),
    sampler: cfg.sampler,
    spanProcessors,
  });
  const cm = new AsyncLocalStorageContextManager();
  cm.enable();
  context.setGlobalContextManager(cm);
  propagation.setGlobalPropagator(
    new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
  );
  trace.setGlobalTracerProvider(provider);
  installed = {
    provider,
    shutdown: async () => {
      await provider.shutdown();
    },
  };
  return installed;
}

/** The Gavel tracer (a no-op until `startTracing` ran). */
export function tracer() {
  return trace.getTracer(SCOPE);
}

/** Kafka record headers as Gavel's transport types carry them. */
export type Headers = Readonly<Record<string, string>>;

const headerGetter: TextMapGetter<Headers> = {
  keys: (h) => Object.keys(h),
  get: (h, k) => h[k],
};

/** W3C `traceparent` (+ `tracestate`, `baggage`) of `ctx` as Kafka headers; empty without a valid span. */
export function traceHeaders(ctx: Context = context.active()): Record<string, string> {
  const out: Record<string, string> = {};
  propagation.inject(ctx, out);
  return out;
}

/** The context a producer put into a record's headers (the root context when there is none). */
export function contextFromHeaders(headers: Headers | undefined, base: Context = context.active()): Context {
  if (!headers) return base;
  return propagation.extract(base, headers, headerGetter);
}

/**
 * Runs `fn` inside a new span; records an exception and sets the error
 * status when it throws. The span ends when `fn` settles.
 */
export async function withSpan<T>(
  name: string,
  opts: {
    kind?: SpanKind;
    attributes?: Record<string, string | number | boolean>;
    links?: Link[];
    parent?: Context;
  },
  fn: (span: Span) => Promise<T>,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = tracer().startSpan(
    name,
    {
      kind: opts.kind ?? SpanKind.INTERNAL,
      ...(opts.attributes ? { attributes: opts.attributes } : {}),
      ...(opts.links ? { links: opts.links } : {}),
    },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

export { SpanKind, SpanStatusCode };

/** The parts of a fastify instance the HTTP tracing hooks need (kept structural: lib/ does not depend on fastify). */
interface HookableServer {
  addHook(
    name: "onRequest",
    hook: (
      req: {
        method: string;
        url: string;
        routeOptions: { url?: string | undefined };
        raw: { headers: Record<string, unknown> };
      },
      reply: unknown,
      done: (err?: Error) => void,
    ) => void,
  ): unknown;
  addHook(
    name: "preHandler",
    hook: (req: { url: string }, reply: unknown, done: (err?: Error) => void) => void,
  ): unknown;
  addHook(
    name: "onResponse",
    hook: (req: { url: string }, reply: { statusCode: number }, done: (err?: Error) => void) => void,
  ): unknown;
}

const httpSpans = new WeakMap<object, Span>();
const UNTRACED = new Set(["/metrics", "/healthz", "/readyz"]);

/**
 * A SERVER span per HTTP request (semantic conventions: `http.request.method`,
 * `http.route`, `url.path`, `http.response.status_code`), continuing a W3C
 * `traceparent` sent by the client. The handler runs inside the span's
 * context, so spans and Kafka headers made while handling it belong to the
 * request's trace. Probes and /metrics are not traced.
 */
export function traceHttpServer(app: HookableServer): void {
  app.addHook("onRequest", (req, _reply, done) => {
    const path = req.url.split("?")[0] ?? req.url;
    if (UNTRACED.has(path)) return done();
    const route = req.routeOptions.url ?? path;
    const parent = propagation.extract(context.active(), req.raw.headers, {
      keys: (h) => Object.keys(h),
      get: (h, k) => {
        const v = h[k];
        return typeof v === "string" || Array.isArray(v) ? (v as string | string[]) : undefined;
      },
    });
    const span = tracer().startSpan(
      `${req.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "http.request.method": req.method, "http.route": route, "url.path": path },
      },
      parent,
    );
    httpSpans.set(req, span);
    context.with(trace.setSpan(parent, span), () => done());
  });
  // The body is read from socket events, outside the onRequest context: re-enter it for the handler.
  app.addHook("preHandler", (req, _reply, done) => {
    const span = httpSpans.get(req);
    if (span) context.with(trace.setSpan(context.active(), span), () => done());
    else done();
  });
  app.addHook("onResponse", (req, reply, done) => {
    const span = httpSpans.get(req);
    if (span) {
      span.setAttribute("http.response.status_code", reply.statusCode);
      if (reply.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      httpSpans.delete(req);
    }
    done();
  });
}
