import { ENV, envNumber, envValue } from "../../api/env.ts";
import type { ProcessorConfig } from "../runtime/config.ts";
import { type ProcessorSpec, type RunningProcessor, startProcessor } from "../runtime/run.ts";
import { buildIngestApp } from "./app.ts";
import { type ApiKey, apiKeysFromEnv } from "./auth.ts";
import { BatchingProducer } from "./batcher.ts";

function resolveKeys(env: NodeJS.ProcessEnv): readonly ApiKey[] | "disabled" {
  if (envValue("ingestAuth", env) === "disabled") return "disabled";
  const keys = apiKeysFromEnv(env);
  if (keys.length === 0)
    throw new Error(
      `ingest needs API keys: set ${ENV.apiKeys.name} (comma-separated, KEY or KEY=bids+auctions+users) or ${ENV.apiKeysFile.name} (a mounted Secret), or ${ENV.ingestAuth.name}=disabled for local development`,
    );
  return keys;
}

/**
 * `gavel processor ingest`: a source. Its intake is its HTTP API on the
 * processor's server; closing stops accepting, lets in-flight requests get
 * their ack, then flushes and closes the producer.
 */
export const ingest: ProcessorSpec = {
  name: "ingest",
  kind: "source",
  async build({ cfg, env, logger, metrics, health, transport }) {
    const keys = resolveKeys(env);
    const producer = await (await transport()).producer();
    const batcher = new BatchingProducer(producer, {
      maxInFlight: envNumber(
        "ingestMaxInFlight",
        env,
        (n) => Number.isInteger(n) && n > 0,
        "a positive integer",
      ),
    });
    const server = await buildIngestApp({
      producer: batcher,
      topics: {
        bids: cfg.topics.bids.name,
        auctions: cfg.topics.auctions.name,
        users: cfg.topics.users.name,
      },
      keys,
      logger,
      metrics,
      health,
    });
    return {
      server,
      logged: { auth: keys === "disabled" ? "disabled" : `${keys.length} keys` },
      start: async () => undefined,
      ready: () => ({ ok: true }),
      close: () => batcher.close(),
    };
  },
};

export type RunningIngest = RunningProcessor;

/** Starts the ingest API (without the process's signal handling); resolves once it listens. */
export function runIngest(
  cfg: ProcessorConfig,
  env: NodeJS.ProcessEnv = process.env,
): Promise<RunningIngest> {
  return startProcessor(ingest, cfg, { env });
}
