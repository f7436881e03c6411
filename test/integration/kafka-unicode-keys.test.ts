import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../../processors/kafka/client.ts";
import { partitionForKey } from "../../processors/kafka/memory.ts";
import { readToEnd } from "../../processors/kafka/read.ts";
import type { Admin, KafkaRecord, Transport } from "../../processors/kafka/transport.ts";

/**
 * Ids are Unicode text, and auction-scoped topics are co-partitioned by
 * auction_id: a real broker must see kafkajs and librdkafka put a Unicode
 * key on the same partition, the one the in-memory transport computes, and
 * hand the key back as the same text.
 */
const logger = createLogger("kafka-unicode-keys-test", "warn");
const brokers = requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS");

const KEYS = [
  "d*elmer",
  "*champaignbubbles*",
  "Jürgen",
  "Ju\u0308rgen",
  "名前の競売",
  "🦊 fox",
  "👨‍👩‍👧",
  'Ölfass & Söhne, "GmbH"',
  "ÿÿÿÿÿ",
  "😀".repeat(128),
  "g7-a-17",
];
const PARTITIONS = 12;

describe("Unicode keys on a real broker", () => {
  const topic = `uk-${randomUUID().slice(0, 8)}.bids`;
  const transports: Record<string, Transport> = {};
  let admin: Admin;

  beforeAll(async () => {
    transports.kafkajs = await createTransport({ brokers, clientId: "uk-kafkajs", logger }, "kafkajs");
    transports.confluent = await createTransport({ brokers, clientId: "uk-confluent", logger }, "confluent");
    admin = await transports.kafkajs.admin();
    await admin.createTopics([{ name: topic, partitions: PARTITIONS, replicationFactor: 1 }]);
  }, 60_000);
  afterAll(async () => {
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
  });

  it("kafkajs and librdkafka choose partitionForKey's partition and return the same key text", async () => {
    for (const [name, t] of Object.entries(transports)) {
      const p = await t.producer();
      await p.send([{ topic, messages: KEYS.map((key) => ({ key, value: `${name}|${key}` })) }]);
      await p.close();
    }
    const seen: KafkaRecord[] = [];
    await readToEnd({
      transport: transports.confluent!,
      admin,
      topic,
      groupPrefix: topic,
      onRecord: (r) => seen.push(r),
    });
    expect(seen).toHaveLength(2 * KEYS.length);
    for (const r of seen) {
      const [client, key] = (r.value?.toString("utf8") ?? "").split("|") as [string, string];
      expect(r.key, client).toBe(key);
      expect(r.partition, `${client} ${key}`).toBe(partitionForKey(key, PARTITIONS));
    }
  }, 120_000);
});
