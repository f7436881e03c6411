import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { KafkajsTransport } from "../../processors/kafka/kafkajs.ts";
import { readToEnd } from "../../processors/kafka/read.ts";
import { applyTopics } from "../../processors/kafka/topics.ts";
import type { Admin, GroupConsumer, KafkaRecord, TopicPartition } from "../../processors/kafka/transport.ts";

const logger = createLogger("processors-kafka-test", "warn");
const transport = new KafkajsTransport({
  brokers: requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS"),
  clientId: "processors-kafka-test",
  logger,
});

async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("Kafka transport", () => {
  const sfx = randomUUID().slice(0, 8);
  const a = `pk-${sfx}.a`;
  const b = `pk-${sfx}.b`;
  const out = `pk-${sfx}.out`;
  let admin: Admin;
  const consumers: GroupConsumer[] = [];
  beforeAll(async () => {
    admin = await transport.admin();
  });
  afterAll(async () => {
    for (const c of consumers) await c.stop().catch(() => undefined);
    await admin.deleteTopics([a, b, out]).catch(() => undefined);
    await admin.close();
  });

  it("applies topics idempotently and grows partitions", async () => {
    const p1 = await applyTopics(admin, [
      { name: a, partitions: 2, replicationFactor: 3, configs: { "cleanup.policy": "compact" } },
      { name: b, partitions: 4, replicationFactor: 1 },
      { name: out, partitions: 4, replicationFactor: 1 },
    ]);
    expect(p1.create.map((t) => t.name)).toEqual([a, b, out]);
    const p2 = await applyTopics(admin, [{ name: a, partitions: 4, replicationFactor: 1 }]);
    expect(p2.grow).toEqual([{ name: a, from: 2, to: 4 }]);
    const p3 = await applyTopics(admin, [{ name: a, partitions: 4, replicationFactor: 1 }]);
    expect(p3.unchanged).toEqual([a]);
    expect((await admin.describeTopics([a])).get(a)?.partitions).toBe(4);
  });

  it("co-partitioned assignment gives partition p of both topics to one member", async () => {
    const group = `pk-${sfx}-co`;
    const assigned: TopicPartition[][] = [[], []];
    for (const i of [0, 1]) {
      const c = transport.consumer({ groupId: group, coPartitioned: true });
      consumers.push(c);
      await c.run([a, b], {
        onAssignment: (tps) => {
          assigned[i] = [...tps];
        },
        eachBatch: async () => {},
      });
    }
    await until(
      () =>
        (assigned[0]?.length ?? 0) + (assigned[1]?.length ?? 0) === 8 &&
        (assigned[0]?.length ?? 0) > 0 &&
        (assigned[1]?.length ?? 0) > 0,
    );
    for (const tps of assigned) {
      const pa = tps
        .filter((t) => t.topic === a)
        .map((t) => t.partition)
        .sort();
      const pb = tps
        .filter((t) => t.topic === b)
        .map((t) => t.partition)
        .sort();
      expect(pa).toEqual(pb);
    }
    for (const c of consumers.splice(0)) await c.stop();
  });

  it("commits records and consumer offsets (with metadata) atomically in a transaction; aborted records stay invisible", async () => {
    const producer = await transport.producer();
    await producer.send([
      { topic: b, messages: [0, 1, 2, 3, 4].map((i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) },
    ]);
    await producer.close();
    const group = `pk-${sfx}-tx`;
    const tp = await transport.transactionalProducer(`pk-${sfx}-tx-0`);
    const aborted = await tp.begin();
    await aborted.send([{ topic: out, messages: [{ key: "x", value: "aborted", partition: 0 }] }]);
    await aborted.sendOffsets(group, [{ topic: b, partition: 0, offset: 5 }]);
    await aborted.abort();
    const tx = await tp.begin();
    await tx.send([{ topic: out, messages: [{ key: "x", value: "committed", partition: 0 }] }]);
    await tx.sendOffsets(group, [{ topic: b, partition: 0, offset: 3, metadata: '{"u":5,"h":[3]}' }]);
    await tx.commit();
    // A second producer with the same transactional id fences the first (a zombie after a rebalance).
    const tp2 = await transport.transactionalProducer(`pk-${sfx}-tx-0`);
    await expect(
      (async () => {
        const t = await tp.begin();
        await t.send([{ topic: out, messages: [{ key: "x", value: "zombie", partition: 0 }] }]);
        await t.commit();
      })(),
    ).rejects.toThrow();
    await tp2.close();
    await tp.close().catch(() => undefined);

    const committed = await admin.groupOffsets(group, b);
    expect(committed.find((c) => c.partition === 0)).toMatchObject({
      offset: 3,
      metadata: '{"u":5,"h":[3]}',
    });
    const seen: KafkaRecord[] = [];
    await readToEnd({
      transport,
      admin,
      topic: out,
      groupPrefix: `pk-${sfx}`,
      onRecord: (r) => seen.push(r),
    });
    const values = seen.map((r) => r.value?.toString());
    expect(values).toContain("committed");
    expect(values).not.toContain("aborted");
    expect(values).not.toContain("zombie");
  });
});
