import type { Command } from "commander";
import { devTool } from "./dev-tool.ts";

const impl = () => devTool("testenv", () => import("../test/env/testenv.ts"));

/** `gavel testenv up | down | status`: the local test environment (test/env/testenv.ts). */
export function registerTestenv(program: Command): void {
  const testenv = program
    .command("testenv")
    .description(
      "start, stop and inspect the local test environment (Kafka, PostgreSQL, S3, kube-apiserver, Prometheus)",
    );
  testenv
    .command("up")
    .description(
      "start every service (installs or builds what is missing on first use) and write .testenv/env",
    )
    .option(
      "--strimzi-crd <file>",
      "Strimzi KafkaTopic CRD YAML (Strimzi release asset 043-Crd-kafkatopic.yaml)",
    )
    .option("--only <services>", "comma-separated subset: kafka,postgres,s3,kube,prometheus")
    .action(async (opts: { strimziCrd?: string; only?: string }) => {
      const { up } = await impl();
      await up(opts);
    });
  testenv
    .command("down")
    .description("stop every service the test environment started")
    .action(async () => {
      const { down } = await impl();
      await down();
    });
  testenv
    .command("status")
    .description("show which services are up and on which port")
    .action(async () => {
      const { status } = await impl();
      process.exitCode = (await status()) ? 0 : 3;
    });
}
