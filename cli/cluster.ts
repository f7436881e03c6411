import type { Command } from "commander";
import { devTool } from "./dev-tool.ts";

const impl = () => devTool("cluster", () => import("../test/cluster/cluster.ts"));

/**
 * `gavel cluster up | down | status | secrets`: a real single-node
 * Kubernetes on this machine, without Docker (docs/local-cluster.md). A
 * development tool: the implementation lives in test/cluster/ and
 * scripts/cluster/ and is imported only when the command runs.
 */
export function registerCluster(program: Command): void {
  const cluster = program
    .command("cluster")
    .description(
      "start, stop and inspect a local single-node Kubernetes (no Docker; root) with Kafka, PostgreSQL and S3 for pods",
    );
  cluster
    .command("up")
    .description(
      "build what is missing (first time: ~15-25 min), start the node, build and import the Gavel image, write .testenv/cluster/env",
    )
    .option("--no-image", "do not build or import the Gavel image from the working tree")
    .option("--image-ref <ref>", "build the image from this commit instead of the working tree")
    .action(async (opts: { image: boolean; imageRef?: string }) => {
      const { up } = await impl();
      await up({ image: opts.image, imageRef: opts.imageRef });
    });
  cluster
    .command("down")
    .description(
      "stop the cluster; leaves no process, mount, interface or cgroup behind (the build cache stays)",
    )
    .action(async () => {
      const { down } = await impl();
      await down();
    });
  cluster
    .command("status")
    .description("show what runs (exit code 3 when the cluster is not fully up)")
    .action(async () => {
      const { status } = await impl();
      process.exitCode = (await status()) ? 0 : 3;
    });
  cluster
    .command("secrets")
    .description(
      "create the Secrets an AuctionPipeline file refers to (database URL, S3 credentials, ingest keys, Kafka auth), with the cluster's in-cluster addresses",
    )
    .requiredOption("-f, --file <file>", "AuctionPipeline YAML (e.g. examples/pipeline-local.yaml)")
    .option("-n, --namespace <namespace>", "namespace when the file sets none", "default")
    .action(async (opts: { file: string; namespace: string }) => {
      const { secrets } = await impl();
      await secrets(opts);
    });
}
