/**
 * The benchmarks themselves: ingest HTTP, bid-processor, silver-writer and
 * end to end. Each returns figures; none asserts anything.
 */
import { cpus } from "node:os";
import { SCHEMA } from "../api/events/types.ts";
import type { OutMessage } from "../processors/kafka/transport.ts";
import type { BenchClient } from "./lib.ts";
import {
  type Auctions,
  type BenchContext,
  type BenchPipeline,
  bidFor,
  cpuSeconds,
  createPipeline,
  median,
  percentile,
  produceAuctions,
  type RunningChild,
  round,
  send,
  servicePids,
  sleep,
  startProcessor,
  until,
} from "./lib.ts";
import { closedLoop, HttpClient, pacedLoop } from "./load.ts";

export interface Sizes {
  /** Seconds per timed HTTP run. */
  readonly seconds: number;
  /** Timed runs per figure (the median is reported). */
  readonly runs: number;
  /** Bids pre-filled for the bid-processor / silver-writer runs. */
  readonly bids: number;
  readonly auctions: number;
  readonly partitions: number;
}

export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly runs: number;
  readonly [extra: string]: unknown;
}

export const fig = (
  name: string,
  values: readonly number[],
  unit: string,
  extra: Record<string, unknown> = {},
): Figure => ({
  name,
  value: round(median(values), unit === "ms" ? 1 : 0),
  unit,
  runs: values.length,
  samples: values.map((v) => round(v, 1)),
  ...extra,
});

// ---------------------------------------------------------------------------
// Ingest

export async function benchIngest(
  ctx: BenchContext,
  s: Sizes,
): Promise<{ figures: Figure[]; rssMiB: number }> {
  const p = await createPipeline(ctx, "ingest", s.partitions);
  const child = await startProcessor(ctx, "ingest", p);
  const http = new HttpClient(child.url, 64);
  const a: Auctions = {
    ids: Array.from({ length: s.auctions }, (_, i) => `ingest-a${i}`),
    startPrice: 1000,
    increment: 10,
  };
  let n = 0;
  const one = () => JSON.stringify(bidFor(a, n++, Date.now(), `ing-${ctx.id}`));
  const batch = (count: number) => {
    const bids = [];
    for (let i = 0; i < count; i++) bids.push(bidFor(a, n++, Date.now(), `ingb-${ctx.id}`));
    return JSON.stringify({ bids });
  };
  const ms = s.seconds * 1000;
  try {
    // Warm-up: JIT, connections, producer metadata.
    await closedLoop(http, {
      path: "/v1/bids",
      concurrency: 8,
      durationMs: 1000,
      maxRequests: 20_000,
      body: one,
    });
    const reqs: number[] = [];
    const p50: number[] = [];
    const p99: number[] = [];
    for (let r = 0; r < s.runs; r++) {
      const res = await closedLoop(http, {
        path: "/v1/bids",
        concurrency: 16,
        durationMs: ms,
        maxRequests: 2_000_000,
        body: one,
      });
      reqs.push((res.ok / res.elapsedMs) * 1000);
      p50.push(percentile(res.latencies, 50));
      p99.push(percentile(res.latencies, 99));
      if (res.errors > 0) ctx.logger.warn({ errors: res.errors }, "ingest single: non-2xx answers");
    }
    const bps: number[] = [];
    const bp99: number[] = [];
    for (let r = 0; r < s.runs; r++) {
      const res = await closedLoop(http, {
        path: "/v1/bids:batch",
        concurrency: 4,
        durationMs: ms,
        maxRequests: 200_000,
        body: () => batch(500),
      });
      bps.push((res.ok * 500 * 1000) / res.elapsedMs);
      bp99.push(percentile(res.latencies, 99));
      if (res.errors > 0) ctx.logger.warn({ errors: res.errors }, "ingest batch: non-2xx answers");
    }
    return {
      figures: [
        fig("ingest_single_req_per_s", reqs, "req/s", { concurrency: 16 }),
        fig("ingest_p50_ms", p50, "ms", { endpoint: "/v1/bids", concurrency: 16 }),
        fig("ingest_p99_ms", p99, "ms", { endpoint: "/v1/bids", concurrency: 16 }),
        fig("ingest_batch_bids_per_s", bps, "bids/s", { batch: 500, concurrency: 4 }),
        fig("ingest_batch_p99_ms", bp99, "ms", { batch: 500, concurrency: 4 }),
      ],
      rssMiB: child.peakRssMiB(),
    };
  } finally {
    http.close();
    await child.stop();
    await p.drop();
  }
}

// ---------------------------------------------------------------------------
// Bid-processor and silver-writer on pre-filled topics

/** Bids straight into the bids topic, as ingest writes them. */
async function produceBids(ctx: BenchContext, p: BenchPipeline, a: Auctions, count: number): Promise<void> {
  const tag = p.pipeline.metadata.name;
  for (let i = 0; i < count; i += 2000) {
    const now = Date.now();
    const messages: OutMessage[] = [];
    for (let n = i; n < Math.min(count, i + 2000); n++) {
      const b = bidFor(a, n, now, tag);
      messages.push({
        key: b.auction_id,
        value: JSON.stringify({
          schema: SCHEMA.bid,
          ...b,
          received_at: new Date(now).toISOString(),
          source: "api",
        }),
      });
    }
    await send(ctx, p.topics.bids.name, messages);
  }
}

/**
 * Throughput of a processor from its own counter, sampled every 50 ms: the
 * rate between the samples where `metric` first passed 10% and 90% of
 * `target` (or the first sample after ready, when it was already past 10%),
 * so start-up, state rebuild and a straggling last partition are left out.
 * `rateMetric` (default `metric`) is what is counted in that window.
 */
/** Metric names summed (a `gavel_` prefix is implied) and the labels their samples must have. */
interface Counter {
  readonly names: readonly string[];
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A processor's rate through a pre-filled backlog: `done` reaches `target`
 * when the backlog is finished, `rate` is what the figure counts.
 *
 * From the request time of the last sample in which the processor had not
 * started a batch yet (`batches_started_total`, counted before the handler
 * runs) to the answer time of the first sample with everything done:
 * start-up and state rebuild are left out, the whole backlog is in, and a
 * sample answered late by a busy processor only lengthens the window.
 * (Earlier versions took the rate between two samples of one counter; a
 * processor that took the whole quick-mode backlog in one round of
 * concurrent batches, before the first sample, looked ten times slower than
 * it was.)
 */
async function rateFromMetric(
  child: RunningChild,
  c: { done: Counter; rate: Counter },
  target: number,
  timeoutMs: number,
): Promise<{ perS: number; done: number; seconds: number }> {
  const sum = async (k: Counter) => {
    let n = 0;
    for (const name of k.names) n += await child.metric(name, k.labels ?? {});
    return n;
  };
  const begun: Counter = { names: ["batches_started_total"] };
  const sample = async () => {
    const t = performance.now();
    const started = await sum(begun);
    const done = await sum(c.done);
    const r = await sum(c.rate);
    return { t, started, done, r, after: performance.now() };
  };
  let start = await sample();
  if (start.started > 0)
    throw new Error(`${child.name} had started consuming at the first sample; cannot time it`);
  let last = start;
  const ok = await until(
    async () => {
      last = await sample();
      if (last.started === 0) start = last;
      return last.done >= target;
    },
    timeoutMs,
    20,
  );
  if (!ok)
    throw new Error(`${child.name}: ${last.done} of ${target} records finished within ${timeoutMs} ms`);
  const seconds = (last.after - start.t) / 1000;
  return { perS: seconds > 0 ? (last.r - start.r) / seconds : Number.NaN, done: last.r - start.r, seconds };
}

export interface StageRun {
  readonly bidProcessorPerS: number;
  readonly silverRowsPerS: number;
  readonly rss: Record<string, number>;
}

/** One run: pre-fill, bid-processor to the end (measured), then silver-writer on its outputs (measured). */
export async function benchStagesOnce(
  ctx: BenchContext,
  s: Sizes,
  client: BenchClient,
  run: number,
): Promise<StageRun> {
  const p = await createPipeline(ctx, `st-${client}-${run}`, s.partitions);
  try {
    const a = await produceAuctions(ctx, p, s.auctions);
    // The auctions are known before the bids arrive (as in production): a first
    // start takes them in (their price snapshots are its state), then the bids
    // are written and a second start is timed on them.
    const first = await startProcessor(ctx, "bid-processor", p, { client });
    try {
      const ok = await until(
        async () =>
          (await first.metric("bid_processor_records_out_total", { topic: p.topics.prices.name })) >=
          s.auctions,
        120_000,
      );
      if (!ok) throw new Error("bid-processor did not take in the auctions within 120 s");
    } finally {
      await first.stop();
    }
    await produceBids(ctx, p, a, s.bids);
    const bp = await startProcessor(ctx, "bid-processor", p, { client, serverOnly: true });
    let out: number;
    let bpRate: number;
    const rss: Record<string, number> = {};
    try {
      // Bids decided and committed (each ends accepted or rejected, counted after its transaction).
      const decided = { names: ["bids_accepted_total", "bids_rejected_total"] };
      const r = await rateFromMetric(bp, { done: decided, rate: decided }, s.bids, 600_000);
      bpRate = r.perS;
      // Outputs are counted after their transaction committed.
      await sleep(300);
      out = await bp.metric("bid_processor_records_out_total");
      rss["bid-processor"] = bp.peakRssMiB();
    } finally {
      await bp.stop();
    }
    const sw = await startProcessor(ctx, "silver-writer", p, { client, serverOnly: true });
    try {
      // Records it reads: the bid-processor's outputs plus the auctions.
      const records = { names: ["silver_writer_records_total"] };
      const r = await rateFromMetric(
        sw,
        { done: records, rate: { names: ["silver_writer_rows_total"] } },
        out + s.auctions,
        600_000,
      );
      rss["silver-writer"] = sw.peakRssMiB();
      return { bidProcessorPerS: bpRate, silverRowsPerS: r.perS, rss };
    } finally {
      await sw.stop();
    }
  } finally {
    await p.drop();
  }
}

// ---------------------------------------------------------------------------
// End to end: HTTP -> ingest -> Kafka -> bid-processor -> Kafka -> silver-writer -> PostgreSQL

export interface E2eResult {
  readonly figures: Figure[];
  readonly rss: Record<string, number>;
}

interface Latency {
  readonly rows: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  /** Medians of the legs, ms: placed -> received (HTTP + ingest), received -> accepted (Kafka + bid-processor decision), accepted -> written (transaction commit + Kafka + silver-writer). */
  readonly legs: { ingest: number; decide: number; write: number };
}

/** Placed (the client's clock at send) to the silver row's write (written_at, the writer's transaction time). */
async function latencyOf(ctx: BenchContext, tag: string): Promise<Latency> {
  const r = await ctx.pool.query<{
    n: string;
    p50: number;
    p95: number;
    p99: number;
    ingest: number;
    decide: number;
    write: number;
  }>(
    `SELECT count(*) AS n,
            percentile_disc(0.50) WITHIN GROUP (ORDER BY ms) AS p50,
            percentile_disc(0.95) WITHIN GROUP (ORDER BY ms) AS p95,
            percentile_disc(0.99) WITHIN GROUP (ORDER BY ms) AS p99,
            percentile_disc(0.50) WITHIN GROUP (ORDER BY ingest) AS ingest,
            percentile_disc(0.50) WITHIN GROUP (ORDER BY decide) AS decide,
            percentile_disc(0.50) WITHIN GROUP (ORDER BY write) AS write
     FROM (SELECT extract(epoch FROM written_at - placed_at) * 1000 AS ms,
                  extract(epoch FROM received_at - placed_at) * 1000 AS ingest,
                  extract(epoch FROM accepted_at - received_at) * 1000 AS decide,
                  extract(epoch FROM written_at - accepted_at) * 1000 AS write
           FROM silver.bids WHERE bid_id LIKE $1) x`,
    [`${tag}-%`],
  );
  const row = r.rows[0];
  return {
    rows: Number(row?.n ?? 0),
    p50: Number(row?.p50),
    p95: Number(row?.p95),
    p99: Number(row?.p99),
    legs: { ingest: Number(row?.ingest), decide: Number(row?.decide), write: Number(row?.write) },
  };
}

async function silverCount(ctx: BenchContext, tag: string): Promise<number> {
  const r = await ctx.pool.query<{ n: string }>(
    `SELECT (SELECT count(*) FROM silver.bids WHERE bid_id LIKE $1)
          + (SELECT count(*) FROM silver.bid_rejections WHERE bid_id LIKE $1) AS n`,
    [`${tag}-%`],
  );
  return Number(r.rows[0]?.n ?? 0);
}

/**
 * The end-to-end pipeline of one bench: its own topics and auctions,
 * `replicas` silver-writers and bid-processors (one consumer group each,
 * every replica its own process, instance id and HTTP port) and one ingest,
 * started in that order, and the bids sent to it.
 */
interface E2ePipeline {
  /** The pipeline's bids topic. */
  readonly bidsTopic: string;
  readonly children: RunningChild[];
  readonly http: HttpClient;
  /** A batch body of `count` bids tagged `tag`, numbered from the stream's position + `first`. */
  body(tag: string): (first: number, count: number, now: number) => string;
  /** Moves the stream's position on by `k` bids (after a run that sent them). */
  advance(k: number): void;
  /** Waits (at most 120 s) until `expected` rows tagged `tag` are in silver. */
  drain(tag: string, expected: number): Promise<void>;
  /** 2 s at 500 bids/s (JIT, connections, first transactions), drained. */
  warmUp(): Promise<void>;
  /** Stops the processors and deletes the topics. */
  close(): Promise<void>;
}

async function startE2e(
  ctx: BenchContext,
  s: Sizes,
  suffix: string,
  client: BenchClient,
  replicas: number,
): Promise<E2ePipeline> {
  const p = await createPipeline(ctx, suffix, s.partitions);
  const children: RunningChild[] = [];
  let http: HttpClient | undefined;
  const close = async () => {
    http?.close();
    for (const c of [...children].reverse()) await c.stop().catch(() => undefined);
    await p.drop();
  };
  try {
    const a = await produceAuctions(ctx, p, s.auctions);
    for (let r = 0; r < replicas; r++)
      children.push(await startProcessor(ctx, "silver-writer", p, { client }));
    for (let r = 0; r < replicas; r++)
      children.push(await startProcessor(ctx, "bid-processor", p, { client }));
    const ingest = await startProcessor(ctx, "ingest", p, { client });
    children.push(ingest);
    const h = new HttpClient(ingest.url, 32);
    http = h;
    // One counter across runs: each auction's amounts keep rising, so bids stay acceptable.
    let n = 0;
    const body = (tag: string) => (first: number, count: number, now: number) => {
      const bids = [];
      for (let i = 0; i < count; i++) bids.push(bidFor(a, n + first + i, now, tag));
      return JSON.stringify({ bids });
    };
    const drain = async (tag: string, expected: number) => {
      const ok = await until(async () => (await silverCount(ctx, tag)) >= expected, 120_000, 250);
      if (!ok)
        ctx.logger.warn({ tag, expected, got: await silverCount(ctx, tag) }, "e2e: not drained in 120 s");
    };
    let warmUps = 0;
    return {
      bidsTopic: p.topics.bids.name,
      children,
      http: h,
      body,
      advance: (k) => {
        n += k;
      },
      drain,
      async warmUp() {
        const tag = `w${warmUps++ || ""}-${suffix}-${ctx.id}`;
        const r = await pacedLoop(h, {
          path: "/v1/bids:batch",
          rate: 500,
          durationMs: 2000,
          batchSize: 100,
          maxInFlight: 8,
          body: body(tag),
        });
        n += r.sent;
        await drain(tag, r.accepted);
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

interface Saturation {
  /** Per run: accepted rows / (last written_at - first placed_at). */
  readonly rates: number[];
  /** CPU ms per 1,000 accepted bids over all runs, by process name (replicas of one name summed). */
  readonly perK: Record<string, number>;
  readonly totalCpuMsPer1k: number;
  /**
   * How the bid-processors' work was cut over the runs (replicas summed):
   * Kafka transactions and consumed batches of the bids topic per 1,000
   * accepted bids; each transaction costs ~5 requests whatever its size.
   */
  readonly bidProcessor: { transactionsPer1k: number; bidsBatchesPer1k: number };
}

/**
 * `s.runs` closed loops of 500-bid batches as fast as ingest takes them,
 * each drained, then the rate at which rows reached silver: the most the
 * pipeline sustains; and the CPU of every process on the path meanwhile.
 */
async function saturation(ctx: BenchContext, s: Sizes, e: E2ePipeline, label: string): Promise<Saturation> {
  const rates: number[] = [];
  // CPU per 1,000 bids of every process on the path, over the saturation runs.
  const svc = servicePids();
  const meters: [string, () => number][] = [
    ...e.children.map((c): [string, () => number] => [c.name, () => cpuSeconds(c.pid)]),
    ...(svc.kafka ? [["kafka", () => cpuSeconds(svc.kafka as number)] as [string, () => number]] : []),
    ...(svc.postgres
      ? [["postgres", () => cpuSeconds(svc.postgres as number, true)] as [string, () => number]]
      : []),
    ["load generator (bench)", () => process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6],
  ];
  const cpu = new Map<string, number>(meters.map(([k]) => [k, 0]));
  const deciders = e.children.filter((c) => c.name === "bid-processor");
  /** Transactions and bids batches of every bid-processor so far. */
  const cuts = async () => {
    let tx = 0;
    let batches = 0;
    for (const c of deciders) {
      tx += await c.metric("bid_processor_transactions_total", { result: "commit" });
      batches += await c.metric("batch_records_count", { processor: "bid-processor", topic: e.bidsTopic });
    }
    return { tx, batches };
  };
  const cutsBefore = await cuts();
  let satBids = 0;
  for (let run = 0; run < s.runs; run++) {
    const tag = `${label}-${run}-${ctx.id}`;
    const cpuBefore = meters.map(([, f]) => f());
    let m = 0;
    const res = await closedLoop(e.http, {
      path: "/v1/bids:batch",
      concurrency: 6,
      durationMs: s.seconds * 1000,
      maxRequests: 20_000,
      body: () => {
        const b = e.body(tag)(m, 500, Date.now());
        m += 500;
        return b;
      },
    });
    e.advance(m);
    await e.drain(tag, res.ok * 500);
    const r = await ctx.pool.query<{ n: string; s: number }>(
      `SELECT count(*) AS n, extract(epoch FROM max(written_at) - min(placed_at)) AS s
       FROM silver.bids WHERE bid_id LIKE $1`,
      [`${tag}-%`],
    );
    const row = r.rows[0];
    meters.forEach(([k, f], i) => {
      cpu.set(k, (cpu.get(k) ?? 0) + f() - (cpuBefore[i] ?? 0));
    });
    satBids += Number(row?.n ?? 0);
    rates.push(Number(row?.n ?? 0) / Number(row?.s ?? Number.NaN));
    ctx.logger.info(
      {
        label,
        run,
        offeredPerS: Math.round((res.ok * 500 * 1000) / res.elapsedMs),
        rows: row?.n,
        seconds: row?.s,
      },
      "e2e saturation run",
    );
  }
  // Where the CPU goes: ms of CPU per 1,000 bids.
  const perK: Record<string, number> = {};
  for (const [k, v] of cpu) perK[k] = round((v * 1e6) / Math.max(1, satBids));
  const totalCpuMsPer1k = Object.values(perK).reduce((a, b) => a + b, 0);
  const cutsAfter = await cuts();
  const per1k = (n: number) => round((n * 1000) / Math.max(1, satBids));
  return {
    rates,
    perK,
    totalCpuMsPer1k,
    bidProcessor: {
      transactionsPer1k: per1k(cutsAfter.tx - cutsBefore.tx),
      bidsBatchesPer1k: per1k(cutsAfter.batches - cutsBefore.batches),
    },
  };
}

export async function benchE2e(
  ctx: BenchContext,
  s: Sizes,
  opts: { rates: readonly number[]; client: BenchClient; saturate: boolean },
): Promise<E2eResult> {
  const e = await startE2e(ctx, s, `e2e-${opts.client}`, opts.client, 1);
  const figures: Figure[] = [];
  const rss: Record<string, number> = {};
  try {
    await e.warmUp();
    for (const rate of opts.rates) {
      const p50: number[] = [];
      const p95: number[] = [];
      const p99: number[] = [];
      const offered: number[] = [];
      const legs: Latency["legs"][] = [];
      for (let run = 0; run < s.runs; run++) {
        const tag = `e${rate}-${run}-${ctx.id}`;
        const r = await pacedLoop(e.http, {
          path: "/v1/bids:batch",
          rate,
          durationMs: s.seconds * 1000,
          batchSize: 500,
          maxInFlight: 16,
          body: e.body(tag),
        });
        e.advance(Math.round((rate * s.seconds * 1000) / 1000));
        await e.drain(tag, r.accepted);
        const l = await latencyOf(ctx, tag);
        p50.push(l.p50);
        p95.push(l.p95);
        p99.push(l.p99);
        offered.push(r.offeredPerS);
        legs.push(l.legs);
        ctx.logger.info(
          { rate, run, offered: Math.round(r.offeredPerS), accepted: r.accepted, ...l },
          "e2e run",
        );
      }
      const k = rate >= 1000 ? `${rate / 1000}k` : String(rate);
      const extra = {
        offeredBidsPerS: offered.map((x) => Math.round(x)),
        medianLegsMs: legs.map((g) => ({
          ingest: round(g.ingest),
          decide: round(g.decide),
          write: round(g.write),
        })),
      };
      figures.push(fig(`e2e_p50_ms_at_${k}`, p50, "ms", extra));
      figures.push(fig(`e2e_p95_ms_at_${k}`, p95, "ms", extra));
      figures.push(fig(`e2e_p99_ms_at_${k}`, p99, "ms", extra));
    }
    if (opts.saturate) {
      const sat = await saturation(ctx, s, e, "sat");
      figures.push(
        fig("e2e_max_sustained_bids_per_s", sat.rates, "bids/s", {
          method: "closed loop, accepted rows / (last written_at - first placed_at)",
        }),
      );
      // The rate the machine's cores could carry if every process were busy all the time (a bound).
      figures.push(
        fig("e2e_cpu_ms_per_1k_bids", [sat.totalCpuMsPer1k], "ms", {
          perProcess: sat.perK,
          cpuBoundBidsPerS: Math.round((cpus().length * 1e6) / Math.max(1, sat.totalCpuMsPer1k)),
          bidProcessor: sat.bidProcessor,
          method: "utime+stime from /proc over the saturation runs / accepted bids",
        }),
      );
    }
    for (const c of e.children) rss[c.name] = c.peakRssMiB();
    return { figures, rss };
  } finally {
    await e.close();
  }
}

// ---------------------------------------------------------------------------
// Replica scaling: the saturation figure with 1, 2, 3 ... bid-processors and silver-writers

/**
 * Whether every replica takes part: each bid-processor owns partitions (all
 * of them between the replicas) and each silver-writer wrote records since
 * `before` (its `silver_writer_records_total` then).
 */
async function settled(
  e: E2ePipeline,
  partitions: number,
  before: ReadonlyMap<RunningChild, number>,
): Promise<{ ok: boolean; bidProcessorPartitions: number[]; silverWriterRecords: number[] }> {
  const bps = e.children.filter((c) => c.name === "bid-processor");
  const sws = e.children.filter((c) => c.name === "silver-writer");
  const owned = await Promise.all(bps.map((c) => c.metric("bid_processor_partitions")));
  const written = await Promise.all(
    sws.map(async (c) => (await c.metric("silver_writer_records_total")) - (before.get(c) ?? 0)),
  );
  const sum = owned.reduce((a, b) => a + b, 0);
  const ok =
    sum === partitions &&
    owned.every((x) => x > 0 || bps.length > partitions) &&
    written.every((x) => x > 0 || sws.length > partitions);
  return { ok, bidProcessorPartitions: owned, silverWriterRecords: written };
}

/**
 * For each replica count n: a fresh pipeline with n bid-processors and n
 * silver-writers (ingest stays 1), warmed up until every replica takes part,
 * then the saturation runs of `e2e_max_sustained_bids_per_s`:
 * `e2e_scale_<n>_bids_per_s` and `e2e_scale_<n>_cpu_ms_per_1k_bids`.
 */
export async function benchScale(
  ctx: BenchContext,
  s: Sizes,
  opts: {
    replicas: readonly number[];
    client: BenchClient;
    /** Called with each step's figures as soon as the step is done. */
    add: (figures: readonly Figure[]) => void;
    log: (line: string) => void;
  },
): Promise<void> {
  for (const n of opts.replicas) {
    const e = await startE2e(ctx, s, `scale-${n}`, opts.client, n);
    try {
      let st: Awaited<ReturnType<typeof settled>> | undefined;
      for (let w = 0; w < 5 && !st?.ok; w++) {
        const before = new Map<RunningChild, number>();
        for (const c of e.children)
          if (c.name === "silver-writer") before.set(c, await c.metric("silver_writer_records_total"));
        await e.warmUp();
        st = await settled(e, s.partitions, before);
      }
      if (!st?.ok) {
        ctx.logger.warn({ replicas: n, ...st }, "scale: not every replica took part in the warm-ups");
        opts.log(`  (${n} replicas: not every replica took part in the warm-ups: ${JSON.stringify(st)})`);
      }
      const sat = await saturation(ctx, s, e, `scale${n}`);
      // Peak RSS per processor name, the largest replica's (kept out of processor_rss_mib).
      const rss: Record<string, number> = {};
      for (const c of e.children) {
        const v = c.peakRssMiB();
        if (Number.isFinite(v)) rss[c.name] = round(Math.max(rss[c.name] ?? 0, v), 0);
      }
      const replicas = { ingest: 1, "bid-processor": n, "silver-writer": n };
      opts.add([
        fig(`e2e_scale_${n}_bids_per_s`, sat.rates, "bids/s", {
          replicas,
          settled: st?.ok ?? false,
          bidProcessorPartitions: st?.bidProcessorPartitions,
          peakRssMiB: rss,
          method:
            "as e2e_max_sustained_bids_per_s: closed loop, accepted rows / (last written_at - first placed_at)",
        }),
        fig(`e2e_scale_${n}_cpu_ms_per_1k_bids`, [sat.totalCpuMsPer1k], "ms", {
          replicas,
          perProcess: sat.perK,
          cpuBoundBidsPerS: Math.round((cpus().length * 1e6) / Math.max(1, sat.totalCpuMsPer1k)),
          method: "utime+stime from /proc over the saturation runs / accepted bids (replicas summed)",
        }),
      ]);
      // The CPU split is printed with the figure (bench/main.ts `print`).
      opts.log(
        `  (${n} replica${n === 1 ? "" : "s"}: peak RSS ${Object.entries(rss)
          .map(([k, v]) => `${k} ${v}`)
          .join(", ")} MiB, largest replica)`,
      );
    } finally {
      await e.close();
    }
  }
}
