import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type pg from "pg";
import type { Logger } from "../../lib/log.ts";
import { type CheckResult, failedChecks, formatCheckReport, runChecks } from "./checks.ts";
import { dayNumber, parseDay, validateTimeZone } from "./days.ts";
import {
  copyIn,
  copyOut,
  type DayBounds,
  duckLoadSql,
  loadKeyTable,
  openAuctionsQuery,
  SILVER_EXTRACTS,
  silverGmvQuery,
} from "./extract.ts";
import {
  closeDuck,
  computeGold,
  duckColumns,
  GOLD_TABLES,
  type GoldTable,
  goldGmv,
  openDuck,
  setParams,
} from "./gold.ts";
import { type GoldLake, goldObjectKey } from "./lake.ts";

/**
 * The gold rollup of one day:
 *
 * 1. take a session advisory lock on the day (namespace ROLLUP_LOCK_NS, key =
 *    days since epoch), so concurrent runs for the same day queue up instead
 *    of interleaving. It is taken BEFORE the transaction starts because a
 *    REPEATABLE READ snapshot is fixed by the first statement: a
 *    transaction-scoped lock taken inside it would leave a waiting run with a
 *    snapshot older than the gold the first run committed;
 * 2. in one REPEATABLE READ transaction (one consistent snapshot of silver):
 *    count auctions of the day still open (partial / skip), COPY the day's
 *    silver out to CSV files, load them into an in-memory DuckDB;
 * 3. run the data-quality checks and compute the gold tables from sql/*.sql;
 *    reconcile gold GMV with silver; any failed check -> rollback, the
 *    previous gold of the day stays;
 * 4. delete the day and COPY the new rows into gold.* in the same transaction,
 *    reconcile again inside it, upload one Parquet file per table (PutObject
 *    replaces the same keys), record the run, COMMIT.
 *
 * If the upload fails the transaction is rolled back; if COMMIT fails after
 * the upload, S3 already holds the new day and a re-run converges both.
 */

/** A DuckDB string literal. */
function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/** First key of the two-key advisory lock of a day ("gold" in ASCII). */
export const ROLLUP_LOCK_NS = 0x676f6c64;

export interface RollupDeps {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  /** Parquet destination; without it only PostgreSQL gold is written. */
  readonly lake?: GoldLake;
  /** Clock (the run time bounds "timestamps in the future"). */
  readonly now?: () => Date;
  /** Parent of the per-run temporary directory. Default: the OS temp dir. */
  readonly tmpDir?: string;
  /** DuckDB threads. Default 2. */
  readonly threads?: number;
}

export interface RollupDayOptions {
  /** `YYYY-MM-DD`, a calendar day in `timeZone`. */
  readonly day: string;
  /** IANA zone whose midnights bound the day. */
  readonly timeZone: string;
  /** Skip (and record) a day whose auctions are not all closed instead of writing it as partial. */
  readonly skipPartial?: boolean;
}

export type RollupStatus = "succeeded" | "partial" | "skipped" | "failed";

export interface RollupResult {
  readonly runId: string;
  readonly day: string;
  readonly status: RollupStatus;
  /** True when auctions ending on the day were still open. */
  readonly partial: boolean;
  readonly openAuctions: number;
  /** Silver rows read per extract table. */
  readonly extracted: Readonly<Record<string, number>>;
  /** Gold rows written per table (empty unless written). */
  readonly rows: Readonly<Partial<Record<GoldTable, number>>>;
  readonly checks: readonly CheckResult[];
  readonly durationMs: number;
  /** Milliseconds per phase: extract, checks, compute, write, upload. */
  readonly phasesMs: Readonly<Record<string, number>>;
  /** S3 keys written. */
  readonly objects: readonly string[];
  readonly error?: string;
}

/** GMV and transaction count of one currency. */
interface GmvTotal {
  readonly gmv: bigint;
  readonly transactions: bigint;
}

/** Compares gold GMV with silver per currency; pure, so it is unit-tested. */
export function reconcileGmv(
  silver: ReadonlyMap<string, GmvTotal>,
  gold: ReadonlyMap<string, GmvTotal>,
): CheckResult {
  const samples: string[] = [];
  for (const c of new Set([...silver.keys(), ...gold.keys()])) {
    const s = silver.get(c) ?? { gmv: 0n, transactions: 0n };
    const g = gold.get(c) ?? { gmv: 0n, transactions: 0n };
    if (s.gmv !== g.gmv || s.transactions !== g.transactions) {
      samples.push(
        `${c}: gold gmv ${g.gmv} in ${g.transactions} transactions, silver ${s.gmv} in ${s.transactions}`,
      );
    }
  }
  return {
    name: "gmv_reconciles",
    description:
      "gold GMV and transaction count per currency equal the sum over silver.transactions of the day",
    severity: "error",
    passed: samples.length === 0,
    violations: samples.length,
    samples: samples.sort().slice(0, 5),
  };
}

async function pgGmv(
  client: pg.PoolClient,
  sql: string,
  params: unknown[] = [],
): Promise<Map<string, GmvTotal>> {
  const { rows } = await client.query<{ currency: string; gmv: string | null; transactions: string }>(
    sql,
    params,
  );
  return new Map(
    rows.map((r) => [r.currency.trim(), { gmv: BigInt(r.gmv ?? "0"), transactions: BigInt(r.transactions) }]),
  );
}

/** Day bounds as instants, computed by PostgreSQL from the zone's rules. */
export async function dayBounds(pool: pg.Pool, day: string, timeZone: string): Promise<DayBounds> {
  const { rows } = await pool.query<{ s: Date; e: Date }>(
    "SELECT ($1::date::timestamp AT TIME ZONE $2) AS s, (($1::date + 1)::timestamp AT TIME ZONE $2) AS e",
    [day, timeZone],
  );
  const r = rows[0]!;
  return { day, start: r.s.toISOString(), end: r.e.toISOString() };
}

export async function rollupDay(deps: RollupDeps, opts: RollupDayOptions): Promise<RollupResult> {
  const now = deps.now ?? (() => new Date());
  const started = now();
  const t0 = performance.now();
  const day = parseDay(opts.day);
  const timeZone = validateTimeZone(opts.timeZone);
  const { pool } = deps;
  const log = deps.logger.child({ day });
  const bounds = await dayBounds(pool, day, timeZone);
  const run = await RunRecord.start(pool, day, timeZone, started, now, t0);
  const session = new RollupSession(day, log);
  try {
    const { client, tmp, duck } = await session.open(deps);
    run.openAuctions = await countOpenAuctions(client, bounds);
    run.partial = run.openAuctions > 0;
    /** Ends the run without writing gold: the day keeps its previous gold. */
    const abandon = async (status: RollupStatus, error: string): Promise<RollupResult> => {
      await session.rollback();
      const r = run.result(status, error);
      await run.finish(pool, r);
      return r;
    };
    if (run.partial && opts.skipPartial) {
      const r = await abandon("skipped", `${run.openAuctions} auction(s) ending on ${day} are still open`);
      log.warn({ openAuctions: run.openAuctions }, "day skipped: auctions still open");
      return r;
    }

    await extractSilver(client, duck.conn, tmp, bounds, run);
    await setParams(duck.conn, { day, start: bounds.start, end: bounds.end, runAt: started });
    run.phase("extract");
    log.debug({ extracted: run.extracted }, "silver extracted");

    const { computed, silverGmv } = await checkAndCompute(client, duck.conn, bounds, run);
    if (failedChecks(run.checks).length > 0) {
      const r = await abandon("failed", `data-quality checks failed:\n${formatCheckReport(run.checks)}`);
      log.error(
        { checks: failedChecks(run.checks) },
        "rollup failed its data-quality checks; previous gold kept",
      );
      return r;
    }

    await replaceGold(client, duck.conn, tmp, day);
    run.rows = computed;
    await verifyWrittenGmv(client, silverGmv, day);
    run.phase("write");

    if (deps.lake) {
      await uploadGold(duck.conn, tmp, deps.lake, day, run.objects);
      run.phase("upload");
    }

    const r = run.result(run.partial ? "partial" : "succeeded");
    await run.finish(client, r);
    await session.commit();
    log.info(
      {
        status: r.status,
        rows: run.rows,
        openAuctions: run.openAuctions,
        durationMs: r.durationMs,
        phasesMs: run.phasesMs,
      },
      "day rolled up",
    );
    return r;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    await session.rollback().catch(() => {});
    const r = run.result("failed", msg);
    await run.finish(pool, r).catch((e: unknown) => log.error({ err: e }, "could not record the failed run"));
    throw err;
  } finally {
    await session.close();
  }
}

/**
 * A run's row in gold.rollup_runs and what the run learnt so far: every
 * outcome (skipped, failed, succeeded, an error thrown half-way) is recorded
 * with the figures collected up to that point.
 */
class RunRecord {
  partial = false;
  openAuctions = 0;
  readonly extracted: Record<string, number> = {};
  rows: Partial<Record<GoldTable, number>> = {};
  checks: CheckResult[] = [];
  readonly objects: string[] = [];
  readonly phasesMs: Record<string, number> = {};
  private mark = performance.now();
  private readonly runId: string;
  private readonly day: string;
  private readonly now: () => Date;
  /** performance.now() when the run began, for `durationMs`. */
  private readonly t0: number;

  private constructor(runId: string, day: string, now: () => Date, t0: number) {
    this.runId = runId;
    this.day = day;
    this.now = now;
    this.t0 = t0;
  }

  /** Inserts the run as `running`; its phase clock starts now. */
  static async start(
    pool: pg.Pool,
    day: string,
    timeZone: string,
    started: Date,
    now: () => Date,
    t0: number,
  ): Promise<RunRecord> {
    const { rows } = await pool.query<{ run_id: string }>(
      "INSERT INTO gold.rollup_runs (day, started_at, status, time_zone) VALUES ($1, $2, 'running', $3) RETURNING run_id",
      [day, started, timeZone],
    );
    return new RunRecord(rows[0]!.run_id, day, now, t0);
  }

  /** Records the time since the previous phase ended as phase `name`. */
  phase(name: string): void {
    const t = performance.now();
    this.phasesMs[name] = Math.round(t - this.mark);
    this.mark = t;
  }

  result(status: RollupStatus, error?: string): RollupResult {
    return {
      runId: this.runId,
      day: this.day,
      status,
      partial: this.partial,
      openAuctions: this.openAuctions,
      extracted: this.extracted,
      rows: this.rows,
      checks: this.checks,
      durationMs: Math.round(performance.now() - this.t0),
      phasesMs: this.phasesMs,
      objects: this.objects,
      ...(error === undefined ? {} : { error }),
    };
  }

  /** Writes the outcome: through the rollup's transaction on success (it commits with the gold), else on its own. */
  async finish(db: pg.Pool | pg.PoolClient, r: RollupResult): Promise<void> {
    await db.query(
      `UPDATE gold.rollup_runs SET finished_at = $2, status = $3, partial = $4, open_auctions = $5, rows = $6,
         checks = $7, duration_ms = $8, error = $9 WHERE run_id = $1`,
      [
        this.runId,
        this.now(),
        r.status,
        r.partial,
        r.openAuctions,
        JSON.stringify({ ...r.rows, extracted: r.extracted }),
        JSON.stringify(r.checks),
        r.durationMs,
        r.error ?? null,
      ],
    );
  }
}

type Duck = Awaited<ReturnType<typeof openDuck>>;

/**
 * What a run holds: a PostgreSQL session with the day's advisory lock and
 * the REPEATABLE READ transaction, a temporary directory and a DuckDB.
 * `close` gives back whatever `open` got, however far it got.
 */
class RollupSession {
  private client: pg.PoolClient | undefined;
  private tmp: string | undefined;
  private duck: Duck | undefined;
  private locked = false;
  private inTx = false;
  /** Set when the connection broke: `release` then destroys it instead of pooling it. */
  private releaseErr: Error | undefined;
  private readonly day: string;
  private readonly log: Logger;
  private readonly onClientError = (err: Error) => {
    this.releaseErr = err;
    this.log.error({ err }, "PostgreSQL connection lost during the rollup");
  };

  constructor(day: string, log: Logger) {
    this.day = day;
    this.log = log;
  }

  async open(deps: RollupDeps): Promise<{ client: pg.PoolClient; tmp: string; duck: Duck }> {
    const client = await deps.pool.connect();
    this.client = client;
    // A connection lost mid-run fails the query in flight; without a listener it would also crash the process.
    client.on("error", this.onClientError);
    const tmp = await mkdtemp(join(deps.tmpDir ?? tmpdir(), `gavel-rollup-${this.day}-`));
    this.tmp = tmp;
    const duck = await openDuck(deps.threads ?? 2, join(tmp, "duckdb"));
    this.duck = duck;
    await client.query("SELECT pg_advisory_lock($1, $2)", [ROLLUP_LOCK_NS, dayNumber(this.day)]);
    this.locked = true;
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ");
    this.inTx = true;
    await client.query("SET LOCAL TimeZone = 'UTC'");
    await client.query("SET LOCAL DateStyle = 'ISO, YMD'");
    return { client, tmp, duck };
  }

  /** Rolls the transaction back, if one is open. */
  async rollback(): Promise<void> {
    if (!this.inTx) return;
    await this.client?.query("ROLLBACK");
    this.inTx = false;
  }

  async commit(): Promise<void> {
    await this.client?.query("COMMIT");
    this.inTx = false;
  }

  async close(): Promise<void> {
    const { client } = this;
    if (client) {
      if (this.locked) {
        await client
          .query("SELECT pg_advisory_unlock($1, $2)", [ROLLUP_LOCK_NS, dayNumber(this.day)])
          .catch((e: Error) => {
            // Destroying the connection releases a session lock we could not release.
            this.releaseErr = e;
          });
      }
      client.off("error", this.onClientError);
      client.release(this.releaseErr);
    }
    if (this.duck) closeDuck(this.duck);
    if (this.tmp) await rm(this.tmp, { recursive: true, force: true });
  }
}

/** Auctions ending on the day that are still open (the day is partial). */
async function countOpenAuctions(client: pg.PoolClient, bounds: DayBounds): Promise<number> {
  const open = await client.query<{ n: string }>(openAuctionsQuery(bounds));
  return Number(open.rows[0]?.n ?? 0);
}

/** COPYs each silver extract out to CSV and loads it into DuckDB, handing key tables back to PostgreSQL for the extracts after it. */
async function extractSilver(
  client: pg.PoolClient,
  duck: Duck["conn"],
  tmp: string,
  bounds: DayBounds,
  run: RunRecord,
): Promise<void> {
  for (const e of SILVER_EXTRACTS) {
    const file = join(tmp, `${e.table}.csv`);
    const te = performance.now();
    await copyOut(client, e.query(bounds), file);
    const tl = performance.now();
    await duck.run(duckLoadSql(e, file));
    run.phasesMs[`extract.${e.table}.pg`] = Math.round(tl - te);
    run.phasesMs[`extract.${e.table}.duckdb`] = Math.round(performance.now() - tl);
    const n = await duck.runAndReadAll(`SELECT count(*) AS n FROM ${e.table}`);
    run.extracted[e.table] = Number((n.getRowObjectsJS()[0] as { n: bigint }).n);
    for (const k of e.keys ?? []) {
      const keyFile = join(tmp, `${k.table}.csv`);
      await duck.run(`COPY (${k.duckSql}) TO ${sqlString(keyFile)} (FORMAT csv, HEADER true)`);
      await loadKeyTable(client, k, keyFile);
    }
  }
}

/**
 * Runs the data-quality checks on the extract, computes the gold tables in
 * DuckDB and adds the check that gold GMV reconciles with silver's.
 */
async function checkAndCompute(
  client: pg.PoolClient,
  duck: Duck["conn"],
  bounds: DayBounds,
  run: RunRecord,
): Promise<{ computed: Record<GoldTable, number>; silverGmv: Map<string, GmvTotal> }> {
  run.checks = await runChecks(duck);
  run.phase("checks");
  const computed = await computeGold(duck);
  run.phase("compute");
  const silverGmv = await pgGmv(client, silverGmvQuery(bounds));
  run.checks.push(reconcileGmv(silverGmv, await goldGmv(duck)));
  return { computed, silverGmv };
}

/** Replaces the day in each gold.* table with DuckDB's rows (inside the rollup's transaction). */
async function replaceGold(
  client: pg.PoolClient,
  duck: Duck["conn"],
  tmp: string,
  day: string,
): Promise<void> {
  for (const t of GOLD_TABLES) {
    const file = join(tmp, `gold_${t}.csv`);
    await duck.run(`COPY g_${t} TO ${sqlString(file)} (FORMAT csv, HEADER true)`);
    const cols = await duckColumns(duck, `g_${t}`);
    await client.query(`DELETE FROM gold.${t} WHERE day = $1`, [day]);
    await copyIn(client, `gold.${t}`, cols, file);
  }
}

/** Reconciles what is now in gold.daily_revenue (inside the transaction) with silver; throws when it does not. */
async function verifyWrittenGmv(
  client: pg.PoolClient,
  silverGmv: Map<string, GmvTotal>,
  day: string,
): Promise<void> {
  const written = reconcileGmv(
    silverGmv,
    await pgGmv(
      client,
      `SELECT currency, sum(gmv)::text AS gmv, sum(transactions)::bigint AS transactions
       FROM gold.daily_revenue WHERE day = $1 GROUP BY currency HAVING sum(transactions) > 0`,
      [day],
    ),
  );
  if (!written.passed)
    throw new Error(`gold.daily_revenue does not reconcile after the write: ${written.samples}`);
}

/** One Parquet file per gold table to the lake; each key is added to `objects` once it is written. */
async function uploadGold(
  duck: Duck["conn"],
  tmp: string,
  lake: GoldLake,
  day: string,
  objects: string[],
): Promise<void> {
  for (const t of GOLD_TABLES) {
    const file = join(tmp, `${t}.parquet`);
    // `day` is the Hive partition (day=...) of the key, not a column of the file.
    await duck.run(
      `COPY (SELECT * EXCLUDE (day) FROM g_${t}) TO ${sqlString(file)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    const key = goldObjectKey(lake.prefix, t, day);
    await lake.put(key, file);
    objects.push(key);
  }
}

export interface RollupRangeOptions {
  readonly days: readonly string[];
  readonly timeZone: string;
  readonly skipPartial?: boolean;
  /** Go on with the next day after a failed one (default: stop). */
  readonly keepGoing?: boolean;
  /** Called after each day (progress). */
  readonly onDay?: (r: RollupResult, index: number, total: number) => void;
}

/** Backfill: rolls up each day in order; each day is its own atomic replacement. */
export async function rollupRange(deps: RollupDeps, opts: RollupRangeOptions): Promise<RollupResult[]> {
  const out: RollupResult[] = [];
  for (const [i, day] of opts.days.entries()) {
    let r: RollupResult;
    try {
      r = await rollupDay(deps, { day, timeZone: opts.timeZone, skipPartial: opts.skipPartial });
    } catch (err) {
      if (!opts.keepGoing) throw err;
      deps.logger.error({ err, day }, "rollup of a day failed; continuing");
      r = {
        runId: "",
        day,
        status: "failed",
        partial: false,
        openAuctions: 0,
        extracted: {},
        rows: {},
        checks: [],
        durationMs: 0,
        phasesMs: {},
        objects: [],
        error: err instanceof Error ? err.message : String(err),
      };
    }
    out.push(r);
    opts.onDay?.(r, i, opts.days.length);
    if (r.status === "failed" && !opts.keepGoing) break;
  }
  return out;
}

/** One line per day for the terminal. */
export function formatSummary(r: RollupResult): string {
  const rows = GOLD_TABLES.map((t) => `${t}=${r.rows[t] ?? 0}`).join(" ");
  const silver = Object.values(r.extracted).reduce((a, b) => a + b, 0);
  const warn = r.checks.filter((c) => !c.passed).map((c) => `${c.name}(${c.violations})`);
  return `${r.day} ${r.status.padEnd(9)} ${String(r.durationMs).padStart(6)} ms  silver=${silver} ${rows}${
    r.partial ? ` open_auctions=${r.openAuctions}` : ""
  }${warn.length ? ` checks_not_passed=${warn.join(",")}` : ""}`;
}
