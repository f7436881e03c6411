import type { Command } from "commander";
import { ENV } from "../api/env.ts";

/** `gavel operator` (run the controller) and `gavel crds` (write the generated CRD and RBAC YAML). */
export function registerOperator(program: Command): void {
  program
    .command("operator")
    .description(
      `run the AuctionPipeline operator (uses ${ENV.kubeconfig.name} or the in-cluster ServiceAccount)`,
    )
    .option("--namespace <ns>", "watch only this namespace (default: all namespaces)")
    .option(
      "--lease-namespace <ns>",
      `namespace of the leader-election Lease (default: ${ENV.podNamespace.name} or 'default')`,
    )
    .option("--lease-name <name>", "name of the leader-election Lease", "gavel-operator")
    .option(
      "--lease-owner-deployment <name>",
      "Deployment (in the Lease's namespace) that owns the Lease, so deleting it deletes the Lease (the chart sets it)",
    )
    .option(
      "--lease-duration-seconds <s>",
      "how long a silent leader keeps the Lease before a standby takes over",
      "15",
    )
    .option("--health-port <port>", "port of /healthz and /readyz (0 disables)", "8081")
    .option("--resync-seconds <s>", "full resync interval of the informers", "300")
    .option("--concurrency <n>", "pipelines reconciled in parallel", "2")
    .action(
      async (opts: {
        namespace?: string;
        leaseNamespace?: string;
        leaseName: string;
        leaseOwnerDeployment?: string;
        leaseDurationSeconds: string;
        healthPort: string;
        resyncSeconds: string;
        concurrency: string;
      }) => {
        const { runOperatorCommand } = await import("./main.ts");
        await runOperatorCommand(opts);
      },
    );
  program
    .command("crds")
    .description("write the AuctionPipeline CRD and the operator's RBAC, generated from the TypeScript API")
    .option("--out <dir>", "output folder", "crds")
    .action(async (opts: { out: string }) => {
      const { writeGenerated } = await import("./generate.ts");
      for (const path of await writeGenerated(opts.out)) process.stdout.write(`wrote ${path}\n`);
    });
}
