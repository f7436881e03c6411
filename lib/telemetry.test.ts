import { context, trace } from "@opentelemetry/api";
import Fastify from "fastify";
import { describe, expect, it } from "vitest";
import { spansInMemory } from "../test/tracing.ts";
import { createLogger } from "./log.ts";
import {
  contextFromHeaders,
  telemetryConfigFromEnv,
  traceHeaders,
  traceHttpServer,
  tracer,
  withSpan,
} from "./telemetry.ts";

const spans = spansInMemory();

describe("telemetry configuration", () => {
  it("exports over OTLP only when an endpoint is set and the exporter is not none", () => {
    expect(telemetryConfigFromEnv("x", {})).toMatchObject({
      serviceName: "x",
      otlpTraces: false,
      otlpMetrics: false,
    });
    expect(
      telemetryConfigFromEnv("x", { OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SERVICE_NAME: "y" }),
    ).toMatchObject({ serviceName: "y", otlpTraces: true, otlpMetrics: true });
    expect(
      telemetryConfigFromEnv("x", {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_METRICS_EXPORTER: "none",
      }),
    ).toMatchObject({ otlpTraces: true, otlpMetrics: false });
    expect(
      telemetryConfigFromEnv("x", { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://c:4318/v1/traces" }),
    ).toMatchObject({ otlpTraces: true, otlpMetrics: false });
    expect(
      telemetryConfigFromEnv("x", {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_SDK_DISABLED: "true",
      }),
    ).toMatchObject({ otlpTraces: false, otlpMetrics: false });
  });

  it("treats an empty variable as unset, as the OpenTelemetry specification says", () => {
    expect(
      telemetryConfigFromEnv("x", {
        OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318",
        OTEL_SERVICE_NAME: "",
        OTEL_TRACES_EXPORTER: "",
        OTEL_METRIC_EXPORT_INTERVAL: "",
      }),
    ).toMatchObject({ serviceName: "x", otlpTraces: true, metricExportIntervalMs: 60_000 });
    expect(telemetryConfigFromEnv("x", { OTEL_METRIC_EXPORT_INTERVAL: "15000" }).metricExportIntervalMs).toBe(
      15_000,
    );
    expect(telemetryConfigFromEnv("x", { OTEL_METRIC_EXPORT_INTERVAL: "soon" }).metricExportIntervalMs).toBe(
      60_000,
    );
  });
});

describe("trace context", () => {
  it("round-trips through Kafka-style headers", async () => {
    await withSpan("produce", {}, async (span) => {
      const h = traceHeaders();
      const sc = trace.getSpanContext(contextFromHeaders(h, context.active()));
      expect(sc?.traceId).toBe(span.spanContext().traceId);
      expect(sc?.spanId).toBe(span.spanContext().spanId);
    });
    expect(traceHeaders(context.active())).toEqual({});
  });

  it("puts trace_id and span_id on log lines inside a span", async () => {
    const { pino } = await import("pino");
    // createLogger writes to stderr; its mixin is what adds the ids to every line.
    const log = createLogger("t");
    const mixin = (log as unknown as Record<symbol, () => object>)[pino.symbols.mixinSym];
    expect(mixin?.()).toEqual({});
    await withSpan("logged", {}, async (span) => {
      expect(mixin?.()).toEqual({ trace_id: span.spanContext().traceId, span_id: span.spanContext().spanId });
    });
  });

  it("makes a SERVER span per request that continues the caller's traceparent into the handler", async () => {
    spans.reset();
    const app = Fastify();
    traceHttpServer(app);
    let inHandler: Record<string, string> = {};
    app.post("/v1/bids", async (req) => {
      inHandler = traceHeaders();
      return { ok: (req.body as { a: number }).a };
    });
    app.get("/metrics", async () => "m");
    const parent = tracer().startSpan("client");
    const traceparent = traceHeaders(trace.setSpan(context.active(), parent)).traceparent ?? "";
    const res = await app.inject({
      method: "POST",
      url: "/v1/bids",
      headers: { traceparent, "content-type": "application/json" },
      payload: { a: 1 },
    });
    expect(res.statusCode).toBe(200);
    await app.inject({ method: "GET", url: "/metrics" });
    const server = spans.getFinishedSpans().filter((s) => s.kind === 1);
    expect(server.map((s) => s.name)).toEqual(["POST /v1/bids"]);
    const s = server[0];
    expect(s?.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(s?.attributes).toMatchObject({
      "http.request.method": "POST",
      "http.route": "/v1/bids",
      "http.response.status_code": 200,
    });
    expect(inHandler.traceparent).toBe(`00-${s?.spanContext().traceId}-${s?.spanContext().spanId}-01`);
    await app.close();
  });
});
