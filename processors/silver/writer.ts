import type pg from "pg";
import type { Logger } from "../../lib/log.ts";
import type { AuctionPipeline, topicNames } from "../../operator/api/v1alpha1/pipeline.ts";
import type { BatchContext, GroupConsumer, RecordBatch, Transport } from "../kafka/transport.ts";
import { instrumentBatches, observeEndToEnd, pipelineMetrics } from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { withRetry } from "../runtime/retry.ts";
import { prepare, type SilverKind } from "./rows.ts";

export interface SilverWriterOptions {
  readonly transport: Transport;
  readonly pool: pg.Pool;
  readonly pipeline: AuctionPipeline;
  readonly topics: ReturnType<typeof topicNames>;
  readonly logger: Logger;
  readonly metrics: Registry;
  /** Default `<pipeline>.silver-writer`. */
  readonly groupId?: string;
}

/**
 * Writes the derived topics into the silver schema. Each batch (one
 * topic-partition) becomes one database transaction of multi-row upserts;
 * the Kafka offsets are committed only after the database commit, so a crash
 * between the two re-delivers the batch, and the upserts make re-delivery a
 * no-op (bids by bid_id, rejections by Kafka position, transactions by
 * auction, alerts by bid, auction_state fenced by version).
 */
export class SilverWriter {
  readonly #o: SilverWriterOptions;
  readonly #groupId: string;
  readonly #kindOf = new Map<string, SilverKind>();
  #consumer?: GroupConsumer;
  #running = false;
  #stopping = false;
  #lastError?: string;
  readonly #m;

  constructor(o: SilverWriterOptions) {
    this.#o = o;
    this.#groupId = o.groupId ?? `${o.pipeline.metadata.name}.silver-writer`;
    const t = o.topics;
    this.#kindOf.set(t.auctions.name, "auctions");
    this.#kindOf.set(t.users.name, "users");
    this.#kindOf.set(t["bids.accepted"].name, "bids");
    this.#kindOf.set(t["bids.rejected"].name, "rejections");
    this.#kindOf.set(t.prices.name, "prices");
    this.#kindOf.set(t.transactions.name, "transactions");
    this.#kindOf.set(t["fraud-alerts"].name, "fraudAlerts");
    const m = o.metrics;
    this.#m = {
      rows: m.counter(
        "silver_writer_rows_total",
        "Rows offered to silver (after in-batch dedupe), by table.",
      ),
      records: m.counter("silver_writer_records_total", "Records consumed, by topic."),
      unusable: m.counter(
        "silver_writer_unusable_records_total",
        "Records that could not become rows, by topic.",
      ),
      batch: m.histogram("silver_writer_batch_seconds", "Time to write and commit one batch."),
      failures: m.counter(
        "silver_writer_batch_failures_total",
        "Batches whose database write failed (retried).",
      ),
      business: pipelineMetrics(m),
    };
  }

  get groupId(): string {
    return this.#groupId;
  }

  /** Set when a consumer stopped for good: the process should exit and be restarted. */
  failure(): Error | undefined {
    return this.#consumer?.failure();
  }

  ready(): { ok: boolean; reason?: string } {
    if (!this.#running) return { ok: false, reason: "not consuming" };
    if (this.#lastError) return { ok: false, reason: `last batch failed: ${this.#lastError}` };
    return { ok: true };
  }

  async start(): Promise<void> {
    // Partitions write concurrently (one database transaction each, up to the
    // pool's 4 connections); a partition's batches stay in order.
    this.#consumer = this.#o.transport.consumer({
      groupId: this.#groupId,
      fromBeginning: true,
      partitionsConcurrently: 4,
    });
    await this.#consumer.run(
      [...this.#kindOf.keys()],
      instrumentBatches(
        { eachBatch: (batch, ctx) => this.#eachBatch(batch, ctx) },
        { metrics: this.#o.metrics, processor: "silver-writer", groupId: this.#groupId },
      ),
    );
    this.#running = true;
  }

  async #eachBatch(batch: RecordBatch, ctx: BatchContext): Promise<void> {
    const kind = this.#kindOf.get(batch.topic);
    const last = batch.records.at(-1);
    if (!kind || !last) return;
    const started = performance.now();
    const prepared = prepare(kind, batch.records);
    for (const u of prepared.unusable) {
      this.#m.unusable.inc({ topic: batch.topic });
      this.#o.logger.warn(
        { topic: batch.topic, partition: batch.partition, offset: u.record.offset, reason: u.reason },
        "record skipped: cannot become a silver row",
      );
    }
    await withRetry(
      async () => {
        const client = await this.#o.pool.connect();
        try {
          await client.query("BEGIN");
          for (const s of prepared.statements) await client.query(s.text, s.values);
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK").catch(() => undefined);
          throw err;
        } finally {
          client.release();
        }
      },
      {
        what: `writing ${prepared.rows} rows of ${batch.topic}`,
        logger: this.#o.logger,
        retries: 30,
        maxTimeoutMs: 5_000,
        shouldContinue: () => !this.#stopping,
      },
    ).catch((err) => {
      this.#m.failures.inc({ topic: batch.topic });
      this.#lastError = (err as Error).message;
      throw err;
    });
    this.#lastError = undefined;
    // A bid's end-to-end latency ends here: its silver row is committed.
    if (kind === "bids") observeEndToEnd(this.#m.business, "accepted", batch.records);
    else if (kind === "rejections") observeEndToEnd(this.#m.business, "rejected", batch.records);
    // Only after the database commit: the offsets.
    await this.#consumer?.commit([
      { topic: batch.topic, partition: batch.partition, offset: last.offset + 1 },
    ]);
    ctx.markProcessed(last.offset);
    this.#m.records.inc({ topic: batch.topic }, batch.records.length);
    this.#m.rows.inc({ table: kind }, prepared.rows);
    this.#m.batch.observe({}, (performance.now() - started) / 1000);
  }

  /** Stops consuming; the in-flight batch finishes its database transaction and offset commit. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    await this.#consumer?.stop();
  }
}
