import { randomUUID } from "node:crypto";
import pg from "pg";
import { readConnectionConfig, requireEnv } from "../lib/config.ts";
import { createLogger } from "../lib/log.ts";
import { migrate } from "../processors/db/migrate.ts";
import { s3ClientFromConfig, s3Lake } from "../processors/rollup/lake.ts";
import { rollupDay } from "../processors/rollup/rollup.ts";

/**
 * Benchmark of the gold rollup (issue 5: one million bids for a day rolled up
 * in under 20 s on a 2-core machine). Not a test: it measures, it does not
 * assert. Uses a database of its own (CREATE DATABASE gavel_bench_<random>,
 * dropped afterwards), fills silver with generate_series, then times
 * `rollupDay` (extract, checks, gold SQL, PostgreSQL write and, when
 * S3_BUCKET is set, the Parquet upload).
 */

export interface RollupBenchOptions {
  /** Accepted bids of the day. Default 1,000,000. */
  readonly bids?: number;
  /** Auctions they spread over. Default 10,000. */
  readonly auctions?: number;
  /** Timed runs; the median is reported. Default 3. */
  readonly runs?: number;
  /** Also write Parquet to S3 when S3_BUCKET is set. Default true. */
  readonly parquet?: boolean;
}

export interface BenchResult {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
  readonly runs: number;
  readonly [extra: string]: unknown;
}

export const BENCH_DAY = "2026-01-15";
const DAY = BENCH_DAY;

/**
 * Silver for one UTC day: users, auctions, bids, transactions, fraud alerts
 * and rejections, all generated in SQL. Every auction closes on the day, so
 * the day is complete; the data passes the rollup's quality checks.
 */
export async function generateSilver(
  pool: pg.Pool,
  bids: number,
  auctions: number,
  day = BENCH_DAY,
): Promise<void> {
  const users = Math.max(1000, Math.round(bids / 50));
  const perAuction = Math.ceil(bids / auctions);
  const cats = "ARRAY['electronics','art','books','fashion','home','sports','toys','collectibles']";
  await pool.query(
    `INSERT INTO silver.users (user_id, created_at, country, rating)
     SELECT 'u' || g, timestamptz '2025-01-01' + (g % 400) * interval '1 day',
            (ARRAY['DE','FR','US','GB','JP'])[1 + g % 5], 1 + (g % 5)
     FROM generate_series(1, ${users}) g`,
  );
  await pool.query(
    `INSERT INTO silver.auctions (auction_id, item_id, seller_id, title, category, currency, start_price,
       reserve_price, min_increment, starts_at, ends_at)
     SELECT 'a' || g, 'i' || g, 's' || (g % 500), 'Lot ' || g, (${cats})[1 + g % 8], 'EUR', 1000 + (g % 50) * 100,
            CASE WHEN g % 4 = 0 THEN 1000 + (g % 50) * 100 + ${perAuction} * 60 ELSE NULL END, 50,
            timestamptz '${day}T00:00:00Z' + (g % 600) * interval '1 second',
            timestamptz '${day}T20:00:00Z' + (g % 7200) * interval '1 second'
     FROM generate_series(0, ${auctions - 1}) g`,
  );
  // Bid n goes to auction n % auctions as its (n / auctions)-th bid; amounts rise by 50 each time.
  await pool.query(
    `INSERT INTO silver.bids (bid_id, auction_id, bidder_id, amount, currency, placed_at, received_at, fraud_score, source)
     SELECT 'b' || n, 'a' || (n % ${auctions}), 'u' || (1 + (n::bigint * 7919) % ${users}),
            1000 + ((n % ${auctions}) % 50) * 100 + (n / ${auctions}) * 50, 'EUR',
            timestamptz '${day}T00:10:00Z' + (n / ${auctions}) * (interval '19 hours' / ${perAuction}) + (n % 60) * interval '1 second',
            timestamptz '${day}T00:10:00.05Z' + (n / ${auctions}) * (interval '19 hours' / ${perAuction}) + (n % 60) * interval '1 second',
            (n % 100) / 200.0, 'api'
     FROM generate_series(0, ${bids - 1}) n`,
  );
  await pool.query(
    `INSERT INTO silver.transactions (auction_id, winner_id, final_price, currency, reserve_met, closed_at, winning_bid_id)
     SELECT DISTINCT ON (b.auction_id) b.auction_id, b.bidder_id, b.amount, 'EUR',
            a.reserve_price IS NULL OR b.amount >= a.reserve_price, a.ends_at, b.bid_id
     FROM silver.bids b JOIN silver.auctions a USING (auction_id)
     ORDER BY b.auction_id, b.amount DESC`,
  );
  await pool.query(
    `INSERT INTO silver.fraud_alerts (bid_id, auction_id, bidder_id, score, signals, created_at)
     SELECT bid_id, auction_id, bidder_id, 0.7,
            jsonb_build_object((ARRAY['velocity','shill','new_account_high_bid'])[1 + abs(hashtext(bid_id)) % 3], 0.5),
            placed_at
     FROM silver.bids WHERE fraud_score >= 0.49`,
  );
  await pool.query(
    `INSERT INTO silver.bid_rejections (bid_id, auction_id, bidder_id, reason, placed_at, received_at)
     SELECT 'r' || n, 'a' || (n % ${auctions}), 'u' || (1 + n % ${users}),
            (ARRAY['below_minimum','duplicate','fraud_quarantine','auction_closed'])[1 + n % 4],
            timestamptz '${day}T12:00:00Z', timestamptz '${day}T12:00:00Z'
     FROM generate_series(0, ${Math.round(bids / 50) - 1}) n`,
  );
  await pool.query("ANALYZE");
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function runRollupBench(opts: RollupBenchOptions = {}): Promise<BenchResult> {
  const bids = opts.bids ?? 1_000_000;
  const auctions = opts.auctions ?? 10_000;
  const runs = opts.runs ?? 3;
  const cfg = readConnectionConfig();
  const adminUrl = requireEnv(cfg, "databaseUrl", "DATABASE_URL");
  const name = `gavel_bench_${randomUUID().replace(/-/g, "").slice(0, 10)}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: u.toString(), max: 3 });
  // Idle connections are terminated by DROP DATABASE ... WITH (FORCE) at the end.
  pool.on("error", () => {});
  const logger = createLogger("bench-rollup", "warn");
  const lake =
    opts.parquet !== false && cfg.s3Bucket
      ? s3Lake(s3ClientFromConfig(cfg), cfg.s3Bucket, `bench-rollup-${name}/`)
      : undefined;
  try {
    await migrate(pool);
    const g0 = performance.now();
    await generateSilver(pool, bids, auctions);
    const generateMs = Math.round(performance.now() - g0);
    const durations: number[] = [];
    let silverRows = 0;
    let phasesMs: Readonly<Record<string, number>> = {};
    for (let i = 0; i < runs; i++) {
      const r = await rollupDay(
        { pool, logger, ...(lake ? { lake } : {}), now: () => new Date(`${DAY}T23:59:59Z`) },
        { day: DAY, timeZone: "UTC" },
      );
      if (r.status === "failed") throw new Error(`bench rollup failed: ${r.error}`);
      durations.push(r.durationMs);
      silverRows = Object.values(r.extracted).reduce((a, b) => a + b, 0);
      phasesMs = r.phasesMs;
    }
    const med = median(durations);
    return {
      name: "rollup_rows_per_s",
      value: Math.round(silverRows / (med / 1000)),
      unit: "rows/s",
      runs,
      bids,
      silverRows,
      medianMs: med,
      durationsMs: durations,
      lastRunPhasesMs: phasesMs,
      generateMs,
      parquet: lake !== undefined,
    };
  } finally {
    await pool.end();
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.end();
  }
}

if (import.meta.main) {
  const bids = process.argv[2] ? Number(process.argv[2]) : undefined;
  process.stdout.write(`${JSON.stringify(await runRollupBench({ bids }))}\n`);
}
