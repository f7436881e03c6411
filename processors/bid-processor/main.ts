import { s3Prefix } from "../../api/v1alpha1/pipeline.ts";
import { createLogger } from "../../lib/log.ts";
import { FraudModels } from "../fraud/model.ts";
import { s3ModelStore } from "../fraud/store.ts";
import { ModelWatcher } from "../fraud/watcher.ts";
import { createTransport } from "../kafka/client.ts";
import { normalizePrefix } from "../rollup/lake.ts";
import { kafkaBrokers, type ProcessorConfig, s3ClientFor } from "../runtime/config.ts";
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

/** Longest the first look for fraud models may delay the start. */
const MODEL_LOAD_TIMEOUT_MS = 20_000;

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
  // Fraud models: loaded before the first bid is scored, so a restart scores
  // as the run before it (a model applies by record time, docs/fraud.md).
  const models = new FraudModels();
  const watcher = new ModelWatcher({
    store: s3ModelStore(s3ClientFor(cfg), cfg.conn.s3Bucket ?? cfg.pipeline.spec.storage.s3.bucket),
    prefix: normalizePrefix(s3Prefix(cfg.pipeline)),
    models,
    logger,
    metrics,
  });
  // Bounded: an unreachable store must not keep the processor from starting.
  if (!(await watcher.initial(MODEL_LOAD_TIMEOUT_MS)))
    logger.warn(
      `fraud models could not be listed within ${MODEL_LOAD_TIMEOUT_MS / 1000}s of start: scoring with the rules alone until the store answers (a model loaded then that is already active is logged as late)`,
    );
  watcher.consuming();
  watcher.start(cfg.pipeline.spec.fraud.model.pollSeconds * 1000);
  const processor = new BidProcessor({
    models,
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
    await watcher.stop();
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
      await watcher.stop();
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
