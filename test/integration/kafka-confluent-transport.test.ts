import { beforeAll, describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { createTransport } from "../../processors/kafka/client.ts";
import { readToEnd } from "../../processors/kafka/read.ts";
import type { Admin, KafkaRecord, Transport } from "../../processors/kafka/transport.ts";
import {
  expectAtomicTransactions,
  expectCoPartitioned,
  expectCreatesAndGrows,
  TransportSuite,
  until,
} from "./kafka-transport-checks.ts";

/**
 * The librdkafka transport (GAVEL_KAFKA_CLIENT=confluent) against the real
 * broker: the same produce / consume / transaction / admin checks as the
 * kafkajs transport, plus records written by one client and read by the other.
 */
const logger = createLogger("kafka-confluent-test", "warn");
const brokers = requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS");

describe("librdkafka transport (@confluentinc/kafka-javascript)", () => {
  const s = new TransportSuite(
    "kc",
    () => createTransport({ brokers, clientId: "kafka-confluent-test", logger }, "confluent"),
    60_000,
  );
  const { sfx, a, b, out, consumers } = s;
  let transport: Transport;
  let kafkajs: Transport;
  let admin: Admin;

  beforeAll(async () => {
    transport = s.transport;
    admin = s.admin;
    kafkajs = await createTransport({ brokers, clientId: "kafka-confluent-test-kjs", logger }, "kafkajs");
  }, 60_000);

  it("admin: creates topics with configs, grows partitions, counts brokers", async () => {
    await expectCreatesAndGrows(s, 1);
    const described = await admin.describeTopics([a, b, a, `kc-${sfx}.missing`]);
    expect(described.get(a)?.partitions).toBe(4);
    expect(described.get(b)?.partitions).toBe(4);
    expect(described.has(`kc-${sfx}.missing`)).toBe(false);
    expect(await admin.brokerCount()).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it("produces keyed records with headers that kafkajs reads back, and the reverse; offsets and watermarks agree", async () => {
    const p = await transport.producer();
    await p.send([
      {
        topic: b,
        messages: [0, 1, 2].map((i) => ({
          key: `k${i}`,
          value: `cf${i}`,
          partition: 1,
          timestamp: 1_700_000_000_000 + i,
          headers: { traceparent: `t${i}` },
        })),
      },
    ]);
    await p.close();
    const kp = await kafkajs.producer();
    await kp.send([{ topic: b, messages: [{ key: "kj", value: "kj0", partition: 1 }] }]);
    await kp.close();
    const offs = await admin.topicOffsets(b);
    expect(offs.find((o) => o.partition === 1)).toMatchObject({ low: 0, high: 4 });

    for (const reader of [transport, kafkajs]) {
      const seen: KafkaRecord[] = [];
      await readToEnd({
        transport: reader,
        admin,
        topic: b,
        partitions: new Set([1]),
        groupPrefix: `kc-${sfx}`,
        onRecord: (r) => seen.push(r),
      });
      expect(seen.map((r) => [r.offset, r.key, r.value?.toString()])).toEqual([
        [0, "k0", "cf0"],
        [1, "k1", "cf1"],
        [2, "k2", "cf2"],
        [3, "kj", "kj0"],
      ]);
      expect(seen[0]?.timestamp).toBe(1_700_000_000_000);
      expect(seen[2]?.headers).toEqual({ traceparent: "t2" });
    }
  }, 90_000);

  it("co-partitioned assignment gives partition p of both topics to one member", async () => {
    await expectCoPartitioned(transport, { a, b }, `kc-${sfx}-co`, consumers, 60_000);
  }, 90_000);

  it("manual commits with metadata; unmarked records are delivered again", async () => {
    const group = `kc-${sfx}-commit`;
    const p = await transport.producer();
    await p.send([
      { topic: b, messages: [0, 1, 2, 3].map((i) => ({ key: `m${i}`, value: `m${i}`, partition: 2 })) },
    ]);
    await p.close();
    const c = transport.consumer({ groupId: group });
    consumers.push(c);
    const deliveries: number[] = [];
    let first = true;
    await c.run([b], {
      eachBatch: async (batch, ctx) => {
        if (batch.partition !== 2) {
          const last = batch.records.at(-1);
          if (last) ctx.markProcessed(last.offset);
          return;
        }
        for (const r of batch.records) deliveries.push(r.offset);
        // The first time offset 3 arrives, only offsets 0 and 1 count as
        // processed: 2 and 3 must be delivered again.
        if (first && batch.records.some((r) => r.offset === 3)) {
          first = false;
          if ((batch.records[0]?.offset ?? 0) <= 1) ctx.markProcessed(1);
          await c.commit([{ topic: b, partition: 2, offset: 2, metadata: "half" }]);
          return;
        }
        const last = batch.records.at(-1);
        if (last) {
          ctx.markProcessed(last.offset);
          await c.commit([{ topic: b, partition: 2, offset: last.offset + 1, metadata: "all" }]);
        }
      },
    });
    await until(() => deliveries.filter((o) => o === 3).length >= 2, 60_000);
    expect(deliveries.slice(0, 4)).toEqual([0, 1, 2, 3]);
    expect(deliveries.slice(-2)).toEqual([2, 3]);
    expect(deliveries.filter((o) => o < 2)).toEqual([0, 1]);
    await until(() => (c.positions().get(`${b}/2`) ?? 0) >= 4);
    const committed = await admin.groupOffsets(group, b);
    expect(committed).toHaveLength(4);
    expect(committed.find((x) => x.partition === 2)).toMatchObject({ offset: 4, metadata: "all" });
    expect(committed.find((x) => x.partition === 0)?.offset).toBe(-1);
    await c.stop();
  }, 90_000);

  it("commits records and consumer offsets (with metadata) atomically; aborted and zombie records stay invisible; positions pass the markers", async () => {
    await expectAtomicTransactions({
      transport,
      admin,
      input: b,
      out,
      group: `kc-${sfx}-tx`,
      transactionalId: `kc-${sfx}-tx-0`,
      readers: [transport, kafkajs],
      groupPrefix: `kc-${sfx}`,
      readTimeoutMs: 60_000,
    });
  }, 120_000);

  it("a transaction's offsets go with the live consumer of the group (read-process-write)", async () => {
    const group = `kc-${sfx}-rpw`;
    const p = await transport.producer();
    await p.send([
      { topic: a, messages: [0, 1, 2].map((i) => ({ key: `r${i}`, value: `r${i}`, partition: 3 })) },
    ]);
    await p.close();
    const tp = await transport.transactionalProducer(`kc-${sfx}-rpw-0`);
    const c = transport.consumer({ groupId: group });
    consumers.push(c);
    let copied = 0;
    await c.run([a], {
      eachBatch: async (batch, ctx) => {
        const last = batch.records.at(-1);
        if (!last) return;
        const t = await tp.begin();
        await t.send([
          {
            topic: out,
            messages: batch.records.map((r) => ({
              key: r.key,
              value: `copy-${r.value?.toString()}`,
              partition: 3,
            })),
          },
        ]);
        await t.sendOffsets(group, [
          { topic: batch.topic, partition: batch.partition, offset: last.offset + 1 },
        ]);
        await t.commit();
        ctx.markProcessed(last.offset);
        copied += batch.records.length;
      },
    });
    await until(() => copied >= 3, 60_000);
    await c.stop();
    await tp.close();
    const committed = await admin.groupOffsets(group, a);
    expect(committed.find((x) => x.partition === 3)?.offset).toBe(3);
    const seen: string[] = [];
    await readToEnd({
      transport,
      admin,
      topic: out,
      partitions: new Set([3]),
      groupPrefix: `kc-${sfx}`,
      onRecord: (r) => seen.push(r.value?.toString() ?? ""),
    });
    expect(seen).toEqual(["copy-r0", "copy-r1", "copy-r2"]);
  }, 120_000);
});
