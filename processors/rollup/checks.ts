import type { DuckDBConnection } from "@duckdb/node-api";

/**
 * Data-quality checks run with every rollup, over the day's silver extract in
 * DuckDB (plus the GMV reconciliation against PostgreSQL, done by the job).
 * Each check is a query that returns one row per violation with a readable
 * `detail`; an `error` check with violations fails the run and leaves the
 * previous gold of the day in place, a `warn` check is only reported.
 */
export interface QualityCheck {
  readonly name: string;
  readonly description: string;
  readonly severity: "error" | "warn";
  /** DuckDB query over the extract tables and `params`; one row per violation, column `detail`. */
  readonly sql: string;
}

/** Result of one check, stored in gold.rollup_runs.checks. */
export interface CheckResult {
  readonly name: string;
  readonly description: string;
  readonly severity: "error" | "warn";
  readonly passed: boolean;
  readonly violations: number;
  /** Up to five example violations. */
  readonly samples: readonly string[];
}

/** Allowed clock skew between a client's placed_at and the ingest's received_at / the run. */
const SKEW = "INTERVAL 5 MINUTE";

const QUALITY_CHECKS: readonly QualityCheck[] = [
  {
    name: "positive_amounts",
    description:
      "bid amounts and sold final prices are > 0; start prices and reserves are >= 0; min increments are > 0",
    severity: "error",
    sql: `
      SELECT 'bid ' || bid_id || ' amount ' || coalesce(CAST(amount AS VARCHAR), 'null') AS detail
        FROM bids WHERE amount IS NULL OR amount <= 0
      UNION ALL
      SELECT 'transaction ' || auction_id || ' final_price ' || coalesce(CAST(final_price AS VARCHAR), 'null')
        FROM transactions WHERE winner_id IS NOT NULL AND (final_price IS NULL OR final_price <= 0)
      UNION ALL
      SELECT 'auction ' || auction_id || ' start_price ' || coalesce(CAST(start_price AS VARCHAR), 'null')
             || ' reserve_price ' || coalesce(CAST(reserve_price AS VARCHAR), 'null')
             || ' min_increment ' || coalesce(CAST(min_increment AS VARCHAR), 'null')
        FROM auctions
        WHERE start_price IS NULL OR start_price < 0 OR reserve_price < 0 OR min_increment IS NULL OR min_increment <= 0`,
  },
  {
    name: "valid_timestamps",
    description:
      "times are present, after 2000-01-01 and not in the future; received_at is not before placed_at (5 min skew); auctions end after they start; closings are not before the start",
    severity: "error",
    sql: `
      SELECT 'bid ' || bid_id || ' placed_at ' || coalesce(CAST(placed_at AS VARCHAR), 'null')
             || ' received_at ' || coalesce(CAST(received_at AS VARCHAR), 'null') AS detail
        FROM bids, params p
        WHERE placed_at IS NULL OR received_at IS NULL
           OR placed_at < TIMESTAMP '2000-01-01' OR placed_at > p.run_at + ${SKEW}
           OR received_at > p.run_at + ${SKEW} OR received_at < placed_at - ${SKEW}
      UNION ALL
      SELECT 'auction ' || auction_id || ' starts_at ' || coalesce(CAST(starts_at AS VARCHAR), 'null')
             || ' ends_at ' || coalesce(CAST(ends_at AS VARCHAR), 'null')
        FROM auctions
        WHERE starts_at IS NULL OR ends_at IS NULL OR ends_at <= starts_at OR starts_at < TIMESTAMP '2000-01-01'
      UNION ALL
      SELECT 'transaction ' || t.auction_id || ' closed_at ' || CAST(t.closed_at AS VARCHAR)
             || ' before starts_at ' || CAST(a.starts_at AS VARCHAR)
        FROM transactions t JOIN auctions a USING (auction_id) WHERE t.closed_at < a.starts_at
      UNION ALL
      SELECT 'transaction ' || auction_id || ' closed_at ' || CAST(closed_at AS VARCHAR) || ' is in the future'
        FROM transactions, params p WHERE closed_at > p.run_at + ${SKEW}`,
  },
  {
    name: "keys_resolve",
    description:
      "every bid and transaction refers to a known auction; every winner placed an accepted bid in the auction they won",
    severity: "error",
    sql: `
      SELECT 'bid ' || b.bid_id || ' -> unknown auction ' || b.auction_id AS detail
        FROM bids b ANTI JOIN auctions a USING (auction_id)
      UNION ALL
      SELECT 'transaction -> unknown auction ' || t.auction_id
        FROM transactions t ANTI JOIN auctions a USING (auction_id)
      UNION ALL
      SELECT 'transaction ' || t.auction_id || ' winner ' || t.winner_id || ' has no accepted bid in the auction'
        FROM transactions t
        WHERE t.winner_id IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM bids b WHERE b.auction_id = t.auction_id AND b.bidder_id = t.winner_id)`,
  },
  {
    name: "no_duplicate_bid_id",
    description: "each bid_id appears once among accepted bids",
    severity: "error",
    sql: `SELECT 'bid ' || bid_id || ' appears ' || CAST(count(*) AS VARCHAR) || ' times' AS detail
          FROM bids GROUP BY bid_id HAVING count(*) > 1`,
  },
  {
    name: "currency_consistent",
    description: "bids and transactions are in their auction's currency",
    severity: "error",
    sql: `
      SELECT 'bid ' || b.bid_id || ' in ' || b.currency || ', auction ' || a.auction_id || ' in ' || a.currency AS detail
        FROM bids b JOIN auctions a USING (auction_id) WHERE b.currency IS DISTINCT FROM a.currency
      UNION ALL
      SELECT 'transaction ' || t.auction_id || ' in ' || t.currency || ', auction in ' || a.currency
        FROM transactions t JOIN auctions a USING (auction_id)
        WHERE t.currency IS NOT NULL AND t.currency IS DISTINCT FROM a.currency`,
  },
  {
    name: "bidders_known",
    description:
      "bidders are registered users (silver.users); unknown ones have no country or new/returning flag",
    severity: "warn",
    sql: `SELECT DISTINCT 'bidder ' || b.bidder_id || ' is not in silver.users' AS detail
          FROM bids b ANTI JOIN users u ON u.user_id = b.bidder_id`,
  },
];

async function runCheck(conn: DuckDBConnection, check: QualityCheck): Promise<CheckResult> {
  const reader = await conn.runAndReadAll(
    `WITH v AS (${check.sql}) SELECT (SELECT count(*) FROM v) AS n,
       (SELECT coalesce(list(detail ORDER BY detail), []) FROM (SELECT detail FROM v ORDER BY detail LIMIT 5)) AS samples`,
  );
  const row = reader.getRowObjectsJS()[0] as { n: bigint; samples: string[] } | undefined;
  const violations = Number(row?.n ?? 0);
  return {
    name: check.name,
    description: check.description,
    severity: check.severity,
    passed: violations === 0,
    violations,
    samples: row?.samples ?? [],
  };
}

export async function runChecks(
  conn: DuckDBConnection,
  checks: readonly QualityCheck[] = QUALITY_CHECKS,
): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const c of checks) out.push(await runCheck(conn, c));
  return out;
}

/** The checks that fail the run. */
export function failedChecks(results: readonly CheckResult[]): CheckResult[] {
  return results.filter((r) => !r.passed && r.severity === "error");
}

/** A human-readable report of failed checks, for errors and logs. */
export function formatCheckReport(results: readonly CheckResult[]): string {
  return results
    .filter((r) => !r.passed)
    .map(
      (r) =>
        `${r.severity === "error" ? "FAILED" : "WARNING"} ${r.name}: ${r.violations} violation(s) (${r.description})${r.samples.map((s) => `\n    - ${s}`).join("")}`,
    )
    .join("\n");
}
