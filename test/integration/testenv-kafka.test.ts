import { randomUUID } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { KafkajsTransport } from "../../processors/kafka/kafkajs.ts";
import type { Admin, KafkaRecord } from "../../processors/kafka/transport.ts";

// The broker of the test environment is real: records go through Gavel's own
// transport (admin, idempotent producer, consumer group with manual commits).
const transport = new KafkajsTransport({
  brokers: requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS"),
  clientId: "testenv-kafka-test",
  logger: createLogger("testenv-kafka-test", "warn"),
});

describe("Kafka broker", () => {
  const topic = `testenv.bids.${randomUUID().slice(0, 8)}`;
  const groupId = `testenv-${randomUUID().slice(0, 8)}`;
  let admin: Admin | undefined;
  afterAll(async () => {
    await admin?.deleteTopics([topic]).catch(() => undefined);
    await admin?.close();
  });

  it("refuses to auto-create topics (auto.create.topics.enable=false)", async () => {
    admin = await transport.admin();
    const found = await admin.describeTopics([`testenv.absent.${randomUUID().slice(0, 8)}`]);
    expect(found.size).toBe(0);
  });

  it("produces and consumes keyed records through a consumer group and commits offsets", async () => {
    admin ??= await transport.admin();
    await admin.createTopics([{ name: topic, partitions: 3, replicationFactor: 1 }]);
    const producer = await transport.producer();
    const sent = Array.from({ length: 30 }, (_, i) => ({
      key: `auction-${i % 5}`,
      value: JSON.stringify({ bid_id: `b-${i}`, amount: 100 + i }),
    }));
    await producer.send([{ topic, messages: sent }]);
    await producer.close();

    const got: KafkaRecord[] = [];
    const consumer = transport.consumer({ groupId, fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void consumer.run([topic], {
        async eachBatch(batch, ctx) {
          got.push(...batch.records);
          const last = batch.records.at(-1);
          if (last) {
            ctx.markProcessed(last.offset);
            await consumer.commit([{ topic, partition: batch.partition, offset: last.offset + 1 }]);
          }
          if (got.length >= sent.length) resolve();
        },
      });
    });
    await Promise.race([
      done,
      new Promise((_, rej) => setTimeout(() => rej(new Error("timed out consuming")), 60_000)),
    ]);
    await consumer.stop();

    expect(got.map((r) => JSON.parse(String(r.value)).bid_id).sort()).toEqual(
      sent.map((m) => JSON.parse(m.value).bid_id).sort(),
    );
    // One key, one partition: every record of an auction is on the same partition.
    const partitionOfKey = new Map<string, Set<number>>();
    for (const r of got)
      partitionOfKey.set(r.key!, (partitionOfKey.get(r.key!) ?? new Set()).add(r.partition));
    for (const parts of partitionOfKey.values()) expect(parts.size).toBe(1);
    const committed = await admin.groupOffsets(groupId, topic);
    const high = await admin.topicOffsets(topic);
    // A partition no key hashed to has no committed offset (-1).
    expect(committed.map((c) => Math.max(c.offset, 0)).reduce((a, b) => a + b, 0)).toBe(sent.length);
    expect(high.map((h) => h.high).reduce((a, b) => a + b, 0)).toBe(sent.length);
  });
});
