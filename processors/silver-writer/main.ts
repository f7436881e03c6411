import { requireEnv } from "../../lib/config.ts";
import { migrate } from "../db/migrate.ts";
import { openPool } from "../db/pool.ts";
import { withRetry } from "../runtime/retry.ts";
import type { ProcessorSpec } from "../runtime/run.ts";
import { SILVER_CONCURRENCY, SilverWriter } from "./writer.ts";

/**
 * `gavel processor silver-writer`: a sink into PostgreSQL. Migrations run
 * first (advisory-locked, safe with many replicas), then it consumes.
 */
export const silverWriter: ProcessorSpec = {
  name: "silver-writer",
  kind: "sink",
  async build({ cfg, logger, metrics, transport, defer }) {
    const pool = openPool(requireEnv(cfg.conn, "databaseUrl"), {
      max: SILVER_CONCURRENCY,
      connectionTimeoutMillis: 5_000,
    });
    defer(() => pool.end());
    // An idle client losing its server (PostgreSQL restart) must not crash the process.
    pool.on("error", (err) => logger.warn({ err }, "idle database connection lost"));
    await withRetry(() => migrate(pool, { logger }), { what: "migrations", logger, retries: 10 });
    return new SilverWriter({
      transport: await transport(),
      pool,
      pipeline: cfg.pipeline,
      topics: cfg.topics,
      logger,
      metrics,
    });
  },
};
