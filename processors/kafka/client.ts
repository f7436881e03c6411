import { type KafkaSecurity, readKafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { KafkajsTransport } from "./kafkajs.ts";
import { checkKafkaAccess } from "./preflight.ts";
import type { Transport } from "./transport.ts";

/**
 * Which Kafka client library a process uses: `kafkajs` (pure JavaScript) or
 * `confluent` (librdkafka through the optional `@confluentinc/kafka-javascript`,
 * built from source at install). Unset, each process takes the one measured
 * faster for its work (`preferred`: librdkafka for the bid-processor, kafkajs
 * elsewhere; docs/benchmarks.md), and kafkajs where librdkafka is not built.
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
  /** Check the connection and credentials before the client starts (default true when secured). */
  readonly preflight?: boolean;
  /** The client when GAVEL_KAFKA_CLIENT is unset (default kafkajs); librdkafka falls back to kafkajs where it is not built. */
  readonly preferredClient?: KafkaClientName;
}

/** GAVEL_KAFKA_CLIENT, or undefined when unset (each process then takes its preferred client). */
export function kafkaClientFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaClientName | undefined {
  const v = env[KAFKA_CLIENT_ENV];
  if (v === undefined || v === "") return undefined;
  if (!(KAFKA_CLIENTS as readonly string[]).includes(v))
    throw new Error(`${KAFKA_CLIENT_ENV} must be one of ${KAFKA_CLIENTS.join(", ")}, got '${v}'`);
  return v as KafkaClientName;
}

/** Whether the optional librdkafka client loads here. */
async function confluentLoads(): Promise<boolean> {
  try {
    await (await import("./confluent.ts")).loadConfluent();
    return true;
  } catch {
    return false;
  }
}

/**
 * The client a process uses: `client` when given, else GAVEL_KAFKA_CLIENT,
 * else its preferred one (librdkafka only where it loads; said in a log line
 * otherwise).
 */
export async function chooseKafkaClient(
  opts: Pick<TransportOptions, "preferredClient" | "logger">,
  client: KafkaClientName | undefined = kafkaClientFromEnv(),
): Promise<KafkaClientName> {
  if (client) return client;
  const preferred = opts.preferredClient ?? "kafkajs";
  if (preferred === "kafkajs" || (await confluentLoads())) return preferred;
  opts.logger.warn(
    `the librdkafka client (${KAFKA_CLIENT_ENV}=confluent, this process's default) is not built here: using kafkajs; build it with 'CKJS_LINKING=dynamic npm install' or set ${KAFKA_CLIENT_ENV}=kafkajs`,
  );
  return "kafkajs";
}

/** The transport chosen by `chooseKafkaClient`; the librdkafka one is imported only when chosen. */
export async function createTransport(
  opts: TransportOptions,
  explicit?: KafkaClientName,
): Promise<Transport> {
  const client = await chooseKafkaClient(opts, explicit ?? kafkaClientFromEnv());
  // Said at info where it is not plain kafkajs (the bid-processor's librdkafka, a forced client); tools stay quiet.
  const plain = client === "kafkajs" && !opts.preferredClient && !explicit && !kafkaClientFromEnv();
  opts.logger[plain ? "debug" : "info"]({ kafkaClient: client }, `Kafka client: ${client}`);
  const security = opts.security ?? readKafkaSecurity();
  // A secured cluster is checked once before a client starts: a wrong
  // password, an untrusted or expired certificate or a host name the
  // certificate does not name fails here in one line that names the setting,
  // instead of inside a client's retry loop (processors/kafka/preflight.ts).
  if (security && opts.preflight !== false) await checkKafkaAccess(opts.brokers, security);
  if (client === "confluent")
    return (await import("./confluent.ts")).createConfluentTransport({
      ...opts,
      ...(security ? { security } : {}),
    });
  return new KafkajsTransport({ ...opts, ...(security ? { security } : {}) });
}
