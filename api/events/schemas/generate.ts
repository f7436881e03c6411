/**
 * Writes the versioned JSON Schemas of the events (`api/events/schemas/*.json`)
 * from their TypeBox definitions in api/events/types.ts, the single
 * source. `schemas.test.ts` fails when the checked-in files differ, so run
 * `node api/events/schemas/generate.ts && npx biome format --write api/events/schemas`
 * after changing an event.
 */
import { writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { PUBLISHED_SCHEMAS } from "../types.ts";

export const SCHEMAS_DIR = dirname(fileURLToPath(import.meta.url));

/** File name -> file content (pretty JSON with a trailing newline). */
export function renderSchemas(): Map<string, string> {
  const out = new Map<string, string>();
  for (const s of PUBLISHED_SCHEMAS) {
    // JSON round-trip drops TypeBox's symbol keys; $schema first for readers.
    const body = JSON.parse(JSON.stringify(s.schema)) as Record<string, unknown>;
    const doc = { $schema: "https://json-schema.org/draft/2020-12/schema", ...body };
    out.set(s.file, `${JSON.stringify(doc, null, 2)}\n`);
  }
  return out;
}

export async function writeSchemas(dir = SCHEMAS_DIR): Promise<string[]> {
  const files: string[] = [];
  for (const [name, text] of renderSchemas()) {
    await writeFile(join(dir, name), text);
    files.push(name);
  }
  return files;
}

if (import.meta.main) {
  const files = await writeSchemas();
  process.stdout.write(`wrote ${files.length} schemas to ${SCHEMAS_DIR}\n`);
}
