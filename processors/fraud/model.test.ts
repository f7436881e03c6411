import { describe, expect, it } from "vitest";
import { SCHEMA } from "../../api/events/types.ts";
import { createLogger } from "../../lib/log.ts";
import { tempDirs } from "../../test/temp-dirs.ts";
import type { AuctionView } from "../domain/auction.ts";
import { DEFAULT_FRAUD_CONFIG, FraudScorer } from "../domain/fraud.ts";
import { Registry } from "../runtime/metrics.ts";
import { anomalyOf, decodeModel, FEATURE_NAMES, FraudModels, type LoadedModel, modelKey } from "./model.ts";
import { folderModelStore } from "./store.ts";
import { buildModel, type TrainSettings } from "./train.ts";
import { ModelWatcher } from "./watcher.ts";

const SETTINGS: TrainSettings = {
  trainingDays: 7,
  minRows: 1,
  trees: 30,
  sampleSize: 128,
  contamination: 0.05,
  activationDelaySeconds: 900,
};
const T = new Date("2026-12-01T03:00:00Z");

/**
 * Feature rows of ordinary bids (FEATURES order): a bid a minute or so,
 * small raises, accounts months old; bell-shaped around the usual values,
 * as real features are (sums of uniforms from an LCG: deterministic).
 */
function ordinaryRows(n: number): number[][] {
  let x = 7;
  const u = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  const bell = (mid: number, spread: number) => mid + (u() + u() + u() - 1.5) * spread;
  return Array.from({ length: n }, () => [
    Math.max(1, Math.round(bell(2, 2))),
    Math.max(0, bell(0.08, 0.1)),
    Math.max(0, bell(0.6, 0.8)),
    bell(0, 1.5),
    bell(5, 4),
    bell(5, 1.5),
    Math.max(1, Math.round(bell(1.5, 1))),
    u() < 0.2 ? 1 : 0,
    0,
  ]);
}

function model(rows = ordinaryRows(2000), at = T) {
  return buildModel(rows, {
    ...SETTINGS,
    pipeline: "auctions/main",
    trainedAt: at,
    window: { from: new Date(at.getTime() - 7 * 86_400_000), to: at },
    rows: rows.length,
  });
}
function loaded(m = model()): LoadedModel {
  const d = decodeModel(JSON.stringify(m));
  if (!d.ok) throw new Error(d.detail);
  return d.value;
}

describe("fraud model", () => {
  it("training is deterministic and the object describes itself", () => {
    const a = model();
    expect(JSON.stringify(model())).toBe(JSON.stringify(a));
    expect(a.version).toMatch(/^20261201T030000Z-[0-9a-f]{8}$/);
    expect(a.activeFrom).toBe("2026-12-01T03:15:00.000Z");
    expect(a.features.map((f) => f.name)).toEqual(FEATURE_NAMES);
    expect(a.features[0]).toMatchObject({ name: "bidder_bids_60s", min: 1, max: 5 });
    expect(a.calibration.high).toBeGreaterThan(a.calibration.low);
    // other data, other model
    expect(model(ordinaryRows(1999)).version).not.toBe(a.version);
  });

  it("round-trips through JSON and scores an anomalous bid above ordinary ones", () => {
    const m = loaded();
    const ordinary = ordinaryRows(50).map((x) => anomalyOf(m, x));
    // a bot: 18 bids in a minute, 4x the price, a day-old account
    const bot = anomalyOf(m, [18, 1.4, 2.2, 3.5, 3, Math.log1p(1), 1, 0, 0]);
    expect(bot.strength).toBe(1);
    expect(bot.score).toBeGreaterThan(Math.max(...ordinary.map((o) => o.score)));
    expect(ordinary.filter((o) => o.strength > 0).length).toBeLessThan(10);
  });

  it("refuses objects that are not a complete model for these features", () => {
    const good = JSON.stringify(model());
    const refuse = (text: string) => {
      const d = decodeModel(text);
      expect(d.ok).toBe(false);
      return d.ok ? "" : d.detail;
    };
    expect(refuse(good.slice(0, good.length / 2))).toMatch(/^not JSON/);
    expect(refuse("{}")).toMatch(/not a gavel.dev\/fraud-model format 1/);
    const m = JSON.parse(good);
    expect(refuse(JSON.stringify({ ...m, format: 2 }))).toMatch(/format/);
    const renamed = {
      ...m,
      features: m.features.map((f: { name: string }, i: number) => (i === 0 ? { ...f, name: "x" } : f)),
    };
    expect(refuse(JSON.stringify(renamed))).toMatch(/trained on features \[x, /);
    const broken = structuredClone(m);
    broken.forest.trees[0].l[0] = 0;
    expect(refuse(JSON.stringify(broken))).toMatch(/broken forest: tree 0 node 0: child 0/);
    expect(refuse(JSON.stringify({ ...m, calibration: { low: 0.6, high: 0.6 } }))).toMatch(/calibration/);
    expect(decodeModel(good).ok).toBe(true);
  });

  it("a bid is scored by the newest model active at its arrival", () => {
    const models = new FraudModels();
    const older = loaded(model(ordinaryRows(500), new Date("2026-11-30T03:00:00Z")));
    const newer = loaded(model(ordinaryRows(600), T));
    expect(models.add(newer)).toBe(true);
    expect(models.add(older)).toBe(true);
    expect(models.add(newer)).toBe(false);
    expect(models.at(Date.parse("2026-11-30T03:14:59Z"))).toBeUndefined();
    expect(models.at(Date.parse("2026-11-30T03:15:00Z"))?.model.version).toBe(older.model.version);
    expect(models.at(Date.parse("2026-12-01T03:14:59Z"))?.model.version).toBe(older.model.version);
    expect(models.at(Date.parse("2026-12-01T03:15:00Z"))?.model.version).toBe(newer.model.version);
    expect(models.versions()).toEqual([older.model.version, newer.model.version]);
  });

  it("the scorer adds the anomaly signal only where a model is active", () => {
    const models = new FraudModels();
    models.add(loaded());
    const scorer = new FraudScorer(DEFAULT_FRAUD_CONFIG, { models });
    const view = {
      auction: {
        schema: SCHEMA.auction,
        auction_id: "a1",
        item_id: "i1",
        seller_id: "s1",
        title: "Lamp",
        category: "home",
        currency: "EUR",
        start_price: 1000,
        min_increment: 100,
        starts_at: "2026-12-01T00:00:00Z",
        ends_at: "2026-12-01T06:00:00Z",
      },
      currentPrice: 1000,
      effectiveEndMs: Date.parse("2026-12-01T06:00:00Z"),
    } as unknown as AuctionView;
    const bid = {
      schema: SCHEMA.bid,
      bid_id: "b1",
      auction_id: "a1",
      bidder_id: "u1",
      amount: 9000,
      currency: "EUR",
      placed_at: "2026-12-01T04:00:00Z",
      received_at: "2026-12-01T04:00:00Z",
      source: "api",
    } as const;
    const before = scorer.score(bid, view, Date.parse("2026-12-01T03:00:00Z"));
    const after = scorer.score(bid, view, Date.parse("2026-12-01T04:00:00Z"));
    expect(before.model).toBeUndefined();
    expect(before.signals.map((s) => s.name)).not.toContain("anomaly");
    expect(after.model).toBe(models.versions()[0]);
    const anomaly = after.signals.find((s) => s.name === "anomaly");
    expect(anomaly).toMatchObject({ weight: 0.3 });
    expect(anomaly?.detail).toMatch(/^isolation score 0\.\d{3} \(model 20261201T030000Z-/);
    expect(after.score).toBeGreaterThan(before.score);
    expect(after.features).toEqual(before.features);
  });
});

describe("ModelWatcher", () => {
  const tempDir = tempDirs("gavel-models-");

  it("loads new valid models, refuses a corrupt one without throwing, and says why", async () => {
    const dir = await tempDir();
    const store = folderModelStore(dir);
    const m = model();
    await store.put(modelKey("p/", m.version), JSON.stringify(m));
    const corruptKey = modelKey("p/", "20261202T030000Z-deadbeef");
    await store.put(corruptKey, JSON.stringify(m).slice(0, 500));
    const misnamed = modelKey("p/", "20261203T030000Z-00000000");
    await store.put(misnamed, JSON.stringify(m));
    const lines: string[] = [];
    const logger = createLogger("test", "silent");
    for (const level of ["info", "error", "warn"] as const)
      (logger as unknown as Record<string, unknown>)[level] = (_o: unknown, msg?: string) =>
        lines.push(`${level}: ${msg ?? String(_o)}`);
    const metrics = new Registry();
    const models = new FraudModels();
    const w = new ModelWatcher({ store, prefix: "p/", models, logger, metrics });
    const r = await w.refresh();
    expect(r.loaded).toEqual([m.version]);
    expect(r.refused.map((x) => x.key).sort()).toEqual([corruptKey, misnamed]);
    expect(models.versions()).toEqual([m.version]);
    expect(lines.join("\n")).toMatch(/error: fraud model .*20261202T030000Z-deadbeef.json refused: not JSON/);
    expect(lines.join("\n")).toMatch(/does not match its name/);
    const text = await metrics.render();
    expect(text).toMatch(/fraud_model_loads_total\{result="loaded"\} 1/);
    expect(text).toMatch(/fraud_model_loads_total\{result="refused"\} 2/);
    // a second look reads nothing again
    expect(await w.refresh()).toEqual({ loaded: [], refused: [] });
    expect(lines.join("\n")).not.toMatch(/after it became active/);
    // a model that appears once bids are scored, already past its activation, is loaded with a warning
    w.consuming();
    const late = model(ordinaryRows(300), new Date("2026-12-01T01:00:00Z"));
    await store.put(modelKey("p/", late.version), JSON.stringify(late));
    expect((await w.refresh()).loaded).toEqual([late.version]);
    expect(lines.join("\n")).toMatch(
      /warn: fraud model .* loaded after it became active \(2026-12-01T01:15:00.000Z\)/,
    );
    await w.stop();
  });

  it("an unreachable store leaves the loaded models in use", async () => {
    const models = new FraudModels();
    models.add(loaded());
    const w = new ModelWatcher({
      store: {
        location: "s3://nowhere/",
        list: () => Promise.reject(new Error("connect ECONNREFUSED 127.0.0.1:1")),
        get: () => Promise.reject(new Error("unreachable")),
        put: () => Promise.reject(new Error("unreachable")),
      },
      prefix: "",
      models,
      logger: createLogger("test", "silent"),
    });
    const r = await w.refresh();
    expect(r.error).toMatch(
      /cannot list fraud models at s3:\/\/nowhere\/models\/fraud\/: connect ECONNREFUSED/,
    );
    expect(models.size).toBe(1);
    // the first look gives up after its timeout
    const t0 = Date.now();
    expect(await w.initial(300, 50)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("the first look is retried until the store answers", async () => {
    const dir = await tempDir();
    const folder = folderModelStore(dir);
    const m = model();
    await folder.put(modelKey("", m.version), JSON.stringify(m));
    let failures = 2;
    const models = new FraudModels();
    const w = new ModelWatcher({
      store: {
        ...folder,
        list: (prefix) => (failures-- > 0 ? Promise.reject(new Error("503 Slow Down")) : folder.list(prefix)),
      },
      prefix: "",
      models,
      logger: createLogger("test", "silent"),
    });
    expect(await w.initial(5000, 20)).toBe(true);
    expect(models.versions()).toEqual([m.version]);
  });
});
