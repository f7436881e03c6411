// Before kafkajs loads: two allocation fixes to its producer (lib/kafkajs-patches.ts).
import "../../lib/kafkajs-patches.ts";
import {
  CompressionTypes,
  type IHeaders,
  Kafka,
  type KafkaConfig,
  type Consumer as KConsumer,
  type Producer as KProducer,
  type LogEntry,
  logLevel,
  type Message,
  Partitioners,
} from "kafkajs";
import type { KafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
import { CoPartitionedAssigner } from "./assigner.ts";
import {
  type Admin,
  type CommittedOffset,
  type ConsumerHandlers,
  type ConsumerOptions,
  type GroupConsumer,
  type KafkaRecord,
  type OutMessage,
  type PartitionOffsets,
  type Producer,
  type ProducerOptions,
  type TopicDescription,
  type TopicMessages,
  type TopicPartition,
  type TopicPartitionOffset,
  type TopicSpec,
  type Transaction,
  type TransactionalProducer,
  type Transport,
  tpKey,
} from "./transport.ts";

export interface KafkajsTransportOptions {
  /** Comma-separated `host:port` list (KAFKA_BOOTSTRAP_SERVERS). */
  readonly brokers: string;
  readonly clientId: string;
  readonly logger: Logger;
  /** Attempts after the first for a failing request (backoff 200 ms doubling to 5 s). Default 12 (about a minute). */
  readonly retries?: number;
  /** SASL and TLS (lib/config.ts readKafkaSecurity); plaintext when unset. */
  readonly security?: KafkaSecurity;
}

/** kafkajs' `ssl` and `sasl` client settings for a cluster's security settings. */
export function kafkajsSecurityConfig(sec: KafkaSecurity | undefined): Pick<KafkaConfig, "ssl" | "sasl"> {
  const out: Pick<KafkaConfig, "ssl" | "sasl"> = {};
  if (sec?.tls) out.ssl = sec.tls.ca ? { ca: [sec.tls.ca] } : true;
  if (sec?.sasl) {
    const { username, password } = sec.sasl;
    out.sasl =
      sec.sasl.mechanism === "plain"
        ? { mechanism: "plain", username, password }
        : sec.sasl.mechanism === "scram-sha-256"
          ? { mechanism: "scram-sha-256", username, password }
          : { mechanism: "scram-sha-512", username, password };
  }
  return out;
}

function toMessage(m: OutMessage): Message {
  const out: Message = { key: m.key, value: m.value };
  if (m.partition !== undefined) out.partition = m.partition;
  if (m.timestamp !== undefined) out.timestamp = String(m.timestamp);
  if (m.headers !== undefined) out.headers = { ...m.headers };
  return out;
}

/** Most records per kafkajs send (see `chunked`). */
export const MAX_RECORDS_PER_SEND = 1000;
/** Most bytes (keys, values, headers, plus per-record overhead) per kafkajs send: half the broker's default 1 MiB record batch limit. */
export const MAX_BYTES_PER_SEND = 512 * 1024;

function approxSize(m: OutMessage): number {
  const len = (v: string | Buffer | null | undefined) =>
    v === null || v === undefined ? 0 : typeof v === "string" ? Buffer.byteLength(v) : v.length;
  let n = 70 + len(m.key) + len(m.value);
  for (const [k, v] of Object.entries(m.headers ?? {})) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 10;
  return n;
}

/**
 * Splits the records into sends of at most MAX_RECORDS_PER_SEND records and
 * about MAX_BYTES_PER_SEND bytes, in order, each grouped by topic. kafkajs groups a send's records per partition by
 * copying the partition's array for every record (quadratic: 4,000 records
 * for one partition cost 51 ms, 8,000 cost 187 ms, measured) and puts a
 * partition's records into one record batch, which the broker refuses above
 * `message.max.bytes` (1 MiB by default): a bid-processor batch from a
 * backlog hit both. Sends of one producer are sequential, so per-partition
 * order is kept.
 */
export function chunked(
  batches: readonly TopicMessages[],
  max = MAX_RECORDS_PER_SEND,
  maxBytes = MAX_BYTES_PER_SEND,
): { topic: string; messages: Message[] }[][] {
  const out: { topic: string; messages: Message[] }[][] = [];
  let cur = new Map<string, Message[]>();
  let n = 0;
  let bytes = 0;
  for (const b of batches) {
    for (const m of b.messages) {
      const size = approxSize(m);
      if (n === max || (n > 0 && bytes + size > maxBytes)) {
        out.push([...cur].map(([topic, messages]) => ({ topic, messages })));
        cur = new Map();
        n = 0;
        bytes = 0;
      }
      bytes += size;
      const list = cur.get(b.topic) ?? [];
      list.push(toMessage(m));
      cur.set(b.topic, list);
      n++;
    }
  }
  if (n > 0) out.push([...cur].map(([topic, messages]) => ({ topic, messages })));
  return out;
}

/** kafkajs header values (Buffer, string or arrays of them) as strings; the first value of a repeated key wins. */
function headersOf(h: IHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one !== undefined) out[k] = one.toString();
  }
  return out;
}

/** The message kafkajs gives Kafka's CONCURRENT_TRANSACTIONS error (kafkajs/src/protocol/error.js). */
const CONCURRENT_TRANSACTIONS_TEXT = "another concurrent operation on the same transaction was ongoing";

/** kafkajs logs through our pino logger; its INFO chatter (joins, commits) stays at debug. */
export function logCreator(logger: Logger): KafkaConfig["logCreator"] {
  return () =>
    ({ level, log }: LogEntry) => {
      const { message, ...rest } = log;
      const child = { kafka: rest };
      // Protocol-level responses (rebalancing, coordinator loading, concurrent
      // transactions) are retried inside kafkajs; real failures surface as
      // thrown errors, which the processors log.
      // kafkajs logs each retried send at ERROR; a transaction's first request
      // right after the previous commit is answered CONCURRENT_TRANSACTIONS
      // while the markers are written, and retried (the bench's bid-processor
      // logged ~70 such ERROR lines a run, none a failure).
      if (
        message.startsWith("Response ") ||
        message.startsWith("Limiting retries") ||
        message.includes(CONCURRENT_TRANSACTIONS_TEXT)
      ) {
        logger.debug(child, `kafkajs: ${message}`);
      } else if (level === logLevel.ERROR) logger.error(child, `kafkajs: ${message}`);
      else if (level === logLevel.WARN) logger.warn(child, `kafkajs: ${message}`);
      else logger.debug(child, `kafkajs: ${message}`);
    };
}

/** The kafkajs implementation of `Transport`. */
export class KafkajsTransport implements Transport {
  readonly #kafka: Kafka;
  readonly #logger: Logger;
  readonly #retries: number;

  constructor(opts: KafkajsTransportOptions) {
    this.#logger = opts.logger;
    this.#retries = opts.retries ?? 12;
    this.#kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean),
      logLevel: logLevel.WARN,
      logCreator: logCreator(opts.logger),
      retry: { retries: this.#retries, initialRetryTime: 200, maxRetryTime: 5_000 },
      connectionTimeout: 5_000,
      ...kafkajsSecurityConfig(opts.security),
    });
  }

  async producer(opts: ProducerOptions = {}): Promise<Producer> {
    // Idempotence needs acks=all (-1); one in-flight request per connection
    // keeps kafkajs's sequence numbers safe across retries.
    const p = this.#kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await p.connect();
    const compression = opts.compression ? CompressionTypes.GZIP : CompressionTypes.None;
    return {
      async send(batches: readonly TopicMessages[]) {
        if (batches.length === 0) return;
        for (const topicMessages of chunked(batches))
          await p.sendBatch({ acks: -1, compression, topicMessages });
      },
      async close() {
        await p.disconnect();
      },
    };
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const p: KProducer = this.#kafka.producer({
      transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: 60_000,
      // Right after a commit the coordinator is still writing the markers and
      // answers the next transaction's first request with
      // CONCURRENT_TRANSACTIONS; with the client's 200 ms first backoff that
      // cost every back-to-back transaction ~200 ms (bench: the decide leg).
      // A 5 ms first backoff (the markers of a local broker take a few ms; the
      // Java client waits 20 ms), with more attempts for about the same total
      // budget. Back-to-back transactions of one id, 200 each
      // (docs/benchmarks.md): 6.4-7.6 ms each with 20 ms, 4.7-5.9 with 5.
      retry: { retries: this.#retries + 8, initialRetryTime: 5, maxRetryTime: 5_000 },
      createPartitioner: Partitioners.DefaultPartitioner,
      allowAutoTopicCreation: false,
    });
    await p.connect();
    // kafkajs runs InitProducerId for the transactional id lazily, at the first
    // transaction(); do it now: this is the fence (an older producer with the
    // same id gets its open transaction aborted and its later commits refused).
    const init = await p.transaction();
    await init.abort();
    return {
      async begin(): Promise<Transaction> {
        const tx = await p.transaction();
        return {
          async send(batches) {
            if (batches.length === 0) return;
            for (const topicMessages of chunked(batches)) await tx.sendBatch({ acks: -1, topicMessages });
          },
          async sendOffsets(groupId, offsets) {
            if (offsets.length === 0) return;
            await tx.sendOffsets({ consumerGroupId: groupId, topics: groupByTopic(offsets) });
          },
          commit: () => tx.commit(),
          abort: () => tx.abort(),
        };
      },
      async close() {
        await p.disconnect();
      },
    };
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    return new KafkajsGroupConsumer(this.#kafka, opts, this.#logger);
  }

  async admin(): Promise<Admin> {
    const a = this.#kafka.admin();
    await a.connect();
    return {
      async describeTopics(names) {
        const existing = new Set(await a.listTopics());
        const wanted = names.filter((n) => existing.has(n));
        const out = new Map<string, TopicDescription>();
        if (wanted.length === 0) return out;
        const md = await a.fetchTopicMetadata({ topics: wanted });
        for (const t of md.topics) out.set(t.name, { name: t.name, partitions: t.partitions.length });
        return out;
      },
      async createTopics(specs: readonly TopicSpec[]) {
        if (specs.length === 0) return;
        try {
          await a.createTopics({
            waitForLeaders: true,
            topics: specs.map((s) => ({
              topic: s.name,
              numPartitions: s.partitions,
              replicationFactor: s.replicationFactor ?? -1,
              configEntries: Object.entries(s.configs ?? {}).map(([name, value]) => ({ name, value })),
            })),
          });
        } catch (err) {
          // The topics were created but kafkajs's leader wait raced the
          // metadata propagation (seen under load): wait for them ourselves.
          const type = (err as { type?: string }).type;
          if (type !== "UNKNOWN_TOPIC_OR_PARTITION" && type !== "LEADER_NOT_AVAILABLE") throw err;
          const deadline = Date.now() + 30_000;
          for (;;) {
            const have = new Set(await a.listTopics());
            if (specs.every((s) => have.has(s.name))) {
              try {
                await a.fetchTopicMetadata({ topics: specs.map((s) => s.name) });
                break;
              } catch (e) {
                if (Date.now() > deadline) throw e;
              }
            } else if (Date.now() > deadline) throw err;
            await new Promise((r) => setTimeout(r, 250));
          }
        }
      },
      async createPartitions(name, partitions) {
        await a.createPartitions({ topicPartitions: [{ topic: name, count: partitions }] });
      },
      async deleteTopics(names) {
        if (names.length > 0) await a.deleteTopics({ topics: [...names] });
      },
      async topicOffsets(name): Promise<PartitionOffsets[]> {
        const r = await a.fetchTopicOffsets(name);
        return r
          .map((p) => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) }))
          .sort((x, y) => x.partition - y.partition);
      },
      async groupOffsets(groupId, topic): Promise<CommittedOffset[]> {
        const r = await a.fetchOffsets({ groupId, topics: [topic] });
        const parts = r[0]?.partitions ?? [];
        return parts
          .map((p) => ({ partition: p.partition, offset: Number(p.offset), metadata: p.metadata ?? null }))
          .sort((x, y) => x.partition - y.partition);
      },
      async brokerCount() {
        return (await a.describeCluster()).brokers.length;
      },
      async close() {
        await a.disconnect();
      },
    };
  }
}

function groupByTopic(
  offsets: readonly TopicPartitionOffset[],
): { topic: string; partitions: { partition: number; offset: string; metadata?: string | null }[] }[] {
  const byTopic = new Map<string, { partition: number; offset: string; metadata?: string | null }[]>();
  for (const o of offsets) {
    const list = byTopic.get(o.topic) ?? [];
    list.push({ partition: o.partition, offset: String(o.offset), metadata: o.metadata ?? null });
    byTopic.set(o.topic, list);
  }
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions }));
}

class KafkajsGroupConsumer implements GroupConsumer {
  readonly #consumer: KConsumer;
  readonly #opts: ConsumerOptions;
  readonly #logger: Logger;
  readonly #positions = new Map<string, number>();
  #assigned: TopicPartition[] = [];
  #pendingAssignment: Promise<void> = Promise.resolve();
  #running = false;
  #failure: Error | undefined;

  constructor(kafka: Kafka, opts: ConsumerOptions, logger: Logger) {
    this.#opts = opts;
    this.#logger = logger;
    this.#consumer = kafka.consumer({
      groupId: opts.groupId,
      readUncommitted: opts.readUncommitted ?? false,
      maxBytesPerPartition: opts.maxBytesPerPartition ?? 1_048_576,
      sessionTimeout: opts.sessionTimeoutMs ?? 30_000,
      heartbeatInterval: 3_000,
      allowAutoTopicCreation: false,
      maxWaitTimeInMs: 500,
      ...(opts.coPartitioned ? { partitionAssigners: [CoPartitionedAssigner] } : {}),
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000, restartOnFailure: async () => true },
    });
  }

  async run(topics: readonly string[], handlers: ConsumerHandlers): Promise<void> {
    const c = this.#consumer;
    const { GROUP_JOIN, END_BATCH_PROCESS, CRASH } = c.events;
    c.on(GROUP_JOIN, (e) => {
      const next: TopicPartition[] = [];
      for (const [topic, parts] of Object.entries(e.payload.memberAssignment)) {
        for (const partition of parts) next.push({ topic, partition });
      }
      const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
      const revoked = this.#assigned.filter((tp) => !nextKeys.has(tpKey(tp.topic, tp.partition)));
      for (const tp of revoked) this.#positions.delete(tpKey(tp.topic, tp.partition));
      this.#assigned = next;
      const prev = this.#pendingAssignment;
      // Batches of the new generation wait for this promise (see eachBatch below),
      // so state is rebuilt before the first record of a newly assigned partition.
      // A failed previous handler must not block this one (catch first).
      this.#pendingAssignment = prev
        .catch(() => undefined)
        .then(async () => {
          await handlers.onAssignment?.(next, revoked);
        });
      this.#pendingAssignment.catch((err) =>
        this.#logger.error({ err }, "partition assignment handler failed"),
      );
    });
    c.on(END_BATCH_PROCESS, (e) => {
      const last = Number(e.payload.lastOffset);
      if (Number.isFinite(last)) {
        const k = tpKey(e.payload.topic, e.payload.partition);
        const cur = this.#positions.get(k) ?? 0;
        if (last + 1 > cur) this.#positions.set(k, last + 1);
      }
    });
    c.on(CRASH, (e) => {
      this.#logger.error({ err: e.payload.error, restart: e.payload.restart }, "consumer crashed");
      // kafkajs restarts after retriable errors only; after any other the consumer is gone.
      if (!e.payload.restart) this.#failure = e.payload.error;
    });
    await c.connect();
    await c.subscribe({ topics: [...topics], fromBeginning: this.#opts.fromBeginning ?? true });
    this.#running = true;
    await c.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.#opts.partitionsConcurrently ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        await this.#pendingAssignment;
        if (!isRunning() || isStale()) return;
        const records: KafkaRecord[] = batch.messages.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: Number(m.offset),
          key: m.key === null ? null : m.key.toString("utf8"),
          value: m.value,
          timestamp: Number(m.timestamp),
          ...(m.headers ? { headers: headersOf(m.headers) } : {}),
        }));
        await handlers.eachBatch(
          {
            topic: batch.topic,
            partition: batch.partition,
            records,
            highWatermark: Number(batch.highWatermark),
          },
          {
            isRunning: () => isRunning() && this.#running,
            heartbeat,
            markProcessed: (offset) => resolveOffset(String(offset)),
            isStale,
          },
        );
      },
    });
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    await this.#consumer.commitOffsets(
      offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: String(o.offset),
        metadata: o.metadata ?? null,
      })),
    );
  }

  positions(): ReadonlyMap<string, number> {
    return this.#positions;
  }

  seek(topic: string, partition: number, offset: number): void {
    this.#consumer.seek({ topic, partition, offset: String(offset) });
  }

  failure(): Error | undefined {
    return this.#failure;
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#consumer.disconnect();
  }
}
