/**
 * `node bench/profile.ts FILE.cpuprofile [--top N]`: where the CPU time of a
 * V8 CPU profile (written by `node --cpu-prof`, e.g. `npm run bench --
 * --profile`) goes, as self time by function and by module (package or
 * source file), so a profile can be read without DevTools.
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

export function summarize(p: CpuProfile, top = 25): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i] as number;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const fn = new Map<string, number>();
  const mod = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    if (!n) continue;
    const { functionName, url, lineNumber } = n.callFrame;
    const m = moduleOf(url, functionName);
    const key = url
      ? `${functionName || "(anonymous)"} ${fileOf(url)}:${lineNumber + 1}`
      : `(${functionName})`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    mod.set(m, (mod.get(m) ?? 0) + us);
    total += us;
  }
  const rows = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), pct: Math.round((us / total) * 1000) / 10 }));
  return { totalMs: Math.round(total / 1000), byFunction: rows(fn), byModule: rows(mod) };
}

if (import.meta.main) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  if (positionals.length === 0) {
    process.stderr.write("usage: node bench/profile.ts FILE.cpuprofile... [--top N]\n");
    process.exit(2);
  }
  for (const file of positionals) {
    const s = summarize(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(values.top));
    process.stdout.write(`${file}: ${s.totalMs} ms sampled\n  by module (self time):\n`);
    for (const r of s.byModule) process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${r.name}\n`);
    process.stdout.write("  by function (self time):\n");
    for (const r of s.byFunction) process.stdout.write(`    ${String(r.pct).padStart(5)}%  ${r.name}\n`);
  }
}
