/**
 * What every Kafka consumer of the pipeline reports about its batches
 * (`instrumentBatches`, wired once by the consume loop in stream.ts): one
 * CONSUMER span per batch (linked to every record's producer span) and one
 * per record (a child of the context in the record's headers, so one bid
 * stays one trace across processors), batch size / duration / failures,
 * records consumed and consumer lag per partition.
 *
 * Trace context travels with the batch: the handler gets a `BatchTrace`
 * that answers, by a record's index in `batch.records`, the context of that
 * record's span and the headers of a record produced because of it. Nothing
 * is kept in module state: the contexts live as long as the batch.
 */
import {
  type Context,
  context,
  isSpanContextValid,
  type Link,
  type Span,
  TraceFlags,
  trace,
} from "@opentelemetry/api";
import {
  contextFromHeaders,
  SpanKind,
  SpanStatusCode,
  spansExported,
  traceHeaders,
  tracer,
} from "../../lib/telemetry.ts";
import type {
  Admin,
  BatchContext,
  ConsumerHandlers,
  KafkaRecord,
  RecordBatch,
  TopicPartition,
} from "../kafka/transport.ts";
import { type Registry, SIZE_BUCKETS } from "./metrics.ts";

/** The SDK keeps at most 128 links per span by default; extracting more is wasted work. */
const MAX_LINKS = 128;

/** The trace context of each record of one batch, by its index in `batch.records`. */
export interface BatchTrace {
  /** The context of record `i`'s span while the batch runs, else the context in its headers. */
  context(i: number): Context;
  /** Headers for a record produced because of record `i`: continues its trace. */
  headers(i: number): Record<string, string>;
}

/** Consumer handlers that get each batch's trace context (what `instrumentBatches` wraps). */
export interface TracedHandlers {
  onAssignment?(
    assigned: readonly TopicPartition[],
    revoked: readonly TopicPartition[],
  ): Promise<void> | void;
  eachBatch(batch: RecordBatch, ctx: BatchContext, trace: BatchTrace): Promise<void>;
}

export interface InstrumentOptions {
  readonly metrics: Registry;
  /** Processor name, the `processor` label (ingest, bid-processor, silver-writer, bronze-archiver). */
  readonly processor: string;
  /** Consumer group, a span attribute. */
  readonly groupId?: string;
  /** The pipeline, a label of the per-partition lag gauge (the HPA's external metric selects on it). */
  readonly pipeline?: string;
  /**
   * Reads the group's committed offsets and the partitions' high watermarks
   * at every assignment and every `lagRefreshMs` for partitions without a
   * batch since (with `groupId`), so each assigned partition has a
   * true lag series at once, not only after its next batch: an idle partition
   * that changed hands in a rebalance would otherwise have none (an HPA whose
   * lag metric has no series at all cannot scale down), and one whose last
   * batch straddled the rebalance would keep that batch's stale lag.
   */
  readonly admin?: () => Promise<LagAdmin>;
  /** Logs a failed seeding (the batches still set the gauge). */
  readonly warn?: (err: unknown, msg: string) => void;
  /** How often idle partitions' lag is read from the broker (with `admin`); default 15 s. */
  readonly lagRefreshMs?: number;
}

/** The admin calls the lag series need. */
export type LagAdmin = Pick<Admin, "topicOffsets" | "groupOffsets" | "close">;

/** Instrumented handlers; `close()` stops the lag refresh and closes its admin client. */
export interface InstrumentedHandlers extends ConsumerHandlers {
  close(): Promise<void>;
}

/** The contexts of one batch: extracted once, before the handler runs. */
class RecordContexts implements BatchTrace {
  readonly #records: readonly KafkaRecord[];
  /** The valid context in each record's headers (undefined: none), by index. */
  readonly #parents: readonly (Context | undefined)[];
  /** Each record's own span (sampled records, spans exported), by index; undefined when none was made. */
  readonly #spans: readonly (Span | undefined)[] | undefined;

  constructor(
    records: readonly KafkaRecord[],
    parents: readonly (Context | undefined)[],
    spans: readonly (Span | undefined)[] | undefined,
  ) {
    this.#records = records;
    this.#parents = parents;
    this.#spans = spans;
  }

  context(i: number): Context {
    const s = this.#spans?.[i];
    if (s) return trace.setSpan(context.active(), s);
    return this.#parents[i] ?? contextFromHeaders(this.#records[i]?.headers);
  }

  headers(i: number): Record<string, string> {
    return traceHeaders(this.context(i));
  }
}

/** The consumer-side instruments, one set per registry. */
function batchInstruments(m: Registry) {
  const records = { unit: "{record}" };
  return {
    size: m.histogram(
      "batch_records",
      "Records per consumed batch, by processor and topic.",
      SIZE_BUCKETS,
      records,
    ),
    duration: m.histogram(
      "batch_duration_seconds",
      "Time to handle one consumed batch (including its commit), by processor and topic.",
    ),
    failures: m.counter(
      "batch_failures_total",
      "Batches whose handler threw (retried), by processor and topic.",
    ),
    consumed: m.counter("records_consumed_total", "Records handled, by processor and topic.", records),
    begun: m.counter(
      "batches_started_total",
      "Batches handed to the handler, by processor and topic (minus finished and failed ones: in flight).",
    ),
    lag: m.gauge(
      "consumer_lag_records",
      "Records behind the partition's high watermark after the last batch, by processor, topic and partition.",
      records,
    ),
  };
}

const tpKeyOf = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;

/**
 * The per-partition lag gauge of one consumer. Partitions assigned now, and
 * those with a lag series: a batch of a partition revoked meanwhile (it may
 * finish after the rebalance) must not leave a series behind, or the HPA
 * would read its last lag for ever and never scale down.
 */
class LagSeries {
  readonly #options: InstrumentOptions;
  readonly #gauge: ReturnType<typeof batchInstruments>["lag"];
  /** Keys of the partitions assigned now (undefined before the first assignment). */
  #assigned: Set<string> | undefined;
  /** Partitions with a series, by key. */
  readonly #withSeries = new Map<string, TopicPartition>();
  /**
   * Bumped by every assignment and batch of a partition: a seeding read
   * started before either is older than the gauge and must not overwrite it.
   */
  readonly #setAt = new Map<string, number>();
  #stamp = 0;
  /** Assignments seen: a batch begun in an older one read a stale high watermark. */
  #generation = 0;
  /** One admin client for the reads, opened on first use, closed by `close()`. */
  #admin: Promise<LagAdmin> | undefined;
  #closed = false;
  readonly #refresh: NodeJS.Timeout | undefined;

  constructor(o: InstrumentOptions, gauge: ReturnType<typeof batchInstruments>["lag"]) {
    this.#options = o;
    this.#gauge = gauge;
    // Idle partitions get no batches, so nothing corrects a lag set by their
    // last one (a stale high watermark; seen on the local cluster: 864 behind
    // on a partition whose committed offset was at the log end, and the HPA
    // held 3 replicas for it). Every `lagRefreshMs` the gauge of each assigned
    // partition without a batch since the read began is set from the broker.
    this.#refresh =
      o.admin && o.groupId
        ? setInterval(() => {
            if (!this.#assigned || this.#assigned.size === 0) return;
            const parts = [...this.#assigned].map((k) => {
              const [topic, partition] = k.split("\u0000");
              return { topic: topic as string, partition: Number(partition) };
            });
            this.#seed(parts).catch((err) =>
              o.warn?.(err, "reading the consumer lag from the broker failed"),
            );
          }, o.lagRefreshMs ?? 15_000)
        : undefined;
    this.#refresh?.unref();
  }

  get generation(): number {
    return this.#generation;
  }

  #labels(tp: TopicPartition) {
    return {
      ...(this.#options.pipeline ? { pipeline: this.#options.pipeline } : {}),
      processor: this.#options.processor,
      topic: tp.topic,
      partition: String(tp.partition),
    };
  }

  #set(tp: TopicPartition, value: number): void {
    this.#gauge.set(this.#labels(tp), value);
    this.#withSeries.set(tpKeyOf(tp), { topic: tp.topic, partition: tp.partition });
  }

  /** A new assignment: series of partitions no longer here go, every assigned one is read from the broker. */
  assign(next: readonly TopicPartition[], revoked: readonly TopicPartition[]): void {
    const assigned = new Set(next.map(tpKeyOf));
    this.#assigned = assigned;
    this.#generation += 1;
    for (const [k, tp] of this.#withSeries) {
      if (assigned.has(k)) continue;
      this.#gauge.remove(this.#labels(tp));
      this.#withSeries.delete(k);
    }
    for (const tp of revoked) this.#gauge.remove(this.#labels(tp));
    // Every assigned partition, kept ones too: a batch of the previous
    // generation may have set a lag that the new one never corrects (nothing
    // left to fetch). Not awaited: the processor's own assignment work (a state
    // rebuild) must not wait for it.
    for (const tp of next) this.#setAt.set(tpKeyOf(tp), ++this.#stamp);
    this.#seed(next).catch((err) =>
      this.#options.warn?.(err, "reading the lag of newly assigned partitions failed"),
    );
  }

  /** The lag after a finished batch begun in assignment `begunIn`. */
  batchDone(batch: RecordBatch, begunIn: number): void {
    const last = batch.records.at(-1);
    const k = tpKeyOf(batch);
    // A batch that began before the latest assignment read a stale high
    // watermark (its records may even be redone by the new generation):
    // it must not overwrite what the assignment's seeding or a newer batch set.
    if (!last || this.#generation !== begunIn || (this.#assigned !== undefined && !this.#assigned.has(k)))
      return;
    this.#setAt.set(k, ++this.#stamp);
    this.#set(batch, Math.max(0, batch.highWatermark - last.offset - 1));
  }

  async #seed(parts: readonly TopicPartition[]): Promise<void> {
    const o = this.#options;
    if (!o.admin || !o.groupId || parts.length === 0 || this.#closed) return;
    const groupId = o.groupId;
    const started = new Map(parts.map((tp) => [tpKeyOf(tp), this.#setAt.get(tpKeyOf(tp))]));
    this.#admin ??= o.admin();
    let a: LagAdmin;
    try {
      a = await this.#admin;
    } catch (err) {
      this.#admin = undefined;
      throw err;
    }
    for (const topic of new Set(parts.map((tp) => tp.topic))) {
      const [ends, committed] = await Promise.all([a.topicOffsets(topic), a.groupOffsets(groupId, topic)]);
      for (const tp of parts) {
        if (tp.topic !== topic) continue;
        const k = tpKeyOf(tp);
        if (!this.#assigned?.has(k) || this.#setAt.get(k) !== started.get(k)) continue;
        const end = ends.find((e) => e.partition === tp.partition);
        if (!end) continue;
        const c = committed.find((x) => x.partition === tp.partition)?.offset ?? -1;
        this.#set(tp, Math.max(0, end.high - (c >= 0 ? c : end.low)));
      }
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#refresh) clearInterval(this.#refresh);
    const a = this.#admin;
    this.#admin = undefined;
    await (await a?.catch(() => undefined))?.close();
  }
}

/**
 * Wraps consumer handlers with spans and batch metrics. The wrapped
 * `eachBatch` runs inside the batch span and hands the handler the batch's
 * `BatchTrace`; each record's span ends (with the batch's status) when the
 * handler settles, so the silver write of a bid is a span of that bid's trace.
 */
export function instrumentBatches(handlers: TracedHandlers, o: InstrumentOptions): InstrumentedHandlers {
  const m = batchInstruments(o.metrics);
  const lag = new LagSeries(o, m.lag);
  const wrapped: InstrumentedHandlers = {
    close: () => lag.close(),
    eachBatch: async (batch, ctx) => {
      const labels = { processor: o.processor, topic: batch.topic };
      // A zero series from the first batch on, so error ratios exist before the first error.
      m.failures.inc(labels, 0);
      m.begun.inc(labels);
      const started = performance.now();
      const begunIn = lag.generation;
      // Extract each record's context once: it parents the record's span and links the batch span.
      const root = context.active();
      const parents: (Context | undefined)[] = [];
      const links: Link[] = [];
      for (const r of batch.records) {
        const parent = r.headers?.traceparent ? contextFromHeaders(r.headers, root) : undefined;
        const sc = parent && trace.getSpanContext(parent);
        parents.push(sc && isSpanContextValid(sc) ? parent : undefined);
        if (sc && isSpanContextValid(sc) && links.length < MAX_LINKS) links.push({ context: sc });
      }
      const attrs = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.destination.name": batch.topic,
        "messaging.destination.partition.id": String(batch.partition),
        ...(o.groupId ? { "messaging.consumer.group.name": o.groupId } : {}),
      };
      const batchSpan = tracer().startSpan(`process ${batch.topic}`, {
        kind: SpanKind.CONSUMER,
        attributes: { ...attrs, "messaging.batch.message_count": batch.records.length },
        links,
      });
      // An unsampled trace (ratio sampling at high rates) gets no span, nor
      // does any record when spans are not exported: its context passes through.
      const spans = spansExported() ? recordSpans(batch, parents, attrs) : undefined;
      const traced = new RecordContexts(batch.records, parents, spans);
      let error: Error | undefined;
      try {
        await context.with(trace.setSpan(context.active(), batchSpan), () =>
          handlers.eachBatch(batch, ctx, traced),
        );
      } catch (err) {
        error = err as Error;
        m.failures.inc(labels);
        throw err;
      } finally {
        if (spans) for (const s of spans) if (s) endSpan(s, error);
        endSpan(batchSpan, error);
        if (!error) {
          m.size.observe(labels, batch.records.length);
          m.duration.observe(labels, (performance.now() - started) / 1000);
          m.consumed.inc(labels, batch.records.length);
          lag.batchDone(batch, begunIn);
        }
      }
    },
  };
  // Wrapped whether or not the processor listens to assignments (the
  // silver-writer does not): its lag series must follow them all the same.
  const inner = handlers.onAssignment?.bind(handlers);
  wrapped.onAssignment = async (next, revoked) => {
    lag.assign(next, revoked);
    await inner?.(next, revoked);
  };
  return wrapped;
}

/** One span per sampled record, a child of its producer's context; by index (undefined: none). */
function recordSpans(
  batch: RecordBatch,
  parents: readonly (Context | undefined)[],
  attrs: Readonly<Record<string, string>>,
): (Span | undefined)[] {
  const spans: (Span | undefined)[] = [];
  batch.records.forEach((r, i) => {
    const parent = parents[i];
    if (!parent || ((trace.getSpanContext(parent)?.traceFlags ?? 0) & TraceFlags.SAMPLED) === 0) {
      spans.push(undefined);
      return;
    }
    spans.push(
      tracer().startSpan(
        `process ${batch.topic}`,
        { kind: SpanKind.CONSUMER, attributes: { ...attrs, "messaging.kafka.offset": r.offset } },
        parent,
      ),
    );
  });
  return spans;
}

function endSpan(s: Span, error: Error | undefined): void {
  if (error) {
    s.recordException(error);
    s.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
  }
  s.end();
}
