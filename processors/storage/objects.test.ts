import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { tempDirs } from "../../test/temp-dirs.ts";
import { folderObjectStore, goldLakeOn } from "./objects.ts";

describe("folderObjectStore", () => {
  const tempDir = tempDirs("gavel-objects-");

  it("puts, replaces, lists and gets objects by key; refuses keys outside the folder", async () => {
    const dir = await tempDir();
    const s = folderObjectStore(dir);
    await s.put("p/bronze/topic=t/0-0-9.ndjson.gz", Buffer.from("one"));
    await s.put("p/bronze/topic=t/0-0-9.ndjson.gz", Buffer.from("two"));
    await s.put("p/gold/x/day=2026-01-01/part-0.parquet", Buffer.from("g"));
    expect((await s.get("p/bronze/topic=t/0-0-9.ndjson.gz")).toString()).toBe("two");
    expect(await s.list("p/")).toEqual([
      { key: "p/bronze/topic=t/0-0-9.ndjson.gz", size: 3 },
      { key: "p/gold/x/day=2026-01-01/part-0.parquet", size: 1 },
    ]);
    expect((await s.list("p/gold/")).map((o) => o.key)).toEqual(["p/gold/x/day=2026-01-01/part-0.parquet"]);
    // No temporary files left behind by the write-then-rename.
    expect(await readdir(join(dir, "p/bronze/topic=t"))).toEqual(["0-0-9.ndjson.gz"]);
    await expect(s.put("../escape", Buffer.from("x"))).rejects.toThrow(/escapes/);
    expect(s.location).toBe(dir);
  });

  it("serves as the rollup's gold lake (prefix normalised, file contents copied)", async () => {
    const dir = await tempDir();
    const file = join(dir, "local.parquet");
    await writeFile(file, "PAR1");
    const store = folderObjectStore(join(dir, "lake"));
    const lake = goldLakeOn(store, "team");
    expect(lake.prefix).toBe("team/");
    await lake.put("team/gold/t/day=2026-01-01/part-0.parquet", file);
    expect((await store.get("team/gold/t/day=2026-01-01/part-0.parquet")).toString()).toBe("PAR1");
  });
});
