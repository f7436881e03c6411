/**
 * `gavel dev --once` on embedded defaults, as a user runs it on a fresh
 * clone: a child process with NO service variables (the test environment's
 * are stripped), so the in-memory log, PGlite and a folder are used. The
 * summary's accounting is checked against the generator's own counts.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { DevSummary } from "../../processors/dev/summary.ts";
import { generateDataset } from "../../processors/generate/dataset.ts";
import { GOLD_TABLES } from "../../processors/rollup/gold.ts";
import { folderObjectStore } from "../../processors/storage/objects.ts";
import { embeddedEnv, runGavelDev } from "./dev-helpers.ts";

describe("gavel dev --once on embedded defaults", () => {
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("runs the whole pipeline with no services and accounts for every generated bid record", {
    timeout: 400_000,
  }, async () => {
    dir = await mkdtemp(join(tmpdir(), "gavel-dev-"));
    const r = await runGavelDev(
      ["--once", "--auctions", "50", "--bids", "2000", "--seed", "7", "--port", "0", "--data-dir", dir],
      embeddedEnv(),
    );
    expect(r.code, `stderr:\n${r.stderr.slice(-3000)}\nstdout:\n${r.stdout.slice(-3000)}`).toBe(0);
    expect(r.stderr).toContain("log:      embedded");
    expect(r.stderr).toContain("embedded PostgreSQL (PGlite)");
    expect(r.stdout).toContain("every generated record is accounted for");

    const s = JSON.parse(await readFile(join(dir, "summary.json"), "utf8")) as DevSummary;
    // The generator, run again with the same seed, is the independent reference.
    const ds = generateDataset({ seed: 7, auctions: 50, bids: 2000, startMs: 0, prefix: "g7" });
    expect(s.prefix).toBe("g7");
    expect(s.bids.generated).toBe(2000);
    expect(s.bids.generatedByKind).toEqual(ds.counts);
    // Every record ends in exactly one place: refused at ingest (400), silver.bids or silver.bid_rejections.
    expect(s.bids.refusedAtIngest + s.bids.accepted + s.bids.rejected).toBe(2000);
    expect(s.bids.unaccounted).toBe(0);
    expect(s.bids.refusedAtIngest).toBeLessThanOrEqual(ds.counts.malformed);
    expect(s.bids.refusedAtIngest).toBeGreaterThan(0);
    // Kinds whose outcome the contract fixes: one rejection of that reason each.
    const reasons = s.bids.rejectedByReason;
    expect(reasons.duplicate).toBe(ds.counts.duplicate);
    expect(reasons.auction_not_found).toBe(ds.counts.unknown_auction);
    expect(reasons.currency_mismatch).toBe(ds.counts.wrong_currency);
    expect(reasons.not_started).toBe(ds.counts.not_started);
    expect(reasons.self_bid).toBe(ds.counts.self_bid);
    expect(Object.values(reasons).reduce((a, b) => a + b, 0)).toBe(s.bids.rejected);
    expect(s.bids.accepted).toBeGreaterThan(500);

    expect(s.auctions.generated).toBe(50);
    expect(s.auctions.closed).toBe(50);
    expect(s.auctions.sold).toBeGreaterThan(0);
    expect(s.auctions.top.length).toBeGreaterThan(0);

    expect(s.gold).toHaveLength(1);
    expect(s.gold[0]!.status).toBe("succeeded");
    const rows = Object.fromEntries(s.gold[0]!.tables.map((t) => [t.table, t.rows]));
    expect(rows["gold.daily_revenue"]).toBeGreaterThan(0);
    expect(rows["gold.bidder_analytics"]).toBeGreaterThan(0);

    // Files: bronze NDJSON.gz objects and one Parquet file per gold table in the data dir.
    const store = folderObjectStore(join(dir, "lake"));
    const bronze = await store.list("dev/bronze/");
    expect(bronze.length).toBeGreaterThan(0);
    expect(bronze.every((o) => o.key.endsWith(".ndjson.gz"))).toBe(true);
    expect(s.files.bronzeObjects).toBe(bronze.length);
    const gold = (await store.list("dev/gold/")).map((o) => o.key);
    expect(gold).toHaveLength(GOLD_TABLES.length);
    expect(gold.every((k) => k.endsWith("/part-0.parquet"))).toBe(true);
    expect(s.ingest.curl).toHaveLength(2);
    expect(r.stdout).toContain(`Bearer ${s.ingest.apiKey}`);
  });
});
