import type { Command } from "commander";
import { ENV } from "../../api/env.ts";

export interface FraudTrainCliOptions {
  file: string;
  now?: string;
  days?: string;
  seed?: string;
  pipelineRef?: string;
  json?: boolean;
}

/** `gavel fraud train`: the anomaly model the rollup CronJob trains (docs/fraud.md). */
export function registerFraud(program: Command): void {
  const fraud = program.command("fraud").description("The fraud anomaly model (docs/fraud.md)");
  fraud
    .command("train")
    .description(
      `train an Isolation Forest on the fraud features of the scored bids in silver and write it to <prefix>models/fraud/ on S3 (${ENV.databaseUrl.name}, S3_*)`,
    )
    .requiredOption("-f, --file <pipeline.yaml>", "AuctionPipeline: spec.fraud.model, S3 bucket and prefix")
    .option("--now <time>", "end of the training window, RFC 3339 (default: now)")
    .option("--days <n>", "days of scored bids to train on (default: spec.fraud.model.trainingDays)")
    .option("--seed <n>", "seed of the sample and the forest", "1")
    .option(
      "--pipeline-ref <namespace/name>",
      `record the model as annotation gavel.dev/fraud-model on this AuctionPipeline (in a pod the default is ${ENV.podNamespace.name}/${ENV.pipeline.name})`,
    )
    .option("--json", "print the result as JSON")
    .action(async (opts: FraudTrainCliOptions, cmd: Command) => {
      const { runFraudTrain } = await import("./command.ts");
      await runFraudTrain(opts, (msg) => cmd.error(`error: ${msg}`, { exitCode: 2 }));
    });
}
