import { requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { migrate } from "../db/migrate.ts";
import { openPool } from "../db/pool.ts";
import { createTransport } from "../kafka/client.ts";
import { kafkaBrokers, type ProcessorConfig } from "../runtime/config.ts";
import { Registry } from "../runtime/metrics.ts";
import { withRetry } from "../runtime/retry.ts";
import { createServer } from "../runtime/server.ts";
import { exitOnFailure, handleSignals } from "../runtime/shell.ts";
import { SilverWriter } from "./writer.ts";

export interface RunningProcessor {
  readonly url: string;
  close(): Promise<void>;
  /** Set when a Kafka consumer stopped for good (see `exitOnFailure`). */
  failure(): Error | undefined;
}

/** Starts the silver-writer: migrations first (advisory-locked, safe with many replicas), then consuming. */
export async function runSilverWriter(cfg: ProcessorConfig): Promise<RunningProcessor> {
  const logger = createLogger("silver-writer");
  const metrics = new Registry();
  const pool = openPool(requireEnv(cfg.conn, "databaseUrl", "DATABASE_URL"), {
    max: 4,
    connectionTimeoutMillis: 5_000,
  });
  // An idle client losing its server (PostgreSQL restart) must not crash the process.
  pool.on("error", (err) => logger.warn({ err }, "idle database connection lost"));
  await withRetry(() => migrate(pool, { logger }), { what: "migrations", logger, retries: 10 });
  const transport = await createTransport({
    brokers: kafkaBrokers(cfg),
    clientId: `gavel-silver-writer-${cfg.instanceId}`,
    logger,
  });
  const writer = new SilverWriter({
    transport,
    pool,
    pipeline: cfg.pipeline,
    topics: cfg.topics,
    logger,
    metrics,
  });
  const server = createServer({
    logger,
    metrics,
    health: { live: () => !writer.failure(), ready: () => writer.ready() },
  });
  const url = await server.listen({ port: cfg.port, host: cfg.host });
  await writer.start();
  logger.info({ url, group: writer.groupId }, "silver-writer running");
  return {
    url,
    failure: () => writer.failure(),
    close: async () => {
      await writer.close();
      await server.close();
      await pool.end();
    },
  };
}

export async function main(cfg: ProcessorConfig): Promise<void> {
  const running = await runSilverWriter(cfg);
  const logger = createLogger("silver-writer");
  handleSignals({ logger, processor: running });
  exitOnFailure({ logger, processor: running, failure: running.failure });
}
