import { GavelError } from "../../lib/errors.ts";

/**
 * How a reconcile ends. Returning normally means "converged or waiting";
 * throwing a TerminalError means "retrying cannot help until the spec
 * changes" (no backoff loop); any other error is retried with exponential
 * backoff.
 */
export interface ReconcileResult {
  /** Reconcile this key again after this many milliseconds (waiting on something external). */
  readonly requeueAfterMs?: number;
}

export class TerminalError extends GavelError {
  /** The Event and condition reason, e.g. `InvalidSpec`. */
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** HTTP status of a client-node ApiException (or undefined for other errors). */
export function httpStatus(err: unknown): number | undefined {
  if (err !== null && typeof err === "object" && "code" in err && typeof err.code === "number")
    return err.code;
  return undefined;
}

/** The API server's own message from an ApiException body, else the error message. */
export function apiMessage(err: unknown): string {
  if (err !== null && typeof err === "object" && "body" in err) {
    const body = (err as { body: unknown }).body;
    if (body !== null && typeof body === "object" && "message" in body && typeof body.message === "string")
      return body.message;
    if (typeof body === "string") {
      try {
        const parsed = JSON.parse(body) as { message?: unknown };
        if (typeof parsed.message === "string") return parsed.message;
      } catch {
        // not JSON: fall through to the error message
      }
    }
  }
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
