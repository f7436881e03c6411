import type { Command } from "commander";

/** `gavel synth`: print (or write) every manifest the operator would apply for a pipeline file. */
export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description(
      "print every Kubernetes manifest the operator would apply for a pipeline (for GitOps and review)",
    )
    .requiredOption("-f, --file <pipeline.yaml>", "AuctionPipeline YAML file")
    .option("-n, --namespace <ns>", "namespace of the pipeline (default: metadata.namespace or 'default')")
    .option("--out <dir>", "write one YAML file per object into this folder instead of printing")
    .action(async (opts: { file: string; namespace?: string; out?: string }) => {
      const { synthCommand } = await import("./synth.ts");
      await synthCommand(opts);
    });
}
