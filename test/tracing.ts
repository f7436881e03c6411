/**
 * Tracing for unit tests that look at finished spans: installs the global
 * tracer provider (lib/telemetry.ts startTracing, with no OTLP export)
 * feeding an in-memory exporter the test reads. Shared so each test file does
 * not repeat the provider wiring.
 */
import { InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace";
import { startTracing } from "../lib/telemetry.ts";

/**
 * The spans this process finishes from now on. Call once at the top of a
 * test file: startTracing installs once per process, so a second installation
 * (with another exporter) would be ignored.
 */
export function spansInMemory(serviceName = "test"): InMemorySpanExporter {
  const spans = new InMemorySpanExporter();
  startTracing(serviceName, { env: {}, processors: [new SimpleSpanProcessor({ exporter: spans })] });
  return spans;
}
