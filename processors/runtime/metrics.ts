/**
 * Metrics of a Gavel process on the OpenTelemetry metrics SDK. A `Registry`
 * owns one OTel `MeterProvider` with two readers: a Prometheus reader whose
 * text exposition `render()` returns (served at `/metrics` by
 * processors/runtime/server.ts) and, when the standard `OTEL_*` variables
 * name an endpoint, a periodic OTLP/HTTP exporter. Counter, Gauge and
 * Histogram keep the small label-map API the processors call; underneath
 * they are OTel instruments (counters and histograms aggregate in the SDK,
 * gauges are observable gauges over the values set here).
 *
 * The registry is an object passed around, not a module-level singleton, so
 * two processors in one test process keep separate metrics.
 */
import type {
  Attributes,
  Meter,
  Counter as OtelCounter,
  Histogram as OtelHistogram,
} from "@opentelemetry/api";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { type IMetricReader, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { SCOPE, telemetryConfigFromEnv, telemetryResource } from "../../lib/telemetry.ts";

type Labels = Readonly<Record<string, string>>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

/**
 * UCUM unit of a metric from its Prometheus-style suffix (`_seconds` -> `s`,
 * `_bytes` -> `By`); counts are dimensionless (`1`).
 */
export function unitOf(name: string): string {
  if (/_seconds(_total)?$/.test(name)) return "s";
  if (/_bytes(_total)?$/.test(name)) return "By";
  if (/_ratio$/.test(name)) return "1";
  return "1";
}

export interface MetricOptions {
  /** UCUM unit; default from the name's suffix (see `unitOf`). */
  readonly unit?: string;
}

/** A monotonic count (OTel Counter; Prometheus `counter`, `_total` suffix). */
export class Counter {
  readonly name: string;
  readonly help: string;
  readonly #otel: OtelCounter;
  /** Running totals per label set, for `get` (tests and status pages); the SDK keeps its own. */
  readonly #totals = new Map<string, number>();
  constructor(meter: Meter, name: string, help: string, opts: MetricOptions = {}) {
    this.name = name;
    this.help = help;
    this.#otel = meter.createCounter(name, { description: help, unit: opts.unit ?? unitOf(name) });
  }
  inc(labels: Labels = {}, by = 1): void {
    if (!(by >= 0)) throw new RangeError(`counter ${this.name} can only grow, got ${by}`);
    this.#otel.add(by, labels as Attributes);
    const k = labelKey(labels);
    this.#totals.set(k, (this.#totals.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.#totals.get(labelKey(labels)) ?? 0;
  }
}

/** A value that goes up and down (OTel ObservableGauge reporting the values set here). */
export class Gauge {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  readonly #tracked = new Map<string, { labels: Labels; read: () => number }>();
  constructor(meter: Meter, name: string, help: string, opts: MetricOptions = {}) {
    this.name = name;
    this.help = help;
    meter
      .createObservableGauge(name, { description: help, unit: opts.unit ?? unitOf(name) })
      .addCallback((result) => {
        for (const { labels, value } of this.#values.values()) result.observe(value, labels as Attributes);
        for (const { labels, read } of this.#tracked.values()) result.observe(read(), labels as Attributes);
      });
  }
  /** Reports `read()` at every collection (e.g. a queue's length) instead of a value set here. */
  track(labels: Labels, read: () => number): void {
    this.#values.delete(labelKey(labels));
    this.#tracked.set(labelKey(labels), { labels, read });
  }
  set(labels: Labels, value: number): void {
    this.#tracked.delete(labelKey(labels));
    this.#values.set(labelKey(labels), { labels, value });
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    const cur = this.#values.get(k);
    if (cur) cur.value += by;
    else this.#values.set(k, { labels, value: by });
  }
  dec(labels: Labels = {}, by = 1): void {
    this.inc(labels, -by);
  }
  /** Stops reporting a label set (e.g. a partition that was revoked). */
  remove(labels: Labels): void {
    this.#values.delete(labelKey(labels));
    this.#tracked.delete(labelKey(labels));
  }
  /**
   * Whether a label set is reported now. The OTel SDK keeps exporting the
   * last value of every attribute set an asynchronous gauge ever observed
   * (cumulative temporality), so `Registry.render` drops the ones removed
   * here: a revoked partition's lag must not stay on /metrics for ever.
   */
  isLive(labels: Readonly<Record<string, unknown>>): boolean {
    const k = labelKey(labels as Labels);
    return this.#values.has(k) || this.#tracked.has(k);
  }
  get(labels: Labels = {}): number {
    const k = labelKey(labels);
    return this.#tracked.get(k)?.read() ?? this.#values.get(k)?.value ?? 0;
  }
}

/** Seconds buckets for request and batch latencies. */
export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets for record counts per batch. */
export const SIZE_BUCKETS = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/** A distribution with explicit bucket bounds (OTel Histogram; Prometheus `histogram`). */
export class Histogram {
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  readonly #otel: OtelHistogram;
  constructor(
    meter: Meter,
    name: string,
    help: string,
    buckets: readonly number[] = DEFAULT_BUCKETS,
    opts: MetricOptions = {},
  ) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
    this.#otel = meter.createHistogram(name, {
      description: help,
      unit: opts.unit ?? unitOf(name),
      advice: { explicitBucketBoundaries: [...this.buckets] },
    });
  }
  observe(labels: Labels, value: number): void {
    this.#otel.record(value, labels as Attributes);
  }
}

type Metric = Counter | Gauge | Histogram;

export interface RegistryOptions {
  /** service.name of the resource (OTEL_SERVICE_NAME wins). Default "gavel". */
  readonly serviceName?: string;
  /** Environment to read the OTEL_* settings from. Default process.env. */
  readonly env?: NodeJS.ProcessEnv;
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();
  readonly #prefix: string;
  readonly #provider: MeterProvider;
  readonly #prometheus: PrometheusExporter;
  readonly #serializer: PrometheusSerializer;
  /** The OTel meter behind this registry, for instruments the wrappers do not cover. */
  readonly meter: Meter;

  constructor(prefix = "gavel_", opts: RegistryOptions = {}) {
    this.#prefix = prefix;
    const cfg = telemetryConfigFromEnv(opts.serviceName ?? "gavel", opts.env);
    // The Prometheus reader only collects; /metrics is served by our fastify server.
    this.#prometheus = new PrometheusExporter({ preventServerStart: true });
    this.#serializer = new PrometheusSerializer("", false, undefined, false, true);
    const readers: IMetricReader[] = [this.#prometheus];
    if (cfg.otlpMetrics)
      readers.push(
        new PeriodicExportingMetricReader({
          exporter: new OTLPMetricExporter(),
          exportIntervalMillis: cfg.metricExportIntervalMs,
        }),
      );
    this.#provider = new MeterProvider({ resource: telemetryResource(cfg, opts.env), readers });
    this.meter = this.#provider.getMeter(SCOPE);
    this.meter
      .createObservableGauge(`${prefix}process_resident_memory_bytes`, {
        description: "Resident set size.",
        unit: "By",
      })
      .addCallback((r) => r.observe(process.memoryUsage().rss));
    this.meter
      .createObservableGauge(`${prefix}process_uptime_seconds`, {
        description: "Seconds since the process started.",
        unit: "s",
      })
      .addCallback((r) => r.observe(process.uptime()));
  }

  counter(name: string, help: string, opts?: MetricOptions): Counter {
    return this.#get(name, Counter, () => new Counter(this.meter, this.#prefix + name, help, opts));
  }
  gauge(name: string, help: string, opts?: MetricOptions): Gauge {
    return this.#get(name, Gauge, () => new Gauge(this.meter, this.#prefix + name, help, opts));
  }
  histogram(name: string, help: string, buckets?: readonly number[], opts?: MetricOptions): Histogram {
    return this.#get(
      name,
      Histogram,
      () => new Histogram(this.meter, this.#prefix + name, help, buckets, opts),
    );
  }
  #get<M extends Metric>(name: string, kind: abstract new (...args: never[]) => M, make: () => M): M {
    const m = this.#metrics.get(name);
    if (m === undefined) {
      const made = make();
      this.#metrics.set(name, made);
      return made;
    }
    if (!(m instanceof kind))
      throw new Error(`metric ${name} is already registered as a ${m.constructor.name}`);
    return m;
  }

  /** Prometheus text exposition format (version 0.0.4) of every metric. */
  async render(): Promise<string> {
    const { resourceMetrics } = await this.#prometheus.collect();
    const gauges = new Map<string, Gauge>();
    for (const m of this.#metrics.values()) if (m instanceof Gauge) gauges.set(m.name, m);
    for (const scope of resourceMetrics.scopeMetrics)
      for (const metric of scope.metrics) {
        const g = gauges.get(metric.descriptor.name);
        if (!g) continue;
        // Removed label sets (see Gauge.isLive); the SDK's arrays are rebuilt per collection.
        (metric as { dataPoints: unknown[] }).dataPoints = metric.dataPoints.filter((d) =>
          g.isLive(d.attributes),
        );
      }
    return this.#serializer.serialize(resourceMetrics);
  }

  /** Flushes the OTLP exporter (if any) and stops the readers. */
  async shutdown(): Promise<void> {
    await this.#provider.shutdown();
  }
}
