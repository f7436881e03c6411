import { Argument, type Command, Option } from "commander";
import type { ProcessorName, ProcessorSpec } from "./runtime/run.ts";

/** Every processor `gavel processor <name>` runs, imported when it runs. */
const PROCESSORS: Record<ProcessorName, () => Promise<ProcessorSpec>> = {
  ingest: async () => (await import("./ingest/main.ts")).ingest,
  "bid-processor": async () => (await import("./bid-processor/main.ts")).bidProcessor,
  "silver-writer": async () => (await import("./silver-writer/main.ts")).silverWriter,
  "bronze-archiver": async () => (await import("./bronze-archiver/main.ts")).bronzeArchiver,
};

/**
 * `gavel processor <name> -f pipeline`, `gavel topics apply -f pipeline`,
 * `gavel load FILE`. Implementations are imported lazily.
 */
export function registerProcessors(program: Command): void {
  program
    .command("processor")
    .description(
      "Run one stream processor of a pipeline (connections from KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL, S3_*)",
    )
    .addArgument(new Argument("<name>", "processor to run").choices(Object.keys(PROCESSORS)))
    .requiredOption("-f, --file <pipeline>", "AuctionPipeline YAML or JSON file")
    .action(async (name: ProcessorName, opts: { file: string }) => {
      const { loadProcessorConfig } = await import("./runtime/config.ts");
      (await import("../lib/telemetry.ts")).startTracing(`gavel-${name}`);
      const cfg = await loadProcessorConfig(opts.file);
      const { runProcessor } = await import("./runtime/run.ts");
      await runProcessor(await PROCESSORS[name](), cfg);
    });

  const topics = program.command("topics").description("Manage a pipeline's Kafka topics without Strimzi");
  topics
    .command("apply")
    .description("Create or grow the pipeline's topics through the Kafka Admin API (idempotent)")
    .requiredOption("-f, --file <pipeline>", "AuctionPipeline YAML or JSON file")
    .action(async (opts: { file: string }) => {
      await (await import("./kafka/command.ts")).topicsApply(opts.file);
    });

  program
    .command("load")
    .description("Load a batch file of bids (CSV with a header row, or NDJSON) through the ingest API")
    .argument("<file>", "CSV or NDJSON file (.csv, .ndjson, .jsonl; '-' reads NDJSON from stdin)")
    .addOption(
      new Option("--url <url>", "ingest base URL").env("GAVEL_INGEST_URL").default("http://127.0.0.1:8080"),
    )
    .addOption(new Option("--api-key <key>", "API key with the bids scope").env("GAVEL_API_KEY"))
    .addOption(
      new Option("--format <format>", "file format (default: from the extension)").choices(["csv", "ndjson"]),
    )
    .option("--batch-size <n>", "bids per request", (v) => Number.parseInt(v, 10), 500)
    .option("--source <source>", "source of bids without one", "batch")
    .action(async (file: string, opts: LoadCliOptions) => {
      const { loadFile } = await import("./ingest/load.ts");
      const r = await loadFile(file, opts);
      process.stdout.write(`${JSON.stringify(r)}\n`);
      if (r.rejected > 0 || r.failed > 0) process.exitCode = 2;
    });
}

export interface LoadCliOptions {
  readonly url: string;
  readonly apiKey?: string;
  readonly format?: "csv" | "ndjson";
  readonly batchSize: number;
  readonly source: string;
}
