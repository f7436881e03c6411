/**
 * The pipeline's shared instruments, in one place so the dashboards, the
 * alert rules and docs/observability.md name the same series:
 *
 * - `pipelineMetrics` are the business counters (bids received, accepted,
 *   rejected by reason, fraud alerts by signal, auctions closed, end-to-end
 *   latency) and `countOutputs` / `observeEndToEnd` feed them from the
 *   records the processors already produce or write.
 * - `rollupMetrics` and `operatorMetrics` are the gold rollup's and the
 *   operator's.
 *
 * What every Kafka consumer reports about its batches (spans, batch
 * metrics, lag) is in batch-telemetry.ts.
 */
import type { Headers } from "../../lib/telemetry.ts";
import type { Counter, Gauge, Histogram, Registry } from "./metrics.ts";

/** End-to-end latency buckets, seconds (the streaming target is under 0.5 s). */
export const LATENCY_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

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
  const bids = { unit: "{bid}" };
  return {
    bidsReceived: r.counter("bids_received_total", "Bids acknowledged by Kafka at ingest, by source.", bids),
    bidsAccepted: r.counter("bids_accepted_total", "Bids accepted by the bid-processor (committed).", bids),
    bidsRejected: r.counter(
      "bids_rejected_total",
      "Bids rejected to the dead-letter topic by the bid-processor (committed), by reason.",
      bids,
    ),
    fraudAlerts: r.counter(
      "fraud_alerts_total",
      "Fraud signals that fired in alerts (an alert counts once per signal), by signal.",
      { unit: "{signal}" },
    ),
    fraudAlertBids: r.counter(
      "fraud_alert_bids_total",
      "Bids that raised a fraud alert, by quarantined.",
      bids,
    ),
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
 * writer just committed: now minus received_at and minus placed_at. Takes
 * the records' decoded values (the writer decoded each once, `Prepared.decoded`).
 */
export function observeEndToEnd(
  m: PipelineMetrics,
  outcome: "accepted" | "rejected",
  values: readonly Readonly<Record<string, unknown>>[],
  nowMs = Date.now(),
): void {
  const received = { since: "received", outcome };
  const placed = { since: "placed", outcome };
  for (const v of values) {
    observeSince(m, received, v.received_at, nowMs);
    observeSince(m, placed, v.placed_at, nowMs);
  }
}

function observeSince(
  m: PipelineMetrics,
  labels: { readonly since: string; readonly outcome: string },
  t: unknown,
  nowMs: number,
): void {
  if (typeof t !== "string") return;
  const ms = Date.parse(t);
  if (Number.isFinite(ms)) m.endToEnd.observe(labels, Math.max(0, nowMs - ms) / 1000);
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
