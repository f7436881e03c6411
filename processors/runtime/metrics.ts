/**
 * A small Prometheus registry: counters, gauges and histograms with labels,
 * rendered in the text exposition format (version 0.0.4) at `/metrics`.
 * Every value is a real count kept by the processor that owns the registry;
 * the registry is an object passed around, not a module-level singleton.
 */

type Labels = Readonly<Record<string, string>>;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(",");
}

function escapeLabel(v: string): string {
  return v.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function renderLabels(labels: Labels, extra?: Labels): string {
  const all = { ...labels, ...(extra ?? {}) };
  const keys = Object.keys(all);
  if (keys.length === 0) return "";
  return `{${keys.map((k) => `${k}="${escapeLabel(all[k] ?? "")}"`).join(",")}}`;
}

function fmt(n: number): string {
  if (n === Number.POSITIVE_INFINITY) return "+Inf";
  if (n === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(n);
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    const cur = this.#values.get(k);
    if (cur) cur.value += by;
    else this.#values.set(k, { labels, value: by });
  }
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.#values.values())
      lines.push(`${this.name}${renderLabels(labels)} ${fmt(value)}`);
    return lines.join("\n");
  }
}

export class Gauge implements Metric {
  readonly name: string;
  readonly help: string;
  readonly #values = new Map<string, { labels: Labels; value: number }>();
  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }
  set(labels: Labels, value: number): void {
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
  get(labels: Labels = {}): number {
    return this.#values.get(labelKey(labels))?.value ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.#values.values())
      lines.push(`${this.name}${renderLabels(labels)} ${fmt(value)}`);
    return lines.join("\n");
  }
}

export const DEFAULT_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Histogram implements Metric {
  readonly name: string;
  readonly help: string;
  readonly buckets: readonly number[];
  readonly #values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(name: string, help: string, buckets: readonly number[] = DEFAULT_BUCKETS) {
    this.name = name;
    this.help = help;
    this.buckets = [...buckets].sort((a, b) => a - b);
  }
  observe(labels: Labels, value: number): void {
    const k = labelKey(labels);
    let cur = this.#values.get(k);
    if (!cur) {
      cur = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.#values.set(k, cur);
    }
    for (let i = 0; i < this.buckets.length; i++) if (value <= (this.buckets[i] ?? 0)) cur.counts[i]! += 1;
    cur.sum += value;
    cur.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.#values.values()) {
      this.buckets.forEach((b, i) => {
        lines.push(`${this.name}_bucket${renderLabels(labels, { le: fmt(b) })} ${counts[i]}`);
      });
      lines.push(`${this.name}_bucket${renderLabels(labels, { le: "+Inf" })} ${count}`);
      lines.push(`${this.name}_sum${renderLabels(labels)} ${fmt(sum)}`);
      lines.push(`${this.name}_count${renderLabels(labels)} ${count}`);
    }
    return lines.join("\n");
  }
}

export class Registry {
  readonly #metrics = new Map<string, Metric>();
  readonly #prefix: string;
  constructor(prefix = "gavel_") {
    this.#prefix = prefix;
  }
  counter(name: string, help: string): Counter {
    return this.#get(name, () => new Counter(this.#prefix + name, help)) as Counter;
  }
  gauge(name: string, help: string): Gauge {
    return this.#get(name, () => new Gauge(this.#prefix + name, help)) as Gauge;
  }
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    return this.#get(name, () => new Histogram(this.#prefix + name, help, buckets)) as Histogram;
  }
  #get(name: string, make: () => Metric): Metric {
    let m = this.#metrics.get(name);
    if (!m) {
      m = make();
      this.#metrics.set(name, m);
    }
    return m;
  }
  /** Prometheus text exposition format. */
  render(): string {
    const mem = process.memoryUsage();
    const lines = [...this.#metrics.values()].map((m) => m.render());
    lines.push(
      `# HELP ${this.#prefix}process_resident_memory_bytes Resident set size.`,
      `# TYPE ${this.#prefix}process_resident_memory_bytes gauge`,
      `${this.#prefix}process_resident_memory_bytes ${mem.rss}`,
      `# HELP ${this.#prefix}process_uptime_seconds Seconds since the process started.`,
      `# TYPE ${this.#prefix}process_uptime_seconds gauge`,
      `${this.#prefix}process_uptime_seconds ${process.uptime()}`,
    );
    return `${lines.join("\n")}\n`;
  }
}
