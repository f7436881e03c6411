import { allTopics, s3Prefix } from "../../api/v1alpha1/pipeline.ts";
import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../kafka/client.ts";
import { kafkaBrokers, type ProcessorConfig, s3ClientFor } from "../runtime/config.ts";
import { Registry } from "../runtime/metrics.ts";
import { createServer } from "../runtime/server.ts";
import { exitOnFailure, handleSignals } from "../runtime/shell.ts";
import { BronzeArchiver } from "./archiver.ts";

/** Tuning of the archiver beyond the connection settings. */
export const BRONZE_ENV = {
  maxAgeMs: "GAVEL_BRONZE_MAX_AGE_MS",
  maxRecords: "GAVEL_BRONZE_MAX_RECORDS",
} as const;

export interface RunningProcessor {
  readonly url: string;
  close(): Promise<void>;
  /** Set when a Kafka consumer stopped for good (see `exitOnFailure`). */
  failure(): Error | undefined;
}

export async function runBronzeArchiver(
  cfg: ProcessorConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningProcessor> {
  const logger = createLogger("bronze-archiver");
  const metrics = new Registry();
  const transport = await createTransport({
    brokers: kafkaBrokers(cfg),
    clientId: `gavel-bronze-archiver-${cfg.instanceId}`,
    logger,
  });
  const admin = await transport.admin();
  const num = (name: string) => (env[name] ? Number(env[name]) : undefined);
  const archiver = new BronzeArchiver({
    transport,
    admin,
    s3: s3ClientFor(cfg),
    bucket: cfg.conn.s3Bucket ?? cfg.pipeline.spec.storage.s3.bucket,
    prefix: s3Prefix(cfg.pipeline),
    topics: allTopics(cfg.pipeline)
      .filter((t) => !t.key.startsWith("extra:"))
      .map((t) => t.name),
    groupId: `${cfg.pipeline.metadata.name}.bronze-archiver`,
    logger,
    metrics,
    maxAgeMs: num(BRONZE_ENV.maxAgeMs),
    maxRecords: num(BRONZE_ENV.maxRecords),
  });
  const server = createServer({
    logger,
    metrics,
    health: { live: () => !archiver.failure(), ready: () => archiver.ready() },
  });
  const url = await server.listen({ port: cfg.port, host: cfg.host });
  await archiver.start();
  logger.info({ url, group: archiver.groupId }, "bronze-archiver running");
  return {
    url,
    failure: () => archiver.failure(),
    close: async () => {
      await archiver.close();
      await server.close();
      await admin.close();
    },
  };
}

export async function main(cfg: ProcessorConfig): Promise<void> {
  const running = await runBronzeArchiver(cfg);
  const logger = createLogger("bronze-archiver");
  handleSignals({ logger, processor: running });
  exitOnFailure({ logger, processor: running, failure: running.failure });
}
