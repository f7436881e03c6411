import type { Logger } from "../../lib/log.ts";
import type { AuctionPipeline, topicNames } from "../../operator/api/v1alpha1/pipeline.ts";
import type { AuctionBookOptions } from "../domain/auction.ts";
import {
  BidProcessorCore,
  latestPricePerAuction,
  type OutputRecord,
  type OutputTopic,
} from "../domain/bid-core.ts";
import { readToEnd, tailTopic } from "../kafka/read.ts";
import type {
  Admin,
  BatchContext,
  GroupConsumer,
  RecordBatch,
  TopicMessages,
  TopicPartitionOffset,
  TransactionalProducer,
  Transport,
} from "../kafka/transport.ts";
import {
  countOutputs,
  deriveFrom,
  instrumentBatches,
  outputHeaders,
  pipelineMetrics,
} from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { encodeHeldMeta, fits, parseHeldMeta } from "./held-meta.ts";

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
}

/** Where a held bid sits in its input partition (the `ref` given to the core). */
interface Ref {
  readonly p: number;
  readonly offset: number;
}

/** The parts of a price update the rebuild touches. */
interface PriceRecord {
  version?: number;
  state?: { seen_bid_ids?: string[] };
}

interface Part {
  readonly p: number;
  /** This partition's state machine (auctions of one partition have one owner and one book). */
  core: BidProcessorCore;
  /**
   * The partition's clock: the largest record timestamp processed, or the wall
   * clock while the partition is idle and caught up. Closing and hold expiry
   * follow it, so a replay after a crash decides the same way as the first run.
   */
  clock: number;
  /** Wall-clock time of the last batch or rebuild. */
  lastActivity: number;
  /** Per input topic: did the last batch reach the high watermark. */
  caughtUp: Map<string, boolean>;
  producer?: TransactionalProducer;
  /** Resolves when the partition's state is rebuilt; batches wait for it. */
  ready: Promise<void>;
  restoring: boolean;
  /** False from the start of a rebuild until it succeeded: a half-built book must decide nothing. */
  valid: boolean;
  /** Bumped whenever in-memory state is discarded; queued work of an older epoch is dropped. */
  epoch: number;
  lock: Promise<void>;
  /** Next bid offset not yet processed (records below it were decided or are held). */
  bidsNext?: number;
  auctionsNext?: number;
  /** Held offsets below bidsNext read from the committed metadata: they must be decided again. */
  replayHeld: Set<number>;
  /** Offsets of the last commit, to skip empty transactions. */
  lastOffsets?: string;
}

/**
 * The bid-processor's runtime: moves records between Kafka and the pure
 * `BidProcessorCore`. Partition p of the bids and auctions topics is owned
 * by one replica (co-partitioned assignment); each owned partition has its
 * own transactional producer (transactional id `<group>-<p>`, so a new owner
 * fences the old one) and every batch's outputs are committed in one Kafka
 * transaction together with the input offsets. State is rebuilt on
 * assignment from the compacted prices topic (each price update carries the
 * auction's snapshot), read up to its end in read_committed.
 */
export class BidProcessor {
  readonly #o: BidProcessorOptions;
  readonly #groupId: string;
  readonly #parts = new Map<number, Part>();
  /** Latest record per user (every partition's fraud scorer needs every user). */
  readonly #users = new Map<string, Buffer>();
  readonly #outTopic: Record<OutputTopic, string>;
  readonly #now: () => number;
  #consumer?: GroupConsumer;
  #usersConsumer?: GroupConsumer;
  #timer?: NodeJS.Timeout;
  #running = false;
  #stopping = false;
  readonly #m;

  constructor(o: BidProcessorOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#groupId = o.groupId ?? `${o.pipeline.metadata.name}.bid-processor`;
    const t = o.topics;
    this.#outTopic = {
      bidsAccepted: t["bids.accepted"].name,
      bidsRejected: t["bids.rejected"].name,
      prices: t.prices.name,
      fraudAlerts: t["fraud-alerts"].name,
      transactions: t.transactions.name,
    };
    const m = o.metrics;
    this.#m = {
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
    this.#m.open.track({}, () => {
      let n = 0;
      for (const st of this.#parts.values())
        n += (st.core as BidProcessorCore | undefined)?.book.openCount ?? 0;
      return n;
    });
  }

  get groupId(): string {
    return this.#groupId;
  }

  #newCore(): BidProcessorCore {
    const f = this.#o.pipeline.spec.fraud;
    const core = new BidProcessorCore({
      fraud: {
        quarantineThreshold: f.quarantineThreshold,
        alertThreshold: f.alertThreshold,
        weights: f.weights,
      },
      book: { pendingMaxAgeMs: 10_000, ...this.#o.book },
    });
    for (const u of this.#users.values()) core.onUser(u);
    return core;
  }

  /** Set when a consumer stopped for good: the process should exit and be restarted. */
  failure(): Error | undefined {
    return this.#consumer?.failure() ?? this.#usersConsumer?.failure();
  }

  /** Ready: consuming, and no partition is being rebuilt. */
  ready(): { ok: boolean; reason?: string } {
    if (!this.#running) return { ok: false, reason: "not consuming" };
    const restoring = [...this.#parts.values()].filter((p) => p.restoring).map((p) => p.p);
    if (restoring.length > 0) return { ok: false, reason: `rebuilding partitions ${restoring.join(",")}` };
    return { ok: true };
  }

  async start(): Promise<void> {
    const t = this.#o.topics;
    await this.#checkTopics();
    const users = tailTopic({
      transport: this.#o.transport,
      topic: t.users.name,
      groupPrefix: this.#groupId,
      onRecord: (r) => {
        if (r.value === null || r.key === null) return;
        this.#users.set(r.key, r.value);
        for (const st of this.#parts.values()) {
          const res = st.core.onUser(r.value);
          if (!res.ok) this.#m.bad.inc({ topic: r.topic });
        }
      },
    });
    this.#usersConsumer = users.consumer;
    await users.started;
    this.#consumer = this.#o.transport.consumer({
      groupId: this.#groupId,
      coPartitioned: true,
      fromBeginning: true,
      // Each partition has its own book, lock and transactional producer, so
      // their batches and transactions can overlap instead of queueing.
      partitionsConcurrently: this.#o.partitionsConcurrently ?? 8,
      // A batch's outputs are ~5x its input (an accepted bid and a price
      // update with the auction's snapshot per bid, JSON, then encoded):
      // 256 KiB per partition bounds the memory of 8 concurrent batches.
      maxBytesPerPartition: 256 * 1024,
    });
    await this.#consumer.run(
      [t.auctions.name, t.bids.name],
      instrumentBatches(
        {
          onAssignment: (assigned) => this.#onAssignment(new Set(assigned.map((tp) => tp.partition))),
          eachBatch: (batch, ctx) => this.#eachBatch(batch, ctx),
        },
        { metrics: this.#o.metrics, processor: "bid-processor", groupId: this.#groupId },
      ),
    );
    this.#running = true;
    this.#timer = setInterval(() => this.#tick(), this.#o.tickMs ?? 250);
  }

  /** Co-partitioning needs equal partition counts; outputs go to the input partition number. */
  async #checkTopics(): Promise<void> {
    const t = this.#o.topics;
    const names = [t.bids.name, t.auctions.name, t.prices.name, ...Object.values(this.#outTopic)];
    const have = await this.#o.admin.describeTopics(names);
    const missing = names.filter((n) => !have.has(n));
    if (missing.length > 0)
      throw new Error(
        `topics ${missing.join(", ")} do not exist: run 'gavel topics apply -f <pipeline>' (or let the operator create them)`,
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

  async #onAssignment(owned: Set<number>): Promise<void> {
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
        st = {
          p,
          core: this.#newCore(),
          clock: 0,
          lastActivity: this.#now(),
          caughtUp: new Map(),
          ready: Promise.resolve(),
          restoring: false,
          valid: false,
          epoch: 0,
          lock: Promise.resolve(),
          replayHeld: new Set(),
        };
        this.#parts.set(p, st);
      }
      fresh.push(st);
    }
    this.#m.owned.set({}, this.#parts.size);
    this.#o.logger.info({ partitions: [...owned].sort((a, b) => a - b) }, "partitions assigned");
    // Every owned partition is rebuilt from committed state after a rebalance:
    // the previous generation may have left uncommitted effects in memory.
    const done = this.#boundedRestore(fresh);
    for (const st of fresh) st.ready = done;
    // A failed rebuild (broker unavailable) is retried by the partition's next batch.
    await done.catch((err) =>
      this.#o.logger.warn({ err }, "rebuilding partition state failed; retrying with the next batch"),
    );
  }

  /** Waits for the partition's rebuild; when the last attempt failed, tries again. */
  async #ensureReady(st: Part): Promise<void> {
    try {
      await st.ready;
      if (!st.valid) throw new Error("partition state is not valid");
    } catch {
      const again = this.#boundedRestore([st]);
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
    try {
      // 1. Fence: a producer with this partition's transactional id aborts the
      //    previous owner's open transaction, so the read below sees final state.
      await Promise.all(
        parts.map(async (st) => {
          if (!st.producer)
            st.producer = await this.#o.transport.transactionalProducer(`${this.#groupId}-${st.p}`);
        }),
      );
      // 2. Rebuild the book from the compacted prices topic (into fresh cores).
      // The price snapshots carry only the latest bid ids of an auction, and
      // only as of its last price change; duplicate detection needs every id
      // the book had remembered. The decided bids of these partitions are in
      // the accepted and dead-letter topics, committed in the same
      // transactions as the snapshots.
      const seen = new Map<string, Set<string>>();
      for (const topic of [this.#outTopic.bidsAccepted, this.#outTopic.bidsRejected]) {
        await readToEnd({
          transport: this.#o.transport,
          admin: this.#o.admin,
          topic,
          partitions: ps,
          groupPrefix: this.#groupId,
          onRecord: (r) => {
            if (r.value === null) return;
            try {
              const v = JSON.parse(r.value.toString("utf8")) as {
                bid_id?: unknown;
                auction_id?: unknown;
                reason?: unknown;
              };
              // Malformed and auction_not_found bids never reached an auction's book.
              if (v.reason === "malformed" || v.reason === "auction_not_found") return;
              if (typeof v.bid_id !== "string" || typeof v.auction_id !== "string") return;
              const set = seen.get(v.auction_id) ?? new Set<string>();
              set.add(v.bid_id);
              seen.set(v.auction_id, set);
            } catch {
              // not ours to judge here; the silver-writer counts unusable records
            }
          },
        });
      }
      const latest = new Map<string, { p: number; version: number; v: PriceRecord }>();
      await readToEnd({
        transport: this.#o.transport,
        admin: this.#o.admin,
        topic: this.#o.topics.prices.name,
        partitions: ps,
        groupPrefix: this.#groupId,
        onRecord: (r) => {
          if (r.value === null || r.key === null) return;
          try {
            const v = JSON.parse(r.value.toString("utf8")) as PriceRecord;
            const version = typeof v.version === "number" ? v.version : 0;
            const cur = latest.get(r.key);
            if (!cur || version > cur.version) latest.set(r.key, { p: r.partition, version, v });
          } catch {
            this.#m.bad.inc({ topic: r.topic });
          }
        },
      });
      let restored = 0;
      for (const [auctionId, { p, v }] of latest) {
        const core = cores.get(p);
        if (!core) continue;
        const ids = seen.get(auctionId);
        if (ids && v.state && Array.isArray(v.state.seen_bid_ids)) {
          for (const id of v.state.seen_bid_ids) ids.add(id);
          v.state.seen_bid_ids = [...ids];
        }
        if (core.onPriceSnapshot(JSON.stringify(v)).ok) restored++;
        else this.#m.bad.inc({ topic: this.#o.topics.prices.name });
      }
      // 3. Where to continue: committed offsets, plus bids held at the last commit.
      const bids = await this.#o.admin.groupOffsets(this.#groupId, this.#o.topics.bids.name);
      const auctions = await this.#o.admin.groupOffsets(this.#groupId, this.#o.topics.auctions.name);
      for (const st of parts) {
        if (st.epoch !== epochs.get(st.p)) throw new Error(`rebuild of partition ${st.p} was superseded`);
      }
      for (const st of parts) {
        st.core = cores.get(st.p) ?? this.#newCore();
        st.clock = 0;
        st.caughtUp = new Map();
        st.lastOffsets = undefined;
        const b = bids.find((c) => c.partition === st.p);
        const a = auctions.find((c) => c.partition === st.p);
        const meta = parseHeldMeta(b?.metadata ?? null);
        st.bidsNext = meta ? meta.u : b && b.offset >= 0 ? b.offset : undefined;
        st.replayHeld = new Set(meta?.h ?? []);
        st.auctionsNext = a && a.offset >= 0 ? a.offset : undefined;
      }
      for (const st of parts) st.valid = true;
      this.#m.restore.observe({}, (this.#now() - started) / 1000);
      this.#o.logger.info(
        { partitions: [...ps], auctions: restored, ms: this.#now() - started },
        "partition state rebuilt",
      );
    } finally {
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

  async #eachBatch(batch: RecordBatch, ctx: BatchContext): Promise<void> {
    const st = this.#parts.get(batch.partition);
    if (!st) throw new Error(`batch for unassigned partition ${batch.partition}`);
    await this.#ensureReady(st);
    const isBids = batch.topic === this.#o.topics.bids.name;
    await this.#withLock(st, async () => {
      const epoch = st.epoch;
      const outputs: OutputRecord[] = [];
      // A held bid makes the consumer fetch the same records again; such a
      // batch (everything skipped) is not activity, or the idle tick that
      // expires the held bid and closes due auctions would never run.
      let progressed = false;
      for (const r of batch.records) {
        // Time passes with the records: close due auctions and expire held
        // bids before deciding the next record.
        if (r.timestamp > st.clock) {
          st.clock = r.timestamp;
          outputs.push(...st.core.tick(st.clock));
        }
        if (isBids) {
          if (st.bidsNext !== undefined && r.offset < st.bidsNext && !st.replayHeld.has(r.offset)) {
            this.#m.skipped.inc({ topic: r.topic });
            continue;
          }
          st.replayHeld.delete(r.offset);
          progressed = true;
          const ref: Ref = { p: st.p, offset: r.offset };
          const res = st.core.onBid(r.value ?? Buffer.alloc(0), st.clock, ref);
          outputs.push(...deriveFrom(res.outputs, r));
          st.bidsNext = Math.max(st.bidsNext ?? 0, r.offset + 1);
        } else {
          if (st.auctionsNext !== undefined && r.offset < st.auctionsNext) {
            this.#m.skipped.inc({ topic: r.topic });
            continue;
          }
          progressed = true;
          if (r.value !== null) {
            const res = st.core.onAuction(r.value, st.clock);
            if (!res.ok) {
              this.#m.bad.inc({ topic: r.topic });
              this.#o.logger.warn(
                { offset: r.offset, partition: r.partition, detail: res.detail },
                "unusable auction record",
              );
            }
            outputs.push(...res.outputs);
          }
          st.auctionsNext = r.offset + 1;
        }
        this.#m.in.inc({ topic: r.topic });
      }
      const offsets = this.#offsetsFitting(st, outputs);
      if (outputs.length > 0 || JSON.stringify(offsets) !== st.lastOffsets)
        await this.#commit(st, epoch, outputs, offsets);
      const last = batch.records.at(-1);
      st.caughtUp.set(batch.topic, last !== undefined && last.offset + 1 >= batch.highWatermark);
      if (progressed) st.lastActivity = this.#now();
      // The consumer moves on past everything decided or held. Held bids are
      // in the committed offset's metadata (replayed after a restart or a
      // rebalance, see replayHeld), so the in-memory position need not stay
      // on them: fetching again from a held bid pins the partition to one
      // fetch window (maxBytes) once more than that arrived behind it, and
      // then its clock, hold expiry and auction closing stop for good.
      const next = isBids ? st.bidsNext : st.auctionsNext;
      if (next !== undefined && next > (batch.records[0]?.offset ?? 0)) ctx.markProcessed(next - 1);
      else if (isBids) await new Promise((r) => setTimeout(r, 50));
    });
  }

  /**
   * `#offsets`, after making room: when the held offsets do not fit Kafka's
   * offset metadata limit (a scattered hold thousands of bids long), the
   * oldest held bids are rejected auction_not_found now, their rejections
   * appended to `outputs` (same transaction), until the rest fits.
   */
  #offsetsFitting(st: Part, outputs: OutputRecord[]): TopicPartitionOffset[] {
    for (;;) {
      const offsets = this.#offsets(st);
      const meta = offsets[0]?.metadata ?? "";
      if (fits(meta)) return offsets;
      const held = st.core.heldRefs().length;
      const evicted = st.core.evictHeld(
        Math.max(1, Math.ceil(held / 10)),
        st.clock,
        "too many bids held at once to record in the committed offset",
      );
      // Nothing left to evict: only bids replayed from a committed record remain (it fitted then).
      if (evicted.length === 0) return offsets;
      outputs.push(...evicted);
      this.#m.evicted.inc({ partition: String(st.p) }, evicted.length);
    }
  }

  /** Offsets to commit for partition p: bids up to the oldest held bid (with metadata), auctions as processed. */
  #offsets(st: Part): TopicPartitionOffset[] {
    const out: TopicPartitionOffset[] = [];
    if (st.bidsNext !== undefined) {
      const held = new Set<number>(st.replayHeld);
      for (const r of st.core.heldRefs() as (Ref | undefined)[]) if (r && r.p === st.p) held.add(r.offset);
      this.#m.held.set({ partition: String(st.p) }, held.size);
      if (held.size === 0) {
        out.push({ topic: this.#o.topics.bids.name, partition: st.p, offset: st.bidsNext, metadata: "" });
      } else {
        let oldest = st.bidsNext;
        for (const o of held) if (o < oldest) oldest = o;
        out.push({
          topic: this.#o.topics.bids.name,
          partition: st.p,
          offset: oldest,
          metadata: encodeHeldMeta({ u: st.bidsNext, h: [...held] }),
        });
      }
    }
    if (st.auctionsNext !== undefined)
      out.push({ topic: this.#o.topics.auctions.name, partition: st.p, offset: st.auctionsNext });
    return out;
  }

  /** One Kafka transaction: outputs (to the input's partition number) and the input offsets. */
  async #commit(
    st: Part,
    epoch: number,
    outputs: readonly OutputRecord[],
    offsets: readonly TopicPartitionOffset[],
  ): Promise<void> {
    if (st.epoch !== epoch || !st.producer)
      throw new Error(`partition ${st.p} was reassigned or rebuilt; batch abandoned`);
    const byTopic = new Map<
      string,
      { key: string | null; value: string; partition: number; headers: Record<string, string> }[]
    >();
    for (const o of latestPricePerAuction(outputs)) {
      const topic = this.#outTopic[o.topic];
      const list = byTopic.get(topic) ?? [];
      list.push({
        key: o.key === "" ? null : o.key,
        value: JSON.stringify(o.value),
        partition: st.p,
        headers: outputHeaders(o),
      });
      byTopic.set(topic, list);
    }
    const batches: TopicMessages[] = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
    // kafkajs can leave a request waiting forever on a connection that died
    // with its broker; a bounded transaction turns that into an abort and a
    // rebuild instead of a partition that never moves again.
    const producer = st.producer;
    const tx = await withTimeout(producer.begin(), TX_TIMEOUT_MS, "begin transaction");
    try {
      await withTimeout(
        (async () => {
          await tx.send(batches);
          await tx.sendOffsets(this.#groupId, offsets);
          await tx.commit();
        })(),
        TX_TIMEOUT_MS,
        "transaction",
      );
      st.lastOffsets = JSON.stringify(offsets);
      this.#m.tx.inc({ result: "commit" });
      for (const b of batches) this.#m.out.inc({ topic: b.topic }, b.messages.length);
      countOutputs(this.#m.business, outputs);
    } catch (err) {
      this.#m.tx.inc({ result: "abort" });
      await withTimeout(tx.abort(), 5_000, "abort").catch(() => undefined);
      // In-memory state now holds effects that were not committed: rebuild
      // from the committed state before this partition's next batch.
      this.#markStale(st);
      throw err;
    }
  }

  #markStale(st: Part): void {
    st.epoch++;
    if (!this.#parts.has(st.p) || this.#stopping) return;
    this.#o.logger.warn({ partition: st.p }, "transaction failed; rebuilding partition state");
    const done = (async () => {
      await st.producer?.close().catch(() => undefined);
      st.producer = undefined;
      await this.#boundedRestore([st]);
    })();
    st.ready = done;
    done.catch((err) => this.#o.logger.error({ err, partition: st.p }, "rebuilding partition state failed"));
  }

  /**
   * Idle partitions: when a partition is caught up and quiet, its clock
   * follows the wall clock, so auctions close on time without new records.
   */
  #tick(): void {
    if (this.#stopping) return;
    const now = this.#now();
    for (const st of this.#parts.values()) {
      const held = st.core.heldRefs().length;
      if (held > 0 && this.#o.logger.isLevelEnabled("debug"))
        this.#o.logger.debug(
          {
            partition: st.p,
            held,
            restoring: st.restoring,
            valid: st.valid,
            idleMs: now - st.lastActivity,
            caughtUp: Object.fromEntries(st.caughtUp),
            clock: st.clock,
            now,
          },
          "tick with held bids",
        );
      if (st.restoring || !st.valid || now - st.lastActivity < 300) continue;
      if ([...st.caughtUp.values()].some((c) => !c)) continue;
      if (now - IDLE_CLOCK_LAG_MS <= st.clock) continue;
      const epoch = st.epoch;
      this.#withLock(st, async () => {
        if (st.epoch !== epoch || st.restoring || !st.valid) return; // rebuilt meanwhile: the new book decides
        // The idle clock trails the wall clock: a record stamped before an
        // auction's end + grace but still on its way (a slow producer) is
        // decided before the close, as a replay would decide it.
        st.clock = Math.max(st.clock, this.#now() - IDLE_CLOCK_LAG_MS);
        const outputs = st.core.tick(st.clock);
        if (outputs.length === 0) return;
        await this.#commit(st, epoch, outputs, this.#offsetsFitting(st, outputs));
      }).catch((err) => this.#o.logger.error({ err, partition: st.p }, "closing transaction failed"));
    }
  }

  /** Stops consuming; the in-flight batch finishes (its transaction commits or aborts), nothing else is committed. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    if (this.#timer) clearInterval(this.#timer);
    await this.#consumer?.stop();
    for (const st of this.#parts.values()) {
      await st.lock.catch(() => undefined);
      await st.producer?.close().catch(() => undefined);
    }
    await this.#usersConsumer?.stop();
  }
}

/** Longest a Kafka transaction may take before it is given up (aborted, partition rebuilt). */
const TX_TIMEOUT_MS = 30_000;
/** How far an idle partition's clock trails the wall clock. */
const IDLE_CLOCK_LAG_MS = 2_000;
/** Longest a partition rebuild may take before it is retried. */
const RESTORE_TIMEOUT_MS = 150_000;

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
