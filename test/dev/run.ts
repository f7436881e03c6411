/**
 * `gavel dev`: the whole pipeline in one process. The processors are the
 * production classes (ingest app, BidProcessor, SilverWriter,
 * BronzeArchiver, the gold rollup); only their I/O is chosen here (see
 * backends.ts): embedded log, PGlite and a folder unless the environment
 * names real services.
 *
 * Time: nothing is simulated. The generator schedules a compressed auction
 * day in real time: auctions start around now and end within the bid
 * schedule (`bids / rate` seconds, at least 5 s), late records arrive a few
 * seconds after their auction's end. The bid-processor closes each auction
 * when its effective end passes, exactly as in production; so a run takes
 * the schedule's length plus about 15 seconds.
 */
import { randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import {
  type AuctionPipeline,
  allTopics,
  loadPipelineFile,
  parsePipeline,
  s3Prefix,
  topicNames,
} from "../../api/v1alpha1/pipeline.ts";
import type { DevCliOptions } from "../../cli/dev.ts";
import type { ConnectionConfig } from "../../lib/config.ts";
import { createLogger, type Logger } from "../../lib/log.ts";
import { BidProcessor } from "../../processors/bid-processor/processor.ts";
import { BronzeArchiver } from "../../processors/bronze-archiver/archiver.ts";
import { archivedTopics } from "../../processors/bronze-archiver/main.ts";
import { migrate } from "../../processors/db/migrate.ts";
import { ingest } from "../../processors/ingest/main.ts";
import { applyTopics } from "../../processors/kafka/topics.ts";
import { type RollupResult, rollupRange } from "../../processors/rollup/rollup.ts";
import { Registry } from "../../processors/runtime/metrics.ts";
import { startProcessor } from "../../processors/runtime/run.ts";
import { SilverWriter } from "../../processors/silver-writer/writer.ts";
import { goldLakeOn } from "../../processors/storage/objects.ts";
import { embeddedPipelineSpec } from "../embedded-pipeline.ts";
import { type Dataset, generateDataset } from "../generate/dataset.ts";
import { type SendResult, sendToHttp } from "../generate/sinks.ts";
import { type Backends, openBackends } from "./backends.ts";
import { collectSummary, type DevSummary, formatSummary, silverProgress } from "./summary.ts";

/** `gavel dev`'s options (cli/dev.ts), and how long to wait for the pipeline to settle. */
export interface DevOptions extends DevCliOptions {
  /** Longest wait for every auction to close and every record to land, after the schedule. */
  readonly settleTimeoutMs?: number;
}

/** The built-in pipeline: small partition counts suit one process. */
export const DEV_PIPELINE = embeddedPipelineSpec("dev", 4);

export async function loadDevPipeline(file: string | undefined): Promise<AuctionPipeline> {
  return file ? loadPipelineFile(file) : parsePipeline(DEV_PIPELINE, "built-in dev pipeline");
}

interface Running {
  readonly ingestUrl: string;
  readonly apiKey: string;
  /** The archiver's registry: its record count says when bronze has caught up. */
  readonly bronzeMetrics: Registry;
  close(): Promise<void>;
}

const say = (line: string) => process.stderr.write(`${line}\n`);

/** Topics created (or grown) and silver migrated on the chosen backends. */
async function prepareBackends(
  pipeline: AuctionPipeline,
  backends: Backends,
  log: (name: string) => Logger,
): Promise<void> {
  const admin = await backends.transport.admin();
  try {
    const plan = await applyTopics(
      admin,
      allTopics(pipeline).map((t) => ({
        name: t.name,
        partitions: t.partitions,
        replicationFactor: t.replicas,
        configs: t.config,
      })),
    );
    log("dev").info({ created: plan.create.map((t) => t.name) }, "topics ready");
  } finally {
    await admin.close();
  }
  await migrate(backends.pool, { logger: log("migrate") });
}

/**
 * Starts the processors on the chosen backends: the bid-processor, the
 * silver-writer and the bronze-archiver as components (without their HTTP
 * servers), and ingest as the processor `gavel processor ingest` runs;
 * returns once ingest listens and the consumers run.
 */
async function startPipeline(
  pipeline: AuctionPipeline,
  backends: Backends,
  opts: DevOptions,
  env: NodeJS.ProcessEnv,
  log: (name: string) => Logger,
): Promise<Running> {
  await prepareBackends(pipeline, backends, log);
  const topics = topicNames(pipeline);
  const { transport, pool, store, conn } = backends;
  const admin = await transport.admin();
  const bronzeMetrics = new Registry();
  const consumers = [
    new BidProcessor({
      transport,
      admin,
      pipeline,
      topics,
      logger: log("bid-processor"),
      metrics: new Registry(),
    }),
    new SilverWriter({
      transport,
      pool,
      pipeline,
      topics,
      logger: log("silver-writer"),
      metrics: new Registry(),
    }),
    new BronzeArchiver({
      transport,
      admin,
      store,
      prefix: s3Prefix(pipeline),
      topics: archivedTopics(pipeline),
      groupId: `${pipeline.metadata.name}.bronze-archiver`,
      logger: log("bronze-archiver"),
      metrics: bronzeMetrics,
      // Small objects, written soon: a dev run is short and you want to see the files.
      maxAgeMs: 2_000,
    }),
  ];
  await Promise.all(consumers.map((c) => c.start()));

  const apiKey = env.GAVEL_API_KEYS?.split(",")[0]?.split("=")[0] || `dev-${randomBytes(12).toString("hex")}`;
  const cfg = { pipeline, topics, conn, instanceId: "dev", port: opts.port, host: opts.host };
  const api = await startProcessor(ingest, cfg, {
    env: { GAVEL_API_KEYS: apiKey },
    transport,
    logger: log("ingest"),
  });
  return {
    ingestUrl: api.url.replace("0.0.0.0", "127.0.0.1").replace("[::]", "127.0.0.1"),
    apiKey,
    bronzeMetrics,
    async close() {
      await api.close();
      for (const c of consumers) await c.close();
      await admin.close();
    },
  };
}

/** Bronze is done when nothing is buffered and its record count stopped moving. */
function bronzeRecords(metrics: Registry, topicNamesList: readonly string[]): number {
  const c = metrics.counter("bronze_records_total", "Records archived (uploaded and committed), by topic.");
  return topicNamesList.reduce((n, topic) => n + c.get({ topic }), 0);
}

/** The run so far: what the later steps read. */
interface Run {
  readonly opts: DevOptions;
  readonly pipeline: AuctionPipeline;
  readonly backends: Backends;
  readonly running: Running;
  readonly dataDir: string;
  readonly started: number;
  readonly log: (name: string) => Logger;
  /** Prefix of this run's ids (auctions `<prefix>-...`). */
  readonly prefix: string;
}

/** Banner, backends and processors. */
async function open(opts: DevOptions, conn: ConnectionConfig, env: NodeJS.ProcessEnv): Promise<Run> {
  const level = env.LOG_LEVEL ?? "warn";
  const log = (name: string) => createLogger(name, level);
  const pipeline = await loadDevPipeline(opts.file);
  const dataDir = resolve(opts.dataDir);
  await mkdir(dataDir, { recursive: true });
  const started = Date.now();
  say(`gavel dev: pipeline "${pipeline.metadata.name}"${opts.file ? ` from ${opts.file}` : " (built in)"}`);
  const backends = await openBackends({
    conn,
    dataDir,
    bucket: pipeline.spec.storage.s3.bucket,
    logger: log("dev"),
  });
  for (const d of backends.describe) say(`  ${d}`);
  const running = await startPipeline(pipeline, backends, opts, env, log).catch(async (err: unknown) => {
    await backends.close().catch(() => undefined);
    throw err;
  });
  say(`  ingest:   ${running.ingestUrl}  (API key ${running.apiKey})`);
  say(`  started in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  // Ids of real services outlive the run: a random suffix keeps runs apart there.
  const prefix = backends.embedded.db ? `g${opts.seed}` : `g${opts.seed}r${randomBytes(3).toString("hex")}`;
  return { opts, pipeline, backends, running, dataDir, started, log, prefix };
}

/**
 * Users first (thousands of single requests), then the day is generated
 * again from now: the auctions' times and the bid schedule start when the
 * users are in, not when sending them began. Same seed, same ids; only the
 * users' created_at are older by the time their sending took. Returns the
 * day (the users are sent only once) before its bids are sent.
 */
async function sendUsersAndGenerate(run: Run): Promise<Dataset> {
  const { seed, auctions, bids, rate } = run.opts;
  const generate = (startMs: number) =>
    generateDataset({ seed, auctions, bids, rate, startMs, prefix: run.prefix });
  const target = { url: run.running.ingestUrl, apiKey: run.running.apiKey };
  const early = generate(Date.now());
  say(`sending ${early.users.length} users through ingest...`);
  await sendToHttp(target, { ...early, auctions: [], bids: [] });
  const ds = generate(Date.now() + 1_000);
  say(
    `generating ${ds.auctions.length} auctions and ${ds.bids.length} bid records over ${Math.round(
      ds.durationMs / 1000,
    )} s (seed ${seed}); the last auction ends at ${new Date(lastEndOf(ds)).toISOString()}`,
  );
  return ds;
}

const lastEndOf = (ds: Dataset) => Math.max(...ds.auctions.map((a) => Date.parse(a.ends_at)));

/** Every record decided and in silver, every auction closed, bronze flushed (or the deadline passed). */
async function settle(run: Run, ds: Dataset, refused: number, progress: ProgressLine): Promise<void> {
  const { backends, running, prefix } = run;
  const archived = archivedTopics(run.pipeline);
  const deadline = Math.max(lastEndOf(ds), Date.now()) + (run.opts.settleTimeoutMs ?? 120_000);
  let lastBronze = -1;
  let stableSince = Date.now();
  for (;;) {
    const p = await silverProgress(backends.pool, prefix);
    const b = bronzeRecords(running.bronzeMetrics, archived);
    if (b !== lastBronze) {
      lastBronze = b;
      stableSince = Date.now();
    }
    const decided = p.accepted + p.rejected + refused >= ds.bids.length;
    const closed = p.closed >= ds.auctions.length;
    if (decided && closed && Date.now() - stableSince > 3_000) return;
    if (Date.now() > deadline) {
      progress.done();
      say(
        `warning: gave up waiting after the deadline: ${p.accepted + p.rejected + refused}/${ds.bids.length} bid records decided, ${p.closed}/${ds.auctions.length} auctions closed`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** Sends the day's bids through ingest with a progress line, then waits for the pipeline to settle. */
async function sendAndSettle(run: Run, ds: Dataset): Promise<SendResult> {
  const { backends, running, prefix, started } = run;
  const archived = archivedTopics(run.pipeline);
  let sentBids = 0;
  const progress = new ProgressLine();
  const tick = async (phase: string) => {
    const p = await silverProgress(backends.pool, prefix).catch(() => undefined);
    const bronze = bronzeRecords(running.bronzeMetrics, archived);
    progress.show(
      `${phase} ${((Date.now() - started) / 1000).toFixed(0)}s | sent ${sentBids}/${ds.bids.length} bids | silver: ${
        p
          ? `${p.accepted} accepted, ${p.rejected} rejected, ${p.closed}/${ds.auctions.length} auctions closed`
          : "..."
      } | bronze ${bronze} records`,
    );
    return p;
  };
  const timer = setInterval(() => void tick("running"), 1_000);
  try {
    const target = { url: running.ingestUrl, apiKey: running.apiKey };
    const sent = await sendToHttp(
      target,
      { ...ds, users: [] },
      {
        progress: (n) => {
          sentBids = n;
        },
      },
    );
    sentBids = ds.bids.length;
    await settle(run, ds, sent.rejectedAtIngest.length, progress);
    clearInterval(timer);
    await tick("settled");
    return sent;
  } finally {
    clearInterval(timer);
    progress.done();
  }
}

/** The gold rollup of the days the run's auctions closed on, and the summary of the whole run. */
async function summarize(run: Run, ds: Dataset, sent: SendResult): Promise<DevSummary> {
  const { backends, pipeline, running } = run;
  say("running the gold rollup (DuckDB)...");
  const timeZone = pipeline.spec.rollup.timeZone;
  const days = await closedDays(backends.pool, run.prefix, timeZone);
  const lake = goldLakeOn(backends.store, s3Prefix(pipeline));
  const rollups: RollupResult[] = await rollupRange(
    { pool: backends.pool, logger: run.log("rollup"), lake },
    { days, timeZone, keepGoing: true },
  );
  return collectSummary({
    pool: backends.pool,
    store: backends.store,
    prefix: run.prefix,
    dataset: ds,
    refusedAtIngest: sent.rejectedAtIngest.length,
    senderMaxLagMs: sent.maxLagMs,
    rollups,
    ingestUrl: running.ingestUrl,
    apiKey: running.apiKey,
    lakePrefix: s3Prefix(pipeline),
    bronzeRecords: bronzeRecords(running.bronzeMetrics, archivedTopics(pipeline)),
    backends: backends.describe,
    elapsedMs: Date.now() - run.started,
    topics: topicNames(pipeline),
    dataDir: run.dataDir,
  });
}

/** After the summary: keeps serving, printing what your own requests add, until SIGINT/SIGTERM. */
async function serveUntilSignal(run: Run): Promise<void> {
  const { backends } = run;
  process.stdout.write(
    "\nStill serving: send your own auctions and bids (the curl commands above); they flow through the same processors into silver. Ctrl-C stops.\n",
  );
  // Show what arrives after the summary, so a curl's effect is visible.
  const base = await silverTotals(backends.pool);
  let shown = base;
  const watch = setInterval(() => {
    void silverTotals(backends.pool)
      .then((t) => {
        if (t.bids === shown.bids && t.rejections === shown.rejections && t.closed === shown.closed) return;
        shown = t;
        process.stdout.write(
          `since the summary: +${t.bids - base.bids} accepted, +${t.rejections - base.rejections} rejected, +${
            t.closed - base.closed
          } auctions closed${t.lastBid ? ` (latest accepted bid ${t.lastBid})` : ""}\n`,
        );
      })
      .catch(() => undefined);
  }, 2_000);
  await new Promise<void>((resolveStop) => {
    const stop = () => resolveStop();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  clearInterval(watch);
  say("stopping...");
  const hard = setTimeout(() => process.exit(1), 20_000);
  hard.unref();
}

/**
 * `gavel dev`: opens the backends and starts the processors, sends a
 * generated day through ingest, waits for it to settle, rolls it up and
 * prints the summary; then (without `--once`) keeps serving.
 */
export async function runDev(
  opts: DevOptions,
  conn: ConnectionConfig,
  env = process.env,
): Promise<DevSummary> {
  const run = await open(opts, conn, env);
  const stop = async () => {
    await run.running.close();
    await run.backends.close();
  };
  let summary: DevSummary;
  try {
    const ds = await sendUsersAndGenerate(run);
    const sent = await sendAndSettle(run, ds);
    summary = await summarize(run, ds, sent);
  } catch (err) {
    await run.running.close().catch(() => undefined);
    await run.backends.close().catch(() => undefined);
    throw err;
  }
  await writeFile(join(run.dataDir, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
  process.stdout.write(`${formatSummary(summary)}\n`);
  process.stdout.write(`Summary as JSON: ${join(run.dataDir, "summary.json")}\n`);
  if (!opts.once) await serveUntilSignal(run);
  await stop();
  return summary;
}

/** Row counts of all of silver (serving mode shows what your own requests added). */
async function silverTotals(
  pool: Backends["pool"],
): Promise<{ bids: number; rejections: number; closed: number; lastBid: string | null }> {
  const { rows } = await pool.query<{
    bids: string;
    rejections: string;
    closed: string;
    last: string | null;
  }>(
    `SELECT (SELECT count(*) FROM silver.bids) AS bids,
            (SELECT count(*) FROM silver.bid_rejections) AS rejections,
            (SELECT count(*) FROM silver.transactions) AS closed,
            (SELECT bid_id FROM silver.bids ORDER BY received_at DESC, bid_id DESC LIMIT 1) AS last`,
  );
  const r = rows[0]!;
  return {
    bids: Number(r.bids),
    rejections: Number(r.rejections),
    closed: Number(r.closed),
    lastBid: r.last,
  };
}

/** Days (in the rollup's zone) on which this run's auctions closed. */
async function closedDays(pool: Backends["pool"], prefix: string, timeZone: string): Promise<string[]> {
  const { rows } = await pool.query<{ day: string }>(
    `SELECT DISTINCT to_char(closed_at AT TIME ZONE $2, 'YYYY-MM-DD') AS day
     FROM silver.transactions WHERE auction_id LIKE $1 ORDER BY 1`,
    [`${prefix}-%`, timeZone],
  );
  return rows.map((r) => r.day);
}

/** One status line: rewritten in place on a terminal, printed every few seconds otherwise. */
class ProgressLine {
  readonly #tty = process.stderr.isTTY === true;
  #last = 0;
  #shown = false;

  show(line: string): void {
    if (this.#tty) {
      process.stderr.write(`\r\x1b[K${line.slice(0, (process.stderr.columns ?? 160) - 1)}`);
      this.#shown = true;
    } else if (Date.now() - this.#last >= 5_000) {
      this.#last = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.#tty && this.#shown) process.stderr.write("\n");
    this.#shown = false;
  }
}
