/**
 * The pipeline's shared instruments, in one place so the dashboards, the
 * alert rules and docs/observability.md name the same series:
 *
 * - `instrumentBatches` wraps a consumer's handlers: one CONSUMER span per
 *   batch (linked to every record's producer span) and one per record (a
 *   child of the context in the record's headers, so one bid stays one trace
 *   across processors), batch size / duration / failures, records consumed
 *   and consumer lag per partition.
 * - `pipelineMetrics` are the business counters (bids received, accepted,
 *   rejected by reason, fraud alerts by signal, auctions closed, end-to-end
 *   latency) and `countOutputs` / `observeEndToEnd` feed them from the
 *   records the processors already produce or write.
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
  type Headers,
  SpanKind,
  SpanStatusCode,
  spansExported,
  traceHeaders,
  tracer,
} from "../../lib/telemetry.ts";
import type { Admin, ConsumerHandlers, KafkaRecord, TopicPartition } from "../kafka/transport.ts";
import { type Counter, type Gauge, type Histogram, type Registry, SIZE_BUCKETS } from "./metrics.ts";

/** End-to-end latency buckets, seconds (the streaming target is under 0.5 s). */
export const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

const recordSpans = new WeakMap<KafkaRecord, Span>();
const recordParents = new WeakMap<KafkaRecord, Context>();
/** The SDK keeps at most 128 links per span by default; extracting more is wasted work. */
const MAX_LINKS = 128;
const outputParents = new WeakMap<object, KafkaRecord>();

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
  readonly admin?: () => Promise<Pick<Admin, "topicOffsets" | "groupOffsets" | "close">>;
  /** Logs a failed seeding (the batches still set the gauge). */
  readonly warn?: (err: unknown, msg: string) => void;
  /** How often idle partitions' lag is read from the broker (with `admin`); default 15 s. */
  readonly lagRefreshMs?: number;
}

/** Instrumented handlers; `close()` stops the lag refresh and closes its admin client. */
export interface InstrumentedHandlers extends ConsumerHandlers {
  close(): Promise<void>;
}

/**
 * Wraps consumer handlers with spans and batch metrics. The wrapped
 * `eachBatch` runs inside the batch span; each record's span is reachable
 * with `recordContext(record)` / `recordHeaders(record)` while the batch
 * runs and ends (with the batch's status) when the handler settles, so the
 * silver write of a bid is a span of that bid's trace.
 */
export function instrumentBatches(handlers: ConsumerHandlers, o: InstrumentOptions): InstrumentedHandlers {
  const m = o.metrics;
  const size = m.histogram(
    "batch_records",
    "Records per consumed batch, by processor and topic.",
    SIZE_BUCKETS,
    {
      unit: "{record}",
    },
  );
  const duration = m.histogram(
    "batch_duration_seconds",
    "Time to handle one consumed batch (including its commit), by processor and topic.",
  );
  const failures = m.counter(
    "batch_failures_total",
    "Batches whose handler threw (retried), by processor and topic.",
  );
  const consumed = m.counter("records_consumed_total", "Records handled, by processor and topic.", {
    unit: "{record}",
  });
  const begun = m.counter(
    "batches_started_total",
    "Batches handed to the handler, by processor and topic (minus finished and failed ones: in flight).",
  );
  const lag = m.gauge(
    "consumer_lag_records",
    "Records behind the partition's high watermark after the last batch, by processor, topic and partition.",
    { unit: "{record}" },
  );
  const partLabels = (tp: TopicPartition) => ({
    ...(o.pipeline ? { pipeline: o.pipeline } : {}),
    processor: o.processor,
    topic: tp.topic,
    partition: String(tp.partition),
  });
  // Partitions assigned now, and those with a lag series: a batch of a
  // partition revoked meanwhile (it may finish after the rebalance) must not
  // leave a series behind, or the HPA would read its last lag for ever and
  // never scale down.
  let assigned: Set<string> | undefined;
  const withSeries = new Map<string, TopicPartition>();
  const key = (tp: TopicPartition) => `${tp.topic}\u0000${tp.partition}`;
  // Bumped by every assignment and batch of a partition: a seeding read
  // started before either is older than the gauge and must not overwrite it.
  const setAt = new Map<string, number>();
  let stamp = 0;
  let generation = 0;
  const setLag = (tp: TopicPartition, value: number) => {
    lag.set(partLabels(tp), value);
    withSeries.set(key(tp), { topic: tp.topic, partition: tp.partition });
  };
  // One admin client for the reads, opened on first use, closed by `close()`.
  let admin: Promise<Pick<Admin, "topicOffsets" | "groupOffsets" | "close">> | undefined;
  let closed = false;
  const seed = async (parts: readonly TopicPartition[]): Promise<void> => {
    if (!o.admin || !o.groupId || parts.length === 0 || closed) return;
    const groupId = o.groupId;
    const started = new Map(parts.map((tp) => [key(tp), setAt.get(key(tp))]));
    admin ??= o.admin();
    let a: Awaited<typeof admin>;
    try {
      a = await admin;
    } catch (err) {
      admin = undefined;
      throw err;
    }
    for (const topic of new Set(parts.map((tp) => tp.topic))) {
      const [ends, committed] = await Promise.all([a.topicOffsets(topic), a.groupOffsets(groupId, topic)]);
      for (const tp of parts) {
        if (tp.topic !== topic) continue;
        const k = key(tp);
        if (!assigned?.has(k) || setAt.get(k) !== started.get(k)) continue;
        const end = ends.find((e) => e.partition === tp.partition);
        if (!end) continue;
        const c = committed.find((x) => x.partition === tp.partition)?.offset ?? -1;
        setLag(tp, Math.max(0, end.high - (c >= 0 ? c : end.low)));
      }
    }
  };
  // Idle partitions get no batches, so nothing corrects a lag set by their
  // last one (a stale high watermark; seen on the local cluster: 864 behind
  // on a partition whose committed offset was at the log end, and the HPA
  // held 3 replicas for it). Every `lagRefreshMs` the gauge of each assigned
  // partition without a batch since the read began is set from the broker.
  const refresh =
    o.admin && o.groupId
      ? setInterval(() => {
          if (!assigned || assigned.size === 0) return;
          const parts = [...assigned].map((k) => {
            const [topic, partition] = k.split("\u0000");
            return { topic: topic as string, partition: Number(partition) };
          });
          seed(parts).catch((err) => o.warn?.(err, "reading the consumer lag from the broker failed"));
        }, o.lagRefreshMs ?? 15_000)
      : undefined;
  refresh?.unref();
  const wrapped: InstrumentedHandlers = {
    close: async () => {
      closed = true;
      if (refresh) clearInterval(refresh);
      const a = admin;
      admin = undefined;
      await (await a?.catch(() => undefined))?.close();
    },
    eachBatch: async (batch, ctx) => {
      const labels = { processor: o.processor, topic: batch.topic };
      // A zero series from the first batch on, so error ratios exist before the first error.
      failures.inc(labels, 0);
      begun.inc(labels);
      const started = performance.now();
      const begunIn = generation;
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
      const spans: Span[] = [];
      const exported = spansExported();
      batch.records.forEach((r, i) => {
        const parent = parents[i];
        if (!parent) return;
        // An unsampled trace (ratio sampling at high rates) gets no span, nor
        // does any record when spans are not exported: its context passes through.
        if (!exported || ((trace.getSpanContext(parent)?.traceFlags ?? 0) & TraceFlags.SAMPLED) === 0) {
          recordParents.set(r, parent);
          return;
        }
        const s = tracer().startSpan(
          `process ${batch.topic}`,
          { kind: SpanKind.CONSUMER, attributes: { ...attrs, "messaging.kafka.offset": r.offset } },
          parent,
        );
        recordSpans.set(r, s);
        spans.push(s);
      });
      let error: Error | undefined;
      try {
        await context.with(trace.setSpan(context.active(), batchSpan), () => handlers.eachBatch(batch, ctx));
      } catch (err) {
        error = err as Error;
        failures.inc(labels);
        throw err;
      } finally {
        for (const s of [...spans, batchSpan]) {
          if (error) {
            s.recordException(error);
            s.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
          }
          s.end();
        }
        if (!error) {
          size.observe(labels, batch.records.length);
          duration.observe(labels, (performance.now() - started) / 1000);
          consumed.inc(labels, batch.records.length);
          const last = batch.records.at(-1);
          // A batch that began before the latest assignment read a stale high
          // watermark (its records may even be redone by the new generation):
          // it must not overwrite what the assignment's seeding or a newer batch set.
          if (last && generation === begunIn && (assigned === undefined || assigned.has(key(batch)))) {
            setAt.set(key(batch), ++stamp);
            setLag(batch, Math.max(0, batch.highWatermark - last.offset - 1));
          }
        }
      }
    },
  };
  // Wrapped whether or not the processor listens to assignments (the
  // silver-writer does not): its lag series must follow them all the same.
  const inner = handlers.onAssignment?.bind(handlers);
  wrapped.onAssignment = async (next, revoked) => {
    assigned = new Set(next.map(key));
    generation += 1;
    for (const [k, tp] of withSeries) {
      if (assigned.has(k)) continue;
      lag.remove(partLabels(tp));
      withSeries.delete(k);
    }
    for (const tp of revoked) lag.remove(partLabels(tp));
    // Every assigned partition, kept ones too: a batch of the previous
    // generation may have set a lag that the new one never corrects (nothing
    // left to fetch). Not awaited: the processor's own assignment work (a state
    // rebuild) must not wait for it.
    for (const tp of next) setAt.set(key(tp), ++stamp);
    seed(next).catch((err) => o.warn?.(err, "reading the lag of newly assigned partitions failed"));
    await inner?.(next, revoked);
  };
  return wrapped;
}

/** The context of a record's span (while its batch runs), else the context in its headers. */
export function recordContext(r: KafkaRecord): Context {
  const s = recordSpans.get(r);
  if (s) return trace.setSpan(context.active(), s);
  return recordParents.get(r) ?? contextFromHeaders(r.headers);
}

/** Headers for a record produced because of `r`: continues `r`'s trace. */
export function recordHeaders(r: KafkaRecord): Record<string, string> {
  return traceHeaders(recordContext(r));
}

/** Remembers that `outputs` were derived from `input` (see `outputHeaders`). Returns `outputs`. */
export function deriveFrom<T extends object>(outputs: readonly T[], input: KafkaRecord): readonly T[] {
  for (const o of outputs) outputParents.set(o, input);
  return outputs;
}

/** Trace headers of an output registered with `deriveFrom`, or of the active context. */
export function outputHeaders(output: object): Record<string, string> {
  const input = outputParents.get(output);
  return input ? recordHeaders(input) : traceHeaders();
}

/** The business instruments of the pipeline. */
export interface PipelineMetrics {
  readonly bidsReceived: Counter;
  readonly bidsAccepted: Counter;
  readonly bidsRejected: Counter;
  readonly fraudAlerts: Counter;
  readonly fraudAlertBids: Counter;
  readonly auctionsClosed: Counter;
  readonly endToEnd: Histogram;
}

export function pipelineMetrics(r: Registry): PipelineMetrics {
  return {
    bidsReceived: r.counter("bids_received_total", "Bids acknowledged by Kafka at ingest, by source.", {
      unit: "{bid}",
    }),
    bidsAccepted: r.counter("bids_accepted_total", "Bids accepted by the bid-processor (committed).", {
      unit: "{bid}",
    }),
    bidsRejected: r.counter(
      "bids_rejected_total",
      "Bids rejected to the dead-letter topic by the bid-processor (committed), by reason.",
      { unit: "{bid}" },
    ),
    fraudAlerts: r.counter(
      "fraud_alerts_total",
      "Fraud signals that fired in alerts (an alert counts once per signal), by signal.",
      { unit: "{signal}" },
    ),
    fraudAlertBids: r.counter("fraud_alert_bids_total", "Bids that raised a fraud alert, by quarantined.", {
      unit: "{bid}",
    }),
    auctionsClosed: r.counter("auctions_closed_total", "Auctions closed, by outcome (sold, unsold).", {
      unit: "{auction}",
    }),
    endToEnd: r.histogram(
      "bid_end_to_end_seconds",
      "From a bid's received_at (ingest) or placed_at (client) to its silver commit, by since and outcome.",
      LATENCY_BUCKETS,
    ),
  };
}

/** Counts what the bid-processor committed: call after its transaction commits. */
export function countOutputs(
  m: PipelineMetrics,
  outputs: readonly { readonly topic: string; readonly value: object }[],
): void {
  // Tallied first, one increment per label set: an increment costs the OTel
  // SDK an attribute hash, and a batch has thousands of outputs but a few label sets.
  let accepted = 0;
  const tally = new Map<Counter, Map<string, { labels: Record<string, string>; n: number }>>();
  const add = (c: Counter, name: string, value: string) => {
    let byValue = tally.get(c);
    if (!byValue) {
      byValue = new Map();
      tally.set(c, byValue);
    }
    const t = byValue.get(value);
    if (t) t.n += 1;
    else byValue.set(value, { labels: { [name]: value }, n: 1 });
  };
  for (const o of outputs) {
    const v = o.value as Record<string, unknown>;
    switch (o.topic) {
      case "bidsAccepted":
        accepted += 1;
        break;
      case "bidsRejected":
        add(m.bidsRejected, "reason", typeof v.reason === "string" ? v.reason : "unknown");
        break;
      case "fraudAlerts": {
        add(m.fraudAlertBids, "quarantined", String(v.quarantined === true));
        const signals = Array.isArray(v.signals) ? (v.signals as { name?: unknown }[]) : [];
        for (const s of signals)
          add(m.fraudAlerts, "signal", typeof s.name === "string" ? s.name : "unknown");
        break;
      }
      case "transactions":
        add(m.auctionsClosed, "outcome", v.winner_id ? "sold" : "unsold");
        break;
    }
  }
  if (accepted > 0) m.bidsAccepted.inc({}, accepted);
  for (const [c, byValue] of tally) for (const t of byValue.values()) c.inc(t.labels, t.n);
}

/**
 * Observes the end-to-end latency of bids (accepted or rejected) the silver
 * writer just committed: now minus received_at and minus placed_at.
 */
export function observeEndToEnd(
  m: PipelineMetrics,
  outcome: "accepted" | "rejected",
  records: readonly KafkaRecord[],
  nowMs = Date.now(),
): void {
  for (const r of records) {
    if (r.value === null) continue;
    let v: { received_at?: unknown; placed_at?: unknown };
    try {
      v = JSON.parse(r.value.toString("utf8")) as typeof v;
    } catch {
      continue; // unusable records are counted by the writer
    }
    for (const [since, t] of [
      ["received", v.received_at],
      ["placed", v.placed_at],
    ] as const) {
      if (typeof t !== "string") continue;
      const ms = Date.parse(t);
      if (Number.isFinite(ms)) m.endToEnd.observe({ since, outcome }, Math.max(0, nowMs - ms) / 1000);
    }
  }
}

/** Instruments of the gold rollup (a Job: they reach Prometheus through OTLP, or /metrics while it runs). */
export interface RollupMetrics {
  readonly runs: Counter;
  readonly duration: Histogram;
  readonly rows: Counter;
  readonly lastSuccess: Gauge;
}

export function rollupMetrics(r: Registry): RollupMetrics {
  const m = {
    runs: r.counter(
      "rollup_runs_total",
      "Rollup runs of a day, by status (succeeded, partial, failed, skipped).",
      {
        unit: "{run}",
      },
    ),
    duration: r.histogram(
      "rollup_duration_seconds",
      "Duration of one day's rollup (extract, checks, compute, write, upload), by status.",
      [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
    ),
    rows: r.counter("rollup_rows_total", "Gold rows written, by table.", { unit: "{row}" }),
    lastSuccess: r.gauge(
      "rollup_last_success_timestamp_seconds",
      "Unix time of the last successful (or partial) rollup of a day by this process.",
      { unit: "s" },
    ),
  };
  // Known statuses start at 0, so rate() and the "rollup failed" alert see a series before the first failure.
  for (const status of ["succeeded", "partial", "failed", "skipped"]) m.runs.inc({ status }, 0);
  return m;
}

/** Records one day's rollup result. */
export function recordRollup(
  m: RollupMetrics,
  r: { status: string; durationMs: number; rows: Readonly<Partial<Record<string, number>>> },
  nowMs = Date.now(),
): void {
  m.runs.inc({ status: r.status });
  m.duration.observe({ status: r.status }, r.durationMs / 1000);
  for (const [table, n] of Object.entries(r.rows)) if (n !== undefined) m.rows.inc({ table }, n);
  if (r.status === "succeeded" || r.status === "partial") m.lastSuccess.set({}, nowMs / 1000);
}

/** Instruments of the operator's controller. */
export interface OperatorMetrics {
  readonly reconciles: Counter;
  readonly errors: Counter;
  readonly duration: Histogram;
  readonly queueDepth: Gauge;
  readonly leader: Gauge;
}

export function operatorMetrics(r: Registry): OperatorMetrics {
  const m = {
    reconciles: r.counter(
      "operator_reconcile_total",
      "Reconciles of AuctionPipelines, by result (success, requeue, error).",
      {
        unit: "{reconcile}",
      },
    ),
    errors: r.counter(
      "operator_reconcile_errors_total",
      "Failed reconciles, by kind (retriable: retried with backoff; terminal: waits for a spec change).",
      { unit: "{reconcile}" },
    ),
    duration: r.histogram("operator_reconcile_duration_seconds", "Duration of one reconcile, by result."),
    queueDepth: r.gauge("operator_queue_depth", "Keys waiting in the work queue.", { unit: "{key}" }),
    leader: r.gauge("operator_leader", "1 while this replica holds the leader Lease, else 0.", { unit: "1" }),
  };
  for (const result of ["success", "requeue", "error"]) m.reconciles.inc({ result }, 0);
  for (const kind of ["retriable", "terminal"]) m.errors.inc({ kind }, 0);
  m.queueDepth.set({}, 0);
  m.leader.set({}, 0);
  return m;
}

export type { Headers };
