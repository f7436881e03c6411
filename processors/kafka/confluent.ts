/**
 * The librdkafka implementation of `Transport`, on
 * `@confluentinc/kafka-javascript` (its KafkaJS-compatible promise API).
 * Chosen with GAVEL_KAFKA_CLIENT=confluent (see `client.ts`); the package is
 * an optional dependency built from source, so it is imported lazily and
 * typed here by the narrow shapes this file uses (type-checking does not
 * need the package installed).
 *
 * Differences from kafkajs it papers over:
 * - `sendOffsets` needs a consumer (its group metadata, KIP-447 fencing):
 *   the live consumer of that group made by this transport is used, else a
 *   connected, unsubscribed consumer of the group (generation -1, the
 *   classic group-id-only form).
 * - no custom assignors: co-partitioning uses librdkafka's `range`
 *   assignor, which gives partition p of every topic with equal partition
 *   counts to the same member (members sorted by id, per-topic ranges).
 * - the position past trailing control records (transaction markers) comes
 *   from librdkafka's partition-EOF events, ordered with the records.
 */
import type { KafkaSecurity } from "../../lib/config.ts";
import type { Logger } from "../../lib/log.ts";
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

export interface ConfluentTransportOptions {
  /** Comma-separated `host:port` list (KAFKA_BOOTSTRAP_SERVERS). */
  readonly brokers: string;
  readonly clientId: string;
  readonly logger: Logger;
  /** SASL and TLS (lib/config.ts readKafkaSecurity); plaintext when unset. */
  readonly security?: KafkaSecurity;
}

/**
 * librdkafka's settings for a cluster's security settings. Given as
 * librdkafka properties (not the KafkaJS layer's `ssl`/`sasl`, which takes
 * no CA): the CA as PEM text, host names verified against the certificate
 * (librdkafka's default `https` identification, stated here so it cannot
 * drift).
 */
export function confluentSecurityConfig(sec: KafkaSecurity | undefined): Record<string, string> {
  if (!sec) return {};
  const out: Record<string, string> = {
    "security.protocol": sec.sasl ? (sec.tls ? "sasl_ssl" : "sasl_plaintext") : sec.tls ? "ssl" : "plaintext",
  };
  if (sec.sasl) {
    out["sasl.mechanisms"] = sec.sasl.mechanism.toUpperCase();
    out["sasl.username"] = sec.sasl.username;
    out["sasl.password"] = sec.sasl.password;
  }
  if (sec.tls) {
    out["ssl.endpoint.identification.algorithm"] = "https";
    if (sec.tls.ca) out["ssl.ca.pem"] = sec.tls.ca;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The parts of @confluentinc/kafka-javascript used here.

type Headers = Record<string, string | Buffer | (string | Buffer)[] | undefined>;

interface CkMessage {
  key: Buffer | string | null;
  value: Buffer | string | null;
  partition?: number;
  timestamp?: string;
  headers?: Headers;
}

interface CkLogger {
  info(message: string, extra?: object): void;
  error(message: string, extra?: object): void;
  warn(message: string, extra?: object): void;
  debug(message: string, extra?: object): void;
  namespace(ns: string, level?: number): CkLogger;
  setLogLevel(level: number): void;
}

interface CkProducer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  sendBatch(b: { topicMessages: { topic: string; messages: CkMessage[] }[] }): Promise<unknown>;
  transaction(): Promise<CkProducer>;
  commit(): Promise<void>;
  abort(): Promise<void>;
  _getInternalClient(): RdKafkaProducer;
}

/** The node-rdkafka producer under the KafkaJS layer. */
interface RdKafkaProducer {
  sendOffsetsToTransaction(
    offsets: { topic: string; partition: number; offset: number; metadata?: string }[],
    consumer: RdConsumer,
    timeoutMs: number,
    cb: (err: unknown) => void,
  ): void;
}

interface CkBatchPayload {
  batch: {
    topic: string;
    partition: number;
    highWatermark: string;
    messages: {
      key: Buffer | null;
      value: Buffer | null;
      timestamp: string;
      offset: string;
      headers?: Headers;
    }[];
  };
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
  isRunning(): boolean;
  isStale(): boolean;
}

interface CkLibError {
  code: number;
}

/** The node-rdkafka consumer under the KafkaJS layer (its event stream). */
interface RdConsumer {
  /** The native fetch, wrapped to see its errors (the KafkaJS layer logs and retries them forever). */
  consume(size: number, cb: (err: CkLibError | null | undefined, messages: unknown) => void): void;
  on(event: "data", cb: (m: { topic: string; partition: number; offset: number }) => void): void;
  on(event: "partition.eof", cb: (e: { topic: string; partition: number; offset: number }) => void): void;
}

interface CkConsumer {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  subscribe(s: { topics: string[] }): Promise<void>;
  run(c: {
    eachBatchAutoResolve: boolean;
    partitionsConsumedConcurrently: number;
    eachBatch(p: CkBatchPayload): Promise<void>;
  }): Promise<void>;
  commitOffsets(
    o: { topic: string; partition: number; offset: string; metadata?: string | null }[],
  ): Promise<void>;
  seek(o: { topic: string; partition: number; offset: string }): void;
  _getInternalClient(): RdConsumer;
}

interface CkAdmin {
  connect(): Promise<void>;
  disconnect(): Promise<void>;
  listTopics(): Promise<string[]>;
  fetchTopicMetadata(o: {
    topics: string[];
  }): Promise<{ name: string; partitions: { partitionId: number; leader: number }[] }[]>;
  createTopics(o: {
    topics: {
      topic: string;
      numPartitions: number;
      replicationFactor: number;
      configEntries: { name: string; value: string }[];
    }[];
  }): Promise<boolean>;
  deleteTopics(o: { topics: string[] }): Promise<void>;
  fetchTopicOffsets(topic: string): Promise<{ partition: number; high: string; low: string }[]>;
  fetchOffsets(o: {
    groupId: string;
    topics: { topic: string; partitions: number[] }[];
  }): Promise<
    { topic: string; partitions: { partition: number; offset: string; metadata: string | null }[] }[]
  >;
}

interface CkKafka {
  producer(cfg: Record<string, unknown>): CkProducer;
  consumer(cfg: Record<string, unknown>): CkConsumer;
  admin(cfg?: Record<string, unknown>): CkAdmin;
}

/** The classic (callback) clients, for what the KafkaJS layer lacks (createPartitions, broker list). */
interface RdAdminClient {
  createPartitions(topic: string, total: number, timeoutMs: number, cb: (err: unknown) => void): void;
  disconnect(): void;
}
interface RdProducer {
  connect(opts: object, cb: (err: unknown) => void): void;
  getMetadata(opts: object, cb: (err: unknown, md: { brokers: unknown[] }) => void): void;
  disconnect(cb: () => void): void;
}

interface CkModule {
  KafkaJS: { Kafka: new (cfg: Record<string, unknown>) => CkKafka };
  AdminClient: { create(cfg: Record<string, unknown>): RdAdminClient };
  Producer: new (cfg: Record<string, unknown>) => RdProducer;
}

/** librdkafka rebalance event codes. */
const ERR_ASSIGN_PARTITIONS = -175;

export const CONFLUENT_PACKAGE = "@confluentinc/kafka-javascript";

/** Imports the optional package, with a message that says how to get it. */
export async function loadConfluent(): Promise<CkModule> {
  // A variable specifier: type-checking does not resolve the optional package.
  const name: string = CONFLUENT_PACKAGE;
  let mod: { default?: CkModule } & Partial<CkModule>;
  try {
    mod = (await import(name)) as typeof mod;
  } catch (err) {
    throw new Error(
      `GAVEL_KAFKA_CLIENT=confluent needs the optional package ${CONFLUENT_PACKAGE}, which is built from source: install libssl-dev zlib1g-dev libzstd-dev liblz4-dev libsasl2-dev libcurl4-openssl-dev, then run 'CKJS_LINKING=dynamic npm install' (${(err as Error).message})`,
    );
  }
  // module.exports (the default export of a CommonJS module) has every
  // export; Node's named-export detection finds only some of them.
  const m = (mod.default?.KafkaJS ? mod.default : mod) as CkModule | undefined;
  if (!m?.KafkaJS) throw new Error(`${CONFLUENT_PACKAGE} has no KafkaJS API`);
  return m;
}

function ckLogger(logger: Logger): CkLogger {
  const l: CkLogger = {
    // librdkafka's informational chatter (joins, commits) stays at debug.
    info: (message, extra) => logger.debug({ kafka: extra }, `librdkafka: ${message}`),
    debug: (message, extra) => logger.debug({ kafka: extra }, `librdkafka: ${message}`),
    warn: (message, extra) => logger.warn({ kafka: extra }, `librdkafka: ${message}`),
    error: (message, extra) => logger.error({ kafka: extra }, `librdkafka: ${message}`),
    namespace: () => l,
    setLogLevel: () => {},
  };
  return l;
}

function toMessage(m: OutMessage): CkMessage {
  const out: CkMessage = { key: m.key, value: m.value };
  if (m.partition !== undefined) out.partition = m.partition;
  if (m.timestamp !== undefined) out.timestamp = String(m.timestamp);
  if (m.headers !== undefined) out.headers = { ...m.headers };
  return out;
}

function topicMessages(batches: readonly TopicMessages[]): { topic: string; messages: CkMessage[] }[] {
  return batches.map((b) => ({ topic: b.topic, messages: b.messages.map(toMessage) }));
}

/** Header values as strings; the first value of a repeated key wins. */
function headersOf(h: Headers): Record<string, string> | undefined {
  let out: Record<string, string> | undefined;
  for (const [k, v] of Object.entries(h)) {
    const one = Array.isArray(v) ? v[0] : v;
    if (one === undefined) continue;
    out ??= {};
    out[k] = one.toString();
  }
  return out;
}

/** Creates the librdkafka transport (imports the optional package). */
export async function createConfluentTransport(opts: ConfluentTransportOptions): Promise<Transport> {
  return new ConfluentTransport(await loadConfluent(), opts);
}

/** The librdkafka implementation of `Transport` (see the file comment). */
export class ConfluentTransport implements Transport {
  readonly #mod: CkModule;
  readonly #kafka: CkKafka;
  readonly #opts: ConfluentTransportOptions;
  readonly #logger: Logger;
  /** Running consumers by group id: their group metadata goes with `sendOffsets`. */
  readonly #groups = new Map<string, CkConsumer>();

  constructor(mod: CkModule, opts: ConfluentTransportOptions) {
    this.#mod = mod;
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#kafka = new mod.KafkaJS.Kafka({
      ...confluentSecurityConfig(opts.security),
      kafkaJS: {
        brokers: opts.brokers
          .split(",")
          .map((s) => s.trim())
          .filter(Boolean),
        clientId: opts.clientId,
        connectionTimeout: 5_000,
        logger: ckLogger(opts.logger),
        logLevel: 2, // WARN
      },
    });
  }

  async producer(opts: ProducerOptions = {}): Promise<Producer> {
    // Idempotence implies acks=all; librdkafka keeps ordering with up to 5 requests in flight.
    const p = this.#kafka.producer({
      kafkaJS: {
        idempotent: true,
        acks: -1,
        allowAutoTopicCreation: false,
        compression: opts.compression ? "gzip" : "none",
      },
    });
    await p.connect();
    return {
      async send(batches) {
        if (batches.length === 0) return;
        await p.sendBatch({ topicMessages: topicMessages(batches) });
      },
      close: () => p.disconnect(),
    };
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const p = this.#kafka.producer({
      kafkaJS: {
        transactionalId,
        idempotent: true,
        acks: -1,
        transactionTimeout: 60_000,
        allowAutoTopicCreation: false,
      },
    });
    // connect() runs InitProducerId for the transactional id: the fence (an
    // older producer with the same id has its open transaction aborted).
    await p.connect();
    /** Consumers made only to carry a group id into sendOffsets, closed with the producer. */
    const carriers = new Map<string, Promise<CkConsumer>>();
    const consumerFor = (groupId: string): Promise<CkConsumer> => {
      const live = this.#groups.get(groupId);
      if (live) return Promise.resolve(live);
      let c = carriers.get(groupId);
      if (!c) {
        const made = this.#kafka.consumer({ kafkaJS: { groupId, autoCommit: false } });
        c = made.connect().then(() => made);
        carriers.set(groupId, c);
      }
      return c;
    };
    return {
      async begin(): Promise<Transaction> {
        const tx = await p.transaction();
        return {
          async send(batches) {
            if (batches.length === 0) return;
            await tx.sendBatch({ topicMessages: topicMessages(batches) });
          },
          async sendOffsets(groupId, offsets) {
            if (offsets.length === 0) return;
            // The KafkaJS layer's sendOffsets drops offset metadata (the
            // bid-processor keeps held bids there); the native call keeps it.
            const consumer = (await consumerFor(groupId))._getInternalClient();
            const list = offsets.map((o) => ({
              topic: o.topic,
              partition: o.partition,
              offset: o.offset,
              ...(o.metadata ? { metadata: o.metadata } : {}),
            }));
            await new Promise<void>((resolve, reject) =>
              p
                ._getInternalClient()
                .sendOffsetsToTransaction(list, consumer, 30_000, (err) => (err ? reject(err) : resolve())),
            );
          },
          commit: () => tx.commit(),
          abort: () => tx.abort(),
        };
      },
      async close() {
        for (const c of carriers.values()) await (await c).disconnect().catch(() => undefined);
        await p.disconnect();
      },
    };
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    return new ConfluentGroupConsumer(this.#kafka, opts, this.#logger, this.#groups);
  }

  async admin(): Promise<Admin> {
    const a = this.#kafka.admin();
    await a.connect();
    const mod = this.#mod;
    const rdConfig = {
      "bootstrap.servers": this.#opts.brokers,
      "client.id": this.#opts.clientId,
      ...confluentSecurityConfig(this.#opts.security),
    };
    const partitionsOf = async (topic: string): Promise<number[]> => {
      const md = await a.fetchTopicMetadata({ topics: [topic] });
      return (md[0]?.partitions ?? []).map((p) => p.partitionId).sort((x, y) => x - y);
    };
    return {
      async describeTopics(names) {
        const existing = new Set(await a.listTopics());
        // Deduplicated: librdkafka rejects a topic named twice (kafkajs does not).
        const wanted = [...new Set(names)].filter((n) => existing.has(n));
        const out = new Map<string, TopicDescription>();
        if (wanted.length === 0) return out;
        const md = await a.fetchTopicMetadata({ topics: wanted });
        for (const t of md) out.set(t.name, { name: t.name, partitions: t.partitions.length });
        return out;
      },
      async createTopics(specs: readonly TopicSpec[]) {
        if (specs.length === 0) return;
        await a.createTopics({
          topics: specs.map((s) => ({
            topic: s.name,
            numPartitions: s.partitions,
            replicationFactor: s.replicationFactor ?? -1,
            configEntries: Object.entries(s.configs ?? {}).map(([name, value]) => ({ name, value })),
          })),
        });
        // Like kafkajs's waitForLeaders: return once every partition has a leader.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const md = await a.fetchTopicMetadata({ topics: specs.map((s) => s.name) }).catch(() => []);
          const ready = specs.every((s) => {
            const t = md.find((m) => m.name === s.name);
            return (
              t !== undefined &&
              t.partitions.length >= s.partitions &&
              t.partitions.every((p) => p.leader >= 0)
            );
          });
          if (ready) return;
          if (Date.now() > deadline)
            throw new Error(`topics ${specs.map((s) => s.name).join(", ")} have no leaders after 30 s`);
          await new Promise((r) => setTimeout(r, 100));
        }
      },
      async createPartitions(name, partitions) {
        const rd = mod.AdminClient.create(rdConfig);
        try {
          await new Promise<void>((resolve, reject) =>
            rd.createPartitions(name, partitions, 30_000, (err) => (err ? reject(err) : resolve())),
          );
        } finally {
          rd.disconnect();
        }
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
        // Name every partition, so partitions without a commit come back as -1 (as with kafkajs).
        const partitions = await partitionsOf(topic);
        if (partitions.length === 0) return [];
        const r = await a.fetchOffsets({ groupId, topics: [{ topic, partitions }] });
        const parts = r.find((t) => t.topic === topic)?.partitions ?? [];
        return parts
          .map((p) => ({
            partition: p.partition,
            // librdkafka says -1001 (OFFSET_INVALID) where kafkajs says -1: no commit.
            offset: Number(p.offset) < 0 ? -1 : Number(p.offset),
            metadata: p.metadata || null,
          }))
          .sort((x, y) => x.partition - y.partition);
      },
      async brokerCount() {
        const p = new mod.Producer(rdConfig);
        await new Promise<void>((resolve, reject) => p.connect({}, (err) => (err ? reject(err) : resolve())));
        try {
          const md = await new Promise<{ brokers: unknown[] }>((resolve, reject) =>
            p.getMetadata({ timeout: 10_000 }, (err, m) => (err ? reject(err) : resolve(m))),
          );
          return md.brokers.length;
        } finally {
          await new Promise<void>((resolve) => p.disconnect(() => resolve()));
        }
      },
      close: () => a.disconnect(),
    };
  }
}

/** The consumer's prefetch bound (librdkafka `queued.max.messages.kbytes`). */
const CONSUMER_QUEUE_KIB = 8 * 1024;

/** librdkafka's authorization error codes, named as kafkajs names them (preflight.ts explains them). */
const AUTHORIZATION_CODES = new Map<number, string>([
  [29, "TOPIC_AUTHORIZATION_FAILED"],
  [30, "GROUP_AUTHORIZATION_FAILED"],
  [31, "CLUSTER_AUTHORIZATION_FAILED"],
  [53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED"],
]);

/** Where librdkafka reported the end of a partition, and what had been fetched before it. */
interface Eof {
  readonly offset: number;
  readonly fetchedBefore: number;
}

class ConfluentGroupConsumer implements GroupConsumer {
  readonly #kafka: CkKafka;
  readonly #opts: ConsumerOptions;
  readonly #logger: Logger;
  readonly #groups: Map<string, CkConsumer>;
  /** Next offset after the records handed to `eachBatch` and finished. */
  readonly #processed = new Map<string, number>();
  /** Next offset after the records fetched from librdkafka (in event order). */
  readonly #fetched = new Map<string, number>();
  readonly #eof = new Map<string, Eof>();
  #consumer?: CkConsumer;
  #assigned: TopicPartition[] = [];
  #pendingAssignment: Promise<void> = Promise.resolve();
  #running = false;
  #failure: Error | undefined;

  constructor(kafka: CkKafka, opts: ConsumerOptions, logger: Logger, groups: Map<string, CkConsumer>) {
    this.#kafka = kafka;
    this.#opts = opts;
    this.#logger = logger;
    this.#groups = groups;
  }

  async run(topics: readonly string[], handlers: ConsumerHandlers): Promise<void> {
    const o = this.#opts;
    const c = this.#kafka.consumer({
      kafkaJS: {
        groupId: o.groupId,
        fromBeginning: o.fromBeginning ?? true,
        readUncommitted: o.readUncommitted ?? false,
        sessionTimeout: o.sessionTimeoutMs ?? 30_000,
        heartbeatInterval: 3_000,
        maxBytesPerPartition: o.maxBytesPerPartition ?? 1_048_576,
        maxWaitTimeInMs: 500,
        autoCommit: false,
        allowAutoTopicCreation: false,
        partitionAssigners: [o.coPartitioned ? "range" : "roundrobin"],
      },
      // Batches as large as kafkajs's (one fetch), not the default 32 records:
      // a batch is one transaction or one database write downstream.
      "js.consumer.max.batch.size": 2_000,
      // Bounded prefetch: librdkafka's defaults queue up to 64 MiB (and
      // 100,000 records a partition) ahead of the handler, which a backlog
      // fills while the processor works through it; with the JavaScript
      // copies that ran the bid-processor out of a 512 MiB pod
      // (docs/benchmarks.md). 8 MiB keeps several fetches ahead.
      "queued.max.messages.kbytes": CONSUMER_QUEUE_KIB,
      "queued.min.messages": 10_000,
      "enable.partition.eof": true,
      rebalance_cb: (err: CkLibError, assignment: TopicPartition[]) => {
        if (err.code !== ERR_ASSIGN_PARTITIONS) return;
        const next = assignment.map((tp) => ({ topic: tp.topic, partition: tp.partition }));
        const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
        const revoked = this.#assigned.filter((tp) => !nextKeys.has(tpKey(tp.topic, tp.partition)));
        for (const tp of revoked) {
          const k = tpKey(tp.topic, tp.partition);
          this.#processed.delete(k);
          this.#fetched.delete(k);
          this.#eof.delete(k);
        }
        this.#assigned = next;
        // Batches of the new assignment wait for this (state is rebuilt first).
        // A failed previous handler must not block this one (catch first), or
        // every later batch would wait on a rejected promise for ever.
        this.#pendingAssignment = this.#pendingAssignment
          .catch(() => undefined)
          .then(async () => {
            await handlers.onAssignment?.(next, revoked);
          });
        this.#pendingAssignment.catch((e) =>
          this.#logger.error({ err: e }, "partition assignment handler failed"),
        );
      },
    });
    this.#consumer = c;
    await c.connect();
    const rd = c._getInternalClient();
    // The KafkaJS layer logs a fetch error and retries it forever; an
    // authorization refusal (a missing ACL) will not go away by retrying, so
    // it ends the consumer (failure()) and the process exits naming it.
    const consume = rd.consume.bind(rd);
    rd.consume = (size, cb) =>
      consume(size, (err, messages) => {
        if (err && AUTHORIZATION_CODES.has(err.code) && !this.#failure)
          this.#failure = Object.assign(
            new Error(`librdkafka: ${String((err as { message?: string }).message ?? err.code)}`),
            {
              type: AUTHORIZATION_CODES.get(err.code),
            },
          );
        cb(err, messages);
      });
    rd.on("data", (m) => {
      this.#fetched.set(tpKey(m.topic, m.partition), Number(m.offset) + 1);
    });
    rd.on("partition.eof", (e) => {
      const k = tpKey(e.topic, e.partition);
      this.#eof.set(k, { offset: Number(e.offset), fetchedBefore: this.#fetched.get(k) ?? 0 });
    });
    await c.subscribe({ topics: [...topics] });
    this.#groups.set(o.groupId, c);
    this.#running = true;
    await c.run({
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: o.partitionsConcurrently ?? 1,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        await this.#pendingAssignment;
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        const records: KafkaRecord[] = batch.messages.map((m) => {
          const headers = m.headers ? headersOf(m.headers) : undefined;
          return {
            topic: batch.topic,
            partition: batch.partition,
            offset: Number(m.offset),
            key: m.key === null ? null : m.key.toString("utf8"),
            value: m.value,
            timestamp: Number(m.timestamp),
            ...(headers ? { headers } : {}),
          };
        });
        const lastOffset = records.at(-1)?.offset ?? 0;
        const hw = Number(batch.highWatermark);
        await handlers.eachBatch(
          {
            topic: batch.topic,
            partition: batch.partition,
            records,
            // Unknown (-1001) before librdkafka has a watermark: treat the batch's end as the end.
            highWatermark: hw >= 0 ? hw : lastOffset + 1,
          },
          {
            isRunning: () => isRunning() && this.#running,
            heartbeat,
            markProcessed: (offset) => resolveOffset(String(offset)),
            isStale,
          },
        );
        const k = tpKey(batch.topic, batch.partition);
        if (lastOffset + 1 > (this.#processed.get(k) ?? 0)) this.#processed.set(k, lastOffset + 1);
      },
    });
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    if (!this.#consumer) throw new Error("commit before run()");
    await this.#consumer.commitOffsets(
      offsets.map((o) => ({
        topic: o.topic,
        partition: o.partition,
        offset: String(o.offset),
        metadata: o.metadata ?? null,
      })),
    );
  }

  /**
   * Processed positions, moved past trailing control records (transaction
   * markers, aborted records) once librdkafka reported the partition's end
   * and every record fetched before that report was processed.
   */
  positions(): ReadonlyMap<string, number> {
    const out = new Map(this.#processed);
    for (const [k, eof] of this.#eof) {
      const p = out.get(k) ?? 0;
      if (p >= eof.fetchedBefore && eof.offset > p) out.set(k, eof.offset);
    }
    return out;
  }

  seek(topic: string, partition: number, offset: number): void {
    this.#consumer?.seek({ topic, partition, offset: String(offset) });
  }

  /**
   * Set by an authorization refusal of a fetch (see `run`); every other
   * error of a batch or a fetch is logged and retried by the KafkaJS layer.
   */
  failure(): Error | undefined {
    return this.#failure;
  }

  async stop(): Promise<void> {
    this.#running = false;
    const c = this.#consumer;
    if (!c) return;
    if (this.#groups.get(this.#opts.groupId) === c) this.#groups.delete(this.#opts.groupId);
    await c.disconnect();
  }
}
