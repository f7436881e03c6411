/**
 * The fraud evaluation's harness, and the default's promise: with a model
 * trained on other data, the default weights flag more of the generated
 * fraud at the alert threshold without flagging more ordinary bids
 * (docs/fraud.md has the full figures from `npm run bench:fraud`).
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_FRAUD_CONFIG } from "../processors/domain/fraud.ts";
import { FRAUD_BID_KINDS } from "../test/generate/dataset.ts";
import { detection, evaluationDataset, replayScored, trainOn, withAnomalyWeight } from "./fraud-eval.ts";

const START = Date.parse("2026-11-01T00:00:00Z");

describe("fraud evaluation", { timeout: 120_000 }, () => {
  it("counts precision, recall and false positives against the generator's labels", () => {
    const bids = [
      { bidId: "1", kind: "velocity", score: 0.9, features: [], accepted: false },
      { bidId: "2", kind: "shill", score: 0.1, features: [], accepted: true },
      { bidId: "3", kind: "normal", score: 0.6, features: [], accepted: true },
      { bidId: "4", kind: "normal", score: 0.0, features: [], accepted: true },
      { bidId: "5", kind: "snipe", score: 0.0, features: [], accepted: true },
    ] as const;
    expect(detection(bids, 0.5)).toEqual({
      threshold: 0.5,
      scored: 5,
      fraud: 2,
      flagged: 2,
      truePositives: 1,
      precision: 0.5,
      recall: 0.5,
      falsePositiveRate: 1 / 3,
    });
  });

  it("the default anomaly weight with a trained model finds more fraud at no cost in precision", () => {
    const train = replayScored(evaluationDataset(1, START, 0.25), DEFAULT_FRAUD_CONFIG);
    expect(train.some((b) => FRAUD_BID_KINDS.has(b.kind))).toBe(true);
    const { models } = trainOn(train, new Date(START), "test/fraud-eval");
    const test = evaluationDataset(2, START + 30 * 86_400_000, 0.25);
    const rules = detection(replayScored(test, withAnomalyWeight(0)), DEFAULT_FRAUD_CONFIG.alertThreshold);
    const both = detection(
      replayScored(test, DEFAULT_FRAUD_CONFIG, { models }),
      DEFAULT_FRAUD_CONFIG.alertThreshold,
    );
    expect(both.scored).toBeGreaterThan(1000);
    expect(both.recall).toBeGreaterThan(rules.recall);
    expect(both.precision).toBeGreaterThanOrEqual(rules.precision - 0.02);
    expect(both.falsePositiveRate).toBeLessThanOrEqual(rules.falsePositiveRate + 0.002);
  });
});
