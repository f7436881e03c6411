/**
 * `node bench/profile.ts FILE.cpuprofile|FILE.heapprofile [--top N]`: where
 * the CPU time of a V8 CPU profile (written by `node --cpu-prof`, e.g. `npm
 * run bench -- --profile`) goes, as self time by function and by module
 * (package or source file), or, for a sampling heap profile (`node
 * --heap-prof`, written at exit), which allocation sites hold the memory
 * still live then, so a profile can be read without DevTools.
 */
import { readFileSync } from "node:fs";
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { REPO } from "./lib.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

/** node_modules package, or the repository-relative file, or a V8 category. */
export function moduleOf(url: string, functionName: string): string {
  if (!url) return `(${functionName || "native"})`;
  const path = url.replace(/^file:\/\//, "");
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) {
    const rest = path.slice(nm + "node_modules/".length).split("/");
    return rest[0]?.startsWith("@") ? `${rest[0]}/${rest[1]}` : (rest[0] ?? path);
  }
  if (path.startsWith("node:")) return path;
  return path.startsWith("/") ? relative(REPO, path) : path;
}

/** The file: inside node_modules from the package on, else repository-relative. */
function fileOf(url: string): string {
  const path = url.replace(/^file:\/\//, "");
  const nm = path.lastIndexOf("node_modules/");
  if (nm >= 0) return path.slice(nm + "node_modules/".length);
  return path.startsWith("/") ? relative(REPO, path) : path;
}

export interface ProfileSummary {
  readonly totalMs: number;
  readonly byFunction: { name: string; ms: number; pct: number }[];
  readonly byModule: { name: string; ms: number; pct: number }[];
}

type Frame = ProfileNode["callFrame"];

/**
 * Adds up an amount (CPU time, bytes) per call site and per module; the
 * rows are the `top` largest with their share of the total.
 */
function bySite(
  entries: Iterable<readonly [Frame, number]>,
  top: number,
): { total: number; byFunction: SiteRow[]; byModule: SiteRow[] } {
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  let total = 0;
  for (const [{ functionName, url, lineNumber }, amount] of entries) {
    const key = url
      ? `${functionName || "(anonymous)"} ${fileOf(url)}:${lineNumber + 1}`
      : `(${functionName})`;
    fn.set(key, (fn.get(key) ?? 0) + amount);
    const m = moduleOf(url, functionName);
    mod.set(m, (mod.get(m) ?? 0) + amount);
    total += amount;
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, amount]) => ({ name, amount, pct: Math.round((amount / total) * 1000) / 10 }));
  return { total, byFunction: rows(fn), byModule: rows(mod) };
}

interface SiteRow {
  readonly name: string;
  readonly amount: number;
  readonly pct: number;
}

export function summarize(p: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const frames = function* (): Generator<readonly [Frame, number]> {
    for (const [id, us] of self) {
      const n = byId.get(id);
      if (n) yield [n.callFrame, us];
    }
  };
  const s = bySite(frames(), top);
  const ms = (r: SiteRow) => ({ name: r.name, ms: Math.round(r.amount / 1000), pct: r.pct });
  return {
    totalMs: Math.round(s.total / 1000),
    byFunction: s.byFunction.map(ms),
    byModule: s.byModule.map(ms),
  };
}

interface HeapNode {
  callFrame: Frame;
  selfSize: number;
  children?: HeapNode[];
}

/** A sampling heap profile: bytes still allocated, by allocating function and by module. */
export interface HeapProfile {
  head: HeapNode;
}

export interface HeapSummary {
  readonly totalMiB: number;
  readonly byFunction: { name: string; mib: number; pct: number }[];
  readonly byModule: { name: string; mib: number; pct: number }[];
}

export function summarizeHeap(p: HeapProfile, top = 25): HeapSummary {
  const frames = function* (): Generator<readonly [Frame, number]> {
    const stack: HeapNode[] = [p.head];
    for (let n = stack.pop(); n !== undefined; n = stack.pop()) {
      for (const c of n.children ?? []) stack.push(c);
      if (n.selfSize > 0) yield [n.callFrame, n.selfSize];
    }
  };
  const s = bySite(frames(), top);
  const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
  const row = (r: SiteRow) => ({ name: r.name, mib: mib(r.amount), pct: r.pct });
  return { totalMiB: mib(s.total), byFunction: s.byFunction.map(row), byModule: s.byModule.map(row) };
}

function printHeap(file: string, s: HeapSummary): void {
  const what = file.endsWith(".alloc.heapprofile")
    ? "allocated over the run (sampled, collected objects included)"
    : "sampled as live at exit";
  process.stdout.write(`${file}: ${s.totalMiB} MiB ${what}\n  by module (allocated by):\n`);
  for (const r of s.byModule)
    process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${String(r.mib).padStart(7)} MiB  ${r.name}\n`);
  process.stdout.write("  by function (allocation site):\n");
  for (const r of s.byFunction)
    process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${String(r.mib).padStart(7)} MiB  ${r.name}\n`);
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  if (positionals.length === 0) {
    process.stderr.write("usage: node bench/profile.ts FILE.cpuprofile|FILE.heapprofile... [--top N]\n");
    process.exit(2);
  }
  for (const file of positionals) {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as CpuProfile | HeapProfile;
    if ("head" in parsed) {
      printHeap(file, summarizeHeap(parsed, Number(values.top)));
      continue;
    }
    const s = summarize(parsed, Number(values.top));
    process.stdout.write(`${file}: ${s.totalMs} ms sampled\n  by module (self time):\n`);
    for (const r of s.byModule) process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${r.name}\n`);
    process.stdout.write("  by function (self time):\n");
    for (const r of s.byFunction) process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${r.name}\n`);
  }
}
