/** `gavel synth -f pipeline.yaml [--out DIR]`: the manifests the operator would apply, for GitOps and review. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { stringify } from "yaml";
import { loadPipelineFile } from "../api/v1alpha1/pipeline.ts";
import { desired, type KubeObject } from "./desired.ts";

export function toYamlStream(objects: readonly KubeObject[]): string {
  return objects.map((o) => stringify(o, { lineWidth: 0 })).join("---\n");
}

export async function synthCommand(opts: { file: string; namespace?: string; out?: string }): Promise<void> {
  const pipeline = await loadPipelineFile(opts.file);
  const objects = desired(pipeline, opts.namespace === undefined ? {} : { namespace: opts.namespace });
  if (opts.out === undefined) {
    process.stdout.write(toYamlStream(objects));
    return;
  }
  await mkdir(opts.out, { recursive: true });
  for (const [i, o] of objects.entries()) {
    const file = join(
      opts.out,
      `${String(i).padStart(2, "0")}-${o.kind.toLowerCase()}-${o.metadata.name}.yaml`,
    );
    await writeFile(file, stringify(o, { lineWidth: 0 }));
  }
  process.stderr.write(`wrote ${objects.length} manifests to ${opts.out}\n`);
}
