import type pg from "pg";
import type { AuctionPipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import type { Logger } from "../../lib/log.ts";
import type { BatchContext, GroupConsumer, RecordBatch, Transport } from "../kafka/transport.ts";
import {
  type InstrumentedHandlers,
  instrumentBatches,
  observeEndToEnd,
  pipelineMetrics,
} from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { withRetry } from "../runtime/retry.ts";
import { type DeadLetter, dataErrorCode, deadLetterStatements, fromUnusable } from "./dead-letters.ts";
import { type Entry, type Prepared, prepare, type SilverKind, statementsFor, TABLES } from "./rows.ts";

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
 *
 * Nothing is dropped silently: a record that cannot become a row (not JSON,
 * not an object, a required field missing or invalid) goes to
 * silver.dead_letters in the same transaction, keyed by its Kafka position.
 * When PostgreSQL refuses the batch for a data reason (SQLSTATE class 22 or
 * 23), the batch is written again with the refused rows isolated (halving
 * under savepoints) and dead-lettered with their SQLSTATE, so one bad record
 * cannot block its partition; any other error retries the whole batch.
 */
export class SilverWriter {
  readonly #o: SilverWriterOptions;
  readonly #groupId: string;
  readonly #kindOf = new Map<string, SilverKind>();
  #consumer?: GroupConsumer;
  /** The consumer handlers with spans, metrics and the lag refresh (closed with the consumer). */
  #instrumented?: InstrumentedHandlers;
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
        "Records that could not become rows, kept in silver.dead_letters (counted after commit), by topic and reason.",
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
    this.#instrumented = instrumentBatches(
      { eachBatch: (batch, ctx) => this.#eachBatch(batch, ctx) },
      {
        metrics: this.#o.metrics,
        processor: "silver-writer",
        groupId: this.#groupId,
        pipeline: this.#o.pipeline.metadata.name,
        admin: () => this.#o.transport.admin(),
        warn: (err, msg) => this.#o.logger.warn({ err }, msg),
      },
    );
    await this.#consumer.run([...this.#kindOf.keys()], this.#instrumented);
    this.#running = true;
  }

  async #eachBatch(batch: RecordBatch, ctx: BatchContext): Promise<void> {
    const kind = this.#kindOf.get(batch.topic);
    const last = batch.records.at(-1);
    if (!kind || !last) return;
    const started = performance.now();
    const prepared = prepare(kind, batch.records);
    const letters = await withRetry(() => this.#write(kind, prepared), {
      what: `writing ${prepared.rows} rows of ${batch.topic}`,
      logger: this.#o.logger,
      retries: 30,
      maxTimeoutMs: 5_000,
      shouldContinue: () => !this.#stopping,
    }).catch((err) => {
      this.#m.failures.inc({ topic: batch.topic });
      this.#lastError = (err as Error).message;
      throw err;
    });
    this.#lastError = undefined;
    if (letters.length > 0) this.#reportDeadLetters(batch, letters);
    // A bid's end-to-end latency ends here: its silver row is committed.
    if (kind === "bids") observeEndToEnd(this.#m.business, "accepted", batch.records);
    else if (kind === "rejections") observeEndToEnd(this.#m.business, "rejected", batch.records);
    // Only after the database commit: the offsets.
    await this.#consumer?.commit([
      { topic: batch.topic, partition: batch.partition, offset: last.offset + 1 },
    ]);
    ctx.markProcessed(last.offset);
    this.#m.records.inc({ topic: batch.topic }, batch.records.length);
    const refused = letters.filter((d) => d.reason === "db_rejected").length;
    this.#m.rows.inc({ table: kind }, prepared.rows - refused);
    this.#m.batch.observe({}, (performance.now() - started) / 1000);
  }

  /**
   * One transaction: the rows and the dead letters of the batch. If
   * PostgreSQL refuses the rows for a data reason, the transaction is rolled
   * back and done again with the refused rows isolated. Returns the dead
   * letters written.
   */
  async #write(kind: SilverKind, prepared: Prepared): Promise<DeadLetter[]> {
    const table = TABLES[kind].table;
    const client = await this.#o.pool.connect();
    const attempt = async (isolate: boolean): Promise<DeadLetter[]> => {
      const letters = prepared.unusable.map((u) => fromUnusable(table, u));
      await client.query("BEGIN");
      if (isolate) await insertIsolating(client, kind, prepared.entries, letters);
      else for (const s of prepared.statements) await client.query(s);
      for (const s of deadLetterStatements(letters)) await client.query(s.text, s.values);
      await client.query("COMMIT");
      return letters;
    };
    try {
      try {
        return await attempt(false);
      } catch (err) {
        const code = dataErrorCode(err);
        if (!code) throw err;
        await client.query("ROLLBACK");
        this.#o.logger.warn(
          { table, sqlstate: code, rows: prepared.rows },
          "batch refused for a data reason: writing it again with the refused rows isolated",
        );
        return await attempt(true);
      }
    } catch (err) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /** Counts (after commit) and logs dead letters: positions and reason codes, never record contents. */
  #reportDeadLetters(batch: RecordBatch, letters: readonly DeadLetter[]): void {
    const byReason: Record<string, number> = {};
    for (const d of letters) {
      this.#m.unusable.inc({ topic: batch.topic, reason: d.reason });
      byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
    }
    this.#o.logger.warn(
      {
        topic: batch.topic,
        partition: batch.partition,
        count: letters.length,
        byReason,
        records: letters.slice(0, 20).map((d) => ({
          offset: d.record.offset,
          key: d.record.key?.slice(0, 200) ?? null,
          reason: d.reason,
          ...(d.sqlstate ? { sqlstate: d.sqlstate } : {}),
        })),
      },
      "records cannot become silver rows: kept in silver.dead_letters",
    );
  }

  /** Stops consuming; the in-flight batch finishes its database transaction and offset commit. */
  async close(): Promise<void> {
    this.#stopping = true;
    this.#running = false;
    await this.#consumer?.stop();
    await this.#instrumented?.close();
  }
}

type Client = Pick<pg.PoolClient, "query">;

/**
 * Writes `entries` inside a savepoint; when PostgreSQL refuses them for a
 * data reason, rolls back to the savepoint and writes each half again, down
 * to the single refused row, which becomes a dead letter (O(k log n)
 * statements for k bad rows of n). Any other error is thrown (the caller
 * retries the whole batch).
 */
async function insertIsolating(
  client: Client,
  kind: SilverKind,
  entries: readonly Entry[],
  out: DeadLetter[],
): Promise<void> {
  if (entries.length === 0) return;
  await client.query("SAVEPOINT silver_rows");
  try {
    for (const s of statementsFor(kind, entries)) await client.query(s);
  } catch (err) {
    const sqlstate = dataErrorCode(err);
    if (!sqlstate) throw err;
    await client.query("ROLLBACK TO SAVEPOINT silver_rows");
    await client.query("RELEASE SAVEPOINT silver_rows");
    const only = entries.length === 1 ? entries[0] : undefined;
    if (only) {
      out.push({
        record: only.record,
        table: TABLES[kind].table,
        reason: "db_rejected",
        detail: `${sqlstate}: ${(err as Error).message}`,
        sqlstate,
      });
      return;
    }
    const mid = Math.ceil(entries.length / 2);
    await insertIsolating(client, kind, entries.slice(0, mid), out);
    await insertIsolating(client, kind, entries.slice(mid), out);
    return;
  }
  await client.query("RELEASE SAVEPOINT silver_rows");
}
