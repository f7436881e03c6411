/**
 * An embedded, in-process log behind the same `Transport` interface as Kafka,
 * for `gavel dev` and for unit tests of code that needs a log. It keeps the
 * semantics the processors rely on:
 *
 * - topics with N partitions; records keyed by murmur2 (the Java client's and
 *   kafkajs's default partitioner, so a key lands on the same partition
 *   number as on a real cluster); offsets per partition; a high watermark;
 * - transactions: records are appended when sent (they take offsets at once,
 *   like Kafka), hidden from read_committed consumers until the commit, and
 *   skipped for ever after an abort; every commit or abort writes a control
 *   marker that takes one offset and is never delivered (so offsets have
 *   gaps, as on Kafka); consumer offsets sent in a transaction are committed
 *   with it; a new producer with the same transactional id fences the old
 *   one (its open transaction is aborted and its later calls fail);
 * - read_committed fetches stop at the first open transaction (the last
 *   stable offset), so a reader never sees later records before earlier open ones;
 * - consumer groups: committed offsets with metadata, members joining and
 *   leaving, eager rebalances (every member finishes its in-flight batch,
 *   then the whole group is reassigned and every partition restarts from its
 *   committed offset), round-robin or co-partitioned assignment, assignment
 *   callbacks awaited before the first batch of a generation;
 * - compacted topics (`cleanup.policy=compact`): superseded records (an older
 *   record of the same key) are removed by a compaction pass that runs as the
 *   log grows, so a reader from the beginning gets the latest value per key
 *   (plus whatever was written since the last pass, as on Kafka);
 * - admin: create, grow (a group subscribed to a grown topic rebalances),
 *   delete, describe, low/high offsets, group offsets.
 *
 * Not modelled: replication, retention by time or size (nothing is ever
 * deleted except by compaction), quotas, sessions timing out (a member only
 * leaves through `stop()`), record batches' compression.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../lib/log.ts";
import type {
  Admin,
  BatchContext,
  CommittedOffset,
  ConsumerHandlers,
  ConsumerOptions,
  GroupConsumer,
  KafkaRecord,
  OutMessage,
  PartitionOffsets,
  Producer,
  TopicDescription,
  TopicMessages,
  TopicPartition,
  TopicPartitionOffset,
  TopicSpec,
  Transaction,
  TransactionalProducer,
  Transport,
} from "./transport.ts";
import { tpKey } from "./transport.ts";

/** Kafka's murmur2 (Java `Utils.murmur2`), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  const m = 0x5bd1e995;
  const r = 24;
  let h = (0x9747b28c ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> r;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  // The tail bytes (Java mixes them in a fall-through switch).
  const tail = length & ~3;
  const rest = length % 4;
  if (rest >= 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) {
    h ^= data[tail]!;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}

/** The default partitioner's choice for a key: `toPositive(murmur2(key)) % partitions`. */
export function partitionForKey(key: string, partitions: number): number {
  return (murmur2(Buffer.from(key, "utf8")) & 0x7fffffff) % partitions;
}

/** Errors that mirror Kafka's; `retriable` follows Kafka's classification (processors/runtime/retry.ts reads it). */
export class MemoryKafkaError extends Error {
  readonly retriable: boolean;
  readonly type: string;
  constructor(type: string, message: string, retriable = false) {
    super(message);
    this.name = "MemoryKafkaError";
    this.type = type;
    this.retriable = retriable;
  }
}

interface TxnState {
  state: "open" | "committed" | "aborted";
}

interface Entry {
  readonly offset: number;
  key: string | null;
  value: Buffer | null;
  readonly timestamp: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** A commit/abort marker: takes an offset, never delivered. */
  readonly control?: true;
  readonly txn?: TxnState;
  /** Removed by compaction. */
  removed?: true;
}

class PartitionLog {
  readonly entries: Entry[] = [];
  /** Open transactions with records in this partition, by first offset. */
  readonly open = new Set<{ first: number; txn: TxnState }>();
  /** Entries appended since the last compaction pass. */
  sinceCompaction = 0;

  get high(): number {
    return this.entries.length;
  }

  /** Last stable offset: the first offset of the oldest open transaction, else the high watermark. */
  get lso(): number {
    let lso = this.high;
    for (const o of this.open) if (o.txn.state === "open" && o.first < lso) lso = o.first;
    return lso;
  }
}

interface TopicState {
  readonly name: string;
  readonly parts: PartitionLog[];
  readonly configs: Readonly<Record<string, string>>;
  readonly compacted: boolean;
  /** Round-robin cursor for records without key or partition. */
  rr: number;
}

interface Committed {
  offset: number;
  metadata: string;
}

/** Options of the in-memory broker. */
export interface MemoryBrokerOptions {
  /** A compacted partition is compacted once this many records were appended since the last pass. Default 10,000. */
  readonly compactEvery?: number;
  /** Clock for record timestamps without one. Default Date.now. */
  readonly now?: () => number;
  /** Where failing batch handlers and assignment callbacks are reported (kafkajs logs them too). Default: process warnings. */
  readonly logger?: Logger;
}

/**
 * The shared state of an embedded cluster: topics, groups, transactional ids.
 * One instance per process (or per test); `MemoryTransport` instances bound to
 * the same broker see the same data.
 */
export class MemoryBroker {
  readonly #topics = new Map<string, TopicState>();
  readonly #groups = new Map<string, Group>();
  readonly #txnEpochs = new Map<string, { epoch: number; abortOpen?: () => void }>();
  #waiters: (() => void)[] = [];
  readonly #compactEvery: number;
  readonly now: () => number;
  readonly #logger?: Logger;

  constructor(opts: MemoryBrokerOptions = {}) {
    this.#compactEvery = opts.compactEvery ?? 10_000;
    this.now = opts.now ?? Date.now;
    this.#logger = opts.logger;
  }

  /** Reports an error of a consumer's handler (the consumer goes on, as kafkajs does). */
  warn(err: unknown, msg: string, fields: Record<string, unknown> = {}): void {
    if (this.#logger) this.#logger.warn({ err, ...fields }, msg);
    else process.emitWarning(`${msg}: ${(err as Error)?.message ?? String(err)}`);
  }

  // ---- topics

  createTopic(spec: TopicSpec): boolean {
    if (this.#topics.has(spec.name)) return false;
    if (!Number.isInteger(spec.partitions) || spec.partitions < 1)
      throw new MemoryKafkaError("INVALID_PARTITIONS", `topic ${spec.name}: partitions must be >= 1`);
    const configs = { ...(spec.configs ?? {}) };
    this.#topics.set(spec.name, {
      name: spec.name,
      parts: Array.from({ length: spec.partitions }, () => new PartitionLog()),
      configs,
      compacted: (configs["cleanup.policy"] ?? "").split(",").includes("compact"),
      rr: 0,
    });
    return true;
  }

  growTopic(name: string, partitions: number): void {
    const t = this.topic(name);
    if (partitions <= t.parts.length)
      throw new MemoryKafkaError(
        "INVALID_PARTITIONS",
        `topic ${name} has ${t.parts.length} partitions; it can only grow (asked ${partitions})`,
      );
    while (t.parts.length < partitions) t.parts.push(new PartitionLog());
    for (const g of this.#groups.values()) if (g.subscribes(name)) g.requestRebalance();
    this.notify();
  }

  deleteTopic(name: string): void {
    this.#topics.delete(name);
    this.notify();
  }

  hasTopic(name: string): boolean {
    return this.#topics.has(name);
  }

  topicNames(): string[] {
    return [...this.#topics.keys()].sort();
  }

  topic(name: string): TopicState {
    const t = this.#topics.get(name);
    if (!t)
      throw new MemoryKafkaError("UNKNOWN_TOPIC_OR_PARTITION", `This server does not host topic ${name}`);
    return t;
  }

  partitionCount(name: string): number {
    return this.topic(name).parts.length;
  }

  offsets(name: string): PartitionOffsets[] {
    return this.topic(name).parts.map((p, partition) => ({ partition, low: 0, high: p.high }));
  }

  // ---- producing

  #partitionOf(t: TopicState, m: OutMessage): number {
    if (m.partition !== undefined) {
      if (!Number.isInteger(m.partition) || m.partition < 0 || m.partition >= t.parts.length)
        throw new MemoryKafkaError(
          "UNKNOWN_TOPIC_OR_PARTITION",
          `topic ${t.name} has no partition ${m.partition}`,
        );
      return m.partition;
    }
    if (m.key !== null) return partitionForKey(m.key, t.parts.length);
    t.rr = (t.rr + 1) % t.parts.length;
    return t.rr;
  }

  /** Appends records (inside `txn` when given); validates every batch before appending any. */
  append(batches: readonly TopicMessages[], txn?: TxnState, touched?: Map<PartitionLog, number>): void {
    const plan: { log: PartitionLog; entry: Omit<Entry, "offset">; compacted: boolean }[] = [];
    for (const b of batches) {
      const t = this.topic(b.topic);
      for (const m of b.messages) {
        const p = this.#partitionOf(t, m);
        const value = m.value === null ? null : typeof m.value === "string" ? Buffer.from(m.value) : m.value;
        plan.push({
          log: t.parts[p]!,
          compacted: t.compacted,
          entry: {
            key: m.key,
            value,
            timestamp: m.timestamp ?? this.now(),
            ...(m.headers ? { headers: { ...m.headers } } : {}),
            ...(txn ? { txn } : {}),
          },
        });
      }
    }
    for (const { log, entry, compacted } of plan) {
      const offset = log.high;
      log.entries.push({ ...entry, offset });
      if (txn && touched && !touched.has(log)) {
        touched.set(log, offset);
        log.open.add({ first: offset, txn });
      }
      if (compacted && ++log.sinceCompaction >= this.#compactEvery) this.compactPartition(log);
    }
    if (plan.length > 0) this.notify();
  }

  /** Ends a transaction: marks it, writes a control marker in every partition it touched. */
  endTransaction(txn: TxnState, state: "committed" | "aborted", touched: Map<PartitionLog, number>): void {
    txn.state = state;
    for (const log of touched.keys()) {
      for (const o of log.open) if (o.txn === txn) log.open.delete(o);
      log.entries.push({ offset: log.high, key: null, value: null, timestamp: this.now(), control: true });
    }
    this.notify();
  }

  /** Registers a transactional producer: fences (aborts) the open transaction of an older one with the same id. */
  initTransactionalId(id: string): number {
    const cur = this.#txnEpochs.get(id);
    cur?.abortOpen?.();
    const epoch = (cur?.epoch ?? 0) + 1;
    this.#txnEpochs.set(id, { epoch });
    return epoch;
  }

  checkEpoch(id: string, epoch: number): void {
    if (this.#txnEpochs.get(id)?.epoch !== epoch)
      throw new MemoryKafkaError(
        "INVALID_PRODUCER_EPOCH",
        `producer with transactional id ${id} was fenced by a newer one`,
      );
  }

  setAbortOpen(id: string, epoch: number, abort: (() => void) | undefined): void {
    const cur = this.#txnEpochs.get(id);
    if (cur && cur.epoch === epoch) {
      if (abort) cur.abortOpen = abort;
      else delete cur.abortOpen;
    }
  }

  // ---- compaction

  /** Removes records superseded by a later committed record of the same key, below the last stable offset. */
  compactPartition(log: PartitionLog): number {
    const lso = log.lso;
    const latest = new Map<string, number>();
    for (let i = 0; i < lso; i++) {
      const e = log.entries[i]!;
      if (e.control || e.removed || e.key === null) continue;
      if (e.txn && e.txn.state !== "committed") continue;
      latest.set(e.key, i);
    }
    let removed = 0;
    for (let i = 0; i < lso; i++) {
      const e = log.entries[i]!;
      if (e.control || e.removed) continue;
      const aborted = e.txn?.state === "aborted";
      if (aborted || (e.key !== null && latest.get(e.key) !== i)) {
        e.removed = true;
        e.value = null;
        removed++;
      }
    }
    log.sinceCompaction = 0;
    return removed;
  }

  /** Compacts every partition of a compacted topic now; returns the records removed. */
  compact(topic: string): number {
    const t = this.topic(topic);
    if (!t.compacted) return 0;
    return t.parts.reduce((n, p) => n + this.compactPartition(p), 0);
  }

  // ---- fetching

  /**
   * Records of one partition from `from`: at most `maxBytes` (at least one
   * record), up to the high watermark (read_uncommitted) or the last stable
   * offset (read_committed, skipping aborted records). `next` is the offset
   * after the last entry looked at, including skipped markers and aborted records.
   */
  fetch(
    topic: string,
    partition: number,
    from: number,
    readCommitted: boolean,
    maxBytes: number,
  ): { records: KafkaRecord[]; next: number; high: number } {
    const log = this.topic(topic).parts[partition];
    if (!log) return { records: [], next: from, high: 0 };
    const end = readCommitted ? log.lso : log.high;
    const records: KafkaRecord[] = [];
    let bytes = 0;
    let i = Math.max(0, from);
    for (; i < end; i++) {
      const e = log.entries[i]!;
      if (e.control || e.removed) continue;
      if (e.txn?.state === "aborted" && readCommitted) continue;
      const size = (e.value?.length ?? 0) + (e.key?.length ?? 0) + 64;
      if (records.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      records.push({
        topic,
        partition,
        offset: e.offset,
        key: e.key,
        value: e.value,
        timestamp: e.timestamp,
        ...(e.headers ? { headers: e.headers } : {}),
      });
    }
    return { records, next: i, high: log.high };
  }

  // ---- groups

  group(id: string): Group {
    let g = this.#groups.get(id);
    if (!g) {
      g = new Group(id, this);
      this.#groups.set(id, g);
    }
    return g;
  }

  groupIds(): string[] {
    return [...this.#groups.keys()];
  }

  /**
   * Stops every member of group `groupId` for good with `err`, as a kafkajs
   * consumer stops after an error it does not restart from (a missing ACL,
   * offset metadata too large): its in-flight batch finishes, nothing more is
   * delivered, `failure()` returns `err`. What a processor does then is
   * tested with it.
   */
  crashGroup(groupId: string, err: Error): void {
    for (const m of [...this.group(groupId).members.values()]) m.crash(err);
  }

  // ---- change notification (consumers wait for new data instead of polling)

  notify(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Resolves at the next append/commit or after `ms`. */
  waitForChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        resolve();
      }
      this.#waiters.push(done);
    });
  }
}

/** A consumer group: members, committed offsets, the current generation's assignment. */
class Group {
  readonly id: string;
  readonly #broker: MemoryBroker;
  readonly committed = new Map<string, Committed>();
  readonly members = new Map<string, MemoryGroupConsumer>();
  generation = 0;
  #rebalancing: Promise<void> | undefined;
  #again = false;

  constructor(id: string, broker: MemoryBroker) {
    this.id = id;
    this.#broker = broker;
  }

  subscribes(topic: string): boolean {
    for (const m of this.members.values()) if (m.topics.includes(topic)) return true;
    return false;
  }

  commit(offsets: readonly TopicPartitionOffset[]): void {
    for (const o of offsets) {
      this.#broker.topic(o.topic);
      this.committed.set(tpKey(o.topic, o.partition), { offset: o.offset, metadata: o.metadata ?? "" });
    }
  }

  /**
   * Eager rebalance: every member stops after its in-flight batch, then every
   * member gets its new assignment (applied by the member before its next
   * batch). Overlapping requests coalesce into one more round.
   */
  requestRebalance(): Promise<void> {
    if (this.#rebalancing) {
      this.#again = true;
      return this.#rebalancing;
    }
    this.#rebalancing = (async () => {
      do {
        this.#again = false;
        const members = [...this.members.values()];
        await Promise.all(members.map((m) => m.quiesce()));
        this.generation++;
        const assignment = this.#assign([...this.members.values()]);
        for (const m of members) if (!this.members.has(m.memberId)) m.resume(undefined);
        for (const m of this.members.values()) m.resume(assignment.get(m.memberId) ?? []);
      } while (this.#again);
    })().finally(() => {
      this.#rebalancing = undefined;
    });
    return this.#rebalancing;
  }

  #assign(members: MemoryGroupConsumer[]): Map<string, TopicPartition[]> {
    const out = new Map<string, TopicPartition[]>(members.map((m) => [m.memberId, []]));
    const sorted = [...members].sort((a, b) => (a.memberId < b.memberId ? -1 : 1));
    const coPartitioned = sorted.some((m) => m.coPartitioned);
    const topics = [...new Set(sorted.flatMap((m) => m.topics))].sort();
    if (coPartitioned) {
      // partition p of every topic -> the (p mod n)-th member subscribed to it (processors/kafka/assigner.ts)
      for (const topic of topics) {
        const subs = sorted.filter((m) => m.topics.includes(topic));
        if (!this.#broker.hasTopic(topic) || subs.length === 0) continue;
        for (let p = 0; p < this.#broker.partitionCount(topic); p++)
          out.get(subs[p % subs.length]!.memberId)!.push({ topic, partition: p });
      }
      return out;
    }
    // Round-robin over every topic-partition in (topic, partition) order, among the members subscribed.
    let i = 0;
    for (const topic of topics) {
      if (!this.#broker.hasTopic(topic)) continue;
      const subs = sorted.filter((m) => m.topics.includes(topic));
      for (let p = 0; p < this.#broker.partitionCount(topic); p++) {
        const m = subs[i++ % subs.length];
        if (m) out.get(m.memberId)!.push({ topic, partition: p });
      }
    }
    return out;
  }
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

class MemoryGroupConsumer implements GroupConsumer {
  readonly memberId = `member-${randomUUID()}`;
  readonly #broker: MemoryBroker;
  readonly #opts: ConsumerOptions;
  readonly #group: Group;
  topics: string[] = [];
  #handlers?: ConsumerHandlers;
  /** Where the next fetch starts, per assigned partition. */
  readonly #fetchAt = new Map<string, number>();
  /** Partitions sought during the batch in flight: its end must not move their fetch position. */
  readonly #sought = new Set<string>();
  /** Positions reported by `positions()`: end of the last delivered (or skipped) range. */
  readonly #positions = new Map<string, number>();
  #assigned: TopicPartition[] = [];
  #running = false;
  #loop?: Promise<void>;
  /** Set by the group: stop at the next batch boundary and wait for the new assignment. */
  #quiesceReq?: Deferred<void>;
  #next?: Deferred<TopicPartition[] | undefined>;
  #cursor = 0;
  #firstAssignment = deferred<void>();
  #wake?: () => void;
  /** The error this member stopped for good with (`MemoryBroker.crashGroup`). */
  #failure: Error | undefined;

  constructor(broker: MemoryBroker, opts: ConsumerOptions) {
    this.#broker = broker;
    this.#opts = opts;
    this.#group = broker.group(opts.groupId);
  }

  get coPartitioned(): boolean {
    return this.#opts.coPartitioned === true;
  }

  async run(topics: readonly string[], handlers: ConsumerHandlers): Promise<void> {
    if (this.#running) throw new Error("consumer is already running");
    for (const t of topics) this.#broker.topic(t);
    this.topics = [...topics];
    this.#handlers = handlers;
    this.#running = true;
    this.#group.members.set(this.memberId, this);
    this.#loop = this.#runLoop();
    void this.#group.requestRebalance();
    // Resolves once the first assignment was applied (its callback awaited), or when stopped first.
    await this.#firstAssignment.promise;
  }

  /** Called by the group: resolves once this member is between batches and holding. */
  quiesce(): Promise<void> {
    if (!this.#running || !this.#loop) return Promise.resolve();
    if (!this.#quiesceReq) {
      this.#quiesceReq = deferred<void>();
      this.#next = deferred<TopicPartition[] | undefined>();
    }
    this.#wake?.();
    return this.#quiesceReq.promise;
  }

  /** Called by the group with the new assignment (undefined: this member left). */
  resume(assignment: TopicPartition[] | undefined): void {
    const next = this.#next;
    this.#quiesceReq = undefined;
    this.#next = undefined;
    if (next) next.resolve(assignment);
    else if (assignment && this.#running) {
      // A member that joined while the group was quiescing: apply directly at its next turn.
      this.#pendingAssignment = assignment;
      this.#wake?.();
    }
  }

  #pendingAssignment?: TopicPartition[];

  async #applyAssignment(next: TopicPartition[]): Promise<void> {
    const nextKeys = new Set(next.map((tp) => tpKey(tp.topic, tp.partition)));
    const revoked = this.#assigned.filter((tp) => !nextKeys.has(tpKey(tp.topic, tp.partition)));
    this.#assigned = next;
    this.#fetchAt.clear();
    for (const tp of revoked) this.#positions.delete(tpKey(tp.topic, tp.partition));
    // Eager protocol: every assigned partition restarts from its committed offset.
    for (const tp of next) {
      const k = tpKey(tp.topic, tp.partition);
      const c = this.#group.committed.get(k);
      let start: number;
      if (c && c.offset >= 0) start = c.offset;
      else if (this.#opts.fromBeginning ?? true) start = 0;
      else start = this.#broker.topic(tp.topic).parts[tp.partition]?.high ?? 0;
      this.#fetchAt.set(k, start);
    }
    try {
      await this.#handlers?.onAssignment?.(next, revoked);
    } catch (err) {
      // kafkajs logs a failing assignment handler and goes on (processors/kafka/kafkajs.ts); so do we.
      this.#broker.warn(err, "partition assignment handler failed", { group: this.#opts.groupId });
    }
    this.#firstAssignment.resolve();
  }

  async #runLoop(): Promise<void> {
    let idleRounds = 0;
    while (this.#running || this.#quiesceReq) {
      if (this.#quiesceReq) {
        const next = this.#next!;
        this.#quiesceReq.resolve();
        const assignment = await next.promise;
        if (assignment === undefined) break;
        await this.#applyAssignment(assignment);
        continue;
      }
      if (this.#pendingAssignment) {
        const a = this.#pendingAssignment;
        this.#pendingAssignment = undefined;
        await this.#applyAssignment(a);
        continue;
      }
      if (!this.#running) break;
      const did = await this.#oneBatch();
      if (did) {
        idleRounds = 0;
        continue;
      }
      idleRounds++;
      // Nothing to read: wait for an append (or a rebalance/stop wake-up).
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        void this.#broker.waitForChange(idleRounds > 3 ? 500 : 50).then(resolve);
      });
      this.#wake = undefined;
    }
  }

  /** Delivers one batch of one partition with something to read (round-robin); false when idle. */
  async #oneBatch(): Promise<boolean> {
    const n = this.#assigned.length;
    const readCommitted = !(this.#opts.readUncommitted ?? false);
    const maxBytes = this.#opts.maxBytesPerPartition ?? 1_048_576;
    for (let j = 0; j < n; j++) {
      const tp = this.#assigned[(this.#cursor + j) % n]!;
      const k = tpKey(tp.topic, tp.partition);
      if (!this.#broker.hasTopic(tp.topic)) continue;
      const from = this.#fetchAt.get(k) ?? 0;
      const f = this.#broker.fetch(tp.topic, tp.partition, from, readCommitted, maxBytes);
      if (f.next <= from) continue;
      this.#cursor = (this.#cursor + j + 1) % n;
      if (f.records.length === 0) {
        // Only markers or aborted records: step over them.
        this.#fetchAt.set(k, f.next);
        this.#bumpPosition(k, f.next);
        return true;
      }
      let marked = from - 1;
      this.#sought.delete(k);
      const ctx: BatchContext = {
        isRunning: () => this.#running && !this.#quiesceReq,
        heartbeat: async () => {},
        markProcessed: (offset) => {
          if (offset > marked) marked = offset;
        },
        isStale: () => this.#sought.has(k),
      };
      try {
        await this.#handlers!.eachBatch(
          { topic: tp.topic, partition: tp.partition, records: f.records, highWatermark: f.high },
          ctx,
        );
      } catch (err) {
        // Like kafkajs: the unmarked records are fetched again after a backoff.
        if (marked >= from && !this.#sought.has(k)) this.#fetchAt.set(k, marked + 1);
        this.#broker.warn(err, "batch handler failed; unmarked records will be fetched again", {
          group: this.#opts.groupId,
          topic: tp.topic,
          partition: tp.partition,
        });
        await sleep(200);
        return true;
      }
      const last = f.records.at(-1)!.offset;
      if (this.#sought.has(k)) {
        // sought during the batch: the seek wins
      } else if (marked >= last)
        // Like kafkajs (resolveOffset): fetching resumes after the marked offset, even one past the batch.
        this.#fetchAt.set(k, Math.max(f.next, marked + 1));
      else if (marked >= from) this.#fetchAt.set(k, marked + 1);
      this.#bumpPosition(k, f.next);
      return true;
    }
    return false;
  }

  #bumpPosition(k: string, next: number): void {
    if (next > (this.#positions.get(k) ?? 0)) this.#positions.set(k, next);
  }

  async commit(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    if (offsets.length === 0) return;
    this.#group.commit(offsets);
  }

  positions(): ReadonlyMap<string, number> {
    return this.#positions;
  }

  seek(topic: string, partition: number, offset: number): void {
    const k = tpKey(topic, partition);
    this.#fetchAt.set(k, offset);
    this.#sought.add(k);
  }

  /** Set by `MemoryBroker.crashGroup` only: a failing handler is retried after a backoff. */
  failure(): Error | undefined {
    return this.#failure;
  }

  /** Stops for good with `err` (see `MemoryBroker.crashGroup`). */
  crash(err: Error): void {
    this.#failure ??= err;
    void this.stop();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#wake?.();
    this.#group.members.delete(this.memberId);
    // Release a caller of run() still waiting for a first assignment.
    this.#firstAssignment.resolve();
    // If a rebalance is waiting on us, let it go on without us.
    this.#next?.resolve(undefined);
    this.#quiesceReq?.resolve();
    await this.#loop;
    if (this.#group.members.size > 0) void this.#group.requestRebalance();
  }
}

/** `Transport` over a `MemoryBroker`. */
export class MemoryTransport implements Transport {
  readonly broker: MemoryBroker;

  constructor(broker: MemoryBroker = new MemoryBroker()) {
    this.broker = broker;
  }

  async producer(): Promise<Producer> {
    const broker = this.broker;
    let closed = false;
    return {
      async send(batches) {
        if (closed) throw new MemoryKafkaError("PRODUCER_CLOSED", "producer is closed");
        broker.append(batches);
      },
      async close() {
        closed = true;
      },
    };
  }

  async transactionalProducer(transactionalId: string): Promise<TransactionalProducer> {
    const broker = this.broker;
    const epoch = broker.initTransactionalId(transactionalId);
    let current: { txn: TxnState; touched: Map<PartitionLog, number> } | undefined;
    const check = () => broker.checkEpoch(transactionalId, epoch);
    return {
      async begin(): Promise<Transaction> {
        check();
        if (current && current.txn.state === "open")
          throw new MemoryKafkaError("INVALID_TXN_STATE", "a transaction is already open");
        const txn: TxnState = { state: "open" };
        const touched = new Map<PartitionLog, number>();
        const offsets: { groupId: string; offsets: readonly TopicPartitionOffset[] }[] = [];
        const me = { txn, touched };
        current = me;
        broker.setAbortOpen(transactionalId, epoch, () => {
          if (txn.state === "open") broker.endTransaction(txn, "aborted", touched);
        });
        const ensureOpen = () => {
          check();
          if (txn.state !== "open")
            throw new MemoryKafkaError("INVALID_TXN_STATE", `transaction is already ${txn.state}`);
        };
        return {
          async send(batches) {
            ensureOpen();
            broker.append(batches, txn, touched);
          },
          async sendOffsets(groupId, o) {
            ensureOpen();
            offsets.push({ groupId, offsets: [...o] });
          },
          async commit() {
            ensureOpen();
            for (const o of offsets) broker.group(o.groupId).commit(o.offsets);
            broker.endTransaction(txn, "committed", touched);
            broker.setAbortOpen(transactionalId, epoch, undefined);
          },
          async abort() {
            check();
            if (txn.state === "open") broker.endTransaction(txn, "aborted", touched);
            broker.setAbortOpen(transactionalId, epoch, undefined);
          },
        };
      },
      async close() {
        // Closing with an open transaction aborts it (as the coordinator would on timeout).
        if (current?.txn.state === "open") broker.endTransaction(current.txn, "aborted", current.touched);
      },
    };
  }

  consumer(opts: ConsumerOptions): GroupConsumer {
    return new MemoryGroupConsumer(this.broker, opts);
  }

  async admin(): Promise<Admin> {
    const broker = this.broker;
    return {
      async describeTopics(names) {
        const out = new Map<string, TopicDescription>();
        for (const n of names)
          if (broker.hasTopic(n)) out.set(n, { name: n, partitions: broker.partitionCount(n) });
        return out;
      },
      async createTopics(specs) {
        for (const s of specs) broker.createTopic(s);
      },
      async createPartitions(name, partitions) {
        broker.growTopic(name, partitions);
      },
      async deleteTopics(names) {
        for (const n of names) broker.deleteTopic(n);
      },
      async topicOffsets(name) {
        return broker.offsets(name);
      },
      async groupOffsets(groupId, topic): Promise<CommittedOffset[]> {
        const g = broker.group(groupId);
        return Array.from({ length: broker.partitionCount(topic) }, (_, partition) => {
          const c = g.committed.get(tpKey(topic, partition));
          return { partition, offset: c?.offset ?? -1, metadata: c ? c.metadata : null };
        });
      },
      async brokerCount() {
        return 1;
      },
      async close() {},
    };
  }
}
