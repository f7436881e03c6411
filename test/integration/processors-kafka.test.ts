import { describe, expect, it } from "vitest";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { KafkajsTransport } from "../../processors/kafka/kafkajs.ts";
import { applyTopics } from "../../processors/kafka/topics.ts";
import {
  expectAtomicTransactions,
  expectCoPartitioned,
  expectCreatesAndGrows,
  TransportSuite,
} from "./kafka-transport-checks.ts";

const logger = createLogger("processors-kafka-test", "warn");
const transport = new KafkajsTransport({
  brokers: requireEnv(readConnectionConfig(), "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS"),
  clientId: "processors-kafka-test",
  logger,
});

describe("Kafka transport", () => {
  const s = new TransportSuite("pk", () => transport);
  const { sfx, a, b, out, consumers } = s;

  it("applies topics idempotently and grows partitions", async () => {
    await expectCreatesAndGrows(s, 3);
    const p3 = await applyTopics(s.admin, [{ name: a, partitions: 4, replicationFactor: 1 }]);
    expect(p3.unchanged).toEqual([a]);
    expect((await s.admin.describeTopics([a])).get(a)?.partitions).toBe(4);
  });

  it("co-partitioned assignment gives partition p of both topics to one member", async () => {
    await expectCoPartitioned(transport, { a, b }, `pk-${sfx}-co`, consumers);
  });

  it("commits records and consumer offsets (with metadata) atomically in a transaction; aborted records stay invisible", async () => {
    const producer = await transport.producer();
    await producer.send([
      { topic: b, messages: [0, 1, 2, 3, 4].map((i) => ({ key: `k${i}`, value: `v${i}`, partition: 0 })) },
    ]);
    await producer.close();
    await expectAtomicTransactions({
      transport,
      admin: s.admin,
      input: b,
      out,
      group: `pk-${sfx}-tx`,
      transactionalId: `pk-${sfx}-tx-0`,
      readers: [transport],
      groupPrefix: `pk-${sfx}`,
    });
  });
});
