import { Command, CommanderError } from "commander";
import { registerSynth } from "../cdk8s/cli.ts";
import { registerOperator } from "../operator/cli.ts";
import { registerProcessors } from "../processors/cli.ts";
import { registerMigrate } from "../processors/db/cli.ts";
import { registerFraud } from "../processors/fraud/cli.ts";
import { registerKafka } from "../processors/kafka/cli.ts";
import { registerRollup } from "../processors/rollup/cli.ts";
import { registerCluster } from "./cluster.ts";
import { registerDev } from "./dev.ts";
import { registerGenerate } from "./generate.ts";
import { registerTestenv } from "./testenv.ts";

/**
 * `gavel`: one CLI, one image. Each area registers its own subcommands and
 * imports its implementation lazily, so `gavel --help` stays fast.
 */
export function buildProgram(): Command {
  const program = new Command("gavel")
    .description("Gavel: a Kubernetes-native platform for real-time auction data")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    .showSuggestionAfterError(true);
  registerTestenv(program);
  registerCluster(program);
  registerProcessors(program);
  registerKafka(program);
  registerOperator(program);
  registerSynth(program);
  registerMigrate(program);
  registerRollup(program);
  registerFraud(program);
  registerGenerate(program);
  registerDev(program);
  return program;
}

export async function main(): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    // A Kafka refusal (credentials, certificate, a missing ACL) in one line that names the fix.
    const { explainKafkaRefusal } = await import("../processors/kafka/preflight.ts");
    const msg = explainKafkaRefusal(err) ?? (err instanceof Error ? err.message : String(err));
    process.stderr.write(`gavel: ${msg}\n`);
    (await import("../processors/runtime/shell.ts")).writeTerminationMessage(msg);
    process.exitCode = 1;
  }
}

if (import.meta.main) await main();
