import { type KafkaSecurity, readKafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { KafkajsTransport } from "./kafkajs.ts";
import type { Transport } from "./transport.ts";

/**
 * Which Kafka client library the processors use: `kafkajs` (default, pure
 * JavaScript) or `confluent` (librdkafka through the optional
 * `@confluentinc/kafka-javascript`, built from source at install).
 */
export const KAFKA_CLIENT_ENV = "GAVEL_KAFKA_CLIENT";

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
  const v = env[KAFKA_CLIENT_ENV] || "kafkajs";
  if (!(KAFKA_CLIENTS as readonly string[]).includes(v))
    throw new Error(`${KAFKA_CLIENT_ENV} must be one of ${KAFKA_CLIENTS.join(", ")}, got '${v}'`);
  return v as KafkaClientName;
}

/** The transport chosen by GAVEL_KAFKA_CLIENT; the librdkafka one is imported only when chosen. */
export async function createTransport(
  opts: TransportOptions,
  client: KafkaClientName = kafkaClientFromEnv(),
): Promise<Transport> {
  const security = opts.security ?? readKafkaSecurity();
  if (client === "confluent") {
    if (security)
      throw new Error(
        `${KAFKA_CLIENT_ENV}=confluent does not support SASL/TLS yet (KAFKA_SASL_* / KAFKA_TLS* are set): use the default kafkajs client`,
      );
    return (await import("./confluent.ts")).createConfluentTransport(opts);
  }
  return new KafkajsTransport({ ...opts, ...(security ? { security } : {}) });
}
