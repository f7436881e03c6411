import { loadPipelineFile, s3Prefix } from "../../api/v1alpha1/pipeline.ts";
import { FRAUD_MODEL_ANNOTATION, type FraudModelStatus } from "../../api/v1alpha1/types.ts";
import { readConnectionConfig, requireEnv } from "../../lib/config.ts";
import { createLogger } from "../../lib/log.ts";
import { openPool } from "../db/pool.ts";
import { annotatePipeline, parsePipelineRef, pipelineRefFrom } from "../rollup/annotate.ts";
import { normalizePrefix, s3ClientFromConfig } from "../rollup/lake.ts";
import type { FraudTrainCliOptions } from "./cli.ts";
import { s3ModelStore } from "./store.ts";
import { type TrainResult, trainFromSilver } from "./train.ts";

/** One line for people: what was trained (or why not). */
function formatTrainResult(r: TrainResult): string {
  if (r.status === "skipped") return `fraud model: skipped: ${r.reason}`;
  const m = r.model;
  return `fraud model ${m.version}: ${m.rows} scored bids (${r.sampled} sampled), ${m.forest.trees.length} trees, active from ${m.activeFrom} -> ${r.object}`;
}

/** `gavel fraud train`; also run by `gavel rollup --train-fraud-model`. Returns the result. */
export async function runFraudTrain(
  opts: FraudTrainCliOptions,
  usage: (msg: string) => never,
  /** Report on the log (stderr) instead of stdout: `gavel rollup --json` keeps stdout one JSON document. */
  log = false,
): Promise<TrainResult> {
  const logger = createLogger("fraud-train");
  const now = opts.now === undefined ? new Date() : new Date(opts.now);
  if (Number.isNaN(now.getTime()))
    usage(`--now ${opts.now} is not a time (RFC 3339, e.g. 2026-12-01T00:00:00Z)`);
  const seed = Number(opts.seed ?? "1");
  if (!Number.isSafeInteger(seed)) usage(`--seed ${opts.seed} must be an integer`);
  if (opts.pipelineRef) {
    try {
      parsePipelineRef(opts.pipelineRef);
    } catch (err) {
      usage((err as Error).message);
    }
  }
  const pipeline = await loadPipelineFile(opts.file);
  const spec = pipeline.spec.fraud.model;
  const days = opts.days === undefined ? spec.trainingDays : Number(opts.days);
  if (!Number.isInteger(days) || days < 1 || days > 90)
    usage(`--days ${opts.days} must be a whole number from 1 to 90`);
  const cfg = readConnectionConfig();
  const pool = openPool(requireEnv(cfg, "databaseUrl", "DATABASE_URL"), { max: 2 });
  pool.on("error", (err) => logger.warn({ err }, "idle PostgreSQL connection lost"));
  const bucket = cfg.s3Bucket ?? pipeline.spec.storage.s3.bucket;
  const store = s3ModelStore(
    s3ClientFromConfig({ ...cfg, s3Endpoint: cfg.s3Endpoint ?? pipeline.spec.storage.s3.endpoint }),
    bucket,
  );
  let result: TrainResult;
  try {
    result = await trainFromSilver(pool, store, {
      ...spec,
      trainingDays: days,
      seed,
      pipeline: `${pipeline.metadata.namespace ?? "default"}/${pipeline.metadata.name}`,
      prefix: normalizePrefix(s3Prefix(pipeline)),
      now,
    });
  } finally {
    await pool.end();
  }
  if (log) logger.info({ result: summary(result) }, formatTrainResult(result));
  else
    process.stdout.write(
      opts.json ? `${JSON.stringify(summary(result))}\n` : `${formatTrainResult(result)}\n`,
    );
  const ref = pipelineRefFrom(opts.pipelineRef, process.env);
  if (ref && result.status === "trained") {
    const status: FraudModelStatus = {
      version: result.model.version,
      object: result.object,
      trainedAt: result.model.trainedAt,
      activeFrom: result.model.activeFrom,
      rows: result.model.rows,
    };
    try {
      await annotatePipeline(cfg.kubeconfig, ref, FRAUD_MODEL_ANNOTATION, status);
    } catch (err) {
      // The model is written either way; bid-processors find it on S3.
      logger.error({ err, pipeline: ref }, "could not record the fraud model on the AuctionPipeline");
    }
  }
  return result;
}

/** The result without the forest (for --json). */
function summary(r: TrainResult): object {
  if (r.status === "skipped") return r;
  const { forest: _forest, ...model } = r.model;
  return { status: r.status, key: r.key, object: r.object, sampled: r.sampled, model };
}
