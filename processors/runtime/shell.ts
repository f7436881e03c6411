import type { Logger } from "../../lib/log.ts";

/** A running processor: `close` stops intake, finishes or abandons the in-flight batch and commits only what is done. */
export interface Closeable {
  close(): Promise<void>;
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: mark not ready, close the processor,
 * close the HTTP server, exit 0. A second signal or the deadline exits at
 * once (uncommitted work is redelivered, never lost).
 */
export function handleSignals(opts: {
  logger: Logger;
  processor: Closeable;
  server?: { close(): PromiseLike<unknown> };
  deadlineMs?: number;
  onStopping?: () => void;
}): void {
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      opts.logger.warn({ signal }, "second signal, exiting now");
      process.exit(1);
    }
    stopping = true;
    opts.onStopping?.();
    opts.logger.info({ signal }, "shutting down");
    const timer = setTimeout(() => {
      opts.logger.error("shutdown deadline passed, exiting");
      process.exit(1);
    }, opts.deadlineMs ?? 25_000);
    timer.unref();
    try {
      await opts.processor.close();
      await opts.server?.close();
      opts.logger.info("stopped");
      process.exit(0);
    } catch (err) {
      opts.logger.error({ err }, "error during shutdown");
      process.exit(1);
    }
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
}
