/**
 * The fraud anomaly model: what the stream scores bids with and the gold job
 * trains (docs/fraud.md). A model is one self-describing JSON object under
 * the pipeline's S3 prefix, `<prefix>models/fraud/<version>.json`: the
 * features it reads (names, how each was transformed, their training
 * distribution), an Isolation Forest over them, the calibration that turns
 * the forest's score into the `anomaly` signal's strength, the training
 * window, and `activeFrom`, the record time from which bids are scored with
 * it. Pure: no I/O here (processors/fraud/store.ts reads and writes them).
 *
 * Why `activeFrom`: which model scores a bid must depend on the log only, so
 * that a replay after a crash scores every bid as the first run did. A bid is
 * scored by the newest loaded model whose `activeFrom` is at or before the
 * bid's arrival (its partition clock), and a model becomes active some time
 * after it was trained (`spec.fraud.model.activationDelaySeconds`), long
 * enough for every replica to have loaded it.
 */
import { createHash } from "node:crypto";
import { type Static, Type } from "@sinclair/typebox";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { type CompiledForest, compileForest, type Forest, forestProblem, scoreCompiled } from "./forest.ts";

/**
 * The features of a bid, in the order of a model's vectors. The stream
 * computes them when it scores a bid (FraudScorer.score), from the same state
 * as the rules, and logs them with the bid (`fraud_features` of the accepted
 * or rejected record, a column of silver), so a model is trained on exactly
 * the values it is later applied to.
 */
export const FEATURES = [
  {
    name: "bidder_bids_60s",
    transform: "count",
    description: "Bids of the bidder within the last 60 s of event time, this one included",
  },
  {
    name: "log_amount_to_price",
    transform: "ln(amount / current price, or start price before the first bid)",
    description: "How far the amount jumps above the auction's price",
  },
  {
    name: "log_amount_to_start",
    transform: "ln(amount / start price)",
    description: "The amount against the auction's start price",
  },
  {
    name: "category_z",
    transform:
      "z-score of ln(amount) among accepted amounts of the category and currency (0 below 30 samples)",
    description: "How unusual the amount is for the category",
  },
  {
    name: "log_seconds_to_end",
    transform: "ln(1 + seconds from placed_at to the effective end, 0 when past)",
    description: "Time left in the auction",
  },
  {
    name: "log_account_age_days",
    transform: "ln(1 + account age in days at placed_at), -1 when the user is unknown",
    description: "Age of the bidder's account",
  },
  {
    name: "seller_auctions",
    transform: "count",
    description: "Distinct auctions of this seller the bidder has bid on, this one included",
  },
  {
    name: "seller_win_rate",
    transform: "wins / seller_auctions",
    description: "How often the bidder won this seller's auctions",
  },
  {
    name: "linked_bidders_last_10s",
    transform: "count",
    description:
      "Other bidders linked to this one (same country, accounts created within an hour) who bid in the auction's last 10 s",
  },
] as const;
export type FeatureName = (typeof FEATURES)[number]["name"];
export const FEATURE_NAMES: readonly FeatureName[] = FEATURES.map((f) => f.name);

/** Logged features are rounded to 4 decimals: compact records, and exact through JSON and PostgreSQL. */
export function roundFeature(x: number): number {
  return Math.round(x * 1e4) / 1e4;
}

export const MODEL_KIND = "gavel.dev/fraud-model";
export const MODEL_FORMAT = 1;

const Num = Type.Number();
/** Times in models are UTC RFC 3339 (as toISOString writes them): parsed the same in every time zone. */
const RFC3339_UTC = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}([.][0-9]{1,9})?Z$";
const FeatureStats = Type.Object({
  name: Type.String(),
  transform: Type.String(),
  description: Type.String(),
  min: Num,
  max: Num,
  mean: Num,
  sd: Num,
});
const Tree = Type.Object({
  f: Type.Array(Type.Integer()),
  t: Type.Array(Num),
  l: Type.Array(Type.Integer()),
  r: Type.Array(Type.Integer()),
  n: Type.Array(Type.Integer()),
});
const FraudModelSchema = Type.Object({
  kind: Type.Literal(MODEL_KIND),
  format: Type.Literal(MODEL_FORMAT),
  version: Type.String({ pattern: "^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$" }),
  algorithm: Type.Literal("isolation-forest"),
  pipeline: Type.String(),
  trainedAt: Type.String({ pattern: RFC3339_UTC }),
  activeFrom: Type.String({ pattern: RFC3339_UTC }),
  window: Type.Object({ from: Type.String(), to: Type.String() }),
  rows: Type.Integer({ minimum: 1 }),
  seed: Type.Integer(),
  contamination: Type.Number({ exclusiveMinimum: 0, maximum: 0.5 }),
  features: Type.Array(FeatureStats, { minItems: 1 }),
  calibration: Type.Object({
    low: Type.Number({ minimum: 0, maximum: 1 }),
    high: Type.Number({ minimum: 0, maximum: 1 }),
  }),
  forest: Type.Object({
    sampleSize: Type.Integer({ minimum: 1 }),
    trees: Type.Array(Tree, { minItems: 1 }),
  }),
});
export type FraudModel = Static<typeof FraudModelSchema>;
const check = TypeCompiler.Compile(FraudModelSchema);

/** What a loaded model keeps of its object: everything but the trees (they are compiled). */
export type ModelInfo = Omit<FraudModel, "forest"> & {
  readonly forest: { readonly sampleSize: number; readonly trees: number };
};

/** A model ready to score: its description, its compiled forest and activation time. */
export interface LoadedModel {
  readonly model: ModelInfo;
  /** The forest laid out for scoring. */
  readonly compiled: CompiledForest;
  readonly activeFromMs: number;
}

/** Object key of a model version under a pipeline's prefix (ending in `/` or empty). */
export function modelKey(prefix: string, version: string): string {
  return `${prefix}models/fraud/${version}.json`;
}
export function modelsPrefix(prefix: string): string {
  return `${prefix}models/fraud/`;
}

/**
 * Reads a model object. Refuses (ok: false, with what is wrong) anything
 * that is not a complete model for this code's features: a truncated or
 * corrupt object, another format, other features, a broken forest.
 */
export function decodeModel(text: string): { ok: true; value: LoadedModel } | { ok: false; detail: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { ok: false, detail: `not JSON (${(err as Error).message})` };
  }
  if (!check.Check(parsed)) {
    const e = check.Errors(parsed).First();
    return {
      ok: false,
      detail: `not a ${MODEL_KIND} format ${MODEL_FORMAT}: ${e?.path || "/"} ${e?.message}`,
    };
  }
  const model = parsed;
  const names = model.features.map((f) => f.name);
  if (names.join(",") !== FEATURE_NAMES.join(","))
    return {
      ok: false,
      detail: `trained on features [${names.join(", ")}], this version computes [${FEATURE_NAMES.join(", ")}]`,
    };
  const forest: Forest = {
    trees: model.forest.trees,
    sampleSize: model.forest.sampleSize,
    dimensions: names.length,
  };
  const problem = forestProblem(forest);
  if (problem) return { ok: false, detail: `broken forest: ${problem}` };
  const activeFromMs = Date.parse(model.activeFrom);
  if (Number.isNaN(activeFromMs))
    return { ok: false, detail: `activeFrom ${model.activeFrom} is not a time` };
  if (!(model.calibration.high > model.calibration.low))
    return { ok: false, detail: "calibration.high must be above calibration.low" };
  let compiled: CompiledForest;
  try {
    compiled = compileForest(forest);
  } catch (err) {
    return { ok: false, detail: `the forest cannot be compiled: ${(err as Error).message}` };
  }
  const { forest: trees, ...rest } = model;
  const info: ModelInfo = { ...rest, forest: { sampleSize: trees.sampleSize, trees: trees.trees.length } };
  return { ok: true, value: { model: info, compiled, activeFromMs } };
}

/** The `anomaly` signal of a bid: the forest's score and its calibrated strength in [0, 1]. */
export function anomalyOf(m: LoadedModel, features: readonly number[]): { score: number; strength: number } {
  const score = scoreCompiled(m.compiled, features);
  const { low, high } = m.model.calibration;
  const s = (score - low) / (high - low);
  return { score, strength: Math.min(Math.max(s, 0), 1) };
}

/** A model's version: its training time and a hash of its content, so versions sort by time. */
export function modelVersion(trainedAt: Date, content: string): string {
  const stamp = trainedAt
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${stamp}-${createHash("sha256").update(content).digest("hex").slice(0, 8)}`;
}

/**
 * The models a process has loaded, by activation time. Shared by every
 * partition's scorer; `at(ms)` is the model that scores a bid arriving at
 * `ms` (the newest active one), or undefined (rules only).
 */
export class FraudModels {
  #models: LoadedModel[] = [];

  /** Adds a model (a version already present is ignored). Returns whether it was new. */
  add(m: LoadedModel): boolean {
    if (this.#models.some((x) => x.model.version === m.model.version)) return false;
    this.#models.push(m);
    this.#models.sort(
      (a, b) => a.activeFromMs - b.activeFromMs || (a.model.version < b.model.version ? -1 : 1),
    );
    return true;
  }

  has(version: string): boolean {
    return this.#models.some((x) => x.model.version === version);
  }

  /** The newest model active at `ms`. */
  at(ms: number): LoadedModel | undefined {
    for (let i = this.#models.length - 1; i >= 0; i--) {
      const m = this.#models[i] as LoadedModel;
      if (m.activeFromMs <= ms) return m;
    }
    return undefined;
  }

  /** Loaded versions, oldest activation first. */
  versions(): string[] {
    return this.#models.map((m) => m.model.version);
  }

  get size(): number {
    return this.#models.length;
  }
}
