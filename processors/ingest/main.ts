import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../kafka/client.ts";
import { kafkaBrokers, type ProcessorConfig } from "../runtime/config.ts";
import { Registry } from "../runtime/metrics.ts";
import { handleSignals } from "../runtime/shell.ts";
import { buildIngestApp } from "./app.ts";
import { type ApiKey, apiKeysFromEnv } from "./auth.ts";
import { BatchingProducer } from "./batcher.ts";

/** Environment of ingest beyond the connection settings. */
export const INGEST_ENV = {
  keys: "GAVEL_API_KEYS",
  keysFile: "GAVEL_API_KEYS_FILE",
  /** `disabled` turns authentication off (local development). */
  auth: "GAVEL_INGEST_AUTH",
  /** Most records waiting for the broker before 503 (default 20000). */
  maxInFlight: "GAVEL_INGEST_MAX_INFLIGHT",
} as const;

function resolveKeys(env: NodeJS.ProcessEnv): readonly ApiKey[] | "disabled" {
  if (env[INGEST_ENV.auth] === "disabled") return "disabled";
  const keys = apiKeysFromEnv(env);
  if (keys.length === 0)
    throw new Error(
      `ingest needs API keys: set ${INGEST_ENV.keys} (comma-separated, KEY or KEY=bids+auctions+users) or ${INGEST_ENV.keysFile} (a mounted Secret), or ${INGEST_ENV.auth}=disabled for local development`,
    );
  return keys;
}

export interface RunningIngest {
  readonly url: string;
  close(): Promise<void>;
}

/** Starts the ingest API; resolves once it listens. */
export async function runIngest(
  cfg: ProcessorConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningIngest> {
  const logger = createLogger("ingest");
  const keys = resolveKeys(env);
  const transport = await createTransport({
    brokers: kafkaBrokers(cfg),
    clientId: `gavel-ingest-${cfg.instanceId}`,
    logger,
  });
  const producer = await transport.producer();
  let stopping = false;
  const metrics = new Registry();
  const batcher = new BatchingProducer(producer, {
    maxInFlight: Number(env[INGEST_ENV.maxInFlight] ?? 20_000),
  });
  const app = await buildIngestApp({
    producer: batcher,
    topics: { bids: cfg.topics.bids.name, auctions: cfg.topics.auctions.name, users: cfg.topics.users.name },
    keys,
    logger,
    metrics,
    health: { live: () => true, ready: () => (stopping ? { ok: false, reason: "stopping" } : { ok: true }) },
  });
  const url = await app.listen({ port: cfg.port, host: cfg.host });
  logger.info({ url, auth: keys === "disabled" ? "disabled" : `${keys.length} keys` }, "ingest listening");
  const close = async () => {
    stopping = true;
    // Stop accepting, let in-flight requests get their ack, then flush and close the producer.
    await app.close();
    await batcher.close();
  };
  return { url, close };
}

export async function main(cfg: ProcessorConfig): Promise<void> {
  const running = await runIngest(cfg);
  handleSignals({ logger: createLogger("ingest"), processor: running });
}
