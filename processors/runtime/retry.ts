import pRetry, { AbortError } from "p-retry";
import type { Logger } from "../../lib/log.ts";

/** An error that says whether retrying can help. */
export class ProcessorError extends Error {
  readonly retriable: boolean;
  constructor(message: string, retriable: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ProcessorError";
    this.retriable = retriable;
  }
}

// PostgreSQL SQLSTATE classes/codes that are transient: connection
// exceptions (08), serialization failure, deadlock, admin shutdown, cannot
// connect now, too many connections, lock timeout.
const PG_RETRIABLE = new Set(["40001", "40P01", "57P01", "57P02", "57P03", "53300", "55P03"]);
const NET_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
]);

/**
 * The one place that decides whether an error is transient. An explicit
 * `retriable` flag (ours, kafkajs's) wins; then PostgreSQL SQLSTATEs, network
 * codes and S3 5xx/throttling; programming errors never retry; anything else
 * is assumed transient (the retry budget bounds the cost of being wrong).
 */
export function isRetriable(err: unknown): boolean {
  if (err === null || typeof err !== "object") return false;
  const e = err as {
    retriable?: unknown;
    code?: unknown;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
    cause?: unknown;
  };
  if (typeof e.retriable === "boolean") {
    // kafkajs marks some wrapped errors non-retriable although the cause is a broker outage.
    if (!e.retriable && e.cause !== undefined && e.cause !== err) return isRetriable(e.cause);
    return e.retriable;
  }
  if (typeof e.code === "string") {
    if (/^[0-9A-Z]{5}$/.test(e.code)) return e.code.startsWith("08") || PG_RETRIABLE.has(e.code);
    if (NET_CODES.has(e.code)) return true;
  }
  if (e.$retryable !== undefined) return true;
  const status = e.$metadata?.httpStatusCode;
  if (typeof status === "number") return status >= 500 || status === 429 || status === 408;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  return true;
}

export interface RetryOptions {
  readonly what: string;
  readonly logger: Logger;
  /** Attempts after the first one. Default 8. */
  readonly retries?: number;
  readonly minTimeoutMs?: number;
  readonly maxTimeoutMs?: number;
  /** Stop retrying when this returns false (e.g. shutting down). */
  readonly shouldContinue?: () => boolean;
}

/** Runs `fn`, retrying transient failures with exponential backoff and jitter. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  return pRetry(
    async (attempt) => {
      try {
        return await fn(attempt);
      } catch (err) {
        if (!isRetriable(err) || (opts.shouldContinue && !opts.shouldContinue())) {
          throw new AbortError(err instanceof Error ? err : new Error(String(err)));
        }
        throw err;
      }
    },
    {
      retries: opts.retries ?? 8,
      minTimeout: opts.minTimeoutMs ?? 200,
      maxTimeout: opts.maxTimeoutMs ?? 10_000,
      randomize: true,
      onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
        opts.logger.warn({ err: error, attemptNumber, retriesLeft }, `${opts.what} failed, retrying`);
      },
    },
  );
}
