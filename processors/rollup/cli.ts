import type { Command } from "commander";
import { ENV } from "../../api/env.ts";

export interface RollupCliOptions {
  date?: string;
  from?: string;
  to?: string;
  backfillDays?: string;
  file?: string;
  timeZone?: string;
  s3Prefix?: string;
  parquet: boolean;
  skipPartial?: boolean;
  keepGoing?: boolean;
  pipelineRef?: string;
  json?: boolean;
  trainFraudModel?: boolean;
}

/** `gavel rollup`: the gold rollup the operator's CronJob runs. */
export function registerRollup(program: Command): void {
  program
    .command("rollup")
    .description(
      "build the gold tables of a day (default: yesterday in the pipeline's time zone) from silver with DuckDB, into PostgreSQL gold and Parquet on S3",
    )
    .option("--date <YYYY-MM-DD>", "the day to roll up")
    .option("--from <YYYY-MM-DD>", "first day of a backfill (with --to)")
    .option("--to <YYYY-MM-DD>", "last day of a backfill, inclusive (with --from)")
    .option("--backfill-days <n>", "also rebuild the n days before the day (late data), oldest first")
    .option("-f, --file <pipeline.yaml>", "AuctionPipeline: rollup.timeZone, S3 bucket and prefix")
    .option(
      "--time-zone <iana>",
      "zone whose midnights bound a day (default: the pipeline's rollup.timeZone or UTC)",
    )
    .option(
      "--s3-prefix <prefix>",
      "key prefix of the gold Parquet files (default: the pipeline's storage.s3.prefix)",
    )
    .option("--no-parquet", "write PostgreSQL gold only, no Parquet to S3")
    .option(
      "--skip-partial",
      "skip (and record) days with auctions still open instead of writing them as partial",
    )
    .option("--keep-going", "in a backfill, continue after a failed day")
    .option(
      "--pipeline-ref <namespace/name>",
      `record the result as annotation gavel.dev/last-rollup on this AuctionPipeline (in a pod the default is ${ENV.podNamespace.name}/${ENV.pipeline.name})`,
    )
    .option("--json", "print the run results as JSON on stdout")
    .option(
      "--train-fraud-model",
      "after the rollup, train the fraud anomaly model as `gavel fraud train -f` does (needs -f)",
    )
    .action(async (opts: RollupCliOptions, cmd: Command) => {
      const { runRollupCommand } = await import("./command.ts");
      await runRollupCommand(opts, (msg) => cmd.error(`error: ${msg}`, { exitCode: 2 }));
    });
}
