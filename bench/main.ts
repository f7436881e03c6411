/**
 * `npm run bench [-- --json FILE] [--only NAME,...] [--quick] [--profile | --alloc-profile]`
 *
 * Benchmarks on the real services of the test environment (started when
 * not up): ingest HTTP, bid-processor, silver-writer, end to end at fixed
 * offered rates and at saturation, kafkajs vs librdkafka, gold rollup, the
 * services' floors with tools that are not Gavel's (Kafka's perf tools,
 * psql \copy) and the end-to-end saturation with 1, 2 and 3 replicas.
 * Prints the machine and each figure (median of several runs); `--json`
 * writes a list of `{name, value, unit, runs}` with stable names. Measures,
 * never asserts. See docs/benchmarks.md.
 */

import { writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { parseArgs } from "node:util";
import { createLogger } from "../lib/log.ts";
import { KAFKA_VERSION } from "../test/env/services.ts";
import { envFile, paths, readEnvFile, statuses, up } from "../test/env/testenv.ts";
import { benchFloors, floorRatio } from "./floors.ts";
import type { BenchClient } from "./lib.ts";
import {
  type BenchContext,
  median,
  memoryLimited,
  openContext,
  POD_MEMORY_LIMIT_BYTES,
  round,
} from "./lib.ts";
import { benchE2e, benchIngest, benchScale, benchStagesOnce, type Figure, type Sizes } from "./stages.ts";

const BENCHES = ["ingest", "stages", "e2e", "clients", "rollup", "floors", "scale"] as const;
type BenchName = (typeof BENCHES)[number];

const USAGE = `usage: npm run bench -- [--json FILE] [--only ${BENCHES.join(",")}] [--quick] [--profile | --alloc-profile]
  --json FILE   also write the figures as JSON: [{name, value, unit, runs, ...}]
  --only LIST   run only these benchmarks (comma-separated)
  --quick       small sizes and one run each (a smoke test, not figures to quote)
  --profile     run the processors with --cpu-prof and --heap-prof (what is live at exit)
  --alloc-profile  --cpu-prof and an allocation sampler instead (every allocation, collected ones too)
                (profiles under .testenv/bench/<id>/profiles; read them with node bench/profile.ts FILE)
  --rates LIST  end-to-end offered rates in bids/s (default 1000,10000,50000)
  floors: Kafka's ProducerPerformance / ConsumerPerformance and psql \\copy alone (1,000,000 records,
          --quick 100,000), the floor of the pipeline's path and e2e_vs_floor_ratio
  scale:  the e2e saturation with 1, 2 and 3 bid-processor and silver-writer replicas`;

/** Records per floor tool run (produce, consume, COPY rows). */
const FLOOR_RECORDS = { full: 1_000_000, quick: 100_000 } as const;
/** Kafka client of the e2e bench: the processes' default (ADR 0006); the scale bench uses the same, so its 1-replica step repeats e2e's saturation. */
const E2E_CLIENT = "default";
/** Bid-processor and silver-writer replicas of the scale bench's steps (ingest stays 1). */
const SCALE_REPLICAS = [1, 2, 3] as const;

interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kafka: string;
  postgres: string;
  load1: number;
}

async function machine(ctx: BenchContext): Promise<Machine> {
  const pgv = await ctx.pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
  const { loadavg } = await import("node:os");
  return {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memoryGiB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    kafka: `Apache Kafka ${KAFKA_VERSION} (KRaft, 1 broker, same machine)`,
    postgres: `PostgreSQL ${pgv.rows[0]?.v ?? "?"} (same machine)`,
    load1: round(loadavg()[0] ?? 0, 2),
  };
}

function print(f: Figure): void {
  const v = f.unit === "ms" ? f.value.toFixed(1) : f.value.toLocaleString("en-US");
  const samples = Array.isArray(f.samples) ? ` (runs: ${(f.samples as number[]).join(", ")})` : "";
  process.stdout.write(`  ${f.name.padEnd(34)} ${v.padStart(12)} ${f.unit}${samples}\n`);
  // Where a CPU figure's time went, and how the bid-processor cut its work.
  if (f.unit === "ms" && isRecord(f.perProcess))
    process.stdout.write(
      `    per process: ${Object.entries(f.perProcess)
        .map(([k, x]) => `${k} ${x}`)
        .join(", ")}\n`,
    );
  if (isRecord(f.bidProcessor))
    process.stdout.write(
      `    bid-processor per 1,000 bids: ${f.bidProcessor.transactionsPer1k} transactions, ${f.bidProcessor.bidsBatchesPer1k} batches of bids\n`,
    );
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

async function ensureTestenv(): Promise<void> {
  if (process.env.KAFKA_BOOTSTRAP_SERVERS && process.env.DATABASE_URL) return;
  const down = (await statuses()).filter((s) => !s.up && ["kafka", "postgres", "s3"].includes(s.name));
  if (down.length > 0) await up({ only: down.map((s) => s.name).join(",") });
  Object.assign(process.env, readEnvFile(envFile(paths())));
}

export async function main(argv = process.argv.slice(2)): Promise<void> {
  let args: ReturnType<typeof parse>;
  const parse = (a: string[]) =>
    parseArgs({
      args: a,
      options: {
        json: { type: "string" },
        only: { type: "string" },
        quick: { type: "boolean", default: false },
        profile: { type: "boolean", default: false },
        "alloc-profile": { type: "boolean", default: false },
        rates: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  try {
    args = parse(argv);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const only = new Set<BenchName>(
    (args.values.only?.split(",").map((s) => s.trim()) ?? [...BENCHES]).filter(Boolean) as BenchName[],
  );
  for (const o of only) {
    if (!BENCHES.includes(o)) {
      process.stderr.write(`unknown benchmark '${o}'\n${USAGE}\n`);
      process.exitCode = 2;
      return;
    }
  }
  const quick = args.values.quick;
  const rates = (args.values.rates ?? "1000,10000,50000").split(",").map(Number);
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) {
    process.stderr.write(`--rates: positive numbers, comma-separated\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const sizes: Sizes = quick
    ? { seconds: 3, runs: 1, bids: 20_000, auctions: 500, partitions: 6 }
    : { seconds: 10, runs: 3, bids: 200_000, auctions: 2_000, partitions: 6 };
  const logger = createLogger("bench", process.env.LOG_LEVEL ?? "info");

  await ensureTestenv();
  const profile = args.values["alloc-profile"] ? "cpu+alloc" : args.values.profile ? "cpu+heap" : false;
  const ctx = await openContext(logger, { profile });
  const figures: Figure[] = [];
  const rss: Record<string, number> = {};
  const add = (fs: readonly Figure[]) => {
    for (const f of fs) {
      figures.push(f);
      print(f);
    }
  };
  const noteRss = (r: Record<string, number>) => {
    for (const [k, v] of Object.entries(r)) if (Number.isFinite(v)) rss[k] = Math.max(rss[k] ?? 0, v);
  };
  try {
    const m = await machine(ctx);
    process.stdout.write(
      `machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB; node ${m.node}; ${m.kafka}; ${m.postgres}; load average ${m.load1} at start\n`,
    );
    process.stdout.write(
      `sizes: ${sizes.runs} run(s) per figure, ${sizes.seconds} s per HTTP run, ${sizes.bids} pre-filled bids, ${sizes.auctions} auctions, ${sizes.partitions} partitions; work folder ${ctx.dir}\n`,
    );

    if (only.has("ingest")) {
      process.stdout.write("ingest (HTTP -> Kafka, acks=all):\n");
      const r = await benchIngest(ctx, sizes);
      add(r.figures);
      noteRss({ ingest: r.rssMiB });
    }

    const stageRuns = async (client: BenchClient) => {
      const bp: number[] = [];
      const sw: number[] = [];
      for (let run = 0; run < sizes.runs; run++) {
        const r = await benchStagesOnce(ctx, sizes, client, run);
        bp.push(r.bidProcessorPerS);
        sw.push(r.silverRowsPerS);
        noteRss(r.rss);
      }
      return { bp, sw };
    };

    if (only.has("stages")) {
      process.stdout.write(
        "bid-processor and silver-writer (one replica each, pre-filled topics, the default Kafka client):\n",
      );
      const d = await stageRuns("default");
      add([
        { ...figOf("bid_processor_bids_per_s", d.bp, "bids/s"), replicas: 1, client: "kafkajs (default)" },
        { ...figOf("silver_writer_rows_per_s", d.sw, "rows/s"), replicas: 1, client: "kafkajs (default)" },
      ]);
    }

    if (only.has("e2e")) {
      process.stdout.write("end to end (HTTP -> ingest -> bid-processor -> silver-writer -> PostgreSQL):\n");
      const r = await benchE2e(ctx, sizes, {
        rates,
        client: E2E_CLIENT,
        saturate: true,
      });
      add(r.figures);
      noteRss(r.rss);
    }

    if (only.has("clients")) {
      process.stdout.write("kafkajs vs @confluentinc/kafka-javascript (librdkafka), same stages:\n");
      try {
        const kafkajsStages = await stageRuns("kafkajs");
        const c = await stageRuns("confluent");
        const kj = median(kafkajsStages.bp);
        const cf = median(c.bp);
        add([
          figOf("bid_processor_bids_per_s_kafkajs", kafkajsStages.bp, "bids/s"),
          figOf("bid_processor_bids_per_s_confluent", c.bp, "bids/s"),
          figOf("silver_writer_rows_per_s_kafkajs", kafkajsStages.sw, "rows/s"),
          figOf("silver_writer_rows_per_s_confluent", c.sw, "rows/s"),
          {
            name: "kafkajs_vs_confluent_ratio",
            value: round(kj / cf, 2),
            unit: "ratio",
            runs: sizes.runs,
            definition:
              "bid_processor_bids_per_s with kafkajs divided by the same with confluent (> 1: kafkajs faster)",
          },
        ]);
      } catch (err) {
        process.stdout.write(`  skipped: ${(err as Error).message}\n`);
      }
    }

    if (only.has("rollup")) {
      process.stdout.write("gold rollup (silver -> DuckDB -> gold, Parquet to S3):\n");
      const { runRollupBench } = await import("./rollup.ts");
      const r = await runRollupBench(quick ? { bids: 100_000, auctions: 1_000, runs: 1 } : {});
      add([r as Figure]);
    }

    let floorCommands: readonly string[] = [];
    if (only.has("floors")) {
      const records = quick ? FLOOR_RECORDS.quick : FLOOR_RECORDS.full;
      process.stdout.write(
        `floors (Kafka's own perf tools and psql \\copy, one at a time, ${records.toLocaleString("en-US")} records each):\n`,
      );
      const r = await benchFloors(ctx, sizes, records, (msg) => process.stdout.write(`  ${msg}\n`));
      add(r.figures);
      floorCommands = r.commands;
    }

    if (only.has("scale")) {
      process.stdout.write(
        `replica scaling (e2e saturation with ${SCALE_REPLICAS.join(", ")} bid-processor and silver-writer replicas, 1 ingest):\n`,
      );
      await benchScale(ctx, sizes, {
        replicas: SCALE_REPLICAS,
        client: E2E_CLIENT,
        add,
        log: (line) => process.stdout.write(`${line}\n`),
      });
    }

    if (only.has("floors")) {
      const ratio = floorRatioFigure(figures, sizes.runs);
      process.stdout.write("end to end against the floor of its path:\n");
      if (ratio) add([ratio]);
      else process.stdout.write("  e2e_vs_floor_ratio: needs e2e or scale in the same run\n");
      for (const c of floorCommands) process.stdout.write(`  tool: ${c}\n`);
    }

    if (Object.keys(rss).length > 0) {
      const limited = [...memoryLimited.values()];
      process.stdout.write(
        `memory (peak RSS per processor process; ${
          limited.length > 0 && limited.every(Boolean)
            ? `each in a ${POD_MEMORY_LIMIT_BYTES / 2 ** 20} MiB memory cgroup, as a pod with the default limit`
            : "NO memory limit (cgroups not writable here): Node sizes its heap from the machine's memory"
        }):\n`,
      );
      for (const [k, v] of Object.entries(rss))
        process.stdout.write(`  ${k.padEnd(34)} ${v.toFixed(0).padStart(12)} MiB\n`);
      add([
        {
          name: "processor_rss_mib",
          value: round(Math.max(...Object.values(rss)), 0),
          unit: "MiB",
          runs: 1,
          perProcess: Object.fromEntries(Object.entries(rss).map(([k, v]) => [k, round(v, 0)])),
          memoryLimitMiB:
            limited.length > 0 && limited.every(Boolean) ? POD_MEMORY_LIMIT_BYTES / 2 ** 20 : null,
        },
      ]);
    }
    const json = args.values.json;
    if (json) {
      writeFileSync(json, `${JSON.stringify(figures, null, 2)}\n`);
      process.stdout.write(`wrote ${figures.length} figures to ${json}\n`);
    }
  } finally {
    await ctx.close();
  }
}

/**
 * `e2e_vs_floor_ratio`: `e2e_max_sustained_bids_per_s` (or, when only the
 * scale bench ran, its one-replica step: the same closed loop) over
 * `floor_path_bids_per_s` of the same run. Undefined when either is missing.
 */
export function floorRatioFigure(figures: readonly Figure[], runs: number): Figure | undefined {
  const floor = figures.find((f) => f.name === "floor_path_bids_per_s");
  const e2e =
    figures.find((f) => f.name === "e2e_max_sustained_bids_per_s") ??
    figures.find((f) => f.name === "e2e_scale_1_bids_per_s");
  if (!floor || !e2e) return undefined;
  return {
    name: "e2e_vs_floor_ratio",
    value: round(floorRatio(e2e.value, floor.value), 3),
    unit: "ratio",
    runs,
    e2eFigure: e2e.name,
    e2eBidsPerS: e2e.value,
    floorPathBidsPerS: floor.value,
    definition:
      "sustained end-to-end bids/s divided by floor_path_bids_per_s, the bids/s the services could carry if each bid cost them only 3 produces + 3 consumes at the Kafka perf tools' rates and 1 COPY row at psql's (< 1: the pipeline is slower than its floor)",
  };
}

function figOf(name: string, values: readonly number[], unit: string): Figure {
  return {
    name,
    value: round(median(values), 0),
    unit,
    runs: values.length,
    samples: values.map((v) => round(v, 0)),
  };
}

if (import.meta.main) {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err) => {
      process.stderr.write(`bench failed: ${(err as Error).stack ?? err}\n`);
      process.exit(1);
    },
  );
}
