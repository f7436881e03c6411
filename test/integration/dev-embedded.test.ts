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
import { GOLD_TABLES } from "../../processors/rollup/gold.ts";
import { folderObjectStore } from "../../processors/storage/objects.ts";
import type { DevSummary } from "../dev/summary.ts";
import { generateDataset } from "../generate/dataset.ts";
import { embeddedEnv, runGavelDev, startGavelDev } from "./dev-helpers.ts";

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

  it("keeps serving after the summary: the printed curl commands land in silver, Ctrl-C exits 0", {
    timeout: 400_000,
  }, async () => {
    const serveDir = await mkdtemp(join(tmpdir(), "gavel-dev-serve-"));
    const dev = startGavelDev(
      ["--auctions", "5", "--bids", "100", "--seed", "3", "--port", "0", "--data-dir", serveDir],
      embeddedEnv(),
    );
    try {
      const until = async (cond: () => boolean, what: string, ms = 300_000) => {
        const deadline = Date.now() + ms;
        while (!cond()) {
          if (Date.now() > deadline || dev.child.exitCode !== null)
            throw new Error(
              `${what}\nstdout:\n${dev.out.stdout.slice(-2000)}\nstderr:\n${dev.out.stderr.slice(-2000)}`,
            );
          await new Promise((r) => setTimeout(r, 250));
        }
      };
      await until(() => dev.out.stdout.includes("Still serving"), "no summary");
      const s = JSON.parse(await readFile(join(serveDir, "summary.json"), "utf8")) as DevSummary;
      expect(s.bids.unaccounted).toBe(0);
      // The two printed commands, run as printed (open an auction, bid on it).
      const curls = dev.out.stdout
        .split("\n")
        .map((l) => l.trim())
        .filter((l) => l.startsWith("curl "));
      expect(curls).toHaveLength(2);
      for (const c of curls) {
        const m =
          /^curl -sS -X POST (\S+) -H 'authorization: Bearer (\S+)' -H 'content-type: application\/json' -d '(.*)'$/.exec(
            c,
          );
        expect(m, c).not.toBeNull();
        const res = await fetch(m![1]!, {
          method: "POST",
          headers: { authorization: `Bearer ${m![2]}`, "content-type": "application/json" },
          body: m![3],
        });
        expect(res.status, await res.text()).toBe(202);
      }
      await until(
        () =>
          dev.out.stdout.includes("+1 accepted") &&
          dev.out.stdout.includes("latest accepted bid g3-b-yours-1"),
        "the curl bid did not reach silver",
        60_000,
      );
      dev.child.kill("SIGINT");
      expect(await dev.exited).toBe(0);
    } finally {
      if (dev.child.exitCode === null) dev.child.kill("SIGKILL");
      await rm(serveDir, { recursive: true, force: true });
    }
  });
});
