/**
 * The narrow, transport-neutral Kafka interface every processor uses. One
 * implementation wraps kafkajs (`kafkajs.ts`); a librdkafka one or an
 * in-memory log for `gavel dev` can sit behind the same shape. Processors
 * never import a client library directly, so tests and alternative transports
 * swap in by passing another `Transport`.
 */

/** A consumed record, exactly as stored in the log. */
export interface KafkaRecord {
  readonly topic: string;
  readonly partition: number;
  /** Offsets are int64 in Kafka; a JS number is exact below 2^53, far beyond any realistic log. */
  readonly offset: number;
  readonly key: string | null;
  readonly value: Buffer | null;
  /** Record timestamp (producer create time unless the topic says log-append), epoch ms. */
  readonly timestamp: number;
  /** Record headers as UTF-8 strings (e.g. the W3C `traceparent` of the producer's span). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** A record to produce. */
export interface OutMessage {
  readonly key: string | null;
  readonly value: string | Buffer | null;
  /** Explicit partition; without it the key hash (murmur2, Java-compatible) chooses. */
  readonly partition?: number;
  readonly timestamp?: number;
  /** Record headers (lib/telemetry.ts `traceHeaders()` puts the trace context here). */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface TopicMessages {
  readonly topic: string;
  readonly messages: readonly OutMessage[];
}

export interface TopicPartition {
  readonly topic: string;
  readonly partition: number;
}

/** `offset` is the NEXT offset to consume (Kafka's committed-offset convention). */
export interface TopicPartitionOffset extends TopicPartition {
  readonly offset: number;
  /** Free text stored with a committed offset (Kafka's offset metadata). */
  readonly metadata?: string;
}

/** Idempotent producer, acks=all: `send` resolves only after every in-sync replica has the records. */
export interface Producer {
  send(batches: readonly TopicMessages[]): Promise<void>;
  close(): Promise<void>;
}

/** One open Kafka transaction: records and consumer offsets become visible together or not at all. */
export interface Transaction {
  send(batches: readonly TopicMessages[]): Promise<void>;
  /** Adds consumer-group offsets to the transaction (read-process-write atomicity). */
  sendOffsets(groupId: string, offsets: readonly TopicPartitionOffset[]): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/**
 * A transactional producer. Creating it with a `transactionalId` fences any
 * older producer with the same id (a zombie after a rebalance): its open
 * transaction is aborted and its later commits fail.
 */
export interface TransactionalProducer {
  begin(): Promise<Transaction>;
  close(): Promise<void>;
}

/** A batch of records of one partition, in offset order. */
export interface RecordBatch {
  readonly topic: string;
  readonly partition: number;
  readonly records: readonly KafkaRecord[];
  /** The partition's high watermark at fetch time (for lag). */
  readonly highWatermark: number;
}

export interface BatchContext {
  /** False once `stop()` was called: finish quickly, do not start new work. */
  isRunning(): boolean;
  /** Keeps the group membership alive during long batches. */
  heartbeat(): Promise<void>;
  /**
   * Marks records up to and including `offset` as processed in memory, so the
   * consumer fetches after them. Committing is separate (`commit` or a
   * transaction's `sendOffsets`). Records not marked are fetched again.
   */
  markProcessed(offset: number): void;
  /**
   * True once `seek` was called for this partition since the batch was
   * fetched: its records are not where reading resumes and must be dropped
   * (neither processed nor marked); the consumer fetches from the seek.
   */
  isStale(): boolean;
}

export interface ConsumerHandlers {
  /** Called with the complete new assignment after every rebalance, before batches of it are delivered. */
  onAssignment?(
    assigned: readonly TopicPartition[],
    revoked: readonly TopicPartition[],
  ): Promise<void> | void;
  /** Handles one batch. A throw makes the consumer fetch the unmarked records again (after a backoff). */
  eachBatch(batch: RecordBatch, ctx: BatchContext): Promise<void>;
}

export interface ConsumerOptions {
  readonly groupId: string;
  /** Where a partition without a committed offset starts. Default earliest. */
  readonly fromBeginning?: boolean;
  /** read_committed (default) hides aborted and open transactional records. */
  readonly readUncommitted?: boolean;
  /** Upper bound of bytes fetched per partition per request (bounds memory). */
  readonly maxBytesPerPartition?: number;
  readonly sessionTimeoutMs?: number;
  /**
   * Give partition p of every subscribed topic to the same member (needs equal
   * partition counts). Default: round-robin.
   */
  readonly coPartitioned?: boolean;
  /**
   * How many partitions' batches are handled at the same time (default 1).
   * Batches of one partition always come one after the other, in order; raise
   * it only when the handler's per-partition work is independent (one
   * transaction or one database write per partition), so their round trips
   * overlap instead of queueing.
   */
  readonly partitionsConcurrently?: number;
}

/** A consumer-group member with manual offset commits. */
export interface GroupConsumer {
  /** Joins the group and starts delivering batches; resolves once running. */
  run(topics: readonly string[], handlers: ConsumerHandlers): Promise<void>;
  /** Commits group offsets (next offset to consume). */
  commit(offsets: readonly TopicPartitionOffset[]): Promise<void>;
  /** The latest position per partition (next offset), including skipped control/aborted records. */
  positions(): ReadonlyMap<string, number>;
  /**
   * Set once the consumer has stopped for good (an error its client does not
   * restart from): nothing more will be consumed, the process should exit
   * and be restarted. Undefined while consuming.
   */
  failure(): Error | undefined;
  /**
   * Makes the next fetch of an assigned partition start at `offset` (the
   * in-memory position only; nothing is committed). A processor that rebuilt
   * a partition from its committed state without a rebalance rewinds the
   * partition to the committed offset with it.
   */
  seek(topic: string, partition: number, offset: number): void;
  /** Stops fetching, waits for the in-flight batch, leaves the group. */
  stop(): Promise<void>;
}

export interface TopicSpec {
  readonly name: string;
  readonly partitions: number;
  readonly replicationFactor?: number;
  readonly configs?: Readonly<Record<string, string>>;
}

export interface PartitionOffsets {
  readonly partition: number;
  /** Earliest available offset. */
  readonly low: number;
  /** Next offset to be written (high watermark). */
  readonly high: number;
}

export interface CommittedOffset {
  readonly partition: number;
  readonly offset: number;
  readonly metadata: string | null;
}

export interface TopicDescription {
  readonly name: string;
  readonly partitions: number;
}

export interface Admin {
  describeTopics(names: readonly string[]): Promise<Map<string, TopicDescription>>;
  createTopics(specs: readonly TopicSpec[]): Promise<void>;
  /** Grows a topic to `partitions` (Kafka never shrinks). */
  createPartitions(name: string, partitions: number): Promise<void>;
  deleteTopics(names: readonly string[]): Promise<void>;
  topicOffsets(name: string): Promise<PartitionOffsets[]>;
  /** Committed group offsets per partition (offset -1 when none), with their metadata. */
  groupOffsets(groupId: string, topic: string): Promise<CommittedOffset[]>;
  /** Number of live brokers (bounds the replication factor). */
  brokerCount(): Promise<number>;
  close(): Promise<void>;
}

export interface ProducerOptions {
  /** Compress record batches (gzip in kafkajs without extra codecs). */
  readonly compression?: boolean;
}

/** Factory of clients bound to one cluster. */
export interface Transport {
  producer(opts?: ProducerOptions): Promise<Producer>;
  transactionalProducer(transactionalId: string): Promise<TransactionalProducer>;
  consumer(opts: ConsumerOptions): GroupConsumer;
  admin(): Promise<Admin>;
}

/** Key used in position maps: `topic/partition`. */
export function tpKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}
