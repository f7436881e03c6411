import type { AuctionPipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import type { Logger } from "../../lib/log.ts";
import type { AuctionBookOptions } from "../domain/auction.ts";
import { type BidCoreOptions, BidProcessorCore, type OutputTopic } from "../domain/bid-core.ts";
import type { FraudModels } from "../fraud/model.ts";
import { readToEnd, tailTopic } from "../kafka/read.ts";
import type {
  Admin,
  BatchContext,
  GroupConsumer,
  KafkaRecord,
  PartitionOffsets,
  RecordBatch,
  TopicPartition,
  TopicPartitionOffset,
  Transport,
} from "../kafka/transport.ts";
import type { BatchTrace } from "../runtime/batch-telemetry.ts";
import { countOutputs, pipelineMetrics } from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { withRetry } from "../runtime/retry.ts";
import { type Readiness, Stream, type Sunk } from "../runtime/stream.ts";
import { parseHeldMeta } from "./held-meta.ts";
import { encodeOutputs, Outputs } from "./outputs.ts";
import { newPart, offsetsFitting, type Part, type PartitionCommits, type Ref } from "./partition.ts";
import { type RebuildSource, readDecisions, readSnapshots } from "./rebuild.ts";

export interface BidProcessorOptions {
  readonly transport: Transport;
  readonly admin: Admin;
  readonly pipeline: AuctionPipeline;
  readonly topics: ReturnType<typeof topicNames>;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Consumer group (and transactional-id prefix). Default `<pipeline>.bid-processor`. */
  readonly groupId?: string;
  /** How often due auctions are closed and expired held bids rejected. Default 250 ms. */
  readonly tickMs?: number;
  readonly book?: AuctionBookOptions;
  readonly now?: () => number;
  /**
   * Partitions whose batches are handled at the same time. Default 8. A
   * partition's batches stay in order; with one at a time, every owned
   * partition's transaction waited for the others' (docs/benchmarks.md).
   */
  readonly partitionsConcurrently?: number;
  /**
   * Consumer-group session timeout: how long a crashed replica keeps its
   * partitions before the group gives them to another. Default 10 s
   * (docs/operations.md: recovery time).
   */
  readonly sessionTimeoutMs?: number;
  /**
   * Trained fraud models (a ModelWatcher keeps it current): every
   * partition's scorer adds the `anomaly` signal of the model active at a
   * bid's arrival. Absent: the rules alone.
   */
  readonly models?: FraudModels;
}

export { IN_BOOK_HEADER, SEQ_HEADER } from "./outputs.ts";

/**
 * The bid-processor, a transform on the consume loop (runtime/stream.ts):
 * moves records between Kafka and the pure `BidProcessorCore`, and its sink
 * is a Kafka transaction. Partition p of the bids and auctions topics is
 * owned by one replica (co-partitioned assignment); each owned partition has
 * its own transactional producer (transactional id `<group>-<p>`, so a new
 * owner fences the old one) and every batch's outputs are committed in one
 * Kafka transaction together with the input offsets (the loop itself
 * commits nothing). State is rebuilt on assignment from the compacted prices
 * topic (each price update carries the auction's snapshot), read up to its
 * end in read_committed.
 */
export class BidProcessor extends Stream<RecordBatch> {
  readonly #options: BidProcessorOptions;
  readonly #parts = new Map<number, Part>();
  /** Latest record per user (every partition's fraud scorer needs every user). */
  readonly #users = new Map<string, Buffer>();
  readonly #outTopic: Record<OutputTopic, string>;
  /** Where a partition rebuild reads. */
  readonly #rebuildFrom: RebuildSource;
  /** What a partition's committed offsets are computed with. */
  readonly #offsetsOf: PartitionCommits;
  readonly #now: () => number;
  #usersConsumer?: GroupConsumer;
  /** The idle tick (`#tick`). */
  #timer?: NodeJS.Timeout;
  /** A log-end check of idle partitions is under way (`#tick`). */
  #checking = false;
  /** Fresh cores of rebuilds under way (users read meanwhile go to them too). */
  readonly #rebuilding = new Set<BidProcessorCore>();
  readonly #metrics;

  constructor(o: BidProcessorOptions) {
    const t = o.topics;
    super({
      transport: o.transport,
      processor: "bid-processor",
      groupId: o.groupId ?? `${o.pipeline.metadata.name}.bid-processor`,
      topics: [t.auctions.name, t.bids.name],
      consumer: {
        coPartitioned: true,
        fromBeginning: true,
        sessionTimeoutMs: o.sessionTimeoutMs ?? 10_000,
        // Each partition has its own book, lock and transactional producer, so
        // their batches and transactions can overlap instead of queueing.
        partitionsConcurrently: o.partitionsConcurrently ?? 8,
        // A batch's outputs are ~5x its input (an accepted bid and a price
        // update with the auction's snapshot per bid, JSON, then encoded):
        // 256 KiB per partition bounds the memory of 8 concurrent batches.
        maxBytesPerPartition: 256 * 1024,
      },
      metrics: o.metrics,
      logger: o.logger,
      lag: { pipeline: o.pipeline.metadata.name },
    });
    this.#options = o;
    this.#now = o.now ?? Date.now;
    this.#outTopic = {
      bidsAccepted: t["bids.accepted"].name,
      bidsRejected: t["bids.rejected"].name,
      prices: t.prices.name,
      fraudAlerts: t["fraud-alerts"].name,
      transactions: t.transactions.name,
    };
    this.#rebuildFrom = {
      transport: o.transport,
      admin: o.admin,
      groupPrefix: this.groupId,
      prices: t.prices.name,
      bidsAccepted: this.#outTopic.bidsAccepted,
      bidsRejected: this.#outTopic.bidsRejected,
      transactions: this.#outTopic.transactions,
    };
    const m = o.metrics;
    this.#metrics = {
      in: m.counter("bid_processor_records_in_total", "Input records processed, by topic."),
      skipped: m.counter(
        "bid_processor_records_skipped_total",
        "Redelivered input records skipped (already decided).",
      ),
      out: m.counter("bid_processor_records_out_total", "Records committed to output topics, by topic."),
      tx: m.counter("bid_processor_transactions_total", "Kafka transactions, by result (commit, abort)."),
      bad: m.counter(
        "bid_processor_unusable_records_total",
        "Auction/user records that could not be decoded.",
      ),
      restore: m.histogram(
        "bid_processor_restore_seconds",
        "Time to rebuild partition state from the prices topic.",
      ),
      owned: m.gauge("bid_processor_partitions", "Partitions owned by this replica."),
      held: m.gauge("bid_processor_held_bids", "Bids held while their auction record has not arrived."),
      evicted: m.counter(
        "bid_processor_held_evicted_total",
        "Held bids rejected early (auction_not_found) because the committed offset metadata had no room for them.",
      ),
      business: pipelineMetrics(m),
      open: m.gauge("auctions_open", "Auctions open in the partitions this replica owns.", {
        unit: "{auction}",
      }),
    };
    this.#offsetsOf = {
      bids: t.bids.name,
      auctions: t.auctions.name,
      held: this.#metrics.held,
      evicted: this.#metrics.evicted,
    };
    this.#metrics.open.track({}, () => {
      let n = 0;
      for (const st of this.#parts.values())
        n += (st.core as BidProcessorCore | undefined)?.book.openCount ?? 0;
      return n;
    });
  }

  #newCore(): BidProcessorCore {
    const core = new BidProcessorCore(
      bidCoreOptions(this.#options.pipeline, this.#options.book, this.#options.models),
    );
    for (const u of this.#users.values()) core.onUser(u);
    // Nothing of the auctions topic is known to have been read yet: held bids
    // wait until it is (records or a verified log end advance it).
    core.auctionsClockMs = 0;
    return core;
  }

  /** Set when a consumer (the group's or the users tail) stopped for good: the process should exit and be restarted. */
  override failure(): Error | undefined {
    return super.failure() ?? this.#usersConsumer?.failure();
  }

  /** Ready: consuming, and no partition is being rebuilt. */
  override ready(): Readiness {
    const consuming = super.ready();
    if (!consuming.ok) return consuming;
    const restoring = [...this.#parts.values()].filter((p) => p.restoring).map((p) => p.p);
    if (restoring.length > 0) return { ok: false, reason: `rebuilding partitions ${restoring.join(",")}` };
    return { ok: true };
  }

  override async start(): Promise<void> {
    const t = this.#options.topics;
    await this.#checkTopics();
    const onUser = (r: KafkaRecord) => {
      if (r.value === null || r.key === null) return;
      this.#users.set(r.key, r.value);
      for (const st of this.#parts.values()) {
        const res = st.core.onUser(r.value);
        if (!res.ok) this.#metrics.bad.inc({ topic: r.topic });
      }
      // Cores being rebuilt are not installed yet: they must not miss a user.
      for (const core of this.#rebuilding) core.onUser(r.value);
    };
    // Every user logged so far is known before the first bid is scored (a
    // replica that joins a running pipeline scores as the others do); the
    // tail below then keeps the view current.
    // Retried: a topic just created may not have a leader yet (NOT_LEADER).
    await withRetry(
      () =>
        readToEnd({
          transport: this.#options.transport,
          admin: this.#options.admin,
          topic: t.users.name,
          groupPrefix: this.groupId,
          onRecord: onUser,
        }),
      { what: "reading the users topic", logger: this.#options.logger, retries: 10 },
    );
    const users = tailTopic({
      transport: this.#options.transport,
      topic: t.users.name,
      groupPrefix: this.groupId,
      onRecord: onUser,
    });
    this.#usersConsumer = users.consumer;
    await users.started;
    await super.start();
    this.#timer = setInterval(() => this.#tick(), this.#options.tickMs ?? 250);
  }

  /** Co-partitioning needs equal partition counts; outputs go to the input partition number. */
  async #checkTopics(): Promise<void> {
    const t = this.#options.topics;
    const names = [t.bids.name, t.auctions.name, t.prices.name, ...Object.values(this.#outTopic)];
    const have = await this.#options.admin.describeTopics(names);
    const missing = names.filter((n) => !have.has(n));
    if (missing.length > 0)
      throw new Error(
        `topics ${missing.join(", ")} do not exist, or this client may not see them (on a cluster with ACLs Kafka lists only the topics a principal may DESCRIBE): run 'gavel topics apply -f <pipeline>' (or let the operator create them), and grant the ACLs 'gavel kafka acls -f <pipeline>' lists`,
      );
    const bids = have.get(t.bids.name)?.partitions ?? 0;
    for (const n of [t.auctions.name, t.prices.name]) {
      if (have.get(n)?.partitions !== bids)
        throw new Error(
          `${n} has ${have.get(n)?.partitions} partitions but ${t.bids.name} has ${bids}: auction-scoped topics must have equal partition counts (co-partitioning)`,
        );
    }
    for (const n of Object.values(this.#outTopic)) {
      if ((have.get(n)?.partitions ?? 0) < bids)
        throw new Error(
          `${n} has fewer partitions than ${t.bids.name} (${bids}): outputs keep the input partition number`,
        );
    }
  }

  protected override async assigned(assigned: readonly TopicPartition[]): Promise<void> {
    const owned = new Set(assigned.map((tp) => tp.partition));
    for (const [p, st] of this.#parts) {
      if (owned.has(p)) continue;
      st.epoch++;
      this.#parts.delete(p);
      await st.lock.catch(() => undefined);
      await st.producer?.close().catch(() => undefined);
    }
    const fresh: Part[] = [];
    for (const p of owned) {
      let st = this.#parts.get(p);
      if (!st) {
        st = newPart(p, this.#newCore(), this.#now());
        this.#parts.set(p, st);
      }
      fresh.push(st);
    }
    this.#metrics.owned.set({}, this.#parts.size);
    this.#options.logger.info({ partitions: [...owned].sort((a, b) => a - b) }, "partitions assigned");
    // Every owned partition is rebuilt from committed state after a rebalance:
    // the previous generation may have left uncommitted effects in memory.
    const done = this.#boundedRestore(fresh);
    for (const st of fresh) st.ready = done;
    // A failed rebuild (broker unavailable) is retried by the partition's next batch.
    await done.catch((err) =>
      this.#options.logger.warn({ err }, "rebuilding partition state failed; retrying with the next batch"),
    );
  }

  /** Waits for the partition's rebuild; when the last attempt failed, tries again. */
  async #ensureReady(st: Part): Promise<void> {
    try {
      await st.ready;
      if (!st.valid) throw new Error("partition state is not valid");
    } catch {
      // The failed rebuild may have been one without a rebalance (#markStale): rewind here too.
      const again = this.#boundedRestore([st]).then(() => this.#rewind(st));
      st.ready = again;
      await again;
    }
  }

  /** A rebuild with a deadline: a hung one (broker just restarted) is given up and retried by the next batch. */
  #boundedRestore(parts: readonly Part[]): Promise<void> {
    return withTimeout(
      this.#restore(parts),
      RESTORE_TIMEOUT_MS,
      `rebuilding partitions ${parts.map((p) => p.p).join(",")}`,
    );
  }

  async #restore(parts: readonly Part[]): Promise<void> {
    if (parts.length === 0) return;
    const started = this.#now();
    const ps = new Set(parts.map((s) => s.p));
    for (const st of parts) {
      st.restoring = true;
      st.valid = false;
      st.epoch++;
    }
    // A rebuild that hangs (a broker that just restarted) is superseded by the
    // next one; its late results must then not overwrite the newer state.
    const epochs = new Map(parts.map((st) => [st.p, st.epoch]));
    const cores = new Map(parts.map((st) => [st.p, this.#newCore()]));
    for (const core of cores.values()) this.#rebuilding.add(core);
    try {
      // 1. Fence: a producer with this partition's transactional id aborts the
      //    previous owner's open transaction, so the read below sees final state.
      await Promise.all(
        parts.map(async (st) => {
          if (!st.producer)
            st.producer = await this.#options.transport.transactionalProducer(`${this.groupId}-${st.p}`);
        }),
      );
      // 2. Rebuild the book from the compacted prices topic (into fresh cores),
      //    then replay this partition's earlier decisions in decision order
      //    (SEQ_HEADER): the bid ids each auction remembers for duplicates
      //    and the fraud scorer's history (velocity, shill pairs and wins,
      //    category statistics) end exactly as they were, so later bids are
      //    decided and scored as without the rebuild. The decisions are in
      //    the accepted, dead-letter and transactions topics, committed in
      //    the same transactions as the snapshots.
      const decisionsOf = await readDecisions(this.#rebuildFrom, ps);
      const snapshotsOf = await readSnapshots(this.#rebuildFrom, ps, (r) =>
        this.#metrics.bad.inc({ topic: r.topic }),
      );
      let restored = 0;
      const seqs = new Map<number, number>();
      for (const [p, core] of cores) {
        const mine = decisionsOf.get(p) ?? [];
        for (const d of mine) seqs.set(p, Math.max(seqs.get(p) ?? 0, d.seq + 1));
        const r = core.rebuild(snapshotsOf.get(p) ?? [], mine);
        restored += r.restored;
        if (r.unusable > 0) this.#metrics.bad.inc({ topic: this.#options.topics.prices.name }, r.unusable);
      }
      // 3. Where to continue: committed offsets, plus bids held at the last commit.
      const bids = await this.#options.admin.groupOffsets(this.groupId, this.#options.topics.bids.name);
      const auctions = await this.#options.admin.groupOffsets(
        this.groupId,
        this.#options.topics.auctions.name,
      );
      for (const st of parts) {
        if (st.epoch !== epochs.get(st.p)) throw new Error(`rebuild of partition ${st.p} was superseded`);
      }
      for (const st of parts) {
        st.core = cores.get(st.p) ?? this.#newCore();
        st.clock = 0;
        st.seq = seqs.get(st.p) ?? 0;
        st.lastOffsets = undefined;
        const b = bids.find((c) => c.partition === st.p);
        const a = auctions.find((c) => c.partition === st.p);
        const meta = parseHeldMeta(b?.metadata ?? null);
        st.bidsNext = meta ? meta.u : b && b.offset >= 0 ? b.offset : undefined;
        st.replayHeld = new Set(meta?.h ?? []);
        st.replayArrival = new Map(meta?.a ?? []);
        // The clock where reading resumes: a late-stamped next record arrives as it would have.
        if (meta?.c !== undefined) st.replayArrival.set(meta.u, meta.c);
        st.resumeClock = meta?.c;
        const queued = parseHeldMeta(a?.metadata ?? null);
        st.auctionsNext = queued ? queued.u : a && a.offset >= 0 ? a.offset : undefined;
        st.replayQueued = new Set(queued?.h ?? []);
        st.committed = { bids: b?.offset ?? -1, auctions: a?.offset ?? -1 };
      }
      for (const st of parts) st.valid = true;
      this.#metrics.restore.observe({}, (this.#now() - started) / 1000);
      this.#options.logger.info(
        { partitions: [...ps], auctions: restored, ms: this.#now() - started },
        "partition state rebuilt",
      );
    } finally {
      for (const core of cores.values()) this.#rebuilding.delete(core);
      for (const st of parts) {
        if (st.epoch !== epochs.get(st.p)) continue; // a newer rebuild owns these flags
        st.restoring = false;
        st.lastActivity = this.#now();
      }
    }
  }

  #withLock(st: Part, fn: () => Promise<void>): Promise<void> {
    const run = st.lock.then(fn, fn);
    st.lock = run.catch(() => undefined);
    return run;
  }

  /** The batch itself: the core decides it inside the partition's lock, in `sink`, with the state it changes. */
  protected transform(batch: RecordBatch): RecordBatch {
    return batch;
  }

  /**
   * Decides the batch (the core, under the partition's lock) and commits the
   * decisions with the input offsets in one Kafka transaction. Marks the
   * consumer's position itself: held and waiting bids are fetched again.
   */
  protected async sink(
    batch: RecordBatch,
    _b: RecordBatch,
    ctx: BatchContext,
    trace: BatchTrace,
  ): Promise<Sunk> {
    const st = this.#parts.get(batch.partition);
    if (!st) throw new Error(`batch for unassigned partition ${batch.partition}`);
    await this.#ensureReady(st);
    const isBids = batch.topic === this.#options.topics.bids.name;
    // The state this batch was made ready for: a transaction that fails while
    // the batch waits for the lock (an idle tick's) marks the partition stale
    // and rebuilds it in the background while closing its producer.
    const epoch = st.epoch;
    await this.#withLock(st, async () => {
      // A rebuild sought the partition back to its committed offsets while
      // this batch waited (the batch of a failed transaction, fetched again):
      // its records come after bids held at the last commit, which the seek
      // delivers first. Deciding it now put later bids of an auction ahead
      // of its held ones (seen in CI: earlier bids then below_minimum).
      if (ctx.isStale()) return;
      // Rebuilt or being rebuilt since: the batch is left unmarked and fetched
      // again, and waits for that rebuild. Deciding it now sent it through the
      // closing producer ("producer is disconnecting", non-retriable: kafkajs
      // then stopped the consumer for good; processors-faults, broker restart).
      if (st.epoch !== epoch || !st.valid || !st.producer) return;
      const { outputs, progressed, waitingAt } = this.#decide(st, batch, isBids);
      const offsets = offsetsFitting(st, outputs, this.#offsetsOf);
      if (outputs.length > 0 || JSON.stringify(offsets) !== st.lastOffsets)
        await this.#commit(st, epoch, outputs, offsets, trace);
      if (progressed) st.lastActivity = this.#now();
      await this.#markPosition(st, batch, isBids, waitingAt, ctx);
    });
    return POSITION_MARKED;
  }

  /** The core's decisions on a batch of one partition, in record order, with time passing as the records say. */
  #decide(
    st: Part,
    batch: RecordBatch,
    isBids: boolean,
  ): { outputs: Outputs; progressed: boolean; waitingAt: number | undefined } {
    const outputs = new Outputs();
    // A held bid makes the consumer fetch the same records again; such a
    // batch (everything skipped) is not activity, or the idle tick that
    // expires the held bid and closes due auctions would never run.
    let progressed = false;
    // A backlog bid (logged more than BACKLOG_MS ago: a restart, a late
    // start, a slow consumer) is decided only once the auctions topic has
    // been read up to its time, so bids and auction records are decided in
    // log-time order as a replay would (held bids released at the same
    // point, the fraud scorer observing the same sequence). Live, the two
    // topics arrive together and nothing waits.
    const now = this.#now();
    if (isBids) st.waitingForAuctions = false;
    /** Offset of the first bid left undecided to wait for the auctions topic: fetched again. */
    let waitingAt: number | undefined;
    // Counted per batch, not per record (a counter increment hashes its labels).
    let read = 0;
    let skipped = 0;
    const records = batch.records;
    for (let i = 0; i < records.length; i++) {
      const r = records[i]!;
      const decided =
        isBids && st.bidsNext !== undefined && r.offset < st.bidsNext && !st.replayHeld.has(r.offset);
      if (isBids && !decided && r.timestamp > st.core.auctionsClockMs && now - r.timestamp > BACKLOG_MS) {
        st.waitingForAuctions = true;
        waitingAt = r.offset;
        break;
      }
      // Time passes with the records: close due auctions and expire held
      // bids before deciding the next record. Each topic has its own clock:
      // the two are fetched independently, and an auctions topic read ahead
      // must not close auctions before the bids logged in time are read.
      if (isBids) {
        // A held bid read again after a restart arrives when it first did.
        const at = decided ? r.timestamp : Math.max(r.timestamp, st.replayArrival.get(r.offset) ?? 0);
        if (at > st.clock) {
          st.clock = at;
          outputs.push(st.core.tick(st.clock));
        }
      } else if (r.timestamp > st.core.auctionsClockMs) {
        st.core.auctionsClockMs = r.timestamp;
        outputs.push(st.core.tick(st.clock));
      }
      if (isBids) {
        if (decided) {
          skipped += 1;
          continue;
        }
        st.replayHeld.delete(r.offset);
        st.replayArrival.delete(r.offset);
        progressed = true;
        const ref: Ref = { p: st.p, offset: r.offset, ts: r.timestamp };
        const res = st.core.onBid(r.value ?? Buffer.alloc(0), st.clock, ref);
        // The bid's outputs continue its trace.
        outputs.push(res.outputs, i);
        st.bidsNext = Math.max(st.bidsNext ?? 0, r.offset + 1);
      } else {
        if (st.auctionsNext !== undefined && r.offset < st.auctionsNext && !st.replayQueued.has(r.offset)) {
          skipped += 1;
          continue;
        }
        st.replayQueued.delete(r.offset);
        progressed = true;
        if (r.value !== null) {
          const ref: Ref = { p: st.p, offset: r.offset, ts: r.timestamp };
          const res = st.core.onAuction(r.value, r.timestamp, ref);
          if (!res.ok) {
            this.#metrics.bad.inc({ topic: r.topic });
            this.#options.logger.warn(
              { offset: r.offset, partition: r.partition, detail: res.detail },
              "unusable auction record",
            );
          }
          outputs.push(res.outputs);
        }
        st.auctionsNext = Math.max(st.auctionsNext ?? 0, r.offset + 1);
      }
      read += 1;
    }
    if (read > 0) this.#metrics.in.inc({ topic: batch.topic }, read);
    if (skipped > 0) this.#metrics.skipped.inc({ topic: batch.topic }, skipped);
    // Bids held for an auction record just read, if the bids' clock already passed it.
    if (!isBids) outputs.push(st.core.tick(st.clock));
    return { outputs, progressed, waitingAt };
  }

  /**
   * The consumer moves on past everything decided or held. Held bids are
   * in the committed offset's metadata (replayed after a restart or a
   * rebalance, see replayHeld), so the in-memory position need not stay
   * on them: fetching again from a held bid pins the partition to one
   * fetch window (maxBytes) once more than that arrived behind it, and
   * then its clock, hold expiry and auction closing stop for good.
   * A bid left waiting for the auctions topic is neither decided nor held:
   * the consumer must fetch it again (a replayed held bid behind skipped
   * records was otherwise never read again after a restart).
   * Nor past a held bid (or waiting auction update) named by the committed
   * metadata and not yet read again: after a rebuild the consumer starts
   * at the oldest of them, and jumping to bidsNext after the first fetch
   * would leave the others unread, undecided, and the partition's clock
   * stopped for good (seen on the local cluster: 236 of 61,000 bids).
   */
  async #markPosition(
    st: Part,
    batch: RecordBatch,
    isBids: boolean,
    waitingAt: number | undefined,
    ctx: BatchContext,
  ): Promise<void> {
    const replay = isBids ? st.replayHeld : st.replayQueued;
    let next = isBids ? st.bidsNext : st.auctionsNext;
    if (isBids && waitingAt !== undefined) next = Math.min(waitingAt, next ?? waitingAt);
    for (const o of replay) if (next === undefined || o < next) next = o;
    if (next !== undefined && next > (batch.records[0]?.offset ?? 0)) ctx.markProcessed(next - 1);
    else if (isBids) await new Promise((r) => setTimeout(r, 50));
  }

  /** One Kafka transaction: outputs (to the input's partition number) and the input offsets. */
  async #commit(
    st: Part,
    epoch: number,
    outputs: Outputs,
    offsets: readonly TopicPartitionOffset[],
    trace?: BatchTrace,
  ): Promise<void> {
    if (st.epoch !== epoch || !st.producer)
      throw new Error(`partition ${st.p} was reassigned or rebuilt; batch abandoned`);
    const { batches, seq } = encodeOutputs(outputs, {
      partition: st.p,
      seq: st.seq,
      topics: this.#outTopic,
      ...(trace ? { trace } : {}),
    });
    // kafkajs can leave a request waiting forever on a connection that died
    // with its broker; a bounded transaction turns that into an abort and a
    // rebuild instead of a partition that never moves again.
    const producer = st.producer;
    const tx = await withTimeout(producer.begin(), TX_TIMEOUT_MS, "begin transaction");
    try {
      await withTimeout(
        (async () => {
          await tx.send(batches);
          await tx.sendOffsets(this.groupId, offsets);
          await tx.commit();
        })(),
        TX_TIMEOUT_MS,
        "transaction",
      );
      st.lastOffsets = JSON.stringify(offsets);
      st.seq = seq;
      this.#metrics.tx.inc({ result: "commit" });
      for (const b of batches) this.#metrics.out.inc({ topic: b.topic }, b.messages.length);
      countOutputs(this.#metrics.business, outputs.records);
    } catch (err) {
      this.#metrics.tx.inc({ result: "abort" });
      await withTimeout(tx.abort(), 5_000, "abort").catch(() => undefined);
      // In-memory state now holds effects that were not committed: rebuild
      // from the committed state before this partition's next batch.
      this.#markStale(st);
      throw err;
    }
  }

  #markStale(st: Part): void {
    st.epoch++;
    // At once, not when the rebuild starts: a batch already waiting for the
    // lock must not decide on this state (see `sink`).
    st.valid = false;
    if (!this.#parts.has(st.p) || this.stopping) return;
    this.#options.logger.warn({ partition: st.p }, "transaction failed; rebuilding partition state");
    const done = (async () => {
      await st.producer?.close().catch(() => undefined);
      st.producer = undefined;
      await this.#boundedRestore([st]);
      // No rebalance rewinds the consumer here: its in-memory position is past
      // the bids held at the last commit (replayHeld), which only a fetch from
      // the committed offset delivers again (issue #12: one bid never decided).
      this.#rewind(st);
    })();
    st.ready = done;
    done.catch((err) =>
      this.#options.logger.error({ err, partition: st.p }, "rebuilding partition state failed"),
    );
  }

  /** Makes the consumer fetch the partition again from the offsets committed at the last rebuild. */
  #rewind(st: Part): void {
    const c = st.committed;
    if (!c) return;
    const t = this.#options.topics;
    if (c.bids >= 0) this.seek(t.bids.name, st.p, c.bids);
    else if (st.replayHeld.size > 0) this.seek(t.bids.name, st.p, Math.min(...st.replayHeld));
    if (c.auctions >= 0) this.seek(t.auctions.name, st.p, c.auctions);
    else if (st.replayQueued.size > 0) this.seek(t.auctions.name, st.p, Math.min(...st.replayQueued));
  }

  /**
   * Time passes without records. A partition whose auctions are due to close
   * (or whose held bids are due to expire) while no record moves its clock is
   * checked against the log: only when everything up to the log end of its
   * bids (or auctions) topic has been read does that clock move to the wall
   * clock minus IDLE_CLOCK_LAG_MS. A record already in the log is therefore
   * always read before a close it could change, however far behind the
   * consumer is (a backlog, a late start, a rebuild, 8 of 48 partitions
   * served at a time); a record stamped more than IDLE_CLOCK_LAG_MS before
   * it reached the log may find its auction closed (docs/events.md "Time").
   */
  #tick(): void {
    if (this.stopping || this.#checking) return;
    const now = this.#now();
    const lagged = now - IDLE_CLOCK_LAG_MS;
    const due: Part[] = [];
    for (const st of this.#parts.values()) {
      if (st.restoring || !st.valid) continue;
      const book = st.core.book;
      // The first time the clock must reach: a close, a bid deferred until
      // its auction record's time (without it that bid would wait for the
      // auction's close on a partition without new bids), or an auction
      // update read ahead of the bids.
      const times = [book.nextCloseAtMs(), book.nextReleaseAtMs(), st.core.nextQueuedAtMs()].filter(
        (t): t is number => t !== undefined,
      );
      const dueAt = times.length === 0 ? undefined : Math.min(...times);
      const wantsClock =
        dueAt !== undefined && dueAt <= lagged && st.clock < dueAt && now - st.lastActivity >= 300;
      const heldAt = book.oldestHeldAtMs();
      const expiresAt =
        heldAt === undefined ? undefined : heldAt + (this.#options.book?.pendingMaxAgeMs ?? HOLD_MS);
      const wantsAuctions =
        st.waitingForAuctions ||
        (expiresAt !== undefined &&
          expiresAt <= lagged &&
          (st.core.auctionsClockMs < expiresAt || st.clock < expiresAt));
      if (wantsClock || wantsAuctions) due.push(st);
    }
    if (due.length === 0) return;
    this.#checking = true;
    this.#advanceToLogEnd(due, now)
      .catch((err) =>
        this.#options.logger.warn({ err }, "checking the log end of idle partitions failed; retrying"),
      )
      .finally(() => {
        this.#checking = false;
      });
  }

  async #advanceToLogEnd(due: readonly Part[], askedAt: number): Promise<void> {
    const t = this.#options.topics;
    const [bids, auctions] = await withTimeout(
      Promise.all([
        this.#options.admin.topicOffsets(t.bids.name),
        this.#options.admin.topicOffsets(t.auctions.name),
      ]),
      10_000,
      "reading the log end offsets",
    );
    const to = askedAt - IDLE_CLOCK_LAG_MS;
    await Promise.all(
      due.map((st) => {
        const epoch = st.epoch;
        return this.#withLock(st, async () => {
          if (this.stopping || st.epoch !== epoch || st.restoring || !st.valid) return; // rebuilt meanwhile
          if (this.#options.logger.isLevelEnabled("debug"))
            this.#options.logger.debug(
              {
                partition: st.p,
                bidsNext: st.bidsNext,
                bidsEnd: bids.find((e) => e.partition === st.p)?.high,
                auctionsNext: st.auctionsNext,
                auctionsEnd: auctions.find((e) => e.partition === st.p)?.high,
                replayHeld: st.replayHeld.size,
                clock: st.clock,
                auctionsClock: st.core.auctionsClockMs,
                oldestHeldAt: st.core.book.oldestHeldAtMs(),
                to,
              },
              "checking the log end",
            );
          if (st.replayHeld.size === 0 && readToLogEnd(st.bidsNext, bids, st.p))
            st.clock = Math.max(st.clock, to);
          if (st.replayQueued.size === 0 && readToLogEnd(st.auctionsNext, auctions, st.p))
            st.core.auctionsClockMs = Math.max(st.core.auctionsClockMs, to);
          const outputs = new Outputs();
          outputs.push(st.core.tick(st.clock));
          if (outputs.length === 0) return;
          await this.#commit(st, epoch, outputs, offsetsFitting(st, outputs, this.#offsetsOf));
        }).catch((err) => this.#options.logger.error({ err, partition: st.p }, "closing transaction failed"));
      }),
    );
  }

  /** Stops consuming; the in-flight batch finishes (its transaction commits or aborts), nothing else is committed. */
  override async close(): Promise<void> {
    const stopped = super.close();
    if (this.#timer) clearInterval(this.#timer);
    await stopped;
    for (const st of this.#parts.values()) {
      await st.lock.catch(() => undefined);
      await st.producer?.close().catch(() => undefined);
    }
    await this.#usersConsumer?.stop();
  }
}

/** Longest a Kafka transaction may take before it is given up (aborted, partition rebuilt). */
const TX_TIMEOUT_MS = 30_000;
/** What the sink returns: it marked the consumer's position itself. */
const POSITION_MARKED: Sunk = { processed: false };
/** How far an idle partition's clock trails the wall clock. */
const IDLE_CLOCK_LAG_MS = 2_000;
/** A bid logged longer ago than this is a backlog: it waits for the auctions topic to catch up to it. */
const BACKLOG_MS = 5_000;
/** The book's default hold time (AuctionBookOptions.pendingMaxAgeMs as set in #newCore). */
const HOLD_MS = 10_000;

/**
 * The options of every partition's `BidProcessorCore` for a pipeline: what
 * a replay of the log (a reference, an audit) must use to decide the same way.
 */
export function bidCoreOptions(
  pipeline: AuctionPipeline,
  book?: AuctionBookOptions,
  models?: FraudModels,
): BidCoreOptions {
  const f = pipeline.spec.fraud;
  return {
    fraud: {
      quarantineThreshold: f.quarantineThreshold,
      alertThreshold: f.alertThreshold,
      weights: f.weights,
    },
    book: { pendingMaxAgeMs: HOLD_MS, ...book },
    ...(models ? { scorer: { models } } : {}),
  };
}

/** Has a partition been read up to its log end? `next` is the next offset not yet read (undefined: none read). */
function readToLogEnd(next: number | undefined, ends: readonly PartitionOffsets[], p: number): boolean {
  const end = ends.find((e) => e.partition === p);
  if (!end) return false;
  return (next ?? end.low) >= end.high;
}
/** Longest a partition rebuild may take before it is retried. */
const RESTORE_TIMEOUT_MS = 150_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
