/**
 * The one consume loop of the pipeline's Kafka processors (bid-processor,
 * silver-writer, bronze-archiver). A processor extends `Stream` with its
 * steps; the loop owns everything around them:
 *
 *   consume -> transform -> sink -> commit -> committed
 *
 * - consume: the group consumer, its options, and `instrumentBatches` (spans,
 *   batch metrics, lag), wired the same way for every processor;
 * - transform: what the batch becomes, record by record (rows and unusable
 *   records, decisions, object lines), handed the batch's trace context;
 * - sink: makes that durable (a database transaction, an upload, a Kafka
 *   transaction that carries the offsets itself), retried in place when the
 *   stream says so, and says what is durable now;
 * - commit: only then the loop commits those offsets and lets the consumer
 *   move past the batch. A failure anywhere leaves the offsets where they
 *   were: the records are delivered again, never lost;
 * - committed: counters and logs that must count committed work only.
 *
 * It also owns the lifecycle (start, readiness with the last batch failure,
 * failure of the consumer, close finishing the in-flight batch).
 */
import type { Logger } from "../../lib/log.ts";
import type {
  BatchContext,
  ConsumerOptions,
  GroupConsumer,
  RecordBatch,
  TopicPartition,
  TopicPartitionOffset,
  Transport,
} from "../kafka/transport.ts";
import { type BatchTrace, type InstrumentedHandlers, instrumentBatches } from "./batch-telemetry.ts";
import type { Registry } from "./metrics.ts";
import { withRetry } from "./retry.ts";

/** `/readyz`: ready, or why not. */
export interface Readiness {
  readonly ok: boolean;
  readonly reason?: string;
}

export interface StreamOptions {
  readonly transport: Transport;
  /** The processor's name: the `processor` label of the batch metrics. */
  readonly processor: string;
  readonly groupId: string;
  readonly topics: readonly string[];
  /** Consumer settings beyond the group (start position, concurrency, fetch size...). */
  readonly consumer?: Omit<ConsumerOptions, "groupId">;
  readonly metrics: Registry;
  readonly logger: Logger;
  /**
   * Read each assigned partition's lag from the broker (at assignment and
   * while idle), labelled with the pipeline: the series an HPA scales on.
   * Without it the lag gauge follows the batches alone.
   */
  readonly lag?: { readonly pipeline: string };
  /**
   * Retry a failing sink in place (backoff with jitter, given up when the
   * stream stops) and report the last failure in readiness until a batch
   * succeeds. Without it a failed batch goes back to the consumer, which
   * fetches its records again after a backoff.
   */
  readonly retry?: { readonly retries: number; readonly maxTimeoutMs: number };
}

/** What a sink made durable. */
export interface Sunk {
  /** Offsets the loop commits now (omitted: the sink's own transaction carried them, or nothing is durable yet). */
  readonly commit?: readonly TopicPartitionOffset[];
  /**
   * The offset the consumer may fetch past. Default: the batch's last
   * record. `false`: the sink marked its position itself (it fetches some
   * records again on purpose).
   */
  readonly processed?: number | false;
}

/** A sink whose work is durable without a commit of the loop's (buffered, or committed in its own transaction). */
export const NOTHING_TO_COMMIT: Sunk = {};

/** idle: not started; stopping: `close()` was called, the in-flight batch finishes; closed: stopped. */
type State = "idle" | "running" | "stopping" | "closed";

/**
 * A Kafka processor on the one consume loop. `W` is what `transform` makes
 * of a batch for `sink` to write.
 */
export abstract class Stream<W> {
  /** The processor's logger (retries and sinks log through it). */
  protected readonly logger: Logger;
  readonly #options: StreamOptions;
  #consumer?: GroupConsumer;
  /** The consumer handlers with spans, metrics and the lag refresh (closed with the consumer). */
  #instrumented?: InstrumentedHandlers;
  #state: State = "idle";
  /** Message of the last batch whose retried sink gave up; cleared by the next batch that succeeds. */
  #lastError?: string;

  constructor(o: StreamOptions) {
    this.#options = o;
    this.logger = o.logger;
  }

  get groupId(): string {
    return this.#options.groupId;
  }

  /** Fields of the process shell's start log line (runtime/run.ts). */
  get logged(): Readonly<Record<string, unknown>> {
    return { group: this.#options.groupId };
  }

  /** True once `close()` was called (and after): retries give up, timers start no new work. */
  protected get stopping(): boolean {
    return this.#state === "stopping" || this.#state === "closed";
  }

  /** Called with the complete new assignment after every rebalance, before batches of it. */
  protected assigned(
    _assigned: readonly TopicPartition[],
    _revoked: readonly TopicPartition[],
  ): Promise<void> | void {}

  /**
   * What the batch becomes; `undefined`: nothing to write (the consumer moves
   * past the batch, the committed offsets stay where they are).
   */
  protected abstract transform(batch: RecordBatch, trace: BatchTrace): W | undefined;

  /** Makes `work` durable. With `retry`, called again while it fails transiently. */
  protected abstract sink(work: W, batch: RecordBatch, ctx: BatchContext, trace: BatchTrace): Promise<Sunk>;

  /** After the commit: counts and logs of committed work, follow-up work. */
  protected committed(_work: W, _batch: RecordBatch): Promise<void> | void {}

  /** How a retry's log line names the write. */
  protected describe(_work: W, batch: RecordBatch): string {
    return `writing ${batch.records.length} records of ${batch.topic}`;
  }

  /** A retried sink gave up (the batch goes back to the consumer). */
  protected failed(_batch: RecordBatch, _err: unknown): void {}

  /** Joins the group; resolves once the first assignment was handled. */
  async start(): Promise<void> {
    const o = this.#options;
    const consumer = o.transport.consumer({ ...o.consumer, groupId: o.groupId });
    this.#consumer = consumer;
    this.#instrumented = instrumentBatches(
      {
        onAssignment: (assigned, revoked) => this.assigned(assigned, revoked),
        eachBatch: (batch, ctx, trace) => this.#batch(batch, ctx, trace),
      },
      {
        metrics: o.metrics,
        processor: o.processor,
        groupId: o.groupId,
        ...(o.lag
          ? {
              pipeline: o.lag.pipeline,
              admin: () => o.transport.admin(),
              warn: (err: unknown, msg: string) => o.logger.warn({ err }, msg),
            }
          : {}),
      },
    );
    await consumer.run(o.topics, this.#instrumented);
    this.#state = "running";
  }

  async #batch(batch: RecordBatch, ctx: BatchContext, trace: BatchTrace): Promise<void> {
    const work = this.transform(batch, trace);
    if (work === undefined) {
      const last = batch.records.at(-1);
      if (last) ctx.markProcessed(last.offset);
      return;
    }
    const sunk = this.#options.retry
      ? await this.#retried(work, batch, ctx, trace, this.#options.retry)
      : await this.sink(work, batch, ctx, trace);
    // Only now, with the sink durable: the offsets.
    if (sunk.commit) await this.commitOffsets(sunk.commit);
    const processed = sunk.processed ?? batch.records.at(-1)?.offset;
    if (processed !== false && processed !== undefined) ctx.markProcessed(processed);
    const after = this.committed(work, batch);
    if (after) await after;
  }

  async #retried(
    work: W,
    batch: RecordBatch,
    ctx: BatchContext,
    trace: BatchTrace,
    retry: NonNullable<StreamOptions["retry"]>,
  ): Promise<Sunk> {
    try {
      const sunk = await withRetry(() => this.sink(work, batch, ctx, trace), {
        what: this.describe(work, batch),
        logger: this.logger,
        retries: retry.retries,
        maxTimeoutMs: retry.maxTimeoutMs,
        shouldContinue: () => !this.stopping,
      });
      this.#lastError = undefined;
      return sunk;
    } catch (err) {
      this.failed(batch, err);
      this.#lastError = (err as Error).message;
      throw err;
    }
  }

  /** Commits group offsets (the next offset to consume). Sinks that commit at their own points use it too. */
  protected async commitOffsets(offsets: readonly TopicPartitionOffset[]): Promise<void> {
    if (!this.#consumer) throw new Error("not started");
    await this.#consumer.commit(offsets);
  }

  /** Makes the next fetch of an assigned partition start at `offset` (nothing is committed). */
  protected seek(topic: string, partition: number, offset: number): void {
    this.#consumer?.seek(topic, partition, offset);
  }

  /** Set when the consumer stopped for good: the process should exit and be restarted. */
  failure(): Error | undefined {
    return this.#consumer?.failure();
  }

  ready(): Readiness {
    if (this.#state !== "running") return { ok: false, reason: "not consuming" };
    if (this.#lastError) return { ok: false, reason: `last batch failed: ${this.#lastError}` };
    return { ok: true };
  }

  /**
   * Stops fetching; the in-flight batch finishes (its sink and commit, or
   * its retries give up) and nothing else is committed. The state changes
   * before the first await, so a subclass may call it first and clean up
   * its own timers while the consumer stops.
   */
  async close(): Promise<void> {
    this.#state = "stopping";
    await this.#consumer?.stop();
    await this.#instrumented?.close();
    this.#state = "closed";
  }
}
