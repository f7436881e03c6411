import { type Command, Option } from "commander";
import { devTool } from "./dev-tool.ts";
import { intArg as int } from "./options.ts";

export interface DevCliOptions {
  readonly file?: string;
  readonly once: boolean;
  readonly auctions: number;
  readonly bids: number;
  readonly seed: number;
  readonly rate: number;
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
}

/**
 * `gavel dev`: the whole pipeline in one process, on embedded defaults. A
 * development tool: the implementation lives in test/dev/ and is not in the
 * image (cli/dev-tool.ts).
 */
export function registerDev(program: Command): void {
  program
    .command("dev")
    .description(
      "Run the whole pipeline in one process on embedded defaults (in-memory log, PGlite, a local folder, DuckDB): generate an auction day, ingest it over HTTP, process, write silver and bronze, close the auctions, roll up gold, print a summary, then keep serving ingest. With KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL or S3_* set, those services are used instead.",
    )
    .option(
      "-f, --file <pipeline>",
      "AuctionPipeline YAML or JSON file (default: a built-in pipeline named dev)",
    )
    .option("--once", "exit after the summary instead of serving ingest until Ctrl-C", false)
    .option("--auctions <n>", "auctions to generate", int("--auctions", 1, 1_000_000), 100)
    .option(
      "--bids <n>",
      "bid records to generate, malformed ones included",
      int("--bids", 0, 50_000_000),
      20_000,
    )
    .option("--seed <s>", "generator seed (same seed, same records)", int("--seed", 0), 1)
    .option("--rate <r>", "bids per second of the generated schedule", int("--rate", 1, 1_000_000), 500)
    .option("--port <p>", "ingest HTTP port (0: any free port)", int("--port", 0, 65_535), 8080)
    .addOption(new Option("--host <addr>", "ingest listen address").default("127.0.0.1"))
    .option(
      "--data-dir <dir>",
      "where the embedded database, bronze and gold files and summary.json go",
      ".dev",
    )
    .action(async (opts: DevCliOptions) => {
      const { runDev } = await devTool("dev", () => import("../test/dev/run.ts"));
      const { readConnectionConfig } = await import("../lib/config.ts");
      // The whole process is this command: once it is done (or failed), a
      // client that still holds a handle (a consumer, the embedded database)
      // must not keep it alive. The grace period lets stdout drain.
      const exitSoon = () => setTimeout(() => process.exit(process.exitCode ?? 0), 5_000).unref();
      try {
        const summary = await runDev(opts, readConnectionConfig());
        if (summary.bids.unaccounted !== 0 || summary.gold.some((g) => g.status === "failed"))
          process.exitCode = 2;
      } finally {
        exitSoon();
      }
    });
}
