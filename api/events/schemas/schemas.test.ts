import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderSchemas, SCHEMAS_DIR } from "./generate.ts";

describe("checked-in JSON Schemas", () => {
  const rendered = renderSchemas();

  it("equal the ones generated from the TypeBox definitions (run node api/events/schemas/generate.ts)", () => {
    for (const [name, text] of rendered) {
      // Compared as JSON, so Biome may format the files.
      expect(JSON.parse(readFileSync(join(SCHEMAS_DIR, name), "utf8")), name).toEqual(JSON.parse(text));
    }
  });

  it("has no stale schema files", () => {
    const onDisk = readdirSync(SCHEMAS_DIR).filter((f) => f.endsWith(".json"));
    expect(onDisk.sort()).toEqual([...rendered.keys()].sort());
  });

  it("every schema is versioned and allows unknown fields (forward compatibility)", () => {
    for (const [name, text] of rendered) {
      const s = JSON.parse(text) as { $id: string; additionalProperties?: boolean; type: string };
      expect(s.$id, name).toMatch(/^gavel\.[a-z-]+\/v\d+$/);
      expect(s.type).toBe("object");
      expect(s.additionalProperties).not.toBe(false);
    }
  });
});
