/**
 * `npm run bench:fraud`: precision, recall and false-positive rate of fraud
 * scoring, rules alone and rules + the anomaly model, on generated data
 * whose fraud is known (bench/fraud-eval.ts). The model is trained on one
 * dataset (seed --train-seed) exactly as `gavel fraud train` trains it
 * (buildModel over the logged features), and evaluated on another (seed
 * --seed): no bid of the evaluation is in the training data.
 *
 *   node bench/fraud.ts [--seed 2] [--train-seed 1] [--scale 1] [--json]
 */
import { parseArgs } from "node:util";
import { DEFAULT_FRAUD_CONFIG } from "../processors/domain/fraud.ts";
import { anomalyOf } from "../processors/fraud/model.ts";
import { FRAUD_BID_KINDS } from "../test/generate/dataset.ts";
import {
  type Detection,
  detection,
  evaluationDataset,
  replayScored,
  trainOn,
  withAnomalyWeight,
} from "./fraud-eval.ts";

const { values } = parseArgs({
  options: {
    seed: { type: "string", default: "2" },
    "train-seed": { type: "string", default: "1" },
    scale: { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});
const seed = Number(values.seed);
const trainSeed = Number(values["train-seed"]);
const scale = Number(values.scale);
if (![seed, trainSeed, scale].every(Number.isFinite) || scale <= 0) {
  process.stderr.write("usage: node bench/fraud.ts [--seed N] [--train-seed N] [--scale X] [--json]\n");
  process.exit(2);
}

const START = Date.parse("2026-11-01T00:00:00Z");
const t0 = performance.now();
const train = evaluationDataset(trainSeed, START, scale);
const trainScored = replayScored(train, DEFAULT_FRAUD_CONFIG);
const { model, models } = trainOn(trainScored, new Date(START - 86_400_000), "bench/fraud");
const loadedModel = models.at(START);
if (!loadedModel) throw new Error("unreachable: the model is active from before the evaluation");
const trainMs = performance.now() - t0;

// Scoring cost: the forest's part of scoring one bid, over the training features.
const vectors = trainScored.map((b) => b.features);
let sink = 0;
for (const v of vectors.slice(0, 2000)) sink += anomalyOf(loadedModel, v).score; // warm-up
const loops = Math.max(1, Math.ceil(200_000 / vectors.length));
const s0 = performance.now();
for (let k = 0; k < loops; k++) for (const v of vectors) sink += anomalyOf(loadedModel, v).score;
const scoreUs = ((performance.now() - s0) * 1000) / (loops * vectors.length);
if (Number.isNaN(sink)) throw new Error("unreachable: scores are numbers");

const test = evaluationDataset(seed, START + 30 * 86_400_000, scale);
const withWeight = withAnomalyWeight;
const rules = replayScored(test, withWeight(0));
const thresholds = [DEFAULT_FRAUD_CONFIG.alertThreshold, DEFAULT_FRAUD_CONFIG.quarantineThreshold];
interface Row {
  readonly setup: string;
  readonly at: Detection[];
}
const rows: Row[] = [{ setup: "rules only", at: thresholds.map((t) => detection(rules, t)) }];
const weights = [0.1, 0.2, 0.3, 0.4, 0.5];
for (const w of weights) {
  const scored = replayScored(test, withWeight(w), { models });
  rows.push({
    setup: `rules + model (anomaly weight ${w})`,
    at: thresholds.map((t) => detection(scored, t)),
  });
}
// The model alone: its calibrated strength as the only signal.
const alone = replayScored(
  test,
  {
    ...DEFAULT_FRAUD_CONFIG,
    weights: {
      velocity: 0,
      newAccountHighBid: 0,
      shillPattern: 0,
      amountOutlier: 0,
      lastSecondBurst: 0,
      anomaly: 1,
    },
  },
  { models },
);
rows.push({ setup: "model alone (anomaly weight 1)", at: thresholds.map((t) => detection(alone, t)) });

if (values.json) {
  process.stdout.write(
    `${JSON.stringify({ seed, trainSeed, scale, model: model.version, rows }, null, 2)}\n`,
  );
} else {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  process.stdout.write(
    `fraud scoring on generated data: train seed ${trainSeed} (${trainScored.length} scored bids, model ${model.version}, ${Math.round(trainMs)} ms), evaluation seed ${seed} (${rules.length} scored bids, ${rules.filter((b) => FRAUD_BID_KINDS.has(b.kind)).length} of them fraud)\n`,
  );
  process.stdout.write(
    `anomaly scoring: ${scoreUs.toFixed(2)} µs per bid (${model.forest.trees.length} trees, sample ${model.forest.sampleSize})\n`,
  );
  process.stdout.write(
    "| setup | threshold | flagged | precision | recall | false-positive rate |\n| --- | --- | --- | --- | --- | --- |\n",
  );
  for (const r of rows)
    for (const d of r.at)
      process.stdout.write(
        `| ${r.setup} | ${d.threshold} | ${d.flagged} | ${pct(d.precision)} | ${pct(d.recall)} | ${pct(d.falsePositiveRate)} |\n`,
      );
}
