import { existsSync, writeFileSync } from "node:fs";
import type { Logger } from "../../lib/log.ts";
import { explainKafkaRefusal } from "../kafka/preflight.ts";

/** Where Kubernetes reads a container's termination message (`kubectl describe pod`: Last State). */
export const TERMINATION_LOG = "/dev/termination-log";

/**
 * Writes the reason a process gives up to the termination log when the
 * container has one (Kubernetes mounts it): the pod then shows the cause
 * next to its CrashLoopBackOff, with no need to read logs.
 */
export function writeTerminationMessage(message: string, file = TERMINATION_LOG): void {
  if (!existsSync(file)) return;
  try {
    writeFileSync(file, message.slice(0, 4096));
  } catch {
    // not writable: the log line is still there
  }
}

/** A running processor: `close` stops intake, finishes or abandons the in-flight batch and commits only what is done. */
export interface Closeable {
  close(): Promise<void>;
}

/**
 * Exits 1 once `failure()` reports an error (a Kafka consumer that stopped
 * for good): a process that stays up without consuming would hold its
 * partitions' work back until a liveness probe noticed. The orchestrator
 * restarts it; uncommitted work is redelivered.
 */
export function exitOnFailure(opts: {
  logger: Logger;
  processor: Closeable;
  failure: () => Error | undefined;
  intervalMs?: number;
}): NodeJS.Timeout {
  const timer = setInterval(() => {
    const err = opts.failure();
    if (!err) return;
    clearInterval(timer);
    // A refusal (a missing ACL) is said in one line naming the fix; other causes keep the generic line.
    const refusal = explainKafkaRefusal(err);
    opts.logger.fatal(
      { err },
      refusal ?? "a Kafka consumer stopped for good; exiting so the process is restarted",
    );
    writeTerminationMessage(refusal ?? `a Kafka consumer stopped for good: ${err.message}`);
    const deadline = setTimeout(() => process.exit(1), 10_000);
    deadline.unref();
    void opts.processor
      .close()
      .catch(() => undefined)
      .finally(() => process.exit(1));
  }, opts.intervalMs ?? 1_000);
  timer.unref();
  return timer;
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
