/**
 * Shared pieces of the benchmark suite: a throw-away pipeline (topics and a
 * database of its own), processors started as child processes (the way they
 * run in pods, one process each, so RSS and CPU are per process), their
 * Prometheus metrics, and small statistics.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { createWriteStream, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import pg from "pg";
import { SCHEMA } from "../api/events/types.ts";
import { type AuctionPipeline, allTopics, parsePipeline, topicNames } from "../api/v1alpha1/pipeline.ts";
import { readConnectionConfig, requireEnv } from "../lib/config.ts";
import type { Logger } from "../lib/log.ts";
import { migrate } from "../processors/db/migrate.ts";
import type { KafkaClientName } from "../processors/kafka/client.ts";

/** A forced Kafka client, or "default": GAVEL_KAFKA_CLIENT left unset, as in a pod (kafkajs; ADR 0006). */
export type BenchClient = KafkaClientName | "default";

import { KafkajsTransport } from "../processors/kafka/kafkajs.ts";
import { applyTopics } from "../processors/kafka/topics.ts";
import type { Admin, OutMessage, Producer } from "../processors/kafka/transport.ts";

export type { BenchResult } from "./rollup.ts";

export const REPO = resolve(import.meta.dirname, "..");

// ---------------------------------------------------------------------------
// Statistics

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] as number;
}

export const round = (x: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
};

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `cond` every `everyMs` until true; false after `timeoutMs`. */
export async function until(
  cond: () => Promise<boolean> | boolean,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a ? a.port : 0;
      s.close(() => res(port));
    });
  });
}

// ---------------------------------------------------------------------------
// The bench context: connections, a database of its own, a work folder

export interface BenchContext {
  readonly brokers: string;
  /** DATABASE_URL of the bench's own database (dropped at the end). */
  readonly databaseUrl: string;
  readonly pool: pg.Pool;
  readonly admin: Admin;
  /** The bench's own producer (replaced after a failed send). */
  producer: Producer;
  /** Closes the producer and connects a new one (fresh metadata after a broker restart). */
  resetProducer(): Promise<void>;
  readonly logger: Logger;
  /** Folder for pipeline files, processor logs and CPU profiles. */
  readonly dir: string;
  /** Unique id of this bench run (prefix of topics and ids). */
  readonly id: string;
  /**
   * `cpu+heap`: --cpu-prof and --heap-prof (live at exit); `cpu+alloc`:
   * --cpu-prof and the allocation sampler (V8 has one heap sampler, so not
   * both); false: none. Profiles land in `dir/profiles`.
   */
  readonly profile: Profiling;
  close(): Promise<void>;
}

/** What `--profile` / `--alloc-profile` record in the processors. */
export type Profiling = false | "cpu+heap" | "cpu+alloc";

export async function openContext(logger: Logger, opts: { profile: Profiling }): Promise<BenchContext> {
  const cfg = readConnectionConfig();
  const brokers = requireEnv(cfg, "kafkaBootstrapServers", "KAFKA_BOOTSTRAP_SERVERS");
  const adminUrl = requireEnv(cfg, "databaseUrl", "DATABASE_URL");
  const id = randomUUID().replace(/-/g, "").slice(0, 8);
  const dbName = `gavel_bench_${id}`;
  const root = new pg.Client({ connectionString: adminUrl });
  await root.connect();
  await root.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  const databaseUrl = u.toString();
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on("error", () => {}); // terminated by DROP DATABASE ... WITH (FORCE)
  await migrate(pool);
  const transport = new KafkajsTransport({ brokers, clientId: `gavel-bench-${id}`, logger });
  const admin = await transport.admin();
  let producer = await transport.producer();
  const dir = join(REPO, ".testenv", "bench", id);
  mkdirSync(join(dir, "profiles"), { recursive: true });
  return {
    brokers,
    databaseUrl,
    pool,
    admin,
    get producer() {
      return producer;
    },
    set producer(p: Producer) {
      producer = p;
    },
    async resetProducer() {
      await producer.close().catch(() => undefined);
      producer = await transport.producer();
    },
    logger,
    dir,
    id,
    profile: opts.profile,
    async close() {
      await producer.close().catch(() => undefined);
      await admin.close().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await root.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`).catch(() => undefined);
      await root.end();
    },
  };
}

// ---------------------------------------------------------------------------
// Pipelines

export interface BenchPipeline {
  readonly pipeline: AuctionPipeline;
  readonly file: string;
  readonly topics: ReturnType<typeof topicNames>;
  /** Deletes the pipeline's topics. */
  drop(): Promise<void>;
}

/** A pipeline with its own topics (replication 1: one broker), written to a file for the processors. */
export async function createPipeline(
  ctx: BenchContext,
  suffix: string,
  partitions: number,
): Promise<BenchPipeline> {
  const name = `bench-${ctx.id}-${suffix}`;
  const pipeline = parsePipeline({
    apiVersion: "gavel.dev/v1alpha1",
    kind: "AuctionPipeline",
    metadata: { name },
    spec: {
      kafka: { clusterName: "testenv", bootstrapServers: ctx.brokers },
      storage: {
        postgres: { secretRef: { name: "unused" } },
        s3: { bucket: "unused", credentialsSecretRef: { name: "unused" } },
      },
      topics: { partitions, replicas: 1 },
    },
  });
  const file = join(ctx.dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(pipeline, null, 2));
  const topics = allTopics(pipeline);
  await applyTopics(
    ctx.admin,
    topics.map((t) => ({ name: t.name, partitions: t.partitions, replicationFactor: 1, configs: t.config })),
  );
  // A fresh producer: the old one's metadata can lag behind the new topics.
  await ctx.resetProducer();
  return {
    pipeline,
    file,
    topics: topicNames(pipeline),
    drop: () => ctx.admin.deleteTopics(topics.map((t) => t.name)).catch(() => undefined),
  };
}

// ---------------------------------------------------------------------------
// Processors as child processes

export type ProcessorName = "ingest" | "bid-processor" | "silver-writer";

export interface RunningChild {
  readonly name: ProcessorName;
  readonly pid: number;
  readonly url: string;
  /** Sum of every sample of a metric in the processor's /metrics. */
  metric(name: string, labels?: Readonly<Record<string, string>>): Promise<number>;
  /** Peak resident set size so far (VmHWM), MiB. */
  peakRssMiB(): number;
  /** SIGTERM and wait for a graceful exit (a CPU profile is written on exit). */
  stop(): Promise<void>;
}

let clockTicks: number | undefined;

/**
 * CPU time (user + system) of a live process, seconds; with `tree`, of its
 * descendants too, live or exited and waited for (PostgreSQL serves each
 * connection from a child).
 * NaN when the process is gone or /proc is not there.
 */
export function cpuSeconds(pid: number, tree = false): number {
  clockTicks ??= Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  const stat = (p: number): { ppid: number; ticks: number; reaped: number } | undefined => {
    try {
      const text = readFileSync(`/proc/${p}/stat`, "utf8");
      // Fields after the command (which may hold spaces), from field 3 (state) on:
      // utime, stime, then cutime, cstime (children that exited and were waited for).
      const f = text.slice(text.lastIndexOf(")") + 2).split(" ");
      return {
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]),
        reaped: Number(f[13]) + Number(f[14]),
      };
    } catch {
      return undefined;
    }
  };
  const own = stat(pid);
  if (!own) return Number.NaN;
  // With the tree, the CPU of descendants that exited counts too (a PostgreSQL
  // backend that ends between two readings would otherwise take its CPU with
  // it: a bench run printed postgres -2 ms per 1,000 bids).
  let ticks = tree ? own.ticks + own.reaped : own.ticks;
  if (tree) {
    const children = new Map<number, number[]>();
    const all = new Map<number, number>();
    for (const d of readdirSync("/proc")) {
      if (!/^\d+$/.test(d)) continue;
      const st = stat(Number(d));
      if (!st) continue;
      all.set(Number(d), st.ticks);
      const list = children.get(st.ppid) ?? [];
      list.push(Number(d));
      children.set(st.ppid, list);
    }
    const todo = [...(children.get(pid) ?? [])];
    for (let c = todo.pop(); c !== undefined; c = todo.pop()) {
      ticks += all.get(c) ?? 0;
      todo.push(...(children.get(c) ?? []));
    }
  }
  return ticks / clockTicks;
}

/** Pids of the test environment's Kafka broker and PostgreSQL server, when it runs here. */
export function servicePids(): { kafka?: number; postgres?: number } {
  try {
    const st = JSON.parse(readFileSync(join(REPO, ".testenv", "state.json"), "utf8")) as {
      services?: Record<string, { pid?: number }>;
    };
    return { kafka: st.services?.kafka?.pid, postgres: st.services?.postgres?.pid };
  } catch {
    return {};
  }
}

/** The memory limit a processor pod gets by default (`spec.processors.*.resources.limits.memory`). */
export const POD_MEMORY_LIMIT_BYTES = 512 * 1024 * 1024;

/** NODE_OPTIONS of the image (the Dockerfile's ENV; a unit test keeps the two equal). */
export const IMAGE_NODE_OPTIONS = "--max-semi-space-size=16";

/**
 * A memory cgroup (v1 or v2) with `bytes` as its limit, so a processor runs
 * as in a pod: Node 24 sizes its heap from the limit (measured here: 512 MiB
 * gives a heap_size_limit of 259 MiB; without a limit it takes 4,288 MiB of
 * this 23.5 GiB machine and collects lazily), and going over the limit is
 * an OOM kill. Undefined where cgroups are not writable (not root, no
 * memory controller): processes then run unlimited and the bench says so.
 */
export function memoryCgroup(name: string, bytes: number): { procs: string; remove(): void } | undefined {
  const candidates = [
    { dir: `/sys/fs/cgroup/memory/${name}`, limit: "memory.limit_in_bytes" }, // v1
    { dir: `/sys/fs/cgroup/${name}`, limit: "memory.max" }, // v2 (needs +memory in the parent's subtree_control)
  ];
  for (const c of candidates) {
    try {
      mkdirSync(c.dir);
    } catch {
      continue;
    }
    try {
      writeFileSync(join(c.dir, c.limit), String(bytes));
      return {
        procs: join(c.dir, "cgroup.procs"),
        remove: () => {
          try {
            rmdirSync(c.dir);
          } catch {
            // still has a process (a processor that did not exit): left for the OS
          }
        },
      };
    } catch {
      try {
        rmdirSync(c.dir);
      } catch {
        // nothing to clean
      }
    }
  }
  return undefined;
}

/** VmHWM (peak RSS) of a live process, MiB; NaN when unknown. */
export function peakRssMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Parses Prometheus text and sums the samples of `name` whose labels include `labels`. */
export function sumMetric(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(name) && !line.startsWith(`gavel_${name}`)) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    // The registry prefixes every metric with `gavel_`.
    if (!m || (m[1] !== name && m[1] !== `gavel_${name}`)) continue;
    const lbl = m[2] ?? "";
    if (Object.entries(labels).some(([k, v]) => !lbl.includes(`${k}="${v}"`))) continue;
    const v = Number(m[3]);
    if (Number.isFinite(v)) sum += v;
  }
  return sum;
}

let started = 0;

/** Per processor name: whether its last start ran in a memory cgroup (see `memoryCgroup`). */
export const memoryLimited = new Map<string, boolean>();

export async function startProcessor(
  ctx: BenchContext,
  name: ProcessorName,
  p: BenchPipeline,
  opts: {
    /** The Kafka client; "default" (or unset): GAVEL_KAFKA_CLIENT unset, as in a pod. */
    client?: BenchClient;
    env?: Readonly<Record<string, string>>;
    /** Return once the HTTP server answers, before the processor is ready (to sample its metrics from the start). */
    serverOnly?: boolean;
  } = {},
): Promise<RunningChild> {
  const port = await freePort();
  // Numbered: a processor started twice on one pipeline keeps both logs and profiles.
  const tag = `${p.pipeline.metadata.name}-${name}-${opts.client ?? "default"}-${++started}`;
  const args = [
    ...(ctx.profile
      ? [
          "--cpu-prof",
          `--cpu-prof-dir=${join(ctx.dir, "profiles")}`,
          `--cpu-prof-name=${tag}.cpuprofile`,
          // Every allocation, sampled (bench/alloc-profile.ts): what the GC cleans up;
          // or what is still allocated at exit: where the memory of a processor is.
          ...(ctx.profile === "cpu+alloc"
            ? [`--import=${join(REPO, "bench", "alloc-profile.ts")}`]
            : [
                "--heap-prof",
                `--heap-prof-dir=${join(ctx.dir, "profiles")}`,
                `--heap-prof-name=${tag}.heapprofile`,
              ]),
        ]
      : []),
    join(REPO, "bin", "gavel"),
    "processor",
    name,
    "-f",
    p.file,
  ];
  const log = createWriteStream(join(ctx.dir, `${tag}.log`));
  const cg = memoryCgroup(`gavel-bench-${tag}`, POD_MEMORY_LIMIT_BYTES);
  memoryLimited.set(name, cg !== undefined);
  // In the cgroup: the shell moves itself in, then becomes node (same pid).
  const [cmd, argv] = cg
    ? ["sh", ["-c", 'echo $$ > "$0" && exec "$@"', cg.procs, process.execPath, ...args]]
    : [process.execPath, args];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    DATABASE_URL: ctx.databaseUrl,
    GAVEL_HTTP_PORT: String(port),
    GAVEL_HTTP_HOST: "127.0.0.1",
    GAVEL_INGEST_AUTH: "disabled",
    GAVEL_INSTANCE_ID: tag,
    LOG_LEVEL: process.env.LOG_LEVEL ?? "warn",
    NODE_OPTIONS: process.env.NODE_OPTIONS ?? IMAGE_NODE_OPTIONS,
    ...(ctx.profile === "cpu+alloc"
      ? { GAVEL_BENCH_ALLOC_PROFILE: join(ctx.dir, "profiles", `${tag}.alloc.heapprofile`) }
      : {}),
    ...opts.env,
  };
  if (opts.client === undefined || opts.client === "default") delete env.GAVEL_KAFKA_CLIENT;
  else env.GAVEL_KAFKA_CLIENT = opts.client;
  const child: ChildProcess = spawn(cmd, argv, {
    cwd: REPO,
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  let exited: number | string | null | undefined;
  const exit = new Promise<void>((res) =>
    child.once("exit", (code, signal) => {
      exited =
        code ?? (signal ? `${signal}${signal === "SIGKILL" && cg ? " (the memory limit?)" : ""}` : null);
      cg?.remove();
      res();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const ready = await until(
    async () => {
      if (exited !== undefined)
        throw new Error(`${name} exited with ${exited}; see ${join(ctx.dir, `${tag}.log`)}`);
      try {
        const r = await fetch(`${url}/readyz`);
        return opts.serverOnly === true || r.ok;
      } catch {
        return false;
      }
    },
    120_000,
    opts.serverOnly ? 20 : 200,
  );
  if (!ready) {
    child.kill("SIGKILL");
    throw new Error(`${name} not ready after 120 s; see ${join(ctx.dir, `${tag}.log`)}`);
  }
  const pid = child.pid ?? -1;
  let lastRss = Number.NaN;
  const peak = () => {
    const v = peakRssMiB(pid);
    if (Number.isFinite(v)) lastRss = v;
    return lastRss;
  };
  return {
    name,
    pid,
    url,
    async metric(metric, labels) {
      // A processor that died (an OOM kill in its cgroup) is said as such, not as "fetch failed".
      const died = () =>
        new Error(`${name} exited with ${exited} while measured; see ${join(ctx.dir, `${tag}.log`)}`);
      if (exited !== undefined) throw died();
      try {
        const r = await fetch(`${url}/metrics`);
        return sumMetric(await r.text(), metric, labels);
      } catch (err) {
        // The exit event may trail the refused connection by a moment.
        if (exited === undefined) await Promise.race([exit, new Promise((r) => setTimeout(r, 500))]);
        throw exited !== undefined ? died() : err;
      }
    },
    peakRssMiB: peak,
    async stop() {
      peak();
      if (exited !== undefined) return;
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exit;
      clearTimeout(t);
    },
  };
}

// ---------------------------------------------------------------------------
// Data

/** Produces with a few retries: right after topic creation (or a broker restart) metadata can lag. */
export async function send(ctx: BenchContext, topic: string, messages: OutMessage[]): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await ctx.producer.send([{ topic, messages }]);
      return;
    } catch (err) {
      if (attempt >= 5) throw err;
      ctx.logger.warn({ err: (err as Error).message, attempt }, "bench produce failed; retrying");
      await sleep(1000 * attempt);
      await ctx.resetProducer();
    }
  }
}

export interface Auctions {
  readonly ids: readonly string[];
  readonly startPrice: number;
  readonly increment: number;
}

/** Open auctions (started an hour ago, ending in a day) produced straight to the auctions topic. */
export async function produceAuctions(ctx: BenchContext, p: BenchPipeline, count: number): Promise<Auctions> {
  const now = Date.now();
  const ids: string[] = [];
  const startPrice = 1_000;
  const increment = 10;
  for (let i = 0; i < count; i += 1000) {
    const messages: OutMessage[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) {
      const auction_id = `${p.pipeline.metadata.name}-a${j}`;
      ids.push(auction_id);
      messages.push({
        key: auction_id,
        value: JSON.stringify({
          schema: SCHEMA.auction,
          auction_id,
          item_id: `i${j}`,
          seller_id: `seller${j % 97}`,
          title: `Lot ${j}`,
          category: "electronics",
          currency: "EUR",
          start_price: startPrice,
          min_increment: increment,
          starts_at: new Date(now - 3_600_000).toISOString(),
          ends_at: new Date(now + 86_400_000).toISOString(),
        }),
      });
    }
    await send(ctx, p.topics.auctions.name, messages);
  }
  return { ids, startPrice, increment };
}

/**
 * Bid n in send order: auction n mod A, its (n div A)-th bid, amounts rising
 * by one increment each time (accepted when processed in order), bidders
 * spread over many users (no velocity alerts).
 */
export function bidFor(a: Auctions, n: number, placedAtMs: number, runTag: string) {
  const A = a.ids.length;
  const k = Math.floor(n / A);
  return {
    bid_id: `${runTag}-${n}`,
    auction_id: a.ids[n % A] as string,
    bidder_id: `bidder${(n * 7919) % 50_000}`,
    amount: a.startPrice + (k + 1) * a.increment * 2,
    currency: "EUR",
    placed_at: new Date(placedAtMs).toISOString(),
  };
}
