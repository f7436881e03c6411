import { type Command, Option } from "commander";
import { ENV } from "../api/env.ts";
import { devTool } from "./dev-tool.ts";
import { intArg } from "./options.ts";

const positiveInt = (name: string, min = 0) => intArg(name, min);

export interface GenerateCliOptions {
  readonly file: string;
  readonly auctions: number;
  readonly bids: number;
  readonly rate: number;
  readonly seed: number;
  readonly to: "kafka" | "http";
  readonly url: string;
  readonly apiKey?: string;
  readonly start?: string;
  readonly prefix?: string;
  readonly users?: number;
  readonly progress: boolean;
  readonly labels?: string;
}

/**
 * `gavel generate`: synthetic auctions, users and bids for a pipeline. A
 * development tool (test/generate/), not in the image (cli/dev-tool.ts).
 */
export function registerGenerate(program: Command): void {
  program
    .command("generate")
    .description(
      "Generate realistic, reproducible auctions, users and bids (bursts near the close, snipers, shill and velocity fraud, malformed and late records) and send them to the pipeline's Kafka topics or its ingest API",
    )
    .requiredOption("-f, --file <pipeline>", "AuctionPipeline YAML or JSON file (topic names)")
    .requiredOption("--auctions <n>", "number of auctions", positiveInt("--auctions", 1))
    .requiredOption("--bids <n>", "number of bid records, malformed ones included", positiveInt("--bids"))
    .option(
      "--rate <r>",
      "bids per second of the schedule (0: as fast as possible)",
      positiveInt("--rate"),
      1000,
    )
    .option(
      "--seed <s>",
      "PRNG seed: the same seed and --start give the same records",
      positiveInt("--seed"),
      1,
    )
    .addOption(new Option("--to <sink>", "where to send").choices(["kafka", "http"]).makeOptionMandatory())
    .addOption(
      new Option("--url <url>", "ingest base URL (--to http)")
        .env(ENV.ingestUrl.name)
        .default(ENV.ingestUrl.default),
    )
    .addOption(
      new Option("--api-key <key>", "ingest API key with bids, auctions, users scopes").env(ENV.apiKey.name),
    )
    .option("--start <time>", "schedule start (RFC 3339 or epoch ms; default now + 1s)")
    .option("--prefix <p>", "id prefix (default g<seed>)")
    .option("--users <n>", "ordinary users (default 1.5 x auctions)", positiveInt("--users", 1))
    .option("--no-progress", "no progress bar")
    .option(
      "--labels <file>",
      "also write what each well-formed bid record was made as, one JSON object per line (bid_id, auction_id, bidder_id, received_at, kind, fraud): the ground truth for fraud precision and recall (docs/fraud.md)",
    )
    .action(async (opts: GenerateCliOptions) => {
      const { runGenerate } = await devTool("generate", () => import("../test/generate/command.ts"));
      const summary = await runGenerate(opts);
      process.stdout.write(`${JSON.stringify(summary)}\n`);
      if (summary.failed > 0) process.exitCode = 1;
    });
}
