import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  checksum,
  loadMigrations,
  MigrationError,
  parseMigrationFileName,
  planMigrations,
} from "./migrate.ts";

describe("migration files", () => {
  it("parses NNNN_name.sql", () => {
    expect(parseMigrationFileName("0001_silver.sql")).toEqual({ version: 1, name: "silver" });
    expect(parseMigrationFileName("12_x-y.sql")).toEqual({ version: 12, name: "x-y" });
    expect(parseMigrationFileName("silver.sql")).toBeUndefined();
  });

  it("loads the shipped migrations in order with silver and gold contract tables", async () => {
    const ms = await loadMigrations();
    expect(ms.map((m) => m.version)).toEqual([...ms.map((m) => m.version)].sort((a, b) => a - b));
    const all = ms.map((m) => m.sql).join("\n");
    for (const t of [
      "silver.auctions",
      "silver.users",
      "silver.bids",
      "silver.bid_rejections",
      "silver.auction_state",
      "silver.transactions",
      "silver.fraud_alerts",
      "silver.dead_letters",
      "gold.daily_revenue",
      "gold.auction_performance",
      "gold.bidder_analytics",
      "gold.fraud_summary",
      "gold.category_trends",
      "gold.rollup_runs",
    ]) {
      expect(all).toContain(`CREATE TABLE ${t} (`);
    }
  });

  it("rejects duplicate versions and bad names", async () => {
    const dir = await mkdtemp(join(tmpdir(), "mig-"));
    await writeFile(join(dir, "0001_a.sql"), "select 1");
    await writeFile(join(dir, "0001_b.sql"), "select 2");
    await expect(loadMigrations(dir)).rejects.toThrow(/same version 1/);
    const dir2 = await mkdtemp(join(tmpdir(), "mig-"));
    await writeFile(join(dir2, "first.sql"), "select 1");
    await expect(loadMigrations(dir2)).rejects.toThrow(MigrationError);
  });
});

describe("planMigrations", () => {
  const m = (version: number, sql: string) => ({
    version,
    name: `m${version}`,
    file: `${version}_m${version}.sql`,
    sql,
    checksum: checksum(sql),
  });

  it("returns the unapplied ones in order", () => {
    const files = [m(1, "a"), m(2, "b"), m(3, "c")];
    expect(
      planMigrations(files, [{ version: 1, name: "m1", checksum: checksum("a") }]).map((x) => x.version),
    ).toEqual([2, 3]);
  });

  it("refuses an applied file that was edited", () => {
    expect(() => planMigrations([m(1, "a2")], [{ version: 1, name: "m1", checksum: checksum("a") }])).toThrow(
      /was edited after it was applied/,
    );
  });
});
