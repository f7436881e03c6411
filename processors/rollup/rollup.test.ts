import { describe, expect, it } from "vitest";
import { lastRollup, parsePipelineRef, pipelineRefFrom } from "./annotate.ts";
import { resolveDays } from "./command.ts";
import { RollupUsageError } from "./days.ts";
import { goldObjectKey, normalizePrefix } from "./lake.ts";
import { formatSummary, reconcileGmv } from "./rollup.ts";

describe("reconcileGmv", () => {
  const m = (o: Record<string, [bigint, bigint]>) =>
    new Map(Object.entries(o).map(([c, [gmv, transactions]]) => [c, { gmv, transactions }]));

  it("passes when every currency matches", () => {
    expect(
      reconcileGmv(m({ EUR: [8600n, 2n], USD: [1500n, 1n] }), m({ USD: [1500n, 1n], EUR: [8600n, 2n] })),
    ).toMatchObject({
      name: "gmv_reconciles",
      passed: true,
      violations: 0,
    });
    expect(reconcileGmv(m({}), m({})).passed).toBe(true);
  });

  it("reports each currency that differs, including one missing on a side", () => {
    const r = reconcileGmv(m({ EUR: [8600n, 2n], USD: [1500n, 1n] }), m({ EUR: [8599n, 2n], GBP: [1n, 1n] }));
    expect(r.passed).toBe(false);
    expect(r.severity).toBe("error");
    expect(r.samples).toEqual([
      "EUR: gold gmv 8599 in 2 transactions, silver 8600 in 2",
      "GBP: gold gmv 1 in 1 transactions, silver 0 in 0",
      "USD: gold gmv 0 in 0 transactions, silver 1500 in 1",
    ]);
  });
});

describe("resolveDays", () => {
  const now = new Date("2026-11-22T01:30:00Z");
  it("defaults to yesterday in the zone", () => {
    expect(resolveDays({}, now, "UTC")).toEqual(["2026-11-21"]);
    expect(resolveDays({}, now, "America/Los_Angeles")).toEqual(["2026-11-20"]);
  });
  it("takes --date or an inclusive --from/--to", () => {
    expect(resolveDays({ date: "2026-01-05" }, now, "UTC")).toEqual(["2026-01-05"]);
    expect(resolveDays({ from: "2026-01-30", to: "2026-02-01" }, now, "UTC")).toEqual([
      "2026-01-30",
      "2026-01-31",
      "2026-02-01",
    ]);
  });
  it("adds --backfill-days days before the day, oldest first", () => {
    expect(resolveDays({ backfillDays: "2" }, now, "UTC")).toEqual([
      "2026-11-19",
      "2026-11-20",
      "2026-11-21",
    ]);
    expect(resolveDays({ date: "2026-03-01", backfillDays: "1" }, now, "UTC")).toEqual([
      "2026-02-28",
      "2026-03-01",
    ]);
    expect(resolveDays({ backfillDays: "0" }, now, "UTC")).toEqual(["2026-11-21"]);
    expect(() => resolveDays({ backfillDays: "-1" }, now, "UTC")).toThrow(/whole number/);
    expect(() =>
      resolveDays({ from: "2026-01-01", to: "2026-01-02", backfillDays: "1" }, now, "UTC"),
    ).toThrow(/goes with --date/);
  });
  it("rejects mixed or incomplete flags", () => {
    expect(() => resolveDays({ date: "2026-01-05", from: "2026-01-01" }, now, "UTC")).toThrow(
      RollupUsageError,
    );
    expect(() => resolveDays({ from: "2026-01-01" }, now, "UTC")).toThrow(/go together/);
  });
});

describe("lake keys and refs", () => {
  it("puts each table's day under a Hive partition of the gold prefix", () => {
    expect(goldObjectKey("main/", "daily_revenue", "2026-03-10")).toBe(
      "main/gold/daily_revenue/day=2026-03-10/part-0.parquet",
    );
    expect(goldObjectKey("", "fraud_summary", "2026-03-10")).toBe(
      "gold/fraud_summary/day=2026-03-10/part-0.parquet",
    );
    expect(normalizePrefix("/a/b")).toBe("a/b/");
  });
  it("reports to --pipeline-ref, else to the pod's own pipeline", () => {
    expect(pipelineRefFrom("a/b", { POD_NAMESPACE: "x", GAVEL_PIPELINE: "y" })).toBe("a/b");
    expect(pipelineRefFrom(undefined, { POD_NAMESPACE: "x", GAVEL_PIPELINE: "y" })).toBe("x/y");
    expect(pipelineRefFrom(undefined, { POD_NAMESPACE: "x" })).toBeUndefined();
  });
  it("parses namespace/name", () => {
    expect(parsePipelineRef("auctions/main")).toEqual({ namespace: "auctions", name: "main" });
    expect(() => parsePipelineRef("main")).toThrow(/namespace\/name/);
  });
});

describe("formatSummary", () => {
  it("says the day, status, time, rows and open auctions", () => {
    const line = formatSummary({
      runId: "1",
      day: "2026-03-10",
      status: "partial",
      partial: true,
      openAuctions: 2,
      extracted: { bids: 10, auctions: 6 },
      rows: { daily_revenue: 3, fraud_summary: 1 },
      checks: [],
      durationMs: 120,
      phasesMs: {},
      objects: [],
    });
    expect(line).toBe(
      "2026-03-10 partial      120 ms  silver=16 daily_revenue=3 auction_performance=0 bidder_analytics=0 fraud_summary=1 category_trends=0 open_auctions=2",
    );
  });
});

describe("lastRollup", () => {
  const base = {
    runId: "1",
    partial: false,
    openAuctions: 0,
    extracted: {},
    rows: {},
    checks: [],
    durationMs: 1,
    phasesMs: {},
    objects: [],
  };
  const at = new Date("2026-03-11T00:20:00Z");

  it("is Succeeded with the days when nothing failed, noting partial days", () => {
    expect(
      lastRollup(
        [
          { ...base, day: "2026-03-09", status: "succeeded" },
          { ...base, day: "2026-03-10", status: "partial", partial: true, openAuctions: 2 },
        ],
        at,
      ),
    ).toEqual({
      time: "2026-03-11T00:20:00.000Z",
      result: "Succeeded",
      days: ["2026-03-09", "2026-03-10"],
      message: "2026-03-10 partial (2 open auctions)",
      day: "2026-03-10",
      status: "partial",
      finishedAt: "2026-03-11T00:20:00.000Z",
    });
  });

  it("is Failed when a day failed, with the first lines of its error", () => {
    const r = lastRollup(
      [
        {
          ...base,
          day: "2026-03-10",
          status: "failed",
          error: "data-quality checks failed:\nFAILED x\n - a\n - b",
        },
      ],
      at,
    );
    expect(r.result).toBe("Failed");
    expect(r.message).toBe("2026-03-10 failed: data-quality checks failed: FAILED x  - a");
  });
});
