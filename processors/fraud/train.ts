/**
 * Training the fraud anomaly model: the scored bids of the last
 * `trainingDays` (their logged `fraud_features` in silver), a deterministic
 * sample of them, an Isolation Forest with a fixed seed, the calibration of
 * the `anomaly` signal from the training scores, one JSON object under
 * `<prefix>models/fraud/`. The same silver rows and options give the same
 * forest and calibration, byte for byte; each run is its own version (its
 * training time and a hash of the content).
 */
import type pg from "pg";
import { type Forest, scoreForest, trainForest } from "./forest.ts";
import {
  FEATURES,
  type FraudModel,
  MODEL_FORMAT,
  MODEL_KIND,
  modelKey,
  modelVersion,
  roundFeature,
} from "./model.ts";
import type { ModelStore } from "./store.ts";

export interface TrainSettings {
  readonly trainingDays: number;
  readonly minRows: number;
  readonly trees: number;
  readonly sampleSize: number;
  readonly contamination: number;
  readonly activationDelaySeconds: number;
  /** Seed of the sample and of the forest. Default 1. */
  readonly seed?: number;
}

/** Rows read for training: enough for every tree's subsample and for the calibration quantiles. */
const MAX_TRAINING_ROWS = 100_000;

/**
 * Builds a model from feature rows (pure). `rows` is the number of scored
 * bids in the window (the sample may be smaller).
 */
export function buildModel(
  sample: readonly (readonly number[])[],
  o: TrainSettings & {
    readonly pipeline: string;
    /** When training finished (the version's time). */
    readonly trainedAt: Date;
    readonly window: { readonly from: Date; readonly to: Date };
    readonly rows: number;
  },
): FraudModel {
  const seed = o.seed ?? 1;
  const forest: Forest = trainForest(sample, { trees: o.trees, sampleSize: o.sampleSize, seed });
  const scores = sample.map((x) => scoreForest(forest, x)).sort((a, b) => a - b);
  const q = (p: number) => scores[Math.min(scores.length - 1, Math.floor(p * scores.length))] as number;
  const low = q(1 - o.contamination);
  // Many equal vectors at the top can put the two quantiles together: then
  // the most anomalous training bid is full strength (and at least a 0.02
  // span), so a hair above `low` is not already a full signal.
  let high = q(1 - o.contamination / 10);
  if (high - low < 0.02) high = Math.max(scores[scores.length - 1] as number, low + 0.02);
  const features = FEATURES.map((f, d) => {
    let min = Number.POSITIVE_INFINITY;
    let max = Number.NEGATIVE_INFINITY;
    let sum = 0;
    for (const r of sample) {
      const v = r[d] as number;
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
    }
    const mean = sum / sample.length;
    let ss = 0;
    for (const r of sample) ss += ((r[d] as number) - mean) ** 2;
    return {
      name: f.name,
      transform: f.transform,
      description: f.description,
      min,
      max,
      mean: roundFeature(mean),
      sd: roundFeature(Math.sqrt(ss / sample.length)),
    };
  });
  // From when it is published (never from a window end in the past, which
  // would make it active before any replica could have loaded it).
  const activeFrom = new Date(
    Math.max(o.trainedAt.getTime(), o.window.to.getTime()) + o.activationDelaySeconds * 1000,
  );
  const body: Omit<FraudModel, "version"> = {
    kind: MODEL_KIND,
    format: MODEL_FORMAT,
    algorithm: "isolation-forest",
    pipeline: o.pipeline,
    trainedAt: o.trainedAt.toISOString(),
    activeFrom: activeFrom.toISOString(),
    window: { from: o.window.from.toISOString(), to: o.window.to.toISOString() },
    rows: o.rows,
    seed,
    contamination: o.contamination,
    features,
    calibration: { low: Math.min(low, 1), high: Math.min(high, 1) },
    forest: {
      sampleSize: forest.sampleSize,
      trees: forest.trees.map((t) => ({ f: [...t.f], t: [...t.t], l: [...t.l], r: [...t.r], n: [...t.n] })),
    },
  };
  const version = modelVersion(o.trainedAt, JSON.stringify(body));
  const { kind, format, ...rest } = body;
  // version near the top, for people reading the object.
  return { kind, format, version, ...rest };
}

export type TrainResult =
  | {
      readonly status: "trained";
      readonly model: FraudModel;
      readonly key: string;
      readonly object: string;
      readonly sampled: number;
    }
  | { readonly status: "skipped"; readonly reason: string; readonly rows: number };

/**
 * Reads the window's scored bids from silver, trains, writes the model.
 * Accepted bids and the bids quarantined as fraud are the scored ones;
 * rows are sampled by a hash of bid_id and the seed, ties broken by where
 * the row came from, so the sample is the same whatever order PostgreSQL
 * returns rows in; count and sample are read from one snapshot.
 */
export async function trainFromSilver(
  pool: pg.Pool,
  store: ModelStore,
  o: TrainSettings & {
    readonly pipeline: string;
    readonly prefix: string;
    /** End of the training window. */
    readonly now: Date;
    /** Wall clock (tests). Default Date.now. */
    readonly clock?: () => number;
  },
): Promise<TrainResult> {
  const to = o.now;
  const from = new Date(to.getTime() - o.trainingDays * 86_400_000);
  const dims = FEATURES.length;
  const scored = `
    SELECT 0 AS src, bid_id, source_partition, source_offset, fraud_features FROM silver.bids
     WHERE placed_at >= $1 AND placed_at < $2 AND array_length(fraud_features, 1) = $3
    UNION ALL
    SELECT 1, bid_id, source_partition, source_offset, fraud_features FROM silver.bid_rejections
     WHERE reason = 'fraud_quarantine' AND placed_at >= $1 AND placed_at < $2
       AND array_length(fraud_features, 1) = $3 AND bid_id IS NOT NULL`;
  const params = [from.toISOString(), to.toISOString(), dims];
  const client = await pool.connect();
  let rows: number;
  let sample: number[][];
  try {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const count = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (${scored}) s`, params);
    rows = Number(count.rows[0]?.n ?? 0);
    if (rows < o.minRows) {
      await client.query("COMMIT");
      return {
        status: "skipped",
        rows,
        reason: `${rows} scored bids between ${from.toISOString()} and ${to.toISOString()}, fewer than minRows ${o.minRows}: no model written`,
      };
    }
    const res = await client.query<{ fraud_features: number[] }>(
      `SELECT fraud_features FROM (${scored}) s
        ORDER BY md5($4 || ':' || bid_id), bid_id, src, source_partition, source_offset LIMIT $5`,
      [...params, String(o.seed ?? 1), MAX_TRAINING_ROWS],
    );
    await client.query("COMMIT");
    sample = res.rows.map((r) => r.fraud_features.map(Number));
  } catch (err) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  const model = buildModel(sample, {
    ...o,
    trainedAt: new Date((o.clock ?? Date.now)()),
    window: { from, to },
    rows,
  });
  const key = modelKey(o.prefix, model.version);
  await store.put(key, `${JSON.stringify(model)}\n`);
  return { status: "trained", model, key, object: `${store.location}${key}`, sampled: sample.length };
}
