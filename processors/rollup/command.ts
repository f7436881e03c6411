import { SingleBar } from "cli-progress";
import { LAST_ROLLUP_ANNOTATION } from "../../api/v1alpha1/types.ts";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { openPool } from "../db/pool.ts";
import { recordRollup, rollupMetrics } from "../runtime/instrument.ts";
import { Registry } from "../runtime/metrics.ts";
import { annotatePipeline, lastRollup, parsePipelineRef, pipelineRefFrom } from "./annotate.ts";
import { formatCheckReport } from "./checks.ts";
import type { RollupCliOptions } from "./cli.ts";
import { addDays, dayRange, parseDay, RollupUsageError, validateTimeZone, yesterday } from "./days.ts";
import { s3ClientFromConfig, s3Lake } from "./lake.ts";
import { formatSummary, type RollupResult, rollupRange } from "./rollup.ts";

interface PipelineSettings {
  timeZone?: string;
  bucket?: string;
  prefix?: string;
}

async function pipelineSettings(file: string | undefined): Promise<PipelineSettings> {
  if (!file) return {};
  const { loadPipelineFile, s3Prefix } = await import("../../api/v1alpha1/pipeline.ts");
  const p = await loadPipelineFile(file);
  return { timeZone: p.spec.rollup.timeZone, bucket: p.spec.storage.s3.bucket, prefix: s3Prefix(p) };
}

/** Which days a command line asks for; throws RollupUsageError on bad combinations. */
export function resolveDays(
  opts: Pick<RollupCliOptions, "date" | "from" | "to" | "backfillDays">,
  now: Date,
  timeZone: string,
): string[] {
  if (opts.date && (opts.from || opts.to))
    throw new RollupUsageError("use either --date or --from/--to, not both");
  if ((opts.from && !opts.to) || (!opts.from && opts.to))
    throw new RollupUsageError("--from and --to go together");
  const back = opts.backfillDays === undefined ? 0 : Number(opts.backfillDays);
  if (!Number.isInteger(back) || back < 0 || back > 3650)
    throw new RollupUsageError(`--backfill-days ${opts.backfillDays} must be a whole number from 0 to 3650`);
  if (opts.from && opts.to) {
    if (back > 0)
      throw new RollupUsageError("--backfill-days goes with --date (or the default day), not --from/--to");
    return dayRange(parseDay(opts.from), parseDay(opts.to));
  }
  const last = opts.date ? parseDay(opts.date) : yesterday(now, timeZone);
  return dayRange(addDays(last, -back), last);
}

export async function runRollupCommand(opts: RollupCliOptions, usage: (msg: string) => never): Promise<void> {
  const logger = createLogger("rollup");
  // A Job: its metrics leave through OTLP (OTEL_EXPORTER_OTLP_ENDPOINT), flushed before exit.
  const registry = new Registry("gavel_", { serviceName: "gavel-rollup" });
  const metrics = rollupMetrics(registry);
  let days: string[];
  let timeZone: string;
  let settings: PipelineSettings;
  try {
    settings = await pipelineSettings(opts.file);
    timeZone = validateTimeZone(opts.timeZone ?? settings.timeZone ?? "UTC");
    days = resolveDays(opts, new Date(), timeZone);
    if (opts.pipelineRef) parsePipelineRef(opts.pipelineRef);
    if (opts.trainFraudModel && !opts.file)
      throw new RollupUsageError("--train-fraud-model needs -f with the pipeline (spec.fraud.model)");
  } catch (err) {
    if (err instanceof RollupUsageError || (err instanceof Error && err.message.startsWith("--pipeline-ref")))
      usage(err.message);
    throw err;
  }
  const cfg = readConnectionConfig();
  const pool = openPool(requireEnv(cfg, "databaseUrl", "DATABASE_URL"), { max: 3 });
  // An idle connection dropped by the server must not crash the process; the next query reconnects.
  pool.on("error", (err) => logger.warn({ err }, "idle PostgreSQL connection lost"));
  const bucket = cfg.s3Bucket ?? settings.bucket;
  if (opts.parquet && !bucket) requireEnv(cfg, "s3Bucket", "S3_BUCKET");
  const lake =
    opts.parquet && bucket
      ? s3Lake(s3ClientFromConfig(cfg), bucket, opts.s3Prefix ?? settings.prefix)
      : undefined;

  const bar =
    days.length > 1 && process.stderr.isTTY && !opts.json
      ? new SingleBar({
          format: "rollup [{bar}] {value}/{total} days | {day} {status}",
          stream: process.stderr,
        })
      : undefined;
  bar?.start(days.length, 0, { day: "", status: "" });
  let results: RollupResult[] = [];
  try {
    results = await rollupRange(
      { pool, logger, ...(lake ? { lake } : {}) },
      {
        days,
        timeZone,
        skipPartial: opts.skipPartial,
        keepGoing: opts.keepGoing,
        onDay: (r, i) => {
          recordRollup(metrics, r);
          bar?.update(i + 1, { day: r.day, status: r.status });
          if (!opts.json && !bar) process.stdout.write(`${formatSummary(r)}\n`);
        },
      },
    );
  } finally {
    bar?.stop();
    await pool.end();
    await registry.shutdown().catch((err) => logger.warn({ err }, "exporting rollup metrics failed"));
  }
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else if (bar) for (const r of results) process.stdout.write(`${formatSummary(r)}\n`);

  const failed = results.filter((r) => r.status === "failed");
  for (const r of failed) {
    process.stderr.write(`rollup of ${r.day} FAILED; the previous gold of that day is unchanged.\n`);
    const report = formatCheckReport(r.checks);
    process.stderr.write(`${report || r.error || ""}\n`);
  }
  const ref = pipelineRefFrom(opts.pipelineRef, process.env);
  if (ref && results.length > 0) {
    try {
      await annotatePipeline(cfg.kubeconfig, ref, LAST_ROLLUP_ANNOTATION, lastRollup(results, new Date()));
    } catch (err) {
      // The gold is written either way; a missing report is logged, not a failed run.
      logger.error({ err, pipeline: ref }, "could not record the result on the AuctionPipeline");
    }
  }
  if (failed.length > 0) process.exitCode = 1;
  else if (opts.trainFraudModel && opts.file) {
    // After a good rollup only: the silver it read is what the model learns from.
    // A failed training fails the run (exit 1) after the gold and its
    // annotation are written: the Job shows it, the gold stays.
    const { runFraudTrain } = await import("../fraud/command.ts");
    try {
      await runFraudTrain(
        { file: opts.file, ...(opts.pipelineRef ? { pipelineRef: opts.pipelineRef } : {}) },
        usage,
        opts.json === true,
      );
    } catch (err) {
      logger.error({ err }, "training the fraud model failed; bid-processors keep the models they have");
      process.exitCode = 1;
    }
  }
}
