import { isSpanContextValid, trace } from "@opentelemetry/api";
import { type Logger, pino } from "pino";
import { envValue } from "../api/env.ts";

export type { Logger };

/** Ids of the active OpenTelemetry span (only the light API package; lib/telemetry.ts installs the SDK). */
function traceIds(): Record<string, string> {
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId };
}

/**
 * Structured JSON logs on stderr (stdout stays free for command output such
 * as `gavel synth`). Secrets never reach a logger: the redact paths are a
 * last line of defence, not the policy. The level defaults to LOG_LEVEL,
 * which the operator sets from the pipeline's `logLevel`.
 */
export function createLogger(name: string, level = envValue("logLevel")): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      // trace_id/span_id of the active OpenTelemetry span, so a log line joins its trace.
      mixin: traceIds,
      redact: {
        paths: [
          "password",
          "*.password",
          "secret",
          "*.secret",
          "apiKey",
          "*.apiKey",
          "authorization",
          "*.authorization",
        ],
        censor: "[redacted]",
      },
    },
    pino.destination(2),
  );
}
