import { pino, type Logger } from "pino";

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout stays free for command output such
 * as `gavel synth`). Secrets never reach a logger: the redact paths are a
 * last line of defence, not the policy.
 */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? "info"): Logger {
  return pino(
    {
      name,
      level,
      base: { service: name },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ["password", "*.password", "secret", "*.secret", "apiKey", "*.apiKey", "authorization", "*.authorization"],
        censor: "[redacted]",
      },
    },
    pino.destination(2),
  );
}
