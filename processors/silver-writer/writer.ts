import type pg from "pg";
import type { AuctionPipeline, topicNames } from "../../api/v1alpha1/pipeline.ts";
import type { Logger } from "../../lib/log.ts";
import type { RecordBatch, Transport } from "../kafka/transport.ts";
import { observeEndToEnd, pipelineMetrics } from "../runtime/instrument.ts";
import type { Registry } from "../runtime/metrics.ts";
import { Stream, type Sunk } from "../runtime/stream.ts";
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

/** Batches written at the same time, each on its own pooled connection (main.ts sizes the pool by it). */
export const SILVER_CONCURRENCY = 12;

/** One batch made ready for the database: its rows and unusable records. */
interface SilverWork {
  readonly kind: SilverKind;
  readonly prepared: Prepared;
  /** When the batch was taken up (the batch duration metric). */
  readonly started: number;
  /** The dead letters the committed transaction wrote (set by the sink). */
  letters: readonly DeadLetter[];
}

/** Topic name -> silver kind. */
function kindsOf(t: ReturnType<typeof topicNames>): Map<string, SilverKind> {
  return new Map<string, SilverKind>([
    [t.auctions.name, "auctions"],
    [t.users.name, "users"],
    [t["bids.accepted"].name, "bids"],
    [t["bids.rejected"].name, "rejections"],
    [t.prices.name, "prices"],
    [t.transactions.name, "transactions"],
    [t["fraud-alerts"].name, "fraudAlerts"],
  ]);
}

/**
 * Writes the derived topics into the silver schema, a sink on the consume
 * loop (runtime/stream.ts). Each batch (one topic-partition) becomes one
 * database transaction of multi-row upserts; the loop commits the Kafka
 * offsets only after the database commit, so a crash between the two
 * re-delivers the batch, and the upserts make re-delivery a no-op (bids by
 * bid_id, rejections by Kafka position, transactions by auction, alerts by
 * bid, auction_state fenced by version).
 *
 * Nothing is dropped silently: a record that cannot become a row (not JSON,
 * not an object, a required field missing or invalid) goes to
 * silver.dead_letters in the same transaction, keyed by its Kafka position.
 * When PostgreSQL refuses the batch for a data reason (SQLSTATE class 22 or
 * 23), the batch is written again with the refused rows isolated (halving
 * under savepoints) and dead-lettered with their SQLSTATE, so one bad record
 * cannot block its partition; any other error retries the whole batch.
 */
export class SilverWriter extends Stream<SilverWork> {
  readonly #pool: pg.Pool;
  /** The silver kind of each consumed topic, by topic name. */
  readonly #kindOf: ReadonlyMap<string, SilverKind>;
  /** The silver-writer's instruments (and the business ones it feeds). */
  readonly #metrics;

  constructor(o: SilverWriterOptions) {
    const kindOf = kindsOf(o.topics);
    super({
      transport: o.transport,
      processor: "silver-writer",
      groupId: o.groupId ?? `${o.pipeline.metadata.name}.silver-writer`,
      topics: [...kindOf.keys()],
      // Partitions write concurrently (one database transaction each, up to the
      // pool's connections); a partition's batches stay in order. The consumer
      // fetches again only when every batch of a fetch is written, so a fetch's
      // batches (bids.accepted and prices of 6 partitions: 12) should not queue
      // behind each other: with 4 at a time p99 at 1,000 bids/s was 190 ms,
      // with 12 153 ms (docs/benchmarks.md, session 10).
      consumer: { fromBeginning: true, partitionsConcurrently: SILVER_CONCURRENCY },
      metrics: o.metrics,
      logger: o.logger,
      lag: { pipeline: o.pipeline.metadata.name },
      retry: { retries: 30, maxTimeoutMs: 5_000 },
    });
    this.#pool = o.pool;
    this.#kindOf = kindOf;
    const m = o.metrics;
    this.#metrics = {
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

  protected transform(batch: RecordBatch): SilverWork | undefined {
    const kind = this.#kindOf.get(batch.topic);
    if (!kind || batch.records.length === 0) return undefined;
    const started = performance.now();
    return { kind, prepared: prepare(kind, batch.records), started, letters: [] };
  }

  protected override describe(work: SilverWork, batch: RecordBatch): string {
    return `writing ${work.prepared.rows} rows of ${batch.topic}`;
  }

  protected async sink(work: SilverWork, batch: RecordBatch): Promise<Sunk> {
    work.letters = await this.#write(work.kind, work.prepared);
    if (work.letters.length > 0) this.#reportDeadLetters(batch, work.letters);
    // A bid's end-to-end latency ends here: its silver row is committed.
    if (work.kind === "bids") observeEndToEnd(this.#metrics.business, "accepted", work.prepared.decoded);
    else if (work.kind === "rejections")
      observeEndToEnd(this.#metrics.business, "rejected", work.prepared.decoded);
    const last = batch.records[batch.records.length - 1]!;
    return { commit: [{ topic: batch.topic, partition: batch.partition, offset: last.offset + 1 }] };
  }

  protected override failed(batch: RecordBatch): void {
    this.#metrics.failures.inc({ topic: batch.topic });
  }

  protected override committed(work: SilverWork, batch: RecordBatch): void {
    this.#metrics.records.inc({ topic: batch.topic }, batch.records.length);
    const refused = work.letters.filter((d) => d.reason === "db_rejected").length;
    this.#metrics.rows.inc({ table: work.kind }, work.prepared.rows - refused);
    this.#metrics.batch.observe({}, (performance.now() - work.started) / 1000);
  }

  /**
   * One transaction: the rows and the dead letters of the batch. If
   * PostgreSQL refuses the rows for a data reason, the transaction is rolled
   * back and done again with the refused rows isolated. Returns the dead
   * letters written.
   */
  async #write(kind: SilverKind, prepared: Prepared): Promise<DeadLetter[]> {
    const table = TABLES[kind].table;
    const client = await this.#pool.connect();
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
        this.logger.warn(
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
      this.#metrics.unusable.inc({ topic: batch.topic, reason: d.reason });
      byReason[d.reason] = (byReason[d.reason] ?? 0) + 1;
    }
    this.logger.warn(
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
