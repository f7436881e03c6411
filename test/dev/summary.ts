/**
 * What `gavel dev` prints at the end: the accounting of every generated bid
 * record, the auctions, fraud, gold tables, and where to look. Collected from
 * silver and gold (the database is the truth, not the processors' counters);
 * formatted by a pure function.
 */
import type pg from "pg";
import type { topicNames } from "../../api/v1alpha1/pipeline.ts";
import { GOLD_TABLES } from "../../processors/rollup/gold.ts";
import type { RollupResult } from "../../processors/rollup/rollup.ts";
import type { FolderObjectStore, ObjectStore } from "../../processors/storage/objects.ts";
import type { BidKind, Dataset } from "../generate/dataset.ts";

export interface SilverProgress {
  readonly accepted: number;
  readonly rejected: number;
  /** Bid records the silver-writer could not write (silver.dead_letters of silver.bids / bid_rejections). */
  readonly deadLettered: number;
  readonly closed: number;
}

/** This run's rows, recognised by the id prefix of the generated data. */
const RUN_BIDS = "bid_id LIKE $1";
// Rejected records carry the prefix in bid_id or auction_id; a record too broken to have either is counted too
// (ingest refuses those with 400, so on a shared database this only adds rows of the same kind).
const RUN_REJECTIONS = "(bid_id LIKE $1 OR auction_id LIKE $1 OR (bid_id IS NULL AND auction_id IS NULL))";
// Bid records the silver-writer dead-lettered: keyed by auction_id (a record without a key is counted too, as above).
const RUN_BID_DEAD_LETTERS =
  "target_table IN ('silver.bids', 'silver.bid_rejections') AND (key LIKE $1 OR key IS NULL)";

export async function silverProgress(pool: pg.Pool, prefix: string): Promise<SilverProgress> {
  const p = `${prefix}-%`;
  const { rows } = await pool.query<{ accepted: string; rejected: string; dead: string; closed: string }>(
    `SELECT (SELECT count(*) FROM silver.bids WHERE ${RUN_BIDS}) AS accepted,
            (SELECT count(*) FROM silver.bid_rejections WHERE ${RUN_REJECTIONS}) AS rejected,
            (SELECT count(*) FROM silver.dead_letters WHERE ${RUN_BID_DEAD_LETTERS}) AS dead,
            (SELECT count(*) FROM silver.transactions WHERE auction_id LIKE $1) AS closed`,
    [p],
  );
  const r = rows[0]!;
  return {
    accepted: Number(r.accepted),
    rejected: Number(r.rejected),
    deadLettered: Number(r.dead),
    closed: Number(r.closed),
  };
}

export interface GoldTableSummary {
  readonly table: string;
  readonly rows: number;
  readonly sample: readonly Record<string, unknown>[];
}

export interface DevSummary {
  readonly elapsedMs: number;
  readonly backends: readonly string[];
  readonly prefix: string;
  readonly bids: {
    /** Bid records generated (malformed included). */
    readonly generated: number;
    /** Refused by ingest with HTTP 400 (nothing produced). */
    readonly refusedAtIngest: number;
    /** Rows in silver.bids. */
    readonly accepted: number;
    /** Rows in silver.bid_rejections. */
    readonly rejected: number;
    readonly rejectedByReason: Readonly<Record<string, number>>;
    /** Bid records in silver.dead_letters (the silver-writer could not write them). */
    readonly deadLettered: number;
    /** generated - refused - accepted - rejected - dead-lettered: 0 when every record is accounted for. */
    readonly unaccounted: number;
    /** How far the sender fell behind the schedule at worst (a busy machine): late bids meet closed auctions. */
    readonly senderMaxLagMs: number;
    /** What the generator meant each record to be. */
    readonly generatedByKind: Readonly<Record<BidKind, number>>;
  };
  readonly auctions: {
    readonly generated: number;
    readonly closed: number;
    readonly sold: number;
    readonly gmvByCurrency: Readonly<Record<string, string>>;
    readonly top: readonly {
      auction_id: string;
      title: string;
      category: string;
      final_price: string;
      currency: string;
      bids: number;
      winner_id: string | null;
    }[];
  };
  /** silver.dead_letters of this pipeline's topics, per `table reason` (any record, not only bids). */
  readonly deadLetters: { readonly total: number; readonly byReason: Readonly<Record<string, number>> };
  readonly fraud: {
    readonly alerts: number;
    readonly quarantined: number;
    readonly signals: Readonly<Record<string, number>>;
    readonly topBidders: readonly { bidder_id: string; alerts: number; max_score: number }[];
  };
  readonly gold: readonly {
    readonly day: string;
    readonly status: string;
    readonly durationMs: number;
    readonly tables: readonly GoldTableSummary[];
  }[];
  readonly files: {
    readonly dataDir: string;
    readonly objects: string;
    readonly bronzeRecords: number;
    readonly bronzeObjects: number | null;
    readonly goldObjects: readonly string[];
    readonly summary: string;
  };
  readonly ingest: { readonly url: string; readonly apiKey: string; readonly curl: readonly string[] };
}

function signalNames(signals: unknown): string[] {
  if (Array.isArray(signals))
    return signals
      .map((s) =>
        typeof s === "string"
          ? s
          : s && typeof s === "object"
            ? ((s as { name?: string; signal?: string }).name ?? (s as { signal?: string }).signal)
            : undefined,
      )
      .filter((s): s is string => typeof s === "string");
  if (signals && typeof signals === "object") return Object.keys(signals);
  return [];
}

const GOLD_ORDER: Record<string, string> = {
  daily_revenue: "gmv DESC, category, currency",
  auction_performance: "auctions_closed DESC, category",
  bidder_analytics: "bids DESC, bidder_id",
  fraud_summary: "day",
  category_trends: "bids DESC, category",
};

export async function collectSummary(o: {
  pool: pg.Pool;
  store: ObjectStore;
  prefix: string;
  dataset: Dataset;
  refusedAtIngest: number;
  senderMaxLagMs: number;
  rollups: readonly RollupResult[];
  ingestUrl: string;
  apiKey: string;
  lakePrefix: string;
  bronzeRecords: number;
  backends: readonly string[];
  elapsedMs: number;
  topics: ReturnType<typeof topicNames>;
  dataDir: string;
}): Promise<DevSummary> {
  const { pool } = o;
  const p = `${o.prefix}-%`;
  const progress = await silverProgress(pool, o.prefix);
  const reasons = await pool.query<{ reason: string; n: string }>(
    `SELECT reason, count(*) AS n FROM silver.bid_rejections WHERE ${RUN_REJECTIONS} GROUP BY reason ORDER BY 2 DESC, 1`,
    [p],
  );
  const dead = await pool.query<{ target_table: string; reason: string; n: string }>(
    `SELECT target_table, reason, count(*) AS n FROM silver.dead_letters WHERE source_topic = ANY($1)
     GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2`,
    [Object.values(o.topics).map((t) => t.name)],
  );
  const sold = await pool.query<{ currency: string; gmv: string; n: string }>(
    `SELECT currency, sum(final_price)::text AS gmv, count(*) AS n FROM silver.transactions
     WHERE auction_id LIKE $1 AND reserve_met AND winner_id IS NOT NULL GROUP BY currency ORDER BY currency`,
    [p],
  );
  const top = await pool.query<{
    auction_id: string;
    title: string;
    category: string;
    final_price: string;
    currency: string;
    bids: number | null;
    winner_id: string | null;
  }>(
    `SELECT t.auction_id, a.title, a.category, t.final_price::text AS final_price, t.currency,
            (SELECT count(*)::int FROM silver.bids b WHERE b.auction_id = t.auction_id) AS bids, t.winner_id
     FROM silver.transactions t JOIN silver.auctions a USING (auction_id)
     WHERE t.auction_id LIKE $1 AND t.reserve_met AND t.winner_id IS NOT NULL
     ORDER BY t.final_price DESC LIMIT 5`,
    [p],
  );
  const alerts = await pool.query<{
    bidder_id: string;
    score: number;
    signals: unknown;
    quarantined: boolean | null;
  }>("SELECT bidder_id, score, signals, quarantined FROM silver.fraud_alerts WHERE bid_id LIKE $1", [p]);
  const signals: Record<string, number> = {};
  const byBidder = new Map<string, { alerts: number; max_score: number }>();
  for (const a of alerts.rows) {
    for (const s of signalNames(a.signals)) signals[s] = (signals[s] ?? 0) + 1;
    const b = byBidder.get(a.bidder_id) ?? { alerts: 0, max_score: 0 };
    b.alerts++;
    b.max_score = Math.max(b.max_score, Number(a.score));
    byBidder.set(a.bidder_id, b);
  }
  const gold: DevSummary["gold"][number][] = [];
  for (const r of o.rollups) {
    const tables: GoldTableSummary[] = [];
    for (const t of GOLD_TABLES) {
      const sample =
        r.status === "failed"
          ? []
          : (
              await pool.query<Record<string, unknown>>(
                `SELECT * FROM gold.${t} WHERE day = $1 ORDER BY ${GOLD_ORDER[t] ?? "1"} LIMIT 3`,
                [r.day],
              )
            ).rows.map(({ day: _d, ...rest }) => rest);
      tables.push({ table: `gold.${t}`, rows: r.rows[t] ?? 0, sample });
    }
    gold.push({ day: r.day, status: r.status, durationMs: r.durationMs, tables });
  }
  const folder = "list" in o.store ? (o.store as FolderObjectStore) : undefined;
  const bronzeObjects = folder ? (await folder.list(`${o.lakePrefix}bronze/`)).length : null;

  const generated = o.dataset.bids.length;
  const curl = curlExamples(o.dataset, o.prefix, o.ingestUrl, o.apiKey);
  return {
    elapsedMs: o.elapsedMs,
    backends: o.backends,
    prefix: o.prefix,
    bids: {
      generated,
      refusedAtIngest: o.refusedAtIngest,
      accepted: progress.accepted,
      rejected: progress.rejected,
      rejectedByReason: Object.fromEntries(reasons.rows.map((r) => [r.reason, Number(r.n)])),
      deadLettered: progress.deadLettered,
      unaccounted:
        generated - o.refusedAtIngest - progress.accepted - progress.rejected - progress.deadLettered,
      senderMaxLagMs: o.senderMaxLagMs,
      generatedByKind: o.dataset.counts,
    },
    auctions: {
      generated: o.dataset.auctions.length,
      closed: progress.closed,
      sold: sold.rows.reduce((n, r) => n + Number(r.n), 0),
      gmvByCurrency: Object.fromEntries(sold.rows.map((r) => [r.currency.trim(), r.gmv])),
      top: top.rows.map((r) => ({ ...r, currency: r.currency.trim(), bids: r.bids ?? 0 })),
    },
    deadLetters: {
      total: dead.rows.reduce((n, r) => n + Number(r.n), 0),
      byReason: Object.fromEntries(dead.rows.map((r) => [`${r.target_table} ${r.reason}`, Number(r.n)])),
    },
    fraud: {
      alerts: alerts.rows.length,
      quarantined: alerts.rows.filter((a) => a.quarantined).length,
      signals,
      topBidders: [...byBidder]
        .map(([bidder_id, v]) => ({ bidder_id, ...v }))
        .sort((a, b) => b.alerts - a.alerts || b.max_score - a.max_score)
        .slice(0, 5),
    },
    gold,
    files: {
      dataDir: o.dataDir,
      objects: `${o.store.location.replace(/\/$/, "")}/${o.lakePrefix}`,
      bronzeRecords: o.bronzeRecords,
      bronzeObjects,
      goldObjects: o.rollups.flatMap((r) => r.objects),
      summary: `${o.dataDir}/summary.json`,
    },
    ingest: { url: o.ingestUrl, apiKey: o.apiKey, curl },
  };
}

/** Two commands a reader can paste: open an auction for an hour, bid on it. */
function curlExamples(ds: Dataset, prefix: string, url: string, apiKey: string): string[] {
  const a0 = ds.auctions[0];
  if (!a0) return [];
  const now = Date.now();
  const auctionId = `${prefix}-a-yours`;
  const bidder = ds.users.find((u) => u.user_id !== a0.seller_id)?.user_id ?? `${prefix}-u-1`;
  const auction = {
    ...a0,
    auction_id: auctionId,
    item_id: `${prefix}-i-yours`,
    title: "Your auction",
    starts_at: new Date(now).toISOString(),
    ends_at: new Date(now + 3_600_000).toISOString(),
  };
  delete (auction as { reserve_price?: number }).reserve_price;
  delete (auction as { soft_close_seconds?: number }).soft_close_seconds;
  const bid = {
    schema: ds.bids.find((b) => b.bid)?.bid?.schema,
    bid_id: `${prefix}-b-yours-1`,
    auction_id: auctionId,
    bidder_id: bidder,
    amount: a0.start_price + a0.min_increment,
    currency: a0.currency,
    placed_at: new Date(now + 1_000).toISOString(),
    source: "api",
  };
  const c = (path: string, body: unknown) =>
    `curl -sS -X POST ${url}${path} -H ${shellQuote(`authorization: Bearer ${apiKey}`)} -H 'content-type: application/json' -d ${shellQuote(JSON.stringify(body))}`;
  return [c("/v1/auctions", auction), c("/v1/bids", bid)];
}

/** One POSIX-shell word: single-quoted, a `'` inside written as `'\''` (ids are opaque text, `d'artagnan` included). */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", "'\\''")}'`;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return "-";
  if (v instanceof Date) return v.toISOString();
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/** Plain text for the terminal. */
export function formatSummary(s: DevSummary): string {
  const out: string[] = [];
  const b = s.bids;
  const line = (x = "") => out.push(x);
  line();
  line(`=== gavel dev: summary (${(s.elapsedMs / 1000).toFixed(1)} s) ===`);
  line();
  line("Bid records");
  line(`  generated            ${b.generated}`);
  line(`  refused at ingest    ${b.refusedAtIngest}   (HTTP 400: malformed, nothing produced)`);
  line(`  accepted             ${b.accepted}   (silver.bids)`);
  line(`  rejected             ${b.rejected}   (silver.bid_rejections and the dead-letter topic)`);
  for (const [reason, n] of Object.entries(b.rejectedByReason)) line(`    ${reason.padEnd(20)} ${n}`);
  if (b.deadLettered > 0)
    line(
      `  dead-lettered        ${b.deadLettered}   (silver.dead_letters: the silver-writer could not write them)`,
    );
  const terms =
    b.deadLettered > 0 ? "refused + accepted + rejected + dead-lettered" : "refused + accepted + rejected";
  line(
    b.unaccounted === 0
      ? `  every generated record is accounted for (${terms} = generated)`
      : `  UNACCOUNTED          ${b.unaccounted}   (${terms} != generated)`,
  );
  if (b.senderMaxLagMs > 1_000)
    line(
      `  note: the sender fell up to ${(b.senderMaxLagMs / 1000).toFixed(1)} s behind the schedule (busy machine); bids sent after their auction's end are rejected as auction_closed (try a lower --rate)`,
    );
  line();
  const a = s.auctions;
  line("Auctions");
  line(`  generated ${a.generated}, closed ${a.closed}, sold ${a.sold}`);
  for (const [cur, gmv] of Object.entries(a.gmvByCurrency)) line(`  GMV ${cur} ${gmv} (minor units)`);
  if (a.top.length > 0) {
    line("  top auctions by final price:");
    for (const t of a.top)
      line(
        `    ${t.auction_id.padEnd(14)} ${t.title.slice(0, 24).padEnd(24)} ${t.category.padEnd(12)} ${t.final_price.padStart(
          9,
        )} ${t.currency}  ${String(t.bids).padStart(3)} bids  winner ${t.winner_id ?? "-"}`,
      );
  }
  if (s.deadLetters.total > 0) {
    line();
    line(`Silver dead letters   ${s.deadLetters.total}   (records the silver-writer could not write)`);
    for (const [k, n] of Object.entries(s.deadLetters.byReason)) line(`    ${k.padEnd(40)} ${n}`);
    line("  inspect: SELECT * FROM silver.dead_letters ORDER BY recorded_at DESC  (docs/operations.md)");
  }
  line();
  const f = s.fraud;
  line("Fraud");
  line(`  alerts ${f.alerts} (quarantined ${f.quarantined})`);
  const sig = Object.entries(f.signals).sort((x, y) => y[1] - x[1]);
  if (sig.length > 0) line(`  signals: ${sig.map(([k, n]) => `${k} ${n}`).join(", ")}`);
  for (const t of f.topBidders)
    line(
      `    ${t.bidder_id.padEnd(20)} ${String(t.alerts).padStart(3)} alerts, max score ${t.max_score.toFixed(2)}`,
    );
  line();
  line("Gold (DuckDB rollup)");
  for (const g of s.gold) {
    line(`  day ${g.day}: ${g.status} in ${g.durationMs} ms`);
    for (const t of g.tables) {
      line(`    ${t.table.padEnd(24)} ${t.rows} rows`);
      for (const r of t.sample) {
        const cols = Object.entries(r)
          .slice(0, 6)
          .map(([k, v]) => `${k}=${cell(v)}`)
          .join(" ");
        line(`      ${cols.slice(0, 150)}`);
      }
    }
  }
  if (s.gold.length === 0) line("  no day to roll up (no auction closed)");
  line();
  line("Where to look");
  for (const d of s.backends) line(`  ${d}`);
  line(
    `  bronze:   ${s.files.objects}bronze/  (${s.files.bronzeRecords} records${
      s.files.bronzeObjects === null ? "" : ` in ${s.files.bronzeObjects} NDJSON.gz objects`
    })`,
  );
  line(`  gold:     ${s.files.objects}gold/  (${s.files.goldObjects.length} Parquet files)`);
  line(`  ingest:   ${s.ingest.url}  (OpenAPI at ${s.ingest.url}/openapi.json)`);
  line(`  API key:  ${s.ingest.apiKey}`);
  if (s.ingest.curl.length > 0) {
    line("  try it:");
    for (const c of s.ingest.curl) line(`    ${c}`);
  }
  return out.join("\n");
}
