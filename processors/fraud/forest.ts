/**
 * Isolation Forest (Liu, Ting and Zhou, 2008): an anomaly is a point that
 * few random axis-parallel cuts isolate. Each tree is grown on a random
 * subsample of at most `sampleSize` rows to a height limit of
 * ceil(log2(sampleSize)); a point's score is 2^(-E[h(x)] / c(sampleSize)),
 * near 1 for anomalies, below 0.5 for ordinary points.
 *
 * Pure and deterministic: the same rows (in the same order) and seed give
 * the same forest, byte for byte, on every platform. Trees are flat arrays
 * (a node is an index) so a model is compact JSON and scoring a point is a
 * few hundred array reads, no allocation.
 */

/** One tree, as flat arrays indexed by node; node 0 is the root. */
export interface IsolationTree {
  /** Split feature of each node, -1 for a leaf. */
  readonly f: readonly number[];
  /** Split threshold (x[f] < t goes left); 0 for a leaf. */
  readonly t: readonly number[];
  /** Left and right child of each node (-1 for a leaf). */
  readonly l: readonly number[];
  readonly r: readonly number[];
  /** Rows of the subsample that ended in each leaf (0 for inner nodes). */
  readonly n: readonly number[];
}

export interface Forest {
  readonly trees: readonly IsolationTree[];
  /** The subsample size each tree was grown on (c(sampleSize) normalises path lengths). */
  readonly sampleSize: number;
  /** Number of features a point has. */
  readonly dimensions: number;
}

export interface ForestOptions {
  /** Number of trees. Default 100 (the paper's choice: path lengths converge well before). */
  readonly trees?: number;
  /** Rows per tree. Default 256 (the paper's choice). */
  readonly sampleSize?: number;
  /** Seed of the random cuts and subsamples. */
  readonly seed: number;
}

const EULER = 0.5772156649015329;

/** Average path length of an unsuccessful search in a binary search tree of n points. */
export function averagePathLength(n: number): number {
  if (n <= 1) return 0;
  if (n === 2) return 1;
  return 2 * (Math.log(n - 1) + EULER) - (2 * (n - 1)) / n;
}

/** splitmix32: small, seeded, the same stream everywhere. Uniform in [0, 1). */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
}

/** Grows a forest on `rows` (each of the same length). Throws on no rows or ragged rows. */
export function trainForest(rows: readonly (readonly number[])[], opts: ForestOptions): Forest {
  if (rows.length === 0) throw new Error("an isolation forest needs at least one row");
  const dimensions = (rows[0] as readonly number[]).length;
  for (const [i, r] of rows.entries()) {
    if (r.length !== dimensions) throw new Error(`row ${i} has ${r.length} values, expected ${dimensions}`);
    for (const v of r) if (!Number.isFinite(v)) throw new Error(`row ${i} has a value that is not finite`);
  }
  const nTrees = opts.trees ?? 100;
  const sampleSize = Math.min(opts.sampleSize ?? 256, rows.length);
  if (!Number.isInteger(nTrees) || nTrees < 1)
    throw new Error(`trees must be a positive integer, got ${nTrees}`);
  if (!Number.isInteger(sampleSize) || sampleSize < 1)
    throw new Error(`sampleSize must be a positive integer, got ${opts.sampleSize}`);
  const rand = seeded(opts.seed);
  const heightLimit = Math.ceil(Math.log2(Math.max(2, sampleSize)));
  const index = rows.map((_, i) => i);
  const trees: IsolationTree[] = [];
  for (let k = 0; k < nTrees; k++) {
    // Subsample without replacement: a partial Fisher-Yates shuffle.
    for (let i = 0; i < sampleSize; i++) {
      const j = i + Math.floor(rand() * (index.length - i));
      const tmp = index[i] as number;
      index[i] = index[j] as number;
      index[j] = tmp;
    }
    trees.push(growTree(rows, index.slice(0, sampleSize), heightLimit, dimensions, rand));
  }
  return { trees, sampleSize, dimensions };
}

function growTree(
  rows: readonly (readonly number[])[],
  sample: number[],
  heightLimit: number,
  dimensions: number,
  rand: () => number,
): IsolationTree {
  const f: number[] = [];
  const t: number[] = [];
  const l: number[] = [];
  const r: number[] = [];
  const n: number[] = [];
  const node = (): number => {
    f.push(-1);
    t.push(0);
    l.push(-1);
    r.push(-1);
    n.push(0);
    return f.length - 1;
  };
  // Iterative: [node id, the sample rows that reached it, depth].
  const stack: [number, number[], number][] = [[node(), sample, 0]];
  while (stack.length > 0) {
    const [id, at, depth] = stack.pop() as [number, number[], number];
    // Features that still vary among these rows: a cut on a constant one isolates nothing.
    const varying: [number, number, number][] = [];
    if (depth < heightLimit && at.length > 1) {
      for (let d = 0; d < dimensions; d++) {
        let lo = Number.POSITIVE_INFINITY;
        let hi = Number.NEGATIVE_INFINITY;
        for (const i of at) {
          const v = (rows[i] as readonly number[])[d] as number;
          if (v < lo) lo = v;
          if (v > hi) hi = v;
        }
        if (hi > lo) varying.push([d, lo, hi]);
      }
    }
    if (varying.length === 0) {
      n[id] = at.length;
      continue;
    }
    const [d, lo, hi] = varying[Math.floor(rand() * varying.length)] as [number, number, number];
    let cut = lo + rand() * (hi - lo);
    if (cut <= lo) cut = (lo + hi) / 2; // keep both sides non-empty
    const left: number[] = [];
    const right: number[] = [];
    for (const i of at) ((rows[i] as readonly number[])[d] as number) < cut ? left.push(i) : right.push(i);
    f[id] = d;
    t[id] = cut;
    const li = node();
    const ri = node();
    l[id] = li;
    r[id] = ri;
    stack.push([ri, right, depth + 1], [li, left, depth + 1]);
  }
  return { f, t, l, r, n };
}

/** Path length of `x` in one tree, with the c(n) correction at the leaf. */
function pathLength(tree: IsolationTree, x: readonly number[]): number {
  let id = 0;
  let depth = 0;
  for (;;) {
    const d = tree.f[id] as number;
    if (d < 0) return depth + averagePathLength(tree.n[id] as number);
    id = ((x[d] as number) < (tree.t[id] as number) ? tree.l[id] : tree.r[id]) as number;
    depth++;
  }
}

/** The anomaly score of `x`, in (0, 1]: about 0.5 or below is ordinary, towards 1 is anomalous. */
export function scoreForest(forest: Forest, x: readonly number[]): number {
  let sum = 0;
  for (const tree of forest.trees) sum += pathLength(tree, x);
  const c = averagePathLength(forest.sampleSize);
  if (c === 0) return 0.5;
  return 2 ** (-(sum / forest.trees.length) / c);
}

/**
 * Checks a forest read from outside (a model file): every index in range,
 * every tree a tree (children come after their parent, every node but the
 * root has one parent). Returns what is wrong, or undefined.
 */
export function forestProblem(forest: Forest): string | undefined {
  if (!Number.isInteger(forest.dimensions) || forest.dimensions < 1)
    return "dimensions must be a positive integer";
  if (!Number.isInteger(forest.sampleSize) || forest.sampleSize < 1)
    return "sampleSize must be a positive integer";
  if (forest.trees.length === 0) return "the forest has no trees";
  for (const [k, tree] of forest.trees.entries()) {
    const size = tree.f.length;
    if (size === 0) return `tree ${k} has no nodes`;
    if ([tree.t, tree.l, tree.r, tree.n].some((a) => a.length !== size))
      return `tree ${k}: its arrays f, t, l, r, n differ in length`;
    // A tree: every node but the root has exactly one parent.
    const parents = new Uint8Array(size);
    for (let i = 0; i < size; i++) {
      const d = tree.f[i] as number;
      if (!Number.isInteger(d) || d < -1 || d >= forest.dimensions)
        return `tree ${k} node ${i}: feature ${d} is out of range`;
      if (d === -1) {
        const n = tree.n[i] as number;
        if (!Number.isInteger(n) || n < 0) return `tree ${k} leaf ${i}: size ${n} is not a count`;
        continue;
      }
      if (!Number.isFinite(tree.t[i])) return `tree ${k} node ${i}: threshold is not a number`;
      for (const c of [tree.l[i], tree.r[i]] as number[]) {
        if (!Number.isInteger(c) || c <= i || c >= size)
          return `tree ${k} node ${i}: child ${c} is out of range`;
        if (parents[c]) return `tree ${k} node ${c} has two parents`;
        parents[c] = 1;
      }
    }
    for (let i = 1; i < size; i++) if (!parents[i]) return `tree ${k} node ${i} has no parent`;
  }
  return undefined;
}

/**
 * A forest laid out for scoring: every tree's nodes in flat typed arrays
 * (children as absolute indexes) and each leaf's path length (depth +
 * c(size)) computed once, so scoring a point is array reads and one add per
 * tree.
 */
export interface CompiledForest {
  readonly roots: Int32Array;
  readonly feature: Int32Array;
  readonly threshold: Float64Array;
  readonly left: Int32Array;
  readonly right: Int32Array;
  /** Path length at a leaf (for inner nodes 0). */
  readonly leafPath: Float64Array;
  /** c(sampleSize). */
  readonly norm: number;
}

export function compileForest(forest: Forest): CompiledForest {
  const total = forest.trees.reduce((n, t) => n + t.f.length, 0);
  const roots = new Int32Array(forest.trees.length);
  const feature = new Int32Array(total);
  const threshold = new Float64Array(total);
  const left = new Int32Array(total);
  const right = new Int32Array(total);
  const leafPath = new Float64Array(total);
  let base = 0;
  forest.trees.forEach((tree, k) => {
    roots[k] = base;
    const depth = new Int32Array(tree.f.length);
    for (let i = 0; i < tree.f.length; i++) {
      const d = tree.f[i] as number;
      feature[base + i] = d;
      if (d < 0) {
        leafPath[base + i] = depth[i]! + averagePathLength(tree.n[i] as number);
        continue;
      }
      threshold[base + i] = tree.t[i] as number;
      const l = tree.l[i] as number;
      const r = tree.r[i] as number;
      left[base + i] = base + l;
      right[base + i] = base + r;
      // children come after their parent (forestProblem checks it)
      depth[l] = depth[i]! + 1;
      depth[r] = depth[i]! + 1;
    }
    base += tree.f.length;
  });
  return { roots, feature, threshold, left, right, leafPath, norm: averagePathLength(forest.sampleSize) };
}

/** scoreForest over a compiled forest (the same value). */
export function scoreCompiled(c: CompiledForest, x: readonly number[]): number {
  const { roots, feature, threshold, left, right, leafPath } = c;
  let sum = 0;
  for (let k = 0; k < roots.length; k++) {
    let i = roots[k] as number;
    let d = feature[i] as number;
    while (d >= 0) {
      i = ((x[d] as number) < (threshold[i] as number) ? left[i] : right[i]) as number;
      d = feature[i] as number;
    }
    sum += leafPath[i] as number;
  }
  if (c.norm === 0) return 0.5;
  return 2 ** (-(sum / roots.length) / c.norm);
}
