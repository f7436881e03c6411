/**
 * The kafkajs `TopicAdmin` of the gavel topic provisioner: describe, create
 * and grow through the processors' own `KafkajsTransport` admin (the code
 * `gavel topics apply` runs), topic configs through kafkajs' Describe/AlterConfigs.
 * One connection per reconcile pass, with few retries so that an unreachable
 * Kafka costs a worker seconds, not a minute.
 */
// Before kafkajs loads: two allocation fixes to its producer (lib/kafkajs-patches.ts).
import "../../lib/kafkajs-patches.ts";
import { type ConfigResourceTypes, type ConfigSource, Kafka, logLevel } from "kafkajs";
import type { Logger } from "../../lib/log.ts";
import { KafkajsTransport, kafkajsSecurityConfig } from "../../processors/kafka/kafkajs.ts";
import { checkKafkaAccess } from "../../processors/kafka/preflight.ts";
import type { KafkaConnection, TopicAdmin, TopicAdminFactory } from "./topics.ts";

const OPERATOR_CLIENT_ID = "gavel-operator";

// kafkajs' enums are not named exports of its CommonJS module under Node's ESM loader; the protocol values.
const TOPIC_RESOURCE = 2 as ConfigResourceTypes.TOPIC;
const TOPIC_CONFIG_SOURCE = 1 as ConfigSource.TOPIC_CONFIG;

function brokerList(brokers: string): string[] {
  return brokers
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A factory of kafkajs-backed admins; `retries` bounds how long a pass waits for an unreachable cluster. */
export function kafkajsTopicAdmin(log: Logger, opts: { retries?: number } = {}): TopicAdminFactory {
  const retries = opts.retries ?? 2;
  return async (conn: KafkaConnection): Promise<TopicAdmin> => {
    // A refused password or certificate becomes the TopicsReady message in
    // one line naming the Secret key to fix, not a kafkajs retry error.
    if (conn.security) await checkKafkaAccess(conn.brokers, conn.security);
    const transport = new KafkajsTransport({
      brokers: conn.brokers,
      clientId: OPERATOR_CLIENT_ID,
      logger: log,
      retries,
      ...(conn.security ? { security: conn.security } : {}),
    });
    const kafka = new Kafka({
      clientId: OPERATOR_CLIENT_ID,
      brokers: brokerList(conn.brokers),
      logLevel: logLevel.NOTHING,
      retry: { retries, initialRetryTime: 200, maxRetryTime: 2_000 },
      connectionTimeout: 5_000,
      ...kafkajsSecurityConfig(conn.security),
    });
    const base = await transport.admin();
    const raw = kafka.admin();
    try {
      await raw.connect();
    } catch (err) {
      await base.close().catch(() => undefined);
      throw err;
    }
    return {
      describeTopics: (names) => base.describeTopics(names),
      createTopics: (specs) => base.createTopics(specs),
      createPartitions: (name, n) => base.createPartitions(name, n),
      brokerCount: () => base.brokerCount(),
      async describeTopicConfigs(names) {
        const out = new Map<string, Record<string, string>>();
        if (names.length === 0) return out;
        const r = await raw.describeConfigs({
          includeSynonyms: false,
          resources: names.map((name) => ({ type: TOPIC_RESOURCE, name })),
        });
        for (const res of r.resources) {
          const own: Record<string, string> = {};
          for (const e of res.configEntries) {
            // Only the topic's own overrides: writing broker defaults back would pin them on the topic.
            const ownConfig =
              e.configSource === undefined ? !e.isDefault : e.configSource === TOPIC_CONFIG_SOURCE;
            if (ownConfig && !e.isSensitive && e.configValue !== null) own[e.configName] = e.configValue;
          }
          out.set(res.resourceName, own);
        }
        return out;
      },
      async replaceTopicConfigs(name, configs) {
        await raw.alterConfigs({
          validateOnly: false,
          resources: [
            {
              type: TOPIC_RESOURCE,
              name,
              configEntries: Object.entries(configs).map(([k, v]) => ({ name: k, value: v })),
            },
          ],
        });
      },
      async close() {
        await Promise.allSettled([base.close(), raw.disconnect()]);
      },
    };
  };
}
