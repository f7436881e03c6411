/**
 * Floors: what the services alone do on this machine, measured with tools
 * that are not Gavel's code, in the same bench run and on the same services
 * as the pipeline's figures.
 *
 * - Kafka's own producer and consumer perf tools (`kafka-tools` of the
 *   broker's version, resolved from Maven Central into the tool cache on
 *   first use): 251-byte bid records, acks=all with idempotence, into and out
 *   of a fresh topic with the bench's partition count;
 * - psql's `\copy` of generated `silver.bids` rows into a table shaped like
 *   `silver.bids` (`LIKE ... INCLUDING ALL`: its primary key and indexes).
 *
 * From these, the floor of the pipeline's own path per bid (`floorPath`):
 * the machine time the services need for one bid if each did its part at
 * the rate its tool reached alone. See docs/benchmarks.md.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SCHEMA } from "../api/events/types.ts";
import { FEATURE_NAMES } from "../processors/fraud/model.ts";
import { TABLES } from "../processors/silver-writer/rows.ts";
import { defaultCache, KAFKA_VERSION, which } from "../test/env/services.ts";
import { type BenchContext, bidFor, median, REPO, round } from "./lib.ts";
import { type Figure, fig, type Sizes } from "./stages.ts";

// ---------------------------------------------------------------------------
// The floor of the pipeline's path

/**
 * What one accepted bid costs the services on the pipeline's path, in
 * records: ingest produces the bid (1 produce); the bid-processor consumes
 * it (1 consume) and produces, in a transaction, the accepted bid and the
 * auction's price update (2 produces); the silver-writer consumes those two
 * (2 consumes) and writes one `silver.bids` row (1 COPY row; the price
 * update's upsert of `silver.auction_state` is left out, so the floor is
 * generous to the pipeline).
 */
export const FLOOR_PATH = { produce: 3, consume: 3, copyRows: 1 } as const;

export interface FloorRates {
  /** Records/s of Kafka's producer perf tool. */
  readonly produce: number;
  /** Records/s of Kafka's consumer perf tool. */
  readonly consume: number;
  /** Rows/s of psql's \copy into a `silver.bids`-shaped table. */
  readonly copy: number;
}

/**
 * Seconds of machine time per bid at the floors (each tool ran alone with
 * the whole machine, so their times add up), and its inverse: the bids/s
 * the services could carry if the pipeline cost nothing but their floors.
 */
export function floorPath(r: FloorRates): { secondsPerBid: number; bidsPerS: number } {
  const secondsPerBid =
    FLOOR_PATH.produce / r.produce + FLOOR_PATH.consume / r.consume + FLOOR_PATH.copyRows / r.copy;
  return { secondsPerBid, bidsPerS: 1 / secondsPerBid };
}

// ---------------------------------------------------------------------------
// Parsing the tools' output

export interface ProducerPerfSummary {
  readonly records: number;
  readonly recordsPerS: number;
  readonly mbPerS: number;
  readonly avgLatencyMs: number;
  readonly maxLatencyMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly p999Ms: number;
}

const NUM = String.raw`(-?[\d.]+)`;
/** The final line of ProducerPerformance (the 5-second progress lines have no percentiles). */
const PRODUCER_TOTAL = new RegExp(
  String.raw`^(\d+) records sent, ${NUM} records/sec \(${NUM} MB/sec\), ${NUM} ms avg latency, ${NUM} ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99\.9th\.?\s*$`,
);

/**
 * The summary line of `org.apache.kafka.tools.ProducerPerformance`, e.g.
 * `1000000 records sent, 98765.4 records/sec (23.64 MB/sec), 250.10 ms avg
 * latency, 700.00 ms max latency, 240 ms 50th, 500 ms 95th, 600 ms 99th,
 * 690 ms 99.9th.` (the tool runs with an English locale, so '.' decimals).
 */
export function parseProducerPerf(output: string): ProducerPerfSummary {
  let found: ProducerPerfSummary | undefined;
  for (const line of output.split("\n")) {
    const m = PRODUCER_TOTAL.exec(line.trim());
    if (!m) continue;
    const n = m.slice(1).map(Number);
    found = {
      records: n[0] as number,
      recordsPerS: n[1] as number,
      mbPerS: n[2] as number,
      avgLatencyMs: n[3] as number,
      maxLatencyMs: n[4] as number,
      p50Ms: n[5] as number,
      p95Ms: n[6] as number,
      p99Ms: n[7] as number,
      p999Ms: n[8] as number,
    };
  }
  if (!found) throw new Error(`no summary line in the producer perf tool's output: ${tail(output)}`);
  return found;
}

export interface ConsumerPerfSummary {
  readonly records: number;
  readonly mb: number;
  /** Records over the whole run, group join included. */
  readonly recordsPerS: number;
  readonly rebalanceMs: number;
  readonly fetchMs: number;
  /** Records over the fetch time (the run without the group join): the figure used. */
  readonly fetchRecordsPerS: number;
}

/**
 * The result of `org.apache.kafka.tools.ConsumerPerformance` without
 * `--show-detailed-stats`: a header line `start.time, end.time,
 * data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,
 * rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec` and one
 * line of values under it.
 */
export function parseConsumerPerf(output: string): ConsumerPerfSummary {
  const lines = output.split("\n").map((l) => l.trim());
  const h = lines.findIndex((l) => l.startsWith("start.time,"));
  const names = h >= 0 ? (lines[h] as string).split(",").map((s) => s.trim()) : [];
  const row = lines.slice(h + 1).find((l) => l.split(",").length === names.length && /^\d/.test(l));
  if (h < 0 || !row) throw new Error(`no result line in the consumer perf tool's output: ${tail(output)}`);
  const values = row.split(",").map((s) => s.trim());
  const get = (k: string): number => {
    const i = names.indexOf(k);
    const v = i >= 0 ? Number(values[i]) : Number.NaN;
    if (!Number.isFinite(v)) throw new Error(`consumer perf tool: no number for ${k} in '${row}'`);
    return v;
  };
  return {
    records: get("data.consumed.in.nMsg"),
    mb: get("data.consumed.in.MB"),
    recordsPerS: get("nMsg.sec"),
    rebalanceMs: get("rebalance.time.ms"),
    fetchMs: get("fetch.time.ms"),
    fetchRecordsPerS: get("fetch.nMsg.sec"),
  };
}

/**
 * psql's answer to `\timing on` then `\copy ... from FILE with csv`: the
 * rows copied (`COPY n`) and the time psql took for it (`Time: x ms`, the
 * line after it; connecting is not in it).
 */
export function parsePsqlCopy(output: string): { rows: number; ms: number } {
  const lines = output.split("\n").map((l) => l.trim());
  const i = lines.findIndex((l) => /^COPY \d+$/.test(l));
  const t = i >= 0 ? lines.slice(i + 1).find((l) => l.startsWith("Time: ")) : undefined;
  const ms = t ? /^Time: ([\d.]+) ms/.exec(t) : null;
  if (i < 0 || !ms) throw new Error(`no 'COPY n' and 'Time: x ms' in psql's output: ${tail(output)}`);
  return { rows: Number((lines[i] as string).slice(5)), ms: Number(ms[1]) };
}

/** A command line as a POSIX shell reads it back (for the report and the JSON). */
export function shellLine(cmd: string, args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return [cmd, ...args].map(q).join(" ");
}

const tail = (s: string) => s.trim().split("\n").slice(-5).join(" | ") || "(empty)";

// ---------------------------------------------------------------------------
// Data

/** Size of the producer floor's records: a bid as ingest writes it to the bids topic. */
export const BID_RECORD_BYTES = 251;

/**
 * A bid's JSON at exactly `bytes` bytes: spaces before the closing brace
 * (still the same JSON value), or undefined when it is longer already.
 */
export function fitJson(json: string, bytes: number): string | undefined {
  const len = Buffer.byteLength(json);
  if (len > bytes || !json.endsWith("}")) return undefined;
  return `${json.slice(0, -1)}${" ".repeat(bytes - len)}}`;
}

/**
 * Payload lines for the producer tool: real bid records (`bidFor`, with the
 * fields ingest adds), each fitted to `BID_RECORD_BYTES`; the tool picks one
 * at random per record.
 */
export function bidPayloads(runTag: string, auctionPrefix: string, count: number): string[] {
  const a = {
    ids: Array.from({ length: 2000 }, (_, i) => `${auctionPrefix}-a${i}`),
    startPrice: 1000,
    increment: 10,
  };
  const now = Date.now();
  const out: string[] = [];
  for (let n = 0; out.length < count && n < count * 10; n++) {
    const b = bidFor(a, n * 7, now + n, runTag);
    const json = JSON.stringify({
      schema: SCHEMA.bid,
      ...b,
      received_at: new Date(now + n + 2).toISOString(),
      source: "api",
    });
    const fitted = fitJson(json, BID_RECORD_BYTES);
    if (fitted) out.push(fitted);
  }
  if (out.length === 0) throw new Error(`no bid record fits in ${BID_RECORD_BYTES} bytes`);
  return out;
}

/** Columns of the COPY: those the silver-writer fills (`written_at` takes its default, as there). */
export const COPY_COLUMNS: readonly string[] = TABLES.bids.columns;

/** One CSV line of a `silver.bids` row as the silver-writer would write bid n (its fraud features, lineage). */
export function silverBidCsv(
  a: { ids: readonly string[]; startPrice: number; increment: number },
  n: number,
  t0: number,
  runTag: string,
  topic: string,
  partitions: number,
): string {
  const b = bidFor(a, n, t0 + n, runTag);
  const placed = t0 + n;
  // Deterministic, feature-like values with 4 decimals, as the stream logs them.
  const features = Array.from({ length: FEATURE_NAMES.length }, (_, i) =>
    (((n * (i + 3)) % 10_000) / 10_000).toFixed(4),
  );
  return [
    b.bid_id,
    b.auction_id,
    b.bidder_id,
    b.amount,
    b.currency,
    b.placed_at,
    new Date(placed + 2).toISOString(),
    ((n % 997) / 10_000).toFixed(4),
    `"{${features.join(",")}}"`,
    "api",
    new Date(placed + 40).toISOString(),
    1,
    topic,
    n % partitions,
    Math.floor(n / partitions),
  ].join(",");
}

async function writeCsv(file: string, rows: number, runTag: string, partitions: number): Promise<void> {
  const a = {
    ids: Array.from({ length: 2000 }, (_, i) => `${runTag}-floor-a${i}`),
    startPrice: 1000,
    increment: 10,
  };
  const out = createWriteStream(file);
  const t0 = Date.now();
  const topic = `${runTag}-floor.bids.accepted`;
  for (let i = 0; i < rows; i += 5000) {
    const chunk: string[] = [];
    for (let n = i; n < Math.min(rows, i + 5000); n++)
      chunk.push(silverBidCsv(a, n, t0, runTag, topic, partitions));
    if (!out.write(`${chunk.join("\n")}\n`)) await once(out, "drain");
  }
  out.end();
  await once(out, "finish");
}

// ---------------------------------------------------------------------------
// Kafka's tools

/** Where Kafka's tools and their dependencies are cached (beside the broker's `kafka-<v>/libs`). */
export const kafkaToolsLibs = (cache = defaultCache()): string =>
  join(cache, `kafka-tools-${KAFKA_VERSION}`, "libs");

/**
 * The classpath of `org.apache.kafka:kafka-tools` of the broker's version;
 * resolved with Maven from scripts/testenv/kafka-pom.xml
 * (`-Dkafka.artifact=kafka-tools`) the first time, like the broker's jars.
 */
export async function ensureKafkaTools(log: (msg: string) => void): Promise<string> {
  const libs = kafkaToolsLibs();
  if (existsSync(join(libs, `kafka-tools-${KAFKA_VERSION}.jar`))) return `${libs}/*`;
  if (!which("mvn"))
    throw new Error(
      "'mvn' not found (needed to download Kafka's perf tools); install it: apt-get install maven",
    );
  log(`downloading kafka-tools ${KAFKA_VERSION} jars from Maven Central into ${libs} (first time only) ...`);
  const tmp = `${libs}.tmp-${process.pid}`;
  try {
    await runTool("mvn", [
      "-B",
      "-q",
      "-f",
      join(REPO, "scripts/testenv/kafka-pom.xml"),
      `-Dkafka.version=${KAFKA_VERSION}`,
      "-Dkafka.artifact=kafka-tools",
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-DoutputDirectory=${tmp}`,
    ]);
    renameSync(tmp, libs);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return `${libs}/*`;
}

/** Runs a command to its end; its output (stdout and stderr together) also goes to `logFile`. */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: { logFile?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: REPO,
      env: opts.env ?? process.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const log = opts.logFile ? createWriteStream(opts.logFile, { flags: "a" }) : undefined;
    log?.write(`$ ${cmd} ${args.join(" ")}\n`);
    let out = "";
    const take = (d: Buffer) => {
      out += d.toString("utf8");
      log?.write(d);
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
    child.once("error", (err) => {
      clearTimeout(timer);
      log?.end();
      reject(err);
    });
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      log?.end();
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args[0] ?? ""} ... exited with ${code ?? signal}: ${tail(out)}`));
    });
  });
}

// ---------------------------------------------------------------------------
// The bench

export interface FloorsResult {
  readonly figures: Figure[];
  /** Median floor of the pipeline's path, bids/s (`floor_path_bids_per_s`). */
  readonly pathBidsPerS: number;
  /** The command lines run (paths of this run), for the report. */
  readonly commands: readonly string[];
}

const LOG4J = `# Kafka's tools: warnings and errors only, to stderr (the bench keeps them in its log).
rootLogger.level = WARN
rootLogger.appenderRef.stderr.ref = STDERR
appender.stderr.type = Console
appender.stderr.name = STDERR
appender.stderr.target = SYSTEM_ERR
appender.stderr.layout.type = PatternLayout
appender.stderr.layout.pattern = [%d] %p %m (%c)%n
`;

/**
 * Kafka's producer and consumer perf tools and psql's \copy, one at a time,
 * `s.runs` times: each run a fresh topic (the bench's partitions) and a
 * fresh table. `records` records per tool run and COPY.
 */
export async function benchFloors(
  ctx: BenchContext,
  s: Sizes,
  records: number,
  log: (msg: string) => void,
): Promise<FloorsResult> {
  const cp = await ensureKafkaTools(log);
  const dir = join(ctx.dir, "floors");
  mkdirSync(dir, { recursive: true });
  const logFile = join(dir, "tools.log");
  const log4j = join(dir, "log4j2.properties");
  writeFileSync(log4j, LOG4J);
  const payloads = join(dir, "bid-payloads.txt");
  writeFileSync(payloads, bidPayloads(`flr-${ctx.id}`, `bench-${ctx.id}-floor`, 1000).join("\n"));
  const consumerConfig = join(dir, "consumer.properties");
  // As the processors consume (read_committed); the records are not transactional, so nothing waits on it.
  writeFileSync(consumerConfig, "isolation.level=read_committed\n");
  const csv = join(dir, "silver-bids.csv");
  await writeCsv(csv, records, `flr-${ctx.id}`, s.partitions);

  const java = [
    "-Xmx512m",
    // '.' decimals in the tools' output whatever the machine's locale.
    "-Duser.language=en",
    "-Duser.country=US",
    `-Dlog4j2.configurationFile=${log4j}`,
    "-cp",
    cp,
  ];
  const produce: number[] = [];
  const produceP99: number[] = [];
  const consume: number[] = [];
  const consumeWithJoin: number[] = [];
  const rebalance: number[] = [];
  const copy: number[] = [];
  const path: number[] = [];
  const commands: string[] = [];
  const note = (cmd: string, args: readonly string[]) => {
    if (commands.length < 3) commands.push(shellLine(cmd, args));
  };
  try {
    for (let run = 0; run < s.runs; run++) {
      const topic = `bench-${ctx.id}-floor-${run}`;
      await ctx.admin.createTopics([
        {
          name: topic,
          partitions: s.partitions,
          replicationFactor: 1,
          configs: { "cleanup.policy": "delete" },
        },
      ]);
      try {
        const pArgs = [
          ...java,
          "org.apache.kafka.tools.ProducerPerformance",
          "--topic",
          topic,
          "--num-records",
          String(records),
          "--throughput",
          "-1",
          "--payload-file",
          payloads,
          "--producer-props",
          `bootstrap.servers=${ctx.brokers}`,
          "acks=all",
          "enable.idempotence=true",
        ];
        note("java", pArgs);
        const p = parseProducerPerf(await runTool("java", pArgs, { logFile }));
        if (p.records !== records)
          throw new Error(`producer perf tool sent ${p.records} of ${records} records`);
        produce.push(p.recordsPerS);
        produceP99.push(p.p99Ms);

        const cArgs = [
          ...java,
          "org.apache.kafka.tools.ConsumerPerformance",
          "--bootstrap-server",
          ctx.brokers,
          "--topic",
          topic,
          "--messages",
          String(records),
          "--group",
          `${topic}-perf-consumer`,
          "--consumer.config",
          consumerConfig,
          "--timeout",
          "60000",
        ];
        note("java", cArgs);
        const c = parseConsumerPerf(await runTool("java", cArgs, { logFile }));
        if (c.records < records)
          throw new Error(`consumer perf tool read ${c.records} of ${records} records`);
        consume.push(c.fetchRecordsPerS);
        consumeWithJoin.push(c.recordsPerS);
        rebalance.push(c.rebalanceMs);
      } finally {
        await ctx.admin.deleteTopics([topic]).catch(() => undefined);
      }

      // A table shaped like silver.bids (columns, defaults, primary key, indexes), empty each run.
      await ctx.pool.query("DROP TABLE IF EXISTS public.floor_bids");
      await ctx.pool.query("CREATE TABLE public.floor_bids (LIKE silver.bids INCLUDING ALL)");
      try {
        const qArgs = [
          "-X",
          "-v",
          "ON_ERROR_STOP=1",
          "-d",
          ctx.databaseUrl,
          "-c",
          "\\timing on",
          "-c",
          `\\copy public.floor_bids (${COPY_COLUMNS.join(", ")}) from '${csv}' with csv`,
        ];
        note("psql", qArgs);
        const q = parsePsqlCopy(await runTool("psql", qArgs, { logFile }));
        if (q.rows !== records) throw new Error(`psql copied ${q.rows} of ${records} rows`);
        copy.push((q.rows * 1000) / q.ms);
      } finally {
        await ctx.pool.query("DROP TABLE IF EXISTS public.floor_bids").catch(() => undefined);
      }
      path.push(
        floorPath({
          produce: produce[run] as number,
          consume: consume[run] as number,
          copy: copy[run] as number,
        }).bidsPerS,
      );
      ctx.logger.info(
        { run, produce: produce[run], consume: consume[run], copy: copy[run], path: path[run] },
        "floors run",
      );
    }
  } finally {
    rmSync(csv, { force: true });
  }
  const kafkaTool = `org.apache.kafka:kafka-tools:${KAFKA_VERSION}`;
  const figures: Figure[] = [
    fig("floor_kafka_produce_per_s", produce, "records/s", {
      tool: `${kafkaTool} ProducerPerformance`,
      records,
      recordBytes: BID_RECORD_BYTES,
      partitions: s.partitions,
      producer: "acks=all, enable.idempotence=true, --throughput -1, tool defaults otherwise, no key",
      p99LatencyMs: produceP99,
      command: commands[0],
    }),
    fig("floor_kafka_consume_per_s", consume, "records/s", {
      tool: `${kafkaTool} ConsumerPerformance`,
      records,
      method: "fetch.nMsg.sec: records / (run time - group join time)",
      withGroupJoinPerS: consumeWithJoin.map((x) => round(x, 0)),
      rebalanceMs: rebalance,
      isolation: "read_committed",
      command: commands[1],
    }),
    fig("floor_pg_copy_rows_per_s", copy, "rows/s", {
      tool: "psql \\copy ... with csv (\\timing)",
      rows: records,
      table: "LIKE silver.bids INCLUDING ALL (primary key + 3 indexes)",
      command: commands[2],
    }),
    fig("floor_path_bids_per_s", path, "bids/s", {
      formula: `1 / (${FLOOR_PATH.produce}/produce + ${FLOOR_PATH.consume}/consume + ${FLOOR_PATH.copyRows}/copy), per run`,
      path: FLOOR_PATH,
    }),
  ];
  return { figures, pathBidsPerS: median(path), commands };
}

/** `e2e_vs_floor_ratio`: the pipeline's sustained rate over the floor of its path. */
export function floorRatio(e2eBidsPerS: number, floorPathBidsPerS: number): number {
  return e2eBidsPerS / floorPathBidsPerS;
}
