import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../kafka/client.ts";
import { kafkaBrokers, type ProcessorConfig } from "../runtime/config.ts";
import { Registry } from "../runtime/metrics.ts";
import { createServer } from "../runtime/server.ts";
import { exitOnFailure, handleSignals } from "../runtime/shell.ts";
import { BidProcessor } from "./processor.ts";

export interface RunningProcessor {
  readonly url: string;
  close(): Promise<void>;
  /** Set when a Kafka consumer stopped for good (see `exitOnFailure`). */
  failure(): Error | undefined;
}

/** Starts the bid-processor with its health/metrics server. */
export async function runBidProcessor(cfg: ProcessorConfig): Promise<RunningProcessor> {
  const logger = createLogger("bid-processor");
  const metrics = new Registry();
  const transport = await createTransport({
    brokers: kafkaBrokers(cfg),
    clientId: `gavel-bid-processor-${cfg.instanceId}`,
    logger,
  });
  const admin = await transport.admin();
  const processor = new BidProcessor({
    transport,
    admin,
    pipeline: cfg.pipeline,
    topics: cfg.topics,
    logger,
    metrics,
  });
  let failed: string | undefined;
  const server = createServer({
    logger,
    metrics,
    health: { live: () => failed === undefined && !processor.failure(), ready: () => processor.ready() },
  });
  const url = await server.listen({ port: cfg.port, host: cfg.host });
  try {
    await processor.start();
  } catch (err) {
    failed = (err as Error).message;
    await server.close();
    await admin.close();
    throw err;
  }
  logger.info({ url, group: processor.groupId }, "bid-processor running");
  return {
    url,
    failure: () => processor.failure(),
    close: async () => {
      await processor.close();
      await server.close();
      await admin.close();
    },
  };
}

export async function main(cfg: ProcessorConfig): Promise<void> {
  const running = await runBidProcessor(cfg);
  const logger = createLogger("bid-processor");
  handleSignals({ logger, processor: running });
  exitOnFailure({ logger, processor: running, failure: running.failure });
}
