/**
 * Helm and kubectl for the chart tests: helm comes from scripts/install-helm.sh
 * (built from the Go module proxy once, then cached), kubectl from PATH.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CHART = join(REPO, "charts", "gavel");

export interface Run {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Path of the helm binary; builds it on first use (minutes), cached afterwards. */
export function installHelm(): string {
  return execFileSync("bash", [join(REPO, "scripts", "install-helm.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    timeout: 1_800_000,
  }).trim();
}

export function run(cmd: string, args: readonly string[], input?: string, timeout = 120_000): Run {
  const r = spawnSync(cmd, args, { encoding: "utf8", input, maxBuffer: 64 * 1024 * 1024, timeout });
  if (r.error) throw r.error;
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** A Kubernetes object as parsed from YAML; tests read fields by path. */
// biome-ignore lint/suspicious/noExplicitAny: rendered manifests are arbitrary YAML
export type Manifest = Record<string, any>;

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((d): d is Manifest => d !== null && typeof d === "object");
}

export function find(docs: readonly Manifest[], kind: string, name?: string): Manifest {
  const hit = docs.find((d) => d.kind === kind && (name === undefined || d.metadata?.name === name));
  if (!hit) throw new Error(`no ${kind}${name ? ` ${name}` : ""} in ${docs.map((d) => d.kind).join(", ")}`);
  return hit;
}

/** `--set` pairs as helm arguments. */
export function sets(values: Record<string, string | number | boolean>): string[] {
  return Object.entries(values).flatMap(([k, v]) => ["--set", `${k}=${v}`]);
}
