/**
 * Copies the generated CRD and RBAC (the output of `gavel crds`, from
 * api/v1alpha1/crd.ts and operator/rbac.ts) into the Helm chart:
 *   charts/gavel/crds/gavel.dev_auctionpipelines.yaml  (installed by Helm as is)
 *   charts/gavel/files/rbac.yaml                       (the chart's RBAC templates read their rules from it)
 *
 * Usage: node scripts/sync-chart.ts          # write
 *        node scripts/sync-chart.ts --check  # exit 1 when the chart is stale
 */
import { readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CRD_FILE } from "../api/v1alpha1/crd.ts";
import { generatedFiles, RBAC_FILE } from "../operator/generate.ts";

export const CHART_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "charts", "gavel");

/** Chart path (relative to the chart) -> expected content. */
export function chartCopies(): Record<string, string> {
  const gen = generatedFiles();
  const crd = gen[CRD_FILE];
  const rbac = gen[RBAC_FILE];
  if (crd === undefined || rbac === undefined)
    throw new Error("gavel crds no longer generates the CRD or RBAC");
  return { [`crds/${CRD_FILE}`]: crd, [`files/${RBAC_FILE}`]: rbac };
}

/** Chart paths whose content differs from the generated one. */
export async function staleCopies(chartDir = CHART_DIR): Promise<string[]> {
  const stale: string[] = [];
  for (const [rel, text] of Object.entries(chartCopies())) {
    const current = await readFile(join(chartDir, rel), "utf8").catch(() => undefined);
    if (current !== text) stale.push(rel);
  }
  return stale;
}

async function syncChart(chartDir = CHART_DIR): Promise<string[]> {
  const written: string[] = [];
  for (const [rel, text] of Object.entries(chartCopies())) {
    await writeFile(join(chartDir, rel), text);
    written.push(join(chartDir, rel));
  }
  return written;
}

if (import.meta.main) {
  if (process.argv.includes("--check")) {
    const stale = await staleCopies();
    if (stale.length > 0) {
      process.stderr.write(`charts/gavel is stale (${stale.join(", ")}): run node scripts/sync-chart.ts\n`);
      process.exitCode = 1;
    }
  } else {
    for (const p of await syncChart()) process.stdout.write(`wrote ${p}\n`);
  }
}
