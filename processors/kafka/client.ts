import { ENV, envValue } from "../../api/env.ts";
import { type KafkaSecurity, readKafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { KafkajsTransport } from "./kafkajs.ts";
import { checkKafkaAccess } from "./preflight.ts";
import type { Transport } from "./transport.ts";

/**
 * The Kafka client libraries a process can use (GAVEL_KAFKA_CLIENT):
 * `kafkajs` (default, pure JavaScript) or `confluent` (librdkafka through the
 * optional `@confluentinc/kafka-javascript`, built from source at install).
 * ADR 0006 says why kafkajs stays the default for every process.
 */
export const KAFKA_CLIENTS = ["kafkajs", "confluent"] as const;
export type KafkaClientName = (typeof KAFKA_CLIENTS)[number];

export interface TransportOptions {
  /** Comma-separated `host:port` list (KAFKA_BOOTSTRAP_SERVERS). */
  readonly brokers: string;
  readonly clientId: string;
  readonly logger: Logger;
  /** SASL/TLS settings; default: from the KAFKA_SASL_* / KAFKA_TLS* environment (lib/config.ts). */
  readonly security?: KafkaSecurity;
}

export function kafkaClientFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaClientName {
  const v = envValue("kafkaClient", env);
  if (!(KAFKA_CLIENTS as readonly string[]).includes(v))
    throw new Error(`${ENV.kafkaClient.name} must be one of ${KAFKA_CLIENTS.join(", ")}, got '${v}'`);
  return v as KafkaClientName;
}

/** The transport chosen by GAVEL_KAFKA_CLIENT; the librdkafka one is imported only when chosen. */
export async function createTransport(
  opts: TransportOptions,
  client: KafkaClientName = kafkaClientFromEnv(),
): Promise<Transport> {
  if (client !== "kafkajs") opts.logger.info({ kafkaClient: client }, `Kafka client: ${client}`);
  const security = opts.security ?? readKafkaSecurity();
  // A secured cluster is checked once before a client starts: a wrong
  // password, an untrusted or expired certificate or a host name the
  // certificate does not name fails here in one line that names the setting,
  // instead of inside a client's retry loop (processors/kafka/preflight.ts).
  if (security) await checkKafkaAccess(opts.brokers, security);
  if (client === "confluent")
    return (await import("./confluent.ts")).createConfluentTransport({
      ...opts,
      ...(security ? { security } : {}),
    });
  return new KafkajsTransport({ ...opts, ...(security ? { security } : {}) });
}
