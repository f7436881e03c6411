/**
 * How good fraud scoring is, on generated data whose fraud is known: the
 * generator marks the bids it made fraudulent (kinds velocity, shill and
 * burst: bots and shill rings). A dataset is replayed through the
 * bid-processor's pure cores (one per partition, records in send order, as
 * the oracle of the outcome tests does), and every scored bid (accepted, or
 * quarantined) counts: flagged when its score reaches a threshold.
 *
 * Pure (no I/O): `bench/fraud.ts` prints the figures, `fraud-eval.test.ts`
 * checks the harness. docs/fraud.md has the results and the command.
 */

import type { BidAccepted, BidRejected } from "../api/events/types.ts";
import { BidProcessorCore, type OutputRecord } from "../processors/domain/bid-core.ts";
import type { FraudConfig } from "../processors/domain/fraud.ts";
import { DEFAULT_FRAUD_CONFIG as DEFAULTS } from "../processors/domain/fraud.ts";
import { decodeModel, type FraudModel, FraudModels } from "../processors/fraud/model.ts";
import { buildModel } from "../processors/fraud/train.ts";
import {
  type BidKind,
  type Dataset,
  FRAUD_BID_KINDS,
  type GenerateOptions,
  generateDataset,
} from "../test/generate/dataset.ts";

export interface ScoredBid {
  readonly bidId: string;
  readonly kind: BidKind;
  readonly score: number;
  readonly features: readonly number[];
  readonly accepted: boolean;
}

/** FNV-1a of the key, mod partitions: any fixed assignment works for a replay. */
function partitionOf(key: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193) >>> 0;
  return h % partitions;
}

/** Replays a dataset (users and auctions first, bids in send order) and returns its scored bids. */
export function replayScored(
  ds: Dataset,
  fraud: FraudConfig,
  opts: { readonly partitions?: number; readonly models?: FraudModels } = {},
): ScoredBid[] {
  const partitions = opts.partitions ?? 8;
  const cores = Array.from(
    { length: partitions },
    () =>
      new BidProcessorCore({
        fraud,
        book: { closeGraceMs: 2000, pendingMaxAgeMs: 30_000 },
        ...(opts.models ? { scorer: { models: opts.models } } : {}),
      }),
  );
  const kindOf = new Map<string, BidKind>();
  for (const b of ds.bids) if (b.bid) kindOf.set(b.bid.bid_id, b.kind);
  const out: ScoredBid[] = [];
  const seen = new Set<string>();
  const collect = (os: readonly OutputRecord[]) => {
    for (const o of os) {
      let v: { bid_id: string | null; fraud_score?: number | null; fraud_features?: number[] };
      let accepted: boolean;
      if (o.topic === "bidsAccepted") {
        v = o.value as BidAccepted;
        accepted = true;
      } else if (o.topic === "bidsRejected" && (o.value as BidRejected).reason === "fraud_quarantine") {
        v = o.value as BidRejected;
        accepted = false;
      } else continue;
      const kind = v.bid_id ? kindOf.get(v.bid_id) : undefined;
      if (!v.bid_id || !kind || !v.fraud_features || seen.has(v.bid_id)) continue;
      seen.add(v.bid_id);
      out.push({ bidId: v.bid_id, kind, score: v.fraud_score ?? 0, features: v.fraud_features, accepted });
    }
  };
  for (const u of ds.users) for (const c of cores) c.onUser(JSON.stringify(u));
  for (const a of ds.auctions) {
    const p = partitionOf(a.auction_id, partitions);
    collect((cores[p] as BidProcessorCore).onAuction(JSON.stringify(a), ds.startMs).outputs);
  }
  for (const b of ds.bids) {
    const p = partitionOf(b.key, partitions);
    collect((cores[p] as BidProcessorCore).onBid(b.raw, b.sendAtMs).outputs);
  }
  for (const c of cores) collect(c.tick(ds.startMs + ds.durationMs + 120_000));
  return out;
}

export interface Detection {
  readonly threshold: number;
  readonly scored: number;
  readonly fraud: number;
  readonly flagged: number;
  readonly truePositives: number;
  readonly precision: number;
  readonly recall: number;
  readonly falsePositiveRate: number;
}

/** Precision, recall and false-positive rate of "score >= threshold" against the generator's labels. */
export function detection(bids: readonly ScoredBid[], threshold: number): Detection {
  let fraud = 0;
  let flagged = 0;
  let tp = 0;
  for (const b of bids) {
    const isFraud = FRAUD_BID_KINDS.has(b.kind);
    const isFlagged = b.score >= threshold;
    if (isFraud) fraud++;
    if (isFlagged) flagged++;
    if (isFraud && isFlagged) tp++;
  }
  const normal = bids.length - fraud;
  return {
    threshold,
    scored: bids.length,
    fraud,
    flagged,
    truePositives: tp,
    precision: flagged === 0 ? 0 : tp / flagged,
    recall: fraud === 0 ? 0 : tp / fraud,
    falsePositiveRate: normal === 0 ? 0 : (flagged - tp) / normal,
  };
}

/** The generator settings of the evaluation (a day-like mix at a smaller scale). */
export function evaluationDataset(seed: number, startMs: number, scale = 1): Dataset {
  const o: GenerateOptions = {
    seed,
    auctions: Math.round(600 * scale),
    bids: Math.round(60_000 * scale),
    startMs,
    rate: 200,
    lean: false,
  };
  return generateDataset(o);
}

/**
 * A model trained on a dataset's scored bids with the default training
 * settings of `spec.fraud.model`, active from `trainedAt`, as `gavel fraud
 * train` builds it; with the loaded set that applies it.
 */
export function trainOn(
  scored: readonly ScoredBid[],
  trainedAt: Date,
  pipeline: string,
): { model: FraudModel; models: FraudModels } {
  const model = buildModel(
    scored.map((b) => b.features),
    {
      trainingDays: 7,
      minRows: 1,
      trees: 100,
      sampleSize: 256,
      contamination: 0.05,
      activationDelaySeconds: 0,
      seed: 1,
      pipeline,
      trainedAt,
      window: { from: new Date(trainedAt.getTime() - 7 * 86_400_000), to: trainedAt },
      rows: scored.length,
    },
  );
  const d = decodeModel(JSON.stringify(model));
  if (!d.ok) throw new Error(`the trained model does not load: ${d.detail}`);
  const models = new FraudModels();
  models.add(d.value);
  return { model, models };
}

/** The defaults with another anomaly weight (0: the rules alone). */
export function withAnomalyWeight(anomaly: number): FraudConfig {
  return { ...DEFAULTS, weights: { ...DEFAULTS.weights, anomaly } };
}
