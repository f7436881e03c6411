import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect } from "vitest";
import { readToEnd } from "../../processors/kafka/read.ts";
import { applyTopics } from "../../processors/kafka/topics.ts";
import type {
  Admin,
  GroupConsumer,
  KafkaRecord,
  TopicPartition,
  Transport,
} from "../../processors/kafka/transport.ts";

/**
 * Checks every Kafka transport must pass against the real broker, written
 * once so kafkajs (processors-kafka.test.ts) and librdkafka
 * (kafka-confluent-transport.test.ts) are held to the same behaviour.
 */

/**
 * A transport suite's topics (`<prefix>-<sfx>.a`, `.b`, `.out`, unique per
 * run) and group consumers. It registers the hooks: before the suite, open
 * the transport and its admin; after it, stop the consumers, delete the
 * topics and close the admin.
 */
export class TransportSuite {
  readonly sfx = randomUUID().slice(0, 8);
  readonly a: string;
  readonly b: string;
  readonly out: string;
  readonly consumers: GroupConsumer[] = [];
  #transport: Transport | undefined;
  #admin: Admin | undefined;

  constructor(prefix: string, open: () => Transport | Promise<Transport>, hookMs?: number) {
    this.a = `${prefix}-${this.sfx}.a`;
    this.b = `${prefix}-${this.sfx}.b`;
    this.out = `${prefix}-${this.sfx}.out`;
    beforeAll(async () => {
      this.#transport = await open();
      this.#admin = await this.#transport.admin();
    }, hookMs);
    afterAll(async () => {
      for (const c of this.consumers) await c.stop().catch(() => undefined);
      await this.#admin?.deleteTopics([this.a, this.b, this.out]).catch(() => undefined);
      await this.#admin?.close();
    });
  }

  get transport(): Transport {
    if (!this.#transport) throw new Error("the suite's transport is opened before its first test");
    return this.#transport;
  }

  get admin(): Admin {
    if (!this.#admin) throw new Error("the suite's admin is opened before its first test");
    return this.#admin;
  }
}

/**
 * Creates the suite's topics (`a` compacted with 2 partitions and
 * `replicationFactorOfA`, `b` and `out` with 4), then grows `a` to 4.
 */
export async function expectCreatesAndGrows(s: TransportSuite, replicationFactorOfA: number): Promise<void> {
  const { admin, a, b, out } = s;
  const p1 = await applyTopics(admin, [
    {
      name: a,
      partitions: 2,
      replicationFactor: replicationFactorOfA,
      configs: { "cleanup.policy": "compact" },
    },
    { name: b, partitions: 4, replicationFactor: 1 },
    { name: out, partitions: 4, replicationFactor: 1 },
  ]);
  expect(p1.create.map((t) => t.name)).toEqual([a, b, out]);
  const p2 = await applyTopics(admin, [{ name: a, partitions: 4, replicationFactor: 1 }]);
  expect(p2.grow).toEqual([{ name: a, from: 2, to: 4 }]);
}

/** Polls `cond` every 50 ms until it holds; throws after `ms`. */
export async function until(cond: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Two members of a co-partitioned group over `a` and `b` (4 partitions
 * each): partition p of both topics goes to one member. The members are
 * added to `consumers` (for the suite's cleanup) and stopped at the end.
 */
export async function expectCoPartitioned(
  transport: Transport,
  topics: { readonly a: string; readonly b: string },
  group: string,
  consumers: GroupConsumer[],
  ms?: number,
): Promise<void> {
  const { a, b } = topics;
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
    ms,
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
}

export interface TransactionCheck {
  readonly transport: Transport;
  readonly admin: Admin;
  /** The topic whose consumer offsets the transactions carry (partition 0). */
  readonly input: string;
  /** The topic the transactions write to (partition 0). */
  readonly out: string;
  readonly group: string;
  readonly transactionalId: string;
  /** Transports that read `out` back (read_committed): each sees only the committed record. */
  readonly readers: readonly Transport[];
  readonly groupPrefix: string;
  /** readToEnd's limit; its default when absent. */
  readonly readTimeoutMs?: number;
}

/**
 * An aborted transaction, a committed one with consumer offsets and their
 * metadata, and a zombie fenced by a second producer with the same
 * transactional id: only the committed record and offsets are visible.
 */
export async function expectAtomicTransactions(o: TransactionCheck): Promise<void> {
  const { transport, admin, input, out, group } = o;
  const tp = await transport.transactionalProducer(o.transactionalId);
  const aborted = await tp.begin();
  await aborted.send([{ topic: out, messages: [{ key: "x", value: "aborted", partition: 0 }] }]);
  await aborted.sendOffsets(group, [{ topic: input, partition: 0, offset: 5 }]);
  await aborted.abort();
  const tx = await tp.begin();
  await tx.send([{ topic: out, messages: [{ key: "x", value: "committed", partition: 0 }] }]);
  await tx.sendOffsets(group, [{ topic: input, partition: 0, offset: 3, metadata: '{"u":5,"h":[3]}' }]);
  await tx.commit();
  // A second producer with the same transactional id fences the first (a zombie after a rebalance).
  const tp2 = await transport.transactionalProducer(o.transactionalId);
  await expect(
    (async () => {
      const t = await tp.begin();
      await t.send([{ topic: out, messages: [{ key: "x", value: "zombie", partition: 0 }] }]);
      await t.commit();
    })(),
  ).rejects.toThrow();
  await tp2.close();
  await tp.close().catch(() => undefined);

  const committed = await admin.groupOffsets(group, input);
  expect(committed.find((c) => c.partition === 0)).toMatchObject({
    offset: 3,
    metadata: '{"u":5,"h":[3]}',
  });
  // read_committed: only the committed record. readToEnd finishes only when
  // positions pass the trailing transaction markers.
  for (const reader of o.readers) {
    const seen: KafkaRecord[] = [];
    await readToEnd({
      transport: reader,
      admin,
      topic: out,
      groupPrefix: o.groupPrefix,
      onRecord: (r) => seen.push(r),
      ...(o.readTimeoutMs === undefined ? {} : { timeoutMs: o.readTimeoutMs }),
    });
    const values = seen.map((r) => r.value?.toString());
    expect(values).toContain("committed");
    expect(values).not.toContain("aborted");
    expect(values).not.toContain("zombie");
  }
}
