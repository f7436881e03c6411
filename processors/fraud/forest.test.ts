import { describe, expect, it } from "vitest";
import {
  averagePathLength,
  compileForest,
  forestProblem,
  scoreCompiled,
  scoreForest,
  trainForest,
} from "./forest.ts";

/** Points of a 3-d bell-shaped cluster around 0 (deterministic: an LCG, sums of 4 uniforms). */
function cluster(n: number): number[][] {
  let x = 12345;
  const u = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
  const bell = () => u() + u() + u() + u() - 2;
  return Array.from({ length: n }, () => [bell(), bell(), bell()]);
}

describe("Isolation Forest", () => {
  it("is deterministic: the same rows and seed give the same forest, another seed another one", () => {
    const rows = cluster(500);
    const a = JSON.stringify(trainForest(rows, { seed: 3, trees: 20 }));
    expect(JSON.stringify(trainForest(rows, { seed: 3, trees: 20 }))).toBe(a);
    expect(JSON.stringify(trainForest(rows, { seed: 4, trees: 20 }))).not.toBe(a);
  });

  it("scores a point far from the data higher than points inside it", () => {
    const rows = cluster(1000);
    const f = trainForest(rows, { seed: 1 });
    const inside = rows.slice(0, 50).map((x) => scoreForest(f, x));
    const outlier = scoreForest(f, [3, -3, 3]);
    expect(outlier).toBeGreaterThan(0.7);
    expect(Math.max(...inside)).toBeLessThan(outlier);
    // ordinary points are around or below 0.5
    expect(inside.reduce((s, x) => s + x, 0) / inside.length).toBeLessThan(0.55);
  });

  it("the compiled forest scores exactly as the trees do", () => {
    const rows = cluster(800);
    const f = trainForest(rows, { seed: 5 });
    const c = compileForest(f);
    for (const x of [...rows.slice(0, 100), [3, -3, 3], [0, 0, 0], [-9, 9, 0.5]])
      expect(scoreCompiled(c, x)).toBe(scoreForest(f, x));
  });

  it("caps trees at the height limit and subsamples at most sampleSize rows", () => {
    const f = trainForest(cluster(3000), { seed: 1, trees: 5, sampleSize: 64 });
    expect(f.sampleSize).toBe(64);
    for (const t of f.trees) {
      const leaves = t.f.map((d, i) => (d < 0 ? (t.n[i] as number) : 0));
      expect(leaves.reduce((s, n) => s + n, 0)).toBe(64);
      expect(t.f.length).toBeLessThanOrEqual(2 ** 7 - 1); // height limit log2(64) = 6
    }
  });

  it("treats constant features and tiny inputs sanely", () => {
    const f = trainForest(
      Array.from({ length: 10 }, () => [1, 1]),
      { seed: 1 },
    );
    expect(f.trees.every((t) => t.f.length === 1)).toBe(true); // nothing to cut: one leaf
    expect(scoreForest(f, [1, 1])).toBeCloseTo(2 ** (-averagePathLength(10) / averagePathLength(10)), 6);
    expect(() => trainForest([], { seed: 1 })).toThrow(/at least one row/);
    expect(() => trainForest([[1, 2], [3]], { seed: 1 })).toThrow(/row 1 has 1 values, expected 2/);
    expect(() => trainForest([[1, Number.NaN]], { seed: 1 })).toThrow(/not finite/);
  });

  it("forestProblem finds broken trees a model file could carry", () => {
    const f = trainForest(cluster(100), { seed: 1, trees: 2 });
    expect(forestProblem(f)).toBeUndefined();
    const t = f.trees[0]!;
    const loop = { ...f, trees: [{ ...t, l: t.l.map((c) => Math.min(c, 0)) }] };
    expect(forestProblem(loop)).toMatch(/child 0 is out of range/);
    const wide = { ...f, trees: [{ ...t, f: t.f.map((d) => (d >= 0 ? 9 : d)) }] };
    expect(forestProblem(wide)).toMatch(/feature 9 is out of range/);
    expect(forestProblem({ ...f, trees: [{ ...t, n: [] }] })).toMatch(/differ in length/);
    // the root's left child also made the right child of another node: two parents
    const other = t.f.findIndex((d, i) => i > 0 && d >= 0);
    const shared = { ...f, trees: [{ ...t, r: t.r.map((c, i) => (i === other ? t.l[0]! : c)) }] };
    expect(forestProblem(shared)).toMatch(/out of range|has two parents/);
    expect(forestProblem({ ...f, trees: [] })).toMatch(/no trees/);
  });
});
