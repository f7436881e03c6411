/** `gavel crds`: write the generated CRD and RBAC YAML. */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CRD_FILE, crdYaml, toYaml } from "../api/v1alpha1/crd.ts";
import { rbacManifests } from "./rbac.ts";

export const RBAC_FILE = "rbac.yaml";

/** File name -> content of everything `gavel crds` writes. */
export function generatedFiles(): Record<string, string> {
  return { [CRD_FILE]: crdYaml(), [RBAC_FILE]: toYaml(rbacManifests()) };
}

export async function writeGenerated(outDir: string): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const written: string[] = [];
  for (const [name, text] of Object.entries(generatedFiles())) {
    const path = join(outDir, name);
    await writeFile(path, text);
    written.push(path);
  }
  return written;
}
